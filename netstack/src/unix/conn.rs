//! Naming and connecting unix sockets: bind (paths, abstract names,
//! autobind), listen, connect (stream/seqpacket to a listener; datagram to
//! a default peer), accept, shutdown, and release.

use super::{lock, Conn, Peer, State, UnixSocket};
use crate::addr::{SockAddr, UnixAddr};
use crate::socket::{Caller, Socket};
use abi::socket::*;
use abi::Errno;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use vfs::IoCtx;

fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

impl UnixSocket {
    /// bind(2): a path (its node made through the caller's filesystem), an
    /// abstract name, or only the family (autobind).
    pub(super) fn bind_to(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        let SockAddr::Unix(a) = addr else { return Err(Errno::EINVAL) };
        let _naming = lock(&self.bind_lock);
        let bound = self.unix_addr() != UnixAddr::Unnamed;
        match a {
            // Autobind of a bound socket is a no-op, as Linux's.
            UnixAddr::Unnamed => self.autobind_locked()?,
            _ if bound => return Err(Errno::EINVAL),
            UnixAddr::Path(p) => {
                let node = c.paths.bind_node(p)?;
                self.stack.unix.bind_path(node, self.me.clone());
                let mut st = self.st.lock();
                st.addr = a.clone();
                st.node = Some(node);
            }
            UnixAddr::Abstract(name) => {
                self.stack.unix.bind_abstract(self.sock_type, name, self.me.clone())?;
                self.st.lock().addr = a.clone();
            }
        }
        let mut st = self.st.lock();
        st.bind_cred = Some(c.cred);
        st.uid = c.cred.uid;
        Ok(())
    }

    /// Autobind under `bind_lock`, unless bound already.
    fn autobind_locked(&self) -> Result<(), Errno> {
        if self.unix_addr() != UnixAddr::Unnamed {
            return Ok(());
        }
        let name = self.stack.unix.autobind(self.sock_type, self.me.clone())?;
        self.st.lock().addr = UnixAddr::Abstract(name);
        Ok(())
    }

    /// An unbound socket with SO_PASSCRED gets a name before it connects or
    /// sends, so that its peer can tell who it is.
    pub(super) fn autobind_if_passcred(&self) -> Result<(), Errno> {
        let wanted = {
            let st = self.st.lock();
            st.opts.passcred && st.addr == UnixAddr::Unnamed
        };
        if wanted {
            let _naming = lock(&self.bind_lock);
            self.autobind_locked()?;
        }
        Ok(())
    }

    pub(super) fn listen_with(&self, backlog: i32) -> Result<(), Errno> {
        if self.sock_type == SOCK_DGRAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let backlog = usize::try_from(backlog).unwrap_or(0);
        {
            let mut st = self.st.lock();
            if st.addr == UnixAddr::Unnamed {
                return Err(Errno::EINVAL);
            }
            match &mut st.conn {
                Conn::Unconnected => st.conn = Conn::Listening { backlog, pending: VecDeque::new() },
                Conn::Listening { backlog: b, .. } => *b = backlog,
                Conn::Connecting | Conn::Connected => return Err(Errno::EINVAL),
            }
            st.peercred = st.bind_cred;
        }
        // A larger backlog lets waiting connects in.
        self.st.notify();
        Ok(())
    }

    /// Stream and seqpacket connect(2): queue our server side at the
    /// listener, waiting while its queue is full.
    pub(super) fn connect_stream(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        let name = match addr {
            SockAddr::Unix(a @ (UnixAddr::Path(_) | UnixAddr::Abstract(_))) => a,
            _ => return Err(Errno::EINVAL),
        };
        self.autobind_if_passcred()?;
        let deadline = self.st.lock().opts.send_deadline();
        loop {
            let listener = self.stack.unix.find(c.paths, name, self.sock_type)?;
            // Room in its queue; None when it went away meanwhile.
            let room = listener.st.block_on(
                c.io,
                |l| {
                    if l.dead {
                        return Some(Ok(None));
                    }
                    match &l.conn {
                        Conn::Listening { backlog, pending } if !l.rd_shut => {
                            if pending.len() <= *backlog {
                                Some(Ok(Some((l.addr.clone(), l.peercred, l.uid))))
                            } else if past(deadline) {
                                Some(Err(Errno::EAGAIN))
                            } else {
                                None
                            }
                        }
                        _ => Some(Err(Errno::ECONNREFUSED)),
                    }
                },
                |_| deadline,
            )?;
            let Some((listener_addr, listener_cred, listener_uid)) = room else { continue };
            let my_addr = {
                let mut st = self.st.lock();
                match st.conn {
                    Conn::Unconnected => st.conn = Conn::Connecting,
                    Conn::Connecting | Conn::Connected => return Err(Errno::EISCONN),
                    Conn::Listening { .. } => return Err(Errno::EINVAL),
                }
                st.addr.clone()
            };
            let mut server = State::new(listener_uid);
            server.conn = Conn::Connected;
            server.peer = Some(Peer { sock: self.me.clone(), addr: my_addr });
            server.addr = listener_addr.clone();
            server.peercred = Some(c.cred);
            server.embryo = true;
            let embryo = UnixSocket::new(&self.stack, self.sock_type, server);
            let queued = {
                let mut l = listener.st.lock();
                let open = !l.dead && !l.rd_shut;
                match &mut l.conn {
                    Conn::Listening { backlog, pending } if open && pending.len() <= *backlog => {
                        pending.push_back(embryo.clone());
                        true
                    }
                    _ => false,
                }
            };
            if !queued {
                // Lost a race with another connect or a close: start over.
                // The embryo never was anyone's peer; it must not tell us
                // it is gone.
                embryo.released.store(true, Ordering::Release);
                self.st.lock().conn = Conn::Unconnected;
                continue;
            }
            {
                let mut st = self.st.lock();
                st.conn = Conn::Connected;
                st.peer = Some(Peer { sock: Arc::downgrade(&embryo), addr: listener_addr });
                st.peercred = listener_cred;
            }
            listener.st.notify();
            self.st.notify();
            return Ok(());
        }
    }

    /// Datagram connect(2): set (or with AF_UNSPEC clear) the default peer.
    pub(super) fn connect_dgram(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        let target = match addr {
            SockAddr::Unspec => None,
            SockAddr::Unix(a @ (UnixAddr::Path(_) | UnixAddr::Abstract(_))) => {
                self.autobind_if_passcred()?;
                let t = self.stack.unix.find(c.paths, a, self.sock_type)?;
                // unix_may_send: not to a socket connected to another.
                let (taken, t_addr) = {
                    let ts = t.st.lock();
                    (ts.peer.is_some() && !ts.peer_is(&self.me), ts.addr.clone())
                };
                if taken {
                    return Err(Errno::EPERM);
                }
                Some((t, t_addr))
            }
            _ => return Err(Errno::EINVAL),
        };
        let new_peer = target.as_ref().map(|(t, a)| Peer { sock: Arc::downgrade(t), addr: a.clone() });
        let (old, purged) = {
            let mut st = self.st.lock();
            let old = std::mem::replace(&mut st.peer, new_peer);
            let changed = match (&old, &target) {
                (Some(o), Some((t, _))) => o.sock.as_ptr() != Arc::as_ptr(t),
                (Some(_), None) => true,
                (None, _) => false,
            };
            // Leaving a peer drops what we had queued (unix_dgram_disconnected).
            let purged = if changed {
                st.rx_bytes = 0;
                std::mem::take(&mut st.rx)
            } else {
                VecDeque::new()
            };
            (old.filter(|_| changed), purged)
        };
        if let (Some(old), false) = (old, purged.is_empty()) {
            // A peer connected back to us learns that messages were lost.
            if let Some(o) = old.sock.upgrade() {
                {
                    let mut os = o.st.lock();
                    if !os.dead && os.peer_is(&self.me) {
                        os.err = Some(Errno::ECONNRESET);
                    }
                }
                o.st.notify();
            }
        }
        Self::discard(purged);
        self.st.notify();
        Ok(())
    }

    pub(super) fn accept_next(&self, io: &IoCtx) -> Result<(Arc<dyn Socket>, Option<SockAddr>), Errno> {
        if self.sock_type == SOCK_DGRAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let nonblock = io.nonblock();
        let deadline = self.st.lock().opts.recv_deadline();
        let (new, passcred) = self.st.block_on(
            io,
            |st| {
                let shut = st.rd_shut;
                let passcred = st.opts.passcred;
                let Conn::Listening { pending, .. } = &mut st.conn else { return Some(Err(Errno::EINVAL)) };
                if let Some(s) = pending.pop_front() {
                    return Some(Ok((s, passcred)));
                }
                if shut {
                    return Some(Err(if nonblock { Errno::EAGAIN } else { Errno::EINVAL }));
                }
                if past(deadline) {
                    return Some(Err(Errno::EAGAIN));
                }
                None
            },
            |_| deadline,
        )?;
        // Room for a waiting connect.
        self.st.notify();
        let peer = {
            let mut ns = new.st.lock();
            ns.embryo = false;
            // The accepted socket inherits SO_PASSCRED (unix_sock_inherit_flags).
            ns.opts.passcred = passcred;
            ns.peer.as_ref().map(|p| (p.sock.clone(), p.addr.clone()))
        };
        let addr = match peer {
            Some((sock, addr)) => sock.upgrade().map(|s| s.unix_addr()).unwrap_or(addr),
            None => UnixAddr::Unnamed,
        };
        Ok((new, Some(SockAddr::Unix(addr))))
    }

    /// shutdown(2): our side, and for connections the mirror image at the
    /// peer (our SHUT_WR is its end of input). Linux does not ask for a
    /// connection.
    pub(super) fn shutdown_how(&self, how: i32) -> Result<(), Errno> {
        let (rd, wr) = match how {
            SHUT_RD => (true, false),
            SHUT_WR => (false, true),
            SHUT_RDWR => (true, true),
            _ => return Err(Errno::EINVAL),
        };
        let peer = {
            let mut st = self.st.lock();
            st.rd_shut |= rd;
            st.wr_shut |= wr;
            match (&st.peer, self.sock_type != SOCK_DGRAM && st.connected()) {
                (Some(p), true) => Some(p.sock.clone()),
                _ => None,
            }
        };
        self.st.notify();
        if let Some(p) = peer.and_then(|w| w.upgrade()) {
            {
                let mut ps = p.st.lock();
                ps.wr_shut |= rd;
                ps.rd_shut |= wr;
            }
            p.st.notify();
        }
        Ok(())
    }

    /// The last reference is gone: a connection's peer sees the end (and
    /// ECONNRESET if we leave unread data, or were never accepted), names
    /// are freed, connections never accepted are reset, and what waited in
    /// our queue is dropped (closing the files it carried).
    pub(super) fn do_release(&self, reset_peer: bool) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let (peer, rx, pending, addr, node, waiters) = {
            let mut st = self.st.lock();
            st.dead = true;
            st.rd_shut = true;
            st.wr_shut = true;
            st.rx_bytes = 0;
            let pending = match std::mem::take(&mut st.conn) {
                Conn::Listening { pending, .. } => pending,
                _ => VecDeque::new(),
            };
            (
                st.peer.take(),
                std::mem::take(&mut st.rx),
                pending,
                st.addr.clone(),
                st.node,
                std::mem::take(&mut st.peer_waiters),
            )
        };
        self.stack.unix.unbind(self.sock_type, &addr, node, self);
        if self.sock_type != SOCK_DGRAM {
            if let Some(p) = peer.and_then(|p| p.sock.upgrade()) {
                {
                    let mut ps = p.st.lock();
                    ps.rd_shut = true;
                    ps.wr_shut = true;
                    if !rx.is_empty() || reset_peer {
                        ps.err = Some(Errno::ECONNRESET);
                    }
                }
                p.st.notify();
            }
        }
        self.st.notify();
        Self::wake_waiters(waiters);
        for embryo in pending {
            embryo.do_release(true);
        }
        Self::discard(rx);
    }
}
