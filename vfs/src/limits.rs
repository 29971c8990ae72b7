//! Sandbox-wide accounting of what the VFS keeps for guests in the
//! Sentry's own heap: tmpfs file data (overlay upper layers and /dev/shm
//! included) and pipe buffers, charged against the sandbox's memory limit
//! together with the memory file; and the number of epoll watches.
//!
//! These are process-wide counters: one runsc-lite process runs one
//! sandbox, so process-wide is sandbox-wide. Unit tests that run several
//! filesystems in one process share them, with the limits left unset.

use abi::Errno;
use std::sync::atomic::{AtomicU64, Ordering};

/// The sandbox's memory limit in bytes (u64::MAX: none).
static MEM_LIMIT: AtomicU64 = AtomicU64::new(u64::MAX);
/// Bytes of guest data held on the Sentry heap (tmpfs pages, pipe buffers).
static HEAP_BYTES: AtomicU64 = AtomicU64::new(0);
/// The memory file's resident bytes as last measured by the Sentry's
/// memory monitor (it changes without the VFS knowing: guests touch pages).
static MEMFILE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Most epoll watches the sandbox may hold (fs.epoll.max_user_watches).
static MAX_WATCHES: AtomicU64 = AtomicU64::new(u64::MAX);
static WATCHES: AtomicU64 = AtomicU64::new(0);

/// Set the sandbox's memory limit (boot).
pub fn set_memory_limit(bytes: Option<u64>) {
    MEM_LIMIT.store(bytes.unwrap_or(u64::MAX), Ordering::Release);
}

pub fn memory_limit() -> Option<u64> {
    Some(MEM_LIMIT.load(Ordering::Acquire)).filter(|&l| l != u64::MAX)
}

/// Bytes of guest data the VFS holds on the heap.
pub fn heap_bytes() -> u64 {
    HEAP_BYTES.load(Ordering::Acquire)
}

/// Record the memory file's resident bytes (the Sentry's monitor).
pub fn set_memfile_bytes(n: u64) {
    MEMFILE_BYTES.store(n, Ordering::Release);
}

/// Charge `n` bytes of heap data; fails when that would take the sandbox
/// (memory file and heap data together) over its memory limit. Memory a
/// filesystem keeps cannot be given back by killing a process, so it is
/// refused up front rather than left to the memory monitor.
pub fn charge_heap(n: u64) -> Result<(), Errno> {
    let limit = MEM_LIMIT.load(Ordering::Acquire);
    let file = MEMFILE_BYTES.load(Ordering::Acquire);
    HEAP_BYTES
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
            let total = h.checked_add(n)?;
            (limit == u64::MAX || total.saturating_add(file) <= limit).then_some(total)
        })
        .map(|_| ())
        .map_err(|_| Errno::ENOSPC)
}

/// Charge `n` bytes of heap data whatever the limit (data already held
/// that moves between owners).
pub fn charge_heap_always(n: u64) {
    HEAP_BYTES.fetch_add(n, Ordering::AcqRel);
}

pub fn uncharge_heap(n: u64) {
    let _ = HEAP_BYTES.fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| Some(h.saturating_sub(n)));
}

/// Set fs.epoll.max_user_watches for the sandbox (boot).
pub fn set_max_watches(n: u64) {
    MAX_WATCHES.store(n, Ordering::Release);
}

pub fn max_watches() -> u64 {
    MAX_WATCHES.load(Ordering::Acquire)
}

/// One epoll watch, released when dropped.
pub struct WatchCharge(());

impl WatchCharge {
    /// ENOSPC past fs.epoll.max_user_watches, as Linux's epoll_ctl.
    pub fn new() -> Result<WatchCharge, Errno> {
        let max = MAX_WATCHES.load(Ordering::Acquire);
        WATCHES
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| (w < max).then_some(w + 1))
            .map(|_| WatchCharge(()))
            .map_err(|_| Errno::ENOSPC)
    }
}

impl Drop for WatchCharge {
    fn drop(&mut self) {
        let _ = WATCHES.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| Some(w.saturating_sub(1)));
    }
}

/// Parse a size as Linux's memparse does: a number with an optional
/// k/m/g/t/p/e suffix (either case). None on junk or overflow.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match suffix {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_as_memparse() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("4g"), Some(4 << 30));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("12q"), None);
        assert_eq!(parse_size("99999999999e"), None);
    }
}
