//! Patching guest code on behalf of a platform (systrap rewrites hot
//! `mov $nr, %eax; syscall` sites, and glibc's generic `syscall()`, into
//! jumps to its trampolines, see
//! platform-systrap/src/patch.rs): the Sentry owns the pages, so the write
//! goes through here, the way a debugger's poke would.

use super::*;
use platform::SyscallSite;
use std::sync::atomic::Ordering;

/// Patched sites remembered per address space, at most.
const MAX_PATCHED_SITES: usize = 4096;

/// A patched site's five bytes, before and after, and where its jump
/// goes.
#[derive(Clone, Copy, Debug)]
pub(super) struct PatchedSite {
    orig: [u8; 5],
    new: [u8; 5],
    target: u64,
}

/// glibc's generic `syscall()` up to its `syscall`: the argument shuffle
/// (rdi..r9 into rax, rdi..r8) and the load of the sixth argument, the
/// five bytes a `SyscallWrapper` patch replaces. Matching the whole leaf
/// is what makes the slot's use of the stack below rsp safe.
const GLIBC_SYSCALL_WRAPPER: [u8; 25] = [
    0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x48, 0x89, 0xca, 0x4d, 0x89, 0xc2, 0x4d, 0x89, 0xc8, 0x4c,
    0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05,
];

impl MemoryManager {
    /// What the `syscall` ending at `ret`, which just trapped with number
    /// `nr`, is preceded by, if it is a kind of site a platform can enter
    /// another way (`platform::SyscallSite`).
    pub fn classify_syscall_site(&self, ret: u64, nr: u64) -> Option<SyscallSite> {
        let mut b = [0u8; 7];
        self.force_read(ret.checked_sub(7)?, &mut b).ok()?;
        if b[0] == 0xb8 && b[5] == 0x0f && b[6] == 0x05 {
            let imm = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
            return (imm as u64 == nr).then_some(SyscallSite::MovImm(imm));
        }
        if nr == 0 && b[3..7] == [0x31, 0xc0, 0x0f, 0x05] {
            return self.single_threaded_read(ret);
        }
        let n = GLIBC_SYSCALL_WRAPPER.len() as u64;
        let mut w = [0u8; GLIBC_SYSCALL_WRAPPER.len()];
        self.force_read(ret.checked_sub(n)?, &mut w).ok()?;
        (w == GLIBC_SYSCALL_WRAPPER).then_some(SyscallSite::SyscallWrapper)
    }

    /// glibc's read(2) entry ending at `ret` (`SyscallSite::SingleThreadedRead`):
    /// `cmpb $0, flag(%rip); je slow; xor %eax, %eax; syscall`, with the
    /// branch leaving the 13 bytes.
    fn single_threaded_read(&self, ret: u64) -> Option<SyscallSite> {
        let entry = ret.checked_sub(13)?;
        let mut b = [0u8; 13];
        self.force_read(entry, &mut b).ok()?;
        if b[0..2] != [0x80, 0x3d] || b[6] != 0 || b[7] != 0x74 || b[9..13] != [0x31, 0xc0, 0x0f, 0x05] {
            return None;
        }
        let disp = i32::from_le_bytes([b[2], b[3], b[4], b[5]]) as i64;
        let flag = entry.checked_add(7)?.checked_add_signed(disp)?;
        let slow = entry.checked_add(9)?.checked_add_signed(b[8] as i8 as i64)?;
        (slow < entry || slow >= ret).then_some(SyscallSite::SingleThreadedRead { flag, slow })
    }

    /// Rewrite the instruction of `site` (a kind `classify_syscall_site`
    /// recognised at the `syscall` ending at `ret`, with number `nr`),
    /// five bytes or longer, into `jmp target` (e9 rel32), leaving the
    /// rest of a longer one as it was. One instruction becomes another and
    /// every later byte stays: a jump to any other instruction boundary
    /// still does what it did (a jump straight to the `syscall` traps as
    /// before). Only when the five bytes lie in one aligned 8-byte word,
    /// so that one store changes them for every thread at once. False when
    /// the site does not qualify (or changed since it was classified).
    pub fn patch_syscall_site(&self, ret: u64, nr: u64, kind: SyscallSite, target: u64) -> bool {
        if self.classify_syscall_site(ret, nr) != Some(kind) {
            return false;
        }
        let Some(site) = ret.checked_sub(kind.patch_offset()) else { return false };
        let mut b = [0u8; 5];
        if self.force_read(site, &mut b).is_err() || b[0] == 0xe9 {
            return false;
        }
        let base = site & !7;
        let k = (site - base) as usize;
        if k > 3 {
            return false;
        }
        let Ok(rel) = i32::try_from(target as i128 - (site as i128 + 5)) else { return false };
        let mut w = [0u8; 8];
        if self.force_read(base, &mut w).is_err() {
            return false;
        }
        let mut n = w;
        n[k] = 0xe9;
        n[k + 1..k + 5].copy_from_slice(&rel.to_le_bytes());
        let rec = PatchedSite {
            orig: [b[0], b[1], b[2], b[3], b[4]],
            new: [n[k], n[k + 1], n[k + 2], n[k + 3], n[k + 4]],
            target,
        };
        // The compare-and-swap on the whole word in patch_code catches a
        // change made since the bytes were classified.
        self.patch_code(base, u64::from_le_bytes(w), u64::from_le_bytes(n), site, rec).unwrap_or(false)
    }

    /// Replace the 8-byte aligned word at `at`, which must still hold `old`,
    /// by `new`, with one atomic store into this address space's own copy
    /// of the page (a page shared copy-on-write with another address space
    /// or with the file cache is copied first), and remember `site`.
    /// `Ok(false)` when the page does not qualify or the word changed.
    ///
    /// Only private, executable, non-writable mappings qualify: a shared
    /// mapping would carry the patch into the file and every other mapper;
    /// a writable one is the guest's own code generator's business (it may
    /// be rewriting the very bytes).
    ///
    /// The jump must go above the guest's part of the address space, or
    /// into the platform's code window while it is there (checked under
    /// the lock that every change to the window's range is made under).
    fn patch_code(&self, at: u64, old: u64, new: u64, site: u64, p: PatchedSite) -> Result<bool, Errno> {
        let Some(end) = at.checked_add(8) else { return Ok(false) };
        let mut s = self.lock();
        if s.patched.len() >= MAX_PATCHED_SITES {
            return Ok(false);
        }
        if p.target < self.top && !self.space.code_window().is_some_and(|(a, b)| a <= p.target && p.target < b) {
            return Ok(false);
        }
        let Some((&start, v)) = s.vmas.range(..=at).next_back() else { return Ok(false) };
        if v.end < end || !v.prot.exec || v.prot.write || v.shared || v.file.is_some() || v.past_eof {
            return Ok(false);
        }
        if v.cached {
            self.uncache_locked(&mut s, start);
        }
        self.unshare_locked(&mut s, at, end)?;
        let Some(word) = self.private_word_locked(&s, at) else { return Ok(false) };
        if word.compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Ok(false);
        }
        s.patched.insert(site, p);
        tracing::debug!("patched the syscall site at {site:#x}");
        Ok(true)
    }

    /// The private page word at `at` (8-aligned), if mapped.
    fn private_word_locked(&self, s: &MmState, at: u64) -> Option<&std::sync::atomic::AtomicU64> {
        let (&ps, p) = s.pmas.range(..=at).next_back()?;
        if p.end < at.checked_add(8)? {
            return None;
        }
        self.memfile.atomic_u64(p.off + (at - ps)).ok()
    }

    /// Put back the original bytes of the patched sites in `[start, end)`
    /// before the guest may write there: a program that rewrites its code
    /// (a JIT, a hot-patcher changing an immediate) finds what it wrote.
    pub(super) fn unpatch_locked(&self, s: &mut MmState, start: u64, end: u64) {
        let sites: Vec<(u64, PatchedSite)> =
            s.patched.range(start.saturating_sub(8)..end).map(|(&a, &p)| (a, p)).collect();
        for (site, p) in sites {
            self.restore_site_locked(s, site, p);
        }
    }

    /// About to map or unmap `[start, end)`: if that touches the
    /// platform's code window, the window becomes the guest's. First every
    /// site that jumps into it is put back, then the platform's code there
    /// is unmapped (a lazy mapping must fault at its first touch, not read
    /// the platform's bytes); `patch_code` will not jump there again. A
    /// thread already past such a jump is a few instructions from leaving
    /// the window and is not waited for.
    pub(super) fn claim_code_window_locked(&self, s: &mut MmState, start: u64, end: u64) -> Result<(), Errno> {
        let Some((a, b)) = self.space.code_window() else { return Ok(()) };
        if end <= a || b <= start {
            return Ok(());
        }
        let sites: Vec<(u64, PatchedSite)> =
            s.patched.iter().filter(|(_, p)| a <= p.target && p.target < b).map(|(&x, &p)| (x, p)).collect();
        for (site, p) in sites {
            self.restore_site_locked(s, site, p);
        }
        self.space.unmap(a, b - a).map_err(platform_err)
    }

    /// Forget the patched site at `site` and put its original bytes back.
    /// A record whose bytes are no longer our patch (the page was
    /// replaced or rewritten since) is just dropped.
    fn restore_site_locked(&self, s: &mut MmState, site: u64, p: PatchedSite) {
        s.patched.remove(&site);
        let at = site & !7;
        let k = (site - at) as usize;
        if s.pmas.range(..=at).next_back().is_none_or(|(_, pm)| pm.end < at + 8) {
            return;
        }
        if self.unshare_locked(s, at, at + 8).is_err() {
            return;
        }
        let Some(word) = self.private_word_locked(s, at) else { return };
        let cur = word.load(Ordering::SeqCst).to_le_bytes();
        if cur[k..k + 5] != p.new {
            return;
        }
        let mut back = cur;
        back[k..k + 5].copy_from_slice(&p.orig);
        let _ = word.compare_exchange(
            u64::from_le_bytes(cur),
            u64::from_le_bytes(back),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// Turn the file-cached VMA at `start` into a private mapping sharing
    /// the cache's pages copy-on-write (the cache's own reference keeps the
    /// count above one, so a write copies). The platform mapping stays as
    /// it is until a page is copied.
    pub(super) fn uncache_locked(&self, s: &mut MmState, start: u64) {
        let Some(v) = s.vmas.get(&start).cloned() else { return };
        if !v.cached {
            return;
        }
        let len = v.end - v.start;
        let Some(src) = v.file_offset_at(v.start) else { return };
        self.memfile.incref(src, len);
        let n = Vma { mem: None, mem_off: 0, cached: false, ..v };
        s.vmas.insert(start, n);
        s.pmas.insert(start, Pma { end: start + len, off: src, cow: true });
    }
}
