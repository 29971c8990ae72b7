//! splice, tee and vmsplice: moving bytes to and from pipes without the
//! caller's buffer. The Sentry has no page references to hand over, so
//! each is a copy through the ordinary read and write paths of the files
//! involved (regular files, sockets, ttys alike), with Linux's argument
//! rules and its amounts: a move never takes more from a stream than the
//! pipe on the other side has room for, so nothing read is ever dropped.

use crate::rw::{access_ok, fsize_allow, read_iovecs, verify_area, IO_CHUNK, MAX_RW_COUNT};
use crate::stat::file_stat;
use abi::flags::*;
use abi::{Errno, Iovec};
use sentry::table::{Fd, UserAddr};
use sentry::{SysResult, Task};
use vfs::pipe::PipeEnd;
use vfs::{FileOps, IoCtx, OpenFile};

const SPLICE_F_NONBLOCK: u32 = 0x2;
/// MOVE, NONBLOCK, MORE, GIFT: MOVE and GIFT are hints about pages, MORE
/// one about sockets; none changes what is copied here.
const SPLICE_F_ALL: u32 = 0xf;

pub(crate) fn pipe_of(f: &OpenFile) -> Option<&PipeEnd> {
    f.ops.as_any().downcast_ref::<PipeEnd>()
}

/// An I/O context for `f` that does not wait when `nonblock`.
fn ctx_for<'a>(task: &'a Task, f: &OpenFile, nonblock: bool) -> IoCtx<'a> {
    let mut ctx = task.io_ctx(f);
    if nonblock {
        ctx.flags |= O_NONBLOCK;
    }
    ctx
}

/// A guest loff_t argument (EFAULT unreadable, EINVAL negative).
fn read_off(task: &Task, p: UserAddr) -> Result<Option<i64>, Errno> {
    if p.is_null() {
        return Ok(None);
    }
    Ok(Some(task.read_obj::<i64>(p)?))
}

fn epipe(task: &mut Task, r: SysResult) -> SysResult {
    if r == Err(Errno::EPIPE) {
        task.queue_self(abi::signal::SIGPIPE, abi::signal::SI_USER);
    }
    r
}

pub fn splice(
    task: &mut Task,
    fd_in: Fd,
    off_in: UserAddr,
    fd_out: Fd,
    off_out: UserAddr,
    len: u64,
    flags: u32,
) -> SysResult {
    if len == 0 {
        return Ok(0);
    }
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let inf = task.file(fd_in.0)?;
    let outf = task.file(fd_out.0)?;
    let (ipipe, opipe) = (pipe_of(&inf).is_some(), pipe_of(&outf).is_some());
    if (ipipe && !off_in.is_null()) || (opipe && !off_out.is_null()) {
        return Err(Errno::ESPIPE);
    }
    let o_out = read_off(task, off_out)?;
    let o_in = read_off(task, off_in)?;
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    let len = len.min(MAX_RW_COUNT) as usize;
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let r = match (pipe_of(&inf), pipe_of(&outf)) {
        (Some(ip), Some(op)) => {
            if ip.same_pipe(op) {
                return Err(Errno::EINVAL);
            }
            let nb = nonblock || (inf.flags() | outf.flags()) & O_NONBLOCK != 0;
            pipe_to_pipe(task, &inf, ip, &outf, op, len, nb, true)
        }
        (Some(ip), None) => {
            if o_out.is_some() && !outf.ops.seekable() {
                return Err(Errno::EINVAL);
            }
            if outf.flags() & O_APPEND != 0 {
                return Err(Errno::EINVAL);
            }
            let nb = nonblock || inf.flags() & O_NONBLOCK != 0;
            let r = pipe_to_file(task, &inf, ip, &outf, o_out, len, nb)?;
            if let Some(o) = o_out {
                task.write_obj(off_out, &(o + r as i64))?;
            }
            Ok(r as u64)
        }
        (None, Some(op)) => {
            if o_in.is_some() && !inf.ops.seekable() {
                return Err(Errno::EINVAL);
            }
            let nb = nonblock || outf.flags() & O_NONBLOCK != 0;
            let r = file_to_pipe(task, &inf, o_in, &outf, op, len, nb)?;
            if let Some(o) = o_in {
                task.write_obj(off_in, &(o + r as i64))?;
            }
            Ok(r as u64)
        }
        (None, None) => Err(Errno::EINVAL),
    };
    epipe(task, r)
}

/// Move (or, for tee, copy) what `ip` holds and `op` has room for, up
/// to `len`, after waiting for both as Linux's splice_pipe_to_pipe does.
#[allow(clippy::too_many_arguments)]
fn pipe_to_pipe(
    task: &Task,
    inf: &OpenFile,
    ip: &PipeEnd,
    outf: &OpenFile,
    op: &PipeEnd,
    len: usize,
    nonblock: bool,
    take: bool,
) -> SysResult {
    let mut buf = crate::scratch::scratch(len.min(vfs::pipe::PIPE_CAPACITY));
    let n = ip.peek(&ctx_for(task, inf, nonblock), &mut buf)?;
    if n == 0 {
        return Ok(0);
    }
    let room = op.wait_room(&ctx_for(task, outf, nonblock))?;
    let n = n.min(room);
    // The room is there: a non-blocking write cannot leave bytes behind
    // unless another writer raced for it.
    let w = op.write(&ctx_for(task, outf, true), &buf[..n], 0)?;
    if take {
        ip.consume(w);
    }
    Ok(w as u64)
}

/// splice from a pipe into a file, socket or tty: what the pipe holds
/// (waiting for the first bytes), written at `off` or the file position.
fn pipe_to_file(
    task: &Task,
    inf: &OpenFile,
    ip: &PipeEnd,
    outf: &OpenFile,
    off: Option<i64>,
    len: usize,
    nonblock: bool,
) -> Result<usize, Errno> {
    let seekable = outf.ops.seekable();
    let explicit = match off {
        Some(o) => Some(u64::try_from(o).map_err(|_| Errno::EINVAL)?),
        None => None,
    };
    if seekable {
        verify_area(explicit.unwrap_or_else(|| outf.pos_now()), len as u64)?;
    }
    // Wait for the pipe before taking the file position: no lock is held
    // across the wait.
    let mut buf = crate::scratch::scratch(len.min(vfs::pipe::PIPE_CAPACITY));
    let n = ip.peek(&ctx_for(task, inf, nonblock), &mut buf)?;
    if n == 0 {
        return Ok(0);
    }
    let mut pos = crate::rw::lock_pos_for_io(outf, seekable, explicit);
    let at = explicit.unwrap_or_else(|| pos.as_ref().map_or(0, |p| p.offset));
    let n = if seekable { fsize_allow(task, outf, at, n)? } else { n };
    let w = outf.ops.write(&task.io_ctx(outf), &buf[..n], at)?;
    if seekable {
        task.kernel.shared_files.after_write(outf, at, &buf[..w]);
    }
    ip.consume(w);
    if let Some(p) = pos.as_mut() {
        p.offset = at.saturating_add(w as u64);
    }
    Ok(w)
}

/// splice from a file, socket or tty into a pipe: at most what the pipe
/// has room for, read at `off` or the file position.
fn file_to_pipe(
    task: &Task,
    inf: &OpenFile,
    off: Option<i64>,
    outf: &OpenFile,
    op: &PipeEnd,
    len: usize,
    nonblock: bool,
) -> Result<usize, Errno> {
    let seekable = inf.ops.seekable();
    if seekable {
        let at = match off {
            Some(o) => u64::try_from(o).map_err(|_| Errno::EINVAL)?,
            None => inf.pos_now(),
        };
        verify_area(at, len as u64)?;
        if file_stat(inf).is_ok_and(|st| st.st_mode & S_IFMT == S_IFDIR) {
            return Err(Errno::EISDIR);
        }
    }
    let room = op.wait_room(&ctx_for(task, outf, nonblock))?;
    let want = len.min(room).min(IO_CHUNK);
    let mut buf = crate::scratch::scratch(want);
    let mut pos = crate::rw::lock_pos_for_io(inf, seekable, off.map(|o| o as u64));
    let at = match off {
        Some(o) => o as u64,
        None => pos.as_ref().map_or(0, |p| p.offset),
    };
    if seekable {
        task.kernel.shared_files.before_read(inf, at, want as u64);
    }
    // SPLICE_F_NONBLOCK reaches a socket or tty on the input side too.
    let n = inf.ops.read(&ctx_for(task, inf, nonblock && !seekable), &mut buf[..want], at)?;
    if n == 0 {
        return Ok(0);
    }
    // The room was checked: this write does not wait.
    let w = op.write(&ctx_for(task, outf, true), &buf[..n], 0)?;
    if let Some(p) = pos.as_mut() {
        p.offset = at.saturating_add(w as u64);
    }
    Ok(w)
}

/// tee(2): copy between two pipes without consuming the input.
pub fn tee(task: &mut Task, fd_in: Fd, fd_out: Fd, len: u64, flags: u32) -> SysResult {
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let inf = task.file(fd_in.0)?;
    let outf = task.file(fd_out.0)?;
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    let (Some(ip), Some(op)) = (pipe_of(&inf), pipe_of(&outf)) else {
        return Err(Errno::EINVAL);
    };
    if ip.same_pipe(op) {
        return Err(Errno::EINVAL);
    }
    let nb = flags & SPLICE_F_NONBLOCK != 0 || (inf.flags() | outf.flags()) & O_NONBLOCK != 0;
    let len = len.min(MAX_RW_COUNT) as usize;
    let r = pipe_to_pipe(task, &inf, ip, &outf, op, len, nb, false);
    epipe(task, r)
}

/// vmsplice(2): guest memory into a pipe open for writing, or a pipe
/// open only for reading into guest memory. SPLICE_F_GIFT gives nothing
/// here: the bytes are copied.
pub fn vmsplice(task: &mut Task, fd: Fd, iov: UserAddr, nr_segs: u64, flags: u32) -> SysResult {
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let f = task.file(fd.0)?;
    let to_pipe = if f.writable() {
        true
    } else if f.readable() {
        false
    } else {
        return Err(Errno::EBADF);
    };
    let nr = i32::try_from(nr_segs).map_err(|_| Errno::EINVAL)?;
    let iovs = read_iovecs(task, iov, nr)?;
    for e in &iovs {
        access_ok(UserAddr(e.base), e.len)?;
    }
    let total: u64 = iovs.iter().map(|e| e.len).sum();
    if total == 0 {
        return Ok(0);
    }
    let p = pipe_of(&f).ok_or(Errno::EBADF)?;
    let nb = flags & SPLICE_F_NONBLOCK != 0 || f.flags() & O_NONBLOCK != 0;
    let r =
        if to_pipe { user_to_pipe(task, &f, p, &iovs, total, nb) } else { pipe_to_user(task, &f, p, &iovs, total, nb) };
    epipe(task, r)
}

/// As much of the guest's vectors as the pipe has room for, after waiting
/// for room once (Linux's vmsplice_to_pipe).
fn user_to_pipe(task: &Task, f: &OpenFile, p: &PipeEnd, iovs: &[Iovec], total: u64, nonblock: bool) -> SysResult {
    let room = p.wait_room(&ctx_for(task, f, nonblock))?;
    let want = (total as usize).min(room);
    let mut buf = Vec::with_capacity(want);
    for e in iovs {
        if buf.len() == want {
            break;
        }
        let start = buf.len();
        let n = (e.len as usize).min(want - start);
        buf.resize(start + n, 0);
        if let Err(err) = task.copy_in(UserAddr(e.base), &mut buf[start..]) {
            buf.truncate(start);
            if start == 0 {
                return Err(err);
            }
            break;
        }
    }
    let w = p.write(&ctx_for(task, f, true), &buf, 0)?;
    Ok(w as u64)
}

/// What the pipe holds into the guest's vectors, waiting for the first
/// bytes as read(2) does.
fn pipe_to_user(task: &Task, f: &OpenFile, p: &PipeEnd, iovs: &[Iovec], total: u64, nonblock: bool) -> SysResult {
    let mut buf = crate::scratch::scratch((total as usize).min(vfs::pipe::PIPE_CAPACITY));
    let n = p.peek(&ctx_for(task, f, nonblock), &mut buf)?;
    let mut done = 0usize;
    for e in iovs {
        if done == n {
            break;
        }
        let k = (e.len as usize).min(n - done);
        if let Err(err) = task.copy_out(UserAddr(e.base), &buf[done..done + k]) {
            if done == 0 {
                return Err(err);
            }
            break;
        }
        done += k;
    }
    p.consume(done);
    Ok(done as u64)
}
