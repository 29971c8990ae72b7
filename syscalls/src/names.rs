//! Names in directories: mkdir, mknod, unlink, rmdir, rename, link,
//! symlink and readlink.

use abi::flags::*;
use abi::Errno;
use sentry::table::{DirFd, Flags, PathAddr, UserAddr};
use sentry::{SysResult, Task};
use std::sync::Arc;
use vfs::inotify::{self as ino, node_of};
use vfs::{DentryRef, Follow};

/// Parent directory and new name for a call that creates `path`.
pub(crate) fn creation_target(task: &Task, dirfd: i32, path: &[u8]) -> Result<(DentryRef, Vec<u8>), Errno> {
    let (parent, name) = task.resolve_parent_at(dirfd, path)?;
    let name = name.ok_or(Errno::EEXIST)?;
    if task.kernel.mounts.child(&parent, &name).is_ok() {
        return Err(Errno::EEXIST);
    }
    let pst = parent.inode.stat()?;
    task.creds().may_access(&pst, W_OK | X_OK)?;
    parent.mount.check_writable()?;
    Ok((parent, name))
}

/// `path` without trailing slashes ("/" stays "/").
fn trim_slashes(p: &[u8]) -> &[u8] {
    let mut t = p;
    while t.len() > 1 && t.ends_with(b"/") {
        t = &t[..t.len() - 1];
    }
    t
}

pub fn mkdirat(task: &mut Task, dirfd: DirFd, path: PathAddr, mode: u32) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    let p = trim_slashes(&p).to_vec();
    let (parent, name) = creation_target(task, dirfd.0, &p)?;
    let umask = task.fs().umask;
    parent.inode.mkdir(&name, mode & 0o7777 & !umask, &task.creds())?;
    ino::dir_event(&parent, ino::IN_CREATE, &name, 0, true);
    Ok(0)
}

pub fn mkdir(task: &mut Task, path: PathAddr, mode: u32) -> SysResult {
    mkdirat(task, DirFd(AT_FDCWD), path, mode)
}

pub fn mknodat(task: &mut Task, dirfd: DirFd, path: PathAddr, mode: u32, dev: u64) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    let kind = mode & S_IFMT;
    let kind = if kind == 0 { S_IFREG } else { kind };
    if !matches!(kind, S_IFREG | S_IFIFO | S_IFSOCK | S_IFCHR | S_IFBLK) {
        return Err(Errno::EINVAL);
    }
    if matches!(kind, S_IFCHR | S_IFBLK) && task.creds().euid != 0 {
        return Err(Errno::EPERM);
    }
    let (parent, name) = creation_target(task, dirfd.0, &p)?;
    let umask = task.fs().umask;
    let creds = task.creds();
    if kind == S_IFREG {
        parent.inode.create(&name, S_IFREG | (mode & 0o7777 & !umask), &creds)?;
    } else {
        parent.inode.mknod(&name, kind | (mode & 0o7777 & !umask), dev, &creds)?;
    }
    ino::dir_event(&parent, ino::IN_CREATE, &name, 0, false);
    Ok(0)
}

pub fn mknod(task: &mut Task, path: PathAddr, mode: u32, dev: u64) -> SysResult {
    mknodat(task, DirFd(AT_FDCWD), path, mode, dev)
}

/// Parent and name of an existing entry to remove or rename.
/// `dot_err` is the errno when the last component is "." or ".." (or
/// the path is "/"): each call has its own.
fn removal_target(task: &Task, dirfd: i32, path: &[u8], dot_err: Errno) -> Result<(DentryRef, Vec<u8>), Errno> {
    let (parent, name) = task.resolve_parent_at(dirfd, path)?;
    let name = removal_checks(task, &parent, name, dot_err)?;
    Ok((parent, name))
}

/// The checks of `removal_target` on a parent already resolved.
fn removal_checks(task: &Task, parent: &DentryRef, name: Option<Vec<u8>>, dot_err: Errno) -> Result<Vec<u8>, Errno> {
    let name = name.ok_or(dot_err)?;
    let pst = parent.inode.stat()?;
    task.creds().may_access(&pst, W_OK | X_OK)?;
    // Sticky directories: only the owner of the entry or the directory.
    if pst.st_mode & 0o1000 != 0 {
        let euid = task.creds().fsuid;
        if euid != 0 && euid != pst.st_uid {
            let child = task.kernel.mounts.child(parent, &name)?;
            if child.inode.stat()?.st_uid != euid {
                return Err(Errno::EPERM);
            }
        }
    }
    parent.mount.check_writable()?;
    Ok(name)
}

pub fn unlinkat(task: &mut Task, dirfd: DirFd, path: PathAddr, flags: Flags) -> SysResult {
    let flags = flags.0 as u32;
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let p = task.read_path(UserAddr(path.0))?;
    if flags & AT_REMOVEDIR != 0 {
        return rmdir_path(task, dirfd.0, &p);
    }
    if p.ends_with(b"/") {
        // The last component is looked at without following it.
        let (parent, name) = task.resolve_parent_at(dirfd.0, trim_slashes(&p))?;
        let name = name.ok_or(Errno::EISDIR)?;
        let d = task.kernel.mounts.child(&parent, &name)?;
        return Err(if d.inode.stat()?.st_mode & S_IFMT == S_IFDIR { Errno::EISDIR } else { Errno::ENOTDIR });
    }
    let (parent, name) = removal_target(task, dirfd.0, &p, Errno::EISDIR)?;
    let child = task.kernel.mounts.child(&parent, &name)?;
    if !Arc::ptr_eq(&child, &parent) && child.mount.id != parent.mount.id {
        return Err(Errno::EBUSY);
    }
    let node = ino::active().then(|| node_of(&*child.inode)).flatten();
    parent.inode.unlink(&name)?;
    task.kernel.mounts.removed(&parent, &name);
    if let Some(node) = node {
        // Linux's order: the node's own events, then its directory's.
        ino::node_event(&node, ino::IN_ATTRIB);
        if node.nlink <= 1 {
            ino::unlinked(&child, &node, 1);
        }
        ino::dir_event(&parent, ino::IN_DELETE, &name, 0, false);
    }
    Ok(0)
}

pub fn unlink(task: &mut Task, path: PathAddr) -> SysResult {
    unlinkat(task, DirFd(AT_FDCWD), path, Flags(0))
}

fn rmdir_path(task: &Task, dirfd: i32, p: &[u8]) -> SysResult {
    let trimmed: &[u8] = {
        let mut t = p;
        while t.len() > 1 && t.ends_with(b"/") {
            t = &t[..t.len() - 1];
        }
        t
    };
    if trimmed.ends_with(b"/.") || trimmed == b"." {
        return Err(Errno::EINVAL);
    }
    if trimmed.ends_with(b"/..") || trimmed == b".." {
        return Err(Errno::ENOTEMPTY);
    }
    let (parent, name) = removal_target(task, dirfd, trimmed, Errno::EBUSY)?;
    let child = task.kernel.mounts.child(&parent, &name)?;
    if child.mount.id != parent.mount.id {
        return Err(Errno::EBUSY);
    }
    if !child.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let node = ino::active().then(|| node_of(&*child.inode)).flatten();
    parent.inode.rmdir(&name)?;
    task.kernel.mounts.removed(&parent, &name);
    if let Some(node) = node {
        ino::unlinked(&child, &node, 1);
        ino::dir_event(&parent, ino::IN_DELETE, &name, 0, true);
    }
    Ok(0)
}

pub fn rmdir(task: &mut Task, path: PathAddr) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    rmdir_path(task, AT_FDCWD, &p)
}

pub fn renameat2(task: &mut Task, olddir: DirFd, old: PathAddr, newdir: DirFd, new: PathAddr, flags: u32) -> SysResult {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & RENAME_NOREPLACE != 0 && flags & RENAME_EXCHANGE != 0 {
        return Err(Errno::EINVAL);
    }
    let op = task.read_path(UserAddr(old.0))?;
    let np = task.read_path(UserAddr(new.0))?;
    let (oparent, oname) = task.resolve_parent_at(olddir.0, &op)?;
    let (nparent, nname) = task.resolve_parent_at(newdir.0, &np)?;
    // Linux checks the mounts first: a rename out of a read-only mount
    // into another is EXDEV, not EROFS.
    if oparent.mount.id != nparent.mount.id {
        return Err(Errno::EXDEV);
    }
    let oname = removal_checks(task, &oparent, oname, Errno::EBUSY)?;
    let nname = nname.ok_or(Errno::EBUSY)?;
    let npst = nparent.inode.stat()?;
    task.creds().may_access(&npst, W_OK | X_OK)?;
    nparent.mount.check_writable()?;
    let src = task.kernel.mounts.child(&oparent, &oname)?;
    // A directory cannot move into itself.
    let dst_path = vfs::mount::join(&nparent.path(), &nname);
    let src_path = src.path();
    if src.is_dir() && dst_path.starts_with(&src_path) && dst_path.get(src_path.len()) == Some(&b'/') {
        return Err(Errno::EINVAL);
    }
    if dst_path == src_path {
        return Ok(0);
    }
    let nodes = ino::active().then(|| {
        let target = task.kernel.mounts.child(&nparent, &nname).ok().and_then(|t| Some((node_of(&*t.inode)?, t)));
        (node_of(&*src.inode), target)
    });
    oparent.inode.rename(&oname, &nparent.inode, &nname, flags)?;
    // Whoever holds the moved directory (a working directory, an open
    // file below it) sees the new path.
    task.kernel.mounts.renamed(&oparent, &oname, &nparent, &nname, flags & RENAME_EXCHANGE != 0);
    if let Some((Some(moved), target)) = nodes {
        rename_events(&oparent, &oname, &nparent, &nname, moved, target, flags & RENAME_EXCHANGE != 0);
    }
    Ok(0)
}

/// The events of a rename (Linux's fsnotify_move, twice for an exchange):
/// IN_MOVED_FROM and IN_MOVED_TO sharing a cookie, IN_ATTRIB on a replaced
/// node, IN_MOVE_SELF on the moved one; a replaced node that lost its last
/// name is deleted.
fn rename_events(
    oparent: &DentryRef,
    oname: &[u8],
    nparent: &DentryRef,
    nname: &[u8],
    moved: ino::Node,
    target: Option<(ino::Node, DentryRef)>,
    exchange: bool,
) {
    let cookie = ino::new_cookie();
    // Within one directory, also dnotify's DN_RENAME.
    let key = |d: &DentryRef| ino::node_of(&*d.inode).map(|n| n.key);
    let same = ino::active() && (std::sync::Arc::ptr_eq(oparent, nparent) || key(oparent) == key(nparent));
    let same_dir = if same { ino::IN_DN_RENAME } else { 0 };
    ino::dir_event(oparent, ino::IN_MOVED_FROM | same_dir, oname, cookie, moved.is_dir);
    ino::dir_event(nparent, ino::IN_MOVED_TO, nname, cookie, moved.is_dir);
    if let (Some((t, _)), false) = (&target, exchange) {
        ino::node_event(t, ino::IN_ATTRIB);
    }
    ino::node_event(&moved, ino::IN_MOVE_SELF);
    match target {
        Some((t, _)) if exchange => {
            let cookie = ino::new_cookie();
            ino::dir_event(nparent, ino::IN_MOVED_FROM, nname, cookie, t.is_dir);
            ino::dir_event(oparent, ino::IN_MOVED_TO, oname, cookie, t.is_dir);
            ino::node_event(&t, ino::IN_MOVE_SELF);
        }
        Some((t, d)) if t.is_dir || t.nlink <= 1 => ino::unlinked(&d, &t, 1),
        _ => {}
    }
}

pub fn renameat(task: &mut Task, olddir: DirFd, old: PathAddr, newdir: DirFd, new: PathAddr) -> SysResult {
    renameat2(task, olddir, old, newdir, new, 0)
}

pub fn rename(task: &mut Task, old: PathAddr, new: PathAddr) -> SysResult {
    renameat2(task, DirFd(AT_FDCWD), old, DirFd(AT_FDCWD), new, 0)
}

pub fn linkat(task: &mut Task, olddir: DirFd, old: PathAddr, newdir: DirFd, new: PathAddr, flags: Flags) -> SysResult {
    let flags = flags.0 as u32;
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let op = task.read_path(UserAddr(old.0))?;
    let np = task.read_path(UserAddr(new.0))?;
    let follow = if flags & AT_SYMLINK_FOLLOW != 0 { Follow::Yes } else { Follow::No };
    let src = if op.is_empty() && flags & AT_EMPTY_PATH != 0 {
        task.file(olddir.0)?.dentry.clone().ok_or(Errno::ENOENT)?
    } else {
        task.resolve_at(olddir.0, &op, follow)?
    };
    if src.is_dir() {
        return Err(Errno::EPERM);
    }
    let (parent, name) = creation_target(task, newdir.0, &np)?;
    if parent.mount.id != src.mount.id {
        return Err(Errno::EXDEV);
    }
    parent.inode.link(&name, &src.inode)?;
    if let Some(node) = ino::active().then(|| node_of(&*src.inode)).flatten() {
        ino::node_event(&node, ino::IN_ATTRIB);
        ino::dir_event(&parent, ino::IN_CREATE, &name, 0, false);
    }
    Ok(0)
}

pub fn link(task: &mut Task, old: PathAddr, new: PathAddr) -> SysResult {
    linkat(task, DirFd(AT_FDCWD), old, DirFd(AT_FDCWD), new, Flags(0))
}

pub fn symlinkat(task: &mut Task, target: PathAddr, dirfd: DirFd, path: PathAddr) -> SysResult {
    let t = task.read_path(UserAddr(target.0))?;
    if t.is_empty() {
        return Err(Errno::ENOENT);
    }
    let p = task.read_path(UserAddr(path.0))?;
    let (parent, name) = creation_target(task, dirfd.0, &p)?;
    parent.inode.symlink(&name, &t, &task.creds())?;
    ino::dir_event(&parent, ino::IN_CREATE, &name, 0, false);
    Ok(0)
}

pub fn symlink(task: &mut Task, target: PathAddr, path: PathAddr) -> SysResult {
    symlinkat(task, target, DirFd(AT_FDCWD), path)
}

pub fn readlinkat(task: &mut Task, dirfd: DirFd, path: PathAddr, buf: UserAddr, size: i32) -> SysResult {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let p = task.read_path(UserAddr(path.0))?;
    let d = if p.is_empty() {
        task.file(dirfd.0)?.dentry.clone().ok_or(Errno::ENOENT)?
    } else {
        task.resolve_at(dirfd.0, &p, Follow::No)?
    };
    let target = d.inode.readlink()?;
    let n = target.len().min(size as usize);
    task.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

pub fn readlink(task: &mut Task, path: PathAddr, buf: UserAddr, size: i32) -> SysResult {
    readlinkat(task, DirFd(AT_FDCWD), path, buf, size)
}
