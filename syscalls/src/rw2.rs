//! preadv2/pwritev2: the vectored positional calls with per-call RWF_*
//! flags. The flags map onto what a call of `rw` already knows: RWF_NOWAIT
//! is O_NONBLOCK for this call (a regular file never waits here anyway),
//! RWF_APPEND is O_APPEND for this call; RWF_DSYNC/RWF_SYNC sync the file
//! after the write; RWF_HIPRI asks nothing of files without a block queue.

use crate::fs::{readable, writable};
use crate::rw::{
    check_offset, do_read_as, do_readv, do_write_as, do_writev, each_iovec, raise_sigpipe_on, read_iovecs,
};
use abi::flags::*;
use abi::Errno;
use sentry::table::{Fd, UserAddr};
use sentry::{SysResult, Task};
use vfs::OpenFile;

const RWF_HIPRI: u32 = 0x1;
const RWF_DSYNC: u32 = 0x2;
const RWF_SYNC: u32 = 0x4;
const RWF_NOWAIT: u32 = 0x8;
const RWF_APPEND: u32 = 0x10;
const RWF_NOAPPEND: u32 = 0x20;
/// Linux 6.15+: a write that fails with EPIPE raises no SIGPIPE.
const RWF_NOSIGNAL: u32 = 0x100;
/// The flags served; RWF_ATOMIC and RWF_DONTCACHE need block-device and
/// page-cache support no filesystem here has: EOPNOTSUPP, as Linux answers
/// on such filesystems; unknown bits are EOPNOTSUPP too.
const RWF_SERVED: u32 = RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND | RWF_NOAPPEND | RWF_NOSIGNAL;

/// The position argument: -1 is "the file position", other negatives EINVAL.
fn position(f: &OpenFile, pos: i64) -> Result<Option<u64>, Errno> {
    match pos {
        -1 => Ok(None),
        p if p < 0 => Err(Errno::EINVAL),
        p => check_offset(f, p).map(Some),
    }
}

fn check_flags(flags: u32) -> Result<(), Errno> {
    if flags & !RWF_SERVED != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

pub fn preadv2(task: &mut Task, fd: Fd, iov: UserAddr, cnt: i32, pos: i64, _pos_h: u64, flags: u32) -> SysResult {
    if pos < -1 {
        return Err(Errno::EINVAL);
    }
    let f = readable(task, fd)?;
    let off = position(&f, pos)?;
    if flags == 0 {
        return do_readv(task, &f, iov, cnt, off);
    }
    let iovs = read_iovecs(task, iov, cnt)?;
    // Linux looks at the flags only when there is something to move.
    if iovs.iter().all(|e| e.len == 0) {
        return Ok(0);
    }
    check_flags(flags)?;
    let extra = if flags & RWF_NOWAIT != 0 { O_NONBLOCK } else { 0 };
    each_iovec(&iovs, off, |e, at| do_read_as(task, &f, UserAddr(e.base), e.len, at, extra))
}

pub fn pwritev2(task: &mut Task, fd: Fd, iov: UserAddr, cnt: i32, pos: i64, _pos_h: u64, flags: u32) -> SysResult {
    if pos < -1 {
        return Err(Errno::EINVAL);
    }
    let f = writable(task, fd)?;
    let mut off = position(&f, pos)?;
    let r = if flags == 0 {
        do_writev(task, &f, iov, cnt, off)
    } else {
        let iovs = read_iovecs(task, iov, cnt)?;
        if iovs.iter().all(|e| e.len == 0) {
            return Ok(0);
        }
        check_flags(flags)?;
        let mut extra = if flags & RWF_NOWAIT != 0 { O_NONBLOCK } else { 0 };
        if flags & RWF_APPEND != 0 {
            extra |= O_APPEND;
            // An explicit position does not stop RWF_APPEND (Linux writes
            // at the end and leaves the file position alone).
            if off.is_some() && f.ops.seekable() {
                off = Some(f.ops.size()?);
            }
        }
        let r = each_iovec(&iovs, off, |e, at| do_write_as(task, &f, UserAddr(e.base), e.len, at, extra));
        // RWF_DSYNC/RWF_SYNC: the bytes are on stable storage on return
        // (host files of bind mounts; the Sentry's own files have none).
        if r.as_ref().is_ok_and(|&n| n > 0) && flags & (RWF_DSYNC | RWF_SYNC) != 0 {
            f.ops.fsync()?;
        }
        r
    };
    if flags & RWF_NOSIGNAL == 0 {
        raise_sigpipe_on(task, &r);
    }
    r
}
