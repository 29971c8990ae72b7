//! tmpfs: an in-memory filesystem.
//!
//! Directories hold their children in a `BTreeMap`; regular files keep
//! their contents in 4 KiB pages, so holes cost nothing and a truncate to
//! a large size allocates nothing. As Linux's tmpfs, data pages (and long
//! symlink targets) count against `size=` and inodes (and each extra hard
//! link, which pins a name) against `nr_inodes=`: ENOSPC past either.
//! Data pages are also charged to the sandbox's memory limit
//! ([`crate::limits`]). An unlinked file lives on while descriptors refer
//! to it.
//!
//! FIFOs open to one [`Pipe`] per inode. Character devices made by mknod
//! open the built-in devices of [`crate::devfs`] by number (or a custom
//! opener given with [`TmpInode::add_node`]); other device numbers give
//! ENXIO, so no host device is ever reachable.

use crate::inode::{DirEntry, FileOps, Inode, InodeRef, SetAttr};
use crate::pipe::Pipe;
use crate::util::{anon_dev, check_name, lock, read, write};
use crate::wait::IoCtx;
use crate::xattr::Xattrs;
use crate::Creds;
use abi::flags::{
    dtype_of_mode, O_APPEND, PATH_MAX, RENAME_EXCHANGE, RENAME_NOREPLACE, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK,
    S_IFMT, S_IFREG, S_IFSOCK,
};
use abi::{Errno, Stat, Statfs};
use std::any::Any;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

/// The default size limit of a tmpfs instance (boot passes its own:
/// half the sandbox's memory, as Linux's half of RAM).
pub const DEFAULT_LIMIT: u64 = 4 << 30;
/// The default inode limit (boot passes its own).
pub const DEFAULT_INODES: u64 = 1 << 20;
/// `size=0` or `nr_inodes=0`: no limit (the sandbox's memory limit still
/// holds for data).
pub const UNLIMITED: u64 = u64::MAX;
/// Linux's TMPFS_MAGIC.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

const PAGE: usize = 4096;
/// Symlink targets at least this long take a page (Linux's
/// SHORT_SYMLINK_LEN keeps shorter ones in the inode).
const SHORT_SYMLINK_LEN: usize = 128;
/// Linux's MAX_LFS_FILESIZE.
const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Linux tmpfs reports directory sizes as 20 bytes per entry.
const BOGO_DIRENT_SIZE: i64 = 20;

const S_ISGID: u32 = 0o2000;

/// Opens a device node: given the open(2) flags, the open file.
pub type DevOpener = Arc<dyn Fn(u32) -> Result<Arc<dyn FileOps>, Errno> + Send + Sync>;

/// Constructors for tmpfs instances.
pub struct TmpFs;

impl TmpFs {
    /// A new tmpfs with the default size limit; its root directory has
    /// permission bits `mode` and owner `uid`:`gid`.
    pub fn new_root(mode: u32, uid: u32, gid: u32) -> InodeRef {
        Self::new_root_with_limit(mode, uid, gid, DEFAULT_LIMIT)
    }

    /// A new tmpfs holding at most `limit` bytes (data, inodes and names).
    pub fn new_root_with_limit(mode: u32, uid: u32, gid: u32, limit: u64) -> InodeRef {
        Self::new_root_inode(mode, uid, gid, limit)
    }

    /// As [`TmpFs::new_root_with_limit`], typed.
    pub fn new_root_inode(mode: u32, uid: u32, gid: u32, limit: u64) -> Arc<TmpInode> {
        Self::new_root_sized(mode, uid, gid, limit, DEFAULT_INODES)
    }

    /// A new tmpfs of at most `size` bytes of data (rounded down to whole
    /// pages) and `nr_inodes` inodes, as `mount -t tmpfs -o size=,nr_inodes=`.
    pub fn new_root_sized(mode: u32, uid: u32, gid: u32, size: u64, nr_inodes: u64) -> Arc<TmpInode> {
        let fs = Arc::new(FsInfo {
            dev: anon_dev(),
            limit: size - size % PAGE as u64,
            used: AtomicU64::new(0),
            max_inodes: nr_inodes,
            inodes: AtomicU64::new(1),
            tree: Mutex::new(()),
        });
        let meta = Meta::new(S_IFDIR | (mode & 0o7777), uid, gid, 2, 0);
        TmpInode::new(&fs, meta, Kind::Dir(Mutex::new(DirData::default())))
    }
}

struct FsInfo {
    dev: u64,
    /// `size=`: bytes of data pages.
    limit: u64,
    used: AtomicU64,
    /// `nr_inodes=`: inodes plus extra hard links.
    max_inodes: u64,
    inodes: AtomicU64,
    /// Serialises changes to the tree (create, link, unlink, rename).
    tree: Mutex<()>,
}

impl FsInfo {
    /// Charge `n` bytes of data: against `size=`, then the sandbox's
    /// memory limit.
    fn charge(&self, n: u64) -> Result<(), Errno> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| u.checked_add(n).filter(|&t| t <= self.limit))
            .map_err(|_| Errno::ENOSPC)?;
        if let Err(e) = crate::limits::charge_heap(n) {
            self.used.fetch_sub(n, Ordering::AcqRel);
            return Err(e);
        }
        Ok(())
    }

    fn uncharge(&self, n: u64) {
        let _ = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| Some(u.saturating_sub(n)));
        crate::limits::uncharge_heap(n);
    }

    /// One more inode (or hard link); ENOSPC past `nr_inodes=`.
    fn reserve_inode(&self) -> Result<(), Errno> {
        self.inodes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |i| (i < self.max_inodes).then_some(i + 1))
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC)
    }

    fn release_inode(&self) {
        let _ = self.inodes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |i| Some(i.saturating_sub(1)));
    }
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    rdev: u64,
    atime: (i64, i64),
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Meta {
    fn new(mode: u32, uid: u32, gid: u32, nlink: u64, rdev: u64) -> Meta {
        let t = crate::now();
        Meta { mode, uid, gid, nlink, rdev, atime: t, mtime: t, ctime: t }
    }

    fn touch_mc(&mut self) {
        let t = crate::now();
        self.mtime = t;
        self.ctime = t;
    }
}

#[derive(Default)]
struct DirData {
    children: BTreeMap<Vec<u8>, Arc<TmpInode>>,
    parent: Weak<TmpInode>,
}

#[derive(Default)]
struct FileData {
    size: u64,
    pages: BTreeMap<u64, Box<[u8; PAGE]>>,
}

impl FileData {
    fn read_at(&self, buf: &mut [u8], off: u64) -> usize {
        if off >= self.size {
            return 0;
        }
        let n = (buf.len() as u64).min(self.size - off) as usize;
        let mut done = 0;
        while done < n {
            let pos = off + done as u64;
            let (idx, in_page) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let len = (PAGE - in_page).min(n - done);
            let dst = &mut buf[done..done + len];
            match self.pages.get(&idx) {
                Some(p) => dst.copy_from_slice(&p[in_page..in_page + len]),
                None => dst.fill(0),
            }
            done += len;
        }
        n
    }

    /// Write `buf` at `off`, allocating pages as needed; a partial count
    /// when the filesystem fills up after some progress.
    fn write_at(&mut self, fs: &FsInfo, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let mut done = 0;
        while done < buf.len() {
            let pos = off + done as u64;
            let (idx, in_page) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let len = (PAGE - in_page).min(buf.len() - done);
            let page = match self.pages.entry(idx) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => {
                    if let Err(e) = fs.charge(PAGE as u64) {
                        if done == 0 {
                            return Err(e);
                        }
                        break;
                    }
                    v.insert(Box::new([0u8; PAGE]))
                }
            };
            page[in_page..in_page + len].copy_from_slice(&buf[done..done + len]);
            done += len;
        }
        self.size = self.size.max(off + done as u64);
        Ok(done)
    }

    fn truncate(&mut self, fs: &FsInfo, size: u64) {
        if size < self.size {
            let first_gone = size.div_ceil(PAGE as u64);
            let gone = self.pages.split_off(&first_gone);
            fs.uncharge(gone.len() as u64 * PAGE as u64);
            let tail = (size % PAGE as u64) as usize;
            if tail != 0 {
                if let Some(p) = self.pages.get_mut(&(size / PAGE as u64)) {
                    p[tail..].fill(0);
                }
            }
        }
        self.size = size;
    }
}

/// What a symlink target costs against the size limit: a page when it
/// does not fit in the inode.
fn symlink_cost(target: &[u8]) -> u64 {
    if target.len() >= SHORT_SYMLINK_LEN {
        PAGE as u64
    } else {
        0
    }
}

enum Kind {
    Dir(Mutex<DirData>),
    File(RwLock<FileData>),
    Symlink(Vec<u8>),
    Fifo(Arc<Pipe>),
    /// Character/block devices and sockets.
    Special(Option<DevOpener>),
}

/// A tmpfs node.
pub struct TmpInode {
    fs: Arc<FsInfo>,
    me: Weak<TmpInode>,
    ino: u64,
    meta: Mutex<Meta>,
    kind: Kind,
    xattrs: Mutex<Xattrs>,
}

impl TmpInode {
    fn new(fs: &Arc<FsInfo>, meta: Meta, kind: Kind) -> Arc<TmpInode> {
        Arc::new_cyclic(|me| TmpInode {
            fs: fs.clone(),
            me: me.clone(),
            ino: crate::next_ino(),
            meta: Mutex::new(meta),
            kind,
            xattrs: Mutex::new(Xattrs::default()),
        })
    }

    fn arc(&self) -> Result<Arc<TmpInode>, Errno> {
        self.me.upgrade().ok_or(Errno::ENOENT)
    }

    fn dir(&self) -> Result<&Mutex<DirData>, Errno> {
        match &self.kind {
            Kind::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    fn is_empty_dir(&self) -> bool {
        match &self.kind {
            Kind::Dir(d) => lock(d).children.is_empty(),
            _ => false,
        }
    }

    fn mode(&self) -> u32 {
        lock(&self.meta).mode
    }

    fn same_fs(&self, other: &TmpInode) -> bool {
        Arc::ptr_eq(&self.fs, &other.fs)
    }

    fn downcast(i: &InodeRef) -> Option<&TmpInode> {
        i.as_any().downcast_ref::<TmpInode>()
    }

    /// Data bytes this node holds against the size limit.
    fn cost(&self) -> u64 {
        match &self.kind {
            Kind::Symlink(t) => symlink_cost(t),
            Kind::File(f) => read(f).pages.len() as u64 * PAGE as u64,
            _ => 0,
        }
    }

    /// Add a new child made by `make` under `name` (EEXIST if taken),
    /// charging its cost; the owner comes from `creds`, the group from a
    /// set-gid parent as Linux does.
    fn add_child(
        &self,
        name: &[u8],
        mode: u32,
        rdev: u64,
        creds: &Creds,
        extra_cost: u64,
        kind: Kind,
    ) -> Result<Arc<TmpInode>, Errno> {
        check_name(name)?;
        let dir = self.dir()?;
        let _t = lock(&self.fs.tree);
        let mut d = lock(dir);
        if d.children.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let (pmode, pgid, plinks) = {
            let m = lock(&self.meta);
            (m.mode, m.gid, m.nlink)
        };
        if plinks == 0 {
            // The directory was removed while someone still had it open.
            return Err(Errno::ENOENT);
        }
        let mut mode = mode;
        let gid = if pmode & S_ISGID != 0 {
            if mode & S_IFMT == S_IFDIR {
                mode |= S_ISGID;
            }
            pgid
        } else {
            creds.fsgid
        };
        let is_dir = mode & S_IFMT == S_IFDIR;
        self.fs.reserve_inode()?;
        if let Err(e) = self.fs.charge(extra_cost) {
            self.fs.release_inode();
            return Err(e);
        }
        let child = TmpInode::new(&self.fs, Meta::new(mode, creds.fsuid, gid, if is_dir { 2 } else { 1 }, rdev), kind);
        if let Kind::Dir(cd) = &child.kind {
            lock(cd).parent = self.me.clone();
        }
        d.children.insert(name.to_vec(), child.clone());
        let mut m = lock(&self.meta);
        if is_dir {
            m.nlink += 1;
        }
        m.touch_mc();
        Ok(child)
    }

    /// Add (or replace) a device node `name` whose open calls `open`
    /// (None: the built-in device for `rdev`). `mode` carries the type
    /// (S_IFCHR when none is given) and permission bits.
    pub fn add_node(&self, name: &[u8], mode: u32, rdev: u64, open: Option<DevOpener>) -> Result<InodeRef, Errno> {
        check_name(name)?;
        let mode = if mode & S_IFMT == 0 { S_IFCHR | mode } else { mode };
        if mode & S_IFMT == S_IFDIR {
            return Err(Errno::EINVAL);
        }
        let dir = self.dir()?;
        {
            let _t = lock(&self.fs.tree);
            let mut d = lock(dir);
            if let Some(old) = d.children.get(name) {
                if old.is_dir() {
                    return Err(Errno::EISDIR);
                }
                if let Some(old) = d.children.remove(name) {
                    let mut om = lock(&old.meta);
                    if om.nlink > 1 {
                        self.fs.release_inode();
                    }
                    om.nlink = om.nlink.saturating_sub(1);
                }
            }
        }
        let child = self.add_child(name, mode, rdev, &Creds::root(), 0, Kind::Special(open))?;
        Ok(child)
    }

    /// Whether `anc` is `self` or one of its ancestors (tree lock held).
    fn has_ancestor(&self, anc: &TmpInode) -> bool {
        if std::ptr::eq(self, anc) {
            return true;
        }
        let mut cur = match &self.kind {
            Kind::Dir(d) => lock(d).parent.upgrade(),
            _ => None,
        };
        while let Some(c) = cur {
            if std::ptr::eq(&*c, anc) {
                return true;
            }
            cur = match &c.kind {
                Kind::Dir(d) => lock(d).parent.upgrade(),
                _ => None,
            };
        }
        false
    }

    fn rename_locked(&self, name: &[u8], nd: &TmpInode, new_name: &[u8], flags: u32) -> Result<(), Errno> {
        let src = lock(self.dir()?).children.get(name).cloned().ok_or(Errno::ENOENT)?;
        let dst = lock(nd.dir()?).children.get(new_name).cloned();
        if src.is_dir() && nd.has_ancestor(&src) {
            return Err(Errno::EINVAL);
        }
        if let Some(d) = &dst {
            if d.is_dir() && self.has_ancestor(d) {
                return Err(Errno::ENOTEMPTY);
            }
        }
        let same_dir = std::ptr::eq(self, nd);
        if flags & RENAME_EXCHANGE != 0 {
            let dst = dst.ok_or(Errno::ENOENT)?;
            if Arc::ptr_eq(&src, &dst) {
                return Ok(());
            }
            lock(self.dir()?).children.insert(name.to_vec(), dst.clone());
            lock(nd.dir()?).children.insert(new_name.to_vec(), src.clone());
            if !same_dir {
                for (n, from, to) in [(&src, self, nd), (&dst, nd, self)] {
                    if let Kind::Dir(cd) = &n.kind {
                        lock(cd).parent = to.me.clone();
                        let mut fm = lock(&from.meta);
                        fm.nlink = fm.nlink.saturating_sub(1);
                        drop(fm);
                        lock(&to.meta).nlink += 1;
                    }
                }
            }
            // Each name stays in its directory: the charge for names is unchanged.
            for n in [&src, &dst] {
                lock(&n.meta).ctime = crate::now();
            }
            lock(&self.meta).touch_mc();
            lock(&nd.meta).touch_mc();
            return Ok(());
        }
        if let Some(d) = &dst {
            if Arc::ptr_eq(&src, d) {
                // Two links to one inode: Linux does nothing.
                return Ok(());
            }
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            match (src.is_dir(), d.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !d.is_empty_dir() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        if let Some(d) = lock(nd.dir()?).children.insert(new_name.to_vec(), src.clone()) {
            let mut dm = lock(&d.meta);
            if !d.is_dir() && dm.nlink > 1 {
                self.fs.release_inode();
            }
            if d.is_dir() {
                dm.nlink = 0;
                drop(dm);
                let mut nm = lock(&nd.meta);
                nm.nlink = nm.nlink.saturating_sub(1);
            } else {
                dm.nlink = dm.nlink.saturating_sub(1);
                dm.ctime = crate::now();
            }
        }
        lock(self.dir()?).children.remove(name);
        if src.is_dir() && !same_dir {
            if let Kind::Dir(cd) = &src.kind {
                lock(cd).parent = nd.me.clone();
            }
            let mut sm = lock(&self.meta);
            sm.nlink = sm.nlink.saturating_sub(1);
            drop(sm);
            lock(&nd.meta).nlink += 1;
        }
        lock(&src.meta).ctime = crate::now();
        lock(&self.meta).touch_mc();
        lock(&nd.meta).touch_mc();
        Ok(())
    }
}

impl Drop for TmpInode {
    fn drop(&mut self) {
        self.fs.uncharge(self.cost());
        self.fs.release_inode();
        // Free a directory tree without recursion, however deep it is.
        let mut stack: Vec<Arc<TmpInode>> = match &mut self.kind {
            Kind::Dir(d) => {
                let d = match d.get_mut() {
                    Ok(d) => d,
                    Err(e) => e.into_inner(),
                };
                std::mem::take(&mut d.children).into_values().collect()
            }
            _ => return,
        };
        while let Some(n) = stack.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(n) {
                if let Kind::Dir(d) = &mut inner.kind {
                    let d = match d.get_mut() {
                        Ok(d) => d,
                        Err(e) => e.into_inner(),
                    };
                    stack.extend(std::mem::take(&mut d.children).into_values());
                }
            }
        }
    }
}

impl Inode for TmpInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let (size, blocks) = match &self.kind {
            Kind::File(f) => {
                let f = read(f);
                (f.size as i64, f.pages.len() as i64 * (PAGE as i64 / 512))
            }
            Kind::Dir(d) => ((lock(d).children.len() as i64 + 2) * BOGO_DIRENT_SIZE, 0),
            Kind::Symlink(t) => (t.len() as i64, 0),
            _ => (0, 0),
        };
        let m = lock(&self.meta);
        Ok(Stat {
            st_dev: self.fs.dev,
            st_ino: self.ino,
            st_nlink: m.nlink,
            st_mode: m.mode,
            st_uid: m.uid,
            st_gid: m.gid,
            st_rdev: m.rdev,
            st_size: size,
            st_blksize: PAGE as i64,
            st_blocks: blocks,
            st_atime: m.atime.0,
            st_atime_nsec: m.atime.1,
            st_mtime: m.mtime.0,
            st_mtime_nsec: m.mtime.1,
            st_ctime: m.ctime.0,
            st_ctime_nsec: m.ctime.1,
            ..Default::default()
        })
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        let used = self.fs.used.load(Ordering::Relaxed);
        // An unlimited instance (size=0, nr_inodes=0) reports zeros, as Linux.
        let (blocks, free) = if self.fs.limit >= UNLIMITED - PAGE as u64 {
            (0, 0)
        } else {
            (self.fs.limit / PAGE as u64, self.fs.limit.saturating_sub(used) / PAGE as u64)
        };
        let (files, ffree) = if self.fs.max_inodes == UNLIMITED {
            (0, 0)
        } else {
            (self.fs.max_inodes, self.fs.max_inodes.saturating_sub(self.fs.inodes.load(Ordering::Relaxed)))
        };
        Ok(Statfs {
            f_type: TMPFS_MAGIC,
            f_bsize: PAGE as i64,
            f_blocks: blocks,
            f_bfree: free,
            f_bavail: free,
            f_files: files,
            f_ffree: ffree,
            f_namelen: 255,
            f_frsize: PAGE as i64,
            ..Default::default()
        })
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let dir = self.dir()?;
        check_name(name)?;
        let d = lock(dir);
        d.children.get(name).map(|c| c.clone() as InodeRef).ok_or(Errno::ENOENT)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let d = lock(self.dir()?);
        Ok(d.children
            .iter()
            .map(|(name, c)| DirEntry { ino: c.ino, d_type: dtype_of_mode(c.mode()), name: name.clone() })
            .collect())
    }

    fn create(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<InodeRef, Errno> {
        let c = self.add_child(name, S_IFREG | (mode & 0o7777), 0, creds, 0, Kind::File(RwLock::default()))?;
        Ok(c)
    }

    fn mkdir(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<(), Errno> {
        self.add_child(name, S_IFDIR | (mode & 0o7777), 0, creds, 0, Kind::Dir(Mutex::default()))?;
        Ok(())
    }

    fn mknod(&self, name: &[u8], mode: u32, rdev: u64, creds: &Creds) -> Result<(), Errno> {
        let perm = mode & 0o7777;
        let (kind, rdev) = match mode & S_IFMT {
            0 | S_IFREG => (Kind::File(RwLock::default()), 0),
            S_IFIFO => (Kind::Fifo(Pipe::new()), 0),
            S_IFSOCK => (Kind::Special(None), 0),
            S_IFCHR | S_IFBLK => (Kind::Special(None), rdev),
            S_IFDIR => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        };
        let ty = if mode & S_IFMT == 0 { S_IFREG } else { mode & S_IFMT };
        self.add_child(name, ty | perm, rdev, creds, 0, kind)?;
        Ok(())
    }

    fn symlink(&self, name: &[u8], target: &[u8], creds: &Creds) -> Result<(), Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let cost = symlink_cost(target);
        self.add_child(name, S_IFLNK | 0o777, 0, creds, cost, Kind::Symlink(target.to_vec()))?;
        Ok(())
    }

    fn link(&self, name: &[u8], target: &InodeRef) -> Result<(), Errno> {
        check_name(name)?;
        let dir = self.dir()?;
        let t = Self::downcast(target).ok_or(Errno::EXDEV)?;
        if !self.same_fs(t) {
            return Err(Errno::EXDEV);
        }
        if t.is_dir() {
            return Err(Errno::EPERM);
        }
        let t = t.arc()?;
        let _g = lock(&self.fs.tree);
        let mut d = lock(dir);
        if d.children.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        if lock(&self.meta).nlink == 0 {
            return Err(Errno::ENOENT);
        }
        {
            let mut tm = lock(&t.meta);
            if tm.nlink == 0 {
                return Err(Errno::ENOENT);
            }
            if tm.nlink >= u32::MAX as u64 {
                return Err(Errno::EMLINK);
            }
            // Each link pins a name: Linux's tmpfs counts it as an inode.
            self.fs.reserve_inode()?;
            tm.nlink += 1;
            tm.ctime = crate::now();
        }
        d.children.insert(name.to_vec(), t);
        lock(&self.meta).touch_mc();
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        check_name(name)?;
        let dir = self.dir()?;
        let _g = lock(&self.fs.tree);
        let mut d = lock(dir);
        let c = d.children.get(name).ok_or(Errno::ENOENT)?;
        if c.is_dir() {
            return Err(Errno::EISDIR);
        }
        if let Some(c) = d.children.remove(name) {
            let mut cm = lock(&c.meta);
            if cm.nlink > 1 {
                self.fs.release_inode();
            }
            cm.nlink = cm.nlink.saturating_sub(1);
            cm.ctime = crate::now();
        }
        lock(&self.meta).touch_mc();
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        check_name(name)?;
        let dir = self.dir()?;
        let _g = lock(&self.fs.tree);
        let mut d = lock(dir);
        let c = d.children.get(name).ok_or(Errno::ENOENT)?;
        let cd = c.dir()?;
        if !lock(cd).children.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        if let Some(c) = d.children.remove(name) {
            let mut cm = lock(&c.meta);
            cm.nlink = 0;
            cm.ctime = crate::now();
        }
        let mut m = lock(&self.meta);
        m.nlink = m.nlink.saturating_sub(1);
        m.touch_mc();
        Ok(())
    }

    fn rename(&self, name: &[u8], new_dir: &InodeRef, new_name: &[u8], flags: u32) -> Result<(), Errno> {
        check_name(name)?;
        check_name(new_name)?;
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
            || flags & RENAME_NOREPLACE != 0 && flags & RENAME_EXCHANGE != 0
        {
            return Err(Errno::EINVAL);
        }
        self.dir()?;
        let nd = Self::downcast(new_dir).ok_or(Errno::EXDEV)?;
        if !self.same_fs(nd) {
            return Err(Errno::EXDEV);
        }
        nd.dir()?;
        let _g = lock(&self.fs.tree);
        if lock(&nd.meta).nlink == 0 {
            return Err(Errno::ENOENT);
        }
        self.rename_locked(name, nd, new_name, flags)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.kind {
            Kind::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        if let Some(size) = attr.size {
            match &self.kind {
                Kind::File(f) => {
                    if size > MAX_FILE_SIZE {
                        return Err(Errno::EFBIG);
                    }
                    let mut f = write(f);
                    if f.size != size {
                        f.truncate(&self.fs, size);
                        lock(&self.meta).touch_mc();
                    }
                }
                Kind::Dir(_) => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
        }
        let mut m = lock(&self.meta);
        if let Some(mode) = attr.mode {
            m.mode = (m.mode & S_IFMT) | (mode & 0o7777);
        }
        if let Some(uid) = attr.uid {
            m.uid = uid;
        }
        if let Some(gid) = attr.gid {
            m.gid = gid;
        }
        if let Some(t) = attr.atime {
            m.atime = t;
        }
        if let Some(t) = attr.mtime {
            m.mtime = t;
        }
        m.ctime = crate::now();
        Ok(())
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        lock(&self.xattrs).get(name)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        lock(&self.xattrs).set(name, value, flags)?;
        lock(&self.meta).ctime = crate::now();
        Ok(())
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        Ok(lock(&self.xattrs).list())
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        lock(&self.xattrs).remove(name)?;
        lock(&self.meta).ctime = crate::now();
        Ok(())
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        match &self.kind {
            Kind::Dir(_) => Ok(Arc::new(DirFile)),
            Kind::File(_) => Ok(Arc::new(TmpFile { inode: self.arc()? })),
            Kind::Symlink(_) => Err(Errno::ELOOP),
            Kind::Fifo(p) => p.open_fifo(flags),
            Kind::Special(open) => {
                let (mode, rdev) = {
                    let m = lock(&self.meta);
                    (m.mode, m.rdev)
                };
                match (open, mode & S_IFMT) {
                    (Some(f), _) => f(flags),
                    (None, S_IFCHR) => crate::devfs::open_builtin(rdev, flags),
                    _ => Err(Errno::ENXIO),
                }
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open directory: reading it with read(2) is EISDIR; its entries are
/// listed by the VFS through `Inode::readdir`.
pub(crate) struct DirFile;

impl FileOps for DirFile {
    fn read(&self, _ctx: &IoCtx, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn write(&self, _ctx: &IoCtx, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open tmpfs regular file.
struct TmpFile {
    inode: Arc<TmpInode>,
}

impl TmpFile {
    fn data(&self) -> Result<&RwLock<FileData>, Errno> {
        match &self.inode.kind {
            Kind::File(f) => Ok(f),
            _ => Err(Errno::EINVAL),
        }
    }
}

impl FileOps for TmpFile {
    fn read(&self, _ctx: &IoCtx, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        if off > MAX_FILE_SIZE {
            return Err(Errno::EINVAL);
        }
        Ok(read(self.data()?).read_at(buf, off))
    }

    fn write(&self, ctx: &IoCtx, buf: &[u8], off: u64) -> Result<usize, Errno> {
        if off > MAX_FILE_SIZE {
            return Err(Errno::EINVAL);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let mut data = write(self.data()?);
        // O_APPEND: at the end as it is now, under the lock, so appends
        // through different open files never overwrite each other.
        let off = if ctx.flags & O_APPEND != 0 { data.size } else { off };
        let room = MAX_FILE_SIZE - off;
        if room == 0 {
            return Err(Errno::EFBIG);
        }
        let buf = &buf[..buf.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        let n = data.write_at(&self.inode.fs, buf, off)?;
        drop(data);
        lock(&self.inode.meta).touch_mc();
        Ok(n)
    }

    fn size(&self) -> Result<u64, Errno> {
        Ok(read(self.data()?).size)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::Interrupt;
    use abi::flags::{O_RDONLY, O_RDWR, O_WRONLY};

    fn ctx(irq: &Interrupt) -> IoCtx<'_> {
        IoCtx { flags: 0, interrupt: irq }
    }

    fn names(d: &InodeRef) -> Vec<Vec<u8>> {
        d.readdir().unwrap().into_iter().map(|e| e.name).collect()
    }

    #[test]
    fn files_holes_truncate() {
        let irq = Interrupt::default();
        let root = TmpFs::new_root(0o755, 0, 0);
        let user = Creds::new(1000, 100, vec![]);
        let f = root.create(b"f", S_IFREG | 0o640, &user).unwrap();
        let st = f.stat().unwrap();
        assert_eq!((st.st_mode, st.st_uid, st.st_gid, st.st_nlink), (S_IFREG | 0o640, 1000, 100, 1));
        assert_eq!(root.create(b"f", 0o600, &user).err(), Some(Errno::EEXIST));
        let fo = f.open(O_RDWR).unwrap();
        assert_eq!(fo.write(&ctx(&irq), b"abc", 10_000), Ok(3));
        assert_eq!(fo.size(), Ok(10_003));
        let mut b = vec![9u8; 20_000];
        assert_eq!(fo.read(&ctx(&irq), &mut b, 0), Ok(10_003));
        assert!(b[..10_000].iter().all(|&x| x == 0));
        assert_eq!(&b[10_000..10_003], b"abc");
        assert_eq!(f.stat().unwrap().st_blocks, 8);
        // Truncate into the middle, then extend: the tail reads as zeros.
        f.setattr(&SetAttr { size: Some(10_001), ..Default::default() }).unwrap();
        f.setattr(&SetAttr { size: Some(10_003), ..Default::default() }).unwrap();
        assert_eq!(fo.read(&ctx(&irq), &mut b[..3], 10_000), Ok(3));
        assert_eq!(&b[..3], b"a\0\0");
        // A huge sparse size costs nothing.
        f.setattr(&SetAttr { size: Some(1 << 50), ..Default::default() }).unwrap();
        assert_eq!(fo.size(), Ok(1 << 50));
        assert_eq!(f.setattr(&SetAttr { size: Some(u64::MAX), ..Default::default() }), Err(Errno::EFBIG));
        assert_eq!(root.setattr(&SetAttr { size: Some(0), ..Default::default() }), Err(Errno::EISDIR));
        assert_eq!(fo.write(&ctx(&irq), b"x", MAX_FILE_SIZE), Err(Errno::EFBIG));
        // O_APPEND writes at the current end whatever offset is given.
        f.setattr(&SetAttr { size: Some(2), ..Default::default() }).unwrap();
        let app = IoCtx { flags: O_APPEND, interrupt: &irq };
        assert_eq!(fo.write(&app, b"yz", 0), Ok(2));
        assert_eq!(fo.read(&ctx(&irq), &mut b[..4], 0), Ok(4));
        assert_eq!(&b[..4], b"\0\0yz");
    }

    #[test]
    fn size_counts_pages_and_inodes_count_links() {
        let irq = Interrupt::default();
        let root = TmpFs::new_root_sized(0o755, 0, 0, 16 * 4096, 4);
        let st = root.statfs().unwrap();
        assert_eq!((st.f_blocks, st.f_bfree, st.f_files, st.f_ffree), (16, 16, 4, 3));
        let c = Creds::root();
        let f = root.create(b"f", 0o644, &c).unwrap();
        // Exactly the size fits: data pages only count.
        let fo = f.open(O_WRONLY).unwrap();
        assert_eq!(fo.write(&ctx(&irq), &[1u8; 16 * 4096], 0), Ok(16 * 4096));
        assert_eq!(fo.write(&ctx(&irq), &[1u8; 1], 16 * 4096), Err(Errno::ENOSPC));
        assert_eq!(root.statfs().unwrap().f_bfree, 0);
        // A hard link is an inode's worth; then nothing more fits.
        root.link(b"l", &f).unwrap();
        root.mkdir(b"d", 0o755, &c).unwrap();
        assert_eq!(root.statfs().unwrap().f_ffree, 0);
        assert_eq!(root.create(b"g", 0o644, &c).err(), Some(Errno::ENOSPC));
        assert_eq!(root.link(b"l2", &f), Err(Errno::ENOSPC));
        // Removing the extra link gives its inode back.
        root.unlink(b"l").unwrap();
        assert_eq!(root.statfs().unwrap().f_ffree, 1);
        drop(fo);
        root.unlink(b"f").unwrap();
        drop(f);
        let st = root.statfs().unwrap();
        assert_eq!((st.f_bfree, st.f_ffree), (16, 2));
        // size=0 and nr_inodes=0: unlimited, reported as zeros.
        let free = TmpFs::new_root_sized(0o755, 0, 0, UNLIMITED, UNLIMITED);
        let st = free.statfs().unwrap();
        assert_eq!((st.f_blocks, st.f_files), (0, 0));
    }

    #[test]
    fn size_limit_enospc() {
        let irq = Interrupt::default();
        let root = TmpFs::new_root_with_limit(0o755, 0, 0, 64 * 1024);
        let f = root.create(b"f", 0o644, &Creds::root()).unwrap();
        let fo = f.open(O_WRONLY).unwrap();
        let big = vec![1u8; 128 * 1024];
        let n = fo.write(&ctx(&irq), &big, 0).unwrap();
        assert!(n > 0 && n < big.len());
        assert_eq!(fo.write(&ctx(&irq), &big, n as u64), Err(Errno::ENOSPC));
        let before = root.statfs().unwrap().f_bfree;
        drop(fo);
        root.unlink(b"f").unwrap();
        drop(f);
        assert!(root.statfs().unwrap().f_bfree > before);
        // Space is back: a new file can be written again.
        let g = root.create(b"g", 0o644, &Creds::root()).unwrap();
        assert_eq!(g.open(O_WRONLY).unwrap().write(&ctx(&irq), &big[..8192], 0), Ok(8192));
    }

    #[test]
    fn unlinked_open_file_keeps_data() {
        let irq = Interrupt::default();
        let root = TmpFs::new_root(0o755, 0, 0);
        let f = root.create(b"f", 0o644, &Creds::root()).unwrap();
        let fo = f.open(O_RDWR).unwrap();
        drop(f);
        fo.write(&ctx(&irq), b"data", 0).unwrap();
        root.unlink(b"f").unwrap();
        assert_eq!(root.lookup(b"f").err(), Some(Errno::ENOENT));
        let mut b = [0u8; 4];
        assert_eq!(fo.read(&ctx(&irq), &mut b, 0), Ok(4));
        assert_eq!(&b, b"data");
    }

    #[test]
    fn dirs_links_nlink() {
        let root = TmpFs::new_root(0o1777, 0, 0);
        let c = Creds::root();
        root.mkdir(b"d", 0o755, &c).unwrap();
        assert_eq!(root.stat().unwrap().st_nlink, 3);
        assert_eq!(root.mkdir(b"d", 0o755, &c), Err(Errno::EEXIST));
        let d = root.lookup(b"d").unwrap();
        assert_eq!(d.stat().unwrap().st_mode, S_IFDIR | 0o755);
        let f = d.create(b"f", 0o644, &c).unwrap();
        root.link(b"hard", &f).unwrap();
        assert_eq!(f.stat().unwrap().st_nlink, 2);
        assert_eq!(root.link(b"dl", &d), Err(Errno::EPERM));
        assert_eq!(root.rmdir(b"d"), Err(Errno::ENOTEMPTY));
        assert_eq!(root.unlink(b"d"), Err(Errno::EISDIR));
        assert_eq!(root.rmdir(b"hard"), Err(Errno::ENOTDIR));
        d.unlink(b"f").unwrap();
        assert_eq!(f.stat().unwrap().st_nlink, 1);
        root.rmdir(b"d").unwrap();
        assert_eq!(root.stat().unwrap().st_nlink, 2);
        assert_eq!(d.stat().unwrap().st_nlink, 0);
        assert_eq!(d.create(b"x", 0o644, &c).err(), Some(Errno::ENOENT));
        assert_eq!(f.lookup(b"x").err(), Some(Errno::ENOTDIR));
        assert_eq!(root.lookup(b"..").err(), Some(Errno::EINVAL));
        // set-gid directories pass their group on.
        root.mkdir(b"g", 0o2775, &Creds::new(0, 50, vec![])).unwrap();
        let g = root.lookup(b"g").unwrap();
        let u = Creds::new(1000, 1000, vec![]);
        g.mkdir(b"sub", 0o755, &u).unwrap();
        let sub = g.lookup(b"sub").unwrap().stat().unwrap();
        assert_eq!((sub.st_gid, sub.st_mode & 0o7777), (50, 0o2755));
        let other = TmpFs::new_root(0o755, 0, 0);
        assert_eq!(other.link(b"x", &root.lookup(b"hard").unwrap()), Err(Errno::EXDEV));
    }

    #[test]
    fn rename_semantics() {
        let root = TmpFs::new_root(0o755, 0, 0);
        let c = Creds::root();
        root.mkdir(b"a", 0o755, &c).unwrap();
        root.mkdir(b"b", 0o755, &c).unwrap();
        let a = root.lookup(b"a").unwrap();
        let b = root.lookup(b"b").unwrap();
        a.create(b"f", 0o644, &c).unwrap();
        b.create(b"g", 0o644, &c).unwrap();
        // Move a file across directories, replacing nothing.
        a.rename(b"f", &b, b"f2", 0).unwrap();
        assert_eq!(names(&a), Vec::<Vec<u8>>::new());
        assert_eq!(names(&b), vec![b"f2".to_vec(), b"g".to_vec()]);
        assert_eq!(b.rename(b"f2", &b, b"g", RENAME_NOREPLACE), Err(Errno::EEXIST));
        let g = b.lookup(b"g").unwrap();
        b.rename(b"f2", &b, b"g", 0).unwrap();
        assert_eq!(g.stat().unwrap().st_nlink, 0);
        assert_eq!(names(&b), vec![b"g".to_vec()]);
        // Directory into its own subtree.
        a.mkdir(b"sub", 0o755, &c).unwrap();
        let sub = a.lookup(b"sub").unwrap();
        assert_eq!(root.rename(b"a", &sub, b"x", 0), Err(Errno::EINVAL));
        assert_eq!(root.rename(b"a", &a, b"x", 0), Err(Errno::EINVAL));
        // Directory over file and file over directory.
        assert_eq!(a.rename(b"sub", &b, b"g", 0), Err(Errno::ENOTDIR));
        assert_eq!(b.rename(b"g", &a, b"sub", 0), Err(Errno::EISDIR));
        // Directory over a non-empty directory, then over an empty one.
        assert_eq!(root.rename(b"b", &root, b"a", 0), Err(Errno::ENOTEMPTY));
        b.unlink(b"g").unwrap();
        a.rename(b"sub", &root, b"b", 0).unwrap();
        assert_eq!(names(&root), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(root.stat().unwrap().st_nlink, 4);
        assert_eq!(a.stat().unwrap().st_nlink, 2);
        // Exchange a directory and a file.
        a.create(b"h", 0o644, &c).unwrap();
        a.rename(b"h", &root, b"b", RENAME_EXCHANGE).unwrap();
        assert!(crate::util::is_dir(&a.lookup(b"h").unwrap().stat().unwrap()));
        assert_eq!(root.lookup(b"b").unwrap().stat().unwrap().st_mode & S_IFMT, S_IFREG);
        assert_eq!(a.stat().unwrap().st_nlink, 3);
        assert_eq!(root.stat().unwrap().st_nlink, 3);
        assert_eq!(a.rename(b"nope", &root, b"b", RENAME_EXCHANGE), Err(Errno::ENOENT));
        assert_eq!(a.rename(b"h", &root, b"b", RENAME_EXCHANGE | RENAME_NOREPLACE), Err(Errno::EINVAL));
        let other = TmpFs::new_root(0o755, 0, 0);
        assert_eq!(root.rename(b"b", &other, b"b", 0), Err(Errno::EXDEV));
    }

    #[test]
    fn symlinks_fifos_devices() {
        let irq = Interrupt::default();
        let root = TmpFs::new_root(0o755, 0, 0);
        let c = Creds::root();
        root.symlink(b"l", b"../x", &c).unwrap();
        let l = root.lookup(b"l").unwrap();
        assert_eq!(l.readlink().unwrap(), b"../x");
        assert_eq!(l.stat().unwrap().st_mode, S_IFLNK | 0o777);
        assert_eq!(root.symlink(b"e", b"", &c), Err(Errno::ENOENT));
        assert_eq!(l.open(O_RDONLY).err(), Some(Errno::ELOOP));
        root.mknod(b"p", S_IFIFO | 0o644, 0, &c).unwrap();
        let p = root.lookup(b"p").unwrap();
        let w = p.open(O_RDWR).unwrap();
        w.write(&ctx(&irq), b"hi", 0).unwrap();
        let r = p.open(O_RDONLY | abi::flags::O_NONBLOCK).unwrap();
        let mut b = [0u8; 2];
        assert_eq!(r.read(&ctx(&irq), &mut b, 0), Ok(2));
        root.mknod(b"null", S_IFCHR | 0o666, crate::makedev(1, 3), &c).unwrap();
        let n = root.lookup(b"null").unwrap();
        assert_eq!(n.stat().unwrap().st_rdev, crate::makedev(1, 3));
        assert_eq!(n.open(O_RDWR).unwrap().write(&ctx(&irq), b"xyz", 0), Ok(3));
        root.mknod(b"sda", S_IFBLK | 0o666, crate::makedev(8, 0), &c).unwrap();
        assert_eq!(root.lookup(b"sda").unwrap().open(O_RDONLY).err(), Some(Errno::ENXIO));
        root.mknod(b"s", S_IFSOCK | 0o666, 0, &c).unwrap();
        assert_eq!(root.lookup(b"s").unwrap().open(O_RDONLY).err(), Some(Errno::ENXIO));
        assert_eq!(root.mknod(b"d", S_IFDIR | 0o666, 0, &c), Err(Errno::EPERM));
    }

    #[test]
    fn deep_tree_drops_without_recursion() {
        let root = TmpFs::new_root(0o755, 0, 0);
        let mut cur = root.clone();
        for _ in 0..100_000 {
            cur.mkdir(b"d", 0o755, &Creds::root()).unwrap();
            cur = cur.lookup(b"d").unwrap();
        }
        drop(cur);
        drop(root);
    }
}
