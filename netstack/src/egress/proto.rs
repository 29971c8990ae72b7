//! The wire format between the Sentry and the egress broker: one message
//! per SOCK_SEQPACKET record, little-endian, fixed header then payload.
//! A connect's or a published port's host descriptor rides along as
//! SCM_RIGHTS on the reply that names it.
//!
//! Request (Sentry → broker), [`REQ_HEADER`] bytes then payload:
//! `id: u32, op: u8, 0: u8, port: u16, addr: [u8; 16]` (IPv4 written
//! v4-mapped). `op` is [`OP_TCP`] / [`OP_UDP`] (connect to addr:port) or
//! [`OP_DNS`] (payload: a DNS query as the guest sent it to
//! [`DNS_V4`]:53; addr and port are zero).
//!
//! `--network=host` (hostinet) adds ops on host sockets the broker makes
//! for the guest: [`OP_SOCKET`] (payload: domain, type, protocol as three
//! i32; the reply carries the new descriptor), and, with that descriptor
//! riding along on the request, [`OP_BIND`], [`OP_CONNECT`] (addr:port;
//! non-blocking: errno EINPROGRESS while the handshake is under way; the
//! byte after `op` is 1 for the call that finishes one),
//! [`OP_DISCONNECT`] (connect(AF_UNSPEC)) and [`OP_SENDTO`] (addr:port,
//! payload: one datagram of at most [`MAX_DATAGRAM`] bytes). Their
//! replies are results (errno 0 or the guest's errno).
//!
//! Reply (broker → Sentry), [`REP_HEADER`] bytes then payload:
//! `id: u32, kind: u8, proto: u8, port: u16, errno: i32, addr: [u8; 16],
//! peer_port: u16, 0: u16`. `kind` [`KIND_RESULT`]: the answer to request
//! `id` (errno 0 and a descriptor for a connect; the DNS answer as
//! payload). `kind` [`KIND_ACCEPTED`] (id 0): a published port took a
//! connection for guest port `port`, from `addr`:`peer_port`; the
//! accepted descriptor rides along. `kind` [`KIND_DATAGRAM`] (id 0): a
//! datagram for published UDP port `port` from `addr`:`peer_port`.
//!
//! Published UDP ports are relayed by the broker, datagram by datagram
//! ([`OP_DATAGRAM`] back), so the Sentry never holds a socket it could
//! aim at an address of its choosing.
//!
//! Both sides treat the other's bytes as hostile: decode never panics and
//! refuses what it does not know.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Request header length.
pub const REQ_HEADER: usize = 24;
/// Reply header length.
pub const REP_HEADER: usize = 32;
/// Longest payload either side sends (a DNS message over UDP, EDNS0
/// sized).
pub const MAX_PAYLOAD: usize = 4096;
/// Longest record: a receive buffer of this size never truncates.
pub const MAX_MESSAGE: usize = REP_HEADER + MAX_DATAGRAM;
/// Longest datagram a [`Request::SendTo`] carries (an IPv4 UDP payload
/// is at most 65507 bytes, an IPv6 one 65527).
pub const MAX_DATAGRAM: usize = 65535;
/// Longest request: a receive buffer of this size never truncates.
pub const MAX_REQUEST: usize = REQ_HEADER + MAX_DATAGRAM;

pub const OP_TCP: u8 = 1;
pub const OP_UDP: u8 = 2;
pub const OP_DNS: u8 = 3;
pub const OP_SOCKET: u8 = 4;
pub const OP_BIND: u8 = 5;
pub const OP_CONNECT: u8 = 6;
pub const OP_DISCONNECT: u8 = 7;
pub const OP_SENDTO: u8 = 8;

/// A [`Request::Socket`]'s payload: domain, type, protocol.
const SOCKET_PAYLOAD: usize = 12;
/// A datagram back to a peer of a published UDP port (`id` carries the
/// guest port, addr:port the peer, the payload the datagram).
pub const OP_DATAGRAM: u8 = 9;
/// A datagram on a UDP flow (`id` is the flow: the id of the Connect
/// that opened it; the payload the datagram). The broker keeps the host
/// socket: the Sentry never holds one it could aim elsewhere.
pub const OP_FLOW_SEND: u8 = 10;
/// Close UDP flow `id`.
pub const OP_FLOW_CLOSE: u8 = 11;

pub const KIND_RESULT: u8 = 1;
pub const KIND_ACCEPTED: u8 = 2;
/// A datagram that came in on a published UDP port: `port` is the guest
/// port, addr:peer_port the peer, the payload the datagram.
pub const KIND_DATAGRAM: u8 = 3;
/// A datagram that came in on UDP flow `id` (the payload).
pub const KIND_FLOW: u8 = 4;

/// The sandbox's side of eth0 (slirp's numbering, as slirp4netns uses).
pub const GUEST_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
/// eth0's prefix length.
pub const PREFIX_V4: u8 = 24;
/// The gateway: the default route's next hop, and where `host-gateway`
/// (the host's own loopback, port by port) is reached.
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// The resolver runsc-lite serves (UDP port 53).
pub const DNS_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// IPv6 on eth0: a unique-local prefix of our own.
pub const GUEST_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 0x100);
pub const PREFIX_V6: u8 = 64;
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 2);
/// eth0's MTU.
pub const MTU: u32 = 1500;

/// Transport of a connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// What the Sentry asks of the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Check the policy and connect (TCP: non-blocking, the reply comes
    /// while the handshake may still be under way; UDP: a connected
    /// socket). The gateway address stands for `host-gateway`.
    Connect { id: u32, proto: Proto, dst: SocketAddr },
    /// Answer a DNS query for the guest.
    Dns { id: u32, query: Vec<u8> },
    /// Send `payload` to `peer` from published UDP port `guest_port`
    /// (only to a peer that sent to that port first).
    Datagram { guest_port: u16, peer: SocketAddr, payload: Vec<u8> },
    /// Send a datagram on UDP flow `flow` (opened by a UDP Connect).
    FlowSend { flow: u32, payload: Vec<u8> },
    /// Close UDP flow `flow`.
    FlowClose { flow: u32 },
    /// hostinet: make a host socket (non-blocking, close-on-exec) and
    /// send it back.
    Socket { id: u32, domain: i32, sock_type: i32, protocol: i32 },
    /// hostinet: bind the attached socket to `addr` (an IPv4 address on
    /// an AF_INET6 socket means its v4-mapped form).
    Bind { id: u32, addr: SocketAddr },
    /// hostinet: check the policy and connect the attached socket
    /// (non-blocking). `again`: the Sentry finishes a connect whose
    /// handshake it saw complete (Linux's socket moves from connecting to
    /// connected only at a second connect call); checked, not counted.
    ConnectSocket { id: u32, addr: SocketAddr, again: bool },
    /// hostinet: connect(AF_UNSPEC) the attached socket.
    Disconnect { id: u32 },
    /// hostinet: check the policy and send one datagram from the attached
    /// socket to `addr`.
    SendTo { id: u32, addr: SocketAddr, payload: Vec<u8> },
}

/// What the broker tells the Sentry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A connect's outcome: Ok with a descriptor, or the errno the guest
    /// sees (ECONNREFUSED for a refusal by policy). Also the outcome of
    /// every hostinet op (a descriptor rides along for [`Request::Socket`]).
    Connected { id: u32, result: Result<(), i32> },
    /// The answer to a DNS query (a whole DNS message).
    Dns { id: u32, answer: Vec<u8> },
    /// A published port accepted a connection from `peer` for
    /// `guest_port`; its descriptor rides along.
    Accepted { proto: Proto, guest_port: u16, peer: SocketAddr },
    /// A datagram from `peer` to published UDP port `guest_port`.
    Datagram { guest_port: u16, peer: SocketAddr, payload: Vec<u8> },
    /// A datagram from the destination of UDP flow `flow`.
    Flow { flow: u32, payload: Vec<u8> },
}

/// A message that is not one of ours.
#[derive(Debug, PartialEq, Eq)]
pub struct BadMessage(pub &'static str);

fn addr16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

fn ip_of(b: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(b);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut v = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        v.copy_from_slice(s);
    }
    u16::from_le_bytes(v)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

fn arr16(b: &[u8], at: usize) -> [u8; 16] {
    let mut v = [0u8; 16];
    if let Some(s) = b.get(at..at + 16) {
        v.copy_from_slice(s);
    }
    v
}

impl Request {
    /// The id a reply names (0 for datagrams, which get none).
    pub fn id(&self) -> u32 {
        match self {
            Request::Connect { id, .. }
            | Request::Dns { id, .. }
            | Request::Socket { id, .. }
            | Request::Bind { id, .. }
            | Request::ConnectSocket { id, .. }
            | Request::Disconnect { id }
            | Request::SendTo { id, .. } => *id,
            Request::FlowSend { flow, .. } | Request::FlowClose { flow } => *flow,
            Request::Datagram { .. } => 0,
        }
    }

    /// Whether the request needs the socket it acts on attached.
    pub fn takes_socket(&self) -> bool {
        matches!(
            self,
            Request::Bind { .. } | Request::ConnectSocket { .. } | Request::Disconnect { .. } | Request::SendTo { .. }
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REQ_HEADER);
        let unspec = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let triple: Vec<u8>;
        let mut flag = 0u8;
        let (id, op, port, ip, payload, max): (u32, u8, u16, IpAddr, &[u8], usize) = match self {
            Request::Connect { id, proto, dst } => {
                let op = if *proto == Proto::Tcp { OP_TCP } else { OP_UDP };
                (*id, op, dst.port(), dst.ip(), &[], 0)
            }
            Request::Dns { id, query } => (*id, OP_DNS, 0, unspec, query, MAX_PAYLOAD),
            Request::Socket { id, domain, sock_type, protocol } => {
                triple = [*domain, *sock_type, *protocol].iter().flat_map(|v| v.to_le_bytes()).collect();
                (*id, OP_SOCKET, 0, unspec, &triple, SOCKET_PAYLOAD)
            }
            Request::Bind { id, addr } => (*id, OP_BIND, addr.port(), addr.ip(), &[], 0),
            Request::ConnectSocket { id, addr, again } => {
                flag = u8::from(*again);
                (*id, OP_CONNECT, addr.port(), addr.ip(), &[], 0)
            }
            Request::Disconnect { id } => (*id, OP_DISCONNECT, 0, unspec, &[], 0),
            Request::SendTo { id, addr, payload } => (*id, OP_SENDTO, addr.port(), addr.ip(), payload, MAX_DATAGRAM),
            Request::Datagram { guest_port, peer, payload } => {
                (u32::from(*guest_port), OP_DATAGRAM, peer.port(), peer.ip(), payload, MAX_PAYLOAD)
            }
            Request::FlowSend { flow, payload } => (*flow, OP_FLOW_SEND, 0, unspec, payload, MAX_DATAGRAM),
            Request::FlowClose { flow } => (*flow, OP_FLOW_CLOSE, 0, unspec, &[], 0),
        };
        out.extend_from_slice(&id.to_le_bytes());
        out.push(op);
        out.push(flag);
        out.extend_from_slice(&port.to_le_bytes());
        out.extend_from_slice(&addr16(ip));
        out.extend_from_slice(&payload[..payload.len().min(max)]);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Request, BadMessage> {
        if b.len() < REQ_HEADER {
            return Err(BadMessage("short request"));
        }
        let id = u32_at(b, 0);
        let port = u16_at(b, 6);
        let addr = SocketAddr::new(ip_of(arr16(b, 8)), port);
        let payload = b.get(REQ_HEADER..).unwrap_or_default();
        let op = b.get(4).copied().unwrap_or(0);
        let max = if op == OP_SENDTO || op == OP_FLOW_SEND { MAX_DATAGRAM } else { MAX_PAYLOAD };
        if payload.len() > max {
            return Err(BadMessage("oversized request"));
        }
        let empty = payload.is_empty();
        match op {
            OP_TCP | OP_UDP if empty => {
                let proto = if op == OP_TCP { Proto::Tcp } else { Proto::Udp };
                Ok(Request::Connect { id, proto, dst: addr })
            }
            OP_DNS => Ok(Request::Dns { id, query: payload.to_vec() }),
            OP_SOCKET if payload.len() == SOCKET_PAYLOAD => Ok(Request::Socket {
                id,
                domain: u32_at(payload, 0) as i32,
                sock_type: u32_at(payload, 4) as i32,
                protocol: u32_at(payload, 8) as i32,
            }),
            OP_BIND if empty => Ok(Request::Bind { id, addr }),
            OP_CONNECT if empty => Ok(Request::ConnectSocket { id, addr, again: b.get(5) == Some(&1) }),
            OP_DISCONNECT if empty => Ok(Request::Disconnect { id }),
            OP_SENDTO => Ok(Request::SendTo { id, addr, payload: payload.to_vec() }),
            OP_DATAGRAM => {
                let guest_port = u16::try_from(id).map_err(|_| BadMessage("bad guest port"))?;
                Ok(Request::Datagram { guest_port, peer: addr, payload: payload.to_vec() })
            }
            OP_FLOW_SEND => Ok(Request::FlowSend { flow: id, payload: payload.to_vec() }),
            OP_FLOW_CLOSE if empty => Ok(Request::FlowClose { flow: id }),
            _ => Err(BadMessage("unknown request")),
        }
    }
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REP_HEADER);
        let unspec = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0);
        let (id, kind, proto, port, errno, peer, payload): (u32, u8, u8, u16, i32, SocketAddr, &[u8]) = match self {
            Reply::Connected { id, result } => (*id, KIND_RESULT, 0, 0, result.err().unwrap_or(0), unspec, &[]),
            Reply::Dns { id, answer } => (*id, KIND_RESULT, 0, 0, 0, unspec, answer),
            Reply::Accepted { proto, guest_port, peer } => {
                let p = if *proto == Proto::Tcp { OP_TCP } else { OP_UDP };
                (0, KIND_ACCEPTED, p, *guest_port, 0, *peer, &[])
            }
            Reply::Datagram { guest_port, peer, payload } => (0, KIND_DATAGRAM, OP_UDP, *guest_port, 0, *peer, payload),
            Reply::Flow { flow, payload } => (*flow, KIND_FLOW, OP_UDP, 0, 0, unspec, payload),
        };
        let max = if matches!(self, Reply::Flow { .. }) { MAX_DATAGRAM } else { MAX_PAYLOAD };
        out.extend_from_slice(&id.to_le_bytes());
        out.push(kind);
        out.push(proto);
        out.extend_from_slice(&port.to_le_bytes());
        out.extend_from_slice(&errno.to_le_bytes());
        out.extend_from_slice(&addr16(peer.ip()));
        out.extend_from_slice(&peer.port().to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&payload[..payload.len().min(max)]);
        out
    }

    /// Decode a reply. A result carries no kind of its own: `dns` says
    /// whether request `id` was a DNS query (the Sentry knows; the wire
    /// does not repeat it).
    pub fn decode(b: &[u8], dns: impl FnOnce(u32) -> bool) -> Result<Reply, BadMessage> {
        if b.len() < REP_HEADER {
            return Err(BadMessage("short reply"));
        }
        if b.len() > MAX_MESSAGE {
            return Err(BadMessage("oversized reply"));
        }
        let id = u32_at(b, 0);
        let errno = u32_at(b, 8) as i32;
        let payload = b.get(REP_HEADER..).unwrap_or_default();
        match b.get(4).copied() {
            Some(KIND_RESULT) if dns(id) => Ok(Reply::Dns { id, answer: payload.to_vec() }),
            Some(KIND_RESULT) => {
                Ok(Reply::Connected { id, result: if errno == 0 { Ok(()) } else { Err(errno.max(1)) } })
            }
            Some(KIND_ACCEPTED) => {
                let proto = match b.get(5).copied() {
                    Some(OP_TCP) => Proto::Tcp,
                    Some(OP_UDP) => Proto::Udp,
                    _ => return Err(BadMessage("unknown protocol")),
                };
                let peer = SocketAddr::new(ip_of(arr16(b, 12)), u16_at(b, 28));
                Ok(Reply::Accepted { proto, guest_port: u16_at(b, 6), peer })
            }
            Some(KIND_DATAGRAM) => {
                let peer = SocketAddr::new(ip_of(arr16(b, 12)), u16_at(b, 28));
                Ok(Reply::Datagram { guest_port: u16_at(b, 6), peer, payload: payload.to_vec() })
            }
            Some(KIND_FLOW) => Ok(Reply::Flow { flow: id, payload: payload.to_vec() }),
            _ => Err(BadMessage("unknown reply")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let reqs = [
            Request::Connect { id: 7, proto: Proto::Tcp, dst: "198.51.100.10:80".parse().unwrap() },
            Request::Connect { id: 8, proto: Proto::Udp, dst: "[2001:db8::1]:53".parse().unwrap() },
            Request::Dns { id: 9, query: vec![1, 2, 3] },
            Request::Datagram { guest_port: 53, peer: "127.0.0.1:40000".parse().unwrap(), payload: vec![7; 9] },
            Request::FlowSend { flow: 77, payload: vec![5; 60000] },
            Request::FlowClose { flow: 77 },
            Request::Socket { id: 10, domain: 10, sock_type: 2, protocol: 17 },
            Request::Socket { id: 10, domain: -1, sock_type: i32::MIN, protocol: i32::MAX },
            Request::Bind { id: 11, addr: "0.0.0.0:0".parse().unwrap() },
            Request::Bind { id: 11, addr: "[::]:8080".parse().unwrap() },
            Request::ConnectSocket { id: 12, addr: "127.0.0.1:80".parse().unwrap(), again: false },
            Request::ConnectSocket { id: 12, addr: "[::1]:80".parse().unwrap(), again: true },
            Request::Disconnect { id: 13 },
            Request::SendTo { id: 14, addr: "[2001:db8::1]:53".parse().unwrap(), payload: vec![7; MAX_DATAGRAM] },
            Request::SendTo { id: 15, addr: "198.51.100.10:9".parse().unwrap(), payload: vec![] },
        ];
        for r in reqs {
            assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
        let reps = [
            Reply::Connected { id: 7, result: Ok(()) },
            Reply::Connected { id: 7, result: Err(111) },
            Reply::Accepted { proto: Proto::Tcp, guest_port: 8000, peer: "127.0.0.1:40000".parse().unwrap() },
            Reply::Datagram { guest_port: 53, peer: "[::1]:40000".parse().unwrap(), payload: vec![1; 30] },
            Reply::Flow { flow: 77, payload: vec![2; 60000] },
        ];
        for r in reps {
            assert_eq!(Reply::decode(&r.encode(), |_| false), Ok(r));
        }
        let d = Reply::Dns { id: 3, answer: vec![9; 100] };
        assert_eq!(Reply::decode(&d.encode(), |id| id == 3), Ok(d));
    }

    #[test]
    fn hostile_bytes_are_refused_not_panicked_on() {
        assert!(Request::decode(&[]).is_err());
        assert!(Request::decode(&[0; REQ_HEADER]).is_err());
        let mut r = Request::Connect { id: 1, proto: Proto::Tcp, dst: "1.2.3.4:5".parse().unwrap() }.encode();
        r.push(0);
        assert!(Request::decode(&r).is_err(), "a connect has no payload");
        assert!(Request::decode(&vec![3; REQ_HEADER + MAX_PAYLOAD + 1]).is_err());
        let mut big = Request::SendTo { id: 1, addr: "1.2.3.4:5".parse().unwrap(), payload: vec![] }.encode();
        big.resize(MAX_REQUEST + 1, 0);
        assert!(Request::decode(&big).is_err(), "a datagram over 64 KiB");
        big.truncate(MAX_REQUEST);
        assert!(Request::decode(&big).is_ok());
        for op in [OP_BIND, OP_CONNECT, OP_DISCONNECT] {
            let mut r = vec![0u8; REQ_HEADER + 1];
            r[4] = op;
            assert!(Request::decode(&r).is_err(), "op {op} has no payload");
        }
        for n in [0, 11, 13] {
            let mut r = vec![0u8; REQ_HEADER + n];
            r[4] = OP_SOCKET;
            assert!(Request::decode(&r).is_err(), "a socket request of {n} payload bytes");
        }
        let mut r = vec![0u8; REQ_HEADER];
        r[4] = 200;
        assert!(Request::decode(&r).is_err());
        assert!(Reply::decode(&[9; REP_HEADER], |_| false).is_err());
        for n in 0..96 {
            let b: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let _ = Request::decode(&b);
            let _ = Reply::decode(&b, |_| true);
        }
    }
}
