//! Priority-inheritance futexes: FUTEX_LOCK_PI(2), FUTEX_TRYLOCK_PI,
//! FUTEX_UNLOCK_PI, FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI, with
//! Linux's protocol on the futex word: the owner's tid in
//! `FUTEX_TID_MASK`, `FUTEX_WAITERS` while the kernel queues waiters (so
//! the owner's user-space unlock fails and comes here), `FUTEX_OWNER_DIED`
//! after a robust owner died. Unlocking hands the lock to the first
//! waiter (its tid written into the word) rather than waking it to
//! compete, and an owner that exits holding the lock hands it on the same
//! way.
//!
//! Priorities are not inherited: the Sentry keeps no real priorities
//! (sentry::sched), so a waiter never boosts the owner. Everything else
//! of the protocol is there, so PTHREAD_PRIO_INHERIT mutexes, robust ones
//! included, and glibc's requeue-PI condition variables work.
//!
//! Locks: as futex.rs (`FutexTable::queues` → a memory manager's state);
//! the owner's liveness is checked before the queues are locked and the
//! word compared again under them.

use crate::futex::{key_of, FutexKey, FutexTable, Queues, Waiter, FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS};
use crate::locking::lock;
use crate::mm::MemoryManager;
use abi::Errno;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;
use vfs::Interrupt;

/// Where a PI waiter's lock is, in the waiter's own address space.
pub struct PiWaiter {
    pub tid: i32,
    pub mm: Arc<MemoryManager>,
    pub addr: u64,
    pub key: FutexKey,
}

/// The caller of a PI operation.
pub struct PiCaller<'a> {
    pub tid: i32,
    pub mm: &'a Arc<MemoryManager>,
    /// Whether thread `tid` of the sandbox is alive.
    pub alive: &'a dyn Fn(i32) -> bool,
    pub interrupt: &'a Interrupt,
}

fn word_of(mm: &Arc<MemoryManager>, addr: u64) -> Result<&AtomicU32, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let (off, _) = mm.translate(addr, true)?;
    mm.memfile().atomic_u32(off)
}

/// What one attempt at a PI lock found.
enum Attempt {
    Acquired,
    /// Queued behind an owner (LOCK_PI), or owned (TRYLOCK_PI).
    Owned,
}

impl FutexTable {
    /// The first waiter on `key` that waits for the PI lock there.
    fn first_pi(q: &Queues, key: FutexKey) -> Option<Arc<Waiter>> {
        q.get(&key)?.iter().find(|w| w.waits_for_pi()).cloned()
    }

    fn has_pi_waiters(q: &Queues, key: FutexKey) -> bool {
        q.get(&key).is_some_and(|l| l.iter().any(|w| w.waits_for_pi()))
    }

    /// Give the PI lock at `key`, owned by `from` (0: nobody, its owner
    /// died), to its first waiter: the waiter's tid goes into the word
    /// with FUTEX_WAITERS (OWNER_DIED kept), and it wakes owning it.
    /// False if there is no waiter or the word is no longer `from`'s.
    pub(crate) fn hand_over(&self, key: FutexKey, from: i32) -> bool {
        let mut q = lock(&self.queues);
        Self::hand_over_locked(&mut q, key, from)
    }

    fn hand_over_locked(q: &mut Queues, key: FutexKey, from: i32) -> bool {
        while let Some(w) = Self::first_pi(q, key) {
            if let Some(list) = q.get_mut(&key) {
                list.retain(|x| !Arc::ptr_eq(x, &w));
                if list.is_empty() {
                    q.remove(&key);
                }
            }
            let Some(pi) = w.pi.as_ref() else { continue };
            let handed = word_of(&pi.mm, pi.addr).ok().is_some_and(|word| {
                let mut cur = word.load(Ordering::SeqCst);
                loop {
                    if cur & FUTEX_TID_MASK != from as u32 {
                        return false;
                    }
                    let new = (cur & FUTEX_OWNER_DIED) | FUTEX_WAITERS | pi.tid as u32;
                    match word.compare_exchange(cur, new, Ordering::SeqCst, Ordering::SeqCst) {
                        Ok(_) => return true,
                        Err(v) => cur = v,
                    }
                }
            });
            // Woken either way: without the lock it tries again.
            w.acquired.store(handed, Ordering::SeqCst);
            let mut woken = lock(&w.woken);
            *woken = true;
            w.cv.notify_all();
            drop(woken);
            if handed {
                return true;
            }
            let still_from = word_of(&pi.mm, pi.addr)
                .map(|word| word.load(Ordering::SeqCst) & FUTEX_TID_MASK == from as u32)
                .unwrap_or(false);
            if !still_from {
                return false;
            }
        }
        false
    }

    /// One attempt at the PI lock at `addr`; with `queue`, a caller that
    /// finds it owned is queued behind the owner.
    fn attempt(&self, c: &PiCaller, addr: u64, queue: Option<&Arc<Waiter>>) -> Result<Attempt, Errno> {
        let key = key_of(c.mm, addr)?;
        loop {
            let word = word_of(c.mm, addr)?;
            let seen = word.load(Ordering::SeqCst);
            let owner = (seen & FUTEX_TID_MASK) as i32;
            if owner == c.tid {
                return Err(Errno::EDEADLK);
            }
            // Checked before the queues are locked (thread lookups take
            // kernel locks); the word is compared again below.
            let owner_alive = owner == 0 || (c.alive)(owner);
            let mut q = lock(&self.queues);
            let cur = word.load(Ordering::SeqCst);
            if cur & FUTEX_TID_MASK != seen & FUTEX_TID_MASK {
                continue;
            }
            if owner == 0 {
                let waiters = if Self::has_pi_waiters(&q, key) { FUTEX_WAITERS } else { 0 };
                let new = (cur & FUTEX_OWNER_DIED) | waiters | c.tid as u32;
                if word.compare_exchange(cur, new, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    return Ok(Attempt::Acquired);
                }
                continue;
            }
            // Linux sets FUTEX_WAITERS before it looks for the owner.
            if word.compare_exchange(cur, cur | FUTEX_WAITERS, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                continue;
            }
            if !owner_alive {
                return Err(Errno::ESRCH);
            }
            if let Some(w) = queue {
                *lock(&w.woken) = false;
                w.acquired.store(false, Ordering::SeqCst);
                *lock(&w.key) = key;
                q.entry(key).or_default().push_back(w.clone());
            }
            return Ok(Attempt::Owned);
        }
    }

    /// FUTEX_LOCK_PI: take the lock or sleep until it is handed over.
    pub fn lock_pi(&self, c: &PiCaller, addr: u64, deadline: Option<Instant>) -> Result<(), Errno> {
        let key = key_of(c.mm, addr)?;
        let pi = PiWaiter { tid: c.tid, mm: c.mm.clone(), addr, key };
        let w = Waiter::new(key, u32::MAX, Some(pi));
        loop {
            if let Attempt::Acquired = self.attempt(c, addr, Some(&w))? {
                return Ok(());
            }
            let slept = self.sleep(&w, deadline, c.interrupt);
            if slept.is_err() && self.remove(&w) {
                // Signals restart the call: the lock is not taken.
                return Err(if slept == Err(Errno::ERESTARTSYS) { Errno::ERESTARTNOINTR } else { Errno::ETIMEDOUT });
            }
            if w.acquired.load(Ordering::SeqCst) {
                return Ok(());
            }
        }
    }

    /// FUTEX_TRYLOCK_PI: take the lock if it is free (EAGAIN if not).
    pub fn trylock_pi(&self, c: &PiCaller, addr: u64) -> Result<(), Errno> {
        match self.attempt(c, addr, None)? {
            Attempt::Acquired => Ok(()),
            Attempt::Owned => Err(Errno::EAGAIN),
        }
    }

    /// FUTEX_UNLOCK_PI: the owner gives the lock to its first waiter, or
    /// frees it.
    pub fn unlock_pi(&self, c: &PiCaller, addr: u64) -> Result<(), Errno> {
        // Linux reads the word before it looks at the address any further.
        let seen: u32 = c.mm.read_obj(addr)?;
        if seen & FUTEX_TID_MASK != c.tid as u32 {
            return Err(Errno::EPERM);
        }
        let key = key_of(c.mm, addr)?;
        let word = word_of(c.mm, addr)?;
        let mut q = lock(&self.queues);
        loop {
            let cur = word.load(Ordering::SeqCst);
            if cur & FUTEX_TID_MASK != c.tid as u32 {
                return Err(Errno::EPERM);
            }
            if Self::has_pi_waiters(&q, key) && Self::hand_over_locked(&mut q, key, c.tid) {
                return Ok(());
            }
            if word.compare_exchange(cur, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return Ok(());
            }
        }
    }

    /// FUTEX_WAIT_REQUEUE_PI: wait on the plain futex at `addr` (while it
    /// holds `val`) for FUTEX_CMP_REQUEUE_PI to move this waiter to the PI
    /// lock at `addr2`; returns owning that lock. Woken by a plain wake
    /// instead: EAGAIN.
    pub fn wait_requeue_pi(
        &self,
        c: &PiCaller,
        addr: u64,
        val: u32,
        addr2: u64,
        bitset: u32,
        deadline: Option<Instant>,
    ) -> Result<(), Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let key = key_of(c.mm, addr)?;
        let key2 = key_of(c.mm, addr2)?;
        if key == key2 {
            return Err(Errno::EINVAL);
        }
        word_of(c.mm, addr2)?;
        let pi = PiWaiter { tid: c.tid, mm: c.mm.clone(), addr: addr2, key: key2 };
        let w = Waiter::new(key, bitset, Some(pi));
        {
            let mut q = lock(&self.queues);
            let cur: u32 = c.mm.read_obj(addr)?;
            if cur != val {
                return Err(Errno::EAGAIN);
            }
            q.entry(key).or_default().push_back(w.clone());
        }
        let slept = self.sleep(&w, deadline, c.interrupt);
        if let Err(e) = slept {
            let requeued = w.waits_for_pi();
            if self.remove(&w) {
                return Err(match (e, requeued) {
                    (Errno::ETIMEDOUT, _) => Errno::ETIMEDOUT,
                    // Already requeued: a restart would find the condvar
                    // changed; Linux answers EAGAIN at once.
                    (_, true) => Errno::EAGAIN,
                    _ => Errno::ERESTARTNOINTR,
                });
            }
        }
        if w.acquired.load(Ordering::SeqCst) {
            return Ok(());
        }
        if w.waits_for_pi() {
            // Woken on the PI lock without it: take it the ordinary way.
            return self.lock_pi(c, addr2, deadline);
        }
        Err(Errno::EAGAIN)
    }

    /// FUTEX_CMP_REQUEUE_PI: if the plain futex at `addr` still holds
    /// `expect`, give the PI lock at `addr2` to its first waiter if it is
    /// free, and move waiters to that lock while the count (taken plus
    /// moved) minus one is below `n_requeue`. Returns that count.
    pub fn cmp_requeue_pi(
        &self,
        c: &PiCaller,
        addr: u64,
        addr2: u64,
        n_requeue: u32,
        expect: u32,
    ) -> Result<u32, Errno> {
        let key = key_of(c.mm, addr)?;
        let key2 = key_of(c.mm, addr2)?;
        if key == key2 {
            return Err(Errno::EINVAL);
        }
        let word2 = word_of(c.mm, addr2)?;
        loop {
            let seen = word2.load(Ordering::SeqCst);
            let owner = (seen & FUTEX_TID_MASK) as i32;
            let owner_alive = owner == 0 || (c.alive)(owner);
            let mut q = lock(&self.queues);
            if word2.load(Ordering::SeqCst) & FUTEX_TID_MASK != seen & FUTEX_TID_MASK {
                continue;
            }
            let cur: u32 = c.mm.read_obj(addr)?;
            if cur != expect {
                return Err(Errno::EAGAIN);
            }
            let waiters: Vec<Arc<Waiter>> = q.get(&key).map(|l| l.iter().cloned().collect()).unwrap_or_default();
            let mut count: u32 = 0;
            let mut result = Ok(());
            for (i, w) in waiters.iter().enumerate() {
                // Linux stops once the count less the one to wake reaches
                // nr_requeue.
                if count > n_requeue {
                    break;
                }
                let Some(pi) = w.pi.as_ref().filter(|p| p.key == key2) else {
                    result = Err(Errno::EINVAL);
                    break;
                };
                if i == 0 {
                    let cur2 = word2.load(Ordering::SeqCst);
                    let owner2 = (cur2 & FUTEX_TID_MASK) as i32;
                    if owner2 == pi.tid {
                        result = Err(Errno::EDEADLK);
                        break;
                    }
                    if owner2 == 0 {
                        let new = (cur2 & FUTEX_OWNER_DIED) | FUTEX_WAITERS | pi.tid as u32;
                        if word2.compare_exchange(cur2, new, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                            result = Err(Errno::EAGAIN);
                            break;
                        }
                        Self::take_off(&mut q, key, w);
                        w.acquired.store(true, Ordering::SeqCst);
                        let mut woken = lock(&w.woken);
                        *woken = true;
                        w.cv.notify_all();
                        drop(woken);
                        count += 1;
                        continue;
                    }
                    if !owner_alive {
                        result = Err(Errno::ESRCH);
                        break;
                    }
                }
                word2.fetch_or(FUTEX_WAITERS, Ordering::SeqCst);
                Self::take_off(&mut q, key, w);
                *lock(&w.key) = key2;
                q.entry(key2).or_default().push_back(w.clone());
                count += 1;
            }
            return result.map(|()| count);
        }
    }

    fn take_off(q: &mut Queues, key: FutexKey, w: &Arc<Waiter>) {
        if let Some(list) = q.get_mut(&key) {
            list.retain(|x| !Arc::ptr_eq(x, w));
            if list.is_empty() {
                q.remove(&key);
            }
        }
    }

    /// Thread `tid` is exiting or exec'ing: every PI lock it still owns
    /// with waiters goes to the first of them (as Linux's
    /// exit_pi_state_list). Locks without waiters keep the dead tid, and
    /// a later FUTEX_LOCK_PI on them fails with ESRCH, as on Linux.
    pub fn pi_owner_exited(&self, tid: i32) {
        let mut q = lock(&self.queues);
        let keys: Vec<FutexKey> =
            q.iter().filter(|(_, l)| l.iter().any(|w| w.waits_for_pi())).map(|(k, _)| *k).collect();
        for key in keys {
            let Some(w) = Self::first_pi(&q, key) else { continue };
            let Some(pi) = w.pi.as_ref() else { continue };
            let owned =
                word_of(&pi.mm, pi.addr).is_ok_and(|word| word.load(Ordering::SeqCst) & FUTEX_TID_MASK == tid as u32);
            if owned {
                Self::hand_over_locked(&mut q, key, tid);
            }
        }
    }
}
