//! Netlink's wire format: message headers, attributes, and the numbers of
//! NETLINK_ROUTE (rtnetlink) as x86-64 Linux spells them. Messages are
//! built into byte vectors and parsed from the guest's bytes without ever
//! trusting a length field.

/// `sizeof(struct nlmsghdr)`.
pub const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct nlattr)`.
pub const NLA_HDRLEN: usize = 4;

// Control message types.
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_MIN_TYPE: u16 = 0x10;

// nlmsg_flags.
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
/// In an NLMSG_ERROR: the request is not copied whole.
pub const NLM_F_CAPPED: u16 = 0x100;

// rtnetlink message types.
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_GETNEIGH: u16 = 30;
pub const RTM_NEWRULE: u16 = 32;
pub const RTM_GETRULE: u16 = 34;
pub const RTM_NEWNETCONF: u16 = 80;
pub const RTM_GETNETCONF: u16 = 82;
/// The highest rtnetlink message type Linux knows; above it, EOPNOTSUPP.
pub const RTM_MAX: u16 = 123;

// Link attributes (IFLA_*).
pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_BROADCAST: u16 = 2;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_QDISC: u16 = 6;
pub const IFLA_STATS: u16 = 7;
pub const IFLA_TXQLEN: u16 = 13;
pub const IFLA_MAP: u16 = 14;
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_LINKMODE: u16 = 17;
pub const IFLA_STATS64: u16 = 23;
pub const IFLA_GROUP: u16 = 27;
pub const IFLA_PROMISCUITY: u16 = 30;
pub const IFLA_NUM_TX_QUEUES: u16 = 31;
pub const IFLA_NUM_RX_QUEUES: u16 = 32;
pub const IFLA_CARRIER: u16 = 33;
pub const IFLA_CARRIER_CHANGES: u16 = 35;
pub const IFLA_PROTO_DOWN: u16 = 39;
pub const IFLA_GSO_MAX_SEGS: u16 = 40;
pub const IFLA_GSO_MAX_SIZE: u16 = 41;
pub const IFLA_MIN_MTU: u16 = 50;
pub const IFLA_MAX_MTU: u16 = 51;
pub const IFLA_GRO_MAX_SIZE: u16 = 58;
pub const IFLA_TSO_MAX_SIZE: u16 = 59;
pub const IFLA_TSO_MAX_SEGS: u16 = 60;
pub const IFLA_ALLMULTI: u16 = 61;
pub const IFLA_GSO_IPV4_MAX_SIZE: u16 = 63;
pub const IFLA_GRO_IPV4_MAX_SIZE: u16 = 64;

// Address attributes (IFA_*).
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_LABEL: u16 = 3;
pub const IFA_BROADCAST: u16 = 4;
pub const IFA_CACHEINFO: u16 = 6;
pub const IFA_FLAGS: u16 = 8;

// Route attributes (RTA_*).
pub const RTA_DST: u16 = 1;
pub const RTA_SRC: u16 = 2;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_PREFSRC: u16 = 7;
pub const RTA_CACHEINFO: u16 = 12;
pub const RTA_TABLE: u16 = 15;
pub const RTA_PREF: u16 = 20;
pub const RTA_UID: u16 = 25;
/// rtm_flags of an answer to a route get: a cached (cloned) route.
pub const RTM_F_CLONED: u32 = 0x200;
/// rtm_flags: RTCF_LOCAL and RTCF_BROADCAST as `ip route get` shows them.
pub const RTCF_BROADCAST: u32 = 0x1000_0000;
pub const RTCF_LOCAL: u32 = 0x8000_0000;

// Rule attributes (FRA_*) and actions.
pub const FRA_PRIORITY: u16 = 6;
pub const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
pub const FRA_TABLE: u16 = 15;
pub const FRA_PROTOCOL: u16 = 21;
pub const FR_ACT_TO_TBL: u8 = 1;
pub const RT_TABLE_DEFAULT: u32 = 253;

// Netconf attributes (NETCONFA_*).
pub const NETCONFA_IFINDEX: u16 = 1;
pub const NETCONFA_FORWARDING: u16 = 2;
pub const NETCONFA_RP_FILTER: u16 = 3;
pub const NETCONFA_MC_FORWARDING: u16 = 4;
pub const NETCONFA_PROXY_NEIGH: u16 = 5;
pub const NETCONFA_IGNORE_ROUTES_WITH_LINKDOWN: u16 = 6;
pub const NETCONFA_BC_FORWARDING: u16 = 8;
pub const NETCONFA_IFINDEX_ALL: i32 = -1;
pub const NETCONFA_IFINDEX_DEFAULT: i32 = -2;

/// AF_BRIDGE, whose link dump lists bridge ports (none here).
pub const AF_BRIDGE: u8 = 7;

/// Lengths of the family headers that follow the nlmsghdr.
pub const IFINFOMSG_LEN: usize = 16;
pub const IFADDRMSG_LEN: usize = 8;
pub const RTMSG_LEN: usize = 12;

/// NLMSG_ALIGN / NLA_ALIGN.
pub const fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A message being built: header first, its length set by [`Msg::finish`].
pub struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    pub fn new(typ: u16, flags: u16, seq: u32, pid: u32) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&typ.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&pid.to_ne_bytes());
        Msg { buf }
    }

    /// Fixed bytes (a family header), padded to 4.
    pub fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
        self.pad();
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    pub fn attr(&mut self, typ: u16, data: &[u8]) {
        let len = (NLA_HDRLEN + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&typ.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    pub fn u8(&mut self, typ: u16, v: u8) {
        self.attr(typ, &[v]);
    }

    pub fn u32(&mut self, typ: u16, v: u32) {
        self.attr(typ, &v.to_ne_bytes());
    }

    /// A NUL-terminated string attribute.
    pub fn str(&mut self, typ: u16, s: &str) {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(typ, &b);
    }

    /// Open a nested attribute; close it with [`Msg::end_nest`].
    pub fn nest(&mut self, typ: u16) -> usize {
        let at = self.buf.len();
        self.attr(typ, &[]);
        at
    }

    pub fn end_nest(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// One message of a request, as netlink_rcv_skb sees it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub typ: u16,
    pub flags: u16,
    pub seq: u32,
    /// The whole message (header included), `nlmsg_len` bytes.
    pub raw: &'a [u8],
    /// The bytes after the header.
    pub payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_ne_bytes([s[0], s[1]]),
        None => 0,
    }
}

/// A native-endian u32 at `at`, or 0 past the end.
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_ne_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// The messages of a buffer a guest sent: one after another while a whole
/// header remains; a message whose length is below a header or beyond the
/// buffer ends the walk silently, as Linux's netlink_rcv_skb does.
pub fn requests(buf: &[u8]) -> impl Iterator<Item = Request<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32_at(rest, 0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return None;
        }
        let raw = &rest[..len];
        let req = Request {
            typ: u16_at(raw, 4),
            flags: u16_at(raw, 6),
            seq: u32_at(raw, 8),
            raw,
            payload: &raw[NLMSG_HDRLEN..],
        };
        rest = &rest[align(len).min(rest.len())..];
        Some(req)
    })
}

/// The attributes in `b`: (type without the nested/byte-order bits, data).
/// A malformed attribute ends the walk (nla_ok), as in Linux, which only
/// warns about the bytes left over.
pub fn attrs(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = b;
    std::iter::from_fn(move || {
        if rest.len() < NLA_HDRLEN {
            return None;
        }
        let len = usize::from(u16_at(rest, 0));
        if len < NLA_HDRLEN || len > rest.len() {
            return None;
        }
        let typ = u16_at(rest, 2) & 0x3fff;
        let data = &rest[NLA_HDRLEN..len];
        rest = &rest[align(len).min(rest.len())..];
        Some((typ, data))
    })
}

/// The attributes after a family header of `hdr` bytes in a payload.
pub fn attrs_after(payload: &[u8], hdr: usize) -> impl Iterator<Item = (u16, &[u8])> {
    attrs(payload.get(align(hdr)..).unwrap_or(&[]))
}

/// A string attribute's bytes up to its NUL (nla_strscpy).
pub fn attr_str(data: &[u8]) -> &[u8] {
    let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
    &data[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_parse() {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_MULTI, 7, 42);
        m.push(&[1, 2, 3]);
        m.str(IFLA_IFNAME, "lo");
        let n = m.nest(26);
        m.u32(1, 5);
        m.end_nest(n);
        let b = m.finish();
        assert_eq!(b.len(), 16 + 4 + 8 + 12);
        let reqs: Vec<Request> = requests(&b).collect();
        assert_eq!(reqs.len(), 1);
        assert_eq!((reqs[0].typ, reqs[0].flags, reqs[0].seq), (RTM_NEWLINK, NLM_F_MULTI, 7));
        let a: Vec<(u16, &[u8])> = attrs_after(reqs[0].payload, 3).collect();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], (IFLA_IFNAME, &b"lo\0"[..]));
        assert_eq!(attr_str(a[0].1), b"lo");
        let inner: Vec<(u16, &[u8])> = attrs(a[1].1).collect();
        assert_eq!(inner, [(1, &5u32.to_ne_bytes()[..])]);
    }

    #[test]
    fn hostile_lengths_end_the_walk() {
        // A second message whose length runs past the buffer, then junk.
        let mut b = Msg::new(NLMSG_NOOP, 0, 1, 0).finish();
        b.extend_from_slice(&100u32.to_ne_bytes());
        b.extend_from_slice(&[0; 12]);
        assert_eq!(requests(&b).count(), 1);
        // A zero length stops the walk (iproute2 pads requests with zeros).
        let mut z = Msg::new(NLMSG_NOOP, 0, 1, 0).finish();
        z.extend_from_slice(&[0; 64]);
        assert_eq!(requests(&z).count(), 1);
        assert_eq!(requests(&[0u8; 15]).count(), 0);
        // Attributes: too short, too long, odd trailing bytes.
        assert_eq!(attrs(&[2, 0, 1, 0]).count(), 0);
        assert_eq!(attrs(&[9, 0, 1, 0, 0]).count(), 0);
        assert_eq!(attrs(&[5, 0, 1, 0, 7, 0]).collect::<Vec<_>>(), [(1, &[7u8][..])]);
        assert_eq!(attrs_after(&[1, 2], 16).count(), 0);
    }
}
