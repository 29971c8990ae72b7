//! Event files: eventfd, timerfd and epoll.

use abi::flags::*;
use abi::{Errno, Timespec};
use sentry::table::{Fd, UserAddr};
use sentry::{SysResult, Task};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vfs::epoll::Epoll;
use vfs::timerfd::TimerFd;
use vfs::{FileOps, OpenFile};

fn install_anon(task: &Task, ops: Arc<dyn FileOps>, flags: u32, name: &str) -> SysResult {
    let f = OpenFile::new_anon(ops, O_RDWR | (flags & O_NONBLOCK), name.to_string());
    Ok(task.fds().install(f, flags & O_CLOEXEC != 0, task.tg.nofile())? as u64)
}

const EFD_SEMAPHORE: u32 = 1;

pub fn eventfd2(task: &mut Task, initval: u32, flags: u32) -> SysResult {
    if flags & !(EFD_SEMAPHORE | O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    install_anon(
        task,
        vfs::eventfd::EventFd::new_ops(initval, flags & EFD_SEMAPHORE != 0),
        flags,
        "anon_inode:[eventfd]",
    )
}

pub fn eventfd(task: &mut Task, initval: u32) -> SysResult {
    eventfd2(task, initval, 0)
}

pub fn timerfd_create(task: &mut Task, clock: i32, flags: u32) -> SysResult {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    if !matches!(clock, CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME) {
        return Err(Errno::EINVAL);
    }
    install_anon(task, TimerFd::new(clock), flags, "anon_inode:[timerfd]")
}

fn timerfd_of(task: &Task, fd: Fd) -> Result<(Arc<OpenFile>, i32), Errno> {
    let f = task.file(fd.0)?;
    let clock = f.ops.as_any().downcast_ref::<TimerFd>().ok_or(Errno::EINVAL)?.clock;
    Ok((f, clock))
}

fn ts_dur(t: &Timespec) -> Result<Duration, Errno> {
    t.to_duration().ok_or(Errno::EINVAL)
}

fn write_itimerspec(task: &Task, addr: UserAddr, (value, interval): (Duration, Duration)) -> Result<(), Errno> {
    let spec = [Timespec::from_duration(interval), Timespec::from_duration(value)];
    task.write_obj(addr, &spec[0])?;
    task.write_obj(addr.offset(16)?, &spec[1])
}

const TFD_TIMER_ABSTIME: u32 = 1;
const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

pub fn timerfd_settime(task: &mut Task, fd: Fd, flags: u32, new: UserAddr, old: UserAddr) -> SysResult {
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let (f, clock) = timerfd_of(task, fd)?;
    let interval = ts_dur(&task.read_obj::<Timespec>(new)?)?;
    let value = ts_dur(&task.read_obj::<Timespec>(new.offset(16)?)?)?;
    let first = if value.is_zero() {
        None
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        let now =
            if clock == CLOCK_REALTIME { crate::time::realtime_ns(task) } else { crate::time::monotonic_ns(task) };
        Some(value.saturating_sub(Duration::from_nanos(now)))
    } else {
        Some(value)
    };
    let t = f.ops.as_any().downcast_ref::<TimerFd>().ok_or(Errno::EINVAL)?;
    let prev = t.set(first, interval);
    if !old.is_null() {
        write_itimerspec(task, old, prev)?;
    }
    Ok(0)
}

pub fn timerfd_gettime(task: &mut Task, fd: Fd, cur: UserAddr) -> SysResult {
    let (f, _) = timerfd_of(task, fd)?;
    let t = f.ops.as_any().downcast_ref::<TimerFd>().ok_or(Errno::EINVAL)?;
    write_itimerspec(task, cur, t.get())?;
    Ok(0)
}

pub fn epoll_create1(task: &mut Task, flags: u32) -> SysResult {
    if flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let ops: Arc<dyn FileOps> = Epoll::new();
    let f = OpenFile::new_anon(ops, O_RDWR, "anon_inode:[eventpoll]".into());
    Ok(task.fds().install(f, flags & O_CLOEXEC != 0, task.tg.nofile())? as u64)
}

pub fn epoll_create(task: &mut Task, size: i32) -> SysResult {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    epoll_create1(task, 0)
}

const EPOLL_CTL_ADD: i32 = 1;
const EPOLL_CTL_DEL: i32 = 2;
const EPOLL_CTL_MOD: i32 = 3;

fn epoll_of(f: &OpenFile) -> Result<&Epoll, Errno> {
    f.ops.as_any().downcast_ref::<Epoll>().ok_or(Errno::EINVAL)
}

pub fn epoll_ctl(task: &mut Task, epfd: Fd, op: i32, fd: Fd, event: UserAddr) -> SysResult {
    let ep_file = task.file(epfd.0)?;
    let target = task.file(fd.0)?;
    let ep = epoll_of(&ep_file)?;
    if epfd == fd {
        return Err(Errno::EINVAL);
    }
    // Regular files and directories are always ready: Linux refuses them.
    if let Some(d) = &target.dentry {
        if matches!(d.inode.stat()?.st_mode & S_IFMT, S_IFREG | S_IFDIR) {
            return Err(Errno::EPERM);
        }
    }
    let read_event = || -> Result<(u32, u64), Errno> {
        let mut b = [0u8; 12];
        task.copy_in(event, &mut b)?;
        Ok((
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            u64::from_ne_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]),
        ))
    };
    match op {
        EPOLL_CTL_ADD => {
            let (ev, data) = read_event()?;
            ep.add(fd.0, &target, ev, data)?;
        }
        EPOLL_CTL_MOD => {
            let (ev, data) = read_event()?;
            ep.modify(fd.0, ev, data)?;
        }
        EPOLL_CTL_DEL => ep.delete(fd.0)?,
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// Most events one epoll_wait may return (INT_MAX / sizeof(epoll_event)).
const EP_MAX_EVENTS: i32 = i32::MAX / 12;

pub fn epoll_wait(task: &mut Task, epfd: Fd, events: UserAddr, max: i32, timeout_ms: i32) -> SysResult {
    let timeout = if timeout_ms < 0 { None } else { Some(Duration::from_millis(timeout_ms as u64)) };
    epoll_wait_for(task, epfd, events, max, timeout)
}

/// epoll_wait with its timeout as a duration (None: wait forever).
fn epoll_wait_for(task: &mut Task, epfd: Fd, events: UserAddr, max: i32, timeout: Option<Duration>) -> SysResult {
    if max <= 0 || max > EP_MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let ep_file = task.file(epfd.0)?;
    let ep = epoll_of(&ep_file)?;
    let max = max as usize;
    let deadline = timeout.and_then(vfs::deadline_after);
    let mut wait: Option<crate::fd::ReadyWait> = None;
    let ready = loop {
        let r = ep.ready(max.min(4096));
        if !r.is_empty() {
            break r;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break r;
        }
        if task.interrupt.is_pending() {
            return Err(Errno::EINTR);
        }
        match &mut wait {
            // Registered now; readiness is checked again before sleeping.
            None => wait = Some(crate::fd::ReadyWait::new(vec![ep_file.clone()])),
            Some(w) => w.sleep(task, deadline),
        }
    };
    let mut out = Vec::with_capacity(ready.len() * 12);
    for (ev, data) in &ready {
        out.extend_from_slice(&ev.to_ne_bytes());
        out.extend_from_slice(&data.to_ne_bytes());
    }
    task.copy_out(events, &out)?;
    Ok(ready.len() as u64)
}

pub fn epoll_pwait(
    task: &mut Task,
    epfd: Fd,
    events: UserAddr,
    max: i32,
    timeout_ms: i32,
    sigmask: UserAddr,
) -> SysResult {
    let timeout = if timeout_ms < 0 { None } else { Some(Duration::from_millis(timeout_ms as u64)) };
    epoll_wait_masked(task, epfd, events, max, timeout, sigmask)
}

/// epoll_pwait2(2): the timeout is a timespec (NULL: wait forever); a
/// negative or unnormalised one is EINVAL, checked before the descriptor.
pub fn epoll_pwait2(
    task: &mut Task,
    epfd: Fd,
    events: UserAddr,
    max: i32,
    timeout: UserAddr,
    sigmask: UserAddr,
    sigsetsize: u64,
) -> SysResult {
    let timeout = if timeout.is_null() {
        None
    } else {
        let ts: Timespec = task.read_obj(timeout)?;
        Some(ts.to_duration().ok_or(Errno::EINVAL)?)
    };
    if !sigmask.is_null() && sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    epoll_wait_masked(task, epfd, events, max, timeout, sigmask)
}

fn epoll_wait_masked(
    task: &mut Task,
    epfd: Fd,
    events: UserAddr,
    max: i32,
    timeout: Option<Duration>,
    sigmask: UserAddr,
) -> SysResult {
    if sigmask.is_null() {
        return epoll_wait_for(task, epfd, events, max, timeout);
    }
    let mask: u64 = task.read_obj(sigmask)?;
    let old = task.sigmask();
    task.set_sigmask(mask);
    let r = epoll_wait_for(task, epfd, events, max, timeout);
    if r == Err(Errno::EINTR) {
        // The handler runs with the temporary mask; the old one comes back after.
        task.saved_sigmask = Some(old);
    } else {
        task.set_sigmask(old);
    }
    r
}
