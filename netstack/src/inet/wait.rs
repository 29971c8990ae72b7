//! Blocking on a mutex and condition variable, as `vfs::Waitable` does,
//! with what sockets need besides: a deadline (SO_RCVTIMEO/SO_SNDTIMEO), a
//! count of sleepers so wakers skip the futex call when nobody sleeps, and
//! a way out that keeps partial progress (a send interrupted after some
//! bytes went returns their count).

use abi::Errno;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vfs::IoCtx;

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|_| vfs::poisoned())
}

/// State that blocking operations wait on: it counts its sleepers.
pub trait Sleepers {
    fn sleepers(&mut self) -> &mut u32;
    /// Whether `step` asked for the `deferred` action before the next
    /// sleep (poll waiters may re-enter the socket, so they are told with
    /// the lock released). Clears the request.
    fn take_deferred(&mut self) -> bool {
        false
    }
}

/// Wake the sleepers of `m`/`cv` (the caller holds the guard `g`).
pub fn wake<S: Sleepers>(g: &mut S, cv: &Condvar) {
    if *g.sleepers() > 0 {
        cv.notify_all();
    }
}

/// Run `step` under the lock until it returns Some; in between sleep on
/// `cv`. When the file is non-blocking, the deadline passes (EAGAIN) or
/// the task is interrupted (ERESTARTSYS), `give_up` decides the result
/// (it may return partial progress instead of the errno).
pub fn block<S: Sleepers, R>(
    (m, cv): (&Mutex<S>, &Condvar),
    io: &IoCtx,
    deadline: Option<Instant>,
    waker: impl FnOnce() -> Arc<dyn Fn() + Send + Sync>,
    mut step: impl FnMut(&mut S) -> Option<Result<R, Errno>>,
    mut give_up: impl FnMut(&mut S, Errno) -> Result<R, Errno>,
    deferred: &dyn Fn(),
) -> Result<R, Errno> {
    {
        let mut g = lock(m);
        if let Some(r) = step(&mut g) {
            return r;
        }
        if io.nonblock() {
            return give_up(&mut g, Errno::EAGAIN);
        }
        if g.take_deferred() {
            drop(g);
            deferred();
        }
    }
    io.interrupt.with_waker(waker(), || {
        let mut g = lock(m);
        loop {
            if let Some(r) = step(&mut g) {
                return r;
            }
            if io.interrupt.is_pending() {
                return give_up(&mut g, Errno::ERESTARTSYS);
            }
            if g.take_deferred() {
                drop(g);
                deferred();
                g = lock(m);
                continue;
            }
            let slice = match deadline {
                Some(t) => {
                    let left = t.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return give_up(&mut g, Errno::EAGAIN);
                    }
                    left.min(Duration::from_millis(200))
                }
                None => Duration::from_millis(200),
            };
            *g.sleepers() += 1;
            g = cv.wait_timeout(g, slice).map(|(g, _)| g).unwrap_or_else(|_| vfs::poisoned());
            *g.sleepers() -= 1;
        }
    })
}

/// A waker for `block` that takes `m`'s lock and wakes `cv` (so an
/// interrupt cannot slip between a sleeper's check and its sleep).
pub fn waker<T: Send + Sync + 'static, S: 'static>(
    owner: Arc<T>,
    parts: fn(&T) -> (&Mutex<S>, &Condvar),
) -> Arc<dyn Fn() + Send + Sync> {
    Arc::new(move || {
        let (m, cv) = parts(&owner);
        let _g = lock(m);
        cv.notify_all();
    })
}
