//! The Sentry's confinement, seen from the host: its status, namespaces,
//! root and descriptors while a guest runs (and its stubs' and helpers'),
//! rootless runs, signals passed to the guest's init, --kill-after, no
//! process left behind, the seccomp violation report, Landlock, and the
//! printed allowlist.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tests::bundle::{config, mount, Bundle};
use tests::{need_busybox, run_with_timeout, runsc_lite, runsc_lite_bin, skip, timeout, TempDir, PLATFORMS};

const DEADLINE: Duration = Duration::from_secs(60);

fn proc_status(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
}

fn field(status: &str, name: &str) -> String {
    status.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).map(|v| v.trim().to_string()).unwrap_or_default()
}

fn alive(pid: i32) -> bool {
    let st = proc_status(pid);
    !st.is_empty() && !field(&st, "State").starts_with('Z')
}

/// A runsc-lite whose guest prints "ready" and then waits; stdin and
/// stdout are pipes.
struct Running {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
    _state: TempDir,
}

fn start(platform: &str, extra: &[&str], script: &str) -> Option<Running> {
    let bb = need_busybox("confinement")?;
    let (mut c, state) = runsc_lite(platform);
    c.args(extra).arg("do").arg(&bb).args(["sh", "-c", script]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn runsc-lite");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read the guest's first line");
    assert_eq!(line, "ready\n", "guest did not start; stderr: {}", stderr_of(&mut child));
    Some(Running { child, out, _state: state })
}

fn stderr_of(child: &mut Child) -> String {
    let _ = child.kill();
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

impl Running {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    /// The Sentry: runsc-lite's only child.
    fn sentry(&self) -> i32 {
        let t = Instant::now();
        loop {
            let kids = tests::host_descendants(self.pid());
            if let Some(s) = kids.iter().find(|p| tests::host_ppid(**p) == Some(self.pid())) {
                return *s;
            }
            assert!(t.elapsed() < DEADLINE, "no Sentry process under runsc-lite");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    /// Waits for the end: (exit code, rest of stdout, stderr).
    fn finish(mut self) -> (i32, String, String) {
        let t = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                break st;
            }
            if t.elapsed() > timeout() {
                let _ = self.child.kill();
                panic!("runsc-lite did not end");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        let _ = self.out.read_to_string(&mut out);
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.code().unwrap_or(-1), out, err)
    }
    fn signal(&self, sig: i32) {
        // SAFETY: signals the child we started.
        unsafe { libc::kill(self.pid(), sig) };
    }
}

/// The status, namespaces, root and descriptors of a confined process.
fn check_confined(pid: i32, what: &str) {
    let st = proc_status(pid);
    assert_eq!(field(&st, "Seccomp"), "2", "{what} {pid}: {st}");
    assert_eq!(field(&st, "NoNewPrivs"), "1", "{what} {pid}");
    assert_eq!(field(&st, "CapEff"), "0000000000000000", "{what} {pid}");
    assert_eq!(field(&st, "CapPrm"), "0000000000000000", "{what} {pid}");
    assert_eq!(field(&st, "CapBnd"), "0000000000000000", "{what} {pid}");
    for ns in ["mnt", "pid", "ipc", "uts", "net", "user"] {
        let mine = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let its = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_ne!(mine, its, "{what} {pid}: same {ns} namespace as the host");
    }
    let root: Vec<_> =
        std::fs::read_dir(format!("/proc/{pid}/root")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(root.is_empty(), "{what} {pid}: root directory holds {root:?}");
}

/// Whether `path` is on a tmpfs.
fn on_tmpfs(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else { return false };
    // SAFETY: an all-zero statfs is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: statfs into a live struct with a valid C string.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type == libc::TMPFS_MAGIC }
}

/// The descriptors of `pid`: (number, /proc link).
fn fd_links(pid: i32) -> Vec<(String, String)> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let l = std::fs::read_link(e.path()).ok()?;
                    Some((e.file_name().to_string_lossy().into_owned(), l.to_string_lossy().into_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_sentry_and_its_stubs_are_confined() {
    for p in PLATFORMS {
        let Some(r) = start(p, &[], "echo ready; read x; echo bye") else { return };
        let sentry = r.sentry();
        check_confined(sentry, &format!("{p} Sentry"));
        // Only the memory file and its cache file (an unlinked file on a
        // tmpfs of the Sentry's own), the mount roots (do: the host's /, and
        // the Sentry's own /proc), stdio, pipes, pidfds and the stub
        // forker's socket, plus host nodes beneath the root (do's is the
        // host's /, read-only): O_PATH node descriptors and files open for
        // reading.
        let links = fd_links(sentry);
        for (fd, l) in &links {
            let special = l.starts_with("pipe:")
                || l.starts_with("socket:")
                || l.starts_with("anon_inode:")
                || l.starts_with("/memfd:")
                || l.starts_with("/dev/")
                || (l == "/runsc-lite-cache (deleted)" && on_tmpfs(&format!("/proc/{sentry}/fd/{fd}")));
            if special {
                continue;
            }
            let flags = std::fs::read_to_string(format!("/proc/{sentry}/fdinfo/{fd}")).unwrap_or_default();
            let flags = flags.lines().find_map(|x| x.strip_prefix("flags:")).map(|f| f.trim().to_string());
            let flags = u32::from_str_radix(flags.as_deref().unwrap_or("0"), 8).unwrap_or(0);
            let o_path = flags & libc::O_PATH as u32 != 0;
            let read_only = flags & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32;
            assert!(
                l.starts_with('/') && (o_path || read_only),
                "{p}: Sentry descriptor {fd} -> {l}, flags {flags:o} ({links:?})"
            );
        }
        assert!(links.iter().any(|(_, l)| l.starts_with("/memfd:runsc-lite-memory")), "{p}: {links:?}");
        // Stubs and the stub forker: every process of the sandbox.
        let others = tests::host_descendants(sentry);
        assert!(!others.is_empty(), "{p}: no stub processes");
        for o in &others {
            if alive(*o) {
                check_confined(*o, &format!("{p} stub/helper"));
                // The systrap forker has its own filter; stubs add theirs on
                // top of what they inherit (systrap: control and guest;
                // ptrace: the stub filter beneath the Sentry's three).
                let n: u32 = field(&proc_status(*o), "Seccomp_filters").parse().unwrap_or(0);
                let comm = std::fs::read_to_string(format!("/proc/{o}/comm")).unwrap_or_default();
                assert!(n >= 1, "{p}: process {o} ({}) has no filter of its own", comm.trim());
                if *p == "ptrace" {
                    assert!(n >= 4, "{p}: stub {o} has {n} filters: its own is missing");
                }
            }
        }
        let mut r = r;
        r.child.stdin.as_mut().unwrap().write_all(b"x\n").unwrap();
        let (code, out, err) = r.finish();
        assert_eq!((code, out.as_str()), (0, "bye\n"), "{p}: {err}");
    }
}

/// runsc-lite and a busybox bundle copied where `nobody` can read them.
fn nobody_setup(bb: &Path) -> (TempDir, PathBuf) {
    let dir = TempDir::new("rootless");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("runsc-lite");
    std::fs::copy(runsc_lite_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let _ = bb;
    (dir, bin)
}

fn as_nobody(bin: &Path, state: &Path, args: &[&str]) -> tests::RunOutput {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(bin);
    c.arg(format!("--root={}", state.display())).args(args).stdin(Stdio::null()).current_dir("/");
    run_with_timeout(&mut c, timeout())
}

#[test]
fn rootless_do_and_run_work_as_nobody() {
    let Some(bb) = need_busybox("rootless_do_and_run_work_as_nobody") else { return };
    if tests::which("setpriv").is_none() {
        skip("rootless_do_and_run_work_as_nobody", "setpriv (util-linux) is not installed");
        return;
    }
    let (dir, bin) = nobody_setup(&bb);
    let state = dir.path().join("state");
    let b = Bundle::new(&bb);
    b.write_config(&config(&["/bin/sh", "-c", "id -u; echo from the bundle"]));
    for p in PLATFORMS {
        let plat = format!("--platform={p}");
        let out = as_nobody(&bin, &state, &[&plat, "do", bb.to_str().unwrap(), "id", "-u"]);
        assert_eq!((out.status, out.stdout.as_str()), (0, "0\n"), "{p} do: {}", out.stderr);
        let out = as_nobody(&bin, &state, &[&plat, "--rootless", "run", b.path().to_str().unwrap()]);
        assert_eq!((out.status, out.stdout.as_str()), (0, "0\nfrom the bundle\n"), "{p} run: {}", out.stderr);
    }
}

#[test]
fn sigterm_reaches_the_guests_trap() {
    for p in PLATFORMS {
        let script = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 1; done";
        let Some(r) = start(p, &[], script) else { return };
        r.signal(libc::SIGTERM);
        let (code, out, err) = r.finish();
        assert_eq!((code, out.as_str()), (7, "got TERM\n"), "{p}: {err}");
    }
}

#[test]
fn kill_after_and_a_second_sigint_end_the_sandbox() {
    for p in PLATFORMS {
        let script = "trap '' TERM INT; echo ready; while :; do sleep 1; done";
        let Some(r) = start(p, &["--kill-after=1"], script) else { return };
        let sentry = r.sentry();
        r.signal(libc::SIGTERM);
        let (code, _, err) = r.finish();
        assert_eq!(code, 128 + 9, "{p}: {err}");
        assert!(err.contains("--kill-after"), "{p}: {err}");
        assert!(!alive(sentry), "{p}: the Sentry outlived runsc-lite");

        let Some(mut r) = start(p, &["--kill-after=600"], script) else { return };
        // Two SIGINTs sent at once would merge into one pending signal:
        // keep sending until runsc-lite has seen a second and ended.
        let t = Instant::now();
        while r.child.try_wait().expect("wait").is_none() {
            assert!(t.elapsed() < DEADLINE, "{p}: SIGINTs did not end the sandbox");
            r.signal(libc::SIGINT);
            std::thread::sleep(Duration::from_millis(100));
        }
        let (code, _, err) = r.finish();
        assert_eq!(code, 128 + 9, "{p}: {err}");
        assert!(err.contains("second SIGINT"), "{p}: {err}");
    }
}

#[test]
fn sigkill_of_runsc_lite_leaves_no_process() {
    for p in PLATFORMS {
        let Some(mut r) = start(p, &[], "echo ready; read x") else { return };
        let sentry = r.sentry();
        let mut all = tests::host_descendants(r.pid());
        assert!(all.contains(&sentry));
        all.retain(|x| *x != r.pid());
        r.signal(libc::SIGKILL);
        let _ = r.child.wait();
        let t = Instant::now();
        while all.iter().any(|x| alive(*x)) {
            assert!(
                t.elapsed() < DEADLINE,
                "{p}: left behind: {:?}",
                all.iter().filter(|x| alive(**x)).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn debug_build() -> bool {
    !runsc_lite_bin().to_string_lossy().contains("/release/")
}

#[test]
fn a_seccomp_violation_is_reported_in_one_line() {
    if !debug_build() {
        skip("a_seccomp_violation_is_reported_in_one_line", "the debug hook exists in debug builds only");
        return;
    }
    for p in PLATFORMS {
        let (mut c, _state) = runsc_lite(p);
        c.env("RUNSC_LITE_DEBUG_VIOLATE", "1").args(["do", "/bin/true"]).stdin(Stdio::null());
        let out = run_with_timeout(&mut c, timeout());
        assert_eq!(out.status, 128 + libc::SIGSYS, "{p}: {}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{p}: {}", out.stderr);
        assert!(
            lines[0].contains("seccomp violation") && lines[0].contains("syscall socket (41)"),
            "{p}: {}",
            lines[0]
        );
    }
}

#[test]
fn landlock_stops_a_wrong_path_from_inside_the_sentry() {
    if !debug_build() {
        skip("landlock_stops_a_wrong_path_from_inside_the_sentry", "the debug hook exists in debug builds only");
        return;
    }
    let Some(bb) = need_busybox("landlock_stops_a_wrong_path_from_inside_the_sentry") else { return };
    let b = Bundle::new(&bb);
    let data = b.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("inside"), "in").unwrap();
    let mut cfg = config(&["/bin/true"]);
    cfg.mounts.push(mount("/data", "bind", data.to_str().unwrap(), &["rbind", "rw"]));
    b.write_config(&cfg);
    for p in PLATFORMS {
        for (path, want) in [("inside", "opened"), ("../secret-marker", "Permission denied")] {
            let (mut c, _state) = runsc_lite(p);
            c.env("RUNSC_LITE_DEBUG_OPEN", path).arg("run").arg(b.path()).stdin(Stdio::null());
            let out = run_with_timeout(&mut c, timeout());
            assert_eq!(out.status, 0, "{p}: {}", out.stderr);
            let line = format!("runsc-lite: debug open {path}: ");
            let got = out.stderr.lines().find_map(|l| l.strip_prefix(&line)).unwrap_or("(no line)").to_string();
            assert!(got.starts_with(want), "{p} {path}: {got} ({})", out.stderr);
        }
    }
}

#[test]
fn debug_filters_prints_a_small_allowlist() {
    for p in PLATFORMS {
        let mut c = Command::new(runsc_lite_bin());
        c.arg(format!("--platform={p}")).args(["debug", "filters"]).stdin(Stdio::null());
        let out = run_with_timeout(&mut c, timeout());
        assert_eq!(out.status, 0, "{}", out.stderr);
        let total: usize = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("total: ")?.strip_suffix(" syscalls")?.parse().ok())
            .expect("a total line");
        if *p == "systrap" {
            // 68 before --network=host (setsockopt, listen, accept4,
            // getsockname, getpeername); membarrier for the guest's; 4 for
            // host files' extended attributes (f{get,list,set,remove}xattr);
            // flock for guests' locks on host files; splice for the file
            // cache's fill from host files.
            assert!(total <= 80, "systrap allowlist has {total} syscalls");
        }
        let names: Vec<&str> = out.stdout.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
        for bad in ["socket", "connect", "bind", "open", "execve"] {
            assert!(!names.contains(&bad), "{p}: {bad} allowed");
        }
        let openat = out.stdout.lines().find(|l| l.split_whitespace().nth(1) == Some("openat")).unwrap();
        assert!(openat.contains("arg0 >= 0") && openat.contains("0x20000"), "{openat}");
    }
}
