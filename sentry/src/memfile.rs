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
    /// Free ranges: start -> length, coalesced.
    free: Mutex<BTreeMap<u64, u64>>,
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
        Ok(Arc::new(MemoryFile { fd, base: base as *mut u8, size: MEMFILE_SIZE, free: Mutex::new(free) }))
    }

    /// The memfd, for platforms to map.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Allocate `len` bytes (page-aligned) of zeroed memory-file space.
    pub fn alloc(self: &Arc<Self>, len: u64) -> Result<Arc<MemRange>, Errno> {
        let len = abi::page_up(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let mut free = self.free.lock().map_err(|_| Errno::ENOMEM)?;
        let (start, flen) = free.iter().find(|(_, &l)| l >= len).map(|(&s, &l)| (s, l)).ok_or(Errno::ENOMEM)?;
        free.remove(&start);
        if flen > len {
            free.insert(start + len, flen - len);
        }
        Ok(Arc::new(MemRange { file: self.clone(), off: start, len }))
    }

    fn release(&self, off: u64, len: u64) {
        self.punch(off, len);
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        let mut start = off;
        let mut l = len;
        if let Some((&ps, &pl)) = free.range(..off).next_back() {
            if ps + pl == off {
                free.remove(&ps);
                start = ps;
                l += pl;
            }
        }
        if let Some(&nl) = free.get(&(off + len)) {
            free.remove(&(off + len));
            l += nl;
        }
        free.insert(start, l);
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
        self.file.release(self.off, self.len);
    }
}

impl std::fmt::Debug for MemRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemRange({:#x}+{:#x})", self.off, self.len)
    }
}
