//! Stub processes: creating one (forked by the forker, `forker.rs`),
//! asking its control thread for address-space changes, and its pool of
//! stub threads (taken back whole when the process is recycled,
//! `recycle.rs`).

use crate::layout::*;
use crate::sys;
use crate::Shared;
use abi::Errno;
use platform::PlatformError;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// clone flags of a stub thread: a thread of the stub process.
pub(crate) const THREAD_CLONE_FLAGS: u64 = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000;

/// Signals the stub handles (everything else is ignored, so a stray kill
/// from outside does not take the guest down).
pub(crate) const HANDLED_SIGNALS: [i32; 7] =
    [libc::SIGSYS, libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGTRAP, crate::INTERRUPT_SIGNAL];

/// How long a stub may take to come up, or to start a thread.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Never recovered: the Sentry's failure policy ends the sandbox at a
    // panic, before unwinding could poison anything (sentry::locking).
    m.lock().unwrap_or_else(|_| panic!("a platform lock is poisoned"))
}

pub(crate) fn host(call: &'static str, errno: Errno) -> PlatformError {
    PlatformError::Host { call, errno }
}

/// The Sentry's mapping of a stub memory file.
pub(crate) struct Region {
    base: *mut u8,
}

// SAFETY: the region is shared memory; every access goes through atomics
// or bounds-checked copies, and the mapping lives as long as the Region.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    #[inline(always)]
    pub(crate) fn u32(&self, off: u64) -> &AtomicU32 {
        assert!(off.is_multiple_of(4) && off + 4 <= REGION_SIZE);
        // SAFETY: in bounds (checked), aligned, and the memory is only
        // accessed atomically or by the stub process.
        unsafe { &*(self.base.add(off as usize) as *const AtomicU32) }
    }

    #[inline(always)]
    pub(crate) fn u64(&self, off: u64) -> &AtomicU64 {
        assert!(off.is_multiple_of(8) && off + 8 <= REGION_SIZE);
        // SAFETY: as for u32.
        unsafe { &*(self.base.add(off as usize) as *const AtomicU64) }
    }

    pub(crate) fn write(&self, off: u64, bytes: &[u8]) {
        assert!(off + bytes.len() as u64 <= REGION_SIZE);
        // SAFETY: in bounds (checked); the stub may race with us on bytes it
        // can write, which only garbles what its own guest sees.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(off as usize), bytes.len()) }
    }

    pub(crate) fn read(&self, off: u64, out: &mut [u8]) {
        assert!(off + out.len() as u64 <= REGION_SIZE);
        // SAFETY: as for write.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off as usize), out.as_mut_ptr(), out.len()) }
    }
}

/// The offset of `[addr, addr+len)` (a stub address the stub told us) if it
/// lies within thread `i`'s signal stack, and is 8-aligned.
pub(crate) fn on_signal_stack(i: u32, addr: u64, len: u64) -> Option<u64> {
    let lo = STUB_BASE + thread_off(i as u64) + ALTSTACK_OFF;
    let hi = lo + ALTSTACK_SIZE;
    let end = addr.checked_add(len)?;
    (addr >= lo && end <= hi && addr.is_multiple_of(8)).then(|| addr - STUB_BASE)
}

/// One stub thread, parked in its signal handler when not running guest
/// code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StubThread {
    pub(crate) index: u32,
    pub(crate) tid: i32,
    /// The process's generation when the thread was handed out: a
    /// recycled process (`recycle.rs`) takes back every thread, so one a
    /// stale context gives back later must not be pooled twice.
    pub(crate) gen: u32,
}

/// What is known of a stub thread since it first reported in.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ThreadRecord {
    /// Its host thread id (0: none, a failed clone).
    pub(crate) tid: i32,
    /// Where the kernel put its first frame (a stub address): every
    /// signal it takes in its handler's absence lands there.
    pub(crate) frame: u64,
}

pub(crate) struct Pool {
    pub(crate) free: Vec<StubThread>,
    pub(crate) next: u32,
    /// Every stub thread, by index.
    pub(crate) threads: Vec<ThreadRecord>,
    /// Bumped each time the process is recycled.
    pub(crate) gen: u32,
}

/// One stub process: one guest address space.
pub(crate) struct StubProcess {
    pub(crate) pid: i32,
    pidfd: i32,
    /// Read end of the completion pipe.
    pipe: i32,
    pub(crate) region: Region,
    /// Serialises requests to the control thread; the request sequence.
    ctl: Mutex<u32>,
    pub(crate) pool: Mutex<Pool>,
    dead: AtomicBool,
    reaped: Mutex<bool>,
    pub(crate) fsgsbase: bool,
    pub(crate) ready_ip: u64,
    spin: crate::Spin,
    /// The CPU the control thread is bound to (-1: none yet).
    ctl_cpu: std::sync::atomic::AtomicI32,
    /// Patching (`patch.rs`): the sandbox's slots (None: off), the
    /// trampoline's trap sites.
    pub(crate) slots: Option<Arc<Mutex<crate::patch::Slots>>>,
    pub(crate) upgrade_ip: u64,
    pub(crate) kick_ip: u64,
}

impl StubProcess {
    pub(crate) fn create(shared: &Shared) -> Result<StubProcess, PlatformError> {
        let fd = sys::memfd_create(c"runsc-lite-systrap-stub").map_err(|e| host("memfd_create", e))?;
        let r = Self::create_with(shared, fd);
        sys::close(fd);
        r
    }

    fn create_with(shared: &Shared, fd: i32) -> Result<StubProcess, PlatformError> {
        sys::ftruncate(fd, REGION_SIZE).map_err(|e| host("ftruncate", e))?;
        let base = sys::map_shared(fd, REGION_SIZE).map_err(|e| host("mmap", e))?;
        let region = Region { base };
        let fail_region = |e: PlatformError| {
            // SAFETY: our fresh mapping, not handed out.
            unsafe { sys::unmap(base, REGION_SIZE) };
            e
        };
        region.write(CODE_OFF, shared.code);
        if let Some(slots) = &shared.slots {
            for (i, b) in lock(slots).all() {
                region.write(SLOTS_OFF + i as u64 * SLOT_SIZE, b);
            }
        }
        region.u32(CTRL_OFF + C_FSGSBASE).store(shared.fsgsbase as u32, Ordering::Relaxed);
        region.u32(CTRL_OFF + C_CTL_SPIN).store(shared.spin.control, Ordering::Relaxed);
        region.u32(CTRL_OFF + C_STUB_SPIN).store(shared.spin.stub, Ordering::Relaxed);
        region.u32(CTRL_OFF + C_CPU_INSN).store(shared.cpu_insn, Ordering::Relaxed);
        for (fprog, at, filter) in
            [(C_FPROG_CTL, C_FILTER_CTL, &shared.control_filter), (C_FPROG_GUEST, C_FILTER_GUEST, &shared.guest_filter)]
        {
            let bytes: Vec<u8> = filter
                .iter()
                .flat_map(|f| {
                    let mut b = [0u8; 8];
                    b[0..2].copy_from_slice(&f.code.to_le_bytes());
                    b[2] = f.jt;
                    b[3] = f.jf;
                    b[4..8].copy_from_slice(&f.k.to_le_bytes());
                    b
                })
                .collect();
            region.write(CTRL_OFF + at, &bytes);
            region.u64(CTRL_OFF + fprog).store(filter.len() as u64, Ordering::Relaxed);
            region.u64(CTRL_OFF + fprog + 8).store(STUB_BASE + CTRL_OFF + at, Ordering::Relaxed);
        }

        let mut fds = [0i32; 2];
        // SAFETY: pipe2 writes two descriptors into a live array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(fail_region(host("pipe2", Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(5)))));
        }
        let (pipe_r, pipe_w) = (fds[0], fds[1]);
        let pid = shared.forker.fork(fd, pipe_w);
        sys::close(pipe_w);
        let (pid, pidfd) = match pid {
            Ok(p) => p,
            Err(e) => {
                sys::close(pipe_r);
                return Err(fail_region(host("fork", e)));
            }
        };
        let p = StubProcess {
            pid,
            pidfd,
            pipe: pipe_r,
            region,
            ctl: Mutex::new(0),
            pool: Mutex::new(Pool { free: Vec::new(), next: 0, threads: Vec::new(), gen: 0 }),
            dead: AtomicBool::new(false),
            reaped: Mutex::new(false),
            fsgsbase: shared.fsgsbase,
            ready_ip: shared.ready_ip,
            spin: shared.spin,
            ctl_cpu: std::sync::atomic::AtomicI32::new(-1),
            slots: shared.slots.clone(),
            upgrade_ip: shared.upgrade_ip,
            kick_ip: shared.kick_ip,
        };
        // The control thread reports in with a first result once it runs
        // under its filter.
        match p.read_result() {
            Ok(0) => Ok(p),
            Ok(r) => Err(PlatformError::Unavailable(format!("stub control thread reported {r}"))),
            Err(_) => {
                let why = p.setup_failure();
                Err(PlatformError::Unavailable(why))
            }
        }
    }

    /// Why a stub died during set-up. Stubs are the forker's children,
    /// reaped by the kernel, so their exit status (the step that failed,
    /// see `setup_step`) is not ours to read.
    fn setup_failure(&self) -> String {
        if sys::pidfd_wait(self.pidfd, Duration::from_secs(2)) {
            self.dead.store(true, Ordering::Release);
            *lock(&self.reaped) = true;
            "stub set-up failed: the stub exited before reporting in".into()
        } else {
            self.kill();
            "stub set-up did not finish".into()
        }
    }

    /// Read one result from the completion pipe. Err if the stub is gone.
    fn read_result(&self) -> Result<i64, PlatformError> {
        let mut buf = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            // SAFETY: reads into the live remainder of `buf`.
            let r = unsafe { libc::read(self.pipe, buf[got..].as_mut_ptr().cast(), 8 - got) };
            if r > 0 {
                got += r as usize;
            } else if r == 0 {
                self.dead.store(true, Ordering::Release);
                return Err(PlatformError::StubDied(format!("stub process {} is gone", self.pid)));
            } else {
                let e = Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(5));
                if e != Errno::EINTR {
                    return Err(host("read", e));
                }
            }
        }
        Ok(i64::from_le_bytes(buf))
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Have the control thread make syscall `nr(args)` (for a clone,
    /// `thread` is the new thread's index).
    pub(crate) fn request(
        &self,
        call: &'static str,
        nr: u64,
        args: [u64; 6],
        thread: u64,
    ) -> Result<u64, PlatformError> {
        let mut seq = lock(&self.ctl);
        self.request_locked(&mut seq, call, nr, args, thread)
    }

    /// Have the control thread make the calls of `entries` (number, six
    /// arguments, the result that means success; at most `BATCH_MAX`) in
    /// order, in one request. Err names the first call that failed; the
    /// ones before it were made.
    pub(crate) fn request_batch(&self, entries: &[[u64; 8]]) -> Result<(), PlatformError> {
        if entries.is_empty() {
            return Ok(());
        }
        if entries.len() as u64 > BATCH_MAX {
            return Err(host("batch", Errno::E2BIG));
        }
        let mut seq = lock(&self.ctl);
        // Under `ctl`: the control thread reads the page only while it
        // serves a request, and requests are serialised by this lock.
        for (i, e) in entries.iter().enumerate() {
            for (j, w) in e.iter().enumerate() {
                self.region.u64(BATCH_OFF + i as u64 * BATCH_ENTRY + 8 * j as u64).store(*w, Ordering::Relaxed);
            }
        }
        let done = self.request_locked(&mut seq, "batch", BATCH_NR, [entries.len() as u64, 0, 0, 0, 0, 0], 0)?;
        match entries.get(done as usize) {
            None => Ok(()),
            Some(e) => Err(host(
                match e[0] {
                    sys::SYS_MMAP => "mmap",
                    sys::SYS_MUNMAP => "munmap",
                    _ => "mprotect",
                },
                Errno::EFAULT,
            )),
        }
    }

    fn request_locked(
        &self,
        seq: &mut MutexGuard<'_, u32>,
        call: &'static str,
        nr: u64,
        args: [u64; 6],
        thread: u64,
    ) -> Result<u64, PlatformError> {
        self.follow_cpu();
        if self.is_dead() {
            return Err(PlatformError::StubDied(format!("stub process {} is gone", self.pid)));
        }
        let c = CTRL_OFF;
        self.region.u64(c + C_NR).store(nr, Ordering::Relaxed);
        for (i, a) in args.iter().enumerate() {
            self.region.u64(c + C_ARGS + 8 * i as u64).store(*a, Ordering::Relaxed);
        }
        self.region.u64(c + C_THREAD).store(thread, Ordering::Relaxed);
        **seq = seq.wrapping_add(1);
        let word = self.region.u32(c + C_REQ_SEQ);
        word.store(**seq, Ordering::SeqCst);
        if self.region.u32(RESP_OFF + R_CTL_WAITING).load(Ordering::SeqCst) != 0 {
            sys::futex_wake(word);
        }
        // The result is usually there within a few microseconds: spin on the
        // hint before sleeping in read().
        let done = self.region.u32(RESP_OFF + R_DONE_SEQ);
        // The clock is read only once the first round of polls failed.
        let mut spin_until = None;
        'spin: loop {
            for _ in 0..64 {
                if done.load(Ordering::Acquire) == **seq {
                    break 'spin;
                }
                std::hint::spin_loop();
            }
            if past(&mut spin_until, self.spin.request) {
                break;
            }
        }
        let r = self.read_result()?;
        if (-4095..0).contains(&r) {
            Err(host(call, Errno(-r as i32)))
        } else {
            Ok(r as u64)
        }
    }

    /// Move the control thread to the calling thread's CPU (when that
    /// changed): the caller sleeps while the control thread works, so the
    /// two take turns on one CPU without a cross-CPU wake-up either way.
    fn follow_cpu(&self) {
        // SAFETY: sched_getcpu takes no arguments.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu < 0 || self.ctl_cpu.swap(cpu, Ordering::Relaxed) == cpu {
            return;
        }
        sys::bind_thread(self.pid, Some(cpu as usize));
    }

    /// A parked stub thread for a new guest thread, with a clean frame.
    pub(crate) fn acquire_thread(&self) -> Result<StubThread, PlatformError> {
        let t = lock(&self.pool).free.pop();
        let t = match t {
            Some(t) => t,
            None => self.new_thread()?,
        };
        let m = thread_off(t.index as u64);
        self.region.u64(m + M_FS_BASE).store(0, Ordering::Relaxed);
        self.region.u64(m + M_GS_BASE).store(0, Ordering::Relaxed);
        self.region.u64(m + M_CUR_FS).store(u64::MAX, Ordering::Relaxed);
        self.region.u64(m + M_CUR_GS).store(u64::MAX, Ordering::Relaxed);
        Ok(t)
    }

    /// Give a stub thread back (parked in its handler) for reuse.
    pub(crate) fn release_thread(&self, t: StubThread) {
        if !self.is_dead() {
            let mut p = lock(&self.pool);
            if t.gen == p.gen {
                p.free.push(t);
            }
        }
    }

    fn new_thread(&self) -> Result<StubThread, PlatformError> {
        let (index, gen) = {
            let mut p = lock(&self.pool);
            if p.next as u64 >= MAX_THREADS {
                return Err(host("clone", Errno::EAGAIN));
            }
            p.next += 1;
            // Filled in once the thread has reported in.
            p.threads.push(ThreadRecord::default());
            (p.next - 1, p.gen)
        };
        let block = thread_off(index as u64);
        let e = TABLE_OFF + index as u64 * TABLE_ENTRY;
        self.region.u64(e).store(STUB_BASE + block + ALTSTACK_OFF, Ordering::Relaxed);
        self.region.u64(e + 8).store(0, Ordering::Relaxed);
        self.region.u64(e + 16).store(ALTSTACK_SIZE, Ordering::Relaxed);
        // Until it reports in, the thread is as good as running.
        self.region.u32(block + M_STUB_CPU).store(NO_CPU, Ordering::Relaxed);
        self.region.u32(block + M_SENTRY_CPU).store(NO_CPU - 1, Ordering::Relaxed);
        self.region.u32(block + M_STATE).store(STATE_RUN, Ordering::SeqCst);
        // Below its signal stack (the start code uses no stack): its
        // first trap switches to that stack as every later one does, so
        // its first frame sits where they all will (`ThreadRecord`).
        let stack = STUB_BASE + block + ALTSTACK_OFF;
        let tid = self.request("clone", sys::SYS_CLONE, [THREAD_CLONE_FLAGS, stack, 0, 0, 0, 0], index as u64)? as i32;
        // The clone inherited the control thread's binding to one CPU
        // (`follow_cpu`). Left so, every stub thread of a process ran on
        // the CPU its Sentry thread had when the thread was made: two
        // guest threads computing took twice their native time.
        if self.ctl_cpu.load(Ordering::Relaxed) >= 0 {
            sys::bind_thread(tid, None);
        }
        let t = StubThread { index, tid, gen };
        if let Err(signo) = self.expect_ready_report(t, SETUP_TIMEOUT)? {
            self.kill();
            return Err(PlatformError::StubDied(format!("new stub thread reported signal {signo} at start")));
        }
        let frame = self.region.u64(block + M_UCONTEXT).load(Ordering::Relaxed);
        if let Some(slot) = lock(&self.pool).threads.get_mut(index as usize) {
            *slot = ThreadRecord { tid, frame };
        }
        Ok(t)
    }

    /// Wait up to `timeout` (then the stub is killed) for thread `t`'s
    /// report from the ready trap (a trapped getpid in the stub code,
    /// which parks it in its handler): Ok(Err(signo)) when it reported
    /// something else. Then it is told to sleep: nothing
    /// answers it until a guest thread first runs on it, which may be
    /// much later (a pooled space), so it should not poll ~100 us on a
    /// CPU the Sentry or the guest wants.
    pub(crate) fn expect_ready_report(
        &self,
        t: StubThread,
        timeout: Duration,
    ) -> Result<Result<(), u32>, PlatformError> {
        self.wait_event(t, None, Instant::now().checked_add(timeout))?;
        // si_call_addr, the first word of the siginfo union, is where the
        // trapped call came from.
        let block = thread_off(t.index as u64);
        let signo = self.region.u32(block + M_SIGNO).load(Ordering::Relaxed);
        let info = self.region.u64(block + M_SIGINFO).load(Ordering::Relaxed);
        let call_addr =
            on_signal_stack(t.index, info, 128).map(|off| self.region.u64(off + 16).load(Ordering::Relaxed));
        if signo != libc::SIGSYS as u32 || call_addr != Some(self.ready_ip) {
            return Ok(Err(signo));
        }
        self.region.u32(block + M_ANSWER_HINT).store(HINT_LATER, Ordering::Relaxed);
        Ok(Ok(()))
    }

    /// Wait until stub thread `t` reports an event (anything but RUN or
    /// UPGRADE in its state word). `intr`: the context's interrupt state, for the
    /// watchdog on guests that do not react to interrupts.
    pub(crate) fn wait_event(
        &self,
        t: StubThread,
        intr: Option<&crate::context::InterruptState>,
        deadline: Option<Instant>,
    ) -> Result<(), PlatformError> {
        let m = thread_off(t.index as u64);
        let state = self.region.u32(m + M_STATE);
        let busy = |s: u32| s == STATE_RUN || s == STATE_UPGRADE;
        // Not while the stub thread was last seen on this thread's CPU.
        let apart = self.region.u32(m + M_STUB_CPU).load(Ordering::Relaxed)
            != self.region.u32(m + M_SENTRY_CPU).load(Ordering::Relaxed);
        if apart {
            // A quick answer (most syscalls) is seen before the clock is
            // first read: at about 32 ns a read, the clock was a tenth of
            // a patched getppid's time in the Sentry.
            let mut spin_until = None;
            loop {
                for _ in 0..64 {
                    if !busy(state.load(Ordering::Acquire)) {
                        return Ok(());
                    }
                    std::hint::spin_loop();
                }
                if past(&mut spin_until, self.spin.event) {
                    break;
                }
            }
        }
        platform::profile::count(platform::profile::Phase::HandoffSentrySlept, 1);
        let waiting = self.region.u32(m + M_SENTRY_WAITING);
        let mut since_kick = Instant::now();
        let mut interrupted_at: Option<Instant> = None;
        loop {
            waiting.store(1, Ordering::SeqCst);
            let cur = state.load(Ordering::SeqCst);
            if !busy(cur) {
                waiting.store(0, Ordering::Relaxed);
                return Ok(());
            }
            sys::futex_wait(state, cur, Duration::from_millis(100));
            if !busy(state.load(Ordering::SeqCst)) {
                waiting.store(0, Ordering::Relaxed);
                return Ok(());
            }
            if self.is_dead() || sys::pidfd_exited(self.pidfd) || !sys::thread_alive(self.pid, t.tid) {
                self.dead.store(true, Ordering::Release);
                return Err(PlatformError::StubDied(format!("stub thread {} of process {} is gone", t.tid, self.pid)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.kill();
                return Err(PlatformError::StubDied(format!("stub thread {} did not report in", t.tid)));
            }
            // A guest that blocks the interrupt signal (it can, through a
            // forged sigreturn frame) would never come back: kick it again,
            // and kill it after a while.
            if intr.is_some_and(|i| i.is_pending()) {
                let first = *interrupted_at.get_or_insert_with(Instant::now);
                if first.elapsed() > Duration::from_secs(10) {
                    tracing::warn!("systrap: stub {} ignores interrupts: killing it", self.pid);
                    self.kill();
                    return Err(PlatformError::StubDied(format!("stub process {} ignored interrupts", self.pid)));
                }
                if since_kick.elapsed() > Duration::from_millis(500) {
                    since_kick = Instant::now();
                    let _ = sys::tgkill(self.pid, t.tid, crate::INTERRUPT_SIGNAL);
                }
            } else {
                interrupted_at = None;
            }
        }
    }

    /// Let stub thread `t` return to the guest.
    #[inline(always)]
    pub(crate) fn resume(&self, t: StubThread) {
        self.set_state(t, STATE_RUN)
    }

    /// Let stub thread `t` go on with `to` (RUN, or UPGRADE for a thread
    /// stopped in the patch trampoline).
    #[inline(always)]
    pub(crate) fn set_state(&self, t: StubThread, to: u32) {
        let m = thread_off(t.index as u64);
        // SAFETY: sched_getcpu takes no arguments.
        let cpu = unsafe { libc::sched_getcpu() };
        // Written only when it changed: the stub thread polls this cache
        // line, and a store, even of the same value, takes it away (one
        // more cache-line transfer per syscall).
        let sentry_cpu = self.region.u32(m + M_SENTRY_CPU);
        let cpu = u32::try_from(cpu).unwrap_or(NO_CPU - 1);
        if sentry_cpu.load(Ordering::Relaxed) != cpu {
            sentry_cpu.store(cpu, Ordering::Relaxed);
        }
        let state = self.region.u32(m + M_STATE);
        state.swap(to, Ordering::SeqCst);
        if self.region.u32(m + M_STUB_WAITING).load(Ordering::SeqCst) != 0 {
            platform::profile::count(platform::profile::Phase::HandoffStubSlept, 1);
            sys::futex_wake(state);
        }
    }

    /// Write every slot the sandbox has into this process's slot pages (a
    /// pooled process was made before the newer ones existed).
    pub(crate) fn refresh_slots(&self) {
        if let Some(slots) = &self.slots {
            for (i, b) in lock(slots).all() {
                self.region.write(SLOTS_OFF + i as u64 * SLOT_SIZE, b);
            }
        }
    }

    /// Patching: the slot address a site returning to `ret` with syscall
    /// `nr` should jump to (see `patch.rs`), written into this process's
    /// slot pages.
    pub(crate) fn patch_slot(&self, ret: u64, site: platform::SyscallSite) -> Option<u64> {
        let slots = self.slots.as_ref()?;
        let (i, code, target) = lock(slots).get(site, ret)?;
        self.region.write(SLOTS_OFF + i as u64 * SLOT_SIZE, &code);
        Some(target)
    }

    /// Kill the stub process (idempotent) and wait until it is gone (the
    /// forker's kernel-side reaping does the rest).
    pub(crate) fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        let mut g = lock(&self.reaped);
        if !*g {
            sys::pidfd_kill(self.pidfd);
            while !sys::pidfd_wait(self.pidfd, Duration::from_secs(1)) {
                sys::pidfd_kill(self.pidfd);
            }
            *g = true;
        }
    }

    /// SIGKILL without waiting for the end: for a space dropped when no
    /// guest thread runs in it (exit, exec), whose stub only has parked
    /// threads. The kernel reaps it (the forker's children are reaped
    /// without a wait); tearing down its address space takes the host a
    /// while that the exiting guest's parent need not wait for.
    pub(crate) fn kill_nowait(&self) {
        self.dead.store(true, Ordering::Release);
        if !*lock(&self.reaped) {
            sys::pidfd_kill(self.pidfd);
        }
    }
}

impl Drop for StubProcess {
    fn drop(&mut self) {
        self.kill_nowait();
        sys::close(self.pidfd);
        sys::close(self.pipe);
        // SAFETY: the region is ours and, with the process gone and `self`
        // being dropped, used by nobody.
        unsafe { sys::unmap(self.region.base, REGION_SIZE) };
    }
}

/// Whether a poll that began at the first call has run for `limit`: the
/// first call starts the clock (so a poll that ends at once never reads
/// it), later ones compare.
fn past(started: &mut Option<platform::clock::Stamp>, limit: Duration) -> bool {
    let now = platform::clock::now();
    now.saturating_duration_since(*started.get_or_insert(now)) >= limit
}
