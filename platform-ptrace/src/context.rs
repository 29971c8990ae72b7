//! Contexts: one guest thread, run by one Sentry thread in stub threads it
//! traces itself (one per address space it has run in).

use crate::space::{self, AsInner, StubThread};
use crate::stub;
use crate::sys::{self, SIGTRAP, SI_KERNEL};
use crate::{CpuBinding, PlatformShared};
use abi::signal::{SIGBUS, SIGCHLD, SIGFPE, SIGILL, SIGSEGV, SIGSYS};
use abi::{Errno, SigInfo};
use platform::{Access, AddressSpace, Context, Exit, FpState, Interrupter, PlatformError, Regs};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Weak};

/// The host signal that kicks a stub thread out of the guest. SIGCHLD (as
/// gVisor does): stubs have no children, so no other SIGCHLD reaches them,
/// and if one is ever sent to an untraced stub it is ignored, not fatal.
pub(crate) const INTERRUPT_SIGNAL: i32 = SIGCHLD;

/// Shared between a context and its interrupters.
pub(crate) struct InterruptState {
    /// An interrupt not yet reported by `switch`.
    pending: AtomicBool,
    /// The stub thread currently running the guest (0: none).
    running: AtomicI32,
}

impl Interrupter for InterruptState {
    fn interrupt(&self) {
        // Store-then-load on both sides (SeqCst): either `switch` sees
        // `pending` before resuming the guest, or we see its stub and kick
        // it. A kick that arrives after `switch` already returned stays
        // queued on the stub and is recognised as stale (pending false)
        // when it shows up.
        self.pending.store(true, Ordering::SeqCst);
        let pid = self.running.load(Ordering::SeqCst);
        if pid > 0 {
            let _ = sys::tgkill(pid, pid, INTERRUPT_SIGNAL);
        }
    }
}

thread_local! {
    static TID: Cell<i32> = const { Cell::new(0) };
}

/// The calling thread's host tid (cached).
#[inline(always)]
pub(crate) fn current_tid() -> i32 {
    TID.try_with(|c| {
        let t = c.get();
        if t != 0 {
            t
        } else {
            let t = sys::gettid();
            c.set(t);
            t
        }
    })
    .unwrap_or_else(|_| sys::gettid())
}

struct Entry {
    key: usize,
    /// Keeps `key` unique while the entry exists; tells when the space is
    /// gone.
    space: Weak<dyn AddressSpace>,
    inner: Arc<AsInner>,
    stub: Arc<StubThread>,
    /// The CPU the stub thread is bound to, if any.
    cpu: Option<usize>,
}

/// The Sentry thread this context runs on.
struct Binding {
    tid: i32,
    cpu: Option<usize>,
    /// The thread's affinity before we pinned it.
    saved_mask: Option<sys::CpuMask>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct LastFault {
    key: usize,
    unmap_gen: u64,
    addr: u64,
    ip: u64,
}

enum RunError {
    Ptrace(&'static str, Errno),
    Wait(Errno),
    Exited(i32),
}

pub(crate) struct PtraceContext {
    shared: Arc<PlatformShared>,
    binding: Option<Binding>,
    entries: Vec<Entry>,
    /// Index of the entry used last.
    cur: usize,
    intr: Arc<InterruptState>,
    last_fault: Option<LastFault>,
    switches: u32,
}

impl PtraceContext {
    pub(crate) fn new(shared: Arc<PlatformShared>) -> PtraceContext {
        PtraceContext {
            shared,
            binding: None,
            entries: Vec::new(),
            cur: usize::MAX,
            intr: Arc::new(InterruptState { pending: AtomicBool::new(false), running: AtomicI32::new(0) }),
            last_fault: None,
            switches: 0,
        }
    }

    /// The pid of this context's stub thread in `space`, if it has one
    /// (for tests and debugging).
    #[cfg(test)]
    pub(crate) fn stub_pid(&self, space: &Arc<dyn AddressSpace>) -> Option<i32> {
        let key = space::key_of(space);
        self.entries.iter().find(|e| e.key == key).map(|e| e.stub.pid)
    }

    /// Make sure the context is bound to the calling thread: stub threads
    /// can only be driven by their tracer.
    #[inline(always)]
    fn ensure_bound(&mut self) {
        let tid = current_tid();
        match &self.binding {
            Some(b) if b.tid == tid => {}
            _ => self.bind(tid),
        }
    }

    #[cold]
    fn bind(&mut self, tid: i32) {
        if let Some(old) = &self.binding {
            // Used from another thread than before: the old thread traces
            // our stub threads, we cannot drive them from here. Start over
            // (the floating-point state held by the stubs is lost).
            tracing::warn!("ptrace context moved from thread {} to {tid}: recreating its stub threads", old.tid);
            self.release_all(false);
        }
        let (cpu, saved_mask) = match self.shared.binding {
            CpuBinding::Pin => {
                let cpu = self.shared.next_cpu();
                let saved = sys::get_affinity(0).ok();
                if let Some(cpu) = cpu {
                    let _ = sys::set_affinity(0, cpu);
                }
                (cpu, saved)
            }
            CpuBinding::Follow | CpuBinding::None => (None, None),
        };
        self.binding = Some(Binding { tid, cpu, saved_mask });
    }

    /// Kill and reap every stub thread.
    fn release_all(&mut self, on_tracer_thread: bool) {
        for e in self.entries.drain(..) {
            e.stub.kill_and_reap();
            if on_tracer_thread {
                space::local_remove(&e.stub);
            }
        }
        self.cur = usize::MAX;
    }

    /// The entry of our stub thread in `space`, created on first use.
    #[inline(always)]
    fn stub_index(&mut self, space: &Arc<dyn AddressSpace>) -> Result<usize, PlatformError> {
        self.ensure_bound();
        let key = space::key_of(space);
        let i = self.cur;
        if i < self.entries.len() && self.entries[i].key == key && self.entries[i].stub.is_alive() {
            return Ok(i);
        }
        self.find_or_create(space, key)
    }

    #[cold]
    fn find_or_create(&mut self, space: &Arc<dyn AddressSpace>, key: usize) -> Result<usize, PlatformError> {
        self.prune();
        if let Some(i) = self.entries.iter().position(|e| e.key == key) {
            self.cur = i;
            return Ok(i);
        }
        let inner = space::lookup(key)
            .ok_or_else(|| PlatformError::Unavailable("address space was not created by the ptrace platform".into()))?;
        let pid = inner.new_stub_thread()?;
        let cpu = match self.shared.binding {
            CpuBinding::Pin => self.binding.as_ref().and_then(|b| b.cpu),
            CpuBinding::Follow => sys::current_cpu(),
            CpuBinding::None => None,
        };
        stub::attach_stub_thread(pid, cpu)?;
        let stub = Arc::new(StubThread::new(pid));
        space::local_add(key, Arc::downgrade(space), stub.clone());
        self.entries.push(Entry { key, space: Arc::downgrade(space), inner, stub, cpu });
        self.cur = self.entries.len() - 1;
        Ok(self.cur)
    }

    /// Drop the stub threads of address spaces that are gone (their owner
    /// thread's exit SIGKILLed them; we still have to reap them) or that
    /// died.
    fn prune(&mut self) {
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].space.strong_count() == 0 || !self.entries[i].stub.is_alive() {
                self.remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn remove(&mut self, i: usize) {
        let e = self.entries.swap_remove(i);
        e.stub.kill_and_reap();
        space::local_remove(&e.stub);
        self.cur = usize::MAX;
    }

    /// Turn a failure to drive stub thread `i` into an error, cleaning up
    /// a stub that is gone.
    #[cold]
    fn fail(&mut self, i: usize, e: RunError) -> PlatformError {
        let pid = self.entries[i].stub.pid;
        match e {
            RunError::Ptrace(_, Errno::ESRCH) => {
                // Not stopped any more, so killed (or someone detached it).
                self.remove(i);
                PlatformError::StubDied(format!("stub thread {pid} vanished"))
            }
            RunError::Ptrace(call, errno) => PlatformError::Host { call, errno },
            RunError::Wait(Errno::ECHILD) => {
                self.entries[i].stub.mark_reaped();
                self.remove(i);
                PlatformError::StubDied(format!("stub thread {pid} was reaped by someone else"))
            }
            RunError::Wait(errno) => PlatformError::Host { call: "wait4", errno },
            RunError::Exited(st) => {
                self.entries[i].stub.mark_reaped();
                self.remove(i);
                PlatformError::StubDied(format!("stub thread {pid} {}", sys::describe_status(st)))
            }
        }
    }

    #[inline(always)]
    fn follow_cpu(&mut self, i: usize) {
        if let Some(cpu) = sys::current_cpu() {
            let e = &mut self.entries[i];
            if e.cpu != Some(cpu) {
                let _ = sys::set_affinity(e.stub.pid, cpu);
                e.cpu = Some(cpu);
            }
        }
    }

    /// Resume stub `pid` with `regs` until something the Sentry must see.
    #[inline(always)]
    fn run(&mut self, i: usize, pid: i32, regs: &mut Regs) -> Result<Exit, RunError> {
        // orig_rax = -1: no syscall-restart processing by the host kernel
        // on the way back to the guest, whatever rax holds.
        let orig = regs.orig_rax;
        regs.orig_rax = u64::MAX;
        let r = sys::setregs(pid, regs);
        regs.orig_rax = orig;
        r.map_err(|e| RunError::Ptrace("PTRACE_SETREGS", e))?;
        loop {
            sys::sysemu(pid).map_err(|e| RunError::Ptrace("PTRACE_SYSEMU", e))?;
            let st = sys::wait(pid).map_err(RunError::Wait)?;
            if !sys::stopped(st) {
                if sys::exited(st) {
                    return Err(RunError::Exited(st));
                }
                continue;
            }
            let sig = sys::stop_sig(st);
            if sig == SIGTRAP | 0x80 {
                sys::getregs(pid, regs).map_err(|e| RunError::Ptrace("PTRACE_GETREGS", e))?;
                self.last_fault = None;
                return Ok(Exit::Syscall);
            }
            if sys::stop_event(st) != 0 {
                // A group-stop (PTRACE_EVENT_STOP) or other event: resume.
                continue;
            }
            if sig == INTERRUPT_SIGNAL {
                if self.intr.pending.swap(false, Ordering::SeqCst) {
                    sys::getregs(pid, regs).map_err(|e| RunError::Ptrace("PTRACE_GETREGS", e))?;
                    self.last_fault = None;
                    return Ok(Exit::Interrupted);
                }
                // A stale kick whose interrupt was already reported.
                continue;
            }
            if !matches!(sig, SIGILL | SIGTRAP | SIGBUS | SIGFPE | SIGSEGV | SIGSYS) {
                // Asynchronous signal from outside (SIGSTOP, a tty signal,
                // ...): not the guest's doing; suppress it.
                tracing::debug!("ptrace: stub {pid}: suppressing signal {sig}");
                continue;
            }
            let mut info = SigInfo::default();
            sys::getsiginfo(pid, &mut info).map_err(|e| RunError::Ptrace("PTRACE_GETSIGINFO", e))?;
            if info.code <= 0 {
                // Sent by some process with kill(2) & co, not raised by the
                // guest's instructions: suppress.
                tracing::debug!("ptrace: stub {pid}: suppressing sent signal {sig}");
                continue;
            }
            sys::getregs(pid, regs).map_err(|e| RunError::Ptrace("PTRACE_GETREGS", e))?;
            return Ok(self.signal_exit(i, info, regs));
        }
    }

    fn signal_exit(&mut self, i: usize, info: SigInfo, regs: &Regs) -> Exit {
        let signo = info.signo;
        if (signo == SIGSEGV || signo == SIGBUS) && info.code != SI_KERNEL {
            let addr = info.fields[0];
            let e = &self.entries[i];
            let f = LastFault { key: e.key, unmap_gen: e.inner.unmap_gen.load(Ordering::Relaxed), addr, ip: regs.rip };
            // ptrace does not tell the page-fault error code. As gVisor: an
            // instruction fetch iff the address is rip; a write if the same
            // fault repeats immediately (a read fault was handled, so the
            // access needs more than read).
            let access = if addr == regs.rip {
                Access::Exec
            } else if self.last_fault == Some(f) {
                Access::Write
            } else {
                Access::Read
            };
            self.last_fault = Some(f);
            return Exit::Fault { addr, access, signo, code: info.code };
        }
        self.last_fault = None;
        Exit::Signal(Box::new(info))
    }
}

impl Context for PtraceContext {
    fn switch(&mut self, space: &Arc<dyn AddressSpace>, regs: &mut Regs) -> Result<Exit, PlatformError> {
        if self.entries.len() > 1 {
            self.switches = self.switches.wrapping_add(1);
            if self.switches.is_multiple_of(4096) {
                self.prune();
            }
        }
        let i = self.stub_index(space)?;
        let pid = self.entries[i].stub.pid;
        if self.shared.binding == CpuBinding::Follow {
            self.follow_cpu(i);
        }
        self.intr.running.store(pid, Ordering::SeqCst);
        if self.intr.pending.load(Ordering::SeqCst) && self.intr.pending.swap(false, Ordering::SeqCst) {
            self.intr.running.store(0, Ordering::Release);
            self.last_fault = None;
            return Ok(Exit::Interrupted);
        }
        let r = self.run(i, pid, regs);
        self.intr.running.store(0, Ordering::Release);
        r.map_err(|e| self.fail(i, e))
    }

    fn cpu_time(&self) -> Option<std::time::Duration> {
        platform::host_thread_cpu_time(self.entries.get(self.cur)?.stub.pid)
    }

    fn fp_state(&mut self, space: &Arc<dyn AddressSpace>) -> Result<FpState, PlatformError> {
        let i = self.stub_index(space)?;
        let mut fp = FpState::default();
        sys::getfpregs(self.entries[i].stub.pid, &mut fp)
            .map_err(|e| self.fail(i, RunError::Ptrace("PTRACE_GETFPREGS", e)))?;
        Ok(fp)
    }

    fn set_fp_state(&mut self, space: &Arc<dyn AddressSpace>, fp: &FpState) -> Result<(), PlatformError> {
        let i = self.stub_index(space)?;
        sys::setfpregs(self.entries[i].stub.pid, fp).map_err(|e| self.fail(i, RunError::Ptrace("PTRACE_SETFPREGS", e)))
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.intr.clone()
    }
}

impl Drop for PtraceContext {
    fn drop(&mut self) {
        let here = self.binding.as_ref().is_some_and(|b| b.tid == current_tid());
        self.release_all(here);
        if here {
            if let Some(mask) = self.binding.as_ref().and_then(|b| b.saved_mask.as_ref()) {
                let _ = sys::set_affinity_mask(0, mask);
            }
        }
    }
}
