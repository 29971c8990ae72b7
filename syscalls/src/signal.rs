//! Signal syscalls: dispositions, masks, sending (kill, tgkill, queued
//! signals), waiting (wait4, waitid, sigsuspend, sigtimedwait), signalfd,
//! and futex.

use abi::flags::{
    FUTEX_CLOCK_REALTIME, FUTEX_CMP_REQUEUE, FUTEX_CMP_REQUEUE_PI, FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_REQUEUE,
    FUTEX_TRYLOCK_PI, FUTEX_UNLOCK_PI, FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_WAKE,
    FUTEX_WAKE_BITSET, FUTEX_WAKE_OP,
};
use abi::signal::*;
use abi::{Errno, KSigaction, StackT};
use sentry::locking::lock;
use sentry::process::{WaitEvent, WaitFor, WCONTINUED, WEXITED, WSTOPPED};
use sentry::table::UserAddr;
use sentry::{SysResult, Task};

fn valid(sig: i32) -> bool {
    (1..=NSIG).contains(&sig)
}

pub fn rt_sigaction(task: &mut Task, sig: i32, act: UserAddr, old: UserAddr, size: u64) -> SysResult {
    if size != 8 || !valid(sig) {
        return Err(Errno::EINVAL);
    }
    if !act.is_null() && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let new = if act.is_null() { None } else { Some(task.read_obj::<KSigaction>(act)?) };
    let prev = {
        let mut s = lock(&task.tg.signals);
        let slot = s.actions.get_mut((sig - 1) as usize).ok_or(Errno::EINVAL)?;
        let prev = *slot;
        if let Some(mut n) = new {
            n.mask &= !(sigbit(SIGKILL) | sigbit(SIGSTOP));
            *slot = n;
        }
        prev
    };
    if !old.is_null() {
        task.write_obj(old, &prev)?;
    }
    Ok(0)
}

pub fn rt_sigprocmask(task: &mut Task, how: i32, set: UserAddr, old: UserAddr, size: u64) -> SysResult {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let prev = task.sigmask();
    if !set.is_null() {
        let s: u64 = task.read_obj(set)?;
        let new = match how {
            SIG_BLOCK => prev | s,
            SIG_UNBLOCK => prev & !s,
            SIG_SETMASK => s,
            _ => return Err(Errno::EINVAL),
        };
        task.set_sigmask(new);
    }
    if !old.is_null() {
        task.write_obj(old, &prev)?;
    }
    Ok(0)
}

pub fn rt_sigpending(task: &mut Task, set: UserAddr, size: u64) -> SysResult {
    if size > 8 {
        return Err(Errno::EINVAL);
    }
    let p = task.pending_bits() & task.sigmask();
    task.write_obj(set, &p)?;
    Ok(0)
}

pub fn rt_sigreturn(task: &mut Task) -> SysResult {
    task.sigreturn()
}

/// Block until a signal is delivered; the handler runs with the old mask
/// restored afterwards.
fn suspend_with(task: &mut Task, mask: u64) -> SysResult {
    let old = task.sigmask();
    task.saved_sigmask = Some(old);
    task.set_sigmask(mask);
    while task.deliverable() == 0 {
        if task.tg.killed.load(std::sync::atomic::Ordering::Acquire)
            || task.shared.must_exit.load(std::sync::atomic::Ordering::Acquire)
        {
            break;
        }
        crate::time::sleep_until(task, None).ok();
    }
    Err(Errno::ERESTARTNOHAND)
}

pub fn rt_sigsuspend(task: &mut Task, set: UserAddr, size: u64) -> SysResult {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = task.read_obj(set)?;
    suspend_with(task, mask)
}

pub fn pause(task: &mut Task) -> SysResult {
    let m = task.sigmask();
    suspend_with(task, m)
}

pub fn rt_sigtimedwait(task: &mut Task, set: UserAddr, info: UserAddr, timeout: UserAddr, size: u64) -> SysResult {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let want: u64 = task.read_obj(set)?;
    let want = want & !(sigbit(SIGKILL) | sigbit(SIGSTOP));
    let deadline = if timeout.is_null() { None } else { vfs::deadline_after(crate::fd::read_timespec(task, timeout)?) };
    // The awaited signals are deliverable to this wait, not to handlers.
    let old = task.sigmask();
    task.set_sigmask(old & !want);
    let r = loop {
        if let Some(si) = task.dequeue_signal(want) {
            break Ok(si);
        }
        if task.deliverable() & !want != 0 {
            break Err(Errno::EINTR);
        }
        // SIGKILL and exit_group queue no signal: they set these and kick
        // the thread, and the kick must not be cleared below.
        if task.tg.killed.load(std::sync::atomic::Ordering::Acquire)
            || task.shared.must_exit.load(std::sync::atomic::Ordering::Acquire)
        {
            break Err(Errno::EINTR);
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break Err(Errno::EAGAIN);
        }
        let _ = crate::time::sleep_until(task, deadline);
        if task.deliverable() & want == 0 && task.deliverable() == 0 {
            task.interrupt.clear();
        }
    };
    task.set_sigmask(old);
    let si = r?;
    if !info.is_null() {
        task.write_obj(info, &si)?;
    }
    Ok(si.signo as u64)
}

const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const MINSIGSTKSZ: u64 = 2048;

pub fn sigaltstack(task: &mut Task, ss: UserAddr, old: UserAddr) -> SysResult {
    let mut cur = task.altstack;
    let sp = task.regs.rsp;
    let on = cur.ss_flags & SS_DISABLE == 0 && sp > cur.ss_sp && sp <= cur.ss_sp.wrapping_add(cur.ss_size);
    if on {
        cur.ss_flags = SS_ONSTACK;
    }
    let new = if ss.is_null() { None } else { Some(task.read_obj::<StackT>(ss)?) };
    if let Some(n) = new {
        if on {
            return Err(Errno::EPERM);
        }
        if n.ss_flags & !(SS_DISABLE | SS_ONSTACK) != 0 {
            return Err(Errno::EINVAL);
        }
        if n.ss_flags & SS_DISABLE == 0 && n.ss_size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
    }
    if !old.is_null() {
        task.write_obj(old, &cur)?;
    }
    if let Some(n) = new {
        task.altstack = if n.ss_flags & SS_DISABLE != 0 {
            StackT { ss_sp: 0, ss_flags: SS_DISABLE, pad: 0, ss_size: 0 }
        } else {
            StackT { ss_sp: n.ss_sp, ss_flags: 0, pad: 0, ss_size: n.ss_size }
        };
    }
    Ok(0)
}

/// Send `sig` to this task's own process: delivered when the syscall returns.
/// kill(2) of one's own process: process-directed, as Linux queues it
/// (any thread not blocking it takes it, the caller included on its way
/// out of this call; a sigwait in another thread receives it when every
/// thread blocks it), not to the calling thread alone.
fn signal_self(task: &mut Task, sig: i32, code: i32) -> SysResult {
    if sig != 0 {
        let info = sentry::signal::user_info(sig, code, task.tg.tgid, task.creds().uid);
        sentry::signal::send_signal(&task.tg, info);
    }
    Ok(0)
}

/// Whether `task` may signal process `target` (Linux's
/// check_kill_permission): its real or effective uid is the target's real
/// or saved uid, or it has CAP_KILL (euid 0 in the sandbox); SIGCONT to a
/// process of the same session is always allowed.
fn may_signal(task: &Task, target: &sentry::ThreadGroup, sig: i32) -> bool {
    if target.tgid == task.tg.tgid {
        return true;
    }
    let (me, them) = (task.creds(), target.creds());
    me.euid == 0
        || me.euid == them.suid
        || me.euid == them.uid
        || me.uid == them.suid
        || me.uid == them.uid
        || (sig == SIGCONT && *lock(&task.tg.sid) == *lock(&target.sid))
}

/// Send `sig` from `task` to another process.
fn signal_other(task: &Task, tg: &std::sync::Arc<sentry::ThreadGroup>, sig: i32) {
    if sig != 0 {
        let info = sentry::signal::user_info(sig, SI_USER, task.tg.tgid, task.creds().uid);
        sentry::signal::send_signal(tg, info);
    }
}

pub fn kill(task: &mut Task, pid: i32, sig: i32) -> SysResult {
    if pid == i32::MIN {
        // -INT_MIN is no process group (Linux: ESRCH, before the signal
        // is looked at).
        return Err(Errno::ESRCH);
    }
    if sig != 0 && !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let me = task.tg.tgid;
    if pid == me {
        return signal_self(task, sig, SI_USER);
    }
    // -INT_MIN is no pid (Linux: ESRCH).
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    let targets: Vec<_> = if pid > 0 {
        vec![task.kernel.group(pid).ok_or(Errno::ESRCH)?]
    } else {
        let pgid = if pid == 0 { *lock(&task.tg.pgid) } else { -pid };
        task.kernel
            .groups()
            .into_iter()
            // -1: every process but init and the caller (Linux's
            // kill_something_info).
            .filter(|g| (pid == -1 && g.tgid != 1 && g.tgid != me) || (pid != -1 && *lock(&g.pgid) == pgid))
            .collect()
    };
    let targets: Vec<_> = targets.into_iter().filter(|g| !*lock(&g.zombie)).collect();
    if targets.is_empty() && pid > 0 {
        // A zombie still exists for kill(2): sending to it succeeds.
        return Ok(0);
    }
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    // Linux sends to every permitted target; EPERM only when none was.
    let permitted: Vec<_> = targets.into_iter().filter(|g| may_signal(task, g, sig)).collect();
    if permitted.is_empty() {
        return Err(Errno::EPERM);
    }
    let targets = permitted;
    let mut self_too = false;
    for t in &targets {
        if t.tgid == me {
            self_too = true;
        } else {
            signal_other(task, t, sig);
        }
    }
    if self_too {
        signal_self(task, sig, SI_USER)?;
    }
    Ok(0)
}

pub fn tgkill(task: &mut Task, tgid: i32, tid: i32, sig: i32) -> SysResult {
    if tgid <= 0 || tid <= 0 || (sig != 0 && !valid(sig)) {
        return Err(Errno::EINVAL);
    }
    let tg = task.kernel.group_of_tid(tid).filter(|g| g.tgid == tgid).ok_or(Errno::ESRCH)?;
    if !may_signal(task, &tg, sig) {
        return Err(Errno::EPERM);
    }
    let info = sentry::signal::user_info(sig, SI_TKILL, task.tg.tgid, task.creds().uid);
    sentry::signal::send_signal_to_thread(&tg, tid, info)?;
    Ok(0)
}

pub fn tkill(task: &mut Task, tid: i32, sig: i32) -> SysResult {
    if tid <= 0 || (sig != 0 && !valid(sig)) {
        return Err(Errno::EINVAL);
    }
    let tg = task.kernel.group_of_tid(tid).ok_or(Errno::ESRCH)?;
    if !may_signal(task, &tg, sig) {
        return Err(Errno::EPERM);
    }
    let info = sentry::signal::user_info(sig, SI_TKILL, task.tg.tgid, task.creds().uid);
    sentry::signal::send_signal_to_thread(&tg, tid, info)?;
    Ok(0)
}

pub fn wait4(task: &mut Task, pid: i32, status: UserAddr, options: i32, ru: UserAddr) -> SysResult {
    if options & !(1 | 2 | 8 | 0x2000_0000 | 0x4000_0000 | -0x8000_0000i32) != 0 {
        return Err(Errno::EINVAL);
    }
    let which = match pid {
        // -INT_MIN is no process group (Linux: ESRCH).
        i32::MIN => return Err(Errno::ESRCH),
        -1 => WaitFor::Any,
        0 => WaitFor::Pgid(*lock(&task.tg.pgid)),
        p if p < -1 => WaitFor::Pgid(-p),
        p => WaitFor::Pid(p),
    };
    // wait4 always reports exits.
    let options = options as u32 | WEXITED;
    match sentry::process::wait_child(task, which, options)? {
        None => Ok(0),
        Some((pid, ev, times)) => {
            if !status.is_null() {
                task.write_obj(status, &ev.wait_status())?;
            }
            if !ru.is_null() {
                task.write_obj(ru, &crate::process::rusage(times, 0))?;
            }
            Ok(pid as u64)
        }
    }
}

pub fn waitid(task: &mut Task, idtype: i32, id: i32, info: UserAddr, options: i32, ru: UserAddr) -> SysResult {
    let options = options as u32;
    if options & !(1 | 2 | 4 | 8 | 0x0100_0000 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000) != 0
        || options & (WSTOPPED | WEXITED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    // P_PIDFD: a non-blocking pidfd makes the wait WNOHANG, and an empty
    // answer EAGAIN.
    let mut pidfd_nonblock = false;
    let mut options = options;
    let which = match idtype {
        0 => WaitFor::Any,
        1 if id > 0 => WaitFor::Pid(id),
        2 if id >= 0 => WaitFor::Pgid(if id == 0 { *lock(&task.tg.pgid) } else { id }),
        3 if id >= 0 => {
            let (f, tgid) = crate::pidfd::pidfd_at(task, id)?;
            if f.flags() & abi::flags::O_NONBLOCK != 0 && options & sentry::process::WNOHANG == 0 {
                pidfd_nonblock = true;
                options |= sentry::process::WNOHANG;
            }
            WaitFor::Pid(tgid)
        }
        _ => return Err(Errno::EINVAL),
    };
    let r = sentry::process::wait_child(task, which, options)?;
    if r.is_none() && pidfd_nonblock {
        return Err(Errno::EAGAIN);
    }
    let mut si = abi::SigInfo::default();
    let mut usage = abi::Rusage::default();
    if let Some((pid, ev, times)) = r {
        usage = crate::process::rusage(times, 0);
        si.signo = SIGCHLD;
        let (code, status) = match ev {
            WaitEvent::Exited(sentry::ExitStatus::Exited(c)) => (CLD_EXITED, c),
            WaitEvent::Exited(sentry::ExitStatus::Signaled { sig, core: true }) => (CLD_DUMPED, sig),
            WaitEvent::Exited(sentry::ExitStatus::Signaled { sig, core: false }) => (CLD_KILLED, sig),
            WaitEvent::Stopped(sig) => (CLD_STOPPED, sig),
            WaitEvent::Continued => (CLD_CONTINUED, SIGCONT),
        };
        si.code = code;
        si.fields[0] = pid as u32 as u64;
        si.fields[1] = status as u32 as u64;
    }
    if !info.is_null() {
        task.write_obj(info, &si)?;
    }
    if !ru.is_null() {
        task.write_obj(ru, &usage)?;
    }
    Ok(0)
}

pub fn futex(
    task: &mut Task,
    addr: UserAddr,
    op: i32,
    val: u32,
    timeout: UserAddr,
    addr2: UserAddr,
    val3: u32,
) -> SysResult {
    let mm = task.mm().clone();
    let futexes = &task.kernel.futexes;
    let cmd = op & 0x7f;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    if realtime && !matches!(cmd, FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2) {
        return Err(Errno::ENOSYS);
    }
    let kernel = task.kernel.clone();
    let alive = move |tid: i32| kernel.group_of_tid(tid).and_then(|g| g.thread(tid)).is_some();
    let pi_caller = sentry::futex_pi::PiCaller { tid: task.tid, mm: &mm, alive: &alive, interrupt: &task.interrupt };
    match cmd {
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 => {
            // FUTEX_LOCK_PI's timeout is on CLOCK_REALTIME; LOCK_PI2's on
            // CLOCK_MONOTONIC unless the flag says otherwise.
            let deadline = futex_deadline(task, timeout, cmd == FUTEX_LOCK_PI || realtime)?;
            futexes.lock_pi(&pi_caller, addr.0, deadline)?;
            Ok(0)
        }
        FUTEX_TRYLOCK_PI => {
            futexes.trylock_pi(&pi_caller, addr.0)?;
            Ok(0)
        }
        FUTEX_UNLOCK_PI => {
            futexes.unlock_pi(&pi_caller, addr.0)?;
            Ok(0)
        }
        FUTEX_WAIT_REQUEUE_PI => {
            if addr.0 == addr2.0 {
                return Err(Errno::EINVAL);
            }
            let deadline = futex_deadline(task, timeout, realtime)?;
            futexes.wait_requeue_pi(&pi_caller, addr.0, val, addr2.0, val3, deadline)?;
            Ok(0)
        }
        FUTEX_CMP_REQUEUE_PI => {
            // The fourth argument is the count to requeue.
            let n_move = timeout.0 as i32;
            if val != 1 || n_move < 0 || addr.0 == addr2.0 {
                return Err(Errno::EINVAL);
            }
            Ok(futexes.cmp_requeue_pi(&pi_caller, addr.0, addr2.0, n_move as u32, val3)? as u64)
        }
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT { u32::MAX } else { val3 };
            let deadline = if timeout.is_null() {
                None
            } else {
                let t: abi::Timespec = task.read_obj(timeout)?;
                let ns = t.to_nanos().ok_or(Errno::EINVAL)?;
                let wait = if cmd == FUTEX_WAIT {
                    ns
                } else {
                    // Absolute, on CLOCK_MONOTONIC or (with the flag) REALTIME.
                    let clock = if op & FUTEX_CLOCK_REALTIME != 0 {
                        crate::time::realtime_ns(task)
                    } else {
                        crate::time::monotonic_ns(task)
                    };
                    ns.saturating_sub(clock)
                };
                vfs::deadline_after(std::time::Duration::from_nanos(wait))
            };
            futexes.wait(&mm, addr.0, val, bitset, deadline, &task.interrupt)?;
            Ok(0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE { u32::MAX } else { val3 };
            let key = sentry::futex::key_of(&mm, addr.0)?;
            Ok(futexes.wake(key, val, bitset)? as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // The fourth argument is a count here, not a timeout pointer.
            let n_move = timeout.0.min(i32::MAX as u64) as u32;
            let expect = if cmd == FUTEX_CMP_REQUEUE { Some(val3) } else { None };
            Ok(futexes.requeue(&mm, addr.0, addr2.0, val, n_move, expect)? as u64)
        }
        FUTEX_WAKE_OP => {
            let n2 = timeout.0.min(i32::MAX as u64) as u32;
            Ok(futexes.wake_op(&mm, addr.0, addr2.0, val, n2, val3)? as u64)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// An absolute futex timeout on CLOCK_REALTIME or CLOCK_MONOTONIC as a
/// deadline (None: no timeout).
fn futex_deadline(task: &Task, timeout: UserAddr, realtime: bool) -> Result<Option<std::time::Instant>, Errno> {
    if timeout.is_null() {
        return Ok(None);
    }
    let t: abi::Timespec = task.read_obj(timeout)?;
    let ns = t.to_nanos().ok_or(Errno::EINVAL)?;
    let now = if realtime { crate::time::realtime_ns(task) } else { crate::time::monotonic_ns(task) };
    Ok(vfs::deadline_after(std::time::Duration::from_nanos(ns.saturating_sub(now))))
}

pub fn signalfd4(task: &mut Task, fd: i32, mask: UserAddr, size: u64, flags: u32) -> SysResult {
    use abi::flags::{O_CLOEXEC, O_NONBLOCK, O_RDWR};
    if size != 8 || flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let m: u64 = task.read_obj(mask)?;
    let m = m & !(sigbit(SIGKILL) | sigbit(SIGSTOP));
    if fd != -1 {
        let f = task.file(fd)?;
        let s = f.ops.as_any().downcast_ref::<sentry::signalfd::SignalFd>().ok_or(Errno::EINVAL)?;
        s.mask.store(m, std::sync::atomic::Ordering::Release);
        return Ok(fd as u64);
    }
    let ops: std::sync::Arc<dyn vfs::FileOps> = sentry::signalfd::SignalFd::new(&task.tg, m);
    let f = vfs::OpenFile::new_anon(ops, O_RDWR | (flags & O_NONBLOCK), "anon_inode:[signalfd]".into());
    Ok(task.fds().install(f, flags & O_CLOEXEC != 0, task.tg.nofile())? as u64)
}

pub fn signalfd(task: &mut Task, fd: i32, mask: UserAddr, size: u64) -> SysResult {
    signalfd4(task, fd, mask, size, 0)
}

/// rt_sigqueueinfo / rt_tgsigqueueinfo: a signal with caller-made siginfo.
/// Like Linux, a caller may not forge kernel codes (si_code >= 0) for
/// another process.
fn queue_info(task: &mut Task, tgid: i32, tid: Option<i32>, sig: i32, uinfo: UserAddr) -> SysResult {
    if !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let mut info: abi::SigInfo = task.read_obj(uinfo)?;
    let tg = task.kernel.group(tgid).ok_or(Errno::ESRCH)?;
    if (info.code >= 0 || info.code == SI_TKILL) && tg.tgid != task.tg.tgid {
        return Err(Errno::EPERM);
    }
    if !may_signal(task, &tg, sig) {
        return Err(Errno::EPERM);
    }
    info.signo = sig;
    match tid {
        Some(t) => sentry::signal::send_signal_to_thread(&tg, t, info)?,
        None => sentry::signal::try_send_signal(&tg, info)?,
    }
    Ok(0)
}

pub fn rt_sigqueueinfo(task: &mut Task, pid: i32, sig: i32, uinfo: UserAddr) -> SysResult {
    queue_info(task, pid, None, sig, uinfo)
}

pub fn rt_tgsigqueueinfo(task: &mut Task, tgid: i32, tid: i32, sig: i32, uinfo: UserAddr) -> SysResult {
    queue_info(task, tgid, Some(tid), sig, uinfo)
}
