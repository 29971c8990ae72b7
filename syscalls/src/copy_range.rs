//! copy_file_range(2) between regular files, with the checks of Linux
//! 6.x's vfs_copy_file_range: the copy is a read and a write per chunk in
//! the Sentry (there is no block layer to clone extents on). Files on two
//! different filesystems are EXDEV, as Linux 5.19+ answers between
//! superblocks of filesystems without a cross-filesystem copy: cp and
//! friends then fall back to read/write.

use crate::rw::{fsize_allow, lock_pos_for_io, IO_CHUNK, MAX_RW_COUNT};
use crate::stat::file_stat;
use abi::flags::*;
use abi::Errno;
use sentry::table::{Fd, UserAddr};
use sentry::{SysResult, Task};
use vfs::OpenFile;

fn read_off(task: &Task, p: UserAddr) -> Result<Option<i64>, Errno> {
    if p.is_null() {
        return Ok(None);
    }
    Ok(Some(task.read_obj::<i64>(p)?))
}

pub fn copy_file_range(
    task: &mut Task,
    fd_in: Fd,
    off_in: UserAddr,
    fd_out: Fd,
    off_out: UserAddr,
    len: u64,
    flags: u32,
) -> SysResult {
    let inf = task.file(fd_in.0)?;
    let outf = task.file(fd_out.0)?;
    let o_in = read_off(task, off_in)?;
    let o_out = read_off(task, off_out)?;
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    // generic_file_rw_checks.
    let (st_in, st_out) = (file_stat(&inf)?, file_stat(&outf)?);
    if st_in.st_mode & S_IFMT == S_IFDIR || st_out.st_mode & S_IFMT == S_IFDIR {
        return Err(Errno::EISDIR);
    }
    if st_in.st_mode & S_IFMT != S_IFREG || st_out.st_mode & S_IFMT != S_IFREG {
        return Err(Errno::EINVAL);
    }
    if !inf.readable() || !outf.writable() || outf.flags() & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let same_file = st_in.st_dev == st_out.st_dev && st_in.st_ino == st_out.st_ino;
    let start_in = o_in.unwrap_or(inf.pos_now() as i64);
    let start_out = o_out.unwrap_or(outf.pos_now() as i64);
    // generic_copy_file_checks: the offsets, taken unsigned, must not wrap.
    if (start_in as u64).checked_add(len).is_none() || (start_out as u64).checked_add(len).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    // Shorten to the input's end of file (signed, as loff_t compares).
    let (sin, sout, size_in) = (i128::from(start_in), i128::from(start_out), i128::from(st_in.st_size));
    let count = if sin >= size_in { 0 } else { i128::from(len).min(size_in - sin) };
    if same_file && sout + count > sin && sout < sin + count {
        return Err(Errno::EINVAL);
    }
    if count == 0 {
        return Ok(0);
    }
    // rw_verify_area on both sides.
    if start_in < 0 || start_out < 0 || sout + count > i128::from(i64::MAX) {
        return Err(Errno::EINVAL);
    }
    let (count, start_out) = (count as u64, start_out as u64);
    let mut pos_in = o_in.map(|o| o as u64);
    let mut pos_out = o_out.map(|o| o as u64);
    if st_in.st_dev != st_out.st_dev {
        return Err(Errno::EXDEV);
    }
    let count = fsize_allow(task, &outf, start_out, count.min(MAX_RW_COUNT) as usize)?;
    let done = copy(task, &inf, &mut pos_in, &outf, &mut pos_out, count)?;
    if let Some(p) = pos_in {
        task.write_obj(off_in, &(p as i64))?;
    }
    if let Some(p) = pos_out {
        task.write_obj(off_out, &(p as i64))?;
    }
    Ok(done as u64)
}

/// Copy `count` bytes chunk by chunk; an explicit offset advances in
/// place, else the file position does. Stops at a short read or write;
/// an error after some bytes ends the copy with the count so far.
fn copy(
    task: &Task,
    inf: &OpenFile,
    pos_in: &mut Option<u64>,
    outf: &OpenFile,
    pos_out: &mut Option<u64>,
    count: usize,
) -> Result<usize, Errno> {
    let mut buf = crate::scratch::scratch(count.min(IO_CHUNK));
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(buf.len());
        let n = {
            let mut guard = lock_pos_for_io(inf, true, *pos_in);
            let at = pos_in.unwrap_or_else(|| guard.as_ref().map_or(0, |g| g.offset));
            task.kernel.shared_files.before_read(inf, at, want as u64);
            match inf.ops.read(&task.io_ctx(inf), &mut buf[..want], at) {
                Ok(n) => {
                    match (pos_in.as_mut(), guard.as_mut()) {
                        (Some(p), _) => *p = at + n as u64,
                        (None, Some(g)) => g.offset = at + n as u64,
                        _ => {}
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
        let mut guard = lock_pos_for_io(outf, true, *pos_out);
        let at = pos_out.unwrap_or_else(|| guard.as_ref().map_or(0, |g| g.offset));
        let w = match outf.ops.write(&task.io_ctx(outf), &buf[..n], at) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        task.kernel.shared_files.after_write(outf, at, &buf[..w]);
        match (pos_out.as_mut(), guard.as_mut()) {
            (Some(p), _) => *p = at + w as u64,
            (None, Some(g)) => g.offset = at + w as u64,
            _ => {}
        }
        drop(guard);
        done += w;
        if w < n || n < want {
            // Bytes read but not written go back to the input's position.
            if w < n {
                if let Some(p) = pos_in.as_mut() {
                    *p -= (n - w) as u64;
                } else {
                    let mut g = inf.lock_pos();
                    g.offset = g.offset.saturating_sub((n - w) as u64);
                }
            }
            break;
        }
    }
    Ok(done)
}
