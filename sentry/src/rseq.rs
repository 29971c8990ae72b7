//! Restartable sequences: a thread's registered `struct rseq`, its CPU
//! fields, and aborting a critical section.
//!
//! What is served: registration with Linux's checks, `cpu_id_start`,
//! `cpu_id`, `node_id` and `mm_cid` written at registration (the task's
//! virtual CPU, the one getcpu reports), and a critical section aborted
//! to its abort handler (with Linux's validation, SIGSEGV on a bad
//! descriptor or signature) whenever the Sentry delivers a signal to the
//! thread or takes it out of guest code by an interrupt: gVisor's model,
//! checked at the Sentry's returns to the guest. What cannot be: the host
//! preempting or migrating a stub thread is invisible to the Sentry, and
//! every thread reports the same virtual CPU, so two threads may run one
//! CPU's critical section at once. Per-CPU data guarded by rseq alone is
//! therefore not safe here (as in gVisor); glibc's own use, the CPU
//! number for sched_getcpu, is.

use crate::table::UserAddr;
use crate::task::Task;
use abi::Errno;

/// A thread's registration (sys_rseq's arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RseqArea {
    pub addr: u64,
    pub len: u32,
    pub sig: u32,
}

/// `cpu_id` of a registered area the kernel has not updated yet, and of
/// an unregistered one.
pub const RSEQ_CPU_ID_UNINITIALIZED: i32 = -1;

/// The CPU every task reports (what getcpu and sched_getcpu say): the
/// first of the sandbox's affinity mask, so it is one the task may run on.
pub fn virtual_cpu() -> u32 {
    crate::hostfacts::affinity().trailing_zeros().min(63)
}

/// Offsets in `struct rseq`.
const CPU_ID_START: u64 = 0;
const CPU_ID: u64 = 4;
const RSEQ_CS: u64 = 8;
const FLAGS: u64 = 16;
const NODE_ID: u64 = 20;
const MM_CID: u64 = 24;

/// `struct rseq_cs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct RseqCs {
    version: u32,
    flags: u32,
    start_ip: u64,
    post_commit_offset: u64,
    abort_ip: u64,
}
// SAFETY: repr(C), four u32/u64 fields with no padding (32 bytes).
unsafe impl abi::Pod for RseqCs {}

impl Task {
    /// Linux's force_sigsegv for a bad rseq area or descriptor.
    pub fn force_sigsegv(&mut self) {
        let info = abi::SigInfo { signo: abi::signal::SIGSEGV, code: 0x80, ..Default::default() };
        self.deliver_fault(info);
    }

    /// Write the CPU fields of the registered area (or reset them, for
    /// unregistration).
    pub fn rseq_write_cpu(&self, area: &RseqArea, registered: bool) -> Result<(), Errno> {
        let (start, cpu) =
            if registered { (virtual_cpu(), virtual_cpu() as i32) } else { (0, RSEQ_CPU_ID_UNINITIALIZED) };
        let base = UserAddr(area.addr);
        self.write_obj(base.offset(CPU_ID_START)?, &start)?;
        self.write_obj(base.offset(CPU_ID)?, &cpu)?;
        self.write_obj(base.offset(NODE_ID)?, &0u32)?;
        self.write_obj(base.offset(MM_CID)?, &0u32)?;
        Ok(())
    }

    /// The thread leaves guest code for a signal or an interrupt: if it
    /// is inside its registered critical section, continue it at the
    /// abort handler (Linux's rseq_ip_fixup). Err: the area or the
    /// descriptor is bad, and the thread gets SIGSEGV.
    pub fn rseq_preempted(&mut self) -> Result<(), Errno> {
        let Some(area) = self.rseq else { return Ok(()) };
        let cs_ptr: u64 = self.read_obj(UserAddr(area.addr).offset(RSEQ_CS)?)?;
        if cs_ptr == 0 {
            return Ok(());
        }
        let top = self.mm().top();
        if cs_ptr >= top {
            return Err(Errno::EINVAL);
        }
        let cs: RseqCs = self.read_obj(UserAddr(cs_ptr))?;
        let end = cs.start_ip.checked_add(cs.post_commit_offset).ok_or(Errno::EINVAL)?;
        if cs.version > 0 || cs.start_ip >= top || end >= top || cs.abort_ip >= top {
            return Err(Errno::EINVAL);
        }
        // The abort handler must lie outside the section.
        if cs.abort_ip.wrapping_sub(cs.start_ip) < cs.post_commit_offset {
            return Err(Errno::EINVAL);
        }
        let sig: u32 = self.read_obj(UserAddr(cs.abort_ip.checked_sub(4).ok_or(Errno::EINVAL)?))?;
        if sig != area.sig {
            return Err(Errno::EINVAL);
        }
        let inside = self.regs.rip.wrapping_sub(cs.start_ip) < cs.post_commit_offset;
        if inside {
            // The deprecated NO_RESTART flags, and any other, are refused
            // (Linux's rseq_warn_flags) in the area and the descriptor.
            let area_flags: u32 = self.read_obj(UserAddr(area.addr).offset(FLAGS)?)?;
            if area_flags != 0 || cs.flags != 0 {
                return Err(Errno::EINVAL);
            }
        }
        // Cleared whether or not the thread was inside (Linux clears a
        // stale descriptor lazily the same way).
        self.write_obj(UserAddr(area.addr).offset(RSEQ_CS)?, &0u64)?;
        if inside {
            self.regs.rip = cs.abort_ip;
        }
        Ok(())
    }
}
