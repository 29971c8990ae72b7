//! Unit tests of the egress policy: no connection is ever opened.

use super::*;
use proptest::prelude::*;

fn rule(s: &str) -> AllowRule {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn policy(rules: &[&str]) -> Policy {
    Policy::new(rules.iter().map(|s| rule(s)).collect())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr(p: &Policy, a: &str, port: u16) -> Result<(), Refusal> {
    p.check(Dest::Addr(ip(a), port))
}

#[test]
fn parses_every_form() {
    let net = |a: &str, p| HostPattern::Net(IpNet::new(ip(a), p).unwrap());
    let ports = |lo, hi| Some(PortRange { lo, hi });
    let cases: Vec<(&str, HostPattern, Option<PortRange>)> = vec![
        ("example.org", HostPattern::Name("example.org".into()), None),
        ("Example.ORG.", HostPattern::Name("example.org".into()), None),
        ("*.example.net:443", HostPattern::Below("example.net".into()), ports(443, 443)),
        ("example.org:8000-8100", HostPattern::Name("example.org".into()), ports(8000, 8100)),
        ("198.51.100.10", net("198.51.100.10", 32), None),
        ("198.51.100.10:80", net("198.51.100.10", 32), ports(80, 80)),
        ("198.51.100.0/24", net("198.51.100.0", 24), None),
        ("198.51.100.77/24:1-1024", net("198.51.100.0", 24), ports(1, 1024)),
        ("2001:db8::1", net("2001:db8::1", 128), None),
        ("2001:db8::/32", net("2001:db8::", 32), None),
        ("[2001:db8::1]:443", net("2001:db8::1", 128), ports(443, 443)),
        ("[2001:db8::/48]", net("2001:db8::", 48), None),
        ("host-gateway:8080", HostPattern::HostGateway, ports(8080, 8080)),
        ("host-gateway", HostPattern::HostGateway, None),
    ];
    for (s, host, ports) in cases {
        assert_eq!(rule(s), AllowRule { host, ports }, "{s}");
    }
}

#[test]
fn malformed_values_name_themselves() {
    for bad in [
        "",
        "exa mple.org",
        "*example.org",
        "a.*.org",
        "example.org:0",
        "example.org:65536",
        "example.org:x",
        "example.org:90-80",
        "10.0.0.0/33",
        "10.0.0.300",
        "1.2.3",
        "[2001:db8::1",
        "[2001:db8::1]443",
        "[10.0.0.1]:80",
        "2001:db8::1:443:x",
        "-bad.org",
        "bad-.org",
        "a..org",
    ] {
        let e = bad.parse::<AllowRule>().expect_err(bad);
        let line = e.to_string();
        assert!(line.starts_with("invalid --allow-host value "), "{line}");
        assert!(line.contains(&format!("{bad:?}")), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}

#[test]
fn addresses_cidrs_and_ports() {
    let p = policy(&["198.51.100.10:80", "203.0.113.0/24", "[2001:db8::5]:443"]);
    assert_eq!(addr(&p, "198.51.100.10", 80), Ok(()));
    assert_eq!(addr(&p, "198.51.100.10", 81), Err(Refusal::NotAllowed));
    assert_eq!(addr(&p, "198.51.100.11", 80), Err(Refusal::NotAllowed));
    assert_eq!(addr(&p, "203.0.113.200", 5), Ok(()));
    assert_eq!(addr(&p, "2001:db8::5", 443), Ok(()));
    assert_eq!(addr(&p, "2001:db8::6", 443), Err(Refusal::NotAllowed));
    // The same address written as IPv4-mapped IPv6.
    assert_eq!(addr(&p, "::ffff:198.51.100.10", 80), Ok(()));
    assert_eq!(addr(&p, "::ffff:198.51.100.11", 80), Err(Refusal::NotAllowed));
    assert_eq!(Policy::new(Vec::new()).check(Dest::Addr(ip("198.51.100.10"), 80)), Err(Refusal::NotAllowed));
}

#[test]
fn special_ranges_need_an_explicit_rule() {
    let wide = policy(&["0.0.0.0/0", "::/0"]);
    for a in [
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::10.0.0.1",
        "64:ff9b::a00:1",
    ] {
        assert!(matches!(addr(&wide, a, 80), Err(Refusal::SpecialRange(_))), "{a} passed a wide rule");
    }
    // Public addresses pass the wide rule.
    assert_eq!(addr(&wide, "198.51.100.10", 80), Ok(()));
    assert_eq!(addr(&wide, "2001:db8::1", 80), Ok(()));
    // Listed explicitly (inside the range), they pass.
    let p = policy(&["10.0.0.0/16:5432", "169.254.169.254", "[fd00::/64]"]);
    assert_eq!(addr(&p, "10.0.3.4", 5432), Ok(()));
    assert_eq!(addr(&p, "10.0.3.4", 5433), Err(Refusal::NotAllowed));
    assert_eq!(addr(&p, "10.1.3.4", 5432), Err(Refusal::SpecialRange(IpNet::new(ip("10.0.0.0"), 8).unwrap())));
    assert_eq!(addr(&p, "169.254.169.254", 80), Ok(()));
    assert_eq!(addr(&p, "fd00::9", 80), Ok(()));
    // 10.0.0.0/7 is wider than 10/8: not an explicit listing.
    assert!(addr(&policy(&["10.0.0.0/7"]), "10.0.0.1", 80).is_err());
}

#[test]
fn loopback_never_leaves_the_sandbox() {
    let p = policy(&["127.0.0.1", "[::1]", "127.0.0.0/8"]);
    for a in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
        assert_eq!(addr(&p, a, 80), Err(Refusal::Loopback), "{a}");
    }
}

#[test]
fn host_gateway_port_by_port() {
    let p = policy(&["host-gateway:8080"]);
    assert_eq!(p.check(Dest::HostGateway(8080)), Ok(()));
    assert_eq!(p.check(Dest::HostGateway(8081)), Err(Refusal::NotAllowed));
    assert_eq!(policy(&["0.0.0.0/0"]).check(Dest::HostGateway(8080)), Err(Refusal::NotAllowed));
}

#[test]
fn names_and_wildcards() {
    let p = policy(&["example.org", "*.example.net:443"]);
    assert!(p.name_allowed("example.org"));
    assert!(p.name_allowed("EXAMPLE.org."));
    assert!(!p.name_allowed("www.example.org"));
    assert!(!p.name_allowed("example.net"));
    assert!(p.name_allowed("a.example.net"));
    assert!(p.name_allowed("b.a.example.net"));
    assert!(!p.name_allowed("badexample.net"));
    assert!(!p.name_allowed("example.net.evil.org"));
    assert!(!p.name_allowed(""));
    let res = |name, a: &str, port| p.check(Dest::Resolved { name, ip: ip(a), port });
    assert_eq!(res("example.org", "198.51.100.10", 80), Ok(()));
    assert_eq!(res("a.example.net", "198.51.100.10", 443), Ok(()));
    assert_eq!(res("a.example.net", "198.51.100.10", 80), Err(Refusal::NotAllowed));
    assert_eq!(res("other.org", "198.51.100.10", 80), Err(Refusal::NotAllowed));
    // An allowed name whose address is private reaches nothing.
    assert!(matches!(res("example.org", "192.168.0.1", 80), Err(Refusal::SpecialRange(_))));
    assert_eq!(res("example.org", "127.0.0.1", 80), Err(Refusal::Loopback));
    // A name rule does not allow the address by itself.
    assert_eq!(addr(&p, "198.51.100.10", 80), Err(Refusal::NotAllowed));
}

proptest! {
    /// Any string: a rule or a one-line error, never a panic.
    #[test]
    fn any_value_parses_or_errs(s in ".{0,80}") {
        match s.parse::<AllowRule>() {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().contains('\n') || s.contains('\n')),
        }
    }

    /// No rule but explicit ones inside 10/8 opens an address there.
    #[test]
    fn private_stays_closed(a in any::<u32>(), rules in proptest::collection::vec("[0-9./:*a-z\\[\\]-]{1,24}", 0..6)) {
        let rules: Vec<AllowRule> = rules.iter().filter_map(|r| r.parse().ok()).collect();
        let inside_ten = |n: &IpNet| matches!(n.addr, IpAddr::V4(a) if a.octets()[0] == 10) && n.prefix >= 8;
        let explicit = rules.iter().any(|r| matches!(&r.host, HostPattern::Net(n) if inside_ten(n)));
        let p = Policy::new(rules);
        let target = IpAddr::V4(Ipv4Addr::from((10u32 << 24) | (a & 0x00ff_ffff)));
        if !explicit {
            prop_assert!(p.check(Dest::Addr(target, 80)).is_err());
        }
    }
}
