//! Pausing a whole sandbox (the OCI `pause` and `resume` commands): every
//! task parks at its next return to the Sentry (a syscall, a fault, a
//! signal) until the sandbox is resumed. Unlike a group stop this is
//! invisible to the guest: no SIGCHLD, no wait status, no state change in
//! /proc. A task blocked in a syscall parks when the call returns.

use crate::locking::lock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

#[derive(Default)]
pub struct Freeze {
    /// Read on every return to the guest: an atomic, not the mutex.
    fast: AtomicBool,
    frozen: Mutex<bool>,
    cv: Condvar,
}

impl Freeze {
    pub fn set(&self, frozen: bool) {
        *lock(&self.frozen) = frozen;
        self.fast.store(frozen, Ordering::Release);
        if !frozen {
            self.cv.notify_all();
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.fast.load(Ordering::Acquire)
    }

    /// Block the calling task while the sandbox is paused, or until
    /// `give_up` says the task must go on (it was killed).
    pub fn park(&self, give_up: &dyn Fn() -> bool) {
        let mut f = lock(&self.frozen);
        while *f && !give_up() {
            // The timeout only bounds a missed notification and lets a
            // SIGKILL through.
            f = self
                .cv
                .wait_timeout(f, std::time::Duration::from_millis(100))
                .map(|(g, _)| g)
                .unwrap_or_else(|_| crate::locking::poisoned());
        }
    }
}
