//! The guest vDSO and the clock the Sentry shares with it.
//!
//! Every address space gets the same two shared, read-only mappings: the
//! vvar page (clock parameters) and, right above it, the vDSO image built
//! from vdso/vdso.c. The vDSO converts the TSC into CLOCK_MONOTONIC and
//! CLOCK_REALTIME with the parameters; the Sentry's clock_gettime uses the
//! very same parameters, so syscall and vDSO readings interleave without
//! going backwards.
//!
//! The parameters come from a calibration thread: invalid for the first
//! ~4 ms (the vDSO makes the syscall, the Sentry reads the host clocks),
//! refined at ~20 ms, then re-anchored every second. Each re-anchoring
//! keeps the clock continuous (the new base is the old line's value now)
//! and steers the rate so that the clock follows the host's (at most 100
//! ppm of slew), so sleeps and timeouts, which the Sentry measures with the
//! host clock, agree with what the guest reads.

use crate::memfile::{MemRange, MemoryFile};
use crate::mm::{MemoryManager, VmaName};
use abi::{Errno, PAGE_SIZE};
use platform::Prot;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The vDSO image (an ELF shared object without relocations).
pub static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// The vvar page's layout (struct vvar_data in vdso.c).
const V_SEQ: u64 = 0;
const V_ENABLED: u64 = 4;
const V_TSC_BASE: u64 = 8;
const V_MONO_BASE: u64 = 16;
const V_REAL_BASE: u64 = 24;
const V_MULT: u64 = 32;
const V_SHIFT: u64 = 40;
const SHIFT: u32 = 32;

/// What the clock line is, as last published.
#[derive(Clone, Copy, Debug, Default)]
struct Params {
    enabled: bool,
    tsc_base: u64,
    mono_base: u64,
    real_base: u64,
    mult: u64,
}

impl Params {
    fn at(&self, tsc: u64, real: bool) -> u64 {
        let d = tsc.saturating_sub(self.tsc_base);
        let base = if real { self.real_base } else { self.mono_base };
        base + ((d as u128 * self.mult as u128) >> SHIFT) as u64
    }
}

/// The TSC, ordered after earlier loads (as the vDSO reads it).
fn rdtsc() -> u64 {
    // SAFETY: lfence and rdtsc only read the time-stamp counter; every
    // x86-64 CPU has them.
    unsafe {
        std::arch::x86_64::_mm_lfence();
        std::arch::x86_64::_rdtsc()
    }
}

fn host_realtime_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Can the TSC stand in for the host clocks (constant rate, not stopped
/// in idle states)?
fn tsc_usable() -> bool {
    let info = String::from_utf8_lossy(crate::hostfacts::cpuinfo());
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    has("constant_tsc") && has("nonstop_tsc")
}

/// The sandbox's CLOCK_MONOTONIC and CLOCK_REALTIME, and the vDSO pages.
pub struct Clock {
    memfile: Arc<MemoryFile>,
    /// The vvar page, then the vDSO image.
    pages: Arc<MemRange>,
    image_len: u64,
    params: Mutex<Params>,
    boot: Instant,
}

impl Clock {
    /// A clock whose CLOCK_MONOTONIC reads one second at `boot` (as a
    /// fresh machine's), with its vvar and vDSO pages in `memfile`, and
    /// its calibration thread started.
    pub fn new(memfile: &Arc<MemoryFile>, boot: Instant) -> Result<Arc<Clock>, Errno> {
        let image_len = (IMAGE.len() as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let pages = memfile.alloc(PAGE_SIZE + image_len)?;
        memfile.write(pages.off + PAGE_SIZE, IMAGE)?;
        let clock =
            Arc::new(Clock { memfile: memfile.clone(), pages, image_len, params: Mutex::new(Params::default()), boot });
        if tsc_usable() {
            let weak = Arc::downgrade(&clock);
            let spawned = std::thread::Builder::new().name("vdso-clock".into()).spawn(move || calibrate(weak));
            if let Err(e) = spawned {
                tracing::warn!("vdso clock thread: {e}; timekeeping traps");
            }
        } else {
            tracing::info!("TSC not constant and nonstop: the vDSO makes syscalls for the time");
        }
        Ok(clock)
    }

    fn host_mono_ns(&self) -> u64 {
        self.boot.elapsed().as_nanos() as u64 + 1_000_000_000
    }

    /// CLOCK_MONOTONIC (and BOOTTIME, MONOTONIC_RAW) in nanoseconds.
    pub fn monotonic_ns(&self) -> u64 {
        let p = *crate::locking::lock(&self.params);
        if p.enabled {
            p.at(rdtsc(), false)
        } else {
            self.host_mono_ns()
        }
    }

    /// CLOCK_REALTIME in nanoseconds.
    pub fn realtime_ns(&self) -> u64 {
        let p = *crate::locking::lock(&self.params);
        if p.enabled {
            p.at(rdtsc(), true)
        } else {
            host_realtime_ns()
        }
    }

    /// Write `p` to the vvar page under the sequence lock.
    fn publish(&self, p: Params) {
        let off = self.pages.off;
        let Ok(seq) = self.memfile.atomic_u32(off + V_SEQ) else { return };
        let s = seq.load(Ordering::Relaxed);
        seq.store(s.wrapping_add(1) | 1, Ordering::SeqCst);
        let fields: [(u64, &[u8]); 6] = [
            (V_ENABLED, &(p.enabled as u32).to_le_bytes()),
            (V_TSC_BASE, &p.tsc_base.to_le_bytes()),
            (V_MONO_BASE, &p.mono_base.to_le_bytes()),
            (V_REAL_BASE, &p.real_base.to_le_bytes()),
            (V_MULT, &p.mult.to_le_bytes()),
            (V_SHIFT, &SHIFT.to_le_bytes()),
        ];
        for (at, bytes) in fields {
            let _ = self.memfile.write(off + at, bytes);
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        seq.store((s.wrapping_add(1) | 1).wrapping_add(1), Ordering::SeqCst);
    }

    /// Map the vvar page and the vDSO into `mm`; returns the vDSO's address
    /// (AT_SYSINFO_EHDR).
    pub fn map_into(&self, mm: &MemoryManager) -> Result<u64, Errno> {
        let total = PAGE_SIZE + self.image_len;
        let base = mm.map_range(0, total, Prot::R, true, false, self.pages.clone(), 0, VmaName::Vvar)?;
        mm.map_range(
            base + PAGE_SIZE,
            self.image_len,
            Prot::RX,
            true,
            true,
            self.pages.clone(),
            PAGE_SIZE,
            VmaName::Vdso,
        )?;
        Ok(base + PAGE_SIZE)
    }
}

/// The TSC and the host's monotonic clock read together: of a few
/// tries, the one whose host read the fewest ticks enclosed (a thread
/// preempted between the two reads would tilt the rate), the TSC taken
/// as the middle of that window.
fn paired_read(c: &Clock) -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..5 {
        let t1 = rdtsc();
        let host = c.host_mono_ns();
        let t2 = rdtsc();
        let window = t2.saturating_sub(t1);
        if window < best.0 {
            best = (window, t1 + window / 2, host);
        }
    }
    (best.1, best.2)
}

/// Waits between calibration steps: a first rate after 4 ms (a program
/// started at boot reads the clock within a few milliseconds: python's
/// start-up made 60-90 trapped clock_gettime calls while the first
/// parameters took 20 ms), refined at 20 ms over the longer baseline, then
/// a re-anchoring every second. Over 4 ms, paired readings ~50 ns wide
/// put the first rate within ~25 ppm, inside the 100 ppm the re-anchoring
/// steers by.
const CALIBRATION_STEPS: [Duration; 2] = [Duration::from_millis(4), Duration::from_millis(16)];

/// The calibration thread: first parameters after ~4 ms, refined at
/// ~20 ms, then re-anchored every second, until the clock is dropped.
fn calibrate(clock: std::sync::Weak<Clock>) {
    let (tsc0, host0) = {
        let Some(c) = clock.upgrade() else { return };
        paired_read(&c)
    };
    let mut steps = CALIBRATION_STEPS.into_iter();
    loop {
        std::thread::sleep(steps.next().unwrap_or(Duration::from_secs(1)));
        let Some(c) = clock.upgrade() else { return };
        let (tsc, host) = paired_read(&c);
        let real = host_realtime_ns();
        let (dt, dh) = (tsc.saturating_sub(tsc0), host.saturating_sub(host0));
        if dt == 0 || dh == 0 {
            continue;
        }
        // ns per TSC tick over the whole baseline, in 32.32 fixed point.
        let rate = ((dh as u128) << SHIFT) / dt as u128;
        let p = *crate::locking::lock(&c.params);
        let next = if p.enabled {
            // Continuous: start from where the current line is now, and
            // steer towards the host clock over the next second.
            let (mono, realnow) = (p.at(tsc, false), p.at(tsc, true));
            // Off by at most 100 us: corrected within a second at most
            // 100 ppm off the measured rate. Realtime keeps its offset
            // from monotonic (host realtime steps are not followed).
            let err = (host as i128 - mono as i128).clamp(-100_000, 100_000);
            let m = (rate as i128 * (1_000_000_000 + err) / 1_000_000_000).max(1) as u64;
            Params { enabled: true, tsc_base: tsc, mono_base: mono, real_base: realnow, mult: m }
        } else {
            Params { enabled: true, tsc_base: tsc, mono_base: host, real_base: real, mult: rate as u64 }
        };
        *crate::locking::lock(&c.params) = next;
        c.publish(next);
    }
}
