//! Descriptor syscalls: dup, fcntl, ioctl, pipe, poll.

use abi::flags::*;
use abi::{Errno, PollFd};
use sentry::table::{Fd, UserAddr};
use sentry::{SysResult, Task};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vfs::Notify;

pub fn dup(task: &mut Task, fd: Fd) -> SysResult {
    let f = task.file(fd.0)?;
    Ok(task.fds().install(f, false, task.tg.nofile())? as u64)
}

pub fn dup3(task: &mut Task, old: Fd, new: Fd, flags: u32) -> SysResult {
    if flags & !O_CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    if new.0 < 0 {
        return Err(Errno::EBADF);
    }
    let f = task.file(old.0)?;
    let prev = task.fds().install_at(new.0, f, flags & O_CLOEXEC != 0, task.tg.nofile())?;
    drop(prev);
    Ok(new.0 as u64)
}

pub fn dup2(task: &mut Task, old: Fd, new: Fd) -> SysResult {
    if old == new {
        task.file(old.0)?;
        return Ok(new.0 as u64);
    }
    dup3(task, old, new, 0)
}

pub fn fcntl(task: &mut Task, fd: Fd, cmd: u32, arg: u64) -> SysResult {
    let f = task.file(fd.0)?;
    let fds = task.fds();
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let limit = task.tg.nofile();
            if arg >= limit {
                return Err(Errno::EINVAL);
            }
            Ok(fds.install_from(f, cmd == F_DUPFD_CLOEXEC, arg, limit)? as u64)
        }
        F_GETFD => Ok(fds.get_cloexec(fd.0)? as u64),
        F_SETFD => {
            fds.set_cloexec(fd.0, arg & FD_CLOEXEC as u64 != 0)?;
            Ok(0)
        }
        F_GETFL => Ok(f.flags() as u64),
        F_SETFL => {
            if f.flags() & O_PATH != 0 {
                return Err(Errno::EBADF);
            }
            f.set_status_flags(arg as u32);
            Ok(0)
        }
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => {
            crate::locks::record_lock(task, &f, cmd, arg)
        }
        F_SETLEASE => crate::locks::set_lease(task, &f, arg),
        F_GETLEASE => crate::locks::get_lease(&f),
        F_NOTIFY => crate::locks::notify(task, &f, fd.0, arg),
        F_GETOWN | F_SETOWN | F_GETOWN_EX | F_SETOWN_EX | F_GETSIG | F_SETSIG => crate::fown::fcntl(task, &f, cmd, arg),
        F_GETPIPE_SZ | F_SETPIPE_SZ => crate::locks::pipe_size(&f, cmd, arg),
        F_ADD_SEALS | F_GET_SEALS => crate::memfd::fcntl_seals(task, &f, cmd, arg),
        _ => Err(Errno::EINVAL),
    }
}

/// How many bytes an ioctl request reads from its argument.
fn ioctl_input_len(req: u64) -> usize {
    match req {
        TCSETS | TCSETSW | TCSETSF => 36,
        TIOCSWINSZ => 8,
        TIOCSPGRP => 4,
        // Terminals (vfs::tty): an int read from the argument.
        vfs::tty::TIOCSPTLCK | vfs::tty::TIOCPKT | vfs::tty::TIOCSETD => 4,
        _ => 0,
    }
}

pub fn ioctl(task: &mut Task, fd: Fd, req: u64, arg: UserAddr) -> SysResult {
    let f = task.file(fd.0)?;
    let req = req & 0xffff_ffff;
    match req {
        FIOCLEX => return task.fds().set_cloexec(fd.0, true).map(|_| 0),
        FIONCLEX => return task.fds().set_cloexec(fd.0, false).map(|_| 0),
        FIONBIO => {
            let on: i32 = task.read_obj(arg)?;
            let fl = f.flags();
            f.set_status_flags(if on != 0 { fl | O_NONBLOCK } else { fl & !O_NONBLOCK });
            return Ok(0);
        }
        _ => {}
    }
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    if let Ok(sock) = netstack::SocketFile::of(&f) {
        if let Some(r) = crate::socket_ioctl::interface_ioctl(task, sock, req, arg) {
            return r;
        }
    }
    if req == vfs::tty::TIOCGPTPEER {
        return crate::tty::open_peer(task, &f, arg.0);
    }
    let mut input = vec![0u8; ioctl_input_len(req)];
    if !input.is_empty() {
        task.copy_in(arg, &mut input)?;
    }
    let (ret, out) = f.ops.ioctl(req, arg.0, &input)?;
    if let Some(out) = out {
        task.copy_out(arg, &out)?;
    }
    Ok(ret)
}

pub fn pipe2(task: &mut Task, fds_addr: UserAddr, flags: u32) -> SysResult {
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = vfs::pipe::new_pair();
    let id = vfs::next_ino();
    let status = flags & (O_NONBLOCK | O_DIRECT);
    let rf = vfs::OpenFile::new_anon(r, O_RDONLY | status, format!("pipe:[{id}]"));
    let wf = vfs::OpenFile::new_anon(w, O_WRONLY | status, format!("pipe:[{id}]"));
    let fds = task.fds();
    let limit = task.tg.nofile();
    let cloexec = flags & O_CLOEXEC != 0;
    let a = fds.install(rf, cloexec, limit)?;
    let b = match fds.install(wf, cloexec, limit) {
        Ok(b) => b,
        Err(e) => {
            let _ = fds.remove(a);
            return Err(e);
        }
    };
    let pair = [a, b];
    if let Err(e) = task.write_obj(fds_addr, &pair) {
        let _ = fds.remove(a);
        let _ = fds.remove(b);
        return Err(e);
    }
    Ok(0)
}

pub fn pipe(task: &mut Task, fds_addr: UserAddr) -> SysResult {
    pipe2(task, fds_addr, 0)
}

const POLLNVAL: i16 = 0x20;
/// Most descriptors one poll may name (RLIMIT_NOFILE's ceiling).
const MAX_POLL_FDS: u64 = 1 << 20;

/// One poll/select/epoll_wait registered with the wait queues of the
/// files it watches, so that a change wakes it at once; unregistered on
/// drop. Files that cannot tell (host descriptors) are polled, at an
/// interval growing from 50 us to 10 ms.
pub struct ReadyWait {
    waiter: Arc<vfs::PollWaiter>,
    notify: Arc<dyn Notify>,
    files: Vec<Arc<vfs::OpenFile>>,
    polling: bool,
    sample: Duration,
}

impl ReadyWait {
    pub fn new(files: Vec<Arc<vfs::OpenFile>>) -> ReadyWait {
        let waiter = vfs::PollWaiter::new();
        let notify: Arc<dyn Notify> = waiter.clone();
        let mut polling = false;
        for f in &files {
            match f.ops.wait_queue() {
                Some(q) => q.register(&notify),
                None => polling |= f.ops.needs_polling(),
            }
            // An epoll may watch both kinds.
            polling |= f.ops.needs_polling();
        }
        ReadyWait { waiter, notify, files, polling, sample: Duration::from_micros(50) }
    }

    /// Sleep until a watched file changes, `deadline` or a file's own
    /// ready time (a timer) passes, or the task is interrupted. The caller
    /// checks readiness again afterwards: registration came first, so no
    /// change is missed.
    pub fn sleep(&mut self, task: &Task, deadline: Option<Instant>) {
        let mut until = deadline;
        for f in &self.files {
            if let Some(t) = f.ops.ready_at() {
                until = Some(until.map_or(t, |u| u.min(t)));
            }
        }
        let now = Instant::now();
        let mut timeout = until.map(|u| u.saturating_duration_since(now)).unwrap_or(Duration::from_secs(3600));
        if self.polling {
            timeout = timeout.min(self.sample);
            self.sample = (self.sample * 2).min(Duration::from_millis(10));
        }
        let w = self.waiter.clone();
        let waker: Arc<dyn Fn() + Send + Sync> = Arc::new(move || w.notify());
        task.interrupt.with_waker(waker, || {
            if !task.interrupt.is_pending() {
                self.waiter.wait(timeout);
            }
        });
    }
}

impl Drop for ReadyWait {
    fn drop(&mut self) {
        for f in &self.files {
            if let Some(q) = f.ops.wait_queue() {
                q.unregister(&self.notify);
            }
        }
    }
}

/// Wait until one of `fds` is ready, the deadline passes or the task is
/// interrupted.
fn poll_fds(task: &Task, fds: &mut [PollFd], deadline: Option<Instant>) -> Result<usize, Errno> {
    let files: Vec<Option<Arc<vfs::OpenFile>>> =
        fds.iter().map(|p| if p.fd < 0 { None } else { task.file(p.fd).ok() }).collect();
    let mut wait: Option<ReadyWait> = None;
    loop {
        let mut ready = 0;
        for (p, f) in fds.iter_mut().zip(&files) {
            p.revents = 0;
            if p.fd < 0 {
                continue;
            }
            match f {
                None => p.revents = POLLNVAL,
                Some(f) => {
                    let r = f.ops.poll() as i16;
                    let always = libc::POLLERR | libc::POLLHUP;
                    p.revents = r & (p.events | always);
                }
            }
            if p.revents != 0 {
                ready += 1;
            }
        }
        if ready > 0 {
            return Ok(ready);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(0);
        }
        if task.interrupt.is_pending() {
            return Err(Errno::ERESTARTNOHAND);
        }
        match &mut wait {
            // Registered now; readiness is checked again before sleeping.
            None => wait = Some(ReadyWait::new(files.iter().flatten().cloned().collect())),
            Some(w) => w.sleep(task, deadline),
        }
    }
}

/// Run `f` with the signal mask at `sigmask` (ppoll, pselect6): if `f`
/// is interrupted the handler runs with that mask and the old one comes
/// back after (as rt_sigsuspend).
pub fn with_sigmask(task: &mut Task, sigmask: Option<u64>, f: impl FnOnce(&mut Task) -> SysResult) -> SysResult {
    let Some(mask) = sigmask else { return f(task) };
    let old = task.sigmask();
    task.set_sigmask(mask);
    let r = f(task);
    if matches!(r, Err(e) if e == Errno::EINTR || e == Errno::ERESTARTNOHAND) {
        task.saved_sigmask = Some(old);
    } else {
        task.set_sigmask(old);
    }
    r
}

fn do_poll(task: &Task, addr: UserAddr, n: u64, deadline: Option<Instant>) -> SysResult {
    if n > MAX_POLL_FDS || n > task.tg.nofile() {
        return Err(Errno::EINVAL);
    }
    let mut fds = Vec::with_capacity(n as usize);
    for i in 0..n {
        fds.push(task.read_obj::<PollFd>(addr.offset(i * 8)?)?);
    }
    let r = poll_fds(task, &mut fds, deadline)?;
    for (i, p) in fds.iter().enumerate() {
        task.write_obj(addr.offset(i as u64 * 8)?, p)?;
    }
    Ok(r as u64)
}

/// A guest timespec timeout: EINVAL when negative or malformed, clamped
/// to Linux's longest time when huge.
pub fn read_timespec(task: &Task, addr: UserAddr) -> Result<Duration, Errno> {
    task.read_obj::<abi::Timespec>(addr)?.to_duration().ok_or(Errno::EINVAL)
}

/// What is left of `timeout` (written back by select, ppoll, pselect6):
/// all of it when the deadline is "never".
fn time_left(timeout: Duration, deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(d) => d.saturating_duration_since(Instant::now()),
        None => timeout,
    }
}

// nfds is an unsigned int to Linux: the upper half of the register is
// not part of it.
pub fn poll(task: &mut Task, addr: UserAddr, n: u32, timeout_ms: i32) -> SysResult {
    let n = u64::from(n);
    let deadline = if timeout_ms < 0 { None } else { vfs::deadline_after(Duration::from_millis(timeout_ms as u64)) };
    do_poll(task, addr, n, deadline)
}

pub fn ppoll(task: &mut Task, addr: UserAddr, n: u32, ts: UserAddr, sigmask: UserAddr, size: u64) -> SysResult {
    let n = u64::from(n);
    let timeout = if ts.is_null() { None } else { Some(read_timespec(task, ts)?) };
    let deadline = timeout.and_then(vfs::deadline_after);
    let mask = if sigmask.is_null() {
        None
    } else {
        if size != 8 {
            return Err(Errno::EINVAL);
        }
        Some(task.read_obj::<u64>(sigmask)?)
    };
    let r = with_sigmask(task, mask, |task| do_poll(task, addr, n, deadline));
    if let Some(t) = timeout {
        task.write_obj(ts, &abi::Timespec::from_duration(time_left(t, deadline)))?;
    }
    r
}

fn read_fdset(task: &Task, addr: UserAddr, n: usize) -> Result<Vec<u64>, Errno> {
    let words = n.div_ceil(64);
    let mut v = vec![0u64; words];
    if !addr.is_null() {
        for (i, w) in v.iter_mut().enumerate() {
            *w = task.read_obj(addr.offset(i as u64 * 8)?)?;
        }
    }
    Ok(v)
}

fn do_select(task: &Task, n: i32, r: UserAddr, w: UserAddr, e: UserAddr, deadline: Option<Instant>) -> SysResult {
    if n < 0 {
        return Err(Errno::EINVAL);
    }
    // Linux looks no further than its descriptor table's size.
    let n = (n as usize).min(task.fds().max_fds());
    let (rs, ws, es) = (read_fdset(task, r, n)?, read_fdset(task, w, n)?, read_fdset(task, e, n)?);
    let mut fds = Vec::new();
    for fd in 0..n {
        let (wi, bit) = (fd / 64, 1u64 << (fd % 64));
        let mut ev = 0i16;
        if rs[wi] & bit != 0 {
            ev |= libc::POLLIN;
        }
        if ws[wi] & bit != 0 {
            ev |= libc::POLLOUT;
        }
        if es[wi] & bit != 0 {
            ev |= libc::POLLPRI;
        }
        if ev != 0 {
            task.file(fd as i32)?;
            fds.push(PollFd { fd: fd as i32, events: ev, revents: 0 });
        }
    }
    poll_fds(task, &mut fds, deadline)?;
    let words = n.div_ceil(64);
    let (mut ro, mut wo, mut eo) = (vec![0u64; words], vec![0u64; words], vec![0u64; words]);
    let mut count = 0;
    for p in &fds {
        let (wi, bit) = (p.fd as usize / 64, 1u64 << (p.fd % 64));
        let inb = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
        let outb = libc::POLLOUT | libc::POLLERR;
        if p.events & libc::POLLIN != 0 && p.revents & inb != 0 {
            ro[wi] |= bit;
            count += 1;
        }
        if p.events & libc::POLLOUT != 0 && p.revents & outb != 0 {
            wo[wi] |= bit;
            count += 1;
        }
        if p.events & libc::POLLPRI != 0 && p.revents & libc::POLLPRI != 0 {
            eo[wi] |= bit;
            count += 1;
        }
    }
    for (addr, set) in [(r, &ro), (w, &wo), (e, &eo)] {
        if !addr.is_null() {
            for (i, word) in set.iter().enumerate() {
                task.write_obj(addr.offset(i as u64 * 8)?, word)?;
            }
        }
    }
    Ok(count)
}

pub fn select(task: &mut Task, n: i32, r: UserAddr, w: UserAddr, e: UserAddr, tv: UserAddr) -> SysResult {
    let timeout = if tv.is_null() {
        None
    } else {
        // Linux folds whole seconds of tv_usec into tv_sec (wrapping, as
        // the kernel's C does) and only then checks the value.
        let t: abi::Timeval = task.read_obj(tv)?;
        let sec = t.tv_sec.wrapping_add(t.tv_usec / 1_000_000);
        let nsec = (t.tv_usec % 1_000_000) * 1000;
        Some(abi::Timespec { tv_sec: sec, tv_nsec: nsec }.to_duration().ok_or(Errno::EINVAL)?)
    };
    let deadline = timeout.and_then(vfs::deadline_after);
    let res = do_select(task, n, r, w, e, deadline);
    // Linux writes the time left back.
    if let Some(t) = timeout {
        task.write_obj(tv, &abi::Timeval::from_duration(time_left(t, deadline)))?;
    }
    res
}

pub fn pselect6(
    task: &mut Task,
    n: i32,
    r: UserAddr,
    w: UserAddr,
    e: UserAddr,
    ts: UserAddr,
    sig: UserAddr,
) -> SysResult {
    let timeout = if ts.is_null() { None } else { Some(read_timespec(task, ts)?) };
    let deadline = timeout.and_then(vfs::deadline_after);
    // The sixth argument points at { const sigset_t *ss; size_t ss_len; }.
    let mask = if sig.is_null() {
        None
    } else {
        let [ss, len]: [u64; 2] = task.read_obj(sig)?;
        if ss == 0 {
            None
        } else {
            if len != 8 {
                return Err(Errno::EINVAL);
            }
            Some(task.read_obj::<u64>(UserAddr(ss))?)
        }
    };
    let res = with_sigmask(task, mask, |task| do_select(task, n, r, w, e, deadline));
    if let Some(t) = timeout {
        task.write_obj(ts, &abi::Timespec::from_duration(time_left(t, deadline)))?;
    }
    res
}
