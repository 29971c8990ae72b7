//! The PTRACE_SYSEMU platform.
//!
//! Guest threads run in *stub* host processes traced with `PTRACE_SYSEMU`:
//! every guest syscall stops the stub before it runs, [`Context::switch`]
//! returns [`Exit::Syscall`], the Sentry emulates the call, and the host
//! syscall never runs.
//!
//! ## Processes and threads
//!
//! * Each [`AddressSpace`] is one stub process, forked by a dedicated
//!   *owner* host thread (which is therefore its tracer). Right after the
//!   fork the owner unmaps everything in it but the stub code page at
//!   [`STUB_ADDR`] (`syscall; int3`). The owner serves requests from other
//!   Sentry threads over a channel: syscall injection (map/unmap/protect)
//!   and the creation of new stub threads.
//! * ptrace is per thread, so each Sentry thread running a [`Context`] needs
//!   stub threads of its own: on the first switch into an address space the
//!   owner injects `clone(CLONE_VM|CLONE_FILES|CLONE_FS|CLONE_SIGHAND|
//!   CLONE_PARENT|CLONE_PTRACE)` into its stub (a new *process* sharing the
//!   address space), sets its PDEATHSIG and detaches it with SIGSTOP; the
//!   Sentry thread then `PTRACE_SEIZE`s it and keeps it for that space.
//! * map/unmap/protect called from a Sentry thread that traces a stub thread
//!   of the space inject through it directly (no hop to the owner thread).
//! * Dropping the last reference to an address space stops its owner
//!   thread, which kills and reaps the stub process; its exit SIGKILLs
//!   (PDEATHSIG) the stub threads cloned from it, which their contexts reap.
//!   Dropping a context kills and reaps its stub threads.
//!
//! Every stub process is a child of the Sentry process and must be reaped
//! by this crate: the rest of the Sentry must not `wait` for arbitrary
//! children (`waitpid(-1, ..., __WALL)`).

mod context;
mod space;
mod stub;
mod sys;
#[cfg(test)]
mod tests;

use platform::{AddressSpace, Context, Platform, PlatformError};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The stub code page. Guest mappings must stay below it
/// ([`Platform::max_user_address`]).
pub const STUB_ADDR: u64 = 0x7fff_fffe_0000;
/// Size of the stub code page.
pub const STUB_SIZE: u64 = 4096;
/// The end of the x86-64 user address space (4-level paging).
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// How tracer threads and stub threads are placed on CPUs. A ptrace round
/// trip is much cheaper when tracer and tracee share a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuBinding {
    /// Pin each tracer thread (address-space owner or the Sentry thread of
    /// a context, when it first uses the context) and its stub threads to
    /// one CPU, chosen round-robin among the CPUs the process may use.
    /// The thread's previous affinity is restored when the context is
    /// dropped on it.
    Pin,
    /// Leave tracer threads alone; before each switch, move the stub thread
    /// to the CPU its tracer is on (when it changed), as gVisor does.
    Follow,
    /// No affinity changes.
    None,
}

pub(crate) struct PlatformShared {
    fds: platform::MemoryFds,
    binding: CpuBinding,
    cpus: Vec<usize>,
    next: AtomicUsize,
}

impl PlatformShared {
    /// The next CPU, round-robin (None unless pinning).
    fn next_cpu(&self) -> Option<usize> {
        if self.binding != CpuBinding::Pin || self.cpus.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.cpus[n % self.cpus.len()])
    }

    fn owner_cpu(&self) -> Option<usize> {
        self.next_cpu()
    }
}

/// The ptrace platform.
pub struct PtracePlatform {
    shared: Arc<PlatformShared>,
}

impl PtracePlatform {
    /// A platform whose guest memory is the memory file `memfd` (owned by
    /// the caller, which must keep it open as long as the platform and its
    /// address spaces live). Pins tracer and stub threads to CPUs
    /// ([`CpuBinding::Pin`]).
    ///
    /// Checks that stubs can be created here (one is created and destroyed):
    /// `PlatformError::Unavailable` if not.
    pub fn new(memfd: RawFd) -> Result<PtracePlatform, PlatformError> {
        PtracePlatform::with_cpu_binding(memfd, CpuBinding::Pin)
    }

    /// [`PtracePlatform::new`] with a choice of CPU placement.
    pub fn with_cpu_binding(memfd: RawFd, binding: CpuBinding) -> Result<PtracePlatform, PlatformError> {
        PtracePlatform::with_memory(platform::MemoryFds::single(memfd), binding)
    }

    /// A platform whose guest memory is in the memory file and the cache
    /// file of `fds` (see `platform::CACHE_FILE_BASE`).
    pub fn with_memory(fds: platform::MemoryFds, binding: CpuBinding) -> Result<PtracePlatform, PlatformError> {
        for fd in [fds.main, fds.cache] {
            // SAFETY: fcntl(F_GETFD) only inspects the descriptor table.
            if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                return Err(PlatformError::Unavailable(format!("memory file descriptor {fd} is not open")));
            }
        }
        let cpus = sys::get_affinity(0).map(|m| sys::mask_cpus(&m)).unwrap_or_default();
        let p = PtracePlatform { shared: Arc::new(PlatformShared { fds, binding, cpus, next: AtomicUsize::new(0) }) };
        // Probe: a stub must be creatable (ptrace permitted, no seccomp
        // policy in the way, ...).
        drop(p.new_address_space().map_err(|e| PlatformError::Unavailable(format!("ptrace stubs unusable: {e}")))?);
        Ok(p)
    }
}

impl Platform for PtracePlatform {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let _t = platform::profile::span(platform::profile::Phase::NewAddressSpace);
        space::PtraceAddressSpace::create(&self.shared)
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        Ok(Box::new(context::PtraceContext::new(self.shared.clone())))
    }

    fn max_user_address(&self) -> u64 {
        STUB_ADDR
    }
}
