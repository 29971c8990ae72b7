//! Traffic that leaves the sandbox (`--network=sandbox`): the Sentry's
//! side of the egress broker (DESIGN.md, Network). The broker, a process
//! runsc-lite starts, owns every host socket; the Sentry asks it for
//! connections over a unix socket and moves bytes on the descriptors it
//! hands back.
//!
//! - [`proto`]: the wire format between the two, and eth0's addresses.
//! - [`client`]: the Sentry's end of the channel.
//! - [`notifier`]: the thread that waits on host descriptors.
//! - [`sys`]: the host calls on those descriptors.

pub mod client;
pub mod notifier;
pub mod proto;
pub mod sys;

use crate::iface::*;
use std::net::{IpAddr, Ipv4Addr};

/// eth0's index (lo is 1).
pub const ETH0_INDEX: i32 = 2;

/// `eth0` as the sandbox sees it: slirp's addresses, a locally
/// administered MAC, the default routes through the gateway.
pub fn eth0() -> Interface {
    let [a, b, c, d] = proto::GUEST_V4.octets();
    Interface {
        index: ETH0_INDEX,
        name: "eth0".into(),
        flags: IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP,
        mtu: proto::MTU,
        min_mtu: 68,
        max_mtu: 65535,
        txqlen: 1000,
        hw_type: ARPHRD_ETHER,
        mac: [0x02, 0x42, a, b, c, d],
        broadcast_mac: [0xff; 6],
        qdisc: "noqueue".into(),
        operstate: IF_OPER_UP,
        v4: vec![Addr4 {
            addr: proto::GUEST_V4,
            prefix_len: proto::PREFIX_V4,
            broadcast: Some(Ipv4Addr::new(a, b, c, 255)),
            label: "eth0".into(),
            scope: RT_SCOPE_UNIVERSE,
            flags: IFA_F_PERMANENT,
        }],
        v6: vec![Addr6 {
            addr: proto::GUEST_V6,
            prefix_len: proto::PREFIX_V6,
            scope: RT_SCOPE_UNIVERSE,
            flags: IFA_F_PERMANENT | IFA_F_NODAD,
        }],
        stats: Counters::default(),
    }
}

/// eth0's own addresses: traffic to them stays in the sandbox.
pub fn is_own(ip: IpAddr) -> bool {
    ip == IpAddr::V4(proto::GUEST_V4) || ip == IpAddr::V6(proto::GUEST_V6)
}

/// The source address of traffic out of eth0.
pub fn source_for(dst: IpAddr) -> IpAddr {
    match dst {
        IpAddr::V4(_) => IpAddr::V4(proto::GUEST_V4),
        IpAddr::V6(_) => IpAddr::V6(proto::GUEST_V6),
    }
}

/// How a connection from the host's side (a published port, the
/// gateway) appears to the guest: from the gateway.
pub fn gateway_for(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(proto::GATEWAY_V4),
        IpAddr::V6(_) => IpAddr::V6(proto::GATEWAY_V6),
    }
}
