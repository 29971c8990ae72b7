//! A pool of ready address spaces in front of a platform: a new stub
//! process (a host fork, the stub's set-up, its seccomp filter) costs about
//! half a millisecond, and a shell's fork+exec needs two of them. A
//! "stub-pool" thread keeps `target` spaces made ahead of time, so that
//! fork and exec take a ready one and the making overlaps with guest work
//! (a shell waiting in wait4 leaves a CPU idle).
//!
//! The boundary is unchanged: a pooled space is made by the same
//! `new_address_space` of the wrapped platform, never mapped into before
//! it is handed out, and the refill thread starts only on the second
//! request, which the Sentry makes after installing its own seccomp
//! filters, so stubs that inherit the Sentry's filters (ptrace's) get them
//! exactly as one made on demand would. Not on the first: that is the
//! first process's, whose exec builds on it, and a sandbox whose program
//! never forks or execs again (`do /bin/true`, `python3 -c pass`) would
//! make two stubs for nothing while it starts. The `Arc` handed out is the one the
//! platform made (platforms find their state by its address).

use crate::{AddressSpace, Context, Platform, PlatformError};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

struct Pool {
    state: Mutex<PoolState>,
    wake: Condvar,
    target: usize,
}

#[derive(Default)]
struct PoolState {
    ready: VecDeque<Arc<dyn AddressSpace>>,
    /// The refill thread has been started.
    started: bool,
    /// Requests so far (up to 2).
    requests: u8,
    /// The platform is gone, or making a space failed: stop refilling.
    closed: bool,
}

fn lock(m: &Mutex<PoolState>) -> MutexGuard<'_, PoolState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `inner` with up to `target` address spaces made ahead of time.
pub struct PooledPlatform {
    inner: Arc<dyn Platform>,
    pool: Arc<Pool>,
}

impl PooledPlatform {
    pub fn new(inner: Arc<dyn Platform>, target: usize) -> Self {
        PooledPlatform {
            inner,
            pool: Arc::new(Pool { state: Mutex::new(PoolState::default()), wake: Condvar::new(), target }),
        }
    }

    fn start_refill(&self) {
        let inner = self.inner.clone();
        let pool = self.pool.clone();
        let spawned = std::thread::Builder::new()
            .name("stub-pool".into())
            .stack_size(256 * 1024)
            .spawn(move || refill(&*inner, &pool));
        if spawned.is_err() {
            lock(&self.pool.state).closed = true;
        }
    }
}

/// Keep the pool at its target until closed; never holds the lock while a
/// space is being made.
fn refill(inner: &dyn Platform, pool: &Pool) {
    loop {
        {
            let mut s = lock(&pool.state);
            while !s.closed && s.ready.len() >= pool.target {
                s = pool.wake.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if s.closed {
                return;
            }
        }
        match inner.new_address_space() {
            Ok(space) => {
                // What the first guest thread needs, made here rather than
                // on the exec or fork that takes the space.
                space.prepare();
                let mut s = lock(&pool.state);
                if s.closed {
                    return;
                }
                s.ready.push_back(space);
            }
            // Callers make their own (and see the error themselves).
            Err(_) => {
                lock(&pool.state).closed = true;
                return;
            }
        }
    }
}

impl Platform for PooledPlatform {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let _t = crate::profile::span(crate::profile::Phase::NewAddressSpaceWait);
        let (ready, start) = {
            let mut s = lock(&self.pool.state);
            s.requests = s.requests.saturating_add(1).min(2);
            let start = !s.started && !s.closed && s.requests >= 2;
            s.started |= start;
            (s.ready.pop_front(), start)
        };
        if start {
            self.start_refill();
        }
        self.pool.wake.notify_one();
        match ready {
            Some(space) => {
                space.refresh();
                Ok(space)
            }
            None => self.inner.new_address_space(),
        }
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        self.inner.new_context()
    }

    fn max_user_address(&self) -> u64 {
        self.inner.max_user_address()
    }

    fn vfork_shares_space(&self) -> bool {
        self.inner.vfork_shares_space()
    }
}

impl Drop for PooledPlatform {
    fn drop(&mut self) {
        let ready = {
            let mut s = lock(&self.pool.state);
            s.closed = true;
            std::mem::take(&mut s.ready)
        };
        self.pool.wake.notify_all();
        drop(ready);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Prot;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    struct Space;
    impl AddressSpace for Space {
        fn map(&self, _: u64, _: u64, _: Prot, _: u64) -> Result<(), PlatformError> {
            Ok(())
        }
        fn unmap(&self, _: u64, _: u64) -> Result<(), PlatformError> {
            Ok(())
        }
        fn protect(&self, _: u64, _: u64, _: Prot) -> Result<(), PlatformError> {
            Ok(())
        }
    }

    /// Counts the spaces it makes and remembers their addresses.
    #[derive(Default)]
    struct Counting {
        made: AtomicUsize,
        addrs: Mutex<Vec<usize>>,
    }
    impl Platform for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
            self.made.fetch_add(1, Ordering::SeqCst);
            let s: Arc<dyn AddressSpace> = Arc::new(Space);
            self.addrs.lock().unwrap().push(Arc::as_ptr(&s) as *const () as usize);
            Ok(s)
        }
        fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
            Err(PlatformError::Unavailable("test".into()))
        }
        fn max_user_address(&self) -> u64 {
            1 << 40
        }
    }

    fn wait_for(cond: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Nothing is made ahead before the second request (the first is the
    /// first process's; the Sentry's filters are in place by then);
    /// afterwards the pool fills to its target, and what it hands out is
    /// the platform's own allocation.
    #[test]
    fn fills_only_after_second_request_and_hands_out_the_platforms_spaces() {
        let inner = Arc::new(Counting::default());
        let pool = PooledPlatform::new(inner.clone(), 2);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(inner.made.load(Ordering::SeqCst), 0);
        let first = pool.new_address_space().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(inner.made.load(Ordering::SeqCst), 1, "the first request starts no refill");
        let second = pool.new_address_space().unwrap();
        assert!(wait_for(|| inner.made.load(Ordering::SeqCst) == 4));
        let third = pool.new_address_space().unwrap();
        let addrs = inner.addrs.lock().unwrap().clone();
        for s in [&first, &second, &third] {
            assert!(addrs.contains(&(Arc::as_ptr(s) as *const () as usize)));
        }
        assert!(wait_for(|| inner.made.load(Ordering::SeqCst) == 5));
        drop(pool);
    }
}
