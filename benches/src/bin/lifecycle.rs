//! The OCI lifecycle of a `true` container, runtime against runtime, in
//! one run with the runners taking turns:
//!
//! - direct: `RUNTIME create --bundle B --pid-file P ID`, `start ID`, wait
//!   for the container's process to exit, `delete ID` — the calls
//!   containerd's runc shim makes, driven the way it drives them (this
//!   process is a child subreaper and reaps the pid from the pid file);
//! - ctr: `ctr run --rm` of the same through containerd and its runc shim
//!   v2 with `--runc-binary RUNTIME` (a private containerd started by
//!   `scripts/containerd-e2e.sh --serve`; skipped when containerd is
//!   not installed).
//!
//! Runners: runc and Debian's runsc (when installed; ptrace platform,
//! `--network=none --ignore-cgroups`) and runsc-lite when its binary has
//! the `create` command ("n/a" otherwise). Needs root.
//!
//!   cargo run --release -p benches --bin lifecycle [-- --quick] [--no-ctr]
//!
//! `RUNSC_LITE_BIN=PATH` picks the runsc-lite binary (default: a release
//! build of this workspace); `RUNSC_LITE_FLAGS="--platform=ptrace ..."`
//! adds global flags to it.

use benches::{have_runsc, median, runsc_lite};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A runtime binary and the global flags it needs here.
struct Runtime {
    name: &'static str,
    bin: PathBuf,
    flags: Vec<String>,
}

/// Scratch space for one run: the bundle and each runtime's --root.
struct Scratch {
    dir: PathBuf,
    bundle: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn make_bundle() -> Scratch {
    let dir = std::env::temp_dir().join(format!("lifecycle-bench.{}", std::process::id()));
    let bundle = dir.join("bundle");
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy /bin/busybox (busybox-static)");
    for a in ["true", "sh"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).expect("symlink");
    }
    // What every runtime here accepts: runc wants its namespaces named,
    // runsc and runsc-lite make their own sandbox of the same shape.
    let config = r#"{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": ["/bin/true"],
    "env": ["PATH=/bin"],
    "cwd": "/"
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "bench",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"] },
    { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"] }
  ],
  "linux": {
    "namespaces": [
      { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }, { "type": "network" }
    ]
  }
}
"#;
    std::fs::write(bundle.join("config.json"), config).expect("write config.json");
    Scratch { dir, bundle }
}

fn command(rt: &Runtime, root: &Path) -> Command {
    let mut c = Command::new(&rt.bin);
    c.args(&rt.flags).arg("--root").arg(root);
    c
}

/// Runs one runtime command. Its stderr goes to a file, not a pipe: the
/// runtime hands its stdio to the container, so a pipe would stay open
/// until the container exits.
fn ok(rt: &Runtime, s: &Scratch, what: &str, c: &mut Command) -> Option<()> {
    let err_path = s.dir.join("stderr");
    let err = std::fs::File::create(&err_path).ok()?;
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err).spawn().ok()?;
    let status = wait_reaping(&mut child)?;
    if status.success() {
        return Some(());
    }
    let text = std::fs::read_to_string(&err_path).unwrap_or_default();
    eprintln!("{} {what} failed ({status}): {}", rt.name, text.trim());
    None
}

/// Waits for `child`, reaping meanwhile the orphans handed to us as
/// subreaper: runsc's `delete` waits for its gofer to be gone, and a
/// zombie gofer is not gone.
fn wait_reaping(child: &mut Child) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().ok()? {
            return Some(status);
        }
        // SAFETY: a zeroed siginfo_t is valid; waitid only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with a valid out pointer; WNOWAIT leaves the
        // zombie in place, so `child`'s own wait still finds it.
        let r = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
        // SAFETY: si_pid is valid to read for the CLD_* codes waitid gives.
        let pid = if r == 0 { unsafe { info.si_pid() } } else { 0 };
        if pid != 0 && pid as u32 != child.id() {
            let mut status = 0;
            // SAFETY: reaps the exited orphan waitid just named.
            if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
                reaped().insert(pid, status);
            }
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Waits until this process has no children left.
fn drain_children() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
}

/// Like `benches::interleaved`, but each round starts with the next
/// runner, so that none always runs right after the same other one.
fn rotated(
    runners: &[(&'static str, usize)],
    reps: usize,
    mut one: impl FnMut(usize) -> Option<Duration>,
) -> Vec<(&'static str, Duration)> {
    let n = runners.len();
    let mut runs: Vec<Option<Vec<Duration>>> = vec![Some(Vec::new()); n];
    for round in 0..reps {
        for k in 0..n {
            let i = (round + k) % n;
            if let Some(v) = runs[i].as_mut() {
                match one(runners[i].1) {
                    Some(d) => v.push(d),
                    None => runs[i] = None,
                }
            }
        }
    }
    runners.iter().zip(runs).filter_map(|((name, _), v)| v.map(|v| (*name, median(v)))).collect()
}

/// Wait statuses of the orphans reaped while waiting for something else:
/// the container's process may be one of them.
fn reaped() -> std::sync::MutexGuard<'static, HashMap<i32, i32>> {
    static REAPED: OnceLock<Mutex<HashMap<i32, i32>>> = OnceLock::new();
    REAPED.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// Reaps every exited orphan that was handed to us as subreaper (runc's
/// and runsc's helpers), so none piles up between rounds.
fn reap_orphans() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
}

/// One create + start + wait + delete; the time of the whole cycle.
fn direct_cycle(rt: &Runtime, s: &Scratch, seq: &mut u32) -> Option<Duration> {
    *seq += 1;
    let id = format!("bench-{}-{}", std::process::id(), seq);
    let root = s.dir.join(format!("root-{}", rt.name));
    let pid_file = s.dir.join(format!("{}.pid", rt.name));
    let _ = std::fs::remove_file(&pid_file);
    std::fs::create_dir_all(&root).ok()?;
    let t = Instant::now();
    let mut create = command(rt, &root);
    create.arg("create").arg("--bundle").arg(&s.bundle).arg("--pid-file").arg(&pid_file).arg(&id);
    ok(rt, s, "create", &mut create)?;
    let pid: i32 = std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()?;
    ok(rt, s, "start", command(rt, &root).arg("start").arg(&id))?;
    let mut status = 0;
    let early = reaped().remove(&pid);
    // SAFETY: waitpid on the pid the runtime wrote; we are its subreaper,
    // so it is our child once its creator has exited.
    let r = match early {
        Some(st) => {
            status = st;
            pid
        }
        None => unsafe { libc::waitpid(pid, &mut status, 0) },
    };
    if r != pid {
        eprintln!("{}: waitpid({pid}) gave {r}: {}", rt.name, std::io::Error::last_os_error());
        let _ = ok(rt, s, "delete --force", command(rt, &root).args(["delete", "--force"]).arg(&id));
        return None;
    }
    ok(rt, s, "delete", command(rt, &root).arg("delete").arg(&id))?;
    let d = t.elapsed();
    // Untimed: wait for every process the runtime left behind (runsc's
    // sandbox and gofer wind down after `delete` returns), so that one
    // runtime's tear-down does not land in the next one's time. Nothing
    // else is our child in this phase.
    drain_children();
    reaped().clear();
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        eprintln!("{}: the container's process ended with wait status {status:#x}", rt.name);
        return None;
    }
    Some(d)
}

/// The private containerd of `scripts/containerd-e2e.sh --serve`; it
/// stops (and cleans up) when its standard input closes.
struct Containerd {
    child: Child,
    sock: String,
    ns: String,
    image: String,
    tmp: PathBuf,
}

impl Containerd {
    fn start() -> Option<Containerd> {
        if Command::new("ctr").arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
            eprintln!("lifecycle: ctr not found (apt-get install containerd): skipping the ctr rows");
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/containerd-e2e.sh");
        let mut child =
            Command::new(script).arg("--serve").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().ok()?;
        let out = child.stdout.take()?;
        for line in BufReader::new(out).lines() {
            let line = line.ok()?;
            let f: Vec<&str> = line.split_whitespace().collect();
            if let ["READY", sock, ns, image, tmp] = f[..] {
                return Some(Containerd {
                    child,
                    sock: sock.into(),
                    ns: ns.into(),
                    image: image.into(),
                    tmp: tmp.into(),
                });
            }
        }
        eprintln!("lifecycle: containerd did not come up: skipping the ctr rows");
        let _ = child.wait();
        None
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.wait();
    }
}

/// One `ctr run --rm` of `true`; the time ctr took.
fn ctr_cycle(rt: &Runtime, c: &Containerd, seq: &mut u32) -> Option<Duration> {
    *seq += 1;
    let id = format!("bench-{}", seq);
    // The runc shim passes no runtime flags of its own: a runtime that
    // needs some gets them from a wrapper, as runsc does here.
    let bin = if rt.flags.is_empty() {
        rt.bin.clone()
    } else {
        let w = c.tmp.join(format!("{}-wrapper", rt.name));
        if !w.exists() {
            let quoted: Vec<String> = rt.flags.iter().map(|f| format!("'{f}'")).collect();
            let text = format!("#!/bin/sh\nexec '{}' {} \"$@\"\n", rt.bin.display(), quoted.join(" "));
            std::fs::write(&w, text).ok()?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).ok()?;
        }
        w
    };
    let t = Instant::now();
    let out = Command::new("ctr")
        .args(["-a", &c.sock, "-n", &c.ns, "run", "--rm", "--null-io", "--runtime", "io.containerd.runc.v2"])
        .arg("--runc-binary")
        .arg(&bin)
        .arg("--runc-root")
        .arg(c.tmp.join(format!("runtime-root-{}", rt.name)))
        .arg("--fifo-dir")
        .arg(c.tmp.join("fifo"))
        .args([&c.image, &id, "/bin/true"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let d = t.elapsed();
    // The shims daemonize and so end up as our children (we are a
    // subreaper); reap the ones that have exited.
    reap_orphans();
    if !out.status.success() {
        eprintln!("{} ctr run failed ({}): {}", rt.name, out.status, String::from_utf8_lossy(&out.stderr).trim());
        return None;
    }
    Some(d)
}

fn which(name: &str) -> Option<PathBuf> {
    let out = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !p.is_empty()).then(|| PathBuf::from(p))
}

/// Does this runsc-lite binary have the OCI lifecycle commands?
fn has_create(bin: &Path) -> bool {
    Command::new(bin).args(["create", "--help"]).output().map(|o| o.status.success()).unwrap_or(false)
}

fn print_table(label: &str, results: &[(&str, Duration)], lite_missing: bool) {
    let get = |n: &str| results.iter().find(|(r, _)| *r == n).map(|(_, d)| d.as_secs_f64());
    for (name, d) in results {
        println!("{:<22} {:<12} {:>12}", label, name, format!("{:.2?}", d));
    }
    if lite_missing {
        println!("{:<22} {:<12} {:>12}", label, "runsc-lite", "n/a");
        return;
    }
    let lite = get("runsc-lite");
    for (base, target) in [("runsc", 0.25), ("runc", 2.0)] {
        let target = if label.starts_with("ctr") && base == "runsc" { None } else { Some(target) };
        match (lite, get(base)) {
            (Some(l), Some(b)) => println!(
                "{:<22} runsc-lite/{base}: {:.2}x{}",
                label,
                l / b,
                target.map(|t| format!(" (target <= {t}x)")).unwrap_or_default()
            ),
            _ => println!("{:<22} runsc-lite/{base}: n/a", label),
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 5 } else { 15 };
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        eprintln!("lifecycle: PR_SET_CHILD_SUBREAPER failed");
        std::process::exit(1);
    }
    let mut runtimes = Vec::new();
    match which("runc") {
        Some(bin) => runtimes.push(Runtime { name: "runc", bin, flags: vec![] }),
        None => eprintln!("lifecycle: runc not found (apt-get install runc)"),
    }
    if have_runsc() {
        // Debian's runsc (2022) has ptrace and kvm only; no network and
        // no cgroups keep it to what the other runtimes set up here.
        let flags = ["--platform=ptrace", "--network=none", "--ignore-cgroups"];
        runtimes.push(Runtime {
            name: "runsc",
            bin: which("runsc").expect("runsc found"),
            flags: flags.map(String::from).to_vec(),
        });
    }
    let lite_bin = runsc_lite();
    let lite_missing = !has_create(&lite_bin);
    if lite_missing {
        eprintln!("lifecycle: {} has no `create` command: runsc-lite rows are n/a", lite_bin.display());
    } else {
        let flags = std::env::var("RUNSC_LITE_FLAGS").unwrap_or_default();
        runtimes.push(Runtime {
            name: "runsc-lite",
            bin: lite_bin,
            flags: flags.split_whitespace().map(String::from).collect(),
        });
    }
    let runners: Vec<(&'static str, usize)> = runtimes.iter().enumerate().map(|(i, r)| (r.name, i)).collect();

    let scratch = make_bundle();
    println!("{:<22} {:<12} {:>12}", "cycle", "runtime", "median");
    let mut seq = 0;
    for rt in &runtimes {
        let _ = direct_cycle(rt, &scratch, &mut seq);
    }
    let results = rotated(&runners, reps, |i| direct_cycle(&runtimes[i], &scratch, &mut seq));
    print_table("direct create..delete", &results, lite_missing);

    if !std::env::args().any(|a| a == "--no-ctr") {
        if let Some(c) = Containerd::start() {
            // One untimed run each: the first pays for loading the shim.
            for rt in &runtimes {
                let _ = ctr_cycle(rt, &c, &mut seq);
            }
            let results = rotated(&runners, reps, |i| ctr_cycle(&runtimes[i], &c, &mut seq));
            print_table("ctr run --rm", &results, lite_missing);
        }
    }
}
