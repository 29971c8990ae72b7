//! A TCP connection that leaves the sandbox: the guest's socket keeps its
//! two [`Stream`]s, as on the loopback, and a bridge stands where the
//! peer socket would be, moving bytes between those streams and the host
//! socket the broker handed over. So every socket behaviour (poll bits,
//! shutdown, FIONREAD, states, errors) is the loopback's, and the host is
//! only ever asked for non-blocking sends and receives.
//!
//! The bridge runs whenever either side may have something for it: the
//! notifier calls it when the host socket's readiness changes, and the
//! streams' wait queue calls it when the guest wrote, read, shut down or
//! closed. Both only *kick* it: one thread at a time pumps, and a kick
//! that arrives meanwhile makes that thread go round again, so a pump can
//! never wait for itself.
//!
//! Lock order: the bridge's `pump` lock → a stream's lock (a leaf).

use super::stream::Stream;
use super::tcp::Conn;
use crate::egress::notifier::{HostEvents, Registration};
use crate::egress::sys;
use crate::Netstack;
use abi::Errno;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use vfs::{Notify, WaitQueue};

/// Bytes one send or receive moves at most.
const CHUNK: usize = 256 << 10;

struct Pump {
    buf: Vec<u8>,
    /// shutdown(SHUT_WR) was sent to the host.
    fin_sent: bool,
    /// The host sent FIN.
    host_eof: bool,
    /// The connection is over: nothing moves any more.
    done: bool,
}

pub(super) struct Bridge {
    fd: OwnedFd,
    /// What the guest sends (the bridge reads it).
    from_guest: Arc<Stream>,
    /// What the host sent (the bridge writes it).
    to_guest: Arc<Stream>,
    pump: Mutex<Pump>,
    again: AtomicBool,
    reg: Mutex<Option<Registration>>,
}

/// Put a bridge on the far side of `conn` (the streams as the peer would
/// hold them: `rx` is what the guest sends, `tx` what it receives),
/// carrying them over host socket `fd`. `q` is the wait queue the streams
/// were made with for the peer's side.
pub(super) fn attach(stack: &Netstack, fd: OwnedFd, conn: Conn, q: &Arc<WaitQueue>) -> Result<(), Errno> {
    let Some(egress) = stack.egress() else {
        return Err(Errno::ENETUNREACH);
    };
    let raw = fd.as_raw_fd();
    let b = Arc::new(Bridge {
        fd,
        from_guest: conn.rx,
        to_guest: conn.tx,
        pump: Mutex::new(Pump { buf: Vec::new(), fin_sent: false, host_eof: false, done: false }),
        again: AtomicBool::new(false),
        reg: Mutex::new(None),
    });
    let as_notify: Arc<dyn Notify> = b.clone();
    q.register(&as_notify);
    // The queue holds it weakly: the notifier's registration owns the
    // bridge until the connection is over.
    let reg = egress.notifier.add(raw, b.clone())?;
    *b.reg.lock().unwrap_or_else(|_| vfs::poisoned()) = Some(reg);
    b.kick();
    Ok(())
}

impl Bridge {
    fn kick(&self) {
        self.again.store(true, Ordering::SeqCst);
        loop {
            // A pump under way sees `again` and goes round once more.
            let Ok(mut p) = self.pump.try_lock() else { return };
            while self.again.swap(false, Ordering::SeqCst) {
                self.run(&mut p);
            }
            let finished = p.done;
            drop(p);
            if finished {
                // Dropping the registration drops the notifier's hold (and
                // with it the bridge and its descriptor).
                let reg = self.reg.lock().unwrap_or_else(|_| vfs::poisoned()).take();
                if let Some(reg) = reg {
                    reg.drop_before_close();
                }
                return;
            }
            if !self.again.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    fn run(&self, p: &mut Pump) {
        if p.done {
            return;
        }
        if p.buf.len() < CHUNK {
            p.buf.resize(CHUNK, 0);
        }
        let fd = self.fd.as_raw_fd();
        // Guest to host.
        loop {
            let out = self.from_guest.peek_out(&mut p.buf);
            if out.rst {
                return self.finish(p);
            }
            if out.n == 0 {
                if out.fin && !p.fin_sent {
                    // Closing sends the FIN anyway: when the guest will
                    // read nothing more, the shutdown call is saved.
                    if !(p.host_eof || self.to_guest.reader_gone()) {
                        sys::shutdown(fd, libc::SHUT_WR);
                    }
                    p.fin_sent = true;
                }
                break;
            }
            match sys::send_nb(fd, p.buf.get(..out.n).unwrap_or_default()) {
                Ok(k) => {
                    self.from_guest.consume(k);
                    if k < out.n {
                        break;
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(_) => return self.host_reset(p),
            }
        }
        // Host to guest.
        while !p.host_eof {
            let room = self.to_guest.room().min(CHUNK);
            if room == 0 {
                break;
            }
            match sys::recv_nb(fd, p.buf.get_mut(..room).unwrap_or_default()) {
                Ok(0) => {
                    p.host_eof = true;
                    self.to_guest.push_fin();
                }
                Ok(k) => self.to_guest.push(p.buf.get(..k).unwrap_or_default()),
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(_) => return self.host_reset(p),
            }
        }
        let sent_all = p.fin_sent;
        let read_all = p.host_eof || self.to_guest.reader_gone();
        if sent_all && read_all {
            self.finish(p);
        }
    }

    /// The host reset the connection (or failed it): the guest reads what
    /// came, then ECONNRESET; its writes fail.
    fn host_reset(&self, p: &mut Pump) {
        self.to_guest.push_reset();
        self.from_guest.refuse_writes();
        self.finish(p);
    }

    fn finish(&self, p: &mut Pump) {
        p.done = true;
        p.buf = Vec::new();
    }
}

impl Notify for Bridge {
    fn notify(&self) {
        self.kick();
    }
}

impl HostEvents for Bridge {
    fn ready(&self, _events: u32) {
        self.kick();
    }
}
