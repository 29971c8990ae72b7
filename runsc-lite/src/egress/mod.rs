//! Egress: what a sandbox with `--network=sandbox` may reach outside
//! itself (DESIGN.md, Network).
//!
//! The Sentry never opens a host socket. A small broker process started by
//! runsc-lite owns every host socket: it checks each connection against
//! the [`policy::Policy`], resolves names itself, connects, and passes the
//! connected descriptor to the Sentry; published ports (`-p`) are its
//! listening sockets. This module holds the pure parts, decided without
//! the network: the policy (`--allow-host`) and static names
//! (`--add-host`). The broker that uses them is not written
//! yet: today only `runsc-lite debug egress` evaluates a policy.

pub mod dns;
pub mod policy;

use policy::{parse_name, ParseError};
use std::net::IpAddr;

/// Where an `--add-host` name points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostTarget {
    Ip(IpAddr),
    /// The sandbox's gateway address, behind which the host's loopback
    /// is reached (port by port, as `--allow-host=host-gateway:PORT` allows).
    HostGateway,
}

/// One `--add-host NAME:IP` (or `NAME:host-gateway`), as Docker's flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddHost {
    pub name: String,
    pub target: HostTarget,
}

impl std::str::FromStr for AddHost {
    type Err = ParseError;

    /// `NAME:ADDR`, `NAME:[V6ADDR]` or `NAME:host-gateway`; an IPv6
    /// address may be written bare (a name holds no colon).
    fn from_str(value: &str) -> Result<AddHost, ParseError> {
        let e = |why: String| ParseError { flag: "--add-host", value: value.to_string(), why };
        let Some((name, target)) = value.split_once(':') else {
            return Err(e("want NAME:IP or NAME:host-gateway".into()));
        };
        let name = parse_name(name).map_err(e)?;
        let target = if target.eq_ignore_ascii_case("host-gateway") {
            HostTarget::HostGateway
        } else {
            let bare = target.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(target);
            HostTarget::Ip(bare.parse().map_err(|_| e(format!("{target:?} is not an IP address")))?)
        };
        Ok(AddHost { name, target })
    }
}

/// `runsc-lite debug egress --allow-host=... [--add-host=...] DEST...`:
/// each destination (`ADDR:PORT`, `[V6ADDR]:PORT`, `NAME:PORT`,
/// `host-gateway:PORT`) allowed or refused, and why; nothing is resolved
/// or connected. A name with an `--add-host` entry is decided as a
/// connection to that address; other names by the rules alone.
pub fn print_decisions(allow: &[String], add_hosts: &[String], dests: &[String]) -> Result<i32, String> {
    let rules = allow.iter().map(|a| a.parse::<policy::AllowRule>()).collect::<Result<Vec<_>, _>>();
    let p = policy::Policy::new(rules.map_err(|e| e.to_string())?);
    let statics = add_hosts.iter().map(|a| a.parse::<AddHost>()).collect::<Result<Vec<_>, _>>();
    let statics = statics.map_err(|e| e.to_string())?;
    for d in dests {
        let bad = |why: &str| format!("invalid destination {d:?}: {why}");
        let (host, port) = match d.rsplit_once(':') {
            Some((h, port)) => (h, port.parse::<u16>().map_err(|_| bad("want HOST:PORT"))?),
            None => return Err(bad("want HOST:PORT")),
        };
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let allowed = || "allowed".to_string();
        let verdict = if host.eq_ignore_ascii_case("host-gateway") {
            p.check(policy::Dest::HostGateway(port)).map(|()| allowed())
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            p.check(policy::Dest::Addr(ip, port)).map(|()| allowed())
        } else {
            let name = parse_name(host).map_err(|why| bad(&why))?;
            match statics.iter().find(|s| s.name == name).map(|s| &s.target) {
                Some(HostTarget::Ip(ip)) => p
                    .check(policy::Dest::Resolved { name: &name, ip: *ip, port })
                    .map(|()| format!("allowed (to {ip})")),
                Some(HostTarget::HostGateway) => p.check(policy::Dest::HostGateway(port)).map(|()| allowed()),
                None if !p.name_allowed(&name) => Err(policy::Refusal::NotAllowed),
                None if p.name_port_allowed(&name, port) => {
                    Ok("allowed by name (to the public addresses the runtime resolves for it)".to_string())
                }
                None => Err(policy::Refusal::NotAllowed),
            }
        };
        match verdict {
            Ok(v) => println!("{d} {v}"),
            Err(why) => println!("{d} refused: {why}"),
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_host_values() {
        let ok = |s: &str| s.parse::<AddHost>().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(
            ok("db.internal:198.51.100.10"),
            AddHost { name: "db.internal".into(), target: HostTarget::Ip("198.51.100.10".parse().unwrap()) }
        );
        assert_eq!(ok("v6:2001:db8::1").target, HostTarget::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(ok("v6:[2001:db8::1]").target, HostTarget::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(ok("Host.Docker.Internal:host-gateway").name, "host.docker.internal");
        for bad in ["", "name", "name:", "na me:1.2.3.4", "name:1.2.3", ":1.2.3.4", "name:gateway"] {
            let line = bad.parse::<AddHost>().expect_err(bad).to_string();
            assert!(line.starts_with("invalid --add-host value "), "{line}");
            assert!(line.contains(&format!("{bad:?}")), "{line}");
        }
    }
}
