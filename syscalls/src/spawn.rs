//! The calls modern process creation makes first: clone3 (glibc's
//! pthread_create and posix_spawn), close_range (posix_spawn's
//! close-from action, closefrom) and execveat (fexecve).

use abi::flags::*;
use abi::{Errno, PAGE_SIZE};
use sentry::locking::lock;
use sentry::process::{CloneArgs, CLONE_CLEAR_SIGHAND};
use sentry::table::{DirFd, PathAddr, UserAddr};
use sentry::{SysResult, Task};
use vfs::Follow;

/// The sizes of `struct clone_args` Linux knows: the first version, then
/// with set_tid and set_tid_size, then with cgroup.
const CLONE_ARGS_SIZE_VER0: u64 = 64;
const CLONE_ARGS_SIZE_VER2: u64 = 88;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// clone3 only: inside CSIGNAL's byte, which clone3 keeps for flags.
const CLONE_NEWTIME: u64 = 0x80;
/// Linux's MAX_PID_NS_LEVEL: the longest set_tid array.
const MAX_PID_NS_LEVEL: u64 = 32;
/// pid_max's ceiling (PID_MAX_LIMIT on 64-bit).
const PID_MAX_LIMIT: i32 = 4 * 1024 * 1024;

/// `struct clone_args`, as far as VER2.
#[derive(Default)]
struct Clone3Args {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Copy `struct clone_args` of any size Linux accepts: a larger one must
/// end in zeros (E2BIG otherwise), one smaller than the first version is
/// EINVAL.
fn read_clone_args(task: &Task, addr: UserAddr, size: u64) -> Result<Clone3Args, Errno> {
    if size > PAGE_SIZE {
        return Err(Errno::E2BIG);
    }
    if size < CLONE_ARGS_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > CLONE_ARGS_SIZE_VER2 {
        let mut tail = vec![0u8; (size - CLONE_ARGS_SIZE_VER2) as usize];
        task.copy_in(addr.offset(CLONE_ARGS_SIZE_VER2)?, &mut tail)?;
        if tail.iter().any(|&b| b != 0) {
            return Err(Errno::E2BIG);
        }
    }
    let mut words = [0u64; 11];
    let mut raw = [0u8; CLONE_ARGS_SIZE_VER2 as usize];
    let n = size.min(CLONE_ARGS_SIZE_VER2) as usize;
    task.copy_in(addr, &mut raw[..n])?;
    for (w, chunk) in words.iter_mut().zip(raw.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *w = u64::from_ne_bytes(b);
    }
    let [flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup] =
        words;
    let a = Clone3Args {
        flags,
        pidfd,
        child_tid,
        parent_tid,
        exit_signal,
        stack,
        stack_size,
        tls,
        set_tid,
        set_tid_size,
        cgroup,
    };
    // Linux's copy_clone_args_from_user, in its order.
    if a.set_tid_size > MAX_PID_NS_LEVEL
        || (a.set_tid == 0 && a.set_tid_size > 0)
        || (a.set_tid != 0 && a.set_tid_size == 0)
    {
        return Err(Errno::EINVAL);
    }
    if a.exit_signal & !CSIGNAL != 0 || a.exit_signal > 64 {
        return Err(Errno::EINVAL);
    }
    if a.flags & CLONE_INTO_CGROUP != 0 && (a.cgroup > i32::MAX as u64 || size < CLONE_ARGS_SIZE_VER2) {
        return Err(Errno::EINVAL);
    }
    Ok(a)
}

/// clone3(2). set_tid: the sandbox is one pid namespace (so at most one
/// entry); a pid in use is EEXIST as for Linux's root, a free one EPERM
/// (choosing a pid is not served). CLONE_INTO_CGROUP: there is no cgroup
/// filesystem, so no descriptor names a cgroup (EBADF).
pub fn clone3(task: &mut Task, uargs: UserAddr, size: u64) -> SysResult {
    let a = read_clone_args(task, uargs, size)?;
    let mut tids = Vec::new();
    for i in 0..a.set_tid_size {
        tids.push(task.read_obj::<i32>(UserAddr(a.set_tid).offset(i * 4)?)?);
    }
    // clone3_args_valid.
    let f = a.flags;
    if f & !(0xffff_ffff | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) != 0
        || f & (CLONE_DETACHED | (CSIGNAL & !CLONE_NEWTIME)) != 0
        || (f & CLONE_SIGHAND != 0 && f & CLONE_CLEAR_SIGHAND != 0)
        || (f & (CLONE_THREAD | CLONE_PARENT) != 0 && a.exit_signal != 0)
    {
        return Err(Errno::EINVAL);
    }
    // clone3_stack_valid: both or neither, and inside the address space.
    let stack_top = if a.stack == 0 {
        if a.stack_size != 0 {
            return Err(Errno::EINVAL);
        }
        0
    } else {
        match a.stack.checked_add(a.stack_size) {
            Some(top) if a.stack_size != 0 && top <= task.mm().top() => top,
            _ => return Err(Errno::EINVAL),
        }
    };
    if f & CLONE_INTO_CGROUP != 0 {
        return Err(Errno::EBADF);
    }
    // A time namespace, like every other (clone's CLONE_NEW*), is not
    // served; its bit would also read as an exit signal below.
    if f & CLONE_NEWTIME != 0 {
        return Err(Errno::EPERM);
    }
    if tids.len() > 1 {
        // More pids than nesting levels.
        return Err(Errno::EINVAL);
    }
    if let Some(&tid) = tids.first() {
        if !(1..PID_MAX_LIMIT).contains(&tid) {
            return Err(Errno::EINVAL);
        }
        if task.creds().euid != 0 {
            return Err(Errno::EPERM);
        }
        if task.kernel.group_of_tid(tid).is_some() {
            return Err(Errno::EEXIST);
        }
        return Err(Errno::EPERM);
    }
    let args = CloneArgs {
        flags: f | a.exit_signal,
        stack: stack_top,
        ptid: a.parent_tid,
        ctid: a.child_tid,
        tls: a.tls,
        pidfd: a.pidfd,
    };
    Ok(sentry::process::clone_process(task, args)? as u64)
}

const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// close_range(2): close (or mark close-on-exec) every open descriptor
/// in [first, last]; CLOSE_RANGE_UNSHARE first gives the process a table
/// of its own.
pub fn close_range(task: &mut Task, first: u32, last: u32, flags: u32) -> SysResult {
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        let own = task.fds().fork();
        let old = std::mem::replace(&mut *lock(&task.tg.fds), own);
        drop(old);
    }
    let fds = task.fds();
    let in_range: Vec<i32> =
        fds.list().into_iter().map(|(fd, _)| fd).filter(|&fd| (first..=last).contains(&(fd as u32))).collect();
    let mut closed = Vec::new();
    for fd in in_range {
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            let _ = fds.set_cloexec(fd, true);
        } else if let Ok(f) = fds.remove(fd) {
            closed.push(f);
        }
    }
    drop(closed);
    Ok(0)
}

/// execveat(2): the program named relative to `dirfd`, or `dirfd` itself
/// with AT_EMPTY_PATH (fexecve). AT_SYMLINK_NOFOLLOW refuses a final
/// symlink with ELOOP.
pub fn execveat(
    task: &mut Task,
    dirfd: DirFd,
    path: PathAddr,
    argv: UserAddr,
    envp: UserAddr,
    flags: u32,
) -> SysResult {
    // Linux's order: the path, the flags, the file, then the strings.
    let p = task.read_path(UserAddr(path.0))?;
    if p.is_empty() && flags & AT_EMPTY_PATH == 0 {
        return Err(Errno::ENOENT);
    }
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let fd = dirfd.0;
    let by_fd = fd != AT_FDCWD && p.first() != Some(&b'/');
    let path_gone = by_fd && task.fds().get_cloexec(fd).unwrap_or(false);
    let (d, name) = if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
        let d = if fd == AT_FDCWD { task.fs().cwd } else { task.file(fd)?.dentry.clone().ok_or(Errno::EACCES)? };
        (d, format!("/dev/fd/{fd}").into_bytes())
    } else {
        let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
        let d = task.resolve_at(fd, &p, follow)?;
        if flags & AT_SYMLINK_NOFOLLOW != 0 && d.inode.stat()?.st_mode & S_IFMT == S_IFLNK {
            return Err(Errno::ELOOP);
        }
        let name = if p.first() == Some(&b'/') || fd == AT_FDCWD {
            p
        } else {
            let mut n = format!("/dev/fd/{fd}/").into_bytes();
            n.extend_from_slice(&p);
            n
        };
        (d, name)
    };
    let mut total = 0;
    let a = crate::process::read_str_array(task, argv, &mut total)?;
    let e = crate::process::read_str_array(task, envp, &mut total)?;
    sentry::exec::execve_from(task, Some(d), &name, a, e, path_gone)?;
    Ok(0)
}
