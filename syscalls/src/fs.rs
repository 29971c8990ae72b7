//! File syscalls: open and close, directories and the working
//! directory. Beside it: `stat` and `statx`, `openat2` (the restricted
//! walk), `rw` and `rw2` (moving bytes), `splice` and `copy_range`,
//! `names` (entries in directories), `attr` (attributes, sync),
//! `memfd`, `locks` (flock, fcntl locks, leases, pipe sizes).

use crate::attr::text_not_busy;
use crate::rw::IO_CHUNK;
use abi::flags::*;
use abi::{Errno, Stat};
use sentry::table::{DirFd, Fd, Flags, PathAddr, UserAddr};
use sentry::{SysResult, Task};
use std::sync::Arc;
use vfs::{DentryRef, FileOps, Follow, OpenFile, SetAttr, WalkOpts};

pub(crate) fn is_dir(st: &Stat) -> bool {
    st.st_mode & S_IFMT == S_IFDIR
}

/// An O_PATH file: only a location.
struct PathOnly;
impl FileOps for PathOnly {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The file behind `fd`, for reading.
pub(crate) fn readable(task: &Task, fd: Fd) -> Result<Arc<OpenFile>, Errno> {
    let f = task.file(fd.0)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

pub(crate) fn writable(task: &Task, fd: Fd) -> Result<Arc<OpenFile>, Errno> {
    let f = task.file(fd.0)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

/// Open `path` (relative to `dirfd`) with open(2) semantics.
pub fn open_path(task: &Task, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> Result<Arc<OpenFile>, Errno> {
    open_path_with(task, dirfd, path, flags, mode, &WalkOpts::default())
}

/// [`open_path`] with the path walk restricted by `opts` (openat2).
pub(crate) fn open_path_with(
    task: &Task,
    dirfd: i32,
    path: &[u8],
    flags: u32,
    mode: u32,
    opts: &WalkOpts,
) -> Result<Arc<OpenFile>, Errno> {
    let creds = task.creds();
    // Access mode 3 is Linux's "no read, no write" (ioctl-only) mode.
    let acc = flags & O_ACCMODE;
    let follow = if flags & O_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
    let d: DentryRef = if flags & O_CREAT != 0 && flags & O_PATH == 0 {
        let (parent, name) = crate::openat2::walk_parent(task, dirfd, path, opts)?;
        let Some(name) = name else {
            return Err(Errno::EISDIR);
        };
        match task.kernel.mounts.child(&parent, &name) {
            Ok(_) => {
                if flags & O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                crate::openat2::walk(task, dirfd, path, follow, opts)?
            }
            Err(Errno::ENOENT) => {
                let pst = parent.inode.stat()?;
                creds.may_access(&pst, W_OK | X_OK)?;
                parent.mount.check_writable()?;
                let umask = task.fs().umask;
                parent.inode.create(&name, S_IFREG | (mode & 0o7777 & !umask), &creds)?;
                vfs::inotify::dir_event(&parent, vfs::inotify::IN_CREATE, &name, 0, false);
                task.kernel.mounts.child(&parent, &name)?
            }
            Err(e) => return Err(e),
        }
    } else {
        crate::openat2::walk(task, dirfd, path, follow, opts)?
    };
    let st = d.inode.stat()?;
    if st.st_mode & S_IFMT == S_IFLNK && flags & O_PATH == 0 {
        return Err(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && !is_dir(&st) {
        return Err(Errno::ENOTDIR);
    }
    let status = flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    if flags & O_PATH != 0 {
        return Ok(OpenFile::new(Arc::new(PathOnly), Some(d), O_PATH | (flags & O_DIRECTORY)));
    }
    let want_write = acc == O_WRONLY || acc == O_RDWR;
    if is_dir(&st) && (want_write || flags & O_TRUNC != 0 && acc != O_RDONLY) {
        return Err(Errno::EISDIR);
    }
    let mut mask = 0;
    if acc == O_RDONLY || acc == O_RDWR {
        mask |= R_OK;
    }
    if want_write {
        mask |= W_OK;
    }
    creds.may_access(&st, mask)?;
    let is_file_or_dir = matches!(st.st_mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK);
    if want_write && is_file_or_dir {
        d.mount.check_writable()?;
    }
    if want_write && st.st_mode & S_IFMT == S_IFREG {
        text_not_busy(task, &st)?;
    }
    if st.st_mode & S_IFMT == S_IFREG {
        crate::locks::break_leases(task, &*d.inode, &st, flags)?;
    }
    // O_NOCTTY reaches the node (a terminal decides whether to become the
    // caller's controlling one) but is no status flag of the file.
    let ops = d.inode.open(status | (flags & O_NOCTTY))?;
    let truncate = flags & O_TRUNC != 0 && want_write && st.st_mode & S_IFMT == S_IFREG;
    if truncate && st.st_size != 0 {
        d.inode.setattr(&SetAttr { size: Some(0), ..Default::default() })?;
        task.kernel.shared_files.truncated(&d.inode, 0);
    }
    vfs::inotify::file_event(&d, vfs::inotify::IN_OPEN);
    if truncate {
        vfs::inotify::file_event(&d, vfs::inotify::IN_MODIFY);
    }
    Ok(OpenFile::new(ops, Some(d), status))
}

pub(crate) fn install(task: &Task, f: Arc<OpenFile>, cloexec: bool) -> SysResult {
    let fd = task.fds().install(f, cloexec, task.tg.nofile())?;
    Ok(fd as u64)
}

pub fn openat(task: &mut Task, dirfd: DirFd, path: PathAddr, flags: Flags, mode: u32) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    let flags = flags.0 as u32;
    let f = open_path(task, dirfd.0, &p, flags, mode)?;
    install(task, f, flags & O_CLOEXEC != 0)
}

pub fn open(task: &mut Task, path: PathAddr, flags: Flags, mode: u32) -> SysResult {
    openat(task, DirFd(AT_FDCWD), path, flags, mode)
}

pub fn creat(task: &mut Task, path: PathAddr, mode: u32) -> SysResult {
    openat(task, DirFd(AT_FDCWD), path, Flags((O_CREAT | O_WRONLY | O_TRUNC) as u64), mode)
}

pub fn close(task: &mut Task, fd: Fd) -> SysResult {
    let f = task.fds().remove(fd.0)?;
    drop(f);
    Ok(0)
}

pub use crate::stat::{file_stat, fstat, fstatfs, lstat, newfstatat, stat, statfs};

fn dirents(task: &Task, fd: Fd, buf: UserAddr, count: u32, wide: bool) -> SysResult {
    let f = task.file(fd.0)?;
    let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let mut pos = f.lock_pos();
    if pos.dir.is_none() {
        let st = d.inode.stat()?;
        if !is_dir(&st) {
            return Err(Errno::ENOTDIR);
        }
        let parent_ino = {
            let fs = task.fs();
            let p = task.kernel.mounts.dotdot(&fs.root, &d);
            p.inode.stat().map(|s| s.st_ino).unwrap_or(st.st_ino)
        };
        let mut list = vec![
            vfs::DirEntry { ino: st.st_ino, d_type: DT_DIR, name: b".".to_vec() },
            vfs::DirEntry { ino: parent_ino, d_type: DT_DIR, name: b"..".to_vec() },
        ];
        list.extend(d.inode.readdir()?);
        pos.dir = Some(list);
    }
    let cap = (count as usize).min(IO_CHUNK);
    let mut out = Vec::with_capacity(cap.min(64 * 1024));
    let start = pos.offset as usize;
    let mut idx = start;
    if let Some(list) = &pos.dir {
        while let Some(e) = list.get(idx) {
            let next = (idx + 1) as i64;
            let ok = if wide {
                abi::structs::push_dirent64(&mut out, cap, e.ino, next, e.d_type, &e.name)
            } else {
                abi::structs::push_dirent(&mut out, cap, e.ino, next, e.d_type, &e.name)
            };
            if !ok {
                if idx == start {
                    return Err(Errno::EINVAL);
                }
                break;
            }
            idx += 1;
        }
    }
    task.copy_out(buf, &out)?;
    pos.offset = idx as u64;
    drop(pos);
    vfs::inotify::file_event(&d, vfs::inotify::IN_ACCESS);
    Ok(out.len() as u64)
}

pub fn getdents64(task: &mut Task, fd: Fd, buf: UserAddr, count: u32) -> SysResult {
    dirents(task, fd, buf, count, true)
}

pub fn getdents(task: &mut Task, fd: Fd, buf: UserAddr, count: u32) -> SysResult {
    dirents(task, fd, buf, count, false)
}

pub fn getcwd(task: &mut Task, buf: UserAddr, size: u64) -> SysResult {
    let mut p = task.fs().cwd.path();
    p.push(0);
    // Linux builds the path in one page.
    if p.len() > PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if (size as usize) < p.len() {
        return Err(Errno::ERANGE);
    }
    task.copy_out(buf, &p)?;
    Ok(p.len() as u64)
}

fn set_cwd(task: &Task, d: DentryRef) -> SysResult {
    let st = d.inode.stat()?;
    if !is_dir(&st) {
        return Err(Errno::ENOTDIR);
    }
    task.creds().may_access(&st, X_OK)?;
    sentry::locking::lock(&task.tg.fs).cwd = d;
    Ok(0)
}

pub fn chdir(task: &mut Task, path: PathAddr) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    let d = task.resolve(&p, Follow::Yes)?;
    set_cwd(task, d)
}

pub fn fchdir(task: &mut Task, fd: Fd) -> SysResult {
    let f = task.file(fd.0)?;
    let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
    set_cwd(task, d)
}

pub fn chroot(task: &mut Task, path: PathAddr) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    let d = task.resolve(&p, Follow::Yes)?;
    if !is_dir(&d.inode.stat()?) {
        return Err(Errno::ENOTDIR);
    }
    if task.creds().euid != 0 {
        return Err(Errno::EPERM);
    }
    sentry::locking::lock(&task.tg.fs).root = d;
    Ok(0)
}
