//! Private pages across fork: copy-on-write faults, unsharing, fork
//! itself, and giving write access back when the other side is gone.

use super::*;

impl MemoryManager {
    /// Give the private pages of `[start, end)` to this address space
    /// alone, so that they can be written: a page still shared with
    /// another address space is copied, one that is not any more is kept.
    pub(super) fn unshare_locked(&self, s: &mut MmState, start: u64, end: u64) -> Result<(), Errno> {
        let start = page_down(start);
        let end = page_up(end).ok_or(Errno::EFAULT)?;
        let cows: Vec<(u64, u64)> = overlapping(&s.pmas, start, end, |p| p.end)
            .into_iter()
            .filter(|(k, _)| s.pmas.get(k).is_some_and(|p| p.cow))
            .map(|(a, b)| (a.max(start), b.min(end)))
            .collect();
        for (a, b) in cows {
            let mut at = a;
            while at < b {
                let Some((&ps, &p)) = s.pmas.range(..=at).next_back() else {
                    return Err(Errno::EFAULT);
                };
                let off = p.off + (at - ps);
                let (_, rend, count) = self.memfile.refcount(off).ok_or(Errno::EFAULT)?;
                // The pages from `at` on with the same count.
                let stop = b.min(p.end).min(at + (rend - off));
                Self::split_pma_at(s, at);
                Self::split_pma_at(s, stop);
                let len = stop - at;
                let remap = count > 1;
                let new_off = if remap {
                    let n = self.memfile.alloc_ref(len)?;
                    if let Err(e) = self.memfile.copy_by_read(off, n, len) {
                        self.memfile.decref(n, len);
                        return Err(e);
                    }
                    self.memfile.decref(off, len);
                    n
                } else {
                    off
                };
                s.pmas.insert(at, Pma { end: stop, off: new_off, cow: false });
                self.sync_platform(s, at, stop, remap)?;
                Self::merge_pma_at(s, stop);
                Self::merge_pma_at(s, at);
                at = stop;
            }
        }
        Ok(())
    }

    /// A fault at `addr`: a write to a page shared copy-on-write gets a
    /// page of its own. The ptrace platform reports a write fault as a
    /// read first (it only learns it was a write when the fault repeats),
    /// and a read of a mapped, readable page cannot fault, so any data
    /// fault on a copy-on-write page of a writable mapping is taken as
    /// the write it must be.
    pub fn handle_fault(&self, addr: u64, access: Access) -> FaultOutcome {
        let mut s = self.lock();
        if let Some(done) = self.fault_in_lazy(&mut s, addr) {
            return done;
        }
        if access == Access::Exec {
            return FaultOutcome::Signal;
        }
        let Some(v) = s.vmas.range(..=addr).next_back().map(|(_, v)| v).filter(|v| v.end > addr) else {
            return self.grow_down(&mut s, addr);
        };
        if !v.private() || v.past_eof || !v.prot.read {
            return FaultOutcome::Signal;
        }
        let (vs, ve, vw) = (v.start, v.end, v.prot.write);
        let Some((&ps, &p)) = s.pmas.range(..=addr).next_back().filter(|(_, p)| p.end > addr) else {
            return FaultOutcome::Signal;
        };
        if !p.cow {
            // Another thread of this process broke the copy-on-write
            // first, or a fork froze the page for a moment (`fork` with
            // others running): the page may be mapped as the VMA allows
            // already; a write maps it so again, since a fork in between
            // can freeze it any number of times.
            return match access {
                Access::Read => FaultOutcome::Retry,
                _ if !vw => FaultOutcome::Signal,
                _ => {
                    let page = page_down(addr);
                    match self.sync_platform(&s, page, page + PAGE_SIZE, false) {
                        Ok(()) => FaultOutcome::Fixed,
                        Err(_) => FaultOutcome::Retry,
                    }
                }
            };
        }
        if !vw {
            return FaultOutcome::Signal;
        }
        let page = page_down(addr);
        let run = self.memfile.refcount(p.off + (page - ps));
        let (a, b) = if let Some((rs, re, 1)) = run {
            // Nobody else has these pages any more (the other side exited
            // or wrote its own copies): one fault gives back write access
            // to all of them, not one chunk at a time.
            let (ra, rb) = (ps + rs.saturating_sub(p.off), ps + (re - p.off).min(p.end - ps));
            (vs.max(ra), ve.min(rb))
        } else {
            let (last_end, last_len) = s.last_cow;
            let chunk = if page >= last_end && page < last_end.saturating_add(last_len.max(COW_CHUNK_MIN)) {
                (last_len * 2).clamp(COW_CHUNK_MIN, COW_CHUNK_MAX)
            } else {
                COW_CHUNK_MIN
            };
            let c = page - page % chunk;
            let r = (c.max(vs).max(ps), c.saturating_add(chunk).min(ve).min(p.end));
            s.last_cow = (r.1, chunk);
            r
        };
        match self.unshare_locked(&mut s, a, b) {
            Ok(()) => FaultOutcome::Fixed,
            Err(e) => {
                tracing::warn!("copy-on-write at {addr:#x} failed: {e:?}");
                FaultOutcome::Signal
            }
        }
    }

    /// A fault at `addr`, which no mapping holds: if a MAP_GROWSDOWN
    /// mapping lies above it, that stack grows down to it (Linux's
    /// expand_stack), within `STACK_SIZE` (RLIMIT_STACK's default) and no
    /// closer than Linux's guard gap to an accessible mapping below.
    fn grow_down(&self, s: &mut MmState, addr: u64) -> FaultOutcome {
        /// Linux's stack_guard_gap: 256 pages.
        const GUARD_GAP: u64 = 256 * PAGE_SIZE;
        let page = page_down(addr);
        let Some(v) = s.vmas.range(addr..).next().map(|(_, v)| v) else { return FaultOutcome::Signal };
        if !v.flags.growsdown || !v.private() || page < MIN_MMAP_ADDR {
            return FaultOutcome::Signal;
        }
        let (start, prot, name) = (v.start, v.prot, v.name.clone());
        // The stack's whole extent: it may have been split (mprotect).
        let mut top = v.end;
        while let Some(n) = s.vmas.get(&top).filter(|n| n.flags.growsdown) {
            top = n.end;
        }
        if top - page > STACK_SIZE {
            return FaultOutcome::Signal;
        }
        if let Some((_, below)) = s.vmas.range(..addr).next_back() {
            let accessible = below.prot.read || below.prot.write || below.prot.exec;
            if !below.flags.growsdown && accessible && page < below.end.saturating_add(GUARD_GAP) {
                return FaultOutcome::Signal;
            }
        }
        match self.new_locked(s, page, start, prot, false, name) {
            Ok(()) => FaultOutcome::Retry,
            Err(e) => {
                tracing::warn!("growing a stack down to {addr:#x} failed: {e:?}");
                FaultOutcome::Signal
            }
        }
    }

    /// A copy of this address space for fork: shared mappings stay
    /// shared; private pages are shared copy-on-write (nothing is copied
    /// now; the first write on either side copies the page).
    ///
    /// `others_run`: other threads may be running guest code of this
    /// address space meanwhile. Then the parent's writable pages are made
    /// read-only first (their writes fault and wait for this lock), so the
    /// child gets one instant's memory, as Linux's fork gives it; without
    /// that, a page copied early and one shared late could disagree (a
    /// lock-free malloc free seen half done: "unaligned fastbin chunk" in
    /// a forked child).
    pub fn fork(self: &Arc<Self>, space: Arc<dyn AddressSpace>, others_run: bool) -> Result<Arc<MemoryManager>, Errno> {
        let _t = platform::profile::span(platform::profile::Phase::Fork);
        let mut s = self.lock();
        let child = MemoryManager::new(space, self.memfile.clone(), self.top);
        child.set_as_limit(self.as_limit.load(std::sync::atomic::Ordering::Acquire));
        child
            .membarrier
            .store(self.membarrier.load(std::sync::atomic::Ordering::Acquire), std::sync::atomic::Ordering::Release);
        {
            let mut cs = child.lock();
            cs.brk_start = s.brk_start;
            cs.brk = s.brk;
            cs.arg_range = s.arg_range;
            cs.env_range = s.env_range;
            cs.free_cache = s.free_cache;
            cs.cached_hole = s.cached_hole;
            // The child shares the patched pages.
            cs.patched = s.patched.clone();
            // Runs are cut at the edges of small writable mappings (runs
            // merge across mappings) so that those are copied whole, and
            // below the top of the main stack, which the child writes at
            // once (the return from fork itself).
            let mut cuts = Vec::new();
            for v in s.vmas.values().filter(|v| v.private() && v.prot.write && !v.past_eof) {
                if v.end - v.start <= EAGER_COPY_MAX {
                    cuts.extend([v.start, v.end]);
                } else if v.name == VmaName::Stack {
                    cuts.push(v.end - STACK_EAGER);
                }
            }
            for at in cuts {
                Self::split_pma_at(&mut s, at);
            }
            let frozen = if others_run { self.freeze_writes(&s)? } else { Vec::new() };
            let st = &mut *s;
            let mut shared = Vec::new();
            let mut failed = None;
            for (&start, p) in st.pmas.iter_mut() {
                let len = p.end - start;
                let writable = st
                    .vmas
                    .range(..p.end)
                    .rev()
                    .take_while(|(_, v)| v.end > start)
                    .any(|(_, v)| v.prot.write && !v.past_eof);
                if writable && len <= EAGER_COPY_MAX {
                    // Small writable runs (data segments, small buffers)
                    // are nearly always written by one side soon: a copy
                    // now costs less than the fault later.
                    let off = match self.memfile.alloc_ref(len) {
                        Ok(off) => off,
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    };
                    if let Err(e) = self.memfile.copy_by_read(p.off, off, len) {
                        self.memfile.decref(off, len);
                        failed = Some(e);
                        break;
                    }
                    cs.pmas.insert(start, Pma { end: p.end, off, cow: false });
                    continue;
                }
                self.memfile.incref(p.off, len);
                p.cow = true;
                cs.pmas.insert(start, *p);
                if writable {
                    shared.push((start, p.end));
                }
            }
            if let Some(e) = failed {
                // The pages marked copy-on-write so far stay so (a write
                // fault copies them back for the parent alone).
                self.thaw_writes(st, &frozen);
                return Err(e);
            }
            cs.vmas = st.vmas.clone();
            // What the parent kept for itself (copied for the child) is
            // writable again; what it shares stays read-only.
            self.thaw_writes(st, &frozen);
            Self::fork_advice(&child, &mut cs)?;
            // The parent gives up write access to what it now shares
            // before the child exists: its writes would land in pages the
            // child sees (done before anything was copied when other
            // threads may run, see `freeze_writes`). In one round trip:
            // otherwise no guest thread runs in this address space.
            let parent_batch = SpaceBatch::begin(&self.space);
            for (a, b) in if others_run { Vec::new() } else { shared } {
                for (vs, ve) in overlapping(&s.vmas, a, b, |v| v.end) {
                    let Some(v) = s.vmas.get(&vs) else { continue };
                    if v.private() && v.prot.write && !v.past_eof {
                        let (x, y) = (vs.max(a), ve.min(b));
                        for (x, y) in Self::eager_parts(&s, x, y) {
                            self.space.protect(x, y - x, v.prot_without_write()).map_err(platform_err)?;
                        }
                    }
                }
            }
            parent_batch.finish()?;
            // Not in the parent's host mapping, not in the child's either.
            cs.lazy = s.lazy.clone();
            // Nothing runs in the child's space yet: all of it in one go.
            let child_batch = SpaceBatch::begin(&child.space);
            child.sync_platform(&cs, MIN_MMAP_ADDR, self.top, true)?;
            child_batch.finish()?;
        }
        drop(s);
        // Set only now: a child dropped on an error above must not call
        // back into this (then locked) address space.
        let _ = child.forked_from.set(Arc::downgrade(self));
        Ok(child)
    }

    /// Make every private page the parent can write read-only in its host
    /// mapping (fork with other threads running): the runs changed, with
    /// the protection to give back. Undone on failure.
    fn freeze_writes(&self, s: &MmState) -> Result<Vec<(u64, u64, Prot)>, Errno> {
        let mut runs = Vec::new();
        for (&ps, p) in s.pmas.iter().filter(|(_, p)| !p.cow) {
            for (vs, ve) in overlapping(&s.vmas, ps, p.end, |v| v.end) {
                let Some(v) = s.vmas.get(&vs) else { continue };
                if v.private() && v.prot.write && !v.past_eof {
                    for (x, y) in Self::eager_parts(s, vs.max(ps), ve.min(p.end)) {
                        runs.push((x, y, v.prot));
                    }
                }
            }
        }
        // One round trip, finished before anything is copied.
        let batch = SpaceBatch::begin(&self.space);
        let mut failed = None;
        for &(x, y, prot) in &runs {
            if let Err(e) = self.space.protect(x, y - x, Prot { write: false, ..prot }) {
                failed = Some(platform_err(e));
                break;
            }
        }
        if let Err(e) = batch.finish() {
            failed = failed.or(Some(e));
        }
        if let Some(e) = failed {
            self.thaw_writes(s, &runs);
            return Err(e);
        }
        Ok(runs)
    }

    /// Give write access back to the frozen runs whose pages are still
    /// this address space's alone.
    fn thaw_writes(&self, s: &MmState, runs: &[(u64, u64, Prot)]) {
        if runs.is_empty() {
            return;
        }
        let batch = SpaceBatch::begin(&self.space);
        for &(x, y, prot) in runs {
            let sole = s.pmas.range(..=x).next_back().is_some_and(|(_, p)| p.end >= y && !p.cow);
            if sole {
                if let Err(e) = self.space.protect(x, y - x, prot) {
                    tracing::warn!("fork: giving write access back to {x:#x}..{y:#x}: {e}");
                }
            }
        }
        // Left read-only, a page only costs a fault (which maps it
        // writable again, see `handle_fault`).
        if let Err(e) = batch.finish() {
            tracing::warn!("fork: giving write access back: {e:?}");
        }
    }

    /// Give write access back to copy-on-write pages nobody else refers
    /// to any more (a child that shared them exited or exec'd), which
    /// saves a fault per run on the parent's next writes. Only an
    /// optimization: skipped when the address space is busy.
    pub(super) fn reclaim_sole(&self) {
        let Ok(mut s) = self.state.try_lock() else {
            return;
        };
        let mut sole = Vec::new();
        for (&ps, p) in s.pmas.iter().filter(|(_, p)| p.cow) {
            let mut at = ps;
            while at < p.end {
                let off = p.off + (at - ps);
                let Some((_, rend, count)) = self.memfile.refcount(off) else { break };
                let stop = p.end.min(at + (rend - off));
                // Large runs are left to their first write fault (which
                // restores the whole run): changing the protection of
                // many pages costs more than the fault, and the parent
                // may not write them before its next fork anyway.
                if count == 1 && stop - at <= RECLAIM_MAX {
                    sole.push((at, stop));
                }
                at = stop;
            }
        }
        for &(a, b) in &sole {
            Self::split_pma_at(&mut s, a);
            Self::split_pma_at(&mut s, b);
            if let Some(p) = s.pmas.get_mut(&a) {
                p.cow = false;
            }
        }
        // All in one round trip (under the lock, as every change to this
        // space is; write access given late only costs a fault, which
        // waits for the lock).
        let batch = SpaceBatch::begin(&self.space);
        let mut failed = false;
        for &(a, b) in &sole {
            failed |= self.sync_platform(&s, a, b, false).is_err();
        }
        if failed | batch.finish().is_err() {
            // Some pages may stay mapped read-only; a write fault would
            // find them non-COW and retry, then signal. Make them COW
            // again so that the fault gives write access back.
            for &(a, _) in &sole {
                if let Some(p) = s.pmas.get_mut(&a) {
                    p.cow = true;
                }
            }
        }
        for &(a, b) in &sole {
            Self::merge_pma_at(&mut s, b);
            Self::merge_pma_at(&mut s, a);
        }
    }

    /// The memory-file offset behind `addr`, and whether its mapping is
    /// shared; EFAULT when it is not mapped readable (or, with `write`,
    /// writable: then the page is this address space's alone).
    pub fn translate(&self, addr: u64, write: bool) -> Result<(u64, bool), Errno> {
        let mut s = self.lock();
        let (_, v) = s.vmas.range(..=addr).next_back().ok_or(Errno::EFAULT)?;
        if v.end <= addr || v.past_eof || !v.prot.read || (write && (!v.prot.write || v.cached)) {
            return Err(Errno::EFAULT);
        }
        let shared = v.shared;
        if let Some(off) = v.file_offset_at(addr) {
            return Ok((off, shared));
        }
        if write {
            self.unshare_locked(&mut s, addr, addr + 1)?;
        }
        let (&ps, p) = s.pmas.range(..=addr).next_back().ok_or(Errno::EFAULT)?;
        if p.end <= addr {
            return Err(Errno::EFAULT);
        }
        Ok((p.off + (addr - ps), shared))
    }

    /// The VMA containing `addr`.
    pub fn vma_at(&self, addr: u64) -> Option<Vma> {
        let s = self.lock();
        s.vmas.range(..=addr).next_back().map(|(_, v)| v).filter(|v| v.end > addr).cloned()
    }
}

/// Changes to a space collected into as few platform round trips as can
/// be (`AddressSpace::begin_batch`) until `finish`, or until dropped on an
/// early return: a space is never left collecting.
struct SpaceBatch<'a>(Option<&'a Arc<dyn AddressSpace>>);

impl<'a> SpaceBatch<'a> {
    fn begin(space: &'a Arc<dyn AddressSpace>) -> SpaceBatch<'a> {
        space.begin_batch();
        SpaceBatch(Some(space))
    }

    fn finish(mut self) -> Result<(), Errno> {
        match self.0.take() {
            Some(space) => space.flush().map_err(platform_err),
            None => Ok(()),
        }
    }
}

impl Drop for SpaceBatch<'_> {
    fn drop(&mut self) {
        if let Some(space) = self.0.take() {
            let _ = space.flush();
        }
    }
}
