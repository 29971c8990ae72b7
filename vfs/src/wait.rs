//! Blocking inside file operations, interruptible by the Sentry (signals,
//! exit) from another thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Per-task interrupt flag with an optional waker for the wait queue the
/// task is blocked on.
#[derive(Default)]
pub struct Interrupt {
    pending: AtomicBool,
    waker: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl Interrupt {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Whether the task must stop blocking (and return EINTR/ERESTARTSYS).
    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Ask the task to stop blocking; wakes it if it is waiting.
    pub fn interrupt(&self) {
        self.pending.store(true, Ordering::Release);
        let w = self.waker.lock().ok().and_then(|g| g.clone());
        if let Some(w) = w {
            w();
        }
    }

    pub fn clear(&self) {
        self.pending.store(false, Ordering::Release);
    }

    /// Run `f` (which blocks) with `waker` installed: an interrupt calls
    /// `waker`, which must wake `f`'s wait (take the waited-on lock, then
    /// notify, so no wake-up is lost).
    pub fn with_waker<R>(&self, waker: Arc<dyn Fn() + Send + Sync>, f: impl FnOnce() -> R) -> R {
        if let Ok(mut g) = self.waker.lock() {
            *g = Some(waker);
        }
        let r = f();
        if let Ok(mut g) = self.waker.lock() {
            *g = None;
        }
        r
    }
}

/// What a file operation knows of its caller.
pub struct IoCtx<'a> {
    /// The open file's status flags (O_NONBLOCK, O_APPEND, ...).
    pub flags: u32,
    /// Set when the calling task must stop blocking.
    pub interrupt: &'a Interrupt,
}

impl IoCtx<'_> {
    pub fn nonblock(&self) -> bool {
        self.flags & abi::flags::O_NONBLOCK != 0
    }
}
