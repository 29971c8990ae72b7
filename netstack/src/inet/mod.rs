//! AF_INET and AF_INET6 on the sandbox's loopback: TCP, UDP and ICMP echo.
//!
//! There is no packet-level stack: traffic never leaves the sandbox, so a
//! TCP connection is two byte queues between two sockets and a datagram is
//! a message handed to the socket bound to its destination. What holds is
//! Linux's observable behaviour: ports and their conflicts, states,
//! errnos, poll bits and options.
//!
//! - [`addr`]: bound addresses, sockaddr checks, and [`addr::route`], the
//!   one decision of where traffic goes (loopback or ENETUNREACH).
//! - [`ports`]: the port tables (TCP, UDP, ICMP idents), v4 and v6 shared.
//! - [`tcp`], [`handshake`], [`stream`]: TCP sockets, connection set-up,
//!   the byte queues.
//! - [`udp`]: UDP, UDP-Lite and ICMP echo sockets.
//! - [`opts`]: IP, IPv6 and TCP level options, `struct tcp_info`.
//!
//! Lock order (each module repeats its part): a socket's `inner` → a port
//! table → a stream. Two sockets' `inner` locks are never held together,
//! except a listener's while it sets up a child nobody else can reach.

pub mod addr;
mod bridge;
mod handshake;
pub mod opts;
pub mod ports;
mod stream;
pub mod tcp;
pub mod udp;
mod udp_out;
mod wait;

use crate::socket::Socket;
use crate::Netstack;
use abi::socket::*;
use abi::Errno;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// SOCK_MAX: socket(2) takes types below it.
const SOCK_MAX: i32 = 11;
/// IPPROTO_MAX on Linux 4.4.
const IPPROTO_MAX: i32 = 256;

/// Port tables of one sandbox.
pub struct InetState {
    pub tcp: ports::PortTable<tcp::TcpSocket>,
    pub udp: ports::PortTable<udp::UdpSocket>,
    /// UDP-Lite (RFC 3828) has ports of its own: a UDP socket and a
    /// UDP-Lite socket may bind the same number and never see each other.
    pub udplite: ports::PortTable<udp::UdpSocket>,
    /// ICMP echo sockets' identifiers, which Linux keeps like ports.
    pub icmp: ports::PortTable<udp::UdpSocket>,
    next_id: AtomicU64,
}

impl Default for InetState {
    fn default() -> Self {
        InetState {
            tcp: ports::PortTable::new(true),
            udp: ports::PortTable::new(false),
            udplite: ports::PortTable::new(false),
            icmp: ports::PortTable::new(false),
            next_id: AtomicU64::new(1),
        }
    }
}

impl InetState {
    /// A number naming a socket in the port tables.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// socket(2) for AF_INET / AF_INET6, with inet_create's errnos.
pub fn new_socket(stack: &Arc<Netstack>, domain: i32, sock_type: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    if !(0..SOCK_MAX).contains(&sock_type) || !(0..IPPROTO_MAX).contains(&protocol) {
        return Err(Errno::EINVAL);
    }
    let icmp = if domain == AF_INET6 { IPPROTO_ICMPV6 } else { IPPROTO_ICMP };
    match sock_type {
        SOCK_STREAM => match protocol {
            IPPROTO_IP | IPPROTO_TCP => Ok(tcp::TcpSocket::new(stack, domain)),
            _ => Err(Errno::EPROTONOSUPPORT),
        },
        SOCK_DGRAM => match protocol {
            IPPROTO_IP | IPPROTO_UDP => Ok(udp::UdpSocket::new(stack, domain, IPPROTO_UDP)),
            IPPROTO_UDPLITE => Ok(udp::UdpSocket::new(stack, domain, IPPROTO_UDPLITE)),
            // Echo sockets are open to every group (ping_group_range
            // "0 2147483647"), so ping needs no raw socket.
            p if p == icmp => Ok(udp::UdpSocket::new(stack, domain, icmp)),
            _ => Err(Errno::EPROTONOSUPPORT),
        },
        // Raw sockets need CAP_NET_RAW, which the sandbox does not grant.
        SOCK_RAW => Err(Errno::EPERM),
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

/// A published port (`-p`) took a connection from the host side: hand it
/// to the guest's listener on `guest_port`, as a connection from the
/// gateway. (UDP ports are relayed datagram by datagram: see
/// [`udp::published_datagram`].)
pub fn published(
    stack: &Arc<Netstack>,
    proto: crate::egress::proto::Proto,
    guest_port: u16,
    peer: std::net::SocketAddr,
    fd: std::os::fd::OwnedFd,
) {
    if proto != crate::egress::proto::Proto::Tcp {
        return;
    }
    let dst = std::net::SocketAddr::new(std::net::IpAddr::V4(crate::egress::proto::GUEST_V4), guest_port);
    let src = std::net::SocketAddr::new(crate::egress::gateway_for(dst.ip()), peer.port());
    if let Some(l) = stack.inet.tcp.lookup(dst.ip(), guest_port, src, |f| f.listening()) {
        handshake::accept_published(&l, fd, src, dst);
    }
}
