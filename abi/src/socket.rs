//! Sockets as the x86-64 Linux ABI spells them: families, types, levels,
//! options, message flags and the structs of sendmsg/recvmsg.

use crate::Pod;

// Address families.
pub const AF_UNSPEC: i32 = 0;
pub const AF_UNIX: i32 = 1;
pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 10;
pub const AF_NETLINK: i32 = 16;
pub const AF_PACKET: i32 = 17;

// Socket types; the high bits of socket(2)'s type carry flags.
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_RAW: i32 = 3;
pub const SOCK_RDM: i32 = 4;
pub const SOCK_SEQPACKET: i32 = 5;
pub const SOCK_TYPE_MASK: i32 = 0xf;
pub const SOCK_NONBLOCK: i32 = 0o4000;
pub const SOCK_CLOEXEC: i32 = 0o2000000;

// Protocols.
pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_ICMP: i32 = 1;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_IPV6: i32 = 41;
pub const IPPROTO_ICMPV6: i32 = 58;
pub const IPPROTO_UDPLITE: i32 = 136;
pub const IPPROTO_RAW: i32 = 255;
pub const NETLINK_ROUTE: i32 = 0;

// Levels.
pub const SOL_SOCKET: i32 = 1;
pub const SOL_IP: i32 = 0;
pub const SOL_TCP: i32 = 6;
pub const SOL_UDP: i32 = 17;
pub const SOL_IPV6: i32 = 41;
pub const SOL_UDPLITE: i32 = 136;
pub const SOL_NETLINK: i32 = 270;

// SOL_SOCKET options.
pub const SO_DEBUG: i32 = 1;
pub const SO_REUSEADDR: i32 = 2;
pub const SO_TYPE: i32 = 3;
pub const SO_ERROR: i32 = 4;
pub const SO_DONTROUTE: i32 = 5;
pub const SO_BROADCAST: i32 = 6;
pub const SO_SNDBUF: i32 = 7;
pub const SO_RCVBUF: i32 = 8;
pub const SO_KEEPALIVE: i32 = 9;
pub const SO_OOBINLINE: i32 = 10;
pub const SO_NO_CHECK: i32 = 11;
pub const SO_PRIORITY: i32 = 12;
pub const SO_LINGER: i32 = 13;
pub const SO_BSDCOMPAT: i32 = 14;
pub const SO_REUSEPORT: i32 = 15;
pub const SO_PASSCRED: i32 = 16;
pub const SO_PEERCRED: i32 = 17;
pub const SO_RCVLOWAT: i32 = 18;
pub const SO_SNDLOWAT: i32 = 19;
pub const SO_RCVTIMEO: i32 = 20;
pub const SO_SNDTIMEO: i32 = 21;
pub const SO_BINDTODEVICE: i32 = 25;
pub const SO_ATTACH_FILTER: i32 = 26;
pub const SO_DETACH_FILTER: i32 = 27;
pub const SO_PEERNAME: i32 = 28;
pub const SO_TIMESTAMP: i32 = 29;
pub const SO_ACCEPTCONN: i32 = 30;
pub const SO_PEERSEC: i32 = 31;
pub const SO_SNDBUFFORCE: i32 = 32;
pub const SO_RCVBUFFORCE: i32 = 33;
pub const SO_PASSSEC: i32 = 34;
pub const SO_TIMESTAMPNS: i32 = 35;
pub const SO_MARK: i32 = 36;
pub const SO_PROTOCOL: i32 = 38;
pub const SO_DOMAIN: i32 = 39;
pub const SO_RXQ_OVFL: i32 = 40;
pub const SO_PEEK_OFF: i32 = 42;
pub const SO_BUSY_POLL: i32 = 46;
pub const SO_INCOMING_CPU: i32 = 49;
pub const SO_PEERGROUPS: i32 = 59;
pub const SO_ZEROCOPY: i32 = 60;

// Control message types at SOL_SOCKET.
pub const SCM_RIGHTS: i32 = 1;
pub const SCM_CREDENTIALS: i32 = 2;
pub const SCM_TIMESTAMP: i32 = SO_TIMESTAMP;
/// Most descriptors one SCM_RIGHTS message may carry (Linux's SCM_MAX_FD).
pub const SCM_MAX_FD: usize = 253;

// IPPROTO_TCP options.
pub const TCP_NODELAY: i32 = 1;
pub const TCP_MAXSEG: i32 = 2;
pub const TCP_CORK: i32 = 3;
pub const TCP_KEEPIDLE: i32 = 4;
pub const TCP_KEEPINTVL: i32 = 5;
pub const TCP_KEEPCNT: i32 = 6;
pub const TCP_SYNCNT: i32 = 7;
pub const TCP_LINGER2: i32 = 8;
pub const TCP_DEFER_ACCEPT: i32 = 9;
pub const TCP_WINDOW_CLAMP: i32 = 10;
pub const TCP_INFO: i32 = 11;
pub const TCP_QUICKACK: i32 = 12;
pub const TCP_CONGESTION: i32 = 13;
pub const TCP_USER_TIMEOUT: i32 = 18;
pub const TCP_NOTSENT_LOWAT: i32 = 25;
pub const TCP_FASTOPEN: i32 = 23;

// IPPROTO_IP options.
pub const IP_TOS: i32 = 1;
pub const IP_TTL: i32 = 2;
pub const IP_HDRINCL: i32 = 3;
pub const IP_OPTIONS: i32 = 4;
pub const IP_PKTINFO: i32 = 8;
pub const IP_RECVERR: i32 = 11;
pub const IP_RECVTTL: i32 = 12;
pub const IP_RECVTOS: i32 = 13;
pub const IP_MTU_DISCOVER: i32 = 10;
pub const IP_MULTICAST_IF: i32 = 32;
pub const IP_MULTICAST_TTL: i32 = 33;
pub const IP_MULTICAST_LOOP: i32 = 34;
pub const IP_ADD_MEMBERSHIP: i32 = 35;
pub const IP_DROP_MEMBERSHIP: i32 = 36;

// IPPROTO_IPV6 options.
pub const IPV6_UNICAST_HOPS: i32 = 16;
pub const IPV6_MULTICAST_IF: i32 = 17;
pub const IPV6_MULTICAST_HOPS: i32 = 18;
pub const IPV6_MULTICAST_LOOP: i32 = 19;
pub const IPV6_V6ONLY: i32 = 26;
pub const IPV6_RECVPKTINFO: i32 = 49;
pub const IPV6_PKTINFO: i32 = 50;
pub const IPV6_TCLASS: i32 = 67;

// send/recv flags.
pub const MSG_OOB: i32 = 0x1;
pub const MSG_PEEK: i32 = 0x2;
pub const MSG_DONTROUTE: i32 = 0x4;
pub const MSG_CTRUNC: i32 = 0x8;
pub const MSG_PROBE: i32 = 0x10;
pub const MSG_TRUNC: i32 = 0x20;
pub const MSG_DONTWAIT: i32 = 0x40;
pub const MSG_EOR: i32 = 0x80;
pub const MSG_WAITALL: i32 = 0x100;
pub const MSG_FIN: i32 = 0x200;
pub const MSG_SYN: i32 = 0x400;
pub const MSG_CONFIRM: i32 = 0x800;
pub const MSG_RST: i32 = 0x1000;
pub const MSG_ERRQUEUE: i32 = 0x2000;
pub const MSG_NOSIGNAL: i32 = 0x4000;
pub const MSG_MORE: i32 = 0x8000;
pub const MSG_WAITFORONE: i32 = 0x10000;
pub const MSG_BATCH: i32 = 0x40000;
pub const MSG_ZEROCOPY: i32 = 0x4000000;
pub const MSG_FASTOPEN: i32 = 0x20000000;
pub const MSG_CMSG_CLOEXEC: i32 = 0x40000000;

// shutdown(2).
pub const SHUT_RD: i32 = 0;
pub const SHUT_WR: i32 = 1;
pub const SHUT_RDWR: i32 = 2;

/// Largest listen(2) backlog (net.core.somaxconn's default on 4.4 is 128;
/// larger requests are cut to it).
pub const SOMAXCONN: i32 = 128;

/// `struct msghdr` (56 bytes; the two padding words made explicit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Msghdr {
    pub name: u64,
    pub namelen: u32,
    pub _pad1: u32,
    pub iov: u64,
    pub iovlen: u64,
    pub control: u64,
    pub controllen: u64,
    pub flags: i32,
    pub _pad2: u32,
}
// SAFETY: repr(C) with every padding word an explicit field.
unsafe impl Pod for Msghdr {}

/// `struct mmsghdr`: a msghdr and the byte count sendmmsg/recvmmsg
/// report for it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mmsghdr {
    pub hdr: Msghdr,
    pub len: u32,
    pub _pad: u32,
}
// SAFETY: repr(C), a Pod and two u32.
unsafe impl Pod for Mmsghdr {}

/// `struct cmsghdr` without its data.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cmsghdr {
    pub len: u64,
    pub level: i32,
    pub typ: i32,
}
// SAFETY: repr(C), u64 and two i32, no padding.
unsafe impl Pod for Cmsghdr {}

/// Bytes of a cmsghdr before its data.
pub const CMSG_HDR_LEN: usize = 16;

/// CMSG_ALIGN: control data is aligned to 8 bytes.
pub const fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// CMSG_SPACE(n): bytes a control message with `n` data bytes occupies.
pub const fn cmsg_space(n: usize) -> usize {
    CMSG_HDR_LEN + cmsg_align(n)
}

/// CMSG_LEN(n): the `len` field of a control message with `n` data bytes.
pub const fn cmsg_len(n: usize) -> usize {
    CMSG_HDR_LEN + n
}

/// One control message of a sendmsg buffer: its level, type and data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmsgRef<'a> {
    pub level: i32,
    pub typ: i32,
    pub data: &'a [u8],
}

/// The control messages of a sendmsg(2) control buffer, in order, as
/// Linux's `__scm_send` walks them (CMSG_FIRSTHDR/CMSG_NXTHDR): one after
/// another while a whole header remains. A message whose `cmsg_len` is
/// below a header or runs past the buffer is an EINVAL item, and the walk
/// ends there; trailing bytes too short for a header are ignored. The
/// caller handles each message before looking at the next, so an earlier
/// message's error comes first, as in Linux. Pure: no meaning is given
/// to levels or types here.
pub fn cmsgs(buf: &[u8]) -> impl Iterator<Item = Result<CmsgRef<'_>, crate::Errno>> {
    let mut at = 0usize;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed {
            return None;
        }
        let rest = buf.get(at..).filter(|r| r.len() >= CMSG_HDR_LEN)?;
        let h = Cmsghdr::from_bytes(rest)?;
        let clen = usize::try_from(h.len).ok().filter(|&l| (CMSG_HDR_LEN..=rest.len()).contains(&l));
        let Some(clen) = clen else {
            failed = true;
            return Some(Err(crate::Errno::EINVAL));
        };
        // clen <= rest.len() <= buf.len(), so this cannot overflow.
        at += cmsg_align(clen);
        Some(Ok(CmsgRef { level: h.level, typ: h.typ, data: &rest[CMSG_HDR_LEN..clen] }))
    })
}

/// `struct ucred` (SO_PEERCRED, SCM_CREDENTIALS).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}
// SAFETY: repr(C), three 4-byte fields.
unsafe impl Pod for Ucred {}

/// `struct linger`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Linger {
    pub onoff: i32,
    pub linger: i32,
}
// SAFETY: repr(C), two i32.
unsafe impl Pod for Linger {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(core::mem::size_of::<Msghdr>(), 56);
        assert_eq!(core::mem::size_of::<Mmsghdr>(), 64);
        assert_eq!(core::mem::size_of::<Cmsghdr>(), CMSG_HDR_LEN);
        assert_eq!(core::mem::size_of::<Ucred>(), 12);
        assert_eq!(cmsg_space(4), 24);
        assert_eq!(cmsg_len(12), 28);
    }

    /// Control messages laid out as CMSG_SPACE/CMSG_LEN lay them.
    fn layout(msgs: &[(i32, i32, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (level, typ, data) in msgs {
            b.extend_from_slice(Cmsghdr { len: cmsg_len(data.len()) as u64, level: *level, typ: *typ }.as_bytes());
            b.extend_from_slice(data);
            b.resize(b.len() + cmsg_align(data.len()) - data.len(), 0);
        }
        b
    }

    #[test]
    fn cmsg_walk_edges() {
        // A header that claims less than itself, or more than there is.
        let mut b = layout(&[(1, 1, vec![1, 2, 3, 4])]);
        b[0] = 8;
        assert_eq!(cmsgs(&b).collect::<Vec<_>>(), [Err(crate::Errno::EINVAL)]);
        b[0] = 200;
        assert_eq!(cmsgs(&b).collect::<Vec<_>>(), [Err(crate::Errno::EINVAL)]);
        // A last message without its padding, then fewer bytes than a header.
        let mut b = layout(&[(1, 2, vec![9; 3])]);
        b.truncate(CMSG_HDR_LEN + 3);
        b.extend_from_slice(&[0; 15]);
        let got: Vec<_> = cmsgs(&b).collect();
        assert_eq!(got, [Ok(CmsgRef { level: 1, typ: 2, data: &[9, 9, 9][..] })]);
        assert_eq!(cmsgs(&[]).count(), 0);
        // A length with the top bit set is no usize offset anywhere.
        let mut b = layout(&[(1, 1, vec![])]);
        b[..8].copy_from_slice(&u64::MAX.to_ne_bytes());
        assert_eq!(cmsgs(&b).collect::<Vec<_>>(), [Err(crate::Errno::EINVAL)]);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any bytes: no panic, every message's data lies inside the
            /// buffer, and an error ends the walk.
            #[test]
            fn cmsgs_of_any_bytes(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
                let range = buf.as_ptr_range();
                let items: Vec<_> = cmsgs(&buf).collect();
                for (i, it) in items.iter().enumerate() {
                    match it {
                        Ok(c) => {
                            let r = c.data.as_ptr_range();
                            prop_assert!(r.start >= range.start && r.end <= range.end);
                        }
                        Err(e) => {
                            prop_assert_eq!(*e, crate::Errno::EINVAL);
                            prop_assert_eq!(i, items.len() - 1);
                        }
                    }
                }
                prop_assert!(items.len() <= buf.len() / CMSG_HDR_LEN + 1);
            }

            /// What CMSG_SPACE lays out comes back as it went in.
            #[test]
            fn cmsgs_round_trip(
                msgs in proptest::collection::vec(
                    (any::<i32>(), any::<i32>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..6),
            ) {
                let b = layout(&msgs);
                let got: Vec<_> = cmsgs(&b).collect::<Result<_, _>>().map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                prop_assert_eq!(got.len(), msgs.len());
                for (g, (level, typ, data)) in got.iter().zip(&msgs) {
                    prop_assert_eq!((g.level, g.typ, g.data), (*level, *typ, &data[..]));
                }
            }

            /// A laid-out buffer with bytes changed: no panic, and the
            /// messages before the first changed header are still found.
            #[test]
            fn cmsgs_mutated(
                msgs in proptest::collection::vec(
                    (0i32..3, 0i32..3, proptest::collection::vec(any::<u8>(), 0..24)), 1..5),
                flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            ) {
                let mut b = layout(&msgs);
                for (at, v) in &flips {
                    let i = at.index(b.len());
                    b[i] = *v;
                }
                let _ = cmsgs(&b).count();
            }
        }
    }
}
