//! The virtual filesystem: mounts, path walking, open files and the
//! descriptor table, plus the filesystems that need no kernel state.
//!
//! Filesystems implement [`Inode`] and [`FileOps`]; the VFS itself walks
//! paths (so no host path is ever resolved by the host kernel), enforces
//! read-only mounts and permission bits, and keeps file offsets.

pub mod attrcache;
pub mod cred;
pub mod devfs;
pub mod dircache;
pub mod dnotify;
pub mod epoll;
pub mod eventfd;
pub mod fdtable;
pub mod fown;
pub mod hostfd;
pub mod hostfs;
pub mod hostfs_fds;
mod hostfs_xattr;
pub mod hostwait;
pub mod inode;
pub mod inotify;
pub mod leases;
pub mod limits;
pub mod locks;
pub mod memfd;
pub mod mount;
pub mod overlay;
pub mod pipe;
pub mod proc_locks;
pub mod timerfd;
pub mod tmpfs;
pub mod tty;
mod util;
pub mod wait;
pub mod xattr;

pub use cred::Creds;
pub use fdtable::{FdTable, OpenFile};
pub use inode::{DirEntry, FileOps, Inode, InodeRef, MagicLink, SetAttr};
pub use mount::{Dentry, DentryRef, Follow, Mount, MountFlags, MountNamespace, WalkOpts};
pub use util::{makedev, poisoned};
pub use wait::{deadline_after, Interrupt, IoCtx, Notify, PollWaiter, WaitQueue, Waitable};

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_INO: AtomicU64 = AtomicU64::new(1);
/// A fresh inode number for synthetic filesystems (tmpfs, devfs, pipes).
pub fn next_ino() -> u64 {
    NEXT_INO.fetch_add(1, Ordering::Relaxed)
}

/// Wall-clock time now as (sec, nsec), for file timestamps.
pub fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}
