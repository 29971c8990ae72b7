//! The seccomp-trap ("systrap") platform.
//!
//! Guest threads run in *stub* processes under a seccomp filter that turns
//! every guest syscall into a SIGSYS. The stub's signal handler (on a
//! signal stack in memory shared with the Sentry) publishes where the
//! kernel saved the guest's registers and waits; the Sentry reads and
//! writes those registers in place, serves the syscall, and lets the
//! handler return into the guest with `rt_sigreturn`. Faults and
//! interrupts take the same road. Both sides spin for a short while before
//! sleeping on a futex in the shared message page, so a syscall costs one
//! signal delivery plus a hand-off, with no ptrace stop and no context
//! switch when the two run on different CPUs.
//!
//! ## Processes and threads
//!
//! * Each [`AddressSpace`] is one stub process, forked from a dedicated
//!   *forker* process that the platform starts at creation, before the
//!   Sentry installs its own seccomp filter, which the stubs must not
//!   inherit (stubs get PR_SET_PDEATHSIG against the forker; see
//!   `forker::Forker`). Its
//!   first thread, the *control thread*, unmaps everything it inherited
//!   but the stub region (`layout`), installs its filter, and from then on
//!   makes mmap/munmap/mprotect/clone calls the Sentry writes into the
//!   read-only control page. Results come back through a pipe, which guest
//!   code cannot write to, so a guest cannot fake the completion of an
//!   address-space change.
//! * Each [`Context`] takes one stub thread (cloned by the control thread)
//!   in each address space it runs in; threads go back to a per-process
//!   pool when the context is dropped. Any Sentry thread can drive any
//!   stub thread.
//! * Dropping an address space hands its stub process to a reaper thread,
//!   which cleans it for the next address space (`recycle`) or, when it
//!   cannot be cleaned, SIGKILLs it.
//!
//! ## Patched syscall sites
//!
//! Hot `mov $nr, %eax; syscall` sites are rewritten by the Sentry into
//! jumps to a trampoline that makes the same hand-off without a signal;
//! see `patch`.
//!
//! ## The boundary
//!
//! A guest can write to everything the stub can write (message pages,
//! signal stacks, the response page). The Sentry treats all of it as guest
//! input: addresses are checked against the thread's own signal stack, and
//! what is read there is at worst the guest's own registers. The guest's
//! filter lets through only `rt_sigreturn`, `futex` wait/wake and
//! `arch_prctl` set-fs/gs, each from one instruction of the stub; see
//! `filter`.

mod context;
mod filter;
mod forker;
mod frame;
mod layout;
mod patch;
mod process;
mod recycle;
mod space;
mod stubcode;
mod sys;
#[cfg(test)]
mod tests;

pub use layout::STUB_BASE;
use platform::{AddressSpace, Context, Platform, PlatformError};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

/// The host signal that kicks a stub thread out of the guest. SIGCHLD as
/// in the ptrace platform: stubs have no children of their own.
pub(crate) const INTERRUPT_SIGNAL: i32 = libc::SIGCHLD;

/// How long each side of a hand-off polls before it sleeps.
///
/// On a machine with few CPUs, polling is a bet that the other side runs
/// on another CPU right now; when three parties (guest thread, Sentry
/// thread, stub control thread) want two CPUs, long polls starve the one
/// that would make progress. The defaults were measured on 2 CPUs (see
/// README); `RUNSC_LITE_SYSTRAP_SPIN=event_us,request_us,stub,control`
/// overrides them (the last two in `pause` instructions).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spin {
    /// The Sentry, waiting for a guest thread's next event.
    pub(crate) event: Duration,
    /// The Sentry, waiting for the control thread's result.
    pub(crate) request: Duration,
    /// A stub thread, waiting for the Sentry's answer (unless the Sentry
    /// says the answer comes later: `M_ANSWER_HINT`).
    pub(crate) stub: u32,
    /// The control thread, waiting for the next request.
    pub(crate) control: u32,
}

impl Spin {
    fn from_env() -> Spin {
        // The Sentry waits for a guest thread's next syscall on its own CPU
        // while the guest runs on the other, so it polls a while. The
        // control thread, bound to the CPU of the Sentry thread that asks
        // (which blocks at once), must not poll at all: it would keep the
        // CPU that thread needs next (mprotect cost 50 us with polling on
        // both sides, 12 us without).
        //
        // A stub thread polls up to 4,000 pauses (~100 us) for the
        // answer, unless the Sentry says it comes later: when the syscall
        // blocks (it sleeps at once, leaving the CPU to the party that will
        // unblock it) or is one that waits for others (fork, exec, exit,
        // sleeps: `answers_soon` in the Sentry). A 200-pause poll (~5 us) made every syscall
        // answered without blocking but not within 5 us (a 64 KiB recv
        // from a host socket, a connect through the broker) pay a futex
        // wake-up of the stub, 10-20 us on these machines; polling that
        // long for every syscall made blocked ones starve their peers (a
        // tar | tar pipeline took 714 ms with 50 us, 258 ms with 5 us).
        let mut s =
            Spin { event: Duration::from_micros(20), request: Duration::from_micros(1), stub: 4_000, control: 1 };
        if let Ok(v) = std::env::var("RUNSC_LITE_SYSTRAP_SPIN") {
            let f: Vec<u64> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            if let [e, r, st, c] = f[..] {
                s = Spin {
                    event: Duration::from_micros(e.min(1_000_000)),
                    request: Duration::from_micros(r.min(1_000_000)),
                    stub: st.clamp(1, 1 << 24) as u32,
                    control: c.clamp(1, 1 << 24) as u32,
                };
            }
        }
        s
    }
}

pub(crate) struct Shared {
    forker: forker::Forker,
    code: &'static [u8],
    fsgsbase: bool,
    cpu_insn: u32,
    control_filter: Vec<filter::SockFilter>,
    guest_filter: Vec<filter::SockFilter>,
    /// Where a new stub thread's first (trapped) syscall comes from.
    ready_ip: u64,
    spin: Spin,
    /// The sandbox's patch slots; None when patching is off (by
    /// `RUNSC_LITE_SYSTRAP_PATCH=0`, or without FSGSBASE, which the
    /// trampoline needs).
    slots: Option<Arc<std::sync::Mutex<patch::Slots>>>,
    /// Where the trampoline's upgrade and kick traps report from.
    upgrade_ip: u64,
    kick_ip: u64,
    /// Stub processes cleaned for reuse.
    bin: recycle::RecycleBin,
}

/// The thread making the platform's first address space.
type FirstSpace = std::thread::JoinHandle<Result<Arc<dyn AddressSpace>, PlatformError>>;

/// The systrap platform.
pub struct SystrapPlatform {
    shared: Arc<Shared>,
    /// The first address space, being made on a "stub-first" thread
    /// since the platform started: a stub costs about half a millisecond,
    /// which overlaps the rest of the Sentry's boot (its mounts, kernel
    /// and seccomp filter) on the other CPU instead of adding to it. The
    /// first request (the sandbox's first process) takes it. A leaf lock,
    /// held only to take the handle, never across the join.
    first: std::sync::Mutex<Option<FirstSpace>>,
}

impl SystrapPlatform {
    /// A platform whose guest memory is the memory file `memfd` (owned by
    /// the caller, which keeps it open as long as the platform and its
    /// address spaces live).
    ///
    /// Checks that the host has what stubs need (seccomp filters, the
    /// forker): `PlatformError::Unavailable` if not, with the reason. The
    /// first stub is made in the background; should that fail, the first
    /// `new_address_space` makes one itself and returns its error.
    pub fn new(memfd: RawFd) -> Result<SystrapPlatform, PlatformError> {
        SystrapPlatform::with_memory(platform::MemoryFds::single(memfd))
    }

    /// A platform whose guest memory is in the memory file and the cache
    /// file of `fds` (see `platform::CACHE_FILE_BASE`).
    pub fn with_memory(fds: platform::MemoryFds) -> Result<SystrapPlatform, PlatformError> {
        for fd in [fds.main, fds.cache] {
            // SAFETY: fcntl(F_GETFD) only inspects the descriptor table.
            if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                return Err(PlatformError::Unavailable(format!("memory file descriptor {fd} is not open")));
            }
        }
        if !sys::seccomp_available() {
            return Err(PlatformError::Unavailable("the kernel has no seccomp filters".into()));
        }
        sys::remember_cpus();
        let code = stubcode::code();
        if code.len() as u64 > layout::CODE_SIZE {
            return Err(PlatformError::Unavailable("stub code does not fit its pages".into()));
        }
        let labels = stubcode::Labels::get();
        let control_filter = filter::control_filter(&labels);
        let guest_filter = filter::guest_filter(&labels);
        if control_filter.len().max(guest_filter.len()) as u64 > layout::C_FILTER_MAX {
            return Err(PlatformError::Unavailable("stub filters do not fit the control page".into()));
        }
        let fsgsbase = sys::has_fsgsbase();
        let slots = (fsgsbase && patch::enabled_from_env())
            .then(|| Arc::new(std::sync::Mutex::new(patch::Slots::new(labels.tramp))));
        let shared = Arc::new(Shared {
            forker: forker::Forker::start(fds, &filter::forker_filter())?,
            code,
            fsgsbase,
            cpu_insn: sys::cpu_number_insn(),
            control_filter,
            guest_filter,
            ready_ip: labels.ready_syscall,
            spin: Spin::from_env(),
            slots,
            upgrade_ip: labels.upgrade_trap,
            kick_ip: labels.kick_trap,
            bin: recycle::RecycleBin::from_env(),
        });
        // Made before the Sentry's own seccomp filter is installed (with
        // TSYNC, which covers this thread too if it is still running then);
        // making a stub needs nothing that filter forbids, as the pool's
        // refill thread shows.
        let making = shared.clone();
        let first = std::thread::Builder::new()
            .name("stub-first".into())
            .stack_size(256 << 10)
            .spawn(move || space::SystrapAddressSpace::create(&making))
            .map_err(|e| PlatformError::Unavailable(format!("starting the first stub's thread: {e}")))?;
        Ok(SystrapPlatform { shared, first: std::sync::Mutex::new(Some(first)) })
    }
}

impl Platform for SystrapPlatform {
    fn name(&self) -> &'static str {
        "systrap"
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let first = process::lock(&self.first).take();
        if let Some(making) = first {
            match making.join() {
                Ok(Ok(space)) => return Ok(space),
                Ok(Err(e)) => tracing::debug!("systrap: the first stub failed ({e}); making another"),
                Err(_) => tracing::debug!("systrap: the first stub's thread panicked; making another"),
            }
        }
        space::SystrapAddressSpace::create(&self.shared)
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        Ok(Box::new(context::SystrapContext::new()))
    }

    fn max_user_address(&self) -> u64 {
        layout::STUB_BASE
    }

    fn vfork_shares_space(&self) -> bool {
        true
    }
}
