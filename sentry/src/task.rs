//! A task (guest thread) and its run loop: switch into the guest, serve
//! what comes out, repeat.

use crate::kernel::{ExitStatus, FsContext, Kernel, ThreadGroup, ThreadShared};
use crate::locking::lock;
use crate::mm::{FaultOutcome, MemoryManager};
use crate::table::UserAddr;
use abi::flags::{AT_FDCWD, PATH_MAX};
use abi::signal;
use abi::Errno;
use platform::{Context, Exit, Regs};
use std::sync::Arc;
use vfs::{Creds, DentryRef, FdTable, Follow, Interrupt, OpenFile};

/// One guest thread, owned by the Sentry thread that runs it.
pub struct Task {
    pub tid: i32,
    pub tg: Arc<ThreadGroup>,
    pub kernel: Arc<Kernel>,
    pub regs: Regs,
    pub ctx: Box<dyn Context>,
    pub interrupt: Arc<Interrupt>,
    /// The mask to restore after a handler that interrupted
    /// rt_sigsuspend/ppoll (they run with a temporary mask).
    pub saved_sigmask: Option<u64>,
    /// The alternate signal stack (sigaltstack).
    pub altstack: abi::StackT,
    pub clear_child_tid: u64,
    /// The registered restartable-sequence area (sentry/src/rseq.rs).
    pub rseq: Option<crate::rseq::RseqArea>,
    /// Set by exit/exit_group/fatal signals: the run loop stops.
    pub exiting: Option<ExitStatus>,
    /// What other Sentry threads see of this task (mask, signals, wake-ups).
    pub shared: Arc<ThreadShared>,
    /// The task's MemoryManager (the thread group's, cached so the hot path
    /// takes no lock).
    mm: Arc<MemoryManager>,
}

impl Task {
    /// A task for thread `tid` of `tg`, starting with the scheduling
    /// attributes its creator passes on (set before anyone can see it).
    pub fn new(
        tg: Arc<ThreadGroup>,
        tid: i32,
        sched: crate::sched::SchedParams,
    ) -> Result<Task, platform::PlatformError> {
        let kernel = tg.kernel.clone();
        let ctx = kernel.platform.new_context()?;
        let mm = tg.mm().ok_or_else(|| platform::PlatformError::StubDied("process has exited".into()))?;
        let interrupt = Interrupt::new();
        if let Some(hint) = ctx.block_hint() {
            interrupt.set_block_hook(hint);
        }
        let shared = Arc::new(ThreadShared {
            tid,
            sigmask: std::sync::atomic::AtomicU64::new(0),
            pending: Default::default(),
            interrupt: interrupt.clone(),
            kicker: ctx.interrupter(),
            must_exit: std::sync::atomic::AtomicBool::new(false),
            times: Default::default(),
            robust_list: Default::default(),
            sched: std::sync::Mutex::new(sched),
        });
        lock(&tg.threads).push(shared.clone());
        kernel.register_tid(tid, &tg);
        Ok(Task {
            tid,
            tg,
            kernel,
            regs: Regs::default(),
            ctx,
            interrupt,
            saved_sigmask: None,
            altstack: abi::StackT { ss_sp: 0, ss_flags: 2, pad: 0, ss_size: 0 },
            clear_child_tid: 0,
            rseq: None,
            exiting: None,
            shared,
            mm,
        })
    }

    pub fn mm(&self) -> &Arc<MemoryManager> {
        &self.mm
    }

    /// Switch the task (and its process) to a new address space (execve).
    pub fn set_mm(&mut self, mm: Arc<MemoryManager>) {
        *lock(&self.tg.mm) = Some(mm.clone());
        self.mm = mm;
    }

    pub fn fds(&self) -> Arc<FdTable> {
        self.tg.fds()
    }

    pub fn creds(&self) -> Creds {
        self.tg.creds()
    }

    pub fn fs(&self) -> FsContext {
        self.tg.fs()
    }

    pub fn file(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        self.tg.fds().get(fd)
    }

    pub fn copy_in(&self, addr: UserAddr, dst: &mut [u8]) -> Result<(), Errno> {
        self.mm.copy_in(addr.0, dst)
    }

    pub fn copy_out(&self, addr: UserAddr, src: &[u8]) -> Result<(), Errno> {
        self.mm.copy_out(addr.0, src)
    }

    pub fn read_obj<T: abi::Pod>(&self, addr: UserAddr) -> Result<T, Errno> {
        self.mm.read_obj(addr.0)
    }

    pub fn write_obj<T: abi::Pod>(&self, addr: UserAddr, v: &T) -> Result<(), Errno> {
        self.mm.write_obj(addr.0, v)
    }

    /// A path argument: NUL-terminated, below PATH_MAX.
    pub fn read_path(&self, addr: UserAddr) -> Result<Vec<u8>, Errno> {
        self.mm.read_cstr(addr.0, PATH_MAX)
    }

    /// The starting directory for a *at() call.
    pub fn dir_for(&self, dirfd: i32, path: &[u8]) -> Result<DentryRef, Errno> {
        let fs = self.fs();
        if path.first() == Some(&b'/') || dirfd == AT_FDCWD {
            return Ok(fs.cwd);
        }
        let f = self.file(dirfd)?;
        let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
        if !d.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(d)
    }

    /// Resolve `path` relative to `dirfd` as the *at() calls do.
    pub fn resolve_at(&self, dirfd: i32, path: &[u8], follow: Follow) -> Result<DentryRef, Errno> {
        let start = self.dir_for(dirfd, path)?;
        let fs = self.fs();
        self.kernel.mounts.resolve(&fs.root, &start, path, follow, &self.creds())
    }

    /// Resolve a path relative to the working directory.
    pub fn resolve(&self, path: &[u8], follow: Follow) -> Result<DentryRef, Errno> {
        self.resolve_at(AT_FDCWD, path, follow)
    }

    /// The parent directory and final name of `path` (for create, unlink...).
    pub fn resolve_parent_at(&self, dirfd: i32, path: &[u8]) -> Result<(DentryRef, Option<Vec<u8>>), Errno> {
        let start = self.dir_for(dirfd, path)?;
        let fs = self.fs();
        self.kernel.mounts.resolve_parent(&fs.root, &start, path, &self.creds())
    }

    /// An I/O context for a file operation by this task.
    pub fn io_ctx<'a>(&'a self, file: &OpenFile) -> vfs::IoCtx<'a> {
        vfs::IoCtx { flags: file.flags(), interrupt: &self.interrupt }
    }

    /// End the whole process with `status` (exit_group, fatal signal).
    pub fn exit_group(&mut self, status: ExitStatus) {
        crate::signal::kill_with(&self.tg, status);
        self.exiting = Some(self.tg.exit_status().unwrap_or(status));
    }

    /// End only this thread (exit(2)); the process lives on while other
    /// threads do, and takes `status` if this was the last one.
    pub fn exit_thread(&mut self, status: ExitStatus) {
        self.exiting = Some(status);
    }

    /// Release the robust futexes this thread holds (exit, execve).
    pub fn release_robust_futexes(&self) {
        let head = self.shared.robust_list.swap(0, std::sync::atomic::Ordering::AcqRel);
        crate::futex::release_robust_list(&self.kernel.futexes, &self.mm, self.tid, head);
        self.kernel.futexes.pi_owner_exited(self.tid);
    }

    /// Run the guest until the process exits.
    pub fn run(&mut self) -> ExitStatus {
        let table = self.kernel.table.clone();
        let strace = self.kernel.strace;
        // The last fault retried without a change (address, rip).
        let mut retried: Option<(u64, u64)> = None;
        // The clock read that ended the last syscall's accounting starts
        // the next switch's (reads are cheap, `platform::clock`, but not
        // free); taken, so a loop that went round another way reads
        // afresh.
        let mut last_read: Option<platform::clock::Stamp> = None;
        loop {
            if self.exiting.is_none() {
                if self.tg.killed.load(std::sync::atomic::Ordering::Acquire) {
                    self.exiting = Some(
                        self.tg.exit_status().unwrap_or(ExitStatus::Signaled { sig: signal::SIGKILL, core: false }),
                    );
                } else if self.shared.must_exit.load(std::sync::atomic::Ordering::Acquire) {
                    self.exiting = Some(ExitStatus::Exited(0));
                }
            }
            if let Some(s) = self.exiting {
                return s;
            }
            if self.tg.is_stopped() {
                self.park_while_stopped();
                continue;
            }
            if self.kernel.freeze.is_frozen() {
                let tg = self.tg.clone();
                self.kernel.freeze.park(&|| tg.killed.load(std::sync::atomic::Ordering::Acquire));
                continue;
            }
            // Time in switch includes waiting for a CPU, which a loaded host
            // makes long; CPU-time timers must not fire on it, so while one
            // is armed the host thread's real CPU time bounds the charge.
            // (The ticker flag is up whenever one is armed: no lock on the
            // common path.)
            let timers_armed = self.tg.cpu_ticker.load(std::sync::atomic::Ordering::Acquire)
                && lock(&self.tg.cpu_timers).iter().any(|t| t.left != 0);
            let cpu_before = if timers_armed { self.ctx.cpu_time() } else { None };
            let entered = last_read.take().unwrap_or_else(platform::clock::now);
            let t = platform::profile::start();
            let exit = self.ctx.switch(self.mm.space(), &mut self.regs);
            platform::profile::add(platform::profile::Phase::GuestSwitch, t);
            let left = platform::clock::now();
            let sentry_cpu = if timers_armed { platform::current_thread_cpu_time() } else { None };
            let mut spent = left.saturating_duration_since(entered);
            if let (Some(a), Some(b)) = (cpu_before, cpu_before.and_then(|_| self.ctx.cpu_time())) {
                spent = spent.min(b.saturating_sub(a));
            }
            self.account_user(spent, timers_armed);
            let exit = match exit {
                Ok(e) => e,
                Err(e) => {
                    if crate::failure::failing() {
                        // Its stub was killed by the failure policy.
                        crate::failure::wait_for_end();
                    }
                    tracing::error!("task {}: platform failure: {e}", self.tid);
                    self.exit_group(ExitStatus::Signaled { sig: signal::SIGKILL, core: false });
                    continue;
                }
            };
            if !matches!(exit, Exit::Fault { .. }) {
                retried = None;
            }
            match exit {
                Exit::Syscall => {
                    let nr = self.regs.orig_rax;
                    // Only the number and arguments may be here yet (see
                    // `Context::switch`); most calls need no more.
                    if strace || !args_only(nr) {
                        self.ctx.complete_regs(&mut self.regs);
                    }
                    // A hot trapped site the platform can enter faster
                    // (a trapped one: its registers are all here).
                    if self.ctx.patch_hot(self.mm.space(), self.regs.rip) {
                        if let Some(site) = self.mm.classify_syscall_site(self.regs.rip, nr) {
                            if let Some(target) = self.ctx.patch_slot(self.regs.rip, site) {
                                self.mm.patch_syscall_site(self.regs.rip, nr, site, target);
                            }
                        }
                    }
                    if !answers_soon(nr) {
                        self.ctx.answer_later();
                    }
                    let args = self.regs.syscall_args();
                    let desc = if strace { Some(table.describe_call(self, nr, &args)) } else { None };
                    let t = platform::profile::start();
                    let r = table.dispatch(self, nr, &args);
                    platform::profile::add_syscall(nr, t);
                    if let Some(d) = desc {
                        log_strace(self.tid, nr, &d, &r);
                    }
                    // execve success replaces the registers; leave them.
                    if !(r.is_ok() && nr as usize == abi::sysno::EXECVE) {
                        self.regs.rax = match r {
                            Ok(v) => v,
                            Err(e) => (-(e.0 as i64)) as u64,
                        };
                    }
                    let restart = match r {
                        Err(e) if (512..=516).contains(&e.0) => Some(e),
                        _ => None,
                    };
                    if restart.is_some() || self.deliverable() != 0 {
                        self.ctx.complete_regs(&mut self.regs);
                        self.handle_signals(restart);
                    }
                }
                Exit::Fault { addr, access, signo, code } => {
                    let t = platform::profile::start();
                    let outcome = self.mm.handle_fault(addr, access);
                    platform::profile::add(platform::profile::Phase::PageFault, t);
                    match outcome {
                        FaultOutcome::Fixed => {
                            retried = None;
                            continue;
                        }
                        // Once: a fault that keeps coming back is real.
                        FaultOutcome::Retry if retried != Some((addr, self.regs.rip)) => {
                            retried = Some((addr, self.regs.rip));
                            continue;
                        }
                        _ => retried = None,
                    }
                    tracing::debug!(
                        "task {}: fault at {addr:#x} (rip {:#x}): {}",
                        self.tid,
                        self.regs.rip,
                        signal::name(signo)
                    );
                    let past_eof = self.mm.vma_at(addr).is_some_and(|v| v.past_eof);
                    let (signo, code) = if past_eof { (signal::SIGBUS, signal::BUS_ADRERR) } else { (signo, code) };
                    let mut info = abi::SigInfo { signo, code, ..Default::default() };
                    info.fields[0] = addr;
                    self.deliver_fault(info);
                }
                Exit::Signal(info) => {
                    tracing::debug!("task {}: {} at rip {:#x}", self.tid, signal::name(info.signo), self.regs.rip);
                    self.deliver_fault(*info);
                }
                Exit::Interrupted => {
                    // Taken out of guest code: a preemption for rseq.
                    if self.rseq_preempted().is_err() {
                        self.force_sigsegv();
                    }
                    self.handle_signals(None)
                }
            }
            let blocked = self.interrupt.take_blocked_ns();
            let done = platform::clock::now();
            last_read = Some(done);
            let mut served = (done.saturating_duration_since(left).as_nanos() as u64).saturating_sub(blocked);
            // (Read only when armed: /proc is a slow read for every syscall.)
            if let Some(a) = sentry_cpu {
                if let Some(b) = platform::current_thread_cpu_time() {
                    served = served.min(b.saturating_sub(a).as_nanos() as u64);
                }
            }
            self.shared.times.add_own_sys(served);
            if served > 0 && timers_armed {
                self.charge_cpu_timers(0, served);
            }
        }
    }

    /// Count time spent running guest code.
    fn account_user(&mut self, d: std::time::Duration, timers_armed: bool) {
        let ns = d.as_nanos() as u64;
        self.shared.times.add_own_user(ns);
        if timers_armed {
            self.charge_cpu_timers(ns, 0);
        }
    }

    /// Run down ITIMER_VIRTUAL (user time) and ITIMER_PROF (both), and
    /// signal the process when one expires.
    fn charge_cpu_timers(&mut self, user: u64, sys: u64) {
        let mut fired = [false; 2];
        {
            let mut t = lock(&self.tg.cpu_timers);
            if t[0].left == 0 && t[1].left == 0 {
                return;
            }
            for (i, spent) in [(0, user), (1, user + sys)] {
                let timer = &mut t[i];
                if timer.left == 0 || spent == 0 {
                    continue;
                }
                if spent >= timer.left {
                    fired[i] = true;
                    timer.left = timer.interval;
                } else {
                    timer.left -= spent;
                }
            }
        }
        for (i, sig) in [(0, signal::SIGVTALRM), (1, signal::SIGPROF)] {
            if fired[i] {
                let info = abi::SigInfo { signo: sig, code: signal::SI_KERNEL, ..Default::default() };
                crate::signal::send_signal(&self.tg, info);
            }
        }
    }
}

impl Task {
    /// Sit out a group stop: until SIGCONT, or the process is killed.
    fn park_while_stopped(&mut self) {
        let mut j = lock(&self.tg.jobctl);
        while j.stopped && !self.tg.killed.load(std::sync::atomic::Ordering::Acquire) {
            // The timeout only bounds a missed notification.
            j = self
                .tg
                .jobctl_cv
                .wait_timeout(j, std::time::Duration::from_millis(100))
                .map(|(g, _)| g)
                .unwrap_or_else(|_| crate::locking::poisoned());
        }
        drop(j);
        // Signals that arrived while stopped are delivered now.
        if self.deliverable() != 0 {
            self.handle_signals(None);
        }
    }
}

fn log_strace(tid: i32, nr: u64, call: &str, r: &Result<u64, Errno>) {
    let nr = usize::try_from(nr).unwrap_or(usize::MAX);
    // rt_sigreturn "returns" the interrupted call's result, errors included.
    let r = match *r {
        Ok(v) if nr == abi::sysno::RT_SIGRETURN && (-4095..0).contains(&(v as i64)) => Err(Errno(-(v as i64) as i32)),
        other => other,
    };
    match r {
        // These never return to the caller; strace prints "?".
        _ if nr == abi::sysno::EXIT || nr == abi::sysno::EXIT_GROUP => {
            tracing::info!(target: "strace", "[{tid}] {call} = ?")
        }
        Err(e) if (512..=516).contains(&e.0) => {
            tracing::info!(target: "strace", "[{tid}] {call} = ? {e} ({})", e.text())
        }
        Ok(v) if v > 0xffff_ffff => tracing::info!(target: "strace", "[{tid}] {call} = {v:#x}"),
        Ok(v) => tracing::info!(target: "strace", "[{tid}] {call} = {v}"),
        Err(e) => tracing::info!(target: "strace", "[{tid}] {call} = -1 {e} ({})", e.text()),
    }
}

/// What a signal does when nobody handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    Core,
    Ignore,
    /// Stop the whole process until SIGCONT.
    Stop,
}

pub fn default_action(sig: i32) -> DefaultAction {
    use signal::*;
    match sig {
        SIGCHLD | SIGCONT | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ | SIGSYS => {
            DefaultAction::Core
        }
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// Whether syscall `nr` is usually answered within tens of microseconds
/// or else blocks (which the block hint reports when it happens): the
/// guest thread may poll for the answer that long. Not so for process
/// creation, exec and exit (the new process or the parent needs the CPU
/// the poll would keep), for sleeps (they always wait, and may not go
/// through the block hint), for sched_yield (it is there to let others
/// run) and for syncs (host disk writes). Waits that may end at once
/// (futex, wait4 with WNOHANG, polls with a zero timeout) stay: when they
/// do block, the block hint says so.
/// Syscalls whose handlers use no register but their number and
/// arguments (and set only the result): served from the part of the
/// registers a platform reports first (`Context::switch`). Whatever else
/// follows them (a signal to deliver, a restart) completes the registers
/// in `run`. Anything that reads or writes the guest's registers (clone,
/// fork, execve, rt_sigreturn, sigaltstack, arch_prctl, ...) stays off
/// this list.
fn args_only(nr: u64) -> bool {
    use abi::sysno::*;
    matches!(
        nr as usize,
        READ | WRITE
            | OPEN
            | CLOSE
            | STAT
            | FSTAT
            | LSTAT
            | POLL
            | LSEEK
            | MMAP
            | MPROTECT
            | MUNMAP
            | BRK
            | RT_SIGACTION
            | RT_SIGPROCMASK
            | IOCTL
            | PREAD64
            | PWRITE64
            | READV
            | WRITEV
            | ACCESS
            | PIPE
            | SELECT
            | MREMAP
            | MADVISE
            | DUP
            | DUP2
            | GETPID
            | SENDTO
            | RECVFROM
            | SENDMSG
            | RECVMSG
            | FCNTL
            | FLOCK
            | FTRUNCATE
            | GETDENTS
            | GETCWD
            | CHDIR
            | FCHDIR
            | RENAME
            | MKDIR
            | RMDIR
            | UNLINK
            | READLINK
            | CHMOD
            | FCHMOD
            | UMASK
            | GETTIMEOFDAY
            | GETRLIMIT
            | GETRUSAGE
            | GETUID
            | GETGID
            | GETEUID
            | GETEGID
            | GETPPID
            | GETPGRP
            | GETTID
            | FUTEX
            | GETDENTS64
            | CLOCK_GETTIME
            | EPOLL_WAIT
            | EPOLL_CTL
            | OPENAT
            | NEWFSTATAT
            | UNLINKAT
            | READLINKAT
            | FACCESSAT
            | PPOLL
            | EPOLL_PWAIT
            | PIPE2
            | DUP3
            | PRLIMIT64
            | GETRANDOM
            | STATX
    )
}

fn answers_soon(nr: u64) -> bool {
    use abi::sysno::*;
    !matches!(
        nr as usize,
        CLONE
            | CLONE3
            | FORK
            | VFORK
            | EXECVE
            | EXECVEAT
            | EXIT
            | EXIT_GROUP
            | NANOSLEEP
            | CLOCK_NANOSLEEP
            | PAUSE
            | RT_SIGSUSPEND
            | RT_SIGTIMEDWAIT
            | SCHED_YIELD
            | MSYNC
            | FSYNC
            | FDATASYNC
            | SYNC
            | SYNCFS
    )
}
