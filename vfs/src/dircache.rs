//! Listings of host directories kept between guest calls, revalidated
//! the way [`crate::attrcache`] revalidates attributes.
//!
//! A listing is reused while the directory's attributes, as the mount's
//! policy trusts them at the time (one statx per guest call for a bind
//! mount, none within the trusted period of the root overlay's host
//! layer), show the same inode, mtime and ctime as when it was read, and
//! no change was made through the mount since. Every change to a
//! directory's entries sets both times on the host, so a host-side change
//! is seen at the same moment a changed attribute would be.
//!
//! Host timestamps come from a coarse clock: two changes within one tick
//! (up to 10 ms) may carry the same time. A listing is therefore only
//! kept when the directory's last change was at least [`SETTLED`] before
//! it was read: any later change then carries a later time. (A host
//! whose wall clock is stepped back by more than that can defeat this;
//! the listing is then stale until the directory changes again.)
//!
//! Listings are bounded for the whole sandbox by [`LISTING_BUDGET`] bytes;
//! past it directories are simply read each time.

use crate::inode::DirEntry;
use crate::util::lock;
use abi::Stat;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How long a directory must have been unchanged for its listing to be
/// kept (seconds): far beyond a timestamp tick.
pub const SETTLED: i64 = 1;

/// The most bytes of listings the sandbox keeps.
pub const LISTING_BUDGET: usize = 16 << 20;

static CACHED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// One directory's cached listing.
#[derive(Default)]
pub(crate) struct DirCache {
    slot: Mutex<Option<Listing>>,
}

struct Listing {
    entries: Vec<DirEntry>,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    generation: u64,
    bytes: usize,
}

impl Drop for Listing {
    fn drop(&mut self) {
        CACHED_BYTES.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

fn times(st: &Stat) -> ((i64, i64), (i64, i64)) {
    ((st.st_mtime, st.st_mtime_nsec), (st.st_ctime, st.st_ctime_nsec))
}

impl DirCache {
    /// The listing, if `st` (the directory's attributes as the mount's
    /// policy trusts them now) and `generation` (the mount's change
    /// count now) show the directory unchanged since it was read.
    pub(crate) fn get(&self, st: &Stat, generation: u64) -> Option<Vec<DirEntry>> {
        let g = lock(&self.slot);
        let l = g.as_ref()?;
        let (mtime, ctime) = times(st);
        let same = l.generation == generation && l.ino == st.st_ino && l.mtime == mtime && l.ctime == ctime;
        same.then(|| l.entries.clone())
    }

    /// Keep `entries`, read at `read_at` (wall-clock (sec, nsec)) after
    /// `st` was taken at change count `generation`, if the directory had
    /// settled and the budget allows; else forget what was kept.
    pub(crate) fn put(&self, st: &Stat, generation: u64, read_at: (i64, i64), entries: &[DirEntry]) {
        let old = lock(&self.slot).take();
        drop(old);
        let (mtime, ctime) = times(st);
        let last_change = mtime.max(ctime);
        if (last_change.0.saturating_add(SETTLED), last_change.1) > read_at {
            return;
        }
        let bytes = entries.iter().map(|e| e.name.len() + std::mem::size_of::<DirEntry>()).sum::<usize>();
        if CACHED_BYTES.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes) > LISTING_BUDGET {
            CACHED_BYTES.fetch_sub(bytes, Ordering::Relaxed);
            return;
        }
        let l = Listing { entries: entries.to_vec(), ino: st.st_ino, mtime, ctime, generation, bytes };
        let raced = lock(&self.slot).replace(l);
        drop(raced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(ino: u64, t: i64) -> Stat {
        Stat { st_ino: ino, st_mtime: t, st_ctime: t, ..Default::default() }
    }

    fn list() -> Vec<DirEntry> {
        vec![DirEntry { ino: 7, d_type: 8, name: b"a".to_vec() }]
    }

    #[test]
    fn reused_only_while_unchanged_and_settled() {
        let c = DirCache::default();
        // Changed within the last second when read: not kept.
        c.put(&st(1, 100), 0, (100, 500), &list());
        assert_eq!(c.get(&st(1, 100), 0), None);
        c.put(&st(1, 100), 0, (101, 0), &list());
        assert_eq!(c.get(&st(1, 100), 0), Some(list()));
        // A change on the host (new times), through the mount (new
        // generation), or another directory under the name.
        assert_eq!(c.get(&st(1, 102), 0), None);
        assert_eq!(c.get(&st(1, 100), 1), None);
        assert_eq!(c.get(&st(2, 100), 0), None);
    }
}
