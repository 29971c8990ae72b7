//! SOCK_STREAM data. A send is cut to what SO_SNDBUF leaves room for and
//! queued at the peer; a receive reads across the pieces, as one byte
//! stream, but stops after a piece that carried descriptors and (with
//! SO_PASSCRED) before a piece with other credentials, as Linux's
//! unix_stream_read_generic.

use super::msg::{cost, recv_control, Ancillary, Msg, NO_CREDS};
use super::{Conn, State, UnixSocket};
use crate::addr::{SockAddr, UnixAddr};
use crate::socket::{Caller, Control, RecvMsg};
use abi::socket::{Ucred, MSG_OOB, MSG_PEEK, MSG_WAITALL};
use abi::Errno;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Instant;
use vfs::{IoCtx, OpenFile};

/// Queued pieces from one sender join up to this size (fewer, larger
/// messages; reads glue them anyway).
const JOIN_MAX: usize = 64 * 1024;

/// Where one receive is.
#[derive(Default)]
struct Read {
    copied: usize,
    /// A boundary was reached (descriptors, other credentials).
    stop: bool,
    rights: Vec<Arc<OpenFile>>,
    /// With SO_PASSCRED: the credentials of the first piece read.
    cred: Option<Option<Ucred>>,
    passcred: bool,
    from: Option<(Weak<UnixSocket>, UnixAddr)>,
    /// Charges to give back to senders once the lock is released.
    freed: Vec<(Weak<UnixSocket>, usize)>,
}

enum Progress {
    Done,
    /// Data was consumed and more is wanted: give the charges back (which
    /// needs the lock released), then wait on.
    Again,
}

impl UnixSocket {
    pub(super) fn send_stream(
        &self,
        c: &Caller,
        data: &[u8],
        addr: Option<&SockAddr>,
        control: Vec<Control>,
        flags: i32,
    ) -> Result<usize, Errno> {
        let mut anc = Ancillary::of(control)?;
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let (peer, passcred, deadline, my_addr) = {
            let st = self.st.lock();
            if addr.is_some() {
                return Err(if st.connected() { Errno::EISCONN } else { Errno::EOPNOTSUPP });
            }
            let peer = match (&st.peer, st.connected()) {
                (Some(p), true) => p.sock.clone(),
                _ => return Err(Errno::ENOTCONN),
            };
            if st.wr_shut {
                return Err(Errno::EPIPE);
            }
            (peer, st.opts.passcred, st.opts.send_deadline(), st.addr.clone())
        };
        let mut rights = std::mem::take(&mut anc.rights);
        let mut sent = 0usize;
        while sent < data.len() {
            let room = self.st.block_on(
                c.io,
                |st| {
                    if let Some(e) = st.err.take() {
                        return Some(Err(e));
                    }
                    if st.wr_shut {
                        return Some(Err(Errno::EPIPE));
                    }
                    let sndbuf = st.opts.sndbuf as usize;
                    let used = self.wmem.load(Ordering::Acquire);
                    if used < sndbuf {
                        return Some(Ok(sndbuf - used));
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Some(Err(Errno::EAGAIN));
                    }
                    None
                },
                |_| deadline,
            );
            let room = match room {
                Ok(r) => r,
                Err(e) => return if sent > 0 { Ok(sent) } else { Err(e) },
            };
            let n = room.min(data.len() - sent);
            let Some(chunk) = data.get(sent..sent + n) else { break };
            let Some(peer) = peer.upgrade() else {
                return if sent > 0 { Ok(sent) } else { Err(Errno::EPIPE) };
            };
            let charge = cost(n, rights.len());
            let msg = Msg::new(chunk.to_vec(), std::mem::take(&mut rights), self, my_addr.clone(), charge);
            self.wmem.fetch_add(charge, Ordering::AcqRel);
            match peer.queue_stream(msg, &anc, passcred, c.cred) {
                Ok(()) => {
                    peer.st.notify();
                    sent += n;
                }
                Err(e) => {
                    self.uncharge(charge);
                    return if sent > 0 { Ok(sent) } else { Err(e) };
                }
            }
        }
        Ok(sent)
    }

    /// Queue a piece of stream sent to us, joined to the last one when
    /// nothing tells them apart. EPIPE (the message comes back to be
    /// dropped outside the lock) when we no longer read.
    fn queue_stream(&self, mut msg: Msg, anc: &Ancillary, sender_passcred: bool, sender: Ucred) -> Result<(), Errno> {
        let mut st = self.st.lock();
        if st.dead || st.rd_shut {
            drop(st);
            drop(msg);
            return Err(Errno::EPIPE);
        }
        msg.cred = anc.cred_for(sender_passcred || st.opts.passcred || st.embryo, sender);
        st.rx_bytes += msg.data.len();
        if let Some(last) = st.rx.back_mut() {
            let joins = last.rights.is_empty()
                && msg.rights.is_empty()
                && last.off == 0
                && last.cred == msg.cred
                && last.from.ptr_eq(&msg.from)
                && last.data.len() + msg.data.len() <= JOIN_MAX;
            if joins {
                last.data.extend_from_slice(&msg.data);
                last.charge += msg.charge;
                return Ok(());
            }
        }
        st.rx.push_back(msg);
        Ok(())
    }

    pub(super) fn recv_stream(&self, io: &IoCtx, buf: &mut [u8], flags: i32) -> Result<RecvMsg, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let peek = flags & MSG_PEEK != 0;
        let (deadline, target) = {
            let st = self.st.lock();
            if !st.connected() {
                return Err(Errno::EINVAL);
            }
            let lowat = usize::try_from(st.opts.rcvlowat).unwrap_or(1);
            let target = if flags & MSG_WAITALL != 0 { buf.len() } else { lowat.min(buf.len()) };
            (st.opts.recv_deadline(), target.max(1))
        };
        let mut r = Read::default();
        let outcome = loop {
            let res = self.st.block_on(io, |st| stream_step(st, &mut r, buf, peek, target, deadline), |_| deadline);
            for (from, n) in r.freed.drain(..) {
                Self::give_back(&from, n);
            }
            match res {
                Ok(Progress::Again) => continue,
                Ok(Progress::Done) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = outcome {
            // Interrupted or out of time after some data: return that.
            if r.copied == 0 {
                return Err(e);
            }
        }
        let addr = r.from.as_ref().and_then(|(w, a)| Self::sender_addr(w, a));
        // With SO_PASSCRED even an empty read reports credentials (zeros
        // when nothing was read, as Linux's zeroed scm cookie).
        let cred = r.passcred.then(|| match r.cred {
            Some(c) => c.unwrap_or(NO_CREDS),
            None => Ucred::default(),
        });
        Ok(RecvMsg { len: r.copied, full_len: r.copied, addr, control: recv_control(None, cred, r.rights), flags: 0 })
    }
}

/// One round of a stream receive under the lock: copy what is there, then
/// decide whether that is all.
fn stream_step(
    st: &mut State,
    r: &mut Read,
    buf: &mut [u8],
    peek: bool,
    target: usize,
    deadline: Option<Instant>,
) -> Option<Result<Progress, Errno>> {
    if !matches!(st.conn, Conn::Connected) {
        return Some(Err(Errno::EINVAL));
    }
    if peek {
        // A peek looks again from the start each round.
        *r = Read::default();
    }
    r.passcred = st.opts.passcred;
    if buf.is_empty() && !st.rx.is_empty() {
        return Some(Ok(Progress::Done));
    }
    let mut i = 0;
    while r.copied < buf.len() && !r.stop {
        let piece = if peek { st.rx.get_mut(i) } else { st.rx.front_mut() };
        let Some(m) = piece else { break };
        if r.passcred {
            match r.cred {
                None => r.cred = Some(m.cred),
                Some(c) if c != m.cred => {
                    r.stop = true;
                    break;
                }
                Some(_) => {}
            }
        }
        if r.from.is_none() {
            r.from = Some((m.from.clone(), m.from_addr.clone()));
        }
        let avail = m.data.get(m.off..).unwrap_or_default();
        let n = avail.len().min(buf.len() - r.copied);
        if let (Some(dst), Some(src)) = (buf.get_mut(r.copied..r.copied + n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        r.copied += n;
        let carried_rights = !m.rights.is_empty();
        if carried_rights {
            r.stop = true;
        }
        if peek {
            r.rights.extend(m.rights.iter().cloned());
            i += 1;
            continue;
        }
        m.off += n;
        let finished = m.off >= m.data.len();
        // Bytes are given back as they are read, the rest of the charge
        // (its overhead) with the last of them.
        let give = if finished { m.charge } else { n.min(m.charge) };
        m.charge -= give;
        if give > 0 {
            r.freed.push((m.from.clone(), give));
        }
        r.rights.append(&mut m.rights);
        st.rx_bytes = st.rx_bytes.saturating_sub(n);
        if !finished {
            break;
        }
        // Its files were taken: dropping it here closes nothing.
        st.rx.pop_front();
    }
    if r.stop || r.copied >= target {
        return Some(Ok(Progress::Done));
    }
    // Drained, and more is wanted.
    if let Some(e) = st.err.take() {
        return Some(if r.copied > 0 { Ok(Progress::Done) } else { Err(e) });
    }
    if st.rd_shut {
        return Some(Ok(Progress::Done));
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Some(if r.copied > 0 { Ok(Progress::Done) } else { Err(Errno::EAGAIN) });
    }
    if !r.freed.is_empty() {
        return Some(Ok(Progress::Again));
    }
    None
}
