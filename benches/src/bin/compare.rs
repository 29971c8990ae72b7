//! Whole-workload comparison: runs each workload natively, under
//! runsc-lite (each platform) and under Debian's runsc when installed, in
//! one go, and prints medians and ratios to native (and to runsc).
//!
//!   cargo run --release -p benches --bin compare [-- --quick] [--no-sockets] [--only=TEXT]
//!       [--no-runsc] [--platforms=systrap,ptrace,...]
//!
//! `--no-runsc` leaves Debian's runsc out (its runs leave processes behind
//! that load the machine during the next runner's turn); `--platforms`
//! picks runsc-lite's runners (default: systrap, systrap-nopatch, ptrace).
//!
//! With `RUNSC_LITE_BASE_BIN=PATH` another runsc-lite binary (a build of an
//! older commit) runs beside this one, as `base/PLATFORM`, taking turns.

use benches::{have_runsc, interleaved, print_header, print_rows, run_guest, run_loop, runsc_lite, wanted, Runner};
use std::process::Command;
use std::time::{Duration, Instant};

const PLATFORMS: &[&str] = &["systrap", "systrap-nopatch", "ptrace"];

/// A whole command, timed from outside; None when it fails.
fn time_cmd(runner: Runner, argv: &[&str]) -> Option<Duration> {
    let mut cmd = match runner {
        Runner::Native => Command::new(argv[0]),
        Runner::Sandbox(p) => {
            let mut c = benches::do_command(&runsc_lite(), p);
            c.arg(argv[0]);
            c
        }
        Runner::Base(p) => {
            let mut c = benches::do_command(&benches::base_bin().expect("RUNSC_LITE_BASE_BIN"), p);
            c.arg(argv[0]);
            c
        }
        Runner::Runsc(p) => {
            let mut c = Command::new("runsc");
            c.args([&format!("--platform={p}"), "--rootless", "--network=none", "do", argv[0]]);
            c
        }
    };
    cmd.args(&argv[1..]);
    let t = Instant::now();
    let out = cmd.output().ok()?;
    let d = t.elapsed();
    if !out.status.success() {
        eprintln!("{runner:?} {argv:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        return None;
    }
    Some(d)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 7 };
    let mut runners = vec![("native", Runner::Native)];
    let picked: Option<Vec<String>> = std::env::args()
        .find_map(|a| a.strip_prefix("--platforms=").map(|l| l.split(',').map(str::to_string).collect()));
    for p in PLATFORMS {
        if picked.as_ref().is_some_and(|l| !l.iter().any(|x| x == p)) {
            continue;
        }
        runners.push((Box::leak(format!("runsc-lite/{p}").into_boxed_str()), Runner::Sandbox(p)));
        if benches::base_bin().is_some() {
            runners.push((Box::leak(format!("base/{p}").into_boxed_str()), Runner::Base(p)));
        }
    }
    if have_runsc() && !std::env::args().any(|a| a == "--no-runsc") {
        runners.push(("runsc/ptrace", Runner::Runsc("ptrace")));
    }
    print_header();

    let per_call: &[(&str, u64)] = &[
        ("getppid", 100_000),
        ("pipe", 20_000),
        ("open", 20_000),
        ("stat", 20_000),
        ("futex", 50_000),
        ("getdents", 5_000),
        ("mmap", 20_000),
        ("mprotect", 20_000),
        ("fault", 20_000),
        ("pollpong", 5_000),
    ];
    for (what, n) in per_call {
        if !wanted(what) {
            continue;
        }
        let n = if quick { n / 10 } else { *n };
        let results = interleaved(&runners, reps, |r| Some(run_loop(r, what, n) / n as u32));
        print_rows(&format!("{what} (per call)"), &results);
    }

    // The same loops linked dynamically: libc's syscall sites are within
    // reach of systrap's patch trampolines (compare systrap with
    // systrap-nopatch).
    for (what, n) in [
        ("getppid", 100_000u64),
        ("futex", 50_000),
        ("open", 20_000),
        ("stat", 20_000),
        ("getdents", 2_000),
        ("mmap", 20_000),
    ] {
        let label = format!("{what} dynamic (per call)");
        if !wanted(&label) {
            continue;
        }
        let n = if quick { n / 10 } else { n };
        let results = interleaved(&runners, reps, |r| Some(run_guest(r, "syscall_loop-dyn", what, n) / n as u32));
        print_rows(&label, &results);
    }

    // Sockets: loopback TCP/UDP and unix, each timed inside the guest.
    // (what, N, per call?) Streams report the whole transfer.
    let sockets: &[(&str, u64, &str)] = &[
        ("tcp_stream", 256 << 20, "256 MiB TCP stream"),
        ("unix_stream", 256 << 20, "256 MiB unix stream"),
        ("tcp_connect", 2_000, "TCP connect+accept+close"),
        ("tcp_pingpong", 20_000, "TCP 1-byte ping-pong"),
        ("udp_pingpong", 20_000, "UDP 1-byte ping-pong"),
        ("unix_pingpong", 20_000, "unix 1-byte ping-pong"),
    ];
    if !skip_sockets() {
        for (what, n, label) in sockets {
            if !wanted(label) {
                continue;
            }
            let stream = what.ends_with("_stream");
            let n = if quick && !stream { n / 10 } else { *n };
            let results = interleaved(&runners, reps, |r| {
                let d = run_guest(r, "socket_loop", what, n);
                Some(if stream { d } else { d / n as u32 })
            });
            let unit = if stream { "(whole)" } else { "(per op)" };
            print_rows(&format!("{label} {unit}"), &results);
        }
    }

    let whole: &[(&str, &[&str])] = &[
        ("busybox true", &["/bin/busybox", "true"]),
        // Start-up of the sandbox itself: `runsc-lite do /bin/true` against
        // a native `/bin/true` (dynamic, glibc).
        ("/bin/true", &["/bin/true"]),
        ("fork+exec+wait x100 (sh, /bin/true)", &["/bin/sh", "-c", "for i in $(seq 100); do /bin/true; done"]),
        (
            "fork+exec+wait x20 (sh)",
            &[
                "/bin/busybox",
                "sh",
                "-c",
                "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do /bin/busybox true; done",
            ],
        ),
        ("python3 -c pass", &["/usr/bin/python3", "-S", "-c", "pass"]),
        ("busybox md5sum /bin/busybox", &["/bin/busybox", "md5sum", "/bin/busybox"]),
        // Not /etc: some of it is readable only with CAP_DAC_OVERRIDE, which
        // the confined Sentry does not have.
        ("ls -lR /usr/share/zoneinfo", &["/bin/ls", "-lR", "/usr/share/zoneinfo"]),
        ("tar c /usr/share/zoneinfo", &["/bin/tar", "cf", "/dev/null", "/usr/share/zoneinfo"]),
        (
            "tar round trip (c | x)",
            &[
                "/bin/sh",
                "-c",
                "d=$(mktemp -d) && tar cf - /usr/share/zoneinfo 2>/dev/null | tar xf - -C $d && rm -rf $d",
            ],
        ),
    ];
    for (label, argv) in whole {
        if !wanted(label) {
            continue;
        }
        let results = interleaved(&runners, reps, |r| time_cmd(r, argv));
        if results.first().is_some_and(|(n, _)| *n == "native") {
            print_rows(label, &results);
        }
    }

    // The file hot path on whole programs: a walk of the host's /usr (the
    // root overlay's host layer) and `git status` on a 5,000-file tree
    // the host made (seen through the same layer).
    if wanted("find /usr") {
        let argv = find_usr_argv();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let results = interleaved(&runners, reps, |r| time_cmd(r, &argv));
        print_rows("find /usr", &results);
    }
    if wanted("git status") {
        if let Some(tree) = git_tree() {
            let dir = tree.to_string_lossy().into_owned();
            let git = if std::path::Path::new("/usr/bin/git").exists() { "/usr/bin/git" } else { "/usr/local/bin/git" };
            let argv = [git, "-C", dir.as_str(), "status", "--porcelain"];
            // Once natively first, so the index's stat data is settled.
            let _ = time_cmd(Runner::Native, &argv);
            let results = interleaved(&runners, reps, |r| time_cmd(r, &argv));
            print_rows("git status (5,000 files)", &results);
            let _ = std::fs::remove_dir_all(&tree);
        }
    }
}

/// `find /usr` for every runner, leaving out the directories the sandbox
/// cannot read. Natively root reads everything (CAP_DAC_OVERRIDE); the
/// confined Sentry has no capabilities on the host, so a directory another
/// user keeps to itself (here /usr/share/polkit-1/rules.d, 0700 polkitd)
/// is EACCES in the sandbox, as it would be for any unprivileged reader,
/// and find exits 1. Which directories those are is asked of the sandbox
/// itself (one probe run, its "Permission denied" lines), and every
/// runner, native included, prunes the same ones: all walk the same tree.
fn find_usr_argv() -> Vec<String> {
    let mut argv: Vec<String> = ["/usr/bin/find", "/usr"].map(String::from).to_vec();
    let mut probe = benches::do_command(&runsc_lite(), "systrap");
    probe.env("LC_ALL", "C").args(["/usr/bin/find", "/usr", "-name", "no-such-name-anywhere"]);
    let denied: Vec<String> = match probe.output() {
        Ok(out) => String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.ends_with(": Permission denied"))
            .filter_map(|l| l.split('\'').nth(1).map(String::from))
            .collect(),
        Err(_) => Vec::new(),
    };
    if !denied.is_empty() {
        eprintln!("find /usr: pruning what the sandbox cannot read: {denied:?}");
        argv.push("(".into());
        for (i, d) in denied.iter().enumerate() {
            if i > 0 {
                argv.push("-o".into());
            }
            argv.extend(["-path".to_string(), d.clone()]);
        }
        argv.extend([")", "-prune", "-o"].map(String::from));
    }
    argv.extend(["-name", "no-such-name-anywhere", "-print"].map(String::from));
    argv
}

/// A committed git tree of 50 directories of 100 small files in a fresh
/// temporary directory; None when git is missing or fails.
fn git_tree() -> Option<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("runsc-lite-bench-git.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in 0..50 {
        let sub = dir.join(format!("d{d:02}"));
        std::fs::create_dir_all(&sub).ok()?;
        for f in 0..100 {
            std::fs::write(sub.join(format!("f{f:03}")), format!("{d} {f}\n")).ok()?;
        }
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(git(&["init", "-q"]) && git(&["add", "-A"]) && git(&["commit", "-qm", "tree"])) {
        eprintln!("git status bench: could not build the tree (is git installed?)");
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    }
    Some(dir)
}

/// `--no-sockets` leaves the socket benches out.
fn skip_sockets() -> bool {
    std::env::args().any(|a| a == "--no-sockets")
}
