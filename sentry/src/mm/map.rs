//! Making, changing and removing mappings: mmap, munmap, mprotect,
//! madvise(DONTNEED), brk, mremap, msync.

use super::*;

impl MemoryManager {
    /// Map fresh zeroed memory. `fixed` places it exactly at `addr`
    /// (replacing what is there); otherwise `addr` is a hint.
    pub fn map_anon(
        &self,
        addr: u64,
        len: u64,
        prot: Prot,
        shared: bool,
        fixed: bool,
        name: VmaName,
    ) -> Result<u64, Errno> {
        if shared {
            let mem = self.memfile.alloc(len)?;
            return self.map_inner(addr, len, prot, fixed, Backing::Shared(mem, 0), name);
        }
        self.map_inner(addr, len, prot, fixed, Backing::Fresh, name)
    }

    /// Map `mem` (from `mem_off` on) at `addr` as `map_anon` places it. A
    /// private mapping takes its own reference on the pages: the caller
    /// may fill them before the guest runs, but not write them later.
    #[allow(clippy::too_many_arguments)]
    pub fn map_range(
        &self,
        addr: u64,
        len: u64,
        prot: Prot,
        shared: bool,
        fixed: bool,
        mem: Arc<MemRange>,
        mem_off: u64,
        name: VmaName,
    ) -> Result<u64, Errno> {
        let b = if shared { Backing::Shared(mem, mem_off) } else { Backing::Private(mem, mem_off) };
        self.map_inner(addr, len, prot, fixed, b, name)
    }

    /// Map a range of the file cache privately: shared with every other
    /// such mapping until it is made writable (then it is copied).
    #[allow(clippy::too_many_arguments)]
    pub fn map_cached(
        &self,
        addr: u64,
        len: u64,
        prot: Prot,
        fixed: bool,
        cache: Arc<MemRange>,
        cache_off: u64,
        name: VmaName,
    ) -> Result<u64, Errno> {
        if prot.write {
            return Err(Errno::EINVAL);
        }
        self.map_inner(addr, len, prot, fixed, Backing::Cached(cache, cache_off), name)
    }

    /// Map a range of the file cache privately and writably: the pages
    /// are the cache's until written (then the written chunk is copied).
    #[allow(clippy::too_many_arguments)]
    pub fn map_cached_writable(
        &self,
        addr: u64,
        len: u64,
        prot: Prot,
        fixed: bool,
        cache: Arc<MemRange>,
        cache_off: u64,
        name: VmaName,
    ) -> Result<u64, Errno> {
        self.map_inner(addr, len, prot, fixed, Backing::CachedCow(cache, cache_off), name)
    }

    pub(super) fn map_inner(
        &self,
        addr: u64,
        len: u64,
        prot: Prot,
        fixed: bool,
        backing: Backing,
        name: VmaName,
    ) -> Result<u64, Errno> {
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if let Backing::Private(m, o)
        | Backing::CachedCow(m, o)
        | Backing::Shared(m, o)
        | Backing::SharedFile(m, o, _)
        | Backing::Cached(m, o) = &backing
        {
            if o.checked_add(len).is_none_or(|e| e > m.len) {
                return Err(Errno::EINVAL);
            }
        }
        let mut s = self.lock();
        // Lazy only where that saves a round trip: a fixed mapping over
        // pages the host has mapped replaces them in one call when eager,
        // but would need an unmap now and a map at the first touch.
        let lazy = matches!(backing, Backing::FreshLazy)
            && !s.lock_future
            && !(fixed
                && addr
                    .checked_add(len)
                    .is_some_and(|end| Self::host_may_map(&s, addr, end) && !Self::is_free(&s, addr, end)));
        // What a fixed mapping replaces, released only once the new one is
        // in place: the host's MAP_FIXED replaces the old pages in the
        // same call, so no separate unmap round trip, and no moment where
        // released pages are still mapped.
        let mut replaced = None;
        let start = if fixed {
            if !addr.is_multiple_of(PAGE_SIZE) {
                return Err(Errno::EINVAL);
            }
            let end = self.check_range(addr, len)?;
            self.check_as(&s, len, Some((addr, end)))?;
            self.claim_code_window_locked(&mut s, addr, end)?;
            if lazy {
                self.unmap_locked(&mut s, addr, end)?;
            } else {
                let gone = self.take_range(&mut s, addr, end);
                let pmas = Self::take_pmas(&mut s, addr, end);
                replaced = Some((gone, pmas));
            }
            addr
        } else {
            self.check_as(&s, len, None)?;
            let hint = page_down(addr);
            let start = match hint.checked_add(len) {
                Some(end) if hint >= MIN_MMAP_ADDR && end <= self.top && Self::is_free(&s, hint, end) => hint,
                _ => self.find_gap(&mut s, len)?,
            };
            self.claim_code_window_locked(&mut s, start, start + len)?;
            start
        };
        let end = start + len;
        let flags = VmaFlags { locked: s.lock_future, growsdown: name == VmaName::Stack, ..Default::default() };
        let mut v = Vma {
            start,
            end,
            prot,
            shared: false,
            mem: None,
            mem_off: 0,
            name,
            past_eof: false,
            cached: false,
            file: None,
            flags,
            origin: None,
        };
        let mut cow = false;
        let off = match backing {
            Backing::Fresh | Backing::FreshLazy => Some(self.memfile.alloc_ref(len)?),
            Backing::Private(m, o) => {
                self.memfile.incref(m.off + o, len);
                Some(m.off + o)
            }
            Backing::CachedCow(m, o) => {
                self.memfile.incref(m.off + o, len);
                cow = true;
                Some(m.off + o)
            }
            Backing::Shared(m, o) => {
                v.shared = true;
                v.mem = Some(m);
                v.mem_off = o;
                None
            }
            Backing::SharedFile(m, o, f) => {
                if prot.write {
                    if let Some(w) = &f.writer {
                        f.file.set_writer(w);
                    }
                }
                v.shared = true;
                v.mem = Some(m);
                v.mem_off = o;
                v.file = Some(f);
                None
            }
            Backing::Cached(m, o) => {
                v.cached = true;
                v.mem = Some(m);
                v.mem_off = o;
                None
            }
        };
        s.vmas.insert(start, v);
        if let Some(off) = off {
            s.pmas.insert(start, Pma { end, off, cow });
        }
        if lazy {
            s.lazy.insert(start, end);
            return Ok(start);
        }
        let synced = self.sync_platform(&s, start, end, true);
        if let Some((gone, pmas)) = replaced {
            if synced.is_err() {
                // The old pages may still be mapped: take them out before
                // they go back.
                self.space.unmap(start, end - start).map_err(platform_err)?;
            }
            self.release_pmas(pmas);
            drop(gone);
        }
        synced?;
        Ok(start)
    }

    /// Map part of a file's shared pages at exactly `addr`, replacing what
    /// is there (the caller placed the whole mapping first).
    #[allow(clippy::too_many_arguments)]
    pub fn map_file_shared(
        &self,
        addr: u64,
        len: u64,
        prot: Prot,
        mem: Arc<MemRange>,
        mem_off: u64,
        name: VmaName,
        file: FileBacking,
    ) -> Result<u64, Errno> {
        if prot.write && file.writer.is_none() {
            return Err(Errno::EACCES);
        }
        self.map_inner(addr, len, prot, true, Backing::SharedFile(mem, mem_off, file), name)
    }

    /// msync(2): write the shared file pages of `[addr, addr+len)` back
    /// to their files. ENOMEM when part of the range is not mapped.
    pub fn sync(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        let work: Vec<(FileBacking, u64, u64)> = {
            let s = self.lock();
            Self::check_covered(&s, addr, end)?;
            overlapping(&s.vmas, addr, end, |v| v.end)
                .into_iter()
                .filter_map(|(vs, ve)| {
                    let v = s.vmas.get(&vs)?;
                    let f = v.file.clone()?;
                    let VmaName::File { offset, .. } = v.name else { return None };
                    let (a, b) = (vs.max(addr), ve.min(end));
                    Some((f, offset + (a - vs), b - a))
                })
                .collect()
        };
        for (f, off, len) in work {
            f.file.write_back(off, len).map_err(|_| Errno::EIO)?;
        }
        Ok(())
    }

    /// Mark `[addr, addr+len)` (inside one new file mapping) as lying past
    /// the end of the file.
    pub fn mark_past_eof(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        let mut s = self.lock();
        Self::split_at(&mut s, addr);
        Self::split_at(&mut s, end);
        for (_, v) in s.vmas.range_mut(addr..end) {
            v.past_eof = true;
        }
        // Not lazy any more: a fault there is SIGBUS, never a first touch.
        let host = Self::host_may_map(&s, addr, end);
        Self::forget_lazy(&mut s, addr, end);
        if !host {
            return Ok(());
        }
        self.space.unmap(addr, len).map_err(platform_err)
    }

    pub fn unmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > self.top {
            return Err(Errno::EINVAL);
        }
        let mut s = self.lock();
        self.unmap_locked(&mut s, addr, end)
    }

    /// Every page of `[addr, end)` is mapped (ENOMEM otherwise, as Linux
    /// checks for mprotect and madvise).
    pub(super) fn check_covered(s: &MmState, addr: u64, end: u64) -> Result<(), Errno> {
        let mut at = addr;
        for v in s.vmas.range(..end).map(|(_, v)| v).filter(|v| v.end > addr) {
            if v.start > at {
                return Err(Errno::ENOMEM);
            }
            at = v.end;
        }
        if at < end {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    pub fn protect(&self, addr: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        let mut s = self.lock();
        Self::check_covered(&s, addr, end)?;
        // The vvar page and vDSO are one copy for the whole sandbox: never
        // writable (Linux refuses PROT_WRITE on vvar too).
        if prot.write
            && s.vmas.range(..end).map(|(_, v)| v).any(|v| {
                v.end > addr
                    && (matches!(v.name, VmaName::Vvar | VmaName::Vdso)
                        || v.file.as_ref().is_some_and(|f| f.writer.is_none()))
            })
        {
            return Err(Errno::EACCES);
        }
        // Code the guest may now write reads as it wrote it.
        if prot.write {
            self.unpatch_locked(&mut s, addr, end);
        }
        // Nothing changes (a loader or JIT re-protecting its text): no
        // platform round trip, no split.
        if overlapping(&s.vmas, addr, end, |v| v.end).iter().all(|(k, _)| s.vmas.get(k).is_some_and(|v| v.prot == prot))
        {
            return Ok(());
        }
        Self::split_at(&mut s, addr);
        Self::split_at(&mut s, end);
        let mut to_copy = Vec::new();
        for (_, v) in s.vmas.range_mut(addr..end) {
            v.prot = prot;
            if v.cached && prot.write {
                to_copy.push(v.start);
            }
            if let Some(FileBacking { file, writer: Some(w) }) = &v.file {
                if prot.write {
                    file.set_writer(w);
                }
            }
        }
        // Cached file pages become writable: the mapping turns private,
        // sharing the cache's pages copy-on-write (the cache's own
        // reference keeps the count above one, so a write copies).
        for start in to_copy {
            self.uncache_locked(&mut s, start);
        }
        self.sync_platform(&s, addr, end, false)
    }

    /// madvise(MADV_DONTNEED): private pages of `[addr, addr+len)` read
    /// as zeros afterwards (pages shared copy-on-write stay with the other
    /// side); shared and file-cached pages are left alone, as their
    /// contents come back from the file or shared memory anyway.
    pub fn discard(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        let mut s = self.lock();
        Self::check_covered(&s, addr, end)?;
        for (vs, ve) in overlapping(&s.vmas, addr, end, |v| v.end) {
            if !s.vmas.get(&vs).is_some_and(|v| v.private()) {
                continue;
            }
            let (a, b) = (vs.max(addr), ve.min(end));
            let off = self.memfile.alloc_ref(b - a)?;
            let old = Self::take_pmas(&mut s, a, b);
            self.release_pmas(old);
            s.pmas.insert(a, Pma { end: b, off, cow: false });
            self.sync_platform(&s, a, b, true)?;
        }
        Ok(())
    }

    /// brk(2): move the program break; returns the break in force.
    pub fn brk(&self, new: u64) -> u64 {
        let mut s = self.lock();
        let old = s.brk;
        if new < s.brk_start || new > self.mmap_base {
            return old;
        }
        let old_end = page_up(old).unwrap_or(old);
        let Some(new_end) = page_up(new) else {
            return old;
        };
        if new_end > old_end {
            if !Self::is_free(&s, old_end, new_end) || self.check_as(&s, new_end - old_end, None).is_err() {
                return old;
            }
            if self.new_locked(&mut s, old_end, new_end, Prot::RW, false, VmaName::Heap).is_err() {
                return old;
            }
        } else if new_end < old_end && self.unmap_locked(&mut s, new_end, old_end).is_err() {
            return old;
        }
        s.brk = new;
        new
    }

    /// Fresh zeroed memory at the free range `[start, end)`.
    pub(super) fn new_locked(
        &self,
        s: &mut MmState,
        start: u64,
        end: u64,
        prot: Prot,
        shared: bool,
        name: VmaName,
    ) -> Result<(), Errno> {
        self.claim_code_window_locked(s, start, end)?;
        let flags = VmaFlags { locked: s.lock_future, growsdown: name == VmaName::Stack, ..Default::default() };
        let mut n = Vma {
            start,
            end,
            prot,
            shared,
            mem: None,
            mem_off: 0,
            name,
            past_eof: false,
            cached: false,
            file: None,
            flags,
            origin: None,
        };
        if shared {
            n.mem = Some(self.memfile.alloc(end - start)?);
        } else {
            let off = self.memfile.alloc_ref(end - start)?;
            s.pmas.insert(start, Pma { end, off, cow: false });
        }
        s.vmas.insert(start, n);
        self.sync_platform(s, start, end, true)
    }

    /// mremap(2).
    pub fn remap(
        &self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed_to: Option<u64>,
        dontunmap: bool,
    ) -> Result<u64, Errno> {
        if !old.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
        let mut s = self.lock();
        // The old range must be mapped throughout. (Linux wants one VMA,
        // but it merges adjacent anonymous VMAs, which this manager does
        // not, so contiguous coverage is the equivalent test.)
        let (_, v) = s.vmas.range(..=old).next_back().ok_or(Errno::EFAULT)?;
        if v.end <= old {
            return Err(Errno::EFAULT);
        }
        let v = v.clone();
        let mut covered = v.end;
        while covered < old_end {
            match s.vmas.get(&covered) {
                Some(n) => covered = n.end,
                None => return Err(Errno::EFAULT),
            }
        }
        let last_end = covered;
        if old_len == 0 {
            // Duplicating a shared mapping (old_len 0) is not supported.
            return Err(Errno::EINVAL);
        }
        if new_len > old_len {
            self.check_as(&s, new_len - old_len, None)?;
        }
        if dontunmap && !(v.private() && !v.shared && !matches!(v.name, VmaName::File { .. })) {
            // MREMAP_DONTUNMAP is served for private anonymous memory.
            return Err(Errno::EINVAL);
        }
        if fixed_to.is_none() && !dontunmap {
            if new_len <= old_len {
                if new_len < old_len {
                    self.unmap_locked(&mut s, old + new_len, old_end)?;
                }
                return Ok(old);
            }
            // Grow in place when the space after is free.
            let new_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
            if old_end == last_end && new_end <= self.top && Self::is_free(&s, old_end, new_end) {
                self.new_locked(&mut s, old_end, new_end, v.prot, v.shared, VmaName::Anon)?;
                return Ok(old);
            }
            if !may_move {
                return Err(Errno::ENOMEM);
            }
        }
        // Move: map the same memory at the new place (no copy), then a
        // fresh extension for the grown part.
        let keep = old_len.min(new_len);
        let dest = match fixed_to {
            Some(d) => {
                if !d.is_multiple_of(PAGE_SIZE) {
                    return Err(Errno::EINVAL);
                }
                let dend = self.check_range(d, new_len)?;
                if d < old_end && old < dend {
                    return Err(Errno::EINVAL);
                }
                self.unmap_locked(&mut s, d, dend)?;
                d
            }
            None => self.find_gap(&mut s, new_len)?,
        };
        self.claim_code_window_locked(&mut s, dest, dest + new_len)?;
        let moved = self.take_range(&mut s, old, old + keep);
        let moved_pmas = Self::take_pmas(&mut s, old, old + keep);
        self.space.unmap(old, keep).map_err(platform_err)?;
        for m in moved {
            let mut n = m.clone();
            n.start = dest + (m.start - old);
            n.end = dest + (m.end - old);
            s.vmas.insert(n.start, n);
        }
        for (ps, p) in moved_pmas {
            s.pmas.insert(dest + (ps - old), Pma { end: dest + (p.end - old), ..p });
        }
        self.sync_platform(&s, dest, dest + keep, true)?;
        if dontunmap {
            // The old range stays mapped, empty: it reads as zeros.
            self.new_locked(&mut s, old, old + keep, v.prot, false, v.name.clone())?;
        }
        if old_len > keep {
            self.unmap_locked(&mut s, old + keep, old_end)?;
        }
        if new_len > keep {
            self.new_locked(&mut s, dest + keep, dest + new_len, v.prot, v.shared, VmaName::Anon)?;
        }
        Ok(dest)
    }
}
