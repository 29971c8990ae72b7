//! Many sandboxes at once: 16 `runsc-lite` processes (both platforms,
//! `do` and `run`) started together on a 2-core machine, each doing real
//! work — busybox pipelines with checksums, a python TCP exchange over
//! the sandbox's loopback, a forking C guest — and every output checked
//! against the same work done natively. Nothing depends on timing: the
//! runs only have to finish, with the native output, within a generous
//! limit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tests::bundle::{config, Bundle};
use tests::{
    build_guest, have_gcc, need_busybox, run_native, run_with_timeout, runsc_lite, skip, which, Link, RunOutput,
    TempDir, PLATFORMS,
};

/// A busybox pipeline: sequences through sed, sort, md5sum, awk and wc.
const PIPELINE: &str = "busybox seq 1 30000 | busybox sed -e s/3/x/g | busybox sort -r | busybox md5sum; \
     busybox seq 1 20000 | busybox awk '{s+=$1} END {print s}'; \
     i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done | busybox wc -l";

/// One MiB through a loopback TCP connection, echoed back as its
/// sha256.
const PY_EXCHANGE: &str = r#"
import hashlib, socket, threading
data = bytes((i * 7 + 3) & 0xff for i in range(1 << 20))
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
def serve():
    c, _ = srv.accept()
    buf = bytearray()
    while len(buf) < len(data):
        b = c.recv(65536)
        if not b:
            break
        buf += b
    c.sendall(hashlib.sha256(buf).hexdigest().encode())
    c.close()
t = threading.Thread(target=serve)
t.start()
cl = socket.create_connection(srv.getsockname())
cl.sendall(data)
cl.shutdown(socket.SHUT_WR)
ans = b""
while True:
    b = cl.recv(100)
    if not b:
        break
    ans += b
t.join()
print(len(data), ans.decode(), hashlib.sha256(data).hexdigest() == ans.decode())
"#;

enum Job {
    /// `do` a command (argv) in a directory.
    Do(Vec<String>),
    /// `run` the test's bundle (its process is the busybox pipeline).
    Run,
}

fn limit() -> Duration {
    // 16 sandboxes on 2 loaded cores: far more than any of them needs.
    Duration::from_secs(600)
}

fn sh(bb: &Path, script: &str) -> Vec<String> {
    vec![bb.display().to_string(), "sh".into(), "-c".into(), script.into()]
}

#[test]
fn sixteen_sandboxes_at_once() {
    let Some(bb) = need_busybox("sixteen_sandboxes_at_once") else { return };
    let Some(python) = which("python3") else {
        skip("sixteen_sandboxes_at_once", "python3 is missing");
        return;
    };
    if let Err(e) = have_gcc() {
        skip("sixteen_sandboxes_at_once", &e);
        return;
    }
    let cwd = TempDir::new("sixteen");
    let fork_cow = build_guest("fork_cow", Link::Static);

    // Native runs give the expected outputs.
    let native = |argv: &[String]| -> RunOutput {
        let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        let out = run_native(Path::new(&argv[0]), &args, cwd.path());
        assert_eq!(out.status, 0, "native run failed\n{}", out.describe());
        out
    };
    let pipeline = sh(&bb, PIPELINE);
    let exchange = vec![python.display().to_string(), "-c".into(), PY_EXCHANGE.into()];
    let cow = vec![fork_cow.display().to_string()];
    let want_pipeline = native(&pipeline).stdout;
    let want_exchange = native(&exchange).stdout;
    let want_cow = native(&cow).stdout;
    assert!(want_exchange.ends_with(" True\n"), "{want_exchange}");

    // The bundle for `run`: busybox's pipeline in its rootfs.
    let bundle = Bundle::new(&bb);
    bundle.write_config(&config(&["/bin/busybox", "sh", "-c", PIPELINE]));

    let mut jobs: Vec<(String, Job, String)> = Vec::new();
    for (i, p) in PLATFORMS.iter().cycle().take(16).enumerate() {
        let (job, want) = match i / 2 % 4 {
            0 => (Job::Do(pipeline.clone()), want_pipeline.clone()),
            1 => (Job::Do(exchange.clone()), want_exchange.clone()),
            2 => (Job::Run, want_pipeline.clone()),
            _ => (Job::Do(cow.clone()), want_cow.clone()),
        };
        jobs.push((p.to_string(), job, want));
    }

    // All 16 at once, each from its own thread.
    let bundle_dir: PathBuf = bundle.path().to_path_buf();
    let outs: Vec<(String, RunOutput, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(p, job, want)| {
                let (cwd, bundle_dir) = (cwd.path(), bundle_dir.as_path());
                s.spawn(move || {
                    let (mut c, _state) = runsc_lite(p);
                    match job {
                        Job::Do(argv) => {
                            c.arg("do").args(argv).current_dir(cwd);
                        }
                        Job::Run => {
                            c.arg("run").arg("--bundle").arg(bundle_dir).arg(tests::unique("ctr"));
                            c.current_dir(std::env::temp_dir());
                        }
                    }
                    c.stdin(Stdio::null());
                    (p.clone(), run_with_timeout(&mut c, limit()), want.clone())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("runner thread")).collect()
    });

    let mut failures = Vec::new();
    for (i, (p, out, want)) in outs.iter().enumerate() {
        if out.timed_out || out.status != 0 || out.stdout != *want || out.stderr.contains("panicked") {
            failures.push(format!(
                "sandbox {i} ({p}): status {}, expected stdout:\n{want}\n{}",
                out.status,
                out.describe()
            ));
        }
    }
    assert!(failures.is_empty(), "{} of 16 sandboxes failed:\n{}", failures.len(), failures.join("\n"));
}
