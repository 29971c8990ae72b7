//! memfd_create(2) and the seal commands of fcntl(2). The files and the
//! seal rules are vfs::memfd's; here are the guest's arguments and the
//! one question only the memory managers can answer (is a writable shared
//! mapping of the file still there?).

use abi::flags::*;
use abi::Errno;
use sentry::mm::VmaName;
use sentry::table::{Flags, UserAddr};
use sentry::{SysResult, Task};
use vfs::memfd::MEMFD_NAME_MAX;
use vfs::OpenFile;

const MFD_CLOEXEC: u32 = 0x1;
const MFD_ALLOW_SEALING: u32 = 0x2;
const MFD_HUGETLB: u32 = 0x4;
const MFD_NOEXEC_SEAL: u32 = 0x8;
const MFD_EXEC: u32 = 0x10;
const MFD_ALL: u32 = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
/// The huge page size encoding MFD_HUGETLB allows (bits 26..31).
const MFD_HUGE_BITS: u32 = 0x3f << 26;

pub fn memfd_create(task: &mut Task, name: UserAddr, flags: Flags) -> SysResult {
    let flags = flags.0 as u32;
    let allowed = if flags & MFD_HUGETLB != 0 { MFD_ALL | MFD_HUGE_BITS } else { MFD_ALL };
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0 {
        return Err(Errno::EINVAL);
    }
    // strnlen_user(name, MFD_NAME_MAX + 1): EFAULT unreadable, EINVAL
    // when no NUL comes within the limit.
    let name = match task.mm().read_cstr(name.0, MEMFD_NAME_MAX + 1) {
        Ok(n) => n,
        Err(Errno::ENAMETOOLONG) => return Err(Errno::EINVAL),
        Err(e) => return Err(e),
    };
    if flags & MFD_HUGETLB != 0 {
        // No huge pages behind the memory file: refused as by a kernel
        // whose hugetlbfs has none of the size asked for.
        return Err(Errno::EINVAL);
    }
    let d = vfs::memfd::create(&name, &task.creds(), flags & MFD_ALLOW_SEALING != 0, flags & MFD_NOEXEC_SEAL != 0)?;
    let ops = d.inode.open(O_RDWR)?;
    let f = OpenFile::new(ops, Some(d), O_RDWR | O_LARGEFILE);
    crate::fs::install(task, f, flags & MFD_CLOEXEC != 0)
}

/// Whether any address space of the sandbox maps file `(dev, ino)`
/// shared through a writable descriptor: writable now or, by mprotect,
/// later (Linux 6.7+ counts VM_SHARED|VM_MAYWRITE mappings).
fn mapped_writable(task: &Task, dev: u64, ino: u64) -> bool {
    task.kernel.groups().iter().any(|tg| {
        let mm = sentry::locking::lock(&tg.mm).clone();
        mm.is_some_and(|mm| {
            mm.vmas().iter().any(|v| {
                v.file.as_ref().is_some_and(|b| b.writer.is_some())
                    && matches!(&v.name, VmaName::File { dev: d, ino: i, .. } if *d == dev && *i == ino)
            })
        })
    })
}

/// F_ADD_SEALS and F_GET_SEALS: EINVAL on anything but a memfd.
pub fn fcntl_seals(task: &Task, f: &OpenFile, cmd: u32, arg: u64) -> SysResult {
    let d = f.dentry.as_ref().ok_or(Errno::EINVAL)?;
    let m = vfs::memfd::of(&d.inode).ok_or(Errno::EINVAL)?;
    if cmd == F_GET_SEALS {
        return Ok(u64::from(m.seals()));
    }
    let add = u32::try_from(arg).map_err(|_| Errno::EINVAL)?;
    let st = d.inode.stat()?;
    m.add_seals(add, f.writable(), || mapped_writable(task, st.st_dev, st.st_ino))?;
    Ok(0)
}

/// mmap's check: a shared writable mapping of a memfd sealed against
/// writes is EPERM.
pub fn check_map(f: &OpenFile, shared: bool, write: bool) -> Result<(), Errno> {
    if !(shared && write) {
        return Ok(());
    }
    match f.dentry.as_ref().and_then(|d| vfs::memfd::of(&d.inode)) {
        Some(m) => m.may_map_writable(),
        None => Ok(()),
    }
}
