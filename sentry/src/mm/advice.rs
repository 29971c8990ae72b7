//! What madvise(2) and mlock(2) change on mappings, and mincore(2).
//!
//! Advice that only tunes paging (NORMAL, RANDOM, WILLNEED, ...) has no
//! state here; the syscall accepts it after the range checks.

use super::*;

/// The madvise advice that changes something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// Private anonymous pages read back as zeros (also MADV_FREE).
    DontNeed,
    Free,
    DontFork,
    DoFork,
    WipeOnFork,
    KeepOnFork,
    /// Shared memory is punched out (reads back as zeros).
    Remove,
    /// Only the range checks.
    Nothing,
}

impl Vma {
    fn is_file(&self) -> bool {
        matches!(self.name, VmaName::File { .. })
    }

    fn private_anon(&self) -> bool {
        self.private() && !self.is_file() && !self.shared
    }
}

impl MemoryManager {
    /// Whether `[addr, addr+len)` lies in the guest's range and holds no
    /// mapping (MAP_FIXED_NOREPLACE). The caller maps it afterwards
    /// without holding the lock in between, so a racing thread's mapping
    /// there is replaced rather than refused.
    pub fn range_is_free(&self, addr: u64, len: u64) -> bool {
        let Ok(end) = self.check_range(addr, len) else { return true };
        Self::is_free(&self.lock(), addr, end)
    }

    /// madvise(2) on `[addr, end)` (page-aligned): the advice goes to
    /// every mapped piece; a hole makes the result ENOMEM, as on Linux,
    /// unless a piece fails with its own error first.
    pub fn advise(&self, addr: u64, end: u64, advice: Advice) -> Result<(), Errno> {
        // MADV_REMOVE of shared file pages: (file, file offset, length) to
        // write back as zeros once the lock is released.
        let mut zeroed: Vec<(FileBacking, u64, u64)> = Vec::new();
        self.advise_locked(addr, end, advice, &mut zeroed)?;
        for (f, off, len) in zeroed {
            f.file.write_back(off, len).map_err(|_| Errno::EIO)?;
        }
        Ok(())
    }

    fn advise_locked(
        &self,
        addr: u64,
        end: u64,
        advice: Advice,
        zeroed: &mut Vec<(FileBacking, u64, u64)>,
    ) -> Result<(), Errno> {
        let mut s = self.lock();
        let hole = Self::check_covered(&s, addr, end).is_err();
        for (vs, ve) in overlapping(&s.vmas, addr, end, |v| v.end) {
            let Some(v) = s.vmas.get(&vs).cloned() else { continue };
            let (a, b) = (vs.max(addr), ve.min(end));
            match advice {
                Advice::Nothing => {}
                Advice::DontNeed | Advice::Free => {
                    if v.flags.locked || (advice == Advice::Free && !v.private_anon()) {
                        return Err(Errno::EINVAL);
                    }
                    // Private file pages come back from the file cache they
                    // were filled from (copy-on-write again); without one
                    // they keep their contents. Shared pages keep theirs,
                    // as on Linux.
                    if let (true, false, Some((mem, o))) = (v.private() && v.is_file(), v.past_eof, &v.origin) {
                        let off = mem.off + o + (a - v.start);
                        if o + (b - v.start) <= mem.len {
                            self.memfile.incref(off, b - a);
                            let old = Self::take_pmas(&mut s, a, b);
                            self.release_pmas(old);
                            s.pmas.insert(a, Pma { end: b, off, cow: true });
                            self.sync_platform(&s, a, b, true)?;
                        }
                        continue;
                    }
                    if v.private_anon() && !v.past_eof {
                        let off = self.memfile.alloc_ref(b - a)?;
                        let old = Self::take_pmas(&mut s, a, b);
                        self.release_pmas(old);
                        s.pmas.insert(a, Pma { end: b, off, cow: false });
                        self.sync_platform(&s, a, b, true)?;
                    }
                }
                Advice::DontFork | Advice::DoFork | Advice::WipeOnFork | Advice::KeepOnFork => {
                    if matches!(advice, Advice::WipeOnFork | Advice::KeepOnFork) && !v.private_anon() {
                        return Err(Errno::EINVAL);
                    }
                    Self::split_at(&mut s, a);
                    Self::split_at(&mut s, b);
                    for (_, x) in s.vmas.range_mut(a..b) {
                        match advice {
                            Advice::DontFork => x.flags.dontfork = true,
                            Advice::DoFork => x.flags.dontfork = false,
                            Advice::WipeOnFork => x.flags.wipeonfork = true,
                            _ => x.flags.wipeonfork = false,
                        }
                    }
                }
                Advice::Remove => {
                    if v.flags.locked || !v.shared {
                        return Err(Errno::EINVAL);
                    }
                    // Linux wants a mapping that may be made writable.
                    if v.file.as_ref().is_some_and(|f| f.writer.is_none()) {
                        return Err(Errno::EACCES);
                    }
                    if v.past_eof {
                        continue;
                    }
                    let Some(off) = v.file_offset_at(a) else { continue };
                    self.memfile.zero(off, b - a)?;
                    match (&v.file, &v.name) {
                        // A file's shared pages: the file reads zeros
                        // there too (written, not punched).
                        (Some(f), VmaName::File { offset, .. }) => {
                            if let Some(w) = &f.writer {
                                f.file.set_writer(w);
                            }
                            zeroed.push((f.clone(), offset + (a - v.start), b - a));
                        }
                        _ => self.memfile.punch(off, b - a),
                    }
                }
            }
        }
        if hole {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Record that the private file mapping `[start, start+len)` was
    /// filled from the file-cache pages `mem` at `off`.
    pub fn set_origin(&self, start: u64, len: u64, mem: &Arc<MemRange>, off: u64) {
        let Some(end) = start.checked_add(len) else { return };
        let mut s = self.lock();
        Self::split_at(&mut s, end);
        for (_, v) in s.vmas.range_mut(start..end) {
            if v.end <= end {
                v.origin = Some((mem.clone(), off + (v.start - start)));
            }
        }
    }

    /// mincore(2) for `out.len()` pages from `addr`: 1 where the page is
    /// in memory (touched, or in the page cache), 0 where it was never
    /// touched or was given back. ENOMEM if part of it is not mapped.
    pub fn residency(&self, addr: u64, out: &mut [u8]) -> Result<(), Errno> {
        let len = (out.len() as u64).checked_mul(PAGE_SIZE).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        out.fill(0);
        // (first page index, memory-file offset, pages), measured after
        // the lock is released.
        let mut pieces: Vec<(usize, u64, usize)> = Vec::new();
        {
            let s = self.lock();
            Self::check_covered(&s, addr, end)?;
            let idx = |at: u64| ((at - addr) / PAGE_SIZE) as usize;
            for (vs, ve) in overlapping(&s.vmas, addr, end, |v| v.end) {
                let Some(v) = s.vmas.get(&vs) else { continue };
                if v.past_eof {
                    continue;
                }
                let (a, b) = (vs.max(addr), ve.min(end));
                if let Some(off) = v.file_offset_at(a) {
                    pieces.push((idx(a), off, ((b - a) / PAGE_SIZE) as usize));
                    continue;
                }
                for (ps, pe) in overlapping(&s.pmas, a, b, |p| p.end) {
                    let Some(p) = s.pmas.get(&ps) else { continue };
                    let (x, y) = (ps.max(a), pe.min(b));
                    pieces.push((idx(x), p.off + (x - ps), ((y - x) / PAGE_SIZE) as usize));
                }
            }
        }
        for (i, off, n) in pieces {
            if let Some(dst) = out.get_mut(i..i + n) {
                self.memfile.residency(off, dst)?;
            }
        }
        Ok(())
    }

    /// mlock/munlock of `[addr, end)` (page-aligned): ENOMEM if part of
    /// it is not mapped.
    pub fn set_locked(&self, addr: u64, end: u64, locked: bool) -> Result<(), Errno> {
        let mut s = self.lock();
        Self::check_covered(&s, addr, end)?;
        Self::split_at(&mut s, addr);
        Self::split_at(&mut s, end);
        for (_, v) in s.vmas.range_mut(addr..end) {
            v.flags.locked = locked;
        }
        Ok(())
    }

    /// mlockall / munlockall: every mapping now (`current`) and every
    /// later one (`future`).
    pub fn lock_all(&self, current: bool, future: bool) {
        let mut s = self.lock();
        if current {
            for v in s.vmas.values_mut() {
                v.flags.locked = true;
            }
        }
        s.lock_future = future;
    }

    pub fn unlock_all(&self) {
        let mut s = self.lock();
        for v in s.vmas.values_mut() {
            v.flags.locked = false;
        }
        s.lock_future = false;
    }

    /// Locked bytes: all of them (VmLck), or those inside `[addr, end)`.
    pub fn locked_bytes(&self, within: Option<(u64, u64)>) -> u64 {
        let s = self.lock();
        let (a, b) = within.unwrap_or((0, u64::MAX));
        s.vmas.values().filter(|v| v.flags.locked).map(|v| v.end.min(b).saturating_sub(v.start.max(a))).sum()
    }

    /// A forked child's state, just copied from its parent: no
    /// MADV_DONTFORK range, fresh zeros in MADV_WIPEONFORK ranges, and no
    /// memory locks (they are not inherited).
    pub(super) fn fork_advice(child: &MemoryManager, cs: &mut MmState) -> Result<(), Errno> {
        let marked: Vec<(u64, u64, bool)> = cs
            .vmas
            .values()
            .filter(|v| v.flags.dontfork || v.flags.wipeonfork)
            .map(|v| (v.start, v.end, v.flags.dontfork))
            .collect();
        for (a, b, dontfork) in marked {
            let old = Self::take_pmas(cs, a, b);
            child.release_pmas(old);
            if dontfork {
                cs.vmas.remove(&a);
            } else {
                let off = child.memfile.alloc_ref(b - a)?;
                cs.pmas.insert(a, Pma { end: b, off, cow: false });
            }
        }
        for v in cs.vmas.values_mut() {
            v.flags.locked = false;
        }
        Ok(())
    }

    /// Bytes mapped in all (Linux's total_vm).
    pub fn mapped_bytes(&self) -> u64 {
        self.lock().vmas.values().map(|v| v.end - v.start).sum()
    }
}
