//! Setting TCP connections up and down: listen, connect (blocking and
//! not), accept with its backlog, and disconnect. There are no packets:
//! a connect that finds a listener with room completes at once by making
//! the listener's child and the two streams between them; one that finds
//! the queue full waits in the listener's `pending` list and is completed
//! by the accept that makes room.
//!
//! Locking as in `tcp.rs`: the client's and the listener's `inner` are
//! never held together.

use super::addr::{endpoint, route, Local, Route};
use super::stream::Stream;
use super::tcp::{Conn, Inner, Listener, PendingConnect, Phase, TcpSocket};
use super::wait::wake;
use crate::addr::SockAddr;
use crate::socket::Caller;
use abi::socket::AF_INET6;
use abi::Errno;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Instant;
use vfs::{IoCtx, WaitQueue};

pub(super) fn listen(s: &TcpSocket, backlog: i32) -> Result<(), Errno> {
    let backlog = usize::try_from(backlog).unwrap_or(0);
    let mut g = s.inner();
    match &mut g.phase {
        Phase::Listening(l) => {
            l.backlog = backlog;
            return Ok(());
        }
        Phase::Closed => {}
        _ => return Err(Errno::EINVAL),
    }
    let table = &s.stack.inet.tcp;
    if g.port == 0 {
        g.port = table.bind(s.id, g.local, 0, &s.flags, g.uid, s.me.clone())?;
        g.port_locked = true;
    }
    s.flags.listening.store(true, Ordering::Relaxed);
    if let Err(e) = table.recheck(s.id, g.port) {
        s.flags.listening.store(false, Ordering::Relaxed);
        return Err(e);
    }
    g.phase = Phase::Listening(Listener { queue: VecDeque::new(), backlog, pending: VecDeque::new() });
    Ok(())
}

/// The connection, once any connect in progress is over: None when the
/// socket is not connected. Non-blocking callers get EAGAIN while a
/// connect is in progress.
pub(super) fn wait_connected(s: &TcpSocket, io: &IoCtx, deadline: Option<Instant>) -> Result<Option<Conn>, Errno> {
    s.block_on(
        io,
        deadline,
        |g| match &g.phase {
            Phase::Connecting { .. } => None,
            Phase::Connected(c) => Some(Ok(Some(c.clone()))),
            _ => Some(Ok(None)),
        },
        |_, e| Err(e),
    )
}

/// Wait for a connect in progress to end (blocking connect).
fn wait_connect(s: &TcpSocket, io: &IoCtx) -> Result<(), Errno> {
    let deadline = s.inner().opts.send_deadline();
    s.block_on(
        io,
        deadline,
        |g| match &g.phase {
            Phase::Connecting { .. } => None,
            Phase::Connected(_) => {
                g.connect_report = false;
                Some(Ok(()))
            }
            _ => {
                g.connect_report = false;
                Some(Err(g.err.take().unwrap_or(Errno::ECONNREFUSED)))
            }
        },
        |g, e| {
            if e == Errno::EAGAIN {
                // SO_SNDTIMEO ran out: the connect goes on.
                g.connect_report = true;
                Err(Errno::EINPROGRESS)
            } else {
                Err(e)
            }
        },
    )
}

pub(super) fn connect(s: &TcpSocket, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
    if *addr == SockAddr::Unspec {
        disconnect(s);
        return Ok(());
    }
    let dst = endpoint(s.family, addr)?;
    let nonblock = c.io.nonblock();
    {
        let mut g = s.inner();
        match &g.phase {
            Phase::Connected(_) => {
                // The second connect after EINPROGRESS tells the outcome.
                if std::mem::take(&mut g.connect_report) {
                    return Ok(());
                }
                return Err(Errno::EISCONN);
            }
            Phase::Listening(_) => return Err(Errno::EISCONN),
            Phase::Connecting { .. } => {
                if nonblock {
                    return Err(Errno::EALREADY);
                }
                drop(g);
                return wait_connect(s, c.io);
            }
            Phase::Closed => {
                if std::mem::take(&mut g.connect_report) {
                    return Err(g.err.take().unwrap_or(Errno::ECONNABORTED));
                }
            }
        }
        if s.family == AF_INET6 && dst.is_ipv4() && g.ip.v6only {
            return Err(Errno::ENETUNREACH);
        }
    }
    let r = route(s.stack.egress().is_some(), dst.ip())?;
    let dst = SocketAddr::new(r.dst, dst.port());
    if r.external {
        return connect_external(s, c, &r, dst);
    }
    let table = &s.stack.inet.tcp;
    let src = claim_source(s, c, &r, dst)?;
    let outcome = match table.lookup(dst.ip(), dst.port(), src, |f| f.listening()) {
        None => Err(Errno::ECONNREFUSED),
        Some(l) => {
            {
                let mut g = s.inner();
                if let Phase::Connecting { listener } = &mut g.phase {
                    *listener = Arc::downgrade(&l);
                }
            }
            match s.me.upgrade() {
                Some(me) => offer(&l, &me, src, dst),
                None => Err(Errno::ECONNREFUSED),
            }
        }
    };
    match outcome {
        Ok(Some(conn)) => finish_connect(s, Ok(conn)),
        Ok(None) => {}
        Err(e) => finish_connect(s, Err(e)),
    }
    if nonblock {
        s.inner().connect_report = true;
        return Err(Errno::EINPROGRESS);
    }
    wait_connect(s, c.io)
}

/// The first step of a connect, loopback or out: the source address (the
/// bound one, else the route's), an automatic port if none is bound, the
/// socket entered in the port table with its peer, and Connecting.
fn claim_source(s: &TcpSocket, c: &Caller, r: &Route, dst: SocketAddr) -> Result<SocketAddr, Errno> {
    let table = &s.stack.inet.tcp;
    let mut g = s.inner();
    if !matches!(g.phase, Phase::Closed) {
        return Err(Errno::EALREADY);
    }
    let src_ip = match g.local {
        Local::Ip(a) => a,
        _ => r.src,
    };
    if src_ip.is_ipv4() != dst.is_ipv4() {
        return Err(Errno::ENETUNREACH);
    }
    r.check_src(src_ip)?;
    if g.port == 0 {
        g.port = table
            .bind(s.id, Local::Ip(src_ip), 0, &s.flags, c.cred.uid, s.me.clone())
            .map_err(|_| Errno::EADDRNOTAVAIL)?;
        g.port_locked = false;
    }
    table.update(s.id, g.port, Local::Ip(src_ip), Some(dst));
    g.local = Local::Ip(src_ip);
    g.uid = c.cred.uid;
    g.err = None;
    g.phase = Phase::Connecting { listener: Weak::new() };
    Ok(SocketAddr::new(src_ip, g.port))
}

/// A connect out of the sandbox: the broker connects on the host, and a
/// bridge stands in for the peer once the host's handshake is over. The
/// socket is Connecting meanwhile, so blocking, EINPROGRESS, poll and
/// SO_ERROR behave as on the loopback.
fn connect_external(s: &TcpSocket, c: &Caller, r: &Route, dst: SocketAddr) -> Result<(), Errno> {
    let Some(egress) = s.stack.egress().cloned() else {
        return Err(Errno::ENETUNREACH);
    };
    claim_source(s, c, r, dst)?;
    let me = s.me.clone();
    let id = egress.connect(
        crate::egress::proto::Proto::Tcp,
        dst,
        Box::new(move |r| {
            let Some(s) = me.upgrade() else { return };
            let r = r.and_then(|fd| {
                let q = Arc::new(WaitQueue::default());
                let g2h = Stream::new(q.clone(), s.queue.clone());
                let h2g = Stream::new(s.queue.clone(), q.clone());
                let far = Conn { rx: g2h.clone(), tx: h2g.clone(), peer: dst };
                super::bridge::attach(&s.stack, fd, far, &q)?;
                if s.inner().tcp.nodelay {
                    h2g.set_host_nodelay(true);
                }
                Ok(Conn { rx: h2g, tx: g2h, peer: dst })
            });
            finish_connect(&s, r);
        }),
    );
    if c.io.nonblock() {
        s.inner().connect_report = true;
        return Err(Errno::EINPROGRESS);
    }
    if let Some(id) = id {
        egress.wait_reply(id, c.io.interrupt)?;
    }
    wait_connect(s, c.io)
}

/// A connection to a published port, from `src` (as the guest sees it)
/// to `dst`, carried by host socket `fd`: queued on the listener there,
/// or refused (closed) when nobody listens or its queue is full.
pub(super) fn accept_published(l: &TcpSocket, fd: std::os::fd::OwnedFd, src: SocketAddr, dst: SocketAddr) {
    let q = Arc::new(WaitQueue::default());
    let conn = {
        let mut g = l.inner();
        match &g.phase {
            Phase::Listening(ls) if ls.queue.len() <= ls.backlog => {}
            _ => return,
        }
        let conn = spawn_child(l, &mut g, src, dst, &q);
        wake(&mut *g, &l.cond);
        conn
    };
    if super::bridge::attach(&l.stack, fd, conn.clone(), &q).is_err() {
        conn.reset();
    }
    l.queue.notify();
}

/// connect(AF_UNSPEC): drop the connection (with a reset, as
/// tcp_disconnect), stop listening, forget an automatic port.
fn disconnect(s: &TcpSocket) {
    let phase = {
        let mut g = s.inner();
        let phase = std::mem::replace(&mut g.phase, Phase::Closed);
        g.shut_rd = false;
        g.shut_wr = false;
        g.connect_report = false;
        if !g.port_locked {
            g.local = if s.family == AF_INET6 { Local::Any6 { v6only: g.ip.v6only } } else { Local::Any4 };
        }
        s.drop_auto_port(&mut g);
        phase
    };
    s.flags.listening.store(false, Ordering::Relaxed);
    match phase {
        Phase::Connected(c) => c.reset(),
        Phase::Listening(l) => close_listener(l),
        Phase::Connecting { listener } => {
            if let Some(l) = listener.upgrade() {
                l.forget_pending(s.id);
            }
        }
        Phase::Closed => {}
    }
    s.changed();
}

/// Record the outcome of `s`'s connect; a connection that arrives after
/// the socket gave up is reset.
pub(super) fn finish_connect(s: &TcpSocket, r: Result<Conn, Errno>) {
    let mut g = s.inner();
    if !matches!(g.phase, Phase::Connecting { .. }) || s.released.load(Ordering::Acquire) {
        drop(g);
        if let Ok(c) = r {
            c.reset();
        }
        return;
    }
    match r {
        Ok(conn) => {
            conn.apply_buffers(&g.opts);
            g.phase = Phase::Connected(conn);
        }
        Err(e) => {
            g.phase = Phase::Closed;
            g.err = Some(e);
            s.drop_auto_port(&mut g);
        }
    }
    drop(g);
    s.changed();
}

/// A connect from `client` (at `src`) arrives at listener `l` for `dst`:
/// the client's side of the new connection, None when it has to wait for
/// room, ECONNREFUSED when `l` no longer listens.
fn offer(l: &TcpSocket, client: &Arc<TcpSocket>, src: SocketAddr, dst: SocketAddr) -> Result<Option<Conn>, Errno> {
    let mut g = l.inner();
    let full = match &mut g.phase {
        Phase::Listening(q) => q.queue.len() > q.backlog,
        _ => return Err(Errno::ECONNREFUSED),
    };
    if full {
        if let Phase::Listening(q) = &mut g.phase {
            q.pending.push_back(PendingConnect { client: Arc::downgrade(client), id: client.id, src, dst });
        }
        return Ok(None);
    }
    let conn = spawn_child(l, &mut g, src, dst, &client.queue);
    wake(&mut *g, &l.cond);
    drop(g);
    l.queue.notify();
    Ok(Some(conn))
}

/// Make `l`'s child for a connection from `src` to `dst` and queue it;
/// returns the client's side.
fn spawn_child(l: &TcpSocket, g: &mut Inner, src: SocketAddr, dst: SocketAddr, client_q: &Arc<WaitQueue>) -> Conn {
    let child = TcpSocket::with_inner(&l.stack, l.family, TcpSocket::child_inner(g, dst.ip()), l.flags.child());
    let c2s = Stream::new(child.queue.clone(), client_q.clone());
    let s2c = Stream::new(client_q.clone(), child.queue.clone());
    let theirs = Conn { rx: c2s.clone(), tx: s2c.clone(), peer: src };
    {
        let mut cg = child.inner();
        theirs.apply_buffers(&cg.opts);
        cg.phase = Phase::Connected(theirs);
    }
    l.stack.inet.tcp.add(
        child.id,
        (Local::Ip(dst.ip()), g.port),
        Some(src),
        child.flags.clone(),
        g.uid,
        Arc::downgrade(&child),
    );
    if let Phase::Listening(q) = &mut g.phase {
        q.queue.push_back(child);
    }
    Conn { rx: s2c, tx: c2s, peer: dst }
}

pub(super) fn accept(l: &TcpSocket, io: &IoCtx) -> Result<(Arc<TcpSocket>, SocketAddr), Errno> {
    let mut completed: Vec<(Arc<TcpSocket>, Conn)> = Vec::new();
    let deadline = l.inner().opts.recv_deadline();
    let r = l.block_on(
        io,
        deadline,
        |g| {
            let child = match &mut g.phase {
                Phase::Listening(q) => q.queue.pop_front()?,
                _ => return Some(Err(Errno::EINVAL)),
            };
            // Room was made: complete connects that waited for it.
            loop {
                let p = match &mut g.phase {
                    Phase::Listening(q) if q.queue.len() <= q.backlog => q.pending.pop_front(),
                    _ => None,
                };
                let Some(p) = p else { break };
                let Some(client) = p.client.upgrade() else { continue };
                if client.released.load(Ordering::Acquire) {
                    continue;
                }
                let conn = spawn_child(l, g, p.src, p.dst, &client.queue);
                completed.push((client, conn));
            }
            Some(Ok(child))
        },
        |_, e| Err(e),
    );
    for (client, conn) in completed {
        finish_connect(&client, Ok(conn));
    }
    let child = r?;
    let peer = match &child.inner().phase {
        Phase::Connected(c) => c.peer,
        _ => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
    };
    Ok((child, peer))
}

/// A listener stops: queued connections are reset, waiting connects
/// refused.
pub(super) fn close_listener(l: Listener) {
    for child in l.queue {
        child.released.store(true, Ordering::Release);
        child.shut_everything(true);
    }
    for p in l.pending {
        if let Some(client) = p.client.upgrade() {
            finish_connect(&client, Err(Errno::ECONNREFUSED));
        }
    }
}

impl TcpSocket {
    /// Client `id` gave up waiting for room.
    pub(super) fn forget_pending(&self, id: u64) {
        if let Phase::Listening(q) = &mut self.inner().phase {
            q.pending.retain(|p| p.id != id);
        }
    }
}
