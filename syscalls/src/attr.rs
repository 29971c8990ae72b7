//! File attributes: access, mode, owner, size, times, sync, advice and
//! allocation.

use crate::fs::is_dir;
use crate::rw::fsize_grow_ok;
use abi::flags::*;
use abi::Errno;
use sentry::table::{DirFd, Fd, Flags, PathAddr, UserAddr};
use sentry::{SysResult, Task};
use vfs::{DentryRef, Follow, SetAttr};

pub fn faccessat(task: &mut Task, dirfd: DirFd, path: PathAddr, mode: u32) -> SysResult {
    faccessat2(task, dirfd, path, mode, Flags(0))
}

const AT_EACCESS: u32 = 0x200;

/// faccessat2(2): faccessat with flags. AT_EACCESS checks with the
/// effective ids instead of the real ones.
pub fn faccessat2(task: &mut Task, dirfd: DirFd, path: PathAddr, mode: u32, flags: Flags) -> SysResult {
    let flags = flags.0 as u32;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = task.read_path(UserAddr(path.0))?;
    // The whole walk, not only the last check, uses the real ids unless
    // AT_EACCESS (Linux's access_override_creds).
    let mut c = task.creds();
    if flags & AT_EACCESS == 0 {
        c.fsuid = c.uid;
        c.fsgid = c.gid;
    }
    let d = if p.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dirfd.0 == AT_FDCWD {
            task.fs().cwd
        } else {
            fd_dentry(task, Fd(dirfd.0))?
        }
    } else {
        let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
        let start = task.dir_for(dirfd.0, &p)?;
        task.kernel.mounts.resolve(&task.fs().root, &start, &p, follow, &c)?
    };
    let st = d.inode.stat()?;
    c.may_access(&st, mode)?;
    if mode & W_OK != 0 && matches!(st.st_mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK) {
        d.mount.check_writable()?;
    }
    Ok(0)
}

pub fn access(task: &mut Task, path: PathAddr, mode: u32) -> SysResult {
    faccessat(task, DirFd(AT_FDCWD), path, mode)
}

fn setattr_checked(task: &Task, d: &DentryRef, attr: SetAttr) -> SysResult {
    d.mount.check_writable()?;
    let st = d.inode.stat()?;
    let c = task.creds();
    if c.fsuid != 0 {
        if attr.mode.is_some() && c.fsuid != st.st_uid {
            return Err(Errno::EPERM);
        }
        if attr.uid.is_some_and(|u| u != st.st_uid) {
            return Err(Errno::EPERM);
        }
        if let Some(g) = attr.gid {
            if g != st.st_gid && (c.fsuid != st.st_uid || !c.in_group(g)) {
                return Err(Errno::EPERM);
            }
        }
    }
    d.inode.setattr(&attr)?;
    vfs::inotify::attr_changed(d, &attr);
    Ok(0)
}

fn fd_dentry(task: &Task, fd: Fd) -> Result<DentryRef, Errno> {
    task.file(fd.0)?.dentry.clone().ok_or(Errno::EINVAL)
}

pub fn fchmodat(task: &mut Task, dirfd: DirFd, path: PathAddr, mode: u32) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    let d = task.resolve_at(dirfd.0, &p, Follow::Yes)?;
    setattr_checked(task, &d, SetAttr { mode: Some(mode & 0o7777), ..Default::default() })
}

pub fn chmod(task: &mut Task, path: PathAddr, mode: u32) -> SysResult {
    fchmodat(task, DirFd(AT_FDCWD), path, mode)
}

pub fn fchmod(task: &mut Task, fd: Fd, mode: u32) -> SysResult {
    let d = fd_dentry(task, fd)?;
    setattr_checked(task, &d, SetAttr { mode: Some(mode & 0o7777), ..Default::default() })
}

fn owner_attr(uid: i32, gid: i32) -> SetAttr {
    SetAttr {
        uid: if uid == -1 { None } else { Some(uid as u32) },
        gid: if gid == -1 { None } else { Some(gid as u32) },
        ..Default::default()
    }
}

pub fn fchownat(task: &mut Task, dirfd: DirFd, path: PathAddr, uid: i32, gid: i32, flags: Flags) -> SysResult {
    let flags = flags.0 as u32;
    let p = task.read_path(UserAddr(path.0))?;
    let d = if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
        fd_dentry(task, Fd(dirfd.0))?
    } else {
        let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
        task.resolve_at(dirfd.0, &p, follow)?
    };
    setattr_checked(task, &d, owner_attr(uid, gid))
}

pub fn chown(task: &mut Task, path: PathAddr, uid: i32, gid: i32) -> SysResult {
    fchownat(task, DirFd(AT_FDCWD), path, uid, gid, Flags(0))
}

pub fn lchown(task: &mut Task, path: PathAddr, uid: i32, gid: i32) -> SysResult {
    fchownat(task, DirFd(AT_FDCWD), path, uid, gid, Flags(AT_SYMLINK_NOFOLLOW as u64))
}

pub fn fchown(task: &mut Task, fd: Fd, uid: i32, gid: i32) -> SysResult {
    let d = fd_dentry(task, fd)?;
    setattr_checked(task, &d, owner_attr(uid, gid))
}

pub fn truncate(task: &mut Task, path: PathAddr, len: i64) -> SysResult {
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let p = task.read_path(UserAddr(path.0))?;
    let d = task.resolve(&p, Follow::Yes)?;
    let st = d.inode.stat()?;
    if is_dir(&st) {
        return Err(Errno::EISDIR);
    }
    task.creds().may_access(&st, W_OK)?;
    d.mount.check_writable()?;
    text_not_busy(task, &st)?;
    // As Linux's do_truncate: a truncate by path breaks leases like an
    // open for writing.
    crate::locks::break_leases(task, &*d.inode, &st, O_WRONLY)?;
    fsize_grow_ok(task, u64::try_from(st.st_size).unwrap_or(0), len as u64)?;
    d.inode.setattr(&SetAttr { size: Some(len as u64), ..Default::default() })?;
    task.kernel.shared_files.truncated(&d.inode, len as u64);
    vfs::inotify::file_event(&d, vfs::inotify::IN_MODIFY);
    Ok(0)
}

/// ETXTBSY when a process runs the file (Linux's get_write_access
/// against deny_write_access): its executable cannot be opened for
/// writing or truncated by path.
pub(crate) fn text_not_busy(task: &Task, st: &abi::Stat) -> Result<(), Errno> {
    if task.kernel.running_exes.is_running((st.st_dev, st.st_ino)) {
        return Err(Errno::ETXTBSY);
    }
    Ok(())
}

pub fn ftruncate(task: &mut Task, fd: Fd, len: i64) -> SysResult {
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let f = task.file(fd.0)?;
    if !f.writable() {
        return Err(Errno::EINVAL);
    }
    let d = f.dentry.clone().ok_or(Errno::EINVAL)?;
    if d.is_dir() {
        return Err(Errno::EISDIR);
    }
    fsize_grow_ok(task, f.ops.size().unwrap_or(0), len as u64)?;
    d.inode.setattr(&SetAttr { size: Some(len as u64), ..Default::default() })?;
    task.kernel.shared_files.truncated(&d.inode, len as u64);
    vfs::inotify::file_event(&d, vfs::inotify::IN_MODIFY);
    Ok(0)
}

pub fn fsync(task: &mut Task, fd: Fd) -> SysResult {
    task.file(fd.0)?.ops.fsync()?;
    Ok(0)
}

pub fn sync(_task: &mut Task) -> SysResult {
    Ok(0)
}

pub fn syncfs(task: &mut Task, fd: Fd) -> SysResult {
    task.file(fd.0)?;
    Ok(0)
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

fn apply_times(task: &Task, d: &DentryRef, times: Option<[abi::Timespec; 2]>) -> SysResult {
    let now = vfs::now();
    let conv = |t: abi::Timespec| -> Result<Option<(i64, i64)>, Errno> {
        match t.tv_nsec {
            UTIME_NOW => Ok(Some(now)),
            UTIME_OMIT => Ok(None),
            n if (0..1_000_000_000).contains(&n) => Ok(Some((t.tv_sec, n))),
            _ => Err(Errno::EINVAL),
        }
    };
    let (atime, mtime) = match times {
        None => (Some(now), Some(now)),
        Some([a, m]) => (conv(a)?, conv(m)?),
    };
    if atime.is_none() && mtime.is_none() {
        return Ok(0);
    }
    d.mount.check_writable()?;
    let st = d.inode.stat()?;
    let c = task.creds();
    if c.fsuid != 0 && c.fsuid != st.st_uid {
        // Setting to "now" needs only write access; explicit times need ownership.
        if times.is_some() && !(atime == Some(now) && mtime == Some(now)) {
            return Err(Errno::EPERM);
        }
        c.may_access(&st, W_OK)?;
    }
    let attr = SetAttr { atime, mtime, ..Default::default() };
    d.inode.setattr(&attr)?;
    vfs::inotify::attr_changed(d, &attr);
    Ok(0)
}

pub fn utimensat(task: &mut Task, dirfd: DirFd, path: UserAddr, times: UserAddr, flags: Flags) -> SysResult {
    let flags = flags.0 as u32;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let ts = if times.is_null() {
        None
    } else {
        Some([task.read_obj::<abi::Timespec>(times)?, task.read_obj::<abi::Timespec>(times.offset(16)?)?])
    };
    let d = if path.is_null() {
        fd_dentry(task, Fd(dirfd.0)).map_err(|_| Errno::EBADF)?
    } else {
        let p = task.read_path(path)?;
        if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
            fd_dentry(task, Fd(dirfd.0))?
        } else {
            let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
            task.resolve_at(dirfd.0, &p, follow)?
        }
    };
    apply_times(task, &d, ts)
}

pub fn utimes(task: &mut Task, path: PathAddr, times: UserAddr) -> SysResult {
    futimesat(task, DirFd(AT_FDCWD), path, times)
}

pub fn futimesat(task: &mut Task, dirfd: DirFd, path: PathAddr, times: UserAddr) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    let d = task.resolve_at(dirfd.0, &p, Follow::Yes)?;
    let ts = if times.is_null() {
        None
    } else {
        let a: abi::Timeval = task.read_obj(times)?;
        let m: abi::Timeval = task.read_obj(times.offset(16)?)?;
        if !(0..1_000_000).contains(&a.tv_usec) || !(0..1_000_000).contains(&m.tv_usec) {
            return Err(Errno::EINVAL);
        }
        Some([
            abi::Timespec { tv_sec: a.tv_sec, tv_nsec: a.tv_usec * 1000 },
            abi::Timespec { tv_sec: m.tv_sec, tv_nsec: m.tv_usec * 1000 },
        ])
    };
    apply_times(task, &d, ts)
}

pub fn utime(task: &mut Task, path: PathAddr, times: UserAddr) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    let d = task.resolve(&p, Follow::Yes)?;
    let ts = if times.is_null() {
        None
    } else {
        let a: i64 = task.read_obj(times)?;
        let m: i64 = task.read_obj(times.offset(8)?)?;
        Some([abi::Timespec { tv_sec: a, tv_nsec: 0 }, abi::Timespec { tv_sec: m, tv_nsec: 0 }])
    };
    apply_times(task, &d, ts)
}

pub fn umask(task: &mut Task, mask: u32) -> SysResult {
    let mut fs = sentry::locking::lock(&task.tg.fs);
    let old = fs.umask;
    fs.umask = mask & 0o777;
    Ok(old as u64)
}

pub fn fadvise64(task: &mut Task, fd: Fd, _off: i64, _len: i64, advice: i32) -> SysResult {
    let f = task.file(fd.0)?;
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    if !(0..=5).contains(&advice) {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn fallocate(task: &mut Task, fd: Fd, mode: i32, off: i64, len: i64) -> SysResult {
    let f = task.file(fd.0)?;
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    if mode != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let d = f.dentry.clone().ok_or(Errno::ENODEV)?;
    let end = (off as u64).checked_add(len as u64).ok_or(Errno::EFBIG)?;
    fsize_grow_ok(task, f.ops.size()?, end)?;
    if end > f.ops.size()? {
        d.inode.setattr(&SetAttr { size: Some(end), ..Default::default() })?;
    }
    vfs::inotify::file_event(&d, vfs::inotify::IN_MODIFY);
    Ok(0)
}
