//! The signal frame of a parked stub thread: where the kernel saved the
//! guest's registers and FPU state when the thread entered its handler,
//! and what `rt_sigreturn` restores from it. It lies on the thread's
//! signal stack, which guest code can write: everything read here is
//! checked to lie on that stack first.

use crate::layout::*;
use crate::process::{on_signal_stack, StubProcess, StubThread};
use platform::FpState;
use std::sync::atomic::Ordering;

// ucontext_t (x86-64) offsets.
pub(crate) const UC_GREGS: u64 = 40;
pub(crate) const UC_FPREGS: u64 = 224;
pub(crate) const UC_SIZE: u64 = 296 + 8;
/// stack_t uc_stack: ss_sp, ss_flags (and padding), ss_size.
const UC_STACK: u64 = 16;
/// sigcontext's reserved words, after the fpstate pointer.
const UC_RESERVED: u64 = 232;
const UC_SIGMASK: u64 = 296;
// gregs indices.
pub(crate) const G_R8: u64 = 0;
pub(crate) const G_RDI: u64 = 8;
pub(crate) const G_RSI: u64 = 9;
pub(crate) const G_RBP: u64 = 10;
pub(crate) const G_RBX: u64 = 11;
pub(crate) const G_RDX: u64 = 12;
pub(crate) const G_RAX: u64 = 13;
pub(crate) const G_RCX: u64 = 14;
pub(crate) const G_RSP: u64 = 15;
pub(crate) const G_RIP: u64 = 16;
pub(crate) const G_EFL: u64 = 17;
pub(crate) const G_CSGSFS: u64 = 18;
pub(crate) const G_ERR: u64 = 19;
pub(crate) const G_TRAPNO: u64 = 20;
/// err, trapno, oldmask, cr2: what the kernel says of the last signal.
const G_LAST: u64 = 23;

/// uc_flags of these threads' frames: the FPU state is in xsave format
/// (when the CPU has it); ss is saved (and restored leniently).
const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
/// 64-bit user code and data selectors.
const USER_CS: u64 = 0x33;
const USER_DS: u64 = 0x2b;

pub(crate) const FXSAVE_SIZE: u64 = 512;
/// The xsave header's xstate_bv follows the legacy area.
const XSTATE_BV: u64 = 512;
/// The extended components start after the 64-byte xsave header.
const XSAVE_EXTENDED: u64 = FXSAVE_SIZE + 64;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const SW_RESERVED: usize = 464;
/// `_fpx_sw_bytes.xstate_size`: the xsave area's size in this frame.
const SW_XSTATE_SIZE: u64 = SW_RESERVED as u64 + 16;

const SYS_GETPID: u64 = 39;

/// The offset of thread `t`'s current ucontext, if its message page puts
/// it on the thread's signal stack.
pub(crate) fn uc_at(proc: &StubProcess, t: StubThread) -> Option<u64> {
    let addr = proc.region.u64(thread_off(t.index as u64) + M_UCONTEXT).load(Ordering::Relaxed);
    on_signal_stack(t.index, addr, UC_SIZE)
}

/// The offset of the FPU state of the frame at `uc`, if its pointer is
/// sane.
pub(crate) fn fp_at(proc: &StubProcess, t: StubThread, uc: u64) -> Option<u64> {
    let addr = proc.region.u64(uc + UC_FPREGS).load(Ordering::Relaxed);
    on_signal_stack(t.index, addr, XSAVE_EXTENDED)
}

/// Write the legacy (FXSAVE) part of a frame's FPU state, keeping the
/// kernel's software-reserved bytes; `reset` puts every other component in
/// its initial state.
pub(crate) fn write_fp(proc: &StubProcess, off: u64, fp: &FpState, reset: bool) {
    let mut b = fp.0;
    // An MXCSR with reserved bits set would make sigreturn fail.
    let mut cur = [0u8; 512];
    proc.region.read(off, &mut cur);
    let mask = u32::from_le_bytes([cur[28], cur[29], cur[30], cur[31]]);
    let mask = if mask == 0 { 0xffbf } else { mask };
    let mxcsr = u32::from_le_bytes([b[24], b[25], b[26], b[27]]) & mask;
    b[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    b[28..32].copy_from_slice(&cur[28..32]);
    proc.region.write(off, &b[..SW_RESERVED]);
    if has_xsave(proc, off) {
        let bv = proc.region.u64(off + XSTATE_BV);
        if reset {
            bv.store(3, Ordering::Relaxed);
        } else {
            bv.fetch_or(3, Ordering::Relaxed);
        }
    }
}

fn has_xsave(proc: &StubProcess, fp: u64) -> bool {
    proc.region.u32(fp + SW_RESERVED as u64).load(Ordering::Relaxed) == FP_XSTATE_MAGIC1
}

/// Overwrite everything the frame of parked thread `t` holds of a guest:
/// registers, FPU state (back to the initial one, the extended
/// components zeroed), the last signal's details; and what
/// `rt_sigreturn` would restore of host state: the signal stack (the
/// thread's own, from the thread table), the mask (empty), uc_flags.
/// With `trap`, the registers are set to make the trapped getpid at
/// that address when the thread returns (`recycle.rs`).
pub(crate) fn scrub_frame(proc: &StubProcess, t: StubThread, trap: Option<u64>) -> Result<(), &'static str> {
    let uc = uc_at(proc, t).ok_or("a frame is not on its thread's signal stack")?;
    let fp = fp_at(proc, t, uc).ok_or("an FPU state is not on its thread's signal stack")?;
    let r = &proc.region;
    let set = |off: u64, v: u64| r.u64(off).store(v, Ordering::Relaxed);
    let xsave = has_xsave(proc, fp);
    set(uc, if xsave { UC_FP_XSTATE | UC_SIGCONTEXT_SS } else { UC_SIGCONTEXT_SS });
    set(uc + 8, 0);
    let table = TABLE_OFF + t.index as u64 * TABLE_ENTRY;
    for k in 0..3 {
        set(uc + UC_STACK + 8 * k, r.u64(table + 8 * k).load(Ordering::Relaxed));
    }
    for k in 0..G_LAST {
        set(uc + UC_GREGS + 8 * k, 0);
    }
    set(uc + UC_GREGS + 8 * G_CSGSFS, USER_CS | USER_DS << 48);
    set(uc + UC_GREGS + 8 * G_EFL, 0x202);
    if let Some(rip) = trap {
        set(uc + UC_GREGS + 8 * G_RIP, rip);
        set(uc + UC_GREGS + 8 * G_RAX, SYS_GETPID);
        // Off the signal stack, so that rt_sigreturn applies uc_stack.
        set(uc + UC_GREGS + 8 * G_RSP, STUB_BASE + thread_off(t.index as u64));
    }
    for off in (UC_RESERVED..UC_SIGMASK).step_by(8) {
        set(uc + off, 0);
    }
    set(uc + UC_SIGMASK, 0);
    write_fp(proc, fp, &FpState::default(), true);
    if xsave {
        let size = r.u32(fp + SW_XSTATE_SIZE).load(Ordering::Relaxed) as u64;
        if size > XSAVE_EXTENDED && on_signal_stack(t.index, STUB_BASE + fp, size).is_some() {
            crate::recycle::zero(proc, fp + XSAVE_EXTENDED, size - XSAVE_EXTENDED);
        } else if size > XSAVE_EXTENDED {
            return Err("an xsave area does not fit its thread's signal stack");
        }
    }
    Ok(())
}

/// Whether the frame the kernel built for thread `t`'s last signal shows
/// the thread's own signal stack and an empty signal mask: the host
/// state a forged `rt_sigreturn` frame could have changed.
pub(crate) fn frame_is_canonical(proc: &StubProcess, t: StubThread) -> Result<(), &'static str> {
    let uc = uc_at(proc, t).ok_or("a frame is not on its thread's signal stack")?;
    let r = &proc.region;
    let get = |off: u64| r.u64(off).load(Ordering::Relaxed);
    let table = TABLE_OFF + t.index as u64 * TABLE_ENTRY;
    let stack_ok = get(uc + UC_STACK) == get(table)
        && get(uc + UC_STACK + 8) as u32 == get(table + 8) as u32
        && get(uc + UC_STACK + 16) == get(table + 16);
    if !stack_ok {
        return Err("a thread's signal stack is not its own");
    }
    if get(uc + UC_SIGMASK) != 0 {
        return Err("a thread's signal mask is not empty");
    }
    Ok(())
}
