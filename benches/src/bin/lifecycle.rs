//! The OCI lifecycle of a `true` container (busybox-static in a bundle):
//! create, start, wait, delete, driven the same way for runsc-lite, Debian's
//! runc and Debian's runsc (when installed), taking turns; prints medians
//! and the ratios to runc and runsc.
//!
//!   cargo run --release -p benches --bin lifecycle [-- --quick]
//!
//! "Wait" is how containerd's shim waits: this bench makes itself a child
//! subreaper, reaps every child on one thread (runsc's gofer and sandbox
//! too, which `runsc delete` waits for) and waits for the exit of the pid
//! that `create --pid-file` wrote (the process `create` left behind is
//! reparented to it). Needs root (runc and runsc do) and /bin/busybox
//! (busybox-static).

use benches::{interleaved, runsc_lite};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Exit statuses of reaped children, by pid (the shim's reaper).
fn exits() -> &'static (Mutex<HashMap<i32, i32>>, Condvar) {
    static E: OnceLock<(Mutex<HashMap<i32, i32>>, Condvar)> = OnceLock::new();
    E.get_or_init(Default::default)
}

fn start_reaper() {
    std::thread::spawn(|| loop {
        let mut st = 0;
        // SAFETY: waits for any child, writing its status to a live local.
        let pid = unsafe { libc::waitpid(-1, &mut st, 0) };
        if pid > 0 {
            let (m, cv) = exits();
            m.lock().unwrap_or_else(|e| e.into_inner()).insert(pid, st);
            cv.notify_all();
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// The wait status of `pid` once the reaper has it (None after 60 s).
fn wait_for(pid: i32) -> Option<i32> {
    let (m, cv) = exits();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(st) = g.remove(&pid) {
            return Some(st);
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        g = cv.wait_timeout(g, left).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
    }
}

#[derive(Clone, Copy, Debug)]
enum Runtime {
    /// runsc-lite with extra global flags.
    Lite(&'static [&'static str]),
    Runc,
    Runsc,
}

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 5 } else { 21 };
    let Some(bb) = ["/bin/busybox", "/usr/bin/busybox"].iter().map(PathBuf::from).find(|p| p.exists()) else {
        eprintln!("lifecycle: /bin/busybox (busybox-static) is missing");
        return ExitCode::FAILURE;
    };
    let work = std::env::temp_dir().join(format!("runsc-lite-lifecycle-bench-{}", std::process::id()));
    let bundle = work.join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs/bin")).expect("mkdir");
    std::fs::copy(&bb, bundle.join("rootfs/bin/busybox")).expect("copy busybox");
    std::os::unix::fs::symlink("busybox", bundle.join("rootfs/bin/true")).expect("symlink");
    std::fs::write(bundle.join("config.json"), CONFIG).expect("config.json");

    let lite = runsc_lite();
    let mut runtimes: Vec<(&str, Runtime)> =
        vec![("runsc-lite", Runtime::Lite(&["--network=none"])), ("runsc-lite(net)", Runtime::Lite(&[]))];
    let have = |b: &str| Command::new(b).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    for (name, rt) in [("runc", Runtime::Runc), ("runsc", Runtime::Runsc)] {
        if have(name) {
            runtimes.push((name, rt));
        } else {
            eprintln!("lifecycle: {name} is not installed (apt-get install {name}): left out");
        }
    }
    // From here on every child is reaped by the reaper thread.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    start_reaper();
    let mut n = 0u64;
    let results = interleaved(&runtimes, reps, |rt| {
        n += 1;
        cycle(rt, &lite, &work, &bundle, n)
    });
    let _ = std::fs::remove_dir_all(&work);
    let find = |name: &str| results.iter().find(|(n, _)| *n == name).map(|(_, d)| d.as_secs_f64());
    let (runc, runsc) = (find("runc"), find("runsc"));
    println!("{:<34} {:<16} {:>12} {:>8} {:>8}", "workload", "runtime", "median", "x runc", "x runsc");
    for (name, d) in &results {
        let ratio = |base: Option<f64>| base.map(|b| format!("{:.2}", d.as_secs_f64() / b)).unwrap_or("-".into());
        println!(
            "{:<34} {:<16} {:>12} {:>8} {:>8}",
            "create+start+wait+delete true",
            name,
            format!("{:.2?}", d),
            ratio(runc),
            ratio(runsc)
        );
    }
    if results.len() < runtimes.len() {
        eprintln!("lifecycle: some runtimes failed and were left out");
    }
    ExitCode::SUCCESS
}

/// One create, start, wait (waitpid of the pid file's process), delete.
fn cycle(rt: Runtime, lite: &Path, work: &Path, bundle: &Path, n: u64) -> Option<Duration> {
    let root = work.join(format!("root-{rt:?}").replace(['(', ')', '"', '[', ']', ' ', ','], ""));
    let id = format!("b{n}");
    let pid_file = work.join(format!("{id}.pid"));
    let cmd = |args: &[&str]| -> Command {
        let mut c = match rt {
            Runtime::Lite(flags) => {
                let mut c = Command::new(lite);
                c.args(flags);
                c
            }
            Runtime::Runc => Command::new("runc"),
            Runtime::Runsc => {
                let mut c = Command::new("runsc");
                c.arg("--network=none");
                c
            }
        };
        let log = std::fs::OpenOptions::new().create(true).append(true).open(work.join("stderr.log"));
        let err = log.map(Stdio::from).unwrap_or(Stdio::null());
        c.arg("--root").arg(&root).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        c
    };
    let ok = |mut c: Command| {
        let Ok(child) = c.spawn() else { return false };
        // The reaper thread reaps it; the Child is dropped unwaited.
        let st = wait_for(child.id() as i32);
        let good = st.is_some_and(|st| libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0);
        if !good {
            let log = std::fs::read_to_string(work.join("stderr.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(2).collect::<Vec<_>>().join(" | ");
            eprintln!("lifecycle: {rt:?} {:?}: status {st:?}: {tail}", c.get_args().collect::<Vec<_>>());
        }
        good
    };
    let b = bundle.to_string_lossy().into_owned();
    let pf = pid_file.to_string_lossy().into_owned();
    let start = Instant::now();
    if !ok(cmd(&["create", "--bundle", &b, "--pid-file", &pf, &id])) {
        return None;
    }
    let pid: i32 = std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()?;
    if !ok(cmd(&["start", &id])) {
        return None;
    }
    let st = wait_for(pid).unwrap_or(-1);
    let r = pid;
    let deleted = ok(cmd(&["delete", &id]));
    let took = start.elapsed();
    if r != pid || !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 || !deleted {
        let log = std::fs::read_to_string(work.join("stderr.log")).unwrap_or_default();
        let tail: String = log.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        eprintln!("lifecycle: {rt:?}: the cycle failed (waitpid {r}, status {st:#x}, deleted {deleted}): {tail}");
        return None;
    }
    Some(took)
}

const CONFIG: &str = r#"{
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
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"] }
  ],
  "linux": {
    "namespaces": [
      { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }
    ]
  }
}
"#;
