//! The failure policy (DESIGN.md): a panic anywhere in the Sentry ends the
//! sandbox at once and cleanly. Provoked through the debug-only syscall
//! (sentry::failure::DEBUG_PANIC_SYSCALL; the tests run the debug build)
//! from a forked child whose parent waits in wait4, on each platform: on
//! the task's own thread, on a helper thread, and with locks held that
//! other threads need. Each run must end with status 125, exactly one
//! line naming the panic and its location, and none of the stub processes
//! (the guest's processes on the host) left behind.
//!
//! `cargo test -p tests --test failure -- --nocapture`

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// runsc-lite's status after a Sentry failure (sentry::failure::EXIT_STATUS).
const SENTRY_FAILURE_STATUS: i32 = 125;

/// A process's start time (field 22 of /proc/PID/stat), to tell a pid
/// that was reused from the one recorded.
fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command (field 2) may hold spaces: count from its closing ')'.
    let rest = &s[s.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The host processes beneath `pid` (the Sentry, its helpers, the
/// stubs), with their start times.
fn descendants_of(pid: i32) -> Vec<(i32, u64)> {
    tests::host_descendants(pid).into_iter().filter_map(|p| Some((p, start_time(p)?))).collect()
}

fn kill_group(pgid: i32) {
    // SAFETY: kill(2) on the process group this test created
    // (process_group(0)); no memory is touched.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Waits for `child` to exit, up to `limit`; None on a timeout.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn panic_ends_the_sandbox(platform: &str, mode: &str) {
    let test = format!("panic_ends_the_sandbox({platform}, {mode})");
    if let Err(e) = tests::have_gcc() {
        tests::skip(&test, &e);
        return;
    }
    let bin = tests::build_guest("sentry_panic", tests::Link::Static);
    let (mut cmd, _state) = tests::runsc_lite(platform);
    cmd.arg("do")
        .arg(&bin)
        .args(["panic", mode])
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{test}: spawning runsc-lite: {e}"));
    let pid = child.id() as i32;
    let limit = tests::timeout();

    // stdout line by line from a thread, so no read can hang the test.
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let ready = rx.recv_timeout(limit);
    if ready.as_deref() != Ok("ready") {
        kill_group(pid);
        let _ = child.wait();
        panic!("{test}: expected \"ready\", got {ready:?}; stderr:\n{}", err_reader.join().unwrap_or_default());
    }
    // The guest's processes are stub processes beneath runsc-lite (its
    // Sentry's or the stub forker's children).
    let stubs = descendants_of(pid);
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(b"go\n");
    let _ = stdin.flush();

    let status = wait_exit(&mut child, limit);
    if status.is_none() {
        kill_group(pid);
        let _ = child.wait();
    }
    let stderr = err_reader.join().unwrap_or_default();
    let rest: Vec<String> = rx.try_iter().collect();
    let status = status.unwrap_or_else(|| panic!("{test}: runsc-lite hung after the panic; stderr:\n{stderr}"));

    assert_eq!(status.code(), Some(SENTRY_FAILURE_STATUS), "{test}: status {status:?}; stderr:\n{stderr}");
    assert!(rest.is_empty(), "{test}: the guest went on after the panic: {rest:?}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("panic")).collect();
    assert_eq!(lines.len(), 1, "{test}: want one line naming the panic; stderr:\n{stderr}");
    let line = lines[0];
    assert!(line.starts_with("runsc-lite: Sentry panic in thread '"), "{test}: {line}");
    assert!(line.contains(" at sentry/src/failure.rs:"), "{test}: no location in {line}");
    assert!(line.contains("debug panic"), "{test}: no message in {line}");
    assert!(line.ends_with("sandbox ended (exit status 125)"), "{test}: {line}");

    // Four guest processes at least (the parent, three idle children and
    // the trigger; ptrace adds a stub per thread), none left afterwards.
    assert!(stubs.len() >= 4, "{test}: expected the guest's stub processes, found {stubs:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<_> = stubs.iter().filter(|&&(p, t)| start_time(p) == Some(t)).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{test}: stub processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_group(pid);
}

#[test]
fn panic_on_a_task_thread_systrap() {
    panic_ends_the_sandbox("systrap", "0");
}

#[test]
fn panic_on_a_task_thread_ptrace() {
    panic_ends_the_sandbox("ptrace", "0");
}

#[test]
fn panic_on_a_helper_thread_systrap() {
    panic_ends_the_sandbox("systrap", "1");
}

#[test]
fn panic_on_a_helper_thread_ptrace() {
    panic_ends_the_sandbox("ptrace", "1");
}

#[test]
fn panic_with_locks_held_systrap() {
    panic_ends_the_sandbox("systrap", "2");
}

#[test]
fn panic_with_locks_held_ptrace() {
    panic_ends_the_sandbox("ptrace", "2");
}
