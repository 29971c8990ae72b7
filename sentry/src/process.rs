//! Process lifecycle: clone (fork and vfork), exit and reparenting, wait.
//!
//! Every task runs on a Sentry thread of its own; a forked child gets a new
//! thread, a new address space (a copy of the parent's) and its own
//! platform context created on that thread.

use crate::kernel::{ExitStatus, JobReport, ThreadGroup};
use crate::locking::lock;
use crate::procfs;
use crate::task::Task;
use abi::signal::{SA_NOCLDWAIT, SIGCHLD, SIGKILL, SIG_IGN};
use abi::Errno;
use std::sync::Arc;
use std::time::Duration;
use vfs::FdTable;

use abi::flags::{CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER};

pub use abi::flags::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_DETACHED, CLONE_FILES, CLONE_FS, CLONE_PARENT, CLONE_PARENT_SETTID,
    CLONE_PTRACE, CLONE_SETTLS, CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD, CLONE_UNTRACED, CLONE_VFORK, CLONE_VM,
};
/// All the CLONE_NEW* namespace flags.
const CLONE_NEW_ANY: u64 = 0x7e02_0000 | 0x0200_0000 | 0x8000_0000;

/// clone(2)'s arguments (clone3's, once checked and reduced to these).
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneArgs {
    /// The clone flags, with the exit signal in the low byte; clone3's
    /// CLONE_CLEAR_SIGHAND is bit 32.
    pub flags: u64,
    pub stack: u64,
    pub ptid: u64,
    pub ctid: u64,
    pub tls: u64,
    /// Where CLONE_PIDFD stores the new pidfd (clone: `ptid`).
    pub pidfd: u64,
}

/// Give the child a pidfd (stored in the parent at `CloneArgs::pidfd`).
pub const CLONE_PIDFD: u64 = 0x1000;
/// clone3 only: the child's handlers reset to SIG_DFL (SIG_IGN kept).
pub const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// Create a child process (fork, vfork, or clone without CLONE_THREAD).
/// CLONE_VM without CLONE_THREAD (vfork, posix_spawn) shares the caller's
/// address space, as on Linux, where the platform makes that cheap
/// (`Platform::vfork_shares_space`: systrap): the child runs on another
/// thread of the same stub, and a shell's vfork+exec makes no copy of its
/// memory and no address space besides the one exec needs. Elsewhere
/// (ptrace) it gets a copy-on-write copy: its writes stay its own, which
/// POSIX allows (a vfork child may only call _exit or exec).
pub fn clone_process(task: &mut Task, a: CloneArgs) -> Result<i32, Errno> {
    let f = a.flags;
    // Linux's copy_process checks, in its order.
    let both = |x: u64, y: u64| f & (x | y) == x | y;
    if both(CLONE_NEWNS, CLONE_FS) || both(CLONE_NEWUSER, CLONE_FS) {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    // Init has no parent to share (SIGNAL_UNKILLABLE).
    if f & CLONE_PARENT != 0 && task.tg.tgid == 1 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_THREAD != 0 && f & (CLONE_NEWUSER | CLONE_NEWPID) != 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_PIDFD != 0 {
        // A pidfd naming one thread (Linux 6.9's PIDFD_THREAD) is not
        // served; a pidfd and CLONE_PARENT_SETTID cannot share a word.
        if f & (CLONE_DETACHED | CLONE_THREAD) != 0 || (f & CLONE_PARENT_SETTID != 0 && a.pidfd == a.ptid) {
            return Err(Errno::EINVAL);
        }
        // Fail before the child exists, as Linux does on a bad pointer
        // (the word is written back unchanged: only its access is tried).
        let at = crate::table::UserAddr(a.pidfd);
        let word: i32 = task.read_obj(at)?;
        task.write_obj(at, &word)?;
    }
    if f & CLONE_THREAD != 0 {
        if f & CLONE_SIGHAND == 0 || f & CLONE_VM == 0 {
            return Err(Errno::EINVAL);
        }
        return clone_thread(task, a);
    }
    if f & CLONE_NEW_ANY != 0 {
        return Err(Errno::EPERM);
    }
    let kernel = task.kernel.clone();
    crate::limits::check_nproc(&kernel, &task.tg)?;
    // The new process's task charge; from ThreadGroup::new on, the
    // process holds it until it is reaped (unregister_group).
    kernel.tasks.charge()?;
    let parent_space = task.mm().space().clone();
    let fp = task.ctx.fp_state(&parent_space).unwrap_or_default();
    let mm = if f & CLONE_VM != 0 && kernel.platform.vfork_shares_space() {
        task.mm().clone()
    } else {
        let space = match kernel.platform.new_address_space() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("clone: new address space: {e}");
                kernel.tasks.uncharge();
                return Err(Errno::EAGAIN);
            }
        };
        let others_run = lock(&task.tg.threads).len() > 1;
        task.mm().fork(space, others_run).inspect_err(|_| kernel.tasks.uncharge())?
    };
    let fds = if f & CLONE_FILES != 0 { task.fds() } else { task.fds().fork() };
    let child = ThreadGroup::new(&kernel, mm, fds, task.fs(), task.creds());
    child
        .oom_score_adj
        .store(task.tg.oom_score_adj.load(std::sync::atomic::Ordering::Relaxed), std::sync::atomic::Ordering::Relaxed);
    let tid = child.tgid;
    *lock(&child.comm) = lock(&task.tg.comm).clone();
    *lock(&child.exe) = lock(&task.tg.exe).clone();
    *lock(&child.exe_hold) = lock(&task.tg.exe_hold).clone();
    *lock(&child.rlimits) = *lock(&task.tg.rlimits);
    *lock(&child.signals) = lock(&task.tg.signals).clone();
    if f & CLONE_CLEAR_SIGHAND != 0 {
        for act in lock(&child.signals).actions.iter_mut() {
            if act.handler != SIG_IGN {
                *act = abi::KSigaction::default();
            }
        }
    }
    *lock(&child.pgid) = *lock(&task.tg.pgid);
    *lock(&child.sid) = *lock(&task.tg.sid);
    // With CLONE_PARENT the child is its parent's sibling and signals the
    // parent as the caller does: Linux takes the caller's own exit
    // signal, not the one in the flags (else any process could make
    // init's child with SIGKILL as its exit signal).
    *lock(&child.exit_signal) = if f & CLONE_PARENT != 0 { *lock(&task.tg.exit_signal) } else { (f & 0xff) as i32 };
    let parent = if f & CLONE_PARENT != 0 {
        kernel.group(*lock(&task.tg.ppid)).unwrap_or(task.tg.clone())
    } else {
        task.tg.clone()
    };
    *lock(&child.ppid) = parent.tgid;
    lock(&parent.children).push(child.clone());

    let child_mm = child.mm().ok_or(Errno::EAGAIN)?;
    if f & CLONE_PIDFD != 0 {
        let file = vfs::OpenFile::new_anon(
            crate::pidfd::PidFd::new(&child),
            abi::flags::O_RDWR,
            "anon_inode:[pidfd]".to_string(),
        );
        match task.fds().install(file, true, task.tg.nofile()) {
            Ok(fd) => task.write_obj(crate::table::UserAddr(a.pidfd), &fd)?,
            Err(e) => {
                // The child never ran: end it as a spawn failure would.
                *lock(&child.exit) = Some(ExitStatus::Signaled { sig: SIGKILL, core: false });
                release_process(&child);
                return Err(e);
            }
        }
    }
    // Linux ignores a bad parent_tid/child_tid (put_user's result is not
    // checked): the child exists by now either way.
    if f & CLONE_PARENT_SETTID != 0 {
        let _ = task.write_obj(crate::table::UserAddr(a.ptid), &tid);
        let _ = child_mm.write_obj(a.ptid, &tid);
    }
    if f & CLONE_CHILD_SETTID != 0 {
        let _ = child_mm.write_obj(a.ctid, &tid);
    }
    let mut regs = task.regs;
    regs.rax = 0;
    if a.stack != 0 {
        regs.rsp = a.stack;
    }
    if f & CLONE_SETTLS != 0 {
        regs.fs_base = a.tls;
    }
    let sigmask = task.sigmask();
    let clear_tid = if f & CLONE_CHILD_CLEARTID != 0 { a.ctid } else { 0 };
    // A forked child keeps the area (its copy of the memory has it); one
    // sharing memory (vfork) registers its own (Linux's rseq_fork).
    let rseq = if f & CLONE_VM == 0 { task.rseq } else { None };
    let sched = lock(&task.shared.sched).inherited();
    let tg = child.clone();
    // clone returns once the child's thread is registered, so calls
    // aimed at the child's tid (sched_*, setpriority) find it at once.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name(format!("task-{tid}")).spawn(move || {
        procfs::set_current_pid(tid);
        let made = Task::new(tg.clone(), tid, sched);
        let _ = ready_tx.send(());
        let mut t = match made {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("task {tid}: no platform context: {e}");
                *lock(&tg.exit) = Some(ExitStatus::Signaled { sig: SIGKILL, core: false });
                release_process(&tg);
                return;
            }
        };
        t.regs = regs;
        t.set_sigmask(sigmask);
        t.clear_child_tid = clear_tid;
        t.rseq = rseq;
        let space = t.mm().space().clone();
        if let Err(e) = t.ctx.set_fp_state(&space, &fp) {
            tracing::warn!("task {tid}: restoring FP state: {e}");
        }
        t.run();
        task_exited(t);
    });
    if let Err(e) = spawned {
        tracing::error!("clone: spawning a Sentry thread: {e}");
        *lock(&child.exit) = Some(ExitStatus::Signaled { sig: SIGKILL, core: false });
        release_process(&child);
        return Err(Errno::EAGAIN);
    }
    let _ = ready_rx.recv();
    if f & CLONE_VFORK != 0 {
        let (m, cv) = &*child.vfork_done;
        // Linux's vfork wait is killable only: D in /proc.
        task.interrupt.set_uninterruptible(true);
        let mut done = lock(m);
        // A parent killed meanwhile (SIGKILL, the memory limit) stops
        // waiting: it has no return to make.
        while !*done && !task.tg.killed.load(std::sync::atomic::Ordering::Acquire) {
            done = cv
                .wait_timeout(done, Duration::from_millis(100))
                .map(|(g, _)| g)
                .unwrap_or_else(|_| crate::locking::poisoned());
        }
        drop(done);
        task.interrupt.set_uninterruptible(false);
    }
    Ok(tid)
}

/// A new thread in the caller's process, sharing its address space,
/// files and signal handlers, on a Sentry thread of its own.
fn clone_thread(task: &mut Task, a: CloneArgs) -> Result<i32, Errno> {
    let kernel = task.kernel.clone();
    crate::limits::check_nproc(&kernel, &task.tg)?;
    // This thread's task charge, given back when it exits (unless it is
    // the process's last, whose charge stays with the zombie).
    kernel.tasks.charge()?;
    let r = spawn_thread(task, a);
    if r.is_err() {
        kernel.tasks.uncharge();
    }
    r
}

fn spawn_thread(task: &mut Task, a: CloneArgs) -> Result<i32, Errno> {
    let f = a.flags;
    let kernel = task.kernel.clone();
    let tid = kernel.alloc_pid();
    let space = task.mm().space().clone();
    let fp = task.ctx.fp_state(&space).unwrap_or_default();
    // A bad address is ignored, as Linux does.
    if f & CLONE_PARENT_SETTID != 0 {
        let _ = task.write_obj(crate::table::UserAddr(a.ptid), &tid);
    }
    if f & CLONE_CHILD_SETTID != 0 {
        let _ = task.write_obj(crate::table::UserAddr(a.ctid), &tid);
    }
    let mut regs = task.regs;
    regs.rax = 0;
    if a.stack != 0 {
        regs.rsp = a.stack;
    }
    if f & CLONE_SETTLS != 0 {
        regs.fs_base = a.tls;
    }
    let sigmask = task.sigmask();
    let clear_tid = if f & CLONE_CHILD_CLEARTID != 0 { a.ctid } else { 0 };
    let sched = lock(&task.shared.sched).inherited();
    let tg = task.tg.clone();
    // The task is registered before clone returns, so a signal or
    // exit_group aimed at the process right away reaches it.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<bool>();
    let spawned = std::thread::Builder::new().name(format!("task-{tid}")).spawn(move || {
        procfs::set_current_thread(tg.tgid, tid);
        let mut t = match Task::new(tg.clone(), tid, sched) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("thread {tid}: no platform context: {e}");
                let _ = ready_tx.send(false);
                return;
            }
        };
        t.regs = regs;
        t.set_sigmask(sigmask);
        t.clear_child_tid = clear_tid;
        // Registered: clone may return. The FP state goes into the stub
        // thread the context takes now, which may have to be made (a
        // control-thread clone and its first trap, 0.3-1 ms); the caller
        // need not wait for that (git's preload threads are made one
        // after another).
        let _ = ready_tx.send(true);
        let space = t.mm().space().clone();
        if let Err(e) = t.ctx.set_fp_state(&space, &fp) {
            tracing::warn!("thread {tid}: restoring FP state: {e}");
        }
        t.run();
        task_exited(t);
    });
    if let Err(e) = spawned {
        tracing::error!("clone: spawning a Sentry thread: {e}");
        return Err(Errno::EAGAIN);
    }
    match ready_rx.recv() {
        Ok(true) => Ok(tid),
        _ => Err(Errno::EAGAIN),
    }
}

/// A task's run loop has ended: wake its CLONE_CHILD_CLEARTID waiter,
/// drop it from its process, and if it was the last thread, end the
/// process with the task's status.
pub fn task_exited(task: Task) {
    let tg = task.tg.clone();
    let kernel = task.kernel.clone();
    // Other processes may wait on robust mutexes in shared memory, so even
    // a killed process releases them.
    task.release_robust_futexes();
    if task.clear_child_tid != 0 && !tg.killed.load(std::sync::atomic::Ordering::Acquire) {
        let mm = task.mm().clone();
        if mm.write_obj(task.clear_child_tid, &0u32).is_ok() {
            if let Ok(key) = crate::futex::key_of(&mm, task.clear_child_tid) {
                let _ = kernel.futexes.wake(key, 1, u32::MAX);
            }
        }
    }
    let status = task.exiting.unwrap_or(ExitStatus::Exited(0));
    let tid = task.tid;
    tg.dead_times.add(task.shared.times.get());
    drop(task);
    kernel.unregister_tid(tid);
    let last = {
        let mut threads = lock(&tg.threads);
        threads.retain(|t| t.tid != tid);
        threads.is_empty()
    };
    if last {
        {
            let mut e = lock(&tg.exit);
            if e.is_none() {
                *e = Some(status);
            }
        }
        release_process(&tg);
    } else {
        kernel.tasks.uncharge();
        kernel.notify_waiters();
    }
}

/// Stop every thread of the process but the caller's (execve), and wait
/// until they are gone.
pub fn kill_other_threads(task: &Task) {
    let others: Vec<_> = lock(&task.tg.threads).iter().filter(|t| t.tid != task.tid).cloned().collect();
    if others.is_empty() {
        return;
    }
    for t in &others {
        t.must_exit.store(true, std::sync::atomic::Ordering::Release);
        t.kick();
    }
    let kernel = task.kernel.clone();
    loop {
        let gen = *lock(&kernel.wait_gen);
        if lock(&task.tg.threads).len() <= 1 {
            return;
        }
        let g = lock(&kernel.wait_gen);
        if *g == gen {
            let _ = kernel.wait_cv.wait_timeout(g, Duration::from_millis(20));
        }
    }
}

/// Free what an exited process holds and make it a zombie for its parent
/// (or reap it at once when the parent ignores SIGCHLD).
pub fn release_process(tg: &Arc<ThreadGroup>) {
    let kernel = tg.kernel.clone();
    tg.release_vfork();
    crate::signal::cancel_timers(tg);
    // Close the files (pipe ends see EOF) and drop the address space.
    let fds = std::mem::replace(&mut *lock(&tg.fds), FdTable::new());
    drop(fds);
    let mm = lock(&tg.mm).take();
    let t_mm = platform::profile::start();
    drop(mm);
    platform::profile::add(platform::profile::Phase::ExitFreeMm, t_mm);
    // Its executable may be written again (Linux: when the mm goes).
    let hold = lock(&tg.exe_hold).take();
    drop(hold);
    // Orphans go to init.
    let orphans = std::mem::take(&mut *lock(&tg.children));
    if tg.tgid == 1 {
        for c in &orphans {
            kill_process(c);
        }
    } else if let Some(init) = kernel.group(1) {
        for c in &orphans {
            *lock(&c.ppid) = 1;
            // "We don't want people slaying init" (Linux's
            // reparent_leader): an orphan tells its new parent with SIGCHLD.
            *lock(&c.exit_signal) = abi::signal::SIGCHLD;
        }
        lock(&init.children).extend(orphans);
    }
    if *lock(&tg.sid) == tg.tgid {
        // A session leader's end gives its terminal up (SIGHUP to the
        // foreground group), as Linux's disassociate_ctty.
        vfs::tty::devpts::session_leader_exited(tg.tgid);
    }
    *lock(&tg.zombie) = true;
    let ppid = *lock(&tg.ppid);
    if let Some(parent) = kernel.group(ppid) {
        let sig = *lock(&tg.exit_signal);
        if sig > 0 {
            let mut info = abi::SigInfo { signo: sig, ..Default::default() };
            let (code, status) = match tg.exit_status() {
                Some(ExitStatus::Signaled { sig, core: true }) => (abi::signal::CLD_DUMPED, sig),
                Some(ExitStatus::Signaled { sig, core: false }) => (abi::signal::CLD_KILLED, sig),
                Some(ExitStatus::Exited(c)) => (abi::signal::CLD_EXITED, c),
                None => (abi::signal::CLD_EXITED, 0),
            };
            info.code = code;
            info.fields[0] = tg.tgid as u32 as u64;
            info.fields[1] = status as u32 as u64;
            crate::signal::send_signal(&parent, info);
        }
        let act = lock(&parent.signals).actions[(SIGCHLD - 1) as usize];
        if act.handler == SIG_IGN || act.flags & SA_NOCLDWAIT != 0 {
            lock(&parent.children).retain(|c| c.tgid != tg.tgid);
            kernel.unregister_group(tg.tgid);
        }
    } else {
        kernel.unregister_group(tg.tgid);
    }
    kernel.notify_waiters();
    crate::pidfd::process_changed();
}

/// End a process from outside (SIGKILL).
pub fn kill_process(tg: &Arc<ThreadGroup>) {
    let mut e = lock(&tg.exit);
    if e.is_none() {
        *e = Some(ExitStatus::Signaled { sig: SIGKILL, core: false });
    }
    drop(e);
    tg.killed.store(true, std::sync::atomic::Ordering::Release);
    tg.kick_all();
    // Stopped threads wake up to die.
    drop(lock(&tg.jobctl));
    tg.jobctl_cv.notify_all();
}

/// Which children a wait call is about.
#[derive(Clone, Copy, Debug)]
pub enum WaitFor {
    Any,
    Pid(i32),
    Pgid(i32),
}

// WSTOPPED is WUNTRACED to wait4.
pub use abi::flags::{WCONTINUED, WEXITED, WNOHANG, WNOWAIT, WSTOPPED};

/// A child's pid, what happened to it, and its CPU time (user, system ns).
pub type Waited = (i32, WaitEvent, (u64, u64));

/// What a wait call reports about a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEvent {
    Exited(ExitStatus),
    Stopped(i32),
    Continued,
}

impl WaitEvent {
    /// The wait(2) status word.
    pub fn wait_status(self) -> i32 {
        match self {
            WaitEvent::Exited(s) => s.wait_status(),
            WaitEvent::Stopped(sig) => 0x7f | (sig << 8),
            WaitEvent::Continued => 0xffff,
        }
    }
}

/// Wait for a child to change state as `options` asks (WEXITED, WSTOPPED,
/// WCONTINUED; WNOHANG, WNOWAIT). Returns None when WNOHANG and nothing
/// has happened.
/// Also returns the child's CPU time (its own and its waited-for children's)
/// for the rusage of wait4/waitid.
pub fn wait_child(task: &Task, which: WaitFor, options: u32) -> Result<Option<Waited>, Errno> {
    let kernel = task.kernel.clone();
    loop {
        let gen = *lock(&kernel.wait_gen);
        {
            let mut children = lock(&task.tg.children);
            let matches = |c: &Arc<ThreadGroup>| match which {
                WaitFor::Any => true,
                WaitFor::Pid(p) => c.tgid == p,
                WaitFor::Pgid(g) => *lock(&c.pgid) == g,
            };
            if !children.iter().any(matches) {
                return Err(Errno::ECHILD);
            }
            for i in 0..children.len() {
                let c = children[i].clone();
                if !matches(&c) {
                    continue;
                }
                let (own, theirs) = (c.cpu_times(), c.children_times.get());
                let times = (own.0 + theirs.0, own.1 + theirs.1);
                if options & WEXITED != 0 && *lock(&c.zombie) {
                    let status = c.exit_status().unwrap_or(ExitStatus::Exited(0));
                    if options & WNOWAIT == 0 {
                        children.remove(i);
                        kernel.unregister_group(c.tgid);
                        task.tg.children_times.add(times);
                        drop(children);
                        // Its pidfds now read as reaped (POLLHUP).
                        crate::pidfd::process_changed();
                    }
                    return Ok(Some((c.tgid, WaitEvent::Exited(status), times)));
                }
                let mut j = lock(&c.jobctl);
                let ev = match j.report {
                    Some(JobReport::Stopped(sig)) if options & WSTOPPED != 0 => WaitEvent::Stopped(sig),
                    Some(JobReport::Continued) if options & WCONTINUED != 0 => WaitEvent::Continued,
                    _ => continue,
                };
                if options & WNOWAIT == 0 {
                    j.report = None;
                }
                return Ok(Some((c.tgid, ev, times)));
            }
        }
        if options & WNOHANG != 0 {
            return Ok(None);
        }
        // A signal wakes the wait at once (the waker bumps the generation).
        let k = kernel.clone();
        let waker: Arc<dyn Fn() + Send + Sync> = Arc::new(move || k.notify_waiters());
        let interrupted = task.interrupt.with_waker(waker, || {
            let g = lock(&kernel.wait_gen);
            if task.interrupt.is_pending() {
                return true;
            }
            if *g == gen {
                let _ = kernel.wait_cv.wait_timeout(g, Duration::from_millis(500));
            }
            task.interrupt.is_pending()
        });
        if interrupted {
            return Err(Errno::ERESTARTSYS);
        }
    }
}
