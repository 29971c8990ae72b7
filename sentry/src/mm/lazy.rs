//! Lazy host mappings: private anonymous memory a guest maps with mmap(2)
//! is not mapped into the stub until the guest first touches it. An
//! untouched mapping then costs no platform round trip at all (mmap,
//! mprotect and munmap only change the Sentry's state), which is what
//! mmap+munmap of a page, reservations (glibc's 64 MiB arenas, thread
//! stacks' guard pages) and mprotect on memory not yet used come to.
//!
//! `MmState::lazy` holds the ranges whose pages (vmas and pmas exist as
//! usual) are not in the host mapping yet. `sync_platform` leaves them out;
//! the first fault in one maps the whole range as the state then says
//! (`fault_in_lazy`); `take_range` forgets them with their VMAs; a range
//! entirely lazy needs no host munmap. Only `map_anon_lazy` makes them,
//! for the mmap(2) of private anonymous memory without MAP_POPULATE or
//! MAP_LOCKED; the loader's and the stack's memory, touched at once, is
//! mapped eagerly.

use super::*;

/// `RUNSC_LITE_LAZY_MMAP=0` maps eagerly (for comparison).
fn lazy_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("RUNSC_LITE_LAZY_MMAP").is_none_or(|v| v != "0"))
}

impl MemoryManager {
    /// mmap(2) of private anonymous memory, mapped into the host on first
    /// touch.
    pub fn map_anon_lazy(&self, addr: u64, len: u64, prot: Prot, fixed: bool, name: VmaName) -> Result<u64, Errno> {
        let backing = if lazy_enabled() { Backing::FreshLazy } else { Backing::Fresh };
        self.map_inner(addr, len, prot, fixed, backing, name)
    }

    /// The parts of `[start, end)` that are not lazy (may be in the host
    /// mapping), in order.
    pub(super) fn eager_parts(s: &MmState, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = start;
        let first = s.lazy.range(..=start).next_back().map(|(&a, &b)| (a, b));
        let rest = s.lazy.range(start.saturating_add(1)..end).map(|(&a, &b)| (a, b));
        for (a, b) in first.into_iter().chain(rest) {
            if b <= at {
                continue;
            }
            if a > at {
                out.push((at, a.min(end)));
            }
            at = at.max(b);
            if at >= end {
                break;
            }
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    /// Forget lazy ranges inside `[start, end)`, cutting those that
    /// straddle its ends.
    pub(super) fn forget_lazy(s: &mut MmState, start: u64, end: u64) {
        if s.lazy.is_empty() {
            return;
        }
        if let Some((&a, &b)) = s.lazy.range(..start).next_back() {
            if b > start {
                s.lazy.insert(a, start);
                if b > end {
                    s.lazy.insert(end, b);
                }
            }
        }
        let inside: Vec<(u64, u64)> = s.lazy.range(start..end).map(|(&a, &b)| (a, b)).collect();
        for (a, b) in inside {
            s.lazy.remove(&a);
            if b > end {
                s.lazy.insert(end, b);
            }
        }
    }

    /// Does any VMA part of `[start, end)` lie outside the lazy ranges
    /// (so that the host may have pages mapped there)?
    pub(super) fn host_may_map(s: &MmState, start: u64, end: u64) -> bool {
        if s.lazy.is_empty() {
            return true;
        }
        Self::eager_parts(s, start, end).into_iter().any(|(a, b)| !overlapping(&s.vmas, a, b, |v| v.end).is_empty())
    }

    /// A fault at `addr` inside a lazy range: map the range now, as the
    /// state says. None when `addr` is not lazy.
    pub(super) fn fault_in_lazy(&self, s: &mut MmState, addr: u64) -> Option<FaultOutcome> {
        let (&a, &b) = s.lazy.range(..=addr).next_back().filter(|(_, &b)| b > addr)?;
        s.lazy.remove(&a);
        Some(match self.sync_platform(s, a, b, true) {
            Ok(()) => FaultOutcome::Fixed,
            Err(e) => {
                tracing::warn!("mapping lazy memory at {addr:#x} failed: {e:?}");
                FaultOutcome::Signal
            }
        })
    }
}
