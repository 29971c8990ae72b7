//! A cheap monotonic clock for the Sentry's per-syscall time accounting:
//! the CPU's time-stamp counter, converted to nanoseconds with a ratio
//! measured against the host's monotonic clock as the Sentry runs.
//!
//! The syscall loop reads the time twice per guest syscall (when the
//! guest stops, when the answer is ready) to split user from system time
//! and to run CPU-time timers. `clock_gettime` through the vDSO costs
//! ~40 ns here and orders itself behind every load still in flight (the
//! cache line the stub thread just handed over): dropping both reads made
//! a patched getppid ~100 ns faster. A plain `rdtsc` costs ~20 ns and
//! waits for nothing.
//!
//! Used only where the TSC is invariant (CPUID 0x8000_0007 EDX bit 8:
//! constant rate, counting through sleep states) and the host's own
//! clocksource is the TSC (so both agree on what a second is); elsewhere,
//! and until the ratio is known, stamps carry a host clock reading too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A point in time (see the module text).
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    tsc: u64,
    /// The host clock at the same moment, while the ratio is unknown.
    host: Option<Instant>,
}

/// How long the calibration span must be before its ratio is trusted:
/// one host clock read is ~40 ns off, so 10 ms gives a few parts per
/// million.
const CALIBRATE_AFTER: Duration = Duration::from_millis(10);

struct Calibration {
    /// The TSC and the host clock when the first stamp was taken.
    tsc0: u64,
    host0: Instant,
}

static CAL: OnceLock<Option<Calibration>> = OnceLock::new();
/// Nanoseconds per TSC tick, as a 32.32 fixed-point number (0: unknown).
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);

/// The calibration's start, if `init` found the TSC usable (never read
/// before `init`: it reads /sys, which the Sentry's filter forbids later).
fn calibration() -> Option<&'static Calibration> {
    CAL.get()?.as_ref()
}

/// Is the TSC a clock the host's monotonic clock agrees with?
fn usable() -> bool {
    let max_ext = std::arch::x86_64::__cpuid(0x8000_0000).eax;
    if max_ext < 0x8000_0007 {
        return false;
    }
    let invariant = std::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0;
    invariant
        && std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
}

/// Decide now (before the Sentry's filter forbids reading /sys) whether
/// the TSC is used, and start its calibration span.
pub fn init() {
    CAL.get_or_init(|| {
        usable().then(|| {
            let tsc0 = rdtsc();
            Calibration { tsc0, host0: Instant::now() }
        })
    });
}

#[inline]
fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads a counter; it has no memory effects, and the
    // Sentry never disables it (PR_SET_TSC).
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// Now.
#[inline]
pub fn now() -> Stamp {
    let tsc = rdtsc();
    if NS_PER_TICK.load(Ordering::Relaxed) != 0 {
        return Stamp { tsc, host: None };
    }
    let host = Instant::now();
    calibrate(tsc, host);
    Stamp { tsc, host: Some(host) }
}

/// Measure the ratio from a pair of readings taken together, once the
/// calibration span is long enough.
#[cold]
fn calibrate(tsc: u64, host: Instant) {
    let Some(c) = calibration() else { return };
    let span = host.saturating_duration_since(c.host0);
    let ticks = tsc.saturating_sub(c.tsc0);
    if span < CALIBRATE_AFTER || ticks == 0 {
        return;
    }
    let ratio = (span.as_nanos() << 32) / ticks as u128;
    // Between 0.01 and 100 ns per tick (10 MHz to 100 GHz), or the
    // counter is not what it claims to be: keep the host clock.
    if ((1u128 << 32) / 100..=(100u128 << 32)).contains(&ratio) {
        NS_PER_TICK.store(ratio as u64, Ordering::Relaxed);
    }
}

impl Stamp {
    /// The time from `earlier` to `self` (zero if `earlier` is later).
    pub fn saturating_duration_since(&self, earlier: Stamp) -> Duration {
        if let (Some(a), Some(b)) = (self.host, earlier.host) {
            return a.saturating_duration_since(b);
        }
        let ratio = NS_PER_TICK.load(Ordering::Relaxed) as u128;
        if ratio == 0 {
            // (A stamp lacks a host reading only once the ratio is known.)
            return Duration::ZERO;
        }
        let ticks = self.tsc.saturating_sub(earlier.tsc) as u128;
        let ns = (ticks * ratio) >> 32;
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_measure_what_the_host_clock_measures() {
        init();
        let a = now();
        let h = Instant::now();
        std::thread::sleep(Duration::from_millis(15));
        let b = now();
        let host = h.elapsed();
        let ours = b.saturating_duration_since(a);
        // Within 1 ms of the host's figure either way.
        assert!(
            ours + Duration::from_millis(1) >= host && ours <= host + Duration::from_millis(1),
            "{ours:?} vs {host:?}"
        );
        // Once calibrated (where the TSC is usable), stamps carry no host
        // reading, and still measure.
        let c = now();
        std::thread::sleep(Duration::from_millis(2));
        let d = now();
        let span = d.saturating_duration_since(c);
        assert!(span >= Duration::from_millis(1) && span < Duration::from_millis(500), "{span:?}");
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    }
}
