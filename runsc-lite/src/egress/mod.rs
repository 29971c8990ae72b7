//! Egress: what a sandbox with `--network=sandbox` may reach outside
//! itself (DESIGN.md, Network).
//!
//! The Sentry never opens a host socket. A small broker process started by
//! runsc-lite ([`broker`]) owns every host socket: it checks each
//! connection against the [`policy::Policy`], resolves names itself
//! ([`dns`] answers the guest), connects, and passes the connected
//! descriptor to the Sentry; published ports (`-p`) are its listening
//! sockets. This module holds the settings: the network mode, the policy
//! (`--allow-host`), static names (`--add-host`), the resolver switch
//! (`--dns`) and published ports, from flags and config.json annotations.

pub mod broker;
pub mod dns;
pub mod policy;

use broker::Publish;
use policy::{parse_name, AllowRule, ParseError};
use std::collections::HashMap;
use std::net::IpAddr;

/// `--network`: what the sandbox's inet sockets reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// Loopback only.
    #[default]
    None,
    /// Loopback and eth0, whose traffic goes through the egress broker.
    Sandbox,
    /// The host's network: inet sockets are host sockets the broker
    /// makes (gVisor's hostinet); the allowlist applies when given.
    Host,
}

impl std::str::FromStr for NetworkMode {
    type Err = String;

    fn from_str(s: &str) -> Result<NetworkMode, String> {
        match s {
            "none" => Ok(NetworkMode::None),
            "sandbox" => Ok(NetworkMode::Sandbox),
            "host" => Ok(NetworkMode::Host),
            _ => Err(format!("unknown network mode {s:?}: use none, sandbox or host")),
        }
    }
}

/// A sandbox's network settings, flags and annotations merged.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    pub mode: NetworkMode,
    pub allow: Vec<AllowRule>,
    pub add_hosts: Vec<AddHost>,
    /// Whether the sandbox's resolver (10.0.2.3) answers.
    pub dns: bool,
    pub publish: Vec<Publish>,
}

impl Default for NetworkConfig {
    fn default() -> NetworkConfig {
        NetworkConfig { mode: NetworkMode::None, allow: vec![], add_hosts: vec![], dns: true, publish: vec![] }
    }
}

impl NetworkConfig {
    /// The broker's configuration for this sandbox.
    pub fn broker_config(&self, log_decisions: bool) -> broker::BrokerConfig {
        broker::BrokerConfig {
            policy: policy::Policy::new(self.allow.clone()),
            statics: self.add_hosts.clone(),
            dns: self.dns,
            publish: self.publish.clone(),
            log_decisions,
            hostinet: self.mode == NetworkMode::Host,
        }
    }
}

/// `--dns` and the `dev.runsc-lite.dns` annotation: `on` (the default)
/// or `none`/`off`.
pub fn parse_dns(s: &str) -> Result<bool, String> {
    match s {
        "on" | "sandbox" => Ok(true),
        "none" | "off" => Ok(false),
        _ => Err("want on (the sandbox's resolver) or none".into()),
    }
}

/// The network flags of the command line, parsed.
#[derive(Clone, Debug, Default)]
pub struct NetworkFlags {
    pub mode: Option<NetworkMode>,
    pub allow: Vec<AllowRule>,
    pub add_hosts: Vec<AddHost>,
    pub dns: Option<bool>,
    pub publish: Vec<Publish>,
}

fn parse_all<T: std::str::FromStr<Err = ParseError>>(values: &[String]) -> Result<Vec<T>, String> {
    values.iter().map(|v| v.parse::<T>().map_err(|e| e.to_string())).collect()
}

impl NetworkFlags {
    pub fn parse(
        mode: Option<&str>,
        allow: &[String],
        add_hosts: &[String],
        dns: Option<&str>,
        publish: &[String],
    ) -> Result<NetworkFlags, String> {
        Ok(NetworkFlags {
            mode: mode.map(str::parse).transpose()?,
            allow: parse_all(allow)?,
            add_hosts: parse_all(add_hosts)?,
            dns: dns.map(|d| parse_dns(d).map_err(|why| format!("invalid --dns value {d:?}: {why}"))).transpose()?,
            publish: parse_all(publish)?,
        })
    }

    /// Whether a flag asks for egress (which makes `do` default to
    /// `--network=sandbox`).
    pub fn wants_egress(&self) -> bool {
        !self.allow.is_empty() || !self.add_hosts.is_empty() || !self.publish.is_empty()
    }

    /// Add the flags to `net` (config.json's annotations, or the
    /// command's defaults): rules, names and ports add up; the flags'
    /// network mode and --dns win. Then refuse what cannot be served.
    pub fn apply(&self, net: &mut NetworkConfig) -> Result<(), String> {
        if let Some(m) = self.mode {
            net.mode = m;
        }
        if let Some(d) = self.dns {
            net.dns = d;
        }
        net.allow.extend(self.allow.iter().cloned());
        net.add_hosts.extend(self.add_hosts.iter().cloned());
        net.publish.extend(self.publish.iter().copied());
        match net.mode {
            NetworkMode::Host if !net.publish.is_empty() => {
                Err("--publish has no place with --network=host: the guest binds the host's ports itself".into())
            }
            NetworkMode::Host if !net.add_hosts.is_empty() => {
                Err("--add-host needs --network=sandbox: with --network=host the guest reads the host's /etc/hosts"
                    .into())
            }
            NetworkMode::None if !net.allow.is_empty() || !net.add_hosts.is_empty() || !net.publish.is_empty() => {
                Err("--allow-host, --add-host and --publish need --network=sandbox (the network mode is none)".into())
            }
            _ => Ok(()),
        }
    }
}

/// config.json annotations runsc-lite acts on.
pub const ANNOTATION_NETWORK: &str = "dev.runsc-lite.network";
pub const ANNOTATION_ALLOW_HOST: &str = "dev.runsc-lite.allow-host";
pub const ANNOTATION_ADD_HOST: &str = "dev.runsc-lite.add-host";
pub const ANNOTATION_DNS: &str = "dev.runsc-lite.dns";
pub const ANNOTATION_PUBLISH: &str = "dev.runsc-lite.publish";
pub const ANNOTATIONS: [&str; 5] =
    [ANNOTATION_NETWORK, ANNOTATION_ALLOW_HOST, ANNOTATION_ADD_HOST, ANNOTATION_DNS, ANNOTATION_PUBLISH];

/// The network settings of a bundle's annotations (`default_mode` where
/// none is given); an error names the annotation (as the field) and says
/// what is wrong with which value.
pub fn from_annotations(
    a: &HashMap<String, String>,
    default_mode: NetworkMode,
) -> Result<NetworkConfig, (String, String)> {
    let field = |key: &str| format!("annotations[{key:?}]");
    fn list<T: std::str::FromStr<Err = ParseError>>(
        a: &HashMap<String, String>,
        key: &str,
    ) -> Result<Vec<T>, (String, String)> {
        let Some(v) = a.get(key) else { return Ok(vec![]) };
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<T>().map_err(|e| (format!("annotations[{key:?}]"), format!("invalid value {s:?}: {}", e.why)))
            })
            .collect()
    }
    let mode = match a.get(ANNOTATION_NETWORK) {
        Some(m) => m.trim().parse().map_err(|e| (field(ANNOTATION_NETWORK), e))?,
        None => default_mode,
    };
    let dns = match a.get(ANNOTATION_DNS) {
        Some(d) => parse_dns(d.trim()).map_err(|why| (field(ANNOTATION_DNS), format!("invalid value {d:?}: {why}")))?,
        None => true,
    };
    Ok(NetworkConfig {
        mode,
        allow: list(a, ANNOTATION_ALLOW_HOST)?,
        add_hosts: list(a, ANNOTATION_ADD_HOST)?,
        dns,
        publish: list(a, ANNOTATION_PUBLISH)?,
    })
}

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

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn network_flags_parse_up_front_and_add_to_annotations() {
        let f = NetworkFlags::parse(
            None,
            &strings(&["example.org", "host-gateway:8080"]),
            &strings(&["db:198.51.100.10"]),
            Some("none"),
            &strings(&["18080:8000", "5353:53/udp"]),
        )
        .unwrap();
        assert!(f.wants_egress());
        assert_eq!((f.allow.len(), f.add_hosts.len(), f.dns, f.publish.len()), (2, 1, Some(false), 2));
        let a: HashMap<String, String> = [
            (ANNOTATION_ALLOW_HOST, "*.example.net:443, 198.51.100.0/24"),
            (ANNOTATION_DNS, "on"),
            (ANNOTATION_PUBLISH, "9000:9000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut net = from_annotations(&a, NetworkMode::Sandbox).unwrap();
        assert_eq!((net.mode, net.allow.len(), net.dns, net.publish.len()), (NetworkMode::Sandbox, 2, true, 1));
        f.apply(&mut net).unwrap();
        assert_eq!((net.allow.len(), net.add_hosts.len(), net.dns, net.publish.len()), (4, 1, false, 3));

        for (mode, allow, dns, publish, want) in [
            (Some("bridge"), "x.org", None, "1:1", "unknown network mode \"bridge\""),
            (None, "*x.org", None, "1:1", "invalid --allow-host value \"*x.org\""),
            (None, "x.org", Some("8.8.8.8"), "1:1", "invalid --dns value \"8.8.8.8\""),
            (None, "x.org", None, "1:1/sctp", "invalid --publish value \"1:1/sctp\""),
        ] {
            let e = NetworkFlags::parse(mode, &strings(&[allow]), &[], dns, &strings(&[publish])).unwrap_err();
            assert!(e.starts_with(want) && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn network_modes_that_cannot_be_served_are_errors() {
        let host = NetworkFlags::parse(Some("host"), &strings(&["198.51.100.10:80"]), &[], None, &[]).unwrap();
        let mut net = NetworkConfig::default();
        host.apply(&mut net).unwrap();
        assert_eq!(net.mode, NetworkMode::Host);
        assert!(net.broker_config(false).hostinet);
        let published = NetworkFlags::parse(Some("host"), &[], &[], None, &strings(&["8080:80"])).unwrap();
        let e = published.apply(&mut NetworkConfig::default()).unwrap_err();
        assert!(e.contains("--publish has no place with --network=host"), "{e}");
        let named = NetworkFlags::parse(Some("host"), &[], &strings(&["db:198.51.100.10"]), None, &[]).unwrap();
        assert!(named.apply(&mut NetworkConfig::default()).unwrap_err().contains("--add-host needs"));
        let rules_without_network =
            NetworkFlags::parse(Some("none"), &strings(&["example.org"]), &[], None, &[]).unwrap();
        assert!(rules_without_network.apply(&mut NetworkConfig::default()).is_err());
        let plain = NetworkFlags::parse(None, &[], &[], None, &[]).unwrap();
        let mut net = NetworkConfig::default();
        plain.apply(&mut net).unwrap();
        assert_eq!(net.mode, NetworkMode::None);
    }

    #[test]
    fn bad_annotations_name_key_and_value() {
        for (key, value, want) in [
            (ANNOTATION_NETWORK, "bridge", "unknown network mode \"bridge\""),
            (ANNOTATION_ALLOW_HOST, "ok.org,bad host", "invalid value \"bad host\""),
            (ANNOTATION_ADD_HOST, "name", "invalid value \"name\""),
            (ANNOTATION_DNS, "maybe", "invalid value \"maybe\""),
            (ANNOTATION_PUBLISH, "80", "invalid value \"80\""),
        ] {
            let a = HashMap::from([(key.to_string(), value.to_string())]);
            let (field, what) = from_annotations(&a, NetworkMode::Sandbox).unwrap_err();
            assert_eq!(field, format!("annotations[{key:?}]"));
            assert!(what.starts_with(want), "{what}");
        }
        let none = HashMap::from([(ANNOTATION_NETWORK.to_string(), "none".to_string())]);
        assert_eq!(from_annotations(&none, NetworkMode::Sandbox).unwrap().mode, NetworkMode::None);
        assert_eq!(from_annotations(&HashMap::new(), NetworkMode::Sandbox).unwrap().mode, NetworkMode::Sandbox);
    }
}
