//! A TCP connection that leaves the sandbox: the guest's socket keeps its
//! two [`Stream`]s, as on the loopback, and a bridge stands where the
//! peer socket would be, with the host socket the broker handed over
//! behind both streams. So every socket behaviour (poll bits, shutdown,
//! FIONREAD, states, errors) is the loopback's.
//!
//! Bytes take the short way whenever they can: a guest read with nothing
//! queued receives straight from the host socket, and a guest write with
//! nothing queued sends straight to it ([`HostSide`], on the guest's own
//! thread). Only what the host could not take at once is queued, and the
//! bridge sends it when the host socket has room again. The notifier
//! calls the bridge when the host socket's readiness changes (new bytes
//! wake the guest's reader; room lets the queue drain); the streams' wait
//! queue calls it when the guest wrote, shut down or closed. Both only
//! *kick* it: one thread at a time pumps, and a kick that arrives
//! meanwhile makes that thread go round again, so a pump can never wait
//! for itself.
//!
//! Lock order: the bridge's `pump` → a stream's `st` → the bridge's
//! `armed` → its `reg` → the notifier's `handlers` (a leaf). A stream
//! calls [`HostSide`] with its own lock held: `recv`/`send` take no lock,
//! `want_readable` takes `armed` and `reg` (arming the notifier). `pump`
//! (held across non-blocking host sends only) is never taken under a
//! stream's lock: kicks use `try_lock`.

use super::stream::{HostSide, Stream};
use super::tcp::Conn;
use crate::egress::notifier::{HostEvents, Registration};
use crate::egress::sys;
use crate::egress::sys::SetPoke;
use crate::Netstack;
use abi::Errno;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use vfs::{Notify, WaitQueue};

/// Bytes one send of queued bytes moves at most.
const CHUNK: usize = 256 << 10;

struct Pump {
    buf: Vec<u8>,
    /// shutdown(SHUT_WR) was sent to the host.
    fin_sent: bool,
    /// The connection is over: nothing moves any more.
    done: bool,
}

pub(super) struct Bridge {
    me: std::sync::Weak<Bridge>,
    egress: std::sync::Weak<crate::egress::client::Egress>,
    /// Its place in the egress's set of live connections (which owns it
    /// until the connection is over).
    held: std::sync::atomic::AtomicUsize,
    fd: OwnedFd,
    /// What the guest sends (the bridge reads it).
    from_guest: Arc<Stream>,
    /// What the host sent (the bridge writes it).
    to_guest: Arc<Stream>,
    pump: Mutex<Pump>,
    again: AtomicBool,
    /// The notifier's registration, made the first time someone must wait
    /// through it (a connection whose guest reads and writes straight to
    /// the host socket never needs one).
    reg: Mutex<Option<Registration>>,
    /// What the notifier watches the host socket for right now. Each
    /// event disarms it (EPOLLONESHOT), and only a party about to wait
    /// arms it again: a reader that found nothing, a poll that found the
    /// socket empty, queued bytes the host had no room for. A download
    /// read straight by the guest never wakes the notifier.
    armed: Mutex<u32>,
    /// The broker died: the connection ends with a reset.
    aborted: AtomicBool,
}

/// Put a bridge on the far side of `conn` (the streams as the peer would
/// hold them: `rx` is what the guest sends, `tx` what it receives),
/// carrying them over host socket `fd`. `q` is the wait queue the streams
/// were made with for the peer's side.
pub(super) fn attach(stack: &Netstack, fd: OwnedFd, conn: Conn, q: &Arc<WaitQueue>) -> Result<(), Errno> {
    let Some(egress) = stack.egress() else {
        return Err(Errno::ENETUNREACH);
    };
    let b = Arc::new_cyclic(|me| Bridge {
        me: me.clone(),
        egress: Arc::downgrade(egress),
        held: std::sync::atomic::AtomicUsize::new(0),
        fd,
        from_guest: conn.rx,
        to_guest: conn.tx,
        pump: Mutex::new(Pump { buf: Vec::new(), fin_sent: false, done: false }),
        again: AtomicBool::new(false),
        reg: Mutex::new(None),
        armed: Mutex::new(0),
        aborted: AtomicBool::new(false),
    });
    // The queue and the streams hold it weakly: the egress holds it until
    // the connection is over (and tears it down if the broker dies).
    let teardown: Arc<dyn crate::egress::client::Teardown> = b.clone();
    b.held.store(egress.hold(teardown), Ordering::Release);
    let as_notify: Arc<dyn Notify> = b.clone();
    q.register(&as_notify);
    let host: Arc<dyn HostSide> = b.clone();
    b.from_guest.set_host(Arc::downgrade(&host));
    b.to_guest.set_host(Arc::downgrade(&host));
    b.kick();
    Ok(())
}

impl Bridge {
    /// Have the notifier report `events` (once).
    fn arm(&self, events: u32) {
        let mut armed = self.armed.lock().unwrap_or_else(|_| vfs::poisoned());
        let want = *armed | events;
        if want == *armed {
            return;
        }
        let mut reg = self.reg.lock().unwrap_or_else(|_| vfs::poisoned());
        match reg.as_ref() {
            Some(r) => r.modify(want | sys::EPOLLONESHOT),
            None => {
                let (Some(me), Some(e)) = (self.me.upgrade(), self.egress.upgrade()) else { return };
                match e.notifier.add_for(self.fd.as_raw_fd(), me, want | sys::EPOLLONESHOT) {
                    Ok(r) => *reg = Some(r),
                    // Without the notifier a poll waiter is not woken;
                    // readers and writers still wait on the socket itself.
                    Err(_) => return,
                }
            }
        }
        *armed = want;
    }

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
                // Dropping the registration and the egress's hold drops
                // the bridge and its descriptor.
                let reg = self.reg.lock().unwrap_or_else(|_| vfs::poisoned()).take();
                if let Some(reg) = reg {
                    reg.drop_before_close();
                }
                if let Some(e) = self.egress.upgrade() {
                    e.release(self.held.load(Ordering::Acquire));
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
        let fd = self.fd.as_raw_fd();
        if self.aborted.load(Ordering::Acquire) {
            sys::shutdown(fd, libc::SHUT_RDWR);
            return self.host_reset(p);
        }
        // A reset the guest's reader received from the host.
        if self.to_guest.with(|s| s.rst && !s.fin) {
            return self.host_reset(p);
        }
        // What the guest queued, to the host.
        let mut blocked = false;
        loop {
            let queued = self.from_guest.queued();
            if queued == 0 {
                break;
            }
            let want = queued.min(CHUNK);
            if p.buf.len() < want {
                p.buf.resize(want, 0);
            }
            let out = self.from_guest.peek_out(p.buf.get_mut(..want).unwrap_or_default());
            if out.rst {
                return self.finish(p);
            }
            match sys::send_nb(fd, p.buf.get(..out.n).unwrap_or_default()) {
                Ok(k) => {
                    self.from_guest.consume(k);
                    if k < out.n {
                        blocked = true;
                        break;
                    }
                }
                Err(Errno::EAGAIN) => {
                    blocked = true;
                    break;
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return self.host_reset(p),
            }
        }
        if blocked {
            self.arm(sys::EPOLLOUT);
        }
        let out = self.from_guest.peek_out(&mut []);
        if out.rst {
            return self.finish(p);
        }
        let read_all = self.to_guest.with(|s| s.fin || s.rst) || self.to_guest.reader_gone();
        if out.fin && !blocked && !p.fin_sent {
            // Closing sends the FIN anyway: when the guest will read
            // nothing more, the shutdown call is saved.
            if !read_all {
                sys::shutdown(fd, libc::SHUT_WR);
            }
            p.fin_sent = true;
        }
        if p.fin_sent && read_all {
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

impl HostSide for Bridge {
    fn recv(&self, buf: &mut [u8], peek: bool, discard: bool) -> Result<usize, Errno> {
        let mut flags = 0;
        if peek {
            flags |= libc::MSG_PEEK;
        }
        if discard {
            flags |= libc::MSG_TRUNC;
        }
        sys::recv_flags(self.fd.as_raw_fd(), buf, flags)
    }

    fn send(&self, data: &[u8]) -> Result<usize, Errno> {
        sys::send_nb(self.fd.as_raw_fd(), data)
    }

    fn readable(&self) -> bool {
        sys::readable_now(self.fd.as_raw_fd())
    }

    fn pending(&self) -> usize {
        sys::fionread(self.fd.as_raw_fd())
    }

    fn want_readable(&self) {
        self.arm(sys::EPOLLIN);
    }

    fn set_nodelay(&self, on: bool) {
        sys::set_nodelay(self.fd.as_raw_fd(), on);
    }

    fn wait_readable(
        &self,
        interrupt: &vfs::Interrupt,
        deadline: Option<std::time::Instant>,
        set_poke: &SetPoke<'_>,
        still_empty: &dyn Fn() -> bool,
    ) -> Result<(), Errno> {
        sys::wait_fd(
            self.fd.as_raw_fd(),
            libc::POLLIN,
            interrupt,
            deadline,
            set_poke,
            still_empty,
            sys::WaitLength::Open,
        )
    }
}

impl crate::egress::client::Teardown for Bridge {
    fn broker_gone(&self) {
        self.aborted.store(true, Ordering::Release);
        self.kick();
    }
}

impl Notify for Bridge {
    fn notify(&self) {
        self.kick();
    }
}

impl HostEvents for Bridge {
    fn ready(&self, events: u32) {
        // The event disarmed the descriptor, for every interest at once
        // (EPOLLONESHOT): a reader that armed EPOLLIN beside a pending
        // EPOLLOUT lost its interest when the socket became writable, and
        // one whose `arm` found EPOLLIN still recorded after the kernel had
        // fired returned without arming. Either way it is woken here, looks
        // again, and arms afresh if there is still nothing (a poll waiter
        // slept through a reply that came after the last send drained).
        let was = std::mem::take(&mut *self.armed.lock().unwrap_or_else(|_| vfs::poisoned()));
        if events & (sys::EPOLLIN | sys::EPOLLRDHUP | sys::EPOLLHUP | sys::EPOLLERR) != 0 || was & sys::EPOLLIN != 0 {
            self.to_guest.wake_reader();
        }
        self.kick();
    }
}
