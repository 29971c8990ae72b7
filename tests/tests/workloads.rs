//! Workloads through `runsc-lite do`: host binaries (busybox applets,
//! coreutils, shell scripts, bash, python3) with the host's root read-only
//! under an overlay, exit status passthrough, argv as typed, and bad input.
//! OCI bundles are in `bundles.rs`.
//!
//! Every test runs on each platform of `tests::PLATFORMS`. Tests that need
//! /bin/busybox (Debian busybox-static) report SKIPPED when it is absent
//! (RUNSC_LITE_TEST_STRICT=1 makes that a failure).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tests::{
    assert_one_line_error, assert_same, assert_status, assert_stdout, diff_lines, need_busybox, run_do, run_native,
    run_with_timeout, runsc_lite, skip, timeout, RunOutput, TempDir, PLATFORMS,
};

fn need_file(test: &str, p: &str) -> bool {
    let ok = Path::new(p).exists();
    if !ok {
        skip(test, &format!("{p} is missing"));
    }
    ok
}

fn tmp() -> PathBuf {
    std::env::temp_dir()
}

/// Native run of an argv (argv[0] looked up in PATH).
fn native(args: &[&str], cwd: &Path) -> RunOutput {
    let prog = tests::which(args[0]).unwrap_or_else(|| PathBuf::from(args[0]));
    run_native(&prog, &args[1..], cwd)
}

fn sorted_lines(s: &str) -> String {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v.iter().map(|l| format!("{l}\n")).collect()
}

/// Compares native and sandboxed runs of every argv in `cases` on every
/// platform; `sort` compares sorted lines (for readdir-order output).
/// Reports all mismatches at once.
fn compare_many(cases: &[(&[&str], bool)], cwd: &Path) {
    let mut failures = String::new();
    for (args, sort) in cases {
        let n = native(args, cwd);
        assert!(n.status == 0 && !n.timed_out, "native run failed, fix the test:\n{}", n.describe());
        for p in PLATFORMS {
            let s = run_do(p, args, cwd);
            let (a, b) = if *sort {
                (sorted_lines(&n.stdout), sorted_lines(&s.stdout))
            } else {
                (n.stdout.clone(), s.stdout.clone())
            };
            if n.status != s.status || a != b || s.timed_out {
                let _ = writeln!(
                    failures,
                    "### {args:?} on {p}: status native {} vs sandbox {}\n{}--- sandbox stderr ---\n{}",
                    n.status,
                    s.status,
                    diff_lines(&a, &b),
                    tests::tail(&s.stderr, 30)
                );
            }
        }
    }
    assert!(failures.is_empty(), "native and sandbox differ:\n{failures}");
}

// ---------------------------------------------------------------------------
// `do`: simple commands

#[test]
fn busybox_echo() {
    let Some(_) = need_busybox("busybox_echo") else { return };
    for p in PLATFORMS {
        assert_stdout(&run_do(p, &["busybox", "echo", "hi"], &tmp()), "hi\n");
    }
}

#[test]
fn overlay_writes_stay_in_the_sandbox() {
    let Some(_) = need_busybox("overlay_writes_stay_in_the_sandbox") else { return };
    for p in PLATFORMS {
        let path = tmp().join(tests::unique("runsc-lite-overlay"));
        let script = format!("echo a > {0}; cat {0}", path.display());
        let out = run_do(p, &["busybox", "sh", "-c", &script], &tmp());
        assert_stdout(&out, "a\n");
        assert!(!path.exists(), "{} appeared on the host", path.display());
    }
}

#[test]
fn overlay_copy_up_leaves_host_file_alone() {
    let Some(_) = need_busybox("overlay_copy_up_leaves_host_file_alone") else { return };
    let dir = TempDir::new("copyup");
    let f = dir.path().join("host-file");
    std::fs::write(&f, "original\n").expect("write");
    for p in PLATFORMS {
        let script = format!("echo changed >> {0}; cat {0}", f.display());
        let out = run_do(p, &["busybox", "sh", "-c", &script], &tmp());
        assert_stdout(&out, "original\nchanged\n");
        assert_eq!(std::fs::read_to_string(&f).expect("read"), "original\n", "the host file was modified");
    }
}

#[test]
fn cwd_is_kept() {
    let Some(_) = need_busybox("cwd_is_kept") else { return };
    let dir = TempDir::new("cwd");
    let want = format!("{}\n", dir.path().canonicalize().expect("canonicalize").display());
    for p in PLATFORMS {
        assert_stdout(&run_do(p, &["busybox", "pwd"], dir.path()), &want);
    }
}

#[test]
fn stdin_is_passed_through() {
    let Some(_) = need_busybox("stdin_is_passed_through") else { return };
    let dir = TempDir::new("stdin");
    let input = dir.path().join("input");
    std::fs::write(&input, "line one\nline two\n").expect("write");
    for p in PLATFORMS {
        let (mut c, _state) = runsc_lite(p);
        c.args(["do", "busybox", "cat"]).current_dir(tmp());
        c.stdin(Stdio::from(std::fs::File::open(&input).expect("open")));
        assert_stdout(&run_with_timeout(&mut c, timeout()), "line one\nline two\n");
    }
}

#[test]
fn ls_root_matches_native() {
    if !need_file("ls_root_matches_native", "/bin/ls") {
        return;
    }
    compare_many(&[(&["/bin/ls", "/"], false), (&["/bin/ls", "-a", "/etc"], false)], &tmp());
}

#[test]
fn cat_etc_files_match_native() {
    let mut cases: Vec<(&[&str], bool)> = vec![(&["/bin/cat", "/etc/passwd"], false)];
    if Path::new("/etc/hostname").exists() {
        cases.push((&["/bin/cat", "/etc/hostname"], false));
    }
    if !need_file("cat_etc_files_match_native", "/bin/cat") {
        return;
    }
    compare_many(&cases, &tmp());
}

#[test]
fn coreutils_stat_matches_native() {
    if !need_file("coreutils_stat_matches_native", "/usr/bin/stat") {
        return;
    }
    compare_many(
        &[
            (&["/usr/bin/stat", "-c", "%n %F %a %u %g", "/"], false),
            (&["/usr/bin/stat", "-c", "%n %F %a %s", "/etc/passwd"], false),
            (&["/usr/bin/stat", "-L", "-c", "%n %F", "/proc/self"], false),
        ],
        &tmp(),
    );
    // Plain `stat /` (its Birth line may differ: no birth times here).
    for p in PLATFORMS {
        let out = run_do(p, &["/usr/bin/stat", "/"], &tmp());
        assert_status(&out, 0);
        assert!(out.stdout.starts_with("  File: /\n"), "{}", out.describe());
    }
}

#[test]
fn busybox_applets_match_native() {
    let Some(_) = need_busybox("busybox_applets_match_native") else { return };
    // A small tree on the host for find/ls/du; the sandbox sees it read-only.
    let dir = TempDir::new("applets");
    let d = dir.path();
    std::fs::create_dir_all(d.join("a/b/c")).expect("mkdir");
    std::fs::write(d.join("a/one.txt"), "zeta\nalpha\nbeta\nalpha\n").expect("write");
    std::fs::write(d.join("a/b/two.txt"), "hello world\nfoo bar baz\n").expect("write");
    std::fs::write(d.join("a/b/c/three"), vec![b'x'; 10000]).expect("write");
    let ds = d.to_str().expect("utf-8");
    let one = format!("{ds}/a/one.txt");
    let two = format!("{ds}/a/b/two.txt");
    let three = format!("{ds}/a/b/c/three");
    let cases: Vec<(Vec<&str>, bool)> = vec![
        (vec!["busybox", "ls", "/"], false),
        (vec!["busybox", "ls", "-la", "--full-time", &two], false),
        (vec!["busybox", "ls", "-R", ds], false),
        (vec!["busybox", "cat", &one, &two], false),
        (vec!["busybox", "md5sum", "/bin/busybox", &three], false),
        (vec!["busybox", "sha256sum", &one], false),
        (vec!["busybox", "stat", "-c", "%n %s %a %F %h", "/bin/busybox", &one, ds], false),
        (vec!["busybox", "find", ds], true),
        (vec!["busybox", "find", ds, "-type", "f", "-name", "*.txt"], true),
        (vec!["busybox", "grep", "-n", "alpha", &one], false),
        (vec!["busybox", "grep", "-c", "o", &two], false),
        (vec!["busybox", "grep", "-r", "hello", ds], false),
        (vec!["busybox", "sed", "-n", "2,3p", &one], false),
        (vec!["busybox", "sed", "s/alpha/ALPHA/g", &one], false),
        (vec!["busybox", "wc", &one, &two, &three], false),
        (vec!["busybox", "sort", &one], false),
        (vec!["busybox", "sort", "-u", "-r", &one], false),
        (vec!["busybox", "uniq", "-c", &one], false),
        (vec!["busybox", "head", "-n", "2", &one], false),
        (vec!["busybox", "tail", "-c", "8", &two], false),
        (vec!["busybox", "cut", "-d", " ", "-f", "2", &two], false),
        (vec!["busybox", "tr", "-d", "a"], false),
        (vec!["busybox", "du", "-a", "-b", ds], true),
        (vec!["busybox", "od", "-c", "-N", "16", "/bin/busybox"], false),
        (vec!["busybox", "readlink", "-f", "/proc/self/cwd"], false),
        (vec!["busybox", "realpath", &one], false),
        (vec!["busybox", "basename", &one], false),
        (vec!["busybox", "dirname", &one], false),
        (vec!["busybox", "seq", "1", "5"], false),
        (vec!["busybox", "expr", "6", "*", "7"], false),
        (vec!["busybox", "printf", "%s-%d\\n", "x", "42"], false),
        (vec!["busybox", "test", "-d", ds], false),
        (vec!["busybox", "uname", "-s", "-m"], false),
        (vec!["busybox", "true"], false),
    ];
    let cases: Vec<(&[&str], bool)> = cases.iter().map(|(a, s)| (a.as_slice(), *s)).collect();
    compare_many(&cases, d);
}

#[test]
fn busybox_info_applets() {
    let Some(_) = need_busybox("busybox_info_applets") else { return };
    let n_year = native(&["busybox", "date", "-u", "+%Y"], &tmp());
    for p in PLATFORMS {
        // uname -r is the Sentry's, not the host's.
        assert_stdout(&run_do(p, &["busybox", "uname", "-r"], &tmp()), "4.4.0\n");
        assert_stdout(&run_do(p, &["busybox", "uname", "-s"], &tmp()), "Linux\n");
        // The clock is the host's.
        let year = run_do(p, &["busybox", "date", "-u", "+%Y"], &tmp());
        assert_stdout(&year, &n_year.stdout);
        let secs = run_do(p, &["busybox", "date", "+%s"], &tmp());
        assert_status(&secs, 0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() as i64;
        let got: i64 = secs.stdout.trim().parse().unwrap_or_else(|_| panic!("date +%s: {}", secs.describe()));
        assert!((got - now).abs() < 120, "date +%s in the sandbox is {got}, host says {now}");
        // The environment is passed through.
        let (mut c, _state) = runsc_lite(p);
        c.args(["do", "busybox", "env"])
            .env("RUNSC_LITE_TEST_VAR", "some value")
            .current_dir(tmp())
            .stdin(Stdio::null());
        let env = run_with_timeout(&mut c, timeout());
        assert_status(&env, 0);
        assert!(
            env.stdout.lines().any(|l| l == "RUNSC_LITE_TEST_VAR=some value"),
            "env lacks the variable\n{}",
            env.describe()
        );
        // `do` runs as root inside.
        assert_stdout(&run_do(p, &["busybox", "id", "-u"], &tmp()), "0\n");
        assert_stdout(&run_do(p, &["busybox", "id", "-g"], &tmp()), "0\n");
        let host = run_do(p, &["busybox", "hostname"], &tmp());
        assert_same(&native(&["busybox", "hostname"], &tmp()), &host);
    }
}

/// A shell script using only builtins (no fork needed), run natively in
/// one empty directory and in the sandbox in another: same output.
#[test]
fn sh_builtins_and_redirections() {
    let Some(_) = need_busybox("sh_builtins_and_redirections") else { return };
    let script = r#"
set -u
x=5; y=$((x * 3 + 1)); echo "arith $y"
f() { echo "func $1 $#"; return 3; }
f one two; echo "status $?"
for i in 1 2 3; do printf '%s,' "$i"; done; echo
i=0; while [ $i -lt 4 ]; do i=$((i + 1)); done; echo "while $i"
case "hello.txt" in *.txt) echo case-txt;; *) echo case-other;; esac
echo first > out.txt
echo second >> out.txt
echo to-stderr 1>&2
{ echo grouped; echo redirected; } > grp.txt
n=0; while read -r line; do n=$((n + 1)); echo "read: $line"; done < out.txt; echo "lines $n"
while read -r line; do echo "grp: $line"; done < grp.txt
exec 3> fd3.txt; echo via-fd3 >&3; exec 3>&-
read -r l < fd3.txt; echo "fd3 $l"
cat_like() { while IFS= read -r l; do echo "$l"; done; }
cat_like < out.txt
test -f out.txt && echo exists
[ -d out.txt ] || echo not-a-dir
v=subst-builtin-only; echo "${#v} ${v%-only} ${v#subst-}"
s="a:b:c"; IFS=:; set -- $s; echo "split $# $2"; IFS=' '
echo ${UNSET_VARIABLE_X:-default}
[ -n "$PWD" ] && echo pwd-set
umask 027; umask
echo > /dev/null && echo devnull-ok
echo end
"#;
    let a = TempDir::new("sh-native");
    let n = native(&["busybox", "sh", "-c", script], a.path());
    assert_status(&n, 0);
    for p in PLATFORMS {
        let b = TempDir::new("sh-sandbox");
        let s = run_do(p, &["busybox", "sh", "-c", script], b.path());
        assert_same(&n, &s);
        assert!(s.stderr.contains("to-stderr"), "stderr lost\n{}", s.describe());
        assert_eq!(std::fs::read_dir(b.path()).expect("read_dir").count(), 0, "the script's files reached the host");
    }
}

#[test]
fn shebang_script() {
    let Some(_) = need_busybox("shebang_script") else { return };
    let dir = TempDir::new("shebang");
    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/busybox sh\necho \"script $1 $#\"\nexit 5\n").expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let sp = script.to_str().expect("utf-8");
    let n = native(&[sp, "arg"], &tmp());
    assert_eq!(n.stdout, "script arg 1\n");
    for p in PLATFORMS {
        assert_same(&n, &run_do(p, &[sp, "arg"], &tmp()));
    }
}

#[test]
fn exit_status_passthrough() {
    let Some(_) = need_busybox("exit_status_passthrough") else { return };
    for p in PLATFORMS {
        assert_status(&run_do(p, &["busybox", "sh", "-c", "exit 7"], &tmp()), 7);
        assert_status(&run_do(p, &["busybox", "sh", "-c", "exit 255"], &tmp()), 255);
        assert_status(&run_do(p, &["busybox", "false"], &tmp()), 1);
        assert_status(&run_do(p, &["busybox", "true"], &tmp()), 0);
        // Not found inside the shell: 127, from the shell itself.
        assert_status(&run_do(p, &["busybox", "sh", "-c", "/no/such/command"], &tmp()), 127);
    }
}

#[test]
fn killed_by_signal_status() {
    let Some(_) = need_busybox("killed_by_signal_status") else { return };
    for p in PLATFORMS {
        assert_status(&run_do(p, &["busybox", "sh", "-c", "kill -9 $$"], &tmp()), 137);
        assert_status(&run_do(p, &["busybox", "sh", "-c", "kill -TERM $$"], &tmp()), 143);
    }
}

/// Scripts that need fork/exec/wait: pipelines, command substitution,
/// external commands that are not the last one.
#[test]
fn sh_pipelines_and_external_commands() {
    let Some(_) = need_busybox("sh_pipelines_and_external_commands") else { return };
    let script = r#"
echo hello | tr a-z A-Z
busybox seq 1 200 | busybox md5sum
mkdir -p d/e && echo data > d/e/f && cp d/e/f d/g && mv d/g d/h && ln -s h d/l
readlink d/l; cat d/l; ls d | sort
dd if=/bin/busybox of=chunk bs=1000 count=3 skip=1 2>/dev/null; md5sum chunk | cut -d' ' -f1
busybox dd if=/bin/busybox bs=1000 count=3 skip=1 2>/dev/null | md5sum | cut -d' ' -f1
rm -r d; [ -e d ] || echo removed
echo "subst: $(echo inner | wc -c)"
pwd_=$(pwd); [ "$pwd_" = "$PWD" ] && echo pwd-consistent
find . -type f | sort
(exit 4); echo "subshell $?"
false | true; echo "pipeline status $?"
"#;
    let a = TempDir::new("pipes-native");
    let n = native(&["busybox", "sh", "-c", script], a.path());
    assert_status(&n, 0);
    for p in PLATFORMS {
        let b = TempDir::new("pipes-sandbox");
        assert_same(&n, &run_do(p, &["busybox", "sh", "-c", script], b.path()));
    }
}

/// The host's bash with jobs, traps and signals, and the tools issue 3
/// names: find | xargs, a tar/gzip round trip, make, and gcc compiling and
/// running a program, compared with the same script run natively.
#[test]
fn bash_jobs_traps_and_toolchain() {
    for tool in ["/bin/bash", "/usr/bin/make", "/usr/bin/gcc", "/bin/tar", "/bin/gzip"] {
        if !need_file("bash_jobs_traps_and_toolchain", tool) {
            return;
        }
    }
    let script = r#"
set -u
trap 'echo got USR1' USR1
kill -USR1 $$
sleep 0.05 & sleep 0.02 & wait; echo "jobs done"
( sleep 5; echo never ) & victim=$!; kill -TERM $victim; wait $victim; echo "killed job status $?"
( exit 9 ); echo "subshell $?"
x=$(for i in 1 2 3; do echo $i; done | sort -r | head -1); echo "subst $x"
sleep 30 & j=$!; kill -STOP $j
# The job stops when it next runs, which a loaded machine can delay: poll.
for ((i = 0; i < 400; i++)); do ps_state=$(cut -d' ' -f3 /proc/$j/stat); [ "$ps_state" = T ] && break; sleep 0.05; done
echo "stopped job state $ps_state"
kill -CONT $j; kill -TERM $j; wait $j; echo "stopped then killed job status $?"
mkdir -p src/a src/b && for f in 1 2 3; do echo "file $f" > src/a/$f; echo "other $f" > src/b/$f; done
find src -type f | sort | xargs md5sum
tar czf out.tgz src && mkdir unpacked && tar xzf out.tgz -C unpacked && diff -r src unpacked/src && echo "tar round trip ok"
gzip -c src/a/1 | gzip -dc
printf 'all: prog\nprog: prog.c\n\tgcc -O1 -o prog prog.c\n' > Makefile
printf '#include <stdio.h>\nint main(void){puts("compiled and ran");return 5;}\n' > prog.c
make -s; ./prog; echo "prog status $?"
"#;
    let a = TempDir::new("bash-native");
    let n = native(&["/bin/bash", "-c", script], a.path());
    assert_status(&n, 0);
    for p in PLATFORMS {
        let b = TempDir::new("bash-sandbox");
        assert_same(&n, &run_do(p, &["/bin/bash", "-c", script], b.path()));
    }
}

/// python3 with threads, subprocess, multiprocessing (fork), os.fork,
/// signal handlers and sleeps.
#[test]
fn python3_processes_threads_signals() {
    let Some(py) = real_python() else {
        skip("python3_processes_threads_signals", "python3 is not installed");
        return;
    };
    let code = r#"
import os, signal, subprocess, threading, time, multiprocessing as mp
total = 0
lock = threading.Lock()
def work():
    global total
    for _ in range(2000):
        with lock:
            total += 1
ts = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print("threads", total)
print("subprocess", subprocess.run(["/bin/echo", "hi"], capture_output=True, text=True).stdout.strip())
mp.set_start_method("fork")
with mp.Pool(2) as pool:
    print("pool", pool.map(abs, [-1, -2, -3]))
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
os.kill(os.getpid(), signal.SIGUSR1)
signal.signal(signal.SIGALRM, lambda s, f: got.append(s))
signal.setitimer(signal.ITIMER_REAL, 0.05)
# Until the alarm has come (a loaded machine can deliver it late), with a
# deadline so a lost one shows as a missing 14 rather than a hang.
deadline = time.monotonic() + 20
while signal.SIGALRM not in got and time.monotonic() < deadline:
    time.sleep(0.05)
print("signals", sorted(got))
"#;
    let n = run_native(Path::new(&py), &["-S", "-c", code], &tmp());
    if n.status != 0 {
        skip("python3_processes_threads_signals", &format!("python3 does not run natively here:\n{}", n.describe()));
        return;
    }
    for p in PLATFORMS {
        assert_same(&n, &run_do(p, &[&py, "-S", "-c", code], &tmp()));
    }
}

fn real_python() -> Option<String> {
    let py = tests::which("python3")?;
    let out = run_native(&py, &["-c", "import sys; print(sys.executable)"], &tmp());
    let exe = out.stdout.trim().to_string();
    (out.status == 0 && Path::new(&exe).is_file()).then_some(exe)
}

#[test]
fn python3_workload() {
    // The real interpreter, not a wrapper script (pyenv shims are bash).
    let Some(py) = real_python() else {
        skip("python3_workload", "python3 is not installed");
        return;
    };
    let code = "import os, json, hashlib\n\
                d = {'sum': sum(range(1000)), 'h': hashlib.sha256(b'x' * 1000).hexdigest()}\n\
                print(json.dumps(d, sort_keys=True))\n\
                print(os.path.isdir('/proc/self'), len(os.listdir('/')) > 0)\n\
                import mmap, tempfile\n\
                fd, p = tempfile.mkstemp()\n\
                os.write(fd, b'\\0' * 8192)\n\
                m = mmap.mmap(fd, 8192)\n\
                m[0:5] = b'hello'\n\
                os.pwrite(fd, b'world', 4096)\n\
                print(os.pread(fd, 5, 0), m[4096:4101])\n\
                m.close(); os.close(fd); os.unlink(p)\n";
    let n = run_native(Path::new(&py), &["-S", "-c", code], &tmp());
    if n.status != 0 {
        skip("python3_workload", &format!("python3 does not run natively here:\n{}", n.describe()));
        return;
    }
    for p in PLATFORMS {
        assert_same(&n, &run_do(p, &[&py, "-S", "-c", code], &tmp()));
    }
}

#[test]
fn do_bad_input() {
    for p in PLATFORMS {
        let out = run_do(p, &["/no/such/binary"], &tmp());
        assert_one_line_error(&out);
        let out = run_do(p, &["no-such-command-in-path-xyz"], &tmp());
        assert_one_line_error(&out);
        let (mut c, _state) = runsc_lite("no-such-platform");
        c.args(["do", "/bin/true"]).stdin(Stdio::null());
        assert_one_line_error(&run_with_timeout(&mut c, timeout()));
    }
}

/// Timekeeping goes through our vDSO: a program reading the clocks in a
/// loop makes no clock_gettime/gettimeofday/time syscalls.
#[test]
fn timekeeping_does_not_trap() {
    let Some(py) = real_python() else {
        skip("timekeeping_does_not_trap", "python3 is not installed");
        return;
    };
    // The clock is calibrated by a Sentry thread ~20 ms after boot, which a
    // loaded machine can run late: read the clocks in rounds, and judge the
    // last, a second or more in.
    let code = r"import os, time
for _ in range(20):
    time.sleep(0.05)
    os.write(2, b'@@ round\n')
    for _ in range(1000):
        time.time(); time.monotonic(); time.perf_counter()
print('ok')
";
    for p in PLATFORMS {
        let (mut cmd, _root) = tests::runsc_lite(p);
        cmd.args(["--strace", "do", &py, "-S", "-c", code]).current_dir(tmp());
        let out = run_with_timeout(&mut cmd, tests::DEFAULT_TIMEOUT);
        assert_status(&out, 0);
        let last_round = out.stderr.rfind("@@ round\n").map(|i| &out.stderr[i..]);
        let Some(last_round) = last_round else { panic!("{p}: no round marker\n{}", out.describe()) };
        let traps = last_round
            .lines()
            .filter(|l| l.contains("clock_gettime(") || l.contains("gettimeofday(") || l.contains("] time("))
            .count();
        assert!(traps < 5, "{p}: {traps} time syscalls reached the Sentry:\n{}", out.describe());
    }
}

/// `--strace` decodes arguments as strace(1) does: mmap protections and
/// flags, open flags and modes, clone flags with the exit signal, and
/// errno names on failures.
#[test]
fn strace_decodes_flags_by_name() {
    let Some(bb) = need_busybox("strace_decodes_flags_by_name") else { return };
    let bb = bb.to_str().expect("utf-8 path");
    let created = format!("/tmp/{}", tests::unique("strace-out"));
    let missing = format!("/{}", tests::unique("strace-missing"));
    // dd's 1 MiB buffer is above malloc's mmap threshold: an anonymous mmap.
    let script = format!("echo hi > {created}; cat {missing}; dd if=/dev/zero of=/dev/null bs=1M count=1; true");
    for p in PLATFORMS {
        let (mut cmd, _root) = runsc_lite(p);
        cmd.args(["--strace", "do", bb, "sh", "-c", &script]).current_dir(tmp()).stdin(Stdio::null());
        let out = run_with_timeout(&mut cmd, timeout());
        assert_status(&out, 0);
        let err = &out.stderr;
        for want in [
            "PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)",
            &format!("openat(AT_FDCWD, \"{created}\", O_WRONLY|O_CREAT|O_TRUNC, 0666)"),
            &format!("\"{missing}\", O_RDONLY) = -1 ENOENT (No such file or directory)"),
            "openat(AT_FDCWD, \"/dev/zero\", O_RDONLY)",
            "write(1, \"hi\\n\", 3) = 3",
            "rt_sigaction(SIGCHLD, ",
        ] {
            assert!(err.contains(want), "{p}: no `{want}` in the strace output\n{}", out.describe());
        }
        let clones: Vec<&str> = err.lines().filter(|l| l.contains("] clone(")).collect();
        assert!(
            !clones.is_empty() && clones.iter().all(|l| l.contains("SIGCHLD, ")),
            "{p}: clone flags without the exit signal's name\n{}",
            out.describe()
        );
        // The prot argument is never left as a number.
        for call in ["] mmap(", "] mprotect("] {
            for line in err.lines().filter(|l| l.contains(call)) {
                let prot = line.split(call).nth(1).and_then(|args| args.split(", ").nth(2)).unwrap_or("");
                assert!(
                    prot.starts_with("PROT_"),
                    "{p}: undecoded protection `{prot}` in `{line}`\n{}",
                    out.describe()
                );
            }
        }
    }
}

/// `do` finds the executable in PATH but passes argv as typed: `$0` of a
/// shell is the name the user gave, as when a shell runs the command.
#[test]
fn do_keeps_argv_as_typed() {
    if !need_file("do_keeps_argv_as_typed", "/bin/bash") {
        return;
    }
    for p in PLATFORMS {
        assert_stdout(&run_do(p, &["bash", "-c", "echo $0"], &tmp()), "bash\n");
        assert_stdout(&run_do(p, &["cat", "/proc/self/cmdline"], &tmp()), "cat\0/proc/self/cmdline\0");
        assert_stdout(&run_do(p, &["/bin/bash", "-c", "echo $0"], &tmp()), "/bin/bash\n");
    }
}

/// iproute2's `ip`, or None (reported as skipped).
fn ip_binary(test: &str) -> Option<String> {
    let ip = tests::which("ip")
        .or_else(|| ["/usr/sbin/ip", "/sbin/ip", "/bin/ip"].iter().map(PathBuf::from).find(|p| p.is_file()));
    if ip.is_none() {
        skip(test, "ip (iproute2) is not installed");
    }
    ip.map(|p| p.to_string_lossy().into_owned())
}

/// The part of a native output a sandboxed one must equal.
type OutputFilter = fn(&str) -> String;

/// `ip` followed by `args`.
fn ip_argv<'a>(ip: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    std::iter::once(ip).chain(args.iter().copied()).collect()
}

/// The block of `ip addr`/`ip link` output about interface 1 (lo): its
/// "1: lo: ..." line and the indented lines after it.
fn lo_block(out: &str) -> String {
    let mut block = String::new();
    let mut inside = false;
    for line in out.lines() {
        if !line.starts_with(' ') {
            inside = line.starts_with("1: lo:");
        }
        if inside {
            block.push_str(line);
            block.push('\n');
        }
    }
    block
}

/// The lines of `ip route` output through lo.
fn lo_routes(out: &str) -> String {
    out.lines().filter(|l| l.contains(" dev lo ")).map(|l| format!("{l}\n")).collect()
}

/// `ip addr`, `ip link` and the route tables show lo as Linux has it (the
/// native lo, of the host's other interfaces); the main tables of a
/// sandbox with only lo are empty, as in a fresh network namespace.
#[test]
fn ip_shows_loopback() {
    let Some(ip) = ip_binary("ip_shows_loopback") else { return };
    let mut failures = String::new();
    let cases: [(&[&str], OutputFilter); 6] = [
        (&["addr"], lo_block),
        (&["link"], lo_block),
        (&["route", "show", "table", "all"], lo_routes),
        (&["-6", "route", "show", "table", "all"], lo_routes),
        (&["route", "get", "127.1.2.3"], |s| s.to_string()),
        (&["-6", "route", "get", "::1"], |s| s.to_string()),
    ];
    for (args, filter) in cases {
        let n = run_native(Path::new(&ip), args, &tmp());
        assert_status(&n, 0);
        for p in PLATFORMS {
            let s = run_do(p, &ip_argv(&ip, args), &tmp());
            assert_status(&s, 0);
            if filter(&n.stdout) != s.stdout {
                let _ = writeln!(failures, "### ip {args:?} on {p}\n{}", diff_lines(&filter(&n.stdout), &s.stdout));
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
    for p in PLATFORMS {
        let addr = run_do(p, &[&ip, "addr"], &tmp()).stdout;
        for want in
            ["1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536", "inet 127.0.0.1/8 scope host lo", "inet6 ::1/128 scope host"]
        {
            assert!(addr.contains(want), "{p}: no `{want}` in\n{addr}");
        }
        let routes = run_do(p, &[&ip, "route", "show", "table", "local"], &tmp()).stdout;
        assert!(routes.contains("local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1"), "{p}: {routes}");
        let routes6 = run_do(p, &[&ip, "-6", "route", "show", "table", "local"], &tmp()).stdout;
        assert!(routes6.contains("local ::1 dev lo proto kernel metric 0 pref medium"), "{p}: {routes6}");
        for main in [&["route"][..], &["-6", "route"][..]] {
            let out = run_do(p, &ip_argv(&ip, main), &tmp());
            assert_stdout(&out, "");
        }
    }
}

/// Python's socket.if_nameindex() (glibc's, over netlink) sees lo alone.
#[test]
fn python_if_nameindex_is_lo() {
    let Some(py) = real_python() else {
        skip("python_if_nameindex_is_lo", "python3 is not installed");
        return;
    };
    for p in PLATFORMS {
        let out = run_do(p, &[&py, "-S", "-c", "import socket; print(socket.if_nameindex())"], &tmp());
        assert_stdout(&out, "[(1, 'lo')]\n");
    }
}

/// The guest cannot change the sandbox's interfaces or routes: netlink
/// answers every change with EPERM (sandbox only: natively, as root, these
/// would succeed).
#[test]
fn ip_cannot_change_interfaces() {
    let Some(ip) = ip_binary("ip_cannot_change_interfaces") else { return };
    for p in PLATFORMS {
        for change in [
            &["addr", "add", "10.0.0.1/8", "dev", "lo"][..],
            &["addr", "del", "127.0.0.1/8", "dev", "lo"][..],
            &["link", "set", "lo", "mtu", "1400"][..],
            &["link", "set", "lo", "down"][..],
            &["route", "add", "10.0.0.0/8", "dev", "lo"][..],
            &["-6", "route", "del", "::1", "dev", "lo", "table", "local"][..],
        ] {
            let out = run_do(p, &ip_argv(&ip, change), &tmp());
            assert_status(&out, 2);
            assert!(
                out.stderr.contains("RTNETLINK answers: Operation not permitted"),
                "{p}: ip {change:?}\n{}",
                out.describe()
            );
        }
    }
}

/// python3 over unix sockets: a socketpair, a stream server in a thread,
/// a multiprocessing Manager (its own unix socket server, with a forked
/// client) and asyncio (a socketpair self-pipe, a unix server and client).
#[test]
fn python3_unix_sockets() {
    let Some(py) = real_python() else {
        skip("python3_unix_sockets", "python3 is not installed");
        return;
    };
    let code = r#"
import asyncio, os, socket, tempfile, threading
import multiprocessing as mp

a, b = socket.socketpair()
a.sendall(b"ping")
print("pair", b.recv(16))
b.sendall(b"pong" * 1000)
got = b""
while len(got) < 4000:
    got += a.recv(65536)
print("pair bulk", len(got))
a.close(); b.close()

d = tempfile.mkdtemp()
path = os.path.join(d, "srv")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
def serve():
    conn, _ = srv.accept()
    with conn:
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(100)
            if not chunk:
                break
            data += chunk
        conn.sendall(data.upper())
t = threading.Thread(target=serve)
t.start()
cl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
cl.connect(path)
print("peer", cl.getpeername() == path)
cl.sendall(b"hello unix\n")
resp = b""
while True:
    chunk = cl.recv(100)
    if not chunk:
        break
    resp += chunk
print("server", resp)
t.join(); cl.close(); srv.close(); os.unlink(path); os.rmdir(d)

def child(dct):
    dct["child"] = True
mp.set_start_method("fork")
with mp.Manager() as m:
    dct = m.dict()
    dct["parent"] = 1
    p = mp.Process(target=child, args=(dct,))
    p.start(); p.join()
    print("manager", sorted(dct.items()), p.exitcode)

async def echo(reader, writer):
    writer.write((await reader.readline()).upper())
    await writer.drain()
    writer.close()

async def main():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "aio")
    server = await asyncio.start_unix_server(echo, path)
    r, w = await asyncio.open_unix_connection(path)
    w.write(b"async hello\n")
    line = await r.readline()
    w.close()
    server.close()
    await server.wait_closed()
    os.unlink(path); os.rmdir(d)
    return line
print("asyncio", asyncio.run(main()))
"#;
    let n = run_native(Path::new(&py), &["-S", "-c", code], &tmp());
    if n.status != 0 {
        skip("python3_unix_sockets", &format!("python3 does not run natively here:\n{}", n.describe()));
        return;
    }
    for p in PLATFORMS {
        assert_same(&n, &run_do(p, &[&py, "-S", "-c", code], &tmp()));
    }
}

/// Loopback networking through python3: TCP on 127.0.0.1 and ::1 with a
/// server thread, UDP, `python3 -m http.server` answering urllib, and an
/// asyncio echo server and client exchanging 10,000 messages. Natively
/// this uses the host's loopback; in the sandbox only the Sentry's.
#[test]
fn python3_loopback_network() {
    let Some(py) = real_python() else {
        skip("python3_loopback_network", "python3 is not installed");
        return;
    };
    let code = r#"import asyncio, os, socket, subprocess, sys, tempfile, threading, time, urllib.request

def tcp_echo(fam, host):
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(5)
    port = srv.getsockname()[1]
    def serve():
        conn, _ = srv.accept()
        with conn:
            while True:
                d = conn.recv(65536)
                if not d:
                    break
                conn.sendall(d.upper())
    t = threading.Thread(target=serve)
    t.start()
    c = socket.create_connection((host, port))
    payload = b"hello " * 20000
    c.sendall(payload)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += d
    c.close()
    t.join()
    srv.close()
    print("tcp", host, len(got), got == payload.upper())

def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(100):
        c.sendto(b"msg%d" % i, s.getsockname())
    ok = True
    for i in range(100):
        d, a = s.recvfrom(100)
        ok = ok and d == b"msg%d" % i and a == ("127.0.0.1", c.getsockname()[1])
    s.sendto(b"pong", ("127.0.0.1", c.getsockname()[1]))
    print("udp", ok, c.recvfrom(100)[0])
    s.close()
    c.close()

def http():
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "hello.txt"), "w") as f:
        f.write("hello over http\n")
    p = socket.socket()
    p.bind(("127.0.0.1", 0))
    port = p.getsockname()[1]
    p.close()
    srv = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", d],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as r:
                    body = r.read().decode()
                    print("http /", r.status, "hello.txt" in body)
                break
            except OSError:
                time.sleep(0.1)
        with urllib.request.urlopen("http://127.0.0.1:%d/hello.txt" % port, timeout=10) as r:
            print("http file", r.status, r.read().decode().strip())
    finally:
        srv.terminate()
        srv.wait()
        os.unlink(os.path.join(d, "hello.txt"))
        os.rmdir(d)

async def aio():
    async def handle(r, w):
        while True:
            line = await r.readline()
            if not line:
                break
            w.write(line)
            await w.drain()
        w.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    total = 0
    for i in range(10000):
        w.write(b"m%d\n" % i)
        await w.drain()
        total += int((await r.readline())[1:])
    w.close()
    await w.wait_closed()
    server.close()
    await server.wait_closed()
    print("asyncio", total)

tcp_echo(socket.AF_INET, "127.0.0.1")
tcp_echo(socket.AF_INET6, "::1")
udp()
http()
asyncio.run(aio())
"#;
    let n = run_native(Path::new(&py), &["-c", code], &tmp());
    if n.status != 0 {
        skip("python3_loopback_network", &format!("python3 does not run natively here:\n{}", n.describe()));
        return;
    }
    assert!(n.stdout.contains("asyncio 49995000"), "native run is incomplete:\n{}", n.describe());
    for p in PLATFORMS {
        // The heaviest workload of this file (10,000 asyncio messages, a
        // server in a child process) took 64 s at load 22: three times the
        // usual limit, so a loaded machine is slow, not a failure.
        let (mut c, _state) = tests::runsc_lite(p);
        c.arg("do").args([py.as_str(), "-c", code]).current_dir(tmp()).stdin(Stdio::null());
        assert_same(&n, &tests::run_with_timeout(&mut c, tests::timeout() * 3));
    }
}

/// `ping` (iputils) inside the sandbox: it uses an ICMP echo socket
/// (SOCK_DGRAM, IPPROTO_ICMP / IPPROTO_ICMPV6), which the sandbox answers
/// itself. Sandbox only: natively ping needs the host's
/// net.ipv4.ping_group_range or a raw socket.
#[test]
fn ping_loopback() {
    let Some(ping) = tests::which("ping") else {
        skip("ping_loopback", "ping (iputils-ping) is not installed");
        return;
    };
    let ping = ping.to_string_lossy().to_string();
    for p in PLATFORMS {
        for addr in ["127.0.0.1", "::1"] {
            let out = run_do(p, &[&ping, "-c", "2", "-i", "0.2", addr], &tmp());
            assert_status(&out, 0);
            assert!(out.stdout.contains("2 packets transmitted, 2 received, 0% packet loss"), "{}", out.describe());
            assert!(out.stdout.contains(&format!("64 bytes from {addr}: icmp_seq=2")), "{}", out.describe());
        }
    }
}

// ---------------------------------------------------------------------------
// Terminals served by the Sentry (vfs/src/tty)

/// Python's `pty` module: a child on a new pty (forkpty: openpty, setsid,
/// TIOCSCTTY) whose output the parent reads from the master until EIO.
#[test]
fn python3_pty_module() {
    let Some(py) = real_python() else {
        skip("python3_pty_module", "python3 is not installed");
        return;
    };
    let code = r#"
import pty, os
pid, fd = pty.fork()
if pid == 0:
    os.execvp("sh", ["sh", "-c", "tty >/dev/null && echo istty; test -r /dev/tty && echo devtty; echo out"])
out = b""
while True:
    try:
        d = os.read(fd, 1024)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
print(repr(out), os.waitstatus_to_exitcode(st))
"#;
    compare_many(&[(&[&py, "-c", code], false)], &tmp());
}

/// util-linux's `script` runs a command on a pty of its own.
#[test]
fn script_runs_on_a_pty() {
    if tests::which("script").is_none() {
        skip("script_runs_on_a_pty", "script (util-linux) is not installed");
        return;
    }
    for p in PLATFORMS {
        let s = run_do(p, &["script", "-qc", "tty; stty size", "/dev/null"], &tmp());
        assert_status(&s, 0);
        assert!(s.stdout.starts_with("/dev/pts/"), "{}", s.describe());
        assert!(s.stdout.contains("0 0"), "{}", s.describe());
    }
}

/// asyncio's PidfdChildWatcher with ten children at once, five times over:
/// each child's pidfd joins and leaves the loop's epoll set while the
/// others wait in it. (Every pidfd shares one wait queue; removing one
/// interest used to take the epoll's every entry off it, and the loop
/// waited for ever for the remaining children.)
#[test]
fn python3_asyncio_pidfd_children() {
    let Some(py) = real_python() else {
        skip("python3_asyncio_pidfd_children", "python3 is not installed");
        return;
    };
    let code = r#"
import asyncio, sys
from asyncio import unix_events
async def get(i):
    proc = await asyncio.create_subprocess_exec(sys.executable, "-S", "-c", f"print('foo{i}')", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return out.decode().strip()
async def main():
    return await asyncio.gather(*[get(i) for i in range(10)])
for r in range(5):
    loop = asyncio.new_event_loop()
    w = unix_events.PidfdChildWatcher()
    w.attach_loop(loop)
    asyncio.set_child_watcher(w)
    asyncio.set_event_loop(loop)
    print(loop.run_until_complete(asyncio.wait_for(main(), 60)))
    loop.close()
"#;
    let n = run_native(Path::new(&py), &["-S", "-W", "ignore", "-c", code], &tmp());
    if n.status != 0 {
        skip("python3_asyncio_pidfd_children", &format!("python3 does not run natively here:\n{}", n.describe()));
        return;
    }
    for p in PLATFORMS {
        assert_same(&n, &run_do(p, &[&py, "-S", "-W", "ignore", "-c", code], &tmp()));
    }
}
