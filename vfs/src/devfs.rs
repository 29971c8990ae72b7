//! /dev: a tmpfs holding the standard character devices (null, zero, full,
//! random, urandom, tty), the stdio symlinks into /proc/self/fd, and the
//! `pts` and `shm` directories.
//!
//! The devices themselves live here ([`open_builtin`]) so that a device
//! node made by mknod in any tmpfs opens the same device; the Sentry adds
//! its own nodes (a pty master, a console) with [`DevFs::add_file`].

use crate::inode::{FileOps, InodeRef};
use crate::tmpfs::{DevOpener, TmpFs, TmpInode};
use crate::util::makedev;
use crate::wait::IoCtx;
use crate::Creds;
use abi::flags::S_IFCHR;
use abi::Errno;
use std::any::Any;
use std::sync::Arc;

/// Constructors and helpers for /dev.
pub struct DevFs;

impl DevFs {
    /// A new /dev.
    pub fn new_root() -> InodeRef {
        let root = TmpFs::new_root_inode(0o755, 0, 0, crate::tmpfs::DEFAULT_LIMIT);
        // Nothing below can fail on a fresh, empty tmpfs; errors are
        // ignored rather than turned into a panic all the same.
        let chr = S_IFCHR | 0o666;
        for (name, major, minor) in [
            (&b"null"[..], 1, 3),
            (b"zero", 1, 5),
            (b"full", 1, 7),
            (b"random", 1, 8),
            (b"urandom", 1, 9),
            (b"tty", 5, 0),
        ] {
            let _ = root.add_node(name, chr, makedev(major, minor), None);
        }
        let c = Creds::root();
        let inode: &dyn crate::Inode = &*root;
        for (name, target) in [
            (&b"stdin"[..], &b"/proc/self/fd/0"[..]),
            (b"stdout", b"/proc/self/fd/1"),
            (b"stderr", b"/proc/self/fd/2"),
            (b"fd", b"/proc/self/fd"),
        ] {
            let _ = inode.symlink(name, target, &c);
        }
        let _ = inode.mkdir(b"pts", 0o755, &c);
        let _ = inode.mkdir(b"shm", 0o1777, &c);
        root
    }

    /// Add (or replace) the device node `name` in `dir` (the /dev root or
    /// a directory under it, such as `pts`). `mode` holds the permission
    /// bits and the type (S_IFCHR when none); opening the node calls
    /// `open` with the open(2) flags.
    pub fn add_file(dir: &InodeRef, name: &[u8], mode: u32, rdev: u64, open: DevOpener) -> Result<(), Errno> {
        let d = dir.as_any().downcast_ref::<TmpInode>().ok_or(Errno::EINVAL)?;
        d.add_node(name, mode, rdev, Some(open)).map(|_| ())
    }
}

/// Open the built-in character device `rdev` (ENXIO for any other).
pub fn open_builtin(rdev: u64, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
    let kind = match rdev {
        r if r == makedev(1, 3) => DevKind::Null,
        r if r == makedev(1, 5) => DevKind::Zero,
        r if r == makedev(1, 7) => DevKind::Full,
        r if r == makedev(1, 8) || r == makedev(1, 9) => DevKind::Random,
        _ => return Err(Errno::ENXIO),
    };
    Ok(Arc::new(CharDev { kind }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DevKind {
    Null,
    Zero,
    Full,
    Random,
}

/// An open null/zero/full/random device.
struct CharDev {
    kind: DevKind,
}

/// Fill `buf` from the host's getrandom(2).
fn fill_random(buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: the pointer and length describe `rest`, a live, writable slice.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = crate::util::last_errno();
            if e == Errno::EINTR {
                continue;
            }
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        if n == 0 {
            break;
        }
        done += n as usize;
    }
    Ok(done)
}

impl FileOps for CharDev {
    fn read(&self, _ctx: &IoCtx, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        match self.kind {
            DevKind::Null => Ok(0),
            DevKind::Zero | DevKind::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            DevKind::Random => fill_random(buf),
        }
    }

    fn write(&self, _ctx: &IoCtx, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        match self.kind {
            DevKind::Full => Err(Errno::ENOSPC),
            _ => Ok(buf.len()),
        }
    }

    fn pinned_offset(&self) -> bool {
        self.kind != DevKind::Random
    }

    fn discards_writes(&self) -> bool {
        self.kind == DevKind::Null
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::Interrupt;
    use abi::flags::{O_RDONLY, O_RDWR, S_IFDIR, S_IFLNK, S_IFMT};

    fn ctx(irq: &Interrupt) -> IoCtx<'_> {
        IoCtx { flags: 0, interrupt: irq }
    }

    #[test]
    fn devices() {
        let irq = Interrupt::default();
        let dev = DevFs::new_root();
        for (name, major, minor) in
            [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9)]
        {
            let st = dev.lookup(name.as_bytes()).unwrap().stat().unwrap();
            assert_eq!(st.st_mode, S_IFCHR | 0o666, "{name}");
            assert_eq!(st.st_rdev, makedev(major, minor), "{name}");
        }
        let mut b = [7u8; 64];
        let null = dev.lookup(b"null").unwrap().open(O_RDWR).unwrap();
        assert_eq!(null.read(&ctx(&irq), &mut b, 0), Ok(0));
        assert_eq!(null.write(&ctx(&irq), b"abc", 0), Ok(3));
        let zero = dev.lookup(b"zero").unwrap().open(O_RDWR).unwrap();
        assert_eq!(zero.read(&ctx(&irq), &mut b, 0), Ok(64));
        assert!(b.iter().all(|&x| x == 0));
        let full = dev.lookup(b"full").unwrap().open(O_RDWR).unwrap();
        assert_eq!(full.write(&ctx(&irq), b"abc", 0), Err(Errno::ENOSPC));
        let ur = dev.lookup(b"urandom").unwrap().open(O_RDONLY).unwrap();
        let mut r1 = [0u8; 32];
        let mut r2 = [0u8; 32];
        assert_eq!(ur.read(&ctx(&irq), &mut r1, 0), Ok(32));
        assert_eq!(ur.read(&ctx(&irq), &mut r2, 0), Ok(32));
        assert_ne!(r1, r2);
        assert_eq!(dev.lookup(b"tty").unwrap().open(O_RDWR).err(), Some(Errno::ENXIO));
        let fd = dev.lookup(b"stdout").unwrap();
        assert_eq!(fd.stat().unwrap().st_mode & S_IFMT, S_IFLNK);
        assert_eq!(fd.readlink().unwrap(), b"/proc/self/fd/1");
        assert_eq!(dev.lookup(b"fd").unwrap().readlink().unwrap(), b"/proc/self/fd");
        let shm = dev.lookup(b"shm").unwrap().stat().unwrap();
        assert_eq!(shm.st_mode, S_IFDIR | 0o1777);
        assert!(dev.lookup(b"pts").is_ok());
    }

    #[test]
    fn add_file_replaces() {
        let irq = Interrupt::default();
        let dev = DevFs::new_root();
        let open: DevOpener = Arc::new(|_flags| open_builtin(makedev(1, 5), 0));
        DevFs::add_file(&dev, b"tty", 0o620, makedev(5, 0), open).unwrap();
        let tty = dev.lookup(b"tty").unwrap();
        assert_eq!(tty.stat().unwrap().st_mode, S_IFCHR | 0o620);
        let mut b = [1u8; 4];
        assert_eq!(tty.open(O_RDWR).unwrap().read(&ctx(&irq), &mut b, 0), Ok(4));
        let pts = dev.lookup(b"pts").unwrap();
        let open: DevOpener = Arc::new(|_flags| Err(Errno::EIO));
        DevFs::add_file(&pts, b"0", 0o600, makedev(136, 0), open).unwrap();
        assert_eq!(pts.lookup(b"0").unwrap().open(O_RDWR).err(), Some(Errno::EIO));
        let open: DevOpener = Arc::new(|_flags| Err(Errno::EIO));
        assert_eq!(DevFs::add_file(&dev, b"pts", 0o600, 0, open), Err(Errno::EISDIR));
    }
}
