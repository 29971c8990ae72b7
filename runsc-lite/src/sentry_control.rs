//! Inside the Sentry: its end of the lifecycle channel (crate::lifecycle).
//! The supervisor, outside the Sentry, owns the socket in the state
//! directory; the Sentry only reads and writes the socketpair it was given
//! before it confined itself, so its seccomp allowlist needs nothing new
//! (recvmsg and write were there already).
//!
//! Requests carry an `id` that every answer repeats. `start` lets the
//! main thread run the container's init; `exec` loads a new process on a
//! thread of its own and answers twice (its pid, then its exit code).

use crate::lifecycle::wire;
use sentry::{InitSpec, Kernel};
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{mpsc, Arc};
use vfs::Creds;

/// Tell the supervisor that boot is over (or failed).
pub fn report(control: RawFd, msg: Value) {
    let _ = wire::send(control, &msg, &[]);
}

/// Where the main thread answers `start`: the init's pid once it is
/// loaded, or why it could not be.
pub type StartReply = mpsc::Sender<Result<i32, String>>;

/// Serve the channel on a thread of its own; the receiver gets one
/// message when the supervisor says `start`.
pub fn serve(kernel: &Arc<Kernel>, control: OwnedFd) -> Result<mpsc::Receiver<StartReply>, String> {
    let (tx, rx) = mpsc::channel();
    let k = Arc::downgrade(kernel);
    let control = Arc::new(control);
    std::thread::Builder::new()
        .name("lifecycle".into())
        .spawn(move || {
            let mut tx = Some(tx);
            loop {
                let (msg, fds) = match wire::recv(control.as_raw_fd()) {
                    Ok(Some(m)) => m,
                    _ => return,
                };
                let Some(kernel) = k.upgrade() else { return };
                let id = msg.get("id").cloned().unwrap_or(Value::Null);
                let answer = match msg.get("op").and_then(Value::as_str).unwrap_or("") {
                    "start" => match tx.take() {
                        // Answered once init is loaded, so that a kill
                        // right after start finds it.
                        Some(tx) => {
                            let (rtx, rrx) = mpsc::channel();
                            let _ = tx.send(rtx);
                            match rrx.recv() {
                                Ok(Ok(pid)) => Ok(json!({ "pid": pid })),
                                Ok(Err(e)) => Err(e),
                                Err(_) => Err("container not running".into()),
                            }
                        }
                        None => Err("cannot start an already running container".into()),
                    },
                    "kill" => kill(&kernel, &msg),
                    "pause" => {
                        kernel.freeze.set(true);
                        Ok(json!({}))
                    }
                    "resume" => {
                        kernel.freeze.set(false);
                        Ok(json!({}))
                    }
                    "ps" => Ok(ps(&kernel)),
                    "stats" => Ok(stats(&kernel)),
                    "exec" => {
                        exec(&kernel, &msg, fds, id.clone(), control.clone());
                        continue;
                    }
                    other => Err(format!("unknown request {other:?}")),
                };
                let mut reply = match answer {
                    Ok(v) => v,
                    Err(e) => json!({ "error": e }),
                };
                reply["id"] = id;
                let _ = wire::send(control.as_raw_fd(), &reply, &[]);
            }
        })
        .map_err(|e| format!("lifecycle thread: {e}"))?;
    Ok(rx)
}

fn kill(kernel: &Arc<Kernel>, msg: &Value) -> Result<Value, String> {
    let sig = msg.get("sig").and_then(Value::as_i64).unwrap_or(15) as i32;
    if !(1..=64).contains(&sig) {
        return Err(format!("invalid signal {sig}"));
    }
    let pid = msg.get("pid").and_then(Value::as_i64).unwrap_or(1) as i32;
    let targets = if msg.get("all").and_then(Value::as_bool).unwrap_or(false) {
        kernel.groups()
    } else {
        kernel.group(pid).into_iter().collect()
    };
    if targets.is_empty() {
        return Err("container not running".into());
    }
    for tg in targets {
        sentry::signal::send_signal(&tg, sentry::signal::user_info(sig, 0, 0, 0));
    }
    Ok(json!({}))
}

fn ps(kernel: &Arc<Kernel>) -> Value {
    let mut procs: Vec<Value> = kernel
        .groups()
        .iter()
        .filter(|tg| tg.exit_status().is_none())
        .map(|tg| {
            let comm = String::from_utf8_lossy(&sentry::kernel::lock(&tg.comm)).into_owned();
            let ppid = *sentry::kernel::lock(&tg.ppid);
            let uid = tg.creds().uid;
            json!({ "pid": tg.tgid, "ppid": ppid, "uid": uid, "cmd": comm })
        })
        .collect();
    procs.sort_by_key(|p| p["pid"].as_i64());
    json!({ "procs": procs })
}

fn stats(kernel: &Arc<Kernel>) -> Value {
    let (mut user, mut sys) = (0u64, 0u64);
    for tg in kernel.groups() {
        let (u, s) = tg.cpu_times();
        user = user.saturating_add(u);
        sys = sys.saturating_add(s);
    }
    json!({
        "cpu": { "usage": { "total": user.saturating_add(sys), "user": user, "kernel": sys } },
        "memory": { "usage": { "usage": sentry::limits::memory_usage(kernel) } },
        "pids": { "current": kernel.tasks.current() },
    })
}

/// A new process in the running sandbox, with the exec caller's stdio.
fn exec(kernel: &Arc<Kernel>, msg: &Value, fds: Vec<OwnedFd>, id: Value, control: Arc<OwnedFd>) {
    let strs = |key: &str| -> Vec<Vec<u8>> {
        msg.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(|s| s.as_bytes().to_vec()).collect())
            .unwrap_or_default()
    };
    let num = |key: &str| msg.get(key).and_then(Value::as_u64).unwrap_or(0) as u32;
    let argv = strs("argv");
    let groups = msg
        .get("groups")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).map(|g| g as u32).collect())
        .unwrap_or_default();
    let creds = Creds::new(num("uid"), num("gid"), groups);
    let terminal = msg.get("terminal").and_then(Value::as_bool).unwrap_or(false);
    let (console, files) = if terminal {
        // One descriptor: the host terminal to bridge. The session is set
        // once the process (its leader) has a pid.
        let send_err = |e: String| {
            let _ = wire::send(control.as_raw_fd(), &json!({ "error": e, "id": id.clone() }), &[]);
        };
        let Some(host) = fds.into_iter().next() else {
            return send_err("exec with a terminal: no terminal descriptor".into());
        };
        match crate::boot::console_on(kernel, host, &creds, 0) {
            Ok((c, f)) => (Some(c), (0..3).map(|fd| (fd, f.clone())).collect()),
            Err(e) => return send_err(e),
        }
    } else {
        let files = fds
            .into_iter()
            .take(3)
            .enumerate()
            .filter_map(|(i, fd)| crate::boot::sandbox_file(fd).map(|f| (i as i32, f)))
            .collect();
        (None, files)
    };
    let spec = InitSpec {
        exe: argv.first().cloned().unwrap_or_default(),
        argv,
        envp: strs("env"),
        cwd: msg.get("cwd").and_then(Value::as_str).unwrap_or("/").as_bytes().to_vec(),
        creds,
        files,
        umask: msg.get("umask").and_then(Value::as_u64).unwrap_or(0o022) as u32,
    };
    let kernel = kernel.clone();
    let spawned = std::thread::Builder::new().name("exec".into()).spawn(move || {
        let send = |mut v: Value| {
            v["id"] = id.clone();
            let _ = wire::send(control.as_raw_fd(), &v, &[]);
        };
        match sentry::start_process(&kernel, spec) {
            Err(e) => {
                if let Some(c) = &console {
                    c.stop();
                }
                send(json!({ "error": e.to_string() }))
            }
            Ok(p) => {
                // A new thread group leads its own session and group: the
                // pty becomes its controlling terminal, as TIOCSCTTY would.
                if let Some(c) = &console {
                    c.pty.make_controlling(p.pid(), p.pid());
                }
                send(json!({ "started": p.pid() }));
                let status = p.run();
                if let Some(c) = &console {
                    // The last output reaches the host before the exit does.
                    c.drain(std::time::Duration::from_secs(2));
                    c.stop();
                }
                send(json!({ "exit": status.shell_code() }));
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("exec: no thread: {e}");
    }
}
