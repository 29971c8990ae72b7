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

/// The static guest program `benches/guest/NAME.c`, built once per run.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("guest/{name}.c"));
    let out = target_dir().join(format!("bench-guest/{name}"));
    std::fs::create_dir_all(out.parent().expect("has parent")).expect("mkdir");
    let st = Command::new("gcc").args(["-O2", "-static", "-o"]).arg(&out).arg(&src).status().expect("gcc runs");
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
pub fn do_command(bin: &Path, platform: &str) -> Command {
    let mut c = Command::new(bin);
    c.arg(format!("--platform={platform}")).arg("do");
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
