//! SOCK_DGRAM and SOCK_SEQPACKET data: every send is one message, read
//! whole by one receive (cut to the buffer, MSG_TRUNC). Datagrams go to
//! the default peer or to a named socket; seqpacket only to its peer.

use super::msg::{cost, recv_control, Ancillary, Msg, NO_CREDS};
use super::{UnixSocket, MAX_DGRAM_QLEN};
use crate::addr::{SockAddr, UnixAddr};
use crate::socket::{Caller, Control, RecvMsg};
use abi::socket::{Ucred, MSG_OOB, MSG_PEEK, MSG_TRUNC, SOCK_SEQPACKET};
use abi::Errno;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Instant, SystemTime};
use vfs::{IoCtx, OpenFile};

/// Linux refuses a datagram longer than SO_SNDBUF less this.
const SNDBUF_SLACK: usize = 32;

/// One message taken (or peeked) from the queue.
struct Delivered {
    full_len: usize,
    len: usize,
    rights: Vec<Arc<OpenFile>>,
    cred: Option<Ucred>,
    from: Weak<UnixSocket>,
    from_addr: UnixAddr,
    stamp: SystemTime,
    /// Given back to the sender (0 for a peek).
    charge: usize,
    passcred: bool,
    timestamp: bool,
    /// Senders to tell that the queue has room again.
    waiters: Vec<Weak<UnixSocket>>,
}

fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

impl UnixSocket {
    pub(super) fn send_dgram(
        &self,
        c: &Caller,
        data: &[u8],
        addr: Option<&SockAddr>,
        control: Vec<Control>,
        flags: i32,
    ) -> Result<usize, Errno> {
        let seqpacket = self.sock_type == SOCK_SEQPACKET;
        if seqpacket {
            let mut st = self.st.lock();
            if let Some(e) = st.err.take() {
                return Err(e);
            }
            if !st.connected() {
                return Err(Errno::ENOTCONN);
            }
        }
        let mut anc = Ancillary::of(control)?;
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        // Seqpacket ignores an address.
        let name = match addr {
            Some(_) if seqpacket => None,
            None => None,
            Some(SockAddr::Unix(a @ (UnixAddr::Path(_) | UnixAddr::Abstract(_)))) => Some(a.clone()),
            Some(_) => return Err(Errno::EINVAL),
        };
        let peer = match name {
            Some(_) => None,
            None => match &self.st.lock().peer {
                Some(p) => Some(p.sock.clone()),
                None => return Err(Errno::ENOTCONN),
            },
        };
        self.autobind_if_passcred()?;
        let (passcred, deadline, sndbuf, my_addr) = {
            let st = self.st.lock();
            (st.opts.passcred, st.opts.send_deadline(), st.opts.sndbuf as usize, st.addr.clone())
        };
        if data.len() > sndbuf.saturating_sub(SNDBUF_SLACK) {
            return Err(Errno::EMSGSIZE);
        }
        // Room in our own send budget (sock_alloc_send_pskb).
        self.st.block_on(
            c.io,
            |st| {
                if let Some(e) = st.err.take() {
                    return Some(Err(e));
                }
                if st.wr_shut {
                    return Some(Err(Errno::EPIPE));
                }
                if self.wmem.load(Ordering::Acquire) < st.opts.sndbuf as usize {
                    return Some(Ok(()));
                }
                if past(deadline) {
                    return Some(Err(Errno::EAGAIN));
                }
                None
            },
            |_| deadline,
        )?;
        let charge = cost(data.len(), anc.rights.len());
        let mut msg = Some(Msg::new(data.to_vec(), std::mem::take(&mut anc.rights), self, my_addr, charge));
        loop {
            let target = match (&name, &peer) {
                (Some(a), _) => self.stack.unix.find(c.paths, a, self.sock_type)?,
                (None, Some(p)) => match p.upgrade() {
                    Some(t) => t,
                    None => return Err(self.peer_gone(p, seqpacket)),
                },
                (None, None) => return Err(Errno::ENOTCONN),
            };
            let to_self = std::ptr::eq(Arc::as_ptr(&target), self);
            self.wmem.fetch_add(charge, Ordering::AcqRel);
            let queued = target.st.block_on(
                c.io,
                |t| {
                    if t.dead {
                        return Some(Ok(false));
                    }
                    let mutual = t.peer_is(&self.me);
                    if t.peer.is_some() && !mutual {
                        return Some(Err(Errno::EPERM));
                    }
                    if t.rd_shut {
                        return Some(Err(Errno::EPIPE));
                    }
                    if !to_self && !mutual && t.rx.len() > MAX_DGRAM_QLEN {
                        return if past(deadline) { Some(Err(Errno::EAGAIN)) } else { None };
                    }
                    let Some(mut m) = msg.take() else { return Some(Err(Errno::EINVAL)) };
                    m.cred = anc.cred_for(passcred || t.opts.passcred || t.embryo, c.cred);
                    t.rx_bytes += m.data.len();
                    t.rx.push_back(m);
                    Some(Ok(true))
                },
                |_| deadline,
            );
            match queued {
                Ok(true) => {
                    target.st.notify();
                    return Ok(data.len());
                }
                Ok(false) => {
                    self.uncharge(charge);
                    match &peer {
                        // By name: look again (someone else may be bound there now).
                        None => continue,
                        Some(p) => return Err(self.peer_gone(p, seqpacket)),
                    }
                }
                Err(e) => {
                    self.uncharge(charge);
                    return Err(e);
                }
            }
        }
    }

    /// Our default peer is gone: a datagram socket forgets it (dropping
    /// what it had queued, as unix_dgram_disconnected) and says
    /// ECONNREFUSED; a seqpacket connection is broken (EPIPE).
    fn peer_gone(&self, gone: &Weak<UnixSocket>, seqpacket: bool) -> Errno {
        if seqpacket {
            return Errno::EPIPE;
        }
        let purged = {
            let mut st = self.st.lock();
            if st.peer_is(gone) {
                st.peer = None;
                st.rx_bytes = 0;
                std::mem::take(&mut st.rx)
            } else {
                VecDeque::new()
            }
        };
        Self::discard(purged);
        Errno::ECONNREFUSED
    }

    pub(super) fn recv_dgram(&self, io: &IoCtx, buf: &mut [u8], flags: i32) -> Result<RecvMsg, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let seqpacket = self.sock_type == SOCK_SEQPACKET;
        let peek = flags & MSG_PEEK != 0;
        let nonblock = io.nonblock();
        let deadline = {
            let st = self.st.lock();
            if seqpacket && !st.connected() {
                return Err(Errno::ENOTCONN);
            }
            st.opts.recv_deadline()
        };
        let got = self.st.block_on(
            io,
            |st| {
                if let Some(e) = st.err.take() {
                    return Some(Err(e));
                }
                let passcred = st.opts.passcred;
                let timestamp = st.opts.timestamp;
                if let Some(m) = st.rx.front().filter(|_| peek) {
                    let len = m.data.len().min(buf.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(..len), m.data.get(..len)) {
                        dst.copy_from_slice(src);
                    }
                    return Some(Ok(Some(Delivered {
                        full_len: m.data.len(),
                        len,
                        rights: m.rights.clone(),
                        cred: m.cred,
                        from: m.from.clone(),
                        from_addr: m.from_addr.clone(),
                        stamp: m.stamp,
                        charge: 0,
                        passcred,
                        timestamp,
                        waiters: Vec::new(),
                    })));
                }
                if let Some(m) = if peek { None } else { st.rx.pop_front() } {
                    st.rx_bytes = st.rx_bytes.saturating_sub(m.data.len());
                    let waiters =
                        if st.rx.len() <= MAX_DGRAM_QLEN { std::mem::take(&mut st.peer_waiters) } else { Vec::new() };
                    let len = m.data.len().min(buf.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(..len), m.data.get(..len)) {
                        dst.copy_from_slice(src);
                    }
                    return Some(Ok(Some(Delivered {
                        full_len: m.data.len(),
                        len,
                        rights: m.rights,
                        cred: m.cred,
                        from: m.from,
                        from_addr: m.from_addr,
                        stamp: m.stamp,
                        charge: m.charge,
                        passcred,
                        timestamp,
                        waiters,
                    })));
                }
                if st.rd_shut {
                    // End of input; a non-blocking datagram receive still
                    // says EAGAIN, as Linux's.
                    return Some(if nonblock && !seqpacket { Err(Errno::EAGAIN) } else { Ok(None) });
                }
                if past(deadline) {
                    return Some(Err(Errno::EAGAIN));
                }
                None
            },
            |_| deadline,
        )?;
        let Some(d) = got else { return Ok(RecvMsg::default()) };
        if !peek {
            Self::give_back(&d.from, d.charge);
            // Senders blocked on our full queue.
            self.st.notify();
            Self::wake_waiters(d.waiters);
        }
        let addr = Self::sender_addr(&d.from, &d.from_addr);
        let cred = d.passcred.then(|| d.cred.unwrap_or(NO_CREDS));
        let stamp = d.timestamp.then_some(d.stamp);
        Ok(RecvMsg {
            len: d.len,
            full_len: d.full_len,
            addr,
            control: recv_control(stamp, cred, d.rights),
            flags: if d.full_len > d.len { MSG_TRUNC } else { 0 },
        })
    }
}
