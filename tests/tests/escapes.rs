//! Escape attempts, as integration tests: a guest (`tests/fuzz/escapes.c`)
//! tries to get out of a bundle whose rootfs, bind mounts (rw and ro),
//! tmpfs and /proc it knows, while the host holds markers next to each of
//! them. Every attempt must be contained, and the host is checked after
//! each run: markers untouched, nothing outside the rw bind source changed
//! or added, no host process left behind (runsc-lite runs under
//! `tests/fuzz/reaper.c`), host processes the test started still alive.
//!
//! `bundle_escape_attempts` in bundles.rs covers `..` and symlinks from
//! the rootfs's own root with busybox; this file covers the other mount
//! roots, links made by the guest, races with the host, terminals,
//! signals, tracing, namespaces and devices.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::bundle::{config, mount, Bundle, Config, MARKER};
use tests::{
    build_fuzz_program, have_gcc, need_busybox, run_with_timeout, runsc_lite_bin, skip, timeout, Link, RunOutput,
    TempDir, PLATFORMS,
};

/// How long one escape run may take: generous (the race makes thousands
/// of opens), only a hang guard.
fn limit() -> Duration {
    timeout() * 4
}

/// A bundle with the escapes guest in /bin, a rw and a ro bind mount, a
/// tmpfs at /tmp and /proc; markers (holding `MARKER`) next to the rootfs
/// and next to the bind sources.
struct Setup {
    bundle: Bundle,
    outside: TempDir,
}

impl Setup {
    fn new(test: &str) -> Option<Setup> {
        let bb = need_busybox(test)?;
        if let Err(e) = have_gcc() {
            skip(test, &e);
            return None;
        }
        let escapes = build_fuzz_program("escapes", Link::Static);
        let bundle = Bundle::new(&bb);
        std::fs::copy(&escapes, bundle.rootfs().join("bin/escapes")).expect("copy escapes");
        let outside = TempDir::new("escape-outside");
        for d in ["rw/d", "ro"] {
            std::fs::create_dir_all(outside.path().join(d)).expect("mkdir");
        }
        std::fs::write(outside.path().join("marker"), format!("{MARKER}\n")).expect("write");
        std::fs::write(outside.path().join("ro/file"), "read-only bind content\n").expect("write");
        Some(Setup { bundle, outside })
    }

    fn rw(&self) -> PathBuf {
        self.outside.path().join("rw")
    }

    /// The host paths of every marker.
    fn marker_paths(&self) -> Vec<String> {
        vec![
            self.bundle.marker().to_string_lossy().into_owned(),
            self.outside.path().join("marker").to_string_lossy().into_owned(),
        ]
    }

    /// Names only the host has: the directories holding the bundle and
    /// the bind sources, the markers, the host root's own entries.
    fn host_only_names(&self) -> Vec<String> {
        let mut v: Vec<String> = ["usr", "var", "boot", "sbin", "lib", "secret-marker", "marker", "config.json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for p in [self.bundle.path(), self.outside.path()] {
            v.push(p.file_name().expect("name").to_string_lossy().into_owned());
        }
        v
    }

    fn config(&self, args: &[&str]) -> Config {
        let mut c = config(args);
        c.mounts.push(mount("/mnt/rw", "bind", self.rw().to_str().expect("utf-8"), &["rbind", "rw"]));
        let ro = self.outside.path().join("ro");
        c.mounts.push(mount("/mnt/ro", "bind", ro.to_str().expect("utf-8"), &["rbind", "ro"]));
        c
    }

    /// `reaper 20 runsc-lite run BUNDLE` with `args` as the process.
    fn run(&self, platform: &str, args: &[&str]) -> RunOutput {
        self.run_config(platform, &self.config(args))
    }

    fn run_config(&self, platform: &str, c: &Config) -> RunOutput {
        self.bundle.write_config(c);
        let state = TempDir::new("escape-state");
        let mut cmd = Command::new(build_fuzz_program("reaper", Link::Static));
        cmd.arg("20")
            .arg(runsc_lite_bin())
            .arg(format!("--platform={platform}"))
            .arg(format!("--root={}", state.path().display()))
            .arg("run")
            .arg(self.bundle.path())
            .stdin(Stdio::null())
            .current_dir(std::env::temp_dir());
        run_with_timeout(&mut cmd, limit())
    }

    /// Everything on the host outside the rw bind source: each entry's
    /// path and type, and for files their size, mode, mtime and (small
    /// ones) content. The config.json the test rewrites is left out.
    fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        let rw = self.rw();
        let config = self.bundle.path().join("config.json");
        for top in [self.bundle.path(), self.outside.path()] {
            walk(top, &mut |p: &Path| {
                if p.starts_with(&rw) || p == config {
                    return;
                }
                let Ok(md) = std::fs::symlink_metadata(p) else { return };
                if md.is_dir() {
                    out.push(format!("{} dir {:o}", p.display(), md.mode()));
                    return;
                }
                let content = if md.is_file() && md.len() < 4096 {
                    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
                } else {
                    String::new()
                };
                out.push(format!("{} {} {:o} {} {content:?}", p.display(), md.len(), md.mode(), md.mtime_nsec()));
            });
        }
        out.sort();
        out
    }
}

fn walk(p: &Path, f: &mut dyn FnMut(&Path)) {
    f(p);
    if std::fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false) {
        if let Ok(rd) = std::fs::read_dir(p) {
            let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            v.sort();
            for c in v {
                walk(&c, f);
            }
        }
    }
}

/// What every run must show: no escape reported, no panic, no timeout,
/// "done", nothing left behind on the host, the host files unchanged.
#[track_caller]
fn assert_contained(s: &Setup, before: &[String], out: &RunOutput) {
    if std::env::var("RUNSC_LITE_TEST_SHOW").is_ok_and(|v| v == "1") {
        eprintln!("{}", out.describe());
    }
    assert!(!out.timed_out, "timed out\n{}", out.describe());
    assert!(!out.stdout.contains("ESCAPED") && !out.stdout.contains("NOT contained"), "ESCAPE\n{}", out.describe());
    assert!(!out.stdout.contains(MARKER), "the marker's text reached the guest's output\n{}", out.describe());
    assert!(!out.stderr.contains("panicked"), "the Sentry panicked\n{}", out.describe());
    assert!(out.stdout.ends_with("done\n"), "the guest did not finish\n{}", out.describe());
    assert!(out.stderr.contains("reaper: left behind 0 "), "host processes were left behind\n{}", out.describe());
    let after = s.snapshot();
    if after != before {
        let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
        let new: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
        panic!("host files outside the rw bind source changed:\n- {gone:?}\n+ {new:?}\n{}", out.describe());
    }
}

#[track_caller]
fn assert_line(out: &RunOutput, line: &str) {
    assert!(out.stdout.lines().any(|l| l == line), "no line {line:?}\n{}", out.describe());
}

/// `..` past the rootfs's root, both bind mounts, the tmpfs, /dev and
/// /proc (and /proc/self, /proc/1, /proc/self/fd, /proc/self/root,
/// /proc/self/cwd): in paths, from descriptors of the mount points
/// (openat), and by chdir/fchdir.
#[test]
fn escape_dotdot_past_every_mount_root() {
    let Some(s) = Setup::new("escape_dotdot_past_every_mount_root") else { return };
    let markers = s.marker_paths();
    let names = s.host_only_names();
    let mut args = vec!["/bin/escapes", "dotdot", MARKER];
    args.extend(markers.iter().map(String::as_str));
    args.push("--");
    args.extend(names.iter().map(String::as_str));
    for p in PLATFORMS {
        let before = s.snapshot();
        let out = s.run(p, &args);
        assert_contained(&s, &before, &out);
        assert!(out.stdout.starts_with("dotdot: contained ("), "{}", out.describe());
    }
}

/// Symlinks made by the guest on the tmpfs and on the rw bind mount (real
/// host symlinks there) to the markers' host paths: absolute, through
/// `../..`, /proc/self/root, /proc/1/root, /proc/self/cwd, /proc/1/cwd,
/// /proc/self/fd/N of the bind mount; and directory links to `/`.
#[test]
fn escape_symlinks_pointing_out() {
    let Some(s) = Setup::new("escape_symlinks_pointing_out") else { return };
    let markers = s.marker_paths();
    let mut args = vec!["/bin/escapes", "symlinks", MARKER];
    args.extend(markers.iter().map(String::as_str));
    for p in PLATFORMS {
        let before = s.snapshot();
        let out = s.run(p, &args);
        assert_contained(&s, &before, &out);
        assert!(out.stdout.starts_with("symlinks: contained ("), "{}", out.describe());
        // The guest's links are on the host now; they point where the
        // guest said, and the host never followed them for it.
        let link = s.rw().join("esc-1-0");
        assert_eq!(std::fs::read_link(&link).ok(), Some(PathBuf::from(&markers[1])), "{}", out.describe());
    }
}

/// The running program, on the rw bind mount, opened for writing through
/// /proc/self/exe, /proc/PID/exe and its own path: ETXTBSY, and the host
/// file unchanged.
#[test]
fn escape_exe_write() {
    let Some(s) = Setup::new("escape_exe_write") else { return };
    let exe = s.rw().join("escapes");
    std::fs::copy(s.bundle.rootfs().join("bin/escapes"), &exe).expect("copy");
    let want = std::fs::read(&exe).expect("read");
    for p in PLATFORMS {
        let before = s.snapshot();
        let out = s.run(p, &["/mnt/rw/escapes", "exe_write"]);
        assert_contained(&s, &before, &out);
        for l in [
            "exe_open_wronly err ETXTBSY",
            "exe_open_rdwr err ETXTBSY",
            "exe_open_trunc err ETXTBSY",
            "exe_path_wronly err ETXTBSY",
            "exe_truncate err ETXTBSY",
            "exe_pid_wronly err ETXTBSY",
        ] {
            assert_line(&out, l);
        }
        assert!(std::fs::read(&exe).expect("read") == want, "the executable on the host changed\n{}", out.describe());
    }
}

/// Hard links and renames between the rootfs, the bind mounts, the tmpfs
/// and /proc: EXDEV (a hard link from the read-only rootfs or bind into
/// the rw bind would make the host file writable from inside).
#[test]
fn escape_links_and_renames_across_mounts() {
    let Some(s) = Setup::new("escape_links_and_renames_across_mounts") else { return };
    for p in PLATFORMS {
        let before = s.snapshot();
        let out = s.run(p, &["/bin/escapes", "xdev"]);
        assert_contained(&s, &before, &out);
        for l in [
            "link_rw_to_tmp err EXDEV",
            "link_root_to_rw err EXDEV",
            "link_ro_to_rw err EXDEV",
            "link_proc_to_rw err EXDEV",
            "rename_rw_to_tmp err EXDEV",
            "rename_tmp_to_rw err EXDEV",
            "rename_dir_rw_to_tmp err EXDEV",
            "rename_root_to_rw err EXDEV",
            "linkat_follow_fd_to_rw err EXDEV",
            "linkat_empty_path_to_rw err EXDEV",
            "rename_exchange_rw_tmp err EXDEV",
            "link_within_rw ok",
            "rename_into_itself err EINVAL",
        ] {
            assert_line(&out, l);
        }
        // Nothing but the guest's own files in the rw source.
        let mut names: Vec<String> = std::fs::read_dir(s.rw())
            .expect("read_dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["d", "d2", "f", "f2"], "{}", out.describe());
        for n in ["d2", "f", "f2"] {
            let _ = std::fs::remove_dir(s.rw().join(n));
            let _ = std::fs::remove_file(s.rw().join(n));
        }
    }
}

/// RENAME_EXCHANGE on the host: swaps `a` and `b` in `dir` atomically.
fn exchange(dir: &Path, a: &str, b: &str) -> bool {
    let (ca, cb) = (
        std::ffi::CString::new(dir.join(a).into_os_string().into_encoded_bytes()).expect("path"),
        std::ffi::CString::new(dir.join(b).into_os_string().into_encoded_bytes()).expect("path"),
    );
    // SAFETY: two valid C strings; renameat2 reads them and touches no
    // other memory.
    unsafe { libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), 2) == 0 }
}

/// While guest threads open /mnt/rw/sw/marker, the host keeps swapping
/// `sw` between a directory (whose marker says "inside") and a symlink to
/// the directory outside the bind source that holds the real marker.
/// Nothing outside the bind source is ever read.
#[test]
fn escape_symlink_swap_race() {
    let Some(s) = Setup::new("escape_symlink_swap_race") else { return };
    let rw = s.rw();
    std::fs::create_dir(rw.join("sw")).expect("mkdir");
    std::fs::write(rw.join("sw/marker"), "inside\n").expect("write");
    std::os::unix::fs::symlink(s.outside.path(), rw.join("alt")).expect("symlink");
    for p in PLATFORMS {
        let before = s.snapshot();
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = {
            let (stop, rw) = (stop.clone(), rw.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if exchange(&rw, "sw", "alt") {
                        n += 1;
                    }
                    std::thread::yield_now();
                }
                n
            })
        };
        let out = s.run(p, &["/bin/escapes", "race", MARKER, "3000"]);
        stop.store(true, Ordering::Relaxed);
        let n = swaps.join().expect("swapper");
        assert!(n > 0, "the host never swapped");
        // Leave `sw` a directory again.
        if std::fs::symlink_metadata(rw.join("sw")).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
            assert!(exchange(&rw, "sw", "alt"));
        }
        assert_contained(&s, &before, &out);
        assert!(out.stdout.contains("race: contained ("), "{}", out.describe());
    }
}

/// The host moves the directory the guest is in out of the rw bind
/// source (next to the marker); `..` from there, and the marker by
/// relative paths, stay out of reach.
#[test]
fn escape_moved_cwd() {
    let Some(s) = Setup::new("escape_moved_cwd") else { return };
    let names = s.host_only_names();
    let mut args = vec!["/bin/escapes", "moved_cwd", MARKER, "--"];
    args.extend(names.iter().map(String::as_str));
    let rw = s.rw();
    for p in PLATFORMS {
        for f in ["ready", "go"] {
            let _ = std::fs::remove_file(rw.join(f));
        }
        let _ = std::fs::remove_dir_all(rw.join("a"));
        let moved = s.outside.path().join("moved");
        let _ = std::fs::remove_dir_all(&moved);
        let mover = {
            let (rw, moved) = (rw.clone(), moved.clone());
            std::thread::spawn(move || {
                // Waits (generously) for the guest to be in place.
                let deadline = Instant::now() + Duration::from_secs(120);
                while !rw.join("ready").exists() {
                    if Instant::now() > deadline {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                let ok = std::fs::rename(rw.join("a"), &moved).is_ok();
                std::fs::write(rw.join("go"), "").expect("write go");
                ok
            })
        };
        let out = s.run(p, &args);
        assert!(mover.join().expect("mover"), "the host could not move the directory\n{}", out.describe());
        assert!(!out.timed_out && !out.stdout.contains("ESCAPED"), "ESCAPE\n{}", out.describe());
        assert!(out.stdout.contains("moved_cwd: contained ("), "{}", out.describe());
        assert!(!out.stderr.contains("panicked"), "{}", out.describe());
        assert!(out.stderr.contains("reaper: left behind 0 "), "{}", out.describe());
        assert_eq!(std::fs::read_to_string(s.outside.path().join("marker")).unwrap_or_default(), format!("{MARKER}\n"));
        let _ = std::fs::remove_dir_all(&moved);
    }
}

/// TIOCSTI (and other terminal ioctls that reach beyond the terminal) on
/// a terminal stdin: nothing is pushed into the terminal's input.
#[test]
fn escape_tiocsti() {
    if let Err(e) = have_gcc() {
        skip("escape_tiocsti", &e);
        return;
    }
    let escapes = build_fuzz_program("escapes", Link::Static);
    let reaper = build_fuzz_program("reaper", Link::Static);
    for p in PLATFORMS {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes the two descriptors; the other arguments
        // may be null.
        let r =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(r, 0, "openpty");
        // Raw mode: whatever is pushed is readable at once, line or not.
        // SAFETY: tcgetattr/cfmakeraw/tcsetattr on our own slave with a
        // termios we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(slave, &mut t);
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(slave, libc::TCSANOW, &t);
        }
        // SAFETY: dup gives a new descriptor that nothing else owns; the
        // Stdio owns it from here.
        let stdin = unsafe {
            use std::os::fd::FromRawFd;
            Stdio::from(std::os::fd::OwnedFd::from_raw_fd(libc::dup(slave)))
        };
        let state = TempDir::new("tty-state");
        let mut c = Command::new(&reaper);
        c.arg("20")
            .arg(runsc_lite_bin())
            .arg(format!("--platform={p}"))
            .arg(format!("--root={}", state.path().display()))
            .args(["do", escapes.to_str().expect("utf-8"), "tiocsti"])
            .stdin(stdin)
            .current_dir(std::env::temp_dir());
        let out = run_with_timeout(&mut c, limit());
        assert!(!out.timed_out && !out.stderr.contains("panicked"), "{}", out.describe());
        assert_line(&out, "tiocsti: refused");
        for l in ["tiocsetd", "tioccons", "tioclinux", "tiocsctty"] {
            assert!(
                out.stdout.lines().any(|x| x.starts_with(&format!("{l} err "))),
                "{l} was accepted\n{}",
                out.describe()
            );
        }
        // Nothing waits in the terminal's input.
        let mut pending: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        let r = unsafe { libc::ioctl(slave, libc::FIONREAD, &mut pending) };
        assert_eq!((r, pending), (0, 0), "bytes were pushed into the terminal\n{}", out.describe());
        // SAFETY: closing the descriptors openpty gave us.
        unsafe {
            libc::close(slave);
            libc::close(master);
        }
    }
}

/// A host process the test started (in its own process group).
struct HostSleeper(std::process::Child);

impl HostSleeper {
    fn start() -> HostSleeper {
        use std::os::unix::process::CommandExt;
        let c = Command::new("sleep")
            .arg("600")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        HostSleeper(c)
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for HostSleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// kill(-1, SIGKILL) from root inside: the sandbox's other processes die,
/// the caller and init survive (as on Linux: the caller was signalled too
/// before this suite), a host process survives; kill of the host
/// process's pid and group is ESRCH.
#[test]
fn escape_kill_minus_one() {
    let Some(s) = Setup::new("escape_kill_minus_one") else { return };
    for p in PLATFORMS {
        let mut host = HostSleeper::start();
        let pid = host.pid().to_string();
        let before = s.snapshot();
        let out = s.run(p, &["/bin/escapes", "killall", &pid]);
        assert_contained(&s, &before, &out);
        for l in [
            "proc_host_pid_status err ENOENT",
            "proc_host_pid_root err ENOENT",
            "kill_host_pid_0 err ESRCH",
            "kill_host_pid err ESRCH",
            "kill_host_pgrp err ESRCH",
            "kill_minus_1 ok",
            "the caller survived kill(-1): yes",
            "children killed by kill(-1): 2",
            "init survived kill(-1)",
        ] {
            assert_line(&out, l);
        }
        assert!(host.alive(), "the host process died\n{}", out.describe());
    }
}

/// ptrace, process_vm_readv/writev, kcmp and pidfd_open on a host
/// process, on init, on a child and on oneself: refused (ENOSYS, as the
/// syscall table says, or ESRCH for a pid the sandbox does not have); the
/// host process lives on and the child is unaffected.
#[test]
fn escape_ptrace_and_process_vm() {
    let Some(s) = Setup::new("escape_ptrace_and_process_vm") else { return };
    for p in PLATFORMS {
        let mut host = HostSleeper::start();
        let pid = host.pid().to_string();
        let before = s.snapshot();
        let out = s.run(p, &["/bin/escapes", "ptrace", &pid]);
        assert_contained(&s, &before, &out);
        for l in out.stdout.lines() {
            let Some((name, result)) = l.split_once(' ') else { continue };
            if name.starts_with("ptrace_") || name.starts_with("process_vm_") {
                assert!(
                    ["err ENOSYS", "err EPERM", "err ESRCH"].contains(&result),
                    "{name} was not refused: {result}\n{}",
                    out.describe()
                );
            }
            if name.ends_with("_host") {
                assert!(result.starts_with("err "), "{name} reached the host process: {result}\n{}", out.describe());
            }
        }
        assert_line(&out, "child ended by SIGKILL: yes");
        assert!(host.alive(), "the host process died\n{}", out.describe());
    }
}

/// mount, umount, pivot_root, unshare, setns and clone with new
/// namespaces are refused; chroot is allowed to root, and the classic way
/// out of a chroot (a second chroot, then `..`) ends at the sandbox's
/// root.
#[test]
fn escape_namespaces_mount_chroot() {
    let Some(s) = Setup::new("escape_namespaces_mount_chroot") else { return };
    let markers = s.marker_paths();
    let names = s.host_only_names();
    let mut args = vec!["/bin/escapes", "ns", MARKER];
    args.extend(markers.iter().map(String::as_str));
    args.push("--");
    args.extend(names.iter().map(String::as_str));
    for p in PLATFORMS {
        let before = s.snapshot();
        let out = s.run(p, &args);
        assert_contained(&s, &before, &out);
        for name in [
            "mount_tmpfs",
            "mount_bind_root",
            "umount_proc",
            "umount_root_detach",
            "pivot_root",
            "unshare_ns",
            "unshare_user",
            "unshare_pid_net",
            "setns",
            "clone_newns",
            "clone_newuser",
        ] {
            let l = out.stdout.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or("");
            assert!(l.starts_with(&format!("{name} err ")), "{name} was not refused: {l:?}\n{}", out.describe());
        }
        assert_line(&out, "chroot_jail ok");
        assert!(out.stdout.contains("chroot: contained ("), "{}", out.describe());
    }
}

/// Device nodes: refused on the rw bind mount (they would be host device
/// nodes); on the tmpfs they open only the sandbox's own devices (null),
/// never the host's memory, disks or consoles; the host's device files
/// are not in the sandbox's /dev.
#[test]
fn escape_device_nodes() {
    let Some(s) = Setup::new("escape_device_nodes") else { return };
    for p in PLATFORMS {
        let before = s.snapshot();
        let out = s.run(p, &["/bin/escapes", "dev"]);
        assert_contained(&s, &before, &out);
        for l in out.stdout.lines() {
            let Some((name, result)) = l.split_once(' ') else { continue };
            if name.starts_with("mknod_rw_") {
                assert_eq!(result, "err EPERM", "{l}\n{}", out.describe());
            }
            let dev = name.rsplit('_').next().unwrap_or("");
            // /dev/kmsg is the sandbox's own log (sentry::kmsg), not the host's.
            if (name.starts_with("open_tmp_") || name.starts_with("open_dev_"))
                && dev != "null"
                && name != "open_dev_kmsg"
            {
                assert!(result.starts_with("err "), "{l}: a host device opened\n{}", out.describe());
            }
        }
        assert_line(&out, "open_dev_null = 3");
        // No device node appeared in the rw bind source.
        for e in std::fs::read_dir(s.rw()).expect("read_dir").flatten() {
            let ft = e.file_type().expect("file type");
            use std::os::unix::fs::FileTypeExt;
            assert!(!ft.is_char_device() && !ft.is_block_device(), "{:?} is a device node on the host", e.path());
        }
    }
}
