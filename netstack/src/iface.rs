//! The sandbox's network interfaces and the routes that follow from them.
//!
//! `lo` is always there (index 1, 127.0.0.1/8 and ::1/128, as a fresh
//! Linux network namespace has it once lo is up). A network mode that
//! gives the sandbox more (`eth0`) adds it with [`Interfaces::add`] and a
//! default route with [`Interfaces::set_gateway`].
//!
//! Routes are not stored: they are derived from the addresses the way
//! Linux's fib_add_ifaddr (IPv4) and addrconf (IPv6) derive them, plus the
//! default routes, so they can never disagree with the addresses. They are
//! listed in the order Linux dumps them: table main (254) before table
//! local (255), each in its trie's order.
//!
//! Lock order: the table's lock is a leaf; nothing else is locked or
//! called while it is held.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

// Interface flags (IFF_*), as SIOCGIFFLAGS and ifi_flags report them.
pub const IFF_UP: u32 = 0x1;
pub const IFF_BROADCAST: u32 = 0x2;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_POINTOPOINT: u32 = 0x10;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_NOARP: u32 = 0x80;
pub const IFF_MULTICAST: u32 = 0x1000;
/// Only in ifi_flags (netlink): SIOCGIFFLAGS's 16 bits cannot hold it.
pub const IFF_LOWER_UP: u32 = 0x10000;

// Hardware types (ARPHRD_*).
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPHRD_LOOPBACK: u16 = 772;

// RFC 2863 operational states (IF_OPER_*).
pub const IF_OPER_UNKNOWN: u8 = 0;
pub const IF_OPER_DOWN: u8 = 2;
pub const IF_OPER_UP: u8 = 6;

// Address and route scopes (RT_SCOPE_*).
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_SITE: u8 = 200;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_HOST: u8 = 254;

// Address flags (IFA_F_*).
pub const IFA_F_NODAD: u32 = 0x02;
pub const IFA_F_PERMANENT: u32 = 0x80;
pub const IFA_F_NOPREFIXROUTE: u32 = 0x200;

// Routing tables, route types and origins.
pub const RT_TABLE_MAIN: u32 = 254;
pub const RT_TABLE_LOCAL: u32 = 255;
pub const RTN_UNICAST: u8 = 1;
pub const RTN_LOCAL: u8 = 2;
pub const RTN_BROADCAST: u8 = 3;
pub const RTN_MULTICAST: u8 = 5;
pub const RTPROT_KERNEL: u8 = 2;
pub const RTPROT_BOOT: u8 = 3;

/// Metrics Linux gives IPv6 prefix routes and default routes.
const IP6_RT_PRIO_ADDRCONF: u32 = 256;
const IP6_RT_PRIO_USER: u32 = 1024;

/// Traffic counters, as /proc/net/dev and IFLA_STATS report them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
    pub multicast: u64,
}

/// An IPv4 address of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr4 {
    /// The local address (IFA_LOCAL).
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// The broadcast address when the interface has one (IFA_BROADCAST).
    pub broadcast: Option<Ipv4Addr>,
    /// IFA_LABEL: the interface's name, or an alias ("eth0:1").
    pub label: String,
    pub scope: u8,
    pub flags: u32,
}

impl Addr4 {
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask4(self.prefix_len))
    }

    /// The network's address (the address with the host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & mask4(self.prefix_len))
    }
}

/// An IPv6 address of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr6 {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
    /// RT_SCOPE_* (netlink's ifa_scope).
    pub scope: u8,
    pub flags: u32,
}

impl Addr6 {
    /// The scope as /proc/net/if_inet6 prints it (IPV6_ADDR_* scope bits).
    pub fn proc_scope(&self) -> u8 {
        match self.scope {
            RT_SCOPE_HOST => 0x10,
            RT_SCOPE_LINK => 0x20,
            RT_SCOPE_SITE => 0x40,
            _ => 0x00,
        }
    }
}

/// One network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub index: i32,
    pub name: String,
    /// IFF_* with IFF_LOWER_UP; SIOCGIFFLAGS reports the low 16 bits.
    pub flags: u32,
    pub mtu: u32,
    /// IFLA_MIN_MTU / IFLA_MAX_MTU (0 for lo, as Linux).
    pub min_mtu: u32,
    pub max_mtu: u32,
    pub txqlen: u32,
    /// ARPHRD_*.
    pub hw_type: u16,
    pub mac: [u8; 6],
    pub broadcast_mac: [u8; 6],
    pub qdisc: String,
    /// IF_OPER_*.
    pub operstate: u8,
    pub v4: Vec<Addr4>,
    pub v6: Vec<Addr6>,
    pub stats: Counters,
}

/// lo's index.
pub const LOOPBACK_INDEX: i32 = 1;

impl Interface {
    /// `lo` as a fresh network namespace has it once it is up.
    pub fn loopback() -> Interface {
        Interface {
            index: LOOPBACK_INDEX,
            name: "lo".into(),
            flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP,
            mtu: 65536,
            min_mtu: 0,
            max_mtu: 0,
            txqlen: 1000,
            hw_type: ARPHRD_LOOPBACK,
            mac: [0; 6],
            broadcast_mac: [0; 6],
            qdisc: "noqueue".into(),
            operstate: IF_OPER_UNKNOWN,
            v4: vec![Addr4 {
                addr: Ipv4Addr::LOCALHOST,
                prefix_len: 8,
                broadcast: None,
                label: "lo".into(),
                scope: RT_SCOPE_HOST,
                flags: IFA_F_PERMANENT,
            }],
            v6: vec![Addr6 {
                addr: Ipv6Addr::LOCALHOST,
                prefix_len: 128,
                scope: RT_SCOPE_HOST,
                flags: IFA_F_PERMANENT,
            }],
            stats: Counters::default(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    pub fn is_loopback(&self) -> bool {
        self.flags & IFF_LOOPBACK != 0
    }
}

/// A route of table main or local, IPv4 or IPv6 (by `dst`'s family).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// RT_TABLE_MAIN or RT_TABLE_LOCAL.
    pub table: u32,
    /// RTN_*.
    pub kind: u8,
    pub dst: IpAddr,
    pub dst_len: u8,
    pub scope: u8,
    /// RTPROT_*.
    pub protocol: u8,
    pub prefsrc: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    /// The output interface's index.
    pub oif: i32,
    /// RTA_PRIORITY (IPv6's metric; 0 for the IPv4 routes derived here).
    pub metric: u32,
}

impl Route {
    /// Whether `addr` falls inside this route's destination prefix.
    pub fn covers(&self, addr: IpAddr) -> bool {
        match (self.dst, addr) {
            (IpAddr::V4(d), IpAddr::V4(a)) => {
                let m = mask4(self.dst_len);
                u32::from(d) & m == u32::from(a) & m
            }
            (IpAddr::V6(d), IpAddr::V6(a)) => {
                let m = mask6(self.dst_len);
                u128::from(d) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

struct Table {
    ifaces: Vec<Interface>,
    gateway4: Option<(Ipv4Addr, i32)>,
    gateway6: Option<(Ipv6Addr, i32)>,
}

/// The interface table of one sandbox.
pub struct Interfaces {
    table: RwLock<Table>,
}

impl Interfaces {
    /// Only `lo`.
    pub fn loopback_only() -> Interfaces {
        Interfaces { table: RwLock::new(Table { ifaces: vec![Interface::loopback()], gateway4: None, gateway6: None }) }
    }

    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|_| vfs::poisoned())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|_| vfs::poisoned())
    }

    /// Add an interface (set up by the sandbox, never by the guest).
    /// Refused when its index or name is taken.
    pub fn add(&self, iface: Interface) -> Result<(), String> {
        let mut t = self.write();
        if t.ifaces.iter().any(|i| i.index == iface.index || i.name == iface.name) {
            return Err(format!("interface {} (index {}) already exists", iface.name, iface.index));
        }
        t.ifaces.push(iface);
        t.ifaces.sort_by_key(|i| i.index);
        Ok(())
    }

    /// The default route of `gw`'s family, through interface `index`.
    pub fn set_gateway(&self, gw: IpAddr, index: i32) {
        let mut t = self.write();
        match gw {
            IpAddr::V4(a) => t.gateway4 = Some((a, index)),
            IpAddr::V6(a) => t.gateway6 = Some((a, index)),
        }
    }

    /// Update the counters of interface `index` (no-op if there is none).
    pub fn count(&self, index: i32, f: impl FnOnce(&mut Counters)) {
        let mut t = self.write();
        if let Some(i) = t.ifaces.iter_mut().find(|i| i.index == index) {
            f(&mut i.stats);
        }
    }

    /// Every interface, by index.
    pub fn list(&self) -> Vec<Interface> {
        self.read().ifaces.clone()
    }

    pub fn by_index(&self, index: i32) -> Option<Interface> {
        self.read().ifaces.iter().find(|i| i.index == index).cloned()
    }

    pub fn by_name(&self, name: &[u8]) -> Option<Interface> {
        self.read().ifaces.iter().find(|i| i.name.as_bytes() == name).cloned()
    }

    /// The IPv4 routes of tables main and local, in Linux's dump order.
    pub fn routes4(&self) -> Vec<Route> {
        let t = self.read();
        let mut v = Vec::new();
        for i in t.ifaces.iter().filter(|i| i.is_up()) {
            for a in &i.v4 {
                derive4(i, a, &mut v);
            }
        }
        if let Some((gw, oif)) = t.gateway4 {
            v.push(Route {
                table: RT_TABLE_MAIN,
                kind: RTN_UNICAST,
                dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                dst_len: 0,
                scope: RT_SCOPE_UNIVERSE,
                protocol: RTPROT_BOOT,
                prefsrc: None,
                gateway: Some(IpAddr::V4(gw)),
                oif,
                metric: 0,
            });
        }
        dedup(&mut v);
        v.sort_by(|a, b| a.table.cmp(&b.table).then_with(|| trie4_order(a, b)));
        v
    }

    /// The IPv6 routes of tables main and local, in Linux's dump order.
    pub fn routes6(&self) -> Vec<Route> {
        let t = self.read();
        let mut v = Vec::new();
        for i in t.ifaces.iter().filter(|i| i.is_up()) {
            for a in &i.v6 {
                derive6(i, a, &mut v);
            }
            if !i.is_loopback() && i.flags & IFF_MULTICAST != 0 {
                v.push(Route {
                    table: RT_TABLE_LOCAL,
                    kind: RTN_MULTICAST,
                    dst: IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)),
                    dst_len: 8,
                    scope: RT_SCOPE_UNIVERSE,
                    protocol: RTPROT_KERNEL,
                    prefsrc: None,
                    gateway: None,
                    oif: i.index,
                    metric: IP6_RT_PRIO_ADDRCONF,
                });
            }
        }
        if let Some((gw, oif)) = t.gateway6 {
            v.push(Route {
                table: RT_TABLE_MAIN,
                kind: RTN_UNICAST,
                dst: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                dst_len: 0,
                scope: RT_SCOPE_UNIVERSE,
                protocol: RTPROT_BOOT,
                prefsrc: None,
                gateway: Some(IpAddr::V6(gw)),
                oif,
                metric: IP6_RT_PRIO_USER,
            });
        }
        dedup(&mut v);
        v.sort_by(|a, b| a.table.cmp(&b.table).then_with(|| trie6_order(a, b)));
        v
    }

    /// The route a packet to `dst` takes: the longest match of table
    /// local, else of table main (Linux's default rules), or None
    /// (ENETUNREACH).
    pub fn lookup(&self, dst: IpAddr) -> Option<Route> {
        let routes = if dst.is_ipv4() { self.routes4() } else { self.routes6() };
        [RT_TABLE_LOCAL, RT_TABLE_MAIN].iter().find_map(|&table| {
            routes.iter().filter(|r| r.table == table && r.covers(dst)).max_by_key(|r| r.dst_len).cloned()
        })
    }
}

fn mask4(len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => u32::MAX,
        l => u32::MAX << (32 - u32::from(l)),
    }
}

fn mask6(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - u32::from(l)),
    }
}

/// fib_add_ifaddr: the local route of the address, the prefix route
/// (local for a loopback device, main otherwise) and the broadcast routes.
fn derive4(i: &Interface, a: &Addr4, v: &mut Vec<Route>) {
    let src = Some(IpAddr::V4(a.addr));
    let route = |table, kind, dst: Ipv4Addr, dst_len, scope| Route {
        table,
        kind,
        dst: IpAddr::V4(dst),
        dst_len,
        scope,
        protocol: RTPROT_KERNEL,
        prefsrc: src,
        gateway: None,
        oif: i.index,
        metric: 0,
    };
    v.push(route(RT_TABLE_LOCAL, RTN_LOCAL, a.addr, 32, RT_SCOPE_HOST));
    let prefix = a.network();
    if !prefix.is_unspecified() && (prefix != a.addr || a.prefix_len < 32) {
        if i.is_loopback() {
            v.push(route(RT_TABLE_LOCAL, RTN_LOCAL, prefix, a.prefix_len, RT_SCOPE_HOST));
        } else {
            v.push(route(RT_TABLE_MAIN, RTN_UNICAST, prefix, a.prefix_len, RT_SCOPE_LINK));
        }
        if a.prefix_len < 31 {
            let brd = Ipv4Addr::from(u32::from(prefix) | !mask4(a.prefix_len));
            v.push(route(RT_TABLE_LOCAL, RTN_BROADCAST, brd, 32, RT_SCOPE_LINK));
        }
    }
    if let Some(b) = a.broadcast.filter(|b| !b.is_broadcast() && !b.is_unspecified()) {
        v.push(route(RT_TABLE_LOCAL, RTN_BROADCAST, b, 32, RT_SCOPE_LINK));
    }
}

/// addrconf: the local route of every address, and the prefix route of
/// the addresses of other devices than lo.
fn derive6(i: &Interface, a: &Addr6, v: &mut Vec<Route>) {
    v.push(Route {
        table: RT_TABLE_LOCAL,
        kind: RTN_LOCAL,
        dst: IpAddr::V6(a.addr),
        dst_len: 128,
        scope: RT_SCOPE_UNIVERSE,
        protocol: RTPROT_KERNEL,
        prefsrc: None,
        gateway: None,
        oif: i.index,
        metric: 0,
    });
    if !i.is_loopback() && a.prefix_len < 128 && a.flags & IFA_F_NOPREFIXROUTE == 0 {
        let net = Ipv6Addr::from(u128::from(a.addr) & mask6(a.prefix_len));
        v.push(Route {
            table: RT_TABLE_MAIN,
            kind: RTN_UNICAST,
            dst: IpAddr::V6(net),
            dst_len: a.prefix_len,
            scope: RT_SCOPE_UNIVERSE,
            protocol: RTPROT_KERNEL,
            prefsrc: None,
            gateway: None,
            oif: i.index,
            metric: IP6_RT_PRIO_ADDRCONF,
        });
    }
}

/// One route per (table, type, destination): a second address in the
/// same prefix adds no second prefix route.
fn dedup(v: &mut Vec<Route>) {
    let mut seen: Vec<(u32, u8, IpAddr, u8)> = Vec::new();
    v.retain(|r| {
        let key = (r.table, r.kind, r.dst, r.dst_len);
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// fib_trie's walk: keys ascending, and the longer prefix first among
/// routes of the same key.
fn trie4_order(a: &Route, b: &Route) -> Ordering {
    bits(a.dst).cmp(&bits(b.dst)).then(b.dst_len.cmp(&a.dst_len))
}

/// fib6's walk is post-order: a prefix comes after the more specific
/// prefixes inside it; disjoint prefixes go by address.
fn trie6_order(a: &Route, b: &Route) -> Ordering {
    let common = a.dst_len.min(b.dst_len);
    let m = mask6(common);
    let (x, y) = (bits(a.dst) & m, bits(b.dst) & m);
    if x != y {
        return x.cmp(&y);
    }
    b.dst_len.cmp(&a.dst_len).then(bits(a.dst).cmp(&bits(b.dst)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth0() -> Interface {
        Interface {
            index: 2,
            name: "eth0".into(),
            flags: IFF_UP | IFF_BROADCAST | IFF_MULTICAST | IFF_RUNNING | IFF_LOWER_UP,
            mtu: 1500,
            min_mtu: 68,
            max_mtu: 65535,
            txqlen: 1000,
            hw_type: ARPHRD_ETHER,
            mac: [2, 0, 0, 0, 0, 1],
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
            v6: vec![Addr6 {
                addr: "fd00::2".parse().unwrap(),
                prefix_len: 64,
                scope: RT_SCOPE_UNIVERSE,
                flags: IFA_F_PERMANENT,
            }],
            stats: Counters::default(),
        }
    }

    fn show(r: &Route) -> String {
        format!("{} {} {}/{} oif {}", r.table, r.kind, r.dst, r.dst_len, r.oif)
    }

    #[test]
    fn loopback_routes_are_linuxs() {
        let t = Interfaces::loopback_only();
        let v4: Vec<String> = t.routes4().iter().map(show).collect();
        assert_eq!(v4, ["255 2 127.0.0.0/8 oif 1", "255 2 127.0.0.1/32 oif 1", "255 3 127.255.255.255/32 oif 1"]);
        let v6: Vec<String> = t.routes6().iter().map(show).collect();
        assert_eq!(v6, ["255 2 ::1/128 oif 1"]);
        assert!(t.routes4().iter().all(|r| r.prefsrc == Some(IpAddr::V4(Ipv4Addr::LOCALHOST))));
    }

    #[test]
    fn eth0_routes_and_lookups() {
        let t = Interfaces::loopback_only();
        t.add(eth0()).unwrap();
        assert!(t.add(eth0()).is_err());
        t.set_gateway("192.0.2.1".parse().unwrap(), 2);
        t.set_gateway("fd00::1".parse().unwrap(), 2);
        let v4: Vec<String> = t.routes4().iter().map(show).collect();
        assert_eq!(
            v4,
            [
                "254 1 0.0.0.0/0 oif 2",
                "254 1 192.0.2.0/24 oif 2",
                "255 2 127.0.0.0/8 oif 1",
                "255 2 127.0.0.1/32 oif 1",
                "255 3 127.255.255.255/32 oif 1",
                "255 2 192.0.2.2/32 oif 2",
                "255 3 192.0.2.255/32 oif 2",
            ]
        );
        let v6: Vec<String> = t.routes6().iter().map(show).collect();
        assert_eq!(
            v6,
            [
                "254 1 fd00::/64 oif 2",
                "254 1 ::/0 oif 2",
                "255 2 ::1/128 oif 1",
                "255 2 fd00::2/128 oif 2",
                "255 5 ff00::/8 oif 2"
            ]
        );
        let r = t.lookup("127.3.4.5".parse().unwrap()).unwrap();
        assert_eq!((r.kind, r.dst_len, r.oif), (RTN_LOCAL, 8, 1));
        let r = t.lookup("8.8.8.8".parse().unwrap()).unwrap();
        assert_eq!(r.gateway, Some("192.0.2.1".parse().unwrap()));
        let r = t.lookup("fd00::7".parse().unwrap()).unwrap();
        assert_eq!((r.table, r.dst_len), (RT_TABLE_MAIN, 64));
        assert_eq!(Interfaces::loopback_only().lookup("8.8.8.8".parse().unwrap()), None);
        assert_eq!(t.by_name(b"eth0").map(|i| i.index), Some(2));
        assert_eq!(t.by_index(1).map(|i| i.name), Some("lo".to_string()));
        assert!(t.by_name(b"eth").is_none());
    }

    #[test]
    fn masks() {
        assert_eq!(mask4(0), 0);
        assert_eq!(mask4(8), 0xff00_0000);
        assert_eq!(mask4(40), u32::MAX);
        assert_eq!(mask6(128), u128::MAX);
        assert_eq!(Interface::loopback().v4[0].netmask(), Ipv4Addr::new(255, 0, 0, 0));
    }
}
