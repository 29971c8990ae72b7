//! rseq(2) and membarrier(2): the calls about what other threads see of
//! this one's memory and CPU. The state and the host side live in
//! sentry/src/rseq.rs and sentry/src/membarrier.rs.

use abi::Errno;
use sentry::rseq::RseqArea;
use sentry::table::UserAddr;
use sentry::{SysResult, Task};
use std::sync::atomic::Ordering;

const RSEQ_FLAG_UNREGISTER: u32 = 1;
/// The size of the first `struct rseq`, and its alignment then.
const ORIG_RSEQ_SIZE: u32 = 32;
/// `__alignof__(struct rseq)`.
const RSEQ_ALIGN: u64 = 32;

/// rseq(2), with Linux's checks in Linux's order.
pub fn rseq(task: &mut Task, addr: UserAddr, len: u32, flags: u32, sig: u32) -> SysResult {
    if flags & RSEQ_FLAG_UNREGISTER != 0 {
        if flags & !RSEQ_FLAG_UNREGISTER != 0 {
            return Err(Errno::EINVAL);
        }
        let cur = task.rseq.filter(|r| r.addr == addr.0).ok_or(Errno::EINVAL)?;
        if cur.len != len {
            return Err(Errno::EINVAL);
        }
        if cur.sig != sig {
            return Err(Errno::EPERM);
        }
        task.rseq_write_cpu(&cur, false)?;
        task.rseq = None;
        return Ok(0);
    }
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    if let Some(cur) = task.rseq {
        if cur.addr != addr.0 || cur.len != len {
            return Err(Errno::EINVAL);
        }
        if cur.sig != sig {
            return Err(Errno::EPERM);
        }
        return Err(Errno::EBUSY);
    }
    if len < ORIG_RSEQ_SIZE || !addr.0.is_multiple_of(RSEQ_ALIGN) {
        return Err(Errno::EINVAL);
    }
    if addr.0.checked_add(u64::from(len)).is_none_or(|end| end > task.mm().top()) {
        return Err(Errno::EFAULT);
    }
    let area = RseqArea { addr: addr.0, len, sig };
    task.rseq = Some(area);
    // Linux fills the fields on the way back to the thread and kills it
    // with SIGSEGV if it cannot.
    if task.rseq_write_cpu(&area, true).is_err() {
        task.force_sigsegv();
    }
    Ok(0)
}

const MEMBARRIER_CMD_QUERY: i32 = 0;
const MEMBARRIER_CMD_GLOBAL: i32 = 1;
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: i32 = 1 << 1;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: i32 = 1 << 2;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: i32 = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: i32 = 1 << 4;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 1 << 5;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 1 << 6;
const MEMBARRIER_CMD_GET_REGISTRATIONS: i32 = 1 << 9;

/// What QUERY reports. The RSEQ pair (restarting every thread's critical
/// section) is not served: EINVAL, as on a kernel without it.
const SUPPORTED: i32 = MEMBARRIER_CMD_GLOBAL
    | MEMBARRIER_CMD_GLOBAL_EXPEDITED
    | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
    | MEMBARRIER_CMD_PRIVATE_EXPEDITED
    | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
    | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE
    | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE
    | MEMBARRIER_CMD_GET_REGISTRATIONS;

/// membarrier(2). Every barrier command is one host barrier over all the
/// sandbox's stubs (sentry/src/membarrier.rs); the private commands need
/// their registration first (EPERM), as Linux's.
pub fn membarrier(task: &mut Task, cmd: i32, flags: u32, _cpu_id: i32) -> SysResult {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let mm = task.mm().clone();
    let registered = mm.membarrier.load(Ordering::Acquire);
    let register = |bit: i32| {
        mm.membarrier.fetch_or(bit as u32, Ordering::AcqRel);
        Ok(0)
    };
    match cmd {
        MEMBARRIER_CMD_QUERY => Ok(SUPPORTED as u64),
        MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_GLOBAL_EXPEDITED => {
            sentry::membarrier::host_barrier();
            Ok(0)
        }
        MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE => {
            // Each command needs its own registration.
            if registered & (cmd << 1) as u32 == 0 {
                return Err(Errno::EPERM);
            }
            sentry::membarrier::host_barrier();
            Ok(0)
        }
        MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => register(cmd),
        MEMBARRIER_CMD_GET_REGISTRATIONS => Ok(u64::from(registered)),
        _ => Err(Errno::EINVAL),
    }
}
