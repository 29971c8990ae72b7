//! Signal generation and delivery: pending sets, default actions, and
//! handler frames in the layout glibc's and musl's sigreturn expect.

use crate::kernel::{ExitStatus, JobReport, ThreadGroup};
use crate::locking::lock;
use crate::task::{default_action, DefaultAction, Task};
use abi::signal::*;
use abi::{Errno, KSigaction, Pod, SigInfo, StackT};
use platform::{FpState, Regs};
use std::sync::atomic::Ordering;
use std::sync::Arc;

const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
/// Bytes below the stack pointer the ABI lets functions use freely.
const RED_ZONE: u64 = 128;
const UNBLOCKABLE: u64 = sigbit(SIGKILL) | sigbit(SIGSTOP);
const STOP_SIGNALS: u64 = sigbit(SIGSTOP) | sigbit(SIGTSTP) | sigbit(SIGTTIN) | sigbit(SIGTTOU);

/// The kernel's `struct sigcontext` (x86-64), 256 bytes.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SigContext {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rax: u64,
    rcx: u64,
    rsp: u64,
    rip: u64,
    eflags: u64,
    cs: u16,
    gs: u16,
    fs: u16,
    ss: u16,
    err: u64,
    trapno: u64,
    oldmask: u64,
    cr2: u64,
    fpstate: u64,
    reserved: [u64; 8],
}
// SAFETY: repr(C), integer fields only, no implicit padding (4 u16 fill 8 bytes).
unsafe impl Pod for SigContext {}

/// The kernel's `struct ucontext` followed by the siginfo: the part of
/// `struct rt_sigframe` after the return address.
#[repr(C)]
#[derive(Clone, Copy)]
struct UContextFrame {
    uc_flags: u64,
    uc_link: u64,
    uc_stack: StackT,
    mcontext: SigContext,
    sigmask: u64,
    info: SigInfo,
}
// SAFETY: repr(C) of Pod fields, all 8-byte sized/aligned: no padding.
unsafe impl Pod for UContextFrame {}

/// A siginfo for a signal sent by a process (kill, tgkill).
pub fn user_info(sig: i32, code: i32, pid: i32, uid: u32) -> SigInfo {
    let mut i = SigInfo { signo: sig, code, ..Default::default() };
    i.fields[0] = (pid as u32 as u64) | ((uid as u64) << 32);
    i
}

fn is_ignored(act: &KSigaction, sig: i32) -> bool {
    act.handler == SIG_IGN || (act.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
}

/// What generating `sig` does before it is queued, whatever its
/// disposition: SIGCONT cancels pending stop signals; a stop signal
/// cancels a pending SIGCONT. The caller continues a stopped process
/// (`continue_group`) once SIGCONT is queued, so that its handler runs
/// before anything else the process does.
fn on_generate(tg: &Arc<ThreadGroup>, sig: i32) {
    let cancel = if sig == SIGCONT {
        STOP_SIGNALS
    } else if sigbit(sig) & STOP_SIGNALS != 0 {
        sigbit(SIGCONT)
    } else {
        return;
    };
    tg.pending.discard(cancel);
    for t in lock(&tg.threads).iter() {
        t.pending.discard(cancel);
    }
}

/// Resume a stopped process (SIGCONT was generated).
fn continue_group(tg: &Arc<ThreadGroup>) {
    {
        let mut j = lock(&tg.jobctl);
        if !j.stopped {
            return;
        }
        j.stopped = false;
        tg.stopped.store(false, Ordering::Release);
        j.report = Some(JobReport::Continued);
    }
    tg.jobctl_cv.notify_all();
    notify_parent_jobctl(tg, CLD_CONTINUED, SIGCONT);
}

/// Stop every thread of `tg` (a stop signal's default action).
pub fn stop_group(tg: &Arc<ThreadGroup>, sig: i32) {
    {
        let mut j = lock(&tg.jobctl);
        if j.stopped || tg.exit_status().is_some() {
            return;
        }
        j.stopped = true;
        tg.stopped.store(true, Ordering::Release);
        j.report = Some(JobReport::Stopped(sig));
    }
    tg.kick_all();
    notify_parent_jobctl(tg, CLD_STOPPED, sig);
}

/// Tell the parent of a stop or continue: SIGCHLD unless it asked not to
/// (SA_NOCLDSTOP), and a wake-up for its wait calls.
fn notify_parent_jobctl(tg: &Arc<ThreadGroup>, code: i32, status: i32) {
    let kernel = &tg.kernel;
    let ppid = *lock(&tg.ppid);
    if let Some(parent) = kernel.group(ppid) {
        let act = lock(&parent.signals).actions[(SIGCHLD - 1) as usize];
        if act.flags & SA_NOCLDSTOP == 0 {
            let mut info = SigInfo { signo: SIGCHLD, code, ..Default::default() };
            info.fields[0] = (tg.tgid as u32 as u64) | ((tg.creds().uid as u64) << 32);
            info.fields[1] = status as u32 as u64;
            send_signal(&parent, info);
        }
    }
    kernel.notify_waiters();
}

/// The first real-time signal (glibc's SIGRTMIN is the kernel's 34; the
/// kernel queues from 32 on).
const KERNEL_SIGRTMIN: i32 = 32;

/// Put `info` on `q`: a real-time signal queues one more instance,
/// charged to the receiver's RLIMIT_SIGPENDING. Past the limit, as Linux's
/// __send_signal: EAGAIN for sigqueue and kernel-made signals; a plain
/// kill (SI_USER) still makes the signal pending, without a new instance.
fn enqueue(tg: &ThreadGroup, q: &crate::kernel::SignalQueue, info: SigInfo) -> Result<(), Errno> {
    if info.signo < KERNEL_SIGRTMIN {
        q.push(info);
        return Ok(());
    }
    let limit = tg.rlimit(abi::flags::RLIMIT_SIGPENDING).cur;
    match tg.kernel.sigpending.charge(tg.creds().uid, limit) {
        Some(c) => q.push_charged(info, c),
        None if info.code == SI_USER => q.push(info),
        None => return Err(Errno::EAGAIN),
    }
    Ok(())
}

/// Make `sig` pending for process `tg` and wake a thread that can take it.
pub fn send_signal(tg: &Arc<ThreadGroup>, info: SigInfo) {
    let _ = try_send_signal(tg, info);
}

/// As [`send_signal`], failing with EAGAIN when a real-time signal finds
/// the receiver's RLIMIT_SIGPENDING used up.
pub fn try_send_signal(tg: &Arc<ThreadGroup>, info: SigInfo) -> Result<(), Errno> {
    let sig = info.signo;
    if !(1..=NSIG).contains(&sig) || tg.exit_status().is_some() {
        return Ok(());
    }
    if sig == SIGKILL {
        kill_with(tg, ExitStatus::Signaled { sig: SIGKILL, core: false });
        return Ok(());
    }
    on_generate(tg, sig);
    let threads = lock(&tg.threads).clone();
    let target = threads.iter().find(|t| !t.blocks(sig));
    let act = lock(&tg.signals).actions[(sig - 1) as usize];
    if !(target.is_some() && is_ignored(&act, sig)) {
        enqueue(tg, &tg.pending, info)?;
        if let Some(t) = target {
            t.kick();
        }
        tg.signal_queue.notify();
    }
    if sig == SIGCONT {
        continue_group(tg);
    }
    Ok(())
}

/// Make `sig` pending for thread `tid` of `tg` (tgkill, tkill).
pub fn send_signal_to_thread(tg: &Arc<ThreadGroup>, tid: i32, info: SigInfo) -> Result<(), Errno> {
    let sig = info.signo;
    let t = tg.thread(tid).ok_or(Errno::ESRCH)?;
    if sig == 0 {
        return Ok(());
    }
    if sig == SIGKILL {
        kill_with(tg, ExitStatus::Signaled { sig: SIGKILL, core: false });
        return Ok(());
    }
    on_generate(tg, sig);
    let blocked = t.blocks(sig);
    let act = lock(&tg.signals).actions[(sig - 1) as usize];
    if blocked || !is_ignored(&act, sig) {
        enqueue(tg, &t.pending, info)?;
        if !blocked {
            t.kick();
        }
        tg.signal_queue.notify();
    }
    if sig == SIGCONT {
        continue_group(tg);
    }
    Ok(())
}

/// End the whole process with `status` (unless it already has one).
pub fn kill_with(tg: &Arc<ThreadGroup>, status: ExitStatus) {
    {
        let mut e = lock(&tg.exit);
        if e.is_none() {
            *e = Some(status);
        }
    }
    crate::process::kill_process(tg);
}

impl Task {
    pub fn sigmask(&self) -> u64 {
        self.shared.sigmask.load(Ordering::Acquire)
    }

    /// Set the blocked set (SIGKILL and SIGSTOP are never blocked); wake
    /// the task if that unblocks a pending signal.
    pub fn set_sigmask(&mut self, mask: u64) {
        let mask = mask & !UNBLOCKABLE;
        self.shared.sigmask.store(mask, Ordering::Release);
        if self.pending_bits() & !mask != 0 {
            self.interrupt.interrupt();
        }
    }

    /// Signals pending for this thread or its process.
    pub fn pending_bits(&self) -> u64 {
        self.tg.pending.bits() | self.shared.pending.bits()
    }

    /// Pending signals not blocked.
    pub fn deliverable(&self) -> u64 {
        self.pending_bits() & !self.sigmask()
    }

    /// Raise `sig` against this thread itself (raise, SIGPIPE).
    pub fn queue_self(&self, sig: i32, code: i32) {
        let c = self.creds();
        let _ = send_signal_to_thread(&self.tg, self.tid, user_info(sig, code, self.tg.tgid, c.uid));
    }

    fn take_pending(&self, sig: i32) -> SigInfo {
        self.shared
            .pending
            .take(sig)
            .or_else(|| self.tg.pending.take(sig))
            .unwrap_or(SigInfo { signo: sig, ..Default::default() })
    }

    /// Remove and return the lowest pending signal in `set`, if any.
    pub fn dequeue_signal(&self, set: u64) -> Option<SigInfo> {
        let bits = self.pending_bits() & set;
        if bits == 0 {
            return None;
        }
        let sig = bits.trailing_zeros() as i32 + 1;
        Some(self.take_pending(sig))
    }

    /// Deliver what is pending and not blocked, after a syscall (whose
    /// error, if a restart code, is `restart`) or an interruption.
    pub fn handle_signals(&mut self, mut restart: Option<Errno>) {
        loop {
            let ready = self.deliverable();
            if ready == 0 {
                break;
            }
            let sig = ready.trailing_zeros() as i32 + 1;
            let info = self.take_pending(sig);
            let act = lock(&self.tg.signals).actions[(sig - 1) as usize];
            if act.handler == SIG_IGN {
                continue;
            }
            if act.handler == SIG_DFL {
                match default_action(sig) {
                    DefaultAction::Ignore => continue,
                    DefaultAction::Terminate => {
                        self.exit_group(ExitStatus::Signaled { sig, core: false });
                        return;
                    }
                    DefaultAction::Core => {
                        self.exit_group(ExitStatus::Signaled { sig, core: true });
                        return;
                    }
                    DefaultAction::Stop => {
                        // The run loop parks every thread; what else is
                        // pending is delivered after SIGCONT.
                        stop_group(&self.tg, sig);
                        break;
                    }
                }
            }
            if let Some(e) = restart.take() {
                self.apply_restart(e, act.flags & SA_RESTART != 0);
            }
            if self.setup_frame(sig, &info, &act).is_err() {
                self.exit_group(ExitStatus::Signaled { sig: SIGSEGV, core: true });
                return;
            }
        }
        if let Some(e) = restart {
            // No handler ran: the interrupted call starts again.
            self.apply_restart(e, true);
        }
        if self.deliverable() == 0 {
            self.interrupt.clear();
        }
    }

    /// Turn a restart code into a restart or EINTR.
    fn apply_restart(&mut self, e: Errno, sa_restart: bool) {
        let again = match e {
            Errno::ERESTARTNOINTR => true,
            Errno::ERESTARTSYS => sa_restart,
            _ => false,
        };
        let handler_ran = !sa_restart || e == Errno::ERESTARTNOHAND;
        if again || (!handler_ran && e == Errno::ERESTARTNOHAND) {
            self.regs.rax = self.regs.orig_rax;
            self.regs.rip = self.regs.rip.wrapping_sub(2);
        } else {
            self.regs.rax = (-(Errno::EINTR.0 as i64)) as u64;
        }
    }

    /// A synchronous fault: run the handler if there is one the signal is
    /// not blocked for, else the default action (which always kills).
    pub fn deliver_fault(&mut self, info: SigInfo) {
        let sig = info.signo;
        let act = lock(&self.tg.signals).actions[(sig - 1) as usize];
        let blocked = self.sigmask() & sigbit(sig) != 0;
        if act.handler > SIG_IGN && !blocked {
            if self.setup_frame(sig, &info, &act).is_err() {
                self.exit_group(ExitStatus::Signaled { sig: SIGSEGV, core: true });
            }
            return;
        }
        let core = default_action(sig) == DefaultAction::Core;
        self.exit_group(ExitStatus::Signaled { sig, core });
    }

    /// Push an rt_sigframe and point the registers at the handler.
    fn setup_frame(&mut self, sig: i32, info: &SigInfo, act: &KSigaction) -> Result<(), Errno> {
        if act.flags & SA_RESTORER == 0 || act.restorer == 0 {
            return Err(Errno::EFAULT);
        }
        // A handler interrupting an rseq critical section returns to its
        // abort handler (Linux's rseq_signal_deliver).
        self.rseq_preempted()?;
        let on_alt = self.on_altstack(self.regs.rsp);
        let mut sp = if act.flags & SA_ONSTACK != 0 && self.altstack.ss_flags & SS_DISABLE == 0 && !on_alt {
            self.altstack.ss_sp.wrapping_add(self.altstack.ss_size)
        } else {
            self.regs.rsp.wrapping_sub(RED_ZONE)
        };
        let space = self.mm().space().clone();
        let fp = self.ctx.fp_state(&space).map_err(|_| Errno::EFAULT)?;
        sp = sp.wrapping_sub(512) & !63;
        let fp_addr = sp;
        self.mm().copy_out(fp_addr, &fp.0)?;
        let frame_len = 8 + core::mem::size_of::<UContextFrame>() as u64;
        sp = (sp.wrapping_sub(frame_len) & !15).wrapping_sub(8);
        let r = &self.regs;
        let old_mask = self.saved_sigmask.take().unwrap_or(self.sigmask());
        let frame = UContextFrame {
            uc_flags: 0,
            uc_link: 0,
            uc_stack: StackT {
                ss_sp: self.altstack.ss_sp,
                ss_flags: if on_alt { SS_ONSTACK } else { self.altstack.ss_flags },
                pad: 0,
                ss_size: self.altstack.ss_size,
            },
            mcontext: SigContext {
                r8: r.r8,
                r9: r.r9,
                r10: r.r10,
                r11: r.r11,
                r12: r.r12,
                r13: r.r13,
                r14: r.r14,
                r15: r.r15,
                rdi: r.rdi,
                rsi: r.rsi,
                rbp: r.rbp,
                rbx: r.rbx,
                rdx: r.rdx,
                rax: r.rax,
                rcx: r.rcx,
                rsp: r.rsp,
                rip: r.rip,
                eflags: r.eflags,
                cs: r.cs as u16,
                ss: r.ss as u16,
                err: 0,
                trapno: if sig == SIGSEGV || sig == SIGBUS { 14 } else { 0 },
                oldmask: old_mask,
                cr2: if sig == SIGSEGV || sig == SIGBUS { info.fields[0] } else { 0 },
                fpstate: fp_addr,
                ..Default::default()
            },
            sigmask: old_mask,
            info: *info,
        };
        self.mm().copy_out(sp, &act.restorer.to_ne_bytes())?;
        self.mm().copy_out(sp + 8, frame.as_bytes())?;
        let uc_addr = sp + 8;
        let info_addr = uc_addr + core::mem::offset_of!(UContextFrame, info) as u64;
        self.regs.rip = act.handler;
        self.regs.rsp = sp;
        self.regs.rdi = sig as u64;
        self.regs.rsi = info_addr;
        self.regs.rdx = uc_addr;
        self.regs.rax = 0;
        // Clear the direction and trap flags, as the kernel does.
        self.regs.eflags &= !(0x400 | 0x100);
        let _ = self.ctx.set_fp_state(&space, &FpState::default());
        let mut mask = old_mask | act.mask;
        if act.flags & SA_NODEFER == 0 {
            mask |= sigbit(sig);
        }
        self.set_sigmask(mask);
        if act.flags & SA_RESETHAND != 0 {
            lock(&self.tg.signals).actions[(sig - 1) as usize] = KSigaction::default();
        }
        Ok(())
    }

    fn on_altstack(&self, sp: u64) -> bool {
        self.altstack.ss_flags & SS_DISABLE == 0
            && sp > self.altstack.ss_sp
            && sp <= self.altstack.ss_sp.wrapping_add(self.altstack.ss_size)
    }

    /// rt_sigreturn: restore the context saved by `setup_frame`. Returns
    /// the restored rax (the dispatcher writes it back unchanged).
    pub fn sigreturn(&mut self) -> Result<u64, Errno> {
        let uc_addr = self.regs.rsp;
        let frame: UContextFrame = self.mm().read_obj(uc_addr)?;
        let m = frame.mcontext;
        let mut r: Regs = self.regs;
        r.r8 = m.r8;
        r.r9 = m.r9;
        r.r10 = m.r10;
        r.r11 = m.r11;
        r.r12 = m.r12;
        r.r13 = m.r13;
        r.r14 = m.r14;
        r.r15 = m.r15;
        r.rdi = m.rdi;
        r.rsi = m.rsi;
        r.rbp = m.rbp;
        r.rbx = m.rbx;
        r.rdx = m.rdx;
        r.rax = m.rax;
        r.rcx = m.rcx;
        r.rsp = m.rsp;
        r.rip = m.rip;
        // Only the flags user code may change (as the kernel's FIX_EFLAGS).
        const USER_FLAGS: u64 = 0x0004_0dd5;
        r.eflags = (r.eflags & !USER_FLAGS) | (m.eflags & USER_FLAGS);
        r.orig_rax = u64::MAX;
        self.regs = r;
        if m.fpstate != 0 {
            let mut fp = FpState::default();
            self.mm().copy_in(m.fpstate, &mut fp.0)?;
            // MXCSR reserved bits would fault the host's restore.
            let mxcsr = u32::from_le_bytes([fp.0[24], fp.0[25], fp.0[26], fp.0[27]]) & 0xffff;
            fp.0[24..28].copy_from_slice(&mxcsr.to_le_bytes());
            let space = self.mm().space().clone();
            let _ = self.ctx.set_fp_state(&space, &fp);
        }
        self.set_sigmask(frame.sigmask);
        Ok(self.regs.rax)
    }
}

/// Arm (or with `value` zero, disarm) the process's ITIMER_REAL; returns
/// the previous (remaining, interval). The sandbox's timer thread sends
/// SIGALRM; huge values saturate (`timers::deadline_after`).
pub fn set_real_timer(
    tg: &Arc<ThreadGroup>,
    value: std::time::Duration,
    interval: std::time::Duration,
) -> (std::time::Duration, std::time::Duration) {
    use crate::timers::deadline_after;
    use std::time::Instant;
    let timers = &tg.kernel.timers;
    if !value.is_zero() {
        timers.start();
    }
    let now = Instant::now();
    // Armed under the timer's lock so that two racing calls cannot leave
    // an entry nobody cancels (the timer thread never holds its own lock
    // while a callback takes this one).
    let mut t = lock(&tg.itimer_real);
    let old = (t.deadline.map(|d| d.saturating_duration_since(now)).unwrap_or_default(), t.interval);
    t.generation += 1;
    let generation = t.generation;
    if let Some(id) = t.timer.take() {
        timers.cancel(id);
    }
    t.deadline = if value.is_zero() { None } else { Some(deadline_after(now, value)) };
    t.interval = interval;
    if let Some(deadline) = t.deadline {
        let weak = Arc::downgrade(tg);
        let fire = move |at: Instant| -> Option<Instant> {
            let tg = weak.upgrade()?;
            let next = {
                let mut t = lock(&tg.itimer_real);
                if t.generation != generation {
                    return None;
                }
                t.deadline = if t.interval.is_zero() { None } else { Some(deadline_after(at, t.interval)) };
                if t.deadline.is_none() {
                    t.timer = None;
                }
                t.deadline
            };
            if tg.exit_status().is_some() {
                return None;
            }
            send_signal(&tg, SigInfo { signo: SIGALRM, code: SI_KERNEL, ..Default::default() });
            next
        };
        t.timer = Some(timers.arm(deadline, Box::new(fire)));
    }
    old
}

/// Drop the process's timers from the timer thread (it exited).
pub fn cancel_timers(tg: &ThreadGroup) {
    let mut t = lock(&tg.itimer_real);
    t.generation += 1;
    t.deadline = None;
    if let Some(id) = t.timer.take() {
        tg.kernel.timers.cancel(id);
    }
}

/// How often the CPU timers' tick kicks a process's threads out of guest
/// code, so that time is charged and signals come on time.
const CPU_TICK: std::time::Duration = std::time::Duration::from_millis(4);

/// Arm (or with `value` zero, disarm) ITIMER_VIRTUAL (`which` 1) or
/// ITIMER_PROF (2); returns the previous (remaining, interval).
///
/// Time is charged by the run loops of the process's threads; while a
/// timer is armed the timer thread kicks threads running guest code every
/// few milliseconds, so that a guest that makes no syscalls is still
/// charged (and signalled) on time.
pub fn set_cpu_timer(
    tg: &Arc<ThreadGroup>,
    which: usize,
    value: std::time::Duration,
    interval: std::time::Duration,
) -> (std::time::Duration, std::time::Duration) {
    use std::time::{Duration, Instant};
    let i = which.clamp(1, 2) - 1;
    let old = {
        let mut t = lock(&tg.cpu_timers);
        let old = (Duration::from_nanos(t[i].left), Duration::from_nanos(t[i].interval));
        t[i].left = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        t[i].interval = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        old
    };
    if !value.is_zero() && !tg.cpu_ticker.swap(true, Ordering::AcqRel) {
        tg.kernel.timers.start();
        let weak = Arc::downgrade(tg);
        let tick = move |_at: Instant| -> Option<Instant> {
            let tg = weak.upgrade()?;
            let armed = |tg: &ThreadGroup| {
                let t = lock(&tg.cpu_timers);
                t[0].left != 0 || t[1].left != 0
            };
            if !armed(&tg) || tg.exit_status().is_some() {
                tg.cpu_ticker.store(false, Ordering::Release);
                // A timer armed just now found the flag up and armed no
                // tick of its own: keep ticking for it.
                if tg.exit_status().is_some() || !armed(&tg) || tg.cpu_ticker.swap(true, Ordering::AcqRel) {
                    return None;
                }
            }
            for t in lock(&tg.threads).iter() {
                t.kicker.interrupt();
            }
            Some(Instant::now() + CPU_TICK)
        };
        tg.kernel.timers.arm(Instant::now() + CPU_TICK, Box::new(tick));
    }
    old
}
