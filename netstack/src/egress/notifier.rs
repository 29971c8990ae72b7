//! One thread per sandbox that waits on the host descriptors the broker
//! handed the Sentry (gVisor's fdnotifier): edge-triggered epoll, each
//! descriptor's handler called when its readiness changes. Handlers do
//! their own non-blocking I/O; nobody blocks on a host descriptor.
//!
//! Lock order: `handlers` is a leaf; a handler is called with nothing
//! held.

use super::sys::{Epoll, EPOLLIN, EPOLLOUT};
use abi::Errno;
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a watched descriptor does when its readiness changes.
pub trait HostEvents: Send + Sync {
    /// `events`: EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP/EPOLLRDHUP bits.
    fn ready(&self, events: u32);
}

pub struct Notifier {
    epoll: Epoll,
    handlers: Mutex<HashMap<u64, Arc<dyn HostEvents>>>,
    next: AtomicU64,
}

/// A descriptor's place in the notifier; dropping it stops the events.
pub struct Registration {
    notifier: Arc<Notifier>,
    key: u64,
    fd: RawFd,
    /// The descriptor is closed right after: closing takes it out of the
    /// epoll, one host call fewer.
    closing: bool,
}

impl Registration {
    /// Watch for `events` (EPOLLIN, EPOLLOUT) from now on.
    pub fn modify(&self, events: u32) {
        self.notifier.epoll.modify(self.fd, self.key, events);
    }

    /// Drop the registration of a descriptor its owner closes next.
    pub fn drop_before_close(mut self) {
        self.closing = true;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.closing {
            self.notifier.epoll.remove(self.fd);
        }
        self.notifier.handlers().remove(&self.key);
    }
}

impl Notifier {
    /// Start the thread.
    pub fn start() -> Result<Arc<Notifier>, Errno> {
        let n =
            Arc::new(Notifier { epoll: Epoll::new()?, handlers: Mutex::new(HashMap::new()), next: AtomicU64::new(1) });
        let me = n.clone();
        std::thread::Builder::new().name("host-events".into()).spawn(move || me.run()).map_err(Errno::from)?;
        Ok(n)
    }

    fn handlers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<dyn HostEvents>>> {
        self.handlers.lock().unwrap_or_else(|_| vfs::poisoned())
    }

    /// Watch `fd` (which must outlive the registration) for input and
    /// output with `h`. The handler is called once soon after if the
    /// descriptor is already ready.
    pub fn add(self: &Arc<Self>, fd: RawFd, h: Arc<dyn HostEvents>) -> Result<Registration, Errno> {
        self.add_for(fd, h, EPOLLIN | EPOLLOUT)
    }

    /// As [`Notifier::add`], for `events` only (the broker channel never
    /// waits to send: an EPOLLOUT edge after each request would only wake
    /// this thread for nothing).
    pub fn add_for(self: &Arc<Self>, fd: RawFd, h: Arc<dyn HostEvents>, events: u32) -> Result<Registration, Errno> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.handlers().insert(key, h);
        if let Err(e) = self.epoll.add(fd, key, events) {
            self.handlers().remove(&key);
            return Err(e);
        }
        Ok(Registration { notifier: self.clone(), key, fd, closing: false })
    }

    fn run(&self) {
        let mut events = Vec::with_capacity(64);
        loop {
            match self.epoll.wait(&mut events) {
                Ok(()) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("host-events: epoll_wait failed: {e}; host sockets no longer wake waiters");
                    return;
                }
            }
            for &(key, ev) in &events {
                let h = self.handlers().get(&key).cloned();
                if let Some(h) = h {
                    h.ready(ev);
                }
            }
        }
    }
}
