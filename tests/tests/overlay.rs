//! The root overlay of `runsc-lite do` seen from the guest: changes to a
//! tree that lives in the LOWER layer (the host's read-only /) behave as
//! on a native filesystem, and `ls -l` (which asks for ACLs and security
//! labels through the xattr calls) prints no error.
//!
//! Every test runs on each platform of `tests::PLATFORMS`.

use std::path::Path;
use tests::{
    assert_status, build_guest, diff_lines, have_gcc, run_do, run_native, run_sandboxed, skip, Link, TempDir, PLATFORMS,
};

/// Every path under `root` with its type, content (files), target
/// (symlinks) and extended attributes, sorted: what the host has.
fn snapshot(root: &Path) -> String {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir).expect("read_dir").flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).expect("under root").display().to_string();
            let meta = std::fs::symlink_metadata(&p).expect("lstat");
            let xattrs = xattr_names(&p);
            if meta.is_dir() {
                out.push(format!("{rel}/ {xattrs}"));
                stack.push(p);
            } else if meta.file_type().is_symlink() {
                out.push(format!("{rel} -> {}", std::fs::read_link(&p).expect("readlink").display()));
            } else {
                out.push(format!("{rel} = {:?} {xattrs}", std::fs::read_to_string(&p).expect("read")));
            }
        }
    }
    out.sort();
    out.join("\n")
}

/// The user.* names of a host file, sorted.
fn xattr_names(p: &Path) -> String {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path without NUL");
    let mut buf = vec![0u8; 4096];
    // SAFETY: `c` is a C string; the pointer and length describe `buf`.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let mut names: Vec<String> = buf[..n.max(0) as usize]
        .split(|&b| b == 0)
        .filter(|s| s.starts_with(b"user."))
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    names.sort();
    names.join(",")
}

/// overlay_ops on a tree built on the host before the sandbox starts, so
/// that the sandbox's whole tree is in the overlay's lower layer; the
/// native run works on a second copy. Same output, and the host's tree
/// untouched.
#[test]
fn lower_tree_changes_as_native() {
    if let Err(e) = have_gcc() {
        skip("lower_tree_changes_as_native", &e);
        return;
    }
    let bin = build_guest("overlay_ops", Link::Static);
    let native_dir = TempDir::new("ovl-native");
    let lower_dir = TempDir::new("ovl-lower");
    for d in [&native_dir, &lower_dir] {
        let arg = d.path().to_str().expect("utf-8 temp dir");
        let b = run_native(&bin, &["--build", arg], d.path());
        assert_status(&b, 0);
    }
    let before = snapshot(lower_dir.path());
    let native = run_native(&bin, &[native_dir.path().to_str().expect("utf-8")], native_dir.path());
    assert_status(&native, 0);
    assert!(native.stdout.ends_with("done\n"), "native run incomplete\n{}", native.describe());
    let mut failures = String::new();
    for p in PLATFORMS {
        let s = run_sandboxed(p, &bin, &[lower_dir.path().to_str().expect("utf-8")], lower_dir.path());
        if s.status != native.status || s.stdout != native.stdout || s.timed_out {
            failures.push_str(&format!(
                "### on {p}: status native {} vs sandbox {}\n{}\n{}\n",
                native.status,
                s.status,
                diff_lines(&native.stdout, &s.stdout),
                s.describe()
            ));
        }
        let after = snapshot(lower_dir.path());
        if after != before {
            failures.push_str(&format!("### on {p}: the host's tree changed\n{}\n", diff_lines(&before, &after)));
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// `ls -l` asks every file for its ACL and security label (lgetxattr,
/// listxattr): under `do` it prints nothing on stderr. /tmp is shared
/// with every other process of the machine, whose files may vanish
/// between ls's readdir and its lstat: there, a "cannot access" line is
/// allowed for a name that is indeed gone from the host.
#[test]
fn ls_l_prints_no_error() {
    let d = TempDir::new("ls-l");
    std::fs::write(d.path().join("file"), "x").expect("write");
    std::fs::create_dir(d.path().join("dir")).expect("mkdir");
    std::os::unix::fs::symlink("file", d.path().join("link")).expect("symlink");
    let scratch = d.path().to_str().expect("utf-8").to_string();
    for p in PLATFORMS {
        for dir in ["/", scratch.as_str(), "/dev"] {
            let out = run_do(p, &["ls", "-l", dir], d.path());
            assert_status(&out, 0);
            assert!(out.stderr.is_empty(), "ls -l {dir} on {p} printed errors\n{}", out.describe());
        }
        let out = run_do(p, &["ls", "-l", "/tmp"], d.path());
        assert!(!out.timed_out && (out.status == 0 || out.status == 1), "{}", out.describe());
        for line in out.stderr.lines() {
            let gone = line
                .strip_prefix("ls: cannot access '")
                .and_then(|l| l.strip_suffix("': No such file or directory"))
                .is_some_and(|path| !Path::new(path).exists());
            assert!(gone, "ls -l /tmp on {p}: {line}\n{}", out.describe());
        }
    }
}
