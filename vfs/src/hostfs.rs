//! A host directory tree served to the sandbox.
//!
//! Every inode holds an `O_PATH|O_NOFOLLOW` descriptor of its host node.
//! Lookups open one component at a time relative to the parent's
//! descriptor and never follow a host symlink; symlinks are returned to
//! the VFS, which resolves them inside the sandbox. Nothing here ever
//! resolves a guest-supplied path on the host: the only absolute paths
//! used are `/proc/self/fd/N` magic links, which name the exact node the
//! descriptor holds (they are never followed further, even for symlinks).
//!
//! A read-only instance refuses every change with EROFS. Host character
//! and block devices are not reachable (EACCES, as on a nodev mount).

use crate::inode::{DirEntry, FileOps, Inode, InodeRef, SetAttr};
use crate::tmpfs::DirFile;
use crate::util::{check_name, last_errno};
use crate::wait::IoCtx;
use crate::Creds;
use abi::flags::{
    O_ACCMODE, O_APPEND, O_DSYNC, O_RDONLY, O_SYNC, PATH_MAX, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT,
    S_IFREG, S_IFSOCK,
};
use abi::{Errno, Stat, Statfs};
use std::any::Any;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

/// Constructors for host-backed trees.
pub struct HostFs;

impl HostFs {
    /// Serve the host tree at `path` (a directory, or a single file for a
    /// file bind mount). `path` itself is resolved by the host: it comes
    /// from the operator, never from the guest.
    pub fn new_root(path: &Path, readonly: bool) -> io::Result<InodeRef> {
        let c = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: `c` is a valid NUL-terminated string; the result is checked.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by open and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Arc::new(HostInode { fs: Arc::new(FsInfo { readonly }), fd }))
    }
}

struct FsInfo {
    readonly: bool,
}

/// A host node, held by an O_PATH descriptor.
pub struct HostInode {
    fs: Arc<FsInfo>,
    fd: OwnedFd,
}

/// `-1` from a libc call becomes the errno.
fn cvt(r: libc::c_int) -> Result<libc::c_int, Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r)
    }
}

/// Retry a call interrupted by a (Sentry-internal) signal.
fn retry(mut f: impl FnMut() -> libc::c_int) -> Result<libc::c_int, Errno> {
    loop {
        match cvt(f()) {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

fn cname(name: &[u8]) -> Result<CString, Errno> {
    check_name(name)?;
    CString::new(name).map_err(|_| Errno::EINVAL)
}

/// "/proc/self/fd/N" for a descriptor we hold.
fn proc_path(fd: RawFd) -> CString {
    // A decimal number never holds a NUL; the fallback is unreachable.
    CString::new(format!("/proc/self/fd/{fd}")).unwrap_or_default()
}

fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: callers pass a descriptor just returned by a successful
    // open-like call, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

pub(crate) fn stat_from_host(s: &libc::stat) -> Stat {
    Stat {
        st_dev: s.st_dev,
        st_ino: s.st_ino,
        st_nlink: s.st_nlink,
        st_mode: s.st_mode,
        st_uid: s.st_uid,
        st_gid: s.st_gid,
        st_rdev: s.st_rdev,
        st_size: s.st_size,
        st_blksize: s.st_blksize,
        st_blocks: s.st_blocks,
        st_atime: s.st_atime,
        st_atime_nsec: s.st_atime_nsec,
        st_mtime: s.st_mtime,
        st_mtime_nsec: s.st_mtime_nsec,
        st_ctime: s.st_ctime,
        st_ctime_nsec: s.st_ctime_nsec,
        ..Default::default()
    }
}

/// fstat of any descriptor (O_PATH ones included).
pub(crate) fn fstat_fd(fd: RawFd) -> Result<Stat, Errno> {
    // SAFETY: an all-zero `struct stat` is a valid value.
    let mut s: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the path is a valid empty C string and `s` a valid out pointer.
    cvt(unsafe { libc::fstatat(fd, c"".as_ptr(), &mut s, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(stat_from_host(&s))
}

impl HostInode {
    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn check_writable(&self) -> Result<(), Errno> {
        if self.fs.readonly {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// The O_PATH descriptor of child `name`, never following a symlink.
    fn open_child(&self, name: &CString) -> Result<OwnedFd, Errno> {
        // SAFETY: `name` is a valid C string; the result is checked.
        let fd = retry(|| unsafe {
            libc::openat(self.raw(), name.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        })?;
        Ok(owned(fd))
    }

    fn child(&self, name: &CString) -> Result<Arc<HostInode>, Errno> {
        Ok(Arc::new(HostInode { fs: self.fs.clone(), fd: self.open_child(name)? }))
    }

    /// Reopen this node for I/O through its magic link. `flags` never
    /// include O_CREAT, so nothing is created, and the magic link names
    /// exactly the node held (a symlink is not followed to its target).
    fn reopen(&self, flags: libc::c_int) -> Result<OwnedFd, Errno> {
        let p = proc_path(self.raw());
        // SAFETY: `p` is a valid C string; the result is checked.
        let fd = retry(|| unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOCTTY) })?;
        Ok(owned(fd))
    }

    /// chmod through the magic link (fchmod does not take O_PATH
    /// descriptors). A symlink's mode cannot change: EOPNOTSUPP.
    fn chmod(&self, mode: u32) -> Result<(), Errno> {
        let st = fstat_fd(self.raw())?;
        if st.st_mode & S_IFMT == S_IFLNK {
            return Err(Errno::EOPNOTSUPP);
        }
        let p = proc_path(self.raw());
        // SAFETY: `p` is a valid C string.
        cvt(unsafe { libc::fchmodat(libc::AT_FDCWD, p.as_ptr(), (mode & 0o7777) as libc::mode_t, 0) })?;
        Ok(())
    }

    fn chown(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let u = uid.map_or(u32::MAX, |u| u);
        let g = gid.map_or(u32::MAX, |g| g);
        // SAFETY: the path is a valid empty C string; AT_EMPTY_PATH acts on the descriptor itself.
        cvt(unsafe {
            libc::fchownat(self.raw(), c"".as_ptr(), u, g, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
        })?;
        Ok(())
    }

    /// After creating a node: give it the exact permission bits asked for
    /// (the Sentry's own umask must not apply) and, best effort, the
    /// creator's identity (the host may not map it).
    fn settle_new(&self, node: &HostInode, mode: u32, creds: &Creds) {
        let Ok(st) = fstat_fd(node.raw()) else { return };
        if st.st_mode & S_IFMT != S_IFLNK && st.st_mode & 0o7777 != mode & 0o7777 {
            let _ = node.chmod(mode);
        }
        let parent_sgid = fstat_fd(self.raw()).map(|p| p.st_mode & 0o2000 != 0).unwrap_or(false);
        let gid = if parent_sgid { None } else { Some(creds.fsgid) };
        if st.st_uid != creds.fsuid || gid.is_some_and(|g| g != st.st_gid) {
            let _ = node.chown(Some(creds.fsuid), gid);
            if st.st_mode & S_IFMT != S_IFLNK && mode & 0o6000 != 0 {
                // chown clears set-id bits; put them back if they were asked for.
                let _ = node.chmod(mode);
            }
        }
    }

    fn downcast(i: &InodeRef) -> Option<&HostInode> {
        i.as_any().downcast_ref::<HostInode>()
    }
}

impl Inode for HostInode {
    fn stat(&self) -> Result<Stat, Errno> {
        fstat_fd(self.raw())
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        let mut s = Statfs::default();
        // SAFETY: abi::Statfs has the x86-64 kernel `struct statfs` layout,
        // so the raw syscall fills it in place; O_PATH descriptors are accepted.
        let r = unsafe { libc::syscall(libc::SYS_fstatfs, self.raw(), &mut s as *mut Statfs) };
        if r < 0 {
            return Err(last_errno());
        }
        if self.fs.readonly {
            s.f_flags |= libc::ST_RDONLY as i64;
        }
        Ok(s)
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let c = cname(name)?;
        Ok(self.child(&c)?)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        // SAFETY: "." is a valid C string; the result is checked.
        let fd = retry(|| unsafe {
            libc::openat(self.raw(), c".".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)
        })?;
        let dir = owned(fd);
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: the buffer pointer and length describe `buf`.
            let n = unsafe { libc::syscall(libc::SYS_getdents64, dir.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                let e = last_errno();
                if e == Errno::EINTR {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                break;
            }
            let data = buf.get(..n as usize).ok_or(Errno::EIO)?;
            let mut pos = 0usize;
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            while pos + 19 <= data.len() {
                let ino = u64::from_ne_bytes(data[pos..pos + 8].try_into().map_err(|_| Errno::EIO)?);
                let reclen = u16::from_ne_bytes([data[pos + 16], data[pos + 17]]) as usize;
                let d_type = data[pos + 18];
                if reclen < 19 || pos + reclen > data.len() {
                    return Err(Errno::EIO);
                }
                let raw = &data[pos + 19..pos + reclen];
                let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
                if name != b"." && name != b".." {
                    out.push(DirEntry { ino, d_type, name: name.to_vec() });
                }
                pos += reclen;
            }
        }
        Ok(out)
    }

    fn create(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<InodeRef, Errno> {
        let c = cname(name)?;
        self.check_writable()?;
        let perm = (mode & 0o7777) as libc::c_uint;
        // SAFETY: `c` is a valid C string; the result is checked.
        let fd = retry(|| unsafe {
            libc::openat(
                self.raw(),
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_RDONLY | libc::O_CLOEXEC,
                perm,
            )
        })?;
        let real = owned(fd);
        let node = Arc::new(HostInode { fs: self.fs.clone(), fd: self.reopen_path(&real)? });
        drop(real);
        self.settle_new(&node, mode, creds);
        Ok(node)
    }

    fn mkdir(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<(), Errno> {
        let c = cname(name)?;
        self.check_writable()?;
        // SAFETY: `c` is a valid C string.
        cvt(unsafe { libc::mkdirat(self.raw(), c.as_ptr(), (mode & 0o7777) as libc::mode_t) })?;
        if let Ok(node) = self.child(&c) {
            if fstat_fd(node.raw()).is_ok_and(|s| s.st_mode & S_IFMT == S_IFDIR) {
                self.settle_new(&node, mode, creds);
            }
        }
        Ok(())
    }

    fn mknod(&self, name: &[u8], mode: u32, _rdev: u64, creds: &Creds) -> Result<(), Errno> {
        let c = cname(name)?;
        self.check_writable()?;
        let kind = mode & S_IFMT;
        match kind {
            0 | S_IFREG => return self.create(name, mode, creds).map(|_| ()),
            S_IFIFO | S_IFSOCK => {}
            S_IFCHR | S_IFBLK => return Err(Errno::EPERM),
            S_IFDIR => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        }
        // SAFETY: `c` is a valid C string.
        cvt(unsafe { libc::mknodat(self.raw(), c.as_ptr(), (kind | (mode & 0o7777)) as libc::mode_t, 0) })?;
        if let Ok(node) = self.child(&c) {
            if fstat_fd(node.raw()).is_ok_and(|s| s.st_mode & S_IFMT == kind) {
                self.settle_new(&node, mode, creds);
            }
        }
        Ok(())
    }

    fn symlink(&self, name: &[u8], target: &[u8], creds: &Creds) -> Result<(), Errno> {
        let c = cname(name)?;
        self.check_writable()?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let t = CString::new(target).map_err(|_| Errno::EINVAL)?;
        // SAFETY: both are valid C strings.
        cvt(unsafe { libc::symlinkat(t.as_ptr(), self.raw(), c.as_ptr()) })?;
        if let Ok(node) = self.child(&c) {
            if fstat_fd(node.raw()).is_ok_and(|s| s.st_mode & S_IFMT == S_IFLNK) {
                self.settle_new(&node, 0o777, creds);
            }
        }
        Ok(())
    }

    fn link(&self, name: &[u8], target: &InodeRef) -> Result<(), Errno> {
        let c = cname(name)?;
        let t = Self::downcast(target).ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&self.fs, &t.fs) {
            return Err(Errno::EXDEV);
        }
        self.check_writable()?;
        if fstat_fd(t.raw())?.st_mode & S_IFMT == S_IFDIR {
            return Err(Errno::EPERM);
        }
        // SAFETY: valid C strings; AT_EMPTY_PATH links the node the descriptor holds.
        let r = cvt(unsafe { libc::linkat(t.raw(), c"".as_ptr(), self.raw(), c.as_ptr(), libc::AT_EMPTY_PATH) });
        match r {
            Ok(_) => Ok(()),
            Err(Errno::ENOENT) | Err(Errno::EPERM) => {
                // Without CAP_DAC_READ_SEARCH AT_EMPTY_PATH is refused; the
                // magic link names the same node (a symlink is linked itself).
                let p = proc_path(t.raw());
                // SAFETY: valid C strings.
                cvt(unsafe {
                    libc::linkat(libc::AT_FDCWD, p.as_ptr(), self.raw(), c.as_ptr(), libc::AT_SYMLINK_FOLLOW)
                })?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        let c = cname(name)?;
        self.check_writable()?;
        // SAFETY: `c` is a valid C string.
        cvt(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) })?;
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        let c = cname(name)?;
        self.check_writable()?;
        // SAFETY: `c` is a valid C string.
        cvt(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), libc::AT_REMOVEDIR) })?;
        Ok(())
    }

    fn rename(&self, name: &[u8], new_dir: &InodeRef, new_name: &[u8], flags: u32) -> Result<(), Errno> {
        let c = cname(name)?;
        let nc = cname(new_name)?;
        let nd = Self::downcast(new_dir).ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&self.fs, &nd.fs) {
            return Err(Errno::EXDEV);
        }
        self.check_writable()?;
        // SAFETY: valid C strings and descriptors; flags are checked by the host.
        let r = unsafe {
            libc::syscall(libc::SYS_renameat2, self.raw(), c.as_ptr(), nd.raw(), nc.as_ptr(), flags as libc::c_uint)
        };
        if r < 0 {
            return Err(last_errno());
        }
        Ok(())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; PATH_MAX];
        // SAFETY: the buffer pointer and length describe `buf`; the path is empty.
        let n = unsafe { libc::readlinkat(self.raw(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = last_errno();
            // Not a symlink: readlinkat on an empty path says ENOENT.
            return Err(if e == Errno::ENOENT { Errno::EINVAL } else { e });
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        self.check_writable()?;
        let st = fstat_fd(self.raw())?;
        let kind = st.st_mode & S_IFMT;
        if let Some(size) = attr.size {
            match kind {
                S_IFREG => {}
                S_IFDIR => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            let size = i64::try_from(size).map_err(|_| Errno::EFBIG)?;
            let f = self.reopen(libc::O_WRONLY)?;
            // SAFETY: `f` is a descriptor we own.
            retry(|| unsafe { libc::ftruncate(f.as_raw_fd(), size) })?;
        }
        if attr.uid.is_some() || attr.gid.is_some() {
            self.chown(attr.uid, attr.gid)?;
        }
        if let Some(mode) = attr.mode {
            self.chmod(mode)?;
        }
        if attr.atime.is_some() || attr.mtime.is_some() {
            let ts = |t: Option<(i64, i64)>| match t {
                Some((s, ns)) => libc::timespec { tv_sec: s, tv_nsec: ns },
                None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
            };
            let times = [ts(attr.atime), ts(attr.mtime)];
            // SAFETY: `times` is a valid array of two timespecs; the path is empty.
            let r = cvt(unsafe {
                libc::utimensat(
                    self.raw(),
                    c"".as_ptr(),
                    times.as_ptr(),
                    libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                )
            });
            match r {
                Ok(_) => {}
                Err(Errno::EINVAL) if kind != S_IFLNK => {
                    // Older hosts: no AT_EMPTY_PATH for utimensat.
                    let p = proc_path(self.raw());
                    // SAFETY: `p` is a valid C string, `times` as above.
                    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), times.as_ptr(), 0) })?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        let st = fstat_fd(self.raw())?;
        let acc = flags & O_ACCMODE;
        let writing = acc != O_RDONLY;
        match st.st_mode & S_IFMT {
            S_IFDIR => {
                if writing {
                    return Err(Errno::EISDIR);
                }
                Ok(Arc::new(DirFile))
            }
            S_IFLNK => Err(Errno::ELOOP),
            S_IFREG => {
                if writing {
                    self.check_writable()?;
                }
                let mut host = acc as libc::c_int;
                host |= (flags & (O_SYNC | O_DSYNC)) as libc::c_int;
                Ok(Arc::new(HostFile { fd: self.reopen(host)? }))
            }
            S_IFIFO => {
                // Opened non-blocking on the host so the open cannot hang;
                // the guest's blocking reads and writes wait in HostFdFile.
                let fd = self.reopen(acc as libc::c_int | libc::O_NONBLOCK)?;
                Ok(crate::hostfd::HostFdFile::new(fd))
            }
            S_IFSOCK => Err(Errno::ENXIO),
            _ => Err(Errno::EACCES),
        }
    }

    fn same_node(&self, other: &dyn Inode) -> bool {
        let Some(other) = other.as_any().downcast_ref::<HostInode>() else { return false };
        match (self.stat(), other.stat()) {
            (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
            _ => false,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl HostInode {
    /// An O_PATH descriptor of the node `real` (an open descriptor) holds.
    /// The magic link must be followed (O_NOFOLLOW would give the /proc
    /// link itself); it jumps to exactly that node.
    fn reopen_path(&self, real: &OwnedFd) -> Result<OwnedFd, Errno> {
        let p = proc_path(real.as_raw_fd());
        // SAFETY: `p` is a valid C string; the result is checked.
        let fd = retry(|| unsafe { libc::open(p.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })?;
        Ok(owned(fd))
    }
}

/// An open host regular file: positioned reads and writes.
struct HostFile {
    fd: OwnedFd,
}

fn offset(off: u64) -> Result<libc::off_t, Errno> {
    libc::off_t::try_from(off).map_err(|_| Errno::EINVAL)
}

impl FileOps for HostFile {
    fn read(&self, _ctx: &IoCtx, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let off = offset(off)?;
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let n = unsafe { libc::pread(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), off) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = last_errno();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }

    fn write(&self, ctx: &IoCtx, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let off = offset(off)?;
        if ctx.flags & O_APPEND != 0 {
            // An atomic append on the host, whoever else appends meanwhile.
            let iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
            loop {
                // SAFETY: one iovec describing `buf`, which the kernel only reads.
                let n = unsafe {
                    libc::syscall(
                        libc::SYS_pwritev2,
                        self.fd.as_raw_fd(),
                        &iov as *const libc::iovec,
                        1,
                        0,
                        0,
                        libc::RWF_APPEND,
                    )
                };
                if n >= 0 {
                    return Ok(n as usize);
                }
                match last_errno() {
                    Errno::EINTR => continue,
                    // Hosts before 4.16: positioned write at the end the VFS found.
                    Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::EINVAL => break,
                    e => return Err(e),
                }
            }
        }
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let n = unsafe { libc::pwrite(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), off) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = last_errno();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }

    fn size(&self) -> Result<u64, Errno> {
        Ok(fstat_fd(self.fd.as_raw_fd())?.st_size.max(0) as u64)
    }

    fn fsync(&self) -> Result<(), Errno> {
        // SAFETY: a descriptor we own.
        retry(|| unsafe { libc::fsync(self.fd.as_raw_fd()) })?;
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wait::Interrupt;
    use abi::flags::{O_RDWR, O_WRONLY};
    use std::path::PathBuf;

    /// A fresh directory under /tmp, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "vfs-test-{tag}-{}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed),
                crate::now().1
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ctx(irq: &Interrupt) -> IoCtx<'_> {
        IoCtx { flags: 0, interrupt: irq }
    }

    #[test]
    fn lookup_stat_read_never_follows() {
        let td = TempDir::new("hostfs");
        std::fs::write(td.0.join("f"), b"hello").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", td.0.join("l")).unwrap();
        std::fs::create_dir(td.0.join("d")).unwrap();
        let root = HostFs::new_root(&td.0, false).unwrap();
        let irq = Interrupt::default();
        let f = root.lookup(b"f").unwrap();
        let st = f.stat().unwrap();
        let hs = std::fs::metadata(td.0.join("f")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((st.st_ino, st.st_dev, st.st_size), (hs.ino(), hs.dev(), 5));
        let mut b = [0u8; 16];
        let fo = f.open(O_RDONLY).unwrap();
        assert_eq!(fo.read(&ctx(&irq), &mut b, 1), Ok(4));
        assert_eq!(&b[..4], b"ello");
        assert_eq!(fo.size(), Ok(5));
        let l = root.lookup(b"l").unwrap();
        assert_eq!(l.stat().unwrap().st_mode & S_IFMT, S_IFLNK);
        assert_eq!(l.readlink().unwrap(), b"/etc/passwd");
        assert_eq!(l.open(O_RDONLY).err(), Some(Errno::ELOOP));
        assert_eq!(l.lookup(b"x").err(), Some(Errno::ENOTDIR));
        assert_eq!(f.readlink().err(), Some(Errno::EINVAL));
        assert_eq!(root.lookup(b"..").err(), Some(Errno::EINVAL));
        assert_eq!(root.lookup(b"d/../f").err(), Some(Errno::EINVAL));
        assert_eq!(root.lookup(b"nope").err(), Some(Errno::ENOENT));
        let mut names: Vec<_> = root.readdir().unwrap().into_iter().map(|e| e.name).collect();
        names.sort();
        assert_eq!(names, vec![b"d".to_vec(), b"f".to_vec(), b"l".to_vec()]);
        let d = root.lookup(b"d").unwrap();
        assert_eq!(d.open(O_RDONLY).unwrap().read(&ctx(&irq), &mut b, 0), Err(Errno::EISDIR));
        assert_eq!(d.open(O_WRONLY).err(), Some(Errno::EISDIR));
    }

    #[test]
    fn mutations() {
        let td = TempDir::new("hostfs-rw");
        let root = HostFs::new_root(&td.0, false).unwrap();
        let irq = Interrupt::default();
        let c = Creds::root();
        let f = root.create(b"f", S_IFREG | 0o666, &c).unwrap();
        assert_eq!(root.create(b"f", 0o644, &c).err(), Some(Errno::EEXIST));
        // O_APPEND appends at the real end even when the offset given is stale.
        let a = f.open(O_WRONLY).unwrap();
        a.write(&ctx(&irq), b"one", 0).unwrap();
        let app = IoCtx { flags: abi::flags::O_APPEND, interrupt: &irq };
        assert_eq!(a.write(&app, b"two", 0), Ok(3));
        assert_eq!(std::fs::read(td.0.join("f")).unwrap(), b"onetwo");
        f.setattr(&SetAttr { size: Some(0), ..Default::default() }).unwrap();
        // Exact mode despite the process umask.
        assert_eq!(f.stat().unwrap().st_mode, S_IFREG | 0o666);
        let fo = f.open(O_RDWR).unwrap();
        assert_eq!(fo.write(&ctx(&irq), b"0123456789", 0), Ok(10));
        assert_eq!(std::fs::read(td.0.join("f")).unwrap(), b"0123456789");
        f.setattr(&SetAttr { size: Some(4), mode: Some(0o600), mtime: Some((1000, 5)), ..Default::default() }).unwrap();
        let st = f.stat().unwrap();
        assert_eq!((st.st_size, st.st_mode & 0o7777, st.st_mtime, st.st_mtime_nsec), (4, 0o600, 1000, 5));
        root.mkdir(b"d", 0o777, &c).unwrap();
        assert_eq!(root.lookup(b"d").unwrap().stat().unwrap().st_mode, S_IFDIR | 0o777);
        let d = root.lookup(b"d").unwrap();
        d.link(b"hard", &f).unwrap();
        assert_eq!(f.stat().unwrap().st_nlink, 2);
        root.symlink(b"s", b"/etc/shadow", &c).unwrap();
        let s = root.lookup(b"s").unwrap();
        d.link(b"hs", &s).unwrap();
        assert_eq!(d.lookup(b"hs").unwrap().readlink().unwrap(), b"/etc/shadow");
        assert_eq!(s.setattr(&SetAttr { mode: Some(0o600), ..Default::default() }), Err(Errno::EOPNOTSUPP));
        root.mknod(b"p", S_IFIFO | 0o640, 0, &c).unwrap();
        assert_eq!(root.lookup(b"p").unwrap().stat().unwrap().st_mode, S_IFIFO | 0o640);
        assert_eq!(root.mknod(b"dev", S_IFCHR | 0o640, 0x103, &c), Err(Errno::EPERM));
        assert_eq!(root.rmdir(b"d").err(), Some(Errno::ENOTEMPTY));
        assert_eq!(root.unlink(b"d").err(), Some(Errno::EISDIR));
        root.rename(b"f", &d, b"moved", 0).unwrap();
        assert!(td.0.join("d/moved").exists());
        assert_eq!(d.rename(b"moved", &d, b"hard", abi::flags::RENAME_NOREPLACE), Err(Errno::EEXIST));
        let other = HostFs::new_root(&td.0, false).unwrap();
        assert_eq!(root.rename(b"s", &other, b"s2", 0), Err(Errno::EXDEV));
        assert_eq!(other.link(b"x", &f), Err(Errno::EXDEV));
        let tmp = crate::tmpfs::TmpFs::new_root(0o755, 0, 0);
        assert_eq!(root.rename(b"s", &tmp, b"s2", 0), Err(Errno::EXDEV));
        for n in [&b"moved"[..], b"hard", b"hs"] {
            d.unlink(n).unwrap();
        }
        root.rmdir(b"d").unwrap();
        assert!(!td.0.join("d").exists());
    }

    #[test]
    fn readonly_is_erofs() {
        let td = TempDir::new("hostfs-ro");
        std::fs::write(td.0.join("f"), b"x").unwrap();
        std::fs::create_dir(td.0.join("d")).unwrap();
        let root = HostFs::new_root(&td.0, true).unwrap();
        let c = Creds::root();
        let f = root.lookup(b"f").unwrap();
        assert_eq!(root.create(b"n", 0o644, &c).err(), Some(Errno::EROFS));
        assert_eq!(root.mkdir(b"n", 0o755, &c), Err(Errno::EROFS));
        assert_eq!(root.mknod(b"n", S_IFIFO | 0o644, 0, &c), Err(Errno::EROFS));
        assert_eq!(root.symlink(b"n", b"x", &c), Err(Errno::EROFS));
        assert_eq!(root.link(b"n", &f), Err(Errno::EROFS));
        assert_eq!(root.unlink(b"f"), Err(Errno::EROFS));
        assert_eq!(root.rmdir(b"d"), Err(Errno::EROFS));
        assert_eq!(root.rename(b"f", &root, b"g", 0), Err(Errno::EROFS));
        assert_eq!(f.setattr(&SetAttr { size: Some(0), ..Default::default() }), Err(Errno::EROFS));
        assert_eq!(f.open(O_WRONLY).err(), Some(Errno::EROFS));
        assert!(f.open(O_RDONLY).is_ok());
        assert_eq!(std::fs::read(td.0.join("f")).unwrap(), b"x");
        assert_ne!(root.statfs().unwrap().f_flags & libc::ST_RDONLY as i64, 0);
    }
}
