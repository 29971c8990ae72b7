//! Moving bytes: read, write, their vectored and positional forms,
//! lseek and sendfile; RLIMIT_FSIZE and the file-position lock.

use crate::fs::{readable, writable};
use abi::flags::*;
use abi::{Errno, Iovec};
use sentry::table::{Fd, UserAddr};
use sentry::{SysResult, Task};
use vfs::fdtable::PosGuard;
use vfs::OpenFile;

/// Largest chunk moved between guest memory and a file in one step.
pub(crate) const IO_CHUNK: usize = 1 << 20;
/// Largest count one read/write call serves (Linux's MAX_RW_COUNT).
pub(crate) const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// UIO_MAXIOV.
pub(crate) const IOV_MAX: usize = 1024;

/// Linux's access_ok: the range must lie below the top of user space
/// (whether it is mapped is found out when it is copied).
pub(crate) fn access_ok(buf: UserAddr, count: u64) -> Result<(), Errno> {
    match buf.0.checked_add(count) {
        Some(end) if end <= TASK_SIZE => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// Linux's rw_verify_area: a transfer at a file position must end within
/// loff_t (the unclamped count; EINVAL otherwise).
pub(crate) fn verify_area(at: u64, count: u64) -> Result<(), Errno> {
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
pub(crate) fn lock_pos_for_io(f: &OpenFile, seekable: bool, off: Option<u64>) -> Option<PosGuard<'_>> {
    (seekable && off.is_none()).then(|| f.lock_pos())
}

/// Read from `f` into guest memory at `buf`, at the file position when
/// `off` is None. Moves at most IO_CHUNK bytes per step through a bounce
/// buffer; stops early on a short read.
fn do_read(task: &Task, f: &OpenFile, buf: UserAddr, count: u64, off: Option<u64>) -> SysResult {
    do_read_as(task, f, buf, count, off, 0)
}

/// do_read with `extra` status flags for this call only (O_NONBLOCK for
/// RWF_NOWAIT and SPLICE_F_NONBLOCK).
pub(crate) fn do_read_as(
    task: &Task,
    f: &OpenFile,
    buf: UserAddr,
    count: u64,
    off: Option<u64>,
    extra: u32,
) -> SysResult {
    access_ok(buf, count)?;
    let asked = count;
    let count = count.min(MAX_RW_COUNT) as usize;
    if count == 0 {
        return Ok(0);
    }
    let seekable = f.ops.seekable();
    // A pipe, stream socket or terminal keeps what a read cannot place:
    // Linux fails with EFAULT before taking anything when the buffer's
    // first byte is not writable (here: takes only what the writable part
    // holds when some of it is). Event files (inotify, eventfd, timerfd,
    // signalfd) and datagrams are consumed either way, as on Linux.
    let count = match seekable {
        true => count,
        false => match task.mm().writable_prefix(buf.0, count as u64) {
            n if n >= count as u64 || !keeps_unread(f) => count,
            0 => return Err(Errno::EFAULT),
            n => n as usize,
        },
    };
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
    let mut chunk = crate::scratch::scratch(count.min(IO_CHUNK));
    let mut done = 0usize;
    let mut ctx = task.io_ctx(f);
    ctx.flags |= extra;
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
    drop(pos);
    vfs::inotify::transferred(f, done as u64, vfs::inotify::IN_ACCESS);
    note_bulk(task, done);
    Ok(done as u64)
}

/// Tell the platform when a call moved `done` bytes, if that is much
/// (`platform::Context::bulk_transfer`).
pub(crate) fn note_bulk(task: &Task, done: usize) {
    const BULK: usize = 32 * 1024;
    if done >= BULK {
        task.ctx.bulk_transfer();
    }
}

/// Does `f` keep the bytes a failed read did not place (a pipe or FIFO, a
/// terminal or other character device, a stream socket)?
fn keeps_unread(f: &OpenFile) -> bool {
    if let Ok(sf) = netstack::SocketFile::of(f) {
        return sf.sock.sock_type() == abi::socket::SOCK_STREAM;
    }
    f.ops.stat().is_some_and(|st| matches!(st.st_mode & S_IFMT, S_IFIFO | S_IFCHR))
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
pub(crate) fn fsize_allow(task: &Task, f: &OpenFile, at: u64, want: usize) -> Result<usize, Errno> {
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
pub(crate) fn fsize_grow_ok(task: &Task, old: u64, size: u64) -> Result<(), Errno> {
    let limit = task.tg.rlimit(RLIMIT_FSIZE).cur;
    if size > old && limit != RLIM_INFINITY && size > limit {
        task.queue_self(abi::signal::SIGXFSZ, abi::signal::SI_USER);
        return Err(Errno::EFBIG);
    }
    Ok(())
}

fn do_write(task: &Task, f: &OpenFile, buf: UserAddr, count: u64, off: Option<u64>) -> SysResult {
    do_write_as(task, f, buf, count, off, 0)
}

/// do_write with `extra` status flags for this call only (O_NONBLOCK,
/// O_APPEND for RWF_APPEND).
pub(crate) fn do_write_as(
    task: &Task,
    f: &OpenFile,
    buf: UserAddr,
    count: u64,
    off: Option<u64>,
    extra: u32,
) -> SysResult {
    access_ok(buf, count)?;
    let asked = count;
    let count = count.min(MAX_RW_COUNT) as usize;
    if count == 0 {
        return Ok(0);
    }
    if f.ops.discards_writes() {
        vfs::inotify::transferred(f, count as u64, vfs::inotify::IN_MODIFY);
        return Ok(count as u64);
    }
    let seekable = f.ops.seekable();
    let mut pos = lock_pos_for_io(f, seekable, off);
    let mut at = match off {
        Some(o) => o,
        None if seekable && (f.flags() | extra) & O_APPEND != 0 => f.ops.size()?,
        None => pos.as_ref().map_or(0, |p| p.offset),
    };
    if seekable {
        verify_area(at, asked)?;
    }
    let count = fsize_allow(task, f, at, count)?;
    let mut chunk = crate::scratch::scratch(count.min(IO_CHUNK));
    let mut done = 0usize;
    let mut ctx = task.io_ctx(f);
    ctx.flags |= extra;
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
    drop(pos);
    vfs::inotify::transferred(f, done as u64, vfs::inotify::IN_MODIFY);
    note_bulk(task, done);
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
pub(crate) fn raise_sigpipe_on(task: &mut Task, r: &SysResult) {
    if *r == Err(Errno::EPIPE) {
        task.queue_self(abi::signal::SIGPIPE, abi::signal::SI_USER);
    }
}

pub(crate) fn check_offset(f: &OpenFile, off: i64) -> Result<u64, Errno> {
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

pub(crate) fn do_readv(task: &Task, f: &OpenFile, iov: UserAddr, cnt: i32, off: Option<u64>) -> SysResult {
    let iovs = read_iovecs(task, iov, cnt)?;
    each_iovec(&iovs, off, |e, at| do_read(task, f, UserAddr(e.base), e.len, at))
}

/// Run `op` on each non-empty iovec in turn (with the file offset for it,
/// when positional), stopping at the first short transfer; an error after
/// some bytes moved ends the call with the count so far.
pub(crate) fn each_iovec(
    iovs: &[Iovec],
    off: Option<u64>,
    mut op: impl FnMut(&Iovec, Option<u64>) -> SysResult,
) -> SysResult {
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

pub(crate) fn do_writev(task: &Task, f: &OpenFile, iov: UserAddr, cnt: i32, off: Option<u64>) -> SysResult {
    let iovs = read_iovecs(task, iov, cnt)?;
    // Gather small vectors into one write so pipes see one atomic write.
    let sum: u64 = iovs.iter().map(|e| e.len).sum();
    if f.ops.discards_writes() {
        for e in &iovs {
            access_ok(UserAddr(e.base), e.len)?;
        }
        vfs::inotify::transferred(f, sum, vfs::inotify::IN_MODIFY);
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
        drop(pos);
        vfs::inotify::transferred(f, n as u64, vfs::inotify::IN_MODIFY);
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
    if f.ops.pinned_offset() {
        return Ok(0);
    }
    if let Some(r) = f.ops.seek(off, whence) {
        return r;
    }
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
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
    let mut buf = crate::scratch::scratch(count.min(IO_CHUNK));
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
    vfs::inotify::transferred(&inf, done as u64, vfs::inotify::IN_ACCESS);
    vfs::inotify::transferred(&outf, done as u64, vfs::inotify::IN_MODIFY);
    Ok(done as u64)
}
