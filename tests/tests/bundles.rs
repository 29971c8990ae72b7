//! OCI bundles through `runsc-lite run`: both command forms, mounts,
//! users and a read-only root, escape attempts out of a rootfs, bad input
//! and its error messages, and the container state under `--root`: hostile
//! ids, stale and live state directories, nothing outside them removed.
//!
//! Every test runs on each platform of `tests::PLATFORMS`. Tests that need
//! /bin/busybox (Debian busybox-static) report SKIPPED when it is absent
//! (RUNSC_LITE_TEST_STRICT=1 makes that a failure).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::bundle::{config, mount, Bundle, MARKER};
use tests::{
    assert_no_panic, assert_one_line_error, assert_same, assert_status, assert_stdout, need_busybox, run_native,
    run_with_timeout, runsc_lite, runsc_lite_bin, skip, timeout, RunOutput, TempDir, PLATFORMS,
};

fn tmp() -> PathBuf {
    std::env::temp_dir()
}

#[test]
fn bundle_runs_both_forms() {
    let Some(bb) = need_busybox("bundle_runs_both_forms") else { return };
    let b = Bundle::new(&bb);
    b.write_config(&config(&["/bin/echo", "hello from the bundle"]));
    for p in PLATFORMS {
        assert_stdout(&b.run(p), "hello from the bundle\n");
        assert_stdout(&b.run_bundle_id(p, &tests::unique("ctr")), "hello from the bundle\n");
    }
}

#[test]
fn bundle_hostname_user_env_cwd() {
    let Some(bb) = need_busybox("bundle_hostname_user_env_cwd") else { return };
    let b = Bundle::new(&bb);
    for p in PLATFORMS {
        assert_stdout(&b.run_args(p, &["/bin/hostname"]), "testhost\n");
        assert_stdout(&b.run_args(p, &["/bin/uname", "-n"]), "testhost\n");
        assert_stdout(&b.run_args(p, &["/bin/uname", "-r"]), "4.4.0\n");
        let mut c = config(&["/bin/id", "-u"]);
        c.uid = 1000;
        c.gid = 1000;
        c.args = vec!["/bin/id".into(), "-u".into()];
        b.write_config(&c);
        assert_stdout(&b.run(p), "1000\n");
        c.args = vec!["/bin/id".into(), "-g".into()];
        b.write_config(&c);
        assert_stdout(&b.run(p), "1000\n");
        let mut c = config(&["/bin/env"]);
        c.env.push("BUNDLE_VAR=value 1".into());
        b.write_config(&c);
        let out = b.run(p);
        assert_status(&out, 0);
        assert!(out.stdout.lines().any(|l| l == "BUNDLE_VAR=value 1"), "{}", out.describe());
        assert!(out.stdout.lines().any(|l| l == "PATH=/bin"), "{}", out.describe());
        let mut c = config(&["/bin/pwd"]);
        c.cwd = "/home/user".into();
        b.write_config(&c);
        assert_stdout(&b.run(p), "/home/user\n");
        // A non-root user cannot write a root-owned 0755 directory of a
        // writable root.
        let mut c = config(&["/bin/touch", "/etc/x"]);
        c.uid = 1000;
        c.gid = 1000;
        c.readonly = false;
        b.write_config(&c);
        let out = b.run(p);
        assert_ne!(out.status, 0, "uid 1000 wrote to /etc\n{}", out.describe());
        assert!(out.stderr.contains("Permission denied"), "{}", out.describe());
    }
}

#[test]
fn bundle_readonly_root_and_tmpfs() {
    let Some(bb) = need_busybox("bundle_readonly_root_and_tmpfs") else { return };
    let b = Bundle::new(&bb);
    for p in PLATFORMS {
        let out = b.run_args(p, &["/bin/touch", "/newfile"]);
        assert_ne!(out.status, 0, "touch on a read-only root succeeded\n{}", out.describe());
        assert!(out.stderr.contains("Read-only file system"), "{}", out.describe());
        let out = b.run_args(p, &["/bin/mkdir", "/bin/newdir"]);
        assert_ne!(out.status, 0, "{}", out.describe());
        assert!(out.stderr.contains("Read-only file system"), "{}", out.describe());
        // tmpfs at /tmp is writable; the last command is exec'd by sh.
        assert_stdout(&b.run_args(p, &["/bin/sh", "-c", "echo hi > /tmp/f && cat /tmp/f"]), "hi\n");
        // A writable root gets an overlay: writes work, the bundle is untouched.
        let mut c = config(&["/bin/sh", "-c", "echo new > /created && cat /created"]);
        c.readonly = false;
        b.write_config(&c);
        assert_stdout(&b.run(p), "new\n");
        assert!(!b.rootfs().join("created").exists(), "a write reached the bundle's rootfs");
        // /proc is mounted.
        let out = b.run_args(p, &["/bin/cat", "/proc/self/status"]);
        assert_status(&out, 0);
        assert!(out.stdout.lines().any(|l| l.starts_with("Name:")), "{}", out.describe());
    }
}

#[test]
fn bundle_bind_mounts() {
    let Some(bb) = need_busybox("bundle_bind_mounts") else { return };
    let b = Bundle::new(&bb);
    let rw = TempDir::new("bind-rw");
    let ro = TempDir::new("bind-ro");
    std::fs::write(ro.path().join("file"), "read-only content\n").expect("write");
    let mut c = config(&["/bin/sh", "-c", "echo data > /mnt/rw/out && cat /mnt/ro/file /mnt/rw/out"]);
    c.mounts.push(mount("/mnt/rw", "bind", rw.path().to_str().expect("utf-8"), &["rbind", "rw"]));
    c.mounts.push(mount("/mnt/ro", "bind", ro.path().to_str().expect("utf-8"), &["rbind", "ro"]));
    for p in PLATFORMS {
        let _ = std::fs::remove_file(rw.path().join("out"));
        b.write_config(&c);
        assert_stdout(&b.run(p), "read-only content\ndata\n");
        assert_eq!(
            std::fs::read_to_string(rw.path().join("out")).unwrap_or_default(),
            "data\n",
            "rw bind mount write did not reach the host"
        );
        let mut c2 = c.clone();
        c2.args = vec!["/bin/touch".into(), "/mnt/ro/new".into()];
        b.write_config(&c2);
        let out = b.run(p);
        assert_ne!(out.status, 0, "write to a ro bind mount succeeded\n{}", out.describe());
        assert!(out.stderr.contains("Read-only file system"), "{}", out.describe());
        assert!(!ro.path().join("new").exists(), "a write reached the ro bind source");
    }
}

/// Symlinks in the rootfs that point out of it, /proc/self/root, and `..`
/// from the root: nothing outside the rootfs is visible.
#[test]
fn bundle_escape_attempts() {
    let Some(bb) = need_busybox("bundle_escape_attempts") else { return };
    let b = Bundle::new(&bb);
    let root = b.rootfs();
    let marker = b.marker();
    let marker_abs = marker.to_str().expect("utf-8").to_string();
    let ups = "../".repeat(20);
    let links: Vec<(&str, String)> = vec![
        ("esc_abs_shadow", "/../../../../etc/shadow".into()),
        ("esc_rel_shadow", format!("{ups}etc/shadow")),
        ("esc_marker_rel", "../secret-marker".into()),
        ("esc_marker_deep", format!("{ups}{}", marker_abs.trim_start_matches('/'))),
        ("esc_marker_abs", marker_abs.clone()),
        ("esc_marker_dotdot_abs", format!("/../../..{marker_abs}")),
        ("esc_updir", "../../../..".into()),
    ];
    for (name, target) in &links {
        std::os::unix::fs::symlink(target, root.join(name)).expect("symlink");
    }
    // The attempts are meaningful: on the host these links do reach the marker.
    for name in ["esc_marker_rel", "esc_marker_deep", "esc_marker_abs", "esc_marker_dotdot_abs"] {
        let got = std::fs::read_to_string(root.join(name)).unwrap_or_default();
        assert_eq!(got.trim(), MARKER, "test setup: {name} does not reach the marker on the host");
    }
    let bundle_name = b.path().file_name().expect("name").to_str().expect("utf-8").to_string();
    let attempts: Vec<Vec<String>> = vec![
        vec!["/bin/cat".into(), "/esc_abs_shadow".into()],
        vec!["/bin/cat".into(), "/esc_rel_shadow".into()],
        vec!["/bin/cat".into(), "/esc_marker_rel".into()],
        vec!["/bin/cat".into(), "/esc_marker_deep".into()],
        vec!["/bin/cat".into(), "/esc_marker_abs".into()],
        vec!["/bin/cat".into(), "/esc_marker_dotdot_abs".into()],
        vec!["/bin/cat".into(), "/esc_updir/secret-marker".into()],
        vec!["/bin/cat".into(), format!("/esc_updir{marker_abs}")],
        vec!["/bin/cat".into(), format!("/../../../..{marker_abs}")],
        vec!["/bin/cat".into(), format!("/proc/self/root/..{marker_abs}")],
        vec!["/bin/cat".into(), format!("/proc/self/root/../{bundle_name}/secret-marker")],
        vec!["/bin/cat".into(), format!("/proc/1/root{marker_abs}")],
        vec!["/bin/cat".into(), format!("/proc/self/cwd/../../..{marker_abs}")],
        vec!["/bin/sh".into(), "-c".into(), format!("cd /; cd ..; cd ../../..; cd esc_updir; cd ..; exec cat ./secret-marker ./{bundle_name}/secret-marker .{marker_abs}")],
    ];
    // What `ls /` may show: the rootfs entries and the mount points.
    let mut allowed: Vec<String> = std::fs::read_dir(&root)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    allowed.sort();
    for p in PLATFORMS {
        for args in &attempts {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = b.run_args(p, &argv);
            assert!(!out.timed_out, "{}", out.describe());
            assert!(
                !out.stdout.contains(MARKER),
                "ESCAPE: {argv:?} read the marker outside the rootfs\n{}",
                out.describe()
            );
            assert!(
                !out.stdout.contains("root:$") && !out.stdout.contains("root:*:"),
                "ESCAPE: {argv:?} read /etc/shadow\n{}",
                out.describe()
            );
            assert!(!out.stderr.contains("panicked"), "{}", out.describe());
        }
        // Listing through the updir link shows the rootfs itself.
        for dir in ["/esc_updir/", "/esc_updir/..", "/proc/self/root/..", "/.."] {
            let out = b.run_args(p, &["/bin/ls", "-a", dir]);
            assert_status(&out, 0);
            for name in out.stdout.lines() {
                assert!(
                    name == "." || name == ".." || allowed.iter().any(|a| a == name),
                    "ESCAPE: `ls -a {dir}` shows {name:?}, not in the rootfs\n{}",
                    out.describe()
                );
            }
        }
        // The root's parent is the root.
        let out = b.run_args(p, &["/bin/sh", "-c", "cd /; cd ..; cd ..; cd ../../..; pwd; exec ls -a"]);
        assert_status(&out, 0);
        let mut lines = out.stdout.lines();
        assert_eq!(lines.next(), Some("/"), "{}", out.describe());
        for name in lines {
            assert!(
                name == "." || name == ".." || allowed.iter().any(|a| a == name),
                "`ls -a` of the root shows {name:?}, not in the rootfs\n{}",
                out.describe()
            );
        }
        // /proc/self/root/etc/hostname is the rootfs's file, not the host's.
        assert_stdout(&b.run_args(p, &["/bin/cat", "/proc/self/root/etc/hostname"]), "rootfs-hostname-file\n");
        assert_stdout(&b.run_args(p, &["/bin/readlink", "/proc/self/root"]), "/\n");
        assert_stdout(&b.run_args(p, &["/bin/cat", "/esc_updir/etc/hostname"]), "rootfs-hostname-file\n");
    }
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), format!("{MARKER}\n"));
}

/// Each bad bundle gives a non-zero exit and a one-line error, no panic.
#[test]
fn bundle_bad_input() {
    let Some(bb) = need_busybox("bundle_bad_input") else { return };
    for p in PLATFORMS {
        // Missing bundle directory.
        let missing = tmp().join(tests::unique("no-such-bundle"));
        let (mut c, _state) = runsc_lite(p);
        c.arg("run").arg(&missing).stdin(Stdio::null());
        assert_one_line_error(&run_with_timeout(&mut c, timeout()));
        let (mut c, _state) = runsc_lite(p);
        c.arg("run").arg("--bundle").arg(&missing).arg("id1").stdin(Stdio::null());
        assert_one_line_error(&run_with_timeout(&mut c, timeout()));
        // Directory without config.json.
        let b = Bundle::new(&bb);
        assert_one_line_error(&b.run(p));
        // Malformed JSON.
        b.write_raw_config("{ \"ociVersion\": \"1.0.2\", \"process\": { \"args\": [\"/bin/true\" ");
        assert_one_line_error(&b.run(p));
        b.write_raw_config("not json at all\n");
        assert_one_line_error(&b.run(p));
        // Wrong types.
        b.write_raw_config("{ \"ociVersion\": \"1.0.2\", \"process\": { \"args\": \"/bin/true\", \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0} }, \"root\": { \"path\": \"rootfs\" } }");
        assert_one_line_error(&b.run(p));
        // No root at all; root without a path; root.path that does not exist.
        let good = config(&["/bin/true"]).to_json();
        b.write_raw_config(&good.replace("\"root\": { \"path\": \"rootfs\", \"readonly\": true },", ""));
        assert_one_line_error(&b.run(p));
        b.write_raw_config(
            &good.replace("\"root\": { \"path\": \"rootfs\", \"readonly\": true }", "\"root\": { \"readonly\": true }"),
        );
        assert_one_line_error(&b.run(p));
        b.write_raw_config(&good.replace("\"path\": \"rootfs\"", "\"path\": \"no-such-rootfs\""));
        assert_one_line_error(&b.run(p));
        // Empty args; relative cwd; missing executable.
        b.write_config(&config(&[]));
        assert_one_line_error(&b.run(p));
        let mut c = config(&["/bin/true"]);
        c.cwd = "relative/dir".into();
        b.write_config(&c);
        assert_one_line_error(&b.run(p));
        let out = b.run_args(p, &["/bin/no-such-program"]);
        assert_ne!(out.status, 0, "{}", out.describe());
        assert_no_panic(&out);
        // A relative mount destination.
        let mut c = config(&["/bin/true"]);
        c.mounts.push(mount("relative/mnt", "tmpfs", "tmpfs", &[]));
        b.write_config(&c);
        assert_one_line_error(&b.run(p));
        // A bind mount whose source does not exist.
        let mut c = config(&["/bin/true"]);
        c.mounts.push(mount("/mnt/rw", "bind", "/no/such/source/dir", &["rbind"]));
        b.write_config(&c);
        assert_one_line_error(&b.run(p));
        // A destination with .. in it.
        let mut c = config(&["/bin/true"]);
        c.mounts.push(mount("/mnt/../../../../tmp/x", "tmpfs", "tmpfs", &[]));
        b.write_config(&c);
        let out = b.run(p);
        assert_no_panic(&out);
        // The good config still works after all that.
        b.write_config(&config(&["/bin/echo", "still fine"]));
        assert_stdout(&b.run(p), "still fine\n");
        // `run` with no bundle at all.
        let (mut c, _state) = runsc_lite(p);
        c.arg("run").stdin(Stdio::null()).current_dir(tmp());
        assert_one_line_error(&run_with_timeout(&mut c, timeout()));
    }
}

/// MAP_SHARED writes to a file on an rw bind mount reach the host file,
/// byte for byte as a native run leaves it (`tests/guest/mm_shared_file.c`
/// with its scratch directory on the mount).
#[test]
fn bundle_shared_file_mapping_reaches_host() {
    let Some(bb) = need_busybox("bundle_shared_file_mapping_reaches_host") else { return };
    if let Err(e) = tests::have_gcc() {
        skip("bundle_shared_file_mapping_reaches_host", &e);
        return;
    }
    let bin = tests::build_guest("mm_shared_file", tests::Link::Static);
    let native_dir = TempDir::new("mmap-native");
    let native = run_native(&bin, &[native_dir.path().to_str().expect("utf-8")], &tmp());
    assert_status(&native, 0);
    let want = std::fs::read(native_dir.path().join("f")).expect("native run's file");
    let b = Bundle::new(&bb);
    std::fs::copy(&bin, b.rootfs().join("bin/mm_shared_file")).expect("copy guest");
    let rw = TempDir::new("mmap-rw");
    let mut c = config(&["/bin/mm_shared_file", "/mnt/rw"]);
    c.mounts.push(mount("/mnt/rw", "bind", rw.path().to_str().expect("utf-8"), &["rbind", "rw"]));
    b.write_config(&c);
    for p in PLATFORMS {
        let _ = std::fs::remove_file(rw.path().join("f"));
        let out = b.run(p);
        assert_same(&native, &out);
        let got = std::fs::read(rw.path().join("f")).unwrap_or_default();
        assert!(got == want, "{p}: host file differs from the native run's: {got:?} vs {want:?}");
    }
}

// ---------------------------------------------------------------------------
// Container state under --root

/// `runsc-lite --platform=P --root=ROOT ARGS...`, run in `cwd`.
fn with_root(platform: &str, root: &Path, cwd: &Path, args: &[&str]) -> RunOutput {
    let mut c = Command::new(runsc_lite_bin());
    c.arg(format!("--platform={platform}")).arg("--root").arg(root).args(args).current_dir(cwd).stdin(Stdio::null());
    run_with_timeout(&mut c, timeout())
}

/// A directory with a file in it that no runsc-lite command may remove.
struct Sentinel {
    dir: PathBuf,
}

impl Sentinel {
    fn new(parent: &Path, name: &str) -> Sentinel {
        let dir = parent.join(name);
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir sentinel");
        std::fs::write(dir.join("sub/keep"), "precious\n").expect("write sentinel");
        Sentinel { dir }
    }
    #[track_caller]
    fn assert_intact(&self, after: &str) {
        let got = std::fs::read_to_string(self.dir.join("sub/keep"));
        assert_eq!(got.ok().as_deref(), Some("precious\n"), "{} was damaged by {after}", self.dir.display());
    }
}

/// Ids that name other places (`..`, absolute paths, separators, a leading
/// dot, too long) are refused before anything is created or removed; a
/// sentinel directory they point at survives, with a bundle that would
/// otherwise run.
#[test]
fn hostile_container_ids_remove_nothing() {
    let Some(bb) = need_busybox("hostile_container_ids_remove_nothing") else { return };
    let b = Bundle::new(&bb);
    b.write_config(&config(&["/bin/true"]));
    let area = TempDir::new("hostile-ids");
    let root = area.path().join("root");
    std::fs::create_dir(&root).expect("mkdir root");
    let sentinel = Sentinel::new(area.path(), "sentinel");
    let sentinel_abs = sentinel.dir.to_str().expect("utf-8").to_string();
    let ups = "../".repeat(12);
    let ids: Vec<String> = vec![
        "../sentinel".into(),
        format!("{ups}{}", sentinel_abs.trim_start_matches('/')),
        sentinel_abs.clone(),
        "..".into(),
        ".".into(),
        ".hidden".into(),
        "a/b".into(),
        "sentinel/sub".into(),
        "has space".into(),
        "x".repeat(300),
        String::new(),
    ];
    for p in PLATFORMS {
        for id in &ids {
            let bundle = b.path().to_str().expect("utf-8");
            let out = with_root(p, &root, &tmp(), &["run", "--bundle", bundle, id]);
            assert_one_line_error(&out);
            assert!(out.stderr.contains("invalid container id"), "id {id:?}\n{}", out.describe());
            sentinel.assert_intact(&format!("run --bundle B {id:?}"));
        }
        // A mistyped `run PATH` in a directory holding a config.json: the
        // path is a bundle path, never an id.
        for path in [format!("{sentinel_abs}/sub/keep"), format!("{sentinel_abs}/nonexistent"), "../sentinel".into()] {
            let out = with_root(p, &root, b.path(), &["run", &path]);
            assert_one_line_error(&out);
            sentinel.assert_intact(&format!("run {path:?}"));
        }
        // --root pointing at the sentinel itself: the container's state
        // directory comes and goes, the sentinel's own files stay.
        let out = with_root(p, &sentinel.dir, &tmp(), &["run", "--bundle", b.path().to_str().expect("utf-8"), "sub"]);
        assert_one_line_error(&out);
        assert!(out.stderr.contains("container ID already exists"), "{}", out.describe());
        sentinel.assert_intact("--root=SENTINEL run ... sub");
        let out = with_root(p, &sentinel.dir, &tmp(), &["run", "--bundle", b.path().to_str().expect("utf-8"), "c1"]);
        assert_status(&out, 0);
        assert!(!sentinel.dir.join("c1").exists(), "state directory c1 left behind");
        sentinel.assert_intact("--root=SENTINEL run ... c1");
    }
    assert_eq!(std::fs::read_dir(&root).expect("read root").count(), 0, "something was left in --root");
}

/// `--root` that exists and is not a directory is refused and left alone;
/// a missing one is created.
#[test]
fn root_must_be_a_directory() {
    let Some(bb) = need_busybox("root_must_be_a_directory") else { return };
    let b = Bundle::new(&bb);
    b.write_config(&config(&["/bin/true"]));
    let area = TempDir::new("root-file");
    let file = area.path().join("not-a-dir");
    std::fs::write(&file, "content\n").expect("write");
    for p in PLATFORMS {
        let out = with_root(p, &file, &tmp(), &["run", b.path().to_str().expect("utf-8")]);
        assert_one_line_error(&out);
        assert!(out.stderr.contains("not a directory"), "{}", out.describe());
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "content\n");
        let fresh = area.path().join(format!("fresh-{p}/state"));
        let out = with_root(p, &fresh, &tmp(), &["run", "--bundle", b.path().to_str().expect("utf-8"), "c"]);
        assert_status(&out, 0);
        assert!(fresh.is_dir(), "--root was not created");
    }
}

/// While a container runs, a second `run` with its id fails with runc's
/// message; after the first is killed with SIGKILL (its state directory
/// left behind), the id can be used again.
#[test]
fn same_id_twice_and_stale_state() {
    let Some(bb) = need_busybox("same_id_twice_and_stale_state") else { return };
    let b = Bundle::new(&bb);
    let area = TempDir::new("same-id");
    let root = area.path().join("root");
    for p in PLATFORMS {
        b.write_config(&config(&["/bin/sh", "-c", "echo started; exec cat"]));
        let mut first = Command::new(runsc_lite_bin());
        first
            .arg(format!("--platform={p}"))
            .arg("--root")
            .arg(&root)
            .args(["run", "--bundle", b.path().to_str().expect("utf-8"), "busy"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = first.spawn().expect("spawn first run");
        let state = root.join("busy/state.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !state.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(state.exists(), "the first run never wrote {}", state.display());
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        assert!(text.contains("\"status\":\"running\"") && text.contains("\"id\":\"busy\""), "{text}");
        let out = with_root(p, &root, &tmp(), &["run", "--bundle", b.path().to_str().expect("utf-8"), "busy"]);
        assert_one_line_error(&out);
        assert!(out.stderr.contains("container ID already exists"), "{}", out.describe());
        // SIGKILL: no clean-up runs, the state directory stays behind.
        kill_group(child.id() as i32);
        let _ = child.wait();
        assert!(root.join("busy").exists(), "expected a stale state directory after SIGKILL");
        b.write_config(&config(&["/bin/echo", "again"]));
        let out = with_root(p, &root, &tmp(), &["run", "--bundle", b.path().to_str().expect("utf-8"), "busy"]);
        assert_stdout(&out, "again\n");
        assert!(!root.join("busy").exists(), "state directory left after a clean exit");
    }
}

/// SIGKILL to a process group, with kill(1).
fn kill_group(pgid: i32) {
    let mut c = Command::new("kill");
    c.args(["-KILL", "--", &format!("-{pgid}")]).stdin(Stdio::null());
    let out = run_with_timeout(&mut c, timeout());
    assert_status(&out, 0);
}

/// A state directory that holds anything runsc-lite did not write is not
/// taken over, and nothing in it is removed.
#[test]
fn foreign_state_directory_is_left_alone() {
    let Some(bb) = need_busybox("foreign_state_directory_is_left_alone") else { return };
    let b = Bundle::new(&bb);
    b.write_config(&config(&["/bin/true"]));
    let area = TempDir::new("foreign");
    let root = area.path().join("root");
    let sentinel = Sentinel::new(&root, "c2");
    std::fs::write(sentinel.dir.join("state.json"), "{}").expect("write");
    for p in PLATFORMS {
        let out = with_root(p, &root, &tmp(), &["run", "--bundle", b.path().to_str().expect("utf-8"), "c2"]);
        assert_one_line_error(&out);
        assert!(out.stderr.contains("container ID already exists"), "{}", out.describe());
        sentinel.assert_intact("run over a foreign state directory");
    }
}

/// Error messages name the file, the field or line, and what was
/// expected; `run PATH` with a missing PATH says so instead of taking the
/// path as an id.
#[test]
fn bundle_error_messages() {
    let Some(bb) = need_busybox("bundle_error_messages") else { return };
    let p = PLATFORMS[0];
    let check = |out: &RunOutput, wants: &[&str]| {
        assert_one_line_error(out);
        for w in wants {
            assert!(out.stderr.contains(w), "stderr lacks {w:?}\n{}", out.describe());
        }
    };
    let (mut c, _state) = runsc_lite(p);
    c.args(["run", "/nonexistent-bundle-dir"]).stdin(Stdio::null()).current_dir(tmp());
    check(&run_with_timeout(&mut c, timeout()), &["/nonexistent-bundle-dir", "no such directory"]);
    let b = Bundle::new(&bb);
    b.write_raw_config("{ \"ociVersion\": \"1.0.2\",\n  \"process\": { \"args\": [\"/bin/true\" ");
    check(&b.run(p), &["config.json", "line 2", "invalid JSON"]);
    b.write_raw_config(
        "{ \"process\": { \"args\": \"/bin/true\", \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0} } }",
    );
    check(&b.run(p), &["config.json", "process.args", "expected a sequence"]);
    b.write_raw_config(
        "{ \"ociVersion\": \"1.0.2\",\n  \"process\": { \"args\": [\"/bin/true\"], \"cwd\": \"/\" },\n  \"root\": { \"path\": \"rootfs\" } }",
    );
    check(&b.run(p), &["config.json", "process", "missing field `user`", "line 2"]);
    let good = config(&["/bin/true"]).to_json();
    b.write_raw_config(&good.replace("\"path\": \"rootfs\"", "\"path\": \"no-such-rootfs\""));
    check(&b.run(p), &["config.json", "root.path", "no-such-rootfs", "not a directory"]);
    // A bare word is an id, the bundle the current directory.
    let (mut c, _state) = runsc_lite(p);
    c.args(["run", "some-id"]).stdin(Stdio::null()).current_dir(tmp());
    check(&run_with_timeout(&mut c, timeout()), &["no config.json", "\"some-id\" as a container id"]);
    // args[0] without a slash is looked up in the container's PATH, as runc does.
    let mut c = config(&["echo", "found in PATH"]);
    b.write_config(&c);
    assert_stdout(&b.run(p), "found in PATH\n");
    c.args = vec!["no-such-program".into()];
    b.write_config(&c);
    check(&b.run(p), &["no-such-program", "executable file not found in $PATH"]);
}

/// Fields that are read but not enforced get one warning line each and the
/// container still runs; enforced ones (RLIMIT_NOFILE, pids.limit) none.
#[test]
fn unenforced_fields_are_warned_about() {
    let Some(bb) = need_busybox("unenforced_fields_are_warned_about") else { return };
    let b = Bundle::new(&bb);
    let good = config(&["/bin/echo", "ran"]).to_json();
    let with = good
        .replace(
            "\"cwd\": \"/\"",
            "\"cwd\": \"/\", \"rlimits\": [ { \"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024 }, \
             { \"type\": \"RLIMIT_CPU\", \"hard\": 100, \"soft\": 100 } ], \
             \"capabilities\": { \"bounding\": [\"CAP_KILL\"] }",
        )
        .replace(
            "\"linux\": {",
            "\"annotations\": { \"a\": \"b\" }, \"hooks\": { \"prestart\": [ { \"path\": \"/bin/true\" } ] }, \
             \"linux\": { \"seccomp\": { \"defaultAction\": \"SCMP_ACT_ALLOW\" }, \"resources\": { \"pids\": { \"limit\": 10 }, \"cpu\": { \"shares\": 512 } },",
        );
    b.write_raw_config(&with);
    for p in PLATFORMS {
        let out = b.run(p);
        assert_status(&out, 0);
        assert_eq!(out.stdout, "ran\n", "{}", out.describe());
        for field in [
            "process.rlimits RLIMIT_CPU",
            "process.capabilities",
            "annotations",
            "hooks",
            "linux.seccomp",
            "linux.resources.cpu",
        ] {
            let n = out.stderr.lines().filter(|l| l.contains(&format!("{field} is not enforced"))).count();
            assert_eq!(n, 1, "{field}: expected one warning line\n{}", out.describe());
        }
        assert!(!out.stderr.contains("NOFILE") && !out.stderr.contains("pids"), "{}", out.describe());
    }
}

/// Sockets inside a bundle: the unix stream conformance program (socket
/// nodes under /tmp) with /tmp a tmpfs, a rw bind mount of a host
/// directory, and the overlay of a writable root; and loopback TCP. Each
/// run's output must equal the native run's.
#[test]
fn bundle_sockets() {
    let Some(bb) = need_busybox("bundle_sockets") else { return };
    if let Err(e) = tests::have_gcc() {
        skip("bundle_sockets", &e);
        return;
    }
    let b = Bundle::new(&bb);
    let guests = [
        ("unix_stream", tests::build_guest("unix_stream", tests::Link::Static)),
        ("inet_tcp", tests::build_guest("inet_tcp", tests::Link::Static)),
    ];
    let mut natives = Vec::new();
    for (name, bin) in &guests {
        std::fs::copy(bin, b.rootfs().join("bin").join(name)).expect("copy guest");
        let n = run_native(bin, &[], &tmp());
        assert_status(&n, 0);
        natives.push(n);
    }
    let host_tmp = TempDir::new("bundle-sock-tmp");
    let tmp_on_tmpfs = config(&["/bin/true"]);
    let mut tmp_on_bind = config(&["/bin/true"]);
    tmp_on_bind.mounts.retain(|m| m.dest != "/tmp");
    tmp_on_bind.mounts.push(mount("/tmp", "bind", host_tmp.path().to_str().expect("utf-8"), &["rbind", "rw"]));
    let mut tmp_on_overlay = config(&["/bin/true"]);
    tmp_on_overlay.mounts.retain(|m| m.dest != "/tmp");
    tmp_on_overlay.readonly = false;
    for p in PLATFORMS {
        for base in [&tmp_on_tmpfs, &tmp_on_bind, &tmp_on_overlay] {
            for ((name, _), native) in guests.iter().zip(&natives) {
                let mut c = base.clone();
                c.args = vec![format!("/bin/{name}")];
                b.write_config(&c);
                assert_same(native, &b.run(p));
            }
        }
    }
}
