//! epoll: an interest list over open files, asked for readiness by
//! epoll_wait. Level-triggered by default; EPOLLET reports a file again
//! only when a readiness bit newly appears; EPOLLONESHOT disables the
//! interest after one report until it is modified.
//!
//! Epolls may watch epolls, as on Linux, within the same limits: a chain
//! holds at most `EP_MAX_NESTS` links and never loops (EPOLL_CTL_ADD that
//! would break either rule fails with ELOOP). Every walk over nested
//! epolls (poll, `ready_at`, `needs_polling`, a wake-up passed upwards)
//! therefore ends within that depth; a thread-local depth guard backs the
//! rule up.
//!
//! Locks: an epoll's `interests` before a watched epoll's (parent before
//! child, as poll walks them); `NESTING` before any `interests` or
//! `watchers`, and no walk holds two epolls' locks while it takes
//! `NESTING`.

use crate::wait::{IoCtx, Notify, WaitQueue};
use crate::{FileOps, OpenFile};
use abi::Errno;
use std::any::Any;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub const EPOLLIN: u32 = 0x001;
pub const EPOLLERR: u32 = 0x008;
pub const EPOLLHUP: u32 = 0x010;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;

/// Linux's EP_MAX_NESTS: links in the longest chain of epolls.
pub const EP_MAX_NESTS: usize = 4;

/// Serialises EPOLL_CTL_ADD of an epoll into an epoll (Linux's
/// epnested_mutex), so two adds cannot together make a loop or a chain
/// that each alone would not.
static NESTING: Mutex<()> = Mutex::new(());

thread_local! {
    /// How deep the current walk over nested epolls is.
    static WALK_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Run `f` one level deeper in a walk over nested epolls, or return
/// `shallow` past the deepest legal nesting (unreachable while the
/// nesting rules hold; it keeps a broken rule from overflowing the stack).
fn nested<R>(shallow: R, f: impl FnOnce() -> R) -> R {
    let depth = WALK_DEPTH.with(|d| d.get());
    if depth > EP_MAX_NESTS + 1 {
        return shallow;
    }
    WALK_DEPTH.with(|d| d.set(depth + 1));
    let r = f();
    WALK_DEPTH.with(|d| d.set(depth));
    r
}

struct Interest {
    file: Weak<OpenFile>,
    events: u32,
    data: u64,
    /// Readiness at the last report (for EPOLLET).
    last: u32,
    disabled: bool,
    /// Its place under fs.epoll.max_user_watches.
    _charge: crate::limits::WatchCharge,
}

pub struct Epoll {
    me: Weak<Epoll>,
    interests: Mutex<BTreeMap<i32, Interest>>,
    /// The epolls watching this one, once per interest (for the nesting
    /// limit; dead entries are skipped). Changed under `NESTING`.
    watchers: Mutex<Vec<Weak<Epoll>>>,
    /// Waiters on this epoll (epoll_wait, and poll or an outer epoll on
    /// the epoll fd itself).
    queue: WaitQueue,
    /// Registered with every watched file's queue: passes its changes on
    /// to `queue`.
    forward: Arc<dyn Notify>,
}

/// Tells an epoll's waiters that one of its files changed.
struct Forward(Weak<Epoll>);

impl Notify for Forward {
    fn notify(&self) {
        if let Some(ep) = self.0.upgrade() {
            ep.queue.notify();
        }
    }
}

/// Every epoll of the sandbox, so that watches on closed files (which
/// keep their charge until noticed) can be dropped when the watch limit
/// is reached.
static ALL: Mutex<Vec<Weak<Epoll>>> = Mutex::new(Vec::new());

fn all() -> MutexGuard<'static, Vec<Weak<Epoll>>> {
    crate::util::lock(&ALL)
}

impl Epoll {
    pub fn new() -> Arc<Epoll> {
        let ep = Arc::new_cyclic(|me: &Weak<Epoll>| Epoll {
            me: me.clone(),
            interests: Mutex::new(BTreeMap::new()),
            watchers: Mutex::new(Vec::new()),
            queue: WaitQueue::default(),
            forward: Arc::new(Forward(me.clone())),
        });
        let mut a = all();
        if a.len() >= 64 && a.len().is_power_of_two() {
            a.retain(|w| w.strong_count() > 0);
        }
        a.push(Arc::downgrade(&ep));
        ep
    }

    /// Drop the interests of every epoll whose files were closed (their
    /// watch charges go with them). One epoll locked at a time.
    fn prune_all() {
        let eps: Vec<Arc<Epoll>> = all().iter().filter_map(Weak::upgrade).collect();
        for ep in eps {
            ep.lock().retain(|_, i| i.file.strong_count() > 0);
        }
    }

    /// The earliest time a watched file becomes ready by itself (timers).
    pub fn ready_at(&self) -> Option<std::time::Instant> {
        nested(None, || {
            self.lock().values().filter(|i| !i.disabled).filter_map(|i| i.file.upgrade()?.ops.ready_at()).min()
        })
    }

    /// Whether a watched file must be polled (host descriptors).
    pub fn needs_polling(&self) -> bool {
        nested(false, || self.lock().values().any(|i| i.file.upgrade().is_some_and(|f| f.ops.needs_polling())))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, Interest>> {
        crate::util::lock(&self.interests)
    }

    /// The epoll `f` is, if it is one.
    fn of(f: &OpenFile) -> Option<&Epoll> {
        f.ops.as_any().downcast_ref::<Epoll>()
    }

    /// The live epolls this one watches.
    fn watched(&self) -> Vec<Arc<OpenFile>> {
        self.lock().values().filter_map(|i| i.file.upgrade()).filter(|f| Self::of(f).is_some()).collect()
    }

    /// The longest chain of epolls below `self` (0: it watches none), or
    /// None if one reaches `into` (a loop) or the chain is too long.
    /// `seen` remembers finished epolls, so a wide DAG is walked once.
    fn depth_below(&self, into: &Epoll, depth: usize, seen: &mut HashMap<*const Epoll, usize>) -> Option<usize> {
        if let Some(&d) = seen.get(&(self as *const Epoll)) {
            return Some(d);
        }
        let mut deepest = 0;
        for f in self.watched() {
            let Some(child) = Self::of(&f) else { continue };
            if std::ptr::eq(child, into) || depth >= EP_MAX_NESTS {
                return None;
            }
            deepest = deepest.max(child.depth_below(into, depth + 1, seen)? + 1);
            if deepest > EP_MAX_NESTS {
                return None;
            }
        }
        seen.insert(self as *const Epoll, deepest);
        Some(deepest)
    }

    /// The longest chain of epolls above `self` (0: none watches it),
    /// stopping once it is longer than any legal one.
    fn depth_above(&self, depth: usize) -> usize {
        if depth > EP_MAX_NESTS {
            return depth;
        }
        let watchers: Vec<Arc<Epoll>> = crate::util::lock(&self.watchers).iter().filter_map(Weak::upgrade).collect();
        watchers.iter().map(|w| w.depth_above(depth + 1) + 1).max().unwrap_or(0)
    }

    /// Linux's ep_loop_check for putting epoll `child` into `self`.
    fn check_nesting(&self, child: &Epoll) -> Result<(), Errno> {
        let below = child.depth_below(self, 0, &mut HashMap::new()).ok_or(Errno::ELOOP)?;
        if below + 1 + self.depth_above(0) > EP_MAX_NESTS {
            return Err(Errno::ELOOP);
        }
        Ok(())
    }

    /// `watcher` no longer watches `self` through one interest.
    fn forget_watcher(&self, watcher: &Epoll) {
        let mut w = crate::util::lock(&self.watchers);
        w.retain(|x| x.strong_count() > 0);
        if let Some(i) = w.iter().position(|x| std::ptr::eq(x.as_ptr(), watcher)) {
            w.swap_remove(i);
        }
    }

    /// The live interest for `fd`, dropping one whose file has gone.
    fn live(map: &mut BTreeMap<i32, Interest>, fd: i32) -> bool {
        match map.get(&fd) {
            Some(i) if i.file.strong_count() > 0 => true,
            Some(_) => {
                map.remove(&fd);
                false
            }
            None => false,
        }
    }

    pub fn add(&self, fd: i32, file: &Arc<OpenFile>, events: u32, data: u64) -> Result<(), Errno> {
        // An epoll goes in only under NESTING, after the nesting check.
        let child = Self::of(file);
        let _nesting = match child {
            Some(child) => {
                let g = crate::util::lock(&NESTING);
                self.check_nesting(child)?;
                Some(g)
            }
            None => None,
        };
        let charge = match crate::limits::WatchCharge::new() {
            Ok(c) => c,
            Err(e) => {
                // Interests whose files were closed still hold their
                // charge until noticed: drop them all and try again.
                Self::prune_all();
                crate::limits::WatchCharge::new().map_err(|_| e)?
            }
        };
        let mut m = self.lock();
        if Self::live(&mut m, fd) {
            return Err(Errno::EEXIST);
        }
        m.insert(fd, Interest { file: Arc::downgrade(file), events, data, last: 0, disabled: false, _charge: charge });
        drop(m);
        if let Some(child) = child {
            crate::util::lock(&child.watchers).push(self.me.clone());
        }
        if let Some(q) = file.ops.wait_queue() {
            q.register(&self.forward);
        }
        // It may be ready already.
        self.queue.notify();
        Ok(())
    }

    pub fn modify(&self, fd: i32, events: u32, data: u64) -> Result<(), Errno> {
        let mut m = self.lock();
        if !Self::live(&mut m, fd) {
            return Err(Errno::ENOENT);
        }
        if let Some(i) = m.get_mut(&fd) {
            i.events = events;
            i.data = data;
            i.last = 0;
            i.disabled = false;
        }
        drop(m);
        self.queue.notify();
        Ok(())
    }

    pub fn delete(&self, fd: i32) -> Result<(), Errno> {
        let mut m = self.lock();
        if !Self::live(&mut m, fd) {
            return Err(Errno::ENOENT);
        }
        let gone = m.remove(&fd).and_then(|i| i.file.upgrade());
        drop(m);
        if let Some(f) = gone {
            if let Some(q) = f.ops.wait_queue() {
                q.unregister(&self.forward);
            }
            if let Some(child) = Self::of(&f) {
                let _nesting = crate::util::lock(&NESTING);
                child.forget_watcher(self);
            }
        }
        Ok(())
    }

    /// Up to `max` (events, data) pairs ready now.
    pub fn ready(&self, max: usize) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut m = self.lock();
        m.retain(|_, i| i.file.strong_count() > 0);
        for i in m.values_mut() {
            if out.len() >= max {
                break;
            }
            let Some(f) = i.file.upgrade() else { continue };
            if i.disabled {
                continue;
            }
            let wanted = (i.events & 0xffff) | EPOLLERR | EPOLLHUP;
            let ev = f.ops.poll() & wanted;
            if i.events & EPOLLET != 0 {
                let fresh = ev & !i.last;
                i.last = ev;
                if fresh == 0 {
                    continue;
                }
            }
            if ev == 0 {
                continue;
            }
            if i.events & EPOLLONESHOT != 0 {
                i.disabled = true;
            }
            out.push((ev, i.data));
        }
        out
    }
}

impl FileOps for Epoll {
    fn seekable(&self) -> bool {
        false
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn ready_at(&self) -> Option<std::time::Instant> {
        Epoll::ready_at(self)
    }

    fn needs_polling(&self) -> bool {
        Epoll::needs_polling(self)
    }

    fn poll(&self) -> u32 {
        nested(0, || {
            let m = self.lock();
            let any = m.values().any(|i| {
                !i.disabled
                    && i.file.upgrade().is_some_and(|f| f.ops.poll() & ((i.events & 0xffff) | EPOLLERR | EPOLLHUP) != 0)
            });
            if any {
                EPOLLIN
            } else {
                0
            }
        })
    }

    fn read(&self, _ctx: &IoCtx, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn stat(&self) -> Option<abi::Stat> {
        Some(abi::Stat { st_mode: 0o600, st_nlink: 1, st_blksize: 4096, ..Default::default() })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
