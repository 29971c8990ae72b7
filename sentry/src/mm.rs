//! The memory manager: a guest address space as a set of VMAs, each backed
//! by a range of the memory file, kept in step with the platform's
//! `AddressSpace`.

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
            }),
            forked_from: std::sync::OnceLock::new(),
            as_limit: std::sync::atomic::AtomicU64::new(u64::MAX),
        })
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
        let gone = self.take_range(s, start, end);
        if gone.is_empty() {
            return Ok(());
        }
        self.space.unmap(start, end - start).map_err(platform_err)?;
        let pmas = Self::take_pmas(s, start, end);
        self.release_pmas(pmas);
        Ok(())
    }

    /// Bring the platform's view of `[start, end)` in line with the state:
    /// `remap` maps the memory again (backing changed), otherwise only the
    /// protection is changed. Private pages shared copy-on-write are
    /// mapped without write permission.
    fn sync_platform(&self, s: &MmState, start: u64, end: u64, remap: bool) -> Result<(), Errno> {
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

    fn map_inner(
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
        let start = if fixed {
            if !addr.is_multiple_of(PAGE_SIZE) {
                return Err(Errno::EINVAL);
            }
            let end = self.check_range(addr, len)?;
            self.check_as(&s, len, Some((addr, end)))?;
            self.unmap_locked(&mut s, addr, end)?;
            addr
        } else {
            self.check_as(&s, len, None)?;
            let hint = page_down(addr);
            match hint.checked_add(len) {
                Some(end) if hint >= MIN_MMAP_ADDR && end <= self.top && Self::is_free(&s, hint, end) => hint,
                _ => self.find_gap(&mut s, len)?,
            }
        };
        let end = start + len;
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
        };
        let mut cow = false;
        let off = match backing {
            Backing::Fresh => Some(self.memfile.alloc_ref(len)?),
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
        self.sync_platform(&s, start, end, true)?;
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
    fn check_covered(s: &MmState, addr: u64, end: u64) -> Result<(), Errno> {
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
            let Some(v) = s.vmas.get(&start).cloned() else { continue };
            let len = v.end - v.start;
            let Some(src) = v.file_offset_at(v.start) else { continue };
            self.memfile.incref(src, len);
            let n = Vma { mem: None, mem_off: 0, cached: false, ..v };
            s.vmas.insert(start, n);
            s.pmas.insert(start, Pma { end: start + len, off: src, cow: true });
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
    fn new_locked(
        &self,
        s: &mut MmState,
        start: u64,
        end: u64,
        prot: Prot,
        shared: bool,
        name: VmaName,
    ) -> Result<(), Errno> {
        let mut n =
            Vma { start, end, prot, shared, mem: None, mem_off: 0, name, past_eof: false, cached: false, file: None };
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
        if old_len > keep {
            self.unmap_locked(&mut s, old + keep, old_end)?;
        }
        if new_len > keep {
            self.new_locked(&mut s, dest + keep, dest + new_len, v.prot, v.shared, VmaName::Anon)?;
        }
        Ok(dest)
    }

    /// Give the private pages of `[start, end)` to this address space
    /// alone, so that they can be written: a page still shared with
    /// another address space is copied, one that is not any more is kept.
    fn unshare_locked(&self, s: &mut MmState, start: u64, end: u64) -> Result<(), Errno> {
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
        if access == Access::Exec {
            return FaultOutcome::Signal;
        }
        let mut s = self.lock();
        let Some(v) = s.vmas.range(..=addr).next_back().map(|(_, v)| v).filter(|v| v.end > addr) else {
            return FaultOutcome::Signal;
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
            // first; the page is mapped as the VMA allows.
            return if access == Access::Read || vw { FaultOutcome::Retry } else { FaultOutcome::Signal };
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

    /// Walk the pieces of `[addr, addr+len)` as memory-file ranges,
    /// requiring `need` of each VMA; EFAULT on any hole. `write` first
    /// gives the range's private pages to this address space alone.
    fn for_each_piece(
        &self,
        addr: u64,
        len: usize,
        need: fn(&Vma) -> bool,
        write: bool,
        mut f: impl FnMut(u64, usize, usize) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mut s = self.lock();
        let mut at = addr;
        while at < end {
            let (_, v) = s.vmas.range(..=at).next_back().ok_or(Errno::EFAULT)?;
            if v.end <= at || !need(v) || v.past_eof {
                return Err(Errno::EFAULT);
            }
            let vend = v.end.min(end);
            if let Some(off) = v.file_offset_at(at) {
                let n = (vend - at) as usize;
                f(off, (at - addr) as usize, n)?;
                at += n as u64;
                continue;
            }
            if write {
                self.unshare_locked(&mut s, at, vend)?;
            }
            while at < vend {
                let (&ps, p) = s.pmas.range(..=at).next_back().ok_or(Errno::EFAULT)?;
                if p.end <= at {
                    return Err(Errno::EFAULT);
                }
                let n = (p.end.min(vend) - at) as usize;
                f(p.off + (at - ps), (at - addr) as usize, n)?;
                at += n as u64;
            }
        }
        Ok(())
    }

    /// Copy guest memory at `addr` into `dst` (EFAULT if any byte is not
    /// readable).
    pub fn copy_in(&self, addr: u64, dst: &mut [u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, dst.len(), |v| v.prot.read, false, |off, at, n| mf.read(off, &mut dst[at..at + n]))
    }

    /// Copy `src` to guest memory at `addr` (EFAULT if any byte is not
    /// writable).
    pub fn copy_out(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(
            addr,
            src.len(),
            |v| v.prot.write && !v.cached,
            true,
            |off, at, n| mf.write(off, &src[at..at + n]),
        )
    }

    /// Write regardless of protection (the loader filling read-only
    /// segments, ptrace-like access by the Sentry itself).
    pub fn force_write(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, src.len(), |v| !v.cached, true, |off, at, n| mf.write(off, &src[at..at + n]))
    }

    /// Read regardless of protection (/proc/[pid]/cmdline and the like).
    pub fn force_read(&self, addr: u64, dst: &mut [u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, dst.len(), |_| true, false, |off, at, n| mf.read(off, &mut dst[at..at + n]))
    }

    /// Zero `[addr, addr+len)` regardless of protection.
    pub fn force_zero(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, len as usize, |v| !v.cached, true, |off, _, n| mf.zero(off, n as u64))
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
                false,
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
        self.for_each_piece(addr, len as usize, |_| true, false, |_, _, _| Ok(())).is_ok()
    }

    /// A copy of this address space for fork: shared mappings stay
    /// shared; private pages are shared copy-on-write (nothing is copied
    /// now; the first write on either side copies the page).
    pub fn fork(self: &Arc<Self>, space: Arc<dyn AddressSpace>) -> Result<Arc<MemoryManager>, Errno> {
        let mut s = self.lock();
        let child = MemoryManager::new(space, self.memfile.clone(), self.top);
        child.set_as_limit(self.as_limit.load(std::sync::atomic::Ordering::Acquire));
        {
            let mut cs = child.lock();
            cs.brk_start = s.brk_start;
            cs.brk = s.brk;
            cs.arg_range = s.arg_range;
            cs.env_range = s.env_range;
            cs.free_cache = s.free_cache;
            cs.cached_hole = s.cached_hole;
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
            let st = &mut *s;
            let mut shared = Vec::new();
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
                    let off = self.memfile.alloc_ref(len)?;
                    if let Err(e) = self.memfile.copy_by_read(p.off, off, len) {
                        self.memfile.decref(off, len);
                        return Err(e);
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
            cs.vmas = st.vmas.clone();
            // The parent gives up write access to what it now shares
            // before the child exists: its writes would land in pages the
            // child sees.
            for (a, b) in shared {
                for (vs, ve) in overlapping(&s.vmas, a, b, |v| v.end) {
                    let Some(v) = s.vmas.get(&vs) else { continue };
                    if v.private() && v.prot.write && !v.past_eof {
                        let (x, y) = (vs.max(a), ve.min(b));
                        self.space.protect(x, y - x, v.prot_without_write()).map_err(platform_err)?;
                    }
                }
            }
            child.sync_platform(&cs, MIN_MMAP_ADDR, self.top, true)?;
        }
        drop(s);
        // Set only now: a child dropped on an error above must not call
        // back into this (then locked) address space.
        let _ = child.forked_from.set(Arc::downgrade(self));
        Ok(child)
    }

    /// Give write access back to copy-on-write pages nobody else refers
    /// to any more (a child that shared them exited or exec'd), which
    /// saves a fault per run on the parent's next writes. Only an
    /// optimization: skipped when the address space is busy.
    fn reclaim_sole(&self) {
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
        for &(a, b) in &sole {
            if self.sync_platform(&s, a, b, false).is_err() {
                // The pages stay mapped read-only; a write fault finds
                // them non-COW and retries, then signals. Make them COW
                // again so that the fault gives write access back.
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
