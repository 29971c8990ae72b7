//! The interface and route files of /proc/net.

use super::{hex4, name_of, padded};
use netstack::iface::{
    Interface, Route, ARPHRD_ETHER, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RT_TABLE_LOCAL, RT_TABLE_MAIN,
};
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn dev(ifaces: &[Interface]) -> String {
    let mut s = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    for i in ifaces {
        let c = &i.stats;
        let _ = writeln!(
            s,
            "{:>6}:{:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>10} {:>9} {:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>7} {:>10}",
            i.name,
            c.rx_bytes,
            c.rx_packets,
            c.rx_errors,
            c.rx_dropped,
            0,
            0,
            0,
            c.multicast,
            c.tx_bytes,
            c.tx_packets,
            c.tx_errors,
            c.tx_dropped,
            0,
            0,
            0,
            0
        );
    }
    s
}

pub fn if_inet6(ifaces: &[Interface]) -> String {
    let mut s = String::new();
    for i in ifaces {
        for a in &i.v6 {
            let _ = writeln!(
                s,
                "{:032x} {:02x} {:02x} {:02x} {:02x} {:>8}",
                u128::from(a.addr),
                i.index,
                a.prefix_len,
                a.proc_scope(),
                a.flags as u8,
                i.name
            );
        }
    }
    s
}

fn v4(a: Option<IpAddr>) -> Ipv4Addr {
    match a {
        Some(IpAddr::V4(a)) => a,
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;
const RTF_HOST: u32 = 0x4;
const RTF_REJECT: u32 = 0x200;
const RTF_NONEXTHOP: u32 = 0x20_0000;
const RTF_LOCAL: u32 = 0x8000_0000;

/// /proc/net/route: table main's unicast routes.
pub fn route(routes: &[Route], ifaces: &[Interface]) -> String {
    let mut s = String::new();
    padded(&mut s, "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT", 127);
    for r in routes.iter().filter(|r| r.table == RT_TABLE_MAIN && r.dst.is_ipv4()) {
        if r.kind == RTN_BROADCAST || r.kind == RTN_MULTICAST {
            continue;
        }
        let mask = if r.dst_len == 0 { 0 } else { u32::MAX << (32 - u32::from(r.dst_len.min(32))) };
        let mut flags = RTF_UP;
        if r.gateway.is_some() {
            flags |= RTF_GATEWAY;
        }
        if mask == u32::MAX {
            flags |= RTF_HOST;
        }
        let line = format!(
            "{}\t{}\t{}\t{:04X}\t0\t0\t{}\t{}\t0\t0\t0",
            name_of(ifaces, r.oif),
            hex4(v4(Some(r.dst))),
            hex4(v4(r.gateway)),
            flags,
            r.metric,
            hex4(Ipv4Addr::from(mask))
        );
        padded(&mut s, &line, 127);
    }
    s
}

/// /proc/net/ipv6_route: tables main then local, each in its tree's
/// order, ending with the tree's root: the default route, or the null
/// entry (unreachable, through lo) where there is none.
pub fn ipv6_route(routes: &[Route], ifaces: &[Interface]) -> String {
    let mut s = String::new();
    let zero = format!("{:032x}", 0);
    for table in [RT_TABLE_MAIN, RT_TABLE_LOCAL] {
        let mut has_root = false;
        for r in routes.iter().filter(|r| r.table == table && r.dst.is_ipv6()) {
            has_root |= r.dst_len == 0;
            let dst = match r.dst {
                IpAddr::V6(a) => u128::from(a),
                IpAddr::V4(_) => 0,
            };
            let gw = match r.gateway {
                Some(IpAddr::V6(a)) => format!("{:032x}", u128::from(a)),
                _ => zero.clone(),
            };
            let mut flags = RTF_UP;
            if r.gateway.is_some() {
                flags |= RTF_GATEWAY;
            }
            if r.kind == RTN_LOCAL {
                flags |= RTF_LOCAL | RTF_NONEXTHOP;
            }
            let _ = writeln!(
                s,
                "{dst:032x} {:02x} {zero} 00 {gw} {:08x} {:08x} {:08x} {flags:08x} {:>8}",
                r.dst_len,
                r.metric,
                2,
                0,
                name_of(ifaces, r.oif)
            );
        }
        if !has_root {
            let _ = writeln!(
                s,
                "{zero} 00 {zero} 00 {zero} ffffffff 00000001 00000000 {:08x} {:>8}",
                RTF_REJECT | RTF_NONEXTHOP,
                "lo"
            );
        }
    }
    s
}

/// The IPv6 groups an interface is in: solicited-node groups of its
/// addresses (newest first; not on lo), all-nodes link- and
/// interface-local, with igmp6's flags.
fn groups6(i: &Interface) -> Vec<(Ipv6Addr, u32)> {
    let mut v = Vec::new();
    if !i.is_loopback() {
        for a in i.v6.iter().rev() {
            let low = u128::from(a.addr) & 0xff_ffff;
            let g = Ipv6Addr::from(u128::from(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0)) | low);
            if !v.iter().any(|(x, _)| *x == g) {
                v.push((g, 0x04));
            }
        }
    }
    v.push((Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0x0c));
    v.push((Ipv6Addr::new(0xff01, 0, 0, 0, 0, 0, 0, 1), 0x08));
    v
}

/// /proc/net/igmp: the all-hosts group on every interface with IPv4.
pub fn igmp(ifaces: &[Interface]) -> String {
    let mut s = String::from("Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n");
    for i in ifaces.iter().filter(|i| i.is_up() && !i.v4.is_empty()) {
        let _ = writeln!(s, "{}\t{:<10}: {:5} {:>7}", i.index, i.name, 1, "V3");
        let _ = writeln!(s, "\t\t\t\t{} {:5} 0:{:08X}\t\t0", hex4(Ipv4Addr::new(224, 0, 0, 1)), 1, 0);
    }
    s
}

/// /proc/net/igmp6.
pub fn igmp6(ifaces: &[Interface]) -> String {
    let mut s = String::new();
    for i in ifaces.iter().filter(|i| i.is_up()) {
        for (g, flags) in groups6(i) {
            let _ = writeln!(s, "{:<4} {:<15} {:032x} {:5} {flags:08X} 0", i.index, i.name, u128::from(g), 1);
        }
    }
    s
}

/// /proc/net/dev_mcast: the link-layer groups of Ethernet interfaces
/// (IPv6 all-nodes, IPv4 all-hosts, then the solicited-node groups).
pub fn dev_mcast(ifaces: &[Interface]) -> String {
    let mut s = String::new();
    for i in ifaces.iter().filter(|i| i.is_up() && i.hw_type == ARPHRD_ETHER) {
        let mut macs: Vec<String> = Vec::new();
        let mut add = |m: String| {
            if !macs.contains(&m) {
                macs.push(m);
            }
        };
        add("333300000001".into());
        if !i.v4.is_empty() {
            add("01005e000001".into());
        }
        let mut solicited: Vec<u32> = i.v6.iter().map(|a| (u128::from(a.addr) & 0xff_ffff) as u32).collect();
        solicited.sort_unstable();
        for low in solicited {
            add(format!("3333ff{low:06x}"));
        }
        for m in macs {
            let _ = writeln!(s, "{:<4} {:<15} {:<5} {:<5} {m}", i.index, i.name, 1, 0);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use netstack::iface::*;

    /// lo plus an eth0 set up as the host this was written on has its own
    /// (the expected texts are that host's files, at index 2).
    fn with_eth0() -> Interfaces {
        let t = Interfaces::loopback_only();
        let v6 = |a: &str, scope, flags| Addr6 { addr: a.parse().unwrap(), prefix_len: 64, scope, flags };
        t.add(Interface {
            index: 2,
            name: "eth0".into(),
            flags: IFF_UP | IFF_BROADCAST | IFF_MULTICAST | IFF_RUNNING | IFF_LOWER_UP,
            mtu: 1400,
            min_mtu: 68,
            max_mtu: 65535,
            txqlen: 1000,
            hw_type: ARPHRD_ETHER,
            mac: [2, 0xfc, 0, 0, 0, 1],
            broadcast_mac: [0xff; 6],
            qdisc: "pfifo_fast".into(),
            operstate: IF_OPER_UP,
            v4: vec![Addr4 {
                addr: Ipv4Addr::new(192, 0, 2, 2),
                prefix_len: 24,
                broadcast: Some(Ipv4Addr::new(192, 0, 2, 255)),
                label: "eth0".into(),
                scope: RT_SCOPE_UNIVERSE,
                flags: IFA_F_PERMANENT,
            }],
            v6: vec![
                v6("fe80::fc:ff:fe00:1", RT_SCOPE_LINK, IFA_F_PERMANENT),
                v6("fd00::2", RT_SCOPE_UNIVERSE, IFA_F_PERMANENT | IFA_F_NODAD),
            ],
            stats: Counters::default(),
        })
        .unwrap();
        t.set_gateway("192.0.2.1".parse().unwrap(), 2);
        t.set_gateway("fd00::1".parse().unwrap(), 2);
        t
    }

    #[test]
    fn files_with_eth0() {
        let t = with_eth0();
        let r = route(&t.routes4(), &t.list());
        let lines: Vec<&str> = r.lines().map(str::trim_end).collect();
        assert_eq!(
            lines[1..],
            [
                "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
                "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0"
            ]
        );
        // ipv6_route without the reference counts.
        let z = "00000000000000000000000000000000";
        let v6: Vec<String> = ipv6_route(&t.routes6(), &t.list())
            .lines()
            .map(|l| l.split(' ').enumerate().filter(|(n, _)| *n != 6).map(|(_, f)| f).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            v6,
            [
                format!("fd000000000000000000000000000000 40 {z} 00 {z} 00000100 00000000 00000001     eth0"),
                format!("fe800000000000000000000000000000 40 {z} 00 {z} 00000100 00000000 00000001     eth0"),
                format!("{z} 00 {z} 00 fd000000000000000000000000000001 00000400 00000000 00000003     eth0"),
                format!("00000000000000000000000000000001 80 {z} 00 {z} 00000000 00000000 80200001       lo"),
                format!("fd000000000000000000000000000002 80 {z} 00 {z} 00000000 00000000 80200001     eth0"),
                format!("fe8000000000000000fc00fffe000001 80 {z} 00 {z} 00000000 00000000 80200001     eth0"),
                format!("ff000000000000000000000000000000 08 {z} 00 {z} 00000100 00000000 00000001     eth0"),
                format!("{z} 00 {z} 00 {z} ffffffff 00000000 00200200       lo"),
            ]
        );
        assert_eq!(
            igmp6(&t.list()),
            "1    lo              ff020000000000000000000000000001     1 0000000C 0\n\
             1    lo              ff010000000000000000000000000001     1 00000008 0\n\
             2    eth0            ff0200000000000000000001ff000002     1 00000004 0\n\
             2    eth0            ff0200000000000000000001ff000001     1 00000004 0\n\
             2    eth0            ff020000000000000000000000000001     1 0000000C 0\n\
             2    eth0            ff010000000000000000000000000001     1 00000008 0\n"
        );
        assert_eq!(
            dev_mcast(&t.list()),
            "2    eth0            1     0     333300000001\n\
             2    eth0            1     0     01005e000001\n\
             2    eth0            1     0     3333ff000001\n\
             2    eth0            1     0     3333ff000002\n"
        );
        assert!(igmp(&t.list()).ends_with("2\teth0      :     1      V3\n\t\t\t\t010000E0     1 0:00000000\t\t0\n"));
        assert!(if_inet6(&t.list()).contains("fd000000000000000000000000000002 02 40 00 82     eth0\n"));
        assert!(if_inet6(&t.list()).contains("fe8000000000000000fc00fffe000001 02 40 20 80     eth0\n"));
    }

    #[test]
    fn dev_and_if_inet6_of_lo() {
        let lo = Interfaces::loopback_only().list();
        let d = dev(&lo);
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(lines[0], "Inter-|   Receive                                                |  Transmit");
        assert_eq!(
            lines[1],
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed"
        );
        assert_eq!(
            lines[2],
            "    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0"
        );
        assert_eq!(if_inet6(&lo), "00000000000000000000000000000001 01 80 10 80       lo\n");
    }

    #[test]
    fn routes_of_lo() {
        let t = Interfaces::loopback_only();
        let r = route(&t.routes4(), &t.list());
        assert_eq!(r.lines().count(), 1, "lo's routes are all in table local");
        assert!(r.starts_with("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT   "));
        assert_eq!(r.lines().next().map(str::len), Some(127));
        let z = "00000000000000000000000000000000";
        assert_eq!(
            ipv6_route(&t.routes6(), &t.list()),
            format!(
                "{z} 00 {z} 00 {z} ffffffff 00000001 00000000 00200200       lo\n\
                 00000000000000000000000000000001 80 {z} 00 {z} 00000000 00000002 00000000 80200001       lo\n\
                 {z} 00 {z} 00 {z} ffffffff 00000001 00000000 00200200       lo\n"
            )
        );
    }

    #[test]
    fn route_of_a_gateway() {
        let r = Route {
            table: RT_TABLE_MAIN,
            kind: netstack::iface::RTN_UNICAST,
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst_len: 0,
            scope: 0,
            protocol: 3,
            prefsrc: None,
            gateway: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            oif: 1,
            metric: 0,
        };
        let text = route(&[r], &Interfaces::loopback_only().list());
        let line = text.lines().nth(1).unwrap_or_default();
        assert_eq!(line.trim_end(), "lo\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0");
        assert_eq!(line.len(), 127);
    }

    #[test]
    fn multicast_of_lo() {
        let lo = Interfaces::loopback_only().list();
        assert_eq!(
            igmp(&lo),
            "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n\
             1\tlo        :     1      V3\n\
             \t\t\t\t010000E0     1 0:00000000\t\t0\n"
        );
        assert_eq!(
            igmp6(&lo),
            "1    lo              ff020000000000000000000000000001     1 0000000C 0\n\
             1    lo              ff010000000000000000000000000001     1 00000008 0\n"
        );
        assert_eq!(dev_mcast(&lo), "");
    }
}
