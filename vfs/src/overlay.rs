//! A union of a read-only lower tree (usually a [`crate::hostfs`] root)
//! and a writable upper tree (usually a [`crate::tmpfs`]), with the
//! semantics of Linux overlayfs:
//!
//! - lookup prefers the upper entry; a directory present in both layers is
//!   merged (unless the upper one is opaque); a non-directory in upper
//!   hides whatever lower has under that name;
//! - readdir merges both layers, upper first, hiding whiteouts;
//! - reads of a lower file never copy it; opening a regular file for
//!   writing, setattr, link and rename copy it up first (parents are
//!   copied up as directories with the same mode, owner and times);
//! - unlink/rmdir/rename away from a name lower still has leave a
//!   whiteout; mkdir over a whiteout makes an opaque directory;
//! - renaming a directory that exists in lower copies up the directory
//!   alone and records a redirect (overlayfs's redirect_dir): wherever it
//!   moves, it keeps merging with its own lower directory, and nothing
//!   below it is copied (a guest never sees EXDEV);
//! - a copied-up node keeps its lower inode number (`OvFs::origins`), so
//!   hard links made after a copy-up share st_ino with the first name;
//! - extended attributes live on the upper node (copied up with the
//!   data); the overlay keeps none of its own (no trusted.overlay.*).
//!
//! Whiteouts and opaque markers are kept in memory, per overlay, keyed by
//! the upper directory's (st_dev, st_ino): they follow the directory
//! through renames and need nothing from the upper filesystem.
//!
//! Nodes are cached per directory (weakly), so every live path has one
//! [`OvInode`]; a copy-up done through one dentry is seen through all.
//! st_dev is the overlay's own; st_ino is the lower inode number when
//! there is a lower node (so it stays the same across copy-up), else the
//! upper one with bit 62 set.

use crate::inode::{DirEntry, FileOps, Inode, InodeRef, SetAttr};
use crate::util::{anon_dev, check_name, is_dir, lock, read, write};
use crate::wait::{Interrupt, IoCtx};
use crate::Creds;
use abi::flags::{O_ACCMODE, O_RDONLY, O_WRONLY, RENAME_EXCHANGE, RENAME_NOREPLACE, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::{Errno, Stat, Statfs};
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

/// Marks upper-only inode numbers so they cannot collide with lower ones.
const UPPER_INO_BIT: u64 = 1 << 62;
/// The copy-up buffer.
const COPY_CHUNK: usize = 64 * 1024;

/// Constructor for overlay roots.
pub struct Overlay;

impl Overlay {
    /// The union of `lower` (never written) and `upper` (takes every
    /// change). Both must be directories.
    // The name the Sentry calls; an overlay root is only ever used as an InodeRef.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(lower: InodeRef, upper: InodeRef) -> InodeRef {
        let fs = Arc::new(OvFs {
            dev: anon_dev(),
            marks: Mutex::new(HashMap::new()),
            ns: Mutex::new(()),
            upper_root: upper.clone(),
            lower_root: lower.clone(),
            origins: Mutex::new(HashMap::new()),
            redirects: Mutex::new(HashMap::new()),
        });
        let ino = lower.stat().map(|s| s.st_ino).unwrap_or(1);
        let upper_key = upper.stat().ok().map(|s| (s.st_dev, s.st_ino));
        Arc::new_cyclic(|me| OvInode {
            fs,
            me: me.clone(),
            ino,
            is_dir: true,
            link: Mutex::new(None),
            layers: RwLock::new(Layers { upper: Some(upper), upper_key, lower: Some(lower) }),
            children: Mutex::new(Cache::default()),
        })
    }
}

#[derive(Default)]
struct Marks {
    opaque: bool,
    whiteouts: HashSet<Vec<u8>>,
}

struct OvFs {
    dev: u64,
    /// Whiteouts and opacity per upper directory.
    marks: Mutex<HashMap<(u64, u64), Marks>>,
    /// Serialises every change (and copy-up) in this overlay.
    ns: Mutex<()>,
    /// The upper layer's root: statfs reports its free space (as
    /// overlayfs does), which is where every write goes, never the lower
    /// one's.
    upper_root: InodeRef,
    /// The lower layer's root: its use counts as used in statfs.
    lower_root: InodeRef,
    /// Upper inode number → the lower inode number it was copied up
    /// from: every name of a copied-up node (hard links, renamed
    /// directories) shows the original st_ino. Dropped with the upper
    /// node's last link.
    origins: Mutex<HashMap<u64, u64>>,
    /// Upper directories moved away from their lower directory's name:
    /// that lower directory, which each merges with instead of the one
    /// (if any) lower has under its current name.
    redirects: Mutex<HashMap<(u64, u64), InodeRef>>,
}

impl OvFs {
    fn is_opaque(&self, key: Option<(u64, u64)>) -> bool {
        key.is_some_and(|k| lock(&self.marks).get(&k).is_some_and(|m| m.opaque))
    }

    /// (opaque, `name` whited out) for the upper directory `key`.
    fn hidden(&self, key: Option<(u64, u64)>, name: &[u8]) -> (bool, bool) {
        match key {
            Some(k) => match lock(&self.marks).get(&k) {
                Some(m) => (m.opaque, m.whiteouts.contains(name)),
                None => (false, false),
            },
            None => (false, false),
        }
    }

    fn add_whiteout(&self, key: (u64, u64), name: &[u8]) {
        lock(&self.marks).entry(key).or_default().whiteouts.insert(name.to_vec());
    }

    fn set_opaque(&self, key: (u64, u64)) {
        lock(&self.marks).entry(key).or_default().opaque = true;
    }

    /// The lower directory `upper` (an upper directory) was moved from.
    fn redirected(&self, upper: &InodeRef) -> Result<Option<InodeRef>, Errno> {
        if lock(&self.redirects).is_empty() {
            return Ok(None);
        }
        let st = upper.stat()?;
        if !is_dir(&st) {
            return Ok(None);
        }
        Ok(lock(&self.redirects).get(&key_of(&st)).cloned())
    }

    fn set_redirect(&self, key: (u64, u64), lower: InodeRef) {
        lock(&self.redirects).insert(key, lower);
    }

    fn origin(&self, upper_ino: u64) -> Option<u64> {
        lock(&self.origins).get(&upper_ino).copied()
    }

    /// The upper node `upper` lost a link: forget its origin with the last.
    fn unlinked(&self, upper: &InodeRef) {
        if let Ok(st) = upper.stat() {
            if st.st_nlink == 0 || is_dir(&st) {
                lock(&self.origins).remove(&st.st_ino);
            }
        }
    }

    fn forget(&self, key: Option<(u64, u64)>) {
        if let Some(k) = key {
            lock(&self.marks).remove(&k);
            // Dropped outside the lock: it may be the lower node's last reference.
            let gone = lock(&self.redirects).remove(&k);
            drop(gone);
        }
    }
}

struct Layers {
    upper: Option<InodeRef>,
    /// (st_dev, st_ino) of `upper`, for directories.
    upper_key: Option<(u64, u64)>,
    /// The lower node (for a non-directory with an upper node too: its
    /// copy-up origin, kept for the inode number).
    lower: Option<InodeRef>,
}

/// Weak references to the live children of a directory.
#[derive(Default)]
struct Cache {
    map: HashMap<Vec<u8>, Weak<OvInode>>,
    live_at_sweep: usize,
}

impl Cache {
    fn get(&self, name: &[u8]) -> Option<Arc<OvInode>> {
        self.map.get(name).and_then(Weak::upgrade)
    }

    fn insert(&mut self, name: &[u8], n: &Arc<OvInode>) {
        if self.map.len() >= 64 && self.map.len() >= 2 * self.live_at_sweep {
            self.map.retain(|_, w| w.strong_count() > 0);
            self.live_at_sweep = self.map.len();
        }
        self.map.insert(name.to_vec(), Arc::downgrade(n));
    }

    fn remove(&mut self, name: &[u8]) -> Option<Arc<OvInode>> {
        self.map.remove(name).and_then(|w| w.upgrade())
    }
}

/// A node of the union.
pub struct OvInode {
    fs: Arc<OvFs>,
    me: Weak<OvInode>,
    ino: u64,
    is_dir: bool,
    /// Parent and name (None for the root and for removed nodes).
    link: Mutex<Option<(Arc<OvInode>, Vec<u8>)>>,
    layers: RwLock<Layers>,
    children: Mutex<Cache>,
}

fn key_of(st: &Stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

/// Ok(None) for ENOENT.
fn found<T>(r: Result<T, Errno>) -> Result<Option<T>, Errno> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write all of `buf` at `off`.
fn write_all(f: &dyn FileOps, ctx: &IoCtx, mut buf: &[u8], mut off: u64) -> Result<(), Errno> {
    while !buf.is_empty() {
        let n = f.write(ctx, buf, off)?;
        if n == 0 {
            return Err(Errno::EIO);
        }
        buf = &buf[n.min(buf.len())..];
        off += n as u64;
    }
    Ok(())
}

impl OvInode {
    fn new_child(
        parent: &Arc<OvInode>,
        name: &[u8],
        upper: Option<InodeRef>,
        lower: Option<InodeRef>,
    ) -> Result<Arc<OvInode>, Errno> {
        let real = upper.as_ref().or(lower.as_ref()).ok_or(Errno::ENOENT)?;
        let st = real.stat()?;
        let dir = is_dir(&st);
        let ino = match (&lower, &upper) {
            (Some(l), Some(_)) => l.stat()?.st_ino,
            (Some(_), None) => st.st_ino,
            (None, _) => parent.fs.origin(st.st_ino).unwrap_or(st.st_ino | UPPER_INO_BIT),
        };
        let upper_key = if dir && upper.is_some() { Some(key_of(&st)) } else { None };
        Ok(Arc::new_cyclic(|me| OvInode {
            fs: parent.fs.clone(),
            me: me.clone(),
            ino,
            is_dir: dir,
            link: Mutex::new(Some((parent.clone(), name.to_vec()))),
            layers: RwLock::new(Layers { upper, upper_key, lower }),
            children: Mutex::new(Cache::default()),
        }))
    }

    fn arc(&self) -> Result<Arc<OvInode>, Errno> {
        self.me.upgrade().ok_or(Errno::ENOENT)
    }

    fn upper(&self) -> Option<InodeRef> {
        read(&self.layers).upper.clone()
    }

    fn real(&self) -> Result<InodeRef, Errno> {
        let l = read(&self.layers);
        l.upper.clone().or_else(|| l.lower.clone()).ok_or(Errno::ENOENT)
    }

    fn has_lower(&self) -> bool {
        read(&self.layers).lower.is_some()
    }

    fn downcast(i: &InodeRef) -> Option<&OvInode> {
        i.as_any().downcast_ref::<OvInode>()
    }

    fn same_fs(&self, o: &OvInode) -> bool {
        Arc::ptr_eq(&self.fs, &o.fs)
    }

    fn parent(&self) -> Option<Arc<OvInode>> {
        lock(&self.link).as_ref().map(|(p, _)| p.clone())
    }

    /// The child `name`, from the cache or built from both layers. The
    /// caller holds this directory's cache lock.
    fn lookup_in(&self, cache: &mut Cache, name: &[u8]) -> Result<Arc<OvInode>, Errno> {
        check_name(name)?;
        if !self.is_dir {
            return Err(Errno::ENOTDIR);
        }
        if let Some(c) = cache.get(name) {
            // A node only the host layer has may have gone or been
            // replaced on the host (revalidated as that mount's policy
            // says); one with an upper part is the sandbox's own.
            let host_only = {
                let l = read(&c.layers);
                l.upper.is_none() && l.lower.as_ref().is_some_and(|lo| lo.is_stale())
            };
            if !host_only {
                return Ok(c);
            }
            let gone = cache.remove(name);
            drop(gone);
        }
        let (upper, lower) = {
            let l = read(&self.layers);
            let (opaque, whiteout) = self.fs.hidden(l.upper_key, name);
            let u = match &l.upper {
                Some(u) => found(u.lookup(name))?,
                None => None,
            };
            let redirect = match &u {
                Some(u) => self.fs.redirected(u)?,
                None => None,
            };
            let lo = match (&l.lower, redirect) {
                (_, Some(r)) => Some(r),
                (Some(lo), None) if !opaque && !whiteout => found(lo.lookup(name))?,
                _ => None,
            };
            (u, lo)
        };
        let (upper, lower) = match (upper, lower) {
            (None, None) => return Err(Errno::ENOENT),
            (Some(u), Some(l)) => {
                let ust = u.stat()?;
                let lst = l.stat()?;
                let same_type = ust.st_mode & S_IFMT == lst.st_mode & S_IFMT;
                if !same_type || is_dir(&ust) && self.fs.is_opaque(Some(key_of(&ust))) {
                    (Some(u), None)
                } else {
                    (Some(u), Some(l))
                }
            }
            other => other,
        };
        let node = OvInode::new_child(&self.arc()?, name, upper, lower)?;
        cache.insert(name, &node);
        Ok(node)
    }

    /// Whether the lower directory (seen through this one) has `name`.
    fn lower_has(&self, name: &[u8]) -> bool {
        let l = read(&self.layers);
        if self.fs.is_opaque(l.upper_key) {
            return false;
        }
        match &l.lower {
            Some(lo) => lo.lookup(name).is_ok(),
            None => false,
        }
    }

    /// Make sure this node has an upper copy (and so do its parents);
    /// the caller holds the overlay's change lock.
    fn copy_up(&self) -> Result<InodeRef, Errno> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        // Ancestors without an upper copy, nearest first; walked up
        // iteratively, copied down in order.
        let mut chain = vec![self.arc()?];
        loop {
            let top = chain.last().ok_or(Errno::EIO)?;
            let parent = top.parent().ok_or(Errno::ENOENT)?;
            if parent.upper().is_some() {
                break;
            }
            chain.push(parent);
        }
        for n in chain.iter().rev() {
            n.copy_up_one()?;
        }
        self.upper().ok_or(Errno::EIO)
    }

    /// Copy this node (whose parent has an upper copy) up.
    fn copy_up_one(&self) -> Result<(), Errno> {
        if self.upper().is_some() {
            return Ok(());
        }
        let (parent, name) = lock(&self.link).clone().ok_or(Errno::ENOENT)?;
        let pupper = parent.upper().ok_or(Errno::EIO)?;
        let lower = read(&self.layers).lower.clone().ok_or(Errno::EIO)?;
        let st = lower.stat()?;
        let creds = Creds::new(st.st_uid, st.st_gid, Vec::new());
        let perm = st.st_mode & 0o7777;
        let kind = st.st_mode & S_IFMT;
        let upper = match kind {
            S_IFDIR => {
                match pupper.mkdir(&name, perm, &creds) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                pupper.lookup(&name)?
            }
            S_IFREG => {
                let u = pupper.create(&name, S_IFREG | perm, &creds)?;
                if let Err(e) = copy_data(&*lower, &*u, st.st_size.max(0) as u64) {
                    let _ = pupper.unlink(&name);
                    return Err(e);
                }
                u
            }
            S_IFLNK => {
                pupper.symlink(&name, &lower.readlink()?, &creds)?;
                pupper.lookup(&name)?
            }
            _ => {
                pupper.mknod(&name, st.st_mode, st.st_rdev, &creds)?;
                pupper.lookup(&name)?
            }
        };
        let attr = SetAttr {
            mode: (kind != S_IFLNK).then_some(perm),
            uid: Some(st.st_uid),
            gid: Some(st.st_gid),
            size: None,
            atime: Some((st.st_atime, st.st_atime_nsec)),
            mtime: Some((st.st_mtime, st.st_mtime_nsec)),
        };
        let _ = upper.setattr(&attr);
        copy_xattrs(&*lower, &*upper);
        let ust = upper.stat()?;
        lock(&self.fs.origins).insert(ust.st_ino, st.st_ino);
        let key = if kind == S_IFDIR { Some(key_of(&ust)) } else { None };
        let mut l = write(&self.layers);
        l.upper = Some(upper);
        l.upper_key = key;
        Ok(())
    }

    /// Before a directory with a lower part moves: copy it up (alone) and
    /// tie its upper directory to its lower one, wherever it goes.
    fn redirect_up(&self) -> Result<(), Errno> {
        self.copy_up()?;
        let l = read(&self.layers);
        if let (Some(k), Some(lo)) = (l.upper_key, l.lower.clone()) {
            self.fs.set_redirect(k, lo);
        }
        Ok(())
    }

    /// Lock the change lock and this directory's cache.
    fn lock_dir(&self) -> Result<(MutexGuard<'_, ()>, MutexGuard<'_, Cache>), Errno> {
        if !self.is_dir {
            return Err(Errno::ENOTDIR);
        }
        let ns = lock(&self.fs.ns);
        Ok((ns, lock(&self.children)))
    }

    /// Common part of create/mkdir/mknod/symlink: `make` creates `name`
    /// in the upper directory.
    fn create_with(&self, name: &[u8], make: impl FnOnce(&InodeRef) -> Result<(), Errno>) -> Result<(), Errno> {
        check_name(name)?;
        let (_ns, mut cache) = self.lock_dir()?;
        match self.lookup_in(&mut cache, name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let pu = self.copy_up()?;
        make(&pu)
    }

    /// Detach a node that no longer has a name.
    fn detach(&self) {
        *lock(&self.link) = None;
    }

    /// Whether `anc` is this node or one of its ancestors.
    fn has_ancestor(&self, anc: &OvInode) -> bool {
        if std::ptr::eq(self, anc) {
            return true;
        }
        let mut cur = self.parent();
        while let Some(c) = cur {
            if std::ptr::eq(&*c, anc) {
                return true;
            }
            cur = c.parent();
        }
        false
    }

    fn is_empty_dir(&self) -> Result<bool, Errno> {
        Ok(self.readdir()?.is_empty())
    }

    fn rename_exchange(
        &self,
        cache: &mut Cache,
        name: &[u8],
        nd: &OvInode,
        ncache: Option<&mut Cache>,
        new_name: &[u8],
    ) -> Result<(), Errno> {
        let src = self.lookup_in(cache, name)?;
        let dst = match ncache {
            Some(nc) => nd.lookup_in(nc, new_name)?,
            None => self.lookup_in(cache, new_name)?,
        };
        if Arc::ptr_eq(&src, &dst) {
            return Ok(());
        }
        if src.is_dir && nd.has_ancestor(&src) || dst.is_dir && self.has_ancestor(&dst) {
            return Err(Errno::EINVAL);
        }
        for n in [&src, &dst] {
            if n.is_dir && n.has_lower() {
                n.redirect_up()?;
            }
        }
        src.copy_up()?;
        dst.copy_up()?;
        let pu = self.copy_up()?;
        let npu = nd.copy_up()?;
        pu.rename(name, &npu, new_name, RENAME_EXCHANGE)?;
        // A redirected directory merges with its own lower one only; an
        // upper-only one must hide whatever lower has at its new name.
        for (n, d, nm) in [(&src, nd, new_name), (&dst, self, name)] {
            if n.is_dir && !n.has_lower() && d.lower_has(nm) {
                if let Some(k) = read(&n.layers).upper_key {
                    self.fs.set_opaque(k);
                }
            }
        }
        Ok(())
    }
}

/// Names the overlay never shows or copies: overlayfs's own markers (a
/// lower layer that is itself an upper of some overlay has them).
fn overlay_private(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.")
}

/// Copy the extended attributes the upper filesystem can keep; others
/// (a host's namespaces tmpfs does not have) are left behind, as
/// overlayfs does with EOPNOTSUPP.
fn copy_xattrs(lower: &dyn Inode, upper: &dyn Inode) {
    let Ok(names) = lower.listxattr() else { return };
    for n in names.iter().filter(|n| !overlay_private(n)) {
        if let Ok(v) = lower.getxattr(n) {
            let _ = upper.setxattr(n, &v, 0);
        }
    }
}

/// Copy the contents of `lower` into the new upper file `upper`, keeping
/// holes (all-zero chunks are skipped and the size set at the end).
fn copy_data(lower: &dyn Inode, upper: &dyn Inode, size: u64) -> Result<(), Errno> {
    let irq = Interrupt::default();
    let ctx = IoCtx { flags: 0, interrupt: &irq };
    let src = lower.open(O_RDONLY)?;
    let dst = upper.open(O_WRONLY)?;
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut off = 0u64;
    let r = (|| {
        loop {
            let n = src.read(&ctx, &mut buf, off)?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n.min(buf.len())];
            if chunk.iter().any(|&b| b != 0) {
                write_all(&*dst, &ctx, chunk, off)?;
            }
            off += n as u64;
        }
        if off != size || dst.size()? != off {
            upper.setattr(&SetAttr { size: Some(off), ..Default::default() })?;
        }
        Ok(())
    })();
    src.release();
    dst.release();
    r
}

impl Drop for OvInode {
    fn drop(&mut self) {
        // Release the parent chain iteratively, however deep it is.
        let mut next = match self.link.get_mut() {
            Ok(l) => l.take(),
            Err(e) => e.into_inner().take(),
        };
        while let Some((p, _)) = next {
            next = match Arc::try_unwrap(p) {
                Ok(mut inner) => match inner.link.get_mut() {
                    Ok(l) => l.take(),
                    Err(e) => e.into_inner().take(),
                },
                Err(_) => None,
            };
        }
    }
}

impl Inode for OvInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let (real, merged) = {
            let l = read(&self.layers);
            let real = l.upper.clone().or_else(|| l.lower.clone()).ok_or(Errno::ENOENT)?;
            (real, self.is_dir && l.upper.is_some() && l.lower.is_some())
        };
        let mut st = real.stat()?;
        st.st_dev = self.fs.dev;
        st.st_ino = self.ino;
        if merged {
            // As overlayfs: a merged directory's link count is unknown.
            st.st_nlink = 1;
        }
        Ok(st)
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        let mut s = self.fs.upper_root.statfs()?;
        // A bounded writable layer: free space is what may still be
        // written there, and what the lower layer holds counts as used,
        // as on an overlay whose upper lies on the same disk (`df /`
        // shows the image's use; a program checking that its root holds
        // something finds it does). An unbounded one reports zeros.
        if s.f_blocks > 0 && s.f_frsize > 0 {
            if let Ok(l) = self.fs.lower_root.statfs() {
                let lower_used = l.f_blocks.saturating_sub(l.f_bfree).saturating_mul(l.f_frsize.max(0) as u64);
                s.f_blocks = s.f_blocks.saturating_add(lower_used / s.f_frsize as u64);
            }
        }
        s.f_type = 0x794c_7630; // OVERLAYFS_SUPER_MAGIC
        s.f_flags &= !(libc::ST_RDONLY as i64);
        Ok(s)
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        if !self.is_dir {
            return Err(Errno::ENOTDIR);
        }
        let mut cache = lock(&self.children);
        Ok(self.lookup_in(&mut cache, name)?)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        if !self.is_dir {
            return Err(Errno::ENOTDIR);
        }
        let cache = lock(&self.children);
        let l = read(&self.layers);
        let lower_visible = l.lower.is_some() && !self.fs.is_opaque(l.upper_key);
        let Some(u) = &l.upper else {
            // Only the host layer (nothing can be whited out without an
            // upper directory): its entries as they are, in its order.
            return match &l.lower {
                Some(lo) => lo.readdir(),
                None => Ok(Vec::new()),
            };
        };
        let mut out = u.readdir()?;
        if !lower_visible {
            // Only the upper layer: each entry's inode number as its node
            // shows it (copied-up nodes keep their first one).
            let origins = lock(&self.fs.origins);
            for e in &mut out {
                e.ino = match (cache.get(&e.name), origins.get(&e.ino)) {
                    (Some(c), _) => c.ino,
                    (None, Some(o)) => *o,
                    (None, None) => e.ino | UPPER_INO_BIT,
                };
            }
            return Ok(out);
        }
        let mut lower: HashMap<Vec<u8>, DirEntry> = HashMap::new();
        if let Some(lo) = &l.lower {
            let marks = lock(&self.fs.marks);
            let wh = l.upper_key.and_then(|k| marks.get(&k)).map(|m| &m.whiteouts);
            for e in lo.readdir()? {
                if !wh.is_some_and(|w| w.contains(&e.name)) {
                    lower.insert(e.name.clone(), e);
                }
            }
        }
        for e in &mut out {
            e.ino = match (cache.get(&e.name), self.fs.origin(e.ino), lower.remove(&e.name)) {
                (Some(c), _, _) => c.ino,
                // Copied up (and maybe moved since): its first inode number.
                (None, Some(o), _) => o,
                (None, None, Some(le)) if le.d_type == e.d_type && e.d_type != abi::flags::DT_DIR => le.ino,
                (None, None, Some(le)) if le.d_type == e.d_type => {
                    // Directories merge unless the upper one is opaque.
                    let opaque = u
                        .lookup(&e.name)
                        .and_then(|c| c.stat())
                        .map(|s| self.fs.is_opaque(Some(key_of(&s))))
                        .unwrap_or(false);
                    if opaque {
                        e.ino | UPPER_INO_BIT
                    } else {
                        le.ino
                    }
                }
                _ => e.ino | UPPER_INO_BIT,
            };
        }
        // What is left of the lower directory: the names upper has not.
        let mut rest: Vec<DirEntry> = lower.into_values().collect();
        rest.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(rest);
        Ok(out)
    }

    fn create(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<InodeRef, Errno> {
        check_name(name)?;
        let (_ns, mut cache) = self.lock_dir()?;
        match self.lookup_in(&mut cache, name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let pu = self.copy_up()?;
        let u = pu.create(name, mode, creds)?;
        let node = OvInode::new_child(&self.arc()?, name, Some(u), None)?;
        cache.insert(name, &node);
        Ok(node)
    }

    fn mkdir(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<(), Errno> {
        self.create_with(name, |pu| {
            pu.mkdir(name, mode, creds)?;
            // Over a whiteout (or a hidden lower entry): opaque, so the
            // lower directory of that name does not show through.
            if self.lower_has_dir(name) {
                let st = pu.lookup(name)?.stat()?;
                self.fs.set_opaque(key_of(&st));
            }
            Ok(())
        })
    }

    fn mknod(&self, name: &[u8], mode: u32, rdev: u64, creds: &Creds) -> Result<(), Errno> {
        self.create_with(name, |pu| pu.mknod(name, mode, rdev, creds))
    }

    fn symlink(&self, name: &[u8], target: &[u8], creds: &Creds) -> Result<(), Errno> {
        self.create_with(name, |pu| pu.symlink(name, target, creds))
    }

    fn link(&self, name: &[u8], target: &InodeRef) -> Result<(), Errno> {
        check_name(name)?;
        let t = Self::downcast(target).ok_or(Errno::EXDEV)?;
        if !self.same_fs(t) {
            return Err(Errno::EXDEV);
        }
        if t.is_dir {
            return Err(Errno::EPERM);
        }
        let (_ns, mut cache) = self.lock_dir()?;
        match self.lookup_in(&mut cache, name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let tu = t.copy_up()?;
        let pu = self.copy_up()?;
        pu.link(name, &tu)
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        check_name(name)?;
        let (_ns, mut cache) = self.lock_dir()?;
        let c = self.lookup_in(&mut cache, name)?;
        if c.is_dir {
            return Err(Errno::EISDIR);
        }
        let pu = self.copy_up()?;
        if let Some(cu) = c.upper() {
            pu.unlink(name)?;
            self.fs.unlinked(&cu);
        }
        if self.lower_has(name) {
            let key = read(&self.layers).upper_key.ok_or(Errno::EIO)?;
            self.fs.add_whiteout(key, name);
        }
        cache.remove(name);
        c.detach();
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        check_name(name)?;
        let (_ns, mut cache) = self.lock_dir()?;
        let c = self.lookup_in(&mut cache, name)?;
        if !c.is_dir {
            return Err(Errno::ENOTDIR);
        }
        if !c.is_empty_dir()? {
            return Err(Errno::ENOTEMPTY);
        }
        let pu = self.copy_up()?;
        let ckey = read(&c.layers).upper_key;
        if let Some(cu) = c.upper() {
            pu.rmdir(name)?;
            self.fs.forget(ckey);
            self.fs.unlinked(&cu);
        }
        if self.lower_has(name) {
            let key = read(&self.layers).upper_key.ok_or(Errno::EIO)?;
            self.fs.add_whiteout(key, name);
        }
        cache.remove(name);
        c.detach();
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
        let nd = Self::downcast(new_dir).ok_or(Errno::EXDEV)?;
        if !self.same_fs(nd) {
            return Err(Errno::EXDEV);
        }
        if !self.is_dir || !nd.is_dir {
            return Err(Errno::ENOTDIR);
        }
        let same = std::ptr::eq(self, nd);
        let _ns = lock(&self.fs.ns);
        // Two directory caches: lock in address order.
        let (mut cache, mut ncache) = if same {
            (lock(&self.children), None)
        } else if (self as *const OvInode) < (nd as *const OvInode) {
            let a = lock(&self.children);
            let b = lock(&nd.children);
            (a, Some(b))
        } else {
            let b = lock(&nd.children);
            let a = lock(&self.children);
            (a, Some(b))
        };
        if flags & RENAME_EXCHANGE != 0 {
            self.rename_exchange(&mut cache, name, nd, ncache.as_deref_mut(), new_name)?;
            let src = cache.remove(name);
            let dst = match ncache.as_deref_mut() {
                Some(nc) => nc.remove(new_name),
                None => cache.remove(new_name),
            };
            if let Some(s) = src {
                if let Ok(ndarc) = nd.arc() {
                    *lock(&s.link) = Some((ndarc, new_name.to_vec()));
                }
                match ncache.as_deref_mut() {
                    Some(nc) => nc.insert(new_name, &s),
                    None => cache.insert(new_name, &s),
                }
            }
            if let Some(d) = dst {
                *lock(&d.link) = Some((self.arc()?, name.to_vec()));
                cache.insert(name, &d);
            }
            return Ok(());
        }
        let src = self.lookup_in(&mut cache, name)?;
        let dst = {
            let r = match ncache.as_deref_mut() {
                Some(nc) => nd.lookup_in(nc, new_name),
                None => self.lookup_in(&mut cache, new_name),
            };
            found(r)?
        };
        if let Some(d) = &dst {
            if Arc::ptr_eq(d, &src) {
                return Ok(());
            }
        }
        if src.is_dir && nd.has_ancestor(&src) {
            return Err(Errno::EINVAL);
        }
        if let Some(d) = &dst {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            match (src.is_dir, d.is_dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) => {
                    // `d` may be an ancestor of the source: its cache is locked.
                    if self.has_ancestor(d) {
                        return Err(Errno::ENOTEMPTY);
                    }
                    if !d.is_empty_dir()? {
                        return Err(Errno::ENOTEMPTY);
                    }
                }
                _ => {}
            }
        }
        if src.is_dir && src.has_lower() {
            src.redirect_up()?;
        }
        src.copy_up()?;
        let pu = self.copy_up()?;
        let npu = nd.copy_up()?;
        let dst_upper_key = dst.as_ref().and_then(|d| read(&d.layers).upper_key);
        pu.rename(name, &npu, new_name, flags & RENAME_NOREPLACE)?;
        if dst_upper_key.is_some() {
            self.fs.forget(dst_upper_key);
        }
        if let Some(du) = dst.as_ref().and_then(|d| d.upper()) {
            self.fs.unlinked(&du);
        }
        if self.lower_has(name) {
            let key = read(&self.layers).upper_key.ok_or(Errno::EIO)?;
            self.fs.add_whiteout(key, name);
        }
        if src.is_dir && !src.has_lower() && nd.lower_has_dir(new_name) {
            if let Some(k) = read(&src.layers).upper_key {
                self.fs.set_opaque(k);
            }
        }
        cache.remove(name);
        if let Some(d) = &dst {
            d.detach();
        }
        *lock(&src.link) = Some((nd.arc()?, new_name.to_vec()));
        match ncache.as_deref_mut() {
            Some(nc) => nc.insert(new_name, &src),
            None => cache.insert(new_name, &src),
        }
        Ok(())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        self.real()?.readlink()
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        if overlay_private(name) {
            return Err(Errno::ENODATA);
        }
        self.real()?.getxattr(name)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        if overlay_private(name) {
            return Err(Errno::EPERM);
        }
        let _ns = lock(&self.fs.ns);
        self.copy_up()?.setxattr(name, value, flags)
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        let mut v = self.real()?.listxattr()?;
        v.retain(|n| !overlay_private(n));
        Ok(v)
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        if overlay_private(name) {
            return Err(Errno::ENODATA);
        }
        let _ns = lock(&self.fs.ns);
        // Nothing to copy up for a name that is not there.
        if self.upper().is_none() {
            self.real()?.getxattr(name)?;
        }
        self.copy_up()?.removexattr(name)
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        let _ns = lock(&self.fs.ns);
        self.copy_up()?.setattr(attr)
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        let writing = flags & O_ACCMODE != O_RDONLY;
        if writing && !self.is_dir {
            let real = self.real()?;
            if real.stat()?.st_mode & S_IFMT == S_IFREG {
                let _ns = lock(&self.fs.ns);
                return self.copy_up()?.open(flags);
            }
        }
        self.real()?.open(flags)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl OvInode {
    /// Whether lower has a directory `name` here, visible or whited out:
    /// a directory created or moved to `name` must then be opaque.
    fn lower_has_dir(&self, name: &[u8]) -> bool {
        let l = read(&self.layers);
        if self.fs.is_opaque(l.upper_key) {
            return false;
        }
        match &l.lower {
            Some(lo) => lo.lookup(name).is_ok_and(|c| c.stat().is_ok_and(|s| is_dir(&s))),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostfs::tests::TempDir;
    use crate::hostfs::HostFs;
    use crate::tmpfs::TmpFs;
    use abi::flags::{O_RDWR, S_IFIFO};

    fn ctx(irq: &Interrupt) -> IoCtx<'_> {
        IoCtx { flags: 0, interrupt: irq }
    }

    fn setup() -> (TempDir, InodeRef) {
        let td = TempDir::new("overlay");
        std::fs::create_dir_all(td.0.join("etc/sub")).unwrap();
        std::fs::write(td.0.join("etc/passwd"), b"root:x:0:0\n").unwrap();
        std::fs::write(td.0.join("etc/sub/deep"), b"deep").unwrap();
        std::fs::write(td.0.join("top"), b"top").unwrap();
        std::os::unix::fs::symlink("etc/passwd", td.0.join("lnk")).unwrap();
        let lower = HostFs::new_root(&td.0, true).unwrap();
        let upper = TmpFs::new_root(0o755, 0, 0);
        (td, Overlay::new(lower, upper))
    }

    fn names(d: &InodeRef) -> Vec<Vec<u8>> {
        let mut v: Vec<_> = d.readdir().unwrap().into_iter().map(|e| e.name).collect();
        v.sort();
        v
    }

    fn read_all(i: &InodeRef) -> Vec<u8> {
        let irq = Interrupt::default();
        let f = i.open(O_RDONLY).unwrap();
        let mut b = vec![0u8; 4096];
        let n = f.read(&ctx(&irq), &mut b, 0).unwrap();
        b.truncate(n);
        b
    }

    #[test]
    fn lookup_read_never_copies() {
        let (td, root) = setup();
        let etc = root.lookup(b"etc").unwrap();
        let pw = etc.lookup(b"passwd").unwrap();
        assert_eq!(read_all(&pw), b"root:x:0:0\n");
        let ov = OvInode::downcast(&pw).unwrap();
        assert!(ov.upper().is_none());
        // Same node for the same path while it lives.
        assert!(Arc::ptr_eq(&pw, &etc.lookup(b"passwd").unwrap()));
        assert_eq!(root.lookup(b"lnk").unwrap().readlink().unwrap(), b"etc/passwd");
        assert_eq!(names(&root), vec![b"etc".to_vec(), b"lnk".to_vec(), b"top".to_vec()]);
        use std::os::unix::fs::MetadataExt;
        let host_ino = std::fs::metadata(td.0.join("etc/passwd")).unwrap().ino();
        assert_eq!(pw.stat().unwrap().st_ino, host_ino);
        assert_eq!(pw.stat().unwrap().st_dev, root.stat().unwrap().st_dev);
    }

    #[test]
    fn copy_up_on_write_leaves_host_alone() {
        let (td, root) = setup();
        let irq = Interrupt::default();
        let etc = root.lookup(b"etc").unwrap();
        let pw = etc.lookup(b"passwd").unwrap();
        let ino = pw.stat().unwrap().st_ino;
        let f = pw.open(O_RDWR).unwrap();
        assert_eq!(f.write(&ctx(&irq), b"ROOT", 0), Ok(4));
        assert_eq!(read_all(&pw), b"ROOT:x:0:0\n");
        assert_eq!(std::fs::read(td.0.join("etc/passwd")).unwrap(), b"root:x:0:0\n");
        // Inode number stable across copy-up; the fresh lookup sees it too.
        assert_eq!(pw.stat().unwrap().st_ino, ino);
        drop((f, pw));
        let pw2 = root.lookup(b"etc").unwrap().lookup(b"passwd").unwrap();
        assert_eq!(read_all(&pw2), b"ROOT:x:0:0\n");
        // setattr copies up (truncate), host still unchanged.
        let top = root.lookup(b"top").unwrap();
        top.setattr(&SetAttr { size: Some(1), ..Default::default() }).unwrap();
        assert_eq!(read_all(&top), b"t");
        assert_eq!(std::fs::read(td.0.join("top")).unwrap(), b"top");
        // Deep copy-up creates the parents with the lower's modes.
        std::fs::set_permissions(td.0.join("etc/sub"), std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
        let sub = root.lookup(b"etc").unwrap().lookup(b"sub").unwrap();
        let deep = sub.lookup(b"deep").unwrap();
        deep.setattr(&SetAttr { mode: Some(0o600), ..Default::default() }).unwrap();
        assert_eq!(deep.stat().unwrap().st_mode & 0o7777, 0o600);
        assert_eq!(sub.stat().unwrap().st_mode & 0o7777, 0o750);
        assert_eq!(read_all(&deep), b"deep");
        assert!(OvInode::downcast(&sub).unwrap().upper().is_some());
        assert_eq!(sub.stat().unwrap().st_nlink, 1);
        // A new file next to lower ones, listed once.
        etc.create(b"new", S_IFREG | 0o644, &Creds::root()).unwrap();
        assert_eq!(names(&etc), vec![b"new".to_vec(), b"passwd".to_vec(), b"sub".to_vec()]);
        assert!(!td.0.join("etc/new").exists());
    }

    #[test]
    fn whiteouts_and_opaque_dirs() {
        let (td, root) = setup();
        let c = Creds::root();
        let etc = root.lookup(b"etc").unwrap();
        etc.unlink(b"passwd").unwrap();
        assert_eq!(etc.lookup(b"passwd").err(), Some(Errno::ENOENT));
        assert_eq!(names(&etc), vec![b"sub".to_vec()]);
        assert!(td.0.join("etc/passwd").exists());
        // Recreate over the whiteout, remove again.
        etc.create(b"passwd", 0o600, &c).unwrap();
        assert_eq!(read_all(&etc.lookup(b"passwd").unwrap()), b"");
        etc.unlink(b"passwd").unwrap();
        assert_eq!(etc.lookup(b"passwd").err(), Some(Errno::ENOENT));
        // rmdir needs the merged view empty.
        assert_eq!(etc.rmdir(b"sub"), Err(Errno::ENOTEMPTY));
        let sub = etc.lookup(b"sub").unwrap();
        sub.unlink(b"deep").unwrap();
        etc.rmdir(b"sub").unwrap();
        assert_eq!(etc.lookup(b"sub").err(), Some(Errno::ENOENT));
        assert!(td.0.join("etc/sub/deep").exists());
        // mkdir over the whiteout: opaque, the lower entries stay hidden.
        etc.mkdir(b"sub", 0o700, &c).unwrap();
        let sub = etc.lookup(b"sub").unwrap();
        assert_eq!(names(&sub), Vec::<Vec<u8>>::new());
        assert_eq!(sub.lookup(b"deep").err(), Some(Errno::ENOENT));
        drop(sub);
        // Even after the cached node is gone.
        let sub = etc.lookup(b"sub").unwrap();
        assert_eq!(sub.lookup(b"deep").err(), Some(Errno::ENOENT));
        assert_eq!(sub.stat().unwrap().st_mode, S_IFDIR | 0o700);
        // Removing a whole lower tree: the root lists no etc.
        etc.rmdir(b"sub").unwrap();
        drop((sub, etc));
        root.rmdir(b"etc").unwrap();
        assert_eq!(names(&root), vec![b"lnk".to_vec(), b"top".to_vec()]);
        assert_eq!(root.unlink(b"etc"), Err(Errno::ENOENT));
    }

    #[test]
    fn rename_and_link() {
        let (td, root) = setup();
        let c = Creds::root();
        let etc = root.lookup(b"etc").unwrap();
        // A lower file moves: copied up, whiteout at the old name.
        etc.rename(b"passwd", &root, b"moved", 0).unwrap();
        assert_eq!(etc.lookup(b"passwd").err(), Some(Errno::ENOENT));
        assert_eq!(read_all(&root.lookup(b"moved").unwrap()), b"root:x:0:0\n");
        assert!(td.0.join("etc/passwd").exists());
        // Over a lower file.
        root.rename(b"moved", &root, b"top", 0).unwrap();
        assert_eq!(read_all(&root.lookup(b"top").unwrap()), b"root:x:0:0\n");
        assert_eq!(root.lookup(b"moved").err(), Some(Errno::ENOENT));
        assert_eq!(std::fs::read(td.0.join("top")).unwrap(), b"top");
        // Lower directories move with their whole tree copied up.
        let etc_ino = etc.stat().unwrap().st_ino;
        root.rename(b"etc", &root, b"etc2", 0).unwrap();
        assert_eq!(root.lookup(b"etc").err(), Some(Errno::ENOENT));
        let etc2 = root.lookup(b"etc2").unwrap();
        assert!(Arc::ptr_eq(&etc2, &etc));
        assert_eq!(read_all(&etc2.lookup(b"sub").unwrap().lookup(b"deep").unwrap()), b"deep");
        assert!(td.0.join("etc/sub/deep").exists());
        root.rename(b"etc2", &root, b"etc", 0).unwrap();
        drop(etc2);
        assert_eq!(root.lookup(b"etc").unwrap().stat().unwrap().st_ino, etc_ino);
        assert_eq!(names(&etc), vec![b"sub".to_vec()]);
        // Upper directories can, into place of a whiteout of a lower dir.
        root.mkdir(b"newdir", 0o755, &c).unwrap();
        let nd = root.lookup(b"newdir").unwrap();
        nd.create(b"x", 0o644, &c).unwrap();
        let sub = etc.lookup(b"sub").unwrap();
        sub.unlink(b"deep").unwrap();
        drop(sub);
        etc.rmdir(b"sub").unwrap();
        root.rename(b"newdir", &etc, b"sub", 0).unwrap();
        let sub = etc.lookup(b"sub").unwrap();
        assert_eq!(names(&sub), vec![b"x".to_vec()]);
        assert!(Arc::ptr_eq(&sub, &nd));
        assert_eq!(root.rename(b"etc", &sub, b"loop", 0), Err(Errno::EINVAL));
        assert_eq!(etc.rename(b"sub", &sub, b"loop", 0), Err(Errno::EINVAL));
        assert_eq!(sub.rename(b"x", &root, b"lnk", RENAME_NOREPLACE), Err(Errno::EEXIST));
        assert_eq!(sub.rename(b"x", &root, b"etc", 0), Err(Errno::EISDIR));
        // Hard link to a lower file copies it up.
        root.link(b"hl", &root.lookup(b"lnk").unwrap()).unwrap();
        assert_eq!(root.lookup(b"hl").unwrap().readlink().unwrap(), b"etc/passwd");
        assert_eq!(root.link(b"dl", &etc), Err(Errno::EPERM));
        // Exchange two files.
        root.create(b"a", 0o644, &c).unwrap();
        root.rename(b"a", &root, b"hl", RENAME_EXCHANGE).unwrap();
        assert_eq!(root.lookup(b"a").unwrap().readlink().unwrap(), b"etc/passwd");
        let other = Overlay::new(TmpFs::new_root(0o755, 0, 0), TmpFs::new_root(0o755, 0, 0));
        assert_eq!(root.rename(b"a", &other, b"a", 0), Err(Errno::EXDEV));
    }

    #[test]
    fn moved_lower_dir_keeps_merging_after_its_nodes_drop() {
        let (td, root) = setup();
        let c = Creds::root();
        let etc_ino = root.lookup(b"etc").unwrap().stat().unwrap().st_ino;
        root.lookup(b"etc").unwrap().lookup(b"sub").unwrap().unlink(b"deep").unwrap();
        root.rename(b"etc", &root, b"moved", 0).unwrap();
        // Nothing below the directory was copied.
        let moved = root.lookup(b"moved").unwrap();
        assert!(OvInode::downcast(&moved.lookup(b"passwd").unwrap()).unwrap().upper().is_none());
        drop(moved);
        // Fresh nodes for every name: the redirect, the whiteout and the
        // inode number live in the overlay, not in the dropped nodes.
        let moved = root.lookup(b"moved").unwrap();
        assert_eq!(moved.stat().unwrap().st_ino, etc_ino);
        assert_eq!(names(&moved), vec![b"passwd".to_vec(), b"sub".to_vec()]);
        assert_eq!(names(&moved.lookup(b"sub").unwrap()), Vec::<Vec<u8>>::new());
        assert_eq!(read_all(&moved.lookup(b"passwd").unwrap()), b"root:x:0:0\n");
        assert!(root.readdir().unwrap().iter().any(|e| e.name == b"moved" && e.ino == etc_ino));
        // The old name is free, and a new directory there is empty.
        assert_eq!(root.lookup(b"etc").err(), Some(Errno::ENOENT));
        root.mkdir(b"etc", 0o755, &c).unwrap();
        assert_eq!(names(&root.lookup(b"etc").unwrap()), Vec::<Vec<u8>>::new());
        // Moved again, over that empty directory.
        drop(moved);
        root.rename(b"moved", &root, b"etc", 0).unwrap();
        assert_eq!(names(&root.lookup(b"etc").unwrap()), vec![b"passwd".to_vec(), b"sub".to_vec()]);
        assert!(td.0.join("etc/sub/deep").exists());
    }

    #[test]
    fn links_share_the_lower_inode_and_xattrs_copy_up() {
        let (_td, root) = setup();
        let etc = root.lookup(b"etc").unwrap();
        let pw = etc.lookup(b"passwd").unwrap();
        let ino = pw.stat().unwrap().st_ino;
        root.link(b"pw2", &pw).unwrap();
        let pw2 = root.lookup(b"pw2").unwrap();
        assert_eq!(pw2.stat().unwrap().st_ino, ino);
        assert_eq!(pw.stat().unwrap().st_nlink, 2);
        assert!(root.readdir().unwrap().iter().any(|e| e.name == b"pw2" && e.ino == ino));
        drop(pw2);
        assert_eq!(root.lookup(b"pw2").unwrap().stat().unwrap().st_ino, ino);
        // Attributes set through one name are seen through the other.
        pw.setxattr(b"user.a", b"1", 0).unwrap();
        assert_eq!(root.lookup(b"pw2").unwrap().getxattr(b"user.a").unwrap(), b"1");
        etc.unlink(b"passwd").unwrap();
        assert_eq!(root.lookup(b"pw2").unwrap().stat().unwrap().st_nlink, 1);
        // Copy-up keeps what lower had.
        let top = root.lookup(b"top").unwrap();
        let lower = OvInode::downcast(&top).unwrap().real().unwrap();
        let upper_of = |n: &InodeRef| OvInode::downcast(n).unwrap().upper();
        assert!(upper_of(&top).is_none());
        assert_eq!(top.getxattr(b"user.none"), lower.getxattr(b"user.none"));
        top.setxattr(b"user.t", b"v", 0).unwrap();
        assert!(upper_of(&top).is_some());
        assert_eq!(top.listxattr().unwrap(), vec![b"user.t".to_vec()]);
        assert_eq!(top.setxattr(b"trusted.overlay.x", b"", 0), Err(Errno::EPERM));
    }

    #[test]
    fn special_nodes_and_types() {
        let (_td, root) = setup();
        let c = Creds::root();
        root.mknod(b"fifo", S_IFIFO | 0o644, 0, &c).unwrap();
        assert_eq!(root.lookup(b"fifo").unwrap().stat().unwrap().st_mode, S_IFIFO | 0o644);
        root.symlink(b"s", b"/x", &c).unwrap();
        assert_eq!(root.symlink(b"s", b"/x", &c), Err(Errno::EEXIST));
        assert_eq!(root.mkdir(b"etc", 0o755, &c), Err(Errno::EEXIST));
        assert_eq!(root.create(b"top", 0o644, &c).err(), Some(Errno::EEXIST));
        assert_eq!(root.lookup(b"top").unwrap().lookup(b"x").err(), Some(Errno::ENOTDIR));
        assert_eq!(root.rmdir(b"top"), Err(Errno::ENOTDIR));
        assert!(root.readdir().unwrap().iter().any(|e| e.name == b"etc" && e.d_type == abi::flags::DT_DIR));
        let st = root.statfs().unwrap();
        assert_eq!(st.f_type, 0x794c_7630);
    }

    #[test]
    fn deep_chain_drops_iteratively() {
        let root = Overlay::new(TmpFs::new_root(0o755, 0, 0), TmpFs::new_root(0o755, 0, 0));
        let mut cur = root.clone();
        for _ in 0..50_000 {
            cur.mkdir(b"d", 0o755, &Creds::root()).unwrap();
            cur = cur.lookup(b"d").unwrap();
        }
        drop(cur);
        drop(root);
    }
}
