//! The container's console: a Sentry pty whose master is bridged to a
//! host terminal descriptor (the caller's own terminal, or the slave of
//! a host pty whose master went to a `--console-socket` receiver). The
//! init process gets the slave as its stdio and controlling terminal.
//!
//! Two threads of the Sentry move bytes: host → master (typing, and the
//! host terminal's window size, copied whenever it changes: the host
//! sends no SIGWINCH to a terminal nobody controls, so it is looked at on
//! every input and at least every 200 ms) and master → host (output).
//! They use read, write, poll and TIOCGWINSZ on the one host descriptor,
//! all already in the Sentry's allowlist.

use super::pty::Pty;
use super::*;
use crate::util::last_errno;
use crate::wait::{Interrupt, IoCtx};
use abi::Errno;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::time::Duration;

/// A running bridge.
pub struct Console {
    pub pty: Arc<Pty>,
    /// /dev/pts/N inside the sandbox: the path init's stdio opens.
    pub slave_path: String,
    done: mpsc::Receiver<()>,
    /// Set to end the host → master thread (an exec'd process's console
    /// must stop reading the host descriptor once the process is gone).
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Console {
    /// Wait (at most `limit`) until the output has reached the host: the
    /// last slave descriptor closed and everything written was passed on.
    pub fn drain(&self, limit: Duration) {
        let _ = self.done.recv_timeout(limit);
    }

    /// Stop reading the host descriptor (within the poll period); the
    /// bridge then lets the host descriptor go.
    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn winsize_of(fd: RawFd) -> Option<[u8; 8]> {
    let mut ws = [0u8; 8];
    // SAFETY: TIOCGWINSZ writes a struct winsize (8 bytes) into `ws`.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, ws.as_mut_ptr()) };
    (r == 0).then_some(ws)
}

fn write_all(fd: RawFd, mut b: &[u8]) -> Result<(), Errno> {
    while !b.is_empty() {
        // SAFETY: the pointer and length describe `b`.
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n < 0 {
            let e = last_errno();
            if e == Errno::EINTR {
                continue;
            }
            if e == Errno::EAGAIN {
                let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, 200) };
                continue;
            }
            return Err(e);
        }
        b = &b[n as usize..];
    }
    Ok(())
}

/// Make a pty in the sandbox's devpts, controlled by session `sid`
/// (the init process, which leads its session), and bridge its master to
/// `host`.
pub fn start(host: OwnedFd, sid: i32) -> Result<Console, Errno> {
    let master = devpts::open_sandbox_master()?;
    let (pty, _) = devpts::pty_of(&*master).ok_or(Errno::EIO)?;
    master.ioctl(TIOCSPTLCK, 0, &0i32.to_ne_bytes())?;
    if let Some(ws) = winsize_of(host.as_raw_fd()) {
        master.ioctl(TIOCSWINSZ, 0, &ws)?;
    }
    pty.make_controlling(sid, sid);
    let host = Arc::new(host);
    let (tx, done) = mpsc::channel();

    let (m, h) = (master.clone(), host.clone());
    std::thread::Builder::new()
        .name("console-out".into())
        .spawn(move || {
            let irq = Interrupt::default();
            let ctx = IoCtx { flags: 0, interrupt: &irq };
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = m.read(&ctx, &mut buf, 0) {
                if write_all(h.as_raw_fd(), &buf[..n]).is_err() {
                    break;
                }
            }
            let _ = tx.send(());
        })
        .map_err(|_| Errno::EAGAIN)?;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (m, h, halt) = (master, host, stop.clone());
    std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || {
            let irq = Interrupt::default();
            let ctx = IoCtx { flags: 0, interrupt: &irq };
            let fd = h.as_raw_fd();
            let mut ws = winsize_of(fd);
            let mut buf = vec![0u8; 4096];
            loop {
                let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut p, 1, 200) };
                if halt.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let now = winsize_of(fd);
                if now.is_some() && now != ws {
                    ws = now;
                    if let Some(w) = ws {
                        let _ = m.ioctl(TIOCSWINSZ, 0, &w);
                    }
                }
                if r <= 0 || p.revents == 0 {
                    continue;
                }
                // SAFETY: the pointer and length describe `buf`.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 && matches!(last_errno(), Errno::EINTR | Errno::EAGAIN) {
                    continue;
                }
                if n <= 0 {
                    break;
                }
                if m.write(&ctx, &buf[..n as usize], 0).is_err() {
                    break;
                }
            }
            // The host side hung up: so does the container's terminal.
            m.release();
        })
        .map_err(|_| Errno::EAGAIN)?;
    let slave_path = format!("/dev/pts/{}", pty.index);
    Ok(Console { pty, slave_path, done, stop })
}
