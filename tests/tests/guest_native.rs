//! Checks of the guest programs themselves, without runsc-lite: each one
//! compiles, runs natively with the expected exit status and "done" line,
//! and prints the same output twice in a row (a guest that prints pids,
//! times or addresses would make the conformance comparison flaky).

#[test]
fn guests_are_deterministic_natively() {
    if let Err(e) = tests::have_gcc() {
        tests::skip("guests_are_deterministic_natively", &e);
        return;
    }
    let cwd = std::env::temp_dir();
    let mut failures = Vec::new();
    for g in tests::GUESTS {
        let bin = tests::build_guest(g.source, g.link);
        let first = tests::run_native(&bin, &[], &cwd);
        if let Err(e) = tests::check_native_sanity(g, &first) {
            failures.push(e);
            continue;
        }
        let second = tests::run_native(&bin, &[], &cwd);
        let (a, b) = (tests::apply_mask(&first.stdout, g.mask), tests::apply_mask(&second.stdout, g.mask));
        if a != b || first.status != second.status {
            failures.push(format!(
                "{}: two native runs differ (status {} vs {}):\n{}",
                g.name,
                first.status,
                second.status,
                tests::diff_lines(&a, &b)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// No guest leaves its scratch directory behind in /tmp.
#[test]
fn guests_clean_up_their_scratch_dirs() {
    if let Err(e) = tests::have_gcc() {
        tests::skip("guests_clean_up_their_scratch_dirs", &e);
        return;
    }
    let dir = tests::TempDir::new("scratch-parent");
    for g in tests::GUESTS.iter().filter(|g| g.ends_with_done) {
        let bin = tests::build_guest(g.source, g.link);
        let scratch = dir.path().join(g.name);
        std::fs::create_dir(&scratch).expect("create scratch");
        // With an explicit scratch dir the program must leave it in place
        // (it is the caller's), with whatever it created inside.
        let out = tests::run_native(&bin, &[scratch.to_str().expect("utf-8 path")], &std::env::temp_dir());
        assert!(!out.timed_out, "{}", out.describe());
        assert!(scratch.is_dir(), "{} removed the caller's scratch dir", g.name);
    }
    // Without one, each program removes the directory it made: run them
    // all with TMPDIR pointing at an empty private directory.
    let private = tests::TempDir::new("scratch-tmpdir");
    for g in tests::GUESTS.iter().filter(|g| g.ends_with_done && g.name == g.source) {
        let bin = tests::build_guest(g.source, g.link);
        let mut c = std::process::Command::new(&bin);
        c.env("TMPDIR", private.path()).current_dir(std::env::temp_dir()).stdin(std::process::Stdio::null());
        let out = tests::run_with_timeout(&mut c, tests::timeout());
        assert!(!out.timed_out, "{}", out.describe());
        let left: Vec<String> = std::fs::read_dir(private.path())
            .expect("read_dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "{} left {left:?} in its TMPDIR", g.name);
    }
}
