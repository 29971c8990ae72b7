//! Socket addresses: parsed from and written back to the guest's
//! `struct sockaddr_*` bytes with Linux's lengths and errors.

use abi::socket::{AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, AF_UNSPEC};
use abi::Errno;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

/// `sizeof(struct sockaddr_un)`.
pub const SOCKADDR_UN_LEN: usize = 110;
/// Longest unix socket path (sun_path without the family).
pub const UNIX_PATH_MAX: usize = 108;
/// Largest address any family takes (`struct sockaddr_storage`).
pub const SOCKADDR_MAX: usize = 128;

/// A unix socket's address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// No address (socketpair, an unbound socket, an unbound peer).
    Unnamed,
    /// A filesystem path, as given (no trailing NUL).
    Path(Vec<u8>),
    /// The abstract namespace: the name after the leading NUL, every byte
    /// up to the given length significant.
    Abstract(Vec<u8>),
}

/// A socket address of any family the sandbox serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// AF_UNSPEC: connect(2) with it dissolves a datagram association.
    Unspec,
    Unix(UnixAddr),
    Inet(SocketAddrV4),
    Inet6(SocketAddrV6),
    /// AF_NETLINK: port id and multicast groups.
    Netlink {
        pid: u32,
        groups: u32,
    },
}

impl SockAddr {
    pub fn family(&self) -> i32 {
        match self {
            SockAddr::Unspec => AF_UNSPEC,
            SockAddr::Unix(_) => AF_UNIX,
            SockAddr::Inet(_) => AF_INET,
            SockAddr::Inet6(_) => AF_INET6,
            SockAddr::Netlink { .. } => AF_NETLINK,
        }
    }

    /// The address in `b` (the `addrlen` bytes the guest passed). EINVAL
    /// for a length too short for its family; EAFNOSUPPORT for a family
    /// the sandbox does not know.
    pub fn parse(b: &[u8]) -> Result<SockAddr, Errno> {
        let fam = match b {
            [lo, hi, ..] => i32::from(u16::from_le_bytes([*lo, *hi])),
            _ => return Err(Errno::EINVAL),
        };
        let body = &b[2..];
        match fam {
            AF_UNSPEC => Ok(SockAddr::Unspec),
            AF_UNIX => {
                if b.len() > SOCKADDR_UN_LEN {
                    return Err(Errno::EINVAL);
                }
                Ok(SockAddr::Unix(match body {
                    [] => UnixAddr::Unnamed,
                    [0, name @ ..] => UnixAddr::Abstract(name.to_vec()),
                    path => {
                        let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                        UnixAddr::Path(path[..end].to_vec())
                    }
                }))
            }
            AF_INET => {
                let [p0, p1, a, b_, c, d, ..] = body else { return Err(Errno::EINVAL) };
                if b.len() < 16 {
                    return Err(Errno::EINVAL);
                }
                Ok(SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::new(*a, *b_, *c, *d), u16::from_be_bytes([*p0, *p1]))))
            }
            AF_INET6 => {
                // 24 bytes is the RFC 2133 sockaddr_in6 without scope id,
                // which Linux still accepts.
                if b.len() < 24 {
                    return Err(Errno::EINVAL);
                }
                let port = u16::from_be_bytes([body[0], body[1]]);
                let flowinfo = u32::from_be_bytes([body[2], body[3], body[4], body[5]]);
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&body[6..22]);
                let scope = match body.get(22..26) {
                    Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
                    None => 0,
                };
                Ok(SockAddr::Inet6(SocketAddrV6::new(Ipv6Addr::from(ip), port, flowinfo, scope)))
            }
            AF_NETLINK => {
                if b.len() < 12 {
                    return Err(Errno::EINVAL);
                }
                let pid = u32::from_le_bytes([body[2], body[3], body[4], body[5]]);
                let groups = u32::from_le_bytes([body[6], body[7], body[8], body[9]]);
                Ok(SockAddr::Netlink { pid, groups })
            }
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// The bytes of the `struct sockaddr_*`, as long as Linux reports it
    /// (unix: family, path and its NUL; abstract: family, NUL and name).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(28);
        v.extend_from_slice(&(self.family() as u16).to_le_bytes());
        match self {
            SockAddr::Unspec => {}
            SockAddr::Unix(UnixAddr::Unnamed) => {}
            SockAddr::Unix(UnixAddr::Path(p)) => {
                v.extend_from_slice(p);
                v.push(0);
            }
            SockAddr::Unix(UnixAddr::Abstract(n)) => {
                v.push(0);
                v.extend_from_slice(n);
            }
            SockAddr::Inet(a) => {
                v.extend_from_slice(&a.port().to_be_bytes());
                v.extend_from_slice(&a.ip().octets());
                v.extend_from_slice(&[0; 8]);
            }
            SockAddr::Inet6(a) => {
                v.extend_from_slice(&a.port().to_be_bytes());
                v.extend_from_slice(&a.flowinfo().to_be_bytes());
                v.extend_from_slice(&a.ip().octets());
                v.extend_from_slice(&a.scope_id().to_le_bytes());
            }
            SockAddr::Netlink { pid, groups } => {
                v.extend_from_slice(&[0, 0]);
                v.extend_from_slice(&pid.to_le_bytes());
                v.extend_from_slice(&groups.to_le_bytes());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(path: &[u8]) -> Vec<u8> {
        let mut v = (AF_UNIX as u16).to_le_bytes().to_vec();
        v.extend_from_slice(path);
        v
    }

    #[test]
    fn unix_forms() {
        assert_eq!(SockAddr::parse(&un(b"")), Ok(SockAddr::Unix(UnixAddr::Unnamed)));
        assert_eq!(SockAddr::parse(&un(b"/tmp/s\0junk")), Ok(SockAddr::Unix(UnixAddr::Path(b"/tmp/s".to_vec()))));
        assert_eq!(SockAddr::parse(&un(b"\0ab\0c")), Ok(SockAddr::Unix(UnixAddr::Abstract(b"ab\0c".to_vec()))));
        assert_eq!(SockAddr::parse(&un(&[b'a'; 109])), Err(Errno::EINVAL));
        let a = SockAddr::Unix(UnixAddr::Path(b"/s".to_vec()));
        assert_eq!(a.to_bytes(), un(b"/s\0"));
        assert_eq!(SockAddr::Unix(UnixAddr::Abstract(b"x".to_vec())).to_bytes(), un(b"\0x"));
    }

    #[test]
    fn inet_round_trips() {
        let a = SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
        let b = a.to_bytes();
        assert_eq!(b.len(), 16);
        assert_eq!(&b[2..4], &8080u16.to_be_bytes());
        assert_eq!(SockAddr::parse(&b), Ok(a));
        assert_eq!(SockAddr::parse(&b[..15]), Err(Errno::EINVAL));
        let a6 = SockAddr::Inet6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 0, 0));
        let b6 = a6.to_bytes();
        assert_eq!(b6.len(), 28);
        assert_eq!(SockAddr::parse(&b6), Ok(a6.clone()));
        assert_eq!(SockAddr::parse(&b6[..24]), Ok(a6));
        assert_eq!(SockAddr::parse(&b6[..23]), Err(Errno::EINVAL));
    }

    #[test]
    fn odd_input() {
        assert_eq!(SockAddr::parse(&[]), Err(Errno::EINVAL));
        assert_eq!(SockAddr::parse(&[1]), Err(Errno::EINVAL));
        assert_eq!(SockAddr::parse(&[99, 0, 0, 0]), Err(Errno::EAFNOSUPPORT));
        assert_eq!(SockAddr::parse(&[0, 0]), Ok(SockAddr::Unspec));
        let nl = SockAddr::Netlink { pid: 7, groups: 1 };
        assert_eq!(SockAddr::parse(&nl.to_bytes()), Ok(nl));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Address bytes as a guest might pass them: a known family or any,
        /// then any bytes.
        fn addr_bytes() -> impl Strategy<Value = Vec<u8>> {
            let family = prop_oneof![
                Just(AF_UNSPEC as u16),
                Just(AF_UNIX as u16),
                Just(AF_INET as u16),
                Just(AF_INET6 as u16),
                Just(AF_NETLINK as u16),
                any::<u16>(),
            ];
            (family, proptest::collection::vec(any::<u8>(), 0..140)).prop_map(|(f, rest)| {
                let mut v = f.to_le_bytes().to_vec();
                v.extend(rest);
                v
            })
        }

        proptest! {
            /// No panic on any bytes; what parses writes back to bytes that
            /// parse to the same address (except a unix path of the full
            /// 108 bytes, whose written form is 111 bytes, as on Linux).
            #[test]
            fn parse_any_bytes(b in prop_oneof![addr_bytes(), proptest::collection::vec(any::<u8>(), 0..4)]) {
                if let Ok(a) = SockAddr::parse(&b) {
                    let again = a.to_bytes();
                    if again.len() <= SOCKADDR_UN_LEN || a.family() != AF_UNIX {
                        prop_assert_eq!(SockAddr::parse(&again), Ok(a.clone()));
                    }
                    prop_assert!(again.len() <= SOCKADDR_UN_LEN + 1);
                }
            }
        }
    }
}
