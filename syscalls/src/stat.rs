//! The stat family: stat, lstat, fstat, newfstatat, statfs, fstatfs (and
//! the stat of an open file that statx, splice and copy_file_range share).
//! statx is beside it in `statx`.

use abi::flags::*;
use abi::{Errno, Stat};
use sentry::table::{DirFd, Fd, Flags, PathAddr, UserAddr};
use sentry::{SysResult, Task};
use vfs::{Follow, OpenFile};

/// The stat of an open file.
pub fn file_stat(f: &OpenFile) -> Result<Stat, Errno> {
    if let Some(st) = f.ops.stat() {
        return Ok(st);
    }
    match &f.dentry {
        Some(d) => d.inode.stat(),
        None => Ok(Stat { st_mode: S_IFREG | 0o600, st_nlink: 1, st_blksize: 4096, ..Default::default() }),
    }
}

pub fn fstat(task: &mut Task, fd: Fd, buf: UserAddr) -> SysResult {
    let f = task.file(fd.0)?;
    let st = file_stat(&f)?;
    task.write_obj(buf, &st)?;
    Ok(0)
}

fn stat_path(task: &Task, dirfd: i32, path: PathAddr, buf: UserAddr, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = task.read_path(UserAddr(path.0))?;
    if p.is_empty() && flags & AT_EMPTY_PATH == 0 {
        // Linux refuses the empty name before it looks at dirfd.
        return Err(Errno::ENOENT);
    }
    let st = if p.is_empty() {
        if dirfd == AT_FDCWD {
            task.fs().cwd.inode.stat()?
        } else {
            file_stat(&*task.file(dirfd)?)?
        }
    } else {
        let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
        task.resolve_at(dirfd, &p, follow)?.inode.stat()?
    };
    task.write_obj(buf, &st)?;
    Ok(0)
}

pub fn stat(task: &mut Task, path: PathAddr, buf: UserAddr) -> SysResult {
    stat_path(task, AT_FDCWD, path, buf, 0)
}

pub fn lstat(task: &mut Task, path: PathAddr, buf: UserAddr) -> SysResult {
    stat_path(task, AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW)
}

pub fn newfstatat(task: &mut Task, dirfd: DirFd, path: PathAddr, buf: UserAddr, flags: Flags) -> SysResult {
    stat_path(task, dirfd.0, path, buf, flags.0 as u32)
}

pub fn statfs(task: &mut Task, path: PathAddr, buf: UserAddr) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    let d = task.resolve(&p, Follow::Yes)?;
    let mut s = d.inode.statfs()?;
    if d.mount.flags.readonly {
        s.f_flags |= 1;
    }
    task.write_obj(buf, &s)?;
    Ok(0)
}

pub fn fstatfs(task: &mut Task, fd: Fd, buf: UserAddr) -> SysResult {
    let f = task.file(fd.0)?;
    let s = match &f.dentry {
        Some(d) => d.inode.statfs()?,
        None => abi::Statfs { f_type: 0x5049_5045, f_bsize: 4096, f_namelen: 255, ..Default::default() },
    };
    task.write_obj(buf, &s)?;
    Ok(0)
}
