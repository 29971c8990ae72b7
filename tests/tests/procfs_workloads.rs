//! /proc, /sys and the kernel log through real tools under `runsc-lite do`
//! on every platform: the CPU count every tool reports matches the native
//! one, procps reads /proc without complaint, `dmesg` prints the
//! sandbox's own boot log.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tests::{diff_lines, run_do, run_native, skip, RunOutput, PLATFORMS};

fn tmp() -> PathBuf {
    std::env::temp_dir()
}

fn native(args: &[&str]) -> RunOutput {
    let prog = tests::which(args[0]).unwrap_or_else(|| PathBuf::from(args[0]));
    run_native(&prog, &args[1..], &tmp())
}

fn real_python() -> Option<String> {
    let py = tests::which("python3")?;
    let out = run_native(&py, &["-c", "import sys; print(sys.executable)"], &tmp());
    let exe = out.stdout.trim().to_string();
    (out.status == 0 && Path::new(&exe).is_file()).then_some(exe)
}

/// nproc, getconf and python's two counts (sysconf, sched_getaffinity)
/// agree with each other and with the native values on every platform.
#[test]
fn cpu_counts_match_native() {
    let mut script = String::from("nproc; getconf _NPROCESSORS_ONLN; getconf _NPROCESSORS_CONF;");
    match real_python() {
        Some(py) => {
            script.push_str(&format!(
                " {py} -c 'import os; print(os.cpu_count(), len(os.sched_getaffinity(0)), os.sysconf(\"SC_NPROCESSORS_ONLN\"))'"
            ));
        }
        None => skip("cpu_counts_match_native", "no python3: only nproc and getconf compared"),
    }
    let args = ["sh", "-c", script.as_str()];
    let n = native(&args);
    assert_eq!(n.status, 0, "native run failed:\n{}", n.describe());
    let mut failures = String::new();
    for p in PLATFORMS {
        let s = run_do(p, &args, &tmp());
        if s.status != 0 || s.stdout != n.stdout {
            let _ = writeln!(failures, "### {p}\n{}{}", diff_lines(&n.stdout, &s.stdout), s.stderr);
        }
    }
    // Started on the last CPU only: the sandbox reports that mask, as the
    // host does for a process started so.
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if let (Some(taskset), true) = (tests::which("taskset"), cpus > 1) {
        let last = (cpus - 1).to_string();
        let mut c = std::process::Command::new(&taskset);
        c.args(["-c", &last]).args(args).current_dir(tmp()).stdin(std::process::Stdio::null());
        let n = tests::run_with_timeout(&mut c, tests::timeout());
        for p in PLATFORMS {
            let (sandbox, _root) = tests::runsc_lite(p);
            let mut c = std::process::Command::new(&taskset);
            c.args(["-c", &last]).arg(sandbox.get_program()).args(sandbox.get_args()).arg("do").args(args);
            c.current_dir(tmp()).stdin(std::process::Stdio::null());
            let s = tests::run_with_timeout(&mut c, tests::timeout());
            if s.status != 0 || s.stdout != n.stdout {
                let _ = writeln!(failures, "### {p} on CPU {last}\n{}{}", diff_lines(&n.stdout, &s.stdout), s.stderr);
            }
        }
    }
    assert!(failures.is_empty(), "CPU counts differ from native:\n{failures}");
}

const BOOT_LOG: &str = "\
[    0.000000] Starting runsc-lite...
[    0.113204] Counting every system call twice, just in case...
[    0.247918] Teaching the Sentry to say ENOSYS politely...
[    0.381556] Folding page tables into paper cranes...
[    0.502337] Reticulating stub threads...
[    0.640129] Making sure the seccomp filter is still grumpy...
[    0.771845] Setting up /proc with the truth...
[    0.903310] Ready!
";

/// util-linux dmesg prints the sandbox's boot log, through /dev/kmsg and
/// through syslog(2) (-S), with levels (-r); a line written to /dev/kmsg
/// is appended; dmesg -C empties what is shown.
#[test]
fn dmesg_prints_the_boot_log() {
    if tests::which("dmesg").is_none() {
        skip("dmesg_prints_the_boot_log", "no dmesg");
        return;
    }
    let script = "dmesg; echo --; dmesg -S; echo --; dmesg -r | head -1; echo --; \
                  echo '<5>hello from the guest' > /dev/kmsg; dmesg -r | tail -1 | sed 's/\\[.*\\]//'; \
                  echo --; dmesg -C; dmesg | wc -l";
    let want = format!(
        "{BOOT_LOG}--\n{BOOT_LOG}--\n<6>[    0.000000] Starting runsc-lite...\n--\n<5> hello from the guest\n--\n0\n"
    );
    let mut failures = String::new();
    for p in PLATFORMS {
        let s = run_do(p, &["sh", "-c", script], &tmp());
        if s.status != 0 || s.stdout != want {
            let _ = writeln!(failures, "### {p}\n{}{}", diff_lines(&want, &s.stdout), s.stderr);
        }
    }
    assert!(failures.is_empty(), "dmesg differs from the expected boot log:\n{failures}");
}

/// procps reads the sandbox's /proc: ps, top, free and uptime run without
/// a word on stderr, and ps sees the sandbox's processes with their states.
#[test]
fn procps_reads_proc() {
    if ["ps", "top", "free", "uptime"].iter().any(|t| tests::which(t).is_none()) {
        skip("procps_reads_proc", "procps is missing");
        return;
    }
    let script = "sleep 100 & ps -o stat=,comm= -p $$; top -bn1 >/dev/null; free >/dev/null; uptime >/dev/null; \
                  all=$(ps -eo comm=); echo \"$all\" | sort; kill $!";
    let mut failures = String::new();
    for p in PLATFORMS {
        let s = run_do(p, &["sh", "-c", script], &tmp());
        let want = "Ss   sh\nps\nsh\nsleep\n";
        if s.status != 0 || !s.stderr.is_empty() || s.stdout != want {
            let _ = writeln!(failures, "### {p}\n{}{}", diff_lines(want, &s.stdout), s.stderr);
        }
    }
    assert!(failures.is_empty(), "procps tools failed:\n{failures}");
}

/// A bundle that mounts sysfs gets the sandbox's own minimal one: the CPU
/// files there agree with nproc (busybox's, through sched_getaffinity)
/// and with the host's.
#[test]
fn bundle_sysfs_cpu_files() {
    let Some(bb) = tests::need_busybox("bundle_sysfs_cpu_files") else { return };
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let native_nproc = native(&["nproc"]).stdout;
    let b = tests::bundle::Bundle::new(&bb);
    let mut c = tests::bundle::config(&[
        "/bin/sh",
        "-c",
        "cat /sys/devices/system/cpu/online /sys/devices/system/cpu/possible; nproc; ls /sys/devices/system/cpu | grep -c '^cpu[0-9]'",
    ]);
    c.mounts.push(tests::bundle::mount("/sys", "sysfs", "sysfs", &[]));
    b.write_config(&c);
    let ncpus = cpu_count(online.trim());
    let want = format!("{0}{0}{native_nproc}{ncpus}\n", online);
    for p in PLATFORMS {
        let out = b.run(p);
        assert_eq!(out.stdout, want, "{p}:\n{}", out.describe());
    }
}

/// How many CPUs a list such as "0-3,8" names.
fn cpu_count(list: &str) -> usize {
    list.split(',')
        .filter_map(|p| {
            let (a, b) = p.split_once('-').unwrap_or((p, p));
            Some(b.parse::<usize>().ok()? + 1 - a.parse::<usize>().ok()?)
        })
        .sum()
}
