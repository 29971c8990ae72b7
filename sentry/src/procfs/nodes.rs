//! The node types procfs is built of: files generated when opened,
//! symlinks generated when read, directories with generated entries, and
//! the /proc/[pid]/fd links that reach open files.

use abi::flags::{S_IFDIR, S_IFLNK, S_IFREG};
use abi::{Errno, Stat};
use std::any::Any;
use std::sync::Arc;
use vfs::{DirEntry, FileOps, Inode, InodeRef, IoCtx};

pub(crate) const PROC_DEV: u64 = 0x16;

pub(crate) fn ino_of(path: &str) -> u64 {
    // FNV-1a: stable inode numbers per path.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h | 1
}

pub(crate) fn stat_for(path: &str, mode: u32, nlink: u64, size: i64) -> Stat {
    let (s, ns) = vfs::now();
    Stat {
        st_dev: PROC_DEV,
        st_ino: ino_of(path),
        st_nlink: nlink,
        st_mode: mode,
        st_blksize: 1024,
        st_size: size,
        st_atime: s,
        st_atime_nsec: ns,
        st_mtime: s,
        st_mtime_nsec: ns,
        st_ctime: s,
        st_ctime_nsec: ns,
        ..Default::default()
    }
}

pub(crate) type Gen = Box<dyn Fn() -> Result<Vec<u8>, Errno> + Send + Sync>;

/// A read-only file whose content is generated at open.
pub(crate) struct ProcFile {
    pub(crate) path: String,
    pub(crate) gen: Gen,
    /// Permission bits (0444 unless Linux hides the file from others).
    pub(crate) perm: u32,
}

impl Inode for ProcFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_for(&self.path, S_IFREG | self.perm, 1, 0))
    }
    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        if flags & abi::flags::O_ACCMODE != abi::flags::O_RDONLY {
            return Err(Errno::EACCES);
        }
        Ok(Arc::new(Snapshot((self.gen)()?)))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The content of a proc file as it was when opened.
pub(crate) struct Snapshot(pub(crate) Vec<u8>);

impl FileOps for Snapshot {
    fn read(&self, _ctx: &IoCtx, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        if off >= self.0.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.0.len() - off);
        buf[..n].copy_from_slice(&self.0[off..off + n]);
        Ok(n)
    }
    fn size(&self) -> Result<u64, Errno> {
        Ok(self.0.len() as u64)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A symlink whose target is generated when read.
struct ProcLink {
    path: String,
    target: Gen,
}

impl Inode for ProcLink {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_for(&self.path, S_IFLNK | 0o777, 1, 0))
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        (self.target)()
    }
    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Err(Errno::ELOOP)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(crate) type Lister = Box<dyn Fn() -> Vec<(Vec<u8>, u8)> + Send + Sync>;
pub(crate) type Looker = Box<dyn Fn(&[u8]) -> Result<InodeRef, Errno> + Send + Sync>;

/// A directory with generated entries.
pub(crate) struct ProcDir {
    pub(crate) path: String,
    pub(crate) list: Lister,
    pub(crate) lookup: Looker,
}

impl Inode for ProcDir {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_for(&self.path, S_IFDIR | 0o555, 2, 0))
    }
    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        (self.lookup)(name)
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Ok((self.list)()
            .into_iter()
            .map(|(name, d_type)| {
                let p = format!("{}/{}", self.path, String::from_utf8_lossy(&name));
                DirEntry { ino: ino_of(&p), d_type, name }
            })
            .collect())
    }
    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Ok(Arc::new(DirHandle))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(crate) struct DirHandle;
impl FileOps for DirHandle {
    fn read(&self, _ctx: &IoCtx, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(crate) fn file(path: String, gen: impl Fn() -> Result<Vec<u8>, Errno> + Send + Sync + 'static) -> InodeRef {
    Arc::new(ProcFile { path, gen: Box::new(gen), perm: 0o444 })
}

/// A generated file only its owner may read (Linux's S_IRUSR entries:
/// environ, auxv, io, personality).
pub(crate) fn private_file(path: String, gen: impl Fn() -> Result<Vec<u8>, Errno> + Send + Sync + 'static) -> InodeRef {
    Arc::new(ProcFile { path, gen: Box::new(gen), perm: 0o400 })
}

pub(crate) fn link(path: String, target: impl Fn() -> Result<Vec<u8>, Errno> + Send + Sync + 'static) -> InodeRef {
    Arc::new(ProcLink { path, target: Box::new(target) })
}

/// A procfs root that forwards to the one put in `slot` later (the mount
/// table is built before the kernel that procfs reads from).
pub fn deferred_root(slot: Arc<std::sync::OnceLock<InodeRef>>) -> InodeRef {
    Arc::new(Deferred(slot))
}

struct Deferred(Arc<std::sync::OnceLock<InodeRef>>);

impl Deferred {
    fn get(&self) -> Result<&InodeRef, Errno> {
        self.0.get().ok_or(Errno::ENOENT)
    }
}

impl Inode for Deferred {
    fn stat(&self) -> Result<Stat, Errno> {
        self.get()?.stat()
    }
    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        self.get()?.lookup(name)
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        self.get()?.readdir()
    }
    fn statfs(&self) -> Result<abi::Statfs, Errno> {
        Ok(abi::Statfs { f_type: 0x9fa0, f_bsize: 4096, f_namelen: 255, f_frsize: 4096, ..Default::default() })
    }
    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        self.get()?.open(flags)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// /proc/[pid]/fd/N: shows the file's path, and following it reaches the
/// open file itself (even one without a path, like a pipe).
pub(crate) struct FdLink {
    pub(crate) path: String,
    pub(crate) file: Arc<vfs::OpenFile>,
}

impl Inode for FdLink {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_for(&self.path, S_IFLNK | 0o700, 1, 0))
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Ok(self.file.display_path())
    }
    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Err(Errno::ELOOP)
    }
    fn magic_link(&self) -> Option<vfs::MagicLink> {
        Some(match &self.file.dentry {
            Some(d) => vfs::MagicLink::Dentry(d.clone()),
            None => vfs::MagicLink::Inode(Arc::new(OpenFileNode(self.file.clone()))),
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open file without a path, seen as a node (reopened through /proc).
struct OpenFileNode(Arc<vfs::OpenFile>);

impl Inode for OpenFileNode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.0.ops.stat().unwrap_or(Stat { st_mode: S_IFREG | 0o600, st_nlink: 1, ..Default::default() }))
    }
    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        // A pipe reopens as a new end of the same pipe (its reader and
        // writer counts are per open); other files share their ops.
        if let Some(end) = self.0.ops.as_any().downcast_ref::<vfs::pipe::PipeEnd>() {
            return end.pipe().reopen(flags);
        }
        Ok(self.0.ops.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

type Writer = Box<dyn Fn(&[u8]) -> Result<(), Errno> + Send + Sync>;

/// A file generated at open that also takes writes (oom_score_adj): each
/// write hands its bytes to `write`.
struct ProcRwFile {
    path: String,
    gen: Gen,
    write: Arc<Writer>,
}

impl Inode for ProcRwFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_for(&self.path, S_IFREG | 0o644, 1, 0))
    }
    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        let content = if flags & abi::flags::O_ACCMODE == abi::flags::O_WRONLY { Vec::new() } else { (self.gen)()? };
        Ok(Arc::new(RwHandle { content, write: self.write.clone() }))
    }
    /// `echo N > oom_score_adj` truncates first: nothing to do.
    fn setattr(&self, _attr: &vfs::SetAttr) -> Result<(), Errno> {
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct RwHandle {
    content: Vec<u8>,
    write: Arc<Writer>,
}

impl FileOps for RwHandle {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        Snapshot(self.content.clone()).read(ctx, buf, off)
    }
    fn write(&self, _ctx: &IoCtx, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        (self.write)(buf)?;
        Ok(buf.len())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(crate) fn rw_file(
    path: String,
    gen: impl Fn() -> Result<Vec<u8>, Errno> + Send + Sync + 'static,
    write: impl Fn(&[u8]) -> Result<(), Errno> + Send + Sync + 'static,
) -> InodeRef {
    Arc::new(ProcRwFile { path, gen: Box::new(gen), write: Arc::new(Box::new(write)) })
}

/// Linux's nsfs device (0:4): where /proc/[pid]/ns/* lead.
const NSFS_DEV: u64 = 4;

/// /proc/[pid]/ns/KIND: reads as "KIND:[ino]"; followed (stat, open) it
/// is the namespace's nsfs file, as on Linux.
pub(crate) struct NsLink {
    pub(crate) path: String,
    pub(crate) kind: &'static str,
    pub(crate) ino: u64,
}

impl Inode for NsLink {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_for(&self.path, S_IFLNK | 0o777, 1, 0))
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Ok(format!("{}:[{}]", self.kind, self.ino).into_bytes())
    }
    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Err(Errno::ELOOP)
    }
    fn magic_link(&self) -> Option<vfs::MagicLink> {
        Some(vfs::MagicLink::Inode(Arc::new(NsNode { ino: self.ino })))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A namespace as a file: stat-able and openable (for setns, which the
/// sandbox does not serve); reading it is EINVAL, as Linux's nsfs.
struct NsNode {
    ino: u64,
}

impl Inode for NsNode {
    fn stat(&self) -> Result<Stat, Errno> {
        let mut st = stat_for("", S_IFREG | 0o444, 1, 0);
        st.st_dev = NSFS_DEV;
        st.st_ino = self.ino;
        st.st_blksize = 4096;
        Ok(st)
    }
    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Ok(Arc::new(NsFile))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct NsFile;

impl FileOps for NsFile {
    fn as_any(&self) -> &dyn Any {
        self
    }
}
