//! Extended attributes on other mounts than the root overlay (whose
//! conformance program is `xattr`): host files through bind mounts of an
//! OCI bundle (an rw mount passes user.* to the host file, a read-only
//! one answers from the host and refuses changes: EROFS), and the tmpfs
//! of /dev/shm.
//!
//! Every test runs on each platform of `tests::PLATFORMS`. The bundle
//! tests need /bin/busybox (Debian busybox-static) for the rootfs; all
//! report SKIPPED when what they need (gcc) is absent.

use std::path::Path;
use std::process::{Command, Stdio};
use tests::bundle::{config, mount, Bundle};
use tests::{
    apply_mask, assert_status, build_guest, diff_lines, need_busybox, run_native, run_with_timeout, runsc_lite, skip,
    timeout, Link, TempDir, PLATFORMS,
};

/// The lines where a bind mount of a host filesystem differs from the
/// native run as real root: trusted.* (CAP_SYS_ADMIN in the initial user
/// namespace) and security.* (written on a filesystem the initial
/// namespace owns: the host refuses the sandbox, EPERM).
const HOST_MASK: &[&str] = &["trusted_", "security_"];

fn prerequisites(test: &str) -> Option<std::path::PathBuf> {
    let bb = need_busybox(test)?;
    if let Err(e) = tests::have_gcc() {
        skip(test, &e);
        return None;
    }
    Some(bb)
}

fn set_host_xattr(p: &Path, name: &str, value: &[u8]) {
    let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path without NUL");
    let name = std::ffi::CString::new(name).expect("name without NUL");
    // SAFETY: both are C strings; the pointer and length describe `value`.
    let r = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(r, 0, "setxattr {}: {}", p.display(), std::io::Error::last_os_error());
}

fn get_host_xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path without NUL");
    let name = std::ffi::CString::new(name).expect("name without NUL");
    let mut buf = vec![0u8; 256];
    // SAFETY: both are C strings; the pointer and length describe `buf`.
    let n = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(usize::try_from(n).ok()?);
    Some(buf)
}

/// Remove what a run left in `dir` (the program keeps a scratch
/// directory it was given).
fn empty(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        let _ = std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&p).expect("remove_dir_all");
        } else {
            std::fs::remove_file(&p).expect("remove_file");
        }
    }
}

/// The xattr conformance program with its scratch directory on an rw
/// bind mount: the same answers as natively on the host's disk (but for
/// HOST_MASK), and what it sets lands on the host file.
#[test]
fn rw_bind_mount_as_native() {
    let Some(bb) = prerequisites("rw_bind_mount_as_native") else { return };
    let bin = build_guest("xattr", Link::Static);
    let native_dir = TempDir::new("xattr-native");
    let native = run_native(&bin, &[native_dir.path().to_str().expect("utf-8")], native_dir.path());
    assert_status(&native, 0);
    let b = Bundle::new(&bb);
    std::fs::copy(&bin, b.rootfs().join("bin/xattr")).expect("copy guest");
    let rw = TempDir::new("xattr-rw");
    let mut c = config(&["/bin/xattr", "/mnt/rw"]);
    c.mounts.push(mount("/mnt/rw", "bind", rw.path().to_str().expect("utf-8"), &["rbind", "rw"]));
    b.write_config(&c);
    let want = apply_mask(&native.stdout, HOST_MASK);
    for p in PLATFORMS {
        empty(rw.path());
        let out = b.run(p);
        let got = apply_mask(&out.stdout, HOST_MASK);
        assert!(
            out.status == native.status && got == want,
            "{p}: differs from native\n{}\n{}",
            diff_lines(&want, &got),
            out.describe()
        );
        assert!(
            out.stdout.contains("security_set err EPERM\n"),
            "{p}: security.* set on a host file\n{}",
            out.describe()
        );
    }
    // And the host file has what the sandbox set.
    let f = rw.path().join("marker");
    std::fs::write(&f, "m").expect("write");
    let mut c2 = config(&["/bin/xattr", "--ro", "/mnt/rw/marker"]);
    c2.mounts = c.mounts.clone();
    set_host_xattr(&f, "user.tag", b"host");
    b.write_config(&c2);
    for p in PLATFORMS {
        let out = b.run(p);
        // On an rw mount the program's EROFS expectations fail: the
        // changes reach the host.
        assert!(out.stdout.contains("ro_get = 4 'host'\n"), "{p}\n{}", out.describe());
        assert!(out.stdout.contains("ro_set ok\n") && out.stdout.contains("ro_fset ok\n"), "{p}\n{}", out.describe());
        assert_eq!(get_host_xattr(&f, "user.tag"), None, "{p}: user.tag not removed on the host");
        assert_eq!(get_host_xattr(&f, "user.new").as_deref(), Some(&b"x"[..]), "{p}: user.new not on the host");
        set_host_xattr(&f, "user.tag", b"host");
    }
}

/// A read-only bind mount: the host's attributes are read, never changed.
#[test]
fn ro_bind_mount_reads_host_attributes() {
    let Some(bb) = prerequisites("ro_bind_mount_reads_host_attributes") else { return };
    let bin = build_guest("xattr", Link::Static);
    let b = Bundle::new(&bb);
    std::fs::copy(&bin, b.rootfs().join("bin/xattr")).expect("copy guest");
    let ro = TempDir::new("xattr-ro");
    let f = ro.path().join("file");
    std::fs::write(&f, "content").expect("write");
    set_host_xattr(&f, "user.tag", b"host");
    let mut c = config(&["/bin/xattr", "--ro", "/mnt/ro/file"]);
    c.mounts.push(mount("/mnt/ro", "bind", ro.path().to_str().expect("utf-8"), &["rbind", "ro"]));
    b.write_config(&c);
    let want = "ro_get = 4 'host'\nro_list: user.tag\nro_set err EROFS\nro_remove err EROFS\nro_fset err EROFS\nro_fget = 4\ndone\n";
    for p in PLATFORMS {
        let out = b.run(p);
        assert_status(&out, 0);
        assert!(out.stdout == want, "{p}\n{}\n{}", diff_lines(want, &out.stdout), out.describe());
        assert_eq!(get_host_xattr(&f, "user.tag").as_deref(), Some(&b"host"[..]));
        assert_eq!(get_host_xattr(&f, "user.new"), None);
    }
}

/// The xattr program with its scratch directory in /dev/shm: natively a
/// tmpfs, in the sandbox devfs's (a tmpfs too). Same answers but for
/// trusted.* (see tests::GUESTS' xattr entry).
#[test]
fn dev_shm_tmpfs_as_native() {
    if let Err(e) = tests::have_gcc() {
        skip("dev_shm_tmpfs_as_native", &e);
        return;
    }
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        skip("dev_shm_tmpfs_as_native", "no /dev/shm on the host");
        return;
    }
    let bin = build_guest("xattr", Link::Static);
    let mut c = Command::new(&bin);
    c.env("TMPDIR", shm).current_dir(std::env::temp_dir()).stdin(Stdio::null());
    let native = run_with_timeout(&mut c, timeout());
    assert_status(&native, 0);
    let mask = ["trusted_set ", "trusted_get ", "trusted_remove "];
    let want = apply_mask(&native.stdout, &mask);
    for p in PLATFORMS {
        let (mut c, _state) = runsc_lite(p);
        c.env("TMPDIR", shm).arg("do").arg(&bin).current_dir(std::env::temp_dir()).stdin(Stdio::null());
        let out = run_with_timeout(&mut c, timeout());
        let got = apply_mask(&out.stdout, &mask);
        assert!(
            out.status == 0 && got == want,
            "{p}: differs from native\n{}\n{}",
            diff_lines(&want, &got),
            out.describe()
        );
        assert!(out.stdout.contains("trusted_set err EPERM\n"), "{p}\n{}", out.describe());
    }
}
