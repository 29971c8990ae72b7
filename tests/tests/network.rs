//! `--network=sandbox`: eth0, the egress broker, the resolver, published
//! ports. Every test runs in a network namespace of its own (`unshare
//! -n`, loopback up) where a dummy (or veth) interface with documentation
//! addresses (198.51.100.10 and .20) stands for hosts outside, so no
//! packet ever leaves this machine.

use std::process::{Command, Stdio};
use tests::{run_with_timeout, runsc_lite_bin, skip, timeout, RunOutput, TempDir};

/// Run `script` (bash) in a new network namespace where "outside" web
/// servers answer on 198.51.100.10:8000 ("ten") and 198.51.100.20:8000
/// ("twenty"), and a "host loopback" one on 127.0.0.1:8080 ("host-lo").
/// `$RUNSC` is runsc-lite (with a debug log at `$LOG`).
fn in_netns(test: &str, script: &str) -> Option<RunOutput> {
    for tool in ["unshare", "ip", "python3"] {
        if tests::which(tool).is_none() {
            skip(test, &format!("{tool} is not installed"));
            return None;
        }
    }
    let dir = TempDir::new(test);
    let d = dir.path().display();
    let setup = format!(
        r#"
set -e
ip link set lo up
# A dummy interface where the kernel has the module, else one end of a
# veth pair: either way the addresses are local to this namespace.
ip link add out0 type dummy 2>/dev/null || ip link add out0 type veth peer name out0p
ip link set out0p up 2>/dev/null || true
ip addr add 198.51.100.10/24 dev out0
ip addr add 198.51.100.20/24 dev out0
ip link set out0 up
for site in ten twenty host-lo; do mkdir -p {d}/$site; echo "hello from $site" > {d}/$site/index.txt; done
python3 -m http.server --bind 198.51.100.10 --directory {d}/ten 8000 >/dev/null 2>&1 &
python3 -m http.server --bind 198.51.100.20 --directory {d}/twenty 8000 >/dev/null 2>&1 &
python3 -m http.server --bind 127.0.0.1 --directory {d}/host-lo 8080 >/dev/null 2>&1 &
trap 'kill $(jobs -p) 2>/dev/null' EXIT
python3 - <<'PY'
import socket, time
for addr in [("198.51.100.10", 8000), ("198.51.100.20", 8000), ("127.0.0.1", 8080)]:
    while True:
        try:
            socket.create_connection(addr, timeout=5).close()
            break
        except OSError:
            time.sleep(0.02)
PY
export D={d} LOG={d}/debug.log
cat > {d}/fetch.py <<'PY'
{FETCH}
PY
# Wait (no time limit: the test's own timeout bounds it) until
# ADDR:PORT accepts a TCP connection.
cat > {d}/wait_tcp.py <<'PY'
import socket, sys, time
while True:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
        break
    except OSError:
        time.sleep(0.05)
PY
# Wait until file $1 exists (a server writes it once it listens).
wait_file() {{ until [ -e "$1" ]; do sleep 0.05; done; }}
RUNSC="{bin} --debug-log=$LOG"
set +e
"#,
        bin = runsc_lite_bin().display(),
        FETCH = FETCH.trim(),
    );
    let mut c = Command::new("unshare");
    c.args(["-n", "bash", "-c"]).arg(format!("{setup}\n{script}")).stdin(Stdio::null());
    let out = run_with_timeout(&mut c, timeout());
    if out.stderr.contains("unshare failed") || out.stderr.contains("Operation not permitted") && out.status != 0 {
        skip(test, "cannot make a network namespace here");
        return None;
    }
    Some(out)
}

/// A guest python3 that fetches each URL and prints the body or the
/// error's errno/name.
const FETCH: &str = r#"
import sys, urllib.request, socket
for url in sys.argv[1:]:
    try:
        print(url, "->", urllib.request.urlopen(url, timeout=20).read().decode().strip())
    except urllib.error.URLError as e:
        r = e.reason
        print(url, "->", "error", getattr(r, "errno", None) or type(r).__name__)
"#;

fn fetch(urls: &[&str]) -> String {
    format!("python3 $D/fetch.py {}", urls.join(" "))
}

#[test]
fn allowed_addresses_are_reached_and_others_refused_at_once() {
    let script = format!(
        "$RUNSC --network=sandbox --allow-host=198.51.100.10:8000 do {}; echo status=$?; grep -c 'refused tcp 198.51.100.20:8000' $LOG",
        fetch(&["http://198.51.100.10:8000/index.txt", "http://198.51.100.20:8000/index.txt"])
    );
    let Some(out) = in_netns("allowed_addresses", &script) else { return };
    assert!(out.stdout.contains("http://198.51.100.10:8000/index.txt -> hello from ten"), "{}", out.describe());
    assert!(out.stdout.contains("http://198.51.100.20:8000/index.txt -> error 111"), "{}", out.describe());
    assert!(out.stdout.contains("status=0"), "{}", out.describe());
    assert!(!out.stdout.trim_end().ends_with("\n0"), "the refusal is in the debug log: {}", out.describe());
    assert!(
        out.stderr.contains("egress: 1 connections allowed, 1 refused"),
        "the summary line at exit: {}",
        out.describe()
    );
}

#[test]
fn cidrs_and_names_from_add_host() {
    let names = r#"
import socket
for n in ["web.test", "nope.test", "example.org"]:
    try:
        print(n, socket.getaddrinfo(n, 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
    except socket.gaierror as e:
        print(n, "gaierror", e.errno)
"#;
    let script = format!(
        "$RUNSC --network=sandbox --allow-host=198.51.100.0/28 do {a}\n\
         $RUNSC --network=sandbox --add-host=web.test:198.51.100.20 --allow-host=web.test do {b}\n\
         $RUNSC --network=sandbox --add-host=web.test:198.51.100.20 --allow-host=web.test do python3 -c '{names}'",
        a = fetch(&["http://198.51.100.10:8000/index.txt", "http://198.51.100.20:8000/index.txt"]),
        b = fetch(&["http://web.test:8000/index.txt", "http://198.51.100.10:8000/index.txt"]),
    );
    let Some(out) = in_netns("cidrs_and_names", &script) else { return };
    let o = &out.stdout;
    assert!(o.contains("http://198.51.100.10:8000/index.txt -> hello from ten"), "{}", out.describe());
    assert!(o.contains("http://198.51.100.20:8000/index.txt -> error 111"), "{}", out.describe());
    assert!(o.contains("http://web.test:8000/index.txt -> hello from twenty"), "{}", out.describe());
    assert!(o.contains("web.test 198.51.100.20"), "{}", out.describe());
    assert!(o.contains("nope.test gaierror -2"), "NXDOMAIN for an unlisted name: {}", out.describe());
    assert!(o.contains("example.org gaierror -2"), "{}", out.describe());
}

#[test]
fn the_hosts_loopback_only_through_host_gateway() {
    let script = format!(
        "$RUNSC --network=sandbox --allow-host=host-gateway:8080 --add-host=hostsvc:host-gateway do {a}\n\
         $RUNSC --network=sandbox --allow-host=host-gateway:9090 do {b}\n\
         $RUNSC --network=sandbox --allow-host=host-gateway:8080 do bash -c '\n\
mkdir -p /tmp/own && echo own loopback > /tmp/own/index.txt\n\
python3 -m http.server --bind 127.0.0.1 --directory /tmp/own 8080 >/dev/null 2>&1 & \n\
python3 $D/wait_tcp.py 127.0.0.1 8080; {c}; kill %1'",
        a = fetch(&[
            "http://10.0.2.2:8080/index.txt",
            "http://hostsvc:8080/index.txt",
            "http://127.0.0.1:8080/index.txt"
        ]),
        b = fetch(&["http://10.0.2.2:8080/index.txt"]),
        c = fetch(&["http://127.0.0.1:8080/index.txt"]),
    );
    let Some(out) = in_netns("host_gateway", &script) else { return };
    let o = &out.stdout;
    assert!(o.contains("http://10.0.2.2:8080/index.txt -> hello from host-lo"), "{}", out.describe());
    assert!(o.contains("http://hostsvc:8080/index.txt -> hello from host-lo"), "{}", out.describe());
    assert!(
        o.contains("http://127.0.0.1:8080/index.txt -> error 111"),
        "the sandbox's own loopback: {}",
        out.describe()
    );
    assert!(o.contains("http://10.0.2.2:8080/index.txt -> error 111"), "{}", out.describe());
    assert!(o.contains("http://127.0.0.1:8080/index.txt -> own loopback"), "{}", out.describe());
}

#[test]
fn an_allowed_name_cannot_be_pointed_elsewhere() {
    // The guest claims web.test lives at .20 (its own /etc/hosts entry,
    // the Host header): the broker only connects web.test to the
    // address it resolved itself (.10).
    let client = r#"
import http.client
for ip in ["198.51.100.10", "198.51.100.20"]:
    c = http.client.HTTPConnection(ip, 8000, timeout=20)
    try:
        c.request("GET", "/index.txt", headers={"Host": "web.test"})
        print(ip, c.getresponse().read().decode().strip())
    except OSError as e:
        print(ip, "error", e.errno)
"#;
    let script = format!(
        "$RUNSC --network=sandbox --add-host=web.test:198.51.100.10 --allow-host=web.test do python3 -c '{client}'"
    );
    let Some(out) = in_netns("redirect", &script) else { return };
    assert!(out.stdout.contains("198.51.100.10 hello from ten"), "{}", out.describe());
    assert!(out.stdout.contains("198.51.100.20 error 111"), "{}", out.describe());
}

#[test]
fn published_ports_reach_a_guest_server() {
    let script = "\
$RUNSC --network=sandbox -p 18080:8000 do bash -c 'mkdir -p /tmp/w && echo published > /tmp/w/index.txt && exec python3 -m http.server --directory /tmp/w 8000' >/dev/null 2>&1 &\n\
sandbox=$!\n\
until python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:18080/index.txt\", timeout=5).read().decode().strip())' 2>/dev/null; do sleep 0.1; done\n\
$RUNSC --network=sandbox -p 18080:8000 do true; echo second=$?\n\
kill $sandbox; wait $sandbox";
    let Some(out) = in_netns("published", script) else { return };
    assert!(out.stdout.contains("published"), "{}", out.describe());
    assert!(out.stdout.contains("second=") && !out.stdout.contains("second=0"), "{}", out.describe());
    assert!(out.stderr.contains("18080"), "the second sandbox names the port: {}", out.describe());
}

#[test]
fn eth0_and_its_routes_are_shown() {
    if tests::which("ip").is_none() {
        return skip("eth0_and_its_routes", "ip is not installed");
    }
    let mut c = Command::new(runsc_lite_bin());
    c.args(["--network=sandbox", "do", "sh", "-c", "ip addr show eth0; ip route; ip -6 route"]).stdin(Stdio::null());
    let out = run_with_timeout(&mut c, timeout());
    assert_eq!(out.status, 0, "{}", out.describe());
    for want in ["eth0", "inet 10.0.2.100/24", "mtu 1500", "default via 10.0.2.2 dev eth0", "fd00:0:0:2::100/64"] {
        assert!(out.stdout.contains(want), "{want}: {}", out.describe());
    }
}

#[test]
fn udp_out_to_allowed_destinations_only_and_no_icmp_out() {
    let guest = r#"
import socket, errno
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(20)
s.sendto(b"ping", ("198.51.100.10", 5353))
print("allowed", s.recvfrom(100))
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.settimeout(20)
r.connect(("198.51.100.20", 5353))
r.send(b"ping")
try:
    print("refused", r.recv(100))
except OSError as e:
    print("refused", "error", e.errno)
i = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
try:
    i.sendto(b"\x08\x00\x00\x00\x00\x01\x00\x01", ("198.51.100.10", 0))
    print("icmp sent")
except OSError as e:
    print("icmp", "error", e.errno)
"#;
    let script = format!(
        r#"python3 -c '
import socket
for a in ["198.51.100.10", "198.51.100.20"]:
    import os
    if os.fork() == 0:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((a, 5353))
        open(os.environ["D"] + "/udp." + a, "w").close()
        while True:
            d, p = s.recvfrom(100); s.sendto(b"echo " + d, p)
' &
wait_file $D/udp.198.51.100.10; wait_file $D/udp.198.51.100.20
$RUNSC --network=sandbox --allow-host=198.51.100.10:5353 do python3 -c '{guest}'
kill $(jobs -p) 2>/dev/null; true"#
    );
    let Some(out) = in_netns("udp_out", &script) else { return };
    let o = &out.stdout;
    assert!(o.contains("allowed (b'echo ping', ('198.51.100.10', 5353))"), "{}", out.describe());
    assert!(o.contains("refused error 111"), "{}", out.describe());
    assert!(o.contains("icmp error 101"), "echo requests never leave: {}", out.describe());
}

#[test]
fn dns_none_leaves_resolv_conf_alone() {
    let mut c = Command::new(runsc_lite_bin());
    c.args([
        "--network=sandbox",
        "--dns=none",
        "do",
        "sh",
        "-c",
        "grep -qs 10.0.2.3 /etc/resolv.conf && echo ours || echo not-ours",
    ])
    .stdin(Stdio::null());
    let out = run_with_timeout(&mut c, timeout());
    assert_eq!(out.stdout.trim(), "not-ours", "{}", out.describe());
    let mut c = Command::new(runsc_lite_bin());
    c.args(["--network=sandbox", "do", "cat", "/etc/resolv.conf"]).stdin(Stdio::null());
    let out = run_with_timeout(&mut c, timeout());
    assert!(out.stdout.contains("nameserver 10.0.2.3"), "{}", out.describe());
}

#[test]
fn a_dead_broker_ends_networking_with_resets_not_hangs() {
    let guest = r#"
import socket, os, time
c = socket.create_connection(("198.51.100.10", 8000), timeout=30)
print("connected", flush=True)
while not os.path.exists(os.environ["D"] + "/killed"):
    time.sleep(0.05)
try:
    print("recv", c.recv(100))
except OSError as e:
    print("recv error", e.errno)
try:
    socket.create_connection(("198.51.100.10", 8000), timeout=30)
    print("connect ok")
except OSError as e:
    print("connect error", e.errno)
"#;
    let script = format!(
        r#"$RUNSC --network=sandbox --allow-host=198.51.100.10:8000 do python3 -c '{guest}' > $D/out 2>&1 &
sandbox=$!
until grep -q connected $D/out 2>/dev/null; do sleep 0.05; done
pkill -KILL -P $sandbox -x egress-broker; echo killed=$?
touch $D/killed
wait $sandbox; echo status=$?
cat $D/out"#
    );
    let Some(out) = in_netns("dead_broker", &script) else { return };
    let o = &out.stdout;
    assert!(o.contains("killed=0"), "{}", out.describe());
    assert!(o.contains("recv error 104"), "ECONNRESET on the open connection: {}", out.describe());
    assert!(o.contains("connect error 111") || o.contains("connect error 101"), "{}", out.describe());
    assert!(o.contains("status=0"), "{}", out.describe());
}

#[test]
fn published_udp_ports_relay_both_ways() {
    let script = r#"
$RUNSC --network=sandbox -p 15353:5353/udp do python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5353))
while True:
    d, p = s.recvfrom(100); s.sendto(b"echo " + d + b" from " + p[0].encode(), p)
' >/dev/null 2>&1 &
sandbox=$!
python3 -c '
import socket
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(0.2)
while True:
    c.sendto(b"ping", ("127.0.0.1", 15353))
    try:
        print(c.recvfrom(100)); break
    except OSError:
        pass
'
kill $sandbox; wait $sandbox"#;
    let Some(out) = in_netns("published_udp", script) else { return };
    assert!(out.stdout.contains("(b'echo ping from 10.0.2.2', ('127.0.0.1', 15353))"), "{}", out.describe());
}

// ---------------------------------------------------------------------------
// --network=host: the guest's inet sockets are host sockets.

#[test]
fn host_mode_reaches_everything_without_rules() {
    // 127.0.0.1 is the host's loopback here (the namespace's "host-lo").
    let script = format!(
        "$RUNSC --network=host do {}; echo status=$?",
        fetch(&[
            "http://198.51.100.10:8000/index.txt",
            "http://198.51.100.20:8000/index.txt",
            "http://127.0.0.1:8080/index.txt"
        ])
    );
    let Some(out) = in_netns("host_mode_open", &script) else { return };
    let o = &out.stdout;
    assert!(o.contains("http://198.51.100.10:8000/index.txt -> hello from ten"), "{}", out.describe());
    assert!(o.contains("http://198.51.100.20:8000/index.txt -> hello from twenty"), "{}", out.describe());
    assert!(o.contains("http://127.0.0.1:8080/index.txt -> hello from host-lo"), "{}", out.describe());
    assert!(o.contains("status=0"), "{}", out.describe());
}

#[test]
fn host_mode_applies_the_allowlist_when_given() {
    let script = format!(
        "$RUNSC --network=host --allow-host=198.51.100.10:8000 do {}; grep -c 'refused connect 198.51.100.20:8000' $LOG",
        fetch(&[
            "http://198.51.100.10:8000/index.txt",
            "http://198.51.100.20:8000/index.txt",
            "http://127.0.0.1:8080/index.txt"
        ])
    );
    let Some(out) = in_netns("host_mode_allowlist", &script) else { return };
    let o = &out.stdout;
    assert!(o.contains("http://198.51.100.10:8000/index.txt -> hello from ten"), "{}", out.describe());
    assert!(o.contains("http://198.51.100.20:8000/index.txt -> error 111"), "{}", out.describe());
    assert!(o.contains("http://127.0.0.1:8080/index.txt -> error 111"), "unlisted loopback: {}", out.describe());
    assert!(!o.trim_end().ends_with("\n0"), "the refusal is in the debug log: {}", out.describe());
}

#[test]
fn host_mode_guest_servers_are_reached_from_the_host() {
    let script = "\
$RUNSC --network=host do bash -c 'mkdir -p /tmp/w && echo guest server > /tmp/w/index.txt && exec python3 -m http.server --bind 127.0.0.1 --directory /tmp/w 18081' >/dev/null 2>&1 &\n\
sandbox=$!\n\
until python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:18081/index.txt\", timeout=5).read().decode().strip())' 2>/dev/null; do sleep 0.1; done\n\
$RUNSC --network=host -p 18082:80 do true; echo published=$?\n\
kill $sandbox; wait $sandbox";
    let Some(out) = in_netns("host_mode_server", script) else { return };
    assert!(out.stdout.contains("guest server"), "{}", out.describe());
    assert!(out.stdout.contains("published=") && !out.stdout.contains("published=0"), "{}", out.describe());
    assert!(out.stderr.contains("--publish has no place with --network=host"), "{}", out.describe());
}

#[test]
fn host_mode_udp_round_trip() {
    let echo = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.51.100.10", 9999))
import os; open(os.environ["D"] + "/echo.ready", "w").close()
while True:
    d, a = s.recvfrom(65536)
    s.sendto(d.upper(), a)
"#;
    let guest = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(b"ping " + b"x" * 30000, ("198.51.100.10", 9999))
d, a = s.recvfrom(65536)
print("reply", d[:5].decode(), len(d), a[0], a[1], s.getsockname()[1] != 0)
s.connect(("198.51.100.10", 9999))
s.send(b"again")
print("connected", s.recv(100).decode(), s.getpeername()[0])
"#;
    let script = format!(
        "python3 -c '{echo}' &\necho_pid=$!\nwait_file $D/echo.ready\n$RUNSC --network=host do python3 -c '{guest}'; echo status=$?\nkill $echo_pid"
    );
    let Some(out) = in_netns("host_mode_udp", &script) else { return };
    let o = &out.stdout;
    assert!(o.contains("reply PING  30005 198.51.100.10 9999 True"), "{}", out.describe());
    assert!(o.contains("connected AGAIN 198.51.100.10"), "{}", out.describe());
    assert!(o.contains("status=0"), "{}", out.describe());
}

#[test]
fn a_large_upload_is_flushed_before_the_fin() {
    // 8 MiB is far more than the host socket takes at once: most of it is
    // queued in the Sentry and sent as the host makes room, then the FIN.
    let sink = r#"
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("198.51.100.10", 7000)); l.listen(1)
import os; open(os.environ["D"] + "/sink.ready", "w").close()
c, _ = l.accept(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    n += len(b)
c.sendall(str(n).encode()); c.close()
"#;
    let guest = r#"
import socket
s = socket.create_connection(("198.51.100.10", 7000), timeout=60)
s.sendall(b"x" * (8 << 20))
s.shutdown(socket.SHUT_WR)
print("sink got", s.recv(100).decode())
"#;
    let script = format!(
        "python3 -c '{sink}' &\nsink=$!\nwait_file $D/sink.ready\n$RUNSC --network=sandbox --allow-host=198.51.100.10:7000 do python3 -c '{guest}'\nwait $sink"
    );
    let Some(out) = in_netns("large_upload", &script) else { return };
    assert!(out.stdout.contains("sink got 8388608"), "{}", out.describe());
}
