//! Mounts, dentries and path resolution.
//!
//! Paths are walked here, one component at a time, against the sandbox's
//! own mount table: ".." never climbs above the sandbox root, and every
//! symlink is read with `Inode::readlink` and resolved inside the sandbox,
//! never on the host.
//!
//! Dentries form one tree per namespace: a walk reuses the live dentry of
//! a name when it still names the same node (`Inode::same_node`), so two
//! processes that reach a directory share its dentry, and a rename moves
//! that dentry for all of them (getcwd, /proc/PID/cwd and /proc/PID/fd
//! show the new path, as on Linux). Paths are computed by walking up the
//! parents, never stored. Lookups still ask the filesystem every time
//! (no negative caching here): each filesystem decides what a lookup of a
//! name it knows costs (hostfs revalidates per mount, see
//! [`crate::attrcache`]; the overlay and tmpfs answer from memory).
//!
//! The dentry cache: the last [`RECENT_DENTRIES`] dentries a walk went
//! through stay alive (a ring of strong references, `Recent`), and with
//! them their inodes, so that walking a path again finds every node in
//! memory instead of rebuilding it from the host. A dentry leaves the ring
//! when its name is removed or replaced (its holders, as Linux's dput,
//! decide when a deleted node goes away), or when the ring wraps.
//!
//! Locks: a dentry's `link` and its `children` are never held together,
//! nor two dentries' at once; no dentry is dropped under a `children` lock
//! (a drop takes its parent's).

use crate::inode::InodeRef;
use crate::Creds;
use abi::flags::{MAXSYMLINKS, PATH_MAX, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

/// Mount options the VFS enforces itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountFlags {
    pub readonly: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

/// A filesystem mounted somewhere in the sandbox.
pub struct Mount {
    pub id: u64,
    /// "tmpfs", "proc", "bind", "overlay", ...
    pub fs_type: String,
    /// What /proc/mounts shows as the source.
    pub source: String,
    /// Canonical absolute path of the mount point inside the sandbox.
    pub mountpoint: Vec<u8>,
    pub flags: MountFlags,
    pub root: InodeRef,
}

impl Mount {
    pub fn check_writable(&self) -> Result<(), Errno> {
        if self.flags.readonly {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }
}

/// A node in the sandbox's tree: its name in its parent directory, the
/// inode and the mount it is in.
pub struct Dentry {
    /// Name and parent; a rename changes both.
    link: RwLock<Link>,
    pub inode: InodeRef,
    pub mount: Arc<Mount>,
    /// The live dentries below this one, by name (weak: a dentry lives as
    /// long as a walk, a working directory or an open file holds it).
    children: Mutex<HashMap<Vec<u8>, Weak<Dentry>>>,
    /// The ring position it was last put at in the namespace's dentry
    /// cache (`NOT_PINNED`: never).
    pinned_at: AtomicU64,
}

const NOT_PINNED: u64 = u64::MAX;

/// How many recently walked dentries the namespace keeps alive. With 2,048
/// a second walk over a 5,000-file tree (a build, a repeated git status)
/// found none of it and rebuilt every node: 6.5 against 3.2 µs per lstat
/// with 8,192, for about 0.8 KiB of Sentry memory per kept dentry.
pub const RECENT_DENTRIES: usize = 8192;

/// The dentry cache's ring: slot `next % RECENT_DENTRIES` is replaced next.
#[derive(Default)]
struct Recent {
    ring: Vec<Option<DentryRef>>,
    next: u64,
}

struct Link {
    /// "/" for the namespace root.
    name: Vec<u8>,
    /// None only for the namespace root.
    parent: Option<DentryRef>,
}

impl Dentry {
    fn new(name: &[u8], parent: Option<DentryRef>, inode: InodeRef, mount: Arc<Mount>) -> DentryRef {
        Arc::new(Dentry {
            link: RwLock::new(Link { name: name.to_vec(), parent }),
            inode,
            mount,
            children: Mutex::new(HashMap::new()),
            pinned_at: AtomicU64::new(NOT_PINNED),
        })
    }

    /// A dentry for `inode` at the place of `at`, outside the tree (what a
    /// /proc fd link to a file without a path resolves to).
    pub fn detached(at: &Dentry, inode: InodeRef) -> DentryRef {
        let (name, parent) = {
            let l = crate::util::read(&at.link);
            (l.name.clone(), l.parent.clone())
        };
        Dentry::new(&name, parent, inode, at.mount.clone())
    }

    /// A dentry called `name` under `parent` that no walk finds: a file
    /// unlinked from birth (memfd_create's), whose path is still shown.
    pub fn unlisted(parent: &DentryRef, name: &[u8], inode: InodeRef) -> DentryRef {
        Dentry::new(name, Some(parent.clone()), inode, parent.mount.clone())
    }

    /// The last path component ("/" for the root).
    pub fn name(&self) -> Vec<u8> {
        crate::util::read(&self.link).name.clone()
    }

    /// The parent directory (None for the namespace root).
    pub fn parent(&self) -> Option<DentryRef> {
        crate::util::read(&self.link).parent.clone()
    }

    /// The canonical absolute path inside the sandbox, as it is now.
    pub fn path(&self) -> Vec<u8> {
        let mut names = vec![self.name()];
        let mut up = self.parent();
        while let Some(d) = up {
            let (name, parent) = {
                let l = crate::util::read(&d.link);
                (l.name.clone(), l.parent.clone())
            };
            if parent.is_some() {
                names.push(name);
            }
            up = parent;
        }
        if self.parent().is_none() {
            return b"/".to_vec();
        }
        let mut p = Vec::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        for n in names.iter().rev() {
            p.push(b'/');
            p.extend_from_slice(n);
        }
        p
    }

    pub fn is_dir(&self) -> bool {
        self.inode.stat().map(|s| s.st_mode & S_IFMT == S_IFDIR).unwrap_or(false)
    }

    pub fn is_regular(&self) -> bool {
        self.inode.stat().map(|s| s.st_mode & S_IFMT == S_IFREG).unwrap_or(false)
    }

    /// The live child dentry called `name`, if any.
    fn cached(&self, name: &[u8]) -> Option<DentryRef> {
        crate::util::lock(&self.children).get(name).and_then(Weak::upgrade)
    }

    /// Take `self` out of its parent's children and return the parent.
    fn detach(&mut self) -> Option<DentryRef> {
        let link = match self.link.get_mut() {
            Ok(l) => l,
            Err(e) => e.into_inner(),
        };
        let parent = link.parent.take()?;
        let mut kids = crate::util::lock(&parent.children);
        // Only a dead entry is ours: a live one is a newer dentry.
        if kids.get(&link.name).is_some_and(|w| w.strong_count() == 0) {
            kids.remove(&link.name);
        }
        drop(kids);
        Some(parent)
    }
}

impl Drop for Dentry {
    /// Parents are released in a loop, not by recursion: a guest can
    /// build a chain of directories as deep as it likes.
    fn drop(&mut self) {
        let mut next = self.detach();
        while let Some(p) = next {
            next = match Arc::try_unwrap(p) {
                Ok(mut d) => d.detach(),
                Err(_) => None,
            };
        }
    }
}

/// Whether two inodes are the same node.
fn same_node(a: &InodeRef, b: &InodeRef) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)) || a.same_node(b.as_ref())
}

pub type DentryRef = Arc<Dentry>;

/// What to do with a symlink as the last component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// Restrictions on a walk (openat2's RESOLVE_* flags); the default is
/// none. With `beneath` or `in_root` the walk's root is the starting
/// directory: `beneath` fails with EXDEV where the walk would leave it
/// (an absolute path or symlink, ".." above it, a magic link), `in_root`
/// treats it as "/" (Linux's chroot-like scoping).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkOpts {
    /// RESOLVE_NO_XDEV: EXDEV when a step would cross a mount.
    pub no_xdev: bool,
    /// RESOLVE_NO_MAGICLINKS: ELOOP at a /proc/[pid]/fd-style link.
    pub no_magiclinks: bool,
    /// RESOLVE_NO_SYMLINKS: ELOOP at any symlink followed.
    pub no_symlinks: bool,
    /// RESOLVE_BENEATH.
    pub beneath: bool,
    /// RESOLVE_IN_ROOT.
    pub in_root: bool,
}

impl WalkOpts {
    fn scoped(&self) -> bool {
        self.beneath || self.in_root
    }

    /// A step from `from` to `to`: EXDEV when it changes mounts and
    /// that is not allowed.
    fn check_step(&self, from: &Dentry, to: &Dentry) -> Result<(), Errno> {
        if self.no_xdev && from.mount.id != to.mount.id {
            return Err(Errno::EXDEV);
        }
        Ok(())
    }
}

const NO_OPTS: WalkOpts =
    WalkOpts { no_xdev: false, no_magiclinks: false, no_symlinks: false, beneath: false, in_root: false };

/// The sandbox's mount table and root.
pub struct MountNamespace {
    mounts: RwLock<Vec<Arc<Mount>>>,
    next_id: AtomicU64,
    root: DentryRef,
    /// The dentry cache (a leaf lock: nothing else is taken under it, and
    /// the dentries it lets go are dropped after it is released).
    recent: Mutex<Recent>,
    /// `Recent::next`, readable without the lock.
    recent_clock: AtomicU64,
}

impl MountNamespace {
    /// A namespace whose root is `root_fs`.
    pub fn new(fs_type: &str, source: &str, root_fs: InodeRef, flags: MountFlags) -> Arc<Self> {
        let root = Arc::new(Mount {
            id: 1,
            fs_type: fs_type.to_string(),
            source: source.to_string(),
            mountpoint: b"/".to_vec(),
            flags,
            root: root_fs,
        });
        let root_dentry = Dentry::new(b"/", None, root.root.clone(), root.clone());
        Arc::new(MountNamespace {
            mounts: RwLock::new(vec![root]),
            next_id: AtomicU64::new(2),
            root: root_dentry,
            recent: Mutex::new(Recent::default()),
            recent_clock: AtomicU64::new(0),
        })
    }

    /// The dentry of "/".
    pub fn root(&self) -> DentryRef {
        self.root.clone()
    }

    /// Mount `fs` at the canonical absolute path `at` (later mounts at the
    /// same path hide earlier ones).
    pub fn mount(&self, at: &[u8], fs_type: &str, source: &str, fs: InodeRef, flags: MountFlags) -> Arc<Mount> {
        let m = Arc::new(Mount {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            fs_type: fs_type.to_string(),
            source: source.to_string(),
            mountpoint: at.to_vec(),
            flags,
            root: fs,
        });
        crate::util::write(&self.mounts).push(m.clone());
        m
    }

    /// All mounts, in mount order (for /proc/mounts).
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        crate::util::read(&self.mounts).clone()
    }

    /// The mount on `dir`/`name`, if one is (the latest). Paths are only
    /// built when a mount point ends in `name`.
    fn mount_at(&self, dir: &Dentry, name: &[u8]) -> Option<Arc<Mount>> {
        let g = crate::util::read(&self.mounts);
        let ends_in_name = |m: &Mount| {
            m.mountpoint.ends_with(name) && m.mountpoint.len() > name.len() && {
                m.mountpoint[m.mountpoint.len() - name.len() - 1] == b'/'
            }
        };
        if !g.iter().skip(1).any(|m| ends_in_name(m)) {
            return None;
        }
        let path = join(&dir.path(), name);
        g.iter().skip(1).rev().find(|m| m.mountpoint == path).cloned()
    }

    /// The child `name` of directory `dir` (mount points crossed): the
    /// live dentry of that name if it still names the same node, else a
    /// new one.
    pub fn child(&self, dir: &DentryRef, name: &[u8]) -> Result<DentryRef, Errno> {
        let (inode, mount) = match self.mount_at(dir, name) {
            Some(m) => (m.root.clone(), m),
            None => (dir.inode.lookup(name)?, dir.mount.clone()),
        };
        let fits = |d: &DentryRef| d.mount.id == mount.id && same_node(&d.inode, &inode);
        if let Some(d) = dir.cached(name).filter(fits) {
            self.pin(&d);
            return Ok(d);
        }
        let fresh = Dentry::new(name, Some(dir.clone()), inode.clone(), mount.clone());
        let mut kids = crate::util::lock(&dir.children);
        let live = kids.get(name).and_then(Weak::upgrade);
        let found = match &live {
            // Another walk put the same node there meanwhile.
            Some(d) if d.mount.id == mount.id && std::ptr::addr_eq(Arc::as_ptr(&d.inode), Arc::as_ptr(&inode)) => {
                d.clone()
            }
            _ => {
                kids.insert(name.to_vec(), Arc::downgrade(&fresh));
                fresh.clone()
            }
        };
        // `live` and `fresh` may be last references: dropped only after the
        // lock, since a dentry's drop takes its parent's.
        drop(kids);
        drop(live);
        drop(fresh);
        self.pin(&found);
        Ok(found)
    }

    /// Keep `d` in the dentry cache. A dentry put there less than half a
    /// ring ago is left where it is (hot paths take no lock).
    fn pin(&self, d: &DentryRef) {
        // procfs nodes are made per walk and some hold what they show (an
        // open file behind /proc/PID/fd/N: kept alive, a pipe end would
        // never close); nothing there is worth keeping.
        if d.mount.fs_type == "proc" {
            return;
        }
        let last = d.pinned_at.load(Ordering::Relaxed);
        let now = self.recent_clock.load(Ordering::Relaxed);
        if last != NOT_PINNED && now.wrapping_sub(last) < (RECENT_DENTRIES / 2) as u64 {
            return;
        }
        let old = {
            let mut r = crate::util::lock(&self.recent);
            let at = r.next;
            r.next = at.wrapping_add(1);
            self.recent_clock.store(r.next, Ordering::Relaxed);
            d.pinned_at.store(at, Ordering::Relaxed);
            let slot = (at % RECENT_DENTRIES as u64) as usize;
            if r.ring.len() < RECENT_DENTRIES {
                r.ring.push(Some(d.clone()));
                None
            } else {
                r.ring.get_mut(slot).and_then(|s| s.replace(d.clone()))
            }
        };
        drop(old);
    }

    /// Take `d` out of the dentry cache (its name is gone).
    fn unpin(&self, d: &DentryRef) {
        if d.pinned_at.swap(NOT_PINNED, Ordering::Relaxed) == NOT_PINNED {
            return;
        }
        let mut olds = Vec::new();
        {
            let mut r = crate::util::lock(&self.recent);
            for s in r.ring.iter_mut() {
                if s.as_ref().is_some_and(|x| Arc::ptr_eq(x, d)) {
                    olds.push(s.take());
                }
            }
        }
        drop(olds);
    }

    /// `old_dir`/`old_name` was renamed to `new_dir`/`new_name` (swapped
    /// with it for RENAME_EXCHANGE): move the live dentries, so that every
    /// holder sees the new path; a dentry the rename replaced leaves the
    /// tree.
    pub fn renamed(&self, old_dir: &DentryRef, old_name: &[u8], new_dir: &DentryRef, new_name: &[u8], exchange: bool) {
        let take = |dir: &DentryRef, name: &[u8]| {
            let w = crate::util::lock(&dir.children).remove(name);
            w.and_then(|w| w.upgrade())
        };
        let moved = take(old_dir, old_name);
        let replaced = take(new_dir, new_name);
        let place = |d: &DentryRef, dir: &DentryRef, name: &[u8]| {
            let old = {
                let mut l = crate::util::write(&d.link);
                l.name = name.to_vec();
                l.parent.replace(dir.clone())
            };
            let prev = crate::util::lock(&dir.children).insert(name.to_vec(), Arc::downgrade(d));
            drop(prev);
            drop(old);
        };
        if let Some(d) = &moved {
            place(d, new_dir, new_name);
        }
        if let (true, Some(d)) = (exchange, &replaced) {
            place(d, old_dir, old_name);
        }
        if let (false, Some(d)) = (exchange, &replaced) {
            self.unpin(d);
        }
    }

    /// `dir`/`name` was removed: its dentry, if live, leaves the tree (a
    /// new node of that name gets a new one).
    pub fn removed(&self, dir: &DentryRef, name: &[u8]) {
        let gone = crate::util::lock(&dir.children).remove(name);
        if let Some(d) = gone.as_ref().and_then(Weak::upgrade) {
            self.unpin(&d);
        }
        drop(gone);
    }

    /// Resolve `path` starting at `cwd` (relative) or `root` (absolute).
    /// Every directory walked through needs search (x) permission.
    pub fn resolve(
        &self,
        root: &DentryRef,
        cwd: &DentryRef,
        path: &[u8],
        follow: Follow,
        creds: &Creds,
    ) -> Result<DentryRef, Errno> {
        self.resolve_with(root, cwd, path, follow, creds, &NO_OPTS)
    }

    /// [`MountNamespace::resolve`] under the restrictions of `opts`.
    pub fn resolve_with(
        &self,
        root: &DentryRef,
        cwd: &DentryRef,
        path: &[u8],
        follow: Follow,
        creds: &Creds,
        opts: &WalkOpts,
    ) -> Result<DentryRef, Errno> {
        let (parent, last) = self.resolve_parent_with(root, cwd, path, creds, opts)?;
        let mut budget = MAXSYMLINKS;
        match last {
            None => Ok(parent),
            Some(name) => self.step_last(root, &parent, &name, follow, creds, &mut budget, opts),
        }
    }

    /// Resolve all but the last component of `path`; returns the parent
    /// directory and the last name (None when the path ends in "/" or "."
    /// or "..", or is "/": then the first value is the node itself).
    pub fn resolve_parent(
        &self,
        root: &DentryRef,
        cwd: &DentryRef,
        path: &[u8],
        creds: &Creds,
    ) -> Result<(DentryRef, Option<Vec<u8>>), Errno> {
        self.resolve_parent_with(root, cwd, path, creds, &NO_OPTS)
    }

    /// [`MountNamespace::resolve_parent`] under the restrictions of `opts`.
    pub fn resolve_parent_with(
        &self,
        root: &DentryRef,
        cwd: &DentryRef,
        path: &[u8],
        creds: &Creds,
        opts: &WalkOpts,
    ) -> Result<(DentryRef, Option<Vec<u8>>), Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut budget = MAXSYMLINKS;
        let start = self.start_of(root, cwd, path, opts)?;
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
        let trailing_slash = path.ends_with(b"/");
        let mut cur = start;
        for (i, comp) in comps.iter().enumerate() {
            let is_last = i + 1 == comps.len();
            if is_last && !trailing_slash && *comp != b"." && *comp != b".." {
                self.check_dir_search(&cur, creds)?;
                return Ok((cur, Some(comp.to_vec())));
            }
            cur = self.step(root, &cur, comp, creds, &mut budget, opts)?;
        }
        let names_dir = comps.is_empty() || trailing_slash || comps.last().is_some_and(|c| *c == b"." || *c == b"..");
        if names_dir && !cur.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok((cur, None))
    }

    /// Where a walk of `path` from `cwd` begins: `root` for an absolute
    /// path (EXDEV under RESOLVE_BENEATH; a mount change under NO_XDEV).
    fn start_of(&self, root: &DentryRef, cwd: &DentryRef, path: &[u8], opts: &WalkOpts) -> Result<DentryRef, Errno> {
        if path.first() != Some(&b'/') {
            return Ok(cwd.clone());
        }
        if opts.beneath {
            return Err(Errno::EXDEV);
        }
        opts.check_step(cwd, root)?;
        Ok(root.clone())
    }

    fn check_dir_search(&self, dir: &DentryRef, creds: &Creds) -> Result<(), Errno> {
        let st = dir.inode.stat()?;
        if st.st_mode & S_IFMT != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        creds.may_access(&st, 1)
    }

    /// One intermediate component: "." , "..", or a name whose symlinks
    /// are always followed.
    fn step(
        &self,
        root: &DentryRef,
        cur: &DentryRef,
        comp: &[u8],
        creds: &Creds,
        budget: &mut u32,
        opts: &WalkOpts,
    ) -> Result<DentryRef, Errno> {
        self.check_dir_search(cur, creds)?;
        match comp {
            b"." => Ok(cur.clone()),
            b".." => self.dotdot_with(root, cur, opts),
            name => {
                let d = self.step_last(root, cur, name, Follow::Yes, creds, budget, opts)?;
                if !d.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                Ok(d)
            }
        }
    }

    /// The parent of `cur`, never above `root`.
    pub fn dotdot(&self, root: &DentryRef, cur: &DentryRef) -> DentryRef {
        if Arc::ptr_eq(cur, root) || (cur.mount.id == root.mount.id && same_node(&cur.inode, &root.inode)) {
            return cur.clone();
        }
        cur.parent().unwrap_or_else(|| cur.clone())
    }

    /// ".." from `cur` under `opts`: EXDEV above a RESOLVE_BENEATH root or
    /// across a mount under NO_XDEV.
    fn dotdot_with(&self, root: &DentryRef, cur: &DentryRef, opts: &WalkOpts) -> Result<DentryRef, Errno> {
        let up = self.dotdot(root, cur);
        if opts.beneath && Arc::ptr_eq(&up, cur) {
            return Err(Errno::EXDEV);
        }
        opts.check_step(cur, &up)?;
        Ok(up)
    }

    /// Look up `name` in `dir`, following a symlink there if `follow`.
    #[allow(clippy::too_many_arguments)]
    fn step_last(
        &self,
        root: &DentryRef,
        dir: &DentryRef,
        name: &[u8],
        follow: Follow,
        creds: &Creds,
        budget: &mut u32,
        opts: &WalkOpts,
    ) -> Result<DentryRef, Errno> {
        if name.len() > abi::flags::NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let d = match name {
            b"." => return Ok(dir.clone()),
            b".." => return self.dotdot_with(root, dir, opts),
            _ => self.child(dir, name)?,
        };
        opts.check_step(dir, &d)?;
        if follow == Follow::No {
            return Ok(d);
        }
        let st = d.inode.stat()?;
        if st.st_mode & S_IFMT != S_IFLNK {
            return Ok(d);
        }
        if opts.no_symlinks {
            return Err(Errno::ELOOP);
        }
        if *budget == 0 {
            return Err(Errno::ELOOP);
        }
        *budget -= 1;
        let magic = d.inode.magic_link();
        if magic.is_some() {
            if opts.no_magiclinks {
                return Err(Errno::ELOOP);
            }
            if opts.scoped() {
                return Err(Errno::EXDEV);
            }
        }
        match magic {
            Some(crate::MagicLink::Dentry(t)) => {
                opts.check_step(&d, &t)?;
                return Ok(t);
            }
            Some(crate::MagicLink::Inode(inode)) => return Ok(Dentry::detached(&d, inode)),
            None => {}
        }
        let target = d.inode.readlink()?;
        self.resolve_with_budget(root, dir, &target, creds, budget, opts)
    }

    fn resolve_with_budget(
        &self,
        root: &DentryRef,
        cwd: &DentryRef,
        path: &[u8],
        creds: &Creds,
        budget: &mut u32,
        opts: &WalkOpts,
    ) -> Result<DentryRef, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let mut cur = self.start_of(root, cwd, path, opts)?;
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
        for (i, comp) in comps.iter().enumerate() {
            if i + 1 == comps.len() {
                self.check_dir_search(&cur, creds)?;
                cur = self.step_last(root, &cur, comp, Follow::Yes, creds, budget, opts)?;
            } else {
                cur = self.step(root, &cur, comp, creds, budget, opts)?;
            }
        }
        if path.ends_with(b"/") && !cur.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }
}

/// `dir` + "/" + `name` for canonical paths.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    if !dir.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmpfs::TmpFs;

    fn ns() -> (Arc<MountNamespace>, Creds) {
        let root = TmpFs::new_root(0o755, 0, 0);
        (MountNamespace::new("tmpfs", "tmpfs", root, MountFlags::default()), Creds::new(0, 0, Vec::new()))
    }

    fn mkdir(ns: &MountNamespace, creds: &Creds, path: &[u8]) -> DentryRef {
        let root = ns.root();
        let (parent, name) = ns.resolve_parent(&root, &root, path, creds).unwrap();
        let name = name.unwrap();
        parent.inode.mkdir(&name, 0o755, creds).unwrap();
        ns.child(&parent, &name).unwrap()
    }

    #[test]
    fn walks_share_dentries_and_renames_move_them() {
        let (ns, creds) = ns();
        let root = ns.root();
        let a = mkdir(&ns, &creds, b"/a");
        let b = mkdir(&ns, &creds, b"/a/b");
        let again = ns.resolve(&root, &root, b"/a/b", Follow::Yes, &creds).unwrap();
        assert!(Arc::ptr_eq(&b, &again));
        a.inode.rename(b"b", &root.inode, b"c", 0).unwrap();
        ns.renamed(&a, b"b", &root, b"c", false);
        assert_eq!(b.path(), b"/c");
        assert_eq!(ns.resolve(&root, &root, b"/c", Follow::Yes, &creds).unwrap().path(), b"/c");
        assert!(ns.resolve(&root, &root, b"/a/b", Follow::Yes, &creds).is_err());
        // ".." follows the new parent.
        assert!(Arc::ptr_eq(&ns.resolve(&root, &b, b"..", Follow::Yes, &creds).unwrap(), &root));
    }

    #[test]
    fn a_removed_name_gets_a_new_dentry() {
        let (ns, creds) = ns();
        let root = ns.root();
        let a = mkdir(&ns, &creds, b"/a");
        root.inode.rmdir(b"a").unwrap();
        ns.removed(&root, b"a");
        let a2 = mkdir(&ns, &creds, b"/a");
        assert!(!Arc::ptr_eq(&a, &a2));
    }

    #[test]
    fn a_very_deep_chain_drops_on_a_small_stack() {
        let (ns, creds) = ns();
        let mut cur = ns.root();
        for _ in 0..100_000 {
            cur.inode.mkdir(b"d", 0o755, &creds).unwrap();
            cur = ns.child(&cur, b"d").unwrap();
        }
        // Dropped on a thread with a 64 KiB stack: recursion would overflow it.
        let t = std::thread::Builder::new().stack_size(64 * 1024).spawn(move || drop(cur)).unwrap();
        t.join().unwrap();
        drop(ns);
    }

    #[test]
    fn walk_options_scope_and_refuse() {
        let (ns, creds) = ns();
        let root = ns.root();
        let top = mkdir(&ns, &creds, b"/top");
        let sub = mkdir(&ns, &creds, b"/top/sub");
        top.inode.symlink(b"abs", b"/top/sub", &creds).unwrap();
        top.inode.symlink(b"rel", b"sub", &creds).unwrap();
        let other = TmpFs::new_root(0o755, 0, 0);
        ns.mount(b"/top/mnt", "tmpfs", "tmpfs", other, MountFlags::default());
        top.inode.mkdir(b"mnt", 0o755, &creds).unwrap();
        let beneath = WalkOpts { beneath: true, ..Default::default() };
        let in_root = WalkOpts { in_root: true, ..Default::default() };
        let walk = |start: &DentryRef, p: &[u8], o: &WalkOpts| {
            let r = if o.beneath || o.in_root { start.clone() } else { root.clone() };
            ns.resolve_with(&r, start, p, Follow::Yes, &creds, o).map(|d| d.path())
        };
        assert_eq!(walk(&top, b"sub/..", &beneath), Ok(b"/top".to_vec()));
        assert_eq!(walk(&top, b"..", &beneath), Err(Errno::EXDEV));
        assert_eq!(walk(&sub, b"../../x", &beneath), Err(Errno::EXDEV));
        assert_eq!(walk(&top, b"/top", &beneath), Err(Errno::EXDEV));
        assert_eq!(walk(&top, b"abs", &beneath), Err(Errno::EXDEV));
        assert_eq!(walk(&top, b"rel", &beneath), Ok(b"/top/sub".to_vec()));
        // IN_ROOT: "/" and ".." stop at the start; /top/sub is not inside.
        assert_eq!(walk(&top, b"/sub/../..", &in_root), Ok(b"/top".to_vec()));
        assert_eq!(walk(&top, b"abs", &in_root), Err(Errno::ENOENT));
        let nosym = WalkOpts { no_symlinks: true, ..Default::default() };
        assert_eq!(walk(&top, b"rel", &nosym), Err(Errno::ELOOP));
        assert_eq!(walk(&top, b"rel/..", &nosym), Err(Errno::ELOOP));
        let noxdev = WalkOpts { no_xdev: true, ..Default::default() };
        assert_eq!(walk(&top, b"mnt", &noxdev), Err(Errno::EXDEV));
        assert_eq!(walk(&top, b"sub", &noxdev), Ok(b"/top/sub".to_vec()));
        let m = walk(&top, b"mnt", &WalkOpts::default()).unwrap();
        assert_eq!(m, b"/top/mnt".to_vec());
        let mnt = ns.resolve(&root, &root, b"/top/mnt", Follow::Yes, &creds).unwrap();
        assert_eq!(walk(&mnt, b"..", &noxdev), Err(Errno::EXDEV));
    }
    #[test]
    fn walked_dentries_stay_cached_until_their_name_goes() {
        let (ns, creds) = ns();
        let root = ns.root();
        let weak = Arc::downgrade(&mkdir(&ns, &creds, b"/kept"));
        // Nobody holds it but the dentry cache.
        assert!(weak.upgrade().is_some());
        let again = ns.resolve(&root, &root, b"/kept", Follow::Yes, &creds).unwrap();
        assert!(std::ptr::eq(Arc::as_ptr(&again), weak.as_ptr()));
        drop(again);
        root.inode.rmdir(b"kept").unwrap();
        ns.removed(&root, b"kept");
        assert!(weak.upgrade().is_none(), "a removed name's dentry left the cache");
    }
}
