//! Unit tests of the broker, in-process: `serve` runs on a thread over a
//! socketpair whose other end plays the Sentry; listeners on 127.0.0.1
//! stand for the host's loopback services. No connection leaves the
//! host: refused destinations are never connected to, and the one public
//! address that is allowed is reached over UDP (a connect sends nothing).

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;

fn config(rules: &[&str], statics: &[&str]) -> BrokerConfig {
    BrokerConfig {
        policy: Policy::new(rules.iter().map(|r| r.parse().unwrap_or_else(|e| panic!("{r}: {e}"))).collect()),
        statics: statics.iter().map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))).collect(),
        dns: true,
        publish: vec![],
        log_decisions: false,
        hostinet: false,
    }
}

/// A serve loop on a thread, and the Sentry's end of its channel.
struct Running {
    sentry: OwnedFd,
    thread: JoinHandle<Counts>,
}

fn set_recv_timeout(fd: &OwnedFd, d: Duration) {
    let tv = libc::timeval { tv_sec: d.as_secs() as libc::time_t, tv_usec: 0 };
    // SAFETY: setsockopt reads a live timeval of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

fn start(cfg: BrokerConfig) -> Running {
    let listeners = listen(&cfg.publish).unwrap();
    let (broker_end, sentry) = sys::seqpacket_pair().unwrap();
    // A missing reply fails the test instead of hanging it.
    set_recv_timeout(&sentry, Duration::from_secs(5));
    let thread = std::thread::spawn(move || serve(broker_end, cfg, listeners));
    Running { sentry, thread }
}

impl Running {
    fn send_raw(&self, bytes: &[u8]) {
        sys::send_record(self.sentry.as_fd(), bytes, None).unwrap();
    }

    fn recv(&self, dns: bool) -> (Reply, Option<OwnedFd>) {
        let mut buf = vec![0u8; proto::MAX_MESSAGE];
        let (n, fd) = sys::recv_with_fd(self.sentry.as_fd(), &mut buf).expect("a reply within 5 s");
        (Reply::decode(&buf[..n], |_| dns).unwrap(), fd)
    }

    fn connect(&self, id: u32, proto: Proto, dst: SocketAddr) -> (Result<(), i32>, Option<OwnedFd>) {
        self.send_raw(&Request::Connect { id, proto, dst }.encode());
        match self.recv(false) {
            (Reply::Connected { id: got, result }, fd) => {
                assert_eq!(got, id);
                // A TCP connection's descriptor comes with success; a UDP
                // flow's socket stays in the broker.
                let want_fd = result.is_ok() && proto == Proto::Tcp;
                assert_eq!(want_fd, fd.is_some(), "{proto:?} {result:?}");
                (result, fd)
            }
            (other, _) => panic!("{other:?}"),
        }
    }

    /// Close the channel as a Sentry that exits does; the loop ends.
    fn stop(self) -> Counts {
        drop(self.sentry);
        self.thread.join().unwrap()
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn gateway(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(proto::GATEWAY_V4), port)
}

/// accept() on a non-blocking listener, waiting up to 5 s.
fn accept_within(l: &TcpListener) -> TcpStream {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match l.accept() {
            Ok((s, _)) => return s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn blocking_stream(fd: OwnedFd) -> TcpStream {
    let s = TcpStream::from(fd);
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

#[test]
fn host_gateway_reaches_the_hosts_loopback_when_allowed() {
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let b = start(config(&[&format!("host-gateway:{port}")], &[]));
    let (r, fd) = b.connect(1, Proto::Tcp, gateway(port));
    assert_eq!(r, Ok(()));
    let mut guest = blocking_stream(fd.unwrap());
    let mut served = accept_within(&host);
    served.write_all(b"hi").unwrap();
    let mut got = [0u8; 2];
    guest.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
    // Another port of the gateway is not allowed by that rule.
    assert_eq!(b.connect(2, Proto::Tcp, gateway(port.wrapping_add(1).max(1))).0, Err(libc::ECONNREFUSED));
    let c = b.stop();
    assert_eq!((c.connects_allowed, c.connects_refused), (1, 1));
}

#[test]
fn host_gateway_without_a_rule_is_refused_and_never_connected() {
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let b = start(config(&["198.51.100.0/24"], &[]));
    assert_eq!(b.connect(1, Proto::Tcp, gateway(port)).0, Err(libc::ECONNREFUSED));
    host.set_nonblocking(true).unwrap();
    assert_eq!(host.accept().map(drop).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    b.stop();
}

#[test]
fn host_gateway_over_udp() {
    let host = UdpSocket::bind("127.0.0.1:0").unwrap();
    host.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = host.local_addr().unwrap().port();
    let b = start(config(&[&format!("host-gateway:{port}")], &[]));
    let (r, fd) = b.connect(1, Proto::Udp, gateway(port));
    assert_eq!(r, Ok(()));
    assert!(fd.is_none(), "the flow's socket stays in the broker");
    // Datagrams are relayed both ways on flow 1.
    b.send_raw(&Request::FlowSend { flow: 1, payload: b"ping".to_vec() }.encode());
    let mut buf = [0u8; 8];
    let (n, from) = host.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    host.send_to(b"pong", from).unwrap();
    assert_eq!(b.recv(false).0, Reply::Flow { flow: 1, payload: b"pong".to_vec() });
    // Closed: nothing more goes out.
    b.send_raw(&Request::FlowClose { flow: 1 }.encode());
    b.send_raw(&Request::FlowSend { flow: 1, payload: b"late".to_vec() }.encode());
    host.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    assert!(host.recv_from(&mut buf).is_err(), "a closed flow sends nothing");
    b.stop();
}

#[test]
fn a_public_address_without_a_rule_is_refused() {
    let b = start(config(&[], &[]));
    let t = Instant::now();
    assert_eq!(b.connect(1, Proto::Tcp, sa("198.51.100.20:80")).0, Err(libc::ECONNREFUSED));
    assert_eq!(b.connect(2, Proto::Udp, sa("[2001:db8::1]:53")).0, Err(libc::ECONNREFUSED));
    assert!(t.elapsed() < Duration::from_secs(2), "a refusal is immediate");
    let c = b.stop();
    assert_eq!((c.connects_allowed, c.connects_refused), (0, 2));
}

/// Addresses no rule can open to the outside: the sandbox's own
/// loopback, the unspecified address (the host's loopback to Linux), and
/// eth0's own subnets (gateway ports not allowed, the resolver, the
/// guest itself, its neighbours), even under rules that name them.
#[test]
fn loopback_unspecified_and_eth0_are_never_outside() {
    let rules = ["127.0.0.0/8", "0.0.0.0", "::1", "::", "10.0.0.0/8", "[fd00::/8]"];
    let b = start(config(&rules, &[]));
    let dests = [
        "127.0.0.1:80",
        "127.1.2.3:80",
        "[::1]:80",
        "[::ffff:127.0.0.1]:80",
        "0.0.0.0:80",
        "[::]:80",
        "10.0.2.3:53",
        "10.0.2.100:80",
        "10.0.2.50:80",
        "10.0.2.2:80",
        "[fd00:0:0:2::5]:80",
        "[fd00:0:0:2::2]:80",
    ];
    for (i, d) in dests.iter().enumerate() {
        for proto in [Proto::Tcp, Proto::Udp] {
            assert_eq!(b.connect(i as u32, proto, sa(d)).0, Err(libc::ECONNREFUSED), "{d} {proto:?}");
        }
    }
    let c = b.stop();
    assert_eq!((c.connects_allowed, c.connects_refused), (0, 2 * dests.len() as u64));
}

/// A connection to an address the broker resolved itself (here an
/// --add-host entry) is allowed by the name's rule; the same address is
/// refused when only the guest claims it belongs to the name.
#[test]
fn resolved_addresses_are_allowed_by_their_names_rule() {
    let b = start(config(&["db.internal:5432"], &["db.internal:198.51.100.10"]));
    let (r, _fd) = b.connect(1, Proto::Udp, sa("198.51.100.10:5432"));
    // Allowed; without a route the host itself says so.
    assert!(matches!(r, Ok(()) | Err(libc::ENETUNREACH)), "{r:?}");
    assert_eq!(b.connect(2, Proto::Udp, sa("198.51.100.10:5433")).0, Err(libc::ECONNREFUSED));
    let c = b.stop();
    assert_eq!((c.connects_allowed, c.connects_refused), (1, 1));

    let b = start(config(&["db.internal:5432"], &[]));
    assert_eq!(b.connect(1, Proto::Udp, sa("198.51.100.10:5432")).0, Err(libc::ECONNREFUSED));
    b.stop();

    // A static name into a private range opens nothing by itself.
    let b = start(config(&["db.internal"], &["db.internal:192.168.1.10"]));
    assert_eq!(b.connect(1, Proto::Udp, sa("192.168.1.10:5432")).0, Err(libc::ECONNREFUSED));
    b.stop();
}

#[test]
fn dns_queries_get_an_answer_with_their_id() {
    let b = start(config(&["example.org"], &[]));
    b.send_raw(&Request::Dns { id: 42, query: vec![0; 12] }.encode());
    // The placeholder responder answers nothing: an empty answer.
    assert!(matches!(b.recv(true), (Reply::Dns { id: 42, .. }, None)));
    b.stop();

    let mut cfg = config(&[], &[]);
    cfg.dns = false;
    let b = start(cfg);
    b.send_raw(&Request::Dns { id: 7, query: vec![0; 12] }.encode());
    assert_eq!(b.recv(true).0, Reply::Dns { id: 7, answer: vec![] });
    b.stop();
}

#[test]
fn malformed_requests_are_ignored_and_serving_goes_on() {
    let b = start(config(&[], &[]));
    let mut with_payload = Request::Connect { id: 1, proto: Proto::Tcp, dst: sa("198.51.100.1:1") }.encode();
    with_payload.push(0);
    let mut unknown_op = vec![0u8; proto::REQ_HEADER];
    unknown_op[4] = 99;
    for bad in
        [vec![], vec![1, 2, 3], unknown_op, with_payload, vec![3u8; proto::REQ_HEADER + proto::MAX_PAYLOAD + 100]]
    {
        b.send_raw(&bad);
    }
    // The first reply is the answer to the first good request.
    assert_eq!(b.connect(77, Proto::Tcp, sa("198.51.100.20:80")).0, Err(libc::ECONNREFUSED));
    b.stop();
}

#[test]
fn refusals_under_a_flood_stay_cheap() {
    let mut cfg = config(&[], &[]);
    cfg.log_decisions = true;
    let b = start(cfg);
    let t = Instant::now();
    for i in 0..2000u32 {
        let dst = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xC633_6400 + (i % 256))), 80 + (i / 256) as u16);
        assert_eq!(b.connect(i, Proto::Tcp, dst).0, Err(libc::ECONNREFUSED));
    }
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(b.stop().connects_refused, 2000);
}

#[test]
fn the_decision_log_is_rate_limited() {
    let mut log = DecisionLog { enabled: true, window: Instant::now(), seen: HashSet::new(), held_back: 0 };
    let key = |i: u16| LogKey::Connect(true, SocketAddr::from((Ipv4Addr::LOCALHOST, i)));
    assert!(log.admit(key(1)));
    assert!(!log.admit(key(1)), "one line per destination per second");
    let admitted = (2..200).filter(|&i| log.admit(key(i))).count();
    assert_eq!(admitted, LOG_LINES_PER_SECOND - 1);
    assert_eq!(log.held_back, 1 + 198 - admitted as u64);
    log.window -= Duration::from_secs(2);
    assert!(log.admit(key(1)), "a new second, a new window");
    assert_eq!(log.held_back, 0);
}

#[test]
fn the_resolved_table_is_bounded() {
    let mut t = ResolvedTable::default();
    for i in 0..=MAX_RESOLVED as u32 {
        t.insert(IpAddr::V4(Ipv4Addr::from(i)), "a.example");
    }
    assert_eq!(t.names.len(), MAX_RESOLVED);
    assert!(!t.names.contains_key(&IpAddr::V4(Ipv4Addr::from(0))), "the oldest is forgotten");
    let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
    for i in 0..20 {
        t.insert(ip, &format!("n{i}.example"));
    }
    t.insert(ip, "n19.example");
    assert_eq!(t.names[&ip].len(), MAX_NAMES_PER_IP);
    assert_eq!(t.names[&ip].last().map(String::as_str), Some("n19.example"));
}

fn shared(cfg: BrokerConfig) -> Shared {
    let (chan, _) = sys::seqpacket_pair().unwrap();
    let log = DecisionLog { enabled: false, window: Instant::now(), seen: HashSet::new(), held_back: 0 };
    Shared {
        chan,
        cfg,
        eth0: [
            IpNet::new(IpAddr::V4(proto::GUEST_V4), proto::PREFIX_V4).unwrap(),
            IpNet::new(IpAddr::V6(proto::GUEST_V6), proto::PREFIX_V6).unwrap(),
        ],
        resolved: Mutex::new(ResolvedTable::default()),
        counts: Counters::default(),
        lookups_in_flight: AtomicUsize::new(0),
        log: Mutex::new(log),
    }
}

#[test]
fn names_are_answered_from_statics_the_host_or_not_at_all() {
    let s = shared(config(&["*.example.net"], &["db.internal:198.51.100.10", "host.docker.internal:host-gateway"]));
    let found = |l: Option<dns::Lookup>| match l {
        Some(dns::Lookup::Found(ips)) => ips,
        _ => panic!("not found"),
    };
    assert_eq!(found(s.lookup_local("DB.Internal.")), vec![sa("198.51.100.10:0").ip()]);
    assert_eq!(
        found(s.lookup_local("host.docker.internal")),
        vec![IpAddr::V4(proto::GATEWAY_V4), IpAddr::V6(proto::GATEWAY_V6)]
    );
    assert!(s.lookup_local("www.example.net").is_none(), "allowed: resolved on the host");
    assert!(matches!(s.lookup_local("example.org"), Some(dns::Lookup::NoSuchName)));
    assert!(matches!(s.lookup_local("bad name!"), Some(dns::Lookup::NoSuchName)));
    let c = s.counts.snapshot();
    assert_eq!((c.names_answered, c.names_refused), (2, 2));
}

#[test]
fn the_gateway_stands_for_the_hosts_loopback() {
    let s = shared(config(&["host-gateway:8080"], &[]));
    assert_eq!(s.decide(gateway(8080)).ok().map(|d| d.0), Some(sa("127.0.0.1:8080")));
    let v6 = SocketAddr::new(IpAddr::V6(proto::GATEWAY_V6), 8080);
    assert_eq!(s.decide(v6).ok().map(|d| d.0), Some(sa("[::1]:8080")));
    assert!(s.decide(gateway(8081)).is_err());
}

/// A host port nobody else holds now.
fn free_port(udp: bool) -> u16 {
    if udp {
        UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    } else {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }
}

#[test]
fn a_published_tcp_port_hands_each_connection_to_the_sentry() {
    let host_port = free_port(false);
    let mut cfg = config(&[], &[]);
    cfg.publish = vec![Publish { host_port, guest_port: 8000, proto: Proto::Tcp }];
    let b = start(cfg);
    let mut client = TcpStream::connect(("127.0.0.1", host_port)).unwrap();
    let (reply, fd) = b.recv(false);
    assert_eq!(reply, Reply::Accepted { proto: Proto::Tcp, guest_port: 8000, peer: client.local_addr().unwrap() });
    let mut served = blocking_stream(fd.expect("the accepted descriptor"));
    client.write_all(b"GET").unwrap();
    let mut got = [0u8; 3];
    served.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"GET");
    assert_eq!(b.stop().accepted, 1);
}

#[test]
fn a_published_udp_port_is_relayed_and_answers_only_its_peers() {
    let host_port = free_port(true);
    let mut cfg = config(&[], &[]);
    cfg.publish = vec![Publish { host_port, guest_port: 5353, proto: Proto::Udp }];
    let b = start(cfg);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    client.send_to(b"q", ("127.0.0.1", host_port)).unwrap();
    let (reply, fd) = b.recv(false);
    let peer = client.local_addr().unwrap();
    assert_eq!(reply, Reply::Datagram { guest_port: 5353, peer, payload: b"q".to_vec() });
    assert!(fd.is_none(), "the socket stays in the broker");
    // An answer to that peer goes out from the published port.
    b.send_raw(&Request::Datagram { guest_port: 5353, peer, payload: b"a".to_vec() }.encode());
    let mut buf = [0u8; 4];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"a"[..], sa(&format!("127.0.0.1:{host_port}"))));
    // To anyone who never wrote: nothing.
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    other.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let stranger = other.local_addr().unwrap();
    b.send_raw(&Request::Datagram { guest_port: 5353, peer: stranger, payload: b"x".to_vec() }.encode());
    assert!(other.recv_from(&mut buf).is_err(), "no datagram to a peer that never wrote");
    b.stop();
}

#[test]
fn a_host_port_published_twice_is_a_clear_error() {
    for (udp, verb) in [(false, "listen on"), (true, "bind")] {
        let host_port = free_port(udp);
        let p = Publish { host_port, guest_port: 8000, proto: if udp { Proto::Udp } else { Proto::Tcp } };
        let _first = listen(&[p]).unwrap();
        let e = listen(&[p]).expect_err("the port is taken");
        let suffix = if udp { "/udp" } else { "" };
        let want = format!("-p {host_port}:8000{suffix}: cannot {verb} 127.0.0.1:{host_port}: ");
        assert!(e.starts_with(&want) && e.contains("Address already in use"), "{e}");
        assert!(!e.contains('\n'));
    }
}

#[test]
fn publish_values() {
    let ok = |s: &str| s.parse::<Publish>().unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(ok("18080:8000"), Publish { host_port: 18080, guest_port: 8000, proto: Proto::Tcp });
    assert_eq!(ok("80:8080/tcp"), Publish { host_port: 80, guest_port: 8080, proto: Proto::Tcp });
    assert_eq!(ok("5353:53/udp"), Publish { host_port: 5353, guest_port: 53, proto: Proto::Udp });
    assert_eq!(ok("5353:53/udp").to_string(), "5353:53/udp");
    for bad in ["", "abc", "80", "0:80", "80:0", "80:70000", "80:80/sctp", "a:b", ":80", "1.2.3.4:80:80", "80:80/"] {
        let line = bad.parse::<Publish>().expect_err(bad).to_string();
        assert!(line.starts_with("invalid --publish value "), "{line}");
        assert!(line.contains(&format!("{bad:?}")), "{line}");
    }
}

#[test]
fn the_summary_is_one_line() {
    let c =
        Counts { connects_allowed: 3, connects_refused: 2, names_answered: 5, names_refused: 1, ..Counts::default() };
    assert_eq!(c.summary(), "egress: 3 connections allowed, 2 refused; 5 names answered, 1 refused");
}

/// The real thing: a broker process, refusing, then ending with the
/// channel.
#[test]
fn a_spawned_broker_serves_and_ends_with_its_channel() {
    let mut b = spawn(config(&[], &[])).unwrap();
    let sentry = b.take_sentry_end().unwrap();
    assert!(b.take_sentry_end().is_none());
    set_recv_timeout(&sentry, Duration::from_secs(5));
    sys::send_record(
        sentry.as_fd(),
        &Request::Connect { id: 9, proto: Proto::Tcp, dst: sa("198.51.100.20:80") }.encode(),
        None,
    )
    .unwrap();
    let mut buf = vec![0u8; proto::MAX_MESSAGE];
    let (n, fd) = sys::recv_with_fd(sentry.as_fd(), &mut buf).unwrap();
    assert_eq!(Reply::decode(&buf[..n], |_| false), Ok(Reply::Connected { id: 9, result: Err(libc::ECONNREFUSED) }));
    assert!(fd.is_none());
    drop(sentry);
    let t = Instant::now();
    b.finish();
    assert!(t.elapsed() < Duration::from_secs(4), "the broker ended with its channel");
}

// ---------------------------------------------------------------------------
// --network=host: sockets made by the broker, acted on when handed back.

fn host_config(rules: &[&str]) -> BrokerConfig {
    BrokerConfig { hostinet: true, ..config(rules, &[]) }
}

impl Running {
    /// A hostinet request, with `fd` attached; the result and the
    /// descriptor of the reply.
    fn host_op(&self, req: Request, fd: Option<BorrowedFd<'_>>) -> (Result<(), i32>, Option<OwnedFd>) {
        let id = req.id();
        sys::send_record(self.sentry.as_fd(), &req.encode(), fd).unwrap();
        match self.recv(false) {
            (Reply::Connected { id: got, result }, fd) => {
                assert_eq!(got, id);
                (result, fd)
            }
            (other, _) => panic!("{other:?}"),
        }
    }

    fn host_socket(&self, domain: i32, sock_type: i32) -> OwnedFd {
        let (r, fd) = self.host_op(Request::Socket { id: 1, domain, sock_type, protocol: 0 }, None);
        assert_eq!(r, Ok(()));
        fd.expect("a socket comes with the reply")
    }
}

fn sock_int(fd: &OwnedFd, name: i32) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: live locals of the sizes given.
    let r = unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, name, (&mut v as *mut libc::c_int).cast(), &mut len)
    };
    assert_eq!(r, 0);
    v
}

#[test]
fn host_mode_makes_binds_and_connects_sockets() {
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let b = start(host_config(&[]));
    let s = b.host_socket(libc::AF_INET6, libc::SOCK_STREAM);
    assert_eq!(sock_int(&s, libc::SO_DOMAIN), libc::AF_INET6);
    assert_eq!(sock_int(&s, libc::SO_TYPE), libc::SOCK_STREAM);
    // SAFETY: F_GETFL takes no memory.
    let fl = unsafe { libc::fcntl(s.as_raw_fd(), libc::F_GETFL) };
    assert!(fl & libc::O_NONBLOCK != 0, "the broker never blocks on a guest's socket");
    // An IPv4 address on a v6 socket is its v4-mapped form; no rules:
    // the host's loopback is reached.
    assert_eq!(b.host_op(Request::Bind { id: 2, addr: sa("0.0.0.0:0") }, Some(s.as_fd())).0, Ok(()));
    let r = b.host_op(
        Request::ConnectSocket { id: 3, addr: SocketAddr::from(([127, 0, 0, 1], port)), again: false },
        Some(s.as_fd()),
    );
    assert!(matches!(r.0, Ok(()) | Err(libc::EINPROGRESS)), "{r:?}");
    let mut served = accept_within(&host);
    let mut guest = blocking_stream(s);
    served.write_all(b"hi").unwrap();
    let mut got = [0u8; 2];
    guest.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
    let c = b.stop();
    assert_eq!((c.connects_allowed, c.connects_refused), (1, 0));
}

#[test]
fn host_mode_checks_connects_and_datagrams_against_rules_when_given() {
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let uport = udp.local_addr().unwrap().port();
    let b = start(host_config(&["198.51.100.10:8000", &format!("127.0.0.1:{uport}")]));
    let s = b.host_socket(libc::AF_INET, libc::SOCK_STREAM);
    let lo = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(
        b.host_op(Request::ConnectSocket { id: 1, addr: lo, again: false }, Some(s.as_fd())).0,
        Err(libc::ECONNREFUSED)
    );
    host.set_nonblocking(true).unwrap();
    assert_eq!(host.accept().map(drop).unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "never connected");
    let twenty = sa("198.51.100.20:8000");
    assert_eq!(
        b.host_op(Request::ConnectSocket { id: 2, addr: twenty, again: false }, Some(s.as_fd())).0,
        Err(libc::ECONNREFUSED)
    );
    // A datagram: to a listed loopback port it goes, elsewhere not.
    let d = b.host_socket(libc::AF_INET, libc::SOCK_DGRAM);
    let to = SocketAddr::from(([127, 0, 0, 1], uport));
    let send = |id, addr| b.host_op(Request::SendTo { id, addr, payload: b"ping".to_vec() }, Some(d.as_fd())).0;
    assert_eq!(send(3, to), Ok(()));
    let mut buf = [0u8; 8];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(send(4, SocketAddr::from(([127, 0, 0, 1], uport.wrapping_add(1).max(1)))), Err(libc::ECONNREFUSED));
    assert_eq!(b.host_op(Request::Disconnect { id: 5 }, Some(d.as_fd())).0, Ok(()));
    let c = b.stop();
    assert_eq!((c.connects_allowed, c.connects_refused), (0, 3));
}

#[test]
fn host_mode_refuses_what_is_not_an_inet_socket() {
    let b = start(host_config(&[]));
    let bad = [
        (libc::AF_UNIX, libc::SOCK_STREAM, libc::EAFNOSUPPORT),
        (libc::AF_NETLINK, libc::SOCK_DGRAM, libc::EAFNOSUPPORT),
        (libc::AF_INET, libc::SOCK_RAW, libc::ESOCKTNOSUPPORT),
        (libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, libc::ESOCKTNOSUPPORT),
        (-1, i32::MIN, libc::EAFNOSUPPORT),
    ];
    for (domain, sock_type, want) in bad {
        let (r, fd) = b.host_op(Request::Socket { id: 1, domain, sock_type, protocol: 0 }, None);
        assert_eq!((r, fd.is_some()), (Err(want), false), "{domain} {sock_type}");
    }
    // An op without its socket, or with something else than an inet one.
    let addr = sa("127.0.0.1:1");
    assert_eq!(b.host_op(Request::Bind { id: 2, addr }, None).0, Err(libc::EBADF));
    let (unix, _peer) = sys::seqpacket_pair().unwrap();
    for req in [
        Request::Bind { id: 3, addr },
        Request::ConnectSocket { id: 4, addr, again: true },
        Request::Disconnect { id: 5 },
        Request::SendTo { id: 6, addr, payload: vec![1] },
    ] {
        assert_eq!(b.host_op(req.clone(), Some(unix.as_fd())).0, Err(libc::ENOTSOCK), "{req:?}");
    }
    let pipe = std::fs::File::open("/dev/null").unwrap();
    assert!(b.host_op(Request::Bind { id: 7, addr }, Some(pipe.as_fd())).0.is_err());
    // The sandbox's ops have no place in host mode; serving goes on.
    assert_eq!(b.host_op(Request::Connect { id: 8, proto: Proto::Tcp, dst: addr }, None).0, Err(libc::EOPNOTSUPP));
    let s = b.host_socket(libc::AF_INET, libc::SOCK_DGRAM);
    // An IPv6 address on an AF_INET socket.
    assert_eq!(b.host_op(Request::Bind { id: 9, addr: sa("[::1]:0") }, Some(s.as_fd())).0, Err(libc::EAFNOSUPPORT));
    b.stop();
}

#[test]
fn a_sandbox_mode_broker_takes_no_socket_ops_and_no_descriptors() {
    let b = start(config(&[], &[]));
    let (r, fd) =
        b.host_op(Request::Socket { id: 1, domain: libc::AF_INET, sock_type: libc::SOCK_STREAM, protocol: 0 }, None);
    assert_eq!((r, fd.is_some()), (Err(libc::EOPNOTSUPP), false));
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let req = Request::SendTo { id: 2, addr: sa("127.0.0.1:9"), payload: vec![1] };
    assert_eq!(b.host_op(req, Some(s.as_fd())).0, Err(libc::EOPNOTSUPP));
    b.stop();
}
