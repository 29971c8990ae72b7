//! Extended attributes: {,l,f}{set,get,list,remove}xattr.
//!
//! The checks Linux's VFS makes before a filesystem sees the call live
//! here, once for every filesystem (fs/xattr.c: import_xattr_name,
//! setxattr_copy, xattr_permission), answered as Linux answers root in
//! an unprivileged user namespace: trusted.* needs CAP_SYS_ADMIN in the
//! initial namespace, so it reads as absent (ENODATA, hidden from lists)
//! and cannot be written (EPERM); user.* exists only on regular files
//! and directories; security.* is the filesystem's (and needs the
//! sandbox's root to write, as ns_capable on a mount the sandbox owns).

use abi::flags::{R_OK, S_IFDIR, S_IFMT, S_IFREG, W_OK};
use abi::{Errno, Stat};
use sentry::table::{Fd, PathAddr, UserAddr};
use sentry::{SysResult, Task};
use vfs::xattr::{XATTR_CREATE, XATTR_LIST_MAX, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX};
use vfs::{Follow, Inode, InodeRef, Mount};

/// What a call acts on: a path's dentry, or an open file (which may have
/// no dentry: pipes, sockets).
struct Target {
    inode: Option<InodeRef>,
    mount: Option<std::sync::Arc<Mount>>,
    stat: Stat,
}

/// The attribute name: NUL-terminated, 1..=255 bytes (ERANGE otherwise).
fn read_name(task: &Task, addr: UserAddr) -> Result<Vec<u8>, Errno> {
    match task.mm().read_cstr(addr.0, XATTR_NAME_MAX + 1) {
        Ok(n) if n.is_empty() => Err(Errno::ERANGE),
        Ok(n) => Ok(n),
        Err(Errno::ENAMETOOLONG) => Err(Errno::ERANGE),
        Err(e) => Err(e),
    }
}

fn by_path(task: &Task, path: PathAddr, follow: Follow) -> Result<Target, Errno> {
    let p = task.read_path(UserAddr(path.0))?;
    let d = task.resolve(&p, follow)?;
    let stat = d.inode.stat()?;
    Ok(Target { inode: Some(d.inode.clone()), mount: Some(d.mount.clone()), stat })
}

fn by_fd(task: &Task, fd: Fd) -> Result<Target, Errno> {
    let f = task.file(fd.0)?;
    if f.flags() & abi::flags::O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    match &f.dentry {
        Some(d) => {
            let stat = d.inode.stat()?;
            Ok(Target { inode: Some(d.inode.clone()), mount: Some(d.mount.clone()), stat })
        }
        None => {
            let stat = f.ops.stat().ok_or(Errno::EBADF)?;
            Ok(Target { inode: None, mount: None, stat })
        }
    }
}

fn has_prefix(name: &[u8], p: &[u8]) -> bool {
    name.starts_with(p)
}

/// CAP_SYS_ADMIN in the sandbox's namespace: the sandbox's root
/// (capabilities follow the effective uid, not the filesystem one).
fn privileged(task: &Task) -> bool {
    task.creds().euid == 0
}

/// Linux's xattr_permission. `write`: set or remove.
fn permission(task: &Task, t: &Target, name: &[u8], write: bool) -> Result<(), Errno> {
    let hidden = if write { Errno::EPERM } else { Errno::ENODATA };
    if has_prefix(name, b"security.") {
        if write && !privileged(task) {
            return Err(Errno::EPERM);
        }
        return Ok(());
    }
    if has_prefix(name, b"system.") {
        return Ok(());
    }
    if has_prefix(name, b"trusted.") {
        // CAP_SYS_ADMIN in the initial user namespace: never the sandbox's.
        return Err(hidden);
    }
    let kind = t.stat.st_mode & S_IFMT;
    if has_prefix(name, b"user.") {
        if kind != S_IFREG && kind != S_IFDIR {
            return Err(hidden);
        }
        let c = task.creds();
        if kind == S_IFDIR && t.stat.st_mode & 0o1000 != 0 && write && c.fsuid != 0 && c.fsuid != t.stat.st_uid {
            return Err(Errno::EPERM);
        }
    }
    task.creds().may_access(&t.stat, if write { W_OK } else { R_OK })
}

/// The node to change, after the checks of a set or remove.
fn writable<'a>(task: &Task, t: &'a Target, name: &[u8]) -> Result<&'a dyn Inode, Errno> {
    if let Some(m) = &t.mount {
        m.check_writable()?;
    }
    permission(task, t, name, true)?;
    t.inode.as_deref().ok_or(Errno::EOPNOTSUPP)
}

/// setxattr_copy: flags, name and value, before the target is looked up.
fn read_set_args(
    task: &Task,
    name: UserAddr,
    value: UserAddr,
    size: u64,
    flags: i32,
) -> Result<(Vec<u8>, Vec<u8>), Errno> {
    if flags as u32 & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_name(task, name)?;
    if size > XATTR_SIZE_MAX as u64 {
        return Err(Errno::E2BIG);
    }
    let mut v = vec![0u8; size as usize];
    if size > 0 {
        task.copy_in(value, &mut v)?;
    }
    Ok((name, v))
}

fn do_set(task: &Task, t: Target, name: &[u8], value: &[u8], flags: i32) -> SysResult {
    writable(task, &t, name)?.setxattr(name, value, flags as u32)?;
    Ok(0)
}

pub fn setxattr(task: &mut Task, path: PathAddr, name: UserAddr, value: UserAddr, size: u64, flags: i32) -> SysResult {
    let (name, value) = read_set_args(task, name, value, size, flags)?;
    let t = by_path(task, path, Follow::Yes)?;
    do_set(task, t, &name, &value, flags)
}

pub fn lsetxattr(task: &mut Task, path: PathAddr, name: UserAddr, value: UserAddr, size: u64, flags: i32) -> SysResult {
    let (name, value) = read_set_args(task, name, value, size, flags)?;
    let t = by_path(task, path, Follow::No)?;
    do_set(task, t, &name, &value, flags)
}

pub fn fsetxattr(task: &mut Task, fd: Fd, name: UserAddr, value: UserAddr, size: u64, flags: i32) -> SysResult {
    let (name, value) = read_set_args(task, name, value, size, flags)?;
    let t = by_fd(task, fd)?;
    do_set(task, t, &name, &value, flags)
}

fn do_get(task: &Task, t: Target, name: &[u8], value: UserAddr, size: u64) -> SysResult {
    permission(task, &t, name, false)?;
    let inode = t.inode.as_deref().ok_or(Errno::EOPNOTSUPP)?;
    let v = inode.getxattr(name)?;
    if size > 0 {
        if v.len() as u64 > size {
            return Err(if size >= XATTR_SIZE_MAX as u64 { Errno::E2BIG } else { Errno::ERANGE });
        }
        task.copy_out(value, &v)?;
    }
    Ok(v.len() as u64)
}

pub fn getxattr(task: &mut Task, path: PathAddr, name: UserAddr, value: UserAddr, size: u64) -> SysResult {
    let name = read_name(task, name)?;
    let t = by_path(task, path, Follow::Yes)?;
    do_get(task, t, &name, value, size)
}

pub fn lgetxattr(task: &mut Task, path: PathAddr, name: UserAddr, value: UserAddr, size: u64) -> SysResult {
    let name = read_name(task, name)?;
    let t = by_path(task, path, Follow::No)?;
    do_get(task, t, &name, value, size)
}

pub fn fgetxattr(task: &mut Task, fd: Fd, name: UserAddr, value: UserAddr, size: u64) -> SysResult {
    let name = read_name(task, name)?;
    let t = by_fd(task, fd)?;
    do_get(task, t, &name, value, size)
}

fn do_list(task: &Task, t: Target, list: UserAddr, size: u64) -> SysResult {
    let names = match &t.inode {
        Some(i) => i.listxattr()?,
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for n in names.iter().filter(|n| !has_prefix(n, b"trusted.")) {
        out.extend_from_slice(n);
        out.push(0);
    }
    if size > 0 {
        // Linux lists into a buffer of at most XATTR_LIST_MAX bytes.
        if out.len() as u64 > size.min(XATTR_LIST_MAX as u64) {
            return Err(if size >= XATTR_LIST_MAX as u64 { Errno::E2BIG } else { Errno::ERANGE });
        }
        task.copy_out(list, &out)?;
    }
    Ok(out.len() as u64)
}

pub fn listxattr(task: &mut Task, path: PathAddr, list: UserAddr, size: u64) -> SysResult {
    let t = by_path(task, path, Follow::Yes)?;
    do_list(task, t, list, size)
}

pub fn llistxattr(task: &mut Task, path: PathAddr, list: UserAddr, size: u64) -> SysResult {
    let t = by_path(task, path, Follow::No)?;
    do_list(task, t, list, size)
}

pub fn flistxattr(task: &mut Task, fd: Fd, list: UserAddr, size: u64) -> SysResult {
    let t = by_fd(task, fd)?;
    do_list(task, t, list, size)
}

fn do_remove(task: &Task, t: Target, name: &[u8]) -> SysResult {
    writable(task, &t, name)?.removexattr(name)?;
    Ok(0)
}

pub fn removexattr(task: &mut Task, path: PathAddr, name: UserAddr) -> SysResult {
    let name = read_name(task, name)?;
    let t = by_path(task, path, Follow::Yes)?;
    do_remove(task, t, &name)
}

pub fn lremovexattr(task: &mut Task, path: PathAddr, name: UserAddr) -> SysResult {
    let name = read_name(task, name)?;
    let t = by_path(task, path, Follow::No)?;
    do_remove(task, t, &name)
}

pub fn fremovexattr(task: &mut Task, fd: Fd, name: UserAddr) -> SysResult {
    let name = read_name(task, name)?;
    let t = by_fd(task, fd)?;
    do_remove(task, t, &name)
}
