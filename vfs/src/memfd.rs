//! memfd_create(2) files: a tmpfs file that was never linked anywhere,
//! with the file seals of fcntl(F_ADD_SEALS/F_GET_SEALS).
//!
//! Every memfd lives in one tmpfs instance of its own that no mount
//! shows; its dentry hangs, unlisted, under that instance's root, named
//! "memfd:NAME (deleted)", so /proc/[pid]/fd shows what Linux shows.
//! [`MemfdInode`] wraps the tmpfs node to enforce the seals on every path
//! that changes the file: writes (any syscall, through [`MemfdFile`]) and
//! size changes (truncate, fallocate: `setattr`). Mappings are checked by
//! the caller of mmap ([`MemfdInode::may_map_writable`]), which also
//! answers whether a writable shared mapping exists (EBUSY for
//! F_SEAL_WRITE) since only the memory manager knows.

use crate::inode::{FileOps, Inode, InodeRef, SetAttr};
use crate::mount::{Dentry, DentryRef, MountFlags, MountNamespace};
use crate::wait::IoCtx;
use crate::Creds;
use abi::flags::{O_APPEND, S_IFREG};
use abi::{Errno, Stat, Statfs};
use std::any::Any;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub const F_SEAL_SEAL: u32 = 0x1;
pub const F_SEAL_SHRINK: u32 = 0x2;
pub const F_SEAL_GROW: u32 = 0x4;
pub const F_SEAL_WRITE: u32 = 0x8;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
pub const F_SEAL_EXEC: u32 = 0x20;
const F_ALL_SEALS: u32 = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

/// Linux's MFD_NAME_MAX_LEN: NAME_MAX minus "memfd:".
pub const MEMFD_NAME_MAX: usize = 249;

/// The hidden tmpfs every memfd is made in.
fn home() -> &'static DentryRef {
    static HOME: OnceLock<Arc<MountNamespace>> = OnceLock::new();
    let ns = HOME.get_or_init(|| {
        let root = crate::tmpfs::TmpFs::new_root(0o1777, 0, 0);
        MountNamespace::new("tmpfs", "memfd", root, MountFlags::default())
    });
    static ROOT: OnceLock<DentryRef> = OnceLock::new();
    ROOT.get_or_init(|| ns.root())
}

/// A new memfd called `name` (the guest's name, without "memfd:"), owned
/// by `creds`, mode 0777 as Linux makes them (0666 with `noexec`).
/// `sealable`: MFD_ALLOW_SEALING; without it the file carries F_SEAL_SEAL.
pub fn create(name: &[u8], creds: &Creds, sealable: bool, noexec: bool) -> Result<DentryRef, Errno> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let root = home();
    let tmp_name = format!("m{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let mode = if noexec { 0o666 } else { 0o777 };
    let inner = root.inode.create(tmp_name.as_bytes(), S_IFREG | mode, creds)?;
    root.inode.unlink(tmp_name.as_bytes())?;
    let seals = match (sealable || noexec, noexec) {
        (false, _) => F_SEAL_SEAL,
        (true, true) => F_SEAL_EXEC,
        (true, false) => 0,
    };
    let node: InodeRef = Arc::new(MemfdInode { inner, seals: Arc::new(AtomicU32::new(seals)) });
    let mut shown = b"memfd:".to_vec();
    shown.extend_from_slice(name);
    shown.extend_from_slice(b" (deleted)");
    Ok(Dentry::unlisted(root, &shown, node))
}

/// The memfd behind `inode`, if it is one.
pub fn of(inode: &InodeRef) -> Option<&MemfdInode> {
    inode.as_any().downcast_ref::<MemfdInode>()
}

pub struct MemfdInode {
    inner: InodeRef,
    seals: Arc<AtomicU32>,
}

impl MemfdInode {
    pub fn seals(&self) -> u32 {
        self.seals.load(Ordering::Acquire)
    }

    /// F_ADD_SEALS on a descriptor that is `writable`; `mapped_writable`
    /// says whether a writable shared mapping of the file exists.
    pub fn add_seals(&self, add: u32, writable: bool, mapped_writable: impl FnOnce() -> bool) -> Result<(), Errno> {
        if !writable {
            return Err(Errno::EPERM);
        }
        if add & !F_ALL_SEALS != 0 {
            return Err(Errno::EINVAL);
        }
        let mut add = add;
        let now = self.seals();
        if now & F_SEAL_SEAL != 0 {
            return Err(Errno::EPERM);
        }
        if add & F_SEAL_WRITE != 0 && now & F_SEAL_WRITE == 0 && mapped_writable() {
            return Err(Errno::EBUSY);
        }
        // F_SEAL_EXEC on a file without exec bits freezes its contents too.
        if add & F_SEAL_EXEC != 0 && self.inner.stat().is_ok_and(|st| st.st_mode & 0o111 == 0) {
            add |= F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
        }
        self.seals.fetch_or(add, Ordering::AcqRel);
        Ok(())
    }

    /// Whether a MAP_SHARED mapping may be writable (EPERM once sealed
    /// against writes).
    pub fn may_map_writable(&self) -> Result<(), Errno> {
        if self.seals() & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.inner.stat().map(|st| st.st_size.max(0) as u64).unwrap_or(0)
    }
}

impl Inode for MemfdInode {
    fn stat(&self) -> Result<Stat, Errno> {
        self.inner.stat()
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        self.inner.statfs()
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        let seals = self.seals();
        if let Some(size) = attr.size {
            let now = self.size();
            if (size < now && seals & F_SEAL_SHRINK != 0) || (size > now && seals & F_SEAL_GROW != 0) {
                return Err(Errno::EPERM);
            }
        }
        if let (Some(mode), true) = (attr.mode, seals & F_SEAL_EXEC != 0) {
            let old = self.inner.stat()?.st_mode;
            if (mode ^ old) & 0o111 != 0 {
                return Err(Errno::EPERM);
            }
        }
        self.inner.setattr(attr)
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Ok(Arc::new(MemfdFile { inner: self.inner.open(flags)?, seals: self.seals.clone() }))
    }

    fn same_node(&self, other: &dyn Inode) -> bool {
        other.as_any().downcast_ref::<MemfdInode>().is_some_and(|o| std::ptr::eq(o, self))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open memfd: the tmpfs file's operations behind the seal checks.
pub struct MemfdFile {
    inner: Arc<dyn FileOps>,
    seals: Arc<AtomicU32>,
}

impl FileOps for MemfdFile {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        self.inner.read(ctx, buf, off)
    }

    fn write(&self, ctx: &IoCtx, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let seals = self.seals.load(Ordering::Acquire);
        if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        if seals & F_SEAL_GROW != 0 && !buf.is_empty() {
            let size = self.inner.size()?;
            let at = if ctx.flags & O_APPEND != 0 { size } else { off };
            if at.saturating_add(buf.len() as u64) > size {
                return Err(Errno::EPERM);
            }
        }
        self.inner.write(ctx, buf, off)
    }

    fn size(&self) -> Result<u64, Errno> {
        self.inner.size()
    }

    fn fsync(&self) -> Result<(), Errno> {
        self.inner.fsync()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::Interrupt;

    fn ctx(irq: &Interrupt) -> IoCtx<'_> {
        IoCtx { flags: 0, interrupt: irq }
    }

    #[test]
    fn seals_refuse_what_they_seal() {
        let irq = Interrupt::default();
        let creds = Creds::new(0, 0, Vec::new());
        let d = create(b"t", &creds, true, false).unwrap();
        assert_eq!(d.path(), b"/memfd:t (deleted)".to_vec());
        let m = of(&d.inode).unwrap();
        let f = d.inode.open(abi::flags::O_RDWR).unwrap();
        assert_eq!(f.write(&ctx(&irq), b"abcd", 0), Ok(4));
        assert_eq!(m.add_seals(F_SEAL_GROW, false, || false), Err(Errno::EPERM));
        assert_eq!(m.add_seals(0x1000, true, || false), Err(Errno::EINVAL));
        assert_eq!(m.add_seals(F_SEAL_WRITE, true, || true), Err(Errno::EBUSY));
        m.add_seals(F_SEAL_GROW | F_SEAL_SHRINK, true, || false).unwrap();
        assert_eq!(f.write(&ctx(&irq), b"xy", 3), Err(Errno::EPERM));
        assert_eq!(f.write(&ctx(&irq), b"xy", 1), Ok(2));
        assert_eq!(d.inode.setattr(&SetAttr { size: Some(2), ..Default::default() }), Err(Errno::EPERM));
        assert_eq!(d.inode.setattr(&SetAttr { size: Some(9), ..Default::default() }), Err(Errno::EPERM));
        m.add_seals(F_SEAL_WRITE | F_SEAL_SEAL, true, || false).unwrap();
        assert_eq!(f.write(&ctx(&irq), b"x", 0), Err(Errno::EPERM));
        assert_eq!(m.may_map_writable(), Err(Errno::EPERM));
        assert_eq!(m.add_seals(F_SEAL_EXEC, true, || false), Err(Errno::EPERM));
        let unsealable = create(b"u", &creds, false, false).unwrap();
        assert_eq!(of(&unsealable.inode).unwrap().seals(), F_SEAL_SEAL);
    }
}
