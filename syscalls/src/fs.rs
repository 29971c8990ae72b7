//! File syscalls: open, read, write, stat, directories, links, attributes.

use abi::flags::*;
use abi::{Errno, Iovec, Stat};
use sentry::table::{DirFd, Fd, Flags, PathAddr, UserAddr};
use sentry::{SysResult, Task};
use std::sync::Arc;
use vfs::fdtable::PosGuard;
use vfs::{DentryRef, FileOps, Follow, OpenFile, SetAttr};

/// Largest chunk moved between guest memory and a file in one step.
const IO_CHUNK: usize = 1 << 20;
/// Largest count one read/write call serves (Linux's MAX_RW_COUNT).
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// UIO_MAXIOV.
const IOV_MAX: usize = 1024;

fn is_dir(st: &Stat) -> bool {
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
fn readable(task: &Task, fd: Fd) -> Result<Arc<OpenFile>, Errno> {
    let f = task.file(fd.0)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

fn writable(task: &Task, fd: Fd) -> Result<Arc<OpenFile>, Errno> {
    let f = task.file(fd.0)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

/// Open `path` (relative to `dirfd`) with open(2) semantics.
pub fn open_path(task: &Task, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> Result<Arc<OpenFile>, Errno> {
    let creds = task.creds();
    // Access mode 3 is Linux's "no read, no write" (ioctl-only) mode.
    let acc = flags & O_ACCMODE;
    let follow = if flags & O_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
    let d: DentryRef = if flags & O_CREAT != 0 && flags & O_PATH == 0 {
        let (parent, name) = task.resolve_parent_at(dirfd, path)?;
        let Some(name) = name else {
            return Err(Errno::EISDIR);
        };
        match task.kernel.mounts.child(&parent, &name) {
            Ok(_) => {
                if flags & O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                task.resolve_at(dirfd, path, follow)?
            }
            Err(Errno::ENOENT) => {
                let pst = parent.inode.stat()?;
                creds.may_access(&pst, W_OK | X_OK)?;
                parent.mount.check_writable()?;
                let umask = task.fs().umask;
                parent.inode.create(&name, S_IFREG | (mode & 0o7777 & !umask), &creds)?;
                task.kernel.mounts.child(&parent, &name)?
            }
            Err(e) => return Err(e),
        }
    } else {
        task.resolve_at(dirfd, path, follow)?
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
    let ops = d.inode.open(status)?;
    if flags & O_TRUNC != 0 && want_write && st.st_mode & S_IFMT == S_IFREG && st.st_size != 0 {
        d.inode.setattr(&SetAttr { size: Some(0), ..Default::default() })?;
        task.kernel.shared_files.truncated(&d.inode, 0);
    }
    Ok(OpenFile::new(ops, Some(d), status))
}

fn install(task: &Task, f: Arc<OpenFile>, cloexec: bool) -> SysResult {
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

/// Read from `f` into guest memory at `buf`, at the file position when
/// `off` is None. Moves at most IO_CHUNK bytes per step through a bounce
/// buffer; stops early on a short read.
/// Linux's access_ok: the range must lie below the top of user space
/// (whether it is mapped is found out when it is copied).
fn access_ok(buf: UserAddr, count: u64) -> Result<(), Errno> {
    match buf.0.checked_add(count) {
        Some(end) if end <= TASK_SIZE => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// Linux's rw_verify_area: a transfer at a file position must end within
/// loff_t (the unclamped count; EINVAL otherwise).
fn verify_area(at: u64, count: u64) -> Result<(), Errno> {
    match at.checked_add(count) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

/// The top of the x86-64 user address space (TASK_SIZE_MAX).
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// The file-position lock, taken only where Linux takes it (f_pos_lock):
/// a seekable file read or written at its own offset. Pipes, FIFOs and
/// other streams do not lock it: a reader blocked in one must not leave a
/// second user of the same description stuck on this mutex, where neither
/// signals nor SIGKILL could reach it.
fn lock_pos_for_io(f: &OpenFile, seekable: bool, off: Option<u64>) -> Option<PosGuard<'_>> {
    (seekable && off.is_none()).then(|| f.lock_pos())
}

fn do_read(task: &Task, f: &OpenFile, buf: UserAddr, count: u64, off: Option<u64>) -> SysResult {
    access_ok(buf, count)?;
    let asked = count;
    let count = count.min(MAX_RW_COUNT) as usize;
    if count == 0 {
        return Ok(0);
    }
    let seekable = f.ops.seekable();
    let mut pos = lock_pos_for_io(f, seekable, off);
    let mut at = match off {
        Some(o) => o,
        None => pos.as_ref().map_or(0, |p| p.offset),
    };
    if seekable {
        verify_area(at, asked)?;
    }
    if seekable {
        task.kernel.shared_files.before_read(f, at, count as u64);
    }
    let mut chunk = vec![0u8; count.min(IO_CHUNK)];
    let mut done = 0usize;
    let ctx = task.io_ctx(f);
    while done < count {
        let want = (count - done).min(chunk.len());
        let n = match f.ops.read(&ctx, &mut chunk[..want], at) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        if let Err(e) = task.copy_out(buf.offset(done as u64)?, &chunk[..n]) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        done += n;
        if seekable {
            at += n as u64;
        }
        if n < want || !seekable {
            break;
        }
    }
    if let Some(p) = pos.as_mut() {
        p.offset = at;
    }
    Ok(done as u64)
}

/// Is `f` a regular file (RLIMIT_FSIZE applies only to those)?
fn is_regular_file(f: &OpenFile) -> bool {
    match &f.dentry {
        Some(d) => d.is_regular(),
        None => f.ops.stat().is_some_and(|st| st.st_mode & S_IFMT == S_IFREG),
    }
}

/// RLIMIT_FSIZE on a write of `want` bytes at `at` (Linux's
/// generic_write_checks): at or past the limit the writer gets SIGXFSZ
/// and EFBIG; below it the write is cut short at the limit.
fn fsize_allow(task: &Task, f: &OpenFile, at: u64, want: usize) -> Result<usize, Errno> {
    let limit = task.tg.rlimit(RLIMIT_FSIZE).cur;
    if limit == RLIM_INFINITY || !is_regular_file(f) {
        return Ok(want);
    }
    if at >= limit {
        task.queue_self(abi::signal::SIGXFSZ, abi::signal::SI_USER);
        return Err(Errno::EFBIG);
    }
    Ok(want.min(usize::try_from(limit - at).unwrap_or(usize::MAX)))
}

/// RLIMIT_FSIZE on growing a file to `size` (truncate, fallocate: Linux's
/// inode_newsize_ok).
fn fsize_grow_ok(task: &Task, old: u64, size: u64) -> Result<(), Errno> {
    let limit = task.tg.rlimit(RLIMIT_FSIZE).cur;
    if size > old && limit != RLIM_INFINITY && size > limit {
        task.queue_self(abi::signal::SIGXFSZ, abi::signal::SI_USER);
        return Err(Errno::EFBIG);
    }
    Ok(())
}

fn do_write(task: &Task, f: &OpenFile, buf: UserAddr, count: u64, off: Option<u64>) -> SysResult {
    access_ok(buf, count)?;
    let asked = count;
    let count = count.min(MAX_RW_COUNT) as usize;
    if count == 0 {
        return Ok(0);
    }
    if f.ops.discards_writes() {
        return Ok(count as u64);
    }
    let seekable = f.ops.seekable();
    let mut pos = lock_pos_for_io(f, seekable, off);
    let mut at = match off {
        Some(o) => o,
        None if seekable && f.flags() & O_APPEND != 0 => f.ops.size()?,
        None => pos.as_ref().map_or(0, |p| p.offset),
    };
    if seekable {
        verify_area(at, asked)?;
    }
    let count = fsize_allow(task, f, at, count)?;
    let mut chunk = vec![0u8; count.min(IO_CHUNK)];
    let mut done = 0usize;
    let ctx = task.io_ctx(f);
    while done < count {
        let want = (count - done).min(chunk.len());
        if let Err(e) = task.copy_in(buf.offset(done as u64)?, &mut chunk[..want]) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        let n = match f.ops.write(&ctx, &chunk[..want], at) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if seekable {
            task.kernel.shared_files.after_write(f, at, &chunk[..n]);
        }
        done += n;
        if seekable {
            at += n as u64;
        }
        if n < want {
            break;
        }
    }
    if let Some(p) = pos.as_mut() {
        p.offset = at;
    }
    Ok(done as u64)
}

pub fn read(task: &mut Task, fd: Fd, buf: UserAddr, count: u64) -> SysResult {
    let f = readable(task, fd)?;
    let r = do_read(task, &f, buf, count, None);
    raise_sigpipe_on(task, &r);
    r
}

pub fn write(task: &mut Task, fd: Fd, buf: UserAddr, count: u64) -> SysResult {
    let f = writable(task, fd)?;
    let r = do_write(task, &f, buf, count, None);
    raise_sigpipe_on(task, &r);
    r
}

/// A write that failed with EPIPE also raises SIGPIPE.
fn raise_sigpipe_on(task: &mut Task, r: &SysResult) {
    if *r == Err(Errno::EPIPE) {
        task.queue_self(abi::signal::SIGPIPE, abi::signal::SI_USER);
    }
}

fn check_offset(f: &OpenFile, off: i64) -> Result<u64, Errno> {
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    u64::try_from(off).map_err(|_| Errno::EINVAL)
}

pub fn pread64(task: &mut Task, fd: Fd, buf: UserAddr, count: u64, off: i64) -> SysResult {
    let f = readable(task, fd)?;
    let off = check_offset(&f, off)?;
    do_read(task, &f, buf, count, Some(off))
}

pub fn pwrite64(task: &mut Task, fd: Fd, buf: UserAddr, count: u64, off: i64) -> SysResult {
    let f = writable(task, fd)?;
    let off = check_offset(&f, off)?;
    do_write(task, &f, buf, count, Some(off))
}

pub(crate) fn read_iovecs(task: &Task, iov: UserAddr, cnt: i32) -> Result<Vec<Iovec>, Errno> {
    let cnt = usize::try_from(cnt).map_err(|_| Errno::EINVAL)?;
    if cnt > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut v = Vec::with_capacity(cnt);
    let mut total: u64 = 0;
    for i in 0..cnt {
        let e: Iovec = task.read_obj(iov.offset(i as u64 * 16)?)?;
        if e.len > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        total = total.checked_add(e.len).ok_or(Errno::EINVAL)?;
        if total > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        v.push(e);
    }
    Ok(v)
}

fn do_readv(task: &Task, f: &OpenFile, iov: UserAddr, cnt: i32, off: Option<u64>) -> SysResult {
    let iovs = read_iovecs(task, iov, cnt)?;
    each_iovec(&iovs, off, |e, at| do_read(task, f, UserAddr(e.base), e.len, at))
}

/// Run `op` on each non-empty iovec in turn (with the file offset for it,
/// when positional), stopping at the first short transfer; an error after
/// some bytes moved ends the call with the count so far.
fn each_iovec(iovs: &[Iovec], off: Option<u64>, mut op: impl FnMut(&Iovec, Option<u64>) -> SysResult) -> SysResult {
    let mut total = 0u64;
    for e in iovs.iter().filter(|e| e.len != 0) {
        match op(e, off.map(|o| o + total)) {
            Ok(n) => {
                total += n;
                if n < e.len {
                    break;
                }
            }
            Err(err) if total == 0 => return Err(err),
            Err(_) => break,
        }
    }
    Ok(total)
}

fn do_writev(task: &Task, f: &OpenFile, iov: UserAddr, cnt: i32, off: Option<u64>) -> SysResult {
    let iovs = read_iovecs(task, iov, cnt)?;
    // Gather small vectors into one write so pipes see one atomic write.
    let sum: u64 = iovs.iter().map(|e| e.len).sum();
    if f.ops.discards_writes() {
        for e in &iovs {
            access_ok(UserAddr(e.base), e.len)?;
        }
        return Ok(sum);
    }
    if sum <= 64 * 1024 && iovs.len() > 1 {
        let mut buf = Vec::with_capacity(sum as usize);
        for e in &iovs {
            let start = buf.len();
            buf.resize(start + e.len as usize, 0);
            if let Err(err) = task.copy_in(UserAddr(e.base), &mut buf[start..]) {
                buf.truncate(start);
                if start == 0 {
                    return Err(err);
                }
                break;
            }
        }
        let seekable = f.ops.seekable();
        let mut pos = lock_pos_for_io(f, seekable, off);
        let at = match off {
            Some(o) => o,
            None if seekable && f.flags() & O_APPEND != 0 => f.ops.size()?,
            None => pos.as_ref().map_or(0, |p| p.offset),
        };
        if seekable {
            verify_area(at, sum)?;
        }
        let allowed = fsize_allow(task, f, at, buf.len())?;
        let n = f.ops.write(&task.io_ctx(f), &buf[..allowed], at)?;
        if seekable {
            task.kernel.shared_files.after_write(f, at, &buf[..n]);
        }
        if let Some(p) = pos.as_mut() {
            p.offset = at.saturating_add(n as u64);
        }
        return Ok(n as u64);
    }
    each_iovec(&iovs, off, |e, at| do_write(task, f, UserAddr(e.base), e.len, at))
}

pub fn readv(task: &mut Task, fd: Fd, iov: UserAddr, cnt: i32) -> SysResult {
    let f = readable(task, fd)?;
    do_readv(task, &f, iov, cnt, None)
}

pub fn writev(task: &mut Task, fd: Fd, iov: UserAddr, cnt: i32) -> SysResult {
    let f = writable(task, fd)?;
    let r = do_writev(task, &f, iov, cnt, None);
    raise_sigpipe_on(task, &r);
    r
}

pub fn preadv(task: &mut Task, fd: Fd, iov: UserAddr, cnt: i32, off: i64) -> SysResult {
    let f = readable(task, fd)?;
    let off = check_offset(&f, off)?;
    do_readv(task, &f, iov, cnt, Some(off))
}

pub fn pwritev(task: &mut Task, fd: Fd, iov: UserAddr, cnt: i32, off: i64) -> SysResult {
    let f = writable(task, fd)?;
    let off = check_offset(&f, off)?;
    do_writev(task, &f, iov, cnt, Some(off))
}

pub fn lseek(task: &mut Task, fd: Fd, off: i64, whence: u32) -> SysResult {
    let f = task.file(fd.0)?;
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    if f.ops.pinned_offset() {
        return Ok(0);
    }
    let mut pos = f.lock_pos();
    let base: i64 = match whence {
        SEEK_SET => 0,
        SEEK_CUR => pos.offset as i64,
        SEEK_END => f.ops.size()? as i64,
        SEEK_DATA | SEEK_HOLE => {
            let size = f.ops.size()? as i64;
            if off < 0 || off >= size {
                return Err(Errno::ENXIO);
            }
            let r = if whence == SEEK_DATA { off } else { size };
            pos.offset = r as u64;
            return Ok(r as u64);
        }
        _ => return Err(Errno::EINVAL),
    };
    let new = base.checked_add(off).ok_or(Errno::EOVERFLOW)?;
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    pos.offset = new as u64;
    if new == 0 {
        pos.dir = None;
    }
    Ok(new as u64)
}

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
    let st = if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
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
    parent.inode.unlink(&name)?;
    task.kernel.mounts.removed(&parent, &name);
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
    parent.inode.rmdir(&name)?;
    task.kernel.mounts.removed(&parent, &name);
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
    oparent.inode.rename(&oname, &nparent.inode, &nname, flags)?;
    // Whoever holds the moved directory (a working directory, an open
    // file below it) sees the new path.
    task.kernel.mounts.renamed(&oparent, &oname, &nparent, &nname, flags & RENAME_EXCHANGE != 0);
    Ok(0)
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

pub fn faccessat(task: &mut Task, dirfd: DirFd, path: PathAddr, mode: u32) -> SysResult {
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let p = task.read_path(UserAddr(path.0))?;
    let d = task.resolve_at(dirfd.0, &p, Follow::Yes)?;
    let st = d.inode.stat()?;
    // access(2) checks with the real ids.
    let mut c = task.creds();
    c.fsuid = c.uid;
    c.fsgid = c.gid;
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
    fsize_grow_ok(task, u64::try_from(st.st_size).unwrap_or(0), len as u64)?;
    d.inode.setattr(&SetAttr { size: Some(len as u64), ..Default::default() })?;
    task.kernel.shared_files.truncated(&d.inode, len as u64);
    Ok(0)
}

/// ETXTBSY when a process runs the file (Linux's get_write_access
/// against deny_write_access): its executable cannot be opened for
/// writing or truncated by path.
fn text_not_busy(task: &Task, st: &abi::Stat) -> Result<(), Errno> {
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
    d.inode.setattr(&SetAttr { atime, mtime, ..Default::default() })?;
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
    Ok(0)
}

pub fn sendfile(task: &mut Task, out_fd: Fd, in_fd: Fd, offp: UserAddr, count: u64) -> SysResult {
    let inf = readable(task, in_fd)?;
    let outf = writable(task, out_fd)?;
    if outf.flags() & O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let mut off = if offp.is_null() {
        None
    } else {
        let o: i64 = task.read_obj(offp)?;
        Some(u64::try_from(o).map_err(|_| Errno::EINVAL)?)
    };
    let count = count.min(MAX_RW_COUNT) as usize;
    let count = if outf.ops.seekable() {
        let at = outf.lock_pos().offset;
        fsize_allow(task, &outf, at, count)?
    } else {
        count
    };
    let mut buf = vec![0u8; count.min(IO_CHUNK)];
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(buf.len());
        let n = {
            let ctx = task.io_ctx(&inf);
            let in_seekable = inf.ops.seekable();
            let mut pos = lock_pos_for_io(&inf, in_seekable, off);
            let at = off.unwrap_or_else(|| pos.as_ref().map_or(0, |p| p.offset));
            if in_seekable {
                task.kernel.shared_files.before_read(&inf, at, want as u64);
            }
            let r = inf.ops.read(&ctx, &mut buf[..want], at);
            match r {
                Ok(n) => {
                    if let Some(p) = pos.as_mut() {
                        p.offset = at.saturating_add(n as u64);
                    }
                    n
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        };
        if n == 0 {
            break;
        }
        let ctx = task.io_ctx(&outf);
        let out_seekable = outf.ops.seekable();
        let mut pos = lock_pos_for_io(&outf, out_seekable, None);
        let at = pos.as_ref().map_or(0, |p| p.offset);
        let w = match outf.ops.write(&ctx, &buf[..n], at) {
            Ok(w) if out_seekable => {
                task.kernel.shared_files.after_write(&outf, at, &buf[..w]);
                w
            }
            Ok(w) => w,
            Err(e) if done == 0 => {
                drop(pos);
                if e == Errno::EPIPE {
                    task.queue_self(abi::signal::SIGPIPE, abi::signal::SI_USER);
                }
                return Err(e);
            }
            Err(_) => break,
        };
        if let Some(p) = pos.as_mut() {
            p.offset = at.saturating_add(w as u64);
        }
        drop(pos);
        done += w;
        if let Some(o) = off.as_mut() {
            *o = o.saturating_add(w as u64);
        }
        if w < n || n < want {
            break;
        }
    }
    if let Some(o) = off {
        task.write_obj(offp, &(o as i64))?;
    }
    Ok(done as u64)
}

pub fn flock(task: &mut Task, fd: Fd, op: i32) -> SysResult {
    task.file(fd.0)?;
    let kind = op & !4; // LOCK_NB
    if !matches!(kind, 1 | 2 | 8) {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}
