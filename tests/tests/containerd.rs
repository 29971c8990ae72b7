//! runsc-lite behind containerd: `scripts/containerd-e2e.sh` with the
//! workspace's runsc-lite as containerd's runc shim's `--runc-binary`
//! (a private containerd, a busybox image built from busybox-static,
//! `ctr run` output and exit status, task ls/ps/pause/resume/exec/kill,
//! `ctr run -t` and `ctr task exec -t` on ptys; each step prints PASS or FAIL).
//!
//! Needs root, Debian's containerd (`scripts/install-deps.sh --containerd`
//! installs it; CI does) and busybox-static; reports SKIPPED without them.

use std::process::Command;
use tests::{need_busybox, run_with_timeout, runsc_lite_bin, skip, timeout, which, workspace_root};

#[test]
fn containerd_e2e() {
    const TEST: &str = "containerd_e2e";
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip(TEST, "containerd needs root");
    }
    if let Some(missing) =
        ["containerd", "ctr", "containerd-shim-runc-v2", "python3"].into_iter().find(|p| which(p).is_none())
    {
        return skip(TEST, &format!("{missing} not found (scripts/install-deps.sh --containerd installs containerd)"));
    }
    if need_busybox(TEST).is_none() {
        return;
    }
    let script = workspace_root().join("scripts/containerd-e2e.sh");
    let mut cmd = Command::new(script);
    cmd.arg(runsc_lite_bin()).env("E2E_TIMEOUT", timeout().as_secs().to_string());
    // Twelve steps, each bounded by the timeout inside the script.
    let out = run_with_timeout(&mut cmd, timeout() * 13);
    assert!(
        out.status == 0 && !out.stdout.contains("FAIL"),
        "containerd-e2e.sh failed (status {}, timed out: {}):\n{}\n{}",
        out.status,
        out.timed_out,
        out.stdout,
        out.stderr
    );
}
