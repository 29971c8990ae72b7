//! AF_UNIX sockets: stream, datagram and seqpacket; socketpair; paths,
//! the abstract namespace and autobind; SCM_RIGHTS and SCM_CREDENTIALS.
//!
//! The model is Linux's af_unix. Every socket owns its receive queue; a
//! sender puts its messages straight into the receiver's queue and is
//! charged for them (`UnixSocket::wmem`, Linux's sk_wmem_alloc) until the
//! receiver consumes them, so SO_SNDBUF bounds what one socket has in
//! flight and a full sender blocks (or gets EAGAIN). Datagram receivers
//! also cap their queue at [`MAX_DGRAM_QLEN`] messages for senders they are
//! not connected back to (net.unix.max_dgram_qlen).
//!
//! - [`names`]: the namespace: bound paths by node, abstract names, autobind.
//! - [`conn`]: bind, listen, connect, accept, shutdown and release.
//! - [`stream`]: SOCK_STREAM data: a byte stream read across writes, except
//!   across descriptors or (with SO_PASSCRED) different credentials.
//! - [`dgram`]: SOCK_DGRAM and SOCK_SEQPACKET data: whole messages.
//! - [`msg`]: queued messages and the control messages they carry.
//!
//! A stream or seqpacket connect(2) makes the server side's socket at once
//! (an "embryo", queued at the listener until accept(2) takes it), so the
//! client is connected and may write before the server accepts; connect
//! blocks only while the listener's queue is full (backlog + 1 entries).
//!
//! Lock order. Each socket has one state lock (`UnixSocket::st`), the
//! namespace has one (`UnixState`'s), and each socket a `bind_lock` that
//! serialises naming it. `bind_lock` comes first; a thread never holds two
//! state locks, nor a state lock and the namespace lock, at once. Whatever
//! one socket does to another (queueing data, setting its shutdown bits,
//! waking it) happens after its own lock is released. Nothing that may
//! release a socket is dropped under a lock: peers and senders are kept as
//! `Weak` and upgraded outside locks, and queues are moved out of the state
//! before they are dropped (dropping a passed file may close a socket).
//!
//! Gaps:
//! - Descriptors in flight that reach themselves (a socket whose own
//!   descriptor waits in its own receive queue, or two sockets holding each
//!   other's) are never released: Linux's garbage collector for in-flight
//!   unix sockets is not there, so such a cycle leaks until the sandbox ends.
//! - MSG_OOB is EOPNOTSUPP (Linux 4.4's answer); SO_PEEK_OFF is not served.
//! - SO_PEERCRED of a listener (and so of its clients) holds the credentials
//!   of the bind(2) caller, not of the listen(2) caller (listen carries none).
//! - Memory is charged by data bytes plus a fixed overhead per queued piece
//!   and per passed file, not by Linux's skb truesize, so how much fits
//!   before EAGAIN (and what SIOCOUTQ says) differs from Linux.
//! - read(2) and write(2) reach a socket through `SocketFile`, which knows
//!   only the creator's credentials: data written with write(2) by another
//!   process carries the creator's SCM_CREDENTIALS (send/sendmsg carry the
//!   caller's, as Linux).

mod conn;
mod dgram;
mod msg;
mod names;
mod stream;

pub use names::UnixState;

use crate::addr::{SockAddr, UnixAddr};
use crate::opts::{SockOpts, BUF_DEFAULT};
use crate::socket::{Caller, Control, NodeId, RecvMsg, SockState, Socket, SocketInfo, SocketPair};
use crate::Netstack;
use abi::socket::*;
use abi::{Errno, Pod};
use msg::Msg;
use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use vfs::{IoCtx, WaitQueue, Waitable};

/// net.unix.max_dgram_qlen: a datagram receiver's queue is full past this
/// many messages (for senders it is not connected back to).
pub const MAX_DGRAM_QLEN: usize = 10;

const POLLIN: u32 = libc::POLLIN as u32;
const POLLRDNORM: u32 = libc::POLLRDNORM as u32;
const POLLOUT: u32 = libc::POLLOUT as u32;
const POLLWRNORM: u32 = libc::POLLWRNORM as u32;
const POLLWRBAND: u32 = libc::POLLWRBAND as u32;
const POLLERR: u32 = libc::POLLERR as u32;
const POLLHUP: u32 = libc::POLLHUP as u32;
const POLLRDHUP: u32 = 0x2000;
const WRITABLE: u32 = POLLOUT | POLLWRNORM | POLLWRBAND;

/// Where a stream or seqpacket socket is in its life.
#[derive(Default)]
enum Conn {
    #[default]
    Unconnected,
    /// connect(2) is queueing this socket's server side at a listener.
    Connecting,
    /// listen(2): connections not yet accepted, at most `backlog` + 1.
    Listening {
        backlog: usize,
        pending: VecDeque<Arc<UnixSocket>>,
    },
    Connected,
}

/// The other end: a stream connection's, or a datagram socket's default
/// destination. `addr` is its address when connected, for getpeername once
/// it is gone.
struct Peer {
    sock: Weak<UnixSocket>,
    addr: UnixAddr,
}

struct State {
    conn: Conn,
    peer: Option<Peer>,
    /// Our name (Unnamed until bound).
    addr: UnixAddr,
    /// The filesystem node we are bound to, for unbinding.
    node: Option<NodeId>,
    rd_shut: bool,
    wr_shut: bool,
    /// A pending error (sk_err): ECONNRESET, reported once.
    err: Option<Errno>,
    /// Released: nothing is queued here any more.
    dead: bool,
    /// A connection's server side that accept(2) has not taken yet (what
    /// is sent to it always carries the sender's credentials, as Linux's).
    embryo: bool,
    rx: VecDeque<Msg>,
    /// Unread data bytes in `rx`.
    rx_bytes: usize,
    opts: SockOpts,
    /// SO_PEERCRED.
    peercred: Option<Ucred>,
    /// Who bound us; a listener's SO_PEERCRED.
    bind_cred: Option<Ucred>,
    uid: u32,
    /// Datagram senders that found our queue full in poll(2), told when
    /// it has room again.
    peer_waiters: Vec<Weak<UnixSocket>>,
}

impl State {
    fn new(uid: u32) -> State {
        State {
            conn: Conn::Unconnected,
            peer: None,
            addr: UnixAddr::Unnamed,
            node: None,
            rd_shut: false,
            wr_shut: false,
            err: None,
            dead: false,
            embryo: false,
            rx: VecDeque::new(),
            rx_bytes: 0,
            opts: SockOpts::new(BUF_DEFAULT, BUF_DEFAULT),
            peercred: None,
            bind_cred: None,
            uid,
            peer_waiters: Vec::new(),
        }
    }

    fn connected(&self) -> bool {
        matches!(self.conn, Conn::Connected)
    }

    fn listening(&self) -> bool {
        matches!(self.conn, Conn::Listening { .. })
    }

    /// Whether `who` is our peer.
    fn peer_is(&self, who: &Weak<UnixSocket>) -> bool {
        self.peer.as_ref().is_some_and(|p| p.sock.ptr_eq(who))
    }
}

/// One unix socket.
pub struct UnixSocket {
    stack: Arc<Netstack>,
    sock_type: i32,
    me: Weak<UnixSocket>,
    st: Arc<Waitable<State>>,
    /// Bytes (and per-message overhead) we sent that wait in a receive
    /// queue; bounded by SO_SNDBUF.
    wmem: AtomicUsize,
    bind_lock: Mutex<()>,
    released: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|_| vfs::poisoned())
}

/// The socket type socket(2) and socketpair(2) make, after Linux's checks.
fn check_type(sock_type: i32, protocol: i32) -> Result<i32, Errno> {
    if protocol != 0 && protocol != AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    match sock_type {
        SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET => Ok(sock_type),
        // Linux treats SOCK_RAW as SOCK_DGRAM.
        SOCK_RAW => Ok(SOCK_DGRAM),
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

pub fn new_socket(stack: &Arc<Netstack>, sock_type: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    let ty = check_type(sock_type, protocol)?;
    Ok(UnixSocket::new(stack, ty, State::new(0)))
}

pub fn new_pair(stack: &Arc<Netstack>, sock_type: i32, protocol: i32, cred: Ucred) -> Result<SocketPair, Errno> {
    let ty = check_type(sock_type, protocol)?;
    let a = UnixSocket::new(stack, ty, State::new(cred.uid));
    let b = UnixSocket::new(stack, ty, State::new(cred.uid));
    for (x, y) in [(&a, &b), (&b, &a)] {
        let mut st = x.st.lock();
        st.peer = Some(Peer { sock: Arc::downgrade(y), addr: UnixAddr::Unnamed });
        if ty != SOCK_DGRAM {
            st.conn = Conn::Connected;
        }
        st.peercred = Some(cred);
    }
    Ok((a, b))
}

impl UnixSocket {
    fn new(stack: &Arc<Netstack>, sock_type: i32, st: State) -> Arc<UnixSocket> {
        Arc::new_cyclic(|me| UnixSocket {
            stack: stack.clone(),
            sock_type,
            me: me.clone(),
            st: Waitable::new(st),
            wmem: AtomicUsize::new(0),
            bind_lock: Mutex::new(()),
            released: AtomicBool::new(false),
        })
    }

    fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    fn unix_addr(&self) -> UnixAddr {
        self.st.lock().addr.clone()
    }

    /// Give back `charge` of what we had in flight, and wake our blocked
    /// senders and writability waiters.
    fn uncharge(&self, charge: usize) {
        if charge == 0 {
            return;
        }
        let old = self
            .wmem
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| Some(w.saturating_sub(charge)))
            .unwrap_or(0);
        let new = old.saturating_sub(charge);
        // Only a change that can unblock a sender (below SO_SNDBUF) or make
        // us writable for poll (a quarter of it) wakes anyone: a reader
        // blocked on this same state must not be woken by every byte the
        // peer consumes (a needless wake-up, across CPUs, per message).
        let sndbuf = self.st.lock().opts.sndbuf as usize;
        let unblocks = old >= sndbuf && new < sndbuf;
        let writable = old.saturating_mul(4) > sndbuf && new.saturating_mul(4) <= sndbuf;
        if unblocks || writable {
            self.st.notify();
        }
    }

    /// The sender of a consumed message gets its charge back. Call without
    /// locks: the upgrade may turn out to hold the sender's last reference.
    fn give_back(from: &Weak<UnixSocket>, charge: usize) {
        if charge > 0 {
            if let Some(s) = from.upgrade() {
                s.uncharge(charge);
            }
        }
    }

    /// Drop messages taken out of a queue, giving their senders' charges
    /// back (outside locks: their passed files may close sockets).
    fn discard(msgs: impl IntoIterator<Item = Msg>) {
        for m in msgs {
            Self::give_back(&m.from, m.charge);
            drop(m);
        }
    }

    /// Wake sockets that waited in poll(2) for our queue to have room.
    fn wake_waiters(waiters: Vec<Weak<UnixSocket>>) {
        for w in waiters {
            if let Some(s) = w.upgrade() {
                s.st.queue.notify();
            }
        }
    }

    /// The address a message's sender has now (or had when it sent, if it
    /// is gone); None when unnamed (recvfrom reports no address then).
    fn sender_addr(from: &Weak<UnixSocket>, sent_as: &UnixAddr) -> Option<SockAddr> {
        let a = match from.upgrade() {
            Some(s) => s.unix_addr(),
            None => sent_as.clone(),
        };
        match a {
            UnixAddr::Unnamed => None,
            a => Some(SockAddr::Unix(a)),
        }
    }

    /// Whether a datagram socket may send to us now, as poll(2) sees it;
    /// if not, `waiter` is told when we have room.
    fn dgram_room_for(&self, waiter: &Weak<UnixSocket>) -> bool {
        let mut st = self.st.lock();
        if st.dead || st.peer_is(waiter) || st.rx.len() <= MAX_DGRAM_QLEN {
            return true;
        }
        if !st.peer_waiters.iter().any(|w| w.ptr_eq(waiter)) {
            st.peer_waiters.retain(|w| w.strong_count() > 0);
            st.peer_waiters.push(waiter.clone());
        }
        false
    }

    fn ioctl_inq(&self) -> Result<usize, Errno> {
        let st = self.st.lock();
        if st.listening() {
            return Err(Errno::EINVAL);
        }
        Ok(if self.sock_type == SOCK_DGRAM { st.rx.front().map_or(0, |m| m.data.len()) } else { st.rx_bytes })
    }
}

impl Drop for UnixSocket {
    /// A socket that is never released as a file (an accepted connection
    /// that found no descriptor) still tells its peer it is gone.
    fn drop(&mut self) {
        self.do_release(false);
    }
}

fn int_bytes(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

impl Socket for UnixSocket {
    fn family(&self) -> i32 {
        AF_UNIX
    }

    fn sock_type(&self) -> i32 {
        self.sock_type
    }

    fn protocol(&self) -> i32 {
        0
    }

    fn bind(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        self.bind_to(c, addr)
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        self.listen_with(backlog)
    }

    fn connect(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        if self.sock_type == SOCK_DGRAM {
            self.connect_dgram(c, addr)
        } else {
            self.connect_stream(c, addr)
        }
    }

    fn accept(&self, io: &IoCtx) -> Result<(Arc<dyn Socket>, Option<SockAddr>), Errno> {
        self.accept_next(io)
    }

    fn send(
        &self,
        c: &Caller,
        data: &[u8],
        addr: Option<&SockAddr>,
        control: Vec<Control>,
        flags: i32,
    ) -> Result<usize, Errno> {
        if self.sock_type == SOCK_STREAM {
            self.send_stream(c, data, addr, control, flags)
        } else {
            self.send_dgram(c, data, addr, control, flags)
        }
    }

    fn recv(&self, io: &IoCtx, buf: &mut [u8], flags: i32) -> Result<RecvMsg, Errno> {
        if self.sock_type == SOCK_STREAM {
            self.recv_stream(io, buf, flags)
        } else {
            self.recv_dgram(io, buf, flags)
        }
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        self.shutdown_how(how)
    }

    fn local_addr(&self) -> Result<SockAddr, Errno> {
        Ok(SockAddr::Unix(self.unix_addr()))
    }

    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        let (sock, addr) = {
            let st = self.st.lock();
            let p = st.peer.as_ref().ok_or(Errno::ENOTCONN)?;
            (p.sock.clone(), p.addr.clone())
        };
        let now = sock.upgrade().map(|s| s.unix_addr());
        Ok(SockAddr::Unix(now.unwrap_or(addr)))
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        if level != SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        if !self.st.lock().opts.set(name, val)? {
            return Err(Errno::ENOPROTOOPT);
        }
        // A new SO_SNDBUF may let blocked senders go on.
        self.st.notify();
        Ok(())
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if level != SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut st = self.st.lock();
        match name {
            SO_ERROR => Ok(int_bytes(st.err.take().map_or(0, |e| e.0))),
            SO_ACCEPTCONN => Ok(int_bytes(i32::from(st.listening()))),
            SO_PEERCRED => {
                // No peer: pid 0 and uid/gid -1, as cred_to_ucred gives.
                let c = st.peercred.unwrap_or(Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX });
                Ok(c.as_bytes().to_vec())
            }
            _ => st.opts.get(name).ok_or(Errno::ENOPROTOOPT),
        }
    }

    fn poll(&self) -> u32 {
        let (mut mask, dgram_peer) = {
            let st = self.st.lock();
            let mut m = 0;
            if st.err.is_some() {
                m |= POLLERR;
            }
            if st.rd_shut && st.wr_shut {
                m |= POLLHUP;
            }
            if st.rd_shut {
                m |= POLLRDHUP | POLLIN | POLLRDNORM;
            }
            let waiting = matches!(&st.conn, Conn::Listening { pending, .. } if !pending.is_empty());
            if !st.rx.is_empty() || waiting {
                m |= POLLIN | POLLRDNORM;
            }
            if self.sock_type != SOCK_DGRAM && matches!(st.conn, Conn::Unconnected | Conn::Connecting) {
                m |= POLLHUP;
            }
            let writable =
                !st.listening() && self.wmem.load(Ordering::Acquire).saturating_mul(4) <= st.opts.sndbuf as usize;
            if writable {
                m |= WRITABLE;
            }
            let peer = match (&st.peer, writable && self.sock_type == SOCK_DGRAM) {
                (Some(p), true) => Some(p.sock.clone()),
                _ => None,
            };
            (m, peer)
        };
        // A datagram socket is not writable while its peer's queue is full
        // (unless the peer is connected back to it).
        if let Some(p) = dgram_peer.and_then(|w| w.upgrade()) {
            if !std::ptr::eq(Arc::as_ptr(&p), self) && !p.dgram_room_for(&self.me) {
                mask &= !WRITABLE;
            }
        }
        mask
    }

    fn wait_queue(&self) -> &WaitQueue {
        &self.st.queue
    }

    fn ioctl(&self, req: u64, _input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        let n = match req {
            abi::flags::FIONREAD => self.ioctl_inq()?,
            abi::flags::TIOCOUTQ => self.wmem.load(Ordering::Acquire),
            _ => return Err(Errno::ENOTTY),
        };
        Ok((0, Some(int_bytes(i32::try_from(n).unwrap_or(i32::MAX)))))
    }

    fn release(&self) {
        self.do_release(false);
    }

    fn info(&self) -> SocketInfo {
        let st = self.st.lock();
        let state = match &st.conn {
            Conn::Listening { .. } => SockState::Listen,
            Conn::Connected => SockState::Established,
            Conn::Connecting => SockState::SynSent,
            Conn::Unconnected if st.peer.is_some() => SockState::Connected,
            Conn::Unconnected => SockState::Close,
        };
        let named = |a: &UnixAddr| (*a != UnixAddr::Unnamed).then(|| SockAddr::Unix(a.clone()));
        let rx_queue = match &st.conn {
            Conn::Listening { pending, .. } => pending.len(),
            _ => st.rx_bytes,
        };
        SocketInfo {
            family: AF_UNIX,
            sock_type: self.sock_type,
            protocol: 0,
            local: named(&st.addr),
            peer: st.peer.as_ref().and_then(|p| named(&p.addr)),
            state,
            rx_queue,
            tx_queue: self.wmem.load(Ordering::Acquire),
            uid: st.uid,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests;
