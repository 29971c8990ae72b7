//! The file page cache: whole files read once into the memory file, so
//! every process that maps or executes them shares one copy. Private
//! read-only mappings (program text, shared libraries) map the cached
//! pages directly; writable ones start as copies of them.

use crate::locking::lock;
use crate::memfile::{MemRange, MemoryFile};
use crate::splicefill::SpliceFill;
use abi::{Errno, Stat};
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

/// Files larger than this are not cached (they are copied per mapping).
const MAX_FILE: u64 = 256 << 20;
/// Files at least this large go to the memory file's cache file (huge
/// pages): most of their last huge page is used.
const HUGE_MIN: u64 = 1 << 20;
/// The cache keeps at most this many bytes alive by itself; mappings keep
/// their own ranges alive beyond that.
const MAX_TOTAL: u64 = 512 << 20;

/// Identity of a file's contents: a changed size or mtime is a new entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Key {
    fn of(st: &Stat) -> Key {
        Key {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

#[derive(Default)]
pub struct FileCache {
    /// Most recently used last.
    entries: Mutex<VecDeque<(Key, Arc<MemRange>)>>,
}

impl FileCache {
    /// Drop the entries no mapping uses (memory pressure); true when
    /// something was dropped.
    pub fn shrink(&self) -> bool {
        let gone: Vec<(Key, Arc<MemRange>)> = {
            let mut e = lock(&self.entries);
            let (unused, used): (VecDeque<_>, VecDeque<_>) =
                std::mem::take(&mut *e).into_iter().partition(|(_, r)| Arc::strong_count(r) == 1);
            *e = used;
            unused.into_iter().collect()
        };
        // Freed (and punched) outside the lock.
        !gone.is_empty()
    }

    /// The cached contents of the file with stat `st`, on a miss copied
    /// by the host kernel from `host` (the host descriptor the file reads
    /// from, if it is one) or else read with `read(buf, offset)`. None when
    /// the file is not cacheable.
    pub fn get(
        &self,
        memfile: &Arc<MemoryFile>,
        st: &Stat,
        host: Option<RawFd>,
        mut read: impl FnMut(&mut [u8], u64) -> Result<usize, Errno>,
    ) -> Result<Option<Arc<MemRange>>, Errno> {
        let size = u64::try_from(st.st_size).unwrap_or(0);
        if size == 0 || size > MAX_FILE || st.st_mode & abi::flags::S_IFMT != abi::flags::S_IFREG {
            return Ok(None);
        }
        let key = Key::of(st);
        {
            let mut e = lock(&self.entries);
            if let Some(i) = e.iter().position(|(k, _)| *k == key) {
                if let Some(entry) = e.remove(i) {
                    let r = entry.1.clone();
                    e.push_back(entry);
                    return Ok(Some(r));
                }
            }
        }
        let _t = platform::profile::span(platform::profile::Phase::FileCacheFill);
        // Large files fill whole huge pages of the cache file (where there
        // is one); a small one would leave most of its huge page unused.
        let mut range = if size >= HUGE_MIN { memfile.alloc_cache(size)? } else { memfile.alloc(size)? };
        let spliced = match host {
            Some(fd) => memfile.fill_fresh_from_host(&mut range, fd, size)?,
            None => SpliceFill::Unavailable,
        };
        let whole = match spliced {
            SpliceFill::Whole => true,
            SpliceFill::Short => false,
            SpliceFill::Unavailable => Self::fill_by_read(memfile, &mut range, size, &mut read)?,
        };
        if !whole {
            // The file shrank under us: do not cache a short copy.
            return Ok(None);
        }
        let mut e = lock(&self.entries);
        e.push_back((key, range.clone()));
        let mut total: u64 = e.iter().map(|(_, r)| r.len).sum();
        while total > MAX_TOTAL {
            match e.pop_front() {
                Some((_, r)) => total -= r.len,
                None => break,
            }
        }
        Ok(Some(range))
    }

    /// Read the file's `size` bytes into the fresh `range`; false when it
    /// ended first.
    fn fill_by_read(
        memfile: &Arc<MemoryFile>,
        range: &mut Arc<MemRange>,
        size: u64,
        read: &mut impl FnMut(&mut [u8], u64) -> Result<usize, Errno>,
    ) -> Result<bool, Errno> {
        // Read straight into the memory file, in chunks of at most 1 MiB
        // (what one host read is asked for).
        memfile.fill_fresh(range, |buf| -> Result<bool, Errno> {
            // The range is whole pages; the file ends within the last.
            let Some(buf) = buf.get_mut(..size as usize) else { return Ok(false) };
            let mut done = 0usize;
            while done < buf.len() {
                let want = (buf.len() - done).min(1 << 20);
                let n = read(&mut buf[done..done + want], done as u64)?;
                if n == 0 {
                    return Ok(false);
                }
                done += n.min(want);
            }
            Ok(true)
        })?
    }
}
