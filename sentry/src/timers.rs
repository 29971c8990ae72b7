//! The sandbox's timer thread: one host thread, started on first use,
//! serves every ITIMER_REAL and the CPU-timer ticks of every process from
//! a heap of deadlines, so no guest can multiply host threads by arming
//! timers (each armed timer is one heap entry, bounded by the processes
//! that can exist).
//!
//! Callbacks run on the timer thread with no timer lock held; they must
//! not block (sending a signal and kicking threads is what they do).
//! Lock order: a caller may hold its own timer state (ITIMER_REAL's lock)
//! while it arms or cancels, never the other way round: the heap's lock is
//! innermost.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a timer does when it fires; returns when to fire again, if ever.
pub type Callback = Box<dyn FnMut(Instant) -> Option<Instant> + Send>;

/// Identifies an armed timer, for [`Timers::cancel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimerId(u64);

#[derive(Default)]
struct State {
    /// (deadline, id); an id no longer in `entries` was cancelled.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Armed timers: their deadline and callback.
    entries: BTreeMap<u64, (Instant, Callback)>,
    next_id: u64,
    /// The timer whose callback runs now, and whether it was cancelled
    /// meanwhile (then it is not re-armed).
    running: Option<u64>,
    running_cancelled: bool,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|_| crate::locking::poisoned())
    }
}

/// The timer thread and its deadlines.
#[derive(Default)]
pub struct Timers {
    shared: Arc<Shared>,
    started: AtomicBool,
}

/// A deadline `d` after `now`; an interval too long to represent (a guest
/// may ask for LONG_MAX seconds) saturates at KTIME_MAX (about 292
/// years), as Linux's timers do, so alarm(UINT_MAX) still reads back
/// its 136 years.
pub fn deadline_after(now: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_nanos(i64::MAX as u64);
    now.checked_add(d.min(FAR)).unwrap_or(now)
}

impl Timers {
    /// Run `f` at `at` (and again at whatever time it returns).
    pub fn arm(&self, at: Instant, f: Callback) -> TimerId {
        let id = {
            let mut s = self.shared.lock();
            s.next_id += 1;
            let id = s.next_id;
            s.entries.insert(id, (at, f));
            s.heap.push(Reverse((at, id)));
            id
        };
        self.shared.cv.notify_one();
        TimerId(id)
    }

    /// Disarm `id` (a no-op if it fired for good or was cancelled).
    pub fn cancel(&self, id: TimerId) {
        // The heap entry stays and is skipped when it comes up.
        let mut s = self.shared.lock();
        if s.entries.remove(&id.0).is_none() && s.running == Some(id.0) {
            s.running_cancelled = true;
        }
        // Cancelled far-off deadlines would pile up in the heap: rebuild
        // it from the live entries once they are most of it.
        if s.heap.len() > 2 * s.entries.len() + 64 {
            let live: BinaryHeap<_> = s.entries.iter().map(|(&id, &(at, _))| Reverse((at, id))).collect();
            s.heap = live;
        }
    }

    /// Armed timers (for tests and /proc).
    pub fn armed(&self) -> usize {
        self.shared.lock().entries.len()
    }

    /// Start the timer thread unless it runs (before arming: spawning is
    /// a host call no lock should be held across).
    pub fn start(&self) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new().name("timers".into()).spawn(move || run(&shared));
        if let Err(e) = spawned {
            self.started.store(false, Ordering::Release);
            tracing::warn!("timer thread: {e}");
        }
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cv.notify_all();
    }
}

fn run(shared: &Shared) {
    let mut s = shared.lock();
    loop {
        if s.stop {
            return;
        }
        let now = Instant::now();
        match s.heap.peek().copied() {
            None => {
                s = shared.cv.wait(s).unwrap_or_else(|_| crate::locking::poisoned());
            }
            Some(Reverse((at, _))) if at > now => {
                s = shared.cv.wait_timeout(s, at - now).map(|(g, _)| g).unwrap_or_else(|_| crate::locking::poisoned());
            }
            Some(Reverse((at, id))) => {
                s.heap.pop();
                // Skip cancelled entries and stale copies of re-armed ones.
                if s.entries.get(&id).is_none_or(|(d, _)| *d != at) {
                    continue;
                }
                let Some((_, mut f)) = s.entries.remove(&id) else { continue };
                s.running = Some(id);
                s.running_cancelled = false;
                drop(s);
                let again = f(at);
                s = shared.lock();
                s.running = None;
                if let Some(next) = again.filter(|_| !s.running_cancelled) {
                    let next = next.max(at);
                    s.entries.insert(id, (next, f));
                    s.heap.push(Reverse((next, id)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn fires_in_order_and_cancels() {
        let t = Timers::default();
        t.start();
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        for (i, ms) in [(1, 30u64), (2, 10), (3, 20)] {
            let tx = tx.clone();
            t.arm(
                now + Duration::from_millis(ms),
                Box::new(move |_| {
                    let _ = tx.send(i);
                    None
                }),
            );
        }
        let gone = t.arm(now + Duration::from_millis(5), Box::new(|_| panic!("cancelled timer fired")));
        t.cancel(gone);
        let got: Vec<i32> = (0..3).map(|_| rx.recv_timeout(Duration::from_secs(30)).expect("fired")).collect();
        assert_eq!(got, vec![2, 3, 1]);
    }

    #[test]
    fn periodic_until_it_says_stop() {
        let t = Timers::default();
        t.start();
        let (tx, rx) = mpsc::channel();
        let mut n = 0;
        t.arm(
            Instant::now(),
            Box::new(move |at| {
                n += 1;
                let _ = tx.send(n);
                (n < 3).then(|| at + Duration::from_millis(1))
            }),
        );
        for want in 1..=3 {
            assert_eq!(rx.recv_timeout(Duration::from_secs(30)).expect("tick"), want);
        }
        assert_eq!(t.armed(), 0);
    }

    #[test]
    fn huge_intervals_saturate() {
        let now = Instant::now();
        assert!(deadline_after(now, Duration::MAX) > now + Duration::from_secs(86_400 * 365));
    }
}
