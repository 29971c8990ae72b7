//! The process `create` leaves behind: one per container, outside the
//! Sentry and unconfined. It holds the state directory's lock for the
//! container's life, starts the Sentry in its namespaces (its child),
//! listens on `<root>/<id>/control.sock` for the other commands and
//! relays them to the Sentry over a socketpair, and exits with the
//! guest's status when the Sentry ends: its pid is the one the pid file
//! and `state` give, the process containerd's shim waits for.

use super::wire;
use crate::boot::SandboxConfig;
use crate::cli::GlobalFlags;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What `create` asked for.
pub struct Request {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub annotations: Value,
    pub rootfs: PathBuf,
}

struct Shared {
    id: String,
    state: crate::state::ContainerState,
    /// The state.json of `created`, updated on each transition.
    base: Mutex<Value>,
    status: Mutex<(Status, Option<i32>)>,
    stopped: Condvar,
    sentry_pid: i32,
    to_sentry: OwnedFd,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, mpsc::Sender<Value>>>,
    /// `wait` clients not yet answered: the supervisor answers them before
    /// it exits.
    waiters: std::sync::atomic::AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn set_status(&self, s: Status, exit: Option<i32>) {
        *lock(&self.status) = (s, exit);
        let mut v = lock(&self.base).clone();
        v["status"] = json!(s.name());
        if s == Status::Stopped {
            v["pid"] = json!(0);
            v["exitStatus"] = json!(exit.unwrap_or(0));
        }
        if let Err(e) = self.state.write_value(&v) {
            tracing::warn!("{e}");
        }
        if s == Status::Stopped {
            self.stopped.notify_all();
        }
    }

    fn status(&self) -> Status {
        lock(&self.status).0
    }

    /// Send a request to the Sentry; answers arrive on the receiver.
    fn ask(&self, mut msg: Value, fds: &[RawFd]) -> Result<mpsc::Receiver<Value>, String> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        msg["id"] = json!(n);
        let (tx, rx) = mpsc::channel();
        lock(&self.pending).insert(n, tx);
        if let Err(e) = wire::send(self.to_sentry.as_raw_fd(), &msg, fds) {
            lock(&self.pending).remove(&n);
            return Err(e);
        }
        Ok(rx)
    }

    /// One request, one answer.
    fn call(&self, msg: Value) -> Value {
        match self.ask(msg, &[]).and_then(|rx| rx.recv().map_err(|_| "container not running".to_string())) {
            Ok(v) => v,
            Err(e) => json!({ "error": e }),
        }
    }
}

fn now_rfc3339() -> String {
    crate::logging::rfc3339(std::time::SystemTime::now())
}

/// The supervisor's body (in the child `create` forked); `ready` gets
/// "ok" once the container is created, or the error. Never returns.
pub fn main(g: &GlobalFlags, req: Request, cfg: SandboxConfig, ready: OwnedFd) -> ! {
    // Once the directory is claimed, a failure removes it again.
    let claimed: std::cell::RefCell<Option<PathBuf>> = std::cell::RefCell::new(None);
    let fail = |e: String| -> ! {
        if let Some(dir) = claimed.borrow().as_ref() {
            let _ = crate::state::remove(dir);
        }
        // One line: the Sentry (and the broker) may hold copies of this
        // pipe, so the reader stops at the newline, not at EOF.
        let line = format!("{}\n", e.replace('\n', " "));
        let _ = write_all(ready.as_raw_fd(), line.as_bytes());
        std::process::exit(1)
    };
    // SAFETY: no arguments; leaves the caller's session and process group
    // so that its terminal's signals do not reach the container.
    unsafe { libc::setsid() };
    let state = match crate::state::ContainerState::create(&g.root, &req.id) {
        Ok(s) => s,
        Err(e) => fail(e),
    };
    *claimed.borrow_mut() = Some(state.dir().to_path_buf());
    let (sup_end, sentry_end) = match wire::socketpair() {
        Ok(p) => p,
        Err(e) => fail(e),
    };
    if cfg.console.is_some() {
        // With a terminal, init's stdio is the console: the Sentry must not
        // hold create's own stdout and stderr either, since a caller that
        // reads them to their end (go-runc does, for containerd's shim)
        // would wait for as long as the container runs.
        detach_stdio();
    }
    let spawned = match crate::sandbox::spawn(g, cfg, Some(sentry_end)) {
        Ok(s) => s,
        Err(e) => fail(e),
    };
    match wire::recv(sup_end.as_raw_fd()) {
        Ok(Some((v, _))) if v.get("ready").is_some() => {}
        Ok(Some((v, _))) => {
            let e = v.get("error").and_then(Value::as_str).unwrap_or("the Sentry failed to boot").to_string();
            fail(e)
        }
        Ok(None) => {
            let code = spawned.wait(g).unwrap_or(1);
            fail(format!("the Sentry exited during boot (status {code})"))
        }
        Err(e) => fail(e),
    }
    let bundle = req.bundle.canonicalize().unwrap_or(req.bundle.clone());
    let rootfs = req.rootfs.canonicalize().unwrap_or(req.rootfs.clone());
    let base = json!({
        "ociVersion": "1.0.2",
        "id": req.id,
        "pid": std::process::id(),
        "status": "created",
        "bundle": bundle.to_string_lossy(),
        "rootfs": rootfs.to_string_lossy(),
        "created": now_rfc3339(),
        "owner": "",
        "annotations": req.annotations,
        "lifecycle": true,
    });
    let sentry_pid = spawned.pid;
    let shared = Arc::new(Shared {
        id: req.id.clone(),
        state,
        base: Mutex::new(base),
        status: Mutex::new((Status::Created, None)),
        stopped: Condvar::new(),
        sentry_pid,
        to_sentry: sup_end,
        next_id: AtomicU64::new(1),
        pending: Mutex::new(HashMap::new()),
        waiters: std::sync::atomic::AtomicUsize::new(0),
    });
    shared.set_status(Status::Created, None);
    let sock_path = shared.state.dir().join(crate::state::CONTROL_SOCKET);
    let listener = match wire::listen(&sock_path) {
        Ok(l) => l,
        Err(e) => {
            // SAFETY: kills our own child.
            unsafe { libc::kill(sentry_pid, libc::SIGKILL) };
            fail(e)
        }
    };
    if let Some(p) = &req.pid_file {
        if let Err(e) = super::write_pid_file(p, std::process::id() as i32) {
            // SAFETY: kills our own child.
            unsafe { libc::kill(sentry_pid, libc::SIGKILL) };
            fail(e)
        }
    }
    // Only the Sentry keeps the caller's stdio (the container's).
    detach_stdio();
    let _ = write_all(ready.as_raw_fd(), b"ok\n");
    drop(ready);

    let reader = shared.clone();
    let _ = std::thread::Builder::new().name("from-sentry".into()).spawn(move || from_sentry(&reader));
    let acceptor = shared.clone();
    let _ = std::thread::Builder::new().name("control".into()).spawn(move || loop {
        match wire::accept(&listener) {
            Ok(conn) => {
                let s = acceptor.clone();
                let _ = std::thread::Builder::new().name("client".into()).spawn(move || serve_client(&s, conn));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    });
    let code = match spawned.wait(g) {
        Ok(c) => c,
        Err(e) => {
            crate::logging::error_line(&e);
            255
        }
    };
    if code == sentry::failure::EXIT_STATUS {
        crate::logging::error_line(&format!("container {}: the Sentry failed (status {code})", shared.id));
    }
    let _ = std::fs::remove_file(&sock_path);
    shared.set_status(Status::Stopped, Some(code));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while shared.waiters.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::process::exit(code)
}

fn write_all(fd: RawFd, mut b: &[u8]) -> std::io::Result<()> {
    while !b.is_empty() {
        // SAFETY: writes from a live slice.
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        b = &b[n as usize..];
    }
    Ok(())
}

/// Point this process's stdio at /dev/null (a detached helper must not
/// hold its caller's pipes open).
pub(super) fn detach_stdio() {
    let null = std::ffi::CString::new("/dev/null").unwrap_or_default();
    // SAFETY: a valid C string; dup2 onto our own stdio numbers.
    unsafe {
        let fd = libc::open(null.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd >= 0 {
            for n in 0..3 {
                libc::dup2(fd, n);
            }
            libc::close(fd);
        }
    }
}

fn from_sentry(s: &Shared) {
    while let Ok(Some((v, _))) = wire::recv(s.to_sentry.as_raw_fd()) {
        let Some(n) = v.get("id").and_then(Value::as_u64) else { continue };
        // An exec answers twice: keep its sender until the exit or error.
        let last = v.get("started").is_none();
        let mut p = lock(&s.pending);
        let tx = if last { p.remove(&n) } else { p.get(&n).cloned() };
        drop(p);
        if let Some(tx) = tx {
            let _ = tx.send(v);
        }
    }
    // The Sentry is gone: every pending request fails.
    lock(&s.pending).clear();
}

fn not_running(s: &Shared, st: Status) -> String {
    match st {
        Status::Stopped => "container not running".into(),
        Status::Paused => "container paused".into(),
        _ => format!("container {} is not running", s.id),
    }
}

fn serve_client(s: &Arc<Shared>, conn: OwnedFd) {
    let Ok(Some((req, fds))) = wire::recv(conn.as_raw_fd()) else { return };
    let reply = |v: Value| {
        let _ = wire::send(conn.as_raw_fd(), &v, &[]);
    };
    let err = |e: String| json!({ "error": e });
    let op = req.get("op").and_then(Value::as_str).unwrap_or("").to_string();
    let st = s.status();
    match op.as_str() {
        "start" => {
            if st != Status::Created {
                return reply(err(match st {
                    Status::Stopped => "cannot start a container that has stopped".into(),
                    Status::Running => "cannot start an already running container".into(),
                    _ => format!("container {} is not in created state", s.id),
                }));
            }
            // Two starts racing: the first flips the status.
            {
                let mut g = lock(&s.status);
                if g.0 != Status::Created {
                    return reply(err("cannot start an already running container".into()));
                }
                g.0 = Status::Running;
            }
            let r = s.call(json!({ "op": "start" }));
            if r.get("error").is_none() {
                s.set_status(Status::Running, None);
            }
            reply(r)
        }
        "kill" => {
            let sig = req.get("sig").and_then(Value::as_i64).unwrap_or(15) as i32;
            match st {
                Status::Stopped => reply(err("container not running".into())),
                Status::Created => {
                    // Nothing of the guest runs yet: any signal ends it,
                    // with the status that signal would give.
                    // SAFETY: signals our own child.
                    unsafe { libc::kill(s.sentry_pid, libc::SIGKILL) };
                    let _ = sig;
                    reply(json!({}))
                }
                _ => reply(s.call(req.clone())),
            }
        }
        "pause" => match st {
            Status::Running => {
                let r = s.call(json!({ "op": "pause" }));
                if r.get("error").is_none() {
                    s.set_status(Status::Paused, None);
                }
                reply(r)
            }
            Status::Paused => reply(err("container already paused".into())),
            _ => reply(err("container not running".into())),
        },
        "resume" => match st {
            Status::Paused => {
                let r = s.call(json!({ "op": "resume" }));
                if r.get("error").is_none() {
                    s.set_status(Status::Running, None);
                }
                reply(r)
            }
            _ => reply(err("container not paused".into())),
        },
        "ps" | "stats" => match st {
            Status::Stopped => reply(err("container not running".into())),
            _ => reply(s.call(json!({ "op": op }))),
        },
        "exec" => {
            if st != Status::Running {
                return reply(err(not_running(s, st)));
            }
            let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
            let rx = match s.ask(req.clone(), &raw) {
                Ok(rx) => rx,
                Err(e) => return reply(err(e)),
            };
            drop(fds);
            loop {
                match rx.recv() {
                    Ok(v) => {
                        let done = v.get("started").is_none();
                        reply(v);
                        if done {
                            return;
                        }
                    }
                    // The sandbox ended under the process: SIGKILL's status.
                    Err(_) => return reply(json!({ "exit": 128 + libc::SIGKILL })),
                }
            }
        }
        "wait" => {
            s.waiters.fetch_add(1, Ordering::AcqRel);
            let mut g = lock(&s.status);
            while g.0 != Status::Stopped {
                g = s.stopped.wait(g).unwrap_or_else(|p| p.into_inner());
            }
            let code = g.1.unwrap_or(0);
            drop(g);
            reply(json!({ "exit": code }));
            s.waiters.fetch_sub(1, Ordering::AcqRel);
        }
        other => reply(err(format!("unknown request {other:?}"))),
    }
}
