//! The sandbox's limits, sandbox-only (the host cannot run these the same
//! way): `linux.resources.memory.limit` and `--memory-limit` (the largest
//! process is killed, the Sentry lives on), `pids.limit` against a fork
//! bomb, `process.rlimits` from config.json, tmpfs `size=`/`nr_inodes=`,
//! `do --overlay-size` and its default, and timers that share one host
//! thread. The differential part of the rlimits is the `rlimits`
//! conformance guest.
//!
//! Guests are the C programs of `tests/guest/limits/` (not in GUESTS:
//! they have no native twin). Tests that need /bin/busybox report SKIPPED
//! without it. Every test runs on each platform of `tests::PLATFORMS`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tests::bundle::{config, mount, Bundle, Config};
use tests::{
    assert_no_panic, assert_status, assert_stdout, have_gcc, need_busybox, run_do, run_with_timeout, runsc_lite,
    timeout, RunOutput, PLATFORMS,
};

/// Compiles `tests/guest/limits/NAME.c` (static) and returns the binary.
fn build(name: &str) -> PathBuf {
    have_gcc().unwrap_or_else(|e| panic!("cannot build {name}: {e}"));
    let src = tests::guest_src_dir().join("limits").join(format!("{name}.c"));
    let dir = tests::guest_bin_dir();
    std::fs::create_dir_all(&dir).expect("mkdir guest-bin");
    let bin = dir.join(format!("limits-{name}"));
    let tmp = dir.join(format!(".limits-{name}.{}", tests::unique("tmp")));
    let out = Command::new("gcc")
        .args(["-O1", "-static", "-pthread", "-o"])
        .arg(&tmp)
        .arg(&src)
        .stdin(Stdio::null())
        .output()
        .expect("gcc");
    assert!(out.status.success(), "gcc {}: {}", src.display(), String::from_utf8_lossy(&out.stderr));
    std::fs::rename(&tmp, &bin).expect("rename");
    bin
}

/// A bundle with busybox, extra applets and `progs` copied into /bin.
fn bundle(bb: &Path, progs: &[(&str, &Path)]) -> Bundle {
    let b = Bundle::new(bb);
    for a in ["dd", "df", "head", "seq", "cut"] {
        let _ = std::os::unix::fs::symlink("busybox", b.rootfs().join("bin").join(a));
    }
    for (name, p) in progs {
        std::fs::copy(p, b.rootfs().join("bin").join(name)).expect("copy guest");
    }
    b
}

/// `c` as config.json, with `resources` put into "linux" and `rlimits`
/// into "process" (JSON fragments, or "" for none).
fn write_config(b: &Bundle, c: &Config, resources: &str, rlimits: &str) {
    let mut text = c.to_json();
    if !resources.is_empty() {
        text = text.replacen("\"linux\": {", &format!("\"linux\": {{ \"resources\": {resources},"), 1);
    }
    if !rlimits.is_empty() {
        text = text.replacen("\"process\": {", &format!("\"process\": {{\n    \"rlimits\": {rlimits},"), 1);
    }
    b.write_raw_config(&text);
}

/// Exactly one stderr line mentions `what`.
fn assert_one_log_line(out: &RunOutput, what: &str) {
    let n = out.stderr.lines().filter(|l| l.contains(what)).count();
    assert_eq!(n, 1, "expected one log line with {what:?}\n{}", out.describe());
}

fn check_hog(out: &RunOutput) {
    assert_no_panic(out);
    assert_status(out, 0);
    assert_stdout(out, "hog killed by signal 9\nafter: child exited 7\n");
    assert_one_log_line(out, "killed process");
    assert!(out.stderr.contains("memory limit 64.0 MiB exceeded"), "{}", out.describe());
}

#[test]
fn memory_limit_kills_the_largest_process() {
    let hog = build("memhog");
    let cwd = std::env::temp_dir();
    for p in PLATFORMS {
        let (mut c, _state) = runsc_lite(p);
        c.arg("do").arg("--memory-limit=64M").arg(&hog).arg("256").current_dir(&cwd).stdin(Stdio::null());
        check_hog(&run_with_timeout(&mut c, timeout()));
        // Under the limit nothing happens.
        let (mut c, _state) = runsc_lite(p);
        c.arg("do").arg("--memory-limit=64M").arg(&hog).arg("16").current_dir(&cwd).stdin(Stdio::null());
        let out = run_with_timeout(&mut c, timeout());
        assert_stdout(&out, "hog survived\nhog exited 0\nafter: child exited 7\n");
        assert!(!out.stderr.contains("memory limit"), "{}", out.describe());
    }
    let Some(bb) = need_busybox("memory_limit_kills_the_largest_process (bundle)") else { return };
    let b = bundle(&bb, &[("memhog", &hog)]);
    write_config(&b, &config(&["/bin/memhog", "256"]), r#"{ "memory": { "limit": 67108864 } }"#, "");
    for p in PLATFORMS {
        let out = b.run(p);
        check_hog(&out);
        assert!(!out.stderr.contains("linux.resources"), "memory.limit is enforced now\n{}", out.describe());
    }
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let bomb = build("forkbomb");
    let want = "fork stopped: EAGAIN after 31 children\npthread_create stopped: EAGAIN after 31 threads\n\
                fork after: child exited 5\n";
    let cwd = std::env::temp_dir();
    for p in PLATFORMS {
        let (mut c, _state) = runsc_lite(p);
        c.arg("do").arg("--pids-limit=32").arg(&bomb).current_dir(&cwd).stdin(Stdio::null());
        let out = run_with_timeout(&mut c, timeout());
        assert_no_panic(&out);
        assert_stdout(&out, want);
    }
    let Some(bb) = need_busybox("pids_limit_stops_a_fork_bomb (bundle)") else { return };
    let b = bundle(&bb, &[("forkbomb", &bomb)]);
    // The shell is one task of the 32: the bomb gets one child fewer.
    write_config(
        &b,
        &config(&["/bin/sh", "-c", "/bin/forkbomb; echo still usable; echo $(echo sub)shell"]),
        r#"{ "pids": { "limit": 32 } }"#,
        "",
    );
    for p in PLATFORMS {
        let out = b.run(p);
        assert_no_panic(&out);
        assert_stdout(
            &out,
            "fork stopped: EAGAIN after 30 children\npthread_create stopped: EAGAIN after 30 threads\n\
             fork after: child exited 5\nstill usable\nsubshell\n",
        );
    }
}

#[test]
fn rlimits_from_config_json() {
    let Some(bb) = need_busybox("rlimits_from_config_json") else { return };
    let b = bundle(&bb, &[]);
    let rlimits = r#"[
      { "type": "RLIMIT_NOFILE", "soft": 100, "hard": 200 },
      { "type": "RLIMIT_CORE", "soft": 0, "hard": 1024 },
      { "type": "RLIMIT_NPROC", "soft": 50, "hard": 60 },
      { "type": "RLIMIT_CPU", "soft": 10, "hard": 20 }
    ]"#;
    write_config(
        &b,
        &config(&["/bin/sh", "-c", "grep -E 'open files|core file|processes|cpu time' /proc/self/limits; ulimit -n; ulimit -Hn; sh -c 'ulimit -n'"]),
        "",
        rlimits,
    );
    let _ = std::os::unix::fs::symlink("busybox", b.rootfs().join("bin/grep"));
    for p in PLATFORMS {
        let out = b.run(p);
        assert_status(&out, 0);
        let lines: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
        let row = |name: &str| {
            lines
                .iter()
                .find(|l| l.join(" ").starts_with(name))
                .unwrap_or_else(|| panic!("no {name} in\n{}", out.describe()))
                .clone()
        };
        assert_eq!(row("Max open files")[3..5], ["100", "200"], "{}", out.describe());
        assert_eq!(row("Max core file size")[4..6], ["0", "1024"], "{}", out.describe());
        assert_eq!(row("Max processes")[2..4], ["50", "60"], "{}", out.describe());
        assert_eq!(row("Max cpu time")[3..5], ["10", "20"], "{}", out.describe());
        assert!(out.stdout.ends_with("100\n200\n100\n"), "{}", out.describe());
        // Enforced limits say nothing; the unenforced one says so once.
        assert_one_log_line(&out, "RLIMIT_CPU is not enforced");
        assert!(!out.stderr.contains("RLIMIT_NOFILE") && !out.stderr.contains("RLIMIT_CORE"), "{}", out.describe());
    }
}

#[test]
fn tmpfs_size_and_inodes() {
    let Some(bb) = need_busybox("tmpfs_size_and_inodes") else { return };
    let b = bundle(&bb, &[]);
    let mut c = config(&[
        "/bin/sh",
        "-c",
        "stat -f -c '%S %b %f %c %d' /tmp; \
         dd if=/dev/zero of=/tmp/big bs=4096 count=1000 2>&1 | grep -o 'No space left on device'; \
         stat -f -c '%b %f' /tmp; rm /tmp/big; \
         for i in $(seq 1 20); do touch /tmp/f$i 2>/dev/null || { echo stopped at $i; break; }; done; \
         stat -f -c '%c %d' /tmp; stat -f -c '%b %c' /half; stat -f -c '%b' /big; df -k /tmp | tail -n 1 | cut -c 1-40",
    ]);
    c.mounts.retain(|m| m.dest != "/tmp");
    for d in ["half", "big"] {
        std::fs::create_dir_all(b.rootfs().join(d)).expect("mkdir");
    }
    c.mounts.push(mount("/tmp", "tmpfs", "tmpfs", &["mode=1777", "size=1m", "nr_inodes=10"]));
    c.mounts.push(mount("/half", "tmpfs", "tmpfs", &["size=50%", "nr_inodes=1k"]));
    c.mounts.push(mount("/big", "tmpfs", "tmpfs", &["size=2g"]));
    write_config(&b, &c, r#"{ "memory": { "limit": 67108864 } }"#, "");
    let _ = std::os::unix::fs::symlink("busybox", b.rootfs().join("bin/grep"));
    let _ = std::os::unix::fs::symlink("busybox", b.rootfs().join("bin/tail"));
    for p in PLATFORMS {
        let out = b.run(p);
        assert_status(&out, 0);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 8, "{}", out.describe());
        assert_eq!(lines[0], "4096 256 256 10 9", "{}", out.describe());
        assert_eq!(lines[1], "No space left on device", "{}", out.describe());
        assert_eq!(lines[2], "256 0", "{}", out.describe());
        assert_eq!(lines[3], "stopped at 10", "{}", out.describe());
        assert_eq!(lines[4], "10 0", "{}", out.describe());
        // 50% of the 64 MiB memory limit; 1k inodes.
        assert_eq!(lines[5], "8192 1024", "{}", out.describe());
        assert_eq!(lines[6], "524288", "{}", out.describe());
        let df: Vec<&str> = lines[7].split_whitespace().collect();
        assert_eq!(df.get(1), Some(&"1024"), "df -k shows the size\n{}", out.describe());
    }
}

#[test]
fn overlay_size_flag_and_default() {
    let cwd = std::env::temp_dir();
    for p in PLATFORMS {
        // What may be written (the host layer's use counts as used).
        let stat = ["stat", "-f", "-c", "%S %a", "/"];
        // Default: 1 GiB; half the memory limit when there is one.
        assert_stdout(&run_do(p, &stat, &cwd), "4096 262144\n");
        let mut args = vec!["--memory-limit=256M"];
        args.extend(stat);
        assert_stdout(&run_do(p, &args, &cwd), "4096 32768\n");
        let mut args = vec!["--overlay-size=1M", "sh", "-c"];
        args.push(
            "stat -f -c '%a %f' /; stat -f -c '%a' /tmp; \
             dd if=/dev/zero of=/tmp/x bs=64k count=100 2>&1 | grep -o 'No space left on device'; \
             stat -f -c '%f' /; rm /tmp/x; stat -f -c '%f' /",
        );
        let out = run_do(p, &args, &cwd);
        assert_status(&out, 0);
        assert_stdout(&out, "256 256\n256\nNo space left on device\n0\n256\n");
        let out = run_do(p, &["--overlay-size=50%", "--memory-limit=64M", "stat", "-f", "-c", "%a", "/"], &cwd);
        assert_stdout(&out, "8192\n");
    }
}

#[test]
fn timers_share_one_host_thread() {
    let prog = build("timers");
    let cwd = std::env::temp_dir();
    for p in PLATFORMS {
        let (mut c, _state) = runsc_lite(p);
        c.arg("do").arg(&prog).arg("50").current_dir(&cwd);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn runsc-lite");
        let pid = child.id();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read ready");
        assert_eq!(line, "ready: 1 alarm\n", "{p}");
        // 50 processes with ITIMER_REAL and ITIMER_PROF armed (and
        // re-armed): every timer is an entry of the one timer thread.
        // The Sentry's threads, wherever beneath runsc-lite it runs.
        let mut names = Vec::new();
        for proc in std::iter::once(pid as i32).chain(tests::host_descendants(pid as i32)) {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{proc}/task")) else { continue };
            for e in tasks.flatten() {
                if let Ok(n) = std::fs::read_to_string(e.path().join("comm")) {
                    names.push(n.trim().to_string());
                }
            }
        }
        let count = |n: &str| names.iter().filter(|x| x.as_str() == n).count();
        assert_eq!(count("itimer") + count("cpu-itimer"), 0, "{p}: per-timer threads: {names:?}");
        assert_eq!(count("timers"), 1, "{p}: {names:?}");
        if let Some(mut i) = child.stdin.take() {
            let _ = i.flush();
        }
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read rest");
        let status = child.wait().expect("wait");
        assert!(status.success(), "{p}: {status:?}");
        assert_eq!(rest, "reaped 50\n", "{p}");
    }
}

#[test]
fn meminfo_reports_the_memory_limit() {
    let cwd = std::env::temp_dir();
    for p in PLATFORMS {
        let out = run_do(p, &["--memory-limit=64M", "head", "-n", "1", "/proc/meminfo"], &cwd);
        assert_stdout(&out, "MemTotal:          65536 kB\n");
        let out = run_do(p, &["--memory-limit=64M", "free", "-k"], &cwd);
        let mem: Vec<&str> = out.stdout.lines().nth(1).unwrap_or_default().split_whitespace().collect();
        assert_eq!(mem.get(1), Some(&"65536"), "{}", out.describe());
    }
}

#[test]
fn epoll_watches_are_bounded() {
    // fs.epoll.max_user_watches follows the memory (4% at 200 bytes a
    // watch) with a floor of 1024, which a 4 MiB sandbox gets.
    let prog = build("epollmax");
    let cwd = std::env::temp_dir();
    for p in PLATFORMS {
        let (mut c, _state) = runsc_lite(p);
        c.arg("do").arg("--memory-limit=4M").arg(&prog).current_dir(&cwd).stdin(Stdio::null());
        let out = run_with_timeout(&mut c, timeout());
        assert_no_panic(&out);
        assert_stdout(&out, "watches: 1024, then ENOSPC\nafter closing 10: 10 more\n");
    }
}
