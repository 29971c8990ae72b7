//! /proc/net (= /proc/[pid]/net): the sandbox's interfaces, routes and
//! sockets in Linux's formats, column for column. Each file is a pure
//! function of what the netstack reports (interfaces, routes, and every
//! live socket's [`SocketInfo`] with its inode number), so the formats are
//! tested on made-up values.
//!
//! - [`ifaces`]: dev, if_inet6, route, ipv6_route, igmp, igmp6, dev_mcast.
//! - [`sockets`]: tcp, tcp6, udp, udp6, unix, netlink.
//!
//! Kernel pointers (%pK) print as zeros, as Linux shows them to a reader
//! without CAP_SYSLOG; timers and retransmission state are idle.

mod ifaces;
mod sockets;

use netstack::iface::Interface;
use netstack::{Netstack, SocketInfo};
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The files of /proc/net.
pub const FILES: &[&str] = &[
    "dev",
    "dev_mcast",
    "if_inet6",
    "igmp",
    "igmp6",
    "ipv6_route",
    "netlink",
    "route",
    "tcp",
    "tcp6",
    "udp",
    "udp6",
    "unix",
];

/// A socket as listings see it: its inode number and what it reports.
pub type Entry = (u64, SocketInfo);

/// The content of /proc/net/`name`, or None when there is no such file.
pub fn generate(net: &Netstack, name: &str) -> Option<Vec<u8>> {
    let sockets = || -> Vec<Entry> { net.live_sockets().into_iter().map(|(ino, s)| (ino, s.info())).collect() };
    let list = || net.ifaces.list();
    let text = match name {
        "dev" => ifaces::dev(&list()),
        "dev_mcast" => ifaces::dev_mcast(&list()),
        "if_inet6" => ifaces::if_inet6(&list()),
        "igmp" => ifaces::igmp(&list()),
        "igmp6" => ifaces::igmp6(&list()),
        "route" => ifaces::route(&net.ifaces.routes4(), &list()),
        "ipv6_route" => ifaces::ipv6_route(&net.ifaces.routes6(), &list()),
        "tcp" => sockets::tcp(&sockets(), false),
        "tcp6" => sockets::tcp(&sockets(), true),
        "udp" => sockets::udp(&sockets(), false),
        "udp6" => sockets::udp(&sockets(), true),
        "unix" => sockets::unix(&sockets()),
        "netlink" => sockets::netlink(&sockets()),
        _ => return None,
    };
    Some(text.into_bytes())
}

fn name_of(ifaces: &[Interface], index: i32) -> &str {
    ifaces.iter().find(|i| i.index == index).map_or("", |i| i.name.as_str())
}

/// A line padded with spaces to `width` (seq_setwidth + seq_pad).
fn padded(out: &mut String, line: &str, width: usize) {
    let _ = writeln!(out, "{line:<width$}");
}

/// An IPv4 address as Linux prints a __be32 with %08X on x86.
pub(crate) fn hex4(a: Ipv4Addr) -> String {
    format!("{:08X}", u32::from_le_bytes(a.octets()))
}

/// An IPv6 address as four such words (the socket files' format).
pub(crate) fn hex6(a: Ipv6Addr) -> String {
    a.octets().chunks_exact(4).map(|c| format!("{:08X}", u32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect()
}
