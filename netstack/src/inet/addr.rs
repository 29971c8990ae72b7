//! Inet addresses as the sockets see them: what a socket is bound to
//! ([`Local`]), the guest's sockaddrs checked for a socket's family with
//! Linux's errnos, and [`route`], the one place that decides where
//! traffic to an address goes.
//!
//! Internally an address is an [`IpAddr`] in canonical form: a v4-mapped
//! IPv6 address (::ffff:a.b.c.d) is the IPv4 address it maps, so a
//! dual-stack socket meets IPv4 peers in the same tables.

use crate::addr::SockAddr;
use abi::socket::{AF_INET, AF_INET6};
use abi::Errno;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// What a socket is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    /// 0.0.0.0 (or ::ffff:0.0.0.0 on a v6 socket): every IPv4 address.
    Any4,
    /// ::, every IPv6 address, and every IPv4 one unless IPV6_V6ONLY.
    Any6 { v6only: bool },
    /// One address (canonical).
    Ip(IpAddr),
}

impl Local {
    pub fn covers(&self, dst: IpAddr) -> bool {
        match (self, dst) {
            (Local::Any4, IpAddr::V4(_)) => true,
            (Local::Any6 { v6only: false }, _) => true,
            (Local::Any6 { v6only: true }, IpAddr::V6(_)) => true,
            (Local::Ip(a), d) => *a == d,
            _ => false,
        }
    }

    /// Whether some address is covered by both.
    pub fn overlaps(&self, other: &Local) -> bool {
        match (self, other) {
            (Local::Ip(a), o) | (o, Local::Ip(a)) => o.covers(*a),
            (Local::Any6 { v6only: false }, _) | (_, Local::Any6 { v6only: false }) => true,
            (Local::Any4, Local::Any4) => true,
            (Local::Any6 { .. }, Local::Any6 { .. }) => true,
            _ => false,
        }
    }

    /// How specific a match is (a specific address beats a wildcard, and
    /// the single-family wildcard beats the dual-stack one).
    pub fn specificity(&self) -> u32 {
        match self {
            Local::Ip(_) => 4,
            Local::Any4 | Local::Any6 { v6only: true } => 2,
            Local::Any6 { v6only: false } => 1,
        }
    }

    pub fn is_any(&self) -> bool {
        !matches!(self, Local::Ip(_))
    }

    /// The address getsockname reports for this binding.
    pub fn ip(&self) -> IpAddr {
        match self {
            Local::Any4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Local::Any6 { .. } => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            Local::Ip(a) => *a,
        }
    }
}

/// `ip` without v4 mapping.
pub fn canon(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(a),
        },
        v4 => v4,
    }
}

/// The sandbox's own addresses: 127.0.0.0/8 and ::1.
pub fn is_local(ip: IpAddr) -> bool {
    match canon(ip) {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a == Ipv6Addr::LOCALHOST,
    }
}

/// Where traffic to an address goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The destination (a wildcard destination means this host).
    pub dst: IpAddr,
    /// The source address a socket without one uses.
    pub src: IpAddr,
    /// Out of the sandbox, through the broker.
    pub external: bool,
}

impl Route {
    /// Whether a socket bound to `src` may use this route: an IPv4
    /// loopback source cannot leave through eth0 (Linux's
    /// __mkroute_output: EINVAL); IPv6 lets ::1 out and so does this.
    pub fn check_src(&self, src: IpAddr) -> Result<(), Errno> {
        match src {
            IpAddr::V4(a) if self.external && a.is_loopback() => Err(Errno::EINVAL),
            _ => Ok(()),
        }
    }
}

/// The route to `dst` (canonical): the loopback for the sandbox's own
/// addresses and for 0.0.0.0 / ::, which Linux takes as "this host"; with
/// `eth0` (`--network=sandbox`), everything else goes out through the
/// broker; without it, ENETUNREACH.
pub fn route(eth0: bool, dst: IpAddr) -> Result<Route, Errno> {
    let dst = match dst {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        d => d,
    };
    if eth0 && crate::egress::is_own(dst) {
        return Ok(Route { dst, src: dst, external: false });
    }
    if !is_local(dst) {
        if eth0 && !dst.is_multicast() && dst != IpAddr::V4(Ipv4Addr::BROADCAST) {
            return Ok(Route { dst, src: crate::egress::source_for(dst), external: true });
        }
        return Err(Errno::ENETUNREACH);
    }
    let src = match dst {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    Ok(Route { dst, src, external: false })
}

/// `ip`:`port` as a socket of `family` reports it (a v6 socket shows an
/// IPv4 address v4-mapped).
pub fn sockaddr(family: i32, ip: IpAddr, port: u16) -> SockAddr {
    match (family, ip) {
        (AF_INET, IpAddr::V4(a)) => SockAddr::Inet(SocketAddrV4::new(a, port)),
        (AF_INET, IpAddr::V6(a)) => {
            SockAddr::Inet(SocketAddrV4::new(a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED), port))
        }
        (_, IpAddr::V4(a)) => SockAddr::Inet6(SocketAddrV6::new(a.to_ipv6_mapped(), port, 0, 0)),
        (_, IpAddr::V6(a)) => SockAddr::Inet6(SocketAddrV6::new(a, port, 0, 0)),
    }
}

/// The address and port a socket of `family` was given, canonical, as
/// bind/connect/sendto read it: another family is EAFNOSUPPORT, except
/// that a v6 socket handed a sockaddr_in (16 bytes, shorter than
/// sockaddr_in6) gets EINVAL as Linux's length check comes first.
pub fn endpoint(family: i32, a: &SockAddr) -> Result<SocketAddr, Errno> {
    match (family, a) {
        (AF_INET, SockAddr::Inet(v4)) => Ok(SocketAddr::new(IpAddr::V4(*v4.ip()), v4.port())),
        (AF_INET6, SockAddr::Inet6(v6)) => Ok(SocketAddr::new(canon(IpAddr::V6(*v6.ip())), v6.port())),
        (AF_INET6, SockAddr::Inet(_)) => Err(Errno::EINVAL),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// The binding for bind(2) of `ip` (canonical) on a socket of `family`:
/// EADDRNOTAVAIL for an address that is not the sandbox's, EINVAL for a
/// v4-mapped address on an IPV6_V6ONLY socket.
pub fn local_for_bind(family: i32, ip: IpAddr, v6only: bool, eth0: bool) -> Result<Local, Errno> {
    match ip {
        IpAddr::V4(_) if family == AF_INET6 && v6only => Err(Errno::EINVAL),
        IpAddr::V4(a) if a.is_unspecified() => Ok(Local::Any4),
        IpAddr::V6(a) if a.is_unspecified() => Ok(Local::Any6 { v6only }),
        ip if is_local(ip) || (eth0 && crate::egress::is_own(ip)) => Ok(Local::Ip(ip)),
        _ => Err(Errno::EADDRNOTAVAIL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage() {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(Local::Any6 { v6only: false }.covers(v4));
        assert!(!Local::Any6 { v6only: true }.covers(v4));
        assert!(!Local::Any4.covers(v6));
        assert!(!Local::Any4.overlaps(&Local::Any6 { v6only: true }));
        assert!(Local::Ip(v4).overlaps(&Local::Any6 { v6only: false }));
        assert!(!Local::Ip(v4).overlaps(&Local::Ip(v6)));
        assert_eq!(canon(IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped())), v4);
    }

    #[test]
    fn routes() {
        assert_eq!(route(false, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))), Err(Errno::ENETUNREACH));
        let r = route(false, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5))).unwrap();
        assert_eq!(r.src, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(r.check_src(IpAddr::V4(Ipv4Addr::LOCALHOST)), Ok(()));
        let out = Route { dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), src: r.src, external: true };
        assert_eq!(out.check_src(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))), Err(Errno::EINVAL));
        assert_eq!(out.check_src(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 100))), Ok(()));
        assert_eq!(out.check_src(IpAddr::V6(Ipv6Addr::LOCALHOST)), Ok(()));
        assert_eq!(route(false, IpAddr::V6(Ipv6Addr::UNSPECIFIED)).unwrap().dst, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(
            sockaddr(AF_INET6, IpAddr::V4(Ipv4Addr::LOCALHOST), 7),
            SockAddr::Inet6(SocketAddrV6::new(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 7, 0, 0))
        );
    }
}
