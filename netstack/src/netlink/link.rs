//! RTM_NEWLINK messages: an interface as `ip link` and getifaddrs see it
//! (rtnl_fill_ifinfo), and as IPv6 sees it (inet6_fill_ifinfo, the
//! answer to a link dump of family AF_INET6, which `ip -6 addr` asks for).
//! The per-protocol settings (IFLA_AF_SPEC) are a fresh namespace's
//! defaults.

use super::msg::*;
use super::route::Ctx;
use crate::iface::{Interface, IFF_LOWER_UP, IFF_UP};
use abi::socket::{AF_INET, AF_INET6};
use abi::Errno;

const IFLA_PROTINFO: u16 = 12;
const IFLA_AF_SPEC: u16 = 26;
const IFLA_INET_CONF: u16 = 1;
const IFLA_INET6_FLAGS: u16 = 1;
const IFLA_INET6_CONF: u16 = 2;
const IFLA_INET6_STATS: u16 = 3;
const IFLA_INET6_CACHEINFO: u16 = 5;
const IFLA_INET6_ICMP6STATS: u16 = 6;
const IFLA_INET6_TOKEN: u16 = 7;
const IFLA_INET6_ADDR_GEN_MODE: u16 = 8;
/// IF_READY: IPv6 is up on the interface.
const IF_READY: u32 = 0x8000_0000;
/// IPSTATS_MIB_MAX and ICMP6_MIB_MAX: the lengths of the statistics
/// arrays (whose first element is that length).
const IPSTATS_MIB_MAX: u64 = 38;
const ICMP6_MIB_MAX: u64 = 7;

/// net.ipv4.conf.<dev>.* (IPV4_DEVCONF_*, 1-based), for a device that is
/// not lo: forwarding and the like off, accept_redirects, secure_redirects,
/// send_redirects, shared_media on; igmp versions; arp_evict_nocarrier.
const INET_CONF: [u32; 33] =
    [0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10000, 1000, 0, 0, 0, 0, 1];
/// Where lo differs: NOXFRM and NOPOLICY on.
const INET_CONF_LO: [(usize, u32); 2] = [(14, 1), (15, 1)];

/// net.ipv6.conf.<dev>.* (DEVCONF_*), for a device that is not lo.
const INET6_CONF: [i32; 60] = [
    0, 64, 0, 1, 1, 1, 1, -1, 4000, 1000, 0, 604800, 86400, 3, 600, 16, 0, 1, 1, 1, 60000, 0, 0, 0, 0, 0, 0, 1, 0, 0,
    10000, 1000, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 3600000, 0, 0, 1, 0, 0, 0, 0, 0, 1024, 0, 65535, -1, 1, 0, 0, 0,
];
/// DEVCONF_MTU6, and where lo differs: no DAD (use_tempaddr and
/// accept_dad -1).
const DEVCONF_MTU6: usize = 2;
const INET6_CONF_LO: [(usize, i32); 2] = [(10, -1), (27, -1)];

fn i32s(v: impl IntoIterator<Item = i32>) -> Vec<u8> {
    v.into_iter().flat_map(i32::to_ne_bytes).collect()
}

fn u64s(v: impl IntoIterator<Item = u64>) -> Vec<u8> {
    v.into_iter().flat_map(u64::to_ne_bytes).collect()
}

/// The IPv6 attributes of an interface (inet6_fill_ifla6_attrs).
fn inet6_info(m: &mut Msg, i: &Interface) {
    m.u32(IFLA_INET6_FLAGS, if i.flags & IFF_UP != 0 { IF_READY } else { 0 });
    // struct ifla_cacheinfo: max_reasm_len, tstamp, reachable_time, retrans_time.
    m.attr(IFLA_INET6_CACHEINFO, &i32s([65535, 0, 30000, 1000]));
    let mut conf = INET6_CONF;
    conf[DEVCONF_MTU6] = i.mtu as i32;
    if i.is_loopback() {
        for (at, v) in INET6_CONF_LO {
            conf[at] = v;
        }
    }
    m.attr(IFLA_INET6_CONF, &i32s(conf));
    m.attr(IFLA_INET6_STATS, &u64s((0..IPSTATS_MIB_MAX).map(|n| if n == 0 { IPSTATS_MIB_MAX } else { 0 })));
    m.attr(IFLA_INET6_ICMP6STATS, &u64s((0..ICMP6_MIB_MAX).map(|n| if n == 0 { ICMP6_MIB_MAX } else { 0 })));
    m.attr(IFLA_INET6_TOKEN, &[0; 16]);
    // IN6_ADDR_GEN_MODE_EUI64.
    m.u8(IFLA_INET6_ADDR_GEN_MODE, 0);
}

fn ifinfomsg(m: &mut Msg, family: i32, i: &Interface) {
    let mut hdr = [0u8; IFINFOMSG_LEN];
    hdr[0] = family as u8;
    hdr[2..4].copy_from_slice(&i.hw_type.to_ne_bytes());
    hdr[4..8].copy_from_slice(&i.index.to_ne_bytes());
    hdr[8..12].copy_from_slice(&i.flags.to_ne_bytes());
    m.push(&hdr);
}

/// The interface as rtnl_fill_ifinfo describes it.
pub fn link_msg(i: &Interface, flags: u16, seq: u32, portid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWLINK, flags, seq, portid);
    ifinfomsg(&mut m, 0, i);
    m.str(IFLA_IFNAME, &i.name);
    m.u32(IFLA_TXQLEN, i.txqlen);
    m.u8(IFLA_OPERSTATE, i.operstate);
    m.u8(IFLA_LINKMODE, 0);
    m.u32(IFLA_MTU, i.mtu);
    m.u32(IFLA_MIN_MTU, i.min_mtu);
    m.u32(IFLA_MAX_MTU, i.max_mtu);
    m.u32(IFLA_GROUP, 0);
    m.u32(IFLA_PROMISCUITY, 0);
    m.u32(IFLA_ALLMULTI, 0);
    m.u32(IFLA_NUM_TX_QUEUES, 1);
    m.u32(IFLA_GSO_MAX_SEGS, 65535);
    m.u32(IFLA_GSO_MAX_SIZE, 65536);
    m.u32(IFLA_GRO_MAX_SIZE, 65536);
    m.u32(IFLA_GSO_IPV4_MAX_SIZE, 65536);
    m.u32(IFLA_GRO_IPV4_MAX_SIZE, 65536);
    m.u32(IFLA_TSO_MAX_SIZE, 524280);
    m.u32(IFLA_TSO_MAX_SEGS, 65535);
    m.u32(IFLA_NUM_RX_QUEUES, 1);
    m.u8(IFLA_CARRIER, u8::from(i.flags & IFF_LOWER_UP != 0));
    m.u32(IFLA_CARRIER_CHANGES, 0);
    m.u8(IFLA_PROTO_DOWN, 0);
    m.attr(IFLA_ADDRESS, &i.mac);
    m.attr(IFLA_BROADCAST, &i.broadcast_mac);
    // struct rtnl_link_stats64 (25 counters) and rtnl_link_stats (24):
    // packets, bytes, errors, dropped and multicast; the rest zero.
    let s = &i.stats;
    let head = [
        s.rx_packets,
        s.tx_packets,
        s.rx_bytes,
        s.tx_bytes,
        s.rx_errors,
        s.tx_errors,
        s.rx_dropped,
        s.tx_dropped,
        s.multicast,
    ];
    let counter = |n: usize| head.get(n).copied().unwrap_or(0);
    m.attr(IFLA_STATS64, &u64s((0..25).map(counter)));
    let s32: Vec<u8> = (0..24).flat_map(|n| (counter(n) as u32).to_ne_bytes()).collect();
    m.attr(IFLA_STATS, &s32);
    m.str(IFLA_QDISC, &i.qdisc);
    let spec = m.nest(IFLA_AF_SPEC);
    let inet = m.nest(AF_INET as u16);
    let mut conf = INET_CONF;
    if i.is_loopback() {
        for (at, v) in INET_CONF_LO {
            conf[at] = v;
        }
    }
    let conf: Vec<u8> = conf.iter().flat_map(|v| v.to_ne_bytes()).collect();
    m.attr(IFLA_INET_CONF, &conf);
    m.end_nest(inet);
    let inet6 = m.nest(AF_INET6 as u16);
    inet6_info(&mut m, i);
    m.end_nest(inet6);
    m.end_nest(spec);
    // struct rtnl_link_ifmap: no memory, I/O port or IRQ.
    m.attr(IFLA_MAP, &[0; 32]);
    m.finish()
}

/// The interface as IPv6 describes it (inet6_fill_ifinfo).
fn link6_msg(i: &Interface, flags: u16, seq: u32, portid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWLINK, flags, seq, portid);
    ifinfomsg(&mut m, AF_INET6, i);
    m.str(IFLA_IFNAME, &i.name);
    m.attr(IFLA_ADDRESS, &i.mac);
    m.u32(IFLA_MTU, i.mtu);
    m.u8(IFLA_OPERSTATE, i.operstate);
    let info = m.nest(IFLA_PROTINFO);
    inet6_info(&mut m, i);
    m.end_nest(info);
    m.finish()
}

/// A link dump: every interface (IPv6's view for AF_INET6; a bridge's
/// ports, none here, for AF_BRIDGE).
pub fn dump(ctx: &Ctx, req: &Request, family: i32) -> Vec<Vec<u8>> {
    let fill = match family {
        AF_INET6 => link6_msg,
        f if f == i32::from(AF_BRIDGE) => return Vec::new(),
        _ => link_msg,
    };
    ctx.ifaces.list().iter().map(|i| fill(i, NLM_F_MULTI, req.seq, ctx.portid)).collect()
}

/// RTM_GETLINK for one interface, by ifi_index or IFLA_IFNAME.
pub fn get(ctx: &Ctx, req: &Request) -> Result<Vec<u8>, Errno> {
    if req.payload.len() < IFINFOMSG_LEN {
        return Err(Errno::EINVAL);
    }
    let index = u32_at(req.payload, 4) as i32;
    let iface = if index > 0 {
        ctx.ifaces.by_index(index)
    } else if let Some((_, name)) = attrs_after(req.payload, IFINFOMSG_LEN).find(|(t, _)| *t == IFLA_IFNAME) {
        ctx.ifaces.by_name(attr_str(name))
    } else {
        return Err(Errno::EINVAL);
    };
    let iface = iface.ok_or(Errno::ENODEV)?;
    Ok(link_msg(&iface, 0, req.seq, ctx.portid))
}
