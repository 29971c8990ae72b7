//! timerfd: a timer whose expirations are read as a count.

use crate::wait::{IoCtx, Waitable};
use crate::FileOps;
use abi::Errno;
use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Timer {
    next: Option<Instant>,
    interval: Duration,
    /// Expirations not yet read.
    ticks: u64,
}

impl Timer {
    /// Fold the expirations up to now into `ticks`.
    fn advance(&mut self, now: Instant) {
        let Some(next) = self.next else { return };
        if now < next {
            return;
        }
        if self.interval.is_zero() {
            self.ticks += 1;
            self.next = None;
        } else {
            let late = (now - next).as_nanos() / self.interval.as_nanos().max(1);
            let n = u64::try_from(late).unwrap_or(u64::MAX).saturating_add(1);
            self.ticks = self.ticks.saturating_add(n);
            // Past what an Instant holds means never again.
            let step = self.interval.checked_mul(u32::try_from(n).unwrap_or(u32::MAX));
            self.next = step.and_then(|s| next.checked_add(s));
        }
    }
}

pub struct TimerFd {
    t: Arc<Waitable<Timer>>,
    /// The clock absolute times are given on (CLOCK_REALTIME, MONOTONIC).
    pub clock: i32,
}

impl TimerFd {
    pub fn new(clock: i32) -> Arc<TimerFd> {
        Arc::new(TimerFd { t: Waitable::new(Timer::default()), clock })
    }

    /// Arm for `first` from now (None disarms), then every `interval`;
    /// returns the previous (time left, interval).
    pub fn set(&self, first: Option<Duration>, interval: Duration) -> (Duration, Duration) {
        let old = self.get();
        {
            let mut t = self.t.lock();
            t.next = first.and_then(crate::wait::deadline_after);
            t.interval = interval;
            t.ticks = 0;
        }
        self.t.notify();
        old
    }

    /// (time left until the next expiration, interval).
    pub fn get(&self) -> (Duration, Duration) {
        let mut t = self.t.lock();
        let now = Instant::now();
        t.advance(now);
        (t.next.map(|n| n.saturating_duration_since(now)).unwrap_or_default(), t.interval)
    }
}

impl FileOps for TimerFd {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let n = self.t.block_on(
            ctx,
            |t| {
                t.advance(Instant::now());
                if t.ticks == 0 {
                    return None;
                }
                Some(Ok(std::mem::take(&mut t.ticks)))
            },
            |t| t.next,
        )?;
        buf[..8].copy_from_slice(&n.to_ne_bytes());
        Ok(8)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> u32 {
        let mut t = self.t.lock();
        t.advance(Instant::now());
        if t.ticks > 0 {
            libc::POLLIN as u32
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&crate::wait::WaitQueue> {
        Some(&self.t.queue)
    }

    fn ready_at(&self) -> Option<Instant> {
        let t = self.t.lock();
        if t.ticks > 0 {
            return Some(Instant::now());
        }
        t.next
    }

    fn stat(&self) -> Option<abi::Stat> {
        Some(abi::Stat { st_mode: 0o600, st_nlink: 1, st_blksize: 4096, ..Default::default() })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
