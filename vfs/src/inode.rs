//! The two traits every filesystem implements: [`Inode`] (a node in a
//! tree) and [`FileOps`] (what an open file does).

use crate::wait::IoCtx;
use crate::Creds;
use abi::{Errno, Stat, Statfs};
use std::any::Any;
use std::sync::Arc;

pub type InodeRef = Arc<dyn Inode>;

/// One entry of a directory listing ("." and ".." are added by the VFS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    pub d_type: u8,
    pub name: Vec<u8>,
}

/// Attribute changes for [`Inode::setattr`]; None leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct SetAttr {
    /// Permission bits only (the file type is never changed).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    /// (sec, nsec)
    pub atime: Option<(i64, i64)>,
    pub mtime: Option<(i64, i64)>,
}

/// A node in a filesystem tree. Directory operations take a single name
/// component: never empty, never ".", "..", and never containing '/'; the
/// VFS walks paths and resolves symlinks itself, so an implementation
/// must never follow a symlink on the host or step outside its root.
///
/// Defaults return the errno Linux gives for a node of the wrong kind.
pub trait Inode: Send + Sync + Any {
    fn stat(&self) -> Result<Stat, Errno>;

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(Statfs { f_type: 0x0102_1994, f_bsize: 4096, f_namelen: 255, f_frsize: 4096, ..Default::default() })
    }

    /// The child called `name` (ENOENT if absent, ENOTDIR if not a dir).
    fn lookup(&self, _name: &[u8]) -> Result<InodeRef, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// All entries but "." and "..".
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Create a regular file (EEXIST if the name is taken).
    fn create(&self, _name: &[u8], _mode: u32, _creds: &Creds) -> Result<InodeRef, Errno> {
        Err(Errno::ENOTDIR)
    }

    fn mkdir(&self, _name: &[u8], _mode: u32, _creds: &Creds) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Create a device node, fifo or socket node; `mode` carries the type.
    fn mknod(&self, _name: &[u8], _mode: u32, _rdev: u64, _creds: &Creds) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn symlink(&self, _name: &[u8], _target: &[u8], _creds: &Creds) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Make `name` a hard link to `target` (EXDEV if `target` is on
    /// another filesystem).
    fn link(&self, _name: &[u8], _target: &InodeRef) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Remove a non-directory entry (EISDIR for a directory).
    fn unlink(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Remove an empty directory (ENOTEMPTY, ENOTDIR as Linux).
    fn rmdir(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Move `name` to `new_dir`/`new_name` (EXDEV across filesystems;
    /// `flags` are RENAME_* bits).
    fn rename(&self, _name: &[u8], _new_dir: &InodeRef, _new_name: &[u8], _flags: u32) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }

    fn setattr(&self, _attr: &SetAttr) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    /// Open this node. `flags` are the open(2) flags (O_CREAT/O_EXCL
    /// already handled by the VFS; O_TRUNC is applied by the VFS through
    /// setattr before this call).
    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno>;

    /// The value of extended attribute `name` (ENODATA if absent,
    /// EOPNOTSUPP for a namespace this filesystem does not keep). The
    /// syscall layer has already checked the name and the caller's right
    /// to its namespace.
    fn getxattr(&self, _name: &[u8]) -> Result<Vec<u8>, Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Set `name` to `value`; `flags` are XATTR_CREATE/XATTR_REPLACE.
    fn setxattr(&self, _name: &[u8], _value: &[u8], _flags: u32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Every attribute name (the syscall layer hides what the caller may
    /// not see).
    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        Ok(Vec::new())
    }

    fn removexattr(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    /// For /proc/[pid]/fd links: what following the link reaches without
    /// reading its text (Linux's "magic" links). None for ordinary links.
    fn magic_link(&self) -> Option<MagicLink> {
        None
    }

    /// Whether `other`, a different object, is the same node (so a walk
    /// may keep the dentry it already has). Filesystems that hand out one
    /// object per node need not say; hostfs makes one per lookup and
    /// compares the host's (device, inode), which stay unique while held.
    fn same_node(&self, _other: &dyn Inode) -> bool {
        false
    }

    /// Whether a filesystem that caches this node by name (the overlay
    /// over a host tree) must look the name up again: the backing store
    /// no longer has this node there. Filesystems whose nodes change only
    /// through the Sentry never are.
    fn is_stale(&self) -> bool {
        false
    }

    /// Whether locks on this node are also taken on a host file (hostfs).
    fn has_host_locks(&self) -> bool {
        false
    }

    /// A host descriptor of its own for taking the sandbox's locks on the
    /// host file (hostfs; see `locks.rs`). None: not a host file.
    fn host_lock_fd(&self) -> Option<Result<crate::locks::HostLockFd, Errno>> {
        None
    }

    /// For downcasting to a filesystem's own inode type (link, rename).
    fn as_any(&self) -> &dyn Any;
}

/// The target of a magic link.
pub enum MagicLink {
    /// A file that has a path.
    Dentry(crate::DentryRef),
    /// A file without one (a pipe, the host's stdio): the node itself.
    Inode(InodeRef),
}

/// What an open file does. Offsets are kept by the VFS's [`crate::OpenFile`]
/// and passed in: `off` is the position for seekable files and ignored by
/// streams (pipes, terminals, character devices).
pub trait FileOps: Send + Sync + Any {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let _ = (ctx, buf, off);
        Err(Errno::EINVAL)
    }

    fn write(&self, ctx: &IoCtx, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let _ = (ctx, buf, off);
        Err(Errno::EINVAL)
    }

    /// Whether reads and writes use an offset (false for pipes and ttys,
    /// where lseek is ESPIPE).
    fn seekable(&self) -> bool {
        true
    }

    /// fstat(2) of a file that has no dentry (pipes, sockets, the host's
    /// stdio); None means "use the dentry's inode".
    fn stat(&self) -> Option<Stat> {
        None
    }

    /// Devices whose position never moves (/dev/null, zero, full): lseek
    /// answers 0 whatever it is asked.
    fn pinned_offset(&self) -> bool {
        false
    }

    /// Writes are dropped without looking at the data (/dev/null), so the
    /// caller need not copy the guest's buffer at all.
    fn discards_writes(&self) -> bool {
        false
    }

    /// lseek(2) for files whose position is not a byte offset (/dev/kmsg
    /// keeps a record number): Some answers the call; None lets the VFS
    /// move the offset as usual.
    fn seek(&self, off: i64, whence: u32) -> Option<Result<u64, Errno>> {
        let _ = (off, whence);
        None
    }

    /// The host descriptor `read` reads from at the same offsets, so that
    /// the host kernel can copy the file itself (the file cache's fill
    /// splices it into the memory file). None for every other file.
    fn host_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// Current size, used for SEEK_END and O_APPEND.
    fn size(&self) -> Result<u64, Errno> {
        Ok(0)
    }

    /// poll(2) readiness (POLLIN/POLLOUT/...) right now.
    fn poll(&self) -> u32 {
        (libc::POLLIN | libc::POLLOUT) as u32
    }

    /// Where poll/select/epoll wait for this file's readiness to change.
    /// None: the file never changes on its own (always ready), or the
    /// Sentry cannot be told (host descriptors), so waiters poll it.
    fn wait_queue(&self) -> Option<&crate::wait::WaitQueue> {
        None
    }

    /// When the file becomes ready by itself, if it will (a timer).
    fn ready_at(&self) -> Option<std::time::Instant> {
        None
    }

    /// Whether readiness can change without anybody telling (host
    /// descriptors): waiters must poll it.
    fn needs_polling(&self) -> bool {
        false
    }

    /// ioctl; the VFS has already decoded nothing: `arg` is raw. Files that
    /// exchange structs do so through the returned/given byte vectors:
    /// `input` holds up to 64 bytes copied in from `arg` (when readable),
    /// and the returned bytes (if any) are copied out to `arg`.
    fn ioctl(&self, _req: u64, _arg: u64, _input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        Err(Errno::ENOTTY)
    }

    /// Flush writes to stable storage.
    fn fsync(&self) -> Result<(), Errno> {
        Ok(())
    }

    /// Called when the last descriptor referring to this open file goes.
    fn release(&self) {}

    fn as_any(&self) -> &dyn Any;
}
