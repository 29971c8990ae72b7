//! The memory manager: a guest address space as a set of VMAs, each backed
//! by a range of the memory file, kept in step with the platform's
//! `AddressSpace`.

use crate::memfile::{MemRange, MemoryFile};
use abi::{page_down, page_up, Errno, PAGE_SIZE};
use platform::{AddressSpace, Prot};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Lowest address a guest mapping may have (vm.mmap_min_addr).
pub const MIN_MMAP_ADDR: u64 = 0x10000;
/// Size of the main thread's stack mapping (RLIMIT_STACK's default).
pub const STACK_SIZE: u64 = 8 << 20;
/// Where a PIE executable is loaded (Linux's ELF_ET_DYN_BASE).
pub const PIE_BASE: u64 = 0x5555_5555_4000;

/// What a mapping is, for /proc/[pid]/maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmaName {
    Anon,
    Heap,
    Stack,
    /// The clock parameters the vDSO reads (shared by every process).
    Vvar,
    /// The vDSO image (shared by every process).
    Vdso,
    /// A file mapping: path, device, inode and the file offset of `start`.
    File {
        path: Vec<u8>,
        dev: u64,
        ino: u64,
        offset: u64,
    },
}

/// One mapping: `[start, end)` backed by `mem` from `mem_off` on.
#[derive(Clone, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    pub shared: bool,
    pub mem: Arc<MemRange>,
    pub mem_off: u64,
    pub name: VmaName,
    /// Pages of a file mapping past the end of the file: not mapped in the
    /// platform, so touching them faults, and the fault is SIGBUS.
    pub past_eof: bool,
    /// A private mapping backed by the shared file cache: never written
    /// in place (it is copied first when made writable), never punched.
    pub cow: bool,
}

impl Vma {
    /// A fresh anonymous mapping of `[start, end)` backed by all of `mem`.
    fn anon(start: u64, end: u64, prot: Prot, shared: bool, mem: Arc<MemRange>, name: VmaName) -> Vma {
        Vma { start, end, prot, shared, mem, mem_off: 0, name, past_eof: false, cow: false }
    }

    fn file_offset_at(&self, addr: u64) -> u64 {
        self.mem.off + self.mem_off + (addr - self.start)
    }

    /// The part of this VMA from `addr` on (addr inside the VMA).
    fn tail_from(&self, addr: u64) -> Vma {
        let mut v = self.clone();
        let d = addr - self.start;
        v.start = addr;
        v.mem_off += d;
        if let VmaName::File { offset, .. } = &mut v.name {
            *offset += d;
        }
        v
    }
}

struct MmState {
    vmas: BTreeMap<u64, Vma>,
    brk_start: u64,
    brk: u64,
    /// Where argv and envp strings live (for /proc/[pid]/cmdline, environ).
    arg_range: (u64, u64),
    env_range: (u64, u64),
}

/// A guest address space.
pub struct MemoryManager {
    space: Arc<dyn AddressSpace>,
    memfile: Arc<MemoryFile>,
    /// Guest mappings stay below this.
    top: u64,
    /// Top of the region searched for new mappings (below the stack).
    mmap_base: u64,
    state: Mutex<MmState>,
}

fn platform_err(e: platform::PlatformError) -> Errno {
    tracing::warn!("address space change failed: {e}");
    Errno::ENOMEM
}

impl MemoryManager {
    pub fn new(space: Arc<dyn AddressSpace>, memfile: Arc<MemoryFile>, top: u64) -> Arc<MemoryManager> {
        let top = page_down(top.min(0x7fff_ffff_f000));
        Arc::new(MemoryManager {
            space,
            memfile,
            top,
            mmap_base: page_down(top - STACK_SIZE - (1 << 30)),
            state: Mutex::new(MmState {
                vmas: BTreeMap::new(),
                brk_start: 0,
                brk: 0,
                arg_range: (0, 0),
                env_range: (0, 0),
            }),
        })
    }

    pub fn space(&self) -> &Arc<dyn AddressSpace> {
        &self.space
    }

    pub fn memfile(&self) -> &Arc<MemoryFile> {
        &self.memfile
    }

    /// The highest address a guest mapping may end at.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// Where the main stack's top goes.
    pub fn stack_top(&self) -> u64 {
        self.top - PAGE_SIZE
    }

    fn lock(&self) -> MutexGuard<'_, MmState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(e) => e.into_inner(),
        }
    }

    /// Set the start of the heap (after loading the executable).
    pub fn set_brk_start(&self, addr: u64) {
        let mut s = self.lock();
        s.brk_start = addr;
        s.brk = addr;
    }

    pub fn set_arg_env_ranges(&self, arg: (u64, u64), env: (u64, u64)) {
        let mut s = self.lock();
        s.arg_range = arg;
        s.env_range = env;
    }

    pub fn arg_env_ranges(&self) -> ((u64, u64), (u64, u64)) {
        let s = self.lock();
        (s.arg_range, s.env_range)
    }

    /// A copy of the VMAs, for /proc/[pid]/maps.
    pub fn vmas(&self) -> Vec<Vma> {
        self.lock().vmas.values().cloned().collect()
    }

    fn check_range(&self, addr: u64, len: u64) -> Result<u64, Errno> {
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if addr < MIN_MMAP_ADDR || end > self.top {
            return Err(Errno::ENOMEM);
        }
        Ok(end)
    }

    fn is_free(s: &MmState, start: u64, end: u64) -> bool {
        if let Some((_, v)) = s.vmas.range(..end).next_back() {
            if v.end > start {
                return false;
            }
        }
        true
    }

    /// A free range of `len` bytes, top-down below `mmap_base`.
    fn find_gap(&self, s: &MmState, len: u64) -> Result<u64, Errno> {
        let mut end = self.mmap_base;
        for v in s.vmas.range(..end).rev().map(|(_, v)| v) {
            if v.end <= end.saturating_sub(len) && end >= len {
                return Ok(end - len);
            }
            end = end.min(v.start);
            if end < MIN_MMAP_ADDR + len {
                return Err(Errno::ENOMEM);
            }
        }
        if end >= MIN_MMAP_ADDR + len {
            Ok(end - len)
        } else {
            Err(Errno::ENOMEM)
        }
    }

    /// Cut the VMAs so that `addr` is a boundary.
    fn split_at(s: &mut MmState, addr: u64) {
        let Some((&start, v)) = s.vmas.range(..addr).next_back() else {
            return;
        };
        if v.end > addr {
            let tail = v.tail_from(addr);
            if let Some(v) = s.vmas.get_mut(&start) {
                v.end = addr;
            }
            s.vmas.insert(addr, tail);
        }
    }

    /// Take out the VMAs in `[start, end)` (after splitting at both ends).
    fn take_range(s: &mut MmState, start: u64, end: u64) -> Vec<Vma> {
        Self::split_at(s, start);
        Self::split_at(s, end);
        let keys: Vec<u64> = s.vmas.range(start..end).map(|(&k, _)| k).collect();
        keys.into_iter().filter_map(|k| s.vmas.remove(&k)).collect()
    }

    /// Drop `[start, end)` from the state and the address space, giving
    /// private pages back to the host.
    fn unmap_locked(&self, s: &mut MmState, start: u64, end: u64) -> Result<(), Errno> {
        let gone = Self::take_range(s, start, end);
        if gone.is_empty() {
            return Ok(());
        }
        self.space.unmap(start, end - start).map_err(platform_err)?;
        for v in gone {
            if !v.shared && !v.cow {
                self.memfile.punch(v.mem.off + v.mem_off, v.end - v.start);
            }
        }
        Ok(())
    }

    fn insert_locked(&self, s: &mut MmState, v: Vma) -> Result<(), Errno> {
        self.space.map(v.start, v.end - v.start, v.prot, v.file_offset_at(v.start)).map_err(platform_err)?;
        s.vmas.insert(v.start, v);
        Ok(())
    }

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
        let mem = self.memfile.alloc(len)?;
        self.map_range(addr, len, prot, shared, fixed, mem, 0, name)
    }

    /// Map `mem` (from `mem_off` on) at `addr` as `map_anon` places it.
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
        self.map_inner(addr, len, prot, shared, fixed, mem, mem_off, name, false)
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
        self.map_inner(addr, len, prot, false, fixed, cache, cache_off, name, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn map_inner(
        &self,
        addr: u64,
        len: u64,
        prot: Prot,
        shared: bool,
        fixed: bool,
        mem: Arc<MemRange>,
        mem_off: u64,
        name: VmaName,
        cow: bool,
    ) -> Result<u64, Errno> {
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let mut s = self.lock();
        let start = if fixed {
            if !addr.is_multiple_of(PAGE_SIZE) {
                return Err(Errno::EINVAL);
            }
            let end = self.check_range(addr, len)?;
            self.unmap_locked(&mut s, addr, end)?;
            addr
        } else {
            let hint = page_down(addr);
            match hint.checked_add(len) {
                Some(end) if hint >= MIN_MMAP_ADDR && end <= self.top && Self::is_free(&s, hint, end) => hint,
                _ => self.find_gap(&s, len)?,
            }
        };
        let v = Vma { start, end: start + len, prot, shared, mem, mem_off, name, past_eof: false, cow };
        self.insert_locked(&mut s, v)?;
        Ok(start)
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
        // Every page must be mapped (ENOMEM otherwise), as Linux checks.
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
        // The vvar page and vDSO are one copy for the whole sandbox: never
        // writable (Linux refuses PROT_WRITE on vvar too).
        if prot.write
            && s.vmas
                .range(..end)
                .map(|(_, v)| v)
                .any(|v| v.end > addr && matches!(v.name, VmaName::Vvar | VmaName::Vdso))
        {
            return Err(Errno::EACCES);
        }
        Self::split_at(&mut s, addr);
        Self::split_at(&mut s, end);
        let mut backed = Vec::new();
        let mut to_copy = Vec::new();
        for (_, v) in s.vmas.range_mut(addr..end) {
            v.prot = prot;
            if v.cow && prot.write {
                to_copy.push(v.start);
            } else if !v.past_eof {
                backed.push((v.start, v.end));
            }
        }
        // Cached file pages become writable: give the mapping its own copy.
        for start in to_copy {
            let Some(v) = s.vmas.get(&start).cloned() else { continue };
            let len = v.end - v.start;
            let mem = self.memfile.alloc(len)?;
            self.memfile.copy_within(v.file_offset_at(v.start), mem.off, len)?;
            let n = Vma { mem, mem_off: 0, cow: false, ..v };
            self.insert_locked(&mut s, n)?;
        }
        for (a, e) in backed {
            self.space.protect(a, e - a, prot).map_err(platform_err)?;
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
            if !Self::is_free(&s, old_end, new_end) {
                return old;
            }
            let Ok(mem) = self.memfile.alloc(new_end - old_end) else {
                return old;
            };
            let v = Vma::anon(old_end, new_end, Prot::RW, false, mem, VmaName::Heap);
            if self.insert_locked(&mut s, v).is_err() {
                return old;
            }
        } else if new_end < old_end && self.unmap_locked(&mut s, new_end, old_end).is_err() {
            return old;
        }
        s.brk = new;
        new
    }

    /// mremap(2).
    pub fn remap(
        &self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed_to: Option<u64>,
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
        if fixed_to.is_none() {
            if new_len <= old_len {
                if new_len < old_len {
                    self.unmap_locked(&mut s, old + new_len, old_end)?;
                }
                return Ok(old);
            }
            // Grow in place when the space after is free.
            let new_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
            if old_end == last_end && new_end <= self.top && Self::is_free(&s, old_end, new_end) {
                let mem = self.memfile.alloc(new_end - old_end)?;
                let ext = Vma::anon(old_end, new_end, v.prot, v.shared, mem, VmaName::Anon);
                self.insert_locked(&mut s, ext)?;
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
            None => self.find_gap(&s, new_len)?,
        };
        let moved = Self::take_range(&mut s, old, old + keep);
        self.space.unmap(old, keep).map_err(platform_err)?;
        for m in moved {
            let mut n = m.clone();
            n.start = dest + (m.start - old);
            n.end = dest + (m.end - old);
            self.insert_locked(&mut s, n)?;
        }
        if old_len > keep {
            self.unmap_locked(&mut s, old + keep, old_end)?;
        }
        if new_len > keep {
            let mem = self.memfile.alloc(new_len - keep)?;
            let ext = Vma::anon(dest + keep, dest + new_len, v.prot, v.shared, mem, VmaName::Anon);
            self.insert_locked(&mut s, ext)?;
        }
        Ok(dest)
    }

    /// Walk the pieces of `[addr, addr+len)` as memory-file ranges,
    /// requiring `need` of each VMA; EFAULT on any hole.
    fn for_each_piece(
        &self,
        addr: u64,
        len: usize,
        need: fn(&Vma) -> bool,
        mut f: impl FnMut(u64, usize, usize) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let s = self.lock();
        let mut at = addr;
        while at < end {
            let (_, v) = s.vmas.range(..=at).next_back().ok_or(Errno::EFAULT)?;
            if v.end <= at || !need(v) || v.past_eof {
                return Err(Errno::EFAULT);
            }
            let n = (v.end.min(end) - at) as usize;
            f(v.file_offset_at(at), (at - addr) as usize, n)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Copy guest memory at `addr` into `dst` (EFAULT if any byte is not
    /// readable).
    pub fn copy_in(&self, addr: u64, dst: &mut [u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, dst.len(), |v| v.prot.read, |off, at, n| mf.read(off, &mut dst[at..at + n]))
    }

    /// Copy `src` to guest memory at `addr` (EFAULT if any byte is not
    /// writable).
    pub fn copy_out(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, src.len(), |v| v.prot.write && !v.cow, |off, at, n| mf.write(off, &src[at..at + n]))
    }

    /// Write regardless of protection (the loader filling read-only
    /// segments, ptrace-like access by the Sentry itself).
    pub fn force_write(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, src.len(), |v| !v.cow, |off, at, n| mf.write(off, &src[at..at + n]))
    }

    /// Read regardless of protection (/proc/[pid]/cmdline and the like).
    pub fn force_read(&self, addr: u64, dst: &mut [u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, dst.len(), |_| true, |off, at, n| mf.read(off, &mut dst[at..at + n]))
    }

    /// Zero `[addr, addr+len)` regardless of protection.
    pub fn force_zero(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, len as usize, |v| !v.cow, |off, _, n| mf.zero(off, n as u64))
    }

    /// Read a NUL-terminated string of at most `max` bytes (without the
    /// NUL); ENAMETOOLONG when no NUL comes within `max`.
    pub fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            // Stop at page ends so an unmapped page after the string is fine.
            let chunk = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(max - out.len());
            let mut found = None;
            let mf = &self.memfile;
            let start_len = out.len();
            self.for_each_piece(
                at,
                chunk,
                |v| v.prot.read,
                |off, _, n| {
                    if found.is_some() {
                        return Ok(());
                    }
                    match mf.find_nul(off, n)? {
                        Some(i) => {
                            let mut b = vec![0u8; i];
                            mf.read(off, &mut b)?;
                            out.extend_from_slice(&b);
                            found = Some(i);
                        }
                        None => {
                            let mut b = vec![0u8; n];
                            mf.read(off, &mut b)?;
                            out.extend_from_slice(&b);
                        }
                    }
                    Ok(())
                },
            )?;
            if found.is_some() {
                return Ok(out);
            }
            at = at.checked_add((out.len() - start_len) as u64).ok_or(Errno::EFAULT)?;
        }
        Err(Errno::ENAMETOOLONG)
    }

    /// Read a `T` from guest memory.
    pub fn read_obj<T: abi::Pod>(&self, addr: u64) -> Result<T, Errno> {
        let mut b = [0u8; 512];
        let n = core::mem::size_of::<T>();
        if n <= b.len() {
            self.copy_in(addr, &mut b[..n])?;
            T::from_bytes(&b[..n]).ok_or(Errno::EFAULT)
        } else {
            let mut v = vec![0u8; n];
            self.copy_in(addr, &mut v)?;
            T::from_bytes(&v).ok_or(Errno::EFAULT)
        }
    }

    /// Write a `T` to guest memory.
    pub fn write_obj<T: abi::Pod>(&self, addr: u64, v: &T) -> Result<(), Errno> {
        self.copy_out(addr, v.as_bytes())
    }

    /// Is `[addr, addr+len)` entirely mapped?
    pub fn is_mapped(&self, addr: u64, len: u64) -> bool {
        self.for_each_piece(addr, len as usize, |_| true, |_, _, _| Ok(())).is_ok()
    }

    /// A copy of this address space for fork: shared mappings stay
    /// shared, private ones are copied (only the pages ever touched).
    pub fn fork(&self, space: Arc<dyn AddressSpace>) -> Result<Arc<MemoryManager>, Errno> {
        let s = self.lock();
        let child = MemoryManager::new(space, self.memfile.clone(), self.top);
        {
            let mut cs = child.lock();
            cs.brk_start = s.brk_start;
            cs.brk = s.brk;
            cs.arg_range = s.arg_range;
            cs.env_range = s.env_range;
            for v in s.vmas.values() {
                let mut n = v.clone();
                if !v.shared && !v.cow {
                    let len = v.end - v.start;
                    let mem = self.memfile.alloc(len)?;
                    self.memfile.copy_sparse(v.file_offset_at(v.start), mem.off, len)?;
                    n.mem = mem;
                    n.mem_off = 0;
                }
                child.insert_locked(&mut cs, n)?;
            }
        }
        Ok(child)
    }

    /// The memory-file offset behind `addr`, and whether its mapping is
    /// shared; EFAULT when it is not mapped readable (or, with `write`,
    /// writable).
    pub fn translate(&self, addr: u64, write: bool) -> Result<(u64, bool), Errno> {
        let s = self.lock();
        let (_, v) = s.vmas.range(..=addr).next_back().ok_or(Errno::EFAULT)?;
        if v.end <= addr || v.past_eof || !v.prot.read || (write && (!v.prot.write || v.cow)) {
            return Err(Errno::EFAULT);
        }
        Ok((v.file_offset_at(addr), v.shared))
    }

    /// The VMA containing `addr`.
    pub fn vma_at(&self, addr: u64) -> Option<Vma> {
        let s = self.lock();
        s.vmas.range(..=addr).next_back().map(|(_, v)| v).filter(|v| v.end > addr).cloned()
    }
}
