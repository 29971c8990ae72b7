//! madvise(2), mincore(2) and the mlock family: advice and residency on
//! the memory manager's mappings (sentry::mm::advice).
//!
//! Memory locks are bookkeeping: guest memory lives in the memory file,
//! which the host never swaps out differently for a locked range, so a
//! lock changes what VmLck and RLIMIT_MEMLOCK count and nothing else.

use abi::flags::*;
use abi::{page_down, page_up, Errno, PAGE_SIZE};
use sentry::mm::Advice;
use sentry::table::UserAddr;
use sentry::{SysResult, Task};

const MLOCK_ONFAULT: u32 = 1;

/// Pages mincore measures and copies out at a time.
const MINCORE_CHUNK: usize = 64 * 1024;

fn advice_of(advice: i32) -> Result<Advice, Errno> {
    Ok(match advice {
        MADV_DONTNEED => Advice::DontNeed,
        MADV_FREE => Advice::Free,
        MADV_REMOVE => Advice::Remove,
        MADV_DONTFORK => Advice::DontFork,
        MADV_DOFORK => Advice::DoFork,
        MADV_WIPEONFORK => Advice::WipeOnFork,
        MADV_KEEPONFORK => Advice::KeepOnFork,
        MADV_NORMAL..=MADV_WILLNEED | MADV_MERGEABLE..=MADV_DODUMP | MADV_COLD..=MADV_COLLAPSE => Advice::Nothing,
        _ => return Err(Errno::EINVAL),
    })
}

pub fn madvise(task: &mut Task, addr: UserAddr, len: u64, advice: i32) -> SysResult {
    // Poisoning pages needs CAP_SYS_ADMIN of the host.
    if matches!(advice, MADV_HWPOISON | MADV_SOFT_OFFLINE) {
        return Err(Errno::EPERM);
    }
    let advice = advice_of(advice)?;
    if !addr.0.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    let end = addr.0.checked_add(len).ok_or(Errno::EINVAL)?;
    if len == 0 {
        return Ok(0);
    }
    task.mm().advise(addr.0, end, advice)?;
    Ok(0)
}

pub fn mincore(task: &mut Task, addr: UserAddr, len: u64, vec: UserAddr) -> SysResult {
    if !addr.0.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    addr.0.checked_add(len).ok_or(Errno::ENOMEM)?;
    let pages = len / PAGE_SIZE;
    let mm = task.mm().clone();
    if pages > 0 && !mm.is_mapped(addr.0, len) {
        return Err(Errno::ENOMEM);
    }
    let mut buf = vec![0u8; (pages as usize).min(MINCORE_CHUNK)];
    let mut done = 0u64;
    while done < pages {
        let n = ((pages - done) as usize).min(buf.len());
        let part = &mut buf[..n];
        mm.residency(addr.0 + done * PAGE_SIZE, part)?;
        task.copy_out(vec.offset(done)?, part)?;
        done += n as u64;
    }
    Ok(0)
}

fn capable(task: &Task) -> bool {
    task.creds().euid == 0
}

/// Linux's can_do_mlock: privilege or a nonzero RLIMIT_MEMLOCK.
fn can_mlock(task: &Task) -> Result<u64, Errno> {
    let limit = task.tg.rlimit(RLIMIT_MEMLOCK).cur;
    if limit == 0 && !capable(task) {
        return Err(Errno::EPERM);
    }
    Ok(limit)
}

/// The page-aligned range an mlock-style call covers.
fn lock_range(addr: UserAddr, len: u64) -> Result<(u64, u64), Errno> {
    let start = page_down(addr.0);
    let len = page_up(len.checked_add(addr.0 - start).ok_or(Errno::ENOMEM)?).ok_or(Errno::ENOMEM)?;
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    Ok((start, end))
}

fn do_mlock(task: &mut Task, addr: UserAddr, len: u64) -> SysResult {
    let limit = can_mlock(task)?;
    let (start, end) = lock_range(addr, len)?;
    if start == end {
        return Ok(0);
    }
    let mm = task.mm().clone();
    if !capable(task) {
        let already = mm.locked_bytes(None);
        let inside = mm.locked_bytes(Some((start, end)));
        if already.saturating_add(end - start).saturating_sub(inside) > limit {
            return Err(Errno::ENOMEM);
        }
    }
    mm.set_locked(start, end, true)?;
    Ok(0)
}

pub fn mlock(task: &mut Task, addr: UserAddr, len: u64) -> SysResult {
    do_mlock(task, addr, len)
}

pub fn mlock2(task: &mut Task, addr: UserAddr, len: u64, flags: u32) -> SysResult {
    if flags & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    do_mlock(task, addr, len)
}

pub fn munlock(task: &mut Task, addr: UserAddr, len: u64) -> SysResult {
    let (start, end) = lock_range(addr, len)?;
    if start == end {
        return Ok(0);
    }
    task.mm().set_locked(start, end, false)?;
    Ok(0)
}

pub fn mlockall(task: &mut Task, flags: u32) -> SysResult {
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
        return Err(Errno::EINVAL);
    }
    let limit = can_mlock(task)?;
    let mm = task.mm().clone();
    if flags & MCL_CURRENT != 0 && !capable(task) && mm.mapped_bytes() > limit {
        return Err(Errno::ENOMEM);
    }
    mm.lock_all(flags & MCL_CURRENT != 0, flags & MCL_FUTURE != 0);
    Ok(0)
}

pub fn munlockall(task: &mut Task) -> SysResult {
    task.mm().unlock_all();
    Ok(0)
}
