//! Patched syscall sites: the platform's half.
//!
//! A `syscall` costs a SIGSYS delivery and an `rt_sigreturn` on top of the
//! hand-off. When a site traps often (`PATCH_AFTER` times) and reads
//! `mov $nr, %eax; syscall` (b8 imm32 0f 05), the Sentry rewrites the mov
//! into `jmp slot` (e9 rel32; `sentry/src/mm/patch.rs`), keeping the
//! `syscall`. The slot, one per (nr, return address) in the stub region's
//! read-only, executable slot pages, loads the address of its data and
//! jumps to the trampoline (`stubcode.rs`), which stores the guest's
//! registers in the thread's message page and hands off exactly like the
//! handler (state word, spin, futex), without a signal.
//!
//! The trampoline finds its message page through the gs base, which the
//! platform points at the page while the guest's own gs base is 0 (the
//! Sentry keeps reporting 0). If the base is anything else (the guest set
//! one), the trampoline does what the mov did and jumps to the `syscall`:
//! the signal path, as if unpatched.
//!
//! When the Sentry answers with nothing changed but rax (the common case),
//! the trampoline restores the registers and jumps back. Anything more
//! (new rip, rsp, a signal frame, FPU state to read) first "upgrades" the
//! stop: the trampoline traps at `upgrade` into the handler, giving a full
//! frame, and the Sentry goes on as on the signal path. An interrupt that
//! lands inside the trampoline is deferred to its exit (the kick trap).
//!
//! The boundary is the signal path's: the slots and the trampoline are not
//! writable by the guest; what the Sentry reads is the guest's registers,
//! from a page the guest can write anyway; a guest jumping into a slot or
//! the middle of the trampoline runs stub code with its own registers,
//! faults, or makes a syscall it could make directly.

use crate::layout::*;
use std::collections::HashMap;

/// How often a site traps before it is patched: once-only sites (start-up)
/// are not worth a page copy.
pub(crate) const PATCH_AFTER: u32 = 8;
/// Sites counted per thread, at most.
pub(crate) const MAX_COUNTED_SITES: usize = 4096;

/// `RUNSC_LITE_SYSTRAP_PATCH=0` (or `false`, `off`) turns patching off.
pub(crate) fn enabled_from_env() -> bool {
    !matches!(std::env::var("RUNSC_LITE_SYSTRAP_PATCH").as_deref(), Ok("0" | "false" | "off" | "no"))
}

/// The slots of the whole sandbox: slot `i` is the same in every stub
/// process (a new one gets them all), so a forked address space's patched
/// code finds its slots.
pub(crate) struct Slots {
    index: HashMap<(u32, u64), u32>,
    code: Vec<[u8; SLOT_SIZE as usize]>,
    tramp: u64,
}

pub(crate) fn slot_addr(i: u32) -> u64 {
    STUB_BASE + SLOTS_OFF + i as u64 * SLOT_SIZE
}

impl Slots {
    pub(crate) fn new(tramp: u64) -> Slots {
        Slots { index: HashMap::new(), code: Vec::new(), tramp }
    }

    /// The slot of syscall `nr` returning to `ret`, made if need be; None
    /// when the slot pages are full.
    pub(crate) fn get(&mut self, nr: u32, ret: u64) -> Option<(u32, [u8; SLOT_SIZE as usize])> {
        if let Some(&i) = self.index.get(&(nr, ret)) {
            return Some((i, self.code[i as usize]));
        }
        if self.code.len() as u64 >= MAX_SLOTS {
            return None;
        }
        let i = self.code.len() as u32;
        let at = slot_addr(i);
        let mut b = [0xccu8; SLOT_SIZE as usize];
        // lea rcx, [rip + 9]: the data at +16.
        b[0..7].copy_from_slice(&[0x48, 0x8d, 0x0d, 9, 0, 0, 0]);
        // jmp tramp
        b[7] = 0xe9;
        let rel = (self.tramp as i64 - (at as i64 + 12)) as i32;
        b[8..12].copy_from_slice(&rel.to_le_bytes());
        b[16..20].copy_from_slice(&nr.to_le_bytes());
        b[20..24].copy_from_slice(&[0; 4]);
        b[24..32].copy_from_slice(&ret.to_le_bytes());
        self.code.push(b);
        self.index.insert((nr, ret), i);
        Some((i, b))
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = (u32, &[u8; SLOT_SIZE as usize])> {
        self.code.iter().enumerate().map(|(i, b)| (i as u32, b))
    }
}

/// Whether a site returning to `ret` can reach every slot with a rel32
/// jump.
pub(crate) fn in_reach(ret: u64) -> bool {
    const REACH: u64 = (1 << 31) - SLOTS_LEN - 16;
    let lo = STUB_BASE + SLOTS_OFF;
    ret < lo && lo - ret < REACH
}

/// Count a trap at `ret`; true exactly when it makes the site hot.
pub(crate) fn count_hit(hits: &mut HashMap<u64, u32>, ret: u64) -> bool {
    if let Some(n) = hits.get_mut(&ret) {
        *n = n.saturating_add(1);
        return *n == PATCH_AFTER;
    }
    if hits.len() < MAX_COUNTED_SITES {
        hits.insert(ret, 1);
    }
    PATCH_AFTER == 1
}
