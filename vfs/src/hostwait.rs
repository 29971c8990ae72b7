//! Waiting on a host descriptor in the calling task's thread: until it is
//! ready, a deadline passes, or the task is interrupted. Host files
//! (stdio, FIFOs) and sockets the egress broker handed over wait this way;
//! the wake-up pipe is the thread's own, made once, so a wait costs one
//! poll(2) and no descriptor churn.

use crate::util::last_errno;
use crate::wait::Interrupt;
use abi::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

/// A wake-up to call from another thread.
pub type Waker = Arc<dyn Fn() + Send + Sync>;
/// Installs (Some) or removes (None) the waker of a wait.
pub type SetPoke<'a> = dyn Fn(Option<Waker>) + 'a;

thread_local! {
    /// This thread's wake-up pipe for [`wait_fd`] (read end, write end).
    static WAKE: std::cell::OnceCell<Option<(OwnedFd, Arc<OwnedFd>)>> = const { std::cell::OnceCell::new() };
}

fn new_pipe() -> Option<(OwnedFd, Arc<OwnedFd>)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into a live array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return None;
    }
    // SAFETY: both were just created and are owned by nobody else.
    unsafe { Some((OwnedFd::from_raw_fd(fds[0]), Arc::new(OwnedFd::from_raw_fd(fds[1])))) }
}

/// How long a [`wait_fd`] is expected to last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitLength {
    /// As long as the other side takes: the platform is told the task
    /// blocked (`Interrupt::with_waker`).
    Open,
    /// Usually tens of microseconds (an answer from the egress broker):
    /// the guest thread's side goes on polling (`Interrupt::with_waker_brief`).
    Brief,
}

/// Wait on `fd` for `events` in the calling task's thread: until it is
/// ready (Ok), `deadline` passes (EAGAIN), the task is interrupted
/// (ERESTARTSYS), or the waker handed to `set_poke` is called (Ok). The
/// wake-up pipe is the thread's own, made once: a stale wake-up only
/// makes one wait go round again.
pub fn wait_fd(
    fd: RawFd,
    events: i16,
    interrupt: &Interrupt,
    deadline: Option<Instant>,
    set_poke: &SetPoke<'_>,
    still_waiting: &dyn Fn() -> bool,
    length: WaitLength,
) -> Result<(), Errno> {
    WAKE.with(|w| {
        let Some((rd, wr)) = w.get_or_init(new_pipe) else {
            return Err(Errno::ENOMEM);
        };
        let wr = wr.clone();
        let waker: Waker = Arc::new(move || {
            // SAFETY: one byte from a static to a pipe we own; a full pipe
            // already wakes the waiter.
            let _ = unsafe { libc::write(wr.as_raw_fd(), b"w".as_ptr().cast(), 1) };
        });
        set_poke(Some(waker.clone()));
        let wait = || loop {
            if interrupt.is_pending() {
                return Err(Errno::ERESTARTSYS);
            }
            if !still_waiting() {
                return Ok(());
            }
            let timeout = match deadline {
                None => -1,
                Some(t) => {
                    let left = t.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Errno::EAGAIN);
                    }
                    i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX)
                }
            };
            let mut fds = [
                libc::pollfd { fd, events, revents: 0 },
                libc::pollfd { fd: rd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: two live pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
            if n < 0 {
                let e = last_errno();
                if e == Errno::EINTR {
                    continue;
                }
                return Err(e);
            }
            if fds[1].revents != 0 {
                let mut v = [0u8; 64];
                // SAFETY: reads into a live local from our pipe.
                let _ = unsafe { libc::read(rd.as_raw_fd(), v.as_mut_ptr().cast(), v.len()) };
            }
            if fds[0].revents != 0 {
                return Ok(());
            }
        };
        let r = match length {
            WaitLength::Open => interrupt.with_waker(waker, wait),
            WaitLength::Brief => interrupt.with_waker_brief(waker, wait),
        };
        set_poke(None);
        r
    })
}
