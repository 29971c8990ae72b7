//! `--network=host` (gVisor's hostinet): every guest AF_INET/AF_INET6
//! stream or datagram socket is a host socket, carried as it is.
//!
//! The Sentry still never creates, binds or connects a socket, nor sends
//! to an address of its choosing (its seccomp filter forbids it): the
//! broker makes each socket ([`Request::Socket`]) and binds, connects and
//! sends addressed datagrams on it when the Sentry hands it back with the
//! request (SCM_RIGHTS), checking connects and datagrams against the
//! allowlist when one was given. Everything else (listen, accept, send
//! and receive to the connected peer, shutdown, names, options) the
//! Sentry does on the descriptor itself, always non-blocking: a task that
//! must wait polls the descriptor in its own thread
//! ([`sys::wait_fd`](crate::egress::sys::wait_fd)), interruptibly.
//! poll/select/epoll waiters are woken by the notifier thread, armed
//! one-shot for what a poll found missing (as the sandbox's bridges do).
//!
//! Lock order: `armed` → the notifier's registration (`reg`); both are
//! leaves otherwise. No lock is held across a host call that waits.

mod sys;

use crate::addr::SockAddr;
use crate::egress::client::Egress;
use crate::egress::notifier::{HostEvents, Registration};
use crate::egress::proto::{Request, MAX_DATAGRAM};
use crate::egress::sys as esys;
use crate::inet::addr::endpoint;
use crate::socket::{Caller, Control, RecvMsg, SockState, Socket, SocketInfo};
use abi::socket::*;
use abi::Errno;
use std::any::Any;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use vfs::{IoCtx, WaitQueue};

const RDHUP: u32 = libc::POLLRDHUP as u32;
const FIONREAD: u64 = 0x541b;
const SIOCOUTQ: u64 = 0x5411;
/// SOCK_MAX: socket(2) takes types below it.
const SOCK_MAX: i32 = 11;
/// IPPROTO_MAX on Linux 4.4.
const IPPROTO_MAX: i32 = 256;
/// The largest option value read from the host (struct tcp_info is
/// about 250 bytes).
const OPT_MAX: usize = 512;

/// The send flags passed to the host; the rest are the Sentry's
/// (MSG_DONTWAIT is folded into the I/O context, MSG_NOSIGNAL decided by
/// the syscall layer) or not served (MSG_FASTOPEN would connect).
const SEND_FLAGS: i32 = MSG_OOB | MSG_DONTROUTE | MSG_MORE | MSG_EOR | MSG_CONFIRM;
/// The receive flags passed to the host (MSG_WAITALL is the syscall
/// layer's loop; MSG_ERRQUEUE would need control messages).
const RECV_FLAGS: i32 = MSG_OOB | MSG_PEEK | MSG_TRUNC;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|_| vfs::poisoned())
}

/// socket(2) for AF_INET / AF_INET6 in host mode: inet_create's errnos
/// for what the sandbox refuses, the host's for the rest.
pub fn new_socket(egress: &Arc<Egress>, domain: i32, sock_type: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    if !(0..SOCK_MAX).contains(&sock_type) || !(0..IPPROTO_MAX).contains(&protocol) {
        return Err(Errno::EINVAL);
    }
    match sock_type {
        SOCK_STREAM | SOCK_DGRAM => {}
        // Raw sockets need CAP_NET_RAW, which the sandbox does not grant.
        SOCK_RAW => return Err(Errno::EPERM),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    }
    let fd = egress.call(|id| Request::Socket { id, domain, sock_type, protocol }, None)?.ok_or(Errno::EIO)?;
    // The host picked the protocol for 0: ask it, so SO_PROTOCOL and
    // /proc/net agree with it.
    let protocol = match sys::getsockopt(fd.as_raw_fd(), SOL_SOCKET, SO_PROTOCOL, 4) {
        Ok(v) if v.len() == 4 => i32::from_ne_bytes([v[0], v[1], v[2], v[3]]),
        _ => protocol,
    };
    Ok(HostSocket::new(egress, fd, domain, sock_type, protocol)?)
}

/// A guest socket that is a host socket.
pub struct HostSocket {
    fd: OwnedFd,
    family: i32,
    sock_type: i32,
    protocol: i32,
    egress: Arc<Egress>,
    queue: WaitQueue,
    reg: Mutex<Option<Registration>>,
    /// What the notifier watches for right now (EPOLLIN, EPOLLOUT): each
    /// event disarms it (EPOLLONESHOT); a poll that found something
    /// missing, or a non-blocking call that found nothing, arms it again.
    armed: Mutex<u32>,
    /// SO_RCVTIMEO, SO_SNDTIMEO: the Sentry's, since it never lets a
    /// host call block.
    timeouts: Mutex<(Option<Duration>, Option<Duration>)>,
    /// A blocking connect completed here: Linux's socket layer calls the
    /// socket connected only once connect has returned 0, so a later
    /// connect says EISCONN. Kept here rather than asked of the host with
    /// a second connect (one broker round trip fewer).
    connected: std::sync::atomic::AtomicBool,
}

/// The notifier's handle on a socket (weak: the socket owns the
/// registration, not the other way round).
struct Wake(Weak<HostSocket>);

impl HostEvents for Wake {
    fn ready(&self, _events: u32) {
        if let Some(s) = self.0.upgrade() {
            *lock(&s.armed) = 0;
            s.queue.notify();
        }
    }
}

impl HostSocket {
    fn new(egress: &Arc<Egress>, fd: OwnedFd, family: i32, sock_type: i32, protocol: i32) -> Result<Arc<Self>, Errno> {
        let raw = fd.as_raw_fd();
        let s = Arc::new(HostSocket {
            fd,
            family,
            sock_type,
            protocol,
            egress: egress.clone(),
            queue: WaitQueue::default(),
            reg: Mutex::new(None),
            armed: Mutex::new(0),
            timeouts: Mutex::new((None, None)),
            connected: std::sync::atomic::AtomicBool::new(false),
        });
        let h: Arc<dyn HostEvents> = Arc::new(Wake(Arc::downgrade(&s)));
        let reg = egress.notifier.add_for(raw, h, esys::EPOLLONESHOT)?;
        *lock(&s.reg) = Some(reg);
        Ok(s)
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Have the notifier report `events` (once).
    fn arm(&self, events: u32) {
        let mut armed = lock(&self.armed);
        let want = *armed | events;
        if want == *armed {
            return;
        }
        if let Some(reg) = lock(&self.reg).as_ref() {
            reg.modify(want | esys::EPOLLONESHOT);
        }
        *armed = want;
    }

    fn deadline(&self, send: bool) -> Option<Instant> {
        let t = *lock(&self.timeouts);
        let d = if send { t.1 } else { t.0 };
        d.and_then(|d| Instant::now().checked_add(d))
    }

    /// Wait in the calling thread until `fd` has `events`; EAGAIN at the
    /// deadline, ERESTARTSYS when interrupted.
    fn wait(&self, io: &IoCtx, events: i16, deadline: Option<Instant>) -> Result<(), Errno> {
        esys::wait_fd(self.raw(), events, io.interrupt, deadline, &|_| {}, &|| true, esys::WaitLength::Open)
    }

    /// EAGAIN from the host: the caller's answer when it may not block
    /// (the notifier armed, so a waiter of poll/epoll hears of the
    /// change), or a wait and Ok to try again.
    fn would_block(&self, io: &IoCtx, send: bool, deadline: Option<Instant>) -> Result<(), Errno> {
        let (ev, pev) = if send { (esys::EPOLLOUT, libc::POLLOUT) } else { (esys::EPOLLIN, libc::POLLIN) };
        if io.nonblock() {
            self.arm(ev);
            return Err(Errno::EAGAIN);
        }
        self.wait(io, pev, deadline)
    }

    fn addr_of(&self, bytes: &[u8]) -> Option<SockAddr> {
        if bytes.len() < 2 {
            return None;
        }
        SockAddr::parse(bytes).ok().filter(|a| matches!(a, SockAddr::Inet(_) | SockAddr::Inet6(_)))
    }

    fn int_opt(&self, level: i32, name: i32) -> Option<i32> {
        match sys::getsockopt(self.raw(), level, name, 4) {
            Ok(v) if v.len() == 4 => Some(i32::from_ne_bytes([v[0], v[1], v[2], v[3]])),
            _ => None,
        }
    }

    fn send_addressed(&self, c: &Caller, data: &[u8], to: &SockAddr) -> Result<usize, Errno> {
        let addr = match (self.family, to) {
            // udpv6_sendmsg takes a sockaddr_in too, as its v4-mapped
            // address (the broker writes it so for an AF_INET6 socket).
            (AF_INET6, SockAddr::Inet(v4)) => std::net::SocketAddr::V4(*v4),
            _ => endpoint(self.family, to)?,
        };
        if data.len() > MAX_DATAGRAM {
            return Err(Errno::EMSGSIZE);
        }
        let deadline = self.deadline(true);
        loop {
            let r = self.egress.call(|id| Request::SendTo { id, addr, payload: data.to_vec() }, Some(self.raw()));
            match r {
                Ok(_) => return Ok(data.len()),
                Err(Errno::EAGAIN) => self.would_block(c.io, true, deadline)?,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Options the guest may set on a host socket: the common ones of each
/// level. Anything that would reach past the socket (SO_BINDTODEVICE,
/// SO_MARK, filters) is refused here, and the seccomp filter refuses the
/// worst of them again.
fn settable(level: i32, name: i32) -> bool {
    const IP_FREEBIND: i32 = 15;
    const IP_BIND_ADDRESS_NO_PORT: i32 = 24;
    const IPV6_JOIN_GROUP: i32 = 20;
    const IPV6_LEAVE_GROUP: i32 = 21;
    match level {
        SOL_SOCKET => matches!(
            name,
            SO_REUSEADDR
                | SO_REUSEPORT
                | SO_KEEPALIVE
                | SO_BROADCAST
                | SO_OOBINLINE
                | SO_SNDBUF
                | SO_RCVBUF
                | SO_LINGER
                | SO_RCVLOWAT
                | SO_PRIORITY
                | SO_DONTROUTE
                | SO_TIMESTAMP
                | SO_TIMESTAMPNS
                | SO_NO_CHECK
                | SO_BUSY_POLL
        ),
        IPPROTO_TCP => matches!(
            name,
            TCP_NODELAY
                | TCP_MAXSEG
                | TCP_CORK
                | TCP_KEEPIDLE
                | TCP_KEEPINTVL
                | TCP_KEEPCNT
                | TCP_SYNCNT
                | TCP_LINGER2
                | TCP_DEFER_ACCEPT
                | TCP_WINDOW_CLAMP
                | TCP_QUICKACK
                | TCP_CONGESTION
                | TCP_USER_TIMEOUT
                | TCP_NOTSENT_LOWAT
        ),
        IPPROTO_IP => matches!(
            name,
            IP_TOS
                | IP_TTL
                | IP_MTU_DISCOVER
                | IP_MULTICAST_IF
                | IP_MULTICAST_TTL
                | IP_MULTICAST_LOOP
                | IP_ADD_MEMBERSHIP
                | IP_DROP_MEMBERSHIP
                | IP_RECVERR
                | IP_PKTINFO
                | IP_RECVTOS
                | IP_RECVTTL
                | IP_FREEBIND
                | IP_BIND_ADDRESS_NO_PORT
        ),
        IPPROTO_IPV6 => matches!(
            name,
            IPV6_V6ONLY
                | IPV6_UNICAST_HOPS
                | IPV6_MULTICAST_IF
                | IPV6_MULTICAST_HOPS
                | IPV6_MULTICAST_LOOP
                | IPV6_TCLASS
                | IPV6_RECVPKTINFO
                | IPV6_JOIN_GROUP
                | IPV6_LEAVE_GROUP
        ),
        _ => false,
    }
}

/// Levels whose options are read from the host.
fn readable_level(level: i32) -> bool {
    matches!(level, SOL_SOCKET | IPPROTO_TCP | IPPROTO_IP | IPPROTO_IPV6)
}

impl Socket for HostSocket {
    fn family(&self) -> i32 {
        self.family
    }
    fn sock_type(&self) -> i32 {
        self.sock_type
    }
    fn protocol(&self) -> i32 {
        self.protocol
    }

    fn bind(&self, _c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        let addr = endpoint(self.family, addr)?;
        self.egress.call(|id| Request::Bind { id, addr }, Some(self.raw())).map(drop)
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        sys::listen(self.raw(), backlog)?;
        self.queue.notify();
        Ok(())
    }

    fn connect(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        use std::sync::atomic::Ordering;
        if *addr == SockAddr::Unspec {
            self.connected.store(false, Ordering::Release);
            return self.egress.call(|id| Request::Disconnect { id }, Some(self.raw())).map(drop);
        }
        let addr = endpoint(self.family, addr)?;
        if self.sock_type == libc::SOCK_STREAM && self.connected.load(Ordering::Acquire) {
            return Err(Errno::EISCONN);
        }
        let r = self.egress.call(|id| Request::ConnectSocket { id, addr, again: false }, Some(self.raw()));
        self.queue.notify();
        match r {
            Ok(_) => Ok(()),
            Err(Errno::EINPROGRESS) if c.io.nonblock() => {
                self.arm(esys::EPOLLOUT);
                Err(Errno::EINPROGRESS)
            }
            Err(Errno::EINPROGRESS) => {
                // Linux's connect gives up at SO_SNDTIMEO with EINPROGRESS.
                match self.wait(c.io, libc::POLLOUT, self.deadline(true)) {
                    Ok(()) => {}
                    Err(Errno::EAGAIN) => return Err(Errno::EINPROGRESS),
                    Err(e) => return Err(e),
                }
                match esys::so_error(self.raw())? {
                    0 => {}
                    e => return Err(Errno(e)),
                }
                // Linux's socket is "connected" only once connect is called
                // after the handshake; a guest's next connect must say
                // EISCONN (`connected`).
                self.connected.store(true, Ordering::Release);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn accept(&self, io: &IoCtx) -> Result<(Arc<dyn Socket>, Option<SockAddr>), Errno> {
        let deadline = self.deadline(false);
        loop {
            match sys::accept(self.raw()) {
                Ok((fd, peer)) => {
                    let s = HostSocket::new(&self.egress, fd, self.family, self.sock_type, self.protocol)?;
                    let peer = self.addr_of(&peer);
                    return Ok((s, peer));
                }
                Err(Errno::EAGAIN) => self.would_block(io, false, deadline)?,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn send(
        &self,
        c: &Caller,
        data: &[u8],
        addr: Option<&SockAddr>,
        _control: Vec<Control>,
        flags: i32,
    ) -> Result<usize, Errno> {
        // A stream socket ignores the address, as Linux's TCP does.
        if let (Some(to), false) = (addr, self.sock_type == SOCK_STREAM) {
            return self.send_addressed(c, data, to);
        }
        let flags = flags & SEND_FLAGS;
        let deadline = self.deadline(true);
        let mut done = 0;
        loop {
            match sys::send(self.raw(), data.get(done..).unwrap_or_default(), flags) {
                Ok(n) => {
                    done += n;
                    // A blocking stream send takes everything.
                    if self.sock_type != SOCK_STREAM || done >= data.len() || c.io.nonblock() {
                        return Ok(done);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => match self.would_block(c.io, true, deadline) {
                    Ok(()) => {}
                    Err(_) if done > 0 => return Ok(done),
                    Err(e) => return Err(e),
                },
                Err(_) if done > 0 => return Ok(done),
                Err(e) => return Err(e),
            }
        }
    }

    fn recv(&self, io: &IoCtx, buf: &mut [u8], flags: i32) -> Result<RecvMsg, Errno> {
        let dgram = self.sock_type != SOCK_STREAM;
        let mut host_flags = flags & RECV_FLAGS;
        if dgram {
            // The whole datagram's length, for MSG_TRUNC and msg_flags.
            host_flags |= MSG_TRUNC;
        }
        let deadline = self.deadline(false);
        loop {
            match sys::recv(self.raw(), buf, host_flags) {
                Ok(r) => {
                    let len = r.n.min(buf.len());
                    return Ok(RecvMsg {
                        len,
                        full_len: if dgram { r.n } else { len },
                        addr: if dgram { self.addr_of(&r.from) } else { None },
                        control: r
                            .control
                            .into_iter()
                            .map(|(level, typ, data)| Control::Raw { level, typ, data })
                            .collect(),
                        flags: r.flags & (MSG_TRUNC | MSG_EOR | MSG_OOB),
                    });
                }
                Err(Errno::EINTR) => {}
                // A datagram socket shut down for reading: a blocking
                // receive ends at once with nothing, but the host says so
                // only to a blocking call.
                Err(Errno::EAGAIN) if dgram && !io.nonblock() && sys::poll_now(self.raw()) & RDHUP != 0 => {
                    return Ok(RecvMsg::default());
                }
                Err(Errno::EAGAIN) => self.would_block(io, false, deadline)?,
                Err(e) => return Err(e),
            }
        }
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        sys::shutdown(self.raw(), how)?;
        self.queue.notify();
        Ok(())
    }

    fn local_addr(&self) -> Result<SockAddr, Errno> {
        let b = sys::name(self.raw(), false)?;
        self.addr_of(&b).ok_or(Errno::EINVAL)
    }

    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        let b = sys::name(self.raw(), true)?;
        self.addr_of(&b).ok_or(Errno::ENOTCONN)
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        if level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) {
            // Checked as the sandbox's own sockets check it.
            let mut o = crate::opts::SockOpts::new(0, 0);
            o.set(name, val)?;
            let mut t = lock(&self.timeouts);
            if name == SO_RCVTIMEO {
                t.0 = o.rcvtimeo;
            } else {
                t.1 = o.sndtimeo;
            }
            return Ok(());
        }
        if level == SOL_SOCKET && matches!(name, SO_BINDTODEVICE | SO_MARK) {
            return Err(Errno::EPERM);
        }
        if !settable(level, name) {
            return Err(Errno::ENOPROTOOPT);
        }
        sys::setsockopt(self.raw(), level, name, val)
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) {
            let t = *lock(&self.timeouts);
            let mut o = crate::opts::SockOpts::new(0, 0);
            o.rcvtimeo = t.0;
            o.sndtimeo = t.1;
            return o.get(name).ok_or(Errno::ENOPROTOOPT);
        }
        if !readable_level(level) {
            return Err(crate::inet::opts::unknown_level(self.family));
        }
        let v = sys::getsockopt(self.raw(), level, name, OPT_MAX)?;
        if level == SOL_SOCKET && name == SO_ERROR {
            // The pending error is taken: readiness may have changed.
            self.queue.notify();
        }
        Ok(v)
    }

    fn poll(&self) -> u32 {
        let r = sys::poll_now(self.raw());
        let mut m = r;
        if r & libc::POLLIN as u32 != 0 {
            m |= libc::POLLRDNORM as u32;
        }
        if r & libc::POLLOUT as u32 != 0 {
            m |= (libc::POLLWRNORM | libc::POLLWRBAND) as u32;
        }
        // A waiter is registered before it polls: have the notifier tell
        // it when what is missing comes.
        let mut want = 0;
        if r & libc::POLLIN as u32 == 0 {
            want |= esys::EPOLLIN;
        }
        if r & libc::POLLOUT as u32 == 0 {
            want |= esys::EPOLLOUT;
        }
        if want != 0 {
            self.arm(want);
        }
        m
    }

    fn wait_queue(&self) -> &WaitQueue {
        &self.queue
    }

    fn ioctl(&self, req: u64, _input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        let n = match req {
            FIONREAD | SIOCOUTQ => sys::ioctl_int(self.raw(), req)?,
            _ => return Err(Errno::ENOTTY),
        };
        Ok((0, Some(n.to_ne_bytes().to_vec())))
    }

    fn release(&self) {
        // The notifier's hold goes; the descriptor closes with the socket.
        drop(lock(&self.reg).take());
    }

    fn info(&self) -> SocketInfo {
        let peer = self.peer_addr().ok();
        let listening = self.int_opt(SOL_SOCKET, SO_ACCEPTCONN).unwrap_or(0) != 0;
        let state = match (listening, &peer, self.sock_type) {
            (true, _, _) => SockState::Listen,
            (_, Some(_), SOCK_STREAM) => SockState::Established,
            (_, Some(_), _) => SockState::Connected,
            _ => SockState::Close,
        };
        let queued = |req| sys::ioctl_int(self.raw(), req).ok().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        SocketInfo {
            family: self.family,
            sock_type: self.sock_type,
            protocol: self.protocol,
            local: self.local_addr().ok(),
            peer,
            state,
            rx_queue: if listening { 0 } else { queued(FIONREAD) },
            tx_queue: if listening { 0 } else { queued(SIOCOUTQ) },
            uid: 0,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
