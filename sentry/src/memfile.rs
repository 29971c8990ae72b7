//! The sandbox's memory file: one memfd holding every page of guest
//! memory, mapped once into the Sentry so guest memory is read and written
//! with plain copies, and mapped piecewise into guest address spaces by the
//! platform.
//!
//! Large cached files (program text, shared libraries: `filecache`) go to
//! a second file where the host allows it, a tmpfs file with huge pages
//! (`huge_cache_file`), at offsets from `platform::CACHE_FILE_BASE` on: the
//! host fills and frees it in 2 MiB folios instead of 4 KiB pages
//! (python3's 6.8 MB binary: fill 3.8 -> 1.5 ms, freeing at the sandbox's
//! end 1.6 -> 0.2 ms). Both files are mapped back to back in the Sentry,
//! so an offset means the same everywhere; the platforms map each range
//! from the file it is in (`platform::MemoryFds::locate`).

use abi::{Errno, PAGE_SIZE};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex};

/// Virtual size of the memory file. It is sparse: only touched pages use
/// memory, and freed ranges are punched out. The cache file follows it.
const MEMFILE_SIZE: u64 = platform::CACHE_FILE_BASE;
/// Virtual size of the cache file.
const CACHE_SIZE: u64 = 1 << 36;
/// A huge page: cache-file ranges start on one and take whole ones, so no
/// two files share a folio (freeing one would split it).
const HUGE: u64 = 2 << 20;

/// How long the punch thread gathers freed runs before it punches them.
/// A process's exit and an exec free their runs one by one (stack, heap,
/// copied pages, reservations): woken for each, the thread preempted the
/// Sentry thread that freed them, on its CPU, five times per fork+exec
/// of /bin/true; gathered, the runs are sorted and neighbours punched
/// with one fallocate.
const PUNCH_GATHER: std::time::Duration = std::time::Duration::from_millis(2);

#[derive(Debug, thiserror::Error)]
pub enum MemFileError {
    #[error("creating the memory file failed: {0}")]
    Create(std::io::Error),
}

/// The memory file and its allocator.
pub struct MemoryFile {
    fd: OwnedFd,
    /// The cache file, when the host gave one (see the module docs).
    cache: Option<OwnedFd>,
    base: *mut u8,
    size: u64,
    pages: Arc<Mutex<Pages>>,
    /// Freed runs waiting to be punched out (then free for reuse).
    punches: Arc<Punches>,
    /// Pipes for filling fresh ranges from host files in the host kernel.
    splice: crate::splicefill::SplicePipes,
}

/// Page runs whose last reference went, on their way back: punching them
/// out of the memfd (a fallocate each) is left to a thread of its own, so
/// an exiting process's parent does not wait for it. A run is in neither
/// `Pages::refs` nor `Pages::free` until punched: a new allocation never
/// gets a page with old contents.
struct Punches {
    state: Mutex<PunchState>,
    cv: Condvar,
}

struct PunchState {
    ranges: Vec<(u64, u64)>,
    /// The thread is punching ranges it took.
    busy: bool,
    worker: PunchWorker,
    stop: bool,
}

enum PunchWorker {
    NotStarted,
    Running(std::thread::JoinHandle<()>),
    /// No thread could be started: punch inline.
    Unavailable,
}

/// The two files' descriptors, for the punch thread.
#[derive(Clone, Copy)]
struct Files {
    main: RawFd,
    cache: Option<RawFd>,
}

impl Files {
    /// The file memory-file offset `off` is in, and the offset in it. A
    /// range never straddles the two: allocations come from one region,
    /// and a page between them is never handed out.
    fn at(&self, off: u64) -> (RawFd, u64) {
        match (platform::MemoryFds::locate(off), self.cache) {
            ((true, o), Some(c)) => (c, o),
            _ => (self.main, off),
        }
    }
}

fn punch_fd(files: Files, off: u64, len: u64) {
    let (fd, off) = files.at(off);
    // SAFETY: FFI call on the memory file's fd; failure only means memory is kept.
    unsafe {
        libc::fallocate(fd, libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, off as i64, len as i64);
    }
}

fn punch_and_free(files: Files, pages: &Mutex<Pages>, ranges: &[(u64, u64)]) {
    for &(s, len) in ranges {
        // A run the host holds no page of is all hole already: nothing to
        // punch, and nothing can map a page of it, so it is as good as
        // punched. Every exec frees such runs: the parts of the loader's
        // and ld.so's reservations that file-cache mappings were laid
        // over (libc's whole length, each time). The punch would still
        // cost a fallocate and a walk of every mapping of the memory file.
        let (fd, fs) = files.at(s);
        if has_no_data(fd, fs, len) {
            continue;
        }
        punch_fd(files, s, len);
    }
    let mut p = pages.lock().unwrap_or_else(|_| crate::locking::poisoned());
    for &(s, len) in ranges {
        p.put_free(s, len);
    }
}

/// Whether `[s, s+len)` is all hole in the memory file. SEEK_DATA, not
/// mincore: shmem counts a swapped-out page as data, where mincore would
/// call it absent and the punch that frees its swap would be skipped.
fn has_no_data(fd: RawFd, s: u64, len: u64) -> bool {
    // SAFETY: lseek on our own fd; only the offset changes, which nothing
    // else relies on (copies use pread and the mapping).
    let d = unsafe { libc::lseek(fd, s as i64, libc::SEEK_DATA) };
    if d < 0 {
        // ENXIO: no data from `s` to the end of the file.
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO);
    }
    (d as u64) >= s.saturating_add(len)
}

fn punch_worker(files: Files, pages: Arc<Mutex<Pages>>, punches: Arc<Punches>) {
    loop {
        let mut batch = {
            let mut st = punches.state.lock().unwrap_or_else(|e| e.into_inner());
            while st.ranges.is_empty() && !st.stop {
                st = punches.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            // Gather what else is freed meanwhile (`free_later` wakes the
            // thread only for the first run of a batch).
            let since = std::time::Instant::now();
            while !st.stop {
                let Some(left) = PUNCH_GATHER.checked_sub(since.elapsed()) else { break };
                if left.is_zero() {
                    break;
                }
                st = punches.cv.wait_timeout(st, left).unwrap_or_else(|e| e.into_inner()).0;
            }
            // Stopping: the memory file is going (the sandbox's end), and
            // its pages with it; punching what is left would only delay
            // the exit (a python3 start-up left ~50 runs).
            if st.stop {
                return;
            }
            st.busy = true;
            std::mem::take(&mut st.ranges)
        };
        merge_neighbours(&mut batch);
        punch_and_free(files, &pages, &batch);
        punches.state.lock().unwrap_or_else(|e| e.into_inner()).busy = false;
        punches.cv.notify_all();
    }
}

/// Sort `(off, len)` runs and join those that touch, so that one
/// fallocate punches each stretch.
fn merge_neighbours(ranges: &mut Vec<(u64, u64)>) {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(s, len) in ranges.iter() {
        match out.last_mut() {
            Some((ps, pl)) if ps.saturating_add(*pl) == s => *pl = pl.saturating_add(len),
            _ => out.push((s, len)),
        }
    }
    *ranges = out;
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

    /// First fit of `len` bytes in the memory file proper.
    fn take_free(&mut self, len: u64) -> Result<u64, Errno> {
        let (start, flen) =
            self.free.range(..MEMFILE_SIZE).find(|(_, &l)| l >= len).map(|(&s, &l)| (s, l)).ok_or(Errno::ENOMEM)?;
        self.free.remove(&start);
        if flen > len {
            self.free.insert(start + len, flen - len);
        }
        Ok(start)
    }

    /// First fit of `len` bytes (whole huge pages) in the cache file, on a
    /// huge-page boundary.
    fn take_free_cache(&mut self, len: u64) -> Result<u64, Errno> {
        let (start, flen, at) = self
            .free
            .range(MEMFILE_SIZE..)
            .find_map(|(&s, &l)| {
                let at = s.checked_next_multiple_of(HUGE)?;
                (at.checked_add(len)? <= s.checked_add(l)?).then_some((s, l, at))
            })
            .ok_or(Errno::ENOMEM)?;
        self.free.remove(&start);
        if at > start {
            self.free.insert(start, at - start);
        }
        let end = at + len;
        if start + flen > end {
            self.free.insert(end, start + flen - end);
        }
        Ok(at)
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

/// A file for [`MemoryFile::with_cache`]: an unlinked file on a tmpfs of
/// its own that takes huge pages ("huge=always"; the host's
/// `shmem_enabled` covers only memfds and SysV memory, so this works where
/// that says "never"). It is mounted detached (fsopen/fsmount, nowhere in
/// any tree) and unlimited in size (the Sentry's own accounting limits the
/// sandbox). Needs CAP_SYS_ADMIN over the Sentry's mount namespace: call
/// before dropping privileges. None where the host cannot (no huge pages
/// for tmpfs, no new mount API) or `RUNSC_LITE_HUGE_CACHE=0`: cached files
/// then stay in the memory file.
///
/// Huge pages are taken on the write path (the fill's splice) with the
/// host's light allocation flags (no direct compaction unless its THP
/// `defrag` is "always"): when none is free the host falls back to small
/// pages instead of stalling.
pub fn huge_cache_file() -> Option<OwnedFd> {
    if std::env::var_os("RUNSC_LITE_HUGE_CACHE").is_some_and(|v| v == "0") {
        return None;
    }
    const FSCONFIG_SET_STRING: libc::c_long = 1;
    const FSCONFIG_CMD_CREATE: libc::c_long = 6;
    let close = |fd: libc::c_long| {
        // SAFETY: closing a descriptor this function opened.
        unsafe { libc::close(fd as i32) };
    };
    // SAFETY: fsopen with a valid C string.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), libc::FSOPEN_CLOEXEC) };
    if fs < 0 {
        return None;
    }
    let set = |key: &std::ffi::CStr, value: &std::ffi::CStr| {
        // SAFETY: fsconfig on our fs context with valid C strings.
        unsafe { libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr(), 0) == 0 }
    };
    // SAFETY: fsconfig on our fs context, no pointers.
    let created = set(c"huge", c"always")
        && set(c"size", c"0")
        && set(c"mode", c"0700")
        && unsafe { libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, 0usize, 0usize, 0) } == 0;
    if !created {
        close(fs);
        return None;
    }
    // SAFETY: fsmount of our fs context, no pointers.
    let mnt = unsafe { libc::syscall(libc::SYS_fsmount, fs, libc::FSMOUNT_CLOEXEC, 0) };
    close(fs);
    if mnt < 0 {
        return None;
    }
    // Made with a name and unlinked at once (rather than O_TMPFILE), so
    // that /proc/<sentry>/fd says what it is: "/runsc-lite-cache (deleted)".
    let name = c"runsc-lite-cache";
    // SAFETY: openat and unlinkat on the mount's root with a valid C string.
    let fd = unsafe {
        let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC;
        let fd = libc::openat(mnt as i32, name.as_ptr(), flags, 0o600);
        libc::unlinkat(mnt as i32, name.as_ptr(), 0);
        fd
    };
    close(mnt);
    if fd < 0 {
        return None;
    }
    // SAFETY: a new descriptor owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

// SAFETY: `base` points to a MAP_SHARED mapping that lives as long as the
// MemoryFile; all access goes through bounds-checked copies.
unsafe impl Send for MemoryFile {}
// SAFETY: as above; concurrent copies into guest memory race only with the
// guest itself, as they do in Linux.
unsafe impl Sync for MemoryFile {}

impl MemoryFile {
    pub fn new() -> Result<Arc<MemoryFile>, MemFileError> {
        MemoryFile::with_cache(None)
    }

    /// A memory file whose large cached files go to `cache` (from
    /// [`huge_cache_file`]).
    pub fn with_cache(cache: Option<OwnedFd>) -> Result<Arc<MemoryFile>, MemFileError> {
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
        let cache = cache.filter(|c| {
            // SAFETY: FFI call on a valid fd.
            unsafe { libc::ftruncate(c.as_raw_fd(), CACHE_SIZE as i64) == 0 }
        });
        let size = if cache.is_some() { MEMFILE_SIZE + CACHE_SIZE } else { MEMFILE_SIZE };
        // SAFETY: mapping a file we own, shared, at a kernel-chosen address.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
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
        // Offset 0 is never handed out so that 0 can mean "none" in logs;
        // nor is the memory file's last page, so that no run of it ever
        // touches one of the cache file.
        free.insert(PAGE_SIZE, MEMFILE_SIZE - 2 * PAGE_SIZE);
        if let Some(c) = &cache {
            // The mapping above is `size` long, its tail past the memfd's
            // end: the cache file goes over that tail.
            // SAFETY: replacing part of the mapping just made (and owned
            // by nobody else yet) with the cache file, shared.
            let m = unsafe {
                libc::mmap(
                    (base as *mut u8).add(MEMFILE_SIZE as usize).cast(),
                    CACHE_SIZE as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_NORESERVE | libc::MAP_FIXED,
                    c.as_raw_fd(),
                    0,
                )
            };
            if m == libc::MAP_FAILED {
                let e = std::io::Error::last_os_error();
                // SAFETY: unmapping what was mapped above.
                unsafe { libc::munmap(base, size as usize) };
                return Err(MemFileError::Create(e));
            }
            free.insert(MEMFILE_SIZE, CACHE_SIZE);
        }
        let pages = Arc::new(Mutex::new(Pages { free, refs: BTreeMap::new() }));
        let punches = Arc::new(Punches {
            state: Mutex::new(PunchState {
                ranges: Vec::new(),
                busy: false,
                worker: PunchWorker::NotStarted,
                stop: false,
            }),
            cv: Condvar::new(),
        });
        let splice = crate::splicefill::SplicePipes::new();
        Ok(Arc::new(MemoryFile { fd, cache, base: base as *mut u8, size, pages, punches, splice }))
    }

    /// The memfd, for platforms to map.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Both files, for platforms to map.
    pub fn fds(&self) -> platform::MemoryFds {
        let main = self.fd.as_raw_fd();
        platform::MemoryFds { main, cache: self.cache.as_ref().map_or(main, |c| c.as_raw_fd()) }
    }

    fn files(&self) -> Files {
        Files { main: self.fd.as_raw_fd(), cache: self.cache.as_ref().map(|c| c.as_raw_fd()) }
    }

    fn pages(&self) -> std::sync::MutexGuard<'_, Pages> {
        self.pages.lock().unwrap_or_else(|_| crate::locking::poisoned())
    }

    /// Allocate `len` bytes (page-aligned) of zeroed memory-file space,
    /// released when the returned range (and every reference taken on its
    /// pages with [`MemoryFile::incref`]) is gone.
    pub fn alloc(self: &Arc<Self>, len: u64) -> Result<Arc<MemRange>, Errno> {
        let (off, len) = self.alloc_ref_len(len)?;
        Ok(Arc::new(MemRange { file: self.clone(), off, len, held: len }))
    }

    /// [`MemoryFile::alloc`] for a large cached file: from the cache file
    /// when there is one (whole huge pages, the range's `len` still
    /// `len` rounded to pages), else from the memory file.
    pub fn alloc_cache(self: &Arc<Self>, len: u64) -> Result<Arc<MemRange>, Errno> {
        if self.cache.is_none() {
            return self.alloc(len);
        }
        let len = abi::page_up(len).ok_or(Errno::ENOMEM)?;
        let held = len.checked_next_multiple_of(HUGE).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let mut p = self.pages();
        let off = p.take_free_cache(held)?;
        p.refs.insert(off, (off + held, 1));
        p.merge(off);
        p.merge(off + held);
        drop(p);
        Ok(Arc::new(MemRange { file: self.clone(), off, len, held }))
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
        for &(s, _) in &dead {
            p.refs.remove(&s);
        }
        p.merge(off);
        p.merge(end);
        drop(p);
        self.free_later(dead.into_iter().map(|(s, e)| (s, e - s)).collect());
    }

    /// Punch out and free `ranges` (off, len), on the punch thread when
    /// there is one.
    fn free_later(&self, ranges: Vec<(u64, u64)>) {
        if ranges.is_empty() {
            return;
        }
        let mut st = self.punches.state.lock().unwrap_or_else(|_| crate::locking::poisoned());
        if matches!(st.worker, PunchWorker::NotStarted) {
            let (files, pages, punches) = (self.files(), self.pages.clone(), self.punches.clone());
            st.worker = match std::thread::Builder::new()
                .name("memfile-punch".into())
                .stack_size(64 * 1024)
                .spawn(move || punch_worker(files, pages, punches))
            {
                Ok(h) => PunchWorker::Running(h),
                Err(_) => PunchWorker::Unavailable,
            };
        }
        if matches!(st.worker, PunchWorker::Running(_)) && !st.stop {
            // Only the first run of a batch wakes the thread; it gathers
            // the rest (`PUNCH_GATHER`).
            let first = st.ranges.is_empty();
            st.ranges.extend(ranges);
            if first {
                self.punches.cv.notify_all();
            }
            return;
        }
        drop(st);
        punch_and_free(self.files(), &self.pages, &ranges);
    }

    /// Punch out what is waiting, here and now, and wait for the thread's
    /// batch in hand (for a count of resident pages that is not behind).
    fn drain_punches(&self) {
        let ranges = {
            let mut st = self.punches.state.lock().unwrap_or_else(|_| crate::locking::poisoned());
            let r = std::mem::take(&mut st.ranges);
            while st.busy {
                st = self.punches.cv.wait(st).unwrap_or_else(|_| crate::locking::poisoned());
            }
            r
        };
        if !ranges.is_empty() {
            punch_and_free(self.files(), &self.pages, &ranges);
        }
    }

    /// The run of pages around `off` sharing its reference count: `(start,
    /// end, count)`; None when `off` is not allocated.
    pub fn refcount(&self, off: u64) -> Option<(u64, u64, u32)> {
        let p = self.pages();
        let (&s, &(e, c)) = p.refs.range(..=off).next_back()?;
        (e > off).then_some((s, e, c))
    }

    /// Bytes of the memory file the host has pages for (everything
    /// touched and not punched out): what the sandbox's memory limit is
    /// measured against. One fstat; guests touch pages without the Sentry
    /// seeing it, so the count is only known by asking the host.
    pub fn resident_bytes(&self) -> u64 {
        self.drain_punches();
        let blocks = |fd: RawFd| {
            let mut st = std::mem::MaybeUninit::<libc::statx>::zeroed();
            // SAFETY: statx of our own fd (AT_EMPTY_PATH with an empty C
            // string) into a buffer of the right type; statx, not fstat, is
            // what the confined Sentry's filter allows.
            let r = unsafe { libc::statx(fd, c"".as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_BLOCKS, st.as_mut_ptr()) };
            if r != 0 {
                return 0;
            }
            // SAFETY: statx succeeded and filled the buffer.
            let st = unsafe { st.assume_init() };
            st.stx_blocks.saturating_mul(512)
        };
        let cache = self.cache.as_ref().map_or(0, |c| blocks(c.as_raw_fd()));
        blocks(self.fd.as_raw_fd()).saturating_add(cache)
    }

    /// Bytes of `[off, off+len)` the host has pages for. SEEK_DATA skips
    /// holes (large untouched reservations cost nothing), then mincore on
    /// the Sentry's own mapping counts pages chunk by chunk: SEEK_HOLE
    /// would walk all the data after a point, far past the range when
    /// the file is densely used, which makes many small ranges quadratic.
    pub fn resident_in(&self, off: u64, len: u64) -> u64 {
        /// Pages mincore reports at once (its vector is one byte a page).
        const CHUNK_PAGES: u64 = 16 * 1024;
        let end = off.saturating_add(len).min(self.size);
        let mut at = off - off % PAGE_SIZE;
        let mut total = 0;
        let mut vec = Vec::new();
        let files = self.files();
        while at < end {
            let (fd, file_at) = files.at(at);
            // SAFETY: lseek on our own fd; only the offset changes, which
            // nothing else uses (copies use pread and the mapping).
            let r = unsafe { libc::lseek(fd, file_at as i64, libc::SEEK_DATA) };
            // Back in memory-file offsets (the file's start is `at - file_at`).
            let Some(data) = u64::try_from(r).ok().and_then(|d| d.checked_add(at - file_at)) else { break };
            if data >= end {
                break;
            }
            let data = data - data % PAGE_SIZE;
            let stop = end.min(data + CHUNK_PAGES * PAGE_SIZE);
            let pages = (stop - data).div_ceil(PAGE_SIZE) as usize;
            vec.resize(pages, 0u8);
            // SAFETY: the range lies inside our mapping (both ends checked
            // against `self.size`), `data` is page-aligned, and `vec` holds
            // one byte per page of it.
            let r = unsafe {
                libc::mincore(
                    self.base.add(data as usize) as *mut libc::c_void,
                    (stop - data) as usize,
                    vec.as_mut_ptr(),
                )
            };
            if r != 0 {
                break;
            }
            total += vec.iter().filter(|&&b| b & 1 != 0).count() as u64 * PAGE_SIZE;
            at = stop;
        }
        total
    }

    /// One byte a page from `off` on (page-aligned), 1 where the host
    /// holds the page (touched and not punched), else 0: mincore(2).
    pub fn residency(&self, off: u64, out: &mut [u8]) -> Result<(), Errno> {
        let len = (out.len() as u64).checked_mul(PAGE_SIZE).ok_or(Errno::EFAULT)?;
        if !off.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        self.check(off, len as usize)?;
        if out.is_empty() {
            return Ok(());
        }
        // SAFETY: the range lies inside our mapping (checked above), `off`
        // is page-aligned, and `out` holds one byte per page of it.
        let r =
            unsafe { libc::mincore(self.base.add(off as usize) as *mut libc::c_void, len as usize, out.as_mut_ptr()) };
        if r != 0 {
            out.fill(0);
        }
        for b in out.iter_mut() {
            *b &= 1;
        }
        Ok(())
    }

    /// Give the pages of `[off, off+len)` back to the host (they read as
    /// zeros afterwards).
    pub fn punch(&self, off: u64, len: u64) {
        punch_fd(self.files(), off, len);
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

    /// Hand the pages of `range`, which nobody else holds yet (just
    /// allocated: no mapping, no other reference), to `fill` as one
    /// buffer: a file read goes straight into the memory file instead of
    /// through a bounce buffer. EBUSY when `range` is shared.
    pub fn fill_fresh<R>(&self, range: &mut Arc<MemRange>, fill: impl FnOnce(&mut [u8]) -> R) -> Result<R, Errno> {
        let r = Arc::get_mut(range).ok_or(Errno::EBUSY)?;
        let len = usize::try_from(r.len).map_err(|_| Errno::EFAULT)?;
        self.check(r.off, len)?;
        // SAFETY: range checked against the mapping; the pages belong to
        // `range` alone (unique Arc of a fresh allocation, never mapped),
        // so nothing else reads or writes them while the slice lives.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.base.add(r.off as usize), len) };
        Ok(fill(buf))
    }

    /// Fill a fresh range (as `fill_fresh`) with the first `len` bytes of
    /// host file `src`, copied by the host kernel (see `splicefill`).
    pub fn fill_fresh_from_host(
        &self,
        range: &mut Arc<MemRange>,
        src: RawFd,
        len: u64,
    ) -> Result<crate::splicefill::SpliceFill, Errno> {
        let r = Arc::get_mut(range).ok_or(Errno::EBUSY)?;
        if len > r.len {
            return Err(Errno::EINVAL);
        }
        self.check(r.off, usize::try_from(r.len).map_err(|_| Errno::EFAULT)?)?;
        let (fd, off) = self.files().at(r.off);
        self.splice.fill(src, fd, off, len)
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

    /// Copy `[from, from+len)` to `to` with read(2) from the memfd:
    /// holes in the source read as zeros without being filled in, which a
    /// plain copy through the mapping would do (and SEEK_DATA/SEEK_HOLE
    /// to find them costs time in the size of the data after `from`).
    pub fn copy_by_read(&self, from: u64, to: u64, len: u64) -> Result<(), Errno> {
        self.check(from, len as usize)?;
        self.check(to, len as usize)?;
        if from < to.saturating_add(len) && to < from.saturating_add(len) {
            return self.copy_within(from, to, len);
        }
        let (fd, file_from) = self.files().at(from);
        let mut done = 0u64;
        while done < len {
            // SAFETY: the destination is inside our own mapping (checked
            // above) and does not overlap the source; pread writes at most
            // `len - done` bytes there.
            let n = unsafe {
                libc::pread(
                    fd,
                    self.base.add((to + done) as usize) as *mut libc::c_void,
                    (len - done) as usize,
                    (file_from + done) as i64,
                )
            };
            if n <= 0 {
                if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                // Not expected on a memfd; fall back to a plain copy.
                return self.copy_within(from + done, to + done, len - done);
            }
            done += n as u64;
        }
        Ok(())
    }

    /// The 64-bit word at `off` as an atomic (patching guest code with one
    /// store, see `mm/patch.rs`).
    pub fn atomic_u64(&self, off: u64) -> Result<&std::sync::atomic::AtomicU64, Errno> {
        if !off.is_multiple_of(8) {
            return Err(Errno::EINVAL);
        }
        self.check(off, 8)?;
        // SAFETY: in bounds and 8-aligned within a mapping that lives as long
        // as `self`; AtomicU64 has the layout of u64, and the guest (another
        // process) may access the word concurrently, which atomics allow.
        Ok(unsafe { &*(self.base.add(off as usize) as *const std::sync::atomic::AtomicU64) })
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
        // The punch thread uses the fd: it finishes before the fd closes.
        let worker = {
            let mut st = self.punches.state.lock().unwrap_or_else(|e| e.into_inner());
            st.stop = true;
            std::mem::replace(&mut st.worker, PunchWorker::Unavailable)
        };
        self.punches.cv.notify_all();
        if let PunchWorker::Running(h) = worker {
            let _ = h.join();
        }
        // SAFETY: unmapping the mapping made in new(); nothing refers to it now.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.size as usize) };
    }
}

/// A page-aligned range of the memory file, freed when the last user goes.
pub struct MemRange {
    file: Arc<MemoryFile>,
    pub off: u64,
    pub len: u64,
    /// What the range holds of the allocator, from `off` (`len`, or whole
    /// huge pages in the cache file), released with it.
    held: u64,
}

impl MemRange {
    pub fn file(&self) -> &Arc<MemoryFile> {
        &self.file
    }
}

impl Drop for MemRange {
    fn drop(&mut self) {
        self.file.decref(self.off, self.held);
    }
}

impl std::fmt::Debug for MemRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemRange({:#x}+{:#x})", self.off, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcounts_split_merge_and_free() {
        let mf = MemoryFile::new().expect("memfd");
        let off = mf.alloc_ref(8 * PAGE_SIZE).expect("alloc");
        assert_eq!(mf.refcount(off), Some((off, off + 8 * PAGE_SIZE, 1)));
        mf.incref(off + 2 * PAGE_SIZE, 2 * PAGE_SIZE);
        assert_eq!(mf.refcount(off + 3 * PAGE_SIZE), Some((off + 2 * PAGE_SIZE, off + 4 * PAGE_SIZE, 2)));
        assert_eq!(mf.refcount(off), Some((off, off + 2 * PAGE_SIZE, 1)));
        mf.write(off + 2 * PAGE_SIZE, b"kept").expect("write");
        // Dropping the first reference everywhere frees all but the pages
        // still referred to twice.
        mf.decref(off, 8 * PAGE_SIZE);
        assert_eq!(mf.refcount(off), None);
        assert_eq!(mf.refcount(off + 2 * PAGE_SIZE), Some((off + 2 * PAGE_SIZE, off + 4 * PAGE_SIZE, 1)));
        let mut b = [0u8; 4];
        mf.read(off + 2 * PAGE_SIZE, &mut b).expect("read");
        assert_eq!(&b, b"kept");
        // Freed space is handed out again, zeroed (once punched: the punch
        // thread's work is done here first).
        mf.drain_punches();
        let again = mf.alloc_ref(2 * PAGE_SIZE).expect("alloc");
        assert_eq!(again, off);
        mf.decref(off + 2 * PAGE_SIZE, 2 * PAGE_SIZE);
        mf.decref(again, 2 * PAGE_SIZE);
        assert_eq!(mf.refcount(off + 2 * PAGE_SIZE), None);
        mf.drain_punches();
        let big = mf.alloc_ref(8 * PAGE_SIZE).expect("alloc");
        assert_eq!(big, off);
        mf.read(off + 2 * PAGE_SIZE, &mut b).expect("read");
        assert_eq!(b, [0; 4]);
    }

    #[test]
    fn untouched_runs_are_freed_without_a_punch_and_touched_ones_punched() {
        let mf = MemoryFile::new().expect("memfd");
        let a = mf.alloc_ref(16 * PAGE_SIZE).expect("alloc");
        let b = mf.alloc_ref(16 * PAGE_SIZE).expect("alloc");
        mf.write(b + 15 * PAGE_SIZE, b"x").expect("write");
        assert!(has_no_data(mf.fd(), a, 16 * PAGE_SIZE));
        assert!(!has_no_data(mf.fd(), b, 16 * PAGE_SIZE));
        assert!(!has_no_data(mf.fd(), a, 32 * PAGE_SIZE));
        mf.decref(a, 16 * PAGE_SIZE);
        mf.decref(b, 16 * PAGE_SIZE);
        mf.drain_punches();
        assert_eq!(mf.resident_in(a, 32 * PAGE_SIZE), 0);
        let again = mf.alloc_ref(32 * PAGE_SIZE).expect("alloc");
        assert_eq!(again, a);
        let mut x = [1u8; 1];
        mf.read(b + 15 * PAGE_SIZE, &mut x).expect("read");
        assert_eq!(x, [0]);
    }

    /// A cache file: the huge-page tmpfs one where this host (and the
    /// test's privileges) allow it, else a second memfd (same layout).
    fn some_cache_file() -> OwnedFd {
        huge_cache_file().unwrap_or_else(|| {
            // SAFETY: FFI call with a valid name; the result is checked.
            let fd = unsafe { libc::memfd_create(c"memfile-test-cache".as_ptr(), libc::MFD_CLOEXEC) };
            assert!(fd >= 0);
            // SAFETY: a new descriptor owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
    }

    #[test]
    fn large_cached_files_take_whole_huge_pages_of_the_cache_file() {
        let mf = MemoryFile::with_cache(Some(some_cache_file())).expect("memory file");
        let fds = mf.fds();
        assert_ne!(fds.main, fds.cache);
        let size = 3 * HUGE + 5 * PAGE_SIZE + 7;
        let r = mf.alloc_cache(size).expect("alloc");
        assert!(r.off >= platform::CACHE_FILE_BASE && r.off.is_multiple_of(HUGE), "{r:?}");
        assert_eq!(r.len, 3 * HUGE + 6 * PAGE_SIZE, "len is the pages asked for");
        // Small allocations stay in the memory file.
        let small = mf.alloc(PAGE_SIZE).expect("alloc");
        assert!(small.off < platform::CACHE_FILE_BASE);
        // Written through the Sentry's mapping, it is in the cache file at
        // the offset the platforms map.
        mf.write(r.off + HUGE + 8, b"cached").expect("write");
        let mut b = [0u8; 6];
        // SAFETY: pread into a live buffer from our own descriptor.
        let n = unsafe {
            libc::pread(fds.cache, b.as_mut_ptr().cast(), 6, (r.off - platform::CACHE_FILE_BASE + HUGE + 8) as i64)
        };
        assert_eq!((n, &b), (6, b"cached"));
        // Copies out of it (a private mapping's copy-on-write) read it.
        let to = mf.alloc(PAGE_SIZE).expect("alloc");
        mf.copy_by_read(r.off + HUGE, to.off, PAGE_SIZE).expect("copy");
        mf.read(to.off + 8, &mut b).expect("read");
        assert_eq!(&b, b"cached");
        assert!(mf.resident_in(r.off, r.len) >= PAGE_SIZE);
        // Freed, the whole huge pages go back (punched in the cache file)
        // and are handed out again.
        let off = r.off;
        drop(r);
        mf.drain_punches();
        assert_eq!(mf.refcount(off), None);
        assert_eq!(mf.refcount(off + 3 * HUGE + 8 * PAGE_SIZE), None, "the tail of the last huge page too");
        assert!(has_no_data(fds.cache, off - platform::CACHE_FILE_BASE, 4 * HUGE));
        let again = mf.alloc_cache(HUGE + 1).expect("alloc");
        assert_eq!(again.off, off);
        mf.read(again.off + HUGE + 8, &mut b).expect("read");
        assert_eq!(b, [0; 6], "fresh pages read as zeros");
    }

    #[test]
    fn without_a_cache_file_large_files_stay_in_the_memory_file() {
        let mf = MemoryFile::new().expect("memfd");
        let r = mf.alloc_cache(3 * HUGE).expect("alloc");
        assert!(r.off < platform::CACHE_FILE_BASE);
        assert_eq!(mf.fds(), platform::MemoryFds::single(mf.fd()));
    }

    #[test]
    fn neighbouring_runs_merge_into_one_punch() {
        let mut r = vec![(30, 10), (0, 10), (10, 5), (50, 1), (15, 15)];
        merge_neighbours(&mut r);
        assert_eq!(r, vec![(0, 40), (50, 1)]);
        let mut none: Vec<(u64, u64)> = Vec::new();
        merge_neighbours(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn runs_freed_one_by_one_are_punched_by_the_thread_after_gathering() {
        let mf = MemoryFile::new().expect("memfd");
        let runs: Vec<u64> = (0..4).map(|_| mf.alloc_ref(2 * PAGE_SIZE).expect("alloc")).collect();
        for &r in &runs {
            mf.write(r, b"old").expect("write");
        }
        for &r in &runs {
            mf.decref(r, 2 * PAGE_SIZE);
        }
        // No drain: the thread punches them on its own, once gathered.
        let t = std::time::Instant::now();
        while mf.resident_in(runs[0], 8 * PAGE_SIZE) != 0 || !mf.punches.state.lock().unwrap().ranges.is_empty() {
            assert!(t.elapsed() < std::time::Duration::from_secs(20), "the punch thread never punched");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        while mf.punches.state.lock().unwrap().busy {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let again = mf.alloc_ref(8 * PAGE_SIZE).expect("alloc");
        assert_eq!(again, runs[0]);
        let mut b = [1u8; 3];
        mf.read(runs[3], &mut b).expect("read");
        assert_eq!(b, [0; 3]);
    }

    #[test]
    fn mem_range_drop_is_a_reference() {
        let mf = MemoryFile::new().expect("memfd");
        let r = mf.alloc(4 * PAGE_SIZE).expect("alloc");
        let off = r.off;
        mf.incref(off, PAGE_SIZE);
        drop(r);
        assert_eq!(mf.refcount(off), Some((off, off + PAGE_SIZE, 1)));
        assert_eq!(mf.refcount(off + PAGE_SIZE), None);
        mf.decref(off, PAGE_SIZE);
        assert_eq!(mf.refcount(off), None);
    }

    #[test]
    fn resident_counts_touched_pages_only() {
        let mf = MemoryFile::new().expect("memfd");
        let before = mf.resident_bytes();
        let a = mf.alloc_ref(64 * PAGE_SIZE).expect("alloc");
        assert_eq!(mf.resident_in(a, 64 * PAGE_SIZE), 0);
        mf.write(a + 3 * PAGE_SIZE, b"x").expect("write");
        mf.write(a + 10 * PAGE_SIZE, b"y").expect("write");
        assert_eq!(mf.resident_in(a, 64 * PAGE_SIZE), 2 * PAGE_SIZE);
        assert_eq!(mf.resident_bytes(), before + 2 * PAGE_SIZE);
        mf.decref(a, 64 * PAGE_SIZE);
        assert_eq!(mf.resident_bytes(), before);
    }

    #[test]
    fn copy_by_read_keeps_source_holes() {
        let mf = MemoryFile::new().expect("memfd");
        let a = mf.alloc_ref(4 * PAGE_SIZE).expect("alloc");
        let b = mf.alloc_ref(4 * PAGE_SIZE).expect("alloc");
        mf.write(a + PAGE_SIZE, b"data").expect("write");
        mf.copy_by_read(a, b, 4 * PAGE_SIZE).expect("copy");
        let mut x = [0u8; 4];
        mf.read(b + PAGE_SIZE, &mut x).expect("read");
        assert_eq!(&x, b"data");
        mf.read(b, &mut x).expect("read");
        assert_eq!(x, [0; 4]);
    }
}
