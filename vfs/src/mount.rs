//! Mounts, dentries and path resolution.
//!
//! Paths are walked here, one component at a time, against the sandbox's
//! own mount table: ".." never climbs above the sandbox root, and every
//! symlink is read with `Inode::readlink` and resolved inside the sandbox,
//! never on the host.

use crate::inode::InodeRef;
use crate::Creds;
use abi::flags::{MAXSYMLINKS, PATH_MAX, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

/// A resolved path: the node, the mount it is in, and its canonical
/// absolute path inside the sandbox (for "..", getcwd and /proc).
pub struct Dentry {
    pub path: Vec<u8>,
    pub parent: Option<Arc<Dentry>>,
    pub inode: InodeRef,
    pub mount: Arc<Mount>,
}

impl Dentry {
    /// The last path component ("/" for the root).
    pub fn name(&self) -> &[u8] {
        match self.path.iter().rposition(|&b| b == b'/') {
            Some(i) if self.path.len() > 1 => &self.path[i + 1..],
            _ => b"/",
        }
    }

    pub fn is_dir(&self) -> bool {
        self.inode.stat().map(|s| s.st_mode & S_IFMT == S_IFDIR).unwrap_or(false)
    }

    pub fn is_regular(&self) -> bool {
        self.inode.stat().map(|s| s.st_mode & S_IFMT == S_IFREG).unwrap_or(false)
    }
}

pub type DentryRef = Arc<Dentry>;

/// What to do with a symlink as the last component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// The sandbox's mount table and root.
pub struct MountNamespace {
    mounts: RwLock<Vec<Arc<Mount>>>,
    next_id: AtomicU64,
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
        Arc::new(MountNamespace { mounts: RwLock::new(vec![root]), next_id: AtomicU64::new(2) })
    }

    /// The dentry of "/".
    pub fn root(&self) -> DentryRef {
        let m = self.mounts.read().map(|m| m[0].clone()).unwrap_or_else(|e| e.into_inner()[0].clone());
        Arc::new(Dentry { path: b"/".to_vec(), parent: None, inode: m.root.clone(), mount: m })
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
        match self.mounts.write() {
            Ok(mut g) => g.push(m.clone()),
            Err(e) => e.into_inner().push(m.clone()),
        }
        m
    }

    /// All mounts, in mount order (for /proc/mounts).
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        match self.mounts.read() {
            Ok(g) => g.clone(),
            Err(e) => e.into_inner().clone(),
        }
    }

    fn mount_at(&self, path: &[u8]) -> Option<Arc<Mount>> {
        let g = match self.mounts.read() {
            Ok(g) => g,
            Err(e) => e.into_inner(),
        };
        g.iter().skip(1).rev().find(|m| m.mountpoint == path).cloned()
    }

    /// The child `name` of directory `dir` (mount points crossed).
    pub fn child(&self, dir: &DentryRef, name: &[u8]) -> Result<DentryRef, Errno> {
        let path = join(&dir.path, name);
        if let Some(m) = self.mount_at(&path) {
            return Ok(Arc::new(Dentry { path, parent: Some(dir.clone()), inode: m.root.clone(), mount: m }));
        }
        let inode = dir.inode.lookup(name)?;
        Ok(Arc::new(Dentry { path, parent: Some(dir.clone()), inode, mount: dir.mount.clone() }))
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
        let (parent, last) = self.resolve_parent(root, cwd, path, creds)?;
        let mut budget = MAXSYMLINKS;
        match last {
            None => Ok(parent),
            Some(name) => self.step_last(root, &parent, &name, follow, creds, &mut budget),
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
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut budget = MAXSYMLINKS;
        let start = if path[0] == b'/' { root.clone() } else { cwd.clone() };
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
        let trailing_slash = path.ends_with(b"/");
        let mut cur = start;
        for (i, comp) in comps.iter().enumerate() {
            let is_last = i + 1 == comps.len();
            if is_last && !trailing_slash && *comp != b"." && *comp != b".." {
                self.check_dir_search(&cur, creds)?;
                return Ok((cur, Some(comp.to_vec())));
            }
            cur = self.step(root, &cur, comp, creds, &mut budget)?;
        }
        let names_dir = comps.is_empty() || trailing_slash || comps.last().is_some_and(|c| *c == b"." || *c == b"..");
        if names_dir && !cur.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok((cur, None))
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
    ) -> Result<DentryRef, Errno> {
        self.check_dir_search(cur, creds)?;
        match comp {
            b"." => Ok(cur.clone()),
            b".." => Ok(self.dotdot(root, cur)),
            name => {
                let d = self.step_last(root, cur, name, Follow::Yes, creds, budget)?;
                if !d.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                Ok(d)
            }
        }
    }

    /// The parent of `cur`, never above `root`.
    pub fn dotdot(&self, root: &DentryRef, cur: &DentryRef) -> DentryRef {
        if cur.path == root.path {
            return cur.clone();
        }
        cur.parent.clone().unwrap_or_else(|| cur.clone())
    }

    /// Look up `name` in `dir`, following a symlink there if `follow`.
    fn step_last(
        &self,
        root: &DentryRef,
        dir: &DentryRef,
        name: &[u8],
        follow: Follow,
        creds: &Creds,
        budget: &mut u32,
    ) -> Result<DentryRef, Errno> {
        if name.len() > abi::flags::NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let d = match name {
            b"." => return Ok(dir.clone()),
            b".." => return Ok(self.dotdot(root, dir)),
            _ => self.child(dir, name)?,
        };
        if follow == Follow::No {
            return Ok(d);
        }
        let st = d.inode.stat()?;
        if st.st_mode & S_IFMT != S_IFLNK {
            return Ok(d);
        }
        if *budget == 0 {
            return Err(Errno::ELOOP);
        }
        *budget -= 1;
        match d.inode.magic_link() {
            Some(crate::MagicLink::Dentry(t)) => return Ok(t),
            Some(crate::MagicLink::Inode(inode)) => {
                return Ok(Arc::new(Dentry {
                    path: d.path.clone(),
                    parent: d.parent.clone(),
                    inode,
                    mount: d.mount.clone(),
                }))
            }
            None => {}
        }
        let target = d.inode.readlink()?;
        self.resolve_with_budget(root, dir, &target, creds, budget)
    }

    fn resolve_with_budget(
        &self,
        root: &DentryRef,
        cwd: &DentryRef,
        path: &[u8],
        creds: &Creds,
        budget: &mut u32,
    ) -> Result<DentryRef, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let mut cur = if path[0] == b'/' { root.clone() } else { cwd.clone() };
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
        for (i, comp) in comps.iter().enumerate() {
            if i + 1 == comps.len() {
                self.check_dir_search(&cur, creds)?;
                cur = self.step_last(root, &cur, comp, Follow::Yes, creds, budget)?;
            } else {
                cur = self.step(root, &cur, comp, creds, budget)?;
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
