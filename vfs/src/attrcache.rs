//! Cached host attributes and when they may be trusted: the revalidation
//! policy of a host mount (gVisor's gofer dentries: revalidated against a
//! host stat on every walk for shared mounts, trusted for exclusive ones).
//!
//! - [`Revalidate::EachCall`] (bind mounts, read-write or not: the host
//!   may change them at any time and the guest must see it at its next
//!   call): a walk step costs one host statx of the name, which both finds
//!   the node and refreshes its attributes; those attributes then serve
//!   every other stat of the node within the same guest syscall (the walk's
//!   directory checks, the symlink test, the final stat), never the next
//!   one. Any change the Sentry makes through the mount ends them at once.
//! - [`Revalidate::After`] (the host's tree under the root overlay of `do`
//!   and a read-only bundle root, which the sandbox itself can never
//!   change): attributes and names are trusted for that long, then checked
//!   again against the host (a host-side change is seen within it).
//!
//! A guest syscall is told apart by a ticket the syscall dispatcher takes
//! ([`begin_call`]); a thread that has none (boot, tests) caches nothing
//! under `EachCall`.

use abi::Stat;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How a host mount's cached attributes are revalidated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revalidate {
    /// Within one guest syscall only.
    EachCall,
    /// For this long after the host was asked.
    After(Duration),
}

/// How long the root overlay's host layer is trusted.
pub const TRUSTED_FOR: Duration = Duration::from_millis(1000);

thread_local! {
    /// This thread's current ticket (0: none yet).
    static CALL: Cell<u64> = const { Cell::new(0) };
    /// This thread's ticket space: tickets are `base + n`, so no two
    /// threads ever hold the same one, and taking one touches no shared
    /// cache line on the syscall path (one atomic per thread, once).
    static CALL_BASE: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed) << 40;
    /// When the current call first asked the time (None: not yet): every
    /// `After` check within one guest call uses that instant, so a walk
    /// that checks a dozen cached nodes reads the clock once. (A call's
    /// walks come before it blocks, so the instant is not old then.)
    static CALL_NOW: Cell<Option<u64>> = const { Cell::new(None) };
}
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

/// A guest syscall begins on this thread: attributes cached under
/// `EachCall` before now are no longer trusted here.
pub fn begin_call() {
    CALL.with(|c| {
        let next = match c.get() {
            0 => CALL_BASE.with(|b| *b),
            n => n,
        };
        // 2^40 calls per thread before the space would wrap into the next
        // thread's: far beyond any Sentry thread's life.
        c.set(next.wrapping_add(1));
    });
    CALL_NOW.with(|n| n.set(None));
}

/// The time for `After` checks: the current call's first reading (a
/// thread without a ticket reads the clock each time).
fn call_now() -> u64 {
    if current_call() == 0 {
        return coarse_now();
    }
    CALL_NOW.with(|n| {
        n.get().unwrap_or_else(|| {
            let t = coarse_now();
            n.set(Some(t));
            t
        })
    })
}

/// Nanoseconds of the coarse monotonic clock: the kernel's copy updated at
/// each tick, read through the vDSO in a few ns (the precise clock costs
/// ~40 ns here, at every stat of a cached file). Its steps of a few
/// milliseconds are nothing against a trust period of a second.
fn coarse_now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec.max(0) as u64)
}

fn current_call() -> u64 {
    CALL.with(Cell::get)
}

/// One node's cached attributes.
#[derive(Default)]
pub(crate) struct AttrCache {
    slot: Mutex<Option<Cached>>,
}

struct Cached {
    st: Stat,
    call: u64,
    /// `coarse_now` when read from the host.
    at: u64,
    generation: u64,
}

impl AttrCache {
    /// The cached attributes if `policy` still trusts them; `generation`
    /// is the mount's change count now.
    pub(crate) fn get(&self, policy: Revalidate, generation: u64) -> Option<Stat> {
        let g = crate::util::lock(&self.slot);
        let c = g.as_ref()?;
        if c.generation != generation {
            return None;
        }
        let fresh = match policy {
            Revalidate::EachCall => c.call != 0 && c.call == current_call(),
            // `at` may be later than the call's time (cached during this
            // call): saturating, that counts as fresh.
            Revalidate::After(ttl) => u128::from(call_now().saturating_sub(c.at)) < ttl.as_nanos(),
        };
        fresh.then_some(c.st)
    }

    /// Remember `st`, just read from the host at change count `generation`.
    pub(crate) fn put(&self, st: Stat, generation: u64) {
        // Stamped with the call's time (its first reading of the clock).
        let c = Cached { st, call: current_call(), at: call_now(), generation };
        *crate::util::lock(&self.slot) = Some(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(size: i64) -> Stat {
        Stat { st_size: size, ..Default::default() }
    }

    #[test]
    fn each_call_trusts_only_the_same_call() {
        let c = AttrCache::default();
        // No ticket (boot, tests): nothing is trusted.
        std::thread::spawn(move || {
            c.put(st(1), 0);
            assert_eq!(c.get(Revalidate::EachCall, 0), None);
            begin_call();
            c.put(st(2), 0);
            assert_eq!(c.get(Revalidate::EachCall, 0), Some(st(2)));
            // A change through the mount, then the next call.
            assert_eq!(c.get(Revalidate::EachCall, 1), None);
            begin_call();
            assert_eq!(c.get(Revalidate::EachCall, 0), None);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn after_trusts_for_its_period() {
        let c = AttrCache::default();
        c.put(st(3), 7);
        assert_eq!(c.get(Revalidate::After(Duration::from_secs(3600)), 7), Some(st(3)));
        assert_eq!(c.get(Revalidate::After(Duration::from_secs(3600)), 8), None);
        assert_eq!(c.get(Revalidate::After(Duration::ZERO), 7), None);
    }
}
