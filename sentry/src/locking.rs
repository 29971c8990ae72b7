//! Locks in the Sentry: the helper every Sentry lock goes through, what a
//! poisoned lock means, and the lock order (DESIGN.md, Locking).
//!
//! # Poisoned locks
//!
//! A lock is poisoned when a thread panics while holding it and its guard
//! is dropped by unwinding. Under the failure policy (crate::failure) that
//! cannot happen in a running sandbox: the panic hook runs before any
//! unwinding and ends the process, so the panicking thread never releases
//! what it holds. [`lock`] (and the helpers of the other crates: vfs,
//! netstack, the platforms) therefore never recover a poisoned lock: they
//! panic, so that without the hook (a unit test, another embedding) a
//! panic is never followed by a thread serving from half-changed state.
//!
//! # Lock order
//!
//! A thread takes a lock only while every lock it already holds comes
//! earlier in this list; locks within one item are not held together
//! unless the item gives their order ("→"). Each `Mutex` field of
//! `Kernel`, `ThreadGroup` and `ThreadShared` protects its own value
//! only; the fields whose meaning spans several are described on the
//! fields themselves (kernel.rs).
//!
//! 1. `OpenFile::pos` (vfs fdtable.rs): only around reads and writes of
//!    seekable files at their own offset, lseek and getdents, never across
//!    a wait that can block.
//! 2. Filesystem structure: tmpfs `FsInfo::tree` → a tmpfs node; the
//!    overlay's change lock → a directory's `children` cache (two caches
//!    in address order); the mount table (read) → a dentry's `link`
//!    (never two dentries' `link` or `children` at once, vfs mount.rs).
//! 3. The process tree: `ThreadGroup::children` → a child's `pgid`,
//!    `zombie`, `jobctl` → `exit`, `threads` (its CPU times) →
//!    `Kernel::pids` (a reaped child's pid).
//! 4. `ThreadGroup::threads` → a thread's `pending.info` (signals
//!    discarded) and its `Interrupt::waker` → what that waker takes (the
//!    lock of the wait it wakes, item 5) and the platform's `Interrupter`.
//! 5. Wait and file state, each a leaf unless given an order: a
//!    `Waitable`'s state, a `PollWaiter`, a futex waiter's `woken`,
//!    `Kernel::wait_gen`, a pipe's state, `WaitQueue` entries (released
//!    before the waiters are called), a socket's lock (each netstack family
//!    writes its own order at the top of its module; no path holds two
//!    sockets' locks), epoll's `NESTING` → `interests` (a watching
//!    epoll's before a watched one's) → `watchers` (vfs epoll.rs),
//!    inotify's `REGISTRY` → an instance's state, and its `PENDING` (vfs
//!    inotify.rs; events are reported with no lock of items 1–5 held,
//!    since reporting stats the node: item 2).
//! 6. `FutexTable::queues` → item 7 (the futex word is read under it).
//! 7. A `MemoryManager`'s state (a forking parent's; a child never calls
//!    back into a locked parent, `reclaim_sole` only tries) → `SharedFiles`
//!    and `FileCache` → `MemoryFile::pages` → the platform's address-space
//!    calls (systrap `StubProcess::ctl`, ptrace `StubThread::lock`): a
//!    round trip to a stub, never a wait for guest code.
//! 8. Leaves, taken alone: `Kernel::{tids, uts}`; `ThreadGroup::{mm, fds,
//!    fs, creds, comm, exe, rlimits, signals, ppid, sid, exit_signal,
//!    itimer_real, cpu_timers, vfork_done}`; `ThreadShared::sched`; a
//!    `SignalQueue`'s `info`;
//!    `FdTable::entries` (files are dropped after it is released); the
//!    vDSO clock's `params`; the file cache's splice pipes
//!    (`SplicePipes::free`, held only to take a pipe or give it back);
//!    systrap's recycled stubs (`RecycleBin::procs`, held only to take or
//!    keep one: a stub is cleaned with it released).
//!
//! Across all of them: no lock is held across a blocking wait (a condvar
//! wait releases only its own lock, so nothing else may be held), a switch
//! into guest code, or a host call that can block; a waker must take the
//! waited-on lock, then notify, so no wake-up is lost; nothing whose drop
//! takes a lock (a dentry, a socket, an open file) is dropped while a lock
//! it could need is held.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`. A poisoned lock is a bug (see the module docs): it panics,
/// and the failure policy ends the sandbox.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|_| poisoned())
}

/// A lock was poisoned: only possible without the failure policy's hook.
pub use vfs::poisoned;
