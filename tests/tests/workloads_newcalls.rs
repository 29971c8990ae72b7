//! Workloads that reach the newer file calls first (issue 13): coreutils
//! `cp` (copy_file_range), `stat` and `ls` (statx), and `cat | cat`, each
//! compared with the native run on every platform; and a check that the
//! calls are served, not refused, so the tools do not merely fall back.

use std::path::Path;
use std::process::Stdio;
use tests::{diff_lines, run_do, run_native, run_with_timeout, runsc_lite, skip, timeout, PLATFORMS};

/// Copies a small and a large file with cp, pipes them through cat, and
/// stats them; prints only what is the same on every run.
const SCRIPT: &str = r#"set -e
d=$(mktemp -d)
cd "$d"
printf 'line one\nline two\n' > a
head -c 300000 /dev/zero | tr '\0' x > big
cp a b
cp big big2
cat b | cat
cat big2 | cat | wc -c
cmp big big2 && echo same
stat -c '%n %F %s %a' a b big2
stat a | sed -n '1,2p' | sed 's/Inode:.*//'
cd /
rm -rf "$d"
echo done
"#;

fn have_tools(test: &str) -> bool {
    for p in ["/bin/sh", "/usr/bin/stat", "/bin/cp", "/bin/cat", "/usr/bin/cmp"] {
        if !Path::new(p).exists() {
            skip(test, &format!("{p} is missing"));
            return false;
        }
    }
    true
}

#[test]
fn coreutils_cp_stat_cat_match_native() {
    if !have_tools("coreutils_cp_stat_cat_match_native") {
        return;
    }
    let cwd = std::env::temp_dir();
    let native = run_native(Path::new("/bin/sh"), &["-c", SCRIPT], &cwd);
    assert!(native.status == 0 && native.stdout.ends_with("done\n"), "native run failed:\n{}", native.describe());
    for p in PLATFORMS {
        let out = run_do(p, &["/bin/sh", "-c", SCRIPT], &cwd);
        assert!(
            out.status == 0 && out.stdout == native.stdout,
            "{p}: native and sandbox differ\n{}\n{}",
            diff_lines(&native.stdout, &out.stdout),
            out.describe()
        );
    }
}

#[test]
fn cp_and_stat_are_served_their_first_choice() {
    if !have_tools("cp_and_stat_are_served_their_first_choice") {
        return;
    }
    let cwd = std::env::temp_dir();
    for p in PLATFORMS {
        let (mut c, _state) = runsc_lite(p);
        let log = tests::TempDir::new("strace");
        let log_file = log.path().join("log");
        c.arg("--strace").arg(format!("--debug-log={}", log_file.display()));
        c.arg("do").args(["/bin/sh", "-c", SCRIPT]).current_dir(&cwd).stdin(Stdio::null());
        let out = run_with_timeout(&mut c, timeout());
        assert_eq!(out.status, 0, "{}", out.describe());
        let text = std::fs::read_to_string(&log_file).unwrap_or_default();
        let served = |name: &str| {
            text.lines().any(|l| l.contains(&format!("{name}(")) && !l.contains("ENOSYS") && !l.contains("= -"))
        };
        assert!(served("copy_file_range"), "{p}: cp never had copy_file_range served");
        assert!(served("statx"), "{p}: stat never had statx served");
    }
}
