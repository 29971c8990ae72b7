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

/// How long the calibration span must be before its ratio is trusted,
/// and how close together the host clock reads around each end's TSC
/// reading must be (a thread preempted between them would skew the ratio
/// by the time it was off the CPU): at most 2 × 5 µs off in 10 ms, 0.1 %.
const CALIBRATE_AFTER: Duration = Duration::from_millis(10);
const TIGHT: Duration = Duration::from_micros(5);

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
        if !usable() {
            return None;
        }
        // A few tries: one preempted pair is no reason to give up.
        let (tsc0, host0) = (0..16).find_map(|_| paired())?;
        Some(Calibration { tsc0, host0 })
    });
}

/// A TSC reading with the host clock's time at it (the midpoint of two
/// host reads around it), or None if the host reads lay more than
/// `TIGHT` apart.
fn paired() -> Option<(u64, Instant)> {
    let h0 = Instant::now();
    let tsc = rdtsc();
    let h1 = Instant::now();
    let gap = h1.saturating_duration_since(h0);
    if gap > TIGHT {
        return None;
    }
    Some((tsc, h0.checked_add(gap / 2)?))
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
    calibrate(host);
    Stamp { tsc, host: Some(host) }
}

/// Measure the ratio once the calibration span is long enough (from a
/// fresh tight pair of readings; a loose one waits for the next call).
#[cold]
fn calibrate(host: Instant) {
    let Some(c) = calibration() else { return };
    if host.saturating_duration_since(c.host0) < CALIBRATE_AFTER {
        return;
    }
    let Some((tsc, host)) = paired() else { return };
    let span = host.saturating_duration_since(c.host0);
    let ticks = tsc.saturating_sub(c.tsc0);
    if ticks == 0 {
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

    /// `ours` lies within what the host clock saw around it: at least
    /// `inner`, at most `outer` (reads bracketing each stamp), give or
    /// take the calibration's error (0.1 %: 0.5 % allowed) and 50 µs.
    fn within(ours: Duration, inner: Duration, outer: Duration) {
        let slack = |d: Duration| d / 200 + Duration::from_micros(50);
        assert!(ours + slack(inner) >= inner, "{ours:?} below {inner:?}");
        assert!(ours <= outer + slack(outer), "{ours:?} above {outer:?}");
    }

    /// Each stamp is bracketed by host clock reads, so the checks hold
    /// however long the thread is kept off its CPU between reads (both
    /// CPUs busy).
    #[test]
    fn stamps_measure_what_the_host_clock_measures() {
        init();
        let h0 = Instant::now();
        let a = now();
        let h1 = Instant::now();
        // Past the calibration span: `b` calibrates (where the TSC is
        // usable and a tight pair is had; else it carries a host read).
        std::thread::sleep(Duration::from_millis(15));
        let h2 = Instant::now();
        let b = now();
        let h3 = Instant::now();
        within(b.saturating_duration_since(a), h2 - h1, h3 - h0);
        // Stamps taken later measure as well, calibrated or not.
        let h4 = Instant::now();
        let c = now();
        let h5 = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        let h6 = Instant::now();
        let d = now();
        let h7 = Instant::now();
        within(d.saturating_duration_since(c), h6 - h5, h7 - h4);
        // Backwards is zero.
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    }
}
