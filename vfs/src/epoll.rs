//! epoll: an interest list over open files, asked for readiness by
//! epoll_wait. Level-triggered by default; EPOLLET reports a file again
//! only when a readiness bit newly appears; EPOLLONESHOT disables the
//! interest after one report until it is modified.

use crate::wait::{IoCtx, Notify, WaitQueue};
use crate::{FileOps, OpenFile};
use abi::Errno;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub const EPOLLIN: u32 = 0x001;
pub const EPOLLERR: u32 = 0x008;
pub const EPOLLHUP: u32 = 0x010;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;

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
    interests: Mutex<BTreeMap<i32, Interest>>,
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
    match ALL.lock() {
        Ok(g) => g,
        Err(e) => e.into_inner(),
    }
}

impl Epoll {
    pub fn new() -> Arc<Epoll> {
        let ep = Arc::new_cyclic(|me| Epoll {
            interests: Mutex::new(BTreeMap::new()),
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
        self.lock().values().filter(|i| !i.disabled).filter_map(|i| i.file.upgrade()?.ops.ready_at()).min()
    }

    /// Whether a watched file must be polled (host descriptors).
    pub fn needs_polling(&self) -> bool {
        self.lock().values().any(|i| i.file.upgrade().is_some_and(|f| f.ops.needs_polling()))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, Interest>> {
        match self.interests.lock() {
            Ok(g) => g,
            Err(e) => e.into_inner(),
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
        if let Some(f) = m.remove(&fd).and_then(|i| i.file.upgrade()) {
            if let Some(q) = f.ops.wait_queue() {
                q.unregister(&self.forward);
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
