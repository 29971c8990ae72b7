//! Recycling stub processes. When a guest process exits or execs, its
//! address space goes, and with it (until now) its stub process: a
//! fork + exec loop paid a stub creation (a fork of the forker, two
//! seccomp filters, a control thread and a first stub thread: ~0.5 ms of
//! CPU) and a stub teardown per iteration. A stub whose old guest left
//! nothing behind is cleaned instead and handed to the next address
//! space.
//!
//! Nothing of the old guest may reach the next one, which may be another
//! user's process. What the old guest could touch, and what becomes of it:
//!
//! * its memory below `STUB_BASE`: unmapped by the control thread (the
//!   low patch slots stay; a stub whose slots the guest's own mappings
//!   replaced is not recycled);
//! * the stub threads' host state a forged `rt_sigreturn` frame can
//!   change (the signal mask, the signal stack): every thread is sent
//!   through the ready trap again from a scrubbed frame, and the frame
//!   the kernel builds for that trap must show the thread's own signal
//!   stack, an empty mask, and sit where a new thread's first frame sat;
//! * the registers, FPU state and trampoline registers left in the
//!   threads' message pages and signal stacks: zeroed, or reset to the
//!   initial FPU state;
//! * everything else it could write (the response page) the Sentry reads
//!   as guest input anyway, and the stub code, the control page, the
//!   thread table and the slots were never writable by it.
//!
//! Threads still held by contexts of the old space come back with the
//! rest: the process's generation changes, and a stale context that gives
//! its thread back later is ignored (`StubProcess::release_thread`).
//! A stub that fails any step is killed as before.

use crate::frame::{frame_is_canonical, scrub_frame};
use crate::layout::*;
use crate::process::{lock, StubProcess, StubThread, ThreadRecord, SETUP_TIMEOUT};
use crate::sys;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Most clean stubs kept for later address spaces.
const BIN_MAX: usize = 4;
/// Most stub threads a recycled stub may have: a stub kept for later
/// keeps its threads, and cleaning costs a round trip each.
const THREADS_MAX: usize = 8;

/// Clean stub processes waiting for a new address space. A leaf lock.
pub(crate) struct RecycleBin {
    procs: Mutex<Vec<Arc<StubProcess>>>,
    enabled: AtomicBool,
}

impl RecycleBin {
    /// On unless `RUNSC_LITE_STUB_REUSE=0` (for comparison).
    pub(crate) fn from_env() -> RecycleBin {
        let enabled = std::env::var("RUNSC_LITE_STUB_REUSE").map_or(true, |v| v != "0");
        RecycleBin { procs: Mutex::new(Vec::new()), enabled: AtomicBool::new(enabled) }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// How many clean stubs are waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.procs).len()
    }

    /// A clean stub, if one is waiting.
    pub(crate) fn take(&self) -> Option<Arc<StubProcess>> {
        let mut procs = lock(&self.procs);
        while let Some(p) = procs.pop() {
            if !p.is_dead() {
                return Some(p);
            }
        }
        None
    }

    /// Clean `proc` (the address space it served is gone) and keep it;
    /// kill it when it cannot be cleaned or the bin is full.
    pub(crate) fn recycle_or_kill(&self, proc: Arc<StubProcess>) {
        let room = lock(&self.procs).len() < BIN_MAX;
        match if room { proc.recycle() } else { Err("the bin is full") } {
            Ok(()) => {
                platform::profile::count(platform::profile::Phase::StubRecycled, 1);
                lock(&self.procs).push(proc);
            }
            Err(why) => {
                tracing::debug!("systrap: stub {} not recycled: {why}", proc.pid);
                proc.kill_nowait();
            }
        }
    }
}

impl StubProcess {
    /// Make this stub, whose address space is gone, as good as a new one
    /// (see the module's documentation). Err says why it cannot be.
    pub(crate) fn recycle(&self) -> Result<(), &'static str> {
        if self.is_dead() {
            return Err("dead");
        }
        // From here on, threads given back by stale contexts are ignored:
        // every thread is taken back below.
        let (threads, gen) = {
            let mut p = lock(&self.pool);
            p.gen = p.gen.wrapping_add(1);
            p.free.clear();
            (p.threads.clone(), p.gen)
        };
        let parked = |&(i, _): &(u32, ThreadRecord)| {
            self.region.u32(thread_off(i as u64) + M_STATE).load(Ordering::Acquire) == STATE_EVENT
        };
        let live: Vec<(u32, ThreadRecord)> =
            threads.iter().enumerate().filter(|(_, r)| r.tid != 0).map(|(i, r)| (i as u32, *r)).collect();
        if live.len() > THREADS_MAX {
            return Err("too many threads to keep");
        }
        // A thread stopped anywhere but its handler (in the patch
        // trampoline, or never back from a failed run) is not worth the
        // trouble.
        if !live.iter().all(parked) {
            return Err("a thread is not parked in its handler");
        }
        // The old guest's memory first: no thread can run its code again.
        let low_end = LOW_SLOTS + SLOTS_LEN;
        self.request_batch(&[
            [sys::SYS_MUNMAP, 0, LOW_SLOTS, 0, 0, 0, 0, 0],
            [sys::SYS_MUNMAP, low_end, STUB_BASE - low_end, 0, 0, 0, 0, 0],
        ])
        .map_err(|_| "unmapping the old guest's memory failed")?;
        for &(index, rec) in &live {
            let t = StubThread { index, tid: rec.tid, gen };
            self.repark(t, rec.frame)?;
            sys::bind_thread(t.tid, None);
        }
        let mut p = lock(&self.pool);
        if p.gen != gen {
            return Err("recycled twice at once");
        }
        p.free = live.iter().map(|&(index, rec)| StubThread { index, tid: rec.tid, gen }).collect();
        Ok(())
    }

    /// Send parked thread `t` through the ready trap from a scrubbed
    /// frame, check the frame the kernel builds for that trap (at
    /// `frame`, where its first one was), and scrub that one.
    fn repark(&self, t: StubThread, frame: u64) -> Result<(), &'static str> {
        let m = thread_off(t.index as u64);
        // What the handler restores on the way out: the thread's own
        // signal stack, an empty mask, zeroed registers but for the trap.
        // (Best effort: the guest may have pointed M_UCONTEXT elsewhere;
        // the check below is what counts.)
        let _ = scrub_frame(self, t, Some(self.ready_ip - 2));
        self.region.u64(m + M_FS_BASE).store(0, Ordering::Relaxed);
        self.region.u64(m + M_GS_BASE).store(0, Ordering::Relaxed);
        self.region.u64(m + M_CUR_FS).store(u64::MAX, Ordering::Relaxed);
        self.region.u64(m + M_CUR_GS).store(u64::MAX, Ordering::Relaxed);
        self.region.u32(m + M_ANSWER_HINT).store(HINT_NONE, Ordering::Relaxed);
        self.resume(t);
        // As long as a new thread may take to report in: a loaded machine
        // must not turn a clean stub into a killed one.
        match self.expect_ready_report(t, SETUP_TIMEOUT) {
            Ok(Ok(())) => {}
            _ => return Err("a thread did not come back from the ready trap"),
        }
        let uc = self.region.u64(m + M_UCONTEXT).load(Ordering::Relaxed);
        if uc != frame {
            return Err("a thread's frame moved (its signal stack changed)");
        }
        frame_is_canonical(self, t)?;
        scrub_frame(self, t, None)?;
        // Below the frame: older frames (nested faults) and nothing else.
        let stack = m + ALTSTACK_OFF;
        let below = (uc - STUB_BASE).saturating_sub(8).saturating_sub(stack);
        zero(self, stack, below);
        // The trampoline's copy of the old guest's registers, and the
        // unused rest of the page.
        zero(self, m + M_T_RAX, M_STUB_WAITING - M_T_RAX);
        zero(self, m + M_T_R15, PAGE - M_T_R15);
        // The unused ends of the lines between: the old guest could have
        // written there (its stub's page), and the next one could read.
        zero(self, m + M_STUB_CPU + 4, M_SENTRY_WAITING - (M_STUB_CPU + 4));
        zero(self, m + M_SENTRY_CPU + 4, M_SIGNO - (M_SENTRY_CPU + 4));
        zero(self, m + M_CUR_GS + 8, M_T_R15 - (M_CUR_GS + 8));
        Ok(())
    }
}

/// Zero `len` bytes of the stub region at `off`.
pub(crate) fn zero(proc: &StubProcess, off: u64, len: u64) {
    const ZEROS: [u8; 4096] = [0; 4096];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(ZEROS.len() as u64);
        proc.region.write(off + done, &ZEROS[..n as usize]);
        done += n;
    }
}
