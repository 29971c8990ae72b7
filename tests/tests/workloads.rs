//! Workloads through the CLI: host binaries under `runsc-lite do` (busybox
//! applets, coreutils, shell scripts), exit status passthrough, OCI bundles
//! (`run DIR`, `run --bundle DIR ID`) with mounts, users and a read-only
//! root, escape attempts out of a bundle's rootfs, and bad input.
//!
//! Every test runs on each platform of `tests::PLATFORMS`. Tests that need
//! /bin/busybox (Debian busybox-static) skip with a note when it is absent
//! (RUNSC_LITE_TEST_STRICT=1 makes that a failure).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tests::{
    assert_same, assert_status, assert_stdout, busybox, diff_lines, run_do, run_native, run_with_timeout, runsc_lite,
    skip, timeout, RunOutput, TempDir, PLATFORMS,
};

/// /bin/busybox, or None after printing a skip note.
fn need_busybox(test: &str) -> Option<PathBuf> {
    let b = busybox();
    if b.is_none() {
        skip(test, "/bin/busybox is missing (apt-get install busybox-static)");
    }
    b
}

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
    // Plain `stat /` (its Birth line may differ: no statx in Linux 4.4).
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

// ---------------------------------------------------------------------------
// OCI bundles

const MARKER: &str = "SECRET-MARKER-outside-the-rootfs";

/// A bundle directory: rootfs/ with busybox and applet symlinks, a marker
/// file next to rootfs/ (must never be readable from inside), config.json
/// written by `write_config`.
struct Bundle {
    dir: TempDir,
}

#[derive(Clone)]
struct Mount {
    dest: String,
    typ: String,
    source: String,
    options: Vec<String>,
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        dest: dest.into(),
        typ: typ.into(),
        source: source.into(),
        options: options.iter().map(|s| s.to_string()).collect(),
    }
}

#[derive(Clone)]
struct Config {
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    uid: u32,
    gid: u32,
    readonly: bool,
    hostname: String,
    mounts: Vec<Mount>,
}

fn config(args: &[&str]) -> Config {
    Config {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into(), "HOME=/".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        readonly: true,
        hostname: "testhost".into(),
        mounts: vec![mount("/proc", "proc", "proc", &[]), mount("/tmp", "tmpfs", "tmpfs", &["mode=1777"])],
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_list(v: &[String]) -> String {
    format!("[{}]", v.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(", "))
}

impl Config {
    /// config.json per the OCI runtime spec 1.0.
    fn to_json(&self) -> String {
        let mounts: Vec<String> = self
            .mounts
            .iter()
            .map(|m| {
                format!(
                    "    {{ \"destination\": {}, \"type\": {}, \"source\": {}, \"options\": {} }}",
                    json_str(&m.dest),
                    json_str(&m.typ),
                    json_str(&m.source),
                    json_list(&m.options)
                )
            })
            .collect();
        format!(
            "{{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {{\n    \"terminal\": false,\n    \"user\": {{ \"uid\": {}, \"gid\": {} }},\n    \"args\": {},\n    \"env\": {},\n    \"cwd\": {}\n  }},\n  \"root\": {{ \"path\": \"rootfs\", \"readonly\": {} }},\n  \"hostname\": {},\n  \"mounts\": [\n{}\n  ],\n  \"linux\": {{ \"namespaces\": [ {{ \"type\": \"pid\" }}, {{ \"type\": \"mount\" }}, {{ \"type\": \"uts\" }}, {{ \"type\": \"ipc\" }}, {{ \"type\": \"network\" }} ] }}\n}}\n",
            self.uid,
            self.gid,
            json_list(&self.args),
            json_list(&self.env),
            json_str(&self.cwd),
            self.readonly,
            json_str(&self.hostname),
            mounts.join(",\n")
        )
    }
}

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "id", "hostname", "touch", "mkdir", "readlink", "uname", "pwd", "test", "stat", "env",
    "rm", "true", "false",
];

impl Bundle {
    fn new(busybox: &Path) -> Bundle {
        let dir = TempDir::new("bundle");
        let root = dir.path().join("rootfs");
        for d in ["bin", "proc", "dev", "tmp", "etc", "mnt/rw", "mnt/ro", "home/user"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("symlink");
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
        )
        .expect("write");
        std::fs::write(root.join("etc/group"), "root:x:0:\nuser:x:1000:\n").expect("write");
        std::fs::write(root.join("etc/hostname"), "rootfs-hostname-file\n").expect("write");
        std::fs::write(dir.path().join("secret-marker"), format!("{MARKER}\n")).expect("write");
        Bundle { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    fn marker(&self) -> PathBuf {
        self.dir.path().join("secret-marker")
    }
    fn write_config(&self, c: &Config) {
        std::fs::write(self.path().join("config.json"), c.to_json()).expect("write config.json");
    }
    fn write_raw_config(&self, text: &str) {
        std::fs::write(self.path().join("config.json"), text).expect("write config.json");
    }
    /// `runsc-lite run DIR`
    fn run(&self, platform: &str) -> RunOutput {
        let (mut c, _state) = runsc_lite(platform);
        c.arg("run").arg(self.path()).stdin(Stdio::null()).current_dir(tmp());
        run_with_timeout(&mut c, timeout())
    }
    /// `runsc-lite run --bundle DIR ID`
    fn run_bundle_id(&self, platform: &str, id: &str) -> RunOutput {
        let (mut c, _state) = runsc_lite(platform);
        c.arg("run").arg("--bundle").arg(self.path()).arg(id).stdin(Stdio::null()).current_dir(tmp());
        run_with_timeout(&mut c, timeout())
    }
    /// Writes a config running `args` and runs it.
    fn run_args(&self, platform: &str, args: &[&str]) -> RunOutput {
        self.write_config(&config(args));
        self.run(platform)
    }
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

fn assert_no_panic(out: &RunOutput) {
    let e = out.stderr.to_lowercase();
    assert!(
        !e.contains("panicked") && !e.contains("backtrace") && !out.timed_out,
        "runsc-lite panicked or hung\n{}",
        out.describe()
    );
}

/// Non-zero exit, exactly one non-empty line on stderr, no panic.
#[track_caller]
fn assert_one_line_error(out: &RunOutput) {
    assert_no_panic(out);
    assert_ne!(out.status, 0, "expected a failure\n{}", out.describe());
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected a one-line error on stderr\n{}", out.describe());
    assert!(out.status < 128, "killed by a signal instead of exiting with an error\n{}", out.describe());
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
