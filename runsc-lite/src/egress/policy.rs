//! The egress policy: which destinations outside the sandbox a guest may
//! reach (`--allow-host`), decided without touching the network.
//!
//! A rule is a host name (optionally `*.`-wildcarded), an IP address, a
//! CIDR or `host-gateway`, each with an optional port or port range. The
//! broker asks the policy twice: whether a name may be resolved at all
//! (the sandbox's resolver answers NXDOMAIN otherwise), and whether one
//! connection may be made, to an address the guest gave or to one the
//! runtime resolved itself for an allowed name.
//!
//! Addresses in the private, link-local, metadata and other special
//! ranges are refused unless a rule names them explicitly: an address or
//! CIDR rule inside that range. A wide rule (`0.0.0.0/0`) or a name that
//! resolves there does not open them, so an allowed name whose DNS points
//! into the host's network reaches nothing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A network: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// `addr/prefix`; the host bits are cleared. None if the prefix is too
    /// long for the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return None;
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(prefix))),
        };
        Some(IpNet { addr, prefix })
    }

    /// Whether `ip` is in this network (same family only: IPv4-mapped
    /// IPv6 addresses are unmapped by the caller).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask32(self.prefix) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask128(self.prefix) == u128::from(n),
            _ => false,
        }
    }

    /// Whether every address of `self` is in `outer`.
    fn within(&self, outer: &IpNet) -> bool {
        self.prefix >= outer.prefix && outer.contains(self.addr)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0)
}

/// An inclusive port range; a single port is `lo == hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }
}

/// What a rule names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// One host name (lower case, no trailing dot).
    Name(String),
    /// Every name below this domain (`*.example.net`: `a.example.net`,
    /// `b.a.example.net`, not `example.net` itself).
    Below(String),
    /// An address or a network.
    Net(IpNet),
    /// The host's own loopback, reached at the sandbox's gateway address.
    HostGateway,
}

/// One `--allow-host` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowRule {
    pub host: HostPattern,
    /// None: every port.
    pub ports: Option<PortRange>,
}

impl AllowRule {
    fn port_ok(&self, port: u16) -> bool {
        self.ports.is_none_or(|r| r.contains(port))
    }
}

/// A value the policy cannot take, with the reason.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag} value {value:?}: {why}")]
pub struct ParseError {
    pub flag: &'static str,
    pub value: String,
    pub why: String,
}

fn err(flag: &'static str, value: &str, why: impl Into<String>) -> ParseError {
    ParseError { flag, value: value.to_string(), why: why.into() }
}

/// Parse a port (`80`) or an inclusive range (`8000-8100`).
pub fn parse_ports(s: &str) -> Result<PortRange, String> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{p:?} is not a port (1-65535)")),
        Ok(n) => Ok(n),
    };
    match s.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(format!("port range {lo}-{hi} is empty"));
            }
            Ok(PortRange { lo, hi })
        }
        None => port(s).map(|p| PortRange { lo: p, hi: p }),
    }
}

/// Normalize and check a host name: lower case, no trailing dot, labels
/// of letters, digits and `-` (1 to 63 bytes, no leading or trailing
/// `-`), 253 bytes at most.
pub fn parse_name(s: &str) -> Result<String, String> {
    let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err("a host name has 1 to 253 characters".into());
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(format!("{label:?} is not a host name label"));
        }
    }
    Ok(name)
}

/// An address or a CIDR (`10.0.0.0/8`, `2001:db8::/32`).
fn parse_net(s: &str) -> Option<Result<IpNet, String>> {
    let (a, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Some(Err(format!("{p:?} is not a prefix length (0-{max})"))),
        },
    };
    Some(IpNet::new(addr, prefix).ok_or_else(|| "bad prefix".to_string()))
}

impl std::str::FromStr for AllowRule {
    type Err = ParseError;

    /// `NAME`, `*.NAME`, `ADDR`, `CIDR`, `[V6ADDR]`, `[V6CIDR]` or
    /// `host-gateway`, each with an optional `:PORT` or `:LO-HI`; a bare
    /// IPv6 address or CIDR takes no port (write `[ADDR]:PORT`).
    fn from_str(value: &str) -> Result<AllowRule, ParseError> {
        const FLAG: &str = "--allow-host";
        let e = |why: String| err(FLAG, value, why);
        let v = value.trim();
        if v.is_empty() {
            return Err(e("empty".into()));
        }
        // A bare IPv6 address or network (it holds colons of its own).
        if v.matches(':').count() > 1 && !v.starts_with('[') {
            return match parse_net(v) {
                Some(Ok(n)) => Ok(AllowRule { host: HostPattern::Net(n), ports: None }),
                Some(Err(why)) => Err(e(why)),
                None => Err(e("not an IPv6 address (a port needs brackets: [ADDR]:PORT)".into())),
            };
        }
        let (host, ports) = if let Some(rest) = v.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(e("no closing ']'".into()));
            };
            let ports = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return Err(e(format!("{after:?} after ']' (want :PORT)"))),
                },
            };
            match parse_net(inside) {
                Some(Ok(n)) if n.addr.is_ipv6() => (HostPattern::Net(n), ports),
                Some(Err(why)) => return Err(e(why)),
                _ => return Err(e(format!("{inside:?} is not an IPv6 address"))),
            }
        } else {
            let (h, ports) = match v.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (v, None),
            };
            let host = if h.eq_ignore_ascii_case("host-gateway") {
                HostPattern::HostGateway
            } else if let Some(net) = parse_net(h) {
                HostPattern::Net(net.map_err(e)?)
            } else if let Some(domain) = h.strip_prefix("*.") {
                HostPattern::Below(parse_name(domain).map_err(e)?)
            } else if h.contains('*') {
                return Err(e("a wildcard is only allowed as a leading \"*.\"".into()));
            } else if h.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'/') {
                return Err(e(format!("{h:?} is not an IPv4 address or network")));
            } else {
                HostPattern::Name(parse_name(h).map_err(e)?)
            };
            (host, ports)
        };
        let ports = ports.map(parse_ports).transpose().map_err(e)?;
        Ok(AllowRule { host, ports })
    }
}

/// Ranges refused unless a rule names them explicitly: private,
/// shared (CGNAT), link-local (the cloud metadata address is
/// 169.254.169.254), loopback, "this network", benchmarking, multicast,
/// reserved and broadcast for IPv4; unique-local, link-local, site-local,
/// multicast, loopback, unspecified and the IPv4-translation prefixes for
/// IPv6.
pub fn special_ranges() -> Vec<IpNet> {
    let v4 = |a: [u8; 4], p| IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), p);
    let v6 = |a: &str, p| a.parse::<Ipv6Addr>().ok().and_then(|a| IpNet::new(IpAddr::V6(a), p));
    [
        v4([0, 0, 0, 0], 8),
        v4([10, 0, 0, 0], 8),
        v4([100, 64, 0, 0], 10),
        v4([127, 0, 0, 0], 8),
        v4([169, 254, 0, 0], 16),
        v4([172, 16, 0, 0], 12),
        v4([192, 0, 0, 0], 24),
        v4([192, 168, 0, 0], 16),
        v4([198, 18, 0, 0], 15),
        v4([224, 0, 0, 0], 4),
        v4([240, 0, 0, 0], 4),
        v6("::", 128),
        v6("::1", 128),
        v6("64:ff9b::", 96),
        v6("64:ff9b:1::", 48),
        v6("2002::", 16),
        v6("fc00::", 7),
        v6("fe80::", 10),
        v6("fec0::", 10),
        v6("ff00::", 8),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `ip` with an IPv4-mapped or IPv4-compatible IPv6 address turned into
/// the IPv4 address it carries: `::ffff:10.0.0.1` is 10.0.0.1 to the host.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = a.segments();
                // ::a.b.c.d (deprecated, still routed as IPv4 by some
                // stacks); :: and ::1 stay IPv6.
                if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
                    IpAddr::V4(Ipv4Addr::from(((u32::from(s[6])) << 16) | u32::from(s[7])))
                } else {
                    ip
                }
            }
        },
        v4 => v4,
    }
}

/// Why a connection is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No rule allows this destination and port.
    NotAllowed,
    /// The address is in a special range no rule names explicitly.
    SpecialRange(IpNet),
    /// 127.0.0.0/8 and ::1 are the sandbox's own loopback: never outside.
    Loopback,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAllowed => write!(f, "no --allow-host rule allows it"),
            Refusal::SpecialRange(n) => write!(f, "it is in {n}, which only an explicit address or CIDR rule opens"),
            Refusal::Loopback => write!(f, "loopback addresses are the sandbox's own"),
        }
    }
}

/// A destination a guest asks for.
#[derive(Clone, Copy, Debug)]
pub enum Dest<'a> {
    /// An address the guest connects to directly.
    Addr(IpAddr, u16),
    /// An address the runtime itself resolved for `name`.
    Resolved { name: &'a str, ip: IpAddr, port: u16 },
    /// The host's loopback, at the sandbox's gateway address.
    HostGateway(u16),
}

/// The `--allow-host` rules of one sandbox.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Vec<AllowRule>,
    special: Vec<IpNet>,
}

impl Policy {
    pub fn new(rules: Vec<AllowRule>) -> Policy {
        Policy { rules, special: special_ranges() }
    }

    /// Whether no rule was given (`--network=host` then allows every
    /// destination).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `--network=host` with rules: loopback is the host's own (and the
    /// unspecified address, which Linux connects to the local host), so
    /// it takes an address or CIDR rule that lists it; other addresses are
    /// checked as [`Policy::check`] checks them.
    pub fn check_host_mode(&self, ip: IpAddr, port: u16) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if ip.is_loopback() || ip.is_unspecified() {
            // Explicit: inside the special range that holds it (so
            // 0.0.0.0/0 does not open the host's loopback).
            let explicit = |n: &IpNet| n.contains(ip) && self.special.iter().all(|r| !r.contains(ip) || n.within(r));
            let listed =
                self.rules.iter().any(|r| matches!(&r.host, HostPattern::Net(n) if explicit(n)) && r.port_ok(port));
            return if listed { Ok(()) } else { Err(Refusal::NotAllowed) };
        }
        self.check(Dest::Addr(ip, port))
    }

    /// Whether the sandbox's resolver may answer for `name` (any port).
    pub fn name_allowed(&self, name: &str) -> bool {
        let Ok(name) = parse_name(name) else { return false };
        self.rules.iter().any(|r| name_matches(&r.host, &name))
    }

    /// Whether a rule allows `name` on `port` (its resolved addresses
    /// still go through the special-range check).
    pub fn name_port_allowed(&self, name: &str, port: u16) -> bool {
        let Ok(name) = parse_name(name) else { return false };
        self.rules.iter().any(|r| name_matches(&r.host, &name) && r.port_ok(port))
    }

    /// Whether a connection to `dest` may be made.
    pub fn check(&self, dest: Dest<'_>) -> Result<(), Refusal> {
        match dest {
            Dest::HostGateway(port) => {
                if self.rules.iter().any(|r| r.host == HostPattern::HostGateway && r.port_ok(port)) {
                    Ok(())
                } else {
                    Err(Refusal::NotAllowed)
                }
            }
            Dest::Addr(ip, port) => {
                let ip = canonical(ip);
                self.check_special(ip, port)?;
                if self
                    .rules
                    .iter()
                    .any(|r| matches!(&r.host, HostPattern::Net(n) if n.contains(ip)) && r.port_ok(port))
                {
                    Ok(())
                } else {
                    Err(Refusal::NotAllowed)
                }
            }
            Dest::Resolved { name, ip, port } => {
                let ip = canonical(ip);
                self.check_special(ip, port)?;
                let by_name = self.name_port_allowed(name, port);
                let by_addr = self
                    .rules
                    .iter()
                    .any(|r| matches!(&r.host, HostPattern::Net(n) if n.contains(ip)) && r.port_ok(port));
                if by_name || by_addr {
                    Ok(())
                } else {
                    Err(Refusal::NotAllowed)
                }
            }
        }
    }

    /// A special address needs a rule inside its range that covers it,
    /// for this port; loopback never leaves the sandbox.
    fn check_special(&self, ip: IpAddr, port: u16) -> Result<(), Refusal> {
        if ip.is_loopback() {
            return Err(Refusal::Loopback);
        }
        for range in self.special.iter().filter(|r| r.contains(ip)) {
            let explicit = |r: &&AllowRule| matches!(&r.host, HostPattern::Net(n) if n.contains(ip) && n.within(range));
            match self.rules.iter().filter(explicit).any(|r| r.port_ok(port)) {
                true => {}
                // Listed, but not on this port: the port is what is refused.
                false if self.rules.iter().any(|r| explicit(&r)) => return Err(Refusal::NotAllowed),
                false => return Err(Refusal::SpecialRange(*range)),
            }
        }
        Ok(())
    }
}

fn name_matches(p: &HostPattern, name: &str) -> bool {
    match p {
        HostPattern::Name(n) => n == name,
        HostPattern::Below(d) => {
            name.len() > d.len() + 1 && name.ends_with(d.as_str()) && {
                let cut = name.len() - d.len() - 1;
                name.as_bytes().get(cut) == Some(&b'.')
            }
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
