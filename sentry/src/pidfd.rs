//! pidfds: a descriptor naming one process (pidfd_open, clone's
//! CLONE_PIDFD). It keeps no process alive: it holds the process weakly
//! with its pid, and the pid stands for it only while the kernel's table
//! still maps the pid to that same process (until it is reaped).
//!
//! Readable (POLLIN) once the process has exited; POLLHUP too once it
//! has been reaped, as Linux's pidfd_poll. Every exit and reap wakes all
//! pidfd pollers through one queue: waking is rare next to polling, and
//! the pollers recheck their own process.

use crate::kernel::{Kernel, ThreadGroup};
use crate::locking::lock;
use abi::Errno;
use std::any::Any;
use std::sync::{Arc, OnceLock, Weak};
use vfs::{FileOps, IoCtx, WaitQueue};

pub struct PidFd {
    pub tgid: i32,
    tg: Weak<ThreadGroup>,
    kernel: Weak<Kernel>,
}

/// The queue every pidfd waits on; told of each exit and reap.
fn exits() -> &'static WaitQueue {
    static Q: OnceLock<WaitQueue> = OnceLock::new();
    Q.get_or_init(WaitQueue::default)
}

/// A process exited or was reaped: pidfd pollers look again.
pub fn process_changed() {
    exits().notify();
}

impl PidFd {
    pub fn new(tg: &Arc<ThreadGroup>) -> Arc<PidFd> {
        Arc::new(PidFd { tgid: tg.tgid, tg: Arc::downgrade(tg), kernel: Arc::downgrade(&tg.kernel) })
    }

    /// The process, while it has not been reaped (a zombie still counts).
    pub fn process(&self) -> Result<Arc<ThreadGroup>, Errno> {
        let tg = self.tg.upgrade().ok_or(Errno::ESRCH)?;
        let kernel = self.kernel.upgrade().ok_or(Errno::ESRCH)?;
        match kernel.group(self.tgid) {
            Some(g) if Arc::ptr_eq(&g, &tg) => Ok(tg),
            _ => Err(Errno::ESRCH),
        }
    }
}

impl PidFd {
    /// The pidfd's lines of /proc/PID/fdinfo: its pid, -1 once reaped.
    pub fn fdinfo(&self) -> String {
        let pid = if self.process().is_ok() { self.tgid } else { -1 };
        format!("Pid:\t{pid}\nNSpid:\t{pid}\n")
    }
}

impl FileOps for PidFd {
    fn read(&self, _ctx: &IoCtx, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn write(&self, _ctx: &IoCtx, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(exits())
    }

    fn poll(&self) -> u32 {
        let readable = (libc::POLLIN | libc::POLLRDNORM) as u32;
        match self.process() {
            Ok(tg) if *lock(&tg.zombie) => readable,
            Ok(_) => 0,
            Err(_) => readable | libc::POLLHUP as u32,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
