//! Blocking inside file operations, interruptible by the Sentry (signals,
//! exit) from another thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// When a wait of `d` starting now ends; None means never: `d` reaches past
/// what an `Instant` can hold. Guest timeouts go through here, never
/// through `Instant + Duration`, which panics on overflow (guest times are
/// clamped to `abi::KTIME_MAX_NS` first, so None is a last resort).
pub fn deadline_after(d: std::time::Duration) -> Option<std::time::Instant> {
    std::time::Instant::now().checked_add(d)
}

/// Per-task interrupt flag with an optional waker for the wait queue the
/// task is blocked on.
#[derive(Default)]
pub struct Interrupt {
    pending: AtomicBool,
    waker: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
    /// Nanoseconds spent blocked since the last `take_blocked_ns`: the
    /// Sentry does not count them as the task's system time.
    blocked_ns: AtomicU64,
    /// Whether the task is inside a blocking wait now: /proc shows it as
    /// sleeping (S) rather than running.
    sleeping: AtomicBool,
    /// Whether the task is in a wait signals do not end (/proc: D).
    uninterruptible: AtomicBool,
    /// Blocking waits so far (/proc's voluntary_ctxt_switches).
    waits: AtomicU64,
    /// Told when the task is about to block (`platform::Context::block_hint`).
    block_hook: OnceLock<Arc<dyn Fn() + Send + Sync>>,
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
        let w = crate::util::lock(&self.waker).clone();
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
        if let Some(hook) = self.block_hook.get() {
            hook();
        }
        self.wait_with(waker, f)
    }

    /// `with_waker` for a wait that usually ends within tens of
    /// microseconds (an answer from the egress broker): the platform is
    /// not told the task blocked, so the guest thread's side goes on
    /// polling for the answer, which saves it a wake-up.
    pub fn with_waker_brief<R>(&self, waker: Arc<dyn Fn() + Send + Sync>, f: impl FnOnce() -> R) -> R {
        self.wait_with(waker, f)
    }

    fn wait_with<R>(&self, waker: Arc<dyn Fn() + Send + Sync>, f: impl FnOnce() -> R) -> R {
        *crate::util::lock(&self.waker) = Some(waker);
        let start = std::time::Instant::now();
        self.sleeping.store(true, Ordering::Relaxed);
        self.waits.fetch_add(1, Ordering::Relaxed);
        let r = f();
        self.sleeping.store(false, Ordering::Relaxed);
        self.add_blocked(start.elapsed());
        *crate::util::lock(&self.waker) = None;
        r
    }

    /// Install what `with_waker` tells first (once, by the task's creator).
    pub fn set_block_hook(&self, hook: Arc<dyn Fn() + Send + Sync>) {
        let _ = self.block_hook.set(hook);
    }

    /// Record time the task spent blocked outside `with_waker` (sleeps).
    pub fn add_blocked(&self, d: std::time::Duration) {
        self.blocked_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Whether the task is blocked in a wait (interruptible sleep).
    pub fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
    }

    /// Mark the start (true) and end (false) of a wait that signals do
    /// not end (a vfork parent's): /proc shows the task as D.
    pub fn set_uninterruptible(&self, on: bool) {
        self.uninterruptible.store(on, Ordering::Relaxed);
    }

    /// How many blocking waits the task has entered.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    pub fn is_uninterruptible(&self) -> bool {
        self.uninterruptible.load(Ordering::Relaxed)
    }

    /// The blocked time recorded since the last call.
    pub fn take_blocked_ns(&self) -> u64 {
        // Read first: most calls never blocked, and a locked swap at every
        // syscall costs more than the load.
        if self.blocked_ns.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.blocked_ns.swap(0, Ordering::Relaxed)
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

/// State behind a lock that blocking operations wait on: changes call
/// `notify`, waiters re-check their condition.
pub struct Waitable<T> {
    state: std::sync::Mutex<T>,
    cond: std::sync::Condvar,
    /// poll/select/epoll waiters, told at every `notify`.
    pub queue: WaitQueue,
}

impl<T: Send + 'static> Waitable<T> {
    pub fn new(v: T) -> Arc<Self> {
        Arc::new(Waitable {
            state: std::sync::Mutex::new(v),
            cond: std::sync::Condvar::new(),
            queue: WaitQueue::default(),
        })
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        self.state.lock().unwrap_or_else(|_| crate::util::poisoned())
    }

    /// Wake every waiter (call after changing the state).
    pub fn notify(&self) {
        {
            let _g = self.lock();
            self.cond.notify_all();
        }
        self.queue.notify();
    }

    /// Run `step` under the lock until it returns Some; in between sleep
    /// until notified, `wake_at` (re-checked each round) passes, or the task
    /// is interrupted (ERESTARTSYS). Non-blocking files get EAGAIN.
    pub fn block_on<R>(
        self: &Arc<Self>,
        ctx: &IoCtx,
        mut step: impl FnMut(&mut T) -> Option<Result<R, abi::Errno>>,
        wake_at: impl Fn(&T) -> Option<std::time::Instant>,
    ) -> Result<R, abi::Errno> {
        {
            let mut g = self.lock();
            if let Some(r) = step(&mut g) {
                return r;
            }
            if ctx.nonblock() {
                return Err(abi::Errno::EAGAIN);
            }
        }
        let me = self.clone();
        let waker: Arc<dyn Fn() + Send + Sync> = Arc::new(move || me.notify());
        ctx.interrupt.with_waker(waker, || {
            let mut g = self.lock();
            loop {
                if let Some(r) = step(&mut g) {
                    return r;
                }
                if ctx.interrupt.is_pending() {
                    return Err(abi::Errno::ERESTARTSYS);
                }
                let slice = match wake_at(&g) {
                    Some(t) => {
                        t.saturating_duration_since(std::time::Instant::now()).max(std::time::Duration::from_micros(50))
                    }
                    None => std::time::Duration::from_millis(200),
                };
                g = self.cond.wait_timeout(g, slice).map(|(g, _)| g).unwrap_or_else(|_| crate::util::poisoned());
            }
        })
    }
}

/// Something to tell when a file's readiness may have changed.
pub trait Notify: Send + Sync {
    fn notify(&self);
}

/// The parties waiting for a file's readiness to change (poll, select,
/// epoll). Files that can become ready later own one and call `notify`
/// after every state change; waiters re-check readiness themselves. Entries
/// are weak: a waiter that is gone drops out at the next notify/register.
#[derive(Default)]
pub struct WaitQueue {
    entries: Mutex<Vec<std::sync::Weak<dyn Notify>>>,
}

impl WaitQueue {
    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<std::sync::Weak<dyn Notify>>> {
        self.entries.lock().unwrap_or_else(|_| crate::util::poisoned())
    }

    pub fn register(&self, n: &Arc<dyn Notify>) {
        let mut e = self.entries();
        e.retain(|w| w.strong_count() > 0);
        e.push(Arc::downgrade(n));
    }

    /// Undo one `register` of `n`: one entry goes, not every entry of
    /// `n`. A waiter registered once per file (an epoll's interests) may
    /// hold several entries on one queue (a file and its dup, two pidfds:
    /// every pidfd shares one queue), and dropping one interest must not
    /// silence the others.
    pub fn unregister(&self, n: &Arc<dyn Notify>) {
        let target = Arc::as_ptr(n) as *const ();
        let mut e = self.entries();
        e.retain(|w| w.strong_count() > 0);
        if let Some(i) = e.iter().position(|w| w.as_ptr() as *const () == target) {
            e.swap_remove(i);
        }
    }

    /// Tell every waiter (outside the queue's lock, so a waiter may
    /// re-enter the file).
    pub fn notify(&self) {
        let live: Vec<Arc<dyn Notify>> = {
            let mut e = self.entries();
            if e.is_empty() {
                return;
            }
            e.retain(|w| w.strong_count() > 0);
            e.iter().filter_map(|w| w.upgrade()).collect()
        };
        for n in live {
            n.notify();
        }
    }
}

/// One blocked poll/select/epoll_wait: woken by any file it registered
/// with, or by the task's interrupt.
#[derive(Default)]
pub struct PollWaiter {
    woken: Mutex<bool>,
    cond: std::sync::Condvar,
}

impl Notify for PollWaiter {
    fn notify(&self) {
        let mut g = self.woken.lock().unwrap_or_else(|_| crate::util::poisoned());
        *g = true;
        self.cond.notify_all();
    }
}

impl PollWaiter {
    pub fn new() -> Arc<PollWaiter> {
        Arc::new(PollWaiter::default())
    }

    /// Sleep until notified (since the last wait) or `timeout` passes;
    /// returns whether it was notified.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        let mut g = self.woken.lock().unwrap_or_else(|_| crate::util::poisoned());
        if !*g {
            g = self.cond.wait_timeout(g, timeout).map(|(g, _)| g).unwrap_or_else(|_| crate::util::poisoned());
        }
        std::mem::replace(&mut *g, false)
    }
}
