//! Shared helpers for the integration tests: locating (or building) the
//! `runsc-lite` binary, compiling the C guest programs of `tests/guest/`,
//! running commands natively and under `runsc-lite` with a timeout, and
//! comparing the two runs.
//!
//! Environment knobs:
//! - `RUNSC_LITE_BIN`: use this binary instead of building the workspace's.
//! - `RUNSC_LITE_TEST_TIMEOUT`: seconds before a run is killed (default 60).
//! - `RUNSC_LITE_TEST_STRICT=1`: a missing prerequisite (gcc, busybox)
//!   fails the test instead of skipping it.
//! - `RUNSC_LITE_TEST_STRACE=1`: pass `--strace` to every sandboxed run
//!   (the strace lines go to stderr, which is printed on a mismatch).

pub mod bundle;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The platforms every sandboxed test runs on; a new one (kvm) added here
/// runs every conformance and workload test too.
pub const PLATFORMS: &[&str] = &["systrap", "ptrace"];

/// The network modes (`--network=`) the socket guests (`Guest::sockets`)
/// run under, each compared with the native run; every other guest runs
/// under the first only. `host` joins here once it is served.
pub const NETWORKS: &[&str] = &["none", "sandbox"];

/// Default time limit of one run (native or sandboxed).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Locations

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The cargo target directory: `CARGO_TARGET_DIR` when set, else the one
/// this test binary was built into (`<target>/debug/deps/<test>`), else
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        return if d.is_absolute() { d } else { workspace_root().join(d) };
    }
    if let Ok(exe) = std::env::current_exe() {
        // <target>/<profile>/deps/<exe>
        if let Some(t) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            if t.join("CACHEDIR.TAG").exists() {
                return t.to_path_buf();
            }
        }
    }
    workspace_root().join("target")
}

/// Directory of the C guest programs.
pub fn guest_src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guest")
}

/// Where compiled guest programs are cached.
pub fn guest_bin_dir() -> PathBuf {
    target_dir().join("guest-bin")
}

/// A fresh unique name part: pid, a counter and the time.
pub fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{tag}-{}-{n}-{t:x}", std::process::id())
}

/// A directory removed (recursively) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("runsc-lite-tests-{}", unique(tag)));
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Read-only directories inside (from tests) would stop remove_dir_all.
        make_writable(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn make_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::symlink_metadata(p) {
        if md.is_dir() {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Prerequisites

/// Looks a program up in PATH.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(prog)).find(|p| p.is_file())
}

/// Whether skipped prerequisites should fail instead (RUNSC_LITE_TEST_STRICT=1).
pub fn strict() -> bool {
    std::env::var("RUNSC_LITE_TEST_STRICT").map(|v| v == "1").unwrap_or(false)
}

/// Reports a missing prerequisite: in strict mode, panics; otherwise the
/// test passes, and a SKIPPED line goes straight to the terminal (written
/// to fd 2 directly: libtest captures `eprintln!`, and a skip nobody sees
/// is a test nobody runs).
pub fn skip(test: &str, why: &str) {
    use std::io::Write as _;
    if strict() {
        panic!("{test}: prerequisite missing (RUNSC_LITE_TEST_STRICT=1): {why}");
    }
    let line = format!("\nSKIPPED {test}: {why}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// /bin/busybox, or None after reporting the skip.
pub fn need_busybox(test: &str) -> Option<PathBuf> {
    let b = busybox();
    if b.is_none() {
        skip(test, "/bin/busybox is missing (apt-get install busybox-static)");
    }
    b
}

/// `gcc` plus a static libc, or why not.
pub fn have_gcc() -> Result<(), String> {
    static R: OnceLock<Result<(), String>> = OnceLock::new();
    R.get_or_init(|| {
        if which("gcc").is_none() {
            return Err("gcc not found in PATH (apt-get install gcc libc6-dev)".into());
        }
        Ok(())
    })
    .clone()
}

/// `/bin/busybox` (the Debian busybox-static package), if present.
pub fn busybox() -> Option<PathBuf> {
    let p = PathBuf::from("/bin/busybox");
    p.is_file().then_some(p)
}

/// Timeout of one run: RUNSC_LITE_TEST_TIMEOUT seconds, default 60.
pub fn timeout() -> Duration {
    std::env::var("RUNSC_LITE_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT)
}

// ---------------------------------------------------------------------------
// The runsc-lite binary

/// The `runsc-lite` binary: `RUNSC_LITE_BIN` when set, else built once per
/// test process with `cargo build -p runsc-lite` into the target directory.
/// Panics (failing the test) when the build fails.
pub fn runsc_lite_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(locate_or_build).clone().unwrap_or_else(|e| panic!("{e}"))
}

fn locate_or_build() -> Result<PathBuf, String> {
    if let Some(b) = std::env::var_os("RUNSC_LITE_BIN").filter(|b| !b.is_empty()) {
        let b = PathBuf::from(b);
        let b = if b.is_absolute() { b } else { std::env::current_dir().map_err(|e| e.to_string())?.join(b) };
        return if b.is_file() { Ok(b) } else { Err(format!("RUNSC_LITE_BIN={} is not a file", b.display())) };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = target_dir();
    let started = Instant::now();
    let out = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["build", "-p", "runsc-lite", "--target-dir"])
        .arg(&target)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {} build -p runsc-lite: {e}", Path::new(&cargo).display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "`cargo build -p runsc-lite` failed ({}); set RUNSC_LITE_BIN to test a prebuilt binary.\n{}",
            out.status,
            tail(&stderr, 60)
        ));
    }
    let bin = target.join("debug").join("runsc-lite");
    if !bin.is_file() {
        return Err(format!("cargo build succeeded but {} does not exist", bin.display()));
    }
    eprintln!("note: built {} in {:.1}s", bin.display(), started.elapsed().as_secs_f64());
    Ok(bin)
}

/// A `runsc-lite --platform=P --root=<fresh dir> [--strace]` command;
/// append the subcommand (`do ...`, `run ...`). The state directory lives
/// as long as the returned guard.
pub fn runsc_lite(platform: &str) -> (Command, TempDir) {
    let root = TempDir::new("state");
    let mut c = Command::new(runsc_lite_bin());
    c.arg(format!("--platform={platform}")).arg(format!("--root={}", root.path().display()));
    if std::env::var("RUNSC_LITE_TEST_STRACE").map(|v| v == "1").unwrap_or(false) {
        c.arg("--strace");
    }
    (c, root)
}

// ---------------------------------------------------------------------------
// Building guest programs

/// How a guest program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// `gcc -O1 -static`: no dynamic loader involved.
    Static,
    /// Default (dynamic, PIE) linking: exercises ld.so, file mmaps, mprotect.
    Dynamic,
}

impl Link {
    fn suffix(self) -> &'static str {
        match self {
            Link::Static => "static",
            Link::Dynamic => "dyn",
        }
    }
    fn flags(self) -> &'static [&'static str] {
        match self {
            Link::Static => &["-O1", "-static", "-pthread"],
            Link::Dynamic => &["-O1", "-pthread"],
        }
    }
}

fn mtime_nanos(p: &Path) -> u128 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Compiles `tests/guest/<source>.c` (cached under the target dir, rebuilt
/// when the source, a header in tests/guest/ or the flags change) and
/// returns the binary's path. Panics with gcc's output on failure.
pub fn build_guest(source: &str, link: Link) -> PathBuf {
    build_c(&guest_src_dir(), source, link)
}

/// Directory of the C programs that are not conformance guests: the
/// syscall fuzzer and the test helpers that run on the host.
pub fn fuzz_src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Compiles `tests/fuzz/<source>.c` as `build_guest` does.
pub fn build_fuzz_program(source: &str, link: Link) -> PathBuf {
    build_c(&fuzz_src_dir(), source, link)
}

/// Compiles `<dir>/<source>.c` (cached under the target dir, rebuilt when
/// the source, a header in `dir` or the flags change).
fn build_c(dir: &Path, source: &str, link: Link) -> PathBuf {
    // One lock per (source, link) so parallel tests compile different
    // programs concurrently but never the same one twice.
    type BuildLocks = Mutex<HashMap<(String, Link), Arc<Mutex<()>>>>;
    static LOCKS: OnceLock<BuildLocks> = OnceLock::new();
    let lock = {
        let mut m = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        m.entry((source.to_string(), link)).or_default().clone()
    };
    let _held = lock.lock().unwrap_or_else(|e| e.into_inner());

    let src = dir.join(format!("{source}.c"));
    assert!(src.is_file(), "C program {} does not exist", src.display());
    let out_dir = guest_bin_dir();
    std::fs::create_dir_all(&out_dir).unwrap_or_else(|e| panic!("create {}: {e}", out_dir.display()));
    let bin = out_dir.join(format!("{source}-{}", link.suffix()));
    let stamp = out_dir.join(format!("{source}-{}.stamp", link.suffix()));

    let mut key = format!("src={} flags={:?}", mtime_nanos(&src), link.flags());
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut headers: Vec<PathBuf> =
            rd.flatten().map(|e| e.path()).filter(|p| p.extension() == Some(OsStr::new("h"))).collect();
        headers.sort();
        for h in headers {
            let _ = write!(key, " {}={}", h.file_name().unwrap_or_default().to_string_lossy(), mtime_nanos(&h));
        }
    }
    if bin.is_file() && std::fs::read_to_string(&stamp).map(|s| s == key).unwrap_or(false) {
        return bin;
    }
    if let Err(e) = have_gcc() {
        panic!("cannot build C program {source}: {e}");
    }
    let tmp = out_dir.join(format!(".{source}-{}.{}", link.suffix(), unique("tmp")));
    let out = Command::new("gcc")
        .args(link.flags())
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running gcc: {e}"));
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        panic!(
            "gcc {} -o {} {} failed ({}):\n{}",
            link.flags().join(" "),
            bin.display(),
            src.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::rename(&tmp, &bin).unwrap_or_else(|e| panic!("rename to {}: {e}", bin.display()));
    std::fs::write(&stamp, &key).unwrap_or_else(|e| panic!("write {}: {e}", stamp.display()));
    bin
}

/// The names of all `tests/guest/*.c` programs, sorted.
pub fn guest_sources() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(guest_src_dir())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension() == Some(OsStr::new("c")))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Running

/// What one run produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// Shell-style status: the exit code, or 128+N when killed by signal N
    /// (-1 when it could not be determined, e.g. after a timeout).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// The command line, for messages.
    pub cmdline: String,
}

impl RunOutput {
    /// A multi-line description for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {}{}\nelapsed: {:.2}s\n--- stdout ---\n{}--- stderr ---\n{}",
            self.cmdline,
            self.status,
            if self.timed_out { " (TIMED OUT, killed)" } else { "" },
            self.elapsed.as_secs_f64(),
            ensure_nl(&tail(&self.stdout, 200)),
            ensure_nl(&tail(&self.stderr, 80)),
        )
    }
}

fn ensure_nl(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n(no newline at end)\n")
    }
}

/// The last `n` lines of `s` (with a note when some were cut).
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    if lines.len() <= n {
        return s.to_string();
    }
    format!("[... {} lines cut ...]\n{}\n", lines.len() - n, lines[lines.len() - n..].join("\n"))
}

fn cmdline_of(c: &Command) -> String {
    let mut s = shell_quote(&c.get_program().to_string_lossy());
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&shell_quote(&a.to_string_lossy()));
    }
    s
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./:,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Runs `cmd` to completion with stdin from /dev/null (unless the caller
/// set it), capturing stdout and stderr, killing its whole process group
/// after `limit`. Never hangs.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> RunOutput {
    let cmdline = cmdline_of(cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // Its own process group, so a timeout kills everything it started.
    cmd.process_group(0);
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!("spawning {cmdline}: {e}"),
    };
    let pid = child.id() as i32;
    let out_buf = Arc::new(Mutex::new(Vec::new()));
    let err_buf = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = [
        (child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>), out_buf.clone()),
        (child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>), err_buf.clone()),
    ]
    .into_iter()
    .filter_map(|(r, buf)| r.map(|r| (r, buf)))
    .map(|(mut r, buf)| {
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&chunk[..n]),
                }
            }
        })
    })
    .collect();

    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(_) => break None,
        }
        if start.elapsed() >= limit {
            timed_out = true;
            kill_group(pid);
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    // Whatever it left behind in its group (a stray stub) goes too, so the
    // pipes close and the readers finish.
    kill_group(pid);
    let reader_deadline = Instant::now() + Duration::from_secs(5);
    for r in readers {
        while !r.is_finished() && Instant::now() < reader_deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if r.is_finished() {
            let _ = r.join();
        }
    }
    let code = match status {
        Some(st) => match (st.code(), st.signal()) {
            (Some(c), _) => c,
            (None, Some(sig)) => 128 + sig,
            _ => -1,
        },
        None => -1,
    };
    let take =
        |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    RunOutput { status: code, stdout: take(&out_buf), stderr: take(&err_buf), timed_out, elapsed, cmdline }
}

fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the process group we
        // created for this child (process_group(0) made pgid == pid); it
        // touches no memory.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Runs `prog args...` natively in `cwd`, stdin /dev/null.
pub fn run_native(prog: &Path, args: &[&str], cwd: &Path) -> RunOutput {
    let mut c = Command::new(prog);
    c.args(args).current_dir(cwd).stdin(Stdio::null());
    run_with_timeout(&mut c, timeout())
}

/// Runs `runsc-lite --platform=P do prog args...` in `cwd`, stdin /dev/null.
pub fn run_sandboxed(platform: &str, prog: &Path, args: &[&str], cwd: &Path) -> RunOutput {
    let (mut c, _state) = runsc_lite(platform);
    c.arg("do").arg(prog).args(args).current_dir(cwd).stdin(Stdio::null());
    run_with_timeout(&mut c, timeout())
}

/// Runs `runsc-lite --platform=P --network=N do prog args...` in `cwd`,
/// stdin /dev/null.
pub fn run_sandboxed_net(platform: &str, network: &str, prog: &Path, args: &[&str], cwd: &Path) -> RunOutput {
    let (mut c, _state) = runsc_lite(platform);
    c.arg(format!("--network={network}")).arg("do").arg(prog).args(args).current_dir(cwd).stdin(Stdio::null());
    run_with_timeout(&mut c, timeout())
}

/// Runs `runsc-lite --platform=P do ARGS...` (ARGS[0] looked up in PATH by
/// runsc-lite) in `cwd`.
pub fn run_do(platform: &str, args: &[&str], cwd: &Path) -> RunOutput {
    let (mut c, _state) = runsc_lite(platform);
    c.arg("do").args(args).current_dir(cwd).stdin(Stdio::null());
    run_with_timeout(&mut c, timeout())
}

// ---------------------------------------------------------------------------
// Comparing

/// Replaces every line starting with one of `prefixes` by
/// `<prefix><masked>`.
pub fn apply_mask(text: &str, prefixes: &[&str]) -> String {
    if prefixes.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match prefixes.iter().find(|p| line.starts_with(*p)) {
            Some(p) => {
                out.push_str(p);
                out.push_str("<masked>");
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

/// A line diff of `a` (native) and `b` (sandbox), in unified style
/// without context limits: ` ` same, `-` only native, `+` only sandbox.
/// Runs of more than 3 equal lines are collapsed.
pub fn diff_lines(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    const MAX: usize = 3000;
    let mut out = String::new();
    if a.len() > MAX || b.len() > MAX {
        let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        let _ = writeln!(out, "(outputs too long for a full diff: {} vs {} lines)", a.len(), b.len());
        let _ = writeln!(out, "first difference at line {}:", first + 1);
        let _ = writeln!(out, "-{}", a.get(first).unwrap_or(&"<end of output>"));
        let _ = writeln!(out, "+{}", b.get(first).unwrap_or(&"<end of output>"));
        return out;
    }
    // LCS table.
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] { l[i + 1][j + 1] + 1 } else { l[i + 1][j].max(l[i][j + 1]) };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || l[i][j + 1] >= l[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    // Print changes with up to 3 lines of context.
    let changed: Vec<bool> = ops.iter().map(|(c, _)| *c != ' ').collect();
    let near = |k: usize| {
        let lo = k.saturating_sub(3);
        let hi = (k + 3).min(ops.len() - 1);
        (lo..=hi).any(|x| changed[x])
    };
    let mut skipped = 0;
    for (k, (c, line)) in ops.iter().enumerate() {
        if near(k) {
            if skipped > 0 {
                let _ = writeln!(out, "  [... {skipped} equal lines ...]");
                skipped = 0;
            }
            let _ = writeln!(out, "{c} {line}");
        } else {
            skipped += 1;
        }
    }
    if skipped > 0 {
        let _ = writeln!(out, "  [... {skipped} equal lines ...]");
    }
    out
}

// ---------------------------------------------------------------------------
// The guest program registry

/// One conformance program: `tests/guest/<source>.c` built with `link`.
#[derive(Clone, Copy, Debug)]
pub struct Guest {
    /// Test name (also the binary's cache name).
    pub name: &'static str,
    /// The C file's stem under tests/guest/.
    pub source: &'static str,
    pub link: Link,
    /// Exit status the native run must have (the sandbox must match native).
    pub status: i32,
    /// Whether stdout must end with a "done" line natively.
    pub ends_with_done: bool,
    /// Lines starting with these prefixes are masked in both outputs before
    /// comparing (for values that differ by design, like the kernel release).
    pub mask: &'static [&'static str],
    /// Exact lines the sandboxed stdout must contain (sandbox-only checks,
    /// e.g. "uname_release 4.4.0").
    pub sandbox_expect: &'static [&'static str],
    /// Whether the program uses sockets: it then runs under every mode of
    /// NETWORKS, not only the default.
    pub sockets: bool,
    /// Per network mode, more exact lines the sandboxed stdout must
    /// contain under that mode (where the modes differ by design).
    pub net_expect: &'static [(&'static str, &'static [&'static str])],
}

const fn g(name: &'static str, source: &'static str, link: Link) -> Guest {
    Guest {
        name,
        source,
        link,
        status: 0,
        ends_with_done: true,
        mask: &[],
        sandbox_expect: &[],
        sockets: false,
        net_expect: &[],
    }
}

/// A static program that uses sockets (runs under every mode of
/// NETWORKS; its dynamic twin, if any, under the default only).
const fn sock(name: &'static str) -> Guest {
    Guest { sockets: true, ..g(name, name, Link::Static) }
}

const fn exits(name: &'static str, status: i32) -> Guest {
    Guest { status, ends_with_done: false, ..g(name, name, Link::Static) }
}

impl Guest {
    /// The network modes its sandboxed runs use.
    pub fn networks(&self) -> &'static [&'static str] {
        if self.sockets {
            NETWORKS
        } else {
            &NETWORKS[..1]
        }
    }

    /// The lines the sandboxed stdout must contain under `network`.
    pub fn expected_lines(&self, network: &str) -> Vec<&'static str> {
        let per_mode = self.net_expect.iter().filter(|(n, _)| *n == network).flat_map(|(_, l)| l.iter());
        self.sandbox_expect.iter().chain(per_mode).copied().collect()
    }
}

const PROC_INFO_MASK: &[&str] = &["uname_release "];
const PROC_INFO_EXPECT: &[&str] = &["uname_release 4.4.0", "uname_sysname Linux", "uname_machine x86_64"];

/// Non-loopback destinations: unreachable without eth0; with it, the
/// broker refuses a TCP destination without an --allow-host rule, and a
/// UDP one as a port unreachable would, later (checked in the sandbox
/// only: natively inet_opts sends nothing off the host).
const INET_FOREIGN_EXPECT: &[(&str, &[&str])] = &[
    (
        "none",
        &[
            "foreign connect err ENETUNREACH",
            "foreign sendto err ENETUNREACH",
            "foreign connect6 err ENETUNREACH",
            "foreign udp connect err ENETUNREACH",
        ],
    ),
    (
        "sandbox",
        &[
            "foreign connect err ECONNREFUSED",
            "foreign sendto ok",
            "foreign connect6 err ECONNREFUSED",
            "foreign udp connect ok",
        ],
    ),
];

/// Every conformance program. `tests/conformance.rs` has one #[test] per
/// entry; `tests/guest_native.rs` checks each natively.
pub const GUESTS: &[Guest] = &[
    g("fileio", "fileio", Link::Static),
    g("fileio_dyn", "fileio", Link::Dynamic),
    g("stat", "stat", Link::Static),
    g("dirs", "dirs", Link::Static),
    g("dirs_dyn", "dirs", Link::Dynamic),
    g("mm", "mm", Link::Static),
    g("mm_dyn", "mm", Link::Dynamic),
    g("mm_segv", "mm_segv", Link::Static),
    g("mm_shared_file", "mm_shared_file", Link::Static),
    Guest { mask: PROC_INFO_MASK, sandbox_expect: PROC_INFO_EXPECT, ..g("proc_info", "proc_info", Link::Static) },
    Guest { mask: PROC_INFO_MASK, sandbox_expect: PROC_INFO_EXPECT, ..g("proc_info_dyn", "proc_info", Link::Dynamic) },
    g("pipes", "pipes", Link::Static),
    g("pipe_shared", "pipe_shared", Link::Static),
    sock("socket_badinput"),
    sock("unix_stream"),
    sock("unix_dgram"),
    sock("unix_seqpacket"),
    sock("unix_scm"),
    sock("unix_errors"),
    g("devfiles", "devfiles", Link::Static),
    g("stdio", "stdio", Link::Static),
    g("badptr", "badptr", Link::Static),
    g("stub_attacks", "stub_attacks", Link::Static),
    g("jobctl", "jobctl", Link::Static),
    g("rusage", "rusage", Link::Static),
    g("robust", "robust", Link::Static),
    g("vdso", "vdso", Link::Static),
    g("poll_wake", "poll_wake", Link::Static),
    g("vdso_dyn", "vdso", Link::Dynamic),
    sock("netlink_route"),
    sock("ifaces"),
    g("ifaces_dyn", "ifaces", Link::Dynamic),
    sock("ifaces_inet"),
    g("execve", "execve", Link::Static),
    g("signals_basic", "signals_basic", Link::Static),
    g("timers", "timers", Link::Static),
    g("events", "events", Link::Static),
    g("signalfd", "signalfd", Link::Static),
    sock("inet_tcp"),
    sock("inet_tcp6"),
    sock("inet_udp"),
    Guest { mask: &["foreign "], net_expect: INET_FOREIGN_EXPECT, ..sock("inet_opts") },
    g("fork_wait", "fork_wait", Link::Static),
    g("fork_cow", "fork_cow", Link::Static),
    g("exit_pages_zero", "exit_pages_zero", Link::Static),
    g("threads", "threads", Link::Static),
    g("threads_dyn", "threads", Link::Dynamic),
    Guest { status: 7, ..g("threads_stress", "threads_stress", Link::Static) },
    exits("exit3", 3),
    exits("exit42", 42),
    exits("exit_group", 0x34),
    exits("abort", 134),
    exits("segv_default", 139),
    g("rlimits", "rlimits", Link::Static),
    sock("timeouts_huge"),
    g("epoll_nest", "epoll_nest", Link::Static),
    g("fdinfo_blocked", "fdinfo_blocked", Link::Static),
    g("rename_cwd", "rename_cwd", Link::Static),
    g("sentry_panic", "sentry_panic", Link::Static),
    g("guest_extremes", "guest_extremes", Link::Static),
    g("fuzz_found", "fuzz_found", Link::Static),
    g("inotify", "inotify", Link::Static),
    // The watch and instance limits are the sandbox's own (per user on
    // the host, where other processes hold instances too).
    Guest {
        mask: &["watch_limit ", "instance_limit "],
        sandbox_expect: &["watch_limit 8192 ENOSPC", "instance_limit 128 EMFILE"],
        ..g("inotify_errors", "inotify_errors", Link::Static)
    },
    g("statx", "statx", Link::Static),
    g("splice", "splice", Link::Static),
    g("copy_range", "copy_range", Link::Static),
    g("rw2", "rw2", Link::Static),
    g("memfd", "memfd", Link::Static),
    g("openat2", "openat2", Link::Static),
    // Newer process calls (issue 13).
    g("clone3", "clone3", Link::Static),
    g("close_range", "close_range", Link::Static),
    g("pidfd", "pidfd", Link::Static),
    g("execveat", "execveat", Link::Static),
    g("faccessat2", "faccessat2", Link::Static),
    g("epoll_pwait2", "epoll_pwait2", Link::Static),
    g("rseq", "rseq", Link::Static),
    g("membarrier", "membarrier", Link::Static),
    g("clone3_dyn", "clone3", Link::Dynamic),
    g("close_range_dyn", "close_range", Link::Dynamic),
    g("rseq_dyn", "rseq", Link::Dynamic),
    Guest { mask: XATTR_MASK, sandbox_expect: XATTR_EXPECT, ..g("xattr", "xattr", Link::Static) },
    g("overlay_ops", "overlay_ops", Link::Static),
    g("sched", "sched", Link::Static),
    g("futex_pi", "futex_pi", Link::Static),
    g("madvise", "madvise", Link::Static),
    g("locks_flock", "locks_flock", Link::Static),
    g("locks_posix", "locks_posix", Link::Static),
    g("locks_ofd", "locks_ofd", Link::Static),
    g("pipe_size", "pipe_size", Link::Static),
    g("proc_state", "proc_state", Link::Static),
    g("kill_perm", "kill_perm", Link::Static),
    g("kmsg", "kmsg", Link::Static),
    g("pty", "pty", Link::Dynamic),
    g("mm_lazy", "mm_lazy", Link::Static),
    g("sched_affinity", "sched_affinity", Link::Static),
    sock("udplite"),
    sock("inet_cmsg_send"),
    g("cpu_clocks", "cpu_clocks", Link::Static),
    g("signal_kill_self", "signal_kill_self", Link::Static),
    g("pipe_reopen", "pipe_reopen", Link::Static),
    // Patched syscall sites (systrap): dynamic, so that libc's sites are in
    // reach of the trampolines.
    g("syscall_patch", "syscall_patch", Link::Dynamic),
    g("patch_attacks", "patch_attacks", Link::Dynamic),
    // Static: libc's sites jump to the low copy of the slots.
    g("syscall_patch_static", "syscall_patch", Link::Static),
    g("patch_attacks_static", "patch_attacks", Link::Static),
    g("patch_low_window", "patch_low_window", Link::Static),
    g("read_efault", "read_efault", Link::Static),
    g("dnotify", "dnotify", Link::Static),
    g("tcp_buffers", "tcp_buffers", Link::Static),
    g("fork_snapshot", "fork_snapshot", Link::Static),
    g("epoll_shared_queue", "epoll_shared_queue", Link::Static),
];

/// trusted.* needs CAP_SYS_ADMIN in the initial user namespace: the
/// native run (real root) has it, the sandbox's root never does.
const XATTR_MASK: &[&str] = &["trusted_set ", "trusted_get ", "trusted_remove "];
const XATTR_EXPECT: &[&str] = &["trusted_set err EPERM", "trusted_get err ENODATA", "trusted_remove err EPERM"];

/// Programs of tests/guest/ with no native twin: each runs under
/// `--network=MODE` on every platform, and its stdout must be
/// tests/guest/NAME.expected (and its status 0).
pub const EXPECTED_GUESTS: &[(&str, &str)] = &[("inet_eth0", "sandbox")];

/// The registry entry called `name`.
pub fn guest(name: &str) -> Guest {
    *GUESTS.iter().find(|g| g.name == name).unwrap_or_else(|| panic!("no guest program called {name:?} in GUESTS"))
}

/// Checks a native run of `g` against its registry entry (status, "done").
pub fn check_native_sanity(g: &Guest, out: &RunOutput) -> Result<(), String> {
    let mut problems = Vec::new();
    if out.timed_out {
        problems.push("timed out".to_string());
    }
    if out.status != g.status {
        problems.push(format!("exit status {} (expected {})", out.status, g.status));
    }
    if g.ends_with_done && !out.stdout.ends_with("done\n") {
        problems.push("stdout does not end with a \"done\" line".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("native run of {}: {}\n{}", g.name, problems.join("; "), out.describe()))
    }
}

/// Compares a native and a sandboxed (`--network=network`) run of `g`:
/// status and masked stdout must be equal, and the expected lines
/// present. Returns the report on mismatch.
pub fn compare_runs(
    g: &Guest,
    platform: &str,
    network: &str,
    native: &RunOutput,
    sandbox: &RunOutput,
) -> Result<(), String> {
    let n = apply_mask(&native.stdout, g.mask);
    let s = apply_mask(&sandbox.stdout, g.mask);
    let mut problems = Vec::new();
    if sandbox.timed_out {
        problems.push(format!("the sandboxed run timed out after {:.0}s", sandbox.elapsed.as_secs_f64()));
    }
    if native.status != sandbox.status {
        problems.push(format!("exit status differs: native {} vs sandbox {}", native.status, sandbox.status));
    }
    if n != s {
        problems.push("stdout differs".to_string());
    }
    let sandbox_lines: Vec<&str> = sandbox.stdout.lines().collect();
    for want in g.expected_lines(network) {
        if !sandbox_lines.contains(&want) {
            problems.push(format!("sandbox stdout lacks the line {want:?}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut r = String::new();
    let _ = writeln!(r, "conformance {} on platform {platform}, --network={network}: {}", g.name, problems.join("; "));
    if n != s {
        let _ = writeln!(r, "=== diff (- native, + sandbox) ===\n{}", diff_lines(&n, &s));
    }
    let _ = writeln!(r, "=== native ===\n{}", native.describe());
    let _ = writeln!(r, "=== sandbox ({platform}, --network={network}) ===\n{}", sandbox.describe());
    Err(r)
}

/// Build guest `g` and run it natively (sanity-checked): the binary, the
/// directory it ran in and its output; None (skipped, with a note) when
/// gcc is missing.
fn native_run(name: &str, g: &Guest) -> Option<(PathBuf, PathBuf, RunOutput)> {
    if let Err(e) = have_gcc() {
        skip(name, &e);
        return None;
    }
    let bin = build_guest(g.source, g.link);
    let cwd = std::env::temp_dir();
    let native = run_native(&bin, &[], &cwd);
    if let Err(e) = check_native_sanity(g, &native) {
        panic!("{e}");
    }
    Some((bin, cwd, native))
}

/// The whole conformance check of one program: build, run natively (and
/// sanity-check), then under every platform of PLATFORMS and every network
/// mode of `g.networks()`, and compare.
/// Skips (with a note) when gcc is missing.
pub fn check_conformance(name: &str) {
    let g = guest(name);
    let Some((bin, cwd, native)) = native_run(name, &g) else { return };
    // The network modes run side by side (each its own sandbox, so they
    // share nothing), the platforms of one mode in turn: a socket guest's
    // waits (poll timeouts) add up once per platform, not once per mode.
    let failures: Vec<String> = std::thread::scope(|s| {
        let modes: Vec<_> = g
            .networks()
            .iter()
            .map(|network| {
                let (g, bin, cwd, native) = (&g, &bin, &cwd, &native);
                s.spawn(move || {
                    PLATFORMS
                        .iter()
                        .filter_map(|platform| {
                            let sandbox = run_sandboxed_net(platform, network, bin, &[], cwd);
                            compare_runs(g, platform, network, native, &sandbox).err()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        modes.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    if !failures.is_empty() {
        panic!("{}", failures.join("\n"));
    }
}

/// The check of a program of EXPECTED_GUESTS: under its network mode on
/// every platform, status 0 and exactly the stdout of NAME.expected.
pub fn check_expected(name: &str) {
    let Some(&(_, network)) = EXPECTED_GUESTS.iter().find(|(n, _)| *n == name) else {
        panic!("no program called {name:?} in EXPECTED_GUESTS");
    };
    if let Err(e) = have_gcc() {
        skip(name, &e);
        return;
    }
    let path = guest_src_dir().join(format!("{name}.expected"));
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bin = build_guest(name, Link::Static);
    let mut failures = Vec::new();
    for platform in PLATFORMS {
        let out = run_sandboxed_net(platform, network, &bin, &[], &std::env::temp_dir());
        if out.status != 0 || out.stdout != want || out.timed_out {
            failures.push(format!(
                "{name} on platform {platform}, --network={network}: status {}\n=== diff (- {}, + got) ===\n{}\n{}",
                out.status,
                path.display(),
                diff_lines(&want, &out.stdout),
                out.describe()
            ));
        }
    }
    if !failures.is_empty() {
        panic!("{}", failures.join("\n"));
    }
}

/// As [`check_conformance`], with the sandbox in network mode `network`
/// (`sandbox`, `host`): the socket programs behave as natively whatever
/// carries their sockets. The registry's sandbox-only expectations are
/// for the default mode and not checked here; `mask` (when not empty)
/// replaces the registry's masked prefixes.
pub fn check_conformance_network(name: &str, network: &str, mask: &'static [&'static str]) {
    let mut g = Guest { sandbox_expect: &[], ..guest(name) };
    if !mask.is_empty() {
        g.mask = mask;
    }
    let Some((bin, cwd, native)) = native_run(name, &g) else { return };
    let mut failures = Vec::new();
    for platform in PLATFORMS {
        let (mut c, _state) = runsc_lite(platform);
        c.arg(format!("--network={network}")).arg("do").arg(&bin).current_dir(&cwd).stdin(Stdio::null());
        let sandbox = run_with_timeout(&mut c, timeout());
        if let Err(report) = compare_runs(&g, platform, network, &native, &sandbox) {
            failures.push(report);
        }
    }
    if !failures.is_empty() {
        panic!("{}", failures.join("\n"));
    }
}

// ---------------------------------------------------------------------------
// Assertions for workload tests

/// Panics with the full run description unless `out` has `status`.
#[track_caller]
pub fn assert_status(out: &RunOutput, status: i32) {
    assert!(!out.timed_out, "timed out\n{}", out.describe());
    assert_eq!(out.status, status, "unexpected exit status\n{}", out.describe());
}

/// Panics unless `out` exited 0 with exactly `stdout`.
#[track_caller]
pub fn assert_stdout(out: &RunOutput, stdout: &str) {
    assert_status(out, 0);
    if out.stdout != stdout {
        panic!(
            "stdout differs from the expected\n=== diff (- expected, + got) ===\n{}\n{}",
            diff_lines(stdout, &out.stdout),
            out.describe()
        );
    }
}

/// Panics unless the native and the sandboxed runs have the same status and
/// stdout.
#[track_caller]
pub fn assert_same(native: &RunOutput, sandbox: &RunOutput) {
    if native.status != sandbox.status || native.stdout != sandbox.stdout || sandbox.timed_out {
        panic!(
            "native and sandbox differ (status {} vs {})\n=== diff (- native, + sandbox) ===\n{}\n=== native ===\n{}\n=== sandbox ===\n{}",
            native.status,
            sandbox.status,
            diff_lines(&native.stdout, &sandbox.stdout),
            native.describe(),
            sandbox.describe()
        );
    }
}

/// No panic message, no backtrace, no timeout.
#[track_caller]
pub fn assert_no_panic(out: &RunOutput) {
    let e = out.stderr.to_lowercase();
    assert!(
        !e.contains("panicked") && !e.contains("backtrace") && !out.timed_out,
        "runsc-lite panicked or hung\n{}",
        out.describe()
    );
}

/// Non-zero exit, exactly one non-empty line on stderr, no panic.
#[track_caller]
pub fn assert_one_line_error(out: &RunOutput) {
    assert_no_panic(out);
    assert_ne!(out.status, 0, "expected a failure\n{}", out.describe());
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected a one-line error on stderr\n{}", out.describe());
    assert!(out.status < 128, "killed by a signal instead of exiting with an error\n{}", out.describe());
}

/// The parent of host process `pid`, from /proc.
pub fn host_ppid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every live host process whose ancestry leads to `pid` (not `pid`
/// itself): runsc-lite's Sentry, its helpers and the stubs beneath them.
pub fn host_descendants(pid: i32) -> Vec<i32> {
    let all: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter_map(|p| Some((p, host_ppid(p)?)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (c, pp) in &all {
            if *pp == p && !out.contains(c) {
                out.push(*c);
                frontier.push(*c);
            }
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn mask_replaces_prefixed_lines() {
        let t = "a 1\nuname_release 6.1\nb 2\n";
        assert_eq!(apply_mask(t, &["uname_release "]), "a 1\nuname_release <masked>\nb 2\n");
        assert_eq!(apply_mask(t, &[]), t);
    }

    #[test]
    fn diff_shows_changes() {
        let d = diff_lines("a\nb\nc\n", "a\nx\nc\n");
        assert!(d.contains("- b") && d.contains("+ x") && d.contains("  a"), "{d}");
        assert_eq!(diff_lines("a\n", "a\n").lines().filter(|l| l.starts_with(['+', '-'])).count(), 0);
    }

    #[test]
    fn timeout_kills_and_reports() {
        // The shell has to reach its echo before the limit, which a loaded
        // machine can delay: the limit grows until it does.
        let mut limit = Duration::from_millis(300);
        let out = loop {
            let mut c = Command::new("sh");
            c.args(["-c", "echo started; sleep 30"]).stdin(Stdio::null());
            let out = run_with_timeout(&mut c, limit);
            assert!(out.timed_out);
            // Well short of the 30 s the command would take by itself.
            assert!(out.elapsed < Duration::from_secs(25), "{}", out.describe());
            if !out.stdout.is_empty() || limit >= Duration::from_secs(5) {
                break out;
            }
            limit *= 2;
        };
        assert_eq!(out.stdout, "started\n");
    }

    #[test]
    fn signal_status_is_128_plus_n() {
        let mut c = Command::new("sh");
        c.args(["-c", "kill -9 $$"]).stdin(Stdio::null());
        assert_eq!(run_with_timeout(&mut c, Duration::from_secs(10)).status, 137);
        let mut c = Command::new("sh");
        c.args(["-c", "exit 7"]).stdin(Stdio::null());
        assert_eq!(run_with_timeout(&mut c, Duration::from_secs(10)).status, 7);
    }

    #[test]
    fn every_guest_source_is_registered() {
        for s in guest_sources() {
            assert!(
                GUESTS.iter().any(|g| g.source == s) || EXPECTED_GUESTS.iter().any(|(n, _)| *n == s),
                "tests/guest/{s}.c is in neither GUESTS nor EXPECTED_GUESTS"
            );
        }
        for (n, _) in EXPECTED_GUESTS {
            assert!(guest_src_dir().join(format!("{n}.expected")).is_file(), "{n}: no {n}.expected");
        }
        for g in GUESTS {
            assert!(guest_src_dir().join(format!("{}.c", g.source)).is_file(), "{}: no source {}.c", g.name, g.source);
        }
    }
}
