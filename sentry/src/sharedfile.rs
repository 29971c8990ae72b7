//! The pages behind MAP_SHARED mappings of a file: one set per file,
//! shared by every such mapping in the sandbox (and by private mappings
//! made while it lives, until they write), kept coherent with read(2) and
//! write(2) on the file.
//!
//! There is no dirty tracking: a read through a descriptor first writes
//! the mapped pages it covers back to the file, a write through a
//! descriptor is copied into the mapped pages it covers, and the whole set
//! is written back by msync and when its last mapping goes. Only sets that
//! a writable mapping ever used are written back; nothing is written past
//! the file's current end.

use crate::locking::lock;
use crate::memfile::{MemRange, MemoryFile};
use abi::Errno;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use vfs::{InodeRef, OpenFile};

/// A file's identity: device and inode number.
type Key = (u64, u64);

/// Bytes moved per step of a write-back or fill.
const CHUNK: usize = 1 << 20;

#[derive(Default)]
struct Registry {
    files: Mutex<HashMap<Key, Weak<SharedFile>>>,
    /// Sets alive: while it is zero, reads and writes skip every check.
    live: AtomicUsize,
}

/// Every shared page set in the sandbox, by file.
#[derive(Clone, Default)]
pub struct SharedFiles(Arc<Registry>);

struct State {
    /// File offset -> the pages holding `[offset, offset + range.len)`.
    /// Extents never overlap.
    extents: BTreeMap<u64, Arc<MemRange>>,
    /// Where pages are written back through: an open file of a mapping
    /// that was writable. None while no mapping could write.
    writer: Option<Arc<OpenFile>>,
}

pub struct SharedFile {
    key: Key,
    registry: Arc<Registry>,
    memfile: Arc<MemoryFile>,
    state: Mutex<State>,
}

/// What a shared file mapping holds on to.
#[derive(Clone)]
pub struct FileBacking {
    pub file: Arc<SharedFile>,
    /// The open file it was mapped from when that allows writing (a
    /// mapping of a read-only descriptor can never be made writable).
    pub writer: Option<Arc<OpenFile>>,
}

impl std::fmt::Debug for FileBacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileBacking({:?}, writable: {})", self.file.key, self.writer.is_some())
    }
}

/// Part of a file range: `[file_off, file_off + len)` lies in `mem` from
/// `mem_off` on.
pub struct Piece {
    pub file_off: u64,
    pub len: u64,
    pub mem: Arc<MemRange>,
    pub mem_off: u64,
}

/// The extents of `m` that overlap `[start, end)`, in file order.
fn overlapping(m: &BTreeMap<u64, Arc<MemRange>>, start: u64, end: u64) -> Vec<(u64, Arc<MemRange>)> {
    let mut v: Vec<(u64, Arc<MemRange>)> =
        m.range(..end).rev().take_while(|(&o, r)| o + r.len > start).map(|(&o, r)| (o, r.clone())).collect();
    v.reverse();
    v
}

fn key_of(inode: &InodeRef) -> Option<Key> {
    let st = inode.stat().ok()?;
    (st.st_mode & abi::flags::S_IFMT == abi::flags::S_IFREG).then_some((st.st_dev, st.st_ino))
}

impl SharedFiles {
    /// The page set of file `key`, made empty if there is none.
    pub fn get(&self, memfile: &Arc<MemoryFile>, dev: u64, ino: u64) -> Arc<SharedFile> {
        let key = (dev, ino);
        let mut files = lock(&self.0.files);
        if let Some(f) = files.get(&key).and_then(Weak::upgrade) {
            return f;
        }
        let f = Arc::new(SharedFile {
            key,
            registry: self.0.clone(),
            memfile: memfile.clone(),
            state: Mutex::new(State { extents: BTreeMap::new(), writer: None }),
        });
        self.0.live.fetch_add(1, Ordering::AcqRel);
        files.insert(key, Arc::downgrade(&f));
        f
    }

    /// The page set of file `(dev, ino)` if it has one.
    pub fn lookup(&self, dev: u64, ino: u64) -> Option<Arc<SharedFile>> {
        if self.0.live.load(Ordering::Acquire) == 0 {
            return None;
        }
        lock(&self.0.files).get(&(dev, ino)).and_then(Weak::upgrade)
    }

    fn of_inode(&self, inode: &InodeRef) -> Option<Arc<SharedFile>> {
        if self.0.live.load(Ordering::Acquire) == 0 {
            return None;
        }
        let (dev, ino) = key_of(inode)?;
        self.lookup(dev, ino)
    }

    fn of_file(&self, f: &OpenFile) -> Option<Arc<SharedFile>> {
        if self.0.live.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.of_inode(&f.dentry.as_ref()?.inode)
    }

    /// `f` is about to be read at `[off, off + len)`: what mappings wrote
    /// there reaches the file first.
    pub fn before_read(&self, f: &OpenFile, off: u64, len: u64) {
        if let Some(s) = self.of_file(f) {
            if let Err(e) = s.write_back(off, len) {
                tracing::debug!("write-back before read failed: {e:?}");
            }
        }
    }

    /// `data` was just written to `f` at `off`: mappings see it.
    pub fn after_write(&self, f: &OpenFile, off: u64, data: &[u8]) {
        if let Some(s) = self.of_file(f) {
            s.update(off, data);
        }
    }

    /// The file of `inode` now ends at `size`: mapped bytes past it are
    /// gone (zeros if the file grows back).
    pub fn truncated(&self, inode: &InodeRef, size: u64) {
        if let Some(s) = self.of_inode(inode) {
            s.zero_from(size);
        }
    }
}

impl SharedFile {
    /// The pages holding `[off, off + len)` of the file (page-aligned),
    /// reading the parts not held yet with `read(buf, offset)`; bytes past
    /// the end of the file are zeros.
    pub fn pieces(
        &self,
        off: u64,
        len: u64,
        mut read: impl FnMut(&mut [u8], u64) -> Result<usize, Errno>,
    ) -> Result<Vec<Piece>, Errno> {
        let end = off.checked_add(len).ok_or(Errno::EOVERFLOW)?;
        let mut st = lock(&self.state);
        let mut out = Vec::new();
        let mut at = off;
        for (eo, r) in overlapping(&st.extents, off, end) {
            if eo > at {
                out.push(self.fill(&mut st, at, eo - at, &mut read)?);
                at = eo;
            }
            let pe = (eo + r.len).min(end);
            out.push(Piece { file_off: at, len: pe - at, mem_off: at - eo, mem: r });
            at = pe;
        }
        if at < end {
            out.push(self.fill(&mut st, at, end - at, &mut read)?);
        }
        Ok(out)
    }

    /// A new extent `[off, off + len)` read from the file.
    fn fill(
        &self,
        st: &mut State,
        off: u64,
        len: u64,
        read: &mut impl FnMut(&mut [u8], u64) -> Result<usize, Errno>,
    ) -> Result<Piece, Errno> {
        let mem = self.memfile.alloc(len)?;
        let mut buf = vec![0u8; (len as usize).min(CHUNK)];
        let mut done = 0u64;
        while done < len {
            let want = ((len - done) as usize).min(buf.len());
            let n = read(&mut buf[..want], off + done)?;
            if n == 0 {
                break;
            }
            self.memfile.write(mem.off + done, &buf[..n])?;
            done += n as u64;
        }
        st.extents.insert(off, mem.clone());
        Ok(Piece { file_off: off, len, mem, mem_off: 0 })
    }

    /// A writable mapping uses these pages: from now on they are written
    /// back through `f`.
    pub fn set_writer(&self, f: &Arc<OpenFile>) {
        let mut st = lock(&self.state);
        if st.writer.is_none() {
            st.writer = Some(f.clone());
        }
    }

    /// Write the pages over `[off, off + len)` back to the file (up to its
    /// current end).
    pub fn write_back(&self, off: u64, len: u64) -> Result<(), Errno> {
        let st = lock(&self.state);
        self.write_back_locked(&st, off, off.saturating_add(len))
    }

    fn write_back_locked(&self, st: &State, start: u64, end: u64) -> Result<(), Errno> {
        let Some(w) = &st.writer else {
            return Ok(());
        };
        let size = w.ops.size()?;
        let end = end.min(size);
        if start >= end {
            return Ok(());
        }
        let interrupt = vfs::Interrupt::default();
        let ctx = vfs::IoCtx { flags: w.flags() & !abi::flags::O_NONBLOCK, interrupt: &interrupt };
        let mut buf = Vec::new();
        for (eo, r) in overlapping(&st.extents, start, end) {
            let (mut a, b) = (eo.max(start), (eo + r.len).min(end));
            while a < b {
                let n = ((b - a) as usize).min(CHUNK);
                buf.resize(n, 0);
                self.memfile.read(r.off + (a - eo), &mut buf)?;
                let mut done = 0;
                while done < n {
                    match w.ops.write(&ctx, &buf[done..], a + done as u64)? {
                        0 => return Err(Errno::EIO),
                        k => done += k,
                    }
                }
                a += n as u64;
            }
        }
        Ok(())
    }

    /// Copy `data`, just written to the file at `off`, into the pages.
    fn update(&self, off: u64, data: &[u8]) {
        let Some(end) = off.checked_add(data.len() as u64) else {
            return;
        };
        let st = lock(&self.state);
        for (eo, r) in overlapping(&st.extents, off, end) {
            let (a, b) = (eo.max(off), (eo + r.len).min(end));
            let src = &data[(a - off) as usize..(b - off) as usize];
            if let Err(e) = self.memfile.write(r.off + (a - eo), src) {
                tracing::warn!("shared file page update failed: {e:?}");
            }
        }
    }

    /// Zero every held byte from `size` on.
    fn zero_from(&self, size: u64) {
        let st = lock(&self.state);
        for (eo, r) in overlapping(&st.extents, size, u64::MAX) {
            let a = eo.max(size);
            let zero = self.memfile.zero(r.off + (a - eo), eo + r.len - a);
            if let Err(e) = zero {
                tracing::warn!("shared file page zeroing failed: {e:?}");
            }
        }
    }
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        let st = lock(&self.state);
        if let Err(e) = self.write_back_locked(&st, 0, u64::MAX) {
            tracing::warn!("write-back of shared file mapping {:?} failed: {e:?}", self.key);
        }
        drop(st);
        let mut files = lock(&self.registry.files);
        // Another set for this file may have been made since the count
        // dropped to zero: leave that one.
        if files.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
            files.remove(&self.key);
        }
        self.registry.live.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::PAGE_SIZE;

    fn read_from(data: &[u8]) -> impl FnMut(&mut [u8], u64) -> Result<usize, Errno> + '_ {
        move |buf, off| {
            let off = (off as usize).min(data.len());
            let n = buf.len().min(data.len() - off);
            buf[..n].copy_from_slice(&data[off..off + n]);
            Ok(n)
        }
    }

    #[test]
    fn pieces_reuse_extents_and_fill_holes() {
        let mf = MemoryFile::new().expect("memfd");
        let files = SharedFiles::default();
        let data: Vec<u8> = (0..3 * PAGE_SIZE).map(|i| (i / PAGE_SIZE) as u8 + 1).collect();
        let sf = files.get(&mf, 1, 2);
        let first = sf.pieces(PAGE_SIZE, PAGE_SIZE, read_from(&data)).expect("pieces");
        assert_eq!(first.len(), 1);
        // [0, 4 pages): a hole, the page held already, a hole read up to
        // the end of the file, and zeros past it.
        let all = sf.pieces(0, 4 * PAGE_SIZE, read_from(&data)).expect("pieces");
        let spans: Vec<(u64, u64)> = all.iter().map(|p| (p.file_off, p.len)).collect();
        assert_eq!(spans, vec![(0, PAGE_SIZE), (PAGE_SIZE, PAGE_SIZE), (2 * PAGE_SIZE, 2 * PAGE_SIZE)]);
        assert_eq!(all[1].mem.off, first[0].mem.off);
        let mut b = [0u8; 1];
        mf.read(all[2].mem.off, &mut b).expect("read");
        assert_eq!(b[0], 3);
        mf.read(all[2].mem.off + PAGE_SIZE, &mut b).expect("read");
        assert_eq!(b[0], 0);
        // A write through a descriptor lands in every extent it covers.
        sf.update(PAGE_SIZE - 1, b"xy");
        mf.read(all[0].mem.off + PAGE_SIZE - 1, &mut b).expect("read");
        assert_eq!(&b, b"x");
        mf.read(all[1].mem.off, &mut b).expect("read");
        assert_eq!(&b, b"y");
        sf.zero_from(PAGE_SIZE);
        mf.read(all[1].mem.off, &mut b).expect("read");
        assert_eq!(b[0], 0);
        // The registry finds the set while it lives, and forgets it after.
        assert!(files.lookup(1, 2).is_some());
        drop((first, all, sf));
        assert!(files.lookup(1, 2).is_none());
        assert_eq!(files.0.live.load(Ordering::Acquire), 0);
    }
}
