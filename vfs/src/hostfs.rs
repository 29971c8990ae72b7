//! A host directory tree served to the sandbox.
//!
//! Every host access is relative to a descriptor the Sentry holds: the
//! mount root opened at boot, or a node reached from it one component at a
//! time with `openat(parent, name, O_PATH|O_NOFOLLOW)`. No host path is
//! ever resolved from the host's root or through `/proc/self/fd`; a host
//! symlink is never followed (symlinks go back to the VFS, which resolves
//! them inside the sandbox). A node opened for I/O is reopened through its
//! parent's descriptor and its name, and the result must be the same
//! device and inode (else `ESTALE`). Descriptors are bounded per sandbox:
//! see [`crate::hostfs_fds`].
//!
//! Nodes are shared: a lookup that reaches a (device, inode) this mount
//! already knows returns that node and records the name it was reached
//! by, so a node's way back (parent and name) follows renames.
//!
//! Attributes are cached per node and revalidated as the mount's policy
//! says ([`crate::attrcache`]): a walk step costs at most one host statx
//! (the name's, which refreshes the node's attributes), none when the
//! policy still trusts what it has.
//!
//! A read-only instance refuses every change with EROFS. Host character
//! and block devices are not reachable (EACCES, as on a nodev mount).

use crate::attrcache::{AttrCache, Revalidate};
use crate::dircache::DirCache;
use crate::hostfs_fds::{cvt, ident_at, ident_of, Evict, FdBudget, FdSlot, FileCharge, Ident, Sweep};
use crate::inode::{DirEntry, FileOps, Inode, InodeRef, SetAttr};
use crate::tmpfs::DirFile;
use crate::util::{check_name, last_errno, lock};
use crate::wait::IoCtx;
use crate::Creds;
use abi::flags::{
    O_ACCMODE, O_APPEND, O_DSYNC, O_RDONLY, O_SYNC, PATH_MAX, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT,
    S_IFREG, S_IFSOCK,
};
use abi::{Errno, Stat, Statfs};
use std::any::Any;
use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Constructors for host-backed trees.
pub struct HostFs;

impl HostFs {
    /// Open the host node at `path` to serve as a mount root: a directory
    /// (or anything else) as `O_PATH`, a regular file (a file bind mount)
    /// for I/O, read-write unless `readonly` (read-only when the host
    /// refuses). `path` comes from the operator, never from the guest, and
    /// is opened before the Sentry confines itself.
    pub fn open_root(path: &Path, readonly: bool) -> io::Result<OwnedFd> {
        let c = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: `c` is a valid NUL-terminated string; the result is checked.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = owned(fd);
        let st = fstat_fd(fd.as_raw_fd()).map_err(|e| io::Error::from_raw_os_error(e.0))?;
        if st.st_mode & S_IFMT != S_IFREG {
            return Ok(fd);
        }
        let modes: &[libc::c_int] = if readonly { &[libc::O_RDONLY] } else { &[libc::O_RDWR, libc::O_RDONLY] };
        for m in modes {
            // SAFETY: as above; O_NONBLOCK so a swapped-in FIFO cannot hang us.
            let f = unsafe { libc::open(c.as_ptr(), m | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) };
            if f >= 0 {
                let f = owned(f);
                if ident_of(&f).ok().map(|(i, _)| (i.0, i.1)) == Some((st.st_dev, st.st_ino)) {
                    return Ok(f);
                }
            }
        }
        Ok(fd)
    }

    /// Serve the host tree at `path` with a budget of its own (tests and
    /// tools; a sandbox shares one budget between its mounts).
    pub fn new_root(path: &Path, readonly: bool) -> io::Result<InodeRef> {
        let budget = FdBudget::new(crate::hostfs_fds::DEFAULT_NODE_FDS, crate::hostfs_fds::DEFAULT_FILE_FDS);
        Self::from_fd(Self::open_root(path, readonly)?, readonly, budget)
    }

    /// Serve the host tree whose root descriptor is `fd` (from
    /// [`HostFs::open_root`]), counting host descriptors against `budget`.
    pub fn from_fd(fd: OwnedFd, readonly: bool, budget: Arc<FdBudget>) -> io::Result<InodeRef> {
        Self::from_fd_revalidated(fd, readonly, budget, Revalidate::EachCall)
    }

    /// As [`HostFs::from_fd`], with cached attributes trusted as `policy`
    /// says (`Revalidate::After` only for a tree the sandbox cannot
    /// change: a read-only instance).
    pub fn from_fd_revalidated(
        fd: OwnedFd,
        readonly: bool,
        budget: Arc<FdBudget>,
        policy: Revalidate,
    ) -> io::Result<InodeRef> {
        let (ident, kind) = ident_of(&fd).map_err(|e| io::Error::from_raw_os_error(e.0))?;
        let policy = if readonly { policy } else { Revalidate::EachCall };
        let fs = Arc::new(FsInfo {
            readonly,
            budget,
            nodes: Mutex::new(HashMap::new()),
            policy,
            generation: AtomicU64::new(0),
        });
        Ok(Arc::new_cyclic(|me| HostInode {
            fs,
            ident,
            kind,
            loc: Mutex::new(None),
            slot: FdSlot::with(fd, false),
            pinned: true,
            io: Mutex::new(Vec::new()),
            me: me.clone(),
            attrs: AttrCache::default(),
            listing: Mutex::new(0),
            entries: DirCache::default(),
        }))
    }
}

struct FsInfo {
    readonly: bool,
    budget: Arc<FdBudget>,
    /// Every live node of this mount but the root, by (device, inode).
    nodes: Mutex<HashMap<Ident, Weak<HostInode>>>,
    policy: Revalidate,
    /// Changes the Sentry made through this mount: cached attributes
    /// from before one are not trusted.
    generation: AtomicU64,
}

/// Counts a change through the mount when dropped (after the change, so
/// that attributes read while it was under way are not trusted either).
struct Changing<'a>(&'a FsInfo);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.0.generation.fetch_add(1, Ordering::Release);
    }
}

/// Where a node is reached from: its parent and its name there.
type Loc = Option<(Arc<HostInode>, CString)>;

/// A host node.
pub struct HostInode {
    fs: Arc<FsInfo>,
    ident: Ident,
    kind: u32,
    /// None for the mount root.
    loc: Mutex<Loc>,
    /// Its O_PATH descriptor (the root's is pinned, others evictable).
    slot: FdSlot,
    pinned: bool,
    /// Descriptors open for I/O, by host open flags, shared by the
    /// guest's open files.
    io: Mutex<Vec<(libc::c_int, Weak<IoFd>)>>,
    me: Weak<HostInode>,
    attrs: AttrCache,
    /// Held while a directory is listed through the node's own
    /// descriptor (its file offset is shared): the address of the
    /// descriptor last read to its end, which must be rewound first (a
    /// fresh one is at its start; a reused address only costs a rewind).
    listing: Mutex<usize>,
    /// The directory's entries, kept while it is unchanged.
    entries: DirCache,
}

/// A host descriptor open for I/O, charged to the sandbox's budget.
struct IoFd {
    fd: Arc<OwnedFd>,
    _charge: FileCharge,
}

/// A descriptor for the f*xattr calls: the node's own, or one open for I/O.
enum XattrFd {
    Node(Arc<OwnedFd>),
    Io(Arc<IoFd>),
}

impl XattrFd {
    fn raw(&self) -> RawFd {
        match self {
            XattrFd::Node(fd) => fd.as_raw_fd(),
            XattrFd::Io(f) => f.fd.as_raw_fd(),
        }
    }
}

/// Retry a call interrupted by a (Sentry-internal) signal.
/// A readable descriptor of the directory `dir` itself ("." through it).
fn reopen_dir(dir: &OwnedFd) -> Result<libc::c_int, Errno> {
    // SAFETY: "." is a valid C string, relative to a directory descriptor
    // we hold; the result is checked.
    retry(|| unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c".".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })
}

fn retry(mut f: impl FnMut() -> libc::c_int) -> Result<libc::c_int, Errno> {
    loop {
        match cvt(f()) {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

fn cname(name: &[u8]) -> Result<CString, Errno> {
    check_name(name)?;
    CString::new(name).map_err(|_| Errno::EINVAL)
}

fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: callers pass a descriptor just returned by a successful
    // open-like call, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// fstat of any descriptor (O_PATH ones included), through statx(2): one
/// stat syscall for the Sentry's whole seccomp allowlist.
pub(crate) fn fstat_fd(fd: RawFd) -> Result<Stat, Errno> {
    statx_at(fd, c"", true).map(|(st, _)| st)
}

/// The attributes and identity of `name` in `dir` (of `dir` itself with
/// `empty`), never following a symlink: one statx.
fn statx_at(dir: RawFd, name: &std::ffi::CStr, empty: bool) -> Result<(Stat, Ident), Errno> {
    // SAFETY: an all-zero `struct statx` is a valid value.
    let mut x: libc::statx = unsafe { std::mem::zeroed() };
    let flags = libc::AT_SYMLINK_NOFOLLOW | if empty { libc::AT_EMPTY_PATH } else { 0 };
    // SAFETY: `name` is a valid C string and `x` a valid out pointer.
    cvt(unsafe { libc::statx(dir, name.as_ptr(), flags, libc::STATX_BASIC_STATS | libc::STATX_BTIME, &mut x) })?;
    let birth = if x.stx_mask & libc::STATX_BTIME != 0 {
        x.stx_btime.tv_sec.wrapping_mul(1_000_000_000).wrapping_add(x.stx_btime.tv_nsec as i64)
    } else {
        0
    };
    let ident = (libc::makedev(x.stx_dev_major, x.stx_dev_minor), x.stx_ino, birth);
    let st = Stat {
        st_dev: libc::makedev(x.stx_dev_major, x.stx_dev_minor),
        st_ino: x.stx_ino,
        st_nlink: x.stx_nlink as u64,
        st_mode: x.stx_mode as u32,
        st_uid: x.stx_uid,
        st_gid: x.stx_gid,
        st_rdev: libc::makedev(x.stx_rdev_major, x.stx_rdev_minor),
        st_size: x.stx_size as i64,
        st_blksize: x.stx_blksize as i64,
        st_blocks: x.stx_blocks as i64,
        st_atime: x.stx_atime.tv_sec,
        st_atime_nsec: x.stx_atime.tv_nsec as i64,
        st_mtime: x.stx_mtime.tv_sec,
        st_mtime_nsec: x.stx_mtime.tv_nsec as i64,
        st_ctime: x.stx_ctime.tv_sec,
        st_ctime_nsec: x.stx_ctime.tv_nsec as i64,
        ..Default::default()
    };
    Ok((st, ident))
}

impl FsInfo {
    /// A new node found as `loc` (parent and name), with `slot` as its
    /// descriptor and nothing cached yet.
    fn named_node(
        self: &Arc<Self>,
        ident: Ident,
        kind: u32,
        loc: (Arc<HostInode>, CString),
        slot: FdSlot,
    ) -> Arc<HostInode> {
        Arc::new_cyclic(|me| HostInode {
            fs: self.clone(),
            ident,
            kind,
            loc: Mutex::new(Some(loc)),
            slot,
            pinned: false,
            io: Mutex::new(Vec::new()),
            me: me.clone(),
            attrs: AttrCache::default(),
            listing: Mutex::new(0),
            entries: DirCache::default(),
        })
    }

    /// The node for host node `fd` (reached as `name` in `parent`): the
    /// live one of the same (device, inode), else a new one.
    fn node(
        self: &Arc<Self>,
        parent: &Arc<HostInode>,
        name: CString,
        fd: OwnedFd,
        readable: bool,
        id: Option<(Ident, u32)>,
    ) -> Result<Arc<HostInode>, Errno> {
        let (ident, kind) = match id {
            Some(id) => id,
            None => ident_of(&fd)?,
        };
        let known = lock(&self.nodes).get(&ident).and_then(Weak::upgrade);
        if let Some(n) = known.filter(|n| n.kind == kind) {
            n.relocate(Some((parent.clone(), name)));
            n.install(fd, readable);
            return Ok(n);
        }
        let n = self.named_node(ident, kind, (parent.clone(), name), FdSlot::with(fd, readable));
        let old = lock(&self.nodes).insert(ident, Arc::downgrade(&n));
        drop(old);
        self.budget.node_acquired(n.clone());
        Ok(n)
    }

    /// The node `ident` (of type `kind`, found as `name` in `parent` by a
    /// statx of the name): the live one, else a new one without a
    /// descriptor, which it opens when first needed (through `parent`
    /// and `name`, checking it is still this node). A lookup that only
    /// leads to a stat costs the host one statx, no open and no close.
    fn node_named(
        self: &Arc<Self>,
        parent: &Arc<HostInode>,
        name: &CString,
        ident: Ident,
        kind: u32,
    ) -> Arc<HostInode> {
        let mut nodes = lock(&self.nodes);
        if let Some(n) = nodes.get(&ident).and_then(Weak::upgrade).filter(|n| n.kind == kind) {
            drop(nodes);
            n.relocate(Some((parent.clone(), name.clone())));
            return n;
        }
        let n = self.named_node(ident, kind, (parent.clone(), name.clone()), FdSlot::default());
        let old = nodes.insert(ident, Arc::downgrade(&n));
        drop(nodes);
        // A dead entry's last reference may be dropped here, outside the lock.
        drop(old);
        n
    }

    /// After an unlink: a cached node of the removed name lets go of its
    /// descriptor, so the Sentry does not keep the file's space in use (a
    /// guest that still has it open keeps its own I/O descriptor). A link
    /// that remains elsewhere is reopened on demand.
    fn removed(&self, gone: Option<(Ident, u32)>) {
        let Some((ident, _)) = gone else { return };
        let known = lock(&self.nodes).get(&ident).and_then(Weak::upgrade);
        if let Some(n) = known {
            if n.slot.clear() {
                self.budget.node_released();
            }
        }
    }

    /// After a rename: the node now called `name` in `dir`, if live,
    /// learns its new way back.
    fn renamed(&self, dir: &Arc<HostInode>, name: &CString) {
        let Ok(dfd) = dir.fd() else { return };
        let Ok((ident, _)) = ident_at(dfd.as_raw_fd(), name, false) else { return };
        let known = lock(&self.nodes).get(&ident).and_then(Weak::upgrade);
        if let Some(n) = known {
            n.relocate(Some((dir.clone(), name.clone())));
        }
    }
}

impl Evict for HostInode {
    fn sweep(&self) -> Sweep {
        let e = self.slot.sweep();
        if e == Sweep::Evicted {
            self.fs.budget.node_released();
        }
        e
    }
}

impl Drop for HostInode {
    fn drop(&mut self) {
        if self.pinned {
            return;
        }
        if self.slot.is_filled() {
            self.fs.budget.node_released();
        }
        let mut nodes = lock(&self.fs.nodes);
        if nodes.get(&self.ident).is_some_and(|w| std::ptr::eq(w.as_ptr(), self)) {
            nodes.remove(&self.ident);
        }
    }
}

impl HostInode {
    fn arc(&self) -> Result<Arc<HostInode>, Errno> {
        self.me.upgrade().ok_or(Errno::ESTALE)
    }

    fn check_writable(&self) -> Result<(), Errno> {
        if self.fs.readonly {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    fn location(&self) -> Result<(Arc<HostInode>, CString), Errno> {
        lock(&self.loc).clone().ok_or(Errno::ESTALE)
    }

    /// Record the way back to this node (dropping the old one outside the
    /// lock: it may hold the last reference to a parent).
    fn relocate(&self, to: Loc) {
        let mut g = lock(&self.loc);
        let same = match (&*g, &to) {
            (Some((p1, n1)), Some((p2, n2))) => Arc::ptr_eq(p1, p2) && n1 == n2,
            _ => false,
        };
        let old = if same { to } else { std::mem::replace(&mut *g, to) };
        drop(g);
        drop(old);
    }

    /// Keep `fd` (a fresh descriptor of this very node) if the node has
    /// none cached.
    fn install(&self, fd: OwnedFd, readable: bool) -> Arc<OwnedFd> {
        let fd = Arc::new(fd);
        if self.slot.fill(&fd, readable) {
            if let Some(me) = self.me.upgrade() {
                self.fs.budget.node_acquired(me);
            }
        }
        self.slot.get().unwrap_or(fd)
    }

    /// The node's O_PATH descriptor, reopened through its ancestors when
    /// it was evicted.
    fn fd(&self) -> Result<Arc<OwnedFd>, Errno> {
        if let Some(fd) = self.slot.get() {
            return Ok(fd);
        }
        // The nearest ancestor that still has its descriptor (the root
        // always does), then down again one name at a time.
        let mut chain: Vec<Arc<HostInode>> = Vec::new();
        let (mut up, _) = self.location()?;
        let mut base = loop {
            if let Some(fd) = up.slot.get() {
                break fd;
            }
            let (next, _) = up.location()?;
            chain.push(up);
            if chain.len() > PATH_MAX {
                return Err(Errno::ELOOP);
            }
            up = next;
        };
        for node in chain.iter().rev() {
            base = node.reopen_from(&base)?;
        }
        self.reopen_from(&base)
    }

    /// Open this node's descriptor from its parent's. Regular files and
    /// directories get one open for reading where the host allows it: a
    /// regular file's then serves the guest's reads, a directory's its
    /// listings, and either the f*xattr calls (which refuse O_PATH
    /// descriptors), so none of those needs an open of its own. Others,
    /// and what the host will not let us read, get O_PATH.
    fn reopen_from(&self, parent_fd: &OwnedFd) -> Result<Arc<OwnedFd>, Errno> {
        let (_, name) = self.location()?;
        let readable = match self.kind {
            // O_NONBLOCK and O_NOCTTY: should the name be swapped for a
            // FIFO or a terminal meanwhile, the open neither blocks nor
            // adopts it (and the identity check refuses it).
            S_IFREG => Some(libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY),
            S_IFDIR => Some(libc::O_RDONLY | libc::O_DIRECTORY),
            _ => None,
        };
        if let Some(flags) = readable {
            match self.open_verified(parent_fd, &name, flags) {
                Ok(fd) => return Ok(self.install(fd, true)),
                Err(Errno::ESTALE) => return Err(Errno::ESTALE),
                Err(_) => {}
            }
        }
        let fd = self.open_verified(parent_fd, &name, libc::O_PATH)?;
        Ok(self.install(fd, false))
    }

    /// The node's own descriptor if it is open for reading (opening it
    /// first when the node has none; None when it is an O_PATH one).
    fn readable_fd(&self) -> Result<Option<Arc<OwnedFd>>, Errno> {
        if let Some(fd) = self.slot.get_readable() {
            return Ok(Some(fd));
        }
        if self.slot.is_filled() {
            return Ok(None);
        }
        self.fd()?;
        Ok(self.slot.get_readable())
    }

    /// `openat(parent, name, flags|O_NOFOLLOW)`, which must be this node.
    fn open_verified(&self, parent_fd: &OwnedFd, name: &CString, flags: libc::c_int) -> Result<OwnedFd, Errno> {
        // SAFETY: `name` is a valid C string; the result is checked.
        let fd = retry(|| unsafe {
            libc::openat(parent_fd.as_raw_fd(), name.as_ptr(), flags | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        })
        .map_err(|e| if e == Errno::ENOENT { Errno::ESTALE } else { e })?;
        let fd = owned(fd);
        if ident_of(&fd)?.0 != self.ident {
            return Err(Errno::ESTALE);
        }
        Ok(fd)
    }

    /// A descriptor of this node open for I/O with host flags `flags`
    /// (access mode and sync flags), shared with other opens of the same
    /// flags. Opened through the parent's descriptor and the node's name
    /// (`O_NONBLOCK` so that a FIFO swapped in cannot block us; it changes
    /// nothing for regular files); a mount root that is a file has the
    /// descriptor boot opened, duplicated.
    fn io_fd(&self, flags: libc::c_int) -> Result<Arc<IoFd>, Errno> {
        {
            let mut io = lock(&self.io);
            io.retain(|(_, w)| w.strong_count() > 0);
            if let Some(f) = io.iter().find(|(f, _)| *f == flags).and_then(|(_, w)| w.upgrade()) {
                return Ok(f);
            }
        }
        let charge = self.fs.budget.charge_file()?;
        if flags == libc::O_RDONLY && self.kind == S_IFREG {
            if let Some(fd) = self.readable_fd()? {
                let f = Arc::new(IoFd { fd, _charge: charge });
                lock(&self.io).push((flags, Arc::downgrade(&f)));
                return Ok(f);
            }
        }
        let fd = match lock(&self.loc).clone() {
            Some((parent, name)) => {
                let pfd = parent.fd()?;
                self.open_verified(&pfd, &name, flags | libc::O_NONBLOCK | libc::O_NOCTTY)?
            }
            None => {
                let root = self.fd()?;
                // SAFETY: F_GETFL on a descriptor we hold.
                let have = unsafe { libc::fcntl(root.as_raw_fd(), libc::F_GETFL) };
                let acc = flags & libc::O_ACCMODE;
                if have < 0
                    || have & libc::O_PATH != 0
                    || (acc != libc::O_RDONLY && have & libc::O_ACCMODE != libc::O_RDWR)
                {
                    return Err(Errno::EACCES);
                }
                // SAFETY: duplicates a descriptor we hold.
                owned(cvt(unsafe { libc::fcntl(root.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?)
            }
        };
        let f = Arc::new(IoFd { fd: Arc::new(fd), _charge: charge });
        lock(&self.io).push((flags, Arc::downgrade(&f)));
        Ok(f)
    }

    /// A descriptor of this node that a guest's open holds, if any.
    fn live_io_fd(&self) -> Option<Arc<IoFd>> {
        lock(&self.io).iter().find_map(|(_, w)| w.upgrade())
    }

    /// A descriptor the f*xattr calls take (they refuse O_PATH ones): the
    /// node's own when it is open for reading, else a regular file's read
    /// descriptor, or a directory reopened from its own descriptor. Other
    /// kinds have none (None).
    fn xattr_fd(&self) -> Result<Option<XattrFd>, Errno> {
        // Any descriptor the guest's opens hold will do (an unlinked file
        // can be reached no other way).
        if let Some(f) = self.live_io_fd() {
            return Ok(Some(XattrFd::Io(f)));
        }
        if self.kind == S_IFREG || self.kind == S_IFDIR {
            if let Some(fd) = self.readable_fd()? {
                return Ok(Some(XattrFd::Node(fd)));
            }
        }
        match self.kind {
            S_IFREG => self.io_fd(libc::O_RDONLY).map(|f| Some(XattrFd::Io(f))),
            S_IFDIR => {
                let charge = self.fs.budget.charge_file()?;
                let r = reopen_dir(&*self.fd()?)?;
                Ok(Some(XattrFd::Io(Arc::new(IoFd { fd: Arc::new(owned(r)), _charge: charge }))))
            }
            _ => Ok(None),
        }
    }

    /// A descriptor of this node for the sandbox's locks on the host file
    /// (an open file description of its own, so its host locks are the
    /// sandbox's alone): read-write where the host allows, for write
    /// locks, else read-only (flock and read locks).
    fn lock_fd(&self) -> Result<crate::locks::HostLockFd, Errno> {
        let charge = self.fs.budget.charge_file()?;
        if self.kind == S_IFDIR {
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK;
            let fd = match lock(&self.loc).clone() {
                Some((parent, name)) => self.open_verified(&*parent.fd()?, &name, flags)?,
                // The mount's root, through its own O_PATH descriptor.
                None => self.open_verified(&*self.fd()?, &c".".to_owned(), flags)?,
            };
            return Ok(crate::locks::HostLockFd { fd, charge: Some(Box::new(charge)) });
        }
        let modes: &[libc::c_int] = if self.fs.readonly { &[libc::O_RDONLY] } else { &[libc::O_RDWR, libc::O_RDONLY] };
        let mut last = Errno::EACCES;
        for &mode in modes {
            let r = match lock(&self.loc).clone() {
                Some((parent, name)) => parent
                    .fd()
                    .and_then(|pfd| self.open_verified(&pfd, &name, mode | libc::O_NONBLOCK | libc::O_NOCTTY)),
                // A file mount's root: its descriptor's own description
                // would share locks with the guest's I/O; reads only.
                None => self.io_fd(libc::O_RDONLY).and_then(|io| {
                    // SAFETY: duplicates a descriptor we hold.
                    cvt(unsafe { libc::fcntl(io.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) }).map(owned)
                }),
            };
            match r {
                Ok(fd) => return Ok(crate::locks::HostLockFd { fd, charge: Some(Box::new(charge)) }),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// chmod of the node itself, through fchmodat2(2) on its descriptor
    /// (fchmod does not take O_PATH descriptors). Hosts before Linux 6.6
    /// have no fchmodat2: there the confined Sentry cannot chmod host files
    /// (EPERM). A symlink's mode cannot change: EOPNOTSUPP.
    fn chmod(&self, mode: u32) -> Result<(), Errno> {
        if self.kind == S_IFLNK {
            return Err(Errno::EOPNOTSUPP);
        }
        let fd = self.fd()?;
        let mode = (mode & 0o7777) as libc::c_uint;
        const SYS_FCHMODAT2: libc::c_long = 452;
        // SAFETY: the path is a valid empty C string; AT_EMPTY_PATH acts on the descriptor itself.
        let r = unsafe { libc::syscall(SYS_FCHMODAT2, fd.as_raw_fd(), c"".as_ptr(), mode, libc::AT_EMPTY_PATH) };
        if r == 0 {
            return Ok(());
        }
        match last_errno() {
            Errno::ENOSYS => Err(Errno::EPERM),
            e => Err(e),
        }
    }

    fn chown(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let u = uid.map_or(u32::MAX, |u| u);
        let g = gid.map_or(u32::MAX, |g| g);
        let fd = self.fd()?;
        // SAFETY: the path is a valid empty C string; AT_EMPTY_PATH acts on the descriptor itself.
        cvt(unsafe {
            libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), u, g, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
        })?;
        Ok(())
    }

    /// After creating a node: give it the exact permission bits asked for
    /// (the Sentry's own umask must not apply) and, best effort, the
    /// creator's identity (the host may not map it).
    fn settle_new(&self, node: &HostInode, mode: u32, creds: &Creds) {
        let Ok(st) = node.stat() else { return };
        if st.st_mode & S_IFMT != S_IFLNK && st.st_mode & 0o7777 != mode & 0o7777 {
            let _ = node.chmod(mode);
        }
        let parent_sgid = self.stat().map(|p| p.st_mode & 0o2000 != 0).unwrap_or(false);
        let gid = if parent_sgid { None } else { Some(creds.fsgid) };
        if st.st_uid != creds.fsuid || gid.is_some_and(|g| g != st.st_gid) {
            let _ = node.chown(Some(creds.fsuid), gid);
            if st.st_mode & S_IFMT != S_IFLNK && mode & 0o6000 != 0 {
                // chown clears set-id bits; put them back if they were asked for.
                let _ = node.chmod(mode);
            }
        }
    }

    /// The child `name`, never following a symlink.
    fn child(&self, name: &CString) -> Result<Arc<HostInode>, Errno> {
        let me = self.arc()?;
        let dir = self.fd()?;
        // The common case, a node in use: one statx of the name finds it
        // (no open, no close), even one whose descriptor was evicted (it
        // is reopened when needed). A stale answer is harmless: the node's
        // own descriptor, or its reopening through the name, which checks
        // the identity, still names exactly that node.
        // That statx is also the node's revalidation (its attributes).
        let generation = self.fs.generation.load(Ordering::Acquire);
        let (st, ident) = statx_at(dir.as_raw_fd(), name, false)?;
        let kind = st.st_mode & S_IFMT;
        let known = lock(&self.fs.nodes).get(&ident).and_then(Weak::upgrade);
        if let Some(n) = known.filter(|n| n.kind == kind) {
            n.relocate(Some((me, name.clone())));
            n.attrs.put(st, generation);
            return Ok(n);
        }
        // A node met for the first time gets its descriptor only when
        // something needs one (`fd`, which opens it through this directory
        // and the name and checks the identity this statx gave).
        let n = self.fs.node_named(&me, name, ident, kind);
        n.attrs.put(st, generation);
        Ok(n)
    }

    /// Whether the host no longer has this node under the name it was
    /// reached by (for a filesystem that caches nodes above this one: the
    /// overlay). Asks the host only when the policy no longer trusts the
    /// node's attributes.
    fn name_is_stale(&self) -> bool {
        let generation = self.fs.generation.load(Ordering::Acquire);
        if self.attrs.get(self.fs.policy, generation).is_some() {
            return false;
        }
        let Ok((parent, name)) = self.location() else { return false };
        let Ok(pfd) = parent.fd() else { return true };
        match statx_at(pfd.as_raw_fd(), &name, false) {
            Ok((st, ident)) if ident == self.ident => {
                self.attrs.put(st, generation);
                false
            }
            _ => true,
        }
    }

    /// A symlink without a descriptor: read through its parent and name,
    /// then a statx of the name must still show this node (a name swapped
    /// before the read shows another; one swapped after it, too, and the
    /// answer is thrown away). Two host calls instead of an open, its
    /// identity check and the read. None: ask the slow way.
    fn readlink_by_name(&self) -> Option<Vec<u8>> {
        let (parent, name) = lock(&self.loc).clone()?;
        let pfd = parent.fd().ok()?;
        let mut buf = vec![0u8; PATH_MAX];
        // SAFETY: `name` is a valid C string; the pointer and length describe `buf`.
        let n = unsafe { libc::readlinkat(pfd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return None;
        }
        let generation = self.fs.generation.load(Ordering::Acquire);
        let (st, ident) = statx_at(pfd.as_raw_fd(), &name, false).ok()?;
        if ident != self.ident {
            return None;
        }
        self.attrs.put(st, generation);
        buf.truncate(n as usize);
        Some(buf)
    }

    /// Every entry of this directory but "." and "..", from the host.
    fn read_entries(&self) -> Result<Vec<DirEntry>, Errno> {
        // The node's own descriptor when it is open for reading (rewound;
        // its offset is shared, hence the lock), else one of our own.
        let own = self.readable_fd()?;
        let mut listed = own.as_ref().map(|_| lock(&self.listing));
        let dir: Arc<OwnedFd> = match own {
            Some(fd) => {
                let at = Arc::as_ptr(&fd) as usize;
                // SAFETY: lseek on a descriptor we hold.
                if listed.as_deref() == Some(&at) && unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET) } < 0 {
                    return Err(last_errno());
                }
                if let Some(l) = listed.as_deref_mut() {
                    *l = at;
                }
                fd
            }
            None => Arc::new(owned(reopen_dir(&*self.fd()?)?)),
        };
        let mut out = Vec::new();
        DIRENT_BUF.with_borrow_mut(|buf| read_dirents(dir.as_raw_fd(), buf, &mut out))?;
        Ok(out)
    }

    fn downcast(i: &InodeRef) -> Option<&HostInode> {
        i.as_any().downcast_ref::<HostInode>()
    }
}

impl Inode for HostInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let generation = self.fs.generation.load(Ordering::Acquire);
        if let Some(st) = self.attrs.get(self.fs.policy, generation) {
            return Ok(st);
        }
        if self.slot.get().is_none() {
            // An unlinked file is still reachable through a guest's open.
            if let Some(f) = self.live_io_fd() {
                return fstat_fd(f.fd.as_raw_fd());
            }
            // No descriptor: a statx of the name, if it still names this
            // node, instead of opening one.
            if let Some((parent, name)) = lock(&self.loc).clone() {
                if let Ok(pfd) = parent.fd() {
                    if let Ok((st, ident)) = statx_at(pfd.as_raw_fd(), &name, false) {
                        if ident == self.ident {
                            self.attrs.put(st, generation);
                            return Ok(st);
                        }
                    }
                }
            }
        }
        let st = fstat_fd(self.fd()?.as_raw_fd())?;
        self.attrs.put(st, generation);
        Ok(st)
    }

    fn is_stale(&self) -> bool {
        self.name_is_stale()
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        let fd = self.fd()?;
        let mut s = Statfs::default();
        // SAFETY: abi::Statfs has the x86-64 kernel `struct statfs` layout,
        // so the raw syscall fills it in place; O_PATH descriptors are accepted.
        let r = unsafe { libc::syscall(libc::SYS_fstatfs, fd.as_raw_fd(), &mut s as *mut Statfs) };
        if r < 0 {
            return Err(last_errno());
        }
        if self.fs.readonly {
            s.f_flags |= libc::ST_RDONLY as i64;
        }
        Ok(s)
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let c = cname(name)?;
        Ok(self.child(&c)?)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        // The attributes as the mount's policy has them now (one statx per
        // guest call on a bind mount) tell whether the listing kept is
        // still the directory's.
        let generation = self.fs.generation.load(Ordering::Acquire);
        let st = self.stat()?;
        if let Some(list) = self.entries.get(&st, generation) {
            return Ok(list);
        }
        let read_at = crate::now();
        let list = self.read_entries()?;
        self.entries.put(&st, generation, read_at, &list);
        Ok(list)
    }

    fn create(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<InodeRef, Errno> {
        let _changing = Changing(&self.fs);
        let c = cname(name)?;
        self.check_writable()?;
        let me = self.arc()?;
        let dir = self.fd()?;
        let perm = (mode & 0o7777) as libc::c_uint;
        // SAFETY: `c` is a valid C string; the result is checked.
        let fd = retry(|| unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_RDONLY | libc::O_CLOEXEC,
                perm,
            )
        })?;
        // The new file's own descriptor serves as its node descriptor.
        let node = self.fs.node(&me, c, owned(fd), true, None)?;
        self.settle_new(&node, mode, creds);
        Ok(node)
    }

    fn mkdir(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<(), Errno> {
        let _changing = Changing(&self.fs);
        let c = cname(name)?;
        self.check_writable()?;
        let dir = self.fd()?;
        // SAFETY: `c` is a valid C string.
        cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), (mode & 0o7777) as libc::mode_t) })?;
        if let Ok(node) = self.child(&c) {
            if node.kind == S_IFDIR {
                self.settle_new(&node, mode, creds);
            }
        }
        Ok(())
    }

    fn mknod(&self, name: &[u8], mode: u32, _rdev: u64, creds: &Creds) -> Result<(), Errno> {
        let _changing = Changing(&self.fs);
        let c = cname(name)?;
        self.check_writable()?;
        let kind = mode & S_IFMT;
        match kind {
            0 | S_IFREG => return self.create(name, mode, creds).map(|_| ()),
            S_IFIFO | S_IFSOCK => {}
            S_IFCHR | S_IFBLK => return Err(Errno::EPERM),
            S_IFDIR => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        }
        let dir = self.fd()?;
        // SAFETY: `c` is a valid C string.
        cvt(unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), (kind | (mode & 0o7777)) as libc::mode_t, 0) })?;
        if let Ok(node) = self.child(&c) {
            if node.kind == kind {
                self.settle_new(&node, mode, creds);
            }
        }
        Ok(())
    }

    fn symlink(&self, name: &[u8], target: &[u8], creds: &Creds) -> Result<(), Errno> {
        let _changing = Changing(&self.fs);
        let c = cname(name)?;
        self.check_writable()?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let t = CString::new(target).map_err(|_| Errno::EINVAL)?;
        let dir = self.fd()?;
        // SAFETY: both are valid C strings.
        cvt(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) })?;
        if let Ok(node) = self.child(&c) {
            if node.kind == S_IFLNK {
                self.settle_new(&node, 0o777, creds);
            }
        }
        Ok(())
    }

    fn link(&self, name: &[u8], target: &InodeRef) -> Result<(), Errno> {
        let _changing = Changing(&self.fs);
        let c = cname(name)?;
        let t = Self::downcast(target).ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&self.fs, &t.fs) {
            return Err(Errno::EXDEV);
        }
        self.check_writable()?;
        if t.kind == S_IFDIR {
            return Err(Errno::EPERM);
        }
        let dir = self.fd()?;
        let tfd = t.fd()?;
        // SAFETY: valid C strings; AT_EMPTY_PATH links the node the descriptor holds.
        let r = cvt(unsafe {
            libc::linkat(tfd.as_raw_fd(), c"".as_ptr(), dir.as_raw_fd(), c.as_ptr(), libc::AT_EMPTY_PATH)
        });
        match r {
            Ok(_) => Ok(()),
            Err(Errno::ENOENT) | Err(Errno::EPERM) => {
                // Without CAP_DAC_READ_SEARCH AT_EMPTY_PATH is refused: link
                // the target's name in its parent (never following a
                // symlink), then check the new name is the target.
                let (tparent, tname) = t.location().map_err(|_| Errno::EXDEV)?;
                let pfd = tparent.fd()?;
                // SAFETY: valid C strings and descriptors we hold.
                cvt(unsafe { libc::linkat(pfd.as_raw_fd(), tname.as_ptr(), dir.as_raw_fd(), c.as_ptr(), 0) })?;
                if ident_at(dir.as_raw_fd(), &c, false).map(|(i, _)| i) != Ok(t.ident) {
                    // SAFETY: `c` is a valid C string.
                    unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
                    return Err(Errno::ESTALE);
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        let _changing = Changing(&self.fs);
        let c = cname(name)?;
        self.check_writable()?;
        let dir = self.fd()?;
        let gone = ident_at(dir.as_raw_fd(), &c, false).ok();
        // SAFETY: `c` is a valid C string.
        cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) })?;
        self.fs.removed(gone);
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        let _changing = Changing(&self.fs);
        let c = cname(name)?;
        self.check_writable()?;
        let dir = self.fd()?;
        let gone = ident_at(dir.as_raw_fd(), &c, false).ok();
        // SAFETY: `c` is a valid C string.
        cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) })?;
        self.fs.removed(gone);
        Ok(())
    }

    fn rename(&self, name: &[u8], new_dir: &InodeRef, new_name: &[u8], flags: u32) -> Result<(), Errno> {
        let _changing = Changing(&self.fs);
        let c = cname(name)?;
        let nc = cname(new_name)?;
        let nd = Self::downcast(new_dir).ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&self.fs, &nd.fs) {
            return Err(Errno::EXDEV);
        }
        self.check_writable()?;
        let (from, to) = (self.fd()?, nd.fd()?);
        // SAFETY: valid C strings and descriptors; flags are checked by the host.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                from.as_raw_fd(),
                c.as_ptr(),
                to.as_raw_fd(),
                nc.as_ptr(),
                flags as libc::c_uint,
            )
        };
        if r < 0 {
            return Err(last_errno());
        }
        // Live nodes moved (both, for RENAME_EXCHANGE) learn their new names.
        self.fs.renamed(&nd.arc()?, &nc);
        self.fs.renamed(&self.arc()?, &c);
        Ok(())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if self.kind == S_IFLNK && !self.slot.is_filled() {
            if let Some(target) = self.readlink_by_name() {
                return Ok(target);
            }
        }
        let fd = self.fd()?;
        let mut buf = vec![0u8; PATH_MAX];
        // SAFETY: the buffer pointer and length describe `buf`; the path is empty.
        let n = unsafe { libc::readlinkat(fd.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = last_errno();
            // Not a symlink: readlinkat on an empty path says ENOENT.
            return Err(if e == Errno::ENOENT { Errno::EINVAL } else { e });
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        match self.xattr_fd()? {
            Some(f) => crate::hostfs_xattr::get(f.raw(), name),
            None => Err(Errno::ENODATA),
        }
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        let _changing = Changing(&self.fs);
        self.check_writable()?;
        match self.xattr_fd()? {
            Some(f) => crate::hostfs_xattr::set(f.raw(), name, value, flags),
            None => Err(Errno::EOPNOTSUPP),
        }
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        match self.xattr_fd()? {
            Some(f) => crate::hostfs_xattr::list(f.raw()),
            None => Ok(Vec::new()),
        }
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        let _changing = Changing(&self.fs);
        self.check_writable()?;
        match self.xattr_fd()? {
            Some(f) => crate::hostfs_xattr::remove(f.raw(), name),
            None => Err(Errno::ENODATA),
        }
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        let _changing = Changing(&self.fs);
        self.check_writable()?;
        let kind = self.kind;
        if let Some(size) = attr.size {
            match kind {
                S_IFREG => {}
                S_IFDIR => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            let size = i64::try_from(size).map_err(|_| Errno::EFBIG)?;
            let f = self.io_fd(libc::O_WRONLY)?;
            // SAFETY: `f` is a descriptor we hold.
            retry(|| unsafe { libc::ftruncate(f.fd.as_raw_fd(), size) })?;
        }
        if attr.uid.is_some() || attr.gid.is_some() {
            self.chown(attr.uid, attr.gid)?;
        }
        if let Some(mode) = attr.mode {
            self.chmod(mode)?;
        }
        if attr.atime.is_some() || attr.mtime.is_some() {
            let ts = |t: Option<(i64, i64)>| match t {
                Some((s, ns)) => libc::timespec { tv_sec: s, tv_nsec: ns },
                None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
            };
            let times = [ts(attr.atime), ts(attr.mtime)];
            let fd = self.fd()?;
            // SAFETY: `times` is a valid array of two timespecs; the path is empty.
            let r = cvt(unsafe {
                libc::utimensat(
                    fd.as_raw_fd(),
                    c"".as_ptr(),
                    times.as_ptr(),
                    libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                )
            });
            match r {
                Ok(_) => {}
                Err(Errno::EINVAL) if kind != S_IFLNK => {
                    // Older hosts: no AT_EMPTY_PATH for utimensat.
                    let f = self.io_fd(libc::O_RDONLY)?;
                    // SAFETY: `times` as above, on a descriptor we hold.
                    cvt(unsafe { libc::futimens(f.fd.as_raw_fd(), times.as_ptr()) })?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        let acc = flags & O_ACCMODE;
        let writing = acc != O_RDONLY;
        match self.kind {
            S_IFDIR => {
                if writing {
                    return Err(Errno::EISDIR);
                }
                Ok(Arc::new(DirFile))
            }
            S_IFLNK => Err(Errno::ELOOP),
            S_IFREG => {
                if writing {
                    self.check_writable()?;
                }
                let mut host = acc as libc::c_int;
                host |= (flags & (O_SYNC | O_DSYNC)) as libc::c_int;
                Ok(Arc::new(HostFile { io: self.io_fd(host)?, fs: self.fs.clone() }))
            }
            S_IFIFO => {
                // Each open is its own host open (FIFO open semantics count
                // readers and writers), non-blocking so the open cannot
                // hang; the guest's blocking reads and writes wait in
                // HostFdFile.
                let charge = self.fs.budget.charge_file()?;
                let (parent, name) = self.location()?;
                let pfd = parent.fd()?;
                let fd = self.open_verified(&pfd, &name, acc as libc::c_int | libc::O_NONBLOCK | libc::O_NOCTTY)?;
                Ok(crate::hostfd::HostFdFile::new_charged(fd, charge))
            }
            S_IFSOCK => Err(Errno::ENXIO),
            _ => Err(Errno::EACCES),
        }
    }

    fn has_host_locks(&self) -> bool {
        self.kind == S_IFREG || self.kind == S_IFDIR
    }

    fn host_lock_fd(&self) -> Option<Result<crate::locks::HostLockFd, Errno>> {
        self.has_host_locks().then(|| self.lock_fd())
    }

    fn same_node(&self, other: &dyn Inode) -> bool {
        let Some(other) = other.as_any().downcast_ref::<HostInode>() else { return false };
        match (self.stat(), other.stat()) {
            (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
            _ => false,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

thread_local! {
    /// The buffer each Sentry thread reads host directory entries into
    /// (kept: a fresh zeroed 32 KiB per listing cost more than the call).
    static DIRENT_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 32 * 1024]);
}

/// Every entry of the open directory `fd` from its current offset but
/// "." and "..", appended to `out`.
fn read_dirents(fd: RawFd, buf: &mut [u8], out: &mut Vec<DirEntry>) -> Result<(), Errno> {
    loop {
        // SAFETY: the buffer pointer and length describe `buf`.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            let e = last_errno();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        let data = buf.get(..n as usize).ok_or(Errno::EIO)?;
        let mut pos = 0usize;
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        while pos + 19 <= data.len() {
            let ino = u64::from_ne_bytes(data[pos..pos + 8].try_into().map_err(|_| Errno::EIO)?);
            let reclen = u16::from_ne_bytes([data[pos + 16], data[pos + 17]]) as usize;
            let d_type = data[pos + 18];
            if reclen < 19 || pos + reclen > data.len() {
                return Err(Errno::EIO);
            }
            let raw = &data[pos + 19..pos + reclen];
            let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
            if name != b"." && name != b".." {
                out.push(DirEntry { ino, d_type, name: name.to_vec() });
            }
            pos += reclen;
        }
    }
    Ok(())
}

/// An open host regular file: positioned reads and writes on a descriptor
/// shared by the guest's opens of the node with the same flags.
struct HostFile {
    io: Arc<IoFd>,
    fs: Arc<FsInfo>,
}

fn offset(off: u64) -> Result<libc::off_t, Errno> {
    libc::off_t::try_from(off).map_err(|_| Errno::EINVAL)
}

impl HostFile {
    fn raw(&self) -> RawFd {
        self.io.fd.as_raw_fd()
    }
}

impl FileOps for HostFile {
    fn host_fd(&self) -> Option<RawFd> {
        Some(self.raw())
    }

    fn read(&self, _ctx: &IoCtx, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let off = offset(off)?;
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let n = unsafe { libc::pread(self.raw(), buf.as_mut_ptr().cast(), buf.len(), off) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = last_errno();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }

    fn write(&self, ctx: &IoCtx, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let off = offset(off)?;
        let _changing = Changing(&self.fs);
        if ctx.flags & O_APPEND != 0 {
            // An atomic append on the host, whoever else appends meanwhile.
            let iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
            loop {
                // SAFETY: one iovec describing `buf`, which the kernel only reads.
                let n = unsafe {
                    libc::syscall(libc::SYS_pwritev2, self.raw(), &iov as *const libc::iovec, 1, 0, 0, libc::RWF_APPEND)
                };
                if n >= 0 {
                    return Ok(n as usize);
                }
                match last_errno() {
                    Errno::EINTR => continue,
                    // Hosts before 4.16: positioned write at the end the VFS found.
                    Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::EINVAL => break,
                    e => return Err(e),
                }
            }
        }
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let n = unsafe { libc::pwrite(self.raw(), buf.as_ptr().cast(), buf.len(), off) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = last_errno();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }

    fn size(&self) -> Result<u64, Errno> {
        Ok(fstat_fd(self.raw())?.st_size.max(0) as u64)
    }

    fn fsync(&self) -> Result<(), Errno> {
        // SAFETY: a descriptor we hold.
        retry(|| unsafe { libc::fsync(self.raw()) })?;
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wait::Interrupt;
    use abi::flags::{O_RDWR, O_WRONLY};
    use std::path::PathBuf;

    /// A fresh directory under /tmp, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "vfs-test-{tag}-{}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed),
                crate::now().1
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ctx(irq: &Interrupt) -> IoCtx<'_> {
        IoCtx { flags: 0, interrupt: irq }
    }

    #[test]
    fn lookup_stat_read_never_follows() {
        let td = TempDir::new("hostfs");
        std::fs::write(td.0.join("f"), b"hello").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", td.0.join("l")).unwrap();
        std::fs::create_dir(td.0.join("d")).unwrap();
        let root = HostFs::new_root(&td.0, false).unwrap();
        let irq = Interrupt::default();
        let f = root.lookup(b"f").unwrap();
        let st = f.stat().unwrap();
        let hs = std::fs::metadata(td.0.join("f")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((st.st_ino, st.st_dev, st.st_size), (hs.ino(), hs.dev(), 5));
        let mut b = [0u8; 16];
        let fo = f.open(O_RDONLY).unwrap();
        assert_eq!(fo.read(&ctx(&irq), &mut b, 1), Ok(4));
        assert_eq!(&b[..4], b"ello");
        assert_eq!(fo.size(), Ok(5));
        let l = root.lookup(b"l").unwrap();
        assert_eq!(l.stat().unwrap().st_mode & S_IFMT, S_IFLNK);
        assert_eq!(l.readlink().unwrap(), b"/etc/passwd");
        assert_eq!(l.open(O_RDONLY).err(), Some(Errno::ELOOP));
        assert_eq!(l.lookup(b"x").err(), Some(Errno::ENOTDIR));
        assert_eq!(f.readlink().err(), Some(Errno::EINVAL));
        assert_eq!(root.lookup(b"..").err(), Some(Errno::EINVAL));
        assert_eq!(root.lookup(b"d/../f").err(), Some(Errno::EINVAL));
        assert_eq!(root.lookup(b"nope").err(), Some(Errno::ENOENT));
        let mut names: Vec<_> = root.readdir().unwrap().into_iter().map(|e| e.name).collect();
        names.sort();
        assert_eq!(names, vec![b"d".to_vec(), b"f".to_vec(), b"l".to_vec()]);
        let d = root.lookup(b"d").unwrap();
        assert_eq!(d.open(O_RDONLY).unwrap().read(&ctx(&irq), &mut b, 0), Err(Errno::EISDIR));
        assert_eq!(d.open(O_WRONLY).err(), Some(Errno::EISDIR));
    }

    #[test]
    fn mutations() {
        let td = TempDir::new("hostfs-rw");
        let root = HostFs::new_root(&td.0, false).unwrap();
        let irq = Interrupt::default();
        let c = Creds::root();
        let f = root.create(b"f", S_IFREG | 0o666, &c).unwrap();
        assert_eq!(root.create(b"f", 0o644, &c).err(), Some(Errno::EEXIST));
        // O_APPEND appends at the real end even when the offset given is stale.
        let a = f.open(O_WRONLY).unwrap();
        a.write(&ctx(&irq), b"one", 0).unwrap();
        let app = IoCtx { flags: abi::flags::O_APPEND, interrupt: &irq };
        assert_eq!(a.write(&app, b"two", 0), Ok(3));
        assert_eq!(std::fs::read(td.0.join("f")).unwrap(), b"onetwo");
        f.setattr(&SetAttr { size: Some(0), ..Default::default() }).unwrap();
        // Exact mode despite the process umask.
        assert_eq!(f.stat().unwrap().st_mode, S_IFREG | 0o666);
        let fo = f.open(O_RDWR).unwrap();
        assert_eq!(fo.write(&ctx(&irq), b"0123456789", 0), Ok(10));
        assert_eq!(std::fs::read(td.0.join("f")).unwrap(), b"0123456789");
        f.setattr(&SetAttr { size: Some(4), mode: Some(0o600), mtime: Some((1000, 5)), ..Default::default() }).unwrap();
        let st = f.stat().unwrap();
        assert_eq!((st.st_size, st.st_mode & 0o7777, st.st_mtime, st.st_mtime_nsec), (4, 0o600, 1000, 5));
        root.mkdir(b"d", 0o777, &c).unwrap();
        assert_eq!(root.lookup(b"d").unwrap().stat().unwrap().st_mode, S_IFDIR | 0o777);
        let d = root.lookup(b"d").unwrap();
        d.link(b"hard", &f).unwrap();
        assert_eq!(f.stat().unwrap().st_nlink, 2);
        root.symlink(b"s", b"/etc/shadow", &c).unwrap();
        let s = root.lookup(b"s").unwrap();
        d.link(b"hs", &s).unwrap();
        assert_eq!(d.lookup(b"hs").unwrap().readlink().unwrap(), b"/etc/shadow");
        assert_eq!(s.setattr(&SetAttr { mode: Some(0o600), ..Default::default() }), Err(Errno::EOPNOTSUPP));
        root.mknod(b"p", S_IFIFO | 0o640, 0, &c).unwrap();
        assert_eq!(root.lookup(b"p").unwrap().stat().unwrap().st_mode, S_IFIFO | 0o640);
        assert_eq!(root.mknod(b"dev", S_IFCHR | 0o640, 0x103, &c), Err(Errno::EPERM));
        assert_eq!(root.rmdir(b"d").err(), Some(Errno::ENOTEMPTY));
        assert_eq!(root.unlink(b"d").err(), Some(Errno::EISDIR));
        root.rename(b"f", &d, b"moved", 0).unwrap();
        assert!(td.0.join("d/moved").exists());
        assert_eq!(d.rename(b"moved", &d, b"hard", abi::flags::RENAME_NOREPLACE), Err(Errno::EEXIST));
        let other = HostFs::new_root(&td.0, false).unwrap();
        assert_eq!(root.rename(b"s", &other, b"s2", 0), Err(Errno::EXDEV));
        assert_eq!(other.link(b"x", &f), Err(Errno::EXDEV));
        let tmp = crate::tmpfs::TmpFs::new_root(0o755, 0, 0);
        assert_eq!(root.rename(b"s", &tmp, b"s2", 0), Err(Errno::EXDEV));
        for n in [&b"moved"[..], b"hard", b"hs"] {
            d.unlink(n).unwrap();
        }
        root.rmdir(b"d").unwrap();
        assert!(!td.0.join("d").exists());
    }

    #[test]
    fn readonly_is_erofs() {
        let td = TempDir::new("hostfs-ro");
        std::fs::write(td.0.join("f"), b"x").unwrap();
        std::fs::create_dir(td.0.join("d")).unwrap();
        let root = HostFs::new_root(&td.0, true).unwrap();
        let c = Creds::root();
        let f = root.lookup(b"f").unwrap();
        assert_eq!(root.create(b"n", 0o644, &c).err(), Some(Errno::EROFS));
        assert_eq!(root.mkdir(b"n", 0o755, &c), Err(Errno::EROFS));
        assert_eq!(root.mknod(b"n", S_IFIFO | 0o644, 0, &c), Err(Errno::EROFS));
        assert_eq!(root.symlink(b"n", b"x", &c), Err(Errno::EROFS));
        assert_eq!(root.link(b"n", &f), Err(Errno::EROFS));
        assert_eq!(root.unlink(b"f"), Err(Errno::EROFS));
        assert_eq!(root.rmdir(b"d"), Err(Errno::EROFS));
        assert_eq!(root.rename(b"f", &root, b"g", 0), Err(Errno::EROFS));
        assert_eq!(f.setattr(&SetAttr { size: Some(0), ..Default::default() }), Err(Errno::EROFS));
        assert_eq!(f.open(O_WRONLY).err(), Some(Errno::EROFS));
        assert!(f.open(O_RDONLY).is_ok());
        assert_eq!(std::fs::read(td.0.join("f")).unwrap(), b"x");
        assert_ne!(root.statfs().unwrap().f_flags & libc::ST_RDONLY as i64, 0);
    }

    #[test]
    fn descriptors_are_bounded_and_nodes_reopen_by_name() {
        let td = TempDir::new("hostfs-budget");
        std::fs::create_dir(td.0.join("d")).unwrap();
        for i in 0..100 {
            std::fs::write(td.0.join(format!("d/f{i}")), format!("{i}")).unwrap();
        }
        let budget = FdBudget::new(16, 16);
        let root = HostFs::from_fd(HostFs::open_root(&td.0, false).unwrap(), false, budget.clone()).unwrap();
        let irq = Interrupt::default();
        let d = root.lookup(b"d").unwrap();
        let nodes: Vec<InodeRef> = (0..100).map(|i| d.lookup(format!("f{i}").as_bytes()).unwrap()).collect();
        assert!(budget.held().0 <= 16, "{:?}", budget.held());
        // Every node still reads (reopened through d and its name).
        for (i, n) in nodes.iter().enumerate() {
            let mut b = [0u8; 8];
            let k = n.open(O_RDONLY).unwrap().read(&ctx(&irq), &mut b, 0).unwrap();
            assert_eq!(&b[..k], format!("{i}").as_bytes());
        }
        // The same node twice is one node, and opens share one host file.
        let again = d.lookup(b"f7").unwrap();
        assert!(Arc::ptr_eq(&again, &nodes[7]));
        let opens: Vec<_> = (0..50).map(|_| again.open(O_RDONLY).unwrap()).collect();
        assert_eq!(budget.held().1, 1);
        drop(opens);
        // Past the open-file cap: ENFILE, and the Sentry keeps going.
        let many: Vec<_> = nodes.iter().take(16).map(|n| n.open(O_RDONLY).unwrap()).collect();
        assert_eq!(nodes[20].open(O_RDONLY).err(), Some(Errno::ENFILE));
        drop(many);
        // A guest rename is followed even after the node lost its descriptor.
        root.rename(b"d", &root, b"e", 0).unwrap();
        for n in &nodes {
            let _ = n.stat().unwrap();
        }
        let mut b = [0u8; 8];
        assert_eq!(nodes[42].open(O_RDONLY).unwrap().read(&ctx(&irq), &mut b, 0), Ok(2));
        // A host-side swap is noticed, not followed.
        std::fs::remove_file(td.0.join("e/f3")).unwrap();
        std::fs::write(td.0.join("e/f3"), b"other").unwrap();
        for n in nodes.iter().skip(50) {
            let _ = n.stat();
        }
        match nodes[3].open(O_RDONLY) {
            Err(e) => assert_eq!(e, Errno::ESTALE),
            Ok(f) => assert_eq!(f.read(&ctx(&irq), &mut b, 0), Ok(1), "still the old file's descriptor"),
        }
    }

    #[test]
    fn lookups_open_nothing_until_needed() {
        let td = TempDir::new("hostfs-lazy");
        std::fs::write(td.0.join("f"), b"data").unwrap();
        std::fs::write(td.0.join("g"), b"gone").unwrap();
        std::os::unix::fs::symlink("f", td.0.join("l")).unwrap();
        std::fs::create_dir(td.0.join("d")).unwrap();
        let budget = FdBudget::new(16, 16);
        let root = HostFs::from_fd(HostFs::open_root(&td.0, false).unwrap(), false, budget.clone()).unwrap();
        let irq = Interrupt::default();
        let (f, l, d, g) = (
            root.lookup(b"f").unwrap(),
            root.lookup(b"l").unwrap(),
            root.lookup(b"d").unwrap(),
            root.lookup(b"g").unwrap(),
        );
        assert_eq!(budget.held().0, 0, "a lookup opened a descriptor");
        assert_eq!(f.stat().unwrap().st_size, 4);
        assert_eq!(l.readlink().unwrap(), b"f");
        assert_eq!(budget.held().0, 0, "a stat or readlink opened a descriptor");
        // Needed: opened then, and shared by the reads.
        let mut b = [0u8; 8];
        assert_eq!(f.open(O_RDONLY).unwrap().read(&ctx(&irq), &mut b, 0), Ok(4));
        assert!(d.readdir().unwrap().is_empty());
        assert_eq!(budget.held().0, 2);
        // Replaced on the host before it was ever opened: never the new file.
        std::fs::remove_file(td.0.join("g")).unwrap();
        std::fs::write(td.0.join("g"), b"another").unwrap();
        assert_eq!(g.stat().map(|s| s.st_size).err(), Some(Errno::ESTALE));
        assert_eq!(g.open(O_RDONLY).err(), Some(Errno::ESTALE));
    }
}
