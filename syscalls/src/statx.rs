//! statx(2): the extensible stat that coreutils and Rust's std try first.
//! Every answer comes from the same `Stat` fstat/newfstatat return, plus
//! the mount id where the file has a place in the tree; what no
//! filesystem here records (birth time, attributes, direct-I/O alignment)
//! is left out of the returned mask, as Linux does on filesystems without
//! them.

use crate::stat::file_stat;
use abi::flags::*;
use abi::{Errno, Stat};
use sentry::table::{DirFd, Flags, PathAddr, UserAddr};
use sentry::{SysResult, Task};
use vfs::Follow;

const STATX_TYPE: u32 = 0x1;
const STATX_MODE: u32 = 0x2;
const STATX_NLINK: u32 = 0x4;
const STATX_UID: u32 = 0x8;
const STATX_GID: u32 = 0x10;
const STATX_ATIME: u32 = 0x20;
const STATX_MTIME: u32 = 0x40;
const STATX_CTIME: u32 = 0x80;
const STATX_INO: u32 = 0x100;
const STATX_SIZE: u32 = 0x200;
const STATX_BLOCKS: u32 = 0x400;
/// What every filesystem of the sandbox answers.
const STATX_BASIC_STATS: u32 = STATX_TYPE
    | STATX_MODE
    | STATX_NLINK
    | STATX_UID
    | STATX_GID
    | STATX_ATIME
    | STATX_MTIME
    | STATX_CTIME
    | STATX_INO
    | STATX_SIZE
    | STATX_BLOCKS;
/// stx_mnt_id: the mount's id, as /proc/[pid]/mountinfo and fdinfo show.
const STATX_MNT_ID: u32 = 0x1000;
/// Reserved for a future struct statx extension: EINVAL.
const STATX_RESERVED: u32 = 0x8000_0000;

const AT_STATX_SYNC_TYPE: u32 = 0x6000;

/// sizeof(struct statx).
const STATX_SIZE_BYTES: usize = 256;

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    if let Some(s) = b.get_mut(at..at + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// A struct statx_timestamp (tv_sec, tv_nsec, reserved).
fn put_time(b: &mut [u8], at: usize, sec: i64, nsec: i64) {
    put_u64(b, at, sec as u64);
    put_u32(b, at + 8, nsec.clamp(0, 999_999_999) as u32);
}

/// Linux's new_encode_dev halves: (major, minor) of a dev_t.
fn dev_parts(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The struct statx bytes for `st` (of a file on mount `mnt_id`, if known).
pub(crate) fn encode(st: &Stat, mnt_id: Option<u64>) -> [u8; STATX_SIZE_BYTES] {
    let mut b = [0u8; STATX_SIZE_BYTES];
    let mask = if mnt_id.is_some() { STATX_BASIC_STATS | STATX_MNT_ID } else { STATX_BASIC_STATS };
    put_u32(&mut b, 0, mask);
    put_u32(&mut b, 4, st.st_blksize as u32);
    // stx_attributes (8) and stx_attributes_mask (56) stay 0: no
    // filesystem here reports immutable/append-only/compressed files.
    put_u32(&mut b, 16, st.st_nlink as u32);
    put_u32(&mut b, 20, st.st_uid);
    put_u32(&mut b, 24, st.st_gid);
    put_u16(&mut b, 28, st.st_mode as u16);
    put_u64(&mut b, 32, st.st_ino);
    put_u64(&mut b, 40, st.st_size as u64);
    put_u64(&mut b, 48, st.st_blocks as u64);
    put_time(&mut b, 64, st.st_atime, st.st_atime_nsec);
    // stx_btime (80) unknown: STATX_BTIME stays out of the mask.
    put_time(&mut b, 96, st.st_ctime, st.st_ctime_nsec);
    put_time(&mut b, 112, st.st_mtime, st.st_mtime_nsec);
    let (rmaj, rmin) = dev_parts(st.st_rdev);
    put_u32(&mut b, 128, rmaj);
    put_u32(&mut b, 132, rmin);
    let (dmaj, dmin) = dev_parts(st.st_dev);
    put_u32(&mut b, 136, dmaj);
    put_u32(&mut b, 140, dmin);
    if let Some(id) = mnt_id {
        put_u64(&mut b, 144, id);
    }
    b
}

/// Linux's do_statx checks, in its order.
fn check_args(flags: u32, mask: u32) -> Result<(), Errno> {
    if mask & STATX_RESERVED != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return Err(Errno::EINVAL);
    }
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// statx(dirfd, path, flags, mask, buf). The sync flags ask nothing of
/// filesystems that are never remote; the requested mask only limits what
/// the caller needs, so everything known is returned, as Linux does.
pub fn statx(task: &mut Task, dirfd: DirFd, path: PathAddr, flags: Flags, mask: u32, buf: UserAddr) -> SysResult {
    let flags = flags.0 as u32;
    check_args(flags, mask)?;
    // Linux 6.11+ takes a NULL path with AT_EMPTY_PATH as the empty one.
    let p = if path.0 == 0 && flags & AT_EMPTY_PATH != 0 { Vec::new() } else { task.read_path(UserAddr(path.0))? };
    if p.is_empty() && flags & AT_EMPTY_PATH == 0 {
        // Linux refuses the empty name before it looks at dirfd.
        return Err(Errno::ENOENT);
    }
    let (st, mnt_id) = if p.is_empty() {
        if dirfd.0 == AT_FDCWD {
            let cwd = task.fs().cwd;
            (cwd.inode.stat()?, Some(cwd.mount.id))
        } else {
            let f = task.file(dirfd.0)?;
            (file_stat(&f)?, f.dentry.as_ref().map(|d| d.mount.id))
        }
    } else {
        let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
        let d = task.resolve_at(dirfd.0, &p, follow)?;
        (d.inode.stat()?, Some(d.mount.id))
    };
    task.copy_out(buf, &encode(&st, mnt_id))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_parts_split_as_linux() {
        // makedev(8, 1) and makedev(259, 65536).
        assert_eq!(dev_parts(0x801), (8, 1));
        let dev = libc::makedev(259, 65_536);
        assert_eq!(dev_parts(dev), (259, 65536));
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(check_args(0, STATX_RESERVED), Err(Errno::EINVAL));
        assert_eq!(check_args(AT_STATX_SYNC_TYPE, 0), Err(Errno::EINVAL));
        assert_eq!(check_args(0x1, 0), Err(Errno::EINVAL));
        assert_eq!(check_args(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | 0x2000, 0xfff), Ok(()));
    }

    #[test]
    fn layout() {
        let st = Stat { st_mode: S_IFREG | 0o644, st_size: 7, st_nlink: 1, st_blksize: 4096, ..Default::default() };
        let b = encode(&st, Some(7));
        assert_eq!(b[144], 7);
        assert_eq!(u16::from_le_bytes([b[28], b[29]]), (S_IFREG | 0o644) as u16);
        assert_eq!(b[40], 7);
        assert_eq!(u32::from_le_bytes([b[0], b[1], b[2], b[3]]), STATX_BASIC_STATS | STATX_MNT_ID);
    }
}
