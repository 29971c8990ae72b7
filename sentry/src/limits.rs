//! The sandbox's limits, enforced by the Sentry's own accounting (the host
//! sees one process and its memory file, never the guest's processes):
//!
//! - memory (`linux.resources.memory.limit`, `--memory-limit`): the pages
//!   of the memory file the host holds (guest memory, private and shared,
//!   the page cache of executables and mapped files, the vDSO) plus the
//!   guest data the VFS keeps on the Sentry heap (tmpfs pages and pipe
//!   buffers, [`vfs::limits`]). Guests touch pages without trapping, so a
//!   monitor thread measures (one fstat) at an interval that shrinks as
//!   the headroom does; over the limit it first drops the page cache no
//!   mapping uses, then kills the process with the most resident pages
//!   with SIGKILL and logs one line. The Sentry itself is never the
//!   victim.
//! - pids (`linux.resources.pids.limit`): tasks (threads included, and
//!   zombies until reaped, as the pids cgroup counts) sandbox-wide;
//!   clone beyond it is EAGAIN.
//! - RLIMIT_NPROC: tasks per real uid, checked at clone as Linux does
//!   (root and CAP_SYS_RESOURCE holders, i.e. euid 0 here, are exempt).

use crate::kernel::{lock, Kernel, ThreadGroup};
use abi::{Errno, Rlimit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The limits a sandbox starts with.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Bytes of memory (None: no limit).
    pub memory: Option<u64>,
    /// Tasks (None: no limit).
    pub pids: Option<u64>,
    /// Resource limits of the first process (inherited by its children).
    pub rlimits: Vec<(u32, Rlimit)>,
}

/// The sandbox-wide task count.
pub struct TaskCount {
    count: AtomicU64,
    max: AtomicU64,
}

impl Default for TaskCount {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskCount {
    pub fn new() -> TaskCount {
        TaskCount { count: AtomicU64::new(0), max: AtomicU64::new(u64::MAX) }
    }

    pub fn set_max(&self, max: Option<u64>) {
        self.max.store(max.unwrap_or(u64::MAX), Ordering::Release);
    }

    /// One more task; EAGAIN past the pids limit.
    pub fn charge(&self) -> Result<(), Errno> {
        let max = self.max.load(Ordering::Acquire);
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| (c < max).then_some(c + 1))
            .map(|_| ())
            .map_err(|_| Errno::EAGAIN)
    }

    pub fn uncharge(&self) {
        let _ = self.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| Some(c.saturating_sub(1)));
    }

    pub fn current(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    pub fn max(&self) -> Option<u64> {
        Some(self.max.load(Ordering::Acquire)).filter(|&m| m != u64::MAX)
    }
}

/// RLIMIT_NPROC at clone: EAGAIN when the caller's real uid already has
/// as many tasks as its soft limit, unless it is root (Linux exempts
/// INIT_USER and holders of CAP_SYS_RESOURCE or CAP_SYS_ADMIN, which in
/// this kernel is euid 0).
pub fn check_nproc(kernel: &Kernel, tg: &ThreadGroup) -> Result<(), Errno> {
    let limit = tg.rlimit(abi::flags::RLIMIT_NPROC).cur;
    if limit == abi::flags::RLIM_INFINITY {
        return Ok(());
    }
    let creds = tg.creds();
    if creds.uid == 0 || creds.euid == 0 {
        return Ok(());
    }
    let mut n = 0u64;
    for g in kernel.groups() {
        if g.creds().uid != creds.uid {
            continue;
        }
        // A zombie still counts until it is reaped.
        n += (lock(&g.threads).len() as u64).max(1);
        if n >= limit {
            return Err(Errno::EAGAIN);
        }
    }
    Ok(())
}

/// How fast a guest can plausibly fault pages in (bytes per second): the
/// monitor measures again before the headroom could be used up at this
/// rate.
const FILL_RATE: u64 = 4 << 30;
const MIN_INTERVAL: Duration = Duration::from_millis(2);
const MAX_INTERVAL: Duration = Duration::from_millis(100);
/// A killed process normally releases its memory at once; if it has not
/// within this time (a thread stuck in a long host call), another victim
/// may be chosen.
const VICTIM_GRACE: Duration = Duration::from_secs(2);

/// Start the memory monitor of `kernel` (only with a memory limit).
pub fn start_memory_monitor(kernel: &Arc<Kernel>, limit: u64) {
    let weak = Arc::downgrade(kernel);
    let spawned = std::thread::Builder::new().name("mem-limit".into()).spawn(move || monitor(weak, limit));
    if let Err(e) = spawned {
        tracing::warn!("memory limit not enforced: no monitor thread: {e}");
    }
}

/// Bytes the sandbox uses against its memory limit now.
pub fn memory_usage(kernel: &Kernel) -> u64 {
    kernel.memfile.resident_bytes().saturating_add(vfs::limits::heap_bytes())
}

fn usage(kernel: &Kernel) -> (u64, u64) {
    let file = kernel.memfile.resident_bytes();
    vfs::limits::set_memfile_bytes(file);
    (file, vfs::limits::heap_bytes())
}

fn monitor(weak: Weak<Kernel>, limit: u64) {
    let mut victim: Option<(Weak<ThreadGroup>, Instant)> = None;
    loop {
        let Some(kernel) = weak.upgrade() else { return };
        let (mut file, mut heap) = usage(&kernel);
        if file + heap > limit {
            // Page cache nothing maps is the cheapest memory to give back.
            if kernel.file_cache.shrink() {
                (file, heap) = usage(&kernel);
            }
        }
        if file + heap > limit {
            // The last victim is done once it is a zombie: its memory was
            // released (and punched out) before that.
            let busy = victim
                .as_ref()
                .is_some_and(|(w, at)| w.upgrade().is_some_and(|tg| !*lock(&tg.zombie)) && at.elapsed() < VICTIM_GRACE);
            if !busy {
                // Measured again: the last victim may have let go of its
                // memory since the measurement above.
                (file, heap) = usage(&kernel);
                if file + heap > limit {
                    victim = kill_largest(&kernel, limit, file + heap).map(|tg| (Arc::downgrade(&tg), Instant::now()));
                }
            }
        }
        drop(kernel);
        let headroom = limit.saturating_sub(file + heap);
        let nanos = (headroom as u128 * 1_000_000_000 / FILL_RATE as u128).min(u64::MAX as u128) as u64;
        let interval = Duration::from_nanos(nanos).clamp(MIN_INTERVAL, MAX_INTERVAL);
        std::thread::sleep(interval);
    }
}

/// Kill the live guest process with the most resident memory; returns it.
fn kill_largest(kernel: &Kernel, limit: u64, usage: u64) -> Option<Arc<ThreadGroup>> {
    let mut best: Option<(u64, Arc<ThreadGroup>)> = None;
    for tg in kernel.groups() {
        if tg.killed.load(Ordering::Acquire) {
            continue;
        }
        let Some(mm) = tg.mm() else { continue };
        let rss = mm.resident_bytes();
        if best.as_ref().is_none_or(|(b, _)| rss > *b) {
            best = Some((rss, tg.clone()));
        }
    }
    let (rss, tg) = best?;
    let comm = String::from_utf8_lossy(&lock(&tg.comm)).into_owned();
    tracing::warn!(
        "memory limit {} exceeded ({} in use): killed process {} ({comm}) with {} resident",
        mib(limit),
        mib(usage),
        tg.tgid,
        mib(rss)
    );
    crate::signal::kill_with(&tg, crate::ExitStatus::Signaled { sig: abi::signal::SIGKILL, core: false });
    Some(tg)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}
