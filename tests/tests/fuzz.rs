//! The syscall fuzzer (`tests/fuzz/sysfuzz.c`) under `runsc-lite do` on
//! every platform: random syscall numbers (the table's, unimplemented
//! ones, numbers above the table) with random arguments (descriptors that
//! exist and do not, flags, pointers into mapped, unmapped, read-only and
//! PROT_NONE memory, huge lengths, built iovecs, msghdrs, sockaddrs,
//! control and netlink messages). Each run must end on its own with the
//! fuzzer's status, without a panic, with the sandbox still serving (the
//! fuzzer checks that at the end, inside the sandbox), and without a host
//! process left behind (`tests/fuzz/reaper.c` runs runsc-lite as a child
//! subreaper and counts what outlives it).
//!
//! Knobs:
//! - `RUNSC_LITE_FUZZ_ITERATIONS`: calls per platform (default 6000, a
//!   few seconds each).
//! - `RUNSC_LITE_FUZZ_SEED`: the seed (default: 1 for systrap, 2 for
//!   ptrace); the long run takes consecutive seeds from it.
//! - `RUNSC_LITE_FUZZ_THREADS=N`: N helper threads racing the main stream
//!   (`sysfuzz -t N`; the long run uses 2 for every other seed).
//!
//! The long run is `cargo test -p tests --test fuzz -- --ignored` (16
//! seeds of 50,000 calls per platform unless the knobs say otherwise).
//! A failure prints the command that replays it; `sysfuzz -v` prints each
//! call before making it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tests::{
    build_fuzz_program, have_gcc, run_with_timeout, runsc_lite_bin, skip, Link, RunOutput, TempDir, PLATFORMS,
};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn iterations(default: u64) -> u64 {
    env_u64("RUNSC_LITE_FUZZ_ITERATIONS").unwrap_or(default)
}

/// How long one fuzz run may take before it counts as a hang: generous,
/// so that a loaded machine is never mistaken for a hang (a call that
/// blocks is cut short inside the fuzzer in milliseconds).
fn run_limit(calls: u64) -> Duration {
    Duration::from_secs(240 + calls / 50)
}

/// `reaper 20 runsc-lite --platform=P --root=R do sysfuzz -s SEED -n N`,
/// in a fresh working directory.
fn fuzz_once(platform: &str, seed: u64, calls: u64, threads: u64) -> (RunOutput, String) {
    let sysfuzz = build_fuzz_program("sysfuzz", Link::Static);
    let reaper = build_fuzz_program("reaper", Link::Static);
    let state = TempDir::new("fuzz-state");
    let cwd = TempDir::new("fuzz-cwd");
    let mut args: Vec<String> = vec!["-s".into(), seed.to_string(), "-n".into(), calls.to_string()];
    if threads > 0 {
        args.push("-t".into());
        args.push(threads.to_string());
    }
    let replay = format!(
        "{} --platform={platform} --root={} do {} {} -v",
        runsc_lite_bin().display(),
        state.path().display(),
        sysfuzz.display(),
        args.join(" ")
    );
    let mut c = Command::new(&reaper);
    c.arg("20")
        .arg(runsc_lite_bin())
        .arg(format!("--platform={platform}"))
        .arg(format!("--root={}", state.path().display()))
        .arg("do")
        .arg(&sysfuzz)
        .args(&args)
        .current_dir(cwd.path())
        .stdin(Stdio::null());
    (run_with_timeout(&mut c, run_limit(calls)), replay)
}

/// Everything a fuzz run must show.
fn check(out: &RunOutput, platform: &str, seed: u64, replay: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    if out.timed_out {
        problems.push("it hung (killed at the time limit)".to_string());
    }
    if out.stderr.contains("panicked") {
        problems.push("the Sentry panicked".to_string());
    }
    if out.status != 0 {
        problems.push(format!("exit status {} (the fuzzer's is 0)", out.status));
    }
    if !out.stdout.starts_with(&format!("sysfuzz seed {seed} "))
        || !out.stdout.ends_with("sandbox still serving\ndone\n")
    {
        problems.push("the fuzzer did not finish with the sandbox serving".to_string());
    }
    match out.stderr.lines().rev().find(|l| l.starts_with("reaper: left behind ")) {
        Some(l) if l.starts_with("reaper: left behind 0 ") => {}
        Some(l) => problems.push(format!("host processes were left behind ({l})")),
        None if !out.timed_out => problems.push("no report from the reaper".to_string()),
        None => {}
    }
    // Calls to numbers outside the table are logged a few times only
    // (then one line says the rest are not).
    let unknown = out.stderr.lines().filter(|l| l.contains("unknown syscall number ")).count();
    if unknown > 8 {
        problems.push(format!("{unknown} log lines about unknown syscall numbers"));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "syscall fuzzing on {platform}, seed {seed}: {}\nreplay with:\n  {replay}\n{}",
        problems.join("; "),
        out.describe()
    ))
}

fn prerequisites(test: &str) -> bool {
    if let Err(e) = have_gcc() {
        skip(test, &e);
        return false;
    }
    true
}

/// A short run per platform (in CI): a few seconds each.
#[test]
fn syscall_fuzz() {
    if !prerequisites("syscall_fuzz") {
        return;
    }
    let calls = iterations(6000);
    let mut failures = Vec::new();
    for (i, p) in PLATFORMS.iter().enumerate() {
        let seed = env_u64("RUNSC_LITE_FUZZ_SEED").unwrap_or(1 + i as u64);
        let (out, replay) = fuzz_once(p, seed, calls, env_u64("RUNSC_LITE_FUZZ_THREADS").unwrap_or(0));
        if let Err(e) = check(&out, p, seed, &replay) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The long run: `cargo test -p tests --test fuzz -- --ignored`.
#[test]
#[ignore]
fn syscall_fuzz_long() {
    if !prerequisites("syscall_fuzz_long") {
        return;
    }
    let calls = iterations(50_000);
    let first = env_u64("RUNSC_LITE_FUZZ_SEED").unwrap_or(1000);
    let seeds = env_u64("RUNSC_LITE_FUZZ_SEEDS").unwrap_or(16);
    let mut failures = Vec::new();
    for seed in first..first + seeds {
        let threads = env_u64("RUNSC_LITE_FUZZ_THREADS").unwrap_or(if seed % 2 == 1 { 2 } else { 0 });
        for p in PLATFORMS {
            let (out, replay) = fuzz_once(p, seed, calls, threads);
            if let Err(e) = check(&out, p, seed, &replay) {
                eprintln!("{e}");
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} runs failed:\n{}", failures.len(), seeds * 2, failures.join("\n"));
}

/// The reaper itself: a command that leaves a process behind is caught.
#[test]
fn reaper_reports_what_is_left_behind() {
    if !prerequisites("reaper_reports_what_is_left_behind") {
        return;
    }
    let reaper = build_fuzz_program("reaper", Link::Static);
    let run = |script: &str| {
        let mut c = Command::new(&reaper);
        c.args(["2", "sh", "-c", script]).current_dir(Path::new("/")).stdin(Stdio::null());
        run_with_timeout(&mut c, Duration::from_secs(60))
    };
    let out = run("exit 3");
    assert_eq!(out.status, 3, "{}", out.describe());
    assert!(out.stderr.contains("reaper: left behind 0 "), "{}", out.describe());
    // A background process that outlives the shell.
    let out = run("sleep 30 </dev/null >/dev/null 2>&1 & exit 0");
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(out.stderr.contains("reaper: left behind 1 "), "{}", out.describe());
}
