//! Futexes: wait queues keyed by a guest word. Private mappings key by
//! (address space, address); shared ones by the memory-file offset, so
//! processes sharing memory (MAP_SHARED across fork) meet on one queue.

use crate::locking::lock;
use crate::mm::MemoryManager;
use abi::Errno;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use vfs::Interrupt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    Private { mm: usize, addr: u64 },
    Shared { offset: u64 },
}

/// One waiting task.
pub struct Waiter {
    pub(crate) woken: Mutex<bool>,
    pub(crate) cv: Condvar,
    pub(crate) bitset: u32,
    /// Where it waits now (requeue moves it).
    pub(crate) key: Mutex<FutexKey>,
    /// A waiter for a priority-inheritance lock (FUTEX_LOCK_PI, or
    /// FUTEX_WAIT_REQUEUE_PI once requeued): where that lock is.
    pub(crate) pi: Option<crate::futex_pi::PiWaiter>,
    /// Set with `woken` when the PI lock was handed to it.
    pub(crate) acquired: std::sync::atomic::AtomicBool,
}

impl Waiter {
    pub(crate) fn new(key: FutexKey, bitset: u32, pi: Option<crate::futex_pi::PiWaiter>) -> Arc<Waiter> {
        Arc::new(Waiter {
            woken: Mutex::new(false),
            cv: Condvar::new(),
            bitset,
            key: Mutex::new(key),
            pi,
            acquired: Default::default(),
        })
    }

    /// Whether it waits for a PI lock where it is queued now.
    pub(crate) fn waits_for_pi(&self) -> bool {
        self.pi.as_ref().is_some_and(|p| p.key == *lock(&self.key))
    }
}

pub(crate) type Queues = HashMap<FutexKey, VecDeque<Arc<Waiter>>>;

/// Every futex queue of the sandbox.
#[derive(Default)]
pub struct FutexTable {
    pub(crate) queues: Mutex<Queues>,
}

/// The key for the word at `addr` of `mm`.
pub fn key_of(mm: &Arc<MemoryManager>, addr: u64) -> Result<FutexKey, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let (offset, shared) = mm.translate(addr, false)?;
    Ok(if shared { FutexKey::Shared { offset } } else { FutexKey::Private { mm: Arc::as_ptr(mm) as usize, addr } })
}

impl FutexTable {
    /// FUTEX_WAIT(_BITSET): sleep while the word at `addr` equals `val`.
    pub fn wait(
        &self,
        mm: &Arc<MemoryManager>,
        addr: u64,
        val: u32,
        bitset: u32,
        deadline: Option<Instant>,
        interrupt: &Interrupt,
    ) -> Result<(), Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let key = key_of(mm, addr)?;
        let w = Waiter::new(key, bitset, None);
        {
            let mut q = lock(&self.queues);
            // Read under the table lock: a waker that changed the word and
            // then woke must take this lock, so no wake-up is lost.
            let cur: u32 = mm.read_obj(addr)?;
            if cur != val {
                return Err(Errno::EAGAIN);
            }
            q.entry(key).or_default().push_back(w.clone());
        }
        let outcome = self.sleep(&w, deadline, interrupt);
        if outcome.is_err() && !self.remove(&w) {
            // A waker took it off the queue first: the wake-up counts.
            return Ok(());
        }
        outcome
    }

    /// Block until `w` is woken (Ok), the deadline passes (ETIMEDOUT) or
    /// a signal arrives (ERESTARTSYS). The caller takes it off its queue
    /// after an error.
    pub(crate) fn sleep(&self, w: &Arc<Waiter>, deadline: Option<Instant>, interrupt: &Interrupt) -> Result<(), Errno> {
        let wk = w.clone();
        let waker: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _g = lock(&wk.woken);
            wk.cv.notify_all();
        });
        interrupt.with_waker(waker, || {
            let mut woken = lock(&w.woken);
            loop {
                if *woken {
                    return Ok(());
                }
                if interrupt.is_pending() {
                    return Err(Errno::ERESTARTSYS);
                }
                let mut slice = Duration::from_millis(100);
                if let Some(d) = deadline {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Errno::ETIMEDOUT);
                    }
                    slice = slice.min(d - now);
                }
                woken = w.cv.wait_timeout(woken, slice).map(|(g, _)| g).unwrap_or_else(|_| crate::locking::poisoned());
            }
        })
    }

    /// Take `w` off its queue; false if it was no longer queued.
    pub(crate) fn remove(&self, w: &Arc<Waiter>) -> bool {
        let mut q = lock(&self.queues);
        let key = *lock(&w.key);
        let Some(list) = q.get_mut(&key) else { return false };
        let before = list.len();
        list.retain(|x| !Arc::ptr_eq(x, w));
        let removed = list.len() != before;
        if list.is_empty() {
            q.remove(&key);
        }
        removed
    }

    pub(crate) fn wake_key(q: &mut Queues, key: FutexKey, n: u32, bitset: u32) -> u32 {
        let Some(list) = q.get_mut(&key) else { return 0 };
        let mut woken = 0;
        let mut i = 0;
        while i < list.len() && woken < n {
            if list[i].bitset & bitset != 0 {
                if let Some(w) = list.remove(i) {
                    *lock(&w.woken) = true;
                    w.cv.notify_all();
                    woken += 1;
                }
            } else {
                i += 1;
            }
        }
        if list.is_empty() {
            q.remove(&key);
        }
        woken
    }

    /// FUTEX_WAKE(_BITSET): wake up to `n` waiters on `key`.
    pub fn wake(&self, key: FutexKey, n: u32, bitset: u32) -> Result<u32, Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let mut q = lock(&self.queues);
        // Waking a PI lock's waiters (or requeue-PI waiters) is unlocking's
        // and requeue-PI's business.
        if q.get(&key).is_some_and(|l| l.iter().any(|w| w.pi.is_some())) {
            return Err(Errno::EINVAL);
        }
        Ok(Self::wake_key(&mut q, key, n, bitset))
    }

    /// FUTEX_(CMP_)REQUEUE: wake `n_wake` on `from`, move up to `n_move`
    /// of the rest to `to`. With `expect`, the word must still hold it.
    pub fn requeue(
        &self,
        mm: &Arc<MemoryManager>,
        from_addr: u64,
        to_addr: u64,
        n_wake: u32,
        n_move: u32,
        expect: Option<u32>,
    ) -> Result<u32, Errno> {
        let from = key_of(mm, from_addr)?;
        let to = key_of(mm, to_addr)?;
        let mut q = lock(&self.queues);
        if q.get(&from).is_some_and(|l| l.iter().any(|w| w.pi.is_some())) {
            return Err(Errno::EINVAL);
        }
        if let Some(v) = expect {
            let cur: u32 = mm.read_obj(from_addr)?;
            if cur != v {
                return Err(Errno::EAGAIN);
            }
        }
        let woken = Self::wake_key(&mut q, from, n_wake, u32::MAX);
        let mut moved = 0;
        if from != to {
            let mut taken = Vec::new();
            if let Some(list) = q.get_mut(&from) {
                while moved < n_move {
                    let Some(w) = list.pop_front() else { break };
                    *lock(&w.key) = to;
                    taken.push(w);
                    moved += 1;
                }
                if list.is_empty() {
                    q.remove(&from);
                }
            }
            q.entry(to).or_default().extend(taken);
        }
        Ok(woken + moved)
    }

    /// FUTEX_WAKE_OP: update the word at `addr2` atomically, wake `n1` on
    /// `addr1`, and `n2` on `addr2` if the old value passes the test.
    pub fn wake_op(
        &self,
        mm: &Arc<MemoryManager>,
        addr1: u64,
        addr2: u64,
        n1: u32,
        n2: u32,
        op: u32,
    ) -> Result<u32, Errno> {
        let k1 = key_of(mm, addr1)?;
        let k2 = key_of(mm, addr2)?;
        let (off2, _) = mm.translate(addr2, true)?;
        let word = mm.memfile().atomic_u32(off2)?;
        let kind = (op >> 28) & 7;
        let shift_arg = op & (8 << 28) != 0;
        let cmp = (op >> 24) & 15;
        let mut oparg = (op >> 12) & 0xfff;
        let cmparg = op & 0xfff;
        if shift_arg {
            oparg = 1u32.checked_shl(oparg).unwrap_or(0);
        }
        let mut q = lock(&self.queues);
        let old = match kind {
            0 => word.swap(oparg, Ordering::SeqCst),
            1 => word.fetch_add(oparg, Ordering::SeqCst),
            2 => word.fetch_or(oparg, Ordering::SeqCst),
            3 => word.fetch_and(!oparg, Ordering::SeqCst),
            4 => word.fetch_xor(oparg, Ordering::SeqCst),
            _ => return Err(Errno::ENOSYS),
        };
        let pass = match cmp {
            0 => old == cmparg,
            1 => old != cmparg,
            2 => (old as i32) < cmparg as i32,
            3 => (old as i32) <= cmparg as i32,
            4 => (old as i32) > cmparg as i32,
            5 => (old as i32) >= cmparg as i32,
            _ => return Err(Errno::ENOSYS),
        };
        let mut woken = Self::wake_key(&mut q, k1, n1, u32::MAX);
        if pass {
            woken += Self::wake_key(&mut q, k2, n2, u32::MAX);
        }
        Ok(woken)
    }
}

pub(crate) const FUTEX_WAITERS: u32 = 0x8000_0000;
pub(crate) const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
pub(crate) const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Linux's bound on a robust list walk (ROBUST_LIST_LIMIT).
const ROBUST_LIST_LIMIT: u32 = 2048;

/// Release the robust futexes that thread `tid` still holds (it is dying
/// or exec'ing): walk the list registered with set_robust_list at `head`,
/// mark each futex it owns OWNER_DIED and wake a waiter. Every read goes
/// through the memory manager; a bad list ends the walk, as in Linux.
pub fn release_robust_list(table: &FutexTable, mm: &Arc<MemoryManager>, tid: i32, head: u64) {
    if head == 0 {
        return;
    }
    // struct robust_list_head { next; long futex_offset; list_op_pending; }
    let read = |addr: u64| mm.read_obj::<u64>(addr).ok();
    let (Some(mut entry), Some(offset), Some(pending)) = (read(head), read(head + 8), read(head + 16)) else {
        return;
    };
    let offset = offset as i64;
    let pending_addr = pending & !1;
    let mut limit = ROBUST_LIST_LIMIT;
    while entry & !1 != head {
        let this = entry & !1;
        let Some(next) = read(this) else { return };
        if this != pending_addr {
            futex_death(table, mm, tid, this.wrapping_add_signed(offset), entry & 1 != 0);
        }
        entry = next;
        limit -= 1;
        if limit == 0 {
            break;
        }
    }
    if pending_addr != 0 {
        futex_death(table, mm, tid, pending_addr.wrapping_add_signed(offset), pending & 1 != 0);
    }
}

/// One futex of a dead owner: OWNER_DIED, keep WAITERS, wake one waiter.
fn futex_death(table: &FutexTable, mm: &Arc<MemoryManager>, tid: i32, addr: u64, pi: bool) {
    if !addr.is_multiple_of(4) {
        return;
    }
    let Ok((off, _)) = mm.translate(addr, true) else { return };
    let Ok(word) = mm.memfile().atomic_u32(off) else { return };
    let mut cur = word.load(Ordering::SeqCst);
    loop {
        if cur & FUTEX_TID_MASK != tid as u32 {
            return;
        }
        let new = (cur & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        match word.compare_exchange(cur, new, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => break,
            Err(v) => cur = v,
        }
    }
    if cur & FUTEX_WAITERS != 0 {
        if let Ok(key) = key_of(mm, addr) {
            if pi {
                // The lock goes to its first waiter, OWNER_DIED kept.
                table.hand_over(key, 0);
            } else {
                let _ = table.wake(key, 1, u32::MAX);
            }
        }
    }
}
