//! Contexts: one guest thread, run in one stub thread per address space.
//! Unlike ptrace, any Sentry thread may drive any stub thread: the hand-off
//! is through shared memory.

use crate::frame::*;
use crate::layout::*;
use crate::process::{lock, on_signal_stack, StubProcess, StubThread};
use crate::space;
use crate::sys;
use abi::signal::{SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGSYS, SIGTRAP};
use abi::{Errno, SigInfo};
use platform::{Access, AddressSpace, Context, Exit, FpState, Interrupter, PlatformError, Regs, SyscallSite};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Shared between a context and its interrupters.
pub(crate) struct InterruptState {
    /// An interrupt not yet reported by `switch`.
    pending: AtomicBool,
    /// The stub thread running the guest: pid << 32 | tid (0: none).
    target: AtomicU64,
}

impl InterruptState {
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }
}

impl Interrupter for InterruptState {
    fn interrupt(&self) {
        // As in the ptrace platform: either `switch` sees `pending` before
        // resuming the guest, or we see its stub thread and kick it. A kick
        // that lands while the thread is parked stays pending (the handler
        // blocks signals) and shows up as a stale interrupt, then ignored.
        self.pending.store(true, Ordering::SeqCst);
        let t = self.target.load(Ordering::SeqCst);
        if t != 0 {
            let _ = sys::tgkill((t >> 32) as i32, t as u32 as i32, crate::INTERRUPT_SIGNAL);
        }
    }
}

struct Entry {
    key: usize,
    space: Weak<dyn AddressSpace>,
    proc: Arc<StubProcess>,
    thread: StubThread,
    parked: Parked,
    /// Traps per site in this thread (see `patch.rs`); None when the
    /// platform does not patch.
    hits: Option<std::collections::HashMap<u64, u32>>,
    /// Bulk calls (`follow_bulk`): long calls answered without blocking
    /// while the stub thread polled on another CPU count up, short ones
    /// down; the CPU the stub thread is bound to (-1: none).
    bulk: i32,
    bound_cpu: i32,
    /// Registers reported by the trampoline, never completed, when the
    /// thread was moved to its handler (`upgrade`): the next full frame
    /// takes the rest of them from the trampoline's copy.
    unmerged: Option<Regs>,
}

/// Give an entry's stub thread back to its process's pool, free to run
/// on any CPU again (`follow_bulk` may have bound it).
fn release(e: &Entry) {
    if e.bound_cpu >= 0 {
        sys::bind_thread(e.thread.tid, None);
    }
    e.proc.release_thread(e.thread);
}

/// Where a stopped stub thread waits for the Sentry.
// One per context entry, set on every patched syscall: boxing the
// registers would allocate each time.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
enum Parked {
    /// In the signal handler, with a full frame on its signal stack.
    Handler,
    /// In the patch trampoline (`patch.rs`), having reported these
    /// registers: only rax may change on the fast way back. Until
    /// `complete`, only the syscall's number and arguments in them are
    /// the guest's (`get_tregs`).
    Trampoline { saved: Regs, complete: bool },
}

/// Where the Sentry tells the stub thread whether to poll for the answer
/// to the syscall it is serving: that thread's `M_ANSWER_HINT` word (null
/// while the guest runs). Set and cleared by the context; written by
/// `answer_later` and by the block hint, all on the task's own thread.
#[derive(Default)]
pub(crate) struct AnswerHint {
    word: AtomicPtr<AtomicU32>,
}

impl AnswerHint {
    fn say(&self, hint: u32) {
        let p = self.word.load(Ordering::Relaxed);
        if !p.is_null() {
            // SAFETY: non-null only between an event's report and the next
            // `switch` of the context that set it (which clears it first,
            // as its `drop` does), while the entry holding the stub
            // process, and so its mapped region, is alive; the hint is
            // written by the task's own thread, the one using the context.
            unsafe { (*p).store(hint, Ordering::Release) };
        }
    }
}

pub(crate) struct SystrapContext {
    entries: Vec<Entry>,
    cur: usize,
    intr: Arc<InterruptState>,
    hint: Arc<AnswerHint>,
    switches: u32,
    /// The return address of the last syscall that came through SIGSYS
    /// (what `patch_hot` may count).
    last_trap: Option<u64>,
    /// When the last syscall was handed to the Sentry (its service time
    /// is measured at the next switch), and how long the switch that
    /// ended with it took (the guest's own run, mostly).
    served_since: Option<(platform::clock::Stamp, Duration)>,
    timed: u32,
    /// The Sentry said the call being served moved much data.
    bulk_call: std::cell::Cell<bool>,
}

const SYS_SECCOMP: i32 = 1;
const SI_KERNEL: i32 = 0x80;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X86_TRAP_PF: u64 = 14;

impl SystrapContext {
    pub(crate) fn new() -> SystrapContext {
        SystrapContext {
            entries: Vec::new(),
            cur: usize::MAX,
            intr: Arc::new(InterruptState { pending: AtomicBool::new(false), target: AtomicU64::new(0) }),
            hint: Arc::new(AnswerHint::default()),
            switches: 0,
            last_trap: None,
            served_since: None,
            timed: 0,
            bulk_call: std::cell::Cell::new(false),
        }
    }

    /// Keep a stub thread on its Sentry thread's CPU while their calls are
    /// bulk: moving much data (`bulk_transfer`), answered without
    /// blocking, but only after a long while (a 64 KiB receive from a host
    /// socket). A stub thread polling on the
    /// other CPU through such calls takes that CPU from whoever else has
    /// work (the other end of the transfer); on one CPU the two take
    /// turns and neither polls (`M_STUB_CPU`). Short calls undo it (there
    /// the poll across CPUs is what answers fast), and so does guest code
    /// that ran long (`ran`): a thread that computes must not stay bound.
    fn follow_bulk(&mut self, i: usize, service: Duration, ran: Duration, bulk: bool) {
        const LONG: Duration = Duration::from_micros(12);
        const SHORT: Duration = Duration::from_micros(4);
        const COMPUTED: Duration = Duration::from_micros(500);
        const AFTER: i32 = 4;
        let Some(e) = self.entries.get_mut(i) else { return };
        if ran >= COMPUTED {
            e.bulk = 0;
        } else if service < SHORT {
            e.bulk = (e.bulk - 1).max(-AFTER);
        } else if service >= LONG && bulk {
            let m = thread_off(e.thread.index as u64);
            if e.proc.region.u32(m + M_ANSWER_HINT).load(Ordering::Relaxed) != HINT_NONE {
                return;
            }
            // SAFETY: sched_getcpu takes no arguments.
            let cpu = unsafe { libc::sched_getcpu() };
            if cpu < 0 || e.proc.region.u32(m + M_STUB_CPU).load(Ordering::Relaxed) == cpu as u32 {
                return;
            }
            e.bulk = (e.bulk + 1).min(AFTER);
            if e.bulk >= AFTER && e.bound_cpu != cpu {
                sys::bind_thread(e.thread.tid, Some(cpu as usize));
                e.bound_cpu = cpu;
            }
            return;
        }
        if e.bulk <= 0 && e.bound_cpu >= 0 {
            sys::bind_thread(e.thread.tid, None);
            e.bound_cpu = -1;
        }
    }

    #[inline(always)]
    fn entry_index(&mut self, space: &Arc<dyn AddressSpace>) -> Result<usize, PlatformError> {
        let key = space::key_of(space);
        let i = self.cur;
        if i < self.entries.len() && self.entries[i].key == key && !self.entries[i].proc.is_dead() {
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
        let proc = space::lookup(key).ok_or_else(|| {
            PlatformError::Unavailable("address space was not created by the systrap platform".into())
        })?;
        let thread = proc.acquire_thread()?;
        let hits = proc.slots.as_ref().map(|_| std::collections::HashMap::new());
        let e = Entry {
            key,
            space: Arc::downgrade(space),
            proc,
            thread,
            parked: Parked::Handler,
            hits,
            bulk: 0,
            bound_cpu: -1,
            unmerged: None,
        };
        // A fresh thread starts from the initial FPU state, not whatever
        // the control thread (a fork of the Sentry) had.
        if let Some(off) = fp_offset(&e) {
            write_fp(&e.proc, off, &FpState::default(), true);
        }
        self.entries.push(e);
        self.cur = self.entries.len() - 1;
        Ok(self.cur)
    }

    /// Drop entries whose address space is gone or whose stub died.
    fn prune(&mut self) {
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].space.strong_count() == 0 || self.entries[i].proc.is_dead() {
                let e = self.entries.swap_remove(i);
                release(&e);
                self.cur = usize::MAX;
            } else {
                i += 1;
            }
        }
    }

    /// Serve the events that are not the Sentry's business (stale
    /// interrupts, signals sent from outside, 32-bit syscalls) until one is.
    fn run(&mut self, i: usize, regs: &mut Regs) -> Result<Exit, PlatformError> {
        self.last_trap = None;
        match &self.entries[i].parked {
            Parked::Trampoline { saved, .. } if only_rax_changed(saved, regs) => {
                let e = &self.entries[i];
                let m = thread_off(e.thread.index as u64);
                e.proc.region.u64(m + M_T_RAX).store(regs.rax, Ordering::Relaxed);
            }
            parked => {
                if let Parked::Trampoline { .. } = parked {
                    self.upgrade(i)?;
                }
                let e = &mut self.entries[i];
                // A full frame is written below: registers the Sentry did
                // not ask for must be the guest's, not a stale copy.
                if let Some(mut saved) = e.unmerged.take() {
                    complete_from_trampoline(&e.proc, e.thread, &mut saved, regs);
                }
                put_regs(&e.proc, e.thread, regs)?;
            }
        }
        let e = &mut self.entries[i];
        e.parked = Parked::Handler;
        let (proc, t) = (&e.proc, e.thread);
        let hint = proc.region.u32(thread_off(t.index as u64) + M_ANSWER_HINT);
        // (Stored only if set: see `set_state`.)
        if hint.load(Ordering::Relaxed) != HINT_NONE {
            hint.store(HINT_NONE, Ordering::Relaxed);
        }
        proc.resume(t);
        loop {
            proc.wait_event(t, Some(&self.intr), None)?;
            if let Some((exit, in_trampoline)) = classify(proc, t, &self.intr, regs)? {
                self.hint.word.store(hint as *const AtomicU32 as *mut AtomicU32, Ordering::Relaxed);
                if in_trampoline {
                    e.parked = Parked::Trampoline { saved: *regs, complete: false };
                } else if matches!(exit, Exit::Syscall) {
                    self.last_trap = Some(regs.rip);
                }
                return Ok(exit);
            }
            proc.resume(t);
        }
    }

    /// Turn a stop in the patch trampoline into a stop in the handler,
    /// with a full frame (the registers in it are rewritten before the
    /// thread runs again).
    fn upgrade(&mut self, i: usize) -> Result<(), PlatformError> {
        let e = &mut self.entries[i];
        match e.parked {
            Parked::Handler => return Ok(()),
            Parked::Trampoline { saved, complete: false } => e.unmerged = Some(saved),
            Parked::Trampoline { complete: true, .. } => {}
        }
        let (proc, t) = (&e.proc, e.thread);
        proc.region.u32(thread_off(t.index as u64) + M_ANSWER_HINT).store(HINT_NONE, Ordering::Relaxed);
        proc.set_state(t, STATE_UPGRADE);
        // Interruptible: a guest that forged the trampoline's stop is not
        // there to trap, and may run on until killed (then its report is
        // not the upgrade trap, and the stub dies below).
        proc.wait_event(t, Some(&self.intr), None)?;
        let m = thread_off(t.index as u64);
        let state = proc.region.u32(m + M_STATE).load(Ordering::Acquire);
        let signo = proc.region.u32(m + M_SIGNO).load(Ordering::Relaxed) as i32;
        let uc = uc_offset(proc, t)?;
        let rip = proc.region.u64(uc + UC_GREGS + 8 * G_RIP).load(Ordering::Relaxed);
        if state != STATE_EVENT || signo != SIGTRAP || rip != proc.upgrade_ip {
            return Err(corrupt(proc, "trampoline stop"));
        }
        e.parked = Parked::Handler;
        Ok(())
    }
}

/// The registers after a syscall differ from those before only in rax
/// (the result): the trampoline can take them back by itself.
fn only_rax_changed(before: &Regs, after: &Regs) -> bool {
    // Field by field: no copy of either (this runs at every patched call).
    macro_rules! same {
        ($($f:ident),*) => { true $(&& before.$f == after.$f)* };
    }
    same!(
        r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rcx, rdx, rsi, rdi, rip, cs, eflags, rsp, ss, fs_base, gs_base,
        ds, es, fs, gs
    )
}

/// The registers of a patched site's syscall that share the hand-off's
/// cache line (see `layout.rs`): its number and arguments. The others keep
/// what `regs` held; [`get_trest`] reads them when the Sentry asks.
fn get_tregs(proc: &StubProcess, t: StubThread, regs: &mut Regs) {
    let m = thread_off(t.index as u64);
    let g = |off: u64| proc.region.u64(m + off).load(Ordering::Relaxed);
    regs.rax = g(M_T_RAX);
    regs.rdi = g(M_T_RDI);
    regs.rsi = g(M_T_RSI);
    regs.rdx = g(M_T_RDX);
    regs.r10 = g(M_T_R10);
    regs.r8 = g(M_T_R8);
    regs.r9 = g(M_T_R9);
    regs.orig_rax = regs.rax;
}

/// The rest of the registers the trampoline stored (see `stubcode.rs`).
fn get_trest(proc: &StubProcess, t: StubThread, regs: &mut Regs) {
    let m = thread_off(t.index as u64);
    let g = |off: u64| proc.region.u64(m + off).load(Ordering::Relaxed);
    regs.r15 = g(M_T_R15);
    regs.r14 = g(M_T_R14);
    regs.r13 = g(M_T_R13);
    regs.r12 = g(M_T_R12);
    regs.rbp = g(M_T_RBP);
    regs.rbx = g(M_T_RBX);
    regs.r11 = g(M_T_R11);
    regs.rcx = g(M_T_RCX);
    regs.rip = g(M_T_RIP);
    regs.rsp = g(M_T_RSP);
    regs.eflags = g(M_T_EFL);
    regs.fs_base = g(M_T_FS);
    // The trampoline runs only while the guest's gs base is 0.
    regs.gs_base = 0;
    regs.cs = 0x33;
    regs.ss = 0x2b;
    regs.fs = 0;
    regs.gs = 0;
}

/// Complete `regs` (reported by the trampoline, `saved` as reported)
/// with the registers [`get_tregs`] left out, keeping any the Sentry has
/// changed since; `saved` is completed too.
fn complete_from_trampoline(proc: &StubProcess, t: StubThread, saved: &mut Regs, regs: &mut Regs) {
    let mut rest = *saved;
    get_trest(proc, t, &mut rest);
    macro_rules! merge {
        ($($f:ident),*) => {$(
            if regs.$f == saved.$f {
                regs.$f = rest.$f;
            }
        )*};
    }
    merge!(r15, r14, r13, r12, rbp, rbx, r11, rcx, rip, rsp, eflags, fs_base, gs_base, cs, ss, fs, gs);
    *saved = rest;
}

/// What stub thread `t` reported, as an exit (and whether it is parked in
/// the patch trampoline rather than its handler); None if it is none of
/// the Sentry's business and the thread should just go on.
fn classify(
    proc: &StubProcess,
    t: StubThread,
    intr: &InterruptState,
    regs: &mut Regs,
) -> Result<Option<(Exit, bool)>, PlatformError> {
    let m = thread_off(t.index as u64);
    if proc.region.u32(m + M_STATE).load(Ordering::Acquire) == STATE_TEVENT {
        get_tregs(proc, t, regs);
        return Ok(Some((Exit::Syscall, true)));
    }
    classify_signal(proc, t, intr, regs).map(|e| e.map(|e| (e, false)))
}

fn classify_signal(
    proc: &StubProcess,
    t: StubThread,
    intr: &InterruptState,
    regs: &mut Regs,
) -> Result<Option<Exit>, PlatformError> {
    {
        let m = thread_off(t.index as u64);
        let signo = proc.region.u32(m + M_SIGNO).load(Ordering::Relaxed) as i32;
        let info_addr = proc.region.u64(m + M_SIGINFO).load(Ordering::Relaxed);
        let Some(info_off) = on_signal_stack(t.index, info_addr, 128) else {
            return Err(corrupt(proc, "siginfo"));
        };
        let mut info = SigInfo::default();
        {
            let mut b = [0u8; 128];
            proc.region.read(info_off, &mut b);
            info.signo = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            info.errno = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            info.code = i32::from_le_bytes([b[8], b[9], b[10], b[11]]);
            for (k, f) in info.fields.iter_mut().enumerate() {
                let o = 16 + 8 * k;
                let mut w = [0u8; 8];
                w.copy_from_slice(&b[o..o + 8]);
                *f = u64::from_le_bytes(w);
            }
        }
        if signo != info.signo {
            return Err(corrupt(proc, "signal number"));
        }
        let uc = uc_offset(proc, t)?;
        let greg = |k: u64| proc.region.u64(uc + UC_GREGS + 8 * k).load(Ordering::Relaxed);
        match signo {
            SIGSYS if info.code == SYS_SECCOMP => {
                let arch = (info.fields[1] >> 32) as u32;
                if arch != AUDIT_ARCH_X86_64 {
                    // int 0x80 and friends: no 32-bit ABI here.
                    proc.region
                        .u64(uc + UC_GREGS + 8 * G_RAX)
                        .store(-(Errno::ENOSYS.0 as i64) as u64, Ordering::Relaxed);
                    return Ok(None);
                }
                get_regs(proc, t, uc, regs);
                regs.orig_rax = regs.rax;
                Ok(Some(Exit::Syscall))
            }
            crate::INTERRUPT_SIGNAL => {
                if intr.pending.swap(false, Ordering::SeqCst) {
                    get_regs(proc, t, uc, regs);
                    return Ok(Some(Exit::Interrupted));
                }
                Ok(None)
            }
            SIGSEGV | SIGBUS if info.code > 0 && info.code != SI_KERNEL => {
                get_regs(proc, t, uc, regs);
                // In a wrapper slot: the site's own load faulted (report
                // it at the site), or the slot's store below rsp did (not
                // the guest's doing: on at the site's `syscall`).
                let origin = proc.slots.as_ref().and_then(|s| lock(s).fault_origin(regs.rip));
                match origin {
                    Some(Ok(site)) => regs.rip = site,
                    Some(Err(syscall)) => {
                        regs.rip = syscall;
                        put_regs(proc, t, regs)?;
                        return Ok(None);
                    }
                    None => {}
                }
                let err = greg(G_ERR);
                let access = if greg(G_TRAPNO) != X86_TRAP_PF {
                    Access::Read
                } else if err & 0x10 != 0 {
                    Access::Exec
                } else if err & 0x2 != 0 {
                    Access::Write
                } else {
                    Access::Read
                };
                Ok(Some(Exit::Fault { addr: info.fields[0], access, signo, code: info.code }))
            }
            SIGTRAP if greg(G_RIP) == proc.kick_ip && proc.slots.is_some() => {
                // An interrupt deferred by the trampoline: the registers are
                // the guest's, back from its syscall, resuming at rcx.
                get_regs(proc, t, uc, regs);
                regs.rip = regs.rcx;
                if intr.pending.swap(false, Ordering::SeqCst) {
                    return Ok(Some(Exit::Interrupted));
                }
                put_regs(proc, t, regs)?;
                Ok(None)
            }
            SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP if info.code > 0 => {
                get_regs(proc, t, uc, regs);
                Ok(Some(Exit::Signal(Box::new(info))))
            }
            _ => {
                // Sent with kill(2) & co from outside: not the guest's doing.
                tracing::debug!("systrap: stub {}: ignoring signal {signo} (code {})", proc.pid, info.code);
                Ok(None)
            }
        }
    }
}

/// The stub lied about where its frame is: only its own guest can have
/// done that. Kill it.
#[cold]
fn corrupt(proc: &StubProcess, what: &str) -> PlatformError {
    tracing::warn!("systrap: stub {} reported a bad {what}: killing it", proc.pid);
    proc.kill();
    PlatformError::StubDied(format!("stub process {} corrupted its own message page", proc.pid))
}

/// The offset of thread `t`'s current ucontext.
fn uc_offset(proc: &StubProcess, t: StubThread) -> Result<u64, PlatformError> {
    uc_at(proc, t).ok_or_else(|| corrupt(proc, "ucontext"))
}

fn get_regs(proc: &StubProcess, t: StubThread, uc: u64, regs: &mut Regs) {
    let g = |k: u64| proc.region.u64(uc + UC_GREGS + 8 * k).load(Ordering::Relaxed);
    regs.r8 = g(G_R8);
    regs.r9 = g(G_R8 + 1);
    regs.r10 = g(G_R8 + 2);
    regs.r11 = g(G_R8 + 3);
    regs.r12 = g(G_R8 + 4);
    regs.r13 = g(G_R8 + 5);
    regs.r14 = g(G_R8 + 6);
    regs.r15 = g(G_R8 + 7);
    regs.rdi = g(G_RDI);
    regs.rsi = g(G_RSI);
    regs.rbp = g(G_RBP);
    regs.rbx = g(G_RBX);
    regs.rdx = g(G_RDX);
    regs.rax = g(G_RAX);
    regs.rcx = g(G_RCX);
    regs.rsp = g(G_RSP);
    regs.rip = g(G_RIP);
    regs.eflags = g(G_EFL);
    let csgsfs = g(G_CSGSFS);
    regs.cs = csgsfs & 0xffff;
    regs.gs = (csgsfs >> 16) & 0xffff;
    regs.fs = (csgsfs >> 32) & 0xffff;
    regs.ss = (csgsfs >> 48) & 0xffff;
    regs.orig_rax = u64::MAX;
    if proc.fsgsbase {
        let m = thread_off(t.index as u64);
        regs.fs_base = proc.region.u64(m + M_FS_BASE).load(Ordering::Relaxed);
        regs.gs_base = proc.region.u64(m + M_GS_BASE).load(Ordering::Relaxed);
        // Ours (see put_regs), standing for the guest's 0.
        if proc.slots.is_some() && regs.gs_base == STUB_BASE + m {
            regs.gs_base = 0;
        }
    }
}

fn put_regs(proc: &StubProcess, t: StubThread, regs: &Regs) -> Result<(), PlatformError> {
    let uc = uc_offset(proc, t)?;
    let s = |k: u64, v: u64| proc.region.u64(uc + UC_GREGS + 8 * k).store(v, Ordering::Relaxed);
    s(G_R8, regs.r8);
    s(G_R8 + 1, regs.r9);
    s(G_R8 + 2, regs.r10);
    s(G_R8 + 3, regs.r11);
    s(G_R8 + 4, regs.r12);
    s(G_R8 + 5, regs.r13);
    s(G_R8 + 6, regs.r14);
    s(G_R8 + 7, regs.r15);
    s(G_RDI, regs.rdi);
    s(G_RSI, regs.rsi);
    s(G_RBP, regs.rbp);
    s(G_RBX, regs.rbx);
    s(G_RDX, regs.rdx);
    s(G_RAX, regs.rax);
    s(G_RCX, regs.rcx);
    s(G_RSP, regs.rsp);
    s(G_RIP, regs.rip);
    s(G_EFL, regs.eflags);
    // Always 64-bit user code: keep the kernel's ss, force cs.
    let csgsfs = proc.region.u64(uc + UC_GREGS + 8 * G_CSGSFS).load(Ordering::Relaxed);
    s(G_CSGSFS, (csgsfs & !0xffff) | 0x33);
    let m = thread_off(t.index as u64);
    proc.region.u64(m + M_FS_BASE).store(regs.fs_base, Ordering::Relaxed);
    // While the guest's gs base is 0, the host's points at the message
    // page: how the patch trampoline finds it.
    let gs = if regs.gs_base == 0 && proc.slots.is_some() { STUB_BASE + m } else { regs.gs_base };
    proc.region.u64(m + M_GS_BASE).store(gs, Ordering::Relaxed);
    Ok(())
}

/// The offset of the entry's saved FPU state, if the frame is sane.
fn fp_offset(e: &Entry) -> Option<u64> {
    let uc = uc_offset(&e.proc, e.thread).ok()?;
    fp_at(&e.proc, e.thread, uc)
}

impl Context for SystrapContext {
    fn switch(&mut self, space: &Arc<dyn AddressSpace>, regs: &mut Regs) -> Result<Exit, PlatformError> {
        self.hint.word.store(std::ptr::null_mut(), Ordering::Relaxed);
        if self.entries.len() > 1 {
            self.switches = self.switches.wrapping_add(1);
            if self.switches.is_multiple_of(4096) {
                self.prune();
            }
        }
        let i = self.entry_index(space)?;
        let e = &self.entries[i];
        let target = (e.proc.pid as u64) << 32 | e.thread.tid as u32 as u64;
        self.intr.target.store(target, Ordering::SeqCst);
        if self.intr.pending.load(Ordering::SeqCst) && self.intr.pending.swap(false, Ordering::SeqCst) {
            self.intr.target.store(0, Ordering::Release);
            return Ok(Exit::Interrupted);
        }
        // One call in four is timed (`follow_bulk`): two clock reads per
        // call would show on the cheapest ones.
        let bulk = self.bulk_call.replace(false);
        if let Some((served, ran)) = self.served_since.take() {
            self.follow_bulk(i, platform::clock::now().saturating_duration_since(served), ran, bulk);
        }
        self.timed = self.timed.wrapping_add(1);
        let start = self.timed.is_multiple_of(4).then(platform::clock::now);
        let r = self.run(i, regs);
        if let (Some(start), Ok(Exit::Syscall)) = (start, &r) {
            let now = platform::clock::now();
            self.served_since = Some((now, now.saturating_duration_since(start)));
        }
        self.intr.target.store(0, Ordering::Release);
        if r.is_err() {
            self.prune();
        }
        r
    }

    fn complete_regs(&mut self, regs: &mut Regs) {
        let Some(e) = self.entries.get_mut(self.cur) else { return };
        let Entry { proc, thread, parked, unmerged, .. } = e;
        match parked {
            Parked::Trampoline { saved, complete } if !*complete => {
                complete_from_trampoline(proc, *thread, saved, regs);
                *complete = true;
            }
            Parked::Handler => {
                if let Some(mut saved) = unmerged.take() {
                    complete_from_trampoline(proc, *thread, &mut saved, regs);
                }
            }
            Parked::Trampoline { .. } => {}
        }
    }

    fn cpu_time(&self) -> Option<std::time::Duration> {
        platform::host_thread_cpu_time(self.entries.get(self.cur)?.thread.tid)
    }

    fn fp_state(&mut self, space: &Arc<dyn AddressSpace>) -> Result<FpState, PlatformError> {
        let i = self.entry_index(space)?;
        self.upgrade(i)?;
        let e = &self.entries[i];
        let off = fp_offset(e).ok_or_else(|| corrupt(&e.proc, "FPU state"))?;
        let mut fp = FpState::default();
        e.proc.region.read(off, &mut fp.0);
        Ok(fp)
    }

    fn set_fp_state(&mut self, space: &Arc<dyn AddressSpace>, fp: &FpState) -> Result<(), PlatformError> {
        let i = self.entry_index(space)?;
        self.upgrade(i)?;
        let e = &self.entries[i];
        let off = fp_offset(e).ok_or_else(|| corrupt(&e.proc, "FPU state"))?;
        write_fp(&e.proc, off, fp, false);
        Ok(())
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.intr.clone()
    }

    fn block_hint(&self) -> Option<Arc<dyn Fn() + Send + Sync>> {
        let hint = self.hint.clone();
        Some(Arc::new(move || hint.say(HINT_LATER)))
    }

    fn answer_later(&mut self) {
        self.hint.say(HINT_LATER);
    }

    fn bulk_transfer(&self) {
        self.bulk_call.set(true);
    }

    fn patch_hot(&mut self, space: &Arc<dyn AddressSpace>, ret: u64) -> bool {
        // Out of a rel32 jump's reach (a static executable low in memory):
        // not worth counting.
        if !crate::patch::in_reach(ret) {
            return false;
        }
        let Some(e) = self.entries.get_mut(self.cur) else { return false };
        let Some(hits) = e.hits.as_mut() else { return false };
        self.last_trap == Some(ret) && e.key == space::key_of(space) && crate::patch::count_hit(hits, ret)
    }

    fn patch_slot(&mut self, ret: u64, site: SyscallSite) -> Option<u64> {
        self.entries.get(self.cur)?.proc.patch_slot(ret, site)
    }
}

impl Drop for SystrapContext {
    fn drop(&mut self) {
        self.hint.word.store(std::ptr::null_mut(), Ordering::Relaxed);
        for i in 0..self.entries.len() {
            // A thread goes back to the pool stopped in its handler, as
            // `find_or_create` expects; one that will not is left alone.
            if self.entries[i].space.strong_count() > 0 && self.upgrade(i).is_ok() {
                let e = &self.entries[i];
                release(e);
            }
        }
        self.entries.clear();
    }
}
