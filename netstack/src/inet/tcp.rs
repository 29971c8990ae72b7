//! TCP sockets: the socket object, its states and the Socket trait.
//! Connection set-up (listen, connect, accept) is in `handshake.rs`; the
//! bytes flow through two [`Stream`]s per connection.
//!
//! Lock order: a socket's `inner` → the port table → a stream. A socket
//! never holds its own `inner` while taking another socket's `inner`,
//! with one exception: a listener creating a child holds its own `inner`
//! while the child's (new, unreachable by anyone else) is set up.

use super::addr::{endpoint, local_for_bind, sockaddr, Local};
use super::opts::{self as iopts, IpOpts, TcpOpts, MSS_DEFAULT, MSS_V4, MSS_V6};
use super::ports::BindFlags;
use super::stream::{ReadMode, Stream, Wrote};
use super::wait::{block, lock, wake, waker, Sleepers};
use crate::addr::SockAddr;
use crate::opts::SockOpts;
use crate::socket::{Caller, Control, RecvMsg, SockState, Socket, SocketInfo};
use crate::Netstack;
use abi::socket::*;
use abi::Errno;
use std::any::Any;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use vfs::{IoCtx, WaitQueue};

/// tcp_wmem[1] and tcp_rmem[1] on Linux 4.4: what SO_SNDBUF/SO_RCVBUF
/// report for a new TCP socket.
pub const TCP_SNDBUF: u32 = 16384;
pub const TCP_RCVBUF: u32 = 87380;

const POLLIN: u32 = libc::POLLIN as u32;
const POLLRDNORM: u32 = libc::POLLRDNORM as u32;
const POLLOUT: u32 = libc::POLLOUT as u32;
const POLLWRNORM: u32 = libc::POLLWRNORM as u32;
const POLLHUP: u32 = libc::POLLHUP as u32;
const POLLERR: u32 = libc::POLLERR as u32;
const POLLRDHUP: u32 = 0x2000;

const FIONREAD: u64 = 0x541b;
const TCP_NODELAY_OPT: i32 = 1;
const SIOCOUTQ: u64 = 0x5411;
const SIOCATMARK: u64 = 0x8905;
const SIOCOUTQNSD: u64 = 0x894b;

/// One side of an established connection.
#[derive(Clone)]
pub(super) struct Conn {
    pub rx: Arc<Stream>,
    pub tx: Arc<Stream>,
    pub peer: SocketAddr,
}

impl Conn {
    /// Close without a reset: FIN to the peer, and the peer's later
    /// writes are answered by a reset.
    fn close(&self) {
        self.tx.send_fin();
        self.rx.close_reader();
    }

    /// Abort: the peer reads what was sent, then ECONNRESET.
    pub fn reset(&self) {
        self.tx.reset_reader();
        self.rx.reset_writer();
    }

    /// This side's SO_SNDBUF bounds what it writes, its SO_RCVBUF what
    /// it is sent (where they were set; see `stream::capacity`).
    pub fn apply_buffers(&self, o: &SockOpts) {
        self.tx.set_writer_sndbuf(o.sndbuf_set.then_some(o.sndbuf));
        self.rx.set_reader_rcvbuf(o.rcvbuf_set.then_some(o.rcvbuf));
    }
}

/// A connect waiting for room in a listener's queue.
pub(super) struct PendingConnect {
    pub client: Weak<TcpSocket>,
    pub id: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

pub(super) struct Listener {
    /// Completed connections; up to backlog + 1, as Linux.
    pub queue: VecDeque<Arc<TcpSocket>>,
    pub backlog: usize,
    pub pending: VecDeque<PendingConnect>,
}

pub(super) enum Phase {
    /// Never connected, disconnected, or a connect failed.
    Closed,
    Listening(Listener),
    /// Waiting for room at the listener.
    Connecting {
        listener: Weak<TcpSocket>,
    },
    Connected(Conn),
}

pub(super) struct Inner {
    pub opts: SockOpts,
    pub ip: IpOpts,
    pub tcp: TcpOpts,
    pub local: Local,
    /// 0 until bound.
    pub port: u16,
    /// bind(2) chose the port (it stays when a connect fails).
    pub port_locked: bool,
    pub uid: u32,
    pub phase: Phase,
    /// The socket's own pending error (a refused connect).
    pub err: Option<Errno>,
    pub shut_rd: bool,
    pub shut_wr: bool,
    /// We sent FIN before receiving one (TIME_WAIT rather than CLOSE at
    /// the end).
    pub fin_first: bool,
    /// A non-blocking connect returned EINPROGRESS and its outcome was
    /// not yet told by a second connect.
    pub connect_report: bool,
    sleepers: u32,
}

impl Sleepers for Inner {
    fn sleepers(&mut self) -> &mut u32 {
        &mut self.sleepers
    }
}

pub struct TcpSocket {
    pub(super) me: Weak<TcpSocket>,
    pub(super) stack: Arc<Netstack>,
    pub(super) family: i32,
    pub(super) id: u64,
    pub(super) queue: Arc<WaitQueue>,
    pub(super) cond: Condvar,
    pub(super) inner: Mutex<Inner>,
    pub(super) flags: Arc<BindFlags>,
    pub(super) released: AtomicBool,
}

impl TcpSocket {
    pub fn new(stack: &Arc<Netstack>, family: i32) -> Arc<TcpSocket> {
        let inner = Inner {
            opts: SockOpts::new(TCP_SNDBUF, TCP_RCVBUF),
            ip: IpOpts::default(),
            tcp: TcpOpts::default(),
            local: if family == AF_INET6 { Local::Any6 { v6only: false } } else { Local::Any4 },
            port: 0,
            port_locked: false,
            uid: 0,
            phase: Phase::Closed,
            err: None,
            shut_rd: false,
            shut_wr: false,
            fin_first: false,
            connect_report: false,
            sleepers: 0,
        };
        Self::with_inner(stack, family, inner, Arc::new(BindFlags::default()))
    }

    pub(super) fn with_inner(
        stack: &Arc<Netstack>,
        family: i32,
        inner: Inner,
        flags: Arc<BindFlags>,
    ) -> Arc<TcpSocket> {
        Arc::new_cyclic(|me| TcpSocket {
            me: me.clone(),
            stack: stack.clone(),
            family,
            id: stack.inet.next_id(),
            queue: Arc::new(WaitQueue::default()),
            cond: Condvar::new(),
            inner: Mutex::new(inner),
            flags,
            released: AtomicBool::new(false),
        })
    }

    /// A child's state: the listener's options and port, bound to `local`
    /// (its connection is set once the streams exist).
    pub(super) fn child_inner(l: &Inner, local: IpAddr) -> Inner {
        Inner {
            opts: l.opts.clone(),
            ip: l.ip.clone(),
            tcp: l.tcp.clone(),
            local: Local::Ip(local),
            port: l.port,
            port_locked: true,
            uid: l.uid,
            phase: Phase::Closed,
            err: None,
            shut_rd: false,
            shut_wr: false,
            fin_first: false,
            connect_report: false,
            sleepers: 0,
        }
    }

    pub(super) fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Wake sleepers and poll waiters after a state change.
    pub(super) fn changed(&self) {
        {
            let mut g = self.inner();
            wake(&mut *g, &self.cond);
        }
        self.queue.notify();
    }

    pub(super) fn waker(&self) -> Arc<dyn Fn() + Send + Sync> {
        match self.me.upgrade() {
            Some(me) => waker(me, |s: &TcpSocket| (&s.inner, &s.cond)),
            None => Arc::new(|| {}),
        }
    }

    /// Block on this socket's state (accept, connect).
    pub(super) fn block_on<R>(
        &self,
        io: &IoCtx,
        deadline: Option<std::time::Instant>,
        step: impl FnMut(&mut Inner) -> Option<Result<R, Errno>>,
        give_up: impl FnMut(&mut Inner, Errno) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        block((&self.inner, &self.cond), io, deadline, || self.waker(), step, give_up, &|| {})
    }

    fn conn(&self) -> Option<Conn> {
        match &self.inner().phase {
            Phase::Connected(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// The MSS a connection to `peer` has on the loopback.
    fn mss(peer: Option<SocketAddr>) -> u32 {
        match peer.map(|p| p.ip()) {
            Some(IpAddr::V4(_)) => MSS_V4,
            Some(IpAddr::V6(_)) => MSS_V6,
            None => MSS_DEFAULT,
        }
    }

    /// Linux's state number (tcp_info, /proc/net/tcp).
    fn state_number(&self) -> u8 {
        let g = self.inner();
        match &g.phase {
            Phase::Closed => iopts::TCP_CLOSE,
            Phase::Listening(_) => iopts::TCP_LISTEN,
            Phase::Connecting { .. } => iopts::TCP_SYN_SENT,
            Phase::Connected(c) => {
                let (fin_in, rst) = c.rx.with(|s| (s.fin, s.rst));
                let fin_out = g.shut_wr;
                match (fin_out, fin_in) {
                    _ if rst => iopts::TCP_CLOSE,
                    (false, false) => iopts::TCP_ESTABLISHED,
                    (true, false) => iopts::TCP_FIN_WAIT2,
                    (false, true) => iopts::TCP_CLOSE_WAIT,
                    (true, true) if g.fin_first => iopts::TCP_TIME_WAIT,
                    (true, true) => iopts::TCP_CLOSE,
                }
            }
        }
    }

    /// Leave the port table if the port was picked for us (a connect
    /// failed, or the socket disconnected).
    pub(super) fn drop_auto_port(&self, g: &mut Inner) {
        if g.port != 0 && !g.port_locked {
            self.stack.inet.tcp.unbind(self.id, g.port);
            g.port = 0;
        }
    }

    /// Tear everything down: the port, the listen queue, the connection
    /// (`abort`: with a reset even when nothing is unread).
    pub(super) fn shut_everything(&self, abort: bool) {
        let (phase, port, abort) = {
            let mut g = self.inner();
            let phase = std::mem::replace(&mut g.phase, Phase::Closed);
            let port = std::mem::take(&mut g.port);
            let linger0 = g.opts.linger.onoff != 0 && g.opts.linger.linger == 0;
            (phase, port, abort || linger0)
        };
        self.flags.listening.store(false, Ordering::Relaxed);
        if port != 0 {
            self.stack.inet.tcp.unbind(self.id, port);
        }
        match phase {
            Phase::Listening(l) => super::handshake::close_listener(l),
            Phase::Connecting { listener } => {
                if let Some(l) = listener.upgrade() {
                    l.forget_pending(self.id);
                }
            }
            Phase::Connected(c) => {
                if abort || c.rx.queued() > 0 {
                    c.reset();
                } else {
                    c.close();
                }
            }
            Phase::Closed => {}
        }
        self.changed();
    }
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.shut_everything(false);
        }
    }
}

impl Socket for TcpSocket {
    fn family(&self) -> i32 {
        self.family
    }

    fn sock_type(&self) -> i32 {
        SOCK_STREAM
    }

    fn protocol(&self) -> i32 {
        IPPROTO_TCP
    }

    fn bind(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        let ep = endpoint(self.family, addr)?;
        let mut g = self.inner();
        let local = local_for_bind(self.family, ep.ip(), g.ip.v6only, self.stack.egress().is_some())?;
        if ep.port() != 0 && ep.port() < 1024 && c.cred.uid != 0 {
            return Err(Errno::EACCES);
        }
        if g.port != 0 || !matches!(g.phase, Phase::Closed) {
            return Err(Errno::EINVAL);
        }
        let port = self.stack.inet.tcp.bind(self.id, local, ep.port(), &self.flags, c.cred.uid, self.me.clone())?;
        g.local = local;
        g.port = port;
        g.port_locked = true;
        g.uid = c.cred.uid;
        Ok(())
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        super::handshake::listen(self, backlog)
    }

    fn connect(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        super::handshake::connect(self, c, addr)
    }

    fn accept(&self, io: &IoCtx) -> Result<(Arc<dyn Socket>, Option<SockAddr>), Errno> {
        let (child, peer) = super::handshake::accept(self, io)?;
        Ok((child, Some(sockaddr(self.family, peer.ip(), peer.port()))))
    }

    fn send(
        &self,
        c: &Caller,
        data: &[u8],
        _addr: Option<&SockAddr>,
        _control: Vec<Control>,
        _flags: i32,
    ) -> Result<usize, Errno> {
        // MSG_OOB data goes inline; MSG_MORE and TCP_CORK change only
        // segmentation, which a byte queue does not have.
        let deadline = self.inner().opts.send_deadline();
        let Some(conn) = super::handshake::wait_connected(self, c.io, deadline)? else {
            let mut g = self.inner();
            return Err(g.err.take().unwrap_or(Errno::EPIPE));
        };
        if let Some(e) = conn.rx.take_err() {
            return Err(e);
        }
        let deadline = self.inner().opts.send_deadline();
        match conn.tx.write(c.io, data, deadline) {
            Ok(Wrote::Sent(n)) => Ok(n),
            Ok(Wrote::SentIntoReset(n)) => {
                conn.rx.reset_reader();
                Ok(n)
            }
            Err(Errno::EPIPE) => Err(conn.rx.take_err().unwrap_or(Errno::EPIPE)),
            Err(e) => Err(e),
        }
    }

    fn recv(&self, io: &IoCtx, buf: &mut [u8], flags: i32) -> Result<RecvMsg, Errno> {
        if flags & MSG_OOB != 0 {
            // No urgent data is ever pending (MSG_OOB sends go inline).
            return Err(Errno::EINVAL);
        }
        let deadline = self.inner().opts.recv_deadline();
        let conn = match super::handshake::wait_connected(self, io, deadline)? {
            Some(c) => c,
            None => {
                let mut g = self.inner();
                return Err(g.err.take().unwrap_or(Errno::ENOTCONN));
            }
        };
        let mode = ReadMode { peek: flags & MSG_PEEK != 0, discard: flags & MSG_TRUNC != 0 };
        if conn.rx.has_host() && !io.nonblock() {
            // A connection out of the sandbox: try the host socket, and
            // only when it is empty wait on it (in this thread).
            let nb = IoCtx { flags: io.flags | abi::flags::O_NONBLOCK, interrupt: io.interrupt };
            loop {
                match conn.rx.read(&nb, buf, mode, deadline) {
                    Err(Errno::EAGAIN) => conn.rx.wait_host(io, deadline)?,
                    r => {
                        let n = r?;
                        return Ok(RecvMsg { len: n, full_len: n, ..Default::default() });
                    }
                }
            }
        }
        let n = conn.rx.read(io, buf, mode, deadline)?;
        Ok(RecvMsg { len: n, full_len: n, ..Default::default() })
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let rd = how == SHUT_RD || how == SHUT_RDWR;
        let wr = how == SHUT_WR || how == SHUT_RDWR;
        let mut g = self.inner();
        match &g.phase {
            Phase::Connected(c) => {
                let c = c.clone();
                let send_fin = wr && !g.shut_wr;
                g.shut_rd |= rd;
                g.shut_wr |= wr;
                if send_fin {
                    g.fin_first = !c.rx.with(|s| s.fin);
                }
                drop(g);
                if rd {
                    c.rx.shut_reader();
                }
                if send_fin {
                    c.tx.send_fin();
                }
                self.changed();
                Ok(())
            }
            Phase::Listening(_) => {
                if rd {
                    // tcp_disconnect: the listener stops listening and
                    // keeps its port.
                    let Phase::Listening(l) = std::mem::replace(&mut g.phase, Phase::Closed) else {
                        return Ok(());
                    };
                    self.flags.listening.store(false, Ordering::Relaxed);
                    drop(g);
                    super::handshake::close_listener(l);
                    self.changed();
                }
                Ok(())
            }
            Phase::Connecting { listener } => {
                let l = listener.clone();
                g.phase = Phase::Closed;
                self.drop_auto_port(&mut g);
                drop(g);
                if let Some(l) = l.upgrade() {
                    l.forget_pending(self.id);
                }
                self.changed();
                Ok(())
            }
            Phase::Closed => {
                g.shut_rd |= rd;
                g.shut_wr |= wr;
                drop(g);
                self.changed();
                Err(Errno::ENOTCONN)
            }
        }
    }

    fn local_addr(&self) -> Result<SockAddr, Errno> {
        let g = self.inner();
        Ok(sockaddr(self.family, g.local.ip(), g.port))
    }

    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        match &self.inner().phase {
            Phase::Connected(c) => Ok(sockaddr(self.family, c.peer.ip(), c.peer.port())),
            _ => Err(Errno::ENOTCONN),
        }
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut g = self.inner();
        let g = &mut *g;
        let shared = iopts::SharedLevels {
            family: self.family,
            sock_type: SOCK_STREAM,
            flags: &self.flags,
            opts: &mut g.opts,
            ip: &mut g.ip,
            local: &mut g.local,
            port: g.port,
        };
        if let Some(r) = shared.set(level, name, val) {
            if r.is_ok()
                && level == SOL_SOCKET
                && matches!(name, SO_SNDBUF | SO_SNDBUFFORCE | SO_RCVBUF | SO_RCVBUFFORCE)
            {
                if let Phase::Connected(c) = &g.phase {
                    c.apply_buffers(&g.opts);
                }
            }
            return r;
        }
        match level {
            SOL_TCP => {
                g.tcp.set(name, val)?;
                if name == TCP_NODELAY_OPT {
                    // A connection out of the sandbox: the host socket
                    // coalesces (or not) as the guest asked.
                    if let Phase::Connected(c) = &g.phase {
                        c.rx.set_host_nodelay(g.tcp.nodelay);
                    }
                }
                Ok(())
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        match (level, name) {
            (SOL_SOCKET, SO_ERROR) => {
                let own = self.inner().err.take();
                let e = own.or_else(|| self.conn().and_then(|c| c.rx.take_err()));
                self.queue.notify();
                Ok(e.map_or(0, |e| e.0).to_ne_bytes().to_vec())
            }
            (SOL_SOCKET, SO_ACCEPTCONN) => {
                let l = matches!(self.inner().phase, Phase::Listening(_));
                Ok(i32::from(l).to_ne_bytes().to_vec())
            }
            (SOL_SOCKET, SO_PEERCRED) => {
                // TCP carries no credentials: pid 0, uid and gid -1.
                let mut v = 0i32.to_ne_bytes().to_vec();
                v.extend_from_slice(&(-1i32).to_ne_bytes());
                v.extend_from_slice(&(-1i32).to_ne_bytes());
                Ok(v)
            }
            (SOL_SOCKET, _) => self.inner().opts.get(name).ok_or(Errno::ENOPROTOOPT),
            (SOL_IP, _) => self.inner().ip.get_ip(name),
            (SOL_IPV6, _) if self.family == AF_INET6 => self.inner().ip.get_ipv6(name),
            (SOL_TCP, TCP_INFO) => {
                let conn = self.conn();
                let mss = Self::mss(conn.as_ref().map(|c| c.peer));
                let unacked = conn.as_ref().map_or(0, |c| c.tx.queued() as u32);
                Ok(iopts::tcp_info(self.state_number(), mss, unacked, 0, 0))
            }
            (SOL_TCP, _) => {
                let mss = Self::mss(self.conn().map(|c| c.peer));
                self.inner().tcp.get(name, mss)
            }
            _ => Err(super::opts::unknown_level(self.family)),
        }
    }

    fn poll(&self) -> u32 {
        let g = self.inner();
        let err = if g.err.is_some() { POLLERR } else { 0 };
        match &g.phase {
            Phase::Listening(l) => {
                if l.queue.is_empty() {
                    0
                } else {
                    POLLIN | POLLRDNORM
                }
            }
            Phase::Connecting { .. } => err,
            Phase::Closed => {
                let mut m = POLLOUT | POLLWRNORM | POLLHUP | err;
                if g.shut_rd {
                    m |= POLLIN | POLLRDNORM | POLLRDHUP;
                }
                m
            }
            Phase::Connected(c) => {
                let c = c.clone();
                let shut_wr = g.shut_wr;
                drop(g);
                let (queued, rcv_shut, rx_err) =
                    c.rx.with(|s| (s.queued() > 0, s.fin || s.rst || s.reader_shut, s.err.is_some()));
                let data = queued || (!rcv_shut && c.rx.readable());
                let (writable, reset) = c.tx.with(|s| (s.writable(), s.writer_reset));
                let snd_shut = shut_wr || reset;
                let mut m = 0;
                if rcv_shut && snd_shut {
                    m |= POLLHUP;
                }
                if rcv_shut {
                    m |= POLLIN | POLLRDNORM | POLLRDHUP;
                }
                if data {
                    m |= POLLIN | POLLRDNORM;
                }
                if snd_shut || writable {
                    m |= POLLOUT | POLLWRNORM;
                }
                if rx_err {
                    m |= POLLERR;
                }
                m
            }
        }
    }

    fn wait_queue(&self) -> &WaitQueue {
        &self.queue
    }

    fn ioctl(&self, req: u64, _input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        let listening = matches!(self.inner().phase, Phase::Listening(_));
        let n = match req {
            FIONREAD => {
                if listening {
                    return Err(Errno::EINVAL);
                }
                self.conn().map_or(0, |c| c.rx.pending_in())
            }
            SIOCOUTQ | SIOCOUTQNSD => {
                if listening {
                    return Err(Errno::EINVAL);
                }
                self.conn().map_or(0, |c| c.tx.queued())
            }
            SIOCATMARK => 0,
            _ => return Err(Errno::ENOTTY),
        };
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        Ok((0, Some(n.to_ne_bytes().to_vec())))
    }

    fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.shut_everything(false);
        }
    }

    fn info(&self) -> SocketInfo {
        let state = match self.state_number() {
            iopts::TCP_LISTEN => SockState::Listen,
            iopts::TCP_SYN_SENT => SockState::SynSent,
            iopts::TCP_ESTABLISHED => SockState::Established,
            iopts::TCP_FIN_WAIT2 => SockState::FinWait,
            iopts::TCP_CLOSE_WAIT => SockState::CloseWait,
            _ => SockState::Close,
        };
        let conn = self.conn();
        let g = self.inner();
        let listen_q = match &g.phase {
            Phase::Listening(l) => Some((l.queue.len(), l.backlog)),
            _ => None,
        };
        let (rx_queue, tx_queue) = match (&conn, listen_q) {
            (Some(c), _) => (c.rx.queued(), c.tx.queued()),
            // /proc/net/tcp shows a listener's queue length and backlog.
            (None, Some(q)) => q,
            _ => (0, 0),
        };
        SocketInfo {
            family: self.family,
            sock_type: SOCK_STREAM,
            protocol: IPPROTO_TCP,
            local: Some(sockaddr(self.family, g.local.ip(), g.port)),
            peer: conn.as_ref().map(|c| sockaddr(self.family, c.peer.ip(), c.peer.port())),
            state,
            rx_queue,
            tx_queue,
            uid: g.uid,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
