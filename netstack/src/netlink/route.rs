//! NETLINK_ROUTE requests: what the kernel side of rtnetlink answers,
//! read from the interface table. Only GET requests are served; every
//! change (NEW/DEL/SET) is EPERM, since the sandbox's interfaces are set
//! up by the sandbox, not by its guest.
//!
//! Messages carry the attributes iproute2, glibc (getifaddrs,
//! if_nameindex) and Go's net package read, in Linux's order.

use super::link;
use super::msg::*;
use crate::iface::{
    Addr4, Addr6, Interface, Interfaces, Route, LOOPBACK_INDEX, RTN_BROADCAST, RTN_LOCAL, RT_TABLE_LOCAL, RT_TABLE_MAIN,
};
use abi::socket::{AF_INET, AF_INET6};
use abi::Errno;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Who asked, for the answers' headers and RTA_UID.
pub struct Ctx<'a> {
    pub ifaces: &'a Interfaces,
    /// The asking socket's port id (nlmsg_pid of every answer).
    pub portid: u32,
    /// NETLINK_GET_STRICT_CHK: dump requests' headers filter.
    pub strict: bool,
    pub uid: u32,
}

/// What one request produced.
pub enum Answer {
    /// Nothing (a message too short to name a family, which Linux skips).
    Nothing,
    /// One message, queued as its own datagram.
    Reply(Vec<u8>),
    /// The messages of a dump, without its NLMSG_DONE.
    Dump(Vec<Vec<u8>>),
}

const RTM_BASE: u16 = 16;
/// The GET kind of a message type ((type - RTM_BASE) & 3).
const KIND_GET: u16 = 2;
/// INFINITY_LIFE_TIME: a permanent address's lifetimes.
const FOREVER: u32 = u32::MAX;

/// Answer one request (rtnetlink_rcv_msg).
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Answer, Errno> {
    if !(RTM_BASE..=RTM_MAX).contains(&req.typ) {
        return Err(Errno::EOPNOTSUPP);
    }
    let Some(&family) = req.payload.first() else { return Ok(Answer::Nothing) };
    if (req.typ - RTM_BASE) & 3 != KIND_GET {
        return Err(Errno::EPERM);
    }
    let dump = req.flags & NLM_F_DUMP != 0;
    let family = i32::from(family);
    match (req.typ, dump) {
        (RTM_GETLINK, true) => Ok(Answer::Dump(link::dump(ctx, req, family))),
        (RTM_GETLINK, false) => link::get(ctx, req).map(Answer::Reply),
        (RTM_GETADDR, true) => Ok(Answer::Dump(addr_dump(ctx, req, family))),
        (RTM_GETADDR, false) if family == AF_INET6 => addr6_get(ctx, req).map(Answer::Reply),
        (RTM_GETROUTE, true) => Ok(Answer::Dump(route_dump(ctx, req, family))),
        (RTM_GETROUTE, false) if family == AF_INET || family == AF_INET6 => {
            route_get(ctx, req, family).map(Answer::Reply)
        }
        // No neighbour table is kept (Linux lists lo's NOARP entries
        // once traffic made them; nothing reads them).
        (RTM_GETNEIGH, true) => Ok(Answer::Dump(Vec::new())),
        (RTM_GETRULE, true) => Ok(Answer::Dump(rule_dump(ctx, req, family))),
        (RTM_GETNETCONF, true) => Ok(Answer::Dump(netconf_dump(ctx, req, family))),
        (RTM_GETNETCONF, false) if family == AF_INET || family == AF_INET6 => {
            netconf_get(ctx, req, family).map(Answer::Reply)
        }
        _ => Err(Errno::EOPNOTSUPP),
    }
}

fn is_v4(family: i32) -> bool {
    family != AF_INET6
}

fn is_v6(family: i32) -> bool {
    family != AF_INET
}

// ---------------------------------------------------------------------------
// Addresses

fn ifaddrmsg(m: &mut Msg, family: i32, prefix_len: u8, flags: u32, scope: u8, index: i32) {
    let mut hdr = [family as u8, prefix_len, flags as u8, scope, 0, 0, 0, 0];
    hdr[4..8].copy_from_slice(&index.to_ne_bytes());
    m.push(&hdr);
}

fn cacheinfo() -> [u8; 16] {
    let mut c = [0u8; 16];
    c[..4].copy_from_slice(&FOREVER.to_ne_bytes());
    c[4..8].copy_from_slice(&FOREVER.to_ne_bytes());
    c
}

fn addr4_msg(i: &Interface, a: &Addr4, flags: u16, seq: u32, portid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWADDR, flags, seq, portid);
    ifaddrmsg(&mut m, AF_INET, a.prefix_len, a.flags, a.scope, i.index);
    m.attr(IFA_ADDRESS, &a.addr.octets());
    m.attr(IFA_LOCAL, &a.addr.octets());
    if let Some(b) = a.broadcast {
        m.attr(IFA_BROADCAST, &b.octets());
    }
    m.str(IFA_LABEL, &a.label);
    m.u32(IFA_FLAGS, a.flags);
    m.attr(IFA_CACHEINFO, &cacheinfo());
    m.finish()
}

fn addr6_msg(i: &Interface, a: &Addr6, flags: u16, seq: u32, portid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWADDR, flags, seq, portid);
    ifaddrmsg(&mut m, AF_INET6, a.prefix_len, a.flags, a.scope, i.index);
    m.attr(IFA_ADDRESS, &a.addr.octets());
    m.attr(IFA_CACHEINFO, &cacheinfo());
    m.u32(IFA_FLAGS, a.flags);
    m.finish()
}

/// Every address of the family asked (both for any other family), IPv4
/// first; with NETLINK_GET_STRICT_CHK a nonzero ifa_index picks one
/// interface.
fn addr_dump(ctx: &Ctx, req: &Request, family: i32) -> Vec<Vec<u8>> {
    let only = if ctx.strict && req.payload.len() >= IFADDRMSG_LEN { u32_at(req.payload, 4) as i32 } else { 0 };
    let ifaces: Vec<Interface> = ctx.ifaces.list().into_iter().filter(|i| only == 0 || i.index == only).collect();
    let mut out = Vec::new();
    if is_v4(family) {
        for i in &ifaces {
            out.extend(i.v4.iter().map(|a| addr4_msg(i, a, NLM_F_MULTI, req.seq, ctx.portid)));
        }
    }
    if is_v6(family) {
        for i in &ifaces {
            out.extend(i.v6.iter().map(|a| addr6_msg(i, a, NLM_F_MULTI, req.seq, ctx.portid)));
        }
    }
    out
}

/// RTM_GETADDR for one IPv6 address (IFA_ADDRESS or IFA_LOCAL).
fn addr6_get(ctx: &Ctx, req: &Request) -> Result<Vec<u8>, Errno> {
    if req.payload.len() < IFADDRMSG_LEN {
        return Err(Errno::EINVAL);
    }
    let index = u32_at(req.payload, 4) as i32;
    let want = attrs_after(req.payload, IFADDRMSG_LEN)
        .filter(|(t, _)| *t == IFA_ADDRESS || *t == IFA_LOCAL)
        .find_map(|(_, d)| <[u8; 16]>::try_from(d.get(..16)?).ok())
        .map(Ipv6Addr::from)
        .ok_or(Errno::EINVAL)?;
    for i in ctx.ifaces.list().iter().filter(|i| index == 0 || i.index == index) {
        if let Some(a) = i.v6.iter().find(|a| a.addr == want) {
            return Ok(addr6_msg(i, a, 0, req.seq, ctx.portid));
        }
    }
    Err(Errno::EADDRNOTAVAIL)
}

// ---------------------------------------------------------------------------
// Routes

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

#[allow(clippy::too_many_arguments)]
fn rtmsg(
    m: &mut Msg,
    family: i32,
    dst_len: u8,
    src_len: u8,
    table: u32,
    protocol: u8,
    scope: u8,
    kind: u8,
    flags: u32,
) {
    let mut hdr = [0u8; RTMSG_LEN];
    hdr[0] = family as u8;
    hdr[1] = dst_len;
    hdr[2] = src_len;
    // RT_TABLE_COMPAT for ids above a byte (RTA_TABLE has the whole id).
    hdr[4] = u8::try_from(table).unwrap_or(252);
    hdr[5] = protocol;
    hdr[6] = scope;
    hdr[7] = kind;
    hdr[8..12].copy_from_slice(&flags.to_ne_bytes());
    m.push(&hdr);
}

fn route4_msg(r: &Route, seq: u32, portid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWROUTE, NLM_F_MULTI, seq, portid);
    rtmsg(&mut m, AF_INET, r.dst_len, 0, r.table, r.protocol, r.scope, r.kind, 0);
    m.u32(RTA_TABLE, r.table);
    if r.dst_len > 0 {
        m.attr(RTA_DST, &ip_bytes(r.dst));
    }
    if r.metric != 0 {
        m.u32(RTA_PRIORITY, r.metric);
    }
    if let Some(s) = r.prefsrc {
        m.attr(RTA_PREFSRC, &ip_bytes(s));
    }
    if let Some(g) = r.gateway {
        m.attr(RTA_GATEWAY, &ip_bytes(g));
    }
    m.u32(RTA_OIF, r.oif as u32);
    m.finish()
}

fn route6_msg(r: &Route, seq: u32, portid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWROUTE, NLM_F_MULTI, seq, portid);
    rtmsg(&mut m, AF_INET6, r.dst_len, 0, r.table, r.protocol, r.scope, r.kind, 0);
    m.u32(RTA_TABLE, r.table);
    if r.dst_len > 0 {
        m.attr(RTA_DST, &ip_bytes(r.dst));
    }
    m.u32(RTA_PRIORITY, r.metric);
    if let Some(g) = r.gateway {
        m.attr(RTA_GATEWAY, &ip_bytes(g));
    }
    m.u32(RTA_OIF, r.oif as u32);
    m.attr(RTA_CACHEINFO, &[0; 32]);
    // ICMPV6_ROUTER_PREF_MEDIUM.
    m.u8(RTA_PREF, 0);
    m.finish()
}

fn route_dump(ctx: &Ctx, req: &Request, family: i32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if is_v4(family) {
        out.extend(ctx.ifaces.routes4().iter().map(|r| route4_msg(r, req.seq, ctx.portid)));
    }
    if is_v6(family) {
        out.extend(ctx.ifaces.routes6().iter().map(|r| route6_msg(r, req.seq, ctx.portid)));
    }
    out
}

/// The source address a packet leaving by `r` gets: the route's
/// preferred source, else the output interface's first address of the
/// family (the loopback address for lo).
fn source_of(ctx: &Ctx, r: &Route) -> Option<IpAddr> {
    if r.prefsrc.is_some() {
        return r.prefsrc;
    }
    let i = ctx.ifaces.by_index(r.oif)?;
    match r.dst {
        IpAddr::V4(_) => i.v4.first().map(|a| IpAddr::V4(a.addr)),
        IpAddr::V6(_) => i.v6.iter().max_by_key(|a| a.scope == 0).map(|a| IpAddr::V6(a.addr)),
    }
}

/// `ip route get`: the route a packet to RTA_DST would take.
fn route_get(ctx: &Ctx, req: &Request, family: i32) -> Result<Vec<u8>, Errno> {
    if req.payload.len() < RTMSG_LEN {
        return Err(Errno::EINVAL);
    }
    let alen = if family == AF_INET { 4 } else { 16 };
    let mut dst = None;
    let mut src = None;
    for (t, d) in attrs_after(req.payload, RTMSG_LEN) {
        if t == RTA_DST || t == RTA_SRC {
            let a = d.get(..alen).ok_or(Errno::EINVAL)?;
            let ip = match <[u8; 4]>::try_from(a) {
                Ok(b) => IpAddr::V4(Ipv4Addr::from(b)),
                Err(_) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(a).map_err(|_| Errno::EINVAL)?)),
            };
            if t == RTA_DST {
                dst = Some(ip);
            } else {
                src = Some(ip);
            }
        }
    }
    let unspec = if family == AF_INET { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
    let dst = dst.unwrap_or(unspec);
    // 0.0.0.0 is this host, reached through lo.
    let lookup = if dst == IpAddr::V4(Ipv4Addr::UNSPECIFIED) { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { dst };
    let r = ctx.ifaces.lookup(lookup).ok_or(Errno::ENETUNREACH)?;
    let prefsrc = source_of(ctx, &r);
    // A packet to one of the sandbox's own addresses leaves through lo
    // (ip_route_output_key_hash_rcu / ip6_pol_route: a local route's
    // output device is the loopback), though table local lists it on
    // its interface.
    let oif = if r.kind == RTN_LOCAL { LOOPBACK_INDEX } else { r.oif };
    let mut m = Msg::new(RTM_NEWROUTE, 0, req.seq, ctx.portid);
    if family == AF_INET {
        let mut flags = RTM_F_CLONED;
        if r.kind == RTN_LOCAL {
            flags |= RTCF_LOCAL;
        } else if r.kind == RTN_BROADCAST {
            flags |= RTCF_LOCAL | RTCF_BROADCAST;
        }
        let src_len = if src.is_some() { 32 } else { 0 };
        rtmsg(&mut m, AF_INET, 32, src_len, RT_TABLE_MAIN, 0, 0, r.kind, flags);
        m.u32(RTA_TABLE, RT_TABLE_MAIN);
        m.attr(RTA_DST, &ip_bytes(dst));
        if let Some(s) = src {
            m.attr(RTA_SRC, &ip_bytes(s));
        }
        m.u32(RTA_OIF, oif as u32);
        if let Some(s) = prefsrc {
            m.attr(RTA_PREFSRC, &ip_bytes(s));
        }
        if let Some(g) = r.gateway {
            m.attr(RTA_GATEWAY, &ip_bytes(g));
        }
        m.u32(RTA_UID, ctx.uid);
        m.attr(RTA_CACHEINFO, &[0; 32]);
    } else {
        rtmsg(&mut m, AF_INET6, 128, 128, r.table, r.protocol, 0, r.kind, 0);
        m.u32(RTA_TABLE, r.table);
        m.attr(RTA_DST, &ip_bytes(dst));
        m.attr(RTA_SRC, &ip_bytes(src.unwrap_or(unspec)));
        if let Some(s) = prefsrc {
            m.attr(RTA_PREFSRC, &ip_bytes(s));
        }
        m.u32(RTA_PRIORITY, r.metric);
        if let Some(g) = r.gateway {
            m.attr(RTA_GATEWAY, &ip_bytes(g));
        }
        m.u32(RTA_OIF, oif as u32);
        m.attr(RTA_CACHEINFO, &[0; 32]);
        m.u8(RTA_PREF, 0);
    }
    Ok(m.finish())
}

// ---------------------------------------------------------------------------
// Rules and netconf: the defaults of a fresh namespace.

fn rule_msg(family: i32, pref: u32, table: u32, seq: u32, portid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWRULE, NLM_F_MULTI, seq, portid);
    let mut hdr = [0u8; 12];
    hdr[0] = family as u8;
    hdr[4] = table as u8;
    hdr[7] = FR_ACT_TO_TBL;
    m.push(&hdr);
    m.u32(FRA_TABLE, table);
    m.u32(FRA_SUPPRESS_PREFIXLEN, u32::MAX);
    m.u8(FRA_PROTOCOL, crate::iface::RTPROT_KERNEL);
    if pref != 0 {
        m.u32(FRA_PRIORITY, pref);
    }
    m.finish()
}

/// `ip rule`: lookup local, main (and default for IPv4).
fn rule_dump(ctx: &Ctx, req: &Request, family: i32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if is_v4(family) {
        for (pref, table) in [(0, RT_TABLE_LOCAL), (32766, RT_TABLE_MAIN), (32767, RT_TABLE_DEFAULT)] {
            out.push(rule_msg(AF_INET, pref, table, req.seq, ctx.portid));
        }
    }
    if is_v6(family) {
        for (pref, table) in [(0, RT_TABLE_LOCAL), (32766, RT_TABLE_MAIN)] {
            out.push(rule_msg(AF_INET6, pref, table, req.seq, ctx.portid));
        }
    }
    out
}

/// One interface's (or "all"'s, or "default"'s) forwarding settings:
/// everything off.
fn netconf_msg(family: i32, index: i32, flags: u16, seq: u32, portid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWNETCONF, flags, seq, portid);
    m.push(&[family as u8]);
    m.u32(NETCONFA_IFINDEX, index as u32);
    m.u32(NETCONFA_FORWARDING, 0);
    if family == AF_INET {
        m.u32(NETCONFA_RP_FILTER, 0);
    }
    m.u32(NETCONFA_MC_FORWARDING, 0);
    if family == AF_INET {
        m.u32(NETCONFA_BC_FORWARDING, 0);
    }
    m.u32(NETCONFA_PROXY_NEIGH, 0);
    m.u32(NETCONFA_IGNORE_ROUTES_WITH_LINKDOWN, 0);
    m.finish()
}

fn netconf_dump(ctx: &Ctx, req: &Request, family: i32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let ifaces = ctx.ifaces.list();
    for fam in [AF_INET, AF_INET6] {
        if (fam == AF_INET && !is_v4(family)) || (fam == AF_INET6 && !is_v6(family)) {
            continue;
        }
        let indexes = ifaces.iter().map(|i| i.index).chain([NETCONFA_IFINDEX_ALL, NETCONFA_IFINDEX_DEFAULT]);
        out.extend(indexes.map(|ix| netconf_msg(fam, ix, NLM_F_MULTI, req.seq, ctx.portid)));
    }
    out
}

/// `ip netconf show dev X`: NETCONFA_IFINDEX says which.
fn netconf_get(ctx: &Ctx, req: &Request, family: i32) -> Result<Vec<u8>, Errno> {
    let index = attrs_after(req.payload, 1)
        .find(|(t, _)| *t == NETCONFA_IFINDEX)
        .and_then(|(_, d)| d.get(..4).map(|b| u32_at(b, 0) as i32))
        .ok_or(Errno::EINVAL)?;
    if index != NETCONFA_IFINDEX_ALL && index != NETCONFA_IFINDEX_DEFAULT && ctx.ifaces.by_index(index).is_none() {
        return Err(Errno::ENODEV);
    }
    Ok(netconf_msg(family, index, 0, req.seq, ctx.portid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(typ: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Msg::new(typ, flags, 9, 0);
        m.push(payload);
        m.finish()
    }

    fn answer(ifaces: &Interfaces, b: &[u8]) -> Result<Answer, Errno> {
        let ctx = Ctx { ifaces, portid: 77, strict: false, uid: 0 };
        let req = requests(b).next().unwrap();
        handle(&ctx, &req)
    }

    fn dump(ifaces: &Interfaces, typ: u16, family: u8) -> Vec<Vec<u8>> {
        match answer(ifaces, &request(typ, NLM_F_REQUEST | NLM_F_DUMP, &[family])) {
            Ok(Answer::Dump(v)) => v,
            _ => panic!("not a dump"),
        }
    }

    #[test]
    fn dumps_of_lo() {
        let t = Interfaces::loopback_only();
        let links = dump(&t, RTM_GETLINK, 0);
        assert_eq!(links.len(), 1);
        let r = requests(&links[0]).next().unwrap();
        assert_eq!((r.typ, r.flags, r.seq, u32_at(r.raw, 12)), (RTM_NEWLINK, NLM_F_MULTI, 9, 77));
        let names: Vec<&[u8]> = attrs_after(r.payload, IFINFOMSG_LEN)
            .filter(|(t, _)| *t == IFLA_IFNAME)
            .map(|(_, d)| attr_str(d))
            .collect();
        assert_eq!(names, [b"lo"]);
        assert_eq!(u32_at(r.payload, 8), 0x10049);
        assert_eq!(dump(&t, RTM_GETADDR, 0).len(), 2);
        assert_eq!(dump(&t, RTM_GETADDR, AF_INET as u8).len(), 1);
        assert_eq!(dump(&t, RTM_GETADDR, AF_INET6 as u8).len(), 1);
        assert_eq!(dump(&t, RTM_GETROUTE, AF_INET as u8).len(), 3);
        assert_eq!(dump(&t, RTM_GETROUTE, 0).len(), 4);
        assert_eq!(dump(&t, RTM_GETRULE, AF_INET as u8).len(), 3);
        assert_eq!(dump(&t, RTM_GETNEIGH, 0).len(), 0);
        assert_eq!(dump(&t, RTM_GETNETCONF, 0).len(), 6);
    }

    #[test]
    fn gets_and_errors() {
        let t = Interfaces::loopback_only();
        let mut ifi = [0u8; IFINFOMSG_LEN];
        ifi[4] = 1;
        assert!(matches!(answer(&t, &request(RTM_GETLINK, NLM_F_REQUEST, &ifi)), Ok(Answer::Reply(_))));
        ifi[4] = 9;
        assert_eq!(answer(&t, &request(RTM_GETLINK, NLM_F_REQUEST, &ifi)).err(), Some(Errno::ENODEV));
        ifi[4] = 0;
        assert_eq!(answer(&t, &request(RTM_GETLINK, NLM_F_REQUEST, &ifi)).err(), Some(Errno::EINVAL));
        assert_eq!(answer(&t, &request(RTM_GETLINK, NLM_F_REQUEST, &[0])).err(), Some(Errno::EINVAL));
        let mut m = Msg::new(RTM_GETLINK, NLM_F_REQUEST, 1, 0);
        m.push(&[0u8; IFINFOMSG_LEN]);
        m.str(IFLA_IFNAME, "lo");
        assert!(matches!(answer(&t, &m.finish()), Ok(Answer::Reply(_))));
        assert_eq!(answer(&t, &request(RTM_NEWADDR, NLM_F_REQUEST, &[2; 8])).err(), Some(Errno::EPERM));
        assert_eq!(answer(&t, &request(RTM_MAX + 1, NLM_F_REQUEST, &[0])).err(), Some(Errno::EOPNOTSUPP));
        assert!(matches!(answer(&t, &Msg::new(RTM_NEWLINK, NLM_F_REQUEST, 1, 0).finish()), Ok(Answer::Nothing)));
        // ip route get 127.1.2.3 / 8.8.8.8.
        let mut m = Msg::new(RTM_GETROUTE, NLM_F_REQUEST, 1, 0);
        m.push(&[AF_INET as u8, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        m.attr(RTA_DST, &[127, 1, 2, 3]);
        let Ok(Answer::Reply(r)) = answer(&t, &m.finish()) else { panic!("no route") };
        let r = requests(&r).next().unwrap();
        assert_eq!(r.payload[7], RTN_LOCAL);
        assert_eq!(u32_at(r.payload, 8), RTM_F_CLONED | RTCF_LOCAL);
        let mut m = Msg::new(RTM_GETROUTE, NLM_F_REQUEST, 1, 0);
        m.push(&[AF_INET as u8, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        m.attr(RTA_DST, &[8, 8, 8, 8]);
        assert_eq!(answer(&t, &m.finish()).err(), Some(Errno::ENETUNREACH));
    }
}
