//! The sandbox's memory file: one memfd holding every page of guest
//! memory, mapped once into the Sentry so guest memory is read and written
//! with plain copies, and mapped piecewise into guest address spaces by the
//! platform.

use abi::{Errno, PAGE_SIZE};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

/// Virtual size of the memory file. It is sparse: only touched pages use
/// memory, and freed ranges are punched out.
const MEMFILE_SIZE: u64 = 1 << 38;

#[derive(Debug, thiserror::Error)]
pub enum MemFileError {
    #[error("creating the memory file failed: {0}")]
    Create(std::io::Error),
}

/// The memory file and its allocator.
pub struct MemoryFile {
    fd: OwnedFd,
    base: *mut u8,
    size: u64,
    pages: Mutex<Pages>,
}

/// The allocator's books.
struct Pages {
    /// Free ranges: start -> length, coalesced.
    free: BTreeMap<u64, u64>,
    /// Reference counts of allocated pages as runs: start -> (end, count).
    /// A range goes back to `free` when its count drops to zero; neighbouring
    /// runs with equal counts are merged so that lookups stay cheap.
    refs: BTreeMap<u64, (u64, u32)>,
}

impl Pages {
    /// Cut the run containing `at` so that `at` is a run boundary.
    fn split(&mut self, at: u64) {
        let Some((&s, &(e, c))) = self.refs.range(..at).next_back() else {
            return;
        };
        if e > at {
            self.refs.insert(s, (at, c));
            self.refs.insert(at, (e, c));
        }
    }

    /// Merge the runs meeting at `at` if their counts are equal.
    fn merge(&mut self, at: u64) {
        let Some(&(re, rc)) = self.refs.get(&at) else {
            return;
        };
        if let Some((&ls, &(le, lc))) = self.refs.range(..at).next_back() {
            if le == at && lc == rc {
                self.refs.remove(&at);
                self.refs.insert(ls, (re, lc));
            }
        }
    }

    fn take_free(&mut self, len: u64) -> Result<u64, Errno> {
        let (start, flen) = self.free.iter().find(|(_, &l)| l >= len).map(|(&s, &l)| (s, l)).ok_or(Errno::ENOMEM)?;
        self.free.remove(&start);
        if flen > len {
            self.free.insert(start + len, flen - len);
        }
        Ok(start)
    }

    fn put_free(&mut self, off: u64, len: u64) {
        let mut start = off;
        let mut l = len;
        if let Some((&ps, &pl)) = self.free.range(..off).next_back() {
            if ps + pl == off {
                self.free.remove(&ps);
                start = ps;
                l += pl;
            }
        }
        if let Some(&nl) = self.free.get(&(off + len)) {
            self.free.remove(&(off + len));
            l += nl;
        }
        self.free.insert(start, l);
    }
}

// SAFETY: `base` points to a MAP_SHARED mapping that lives as long as the
// MemoryFile; all access goes through bounds-checked copies.
unsafe impl Send for MemoryFile {}
// SAFETY: as above; concurrent copies into guest memory race only with the
// guest itself, as they do in Linux.
unsafe impl Sync for MemoryFile {}

impl MemoryFile {
    pub fn new() -> Result<Arc<MemoryFile>, MemFileError> {
        let name = c"runsc-lite-memory";
        // SAFETY: FFI call with a valid NUL-terminated name.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(MemFileError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: fd was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: FFI call on a valid fd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), MEMFILE_SIZE as i64) } != 0 {
            return Err(MemFileError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: mapping a file we own, shared, at a kernel-chosen address.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MEMFILE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(MemFileError::Create(std::io::Error::last_os_error()));
        }
        let mut free = BTreeMap::new();
        // Offset 0 is never handed out so that 0 can mean "none" in logs.
        free.insert(PAGE_SIZE, MEMFILE_SIZE - PAGE_SIZE);
        let pages = Mutex::new(Pages { free, refs: BTreeMap::new() });
        Ok(Arc::new(MemoryFile { fd, base: base as *mut u8, size: MEMFILE_SIZE, pages }))
    }

    /// The memfd, for platforms to map.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn pages(&self) -> std::sync::MutexGuard<'_, Pages> {
        match self.pages.lock() {
            Ok(g) => g,
            Err(e) => e.into_inner(),
        }
    }

    /// Allocate `len` bytes (page-aligned) of zeroed memory-file space,
    /// released when the returned range (and every reference taken on its
    /// pages with [`MemoryFile::incref`]) is gone.
    pub fn alloc(self: &Arc<Self>, len: u64) -> Result<Arc<MemRange>, Errno> {
        let (off, len) = self.alloc_ref_len(len)?;
        Ok(Arc::new(MemRange { file: self.clone(), off, len }))
    }

    /// Allocate zeroed pages owned by one reference (the caller's, to be
    /// dropped with [`MemoryFile::decref`]).
    pub fn alloc_ref(&self, len: u64) -> Result<u64, Errno> {
        Ok(self.alloc_ref_len(len)?.0)
    }

    fn alloc_ref_len(&self, len: u64) -> Result<(u64, u64), Errno> {
        let len = abi::page_up(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let mut p = self.pages();
        let off = p.take_free(len)?;
        p.refs.insert(off, (off + len, 1));
        p.merge(off);
        p.merge(off + len);
        Ok((off, len))
    }

    /// One more reference on every allocated page of `[off, off+len)`.
    pub fn incref(&self, off: u64, len: u64) {
        let end = off.saturating_add(len);
        let mut p = self.pages();
        p.split(off);
        p.split(end);
        for (_, (_, c)) in p.refs.range_mut(off..end) {
            // A count that cannot grow any more is never freed: a leak,
            // but never a page freed while still in use.
            *c = c.saturating_add(1);
        }
        p.merge(off);
        p.merge(end);
    }

    /// One reference less on every page of `[off, off+len)`; pages nobody
    /// refers to any more are punched out and freed.
    pub fn decref(&self, off: u64, len: u64) {
        let end = off.saturating_add(len);
        let mut p = self.pages();
        p.split(off);
        p.split(end);
        let mut dead = Vec::new();
        for (&s, (e, c)) in p.refs.range_mut(off..end) {
            if *c != u32::MAX {
                *c -= 1;
            }
            if *c == 0 {
                dead.push((s, *e));
            }
        }
        for &(s, e) in &dead {
            p.refs.remove(&s);
            self.punch(s, e - s);
            p.put_free(s, e - s);
        }
        p.merge(off);
        p.merge(end);
    }

    /// The run of pages around `off` sharing its reference count: `(start,
    /// end, count)`; None when `off` is not allocated.
    pub fn refcount(&self, off: u64) -> Option<(u64, u64, u32)> {
        let p = self.pages();
        let (&s, &(e, c)) = p.refs.range(..=off).next_back()?;
        (e > off).then_some((s, e, c))
    }

    /// Give the pages of `[off, off+len)` back to the host (they read as
    /// zeros afterwards).
    pub fn punch(&self, off: u64, len: u64) {
        // SAFETY: FFI call on our own fd; failure only means memory is kept.
        unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as i64,
                len as i64,
            );
        }
    }

    fn check(&self, off: u64, len: usize) -> Result<(), Errno> {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(Errno::EFAULT),
        }
    }

    /// Copy out of the memory file.
    pub fn read(&self, off: u64, dst: &mut [u8]) -> Result<(), Errno> {
        self.check(off, dst.len())?;
        // SAFETY: range checked against the mapping; the source may be
        // written concurrently by the guest, which makes the bytes read
        // unspecified but not unsafe for plain bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off as usize), dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Copy into the memory file.
    pub fn write(&self, off: u64, src: &[u8]) -> Result<(), Errno> {
        self.check(off, src.len())?;
        // SAFETY: range checked against the mapping.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(off as usize), src.len()) };
        Ok(())
    }

    /// Zero `[off, off+len)`.
    pub fn zero(&self, off: u64, len: u64) -> Result<(), Errno> {
        self.check(off, len as usize)?;
        // SAFETY: range checked against the mapping.
        unsafe { std::ptr::write_bytes(self.base.add(off as usize), 0, len as usize) };
        Ok(())
    }

    /// Copy `len` bytes within the memory file.
    pub fn copy_within(&self, from: u64, to: u64, len: u64) -> Result<(), Errno> {
        self.check(from, len as usize)?;
        self.check(to, len as usize)?;
        // SAFETY: both ranges checked; `copy` allows overlap.
        unsafe { std::ptr::copy(self.base.add(from as usize), self.base.add(to as usize), len as usize) };
        Ok(())
    }

    /// Copy `[from, from+len)` to `to`, skipping holes: pages never touched
    /// stay unallocated in the copy too.
    pub fn copy_sparse(&self, from: u64, to: u64, len: u64) -> Result<(), Errno> {
        self.check(from, len as usize)?;
        self.check(to, len as usize)?;
        let end = from + len;
        let mut pos = from;
        while pos < end {
            // SAFETY: FFI call on our own fd; SEEK_DATA does not depend on
            // the shared file offset, it only returns a position.
            let data = unsafe { libc::lseek(self.fd.as_raw_fd(), pos as i64, libc::SEEK_DATA) };
            if data < 0 || data as u64 >= end {
                break;
            }
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(self.fd.as_raw_fd(), data, libc::SEEK_HOLE) };
            let stop = if hole < 0 { end } else { (hole as u64).min(end) };
            let data = data as u64;
            self.copy_within(data, to + (data - from), stop - data)?;
            pos = stop;
        }
        Ok(())
    }

    /// The 32-bit word at `off` as an atomic (futex operations).
    pub fn atomic_u32(&self, off: u64) -> Result<&std::sync::atomic::AtomicU32, Errno> {
        if !off.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        self.check(off, 4)?;
        // SAFETY: in bounds and 4-aligned within a mapping that lives as long
        // as `self`; AtomicU32 has the layout of u32, and the guest (another
        // process) may access the word concurrently, which atomics allow.
        Ok(unsafe { &*(self.base.add(off as usize) as *const std::sync::atomic::AtomicU32) })
    }

    /// Find the first NUL in `[off, off+len)`, if any.
    pub fn find_nul(&self, off: u64, len: usize) -> Result<Option<usize>, Errno> {
        self.check(off, len)?;
        // SAFETY: range checked; read-only view of plain bytes.
        let s = unsafe { std::slice::from_raw_parts(self.base.add(off as usize), len) };
        Ok(s.iter().position(|&b| b == 0))
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in new(); nothing refers to it now.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.size as usize) };
    }
}

/// A page-aligned range of the memory file, freed when the last user goes.
pub struct MemRange {
    file: Arc<MemoryFile>,
    pub off: u64,
    pub len: u64,
}

impl MemRange {
    pub fn file(&self) -> &Arc<MemoryFile> {
        &self.file
    }
}

impl Drop for MemRange {
    fn drop(&mut self) {
        self.file.decref(self.off, self.len);
    }
}

impl std::fmt::Debug for MemRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemRange({:#x}+{:#x})", self.off, self.len)
    }
}
