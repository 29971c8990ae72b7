//! Helpers shared by the benches: building the guest program and the
//! sandbox binary, and running a guest that times itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// The runsc-lite binary (release build), built once.
pub fn runsc_lite() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("RUNSC_LITE_BIN") {
            return PathBuf::from(p);
        }
        let st = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "runsc-lite"])
            .status()
            .expect("cargo build runs");
        assert!(st.success(), "building runsc-lite failed");
        target_dir().join("release/runsc-lite")
    })
    .clone()
}

/// The static guest program `benches/guest/NAME.c`, built once per run;
/// `NAME-dyn` is the same program linked dynamically (its libc sites jump
/// to systrap's slots in the stub region, a static executable's to their
/// low copy; both are patched).
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let (base, link) = match name.strip_suffix("-dyn") {
        Some(b) => (b, "-O2"),
        None => (name, "-static"),
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("guest/{base}.c"));
    let out = target_dir().join(format!("bench-guest/{name}"));
    std::fs::create_dir_all(out.parent().expect("has parent")).expect("mkdir");
    let st = Command::new("gcc").args(["-O2", link, "-o"]).arg(&out).arg(&src).status().expect("gcc runs");
    assert!(st.success(), "gcc failed on {}", src.display());
    built.insert(name.to_string(), out.clone());
    out
}

/// `benches/guest/syscall_loop.c`, built once.
pub fn syscall_loop() -> PathBuf {
    guest("syscall_loop")
}

/// How to run the guest.
#[derive(Clone, Copy, Debug)]
pub enum Runner<'a> {
    Native,
    /// runsc-lite with this platform.
    Sandbox(&'a str),
    /// Debian's runsc (gVisor), `runsc do`, with this platform.
    Runsc(&'a str),
    /// Another runsc-lite binary (`RUNSC_LITE_BASE_BIN`, e.g. a build of
    /// an older commit), with this platform: before/after in one run.
    Base(&'a str),
}

/// `RUNSC_LITE_BASE_BIN`, when set.
pub fn base_bin() -> Option<PathBuf> {
    std::env::var_os("RUNSC_LITE_BASE_BIN").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// `runsc-lite --platform=P do` from `bin`.
///
/// `systrap-nopatch` is systrap with syscall-site patching turned off
/// (`RUNSC_LITE_SYSTRAP_PATCH=0`), for comparison.
pub fn do_command(bin: &Path, platform: &str) -> Command {
    let mut c = Command::new(bin);
    match platform.strip_suffix("-nopatch") {
        Some(p) => {
            c.env("RUNSC_LITE_SYSTRAP_PATCH", "0");
            c.arg(format!("--platform={p}")).arg("do");
        }
        None => {
            c.arg(format!("--platform={platform}")).arg("do");
        }
    }
    c
}

/// Run `syscall_loop WHAT N` and return the time the guest measured for
/// its N iterations.
pub fn run_loop(runner: Runner, what: &str, n: u64) -> Duration {
    run_guest(runner, "syscall_loop", what, n)
}

/// Run guest program `prog` (from benches/guest/) with `WHAT N` and
/// return the nanoseconds it printed (its own timing of the work).
pub fn run_guest(runner: Runner, prog: &str, what: &str, n: u64) -> Duration {
    let prog = guest(prog);
    let n = n.to_string();
    let mut cmd = match runner {
        Runner::Native => Command::new(&prog),
        Runner::Sandbox(p) => {
            let mut c = do_command(&runsc_lite(), p);
            c.arg(&prog);
            c
        }
        Runner::Base(p) => {
            let mut c = do_command(&base_bin().expect("RUNSC_LITE_BASE_BIN"), p);
            c.arg(&prog);
            c
        }
        Runner::Runsc(p) => {
            let mut c = Command::new("runsc");
            c.args([&format!("--platform={p}"), "--rootless", "--network=none", "do"]).arg(&prog);
            c
        }
    };
    cmd.args([what, &n]);
    let out = cmd.output().expect("guest runs");
    assert!(out.status.success(), "{runner:?} {what}: {}", String::from_utf8_lossy(&out.stderr));
    let ns: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("guest prints nanoseconds");
    Duration::from_nanos(ns)
}

/// Is Debian's runsc installed?
pub fn have_runsc() -> bool {
    Command::new("runsc").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// The median of some timings.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median of `reps` runs of `one` for each runner, the runners taking
/// turns (round after round) so that a noisy stretch of time hits all of
/// them alike; a runner with any failed run is left out.
pub fn interleaved<'a, R: Copy>(
    runners: &[(&'a str, R)],
    reps: usize,
    mut one: impl FnMut(R) -> Option<Duration>,
) -> Vec<(&'a str, Duration)> {
    let mut runs: Vec<Option<Vec<Duration>>> = vec![Some(Vec::new()); runners.len()];
    for _ in 0..reps {
        for (i, (_, r)) in runners.iter().enumerate() {
            if let Some(v) = runs[i].as_mut() {
                match one(*r) {
                    Some(d) => v.push(d),
                    None => runs[i] = None,
                }
            }
        }
    }
    runners.iter().zip(runs).filter_map(|((name, _), v)| v.map(|v| (*name, median(v)))).collect()
}

/// `--only=TEXT`: run only the workloads whose label holds TEXT at the
/// start of a word, not followed by a letter ("stat" picks the stat rows,
/// not "git status"; "fork" and "python" still pick "fork+exec+wait" and
/// "python3").
pub fn wanted(label: &str) -> bool {
    match std::env::args().find_map(|a| a.strip_prefix("--only=").map(str::to_string)) {
        Some(t) => label_matches(label, &t),
        None => true,
    }
}

fn label_matches(label: &str, text: &str) -> bool {
    label.match_indices(text).any(|(i, _)| {
        let word_start = label[..i].chars().next_back().is_none_or(|c| c == ' ');
        let word_end = !label[i + text.len()..].chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        word_start && word_end
    })
}

/// The header above [`print_rows`]' rows.
pub fn print_header() {
    println!("{:<28} {:<18} {:>14} {:>10} {:>10}", "workload", "runner", "median", "x native", "x runsc");
}

/// One row per runner: the median, its ratio to native (the first
/// result) and to the first `runsc/...` runner when there is one.
pub fn print_rows(label: &str, results: &[(&str, Duration)]) {
    print_rows_with(label, results, |_| String::new());
}

/// [`print_rows`] with a further column, `extra(median)`, when not empty.
pub fn print_rows_with(label: &str, results: &[(&str, Duration)], extra: impl Fn(Duration) -> String) {
    let native = results[0].1.as_secs_f64();
    let runsc = results.iter().find(|(n, _)| n.starts_with("runsc/")).map(|(_, d)| d.as_secs_f64());
    for (name, d) in results {
        let x = d.as_secs_f64() / native;
        let xr = runsc.map(|r| format!("{:.2}", d.as_secs_f64() / r)).unwrap_or_else(|| "-".into());
        let row = format!("{:<28} {:<18} {:>14} {:>10.1} {:>10}", label, name, format!("{:.2?}", d), x, xr);
        match extra(*d) {
            e if e.is_empty() => println!("{row}"),
            e => println!("{row} {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::label_matches;

    #[test]
    fn only_picks_words() {
        assert!(label_matches("stat (per call)", "stat"));
        assert!(label_matches("stat dynamic (per call)", "stat"));
        assert!(!label_matches("git status (5,000 files)", "stat"));
        assert!(label_matches("git status (5,000 files)", "git status"));
        assert!(label_matches("fork+exec+wait x20 (sh)", "fork"));
        assert!(label_matches("python3 -c pass", "python"));
        assert!(label_matches("TCP 1-byte ping-pong", "ping-pong"));
        assert!(label_matches("256 MiB unix stream", "stream"));
        assert!(label_matches("/bin/true", "/bin/true"));
        assert!(!label_matches("getdents (per call)", "dents"));
    }
}
