//! File locks and the other per-file fcntl(2) commands of the same family:
//! flock(2), POSIX and OFD record locks (F_GETLK, F_SETLK, F_SETLKW,
//! F_OFD_*), leases (F_SETLEASE, F_GETLEASE), F_NOTIFY, and pipe sizes
//! (F_GETPIPE_SZ, F_SETPIPE_SZ). The lock table is `vfs::locks`.

use abi::flags::*;
use abi::Errno;
use sentry::table::{Fd, UserAddr};
use sentry::{SysResult, Task};
use std::collections::HashSet;
use std::sync::Arc;
use vfs::locks::{self, Kind, Owner, OFFSET_MAX};
use vfs::OpenFile;

const LOCK_SH: i32 = 1;
const LOCK_EX: i32 = 2;
const LOCK_NB: i32 = 4;
const LOCK_UN: i32 = 8;
const LOCK_MAND: i32 = 32;

pub fn flock(task: &mut Task, fd: Fd, op: i32) -> SysResult {
    // Linux ignores LOCK_MAND requests (they never worked), before
    // looking at anything else.
    if op & LOCK_MAND != 0 {
        return Ok(0);
    }
    let kind = match op & !LOCK_NB {
        LOCK_SH => Kind::Read,
        LOCK_EX => Kind::Write,
        LOCK_UN => Kind::Unlock,
        _ => return Err(Errno::EINVAL),
    };
    let f = task.file(fd.0)?;
    if f.flags() & O_PATH != 0 || (kind != Kind::Unlock && !f.readable() && !f.writable()) {
        return Err(Errno::EBADF);
    }
    let ctx = task.io_ctx(&f);
    locks::flock(&f, &ctx, task.tg.tgid, kind, op & LOCK_NB == 0)?;
    Ok(0)
}

/// struct flock (x86-64: the same as struct flock64).
#[derive(Clone, Copy)]
struct Flock {
    ty: i16,
    whence: i16,
    start: i64,
    len: i64,
    pid: i32,
}

impl Flock {
    fn read(task: &Task, addr: UserAddr) -> Result<([u8; 32], Flock), Errno> {
        let mut b = [0u8; 32];
        task.copy_in(addr, &mut b)?;
        let i64_at = |o: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[o..o + 8]);
            i64::from_ne_bytes(x)
        };
        let fl = Flock {
            ty: i16::from_ne_bytes([b[0], b[1]]),
            whence: i16::from_ne_bytes([b[2], b[3]]),
            start: i64_at(8),
            len: i64_at(16),
            pid: i32::from_ne_bytes([b[24], b[25], b[26], b[27]]),
        };
        Ok((b, fl))
    }
}

/// The bytes `start..=end` a struct flock names (Linux's
/// flock64_to_posix_lock, with its errnos).
fn byte_range(f: &OpenFile, l: &Flock) -> Result<(u64, u64), Errno> {
    // SEEK_SET, SEEK_CUR, SEEK_END.
    let base: i64 = match l.whence {
        0 => 0,
        1 => f.pos_now().min(OFFSET_MAX) as i64,
        2 => match &f.dentry {
            Some(d) => d.inode.stat()?.st_size.max(0),
            None => f.ops.size()?.min(OFFSET_MAX) as i64,
        },
        _ => return Err(Errno::EINVAL),
    };
    if l.start > i64::MAX - base {
        return Err(Errno::EOVERFLOW);
    }
    let start = base + l.start;
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let (s, e) = if l.len > 0 {
        if l.len - 1 > i64::MAX - start {
            return Err(Errno::EOVERFLOW);
        }
        (start, start + (l.len - 1))
    } else if l.len < 0 {
        let s = start.checked_add(l.len).ok_or(Errno::EINVAL)?;
        if s < 0 {
            return Err(Errno::EINVAL);
        }
        (s, start - 1)
    } else {
        (start, i64::MAX)
    };
    Ok((s as u64, e as u64))
}

/// F_GETLK, F_SETLK, F_SETLKW and their F_OFD_ forms.
pub fn record_lock(task: &mut Task, f: &Arc<OpenFile>, cmd: u32, arg: u64) -> SysResult {
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let addr = UserAddr(arg);
    let (mut raw, l) = Flock::read(task, addr)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    let owner = if ofd { Owner::File(f.id) } else { Owner::Process(task.fds().id) };
    if cmd == F_GETLK || cmd == F_OFD_GETLK {
        // F_UNLCK asks F_OFD_GETLK for the description's own locks
        // (Linux 6.6+); F_GETLK refuses it.
        let kind = match l.ty {
            0 => Kind::Read,
            1 => Kind::Write,
            2 if ofd => Kind::Unlock,
            _ => return Err(Errno::EINVAL),
        };
        let (s, e) = byte_range(f, &l)?;
        if ofd && l.pid != 0 {
            return Err(Errno::EINVAL);
        }
        let found =
            if kind == Kind::Unlock { locks::test_own(f, s, e)? } else { locks::test_range(f, owner, kind, s, e)? };
        match found {
            None => raw[0..2].copy_from_slice(&Kind::Unlock.as_type().to_ne_bytes()),
            Some(c) => {
                let ty = if c.write { Kind::Write } else { Kind::Read };
                raw[0..2].copy_from_slice(&ty.as_type().to_ne_bytes());
                raw[2..4].copy_from_slice(&(SEEK_SET as i16).to_ne_bytes());
                raw[8..16].copy_from_slice(&(c.start as i64).to_ne_bytes());
                let len: i64 = if c.end >= OFFSET_MAX { 0 } else { (c.end - c.start + 1) as i64 };
                raw[16..24].copy_from_slice(&len.to_ne_bytes());
                raw[24..28].copy_from_slice(&c.pid.to_ne_bytes());
            }
        }
        task.copy_out(addr, &raw)?;
        return Ok(0);
    }
    let (s, e) = byte_range(f, &l)?;
    let kind = Kind::from_type(l.ty as i64)?;
    match kind {
        Kind::Read if !f.readable() => return Err(Errno::EBADF),
        Kind::Write if !f.writable() => return Err(Errno::EBADF),
        _ => {}
    }
    if ofd && l.pid != 0 {
        return Err(Errno::EINVAL);
    }
    let block = cmd == F_SETLKW || cmd == F_OFD_SETLKW;
    if !ofd && kind != Kind::Unlock {
        task.fds().note_posix_lock();
    }
    let ctx = task.io_ctx(f);
    let req = locks::RangeRequest { owner, pid: task.tg.tgid, kind, start: s, end: e };
    locks::set_range(f, &ctx, req, block)?;
    Ok(0)
}

/// How many other open file descriptions of `f`'s file the sandbox has:
/// (read-only ones, writable ones).
fn other_opens(task: &Task, f: &Arc<OpenFile>) -> Result<(usize, usize), Errno> {
    let key = locks::key_of(f)?;
    let mut seen: HashSet<u64> = HashSet::new();
    let (mut readers, mut writers) = (0, 0);
    for tg in task.kernel.groups() {
        for (_, o) in tg.fds().list() {
            if o.id == f.id || o.dentry.is_none() || !seen.insert(o.id) {
                continue;
            }
            if locks::key_of(&o).ok() != Some(key) {
                continue;
            }
            if o.writable() {
                writers += 1;
            } else if o.readable() {
                readers += 1;
            }
        }
    }
    Ok((readers, writers))
}

/// F_SETLEASE: read leases (no writer may have the file open) and write
/// leases (nobody else may have it open); `vfs::leases` breaks them.
pub fn set_lease(task: &mut Task, f: &Arc<OpenFile>, arg: u64) -> SysResult {
    let creds = task.creds();
    let d = f.dentry.as_ref().ok_or(Errno::EINVAL)?;
    let st = d.inode.stat()?;
    if st.st_uid != creds.fsuid && creds.euid != 0 {
        return Err(Errno::EACCES);
    }
    if st.st_mode & S_IFMT != S_IFREG {
        return Err(Errno::EINVAL);
    }
    let kind = Kind::from_type(arg as i32 as i64)?;
    match kind {
        Kind::Unlock => {}
        Kind::Read => {
            let (_, writers) = other_opens(task, f)?;
            if writers > 0 || f.writable() {
                return Err(Errno::EAGAIN);
            }
        }
        Kind::Write => {
            let (readers, writers) = other_opens(task, f)?;
            if readers > 0 || writers > 0 {
                return Err(Errno::EAGAIN);
            }
        }
    }
    vfs::leases::set(f, kind, task.tg.tgid)?;
    Ok(0)
}

pub fn get_lease(f: &Arc<OpenFile>) -> SysResult {
    Ok(vfs::leases::get(f).as_type() as u64)
}

/// Before an open of the file `st` describes with open(2) `flags`: break
/// the leases it conflicts with (SIGIO to each holder, as Linux sends it
/// to a lease holder that set no F_SETSIG signal) and wait for them.
pub fn break_leases(task: &Task, node: &dyn vfs::Inode, st: &abi::Stat, flags: u32) -> Result<(), Errno> {
    let want_write = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0;
    let ctx = vfs::IoCtx { flags: flags & O_NONBLOCK, interrupt: &task.interrupt };
    vfs::leases::break_for_open(locks::node_key(node, st), want_write, &ctx, |pid| {
        if let Some(tg) = task.kernel.group(pid) {
            let info = abi::SigInfo { signo: abi::signal::SIGIO, code: abi::signal::SI_KERNEL, ..Default::default() };
            sentry::signal::send_signal(&tg, info);
        }
    })
}

/// F_NOTIFY (vfs::dnotify): a mark on the directory, and the caller's
/// process the file's owner, as Linux's fcntl_dirnotify does.
pub fn notify(task: &Task, f: &Arc<OpenFile>, fd: i32, arg: u64) -> SysResult {
    let key = match &f.dentry {
        Some(d) => {
            let st = d.inode.stat()?;
            (st.st_mode & S_IFMT == S_IFDIR).then_some((st.st_dev, st.st_ino))
        }
        None => None,
    };
    if vfs::dnotify::set(key, f, task.fds().id, fd, arg)? {
        f.owner.set(vfs::fown::F_OWNER_PID, task.tg.tgid);
    }
    Ok(0)
}

/// Linux's /proc/sys/fs/pipe-max-size default.
const PIPE_MAX_SIZE: u64 = 1 << 20;

/// F_GETPIPE_SZ and F_SETPIPE_SZ (EBADF on anything but a pipe, as Linux).
pub fn pipe_size(f: &Arc<OpenFile>, cmd: u32, arg: u64) -> SysResult {
    let end = f.ops.as_any().downcast_ref::<vfs::pipe::PipeEnd>().ok_or(Errno::EBADF)?;
    if cmd == F_GETPIPE_SZ {
        return Ok(end.pipe().capacity() as u64);
    }
    // The argument is an unsigned int; Linux's round_pipe_size.
    let want = arg & 0xffff_ffff;
    if want > 1 << 31 {
        return Err(Errno::EINVAL);
    }
    let size = want.max(abi::PAGE_SIZE).next_power_of_two();
    // Over pipe-max-size needs CAP_SYS_RESOURCE in the initial user
    // namespace, which no guest has (the sandbox's root is root of a
    // namespace of its own, like a container's): EPERM for everyone.
    let cur = end.pipe().capacity() as u64;
    if size > cur && size > PIPE_MAX_SIZE {
        return Err(Errno::EPERM);
    }
    end.pipe().set_capacity(size as usize)?;
    Ok(size)
}
