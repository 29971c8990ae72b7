//! signalfd: pending signals read as `struct signalfd_siginfo` records.
//! Reading takes the signal off the process's (or a thread's) queue, as
//! delivering it would.

use crate::kernel::ThreadGroup;
use abi::{Errno, SigInfo};
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use vfs::{FileOps, IoCtx};

const RECORD: usize = 128;

pub struct SignalFd {
    pub mask: AtomicU64,
    tg: Weak<ThreadGroup>,
    /// The process's signal queue (told whenever a signal is queued).
    queue: Arc<vfs::WaitQueue>,
}

impl SignalFd {
    pub fn new(tg: &Arc<ThreadGroup>, mask: u64) -> Arc<SignalFd> {
        Arc::new(SignalFd { mask: AtomicU64::new(mask), tg: Arc::downgrade(tg), queue: tg.signal_queue.clone() })
    }

    fn pending(&self, tg: &ThreadGroup) -> u64 {
        let mut bits = tg.pending.bits();
        for t in crate::locking::lock(&tg.threads).iter() {
            bits |= t.pending.bits();
        }
        bits & self.mask.load(Ordering::Acquire)
    }

    fn take(&self, tg: &ThreadGroup) -> Option<SigInfo> {
        let bits = self.pending(tg);
        if bits == 0 {
            return None;
        }
        let sig = bits.trailing_zeros() as i32 + 1;
        if let Some(i) = tg.pending.take(sig) {
            return Some(i);
        }
        crate::locking::lock(&tg.threads).iter().find_map(|t| t.pending.take(sig))
    }
}

/// A `struct signalfd_siginfo`: signo 0, errno 4, code 8, pid 12, uid 16,
/// status 40, int 44, ptr 48, addr 72.
fn record(i: &SigInfo) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[0..4].copy_from_slice(&(i.signo as u32).to_ne_bytes());
    r[4..8].copy_from_slice(&i.errno.to_ne_bytes());
    r[8..12].copy_from_slice(&i.code.to_ne_bytes());
    // pid and uid share the first union word for kill and SIGCHLD.
    r[12..16].copy_from_slice(&(i.fields[0] as u32).to_ne_bytes());
    r[16..20].copy_from_slice(&((i.fields[0] >> 32) as u32).to_ne_bytes());
    if i.code == abi::signal::SI_QUEUE {
        // sigqueue's value: ssi_int and ssi_ptr.
        r[44..48].copy_from_slice(&(i.fields[1] as u32).to_ne_bytes());
        r[48..56].copy_from_slice(&i.fields[1].to_ne_bytes());
    }
    if i.signo == abi::signal::SIGCHLD {
        r[40..44].copy_from_slice(&(i.fields[1] as u32).to_ne_bytes());
    }
    if matches!(i.signo, abi::signal::SIGSEGV | abi::signal::SIGBUS | abi::signal::SIGILL | abi::signal::SIGFPE) {
        r[72..80].copy_from_slice(&i.fields[0].to_ne_bytes());
    }
    r
}

impl FileOps for SignalFd {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if buf.len() < RECORD {
            return Err(Errno::EINVAL);
        }
        let tg = self.tg.upgrade().ok_or(Errno::EBADF)?;
        let mut n = 0;
        // Registered before the first look: a signal queued in between
        // still wakes the wait below.
        let waiter = vfs::PollWaiter::new();
        let notify: Arc<dyn vfs::Notify> = waiter.clone();
        self.queue.register(&notify);
        let r = loop {
            while n + RECORD <= buf.len() {
                match self.take(&tg) {
                    Some(i) => {
                        buf[n..n + RECORD].copy_from_slice(&record(&i));
                        n += RECORD;
                    }
                    None => break,
                }
            }
            if n > 0 {
                break Ok(n);
            }
            if ctx.nonblock() {
                break Err(Errno::EAGAIN);
            }
            if ctx.interrupt.is_pending() {
                break Err(Errno::ERESTARTSYS);
            }
            // Signals read through a signalfd are blocked, so queueing one
            // kicks nobody: the process's signal queue wakes us.
            let w = waiter.clone();
            let waker: Arc<dyn Fn() + Send + Sync> = Arc::new(move || vfs::Notify::notify(&*w));
            ctx.interrupt.with_waker(waker, || {
                if !ctx.interrupt.is_pending() {
                    waiter.wait(Duration::from_secs(1));
                }
            });
        };
        self.queue.unregister(&notify);
        r
    }

    fn seekable(&self) -> bool {
        false
    }

    fn wait_queue(&self) -> Option<&vfs::WaitQueue> {
        Some(&self.queue)
    }

    fn poll(&self) -> u32 {
        match self.tg.upgrade() {
            Some(tg) if self.pending(&tg) != 0 => libc::POLLIN as u32,
            _ => 0,
        }
    }

    fn stat(&self) -> Option<abi::Stat> {
        Some(abi::Stat { st_mode: 0o600, st_nlink: 1, st_blksize: 4096, ..Default::default() })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
