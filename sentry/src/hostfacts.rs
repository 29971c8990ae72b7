//! Host files whose contents the sandbox passes through (`/proc/cpuinfo`,
//! `/proc/meminfo`, the CPU count), read once at boot: the confined Sentry can no longer
//! open a host path by name.

use std::sync::OnceLock;

static CPUINFO: OnceLock<Vec<u8>> = OnceLock::new();
static MEMINFO: OnceLock<Vec<u8>> = OnceLock::new();
static NCPUS: OnceLock<usize> = OnceLock::new();

/// Read the host facts now (boot calls this before the Sentry confines
/// itself; later calls change nothing).
pub fn init() {
    let _ = cpuinfo();
    let _ = meminfo();
    let _ = ncpus();
}

/// The CPUs the Sentry may use (std's `available_parallelism`, which reads
/// cgroup files), as found at boot.
pub fn ncpus() -> usize {
    *NCPUS.get_or_init(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// The host's `/proc/cpuinfo`, as read at boot.
pub fn cpuinfo() -> &'static [u8] {
    CPUINFO.get_or_init(|| std::fs::read("/proc/cpuinfo").unwrap_or_default())
}

/// The host's `/proc/meminfo`, as read at boot.
pub fn meminfo() -> &'static [u8] {
    MEMINFO.get_or_init(|| std::fs::read("/proc/meminfo").unwrap_or_default())
}
