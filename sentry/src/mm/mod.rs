//! The memory manager: a guest address space as a set of VMAs, each backed
//! by a range of the memory file, kept in step with the platform's
//! `AddressSpace`.
//!
//! This file: the types, VMA and PMA bookkeeping, address-space limits and
//! the platform sync; `map` (mmap, munmap, mprotect, brk, mremap), `cow`
//! (faults, fork, copy-on-write), `io` (copy_in/copy_out and friends).

mod advice;
mod cow;
pub use advice::Advice;
mod io;
mod lazy;
mod map;
mod patch;

use crate::memfile::{MemRange, MemoryFile};
use crate::sharedfile::FileBacking;
use abi::{page_down, page_up, Errno, PAGE_SIZE};
use platform::{Access, AddressSpace, Prot};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

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

/// One mapping: `[start, end)`, backed by `mem` from `mem_off` on when it
/// is shared or file-cached, and by its pages in `MmState::pmas` when it is
/// private memory.
#[derive(Clone, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    pub shared: bool,
    /// None for private memory (its pages may be shared copy-on-write with
    /// other address spaces, so they are tracked page by page).
    pub mem: Option<Arc<MemRange>>,
    pub mem_off: u64,
    pub name: VmaName,
    /// Pages of a file mapping past the end of the file: not mapped in the
    /// platform, so touching them faults, and the fault is SIGBUS.
    pub past_eof: bool,
    /// A private mapping backed by the shared file cache: never written
    /// in place (it is copied first when made writable), never punched.
    pub cached: bool,
    /// A MAP_SHARED file mapping: the file's shared pages (`mem`).
    pub file: Option<FileBacking>,
    /// What madvise and mlock set.
    pub flags: VmaFlags,
    /// A private file mapping filled from the file cache: those pages (at
    /// `start`), so MADV_DONTNEED can give the file's bytes back.
    pub origin: Option<(Arc<MemRange>, u64)>,
}

/// Per-mapping settings of madvise(2) and mlock(2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmaFlags {
    /// MADV_DONTFORK: a forked child does not get this range.
    pub dontfork: bool,
    /// MADV_WIPEONFORK: a forked child gets zeros here.
    pub wipeonfork: bool,
    /// mlock: counted in VmLck (pages are never swapped here anyway).
    pub locked: bool,
    /// A stack (MAP_GROWSDOWN): a fault just below it extends it.
    pub growsdown: bool,
}

impl Vma {
    fn private(&self) -> bool {
        self.mem.is_none()
    }

    /// The memory-file offset behind `addr` of a shared or cached mapping.
    fn file_offset_at(&self, addr: u64) -> Option<u64> {
        self.mem.as_ref().map(|m| m.off + self.mem_off + (addr - self.start))
    }

    /// The part of this VMA from `addr` on (addr inside the VMA).
    fn tail_from(&self, addr: u64) -> Vma {
        let mut v = self.clone();
        let d = addr - self.start;
        v.start = addr;
        v.mem_off += d;
        if let Some((_, o)) = &mut v.origin {
            *o += d;
        }
        if let VmaName::File { offset, .. } = &mut v.name {
            *offset += d;
        }
        v
    }

    fn prot_without_write(&self) -> Prot {
        Prot { write: false, ..self.prot }
    }
}

/// Private pages: `[start, end)` (the map key is `start`) lies at `off` in
/// the memory file, holding one reference on those pages.
#[derive(Clone, Copy, Debug)]
struct Pma {
    end: u64,
    off: u64,
    /// Maybe shared with another address space: mapped without write
    /// permission, and a write first takes a page of its own (or finds
    /// the count down to one and keeps the page).
    cow: bool,
}

/// How a new mapping is backed.
enum Backing {
    /// Fresh zeroed private memory.
    Fresh,
    /// The same, mapped into the host on first touch (`lazy.rs`).
    FreshLazy,
    /// Private pages already filled by the caller, who writes them only
    /// before the guest runs on them.
    Private(Arc<MemRange>, u64),
    /// Private pages that start out as the file cache's: shared
    /// copy-on-write with the cache (which keeps its own reference).
    CachedCow(Arc<MemRange>, u64),
    Shared(Arc<MemRange>, u64),
    /// A file's shared pages.
    SharedFile(Arc<MemRange>, u64, FileBacking),
    Cached(Arc<MemRange>, u64),
}

/// A write fault breaks copy-on-write for an aligned chunk around the
/// faulting page (within its mapping) of at least this size: a fault costs
/// tens of microseconds on these platforms (the trap, then a mapping change
/// in the stub), copying a few pages about one.
const COW_CHUNK_MIN: u64 = 4 * PAGE_SIZE;
/// Faults walking forward through memory double the chunk up to this,
/// as readahead does: a child writing its whole heap takes a few dozen
/// faults, not thousands.
const COW_CHUNK_MAX: u64 = 256 * PAGE_SIZE;
/// fork copies private runs up to this size at once instead of sharing
/// them.
const EAGER_COPY_MAX: u64 = 64 * PAGE_SIZE;
/// ... and so much of the top of the main stack.
const STACK_EAGER: u64 = 16 * PAGE_SIZE;
/// A forked address space that goes gives its parent write access back
/// to runs up to this size at once.
const RECLAIM_MAX: u64 = 256 * PAGE_SIZE;

/// What a fault turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// A write to a copy-on-write page: the page is now writable.
    Fixed,
    /// The access is allowed and the page mapped (another thread got there
    /// first): retry it.
    Retry,
    /// A real fault: the guest gets a signal.
    Signal,
}

struct MmState {
    vmas: BTreeMap<u64, Vma>,
    pmas: BTreeMap<u64, Pma>,
    brk_start: u64,
    brk: u64,
    /// Where argv and envp strings live (for /proc/[pid]/cmdline, environ).
    arg_range: (u64, u64),
    env_range: (u64, u64),
    /// find_gap resumes its top-down search here: no gap between here and
    /// `mmap_base` is larger than `cached_hole` (Linux's old
    /// free_area_cache), so mapping many areas in a row stays linear.
    free_cache: u64,
    cached_hole: u64,
    /// End of the last chunk a write fault copied, and that chunk's size.
    last_cow: (u64, u64),
    /// mlockall(MCL_FUTURE): new mappings start locked.
    lock_future: bool,
    /// Ranges (start → end) of private memory not in the host mapping
    /// yet (`lazy.rs`).
    lazy: BTreeMap<u64, u64>,
    /// Syscall sites the platform had patched (`patch.rs`), by address.
    patched: BTreeMap<u64, patch::PatchedSite>,
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
    /// The address space this one was forked from: when this one goes,
    /// the pages the two shared may be the parent's alone again.
    forked_from: std::sync::OnceLock<Weak<MemoryManager>>,
    /// RLIMIT_AS of the process using this address space (u64::MAX:
    /// none): mappings that would take the total size past it fail with
    /// ENOMEM. Kept here so the mapping paths need no process lock.
    as_limit: std::sync::atomic::AtomicU64,
    /// The membarrier(2) registrations of this address space (the
    /// MEMBARRIER_CMD_REGISTER_* bits): inherited by fork, gone on exec,
    /// as Linux keeps them in the mm.
    pub membarrier: std::sync::atomic::AtomicU32,
    /// Made for a process that execs before it ever runs (`run_init`):
    /// its first exec builds on this space instead of a new stub.
    unused: std::sync::atomic::AtomicBool,
}

fn platform_err(e: platform::PlatformError) -> Errno {
    tracing::warn!("address space change failed: {e}");
    Errno::ENOMEM
}

/// The entries of `m` (keyed by start, with `end_of` their end) that
/// overlap `[start, end)`, as (start, end) pairs in address order.
fn overlapping<T>(m: &BTreeMap<u64, T>, start: u64, end: u64, end_of: impl Fn(&T) -> u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> =
        m.range(..end).rev().map(|(&s, t)| (s, end_of(t))).take_while(|&(_, e)| e > start).collect();
    out.reverse();
    out
}

impl MemoryManager {
    pub fn new(space: Arc<dyn AddressSpace>, memfile: Arc<MemoryFile>, top: u64) -> Arc<MemoryManager> {
        let top = page_down(top.min(0x7fff_ffff_f000));
        let mmap_base = page_down(top - STACK_SIZE - (1 << 30));
        Arc::new(MemoryManager {
            space,
            memfile,
            top,
            mmap_base,
            state: Mutex::new(MmState {
                vmas: BTreeMap::new(),
                pmas: BTreeMap::new(),
                brk_start: 0,
                brk: 0,
                arg_range: (0, 0),
                env_range: (0, 0),
                free_cache: mmap_base,
                cached_hole: 0,
                last_cow: (0, 0),
                lock_future: false,
                lazy: BTreeMap::new(),
                patched: BTreeMap::new(),
            }),
            forked_from: std::sync::OnceLock::new(),
            as_limit: std::sync::atomic::AtomicU64::new(u64::MAX),
            membarrier: std::sync::atomic::AtomicU32::new(0),
            unused: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Mark this (new, empty) address space as one no guest code will run
    /// in before the process's first exec, which may then take its
    /// platform space over.
    pub fn mark_unused(&self) {
        self.unused.store(true, std::sync::atomic::Ordering::Release);
    }

    /// The platform space of a `mark_unused` address space, once: for the
    /// exec of its one user (`holders`: the references a sole user has,
    /// its task's and its process's).
    pub fn take_unused_space(self: &Arc<Self>, holders: usize) -> Option<Arc<dyn AddressSpace>> {
        if Arc::strong_count(self) > holders || !self.unused.swap(false, std::sync::atomic::Ordering::AcqRel) {
            return None;
        }
        self.lock().vmas.is_empty().then(|| self.space.clone())
    }

    /// Set RLIMIT_AS (its soft value) for this address space.
    pub fn set_as_limit(&self, bytes: u64) {
        self.as_limit.store(bytes, std::sync::atomic::Ordering::Release);
    }

    /// Linux's may_expand_vm: ENOMEM when `grow` more bytes, less the
    /// `[replaced.0, replaced.1)` a MAP_FIXED mapping takes over, would
    /// take the address space past RLIMIT_AS.
    fn check_as(&self, s: &MmState, grow: u64, replaced: Option<(u64, u64)>) -> Result<(), Errno> {
        let limit = self.as_limit.load(std::sync::atomic::Ordering::Acquire);
        if limit == u64::MAX {
            return Ok(());
        }
        let total: u64 = s.vmas.values().map(|v| self.vm_size(s, v)).sum();
        let gone: u64 = replaced
            .map_or(0, |(a, b)| overlapping(&s.vmas, a, b, |v| v.end).iter().map(|&(x, y)| y.min(b) - x.max(a)).sum());
        if total.saturating_sub(gone).saturating_add(grow) > limit {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// What `v` counts for RLIMIT_AS. The main stack is mapped at its
    /// full 8 MiB up front, where Linux maps 128 KiB and grows it on
    /// faults: it counts what has been touched, at least those 128 KiB,
    /// so a tight RLIMIT_AS fits the same programs as on Linux.
    fn vm_size(&self, s: &MmState, v: &Vma) -> u64 {
        const STACK_INITIAL: u64 = 128 << 10;
        let len = v.end - v.start;
        if v.name != VmaName::Stack || !v.private() {
            return len;
        }
        let touched: u64 = overlapping(&s.pmas, v.start, v.end, |p| p.end)
            .into_iter()
            .filter_map(|(ps, pe)| {
                let p = s.pmas.get(&ps)?;
                let (a, b) = (ps.max(v.start), pe.min(v.end));
                Some(self.memfile.resident_in(p.off + (a - ps), b - a))
            })
            .sum();
        touched.max(STACK_INITIAL).min(len)
    }

    /// Bytes of this address space's memory the host holds pages for
    /// (private pages, shared ones included, as RSS counts them). The
    /// ranges are collected under the lock and measured after it.
    pub fn resident_bytes(&self) -> u64 {
        let ranges: Vec<(u64, u64)> = {
            let s = self.lock();
            let private = s.pmas.iter().map(|(&start, p)| (p.off, p.end - start));
            let shared = s.vmas.values().filter_map(|v| Some((v.file_offset_at(v.start)?, v.end - v.start)));
            private.chain(shared).collect()
        };
        ranges.into_iter().map(|(off, len)| self.memfile.resident_in(off, len)).sum()
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
        self.state.lock().unwrap_or_else(|_| crate::locking::poisoned())
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
    fn find_gap(&self, s: &mut MmState, len: u64) -> Result<u64, Errno> {
        if len <= s.cached_hole || s.free_cache > self.mmap_base {
            s.free_cache = self.mmap_base;
            s.cached_hole = 0;
        }
        match Self::gap_below(s, s.free_cache, len) {
            Ok(a) => Ok(a),
            Err(_) if s.free_cache != self.mmap_base => {
                s.free_cache = self.mmap_base;
                s.cached_hole = 0;
                Self::gap_below(s, self.mmap_base, len)
            }
            Err(e) => Err(e),
        }
    }

    /// The highest free `len` bytes below `from`, remembered in the cache.
    fn gap_below(s: &mut MmState, from: u64, len: u64) -> Result<u64, Errno> {
        let mut end = from;
        let mut biggest = 0;
        let mut found = None;
        for v in s.vmas.range(..from).rev().map(|(_, v)| v) {
            if v.end <= end.saturating_sub(len) && end >= len {
                found = Some(end - len);
                break;
            }
            biggest = biggest.max(end.saturating_sub(v.end));
            end = end.min(v.start);
            if end < MIN_MMAP_ADDR.saturating_add(len) {
                return Err(Errno::ENOMEM);
            }
        }
        let at = match found {
            Some(a) => a,
            None if end >= MIN_MMAP_ADDR.saturating_add(len) => end - len,
            None => return Err(Errno::ENOMEM),
        };
        s.free_cache = at;
        s.cached_hole = s.cached_hole.max(biggest);
        Ok(at)
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

    /// Cut the private page runs so that `addr` is a boundary.
    fn split_pma_at(s: &mut MmState, addr: u64) {
        let Some((&start, &p)) = s.pmas.range(..addr).next_back() else {
            return;
        };
        if p.end > addr {
            s.pmas.insert(start, Pma { end: addr, ..p });
            s.pmas.insert(addr, Pma { end: p.end, off: p.off + (addr - start), cow: p.cow });
        }
    }

    /// Join the runs meeting at `addr` when they continue each other in
    /// the memory file, so runs do not fragment without end.
    fn merge_pma_at(s: &mut MmState, addr: u64) {
        let Some(&r) = s.pmas.get(&addr) else {
            return;
        };
        if let Some((&ls, &l)) = s.pmas.range(..addr).next_back() {
            if l.end == addr && l.cow == r.cow && l.off + (addr - ls) == r.off {
                s.pmas.remove(&addr);
                s.pmas.insert(ls, Pma { end: r.end, ..l });
            }
        }
    }

    /// Take out the private page runs in `[start, end)`.
    fn take_pmas(s: &mut MmState, start: u64, end: u64) -> Vec<(u64, Pma)> {
        Self::split_pma_at(s, start);
        Self::split_pma_at(s, end);
        let keys: Vec<u64> = s.pmas.range(start..end).map(|(&k, _)| k).collect();
        keys.into_iter().filter_map(|k| s.pmas.remove(&k).map(|p| (k, p))).collect()
    }

    /// Take out the VMAs in `[start, end)` (after splitting at both ends).
    fn take_range(&self, s: &mut MmState, start: u64, end: u64) -> Vec<Vma> {
        Self::split_at(s, start);
        Self::split_at(s, end);
        let keys: Vec<u64> = s.vmas.range(start..end).map(|(&k, _)| k).collect();
        let gone: Vec<Vma> = keys.into_iter().filter_map(|k| s.vmas.remove(&k)).collect();
        Self::forget_lazy(s, start, end);
        if !gone.is_empty() && end > s.free_cache && start < self.mmap_base {
            // The hole left here may be larger than the cached one: resume
            // gap searches above it (its end is the next mapping's start).
            let above = s.vmas.range(end..).next().map_or(self.mmap_base, |(&k, _)| k);
            s.free_cache = above.min(self.mmap_base);
        }
        gone
    }

    /// Drop the references of private page runs.
    fn release_pmas(&self, pmas: Vec<(u64, Pma)>) {
        for (start, p) in pmas {
            self.memfile.decref(p.off, p.end - start);
        }
    }

    /// Drop `[start, end)` from the state and the address space; private
    /// pages go back to the host when nobody else refers to them.
    fn unmap_locked(&self, s: &mut MmState, start: u64, end: u64) -> Result<(), Errno> {
        let host = Self::host_may_map(s, start, end);
        let gone = self.take_range(s, start, end);
        if gone.is_empty() {
            return Ok(());
        }
        if host {
            self.claim_code_window_locked(s, start, end)?;
            self.space.unmap(start, end - start).map_err(platform_err)?;
        }
        let pmas = Self::take_pmas(s, start, end);
        self.release_pmas(pmas);
        Ok(())
    }

    /// Bring the platform's view of `[start, end)` in line with the state:
    /// `remap` maps the memory again (backing changed), otherwise only the
    /// protection is changed. Private pages shared copy-on-write are
    /// mapped without write permission.
    /// Lazy ranges are left out: their first fault maps them as the state
    /// then says.
    fn sync_platform(&self, s: &MmState, start: u64, end: u64, remap: bool) -> Result<(), Errno> {
        if s.lazy.is_empty() {
            return self.sync_platform_eager(s, start, end, remap);
        }
        for (a, b) in Self::eager_parts(s, start, end) {
            self.sync_platform_eager(s, a, b, remap)?;
        }
        Ok(())
    }

    fn sync_platform_eager(&self, s: &MmState, start: u64, end: u64, remap: bool) -> Result<(), Errno> {
        for (vs, ve) in overlapping(&s.vmas, start, end, |v| v.end) {
            let Some(v) = s.vmas.get(&vs) else { continue };
            if v.past_eof {
                continue;
            }
            let (a, b) = (vs.max(start), ve.min(end));
            match v.file_offset_at(a) {
                Some(off) if remap => self.space.map(a, b - a, v.prot, off).map_err(platform_err)?,
                Some(_) => self.space.protect(a, b - a, v.prot).map_err(platform_err)?,
                None => {
                    for (ps, pe) in overlapping(&s.pmas, a, b, |p| p.end) {
                        let Some(p) = s.pmas.get(&ps) else { continue };
                        let (x, y) = (ps.max(a), pe.min(b));
                        let prot = if p.cow { v.prot_without_write() } else { v.prot };
                        if remap {
                            self.space.map(x, y - x, prot, p.off + (x - ps)).map_err(platform_err)?;
                        } else {
                            self.space.protect(x, y - x, prot).map_err(platform_err)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        let s = match self.state.get_mut() {
            Ok(s) => s,
            Err(e) => e.into_inner(),
        };
        for (&start, p) in &s.pmas {
            self.memfile.decref(p.off, p.end - start);
        }
        s.pmas.clear();
        if let Some(parent) = self.forked_from.get().and_then(Weak::upgrade) {
            parent.reclaim_sole();
        }
    }
}
