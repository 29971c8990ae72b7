//! Host files whose contents the sandbox passes through (`/proc/cpuinfo`,
//! `/proc/meminfo`, the CPU count), read once at boot: the confined Sentry can no longer
//! open a host path by name.

use std::sync::OnceLock;

static CPUINFO: OnceLock<Vec<u8>> = OnceLock::new();
static MEMINFO: OnceLock<Vec<u8>> = OnceLock::new();
static NCPUS: OnceLock<usize> = OnceLock::new();
static AFFINITY: OnceLock<u64> = OnceLock::new();
static ONLINE: OnceLock<String> = OnceLock::new();

/// Read the host facts now (boot calls this before the Sentry confines
/// itself; later calls change nothing).
pub fn init() {
    let _ = cpuinfo();
    let _ = meminfo();
    let _ = ncpus();
    let _ = affinity();
    let _ = online();
}

/// How many CPUs the sandbox's tasks may run on: those of the affinity
/// mask the sandbox was started with, as `nproc` counts natively (not
/// std's `available_parallelism`, which also divides a cgroup's CPU quota
/// and so disagreed with the native count).
pub fn ncpus() -> usize {
    *NCPUS.get_or_init(|| match affinity().count_ones() {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n as usize,
    })
}

/// The sandbox's CPU affinity mask (CPUs 0-63) as found at boot: the
/// `Cpus_allowed` of the Sentry's own /proc/self/status, read before any
/// thread is pinned to a CPU (the ptrace platform pins its tracers).
pub fn affinity() -> u64 {
    *AFFINITY.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mask = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed:")).unwrap_or("").trim().replace(',', "");
        let low = mask.get(mask.len().saturating_sub(16)..).unwrap_or("");
        u64::from_str_radix(low, 16).ok().filter(|m| *m != 0).unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(64);
            if n >= 64 {
                u64::MAX
            } else {
                (1u64 << n) - 1
            }
        })
    })
}

/// The host's online CPUs in the kernel's list form ("0-3"), as read at
/// boot; the affinity mask's range when the host does not say.
pub fn online() -> &'static str {
    ONLINE.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("0-{}", 63 - affinity().leading_zeros()))
    })
}

/// The CPU numbers of a list such as "0-3,8" (at most 64 of them).
pub fn parse_cpu_list(list: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) else { continue };
        for c in a..=b.min(a.saturating_add(63)) {
            if out.len() < 64 {
                out.push(c);
            }
        }
    }
    out
}

/// A mask's CPUs in the kernel's list form ("0-1,3").
pub fn cpu_list(mask: u64) -> String {
    let mut parts = Vec::new();
    let mut i = 0u32;
    while i < 64 {
        if mask & (1 << i) == 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < 64 && mask & (1 << i) != 0 {
            i += 1;
        }
        parts.push(if i - 1 == start { start.to_string() } else { format!("{start}-{}", i - 1) });
    }
    parts.join(",")
}

/// The host's `/proc/cpuinfo`, as read at boot.
pub fn cpuinfo() -> &'static [u8] {
    CPUINFO.get_or_init(|| std::fs::read("/proc/cpuinfo").unwrap_or_default())
}

/// The host's `/proc/meminfo`, as read at boot.
pub fn meminfo() -> &'static [u8] {
    MEMINFO.get_or_init(|| std::fs::read("/proc/meminfo").unwrap_or_default())
}
