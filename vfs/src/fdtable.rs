//! Open file descriptions and the per-process descriptor table.

use crate::inode::{DirEntry, FileOps};
use crate::mount::DentryRef;
use abi::Errno;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// An open file description: what open(2) creates and dup(2) shares.
pub struct OpenFile {
    pub ops: Arc<dyn FileOps>,
    /// Where it was opened (None for pipes, sockets, anonymous files).
    pub dentry: Option<DentryRef>,
    /// Status flags (access mode, O_APPEND, O_NONBLOCK, ...).
    flags: AtomicU32,
    /// File position (and, for directories, the listing being read),
    /// locked only around reads and writes that cannot block (Linux's
    /// f_pos_lock: seekable files), lseek and getdents.
    pos: Mutex<FilePos>,
    /// The offset as of the last release of `pos`, for readers that must
    /// never wait for it (/proc/[pid]/fdinfo), as Linux reads f_pos there.
    pos_seen: AtomicU64,
    /// What /proc/[pid]/fd shows for files without a dentry ("pipe:[5]").
    pub anon_name: Option<String>,
    /// Unique for the sandbox's life: the owner of this description's
    /// flock and OFD locks and of its lease.
    pub id: u64,
    /// The file's identity in the lock table, once a lock was asked for.
    pub lock_key: OnceLock<crate::locks::FileKey>,
    /// Who its signals go to (F_SETOWN, F_SETSIG).
    pub owner: crate::fown::FileOwner,
}

/// Ids of open file descriptions and descriptor tables (lock owners).
fn next_owner_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A file position and, for directories, the snapshot being listed.
#[derive(Default)]
pub struct FilePos {
    pub offset: u64,
    pub dir: Option<Vec<DirEntry>>,
}

impl OpenFile {
    pub fn new(ops: Arc<dyn FileOps>, dentry: Option<DentryRef>, flags: u32) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            ops,
            dentry,
            flags: AtomicU32::new(flags),
            pos: Mutex::new(FilePos::default()),
            pos_seen: AtomicU64::new(0),
            anon_name: None,
            id: next_owner_id(),
            lock_key: OnceLock::new(),
            owner: Default::default(),
        })
    }

    pub fn new_anon(ops: Arc<dyn FileOps>, flags: u32, name: String) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            ops,
            dentry: None,
            flags: AtomicU32::new(flags),
            pos: Mutex::new(FilePos::default()),
            pos_seen: AtomicU64::new(0),
            anon_name: Some(name),
            id: next_owner_id(),
            lock_key: OnceLock::new(),
            owner: Default::default(),
        })
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Replace the flags F_SETFL may change (O_APPEND, O_NONBLOCK, O_ASYNC,
    /// O_DIRECT, O_NOATIME), keeping the rest.
    pub fn set_status_flags(&self, new: u32) {
        use abi::flags::*;
        let settable = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;
        let old = self.flags();
        self.flags.store((old & !settable) | (new & settable), Ordering::Relaxed);
    }

    pub fn readable(&self) -> bool {
        let m = self.flags() & abi::flags::O_ACCMODE;
        self.flags() & abi::flags::O_PATH == 0 && (m == abi::flags::O_RDONLY || m == abi::flags::O_RDWR)
    }

    pub fn writable(&self) -> bool {
        let m = self.flags() & abi::flags::O_ACCMODE;
        self.flags() & abi::flags::O_PATH == 0 && (m == abi::flags::O_WRONLY || m == abi::flags::O_RDWR)
    }

    /// Take the file-position lock. Never hold it across a wait that can
    /// block (a pipe, a socket, a terminal): a second user of the same
    /// description would hang on it where no signal can reach.
    pub fn lock_pos(&self) -> PosGuard<'_> {
        PosGuard { pos: crate::util::lock(&self.pos), seen: &self.pos_seen }
    }

    /// The offset without waiting for the position lock: the value as of
    /// its last release (what /proc/[pid]/fdinfo shows).
    pub fn pos_now(&self) -> u64 {
        self.pos_seen.load(Ordering::Relaxed)
    }

    /// The path shown by /proc/[pid]/fd and the like.
    pub fn display_path(&self) -> Vec<u8> {
        match (&self.dentry, &self.anon_name) {
            (Some(d), _) => d.path(),
            (None, Some(n)) => n.as_bytes().to_vec(),
            (None, None) => b"anon_inode:[unknown]".to_vec(),
        }
    }
}

/// The file-position lock, held; releasing it publishes the offset for
/// [`OpenFile::pos_now`].
pub struct PosGuard<'a> {
    pos: MutexGuard<'a, FilePos>,
    seen: &'a AtomicU64,
}

impl Deref for PosGuard<'_> {
    type Target = FilePos;
    fn deref(&self) -> &FilePos {
        &self.pos
    }
}

impl DerefMut for PosGuard<'_> {
    fn deref_mut(&mut self) -> &mut FilePos {
        &mut self.pos
    }
}

impl Drop for PosGuard<'_> {
    fn drop(&mut self) {
        self.seen.store(self.pos.offset, Ordering::Relaxed);
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if crate::inotify::active() && self.flags() & abi::flags::O_PATH == 0 {
            if let Some(d) = &self.dentry {
                let closed =
                    if self.writable() { crate::inotify::IN_CLOSE_WRITE } else { crate::inotify::IN_CLOSE_NOWRITE };
                crate::inotify::file_event(d, closed);
                crate::inotify::reap(Some(d));
            }
        }
        crate::locks::release_file(self);
        crate::leases::release_file(self);
        self.ops.release();
    }
}

#[derive(Clone)]
struct FdEntry {
    file: Arc<OpenFile>,
    cloexec: bool,
}

/// A process's file descriptor table.
pub struct FdTable {
    entries: Mutex<Vec<Option<FdEntry>>>,
    /// The owner of the POSIX record locks its processes take.
    pub id: u64,
    /// Set once a POSIX lock was taken through this table: only then does
    /// a close have locks to look for.
    posix_locks: AtomicBool,
}

/// The soft RLIMIT_NOFILE default, as Linux's.
pub const DEFAULT_NOFILE: u64 = 1024;
/// The hard ceiling (fs.nr_open's default).
pub const MAX_NOFILE: u64 = 1 << 20;

impl Default for FdTable {
    fn default() -> Self {
        FdTable { entries: Mutex::new(Vec::new()), id: next_owner_id(), posix_locks: AtomicBool::new(false) }
    }
}

impl FdTable {
    pub fn new() -> Arc<FdTable> {
        Arc::new(FdTable::default())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Option<FdEntry>>> {
        self.entries.lock().unwrap_or_else(|_| crate::util::poisoned())
    }

    /// The size Linux's table would have now (its `max_fds`): 64, or the
    /// power of two above the highest descriptor ever used. select looks
    /// no further.
    pub fn max_fds(&self) -> usize {
        self.lock().len().max(64).next_power_of_two()
    }

    /// A copy for fork (same open file descriptions).
    pub fn fork(&self) -> Arc<FdTable> {
        Arc::new(FdTable {
            entries: Mutex::new(self.lock().clone()),
            id: next_owner_id(),
            posix_locks: AtomicBool::new(false),
        })
    }

    pub fn get(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.lock().get(i).and_then(|e| e.as_ref()).map(|e| e.file.clone()).ok_or(Errno::EBADF)
    }

    pub fn get_cloexec(&self, fd: i32) -> Result<bool, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.lock().get(i).and_then(|e| e.as_ref()).map(|e| e.cloexec).ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&self, fd: i32, cloexec: bool) -> Result<(), Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        match self.lock().get_mut(i).and_then(|e| e.as_mut()) {
            Some(e) => {
                e.cloexec = cloexec;
                Ok(())
            }
            None => Err(Errno::EBADF),
        }
    }

    /// Install at the lowest free descriptor >= `min`, below `limit`.
    pub fn install_from(&self, file: Arc<OpenFile>, cloexec: bool, min: u64, limit: u64) -> Result<i32, Errno> {
        let mut g = self.lock();
        let limit = limit.min(MAX_NOFILE) as usize;
        let min = usize::try_from(min).map_err(|_| Errno::EINVAL)?;
        if min >= limit {
            return Err(Errno::EMFILE);
        }
        let free = (min..g.len()).find(|&i| g[i].is_none()).unwrap_or(g.len().max(min));
        if free >= limit {
            return Err(Errno::EMFILE);
        }
        if free >= g.len() {
            g.resize(free + 1, None);
        }
        g[free] = Some(FdEntry { file, cloexec });
        Ok(free as i32)
    }

    pub fn install(&self, file: Arc<OpenFile>, cloexec: bool, limit: u64) -> Result<i32, Errno> {
        self.install_from(file, cloexec, 0, limit)
    }

    /// Put `file` at exactly `fd` (dup2), returning what was there.
    pub fn install_at(
        &self,
        fd: i32,
        file: Arc<OpenFile>,
        cloexec: bool,
        limit: u64,
    ) -> Result<Option<Arc<OpenFile>>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        if i as u64 >= limit.min(MAX_NOFILE) {
            return Err(Errno::EBADF);
        }
        let mut g = self.lock();
        if i >= g.len() {
            g.resize(i + 1, None);
        }
        let old = g[i].replace(FdEntry { file, cloexec });
        drop(g);
        let old = old.map(|e| e.file);
        if let Some(f) = &old {
            self.closed(f);
        }
        Ok(old)
    }

    /// Record that a POSIX lock was taken through this table.
    pub fn note_posix_lock(&self) {
        self.posix_locks.store(true, Ordering::Relaxed);
    }

    /// A descriptor of `f` was closed: the process's POSIX locks on the
    /// file go (called outside the table's lock).
    fn closed(&self, f: &OpenFile) {
        crate::dnotify::flush(f.id, self.id);
        // Linux skips O_PATH files here (filp_flush).
        if self.posix_locks.load(Ordering::Relaxed) && f.flags() & abi::flags::O_PATH == 0 {
            crate::locks::close_posix(f, self.id);
        }
    }

    /// Remove `fd`; the caller drops the returned file outside the lock.
    pub fn remove(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        let e = self.lock().get_mut(i).and_then(|e| e.take()).ok_or(Errno::EBADF)?;
        self.closed(&e.file);
        Ok(e.file)
    }

    /// Close every close-on-exec descriptor (execve).
    pub fn close_on_exec(&self) {
        let mut dropped = Vec::new();
        {
            let mut g = self.lock();
            for e in g.iter_mut() {
                if e.as_ref().is_some_and(|e| e.cloexec) {
                    dropped.push(e.take());
                }
            }
        }
        for e in dropped.iter().flatten() {
            self.closed(&e.file);
        }
        drop(dropped);
    }

    /// Every open descriptor and its file (for /proc/[pid]/fd).
    pub fn list(&self) -> Vec<(i32, Arc<OpenFile>)> {
        self.lock().iter().enumerate().filter_map(|(i, e)| e.as_ref().map(|e| (i as i32, e.file.clone()))).collect()
    }

    /// Drop every descriptor (process exit).
    pub fn clear(&self) {
        let all = std::mem::take(&mut *self.lock());
        for e in all.iter().flatten() {
            crate::dnotify::flush(e.file.id, self.id);
        }
        if self.posix_locks.load(Ordering::Relaxed) {
            crate::locks::release_posix(None, self.id);
        }
        drop(all);
    }
}

impl Drop for FdTable {
    fn drop(&mut self) {
        if self.posix_locks.load(Ordering::Relaxed) {
            crate::locks::release_posix(None, self.id);
        }
    }
}
