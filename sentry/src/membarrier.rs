//! The host side of the guest's membarrier(2).
//!
//! Guest threads run in stub processes on host CPUs the Sentry does not
//! see, so a barrier over them must come from the host kernel. At boot,
//! before any stub exists, the Sentry registers for
//! MEMBARRIER_CMD_GLOBAL_EXPEDITED; the registration lives in the
//! address space and is inherited by fork, so the systrap forker, every
//! stub, and the ptrace stubs carry it. A guest barrier is then one host
//! membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED): an IPI to every CPU
//! running a registered process (a superset of the guest's threads),
//! microseconds rather than the milliseconds of MEMBARRIER_CMD_GLOBAL
//! (synchronize_rcu), which is the fallback. Guest threads inside the
//! Sentry need nothing: they reach guest code again only through host
//! syscalls and futex wake-ups, which are full barriers, and both
//! platforms resume guest code through IRET (rt_sigreturn, a ptrace
//! stop), which is core-serialising as SYNC_CORE asks.

use std::sync::atomic::{AtomicBool, Ordering};

const MEMBARRIER_CMD_GLOBAL: i64 = 1;
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: i64 = 2;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: i64 = 4;

static EXPEDITED: AtomicBool = AtomicBool::new(false);

fn host_membarrier(cmd: i64) -> bool {
    // SAFETY: membarrier takes no pointers; flags 0 and cpu_id 0.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) == 0 }
}

/// Register this process (and every process it forks from now on) for
/// expedited global barriers. Called once at boot, before the platform
/// creates a stub.
pub fn register_host() {
    let ok = host_membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
    EXPEDITED.store(ok, Ordering::Release);
    if !ok {
        tracing::debug!("membarrier: no expedited global barrier on this host; guest barriers will be slower");
    }
}

/// A full memory barrier on every CPU that runs a guest thread.
pub fn host_barrier() {
    if EXPEDITED.load(Ordering::Acquire) && host_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) {
        return;
    }
    if !host_membarrier(MEMBARRIER_CMD_GLOBAL) {
        // No host barrier at all (nohz_full, or a filter): at least this
        // CPU's. Not reached on the hosts runsc-lite supports.
        std::sync::atomic::fence(Ordering::SeqCst);
    }
}
