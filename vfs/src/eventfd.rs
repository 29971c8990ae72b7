//! eventfd: a 64-bit counter that read drains and write adds to.

use crate::wait::{IoCtx, Waitable};
use crate::FileOps;
use abi::Errno;
use std::any::Any;
use std::sync::Arc;

const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Arc<Waitable<u64>>,
    semaphore: bool,
}

impl EventFd {
    pub fn new_ops(initval: u32, semaphore: bool) -> Arc<dyn FileOps> {
        Arc::new(EventFd { count: Waitable::new(initval as u64), semaphore })
    }
}

impl FileOps for EventFd {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let semaphore = self.semaphore;
        let v = self.count.block_on(
            ctx,
            |c| {
                if *c == 0 {
                    return None;
                }
                let v = if semaphore { 1 } else { *c };
                *c -= v;
                Some(Ok(v))
            },
            |_| None,
        )?;
        self.count.notify();
        buf[..8].copy_from_slice(&v.to_ne_bytes());
        Ok(8)
    }

    fn write(&self, ctx: &IoCtx, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        let b: [u8; 8] = buf.get(..8).and_then(|s| s.try_into().ok()).ok_or(Errno::EINVAL)?;
        let add = u64::from_ne_bytes(b);
        if add == u64::MAX {
            return Err(Errno::EINVAL);
        }
        self.count.block_on(
            ctx,
            |c| {
                if MAX - *c < add {
                    return None;
                }
                *c += add;
                Some(Ok(()))
            },
            |_| None,
        )?;
        self.count.notify();
        Ok(8)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> u32 {
        let c = *self.count.lock();
        let mut r = 0;
        if c > 0 {
            r |= libc::POLLIN as u32;
        }
        if c < MAX {
            r |= libc::POLLOUT as u32;
        }
        r
    }

    fn wait_queue(&self) -> Option<&crate::wait::WaitQueue> {
        Some(&self.count.queue)
    }

    fn stat(&self) -> Option<abi::Stat> {
        Some(abi::Stat { st_mode: 0o600, st_nlink: 1, st_blksize: 4096, ..Default::default() })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
