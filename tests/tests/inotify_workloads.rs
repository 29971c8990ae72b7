//! Programs that use inotify, under `runsc-lite do`: `tail -f` (GNU
//! coreutils follows a file with inotify on local filesystems and polls
//! on remote ones, overlayfs among them) sees a line that another
//! sandboxed process appends.

use tests::bundle::{config, mount, Bundle};
use tests::{assert_stdout, run_do, skip, TempDir, PLATFORMS};

/// `tail -f F` in the background, a line appended once it follows F,
/// then its output. The waits are for conditions (the first line shown,
/// tail's inotify descriptor, the appended line), never for a time; the
/// harness's timeout bounds them. Prints whether tail held an inotify
/// descriptor (looked for only where `$2` says so: not on the overlay,
/// where coreutils polls).
const SCRIPT: &str = r#"
f="$1/tailf.$$"
echo first > "$f"
tail -f "$f" > "$f.out" &
t=$!
until grep -q first "$f.out"; do sleep 0.01; done
if [ "$2" = inotify ]; then
    until ls -l /proc/$t/fd 2>/dev/null | grep -q 'anon_inode:inotify'; do sleep 0.01; done
    echo "tail watches with inotify"
fi
sh -c "echo appended >> '$f'"
until grep -q appended "$f.out"; do sleep 0.01; done
kill $t
wait $t 2>/dev/null
cat "$f.out"
rm -f "$f" "$f.out"
"#;

#[test]
fn tail_follows_appends() {
    if tests::which("tail").is_none() {
        skip("tail_follows_appends", "tail is not installed");
        return;
    }
    let cwd = TempDir::new("tail-f");
    for p in PLATFORMS {
        // /tmp is the `do` overlay, /dev/shm a tmpfs.
        for (dir, mode, want) in [
            ("/tmp", "poll", "first\nappended\n"),
            ("/dev/shm", "inotify", "tail watches with inotify\nfirst\nappended\n"),
        ] {
            let out = run_do(p, &["sh", "-c", SCRIPT, "sh", dir, mode], cwd.path());
            assert_stdout(&out, want);
        }
    }
}

/// The inotify conformance program in a bundle whose root is an overlay,
/// with its scratch directory on a rw bind mount of a host directory:
/// events on hostfs, the overlay and devfs's tmpfs, as natively.
#[test]
fn bundle_inotify_on_bind_mount() {
    let Some(bb) = tests::need_busybox("bundle_inotify_on_bind_mount") else { return };
    if let Err(e) = tests::have_gcc() {
        skip("bundle_inotify_on_bind_mount", &e);
        return;
    }
    let bin = tests::build_guest("inotify", tests::Link::Static);
    let native_dir = TempDir::new("inotify-native");
    let native = tests::run_native(&bin, &[native_dir.path().to_str().expect("utf-8")], &std::env::temp_dir());
    tests::assert_status(&native, 0);
    let b = Bundle::new(&bb);
    std::fs::copy(&bin, b.rootfs().join("bin/inotify")).expect("copy guest");
    std::fs::create_dir_all(b.rootfs().join("var/tmp")).expect("var/tmp");
    let rw = TempDir::new("inotify-rw");
    let mut c = config(&["/bin/inotify", "/mnt/rw"]);
    c.readonly = false;
    c.mounts.push(mount("/mnt/rw", "bind", rw.path().to_str().expect("utf-8"), &["rbind", "rw"]));
    b.write_config(&c);
    for p in PLATFORMS {
        tests::assert_same(&native, &b.run(p));
    }
}
