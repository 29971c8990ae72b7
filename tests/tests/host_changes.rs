//! Changes made on the host side of an rw bind mount are seen by the
//! sandbox at its next call, whatever its dentry and attribute caches hold:
//! the guest looks at everything first (so the caches are full), says so
//! with a marker file, waits for the host's "go" marker, which the host
//! writes only after its changes, and looks again. Each look must equal
//! the same script run natively on the host directory at that moment.
//! No timing: the changes happen before the guest's next call.
//!
//! Runs on each platform of `tests::PLATFORMS`; needs /bin/busybox.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tests::bundle::{config, mount, Bundle};
use tests::{need_busybox, runsc_lite, timeout, TempDir, PLATFORMS};

/// What a look prints: every entry with its type, size, mode and link
/// count, regular files' contents, and the same one directory down.
const LOOK: &str = "for f in * sub/*; do \
    stat -c '%n %F %s %a %h' \"$f\"; \
    if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then cat \"$f\"; echo; fi; \
    done";

fn wait_for(p: &Path, child: &mut Child) {
    let deadline = Instant::now() + timeout();
    while !p.exists() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("the sandbox exited ({st}) before {} appeared", p.display());
        }
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn setup(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p).expect("rm -r");
        } else {
            std::fs::remove_file(&p).expect("rm");
        }
    }
    std::fs::write(dir.join("a"), "alpha").expect("write");
    std::fs::write(dir.join("b"), "bravo").expect("write");
    std::fs::write(dir.join("grow"), "short").expect("write");
    std::fs::write(dir.join("mode"), "m").expect("write");
    std::fs::create_dir(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("sub/one"), "1").expect("write");
    std::os::unix::fs::symlink("a", dir.join("link")).expect("symlink");
}

/// The host's changes: create, delete, rename, chmod, content and size,
/// a directory entry added, a symlink retargeted.
fn change(dir: &Path) {
    std::fs::write(dir.join("created"), "new file").expect("create");
    std::fs::remove_file(dir.join("b")).expect("delete");
    std::fs::rename(dir.join("a"), dir.join("a2")).expect("rename");
    std::fs::set_permissions(dir.join("mode"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(dir.join("grow"), "a good deal longer than before").expect("rewrite");
    std::fs::write(dir.join("sub/two"), "2").expect("add entry");
    std::fs::remove_file(dir.join("link")).expect("unlink link");
    std::os::unix::fs::symlink("a2", dir.join("link")).expect("symlink");
}

fn native_look(bb: &Path, dir: &Path) -> String {
    let out = Command::new(bb).args(["sh", "-c", LOOK]).current_dir(dir).output().expect("native look");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run bundle `b` on platform `p`: it looks at `dir` (through its mount),
/// touches `.ready` in `sig`, waits for `.go` there and looks again; the
/// host changes `dir` in between. Its two looks must be the host's own
/// before and after the change; returns the host's look after.
fn look_before_and_after(p: &str, b: &Bundle, bb: &Path, dir: &Path, sig: &Path) -> String {
    let before = native_look(bb, dir);
    let (mut cmd, _state) = runsc_lite(p);
    cmd.arg("run").arg(b.path()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.process_group(0);
    let mut child = cmd.spawn().expect("spawn runsc-lite");
    wait_for(&sig.join(".ready"), &mut child);
    change(dir);
    let after = native_look(bb, dir);
    std::fs::write(sig.join(".go"), b"").expect("go");
    let deadline = Instant::now() + timeout();
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{p}: the sandbox did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{p}: {}\n{got}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(got, format!("{before}====\n{after}"), "{p}: the sandbox's looks differ from the host's");
    after
}

#[test]
fn host_side_changes_under_a_rw_bind_mount_are_seen() {
    let Some(bb) = need_busybox("host_side_changes_under_a_rw_bind_mount_are_seen") else { return };
    let b = Bundle::new(&bb);
    let dir = TempDir::new("host-changes");
    let host_dir = dir.path().to_str().expect("utf-8").to_string();
    let script = format!(
        "cd /mnt/rw && {LOOK} && echo ==== && touch .ready && \
         while [ ! -e .go ]; do sleep 0.01; done && {LOOK}"
    );
    let mut c = config(&["/bin/sh", "-c", &script]);
    c.mounts.push(mount("/mnt/rw", "bind", &host_dir, &["rbind", "rw"]));
    b.write_config(&c);
    for p in PLATFORMS {
        setup(dir.path());
        let after = look_before_and_after(p, &b, &bb, dir.path(), dir.path());
        assert!(after.contains("a2 regular file 5 ") && after.contains("sub/two "), "{after}");
    }
}

/// Wait until every directory of the tree at `dir` last changed more than
/// `vfs::dircache::SETTLED` (1 s) ago, so that the sandbox keeps their
/// listings (it keeps none of a directory changed within that time).
fn wait_settled(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let deadline = Instant::now() + timeout();
    for d in [dir.to_path_buf(), dir.join("sub")] {
        loop {
            let m = std::fs::metadata(&d).expect("stat");
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
            let last =
                (m.mtime() as f64 + m.mtime_nsec() as f64 * 1e-9).max(m.ctime() as f64 + m.ctime_nsec() as f64 * 1e-9);
            if now - last > 1.5 {
                break;
            }
            assert!(Instant::now() < deadline, "{} never settled", d.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The same, with directory listings the sandbox has kept: the tree has
/// settled before the first look (so its listings are kept between guest
/// calls), the guest lists it twice, and its markers go to another mount
/// (a change through the same mount would drop the listings anyway). The
/// host's changes must still show in the next look.
#[test]
fn host_side_changes_to_kept_listings_are_seen() {
    let Some(bb) = need_busybox("host_side_changes_to_kept_listings_are_seen") else { return };
    let b = Bundle::new(&bb);
    let dir = TempDir::new("host-listings");
    let sig = TempDir::new("host-listings-sig");
    let host_dir = dir.path().to_str().expect("utf-8").to_string();
    let sig_dir = sig.path().to_str().expect("utf-8").to_string();
    let script = format!(
        "cd /mnt/rw && {LOOK} >/dev/null && {LOOK} && echo ==== && touch /mnt/sig/.ready && \
         while [ ! -e /mnt/sig/.go ]; do sleep 0.01; done && {LOOK}"
    );
    let mut c = config(&["/bin/sh", "-c", &script]);
    c.mounts.push(mount("/mnt/rw", "bind", &host_dir, &["rbind", "rw"]));
    c.mounts.push(mount("/mnt/sig", "bind", &sig_dir, &["rbind", "rw"]));
    b.write_config(&c);
    for p in PLATFORMS {
        for m in [".ready", ".go"] {
            let _ = std::fs::remove_file(sig.path().join(m));
        }
        setup(dir.path());
        wait_settled(dir.path());
        look_before_and_after(p, &b, &bb, dir.path(), sig.path());
    }
}
