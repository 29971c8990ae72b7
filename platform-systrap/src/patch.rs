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
//! glibc's read(2) sets its number with `xor %eax, %eax`, two bytes, so
//! its site is patched earlier: at the `cmpb $0, __libc_single_threaded`
//! that starts it (`SyscallSite::SingleThreadedRead`). That slot makes
//! the test itself (rip-relative, so it is made for the one copy the site
//! reaches), branches to the original slow path when the process is not
//! single-threaded, and otherwise does the `xor` and enters the
//! trampoline, which returns after the site's `syscall`. Every other
//! byte of the site stays, so a jump to any of its instructions but the
//! `cmpb` does what it did.
//!
//! The slot pages are mapped twice: in the stub region, within reach of
//! shared libraries and PIE code near the top of the address space, and
//! at `LOW_SLOTS`, within reach of a non-PIE executable (0x400000: every
//! static one). Slot code is position-independent (its data by
//! rip-relative `lea`, the trampoline through a pointer beside it), so
//! both copies are the same bytes. The low copy is in the guest's half of
//! the address space; the memory manager stops patching jumps into it,
//! and puts back the sites that do, the moment the guest maps or unmaps
//! anything there (`AddressSpace::code_window`).
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
use platform::SyscallSite;
use std::collections::HashMap;

/// A slot: code in `[0, SLOT_TRAMP)`, then the trampoline's address, the
/// address a `SingleThreadedRead` slot branches to when the process is
/// not single-threaded, and the data the trampoline reads: nr (u32), the
/// slot's kind (u32, `KIND_*`), the return address (u64).
const SLOT_TRAMP: u64 = 32;
const SLOT_SLOW: u64 = 40;
const SLOT_DATA: u64 = 48;
const KIND_PLAIN: u32 = 0;
const KIND_READ: u32 = 1;
/// The nr of a wrapper slot: the trampoline takes the number from below
/// the guest's rsp, where the slot put rax.
const NR_FROM_STACK: u32 = u32::MAX;

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
    /// By the site's kind and return address: the slot, and for a slot
    /// whose code holds a rip-relative reference into the guest's memory
    /// (`SingleThreadedRead`), the one copy it was made for.
    index: HashMap<(SyscallSite, u64), (u32, Option<u64>)>,
    code: Vec<[u8; SLOT_SIZE as usize]>,
    tramp: u64,
}

/// Where slot `i` is in the stub region, and in the low copy.
fn slot_addrs(i: u32) -> [u64; 2] {
    let off = i as u64 * SLOT_SIZE;
    [STUB_BASE + SLOTS_OFF + off, LOW_SLOTS + off]
}

/// Whether a rel32 displacement from `from` reaches `to`.
fn rel32(from: u64, to: u64) -> Option<i32> {
    i32::try_from(to as i128 - from as i128).ok()
}

impl Slots {
    pub(crate) fn new(tramp: u64) -> Slots {
        Slots { index: HashMap::new(), code: Vec::new(), tramp }
    }

    /// The slot of the site of kind `site` returning to `ret`, made if need
    /// be, and the address the site's jump should go to (the copy it
    /// reaches with a rel32, the stub region's first); None when the slot
    /// pages are full or no copy is in reach.
    pub(crate) fn get(&mut self, site: SyscallSite, ret: u64) -> Option<(u32, [u8; SLOT_SIZE as usize], u64)> {
        // The jump replaces the instruction at `ret - patch_offset`.
        let jmp_end = ret.checked_sub(site.patch_offset())?.checked_add(5)?;
        let reaches = |to: u64| rel32(jmp_end, to).is_some();
        if let Some(&(i, copy)) = self.index.get(&(site, ret)) {
            let to = match copy {
                Some(to) => to,
                None => slot_addrs(i).into_iter().find(|&to| reaches(to))?,
            };
            return Some((i, self.code[i as usize], to));
        }
        if self.code.len() as u64 >= MAX_SLOTS {
            return None;
        }
        let i = self.code.len() as u32;
        let mut b = [0xccu8; SLOT_SIZE as usize];
        let mut n = 0;
        let (nr, kind, copy) = match site {
            SyscallSite::MovImm(nr) if nr != NR_FROM_STACK => (nr, KIND_PLAIN, None),
            SyscallSite::MovImm(_) => return None,
            SyscallSite::SyscallWrapper => {
                // What the site did first (a fault here is reported at the
                // site, see context.rs), then the number below rsp: glibc's
                // syscall() is a leaf with nothing there.
                put(&mut b, &mut n, &[0x4c, 0x8b, 0x4c, 0x24, 0x08]); // mov r9, [rsp + 8]
                put(&mut b, &mut n, &[0x48, 0x89, 0x44, 0x24, 0xf8]); // mov [rsp - 8], rax
                (NR_FROM_STACK, KIND_PLAIN, None)
            }
            SyscallSite::SingleThreadedRead { flag, slow } => {
                // The site's test, made from this copy (a fault on the
                // flag is reported at the site, see fault_origin), its
                // branch through SLOT_SLOW, and its `xor %eax, %eax`.
                let at = slot_addrs(i).into_iter().find(|&at| reaches(at) && rel32(at + 7, flag).is_some())?;
                let disp = rel32(at + 7, flag)?;
                put(&mut b, &mut n, &[0x80, 0x3d]); // cmp byte ptr [rip + flag], 0
                put(&mut b, &mut n, &disp.to_le_bytes());
                put(&mut b, &mut n, &[0x00]);
                put(&mut b, &mut n, &[0x74, 0x00]); // je .slow (set below)
                let je_end = n;
                put(&mut b, &mut n, &[0x31, 0xc0]); // xor eax, eax
                b[SLOT_SLOW as usize..SLOT_SLOW as usize + 8].copy_from_slice(&slow.to_le_bytes());
                (0, KIND_READ, Some((at, je_end)))
            }
        };
        // lea rcx, [rip + data]
        let lea_end = n as u64 + 7;
        put(&mut b, &mut n, &[0x48, 0x8d, 0x0d]);
        put(&mut b, &mut n, &((SLOT_DATA - lea_end) as u32).to_le_bytes());
        // jmp [rip + tramp pointer]: the same bytes work in both copies.
        let jmp_end = n as u64 + 6;
        put(&mut b, &mut n, &[0xff, 0x25]);
        put(&mut b, &mut n, &((SLOT_TRAMP - jmp_end) as u32).to_le_bytes());
        if let Some((_, je_end)) = copy {
            // .slow: jmp [rip + slow pointer]
            b[je_end - 1] = (n - je_end) as u8;
            let slow_end = n as u64 + 6;
            put(&mut b, &mut n, &[0xff, 0x25]);
            put(&mut b, &mut n, &((SLOT_SLOW - slow_end) as u32).to_le_bytes());
        }
        debug_assert!(n as u64 <= SLOT_TRAMP);
        let t = SLOT_TRAMP as usize;
        b[t..t + 8].copy_from_slice(&self.tramp.to_le_bytes());
        let d = SLOT_DATA as usize;
        b[d..d + 4].copy_from_slice(&nr.to_le_bytes());
        b[d + 4..d + 8].copy_from_slice(&kind.to_le_bytes());
        b[d + 8..d + 16].copy_from_slice(&ret.to_le_bytes());
        let copy = copy.map(|(at, _)| at);
        let to = match copy {
            Some(at) => at,
            None => slot_addrs(i).into_iter().find(|&to| reaches(to))?,
        };
        self.code.push(b);
        self.index.insert((site, ret), (i, copy));
        Some((i, b, to))
    }

    /// What a fault at `ip`, inside the slot pages, is from the guest's
    /// point of view, if it is one of the memory accesses a slot makes on
    /// the site's behalf: a wrapper slot's load of the sixth argument or a
    /// read slot's test of the flag (nothing else has run: `Ok(site)`,
    /// report it there), or a wrapper slot's store of the number below
    /// rsp, which the guest would not have made (`Err(syscall)`: the site's
    /// work is done, go on silently at its `syscall`, which traps the slow
    /// way).
    pub(crate) fn fault_origin(&self, ip: u64) -> Option<Result<u64, u64>> {
        let off = [STUB_BASE + SLOTS_OFF, LOW_SLOTS]
            .into_iter()
            .find_map(|base| ip.checked_sub(base).filter(|&off| off < SLOTS_LEN))?;
        let b = self.code.get(usize::try_from(off / SLOT_SIZE).ok()?)?;
        let d = SLOT_DATA as usize;
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut r = [0u8; 8];
        r.copy_from_slice(&b[d + 8..d + 16]);
        let ret = u64::from_le_bytes(r);
        match (word(d), word(d + 4), off % SLOT_SIZE) {
            (NR_FROM_STACK, KIND_PLAIN, 0) => ret.checked_sub(7).map(Ok),
            (NR_FROM_STACK, KIND_PLAIN, 5) => ret.checked_sub(2).map(Err),
            (_, KIND_READ, 0) => ret.checked_sub(13).map(Ok),
            _ => None,
        }
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = (u32, &[u8; SLOT_SIZE as usize])> {
        self.code.iter().enumerate().map(|(i, b)| (i as u32, b))
    }
}

fn put(b: &mut [u8], n: &mut usize, bytes: &[u8]) {
    b[*n..*n + bytes.len()].copy_from_slice(bytes);
    *n += bytes.len();
}

/// Whether a site returning to `ret` can reach every slot of one of the
/// two copies with a rel32 jump.
pub(crate) fn in_reach(ret: u64) -> bool {
    const REACH: u64 = (1 << 31) - SLOTS_LEN - 16;
    let high = STUB_BASE + SLOTS_OFF;
    (ret < high && high - ret < REACH) || ret.abs_diff(LOW_SLOTS) < REACH
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
