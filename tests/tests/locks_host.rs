//! Locks on a file of an rw bind mount exclude a host process and the
//! sandbox from each other, both ways: flock, POSIX and OFD locks taken on
//! the host block the sandbox's non-blocking attempts (and its blocking
//! ones until the host lets go), and the sandbox's locks block the host's.
//! The same helper (`tests/fuzz/locks_host.c`) runs on both sides.
//!
//! Runs on each platform of `tests::PLATFORMS`; needs /bin/busybox for the
//! bundle (SKIPPED without it, as the other bundle tests).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tests::bundle::{config, mount, Bundle};
use tests::{assert_stdout, need_busybox, run_native, runsc_lite, skip, timeout, TempDir, PLATFORMS};

/// Wait (generously) for `p` to exist.
fn wait_for(p: &Path) {
    let deadline = Instant::now() + timeout();
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait for a background child and return its stdout; killed (and the
/// test failed) past the deadline.
fn finish(mut child: Child, what: &str) -> String {
    let deadline = Instant::now() + timeout();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    assert!(status.success(), "{what}: {status}\n{out}");
    out
}

fn reset(dir: &Path) {
    for f in ["f", "held", "release", "waiting"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

/// What a probe reports while the other side holds its locks.
const BLOCKED: &str = "flock err EAGAIN\nflock_sh err EAGAIN\nsetlk err EAGAIN\nsetlk_rd err EAGAIN\nofd err EAGAIN\n\
                       elsewhere ok\ndir err EAGAIN\ngetlk wr start=0 len=10\n";
/// What it reports when nobody holds anything (the query through its
/// second description meets its own POSIX locks, split by the read lock).
const FREE: &str =
    "flock ok\nflock_sh ok\nsetlk ok\nsetlk_rd ok\nofd ok\nelsewhere ok\ndir ok\ngetlk wr start=0 len=5\n";
const HOLD: &str = "flock ok\nsetlk ok\nofd ok\ndir ok\nreleased\n";

#[test]
fn host_and_sandbox_locks_exclude_each_other() {
    let Some(bb) = need_busybox("host_and_sandbox_locks_exclude_each_other") else { return };
    if let Err(e) = tests::have_gcc() {
        skip("host_and_sandbox_locks_exclude_each_other", &e);
        return;
    }
    let bin = tests::build_fuzz_program("locks_host", tests::Link::Static);
    let b = Bundle::new(&bb);
    std::fs::copy(&bin, b.rootfs().join("bin/locks_host")).expect("copy helper");
    let dir = TempDir::new("locks-host");
    let host_dir = dir.path().to_str().expect("utf-8").to_string();
    let sandbox = |mode: &str| {
        let mut c = config(&["/bin/locks_host", mode, "/mnt/rw"]);
        c.mounts.push(mount("/mnt/rw", "bind", &host_dir, &["rbind", "rw"]));
        b.write_config(&c);
    };
    let spawn_host = |mode: &str| {
        Command::new(&bin)
            .args([mode, host_dir.as_str()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    for p in PLATFORMS {
        // The host holds: the sandbox's attempts fail, then a blocking one
        // waits until the host lets go.
        reset(dir.path());
        let holder = spawn_host("hold");
        wait_for(&dir.path().join("held"));
        sandbox("probe");
        assert_stdout(&b.run(p), BLOCKED);
        sandbox("wait");
        let (mut cmd, _state) = runsc_lite(p);
        cmd.arg("run").arg(b.path()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        cmd.process_group(0);
        let waiter = cmd.spawn().expect("spawn runsc-lite");
        wait_for(&dir.path().join("waiting"));
        std::fs::write(dir.path().join("release"), b"").expect("release");
        assert_eq!(finish(holder, "host holder"), HOLD, "{p}");
        assert_eq!(finish(waiter, "sandbox waiter"), "setlkw ok\nflock_blocking ok\nafter_release yes\n", "{p}");

        // The sandbox holds: the host's attempts fail until it exits.
        reset(dir.path());
        sandbox("hold");
        let (mut cmd, _state) = runsc_lite(p);
        cmd.arg("run").arg(b.path()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        cmd.process_group(0);
        let holder = cmd.spawn().expect("spawn runsc-lite");
        wait_for(&dir.path().join("held"));
        let probe = run_native(&bin, &["probe", &host_dir], dir.path());
        assert_stdout(&probe, BLOCKED);
        std::fs::write(dir.path().join("release"), b"").expect("release");
        assert_eq!(finish(holder, "sandbox holder"), HOLD, "{p}");
        let probe = run_native(&bin, &["probe", &host_dir], dir.path());
        assert_stdout(&probe, FREE);
        // And the sandbox, alone, gets what the host got.
        sandbox("probe");
        assert_stdout(&b.run(p), FREE);
    }
}
