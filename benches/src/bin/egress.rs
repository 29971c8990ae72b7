//! Whole-workload network bench: a guest downloads from, and opens
//! connection after connection to, a server "outside" the sandbox, run
//! natively, under runsc-lite (`--network=sandbox`, through the egress
//! broker, and `--network=host`) and under Debian's runsc
//! (`--network=host`) when installed, taking turns; prints medians and
//! ratios to native (and to runsc) as `compare` does.
//!
//!   cargo run --release -p benches --bin egress [-- --quick] [--only=TEXT]
//!
//! Needs root: it re-executes itself under `unshare -n`, in a network
//! namespace of its own where a link `out0` holds 198.51.100.10 (a
//! documentation address standing for the outside server), so no packet
//! ever leaves this machine. The server is `benches/guest/net_server.c`,
//! run natively; the client `benches/guest/net_client.c` times itself.

use benches::{guest, have_runsc, interleaved, print_header, print_rows, print_rows_with, runsc_lite, wanted};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Set in the re-executed bench, inside its network namespace.
const NETNS_MARKER: &str = "RUNSC_LITE_NETNS";
const SERVER_ADDR: &str = "198.51.100.10";
const SERVER_PORT: u16 = 9000;
const DOWNLOAD_BYTES: u64 = 256 << 20;
/// A run that takes longer than this is killed and counts as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// How the client runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum NetRunner {
    Native,
    /// `runsc-lite --network=MODE do`.
    Lite(&'static str),
    /// Debian's runsc, `runsc --rootless --network=host do`.
    Runsc,
}

fn main() -> ExitCode {
    if std::env::var_os(NETNS_MARKER).is_none() {
        return reexec_in_netns();
    }
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("egress: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Run this binary again under `unshare -n`, with the marker set.
fn reexec_in_netns() -> ExitCode {
    let probe = Command::new("unshare").args(["-n", "true"]).stderr(Stdio::piped()).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "egress: `unshare -n` failed ({}): this bench needs root (CAP_SYS_ADMIN) to make its own network \
                 namespace",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("egress: cannot run unshare ({e}): this bench needs util-linux's unshare, and root");
            return ExitCode::FAILURE;
        }
    }
    // Build runsc-lite out here (cargo may want the network); the inner
    // run takes it from RUNSC_LITE_BIN.
    let bin = runsc_lite();
    let me = std::env::current_exe().expect("current_exe");
    let st = Command::new("unshare")
        .args(["-n", "--"])
        .arg(me)
        .args(std::env::args_os().skip(1))
        .env(NETNS_MARKER, "1")
        .env("RUNSC_LITE_BIN", bin)
        .status();
    match st {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("egress: cannot run unshare: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ip(args: &str) -> Result<(), String> {
    let out = Command::new("ip").args(args.split(' ')).output().map_err(|e| format!("ip {args}: {e}"))?;
    if !out.status.success() {
        return Err(format!("ip {args}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// lo up, and `out0` holding the server's address. Without the dummy
/// link type (a kernel built without it), a veth pair stands in.
fn setup_links() -> Result<(), String> {
    ip("link set lo up")?;
    if let Err(e) = ip("link add out0 type dummy") {
        eprintln!("note: no dummy link here ({e}); out0 is one end of a veth pair instead");
        ip("link add out0 type veth peer name out0p")?;
        ip("link set out0p up")?;
    }
    ip(&format!("addr add {SERVER_ADDR}/24 dev out0"))?;
    ip("link set out0 up")
}

/// The native server, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server() -> Result<Server, String> {
    let child = Command::new(guest("net_server"))
        .args([SERVER_ADDR, &SERVER_PORT.to_string()])
        .spawn()
        .map_err(|e| format!("starting net_server: {e}"))?;
    let mut server = Server(child);
    let addr: SocketAddr = format!("{SERVER_ADDR}:{SERVER_PORT}").parse().expect("address");
    let t = Instant::now();
    loop {
        // A whole (empty) request, so that the server sees no bad one.
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let mut rest = Vec::new();
            if s.write_all(b"GET 0\n").is_ok() && s.read_to_end(&mut rest).is_ok() && rest.is_empty() {
                return Ok(server);
            }
        }
        if let Ok(Some(st)) = server.0.try_wait() {
            return Err(format!("net_server exited: {st}"));
        }
        if t.elapsed() > Duration::from_secs(10) {
            return Err("net_server does not accept after 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run `net_client ARGS` with `runner`; the nanoseconds the client
/// measured, or None (with the first line of its stderr printed) when it
/// fails.
fn run_client(name: &str, runner: NetRunner, args: &[&str]) -> Option<Duration> {
    let prog = guest("net_client");
    let mut cmd = match runner {
        NetRunner::Native => Command::new(&prog),
        NetRunner::Lite(mode) => {
            let mut c = Command::new(runsc_lite());
            c.arg(format!("--network={mode}"));
            if mode == "sandbox" {
                c.arg(format!("--allow-host={SERVER_ADDR}:{SERVER_PORT}"));
            }
            c.arg("do").arg(&prog);
            c
        }
        NetRunner::Runsc => {
            let mut c = Command::new("runsc");
            c.args(["--rootless", "--network=host", "do"]).arg(&prog);
            c
        }
    };
    cmd.args(args);
    let fail = |why: &str| {
        let first = why.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no message)");
        eprintln!("{name} {}: failed, left out: {}", args[0], first.trim());
        None
    };
    let (ok, stdout, stderr) = match output_within(&mut cmd, RUN_TIMEOUT) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if !ok {
        return fail(&stderr);
    }
    match stdout.trim().parse::<u64>() {
        Ok(ns) => Some(Duration::from_nanos(ns)),
        Err(_) => fail(&format!("no nanoseconds on stdout: {:?}; {stderr}", stdout.trim())),
    }
}

/// Run `cmd` to its end, killing it after `limit`: (succeeded, stdout,
/// stderr).
fn output_within(cmd: &mut Command, limit: Duration) -> Result<(bool, String, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    let t = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if t.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {limit:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    Ok((status.success(), out, err))
}

fn bench() -> Result<(), String> {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 7 };
    let mut runners: Vec<(&str, NetRunner)> = vec![
        ("native", NetRunner::Native),
        ("runsc-lite/sandbox", NetRunner::Lite("sandbox")),
        ("runsc-lite/host", NetRunner::Lite("host")),
    ];
    if have_runsc() {
        runners.push(("runsc/host", NetRunner::Runsc));
    } else {
        eprintln!("note: Debian's runsc is not installed: no runsc/host runner");
    }
    // Both guest programs built before any timing.
    guest("net_client");
    setup_links()?;
    let _server = start_server()?;
    let (addr, port) = (SERVER_ADDR, SERVER_PORT.to_string());

    print_header();
    let label = "download 256 MiB (whole)";
    if wanted(label) {
        let bytes = DOWNLOAD_BYTES.to_string();
        let args = ["download", addr, &port, &bytes];
        let results = interleaved(&runners, reps, |r| run_client(name_of(&runners, r), r, &args));
        keep_survivors(&mut runners, &results);
        if results.first().is_some_and(|(n, _)| *n == "native") {
            let mib = (DOWNLOAD_BYTES >> 20) as f64;
            print_rows_with(label, &results, |d| format!("{:>8.0} MiB/s", mib / d.as_secs_f64()));
        }
    }
    let label = "connect+req+close (per op)";
    if wanted(label) {
        let n: u32 = if quick { 200 } else { 2000 };
        let count = n.to_string();
        let args = ["connect_loop", addr, &port, &count];
        let results = interleaved(&runners, reps, |r| run_client(name_of(&runners, r), r, &args).map(|d| d / n));
        keep_survivors(&mut runners, &results);
        if results.first().is_some_and(|(n, _)| *n == "native") {
            print_rows(label, &results);
        }
    }
    Ok(())
}

/// The name `runner` is listed under.
fn name_of<'a>(runners: &[(&'a str, NetRunner)], runner: NetRunner) -> &'a str {
    runners.iter().find(|(_, r)| *r == runner).map(|(n, _)| *n).unwrap_or("?")
}

/// Leave a runner that failed out of the later workloads too (its failure
/// was printed once).
fn keep_survivors(runners: &mut Vec<(&str, NetRunner)>, results: &[(&str, Duration)]) {
    runners.retain(|(n, _)| results.iter().any(|(m, _)| m == n));
}
