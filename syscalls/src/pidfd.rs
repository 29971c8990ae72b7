//! pidfd_open, pidfd_send_signal, pidfd_getfd, and the pidfd side of
//! waitid (P_PIDFD). The descriptor itself is sentry::pidfd::PidFd.

use abi::flags::*;
use abi::signal::{NSIG, SI_TKILL, SI_USER};
use abi::Errno;
use sentry::locking::lock;
use sentry::pidfd::PidFd;
use sentry::table::{Fd, UserAddr};
use sentry::{SysResult, Task, ThreadGroup};
use std::sync::Arc;
use vfs::OpenFile;

const PIDFD_NONBLOCK: u32 = O_NONBLOCK;
const PIDFD_SIGNAL_THREAD: u32 = 1;
const PIDFD_SIGNAL_THREAD_GROUP: u32 = 2;
const PIDFD_SIGNAL_PROCESS_GROUP: u32 = 4;

/// The pidfd at `fd` (EBADF for a closed descriptor or another file)
/// with its file (whose status flags carry PIDFD_NONBLOCK).
pub fn pidfd_at(task: &Task, fd: i32) -> Result<(Arc<OpenFile>, i32), Errno> {
    let f = task.file(fd)?;
    let tgid = f.ops.as_any().downcast_ref::<PidFd>().ok_or(Errno::EBADF)?.tgid;
    Ok((f, tgid))
}

/// The process a pidfd names, until it is reaped (ESRCH after).
fn pidfd_process(f: &OpenFile) -> Result<Arc<ThreadGroup>, Errno> {
    f.ops.as_any().downcast_ref::<PidFd>().ok_or(Errno::EBADF)?.process()
}

/// The process pidfd_send_signal's descriptor names: a pidfd or, as Linux
/// also takes, a `/proc/PID` directory (the process with that number now:
/// ESRCH once it is gone). Anything else is EBADF.
fn signal_target(task: &Task, fd: i32) -> Result<Arc<ThreadGroup>, Errno> {
    let f = task.file(fd)?;
    if f.ops.as_any().downcast_ref::<PidFd>().is_some() {
        return pidfd_process(&f);
    }
    let d = f.dentry.as_ref().filter(|d| d.mount.fs_type == "proc").ok_or(Errno::EBADF)?;
    let in_proc_root = d.parent().is_some_and(|p| p.path() == d.mount.mountpoint);
    let pid = std::str::from_utf8(&d.name())
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .filter(|&p| in_proc_root && p > 0)
        .ok_or(Errno::EBADF)?;
    task.kernel.group(pid).ok_or(Errno::ESRCH)
}

/// pidfd_open(2). Linux 6.9's PIDFD_THREAD (O_EXCL: a pidfd for one
/// thread) is not served: EINVAL, as on a kernel before it.
pub fn pidfd_open(task: &mut Task, pid: i32, flags: u32) -> SysResult {
    if flags & !PIDFD_NONBLOCK != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let tg = match task.kernel.group(pid) {
        Some(tg) => tg,
        // A thread's tid names no process (ENOENT, as without PIDFD_THREAD).
        None if task.kernel.group_of_tid(pid).is_some() => return Err(Errno::ENOENT),
        None => return Err(Errno::ESRCH),
    };
    let file = OpenFile::new_anon(PidFd::new(&tg), O_RDWR | (flags & PIDFD_NONBLOCK), "anon_inode:[pidfd]".into());
    Ok(task.fds().install(file, true, task.tg.nofile())? as u64)
}

pub fn pidfd_send_signal(task: &mut Task, pidfd: Fd, sig: i32, uinfo: UserAddr, flags: u32) -> SysResult {
    let scope = PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP;
    if flags & !scope != 0 || flags.count_ones() > 1 {
        return Err(Errno::EINVAL);
    }
    let tg = signal_target(task, pidfd.0)?;
    let me = Arc::ptr_eq(&tg, &task.tg);
    let info = if uinfo.is_null() {
        let code = if flags & PIDFD_SIGNAL_THREAD != 0 { SI_TKILL } else { SI_USER };
        sentry::signal::user_info(sig, code, task.tg.tgid, task.creds().uid)
    } else {
        let info: abi::SigInfo = task.read_obj(uinfo)?;
        if info.signo != sig {
            return Err(Errno::EINVAL);
        }
        // Only a process signalling itself may pretend to be the kernel
        // or kill(2).
        if (!me || flags & PIDFD_SIGNAL_PROCESS_GROUP != 0) && (info.code >= 0 || info.code == SI_TKILL) {
            return Err(Errno::EPERM);
        }
        info
    };
    if !(0..=NSIG).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    if sig == 0 || *lock(&tg.zombie) {
        // A zombie can still be signalled (to no effect).
        return Ok(0);
    }
    if flags & PIDFD_SIGNAL_PROCESS_GROUP != 0 {
        let pgid = *lock(&tg.pgid);
        for g in task.kernel.groups().into_iter().filter(|g| *lock(&g.pgid) == pgid && !*lock(&g.zombie)) {
            if Arc::ptr_eq(&g, &task.tg) {
                sentry::signal::send_signal_to_thread(&g, task.tid, info)?;
            } else {
                sentry::signal::send_signal(&g, info);
            }
        }
        return Ok(0);
    }
    if me {
        // Delivered on this syscall's return, as kill(getpid()) is.
        sentry::signal::send_signal_to_thread(&tg, task.tid, info)?;
    } else if flags & PIDFD_SIGNAL_THREAD != 0 {
        sentry::signal::send_signal_to_thread(&tg, tg.tgid, info)?;
    } else {
        sentry::signal::send_signal(&tg, info);
    }
    Ok(0)
}

/// pidfd_getfd(2): a duplicate of another process's descriptor, allowed
/// as a ptrace attach with real credentials would be (root, or the same
/// real uid and gid as all of the target's).
pub fn pidfd_getfd(task: &mut Task, pidfd: Fd, targetfd: i32, flags: u32) -> SysResult {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let (f, _) = pidfd_at(task, pidfd.0)?;
    let tg = pidfd_process(&f)?;
    let (me, them) = (task.creds(), tg.creds());
    let same = [them.uid, them.euid, them.suid].iter().all(|&u| u == me.uid)
        && [them.gid, them.egid, them.sgid].iter().all(|&g| g == me.gid);
    if !same && me.euid != 0 {
        return Err(Errno::EPERM);
    }
    // An exiting process has no descriptors left: Linux says ESRCH
    // ("the task is dead") rather than EBADF.
    if tg.exit_status().is_some() {
        return Err(Errno::ESRCH);
    }
    let file = tg.fds().get(targetfd)?;
    Ok(task.fds().install(file, true, task.tg.nofile())? as u64)
}
