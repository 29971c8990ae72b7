//! `RUNSC_LITE_PROFILE=1`: where the time goes, phase by phase (the
//! Sentry's boot, stub creation, exec, ELF loading, page faults,
//! address-space changes, fork, and the guest's syscalls by number),
//! printed to stderr when the Sentry ends. Off, each probe costs one
//! relaxed load.
//!
//! Lives here, in the crate every other one depends on, so that the
//! platforms, the Sentry and the CLI record into the same counters.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

/// A phase that is timed (total and count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Phase {
    BootHostFacts,
    BootRoots,
    BootMountsProc,
    BootPivot,
    BootPrivileges,
    BootMemoryFile,
    BootPlatform,
    BootTable,
    BootMounts,
    BootKernel,
    BootSeccomp,
    BootToInit,
    NewAddressSpace,
    NewAddressSpaceWait,
    Exec,
    ExecElfLoad,
    ExecStack,
    Fork,
    FileCacheFill,
    PageFault,
    SpaceMap,
    SpaceUnmap,
    SpaceProtect,
    GuestSwitch,
    SpaceBatch,
    SpaceBatched,
    ExitFreeMm,
    ExecSwitch,
    HandoffStubSlept,
    HandoffSentrySlept,
    StubRecycled,
}

const PHASES: usize = Phase::StubRecycled as usize + 1;

const NAMES: [&str; PHASES] = [
    "boot: host facts",
    "boot: open roots",
    "boot: private mounts + /proc",
    "boot: pivot to empty root",
    "boot: drop privileges + landlock",
    "boot: memory file",
    "boot: platform start",
    "boot: syscall table",
    "boot: overlay + mounts",
    "boot: kernel",
    "boot: seccomp filters",
    "boot: total to first exec",
    "new address space (stub process)",
    "new address space: caller's wait",
    "execve (whole)",
    "execve: new space + ELF load",
    "execve: stack",
    "fork: memory manager copy",
    "file cache fill (whole file read)",
    "page fault served",
    "platform map",
    "platform unmap",
    "platform protect",
    "guest switch (run + trap)",
    "platform batch (one round trip)",
    "  changes made in batches (count only)",
    "exit: free the address space",
    "execve: switch to the new image",
    "  answers to a sleeping guest thread (count only)",
    "  events the Sentry slept for (count only)",
    "  stub processes recycled (count only)",
];

const NSYS: usize = 512;

struct Counters {
    ns: [AtomicU64; PHASES],
    n: [AtomicU64; PHASES],
    sys_ns: [AtomicU64; NSYS],
    sys_n: [AtomicU64; NSYS],
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static C: Counters = Counters { ns: [ZERO; PHASES], n: [ZERO; PHASES], sys_ns: [ZERO; NSYS], sys_n: [ZERO; NSYS] };

/// 0 unknown, 1 off, 2 on.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Is `RUNSC_LITE_PROFILE` set (to anything but "0")?
#[inline]
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let on = std::env::var_os("RUNSC_LITE_PROFILE").is_some_and(|v| v != "0" && !v.is_empty());
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// The start of a timed stretch: None when profiling is off.
#[inline]
pub fn start() -> Option<Instant> {
    enabled().then(Instant::now)
}

/// Add the time since `t` (from `start`) to `phase`.
#[inline]
pub fn add(phase: Phase, t: Option<Instant>) {
    if let Some(t) = t {
        let ns = t.elapsed().as_nanos() as u64;
        C.ns[phase as usize].fetch_add(ns, Ordering::Relaxed);
        C.n[phase as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Count `n` events of `phase` without time (shown as 0 µs).
#[inline]
pub fn count(phase: Phase, n: u64) {
    if enabled() {
        C.n[phase as usize].fetch_add(n, Ordering::Relaxed);
    }
}

/// Add the time since `t` to guest syscall `nr`.
#[inline]
pub fn add_syscall(nr: u64, t: Option<Instant>) {
    if let (Some(t), Ok(i)) = (t, usize::try_from(nr)) {
        if i < NSYS {
            C.sys_ns[i].fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            C.sys_n[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Times a stretch until dropped.
pub struct Span(Phase, Option<Instant>);

/// Time from now until the returned guard drops.
#[inline]
pub fn span(phase: Phase) -> Span {
    Span(phase, start())
}

impl Drop for Span {
    fn drop(&mut self) {
        add(self.0, self.1.take());
    }
}

/// The report: one line per phase that ran, then the guest syscalls that
/// took the most time (`name` turns a number into a name).
pub fn report(name: &dyn Fn(u64) -> String) -> String {
    let mut s = String::from("runsc-lite profile (Sentry; times in µs, total / count = mean):\n");
    for (i, label) in NAMES.iter().enumerate() {
        let n = C.n[i].load(Ordering::Relaxed);
        if n == 0 {
            continue;
        }
        let ns = C.ns[i].load(Ordering::Relaxed);
        s.push_str(&format!(
            "  {label:<36} {:>10.1} µs / {n:>6} = {:>8.1} µs\n",
            ns as f64 / 1e3,
            ns as f64 / 1e3 / n as f64
        ));
    }
    let mut sys: Vec<(usize, u64, u64)> = (0..NSYS)
        .map(|i| (i, C.sys_ns[i].load(Ordering::Relaxed), C.sys_n[i].load(Ordering::Relaxed)))
        .filter(|&(_, _, n)| n > 0)
        .collect();
    let calls: u64 = sys.iter().map(|s| s.2).sum();
    let total: u64 = sys.iter().map(|s| s.1).sum();
    s.push_str(&format!(
        "  guest syscalls (served in the Sentry) {:>10.1} µs / {calls:>6}; the 12 longest:\n",
        total as f64 / 1e3
    ));
    sys.sort_by_key(|s| std::cmp::Reverse(s.1));
    for (nr, ns, n) in sys.into_iter().take(12) {
        s.push_str(&format!(
            "    {:<34} {:>10.1} µs / {n:>6} = {:>8.1} µs\n",
            name(nr as u64),
            ns as f64 / 1e3,
            ns as f64 / 1e3 / n as f64
        ));
    }
    s
}
