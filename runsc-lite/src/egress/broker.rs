//! The egress broker: the one process of a sandbox that owns host
//! sockets (DESIGN.md, Network).
//!
//! runsc-lite starts it (`spawn`) in the host's network namespace before
//! it clones the Sentry. The Sentry asks it, over a SOCK_SEQPACKET pair
//! (`netstack::egress::proto`), for connections and DNS answers; the
//! broker checks each against the [`Policy`], connects itself and passes
//! the descriptor back (SCM_RIGHTS). Published ports (`-p`) are its
//! listening sockets: each accepted connection goes to the Sentry the
//! same way. The broker ends when the channel does (the Sentry is gone)
//! or with runsc-lite (PR_SET_PDEATHSIG).
//!
//! Refusals are cheap (no syscall but the reply) and their log lines are
//! rate-limited, so a guest that floods refused destinations costs only
//! its own sandbox's broker a little time.

#[path = "broker_sys.rs"]
mod sys;

#[path = "broker_host.rs"]
mod host;

use super::policy::{canonical, parse_name, Dest, IpNet, ParseError, Policy, Refusal};
use super::{dns, AddHost, HostTarget};
use netstack::egress::proto::{self, Proto, Reply, Request};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One `-p HOST_PORT:GUEST_PORT[/tcp|/udp]`: the host's
/// 127.0.0.1:HOST_PORT reaches the sandbox's GUEST_PORT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publish {
    pub host_port: u16,
    pub guest_port: u16,
    pub proto: Proto,
}

impl std::str::FromStr for Publish {
    type Err = ParseError;

    fn from_str(value: &str) -> Result<Publish, ParseError> {
        let e = |why: String| ParseError { flag: "--publish", value: value.to_string(), why };
        let (ports, proto) = match value.rsplit_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some((_, other)) => return Err(e(format!("unknown protocol {other:?} (want tcp or udp)"))),
            None => (value, Proto::Tcp),
        };
        let Some((host, guest)) = ports.split_once(':') else {
            return Err(e("want HOST_PORT:GUEST_PORT[/tcp|/udp]".into()));
        };
        let port = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(e(format!("{p:?} is not a port (1-65535)"))),
            Ok(n) => Ok(n),
        };
        Ok(Publish { host_port: port(host)?, guest_port: port(guest)?, proto })
    }
}

impl fmt::Display for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host_port, self.guest_port)?;
        if self.proto == Proto::Udp {
            write!(f, "/udp")?;
        }
        Ok(())
    }
}

/// What one sandbox's broker enforces and serves.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub policy: Policy,
    /// `--add-host` entries: answered by the resolver, and their
    /// addresses count as resolved for their names.
    pub statics: Vec<AddHost>,
    /// Whether the sandbox's resolver answers (`--dns=none`: no).
    pub dns: bool,
    pub publish: Vec<Publish>,
    /// Log each decision (rate-limited) and a summary line at the end:
    /// set with `--debug-log`.
    pub log_decisions: bool,
    /// `--network=host`: the Sentry asks for host sockets and for binds,
    /// connects and datagrams on them (`broker_host.rs`), not for
    /// connections and names.
    pub hostinet: bool,
}

/// The published ports' host sockets, opened before the sandbox starts.
#[derive(Debug, Default)]
pub struct Listeners {
    tcp: Vec<(TcpListener, Publish)>,
    udp: Vec<(UdpSocket, Publish)>,
}

impl Listeners {
    fn raw_fds(&self) -> Vec<RawFd> {
        let tcp = self.tcp.iter().map(|(l, _)| l.as_raw_fd());
        tcp.chain(self.udp.iter().map(|(s, _)| s.as_raw_fd())).collect()
    }
}

/// Open the published ports on the host's 127.0.0.1: a TCP listener
/// (SO_REUSEADDR, backlog 128, as std sets them) or a bound UDP socket
/// each. A port in use is an error naming the `-p` value.
pub fn listen(publish: &[Publish]) -> Result<Listeners, String> {
    let mut out = Listeners::default();
    for p in publish {
        let at = SocketAddr::from((Ipv4Addr::LOCALHOST, p.host_port));
        let fail = |verb: &str, e: std::io::Error| format!("-p {p}: cannot {verb} {at}: {e}");
        match p.proto {
            Proto::Tcp => {
                let l = TcpListener::bind(at).map_err(|e| fail("listen on", e))?;
                l.set_nonblocking(true).map_err(|e| fail("listen on", e))?;
                out.tcp.push((l, *p));
            }
            Proto::Udp => {
                // No SO_REUSEADDR: a second sandbox binding the same UDP
                // port must fail, not share it.
                let s = UdpSocket::bind(at).map_err(|e| fail("bind", e))?;
                s.set_nonblocking(true).map_err(|e| fail("bind", e))?;
                out.udp.push((s, *p));
            }
        }
    }
    Ok(out)
}

/// A running broker process, from runsc-lite's side.
#[derive(Debug)]
pub struct Broker {
    sentry_end: Option<OwnedFd>,
    pid: libc::pid_t,
    reaped: bool,
}

/// Start a broker process. Published ports are opened first, so that a
/// busy port fails before any sandbox starts. Call while runsc-lite has
/// one thread (the child forks from it).
pub fn spawn(cfg: BrokerConfig) -> Result<Broker, String> {
    let listeners = listen(&cfg.publish)?;
    let (broker_end, sentry_end) = sys::seqpacket_pair().map_err(|e| format!("egress broker channel: {e}"))?;
    // SAFETY: getpid takes no arguments.
    let parent = unsafe { libc::getpid() };
    // SAFETY: runsc-lite is single-threaded here (the caller's
    // contract), so the child's copy of every lock and allocator is
    // consistent; the child never returns into the caller (it exits).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("cannot start the egress broker (fork: {})", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(sentry_end);
        let code =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| broker_main(parent, broker_end, cfg, listeners)))
                .unwrap_or(125);
        std::process::exit(code);
    }
    drop((broker_end, listeners));
    Ok(Broker { sentry_end: Some(sentry_end), pid, reaped: false })
}

/// The broker process's body.
fn broker_main(parent: libc::pid_t, chan: OwnedFd, cfg: BrokerConfig, listeners: Listeners) -> i32 {
    // SAFETY: prctl without pointers; getppid and signal dispositions
    // (SIG_IGN) need none either.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != parent {
            return 1; // runsc-lite died before the line above
        }
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        // Its own name in ps and /proc/PID/comm ("egress-broker").
        libc::prctl(libc::PR_SET_NAME, c"egress-broker".as_ptr() as libc::c_ulong, 0, 0, 0);
        // The terminal's signals are for the guest (runsc-lite relays
        // them); the broker ends with the channel or with runsc-lite.
        for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    let mut keep = listeners.raw_fds();
    keep.push(chan.as_raw_fd());
    keep.extend(crate::logging::debug_log_fd());
    sys::keep_only(&keep);
    let log = cfg.log_decisions;
    let counts = serve(chan, cfg, listeners);
    if log {
        let line = counts.summary();
        tracing::info!(target: "egress", "{}", line.strip_prefix("egress: ").unwrap_or(&line));
        eprintln!("runsc-lite: {line}");
    }
    0
}

impl Broker {
    /// The Sentry's end of the channel (once).
    pub fn take_sentry_end(&mut self) -> Option<OwnedFd> {
        self.sentry_end.take()
    }

    /// Wait for the broker to end (it does once no copy of the Sentry's
    /// end is open); after a few seconds it is killed instead.
    pub fn finish(mut self) {
        drop(self.sentry_end.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // SAFETY: waits for our own child; status not wanted.
            let r = unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), libc::WNOHANG) };
            if r == self.pid || (r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR)) {
                self.reaped = true;
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!("egress broker did not end with the sandbox; killed");
                return; // Drop kills and reaps it
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: kills and reaps our own child, not yet reaped.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// What a broker decided, for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub connects_allowed: u64,
    pub connects_refused: u64,
    pub names_answered: u64,
    pub names_refused: u64,
    pub names_failed: u64,
    pub accepted: u64,
}

impl Counts {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "egress: {} connections allowed, {} refused; {} names answered, {} refused",
            self.connects_allowed, self.connects_refused, self.names_answered, self.names_refused
        );
        if self.names_failed > 0 {
            s += &format!(", {} failed", self.names_failed);
        }
        if self.accepted > 0 {
            s += &format!("; {} connections accepted on published ports", self.accepted);
        }
        s
    }
}

#[derive(Default)]
struct Counters {
    connects_allowed: AtomicU64,
    connects_refused: AtomicU64,
    names_answered: AtomicU64,
    names_refused: AtomicU64,
    names_failed: AtomicU64,
    accepted: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            connects_allowed: get(&self.connects_allowed),
            connects_refused: get(&self.connects_refused),
            names_answered: get(&self.names_answered),
            names_refused: get(&self.names_refused),
            names_failed: get(&self.names_failed),
            accepted: get(&self.accepted),
        }
    }
}

/// Host lookups running at once; a query beyond them is answered
/// SERVFAIL at once rather than queued behind slow ones.
const MAX_LOOKUPS_IN_FLIGHT: usize = 4;
/// Addresses remembered as resolved (oldest forgotten first), and names
/// per address: a guest that resolves endless allowed names (a wildcard
/// rule) cannot grow the broker without bound.
const MAX_RESOLVED: usize = 4096;
const MAX_NAMES_PER_IP: usize = 8;
/// Distinct decisions logged per second; the rest are only counted.
const LOG_LINES_PER_SECOND: usize = 32;

/// Addresses the broker resolved itself, and the names they were
/// resolved for: a connection to one may be allowed by the name's rule.
#[derive(Default)]
struct ResolvedTable {
    names: HashMap<IpAddr, Vec<String>>,
    order: VecDeque<IpAddr>,
}

impl ResolvedTable {
    fn insert(&mut self, ip: IpAddr, name: &str) {
        let ip = canonical(ip);
        let names = match self.names.get_mut(&ip) {
            Some(n) => n,
            None => {
                if self.order.len() >= MAX_RESOLVED {
                    if let Some(old) = self.order.pop_front() {
                        self.names.remove(&old);
                    }
                }
                self.order.push_back(ip);
                self.names.entry(ip).or_default()
            }
        };
        if !names.iter().any(|n| n == name) {
            if names.len() >= MAX_NAMES_PER_IP {
                names.remove(0);
            }
            names.push(name.to_string());
        }
    }
}

/// What a decision log line is about, for the rate limit.
#[derive(Clone, PartialEq, Eq, Hash)]
enum LogKey {
    /// tcp?, destination (or peer, for a published port).
    Connect(bool, SocketAddr),
    Name(String),
    Other(&'static str),
}

/// At most [`LOG_LINES_PER_SECOND`] distinct lines a second, each
/// distinct thing once a second; what is held back is counted and said
/// in one line when the next second's window opens.
struct DecisionLog {
    enabled: bool,
    window: Instant,
    seen: HashSet<LogKey>,
    held_back: u64,
}

impl DecisionLog {
    fn admit(&mut self, key: LogKey) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            if self.held_back > 0 {
                tracing::info!(target: "egress", "{} more decisions in the last second not logged", self.held_back);
            }
            self.window = Instant::now();
            self.seen.clear();
            self.held_back = 0;
        }
        if self.seen.len() < LOG_LINES_PER_SECOND && self.seen.insert(key) {
            return true;
        }
        self.held_back += 1;
        false
    }
}

/// Why the broker refused a destination.
enum Refused {
    Policy(Refusal),
    /// eth0's own subnets: the gateway and resolver are runsc-lite's,
    /// the rest is the sandbox's own link.
    OwnSubnet,
    /// Linux connects the unspecified address to the local host.
    Unspecified,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Policy(Refusal::NotAllowed) => write!(f, "not in the allowlist"),
            Refused::Policy(r) => write!(f, "{r}"),
            Refused::OwnSubnet => write!(f, "it is on the sandbox's own eth0 subnet"),
            Refused::Unspecified => write!(f, "the unspecified address is the host's own loopback"),
        }
    }
}

/// What the serve loop and the lookup threads share.
struct Shared {
    chan: OwnedFd,
    cfg: BrokerConfig,
    eth0: [IpNet; 2],
    resolved: Mutex<ResolvedTable>,
    counts: Counters,
    lookups_in_flight: AtomicUsize,
    log: Mutex<DecisionLog>,
}

impl Shared {
    fn send(&self, reply: &Reply, fd: Option<BorrowedFd<'_>>) {
        if let Err(e) = sys::send_record(self.chan.as_fd(), &reply.encode(), fd) {
            // A closed channel ends the serve loop at its next receive.
            if e.raw_os_error() != Some(libc::EPIPE) {
                tracing::warn!(target: "egress", "cannot send a reply to the Sentry: {e}");
            }
        }
    }

    fn log(&self, key: LogKey, line: impl FnOnce() -> String) {
        let Ok(mut log) = self.log.lock() else { return };
        if log.enabled && log.admit(key) {
            tracing::info!(target: "egress", "{}", line());
        }
    }

    /// Where a connection to `dst` really goes, or why it may not.
    fn decide(&self, dst: SocketAddr) -> Result<(SocketAddr, Option<String>), Refused> {
        let (ip, port) = (canonical(dst.ip()), dst.port());
        let policy = &self.cfg.policy;
        let host_loopback = match ip {
            IpAddr::V4(a) if a == proto::GATEWAY_V4 => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V6(a) if a == proto::GATEWAY_V6 => Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            _ => None,
        };
        if let Some(lo) = host_loopback {
            policy.check(Dest::HostGateway(port)).map_err(Refused::Policy)?;
            return Ok((SocketAddr::new(lo, port), Some("host-gateway".into())));
        }
        if ip.is_unspecified() {
            return Err(Refused::Unspecified);
        }
        if self.eth0.iter().any(|n| n.contains(ip)) {
            return Err(Refused::OwnSubnet);
        }
        match policy.check(Dest::Addr(ip, port)) {
            Ok(()) => Ok((SocketAddr::new(ip, port), None)),
            Err(Refusal::NotAllowed) => {
                let names = self.names_of(ip);
                let Some(name) = names.iter().find(|n| policy.name_port_allowed(n, port)) else {
                    return Err(Refused::Policy(Refusal::NotAllowed));
                };
                policy.check(Dest::Resolved { name, ip, port }).map_err(Refused::Policy)?;
                Ok((SocketAddr::new(ip, port), Some(name.clone())))
            }
            Err(r) => Err(Refused::Policy(r)),
        }
    }

    /// The names `ip` was resolved for (or is an `--add-host` entry of).
    fn names_of(&self, ip: IpAddr) -> Vec<String> {
        let mut names: Vec<String> = self
            .cfg
            .statics
            .iter()
            .filter(|s| matches!(s.target, HostTarget::Ip(t) if canonical(t) == ip))
            .map(|s| s.name.clone())
            .collect();
        if let Ok(t) = self.resolved.lock() {
            names.extend(t.names.get(&ip).into_iter().flatten().cloned());
        }
        names
    }

    fn connect(&self, id: u32, proto: Proto, dst: SocketAddr) {
        match self.connect_checked(proto, dst) {
            Ok(sock) => self.send(&Reply::Connected { id, result: Ok(()) }, Some(sock.as_fd())),
            Err(e) => self.send(&Reply::Connected { id, result: Err(e) }, None),
        }
    }

    /// Decide on a connection to `dst` (logged and counted) and make it:
    /// the connected host socket, or the errno for the guest
    /// (ECONNREFUSED when the policy refuses).
    fn connect_checked(&self, proto: Proto, dst: SocketAddr) -> Result<OwnedFd, i32> {
        let what = if proto == Proto::Tcp { "tcp" } else { "udp" };
        let key = LogKey::Connect(proto == Proto::Tcp, dst);
        match self.decide(dst) {
            Err(why) => {
                Counters::bump(&self.counts.connects_refused);
                self.log(key, || format!("refused {what} {dst}: {why}"));
                Err(libc::ECONNREFUSED)
            }
            Ok((to, via)) => {
                Counters::bump(&self.counts.connects_allowed);
                let result = sys::connect(proto == Proto::Tcp, to);
                self.log(key, || {
                    let via = match via {
                        Some(v) if to.ip().is_loopback() => format!(" ({v}: the host's {to})"),
                        Some(v) => format!(" ({v})"),
                        None => String::new(),
                    };
                    let outcome = match &result {
                        Ok(_) => String::new(),
                        Err(e) => format!(": {}", std::io::Error::from_raw_os_error(*e)),
                    };
                    format!("allowed {what} {dst}{via}{outcome}")
                });
                result
            }
        }
    }

    /// The answer for `name` without the host's resolver, or None when
    /// the host must be asked (the name is allowed).
    fn lookup_local(&self, name: &str) -> Option<dns::Lookup> {
        let Ok(name) = parse_name(name) else {
            Counters::bump(&self.counts.names_refused);
            return Some(dns::Lookup::NoSuchName);
        };
        let mut ips = Vec::new();
        for s in self.cfg.statics.iter().filter(|s| s.name == name) {
            match s.target {
                HostTarget::Ip(ip) => ips.push(ip),
                HostTarget::HostGateway => {
                    ips.extend([IpAddr::V4(proto::GATEWAY_V4), IpAddr::V6(proto::GATEWAY_V6)]);
                }
            }
        }
        if !ips.is_empty() {
            Counters::bump(&self.counts.names_answered);
            self.log(LogKey::Name(name.clone()), || format!("name {name}: answered from --add-host"));
            return Some(dns::Lookup::Found(ips));
        }
        if self.cfg.policy.name_allowed(&name) {
            return None;
        }
        Counters::bump(&self.counts.names_refused);
        self.log(LogKey::Name(name.clone()), || format!("name {name}: NXDOMAIN: not in the allowlist"));
        Some(dns::Lookup::NoSuchName)
    }

    /// Resolve an allowed name on the host, remembering its addresses.
    fn lookup_host(&self, name: &str) -> dns::Lookup {
        let Ok(name) = parse_name(name) else { return dns::Lookup::NoSuchName };
        let (answer, outcome) = match sys::resolve(&name) {
            sys::HostLookup::Found(ips) => {
                if let Ok(mut t) = self.resolved.lock() {
                    for ip in &ips {
                        t.insert(*ip, &name);
                    }
                }
                Counters::bump(&self.counts.names_answered);
                let n = ips.len();
                (dns::Lookup::Found(ips), format!("answered ({n} addresses)"))
            }
            sys::HostLookup::NoSuchName => {
                Counters::bump(&self.counts.names_answered);
                (dns::Lookup::NoSuchName, "NXDOMAIN: the host's resolver has no such name".into())
            }
            sys::HostLookup::Failed => {
                Counters::bump(&self.counts.names_failed);
                (dns::Lookup::Failed, "SERVFAIL: the host's resolver failed".into())
            }
        };
        self.log(LogKey::Name(name.clone()), || format!("name {name}: {outcome}"));
        answer
    }
}

/// Answer a DNS query: names decided locally at once; an allowed name is
/// resolved on a thread of its own (at most [`MAX_LOOKUPS_IN_FLIGHT`]).
fn dns_query(shared: &Arc<Shared>, id: u32, query: Vec<u8>) {
    let reply = |answer: Option<Vec<u8>>| Reply::Dns { id, answer: answer.unwrap_or_default() };
    if !shared.cfg.dns {
        shared.send(&reply(None), None);
        return;
    }
    let mut needs_host = false;
    let answer = dns::respond(&query, |name| {
        shared.lookup_local(name).unwrap_or_else(|| {
            needs_host = true;
            dns::Lookup::Failed
        })
    });
    if !needs_host {
        shared.send(&reply(answer), None);
        return;
    }
    if shared.lookups_in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_LOOKUPS_IN_FLIGHT {
        shared.lookups_in_flight.fetch_sub(1, Ordering::AcqRel);
        Counters::bump(&shared.counts.names_failed);
        shared.send(&reply(answer), None); // SERVFAIL
        return;
    }
    let worker = shared.clone();
    let spawned = std::thread::Builder::new().name("egress-lookup".into()).spawn(move || {
        let answer = dns::respond(&query, |name| worker.lookup_host(name));
        worker.send(&Reply::Dns { id, answer: answer.unwrap_or_default() }, None);
        worker.lookups_in_flight.fetch_sub(1, Ordering::AcqRel);
    });
    if spawned.is_err() {
        shared.lookups_in_flight.fetch_sub(1, Ordering::AcqRel);
        Counters::bump(&shared.counts.names_failed);
        shared.send(&reply(answer), None);
    }
}

/// Serve the Sentry on `chan` until it closes: connects, DNS queries and
/// the published ports' connections. Returns what was decided.
pub fn serve(chan: OwnedFd, cfg: BrokerConfig, listeners: Listeners) -> Counts {
    let eth0 = [
        IpNet::new(IpAddr::V4(proto::GUEST_V4), proto::PREFIX_V4),
        IpNet::new(IpAddr::V6(proto::GUEST_V6), proto::PREFIX_V6),
    ];
    let Some(eth0) = eth0[0].zip(eth0[1]).map(|(a, b)| [a, b]) else {
        return Counts::default();
    };
    let log = DecisionLog { enabled: cfg.log_decisions, window: Instant::now(), seen: HashSet::new(), held_back: 0 };
    let shared = Arc::new(Shared {
        chan,
        cfg,
        eth0,
        resolved: Mutex::new(ResolvedTable::default()),
        counts: Counters::default(),
        lookups_in_flight: AtomicUsize::new(0),
        log: Mutex::new(log),
    });
    // A UDP publish stays here: its datagrams are relayed to the Sentry
    // and its answers sent back only to peers that wrote first, so the
    // Sentry never holds a socket it could aim anywhere.
    let udp: Vec<PublishedUdp> =
        listeners.udp.into_iter().map(|(sock, p)| PublishedUdp { sock, publish: p, peers: Vec::new() }).collect();
    let mut udp = udp;
    let mut flows = Flows::default();
    let tcp = listeners.tcp;
    // A listener whose accept failed (out of descriptors) rests a moment
    // instead of spinning the poll loop.
    let mut resting: Vec<Option<Instant>> = vec![None; tcp.len()];
    let mut buf = vec![0u8; proto::MAX_REQUEST + 1];
    loop {
        let now = Instant::now();
        for r in resting.iter_mut() {
            if r.is_some_and(|t| now >= t) {
                *r = None;
            }
        }
        let mut fds = vec![libc::pollfd { fd: shared.chan.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        let mut polled = Vec::new();
        for (i, (l, _)) in tcp.iter().enumerate().filter(|(i, _)| resting[*i].is_none()) {
            fds.push(libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            polled.push(i);
        }
        let udp_at = fds.len();
        for u in &udp {
            fds.push(libc::pollfd { fd: u.sock.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        let flows_at = fds.len();
        let flow_ids: Vec<u32> = flows.socks.keys().copied().collect();
        for id in &flow_ids {
            if let Some(f) = flows.socks.get(id) {
                fds.push(libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            }
        }
        let timeout = if resting.iter().any(Option::is_some) { 100 } else { -1 };
        // SAFETY: a live array of `fds.len()` pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            tracing::warn!(target: "egress", "poll: {}", std::io::Error::last_os_error());
            break;
        }
        for (pfd, id) in fds.get(flows_at..).unwrap_or_default().iter().zip(&flow_ids) {
            if pfd.revents != 0 {
                flows.relay_in(&shared, *id);
            }
        }
        if fds[0].revents != 0 && !serve_requests(&shared, &mut buf, &mut udp, &mut flows) {
            break;
        }
        for (pfd, u) in fds.get(udp_at..flows_at).unwrap_or_default().iter().zip(udp.iter_mut()) {
            if pfd.revents != 0 {
                u.relay_in(&shared);
            }
        }
        for (pfd, &i) in fds[1..udp_at].iter().zip(&polled) {
            if pfd.revents != 0 && !accept_all(&shared, &tcp[i].0, tcp[i].1) {
                resting[i] = Some(Instant::now() + Duration::from_millis(100));
            }
        }
    }
    shared.counts.snapshot()
}

/// Handle every queued request; false once the channel is closed.
fn serve_requests(shared: &Arc<Shared>, buf: &mut [u8], udp: &mut [PublishedUdp], flows: &mut Flows) -> bool {
    loop {
        // Only a host-mode broker takes descriptors from the Sentry.
        let (got, fd) = if shared.cfg.hostinet {
            sys::recv_record_fd(shared.chan.as_fd(), buf)
        } else {
            (sys::recv_record(shared.chan.as_fd(), buf), None)
        };
        let n = match got {
            sys::Received::Record(n) => n,
            sys::Received::Empty => return true,
            sys::Received::Closed => return false,
        };
        match Request::decode(buf.get(..n).unwrap_or_default()) {
            Ok(req) if shared.cfg.hostinet => host::serve(shared, req, fd),
            Ok(Request::Connect { id, proto: Proto::Udp, dst }) => flows.open(shared, id, dst),
            Ok(Request::Connect { id, proto, dst }) => shared.connect(id, proto, dst),
            Ok(Request::FlowSend { flow, payload }) => flows.send(flow, &payload),
            Ok(Request::FlowClose { flow }) => {
                flows.socks.remove(&flow);
            }
            Ok(Request::Dns { id, query }) => dns_query(shared, id, query),
            Ok(Request::Datagram { guest_port, peer, payload }) => {
                match udp.iter().find(|u| u.publish.guest_port == guest_port) {
                    Some(u) => u.relay_out(shared, peer, &payload),
                    None => shared.log(LogKey::Other("datagram"), || {
                        format!("dropped a datagram from unpublished UDP port {guest_port}")
                    }),
                }
            }
            Ok(other) => shared.send(&Reply::Connected { id: other.id(), result: Err(libc::EOPNOTSUPP) }, None),
            Err(bad) => shared.log(LogKey::Other("malformed"), || format!("ignored a malformed request ({})", bad.0)),
        }
    }
}

/// UDP flows one sandbox may have open at once.
const MAX_FLOWS: usize = 1024;

/// The Sentry's UDP flows: a host socket connected to each destination
/// the policy allowed, kept here and relayed datagram by datagram, so
/// that the Sentry never holds a UDP socket it could aim elsewhere.
#[derive(Default)]
struct Flows {
    socks: HashMap<u32, UdpSocket>,
}

impl Flows {
    fn open(&mut self, shared: &Shared, id: u32, dst: SocketAddr) {
        let result = if self.socks.len() >= MAX_FLOWS {
            Err(libc::ENOBUFS)
        } else {
            shared.connect_checked(Proto::Udp, dst).map(|fd| {
                self.socks.insert(id, UdpSocket::from(fd));
            })
        };
        shared.send(&Reply::Connected { id, result }, None);
    }

    fn send(&self, flow: u32, payload: &[u8]) {
        if let Some(s) = self.socks.get(&flow) {
            let _ = s.send(payload);
        }
    }

    /// Datagrams that came in on `flow`: to the Sentry.
    fn relay_in(&self, shared: &Shared, flow: u32) {
        let Some(s) = self.socks.get(&flow) else { return };
        let mut buf = vec![0u8; proto::MAX_DATAGRAM];
        loop {
            match s.recv(&mut buf) {
                Ok(n) => shared.send(&Reply::Flow { flow, payload: buf.get(..n).unwrap_or_default().to_vec() }, None),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // WouldBlock, or an ICMP error for an earlier datagram.
                Err(_) => return,
            }
        }
    }
}

/// Peers one published UDP port answers at once (the most recent).
const MAX_UDP_PEERS: usize = 256;

/// A published UDP port and the peers that wrote to it.
struct PublishedUdp {
    sock: UdpSocket,
    publish: Publish,
    peers: Vec<SocketAddr>,
}

impl PublishedUdp {
    /// Datagrams that came in: to the Sentry, and their senders remembered.
    fn relay_in(&mut self, shared: &Shared) {
        let mut buf = vec![0u8; proto::MAX_PAYLOAD];
        loop {
            match self.sock.recv_from(&mut buf) {
                Ok((n, peer)) => {
                    if !self.peers.contains(&peer) {
                        if self.peers.len() >= MAX_UDP_PEERS {
                            self.peers.remove(0);
                        }
                        self.peers.push(peer);
                    }
                    let payload = buf.get(..n).unwrap_or_default().to_vec();
                    shared.send(&Reply::Datagram { guest_port: self.publish.guest_port, peer, payload }, None);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // WouldBlock, or an ICMP error for an earlier answer.
                Err(_) => return,
            }
        }
    }

    /// The guest's answer: only to a peer that wrote to this port.
    fn relay_out(&self, shared: &Shared, peer: SocketAddr, payload: &[u8]) {
        if !self.peers.contains(&peer) {
            let p = self.publish;
            shared
                .log(LogKey::Other("udp peer"), || format!("refused a datagram to {peer} from -p {p}: it never wrote"));
            return;
        }
        let _ = self.sock.send_to(payload, peer);
    }
}

/// Pass every pending connection of a published TCP port to the Sentry;
/// false if accepting failed (the listener should rest).
fn accept_all(shared: &Shared, l: &TcpListener, p: Publish) -> bool {
    loop {
        match l.accept() {
            Ok((stream, peer)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                Counters::bump(&shared.counts.accepted);
                shared.log(LogKey::Connect(true, peer), || format!("accepted {peer} on -p {p}"));
                shared
                    .send(&Reply::Accepted { proto: Proto::Tcp, guest_port: p.guest_port, peer }, Some(stream.as_fd()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {}
            Err(e) => {
                shared.log(LogKey::Other("accept"), || format!("cannot accept on -p {p}: {e}"));
                return false;
            }
        }
    }
}

#[cfg(test)]
#[path = "broker_tests.rs"]
mod tests;
