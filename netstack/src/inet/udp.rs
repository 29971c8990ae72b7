//! Datagram sockets: UDP, and ICMP echo ("ping") sockets, which share the
//! receive queue and options and differ in what a send does. A datagram
//! is delivered at once into the receive queue of the socket bound to its
//! destination (dropped when that queue is over SO_RCVBUF, as Linux);
//! when nobody is bound there, a connected sender gets ECONNREFUSED at its
//! next call, as Linux reports the ICMP port unreachable.
//!
//! Lock order: a socket's `inner` → the port table. A sender releases its
//! own `inner` before taking the receiver's (which may be itself).

use super::addr::{endpoint, local_for_bind, route, sockaddr, Local};
use super::opts::{self as iopts, IpOpts};
use super::ports::{BindFlags, PortTable};
use super::wait::{block, lock, wake, waker, Sleepers};
use crate::addr::SockAddr;
use crate::opts::{SockOpts, BUF_DEFAULT};
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

const POLLIN: u32 = libc::POLLIN as u32;
const POLLRDNORM: u32 = libc::POLLRDNORM as u32;
const POLLOUT: u32 = libc::POLLOUT as u32;
const POLLWRNORM: u32 = libc::POLLWRNORM as u32;
const POLLWRBAND: u32 = libc::POLLWRBAND as u32;
const POLLHUP: u32 = libc::POLLHUP as u32;
const POLLERR: u32 = libc::POLLERR as u32;
const POLLRDHUP: u32 = 0x2000;

const FIONREAD: u64 = 0x541b;
const SIOCOUTQ: u64 = 0x5411;
const UDP_CORK: i32 = 1;
const UDPLITE_SEND_CSCOV: i32 = 10;
const UDPLITE_RECV_CSCOV: i32 = 11;

/// Largest UDP payload: 65535 less the IPv4 and UDP headers; IPv6 has no
/// header in its payload length.
const UDP_MAX_V4: usize = 65507;
const UDP_MAX_V6: usize = 65527;
/// What a queued datagram costs beyond its bytes (Linux charges the
/// skb's truesize against SO_RCVBUF).
const DATAGRAM_OVERHEAD: usize = 768;

const ICMP_ECHOREPLY: u8 = 0;
const ICMP_ECHO: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

pub(super) struct Datagram {
    pub(super) data: Vec<u8>,
    pub(super) from: SocketAddr,
    pub(super) to: IpAddr,
    pub(super) tos: u8,
    pub(super) ttl: i32,
    /// SO_TIMESTAMP's time of arrival.
    pub(super) stamp: std::time::SystemTime,
}

pub(super) struct Inner {
    opts: SockOpts,
    ip: IpOpts,
    cork: bool,
    /// UDP-Lite's checksum coverages (0: the whole datagram), as set.
    /// Within the sandbox no datagram is ever corrupted, so they change
    /// what is reported, not what is delivered.
    send_cscov: i32,
    recv_cscov: i32,
    local: Local,
    port: u16,
    addr_locked: bool,
    port_locked: bool,
    uid: u32,
    pub(super) peer: Option<SocketAddr>,
    rxq: VecDeque<Datagram>,
    rx_bytes: usize,
    pub(super) err: Option<Errno>,
    shut_rd: bool,
    shut_wr: bool,
    sleepers: u32,
}

impl Sleepers for Inner {
    fn sleepers(&mut self) -> &mut u32 {
        &mut self.sleepers
    }
}

pub struct UdpSocket {
    pub(super) me: Weak<UdpSocket>,
    stack: Arc<Netstack>,
    family: i32,
    /// IPPROTO_UDP, IPPROTO_ICMP or IPPROTO_ICMPV6.
    protocol: i32,
    id: u64,
    queue: WaitQueue,
    cond: Condvar,
    inner: Mutex<Inner>,
    flags: Arc<BindFlags>,
    released: AtomicBool,
    /// Host sockets for destinations outside the sandbox.
    pub(super) out: super::udp_out::Outbound,
}

/// A datagram from `peer` (on the host) to published UDP port
/// `guest_port`: delivered to the guest's socket bound there, as from the
/// gateway; dropped when nobody is bound (as Linux drops it).
pub fn published_datagram(stack: &Arc<Netstack>, guest_port: u16, peer: SocketAddr, payload: Vec<u8>) {
    let to = IpAddr::V4(crate::egress::proto::GUEST_V4);
    let from = SocketAddr::new(IpAddr::V4(crate::egress::proto::GATEWAY_V4), peer.port());
    if let Some(s) = stack.inet.udp.lookup(to, guest_port, from, |_| true) {
        let stamp = std::time::SystemTime::now();
        s.deliver(Datagram { data: payload, from, to, tos: 0, ttl: 64, stamp });
    }
}

/// The Internet checksum of `data` starting from the partial sum `sum`.
fn checksum(data: &[u8], mut sum: u32) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl UdpSocket {
    pub fn new(stack: &Arc<Netstack>, family: i32, protocol: i32) -> Arc<UdpSocket> {
        let inner = Inner {
            opts: SockOpts::new(BUF_DEFAULT, BUF_DEFAULT),
            ip: IpOpts::default(),
            cork: false,
            send_cscov: 0,
            recv_cscov: 0,
            local: if family == AF_INET6 { Local::Any6 { v6only: false } } else { Local::Any4 },
            port: 0,
            addr_locked: false,
            port_locked: false,
            uid: 0,
            peer: None,
            rxq: VecDeque::new(),
            rx_bytes: 0,
            err: None,
            shut_rd: false,
            shut_wr: false,
            sleepers: 0,
        };
        Arc::new_cyclic(|me| UdpSocket {
            me: me.clone(),
            stack: stack.clone(),
            family,
            protocol,
            id: stack.inet.next_id(),
            queue: WaitQueue::default(),
            cond: Condvar::new(),
            inner: Mutex::new(inner),
            flags: Arc::new(BindFlags::default()),
            released: AtomicBool::new(false),
            out: Default::default(),
        })
    }

    fn icmp(&self) -> bool {
        self.protocol != IPPROTO_UDP && self.protocol != IPPROTO_UDPLITE
    }

    fn lite(&self) -> bool {
        self.protocol == IPPROTO_UDPLITE
    }

    fn table(&self) -> &PortTable<UdpSocket> {
        match self.protocol {
            IPPROTO_UDP => &self.stack.inet.udp,
            IPPROTO_UDPLITE => &self.stack.inet.udplite,
            _ => &self.stack.inet.icmp,
        }
    }

    pub(super) fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    pub(super) fn changed(&self) {
        {
            let mut g = self.inner();
            wake(&mut *g, &self.cond);
        }
        self.queue.notify();
    }

    fn any(&self, v6only: bool) -> Local {
        if self.family == AF_INET6 {
            Local::Any6 { v6only }
        } else {
            Local::Any4
        }
    }

    /// Queue a datagram that arrived for this socket (dropped when the
    /// receive buffer is full).
    pub(super) fn deliver(&self, d: Datagram) {
        {
            let mut g = self.inner();
            if self.released.load(Ordering::Acquire) || g.rx_bytes >= g.opts.rcvbuf as usize {
                return;
            }
            g.rx_bytes += d.data.len() + DATAGRAM_OVERHEAD;
            g.rxq.push_back(d);
            wake(&mut *g, &self.cond);
        }
        self.queue.notify();
    }

    /// The destination of a send: `addr`, else the connected peer.
    fn destination(&self, g: &Inner, addr: Option<&SockAddr>) -> Result<SocketAddr, Errno> {
        let a = match addr {
            // AF_UNSPEC names no address (udpv6_sendmsg).
            None | Some(SockAddr::Unspec) => return g.peer.ok_or(Errno::EDESTADDRREQ),
            Some(a) => a,
        };
        match (self.family, a) {
            (AF_INET6, SockAddr::Inet(v4)) => {
                // A v6 socket may send to a sockaddr_in (udp_sendmsg).
                if g.ip.v6only {
                    return Err(Errno::ENETUNREACH);
                }
                Ok(SocketAddr::new(IpAddr::V4(*v4.ip()), v4.port()))
            }
            _ => {
                let ep = endpoint(self.family, a)?;
                if self.family == AF_INET6 && ep.is_ipv4() && g.ip.v6only {
                    return Err(Errno::ENETUNREACH);
                }
                Ok(ep)
            }
        }
    }

    /// The ICMP echo reply to `req` sent from this socket to `dst`.
    fn echo_reply(&self, req: &[u8], ident: u16, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, Errno> {
        let v6 = dst.is_ipv6();
        let want = if v6 { ICMPV6_ECHO_REQUEST } else { ICMP_ECHO };
        match req {
            [t, 0, ..] if req.len() >= 8 && *t == want => {}
            _ => return Err(Errno::EINVAL),
        }
        let mut r = req.to_vec();
        r[0] = if v6 { ICMPV6_ECHO_REPLY } else { ICMP_ECHOREPLY };
        r[2] = 0;
        r[3] = 0;
        r[4..6].copy_from_slice(&ident.to_be_bytes());
        let start = match (src, dst) {
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                // The ICMPv6 pseudo-header: addresses, length, next header.
                let mut p = Vec::with_capacity(40);
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&(r.len() as u32).to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, IPPROTO_ICMPV6 as u8]);
                let c = checksum(&p, 0);
                u32::from(!c)
            }
            _ => 0,
        };
        let c = checksum(&r, start);
        r[2..4].copy_from_slice(&c.to_be_bytes());
        Ok(r)
    }

    fn disconnect(&self) {
        let mut g = self.inner();
        g.peer = None;
        if !g.addr_locked {
            g.local = self.any(g.ip.v6only);
        }
        if g.port != 0 {
            if g.port_locked {
                self.table().update(self.id, g.port, g.local, None);
            } else {
                self.table().unbind(self.id, g.port);
                g.port = 0;
            }
        }
    }

    /// Bind to an ephemeral port if unbound (autobind).
    fn autobind(&self, g: &mut Inner, uid: u32) -> Result<(), Errno> {
        if g.port == 0 {
            g.port = self.table().bind(self.id, g.local, 0, &self.flags, uid, self.me.clone())?;
            g.uid = uid;
        }
        Ok(())
    }

    fn do_release(&self) {
        let port = {
            let mut g = self.inner();
            g.rxq.clear();
            g.rx_bytes = 0;
            std::mem::take(&mut g.port)
        };
        if port != 0 {
            self.table().unbind(self.id, port);
        }
        self.changed();
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.do_release();
        }
    }
}

impl Socket for UdpSocket {
    fn family(&self) -> i32 {
        self.family
    }

    fn sock_type(&self) -> i32 {
        SOCK_DGRAM
    }

    fn protocol(&self) -> i32 {
        self.protocol
    }

    fn bind(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        let ep = endpoint(self.family, addr)?;
        let mut g = self.inner();
        let local = local_for_bind(self.family, ep.ip(), g.ip.v6only, self.stack.egress().is_some())?;
        if !self.icmp() && ep.port() != 0 && ep.port() < 1024 && c.cred.uid != 0 {
            return Err(Errno::EACCES);
        }
        if g.port != 0 {
            return Err(Errno::EINVAL);
        }
        g.port = self.table().bind(self.id, local, ep.port(), &self.flags, c.cred.uid, self.me.clone())?;
        g.local = local;
        g.addr_locked = !local.is_any();
        g.port_locked = ep.port() != 0;
        g.uid = c.cred.uid;
        Ok(())
    }

    fn connect(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        if *addr == SockAddr::Unspec {
            self.disconnect();
            return Ok(());
        }
        let dst = {
            let g = self.inner();
            self.destination(&g, Some(addr))?
        };
        let r = route(self.stack.egress().is_some(), dst.ip())?;
        let dst = SocketAddr::new(r.dst, dst.port());
        let mut g = self.inner();
        self.autobind(&mut g, c.cred.uid)?;
        let src = match g.local {
            Local::Ip(a) => a,
            _ => r.src,
        };
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(Errno::ENETUNREACH);
        }
        r.check_src(src)?;
        g.local = Local::Ip(src);
        g.peer = Some(dst);
        self.table().update(self.id, g.port, g.local, Some(dst));
        Ok(())
    }

    fn send(
        &self,
        c: &Caller,
        data: &[u8],
        addr: Option<&SockAddr>,
        control: Vec<Control>,
        _flags: i32,
    ) -> Result<usize, Errno> {
        let (dst, src, mut tos, mut ttl, connected) = {
            let mut g = self.inner();
            if let Some(e) = g.err.take() {
                drop(g);
                self.queue.notify();
                return Err(e);
            }
            if g.shut_wr {
                return Err(Errno::EPIPE);
            }
            let dst = self.destination(&g, addr)?;
            if !self.icmp() && dst.port() == 0 {
                return Err(Errno::EINVAL);
            }
            let max = if dst.is_ipv4() { UDP_MAX_V4 } else { UDP_MAX_V6 };
            if data.len() > max {
                return Err(Errno::EMSGSIZE);
            }
            let r = route(self.stack.egress().is_some(), dst.ip())?;
            self.autobind(&mut g, c.cred.uid)?;
            let src_ip = match g.local {
                Local::Ip(a) => a,
                _ => r.src,
            };
            if src_ip.is_ipv4() != r.dst.is_ipv4() {
                return Err(Errno::ENETUNREACH);
            }
            r.check_src(src_ip)?;
            let v6 = r.dst.is_ipv6();
            let tos = if v6 { g.ip.tclass as u8 } else { g.ip.tos };
            let ttl = g.ip.out_ttl(v6);
            if r.external && self.icmp() {
                // Echo requests never leave the sandbox.
                return Err(Errno::ENETUNREACH);
            }
            (SocketAddr::new(r.dst, dst.port()), SocketAddr::new(src_ip, g.port), tos, ttl, g.peer.is_some())
        };
        super::opts::send_control(self.family, &control, &mut tos, &mut ttl)?;
        let stamp = std::time::SystemTime::now();
        if let Some(egress) = self.stack.egress().filter(|_| !self.lite()) {
            if dst == SocketAddr::new(IpAddr::V4(crate::egress::proto::DNS_V4), 53) {
                let me = self.me.clone();
                egress.dns(
                    data,
                    Box::new(move |answer| {
                        if let (Some(s), false) = (me.upgrade(), answer.is_empty()) {
                            let stamp = std::time::SystemTime::now();
                            s.deliver(Datagram { data: answer, from: dst, to: src.ip(), tos: 0, ttl: 64, stamp });
                        }
                    }),
                );
                return Ok(data.len());
            }
            if dst.ip() == IpAddr::V4(crate::egress::proto::GATEWAY_V4) {
                // An answer to a peer of a published UDP port.
                if let Some(peer) = egress.published_peer(src.port(), dst.port()) {
                    egress.send_datagram(src.port(), peer, data)?;
                    return Ok(data.len());
                }
            }
            if !crate::inet::addr::is_local(dst.ip()) && !crate::egress::is_own(dst.ip()) {
                return super::udp_out::send(self, egress, src, dst, data);
            }
        }
        if self.icmp() {
            let reply = self.echo_reply(data, src.port(), src.ip(), dst.ip())?;
            // The sandbox answers its own echo requests.
            let from = SocketAddr::new(dst.ip(), 0);
            self.deliver(Datagram { data: reply, from, to: src.ip(), tos, ttl, stamp });
            return Ok(data.len());
        }
        if self.lite()
            && !crate::inet::addr::is_local(dst.ip())
            && !self.stack.egress().is_some_and(|_| crate::egress::is_own(dst.ip()))
        {
            // The relay out of the sandbox carries UDP only.
            return Err(Errno::ENETUNREACH);
        }
        match self.table().lookup(dst.ip(), dst.port(), src, |_| true) {
            Some(r) => r.deliver(Datagram { data: data.to_vec(), from: src, to: dst.ip(), tos, ttl, stamp }),
            None if connected => {
                self.inner().err = Some(Errno::ECONNREFUSED);
                self.changed();
            }
            None => {}
        }
        Ok(data.len())
    }

    fn recv(&self, io: &IoCtx, buf: &mut [u8], flags: i32) -> Result<RecvMsg, Errno> {
        if flags & MSG_ERRQUEUE != 0 {
            // No error queue is ever filled.
            return Err(Errno::EAGAIN);
        }
        let peek = flags & MSG_PEEK != 0;
        let deadline = self.inner().opts.recv_deadline();
        let mut err_taken = false;
        let me = self.me.upgrade();
        let r = block(
            (&self.inner, &self.cond),
            io,
            deadline,
            || match me {
                Some(me) => waker(me, |s: &UdpSocket| (&s.inner, &s.cond)),
                None => Arc::new(|| {}),
            },
            |g| {
                if let Some(e) = g.err.take() {
                    err_taken = true;
                    return Some(Err(e));
                }
                let Some(d) = g.rxq.front() else {
                    return g.shut_rd.then(|| Ok(RecvMsg::default()));
                };
                let n = buf.len().min(d.data.len());
                buf[..n].copy_from_slice(&d.data[..n]);
                let mut control = Vec::new();
                if g.opts.timestamp {
                    let t = d.stamp.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                    let mut tv = (t.as_secs() as i64).to_ne_bytes().to_vec();
                    tv.extend_from_slice(&i64::from(t.subsec_micros()).to_ne_bytes());
                    control.push(Control::Raw { level: SOL_SOCKET, typ: SCM_TIMESTAMP, data: tv });
                }
                control.extend(g.ip.recv_control(self.family, d.to, d.tos, d.ttl));
                let msg = RecvMsg {
                    len: n,
                    full_len: d.data.len(),
                    addr: Some(sockaddr(self.family, d.from.ip(), d.from.port())),
                    control,
                    flags: if n < d.data.len() { MSG_TRUNC } else { 0 },
                };
                if !peek {
                    if let Some(d) = g.rxq.pop_front() {
                        g.rx_bytes = g.rx_bytes.saturating_sub(d.data.len() + DATAGRAM_OVERHEAD);
                    }
                }
                Some(Ok(msg))
            },
            |_, e| Err(e),
            &|| {},
        );
        if err_taken {
            self.queue.notify();
        }
        r
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let connected = {
            let mut g = self.inner();
            g.shut_rd |= how == SHUT_RD || how == SHUT_RDWR;
            g.shut_wr |= how == SHUT_WR || how == SHUT_RDWR;
            g.peer.is_some()
        };
        self.changed();
        // Linux sets the flags even when it answers ENOTCONN.
        if connected {
            Ok(())
        } else {
            Err(Errno::ENOTCONN)
        }
    }

    fn local_addr(&self) -> Result<SockAddr, Errno> {
        let g = self.inner();
        Ok(sockaddr(self.family, g.local.ip(), g.port))
    }

    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        let g = self.inner();
        let p = g.peer.ok_or(Errno::ENOTCONN)?;
        Ok(sockaddr(self.family, p.ip(), p.port()))
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut g = self.inner();
        let g = &mut *g;
        let shared = iopts::SharedLevels {
            family: self.family,
            sock_type: SOCK_DGRAM,
            flags: &self.flags,
            opts: &mut g.opts,
            ip: &mut g.ip,
            local: &mut g.local,
            port: g.port,
        };
        if let Some(r) = shared.set(level, name, val) {
            return r;
        }
        match level {
            SOL_UDP | SOL_UDPLITE if !self.icmp() && name == UDP_CORK => {
                g.cork = crate::opts::int(val)? != 0;
                Ok(())
            }
            SOL_UDP | SOL_UDPLITE if self.lite() && (name == UDPLITE_SEND_CSCOV || name == UDPLITE_RECV_CSCOV) => {
                // udp_lib_setsockopt: below the 8-byte header means the header.
                let v = crate::opts::int(val)?;
                let v = if v != 0 && v < 8 { 8 } else { v.min(u16::MAX as i32) };
                if name == UDPLITE_SEND_CSCOV {
                    g.send_cscov = v;
                } else {
                    g.recv_cscov = v;
                }
                Ok(())
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let mut g = self.inner();
        match (level, name) {
            (SOL_SOCKET, SO_ERROR) => {
                let e = g.err.take();
                drop(g);
                self.queue.notify();
                Ok(e.map_or(0, |e| e.0).to_ne_bytes().to_vec())
            }
            (SOL_SOCKET, SO_ACCEPTCONN) => Ok(0i32.to_ne_bytes().to_vec()),
            (SOL_SOCKET, SO_PEERCRED) => {
                let mut v = 0i32.to_ne_bytes().to_vec();
                v.extend_from_slice(&(-1i32).to_ne_bytes());
                v.extend_from_slice(&(-1i32).to_ne_bytes());
                Ok(v)
            }
            (SOL_SOCKET, _) => g.opts.get(name).ok_or(Errno::ENOPROTOOPT),
            (SOL_IP, _) => g.ip.get_ip(name),
            (SOL_IPV6, _) if self.family == AF_INET6 => g.ip.get_ipv6(name),
            (SOL_UDP | SOL_UDPLITE, UDP_CORK) if !self.icmp() => Ok(i32::from(g.cork).to_ne_bytes().to_vec()),
            (SOL_UDP | SOL_UDPLITE, UDPLITE_SEND_CSCOV) if self.lite() => Ok(g.send_cscov.to_ne_bytes().to_vec()),
            (SOL_UDP | SOL_UDPLITE, UDPLITE_RECV_CSCOV) if self.lite() => Ok(g.recv_cscov.to_ne_bytes().to_vec()),
            _ => Err(super::opts::unknown_level(self.family)),
        }
    }

    fn poll(&self) -> u32 {
        let g = self.inner();
        let mut m = POLLOUT | POLLWRNORM | POLLWRBAND;
        if g.err.is_some() {
            m |= POLLERR;
        }
        if g.shut_rd {
            m |= POLLIN | POLLRDNORM | POLLRDHUP;
        }
        if g.shut_rd && g.shut_wr {
            m |= POLLHUP;
        }
        if !g.rxq.is_empty() {
            m |= POLLIN | POLLRDNORM;
        }
        m
    }

    fn wait_queue(&self) -> &WaitQueue {
        &self.queue
    }

    fn ioctl(&self, req: u64, _input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        let n = match req {
            FIONREAD => self.inner().rxq.front().map_or(0, |d| d.data.len()),
            SIOCOUTQ => 0,
            _ => return Err(Errno::ENOTTY),
        };
        Ok((0, Some((n as i32).to_ne_bytes().to_vec())))
    }

    fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.do_release();
        }
    }

    fn info(&self) -> SocketInfo {
        let g = self.inner();
        SocketInfo {
            family: self.family,
            sock_type: SOCK_DGRAM,
            protocol: self.protocol,
            local: Some(sockaddr(self.family, g.local.ip(), g.port)),
            peer: g.peer.map(|p| sockaddr(self.family, p.ip(), p.port())),
            state: if g.peer.is_some() { SockState::Connected } else { SockState::Close },
            rx_queue: g.rx_bytes,
            tx_queue: 0,
            uid: g.uid,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::NoPaths;
    use abi::socket::Ucred;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    use vfs::Interrupt;

    fn exchange(family: i32, protocol: i32, dst: SockAddr, request: u8) -> (Vec<u8>, u16, Option<SockAddr>) {
        let stack = Netstack::new();
        let s = UdpSocket::new(&stack, family, protocol);
        let irq = Interrupt::new();
        let io = IoCtx { flags: abi::flags::O_NONBLOCK, interrupt: &irq };
        let c = Caller { io: &io, cred: Ucred::default(), paths: &NoPaths };
        let req = [request, 0, 0xaa, 0xbb, 0, 0, 0, 7, b'p', b'i', b'n', b'g', b'!'];
        assert_eq!(s.send(&c, &req, Some(&dst), Vec::new(), 0), Ok(req.len()));
        assert_eq!(s.send(&c, &req[..4], Some(&dst), Vec::new(), 0), Err(Errno::EINVAL));
        let port = match s.local_addr() {
            Ok(SockAddr::Inet(a)) => a.port(),
            Ok(SockAddr::Inet6(a)) => a.port(),
            other => panic!("{other:?}"),
        };
        let mut buf = [0u8; 64];
        let m = s.recv(&io, &mut buf, 0).expect("reply");
        (buf[..m.len].to_vec(), port, m.addr)
    }

    #[test]
    fn echo_reply_v4() {
        let dst = SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
        let (r, port, from) = exchange(AF_INET, IPPROTO_ICMP, dst.clone(), ICMP_ECHO);
        assert_eq!(r[0], ICMP_ECHOREPLY);
        assert_eq!(u16::from_be_bytes([r[4], r[5]]), port);
        assert_eq!(&r[6..], &[0, 7, b'p', b'i', b'n', b'g', b'!']);
        assert_eq!(checksum(&r, 0), 0);
        assert_eq!(from, Some(dst));
    }

    #[test]
    fn echo_reply_v6() {
        let dst = SockAddr::Inet6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 0, 0, 0));
        let (r, port, _) = exchange(AF_INET6, IPPROTO_ICMPV6, dst, ICMPV6_ECHO_REQUEST);
        assert_eq!(r[0], ICMPV6_ECHO_REPLY);
        assert_eq!(u16::from_be_bytes([r[4], r[5]]), port);
        let mut pseudo = Ipv6Addr::LOCALHOST.octets().to_vec();
        pseudo.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        pseudo.extend_from_slice(&(r.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        pseudo.extend_from_slice(&r);
        assert_eq!(checksum(&pseudo, 0), 0);
    }

    #[test]
    fn foreign_destinations_are_unreachable() {
        let stack = Netstack::new();
        let s = UdpSocket::new(&stack, AF_INET, IPPROTO_UDP);
        let irq = Interrupt::new();
        let io = IoCtx { flags: 0, interrupt: &irq };
        let c = Caller { io: &io, cred: Ucred::default(), paths: &NoPaths };
        let dst = SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 53));
        assert_eq!(s.send(&c, b"x", Some(&dst), Vec::new(), 0), Err(Errno::ENETUNREACH));
        assert_eq!(s.connect(&c, &dst), Err(Errno::ENETUNREACH));
    }

    #[test]
    fn internet_checksum() {
        // RFC 1071's example.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&d, 0), !0xddf2);
        let mut m = d.to_vec();
        let c = checksum(&m, 0);
        m.extend_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&m, 0), 0);
    }
}
