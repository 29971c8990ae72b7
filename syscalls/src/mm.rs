//! Memory syscalls: mmap, munmap, mprotect, mremap, brk, msync (madvise,
//! mincore and the mlock family are in advice.rs).

use abi::flags::*;
use abi::{page_up, Errno, PAGE_SIZE};
use platform::Prot;
use sentry::mm::VmaName;
use sentry::sharedfile::FileBacking;
use sentry::table::{Fd, Flags, UserAddr};
use sentry::{SysResult, Task};
use vfs::IoCtx;

fn prot_of(p: u32) -> Result<Prot, Errno> {
    if p & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP) != 0 {
        return Err(Errno::EINVAL);
    }
    // x86: write and exec imply read.
    let mut prot = Prot::from_bits(p);
    if prot.write || prot.exec {
        prot.read = true;
    }
    Ok(prot)
}

/// Private writable file mappings up to this size (data segments, which
/// the dynamic linker writes at once) are copied from the file cache when
/// mapped: cheaper than the copy-on-write faults that would follow.
const LAZY_FILE_COPY_MIN: u64 = 256 << 10;

pub fn mmap(task: &mut Task, addr: UserAddr, len: u64, prot: u32, flags: Flags, fd: Fd, off: u64) -> SysResult {
    let start = map(task, addr, len, prot, flags, fd, off)?;
    if flags.0 as u32 & MAP_LOCKED != 0 {
        // Counted as mlock'ed (VmLck); pages are never swapped anyway.
        let end = page_up(len).and_then(|l| start.checked_add(l)).ok_or(Errno::ENOMEM)?;
        task.mm().set_locked(start, end, true)?;
    }
    Ok(start)
}

fn map(task: &mut Task, addr: UserAddr, len: u64, prot: u32, flags: Flags, fd: Fd, off: u64) -> SysResult {
    let flags = flags.0 as u32;
    let prot = prot_of(prot)?;
    if len == 0 || !off.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let kind = flags & MAP_TYPE;
    if kind != MAP_SHARED && kind != MAP_PRIVATE {
        return Err(Errno::EINVAL);
    }
    let shared = kind == MAP_SHARED;
    let noreplace = flags & MAP_FIXED_NOREPLACE != 0;
    let fixed = flags & MAP_FIXED != 0 || noreplace;
    if fixed && !addr.0.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let mm = task.mm().clone();
    if noreplace && !mm.range_is_free(addr.0, len) {
        return Err(Errno::EEXIST);
    }
    if flags & MAP_ANONYMOUS != 0 {
        let name = if flags & MAP_GROWSDOWN != 0 { VmaName::Stack } else { VmaName::Anon };
        // Pages asked for now are mapped now; others on first touch.
        if !shared && flags & (abi::flags::MAP_POPULATE | abi::flags::MAP_LOCKED) == 0 {
            return mm.map_anon_lazy(addr.0, len, prot, fixed, name);
        }
        return mm.map_anon(addr.0, len, prot, shared, fixed, name);
    }
    let f = task.file(fd.0)?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    if !f.readable() {
        return Err(Errno::EACCES);
    }
    if shared && prot.write && !f.writable() {
        return Err(Errno::EACCES);
    }
    crate::memfd::check_map(&f, shared, prot.write)?;
    let d = f.dentry.clone().ok_or(Errno::ENODEV)?;
    let st = d.inode.stat()?;
    match st.st_mode & S_IFMT {
        S_IFREG => {}
        // /dev/zero maps as anonymous memory.
        S_IFCHR if st.st_rdev == (1 << 8 | 5) => return mm.map_anon(addr.0, len, prot, shared, fixed, VmaName::Anon),
        _ => return Err(Errno::ENODEV),
    }
    if d.mount.flags.noexec && prot.exec {
        return Err(Errno::EPERM);
    }
    off.checked_add(len).ok_or(Errno::EOVERFLOW)?;
    let size = f.ops.size()?;
    let avail = size.saturating_sub(off).min(len);
    let in_file = abi::page_up(avail).ok_or(Errno::ENOMEM)?;
    let name = VmaName::File { path: d.path(), dev: st.st_dev, ino: st.st_ino, offset: off };
    let ctx = IoCtx { flags: O_RDONLY, interrupt: &task.interrupt };
    let read = |buf: &mut [u8], o: u64| f.ops.read(&ctx, buf, o);
    // MAP_SHARED, or private while the file has shared pages: the mapping
    // is made of the file's shared pages (copied on write when private).
    let shared_pages = if shared {
        Some(task.kernel.shared_files.get(mm.memfile(), st.st_dev, st.st_ino))
    } else {
        task.kernel.shared_files.lookup(st.st_dev, st.st_ino)
    };
    // Each branch places the whole mapping with lazy memory (no platform
    // call: the file's pages laid over it next are the first), the part
    // past the end of the file is then marked as such.
    if let Some(sf) = shared_pages {
        let start = mm.map_anon_lazy(addr.0, len, prot, fixed, name.clone())?;
        // A write-sealed memfd's mapping can never become writable (no
        // VM_MAYWRITE): mprotect refuses it, as for a read-only descriptor.
        let may_write = f.writable() && crate::memfd::check_map(&f, true, true).is_ok();
        let backing = FileBacking { file: sf.clone(), writer: may_write.then(|| f.clone()) };
        let placed = sf.pieces(off, in_file, read).and_then(|pieces| {
            for p in pieces {
                let at = start + (p.file_off - off);
                let name = VmaName::File { path: d.path(), dev: st.st_dev, ino: st.st_ino, offset: p.file_off };
                if shared {
                    mm.map_file_shared(at, p.len, prot, p.mem, p.mem_off, name, backing.clone())?;
                } else if prot.write {
                    mm.map_cached_writable(at, p.len, prot, true, p.mem, p.mem_off, name)?;
                } else {
                    mm.map_cached(at, p.len, prot, true, p.mem, p.mem_off, name)?;
                }
            }
            Ok(())
        });
        if let Err(e) = placed {
            let _ = mm.unmap(start, len);
            return Err(e);
        }
        if in_file < len {
            mm.mark_past_eof(start + in_file, len - in_file)?;
        }
        return Ok(start);
    }
    let cache = task.kernel.file_cache.get(mm.memfile(), &st, f.ops.host_fd(), read)?;
    let start = match cache {
        // All of it inside the file: the cached pages alone, placed as asked.
        Some(c) if !prot.write && in_file == len && off.checked_add(in_file).is_some_and(|e| e <= c.len) => {
            let start = mm.map_cached(addr.0, len, prot, fixed, c.clone(), off, name)?;
            mm.set_origin(start, in_file, &c, off);
            start
        }
        Some(c)
            if in_file == len
                && in_file > LAZY_FILE_COPY_MIN
                && off.checked_add(in_file).is_some_and(|e| e <= c.len) =>
        {
            let start = mm.map_cached_writable(addr.0, len, prot, fixed, c.clone(), off, name)?;
            mm.set_origin(start, in_file, &c, off);
            start
        }
        Some(c) if !prot.write && in_file > 0 && off.checked_add(in_file).is_some_and(|e| e <= c.len) => {
            // Place the whole mapping with fresh memory first, then lay the
            // cached pages over the part inside the file.
            let start = mm.map_anon_lazy(addr.0, len, prot, fixed, name.clone())?;
            mm.map_cached(start, in_file, prot, true, c.clone(), off, name)?;
            mm.set_origin(start, in_file, &c, off);
            start
        }
        Some(c) if in_file > LAZY_FILE_COPY_MIN && off.checked_add(in_file).is_some_and(|e| e <= c.len) => {
            // Writable and large: the cached pages copy-on-write, copied
            // a chunk at a time when written.
            let start = mm.map_anon_lazy(addr.0, len, prot, fixed, name.clone())?;
            mm.map_cached_writable(start, in_file, prot, true, c.clone(), off, name)?;
            mm.set_origin(start, in_file, &c, off);
            start
        }
        Some(c) => {
            let mem = mm.memfile().alloc(len)?;
            if avail > 0 {
                mm.memfile().copy_within(c.off + off, mem.off, avail)?;
            }
            let start = mm.map_range(addr.0, len, prot, false, fixed, mem, 0, name)?;
            if in_file > 0 && off.checked_add(in_file).is_some_and(|e| e <= c.len) {
                mm.set_origin(start, in_file, &c, off);
            }
            start
        }
        None => {
            // Not cacheable: copy the file's pages into fresh memory.
            let mem = mm.memfile().alloc(len)?;
            let mut buf = vec![0u8; (avail as usize).min(1 << 20)];
            let mut done = 0u64;
            while done < avail {
                let want = ((avail - done) as usize).min(buf.len());
                let n = read(&mut buf[..want], off + done)?;
                if n == 0 {
                    break;
                }
                mm.memfile().write(mem.off + done, &buf[..n])?;
                done += n as u64;
            }
            mm.map_range(addr.0, len, prot, false, fixed, mem, 0, name)?
        }
    };
    if in_file < len {
        mm.mark_past_eof(start + in_file, len - in_file)?;
    }
    Ok(start)
}

pub fn munmap(task: &mut Task, addr: UserAddr, len: u64) -> SysResult {
    task.mm().unmap(addr.0, len)?;
    Ok(0)
}

pub fn mprotect(task: &mut Task, addr: UserAddr, len: u64, prot: u32) -> SysResult {
    let p = prot_of(prot)?;
    task.mm().protect(addr.0, len, p)?;
    Ok(0)
}

pub fn mremap(
    task: &mut Task,
    old: UserAddr,
    old_len: u64,
    new_len: u64,
    flags: Flags,
    new_addr: UserAddr,
) -> SysResult {
    let flags = flags.0 as u32;
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    let dontunmap = flags & MREMAP_DONTUNMAP != 0;
    if dontunmap && (flags & MREMAP_MAYMOVE == 0 || old_len != new_len) {
        return Err(Errno::EINVAL);
    }
    let fixed = if flags & MREMAP_FIXED != 0 { Some(new_addr.0) } else { None };
    task.mm().remap(old.0, old_len, new_len, flags & MREMAP_MAYMOVE != 0, fixed, dontunmap)
}

pub fn brk(task: &mut Task, addr: UserAddr) -> SysResult {
    Ok(task.mm().brk(addr.0))
}

pub fn msync(task: &mut Task, addr: UserAddr, len: u64, flags: i32) -> SysResult {
    if !addr.0.is_multiple_of(PAGE_SIZE) || flags & !7 != 0 || (flags & 1 != 0 && flags & 4 != 0) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let end = addr.0.checked_add(len).ok_or(Errno::ENOMEM)?;
    // MS_INVALIDATE cannot drop locked pages.
    if flags & 2 != 0 && task.mm().locked_bytes(Some((addr.0, end))) > 0 {
        return Err(Errno::EBUSY);
    }
    // MS_ASYNC writes back too: there is no writeback thread to leave it to.
    task.mm().sync(addr.0, len)?;
    Ok(0)
}
