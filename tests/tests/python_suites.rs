//! A handful of CPython's own regression suites run natively and under
//! `runsc-lite do` on every platform (issue 13's real-world target; the
//! full table and commands are in docs/conformance-suites.md). Optional:
//! skipped when python3 or its `test` package is missing (Debian:
//! libpython3.11-testsuite). The conformance guests are the regression
//! tests for each root cause; this checks that real suites agree.

use std::path::Path;
use std::process::Stdio;
use tests::{run_native, run_with_timeout, runsc_lite, skip, which, PLATFORMS};

/// Quick suites (seconds each, about 25 s together in the sandbox on a
/// loaded 2-core machine) that pass natively and in the sandbox. The
/// slower suites the table covers (test_posix, test_socket, test_time,
/// ...) are run by hand with the commands in docs/conformance-suites.md.
const SUITES: &[&str] = &["test_epoll", "test_stat", "test_sched"];

/// Generous: the suites take seconds, the machine may be busy.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// One line per suite and the verdict, without times.
const SUMMARY: &str = "import sys, subprocess\n\
    r = subprocess.run([sys.executable, '-m', 'test', '-q', *sys.argv[1:]], capture_output=True, text=True)\n\
    print('Result: SUCCESS' if 'Result: SUCCESS' in r.stdout else r.stdout[-3000:] + r.stderr[-2000:])\n\
    print('done')\n";

/// python3 with its regression-test package, or None after the skip.
fn python_with_tests(test: &str) -> Option<std::path::PathBuf> {
    let Some(py) = which("python3") else {
        skip(test, "python3 is missing");
        return None;
    };
    let probe = run_native(&py, &["-c", "import test.libregrtest, test.support"], Path::new("/"));
    if probe.status != 0 {
        skip(test, "python3's test package is missing (apt-get install libpython3.11-testsuite)");
        return None;
    }
    // The interpreter itself, not a wrapper script (pyenv's shims are
    // shell scripts that cost a second each under ptrace).
    let real = run_native(&py, &["-c", "import sys; print(sys.executable)"], Path::new("/"));
    let real = std::path::PathBuf::from(real.stdout.trim());
    Some(if real.is_file() { real } else { py })
}

#[test]
fn cpython_quick_suites_pass_in_the_sandbox() {
    let Some(py) = python_with_tests("cpython_quick_suites_pass_in_the_sandbox") else { return };
    let py = py.to_string_lossy().into_owned();
    let cwd = std::env::temp_dir();
    let mut args = vec![py.as_str(), "-c", SUMMARY];
    args.extend_from_slice(SUITES);
    let native = run_native(Path::new(&py), &args[1..], &cwd);
    if !native.stdout.starts_with("Result: SUCCESS") {
        skip("cpython_quick_suites_pass_in_the_sandbox", "the suites do not pass natively on this machine");
        return;
    }
    for p in PLATFORMS {
        let (mut c, _state) = runsc_lite(p);
        c.arg("do").args(&args).current_dir(&cwd).stdin(Stdio::null());
        let out = run_with_timeout(&mut c, LIMIT);
        assert!(
            out.status == 0 && out.stdout == native.stdout,
            "{p}: CPython suites differ from native\n{}",
            out.describe()
        );
    }
}
