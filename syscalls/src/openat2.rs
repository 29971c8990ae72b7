//! openat2(2): open with a struct open_how (checked strictly, unlike
//! open's flags) and the RESOLVE_* restrictions on the path walk, which
//! vfs::mount applies as `WalkOpts`. Also the walk helpers open_path uses,
//! so every open goes through one place that knows about scoping.

use crate::fs::{install, open_path_with};
use abi::flags::*;
use abi::Errno;
use sentry::table::{DirFd, PathAddr, UserAddr};
use sentry::{SysResult, Task};
use vfs::{DentryRef, Follow, WalkOpts};

const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_CACHED: u64 = 0x20;
const RESOLVE_ALL: u64 =
    RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_IN_ROOT | RESOLVE_CACHED;

/// OPEN_HOW_SIZE_VER0: flags, mode, resolve.
const OPEN_HOW_SIZE_VER0: u64 = 24;
/// Linux's VALID_OPEN_FLAGS on x86-64 (bits 2..5 are no flag).
const VALID_OPEN_FLAGS: u64 = 0o37777703;
const O_TMPFILE_BIT: u32 = 0o20000000;
/// S_IALLUGO.
const MODE_BITS: u64 = 0o7777;

/// The start and root of a walk of `path` from `dirfd` under `opts`: a
/// scoped walk (BENEATH, IN_ROOT) is rooted at its starting directory.
fn start_and_root(task: &Task, dirfd: i32, path: &[u8], opts: &WalkOpts) -> Result<(DentryRef, DentryRef), Errno> {
    let fs = task.fs();
    if !(opts.beneath || opts.in_root) {
        return Ok((task.dir_for(dirfd, path)?, fs.root));
    }
    let start = if dirfd == AT_FDCWD {
        fs.cwd
    } else {
        let f = task.file(dirfd)?;
        let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
        if !d.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        d
    };
    Ok((start.clone(), start))
}

/// Resolve `path` from `dirfd` as open does, under `opts`.
pub(crate) fn walk(task: &Task, dirfd: i32, path: &[u8], follow: Follow, opts: &WalkOpts) -> Result<DentryRef, Errno> {
    if *opts == WalkOpts::default() {
        return task.resolve_at(dirfd, path, follow);
    }
    let (start, root) = start_and_root(task, dirfd, path, opts)?;
    task.kernel.mounts.resolve_with(&root, &start, path, follow, &task.creds(), opts)
}

/// The parent directory and last name of `path`, under `opts`.
pub(crate) fn walk_parent(
    task: &Task,
    dirfd: i32,
    path: &[u8],
    opts: &WalkOpts,
) -> Result<(DentryRef, Option<Vec<u8>>), Errno> {
    if *opts == WalkOpts::default() {
        return task.resolve_parent_at(dirfd, path);
    }
    let (start, root) = start_and_root(task, dirfd, path, opts)?;
    task.kernel.mounts.resolve_parent_with(&root, &start, path, &task.creds(), opts)
}

/// struct open_how.
#[derive(Debug, PartialEq, Eq)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// copy_struct_from_user: at least VER0, at most a page; bytes past what
/// we know must be zero (E2BIG otherwise).
fn read_how(task: &Task, how: UserAddr, size: u64) -> Result<OpenHow, Errno> {
    if size < OPEN_HOW_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > abi::PAGE_SIZE {
        return Err(Errno::E2BIG);
    }
    let mut b = vec![0u8; size as usize];
    task.copy_in(how, &mut b)?;
    let (known, tail) = b.split_at(OPEN_HOW_SIZE_VER0 as usize);
    if tail.iter().any(|&x| x != 0) {
        return Err(Errno::E2BIG);
    }
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&known[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    };
    Ok(OpenHow { flags: word(0), mode: word(1), resolve: word(2) })
}

/// build_open_flags' checks, in its order; the walk options.
fn check_how(how: &OpenHow) -> Result<WalkOpts, Errno> {
    if how.flags & !VALID_OPEN_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    if how.resolve & !RESOLVE_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if how.resolve & RESOLVE_BENEATH != 0 && how.resolve & RESOLVE_IN_ROOT != 0 {
        return Err(Errno::EINVAL);
    }
    let flags = how.flags as u32;
    let creates = flags & (O_CREAT | O_TMPFILE_BIT) != 0;
    if (creates && how.mode & !MODE_BITS != 0) || (!creates && how.mode != 0) {
        return Err(Errno::EINVAL);
    }
    if flags & O_DIRECTORY != 0 && flags & O_CREAT != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & O_TMPFILE_BIT != 0 {
        if flags & O_DIRECTORY == 0 || flags & O_CREAT != 0 {
            return Err(Errno::EINVAL);
        }
        let acc = flags & O_ACCMODE;
        if acc != O_WRONLY && acc != O_RDWR {
            return Err(Errno::EINVAL);
        }
    } else if flags & O_PATH != 0 && flags & !(O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC) != 0 {
        // open(2) drops the other flags of an O_PATH open; openat2 refuses.
        return Err(Errno::EINVAL);
    }
    if how.resolve & RESOLVE_CACHED != 0 && flags & (O_TRUNC | O_CREAT | O_TMPFILE_BIT) != 0 {
        return Err(Errno::EAGAIN);
    }
    Ok(WalkOpts {
        no_xdev: how.resolve & RESOLVE_NO_XDEV != 0,
        no_magiclinks: how.resolve & RESOLVE_NO_MAGICLINKS != 0,
        no_symlinks: how.resolve & RESOLVE_NO_SYMLINKS != 0,
        beneath: how.resolve & RESOLVE_BENEATH != 0,
        in_root: how.resolve & RESOLVE_IN_ROOT != 0,
    })
}

/// openat2(dirfd, path, how, size). RESOLVE_CACHED walks are served like
/// any other (every lookup here is "cached" as far as blocking goes).
pub fn openat2(task: &mut Task, dirfd: DirFd, path: PathAddr, how: UserAddr, size: u64) -> SysResult {
    let how = read_how(task, how, size)?;
    let opts = check_how(&how)?;
    let p = task.read_path(UserAddr(path.0))?;
    let mut flags = how.flags as u32;
    if flags & O_PATH == 0 {
        flags |= O_LARGEFILE;
    }
    let f = open_path_with(task, dirfd.0, &p, flags, how.mode as u32, &opts)?;
    install(task, f, flags & O_CLOEXEC != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn how(flags: u64, mode: u64, resolve: u64) -> OpenHow {
        OpenHow { flags, mode, resolve }
    }

    #[test]
    fn strict_checks() {
        assert_eq!(check_how(&how(1 << 40, 0, 0)), Err(Errno::EINVAL));
        assert_eq!(check_how(&how(0o4, 0, 0)), Err(Errno::EINVAL));
        assert_eq!(check_how(&how(0, 0, 0x40)), Err(Errno::EINVAL));
        assert_eq!(check_how(&how(0, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT)), Err(Errno::EINVAL));
        assert_eq!(check_how(&how(0, 0o644, 0)), Err(Errno::EINVAL));
        assert_eq!(check_how(&how(u64::from(O_CREAT), 0o10000, 0)), Err(Errno::EINVAL));
        assert_eq!(check_how(&how(u64::from(O_CREAT), 0, RESOLVE_CACHED)), Err(Errno::EAGAIN));
        assert_eq!(check_how(&how(u64::from(O_PATH | O_RDWR), 0, 0)), Err(Errno::EINVAL));
        assert!(check_how(&how(u64::from(O_CREAT | O_RDWR), 0o644, RESOLVE_BENEATH)).is_ok_and(|o| o.beneath));
    }
}
