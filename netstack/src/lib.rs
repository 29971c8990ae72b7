//! The sandbox's own sockets. Every socket is a Sentry object and an open
//! file of the VFS; traffic between two sockets of one sandbox never
//! leaves the Sentry and touches no host socket.
//!
//! - [`addr`]: socket addresses to and from the guest's bytes.
//! - [`socket`]: the [`Socket`] trait, messages, [`SocketFile`].
//! - [`opts`]: the SOL_SOCKET options every family shares.
//! - [`unix`]: AF_UNIX stream, datagram and seqpacket sockets.
//! - [`inet`]: AF_INET/AF_INET6 TCP, UDP and ICMP echo on the sandbox's
//!   loopback, without a packet-level stack: connections are byte queues
//!   between two sockets, with Linux's observable behaviour.
//! - [`netlink`]: AF_NETLINK NETLINK_ROUTE, answered from [`iface`], the
//!   sandbox's interface table.
//! - [`egress`]: the way out through the broker (`--network=sandbox`).
//! - [`hostinet`]: `--network=host`, inet sockets that are host sockets
//!   (made, bound and connected by the broker).
//!
//! Lock order: a family's own locks (written in its module) come before
//! [`Netstack::sockets`]; nothing here calls into the Sentry.

pub mod addr;
pub mod egress;
pub mod hostinet;
pub mod iface;
pub mod inet;
pub mod netlink;
pub mod opts;
pub mod socket;
pub mod unix;

pub use addr::{SockAddr, UnixAddr};
pub use socket::{
    Caller, Control, NoPaths, NodeId, PathOps, RecvMsg, SockState, Socket, SocketFile, SocketInfo, SocketPair,
};

use abi::socket::*;
use abi::Errno;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// One sandbox's network: its interfaces and every family's tables.
pub struct Netstack {
    pub ifaces: iface::Interfaces,
    pub unix: unix::UnixState,
    pub inet: inet::InetState,
    pub netlink: netlink::NetlinkState,
    /// Every live socket file, by inode number (for /proc/net/*).
    sockets: Mutex<Vec<(u64, Weak<dyn Socket>)>>,
    /// The broker's channel, with `--network=sandbox`.
    egress: OnceLock<Arc<egress::client::Egress>>,
    /// The broker's channel, with `--network=host`: inet sockets are
    /// host sockets.
    hostinet: OnceLock<Arc<egress::client::Egress>>,
}

impl Netstack {
    /// A stack with only the loopback interface.
    pub fn new() -> Arc<Netstack> {
        Arc::new(Netstack {
            ifaces: iface::Interfaces::loopback_only(),
            unix: unix::UnixState::default(),
            inet: inet::InetState::default(),
            netlink: netlink::NetlinkState::default(),
            sockets: Mutex::new(Vec::new()),
            egress: OnceLock::new(),
            hostinet: OnceLock::new(),
        })
    }

    /// Give the stack eth0 and a way out through the broker at the other
    /// end of `chan` (`--network=sandbox`). Once, at boot.
    pub fn attach_egress(self: &Arc<Self>, chan: std::os::fd::OwnedFd) -> Result<(), Errno> {
        let e = egress::client::Egress::start(chan)?;
        let stack = Arc::downgrade(self);
        e.set_on_accept(Box::new(move |proto, guest_port, peer, fd| {
            if let Some(stack) = stack.upgrade() {
                inet::published(&stack, proto, guest_port, peer, fd);
            }
        }));
        let stack = Arc::downgrade(self);
        e.set_on_datagram(Box::new(move |guest_port, peer, payload| {
            if let Some(stack) = stack.upgrade() {
                inet::udp::published_datagram(&stack, guest_port, peer, payload);
            }
        }));
        if self.egress.set(e).is_err() {
            return Err(Errno::EBUSY);
        }
        self.ifaces.add(egress::eth0()).map_err(|_| Errno::EEXIST)?;
        self.ifaces.set_gateway(std::net::IpAddr::V4(egress::proto::GATEWAY_V4), egress::ETH0_INDEX);
        self.ifaces.set_gateway(std::net::IpAddr::V6(egress::proto::GATEWAY_V6), egress::ETH0_INDEX);
        Ok(())
    }

    /// Carry the guest's inet sockets on host sockets the broker at the
    /// other end of `chan` makes (`--network=host`). Once, at boot. The
    /// interface table stays the sandbox's (loopback only): the guest's
    /// view of the host's interfaces is not served.
    pub fn attach_hostinet(self: &Arc<Self>, chan: std::os::fd::OwnedFd) -> Result<(), Errno> {
        if self.egress.get().is_some() {
            return Err(Errno::EBUSY);
        }
        let e = egress::client::Egress::start(chan)?;
        self.hostinet.set(e).map_err(|_| Errno::EBUSY)
    }

    /// Whether inet sockets are host sockets (`--network=host`).
    pub fn is_hostinet(&self) -> bool {
        self.hostinet.get().is_some()
    }

    /// The way out, when the sandbox has one.
    pub fn egress(&self) -> Option<&Arc<egress::client::Egress>> {
        self.egress.get()
    }

    /// socket(2): `sock_type` without SOCK_NONBLOCK/SOCK_CLOEXEC.
    pub fn socket(self: &Arc<Self>, domain: i32, sock_type: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
        match domain {
            AF_UNIX => unix::new_socket(self, sock_type, protocol),
            AF_INET | AF_INET6 => match self.hostinet.get() {
                Some(e) => hostinet::new_socket(e, domain, sock_type, protocol),
                None => inet::new_socket(self, domain, sock_type, protocol),
            },
            AF_NETLINK => netlink::new_socket(self, sock_type, protocol),
            AF_PACKET => Err(Errno::EPERM),
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// socketpair(2): AF_UNIX only, as Linux (EOPNOTSUPP for inet).
    pub fn socketpair(
        self: &Arc<Self>,
        domain: i32,
        sock_type: i32,
        protocol: i32,
        cred: Ucred,
    ) -> Result<SocketPair, Errno> {
        match domain {
            AF_UNIX => unix::new_pair(self, sock_type, protocol, cred),
            AF_INET | AF_INET6 => Err(Errno::EOPNOTSUPP),
            AF_NETLINK => Err(Errno::EOPNOTSUPP),
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    fn sockets(&self) -> MutexGuard<'_, Vec<(u64, Weak<dyn Socket>)>> {
        self.sockets.lock().unwrap_or_else(|_| vfs::poisoned())
    }

    /// Record a new socket file (SocketFile::open does).
    pub fn register(&self, ino: u64, sock: &Arc<dyn Socket>) {
        let mut s = self.sockets();
        s.retain(|(_, w)| w.strong_count() > 0);
        s.push((ino, Arc::downgrade(sock)));
    }

    /// Every live socket with its inode number, oldest first.
    pub fn live_sockets(&self) -> Vec<(u64, Arc<dyn Socket>)> {
        self.sockets().iter().filter_map(|(ino, w)| w.upgrade().map(|s| (*ino, s))).collect()
    }
}
