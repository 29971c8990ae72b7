//! The Kernel (sandbox-wide state) and the ThreadGroup (a process).

use crate::memfile::MemoryFile;
use crate::mm::MemoryManager;
use crate::table::SyscallTable;
use abi::{Errno, Rlimit};
use platform::Platform;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::Instant;
use vfs::{Creds, DentryRef, FdTable, MountNamespace};

// The lock helper lives in crate::locking (with the lock order); this
// re-export keeps `kernel::lock` imports working.
pub use crate::locking::lock;

/// The sandbox's UTS names.
#[derive(Clone, Debug)]
pub struct Uts {
    pub hostname: String,
    pub domainname: String,
}

/// Sandbox-wide state. Locking: every `Mutex` field protects its own
/// value (crate::locking has the order); the notes say what spans fields.
pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    pub memfile: Arc<MemoryFile>,
    pub table: Arc<SyscallTable>,
    pub mounts: Arc<MountNamespace>,
    pub uts: RwLock<Uts>,
    pub boot: Instant,
    pub strace: bool,
    pids: Mutex<PidTable>,
    /// Bumped and notified whenever a process changes state (exits), so
    /// that wait4 callers re-check their children. Protects no state of
    /// its own: a waiter reads it, checks the state under that state's
    /// locks, and sleeps only if it has not moved, so no wake-up is lost.
    pub wait_gen: Mutex<u64>,
    pub wait_cv: Condvar,
    /// Thread id -> its process, for tkill/tgkill and /proc/[pid]/task.
    tids: Mutex<BTreeMap<i32, Weak<ThreadGroup>>>,
    pub futexes: crate::futex::FutexTable,
    pub file_cache: crate::filecache::FileCache,
    /// The pages of MAP_SHARED file mappings, by file.
    pub shared_files: crate::sharedfile::SharedFiles,
    /// The sandbox's clocks and the vDSO (None if its pages could not be
    /// allocated: then the host clocks are read and no vDSO is mapped).
    pub clock: Option<Arc<crate::vdso::Clock>>,
    /// The sandbox's sockets and interfaces.
    pub net: Arc<netstack::Netstack>,
    /// The limits the sandbox was started with (set once at boot).
    pub limits: std::sync::OnceLock<crate::limits::Limits>,
    /// Tasks alive or not yet reaped, against the pids limit.
    pub tasks: crate::limits::TaskCount,
    /// Real-time signals queued, per real uid of the receiver
    /// (RLIMIT_SIGPENDING).
    pub sigpending: Arc<SigPending>,
    /// The sandbox's one timer thread (ITIMER_REAL of every process).
    pub timers: crate::timers::Timers,
    /// The executables processes are running (writes to them: ETXTBSY).
    pub running_exes: Arc<crate::textbusy::RunningExes>,
    /// The OCI pause/resume state of the whole sandbox.
    pub freeze: crate::freeze::Freeze,
}

struct PidTable {
    next: i32,
    groups: BTreeMap<i32, Weak<ThreadGroup>>,
}

impl Kernel {
    pub fn new(
        platform: Arc<dyn Platform>,
        memfile: Arc<MemoryFile>,
        table: Arc<SyscallTable>,
        mounts: Arc<MountNamespace>,
        hostname: &str,
        strace: bool,
    ) -> Arc<Kernel> {
        let boot = Instant::now();
        let clock = crate::vdso::Clock::new(&memfile, boot).map_err(|e| tracing::warn!("no vDSO: {e}")).ok();
        Arc::new(Kernel {
            platform,
            memfile,
            table,
            mounts,
            uts: RwLock::new(Uts { hostname: hostname.to_string(), domainname: "(none)".to_string() }),
            boot,
            strace,
            pids: Mutex::new(PidTable { next: 1, groups: BTreeMap::new() }),
            wait_gen: Mutex::new(0),
            wait_cv: Condvar::new(),
            tids: Mutex::new(BTreeMap::new()),
            futexes: crate::futex::FutexTable::default(),
            file_cache: crate::filecache::FileCache::default(),
            shared_files: crate::sharedfile::SharedFiles::default(),
            running_exes: Default::default(),
            freeze: Default::default(),
            clock,
            net: netstack::Netstack::new(),
            limits: std::sync::OnceLock::new(),
            tasks: crate::limits::TaskCount::new(),
            sigpending: Arc::new(SigPending::default()),
            timers: crate::timers::Timers::default(),
        })
    }

    /// Apply the sandbox's limits (boot, before the first process starts).
    pub fn set_limits(self: &Arc<Self>, limits: crate::limits::Limits) {
        self.tasks.set_max(limits.pids);
        vfs::limits::set_memory_limit(limits.memory);
        if let Some(m) = limits.memory {
            crate::limits::start_memory_monitor(self, m);
        }
        let _ = self.limits.set(limits);
    }

    pub fn register_tid(&self, tid: i32, tg: &Arc<ThreadGroup>) {
        lock(&self.tids).insert(tid, Arc::downgrade(tg));
    }

    pub fn unregister_tid(&self, tid: i32) {
        lock(&self.tids).remove(&tid);
    }

    /// The process a live thread id belongs to.
    pub fn group_of_tid(&self, tid: i32) -> Option<Arc<ThreadGroup>> {
        lock(&self.tids).get(&tid).and_then(|w| w.upgrade())
    }

    /// Wake everyone waiting for a child's state change.
    pub fn notify_waiters(&self) {
        *lock(&self.wait_gen) += 1;
        self.wait_cv.notify_all();
    }

    /// A fresh pid/tid.
    pub fn alloc_pid(&self) -> i32 {
        let mut p = lock(&self.pids);
        let pid = p.next;
        p.next = if p.next >= 4_194_303 { 2 } else { p.next + 1 };
        pid
    }

    pub fn register_group(&self, tg: &Arc<ThreadGroup>) {
        lock(&self.pids).groups.insert(tg.tgid, Arc::downgrade(tg));
    }

    /// Forget a reaped process; its task charge goes with it.
    pub fn unregister_group(&self, tgid: i32) {
        if lock(&self.pids).groups.remove(&tgid).is_some() {
            self.tasks.uncharge();
        }
    }

    /// The live process with this pid.
    pub fn group(&self, pid: i32) -> Option<Arc<ThreadGroup>> {
        lock(&self.pids).groups.get(&pid).and_then(|w| w.upgrade())
    }

    /// Every live process, by pid.
    pub fn groups(&self) -> Vec<Arc<ThreadGroup>> {
        lock(&self.pids).groups.values().filter_map(|w| w.upgrade()).collect()
    }

    pub fn uptime_ns(&self) -> u64 {
        self.boot.elapsed().as_nanos() as u64
    }

    /// The sandbox's CLOCK_MONOTONIC (one second at boot, like a fresh
    /// machine's), as the vDSO reads it.
    pub fn monotonic_ns(&self) -> u64 {
        match &self.clock {
            Some(c) => c.monotonic_ns(),
            None => self.uptime_ns() + 1_000_000_000,
        }
    }

    /// CLOCK_REALTIME, as the vDSO reads it.
    pub fn realtime_ns(&self) -> u64 {
        match &self.clock {
            Some(c) => c.realtime_ns(),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        }
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled { sig: i32, core: bool },
}

impl ExitStatus {
    /// The wait(2) status word.
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => (c & 0xff) << 8,
            ExitStatus::Signaled { sig, core } => sig | if core { 0x80 } else { 0 },
        }
    }

    /// What a shell reports: the code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c & 0xff,
            ExitStatus::Signaled { sig, .. } => 128 + sig,
        }
    }
}

/// Root, working directory and umask.
#[derive(Clone)]
pub struct FsContext {
    pub root: DentryRef,
    pub cwd: DentryRef,
    pub umask: u32,
}

/// Per-process signal dispositions.
#[derive(Clone)]
pub struct SignalActions {
    pub actions: [abi::KSigaction; 64],
}

impl Default for SignalActions {
    fn default() -> Self {
        SignalActions { actions: [abi::KSigaction::default(); 64] }
    }
}

/// A process: what its threads share. Locking: each `Mutex` field protects
/// its own value (crate::locking has the order); notes on the fields say
/// what spans several.
pub struct ThreadGroup {
    pub tgid: i32,
    pub kernel: Arc<Kernel>,
    /// None once the process has exited (its memory is released): taken
    /// under the lock by release_process, after `exit` is set.
    pub mm: Mutex<Option<Arc<MemoryManager>>>,
    pub fds: Mutex<Arc<FdTable>>,
    pub fs: Mutex<FsContext>,
    pub creds: Mutex<Creds>,
    /// The command name (comm), at most 15 bytes.
    pub comm: Mutex<Vec<u8>>,
    pub exe: Mutex<Option<DentryRef>>,
    /// Keeps `exe` from being written while this process runs it.
    pub exe_hold: Mutex<Option<crate::textbusy::ExeHold>>,
    pub rlimits: Mutex<[Rlimit; 16]>,
    pub signals: Mutex<SignalActions>,
    pub ppid: Mutex<i32>,
    pub pgid: Mutex<i32>,
    pub sid: Mutex<i32>,
    /// Set once (the first status wins), before `killed` is raised and
    /// before `zombie`.
    pub exit: Mutex<Option<ExitStatus>>,
    pub start: Instant,
    /// Live and zombie children, until reaped. A child's `ppid` changes
    /// with the list it is on (reparenting), taken after this lock.
    pub children: Mutex<Vec<Arc<ThreadGroup>>>,
    /// Signal sent to the parent on exit (SIGCHLD normally).
    pub exit_signal: Mutex<i32>,
    /// /proc/[pid]/oom_score_adj: kept and inherited, never acted on
    /// (the sandbox's memory limit has its own policy).
    pub oom_score_adj: std::sync::atomic::AtomicI32,
    /// Set when the process has exited and released its resources: it is
    /// a zombie that only a wait call removes. Set after `exit`, then
    /// `Kernel::wait_gen` is bumped.
    pub zombie: Mutex<bool>,
    /// For vfork: the parent waits until this becomes true (exec or exit).
    pub vfork_done: Arc<(Mutex<bool>, Condvar)>,
    /// The live threads. The thread that empties it runs release_process.
    pub threads: Mutex<Vec<Arc<ThreadShared>>>,
    /// Set when the whole process must end (exit_group, a fatal signal);
    /// every thread stops at its next chance. Raised (Release) after
    /// `exit` is set; read (Acquire) by every run loop without a lock.
    pub killed: std::sync::atomic::AtomicBool,
    /// Process-directed pending signals: a bit per signal for a cheap
    /// check on the hot path, and their siginfo behind the lock.
    pub pending: SignalQueue,
    /// ITIMER_REAL: when it next fires and its reload interval. Each arm
    /// bumps the generation so an old timer thread knows it was replaced.
    pub itimer_real: Mutex<RealTimer>,
    /// Job control: whether the process is stopped, and the state change
    /// its parent has not collected yet.
    pub jobctl: Mutex<JobControl>,
    /// `jobctl.stopped`, written under that lock, for the run loop's
    /// check before every switch without taking it.
    pub stopped: std::sync::atomic::AtomicBool,
    /// Stopped threads wait here for SIGCONT or SIGKILL.
    pub jobctl_cv: Condvar,
    /// CPU time of threads that have exited.
    pub dead_times: CpuTimes,
    /// CPU time of waited-for children (and theirs).
    pub children_times: CpuTimes,
    /// ITIMER_VIRTUAL and ITIMER_PROF.
    pub cpu_timers: Mutex<[CpuTimer; 2]>,
    /// Whether a ticker thread runs for the CPU timers: whoever swaps it
    /// from false to true starts the one ticker.
    pub cpu_ticker: std::sync::atomic::AtomicBool,
    /// Told whenever a signal is queued for the process or one of its
    /// threads (signalfd readiness).
    pub signal_queue: Arc<vfs::WaitQueue>,
}

/// User and system time, in nanoseconds.
#[derive(Default, Debug)]
pub struct CpuTimes {
    pub user: std::sync::atomic::AtomicU64,
    pub sys: std::sync::atomic::AtomicU64,
}

impl CpuTimes {
    pub fn get(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.user.load(Relaxed), self.sys.load(Relaxed))
    }

    pub fn add(&self, (user, sys): (u64, u64)) {
        use std::sync::atomic::Ordering::Relaxed;
        self.user.fetch_add(user, Relaxed);
        self.sys.fetch_add(sys, Relaxed);
    }

    /// Add to a task's own times, which only the task's thread adds to
    /// (others only read): a load and a store, not a locked add, at every
    /// syscall.
    pub fn add_own_user(&self, ns: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.user.store(self.user.load(Relaxed).wrapping_add(ns), Relaxed);
    }

    /// See [`CpuTimes::add_own_user`].
    pub fn add_own_sys(&self, ns: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.sys.store(self.sys.load(Relaxed).wrapping_add(ns), Relaxed);
    }
}

/// A timer that counts down process CPU time (ITIMER_VIRTUAL: user time;
/// ITIMER_PROF: user and system time).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTimer {
    /// Nanoseconds left; 0 = disarmed.
    pub left: u64,
    pub interval: u64,
}

/// The job-control state of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct JobControl {
    pub stopped: bool,
    /// A stop or continue the parent has not waited for (WUNTRACED,
    /// WCONTINUED).
    pub report: Option<JobReport>,
}

/// A job-control state change for wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobReport {
    /// Stopped by this signal.
    Stopped(i32),
    Continued,
}

/// Queued real-time signals per real uid, against RLIMIT_SIGPENDING.
#[derive(Default)]
pub struct SigPending {
    counts: Mutex<BTreeMap<u32, u64>>,
}

/// One queued signal's place in its receiver's RLIMIT_SIGPENDING count,
/// given back when the signal is dequeued or discarded.
pub struct SigCharge {
    owner: Arc<SigPending>,
    uid: u32,
}

impl SigPending {
    /// A place for one more queued signal of `uid`, unless it already has
    /// `limit` of them.
    pub fn charge(self: &Arc<Self>, uid: u32, limit: u64) -> Option<SigCharge> {
        let mut c = lock(&self.counts);
        let n = c.entry(uid).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(SigCharge { owner: self.clone(), uid })
    }
}

impl Drop for SigCharge {
    fn drop(&mut self) {
        let mut c = lock(&self.owner.counts);
        if let Some(n) = c.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.remove(&self.uid);
            }
        }
    }
}

/// A pending signal's siginfo, and its RLIMIT_SIGPENDING charge.
pub struct Queued {
    pub info: abi::SigInfo,
    _charge: Option<SigCharge>,
}

/// Pending signals with their siginfo: a standard signal is pending once
/// (a second one coalesces), real-time signals queue, each instance
/// charged to its receiver's RLIMIT_SIGPENDING. `info` is protected by its
/// lock; a bit of `bits` is set after its siginfo is queued and cleared
/// after it is taken, so the hot path may read `bits` without the lock.
#[derive(Default)]
pub struct SignalQueue {
    pub bits: std::sync::atomic::AtomicU64,
    pub info: Mutex<BTreeMap<i32, std::collections::VecDeque<Queued>>>,
}

impl SignalQueue {
    /// Make `info.signo` pending (once; a real-time signal already
    /// pending gains no second instance without a charge).
    pub fn push(&self, info: abi::SigInfo) {
        let mut g = lock(&self.info);
        let q = g.entry(info.signo).or_default();
        if q.is_empty() {
            q.push_back(Queued { info, _charge: None });
        }
        self.bits.fetch_or(abi::signal::sigbit(info.signo), std::sync::atomic::Ordering::AcqRel);
    }

    /// Queue one more instance of a real-time signal.
    pub fn push_charged(&self, info: abi::SigInfo, charge: SigCharge) {
        lock(&self.info).entry(info.signo).or_default().push_back(Queued { info, _charge: Some(charge) });
        self.bits.fetch_or(abi::signal::sigbit(info.signo), std::sync::atomic::Ordering::AcqRel);
    }

    pub fn bits(&self) -> u64 {
        self.bits.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Drop every pending signal in `mask`.
    pub fn discard(&self, mask: u64) {
        let mut g = lock(&self.info);
        g.retain(|s, _| abi::signal::sigbit(*s) & mask == 0);
        self.bits.fetch_and(!mask, std::sync::atomic::Ordering::AcqRel);
    }

    /// Take (the first instance of) `sig` if it is pending here.
    pub fn take(&self, sig: i32) -> Option<abi::SigInfo> {
        let (taken, _charge) = {
            let mut g = lock(&self.info);
            let q = g.get_mut(&sig)?;
            let Queued { info, _charge } = q.pop_front()?;
            if q.is_empty() {
                g.remove(&sig);
                self.bits.fetch_and(!abi::signal::sigbit(sig), std::sync::atomic::Ordering::AcqRel);
            }
            (info, _charge)
        };
        Some(taken)
    }
}

/// What other Sentry threads may touch of a task: its identity, mask,
/// thread-directed signals and the handles that wake it.
pub struct ThreadShared {
    pub tid: i32,
    /// Written by the task itself (and set before it first runs), read by
    /// senders.
    pub sigmask: std::sync::atomic::AtomicU64,
    pub pending: SignalQueue,
    /// Wakes the task from a blocking wait in the Sentry.
    pub interrupt: Arc<vfs::Interrupt>,
    /// Kicks the task out of the guest.
    pub kicker: Arc<dyn platform::Interrupter>,
    /// Set when this thread alone must stop (another thread's execve).
    pub must_exit: std::sync::atomic::AtomicBool,
    /// This thread's CPU time.
    pub times: CpuTimes,
    /// The robust futex list head (set_robust_list), 0 if none.
    pub robust_list: std::sync::atomic::AtomicU64,
    /// Policy, priorities and nice value (bookkeeping only).
    pub sched: Mutex<crate::sched::SchedParams>,
}

impl ThreadShared {
    /// Make the task notice something: leave a blocking wait or the guest.
    pub fn kick(&self) {
        self.interrupt.interrupt();
        self.kicker.interrupt();
    }

    pub fn blocks(&self, sig: i32) -> bool {
        self.sigmask.load(std::sync::atomic::Ordering::Acquire) & abi::signal::sigbit(sig) != 0
    }
}

/// The state of a process's ITIMER_REAL.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealTimer {
    pub generation: u64,
    pub deadline: Option<Instant>,
    pub interval: std::time::Duration,
    /// Its entry on the sandbox's timer thread while armed.
    pub timer: Option<crate::timers::TimerId>,
}

/// Linux's default resource limits for a new process.
pub fn default_rlimits() -> [Rlimit; 16] {
    use abi::flags::*;
    let inf = Rlimit { cur: RLIM_INFINITY, max: RLIM_INFINITY };
    let mut r = [inf; 16];
    r[RLIMIT_STACK as usize] = Rlimit { cur: 8 << 20, max: RLIM_INFINITY };
    r[RLIMIT_CORE as usize] = Rlimit { cur: 0, max: RLIM_INFINITY };
    r[RLIMIT_NOFILE as usize] = Rlimit { cur: vfs::fdtable::DEFAULT_NOFILE, max: 4096 };
    r[RLIMIT_NPROC as usize] = Rlimit { cur: 63_432, max: 63_432 };
    r[RLIMIT_MEMLOCK as usize] = Rlimit { cur: 64 << 10, max: 64 << 10 };
    r[RLIMIT_SIGPENDING as usize] = Rlimit { cur: 63_432, max: 63_432 };
    r[RLIMIT_MSGQUEUE as usize] = Rlimit { cur: 819_200, max: 819_200 };
    r[RLIMIT_NICE as usize] = Rlimit { cur: 0, max: 0 };
    r[RLIMIT_RTPRIO as usize] = Rlimit { cur: 0, max: 0 };
    r
}

impl ThreadGroup {
    /// A new process (no threads yet).
    pub fn new(
        kernel: &Arc<Kernel>,
        mm: Arc<MemoryManager>,
        fds: Arc<FdTable>,
        fs: FsContext,
        creds: Creds,
    ) -> Arc<ThreadGroup> {
        let tgid = kernel.alloc_pid();
        let tg = Arc::new(ThreadGroup {
            tgid,
            kernel: kernel.clone(),
            mm: Mutex::new(Some(mm)),
            fds: Mutex::new(fds),
            fs: Mutex::new(fs),
            creds: Mutex::new(creds),
            comm: Mutex::new(Vec::new()),
            exe: Mutex::new(None),
            exe_hold: Mutex::new(None),
            rlimits: Mutex::new(default_rlimits()),
            signals: Mutex::new(SignalActions::default()),
            ppid: Mutex::new(0),
            pgid: Mutex::new(tgid),
            sid: Mutex::new(tgid),
            exit: Mutex::new(None),
            start: Instant::now(),
            children: Mutex::new(Vec::new()),
            exit_signal: Mutex::new(abi::signal::SIGCHLD),
            oom_score_adj: std::sync::atomic::AtomicI32::new(0),
            zombie: Mutex::new(false),
            vfork_done: Arc::new((Mutex::new(false), Condvar::new())),
            threads: Mutex::new(Vec::new()),
            killed: std::sync::atomic::AtomicBool::new(false),
            pending: SignalQueue::default(),
            itimer_real: Mutex::new(RealTimer::default()),
            jobctl: Mutex::new(JobControl::default()),
            stopped: std::sync::atomic::AtomicBool::new(false),
            jobctl_cv: Condvar::new(),
            dead_times: CpuTimes::default(),
            children_times: CpuTimes::default(),
            cpu_timers: Mutex::new([CpuTimer::default(); 2]),
            cpu_ticker: std::sync::atomic::AtomicBool::new(false),
            signal_queue: Arc::new(vfs::WaitQueue::default()),
        });
        kernel.register_group(&tg);
        tg
    }

    /// The address space, unless the process has exited.
    pub fn mm(&self) -> Option<Arc<MemoryManager>> {
        lock(&self.mm).clone()
    }

    pub fn fds(&self) -> Arc<FdTable> {
        lock(&self.fds).clone()
    }

    pub fn creds(&self) -> Creds {
        lock(&self.creds).clone()
    }

    pub fn fs(&self) -> FsContext {
        lock(&self.fs).clone()
    }

    pub fn rlimit(&self, res: u32) -> Rlimit {
        lock(&self.rlimits).get(res as usize).copied().unwrap_or_default()
    }

    /// RLIMIT_NOFILE's soft limit (the fd table's ceiling).
    pub fn nofile(&self) -> u64 {
        self.rlimit(abi::flags::RLIMIT_NOFILE).cur
    }

    pub fn exit_status(&self) -> Option<ExitStatus> {
        *lock(&self.exit)
    }

    /// The live thread `tid` of this process.
    pub fn thread(&self, tid: i32) -> Option<Arc<ThreadShared>> {
        lock(&self.threads).iter().find(|t| t.tid == tid).cloned()
    }

    /// The process's own CPU time: exited threads plus live ones.
    pub fn cpu_times(&self) -> (u64, u64) {
        let (mut u, mut s) = self.dead_times.get();
        for t in lock(&self.threads).iter() {
            let (tu, ts) = t.times.get();
            u += tu;
            s += ts;
        }
        (u, s)
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Make every thread notice that the process is ending.
    pub fn kick_all(&self) {
        for t in lock(&self.threads).iter() {
            t.kick();
        }
    }

    /// Release a vfork parent waiting on this process.
    pub fn release_vfork(&self) {
        let (m, cv) = &*self.vfork_done;
        *lock(m) = true;
        cv.notify_all();
    }
}

/// Errors that end boot (not guest-visible).
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("{0}")]
    Platform(#[from] platform::PlatformError),
    #[error("{0}")]
    MemFile(#[from] crate::memfile::MemFileError),
    #[error("cannot start {path}: {}", errno.describe())]
    Exec { path: String, errno: Errno },
    #[error("{0}")]
    Other(String),
}
