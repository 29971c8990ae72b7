//! inotify_init, inotify_init1, inotify_add_watch and inotify_rm_watch.
//! The instances and the event reporting are `vfs::inotify`.

use abi::flags::*;
use abi::Errno;
use sentry::table::{Fd, PathAddr, UserAddr};
use sentry::{SysResult, Task};
use vfs::inotify::{self as ino, Inotify};
use vfs::{Follow, OpenFile};

pub fn inotify_init1(task: &mut Task, flags: u32) -> SysResult {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let ops = Inotify::new_ops()?;
    let f = OpenFile::new_anon(ops, O_RDONLY | (flags & O_NONBLOCK), "anon_inode:inotify".to_string());
    Ok(task.fds().install(f, flags & O_CLOEXEC != 0, task.tg.nofile())? as u64)
}

pub fn inotify_init(task: &mut Task) -> SysResult {
    inotify_init1(task, 0)
}

/// The instance behind `fd`: EBADF without one, EINVAL for other files.
fn instance(task: &Task, fd: Fd) -> Result<std::sync::Arc<OpenFile>, Errno> {
    let f = task.file(fd.0)?;
    if f.ops.as_any().downcast_ref::<Inotify>().is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(f)
}

pub fn inotify_add_watch(task: &mut Task, fd: Fd, path: PathAddr, mask: u32) -> SysResult {
    // Linux's order: the mask, then the descriptor, then the path.
    if mask & ino::ALL_INOTIFY_BITS == 0 {
        return Err(Errno::EINVAL);
    }
    if mask & ino::IN_MASK_ADD != 0 && mask & ino::IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    let f = instance(task, fd)?;
    let p = task.read_path(UserAddr(path.0))?;
    let follow = if mask & ino::IN_DONT_FOLLOW != 0 { Follow::No } else { Follow::Yes };
    let d = task.resolve_at(AT_FDCWD, &p, follow)?;
    let st = d.inode.stat()?;
    if mask & ino::IN_ONLYDIR != 0 && st.st_mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    // Watching needs read permission on the node.
    task.creds().may_access(&st, R_OK)?;
    let inst = f.ops.as_any().downcast_ref::<Inotify>().ok_or(Errno::EINVAL)?;
    let wd = inst.add_watch((st.st_dev, st.st_ino), mask)?;
    Ok(wd as u64)
}

pub fn inotify_rm_watch(task: &mut Task, fd: Fd, wd: i32) -> SysResult {
    let f = instance(task, fd)?;
    let inst = f.ops.as_any().downcast_ref::<Inotify>().ok_or(Errno::EINVAL)?;
    inst.rm_watch(wd)?;
    Ok(0)
}
