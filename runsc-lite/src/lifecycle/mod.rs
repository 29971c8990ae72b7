//! The OCI lifecycle commands, with runc's flags and errors: create,
//! start, state, kill, delete, exec, ps, list, spec, events, wait, pause,
//! resume, update.
//!
//! `create` forks the container's supervisor (supervisor.rs), which
//! detaches (setsid), claims `<root>/<id>/`, starts the Sentry and waits;
//! `create` returns once the Sentry has booted and confined itself, with
//! the container's init loaded at `start`. The other commands are clients
//! of the supervisor's socket, `<root>/<id>/control.sock`; state.json
//! and the lock (held by the supervisor while it lives) answer the rest.

mod spec;
pub mod supervisor;
pub mod wire;

use crate::cli::GlobalFlags;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle: the sandbox is set up and its
    /// init loaded at `start`; no user code runs until then.
    Create {
        /// Path to the bundle (default: the current directory).
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        #[command(flatten)]
        io: CreateIo,
        id: String,
    },
    /// Run the init of a created container.
    Start { id: String },
    /// Print the OCI state of a container as JSON.
    State { id: String },
    /// Send a signal (name with or without SIG, or number; default
    /// SIGTERM) to the container's init, or with --all to every process.
    Kill {
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped (or created) container's state; --force kills a
    /// running one first.
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// List the processes of a container. The pids are the sandbox's own
    /// (as runsc prints them), not host pids.
    Ps {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        id: String,
        /// ps(1) options (accepted and ignored).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List the containers under --root.
    List {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        /// Only the ids.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Write a default config.json (busybox-friendly: `sh`, a terminal,
    /// as runc's) into the bundle directory.
    Spec {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
    },
    /// Print the container's events as JSON lines: with --stats one stats
    /// object (the Sentry's own accounting of memory, tasks and CPU);
    /// otherwise stats every --interval until the container stops.
    Events {
        #[arg(long)]
        stats: bool,
        /// 5s, 500ms, 2 (seconds).
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Wait for a container to stop; prints {"id":..,"exitStatus":N}.
    Wait { id: String },
    /// Suspend every task of a container.
    Pause { id: String },
    /// Resume a paused container.
    Resume { id: String },
    /// Accepted for containerd and ignored: resources cannot change while
    /// a sandbox runs.
    Update {
        #[arg(long, short = 'r')]
        resources: Option<String>,
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct CreateIo {
    /// Write the supervisor's host pid here once the container is created.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to receive the terminal's master (process.terminal).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (the Sentry always pivots).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility (no keyrings in the sandbox).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Accepted (create always detaches).
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Accepted; extra descriptors are not passed to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// An OCI process (JSON) to run instead of ARGS.
    #[arg(long, short = 'p', value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process runs; the pid file's process carries its
    /// exit status.
    #[arg(long, short = 'd')]
    pub detach: bool,
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    #[arg(long, short = 't')]
    pub tty: bool,
    #[arg(long)]
    pub cwd: Option<String>,
    /// NAME=VALUE, repeatable.
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// UID[:GID].
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Accepted for runc compatibility and ignored.
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(g: &GlobalFlags, c: Command) -> Result<i32, String> {
    match c {
        Command::Create { bundle, io, id } => create(g, &bundle, io, &id),
        Command::Start { id } => simple(g, &id, json!({ "op": "start" })),
        Command::State { id } => state(g, &id),
        Command::Kill { all, id, signal } => {
            let sig = parse_signal(&signal)?;
            simple(g, &id, json!({ "op": "kill", "sig": sig, "all": all }))
        }
        Command::Delete { force, id } => delete(g, &id, force),
        Command::Exec(a) => exec(g, a),
        Command::Ps { format, id, .. } => ps(g, &id, &format),
        Command::List { format, quiet } => list(g, &format, quiet),
        Command::Spec { bundle } => spec::write(&bundle, g.rootless),
        Command::Events { stats, interval, id } => events(g, &id, stats, &interval),
        Command::Wait { id } => wait(g, &id),
        Command::Pause { id } => simple(g, &id, json!({ "op": "pause" })),
        Command::Resume { id } => simple(g, &id, json!({ "op": "resume" })),
        Command::Update { resources, id } => {
            if resources.as_deref() == Some("-") {
                let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
            }
            let o = crate::state::observe(&g.root, &id)?.ok_or_else(|| does_not_exist(&id))?;
            if !o.alive {
                return Err("container not running".into());
            }
            tracing::warn!("update: resources of a running sandbox cannot change; ignored");
            Ok(0)
        }
    }
}

fn does_not_exist(id: &str) -> String {
    format!("container {id} does not exist")
}

/// Names (TERM, SIGTERM, sigterm) and numbers, as runc's kill takes them.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(format!("invalid signal: {s}"));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    const NAMES: &[(&str, i32)] = &[
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("IOT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("STKFLT", 16),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("TTIN", 21),
        ("TTOU", 22),
        ("URG", 23),
        ("XCPU", 24),
        ("XFSZ", 25),
        ("VTALRM", 26),
        ("PROF", 27),
        ("WINCH", 28),
        ("IO", 29),
        ("POLL", 29),
        ("PWR", 30),
        ("SYS", 31),
    ];
    if let Some(&(_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Ok(n);
    }
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off = if rest.is_empty() { 0 } else { rest.trim_start_matches('+').parse::<i32>().unwrap_or(-1) };
        if (0..=30).contains(&off) {
            return Ok(34 + off);
        }
    }
    Err(format!("unknown signal {s:?}"))
}

/// Write `pid` to `path` atomically (a temporary name, then rename), as
/// runc does, so a reader never sees it half written.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), String> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("writing the pid file {}: {e}", path.display()))
}

fn create(g: &GlobalFlags, bundle: &Path, io: CreateIo, id: &str) -> Result<i32, String> {
    crate::state::validate_id(id)?;
    crate::state::prepare_root(&g.root)?;
    if crate::state::observe(&g.root, id)?.is_some() {
        return Err(format!("container with id exists: {id}"));
    }
    let mut cfg = crate::bundle::load(bundle)?;
    if cfg.terminal && io.console_socket.is_none() {
        // As runc: a detached container's terminal must go somewhere.
        return Err("cannot allocate tty if runsc-lite will detach without setting console socket".into());
    }
    // The host master goes to the socket now; the Sentry (the supervisor's
    // child) inherits the host slave. Dropped once the Sentry has booted.
    let console = crate::console::attach(&crate::console::target(cfg.terminal, io.console_socket.clone()))?;
    cfg.console = console.sentry_fd();
    let annotations = read_annotations(bundle);
    let req = supervisor::Request {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        pid_file: io.pid_file.map(|p| std::path::absolute(&p).unwrap_or(p)),
        annotations,
        rootfs: cfg.root_path.clone(),
    };
    let (r, w) = pipe()?;
    // SAFETY: this process is still single-threaded (nothing above starts
    // a thread), so the child may run Rust code freely.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(r);
        supervisor::main(g, req, cfg, w);
    }
    drop(w);
    let mut answer = String::new();
    let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(std::fs::File::from(r)), &mut answer);
    let answer = answer.trim_end();
    if answer == "ok" {
        return Ok(0);
    }
    // The supervisor failed: it exits at once; reap it.
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    Err(if answer.is_empty() { "the container's supervisor failed".into() } else { answer.to_string() })
}

/// `run --detach`: create, then start.
pub fn create_and_start(
    g: &GlobalFlags,
    bundle: &Path,
    id: &str,
    pid_file: Option<PathBuf>,
    console_socket: Option<PathBuf>,
) -> Result<i32, String> {
    let io =
        CreateIo { pid_file, console_socket, no_pivot: false, no_new_keyring: false, detach: true, preserve_fds: 0 };
    create(g, bundle, io, id)?;
    simple(g, id, json!({ "op": "start" }))
}

fn read_annotations(bundle: &Path) -> Value {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("annotations").cloned())
        .unwrap_or(json!({}))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into a live array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: two new descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The live container's status (stopped when its supervisor is gone).
fn status_of(o: &crate::state::Observed) -> String {
    let s = o.state.get("status").and_then(Value::as_str).unwrap_or("stopped");
    if o.alive {
        s.to_string()
    } else {
        "stopped".into()
    }
}

/// A connection to the supervisor of a live container, or runc's error
/// for a missing or stopped one.
fn connect(g: &GlobalFlags, id: &str) -> Result<(OwnedFd, crate::state::Observed), String> {
    let o = crate::state::observe(&g.root, id)?.ok_or_else(|| does_not_exist(id))?;
    if !o.alive {
        return Err("container not running".into());
    }
    let sock = wire::connect(&o.dir.join(crate::state::CONTROL_SOCKET)).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => "container not running".to_string(),
        _ => format!("container {id}: {e}"),
    })?;
    Ok((sock, o))
}

fn ask(sock: &OwnedFd, msg: &Value, fds: &[i32]) -> Result<Value, String> {
    wire::send(sock.as_raw_fd(), msg, fds)?;
    let (v, _) = wire::recv(sock.as_raw_fd())?.ok_or("container not running")?;
    match v.get("error").and_then(Value::as_str) {
        Some(e) => Err(e.to_string()),
        None => Ok(v),
    }
}

/// One request that needs a live container; start's errors for a stopped one.
fn simple(g: &GlobalFlags, id: &str, msg: Value) -> Result<i32, String> {
    let (sock, _) = connect(g, id).map_err(|e| {
        if msg["op"] == "start" && e == "container not running" {
            "cannot start a container that has stopped".into()
        } else {
            e
        }
    })?;
    ask(&sock, &msg, &[])?;
    Ok(0)
}

fn state_json(id: &str, o: &crate::state::Observed) -> Value {
    let s = &o.state;
    let status = status_of(o);
    let pid = if status == "stopped" { json!(0) } else { s.get("pid").cloned().unwrap_or(json!(0)) };
    json!({
        "ociVersion": s.get("ociVersion").cloned().unwrap_or(json!("1.0.2")),
        "id": id,
        "pid": pid,
        "status": status,
        "bundle": s.get("bundle").cloned().unwrap_or(json!("")),
        "rootfs": s.get("rootfs").cloned().unwrap_or(json!("")),
        "created": s.get("created").cloned().unwrap_or(json!("")),
        "owner": s.get("owner").cloned().unwrap_or(json!("")),
        "annotations": s.get("annotations").cloned().unwrap_or(json!({})),
    })
}

fn state(g: &GlobalFlags, id: &str) -> Result<i32, String> {
    let o = crate::state::observe(&g.root, id)?.ok_or_else(|| does_not_exist(id))?;
    let v = state_json(id, &o);
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(0)
}

fn delete(g: &GlobalFlags, id: &str, force: bool) -> Result<i32, String> {
    let Some(o) = crate::state::observe(&g.root, id)? else {
        // runc: deleting a missing container is an error unless forced.
        return if force { Ok(0) } else { Err(does_not_exist(id)) };
    };
    let status = status_of(&o);
    if o.alive {
        if status != "created" && status != "stopped" && !force {
            return Err(format!("cannot delete container {id} that is not stopped: {status}"));
        }
        if let Ok((sock, _)) = connect(g, id) {
            let _ = ask(&sock, &json!({ "op": "kill", "sig": libc::SIGKILL, "all": true }), &[]);
        }
    }
    // Waits for the supervisor to be gone (it holds the lock).
    crate::state::remove(&o.dir)?;
    Ok(0)
}

fn exec(g: &GlobalFlags, a: ExecArgs) -> Result<i32, String> {
    let (sock, o) = connect(g, &a.id).map_err(|e| {
        if e == "container not running" {
            "cannot exec in a stopped container".into()
        } else {
            e
        }
    })?;
    match status_of(&o).as_str() {
        "paused" => return Err("cannot exec in a paused container".into()),
        "created" => return Err(format!("cannot exec in a created container {}: start it first", a.id)),
        _ => {}
    }
    let bundle = PathBuf::from(o.state.get("bundle").and_then(Value::as_str).unwrap_or("."));
    let mut msg = match &a.process {
        Some(p) => process_from_file(p)?,
        None => {
            if a.args.is_empty() {
                return Err("exec: no command given (ARGS or --process FILE)".into());
            }
            // The container's own process, with ARGS (as runc's exec).
            let mut p = std::fs::read(bundle.join("config.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v.get("process").cloned())
                .unwrap_or(json!({}));
            p["args"] = json!(a.args);
            p["terminal"] = json!(a.tty);
            process_from_value(p, "exec")?
        }
    };
    if let Some(c) = &a.cwd {
        msg["cwd"] = json!(c);
    }
    if !a.env.is_empty() {
        let mut env: Vec<Value> = msg["env"].as_array().cloned().unwrap_or_default();
        env.extend(a.env.iter().map(|e| json!(e)));
        msg["env"] = json!(env);
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        msg["uid"] = json!(uid.parse::<u32>().map_err(|_| format!("--user {u}: not UID[:GID]"))?);
        msg["gid"] = json!(gid.parse::<u32>().map_err(|_| format!("--user {u}: not UID[:GID]"))?);
    }
    let terminal = a.tty || msg["terminal"].as_bool().unwrap_or(false);
    if terminal && a.detach && a.console_socket.is_none() {
        // As runc: a detached process's terminal must go somewhere.
        return Err("cannot allocate tty if runsc-lite will detach without setting console socket".into());
    }
    msg["terminal"] = json!(terminal);
    // With a terminal the Sentry gets one host terminal descriptor to
    // bridge to a pty of its own (the host slave whose master went to
    // the console socket, or the caller's terminal in raw mode, restored
    // when `console` drops) instead of our stdio.
    let console = crate::console::attach(&crate::console::target(terminal, a.console_socket.clone()))?;
    let passed: Vec<RawFd> = match console.sentry_fd() {
        Some(fd) => vec![fd],
        None => vec![0, 1, 2],
    };
    msg["op"] = json!("exec");
    // Blocked before the process exists, so that none of the signals the
    // waiter relays can kill it first (the mask is inherited by fork).
    block_relayed();
    let started = ask(&sock, &msg, &passed)?;
    let guest_pid = started.get("started").and_then(Value::as_i64).unwrap_or(0);
    let wait_exit = |sock: &OwnedFd| -> i32 {
        match wire::recv(sock.as_raw_fd()) {
            Ok(Some((v, _))) => v.get("exit").and_then(Value::as_i64).unwrap_or(255) as i32,
            _ => 128 + libc::SIGKILL,
        }
    };
    if !a.detach {
        if let Some(p) = &a.pid_file {
            write_pid_file(p, std::process::id() as i32)?;
        }
        let code = relay_until_exit(g, &a.id, &sock, guest_pid as i32).unwrap_or_else(|| wait_exit(&sock));
        drop(console);
        return Ok(code);
    }
    // The Sentry holds the terminal now; the waiter must not keep the
    // host slave open after the process.
    drop(console);
    // Detached: a child of ours waits and exits with the process's status;
    // its pid is the pid file's (containerd's shim, a subreaper, reaps it).
    // SAFETY: single-threaded; the child only waits on the socket and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: no arguments; out of the caller's session.
        unsafe { libc::setsid() };
        supervisor::detach_stdio();
        let code = relay_until_exit(g, &a.id, &sock, guest_pid as i32).unwrap_or_else(|| wait_exit(&sock));
        std::process::exit(code);
    }
    if let Some(p) = &a.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(0)
}

/// Signals containerd's shim sends to a detached exec's pid (it kills
/// exec'd processes by pid, not through `kill`): passed to the guest
/// process. SIGKILL and SIGSTOP cannot be caught: SIGKILL ends this
/// waiter with 137, and the guest process is not told.
const EXEC_RELAYED: [i32; 8] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

fn block_relayed() -> libc::sigset_t {
    // SAFETY: sigset calls on a live local; sigprocmask reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in EXEC_RELAYED {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// The detached exec's waiter: relay signals to guest process `pid`
/// until its exit code arrives on `sock`. None if signals cannot be
/// watched (the caller then only waits).
fn relay_until_exit(g: &GlobalFlags, id: &str, sock: &OwnedFd, pid: i32) -> Option<i32> {
    let set = block_relayed();
    // SAFETY: a signalfd for a live, initialised set.
    let sfd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if sfd < 0 {
        return None;
    }
    // SAFETY: a new descriptor owned by nobody else.
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    loop {
        let mut p = [
            libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: two live pollfds.
        if unsafe { libc::poll(p.as_mut_ptr(), 2, -1) } < 0 {
            continue;
        }
        if p[0].revents != 0 {
            return match wire::recv(sock.as_raw_fd()) {
                Ok(Some((v, _))) => Some(v.get("exit").and_then(Value::as_i64).unwrap_or(255) as i32),
                _ => Some(128 + libc::SIGKILL),
            };
        }
        if p[1].revents != 0 {
            // SAFETY: an all-zero signalfd_siginfo is valid; read into it.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads one record into a live local of that size.
            let n = unsafe { libc::read(sfd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
            if n == size as isize {
                if let Ok((c, _)) = connect(g, id) {
                    let _ = ask(&c, &json!({ "op": "kill", "sig": info.ssi_signo, "pid": pid }), &[]);
                }
            }
        }
    }
}

/// An OCI `process` object (exec --process).
fn process_from_file(p: &Path) -> Result<Value, String> {
    let text = std::fs::read(p).map_err(|e| format!("--process {}: {e}", p.display()))?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| format!("--process {}: {e}", p.display()))?;
    process_from_value(v, &format!("--process {}", p.display()))
}

fn process_from_value(v: Value, what: &str) -> Result<Value, String> {
    let user = v.get("user").cloned().unwrap_or(json!({}));
    let argv = v.get("args").cloned().unwrap_or(json!([]));
    if argv.as_array().is_none_or(|a| a.is_empty()) {
        return Err(format!("{what}: args must not be empty"));
    }
    Ok(json!({
        "argv": argv,
        "env": v.get("env").cloned().unwrap_or(json!([])),
        "cwd": v.get("cwd").cloned().unwrap_or(json!("/")),
        "uid": user.get("uid").cloned().unwrap_or(json!(0)),
        "gid": user.get("gid").cloned().unwrap_or(json!(0)),
        "groups": user.get("additionalGids").cloned().unwrap_or(json!([])),
        "umask": user.get("umask").cloned().unwrap_or(json!(0o022)),
        "terminal": v.get("terminal").cloned().unwrap_or(json!(false)),
    }))
}

fn ps(g: &GlobalFlags, id: &str, format: &str) -> Result<i32, String> {
    let (sock, _) = connect(g, id)?;
    let v = ask(&sock, &json!({ "op": "ps" }), &[])?;
    let procs = v.get("procs").and_then(Value::as_array).cloned().unwrap_or_default();
    match format {
        "json" => {
            let pids: Vec<Value> = procs.iter().map(|p| p["pid"].clone()).collect();
            println!("{}", Value::Array(pids));
        }
        "table" => {
            println!("UID        PID  PPID  CMD");
            for p in procs {
                println!("{:<8} {:>5} {:>5}  {}", p["uid"], p["pid"], p["ppid"], p["cmd"].as_str().unwrap_or(""));
            }
        }
        other => return Err(format!("invalid format option {other:?}: json or table")),
    }
    Ok(0)
}

fn list(g: &GlobalFlags, format: &str, quiet: bool) -> Result<i32, String> {
    let mut all = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&g.root) {
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Ok(Some(o)) = crate::state::observe(&g.root, &id) {
                all.push(state_json(&id, &o));
            }
        }
    }
    all.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    if quiet {
        for c in &all {
            println!("{}", c["id"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    match format {
        "json" => println!("{}", Value::Array(all)),
        "table" => {
            println!("{:<12} {:<8} {:<10} {:<40} {:<32} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
            for c in &all {
                println!(
                    "{:<12} {:<8} {:<10} {:<40} {:<32} {}",
                    c["id"].as_str().unwrap_or(""),
                    c["pid"],
                    c["status"].as_str().unwrap_or(""),
                    c["bundle"].as_str().unwrap_or(""),
                    c["created"].as_str().unwrap_or(""),
                    c["owner"].as_str().unwrap_or("")
                );
            }
        }
        other => return Err(format!("invalid format option {other:?}: json or table")),
    }
    Ok(0)
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("--interval {s:?}: a duration (5s, 500ms)");
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !(v * scale > 0.0 && v * scale < 1e6) {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(v * scale))
}

fn events(g: &GlobalFlags, id: &str, stats_only: bool, interval: &str) -> Result<i32, String> {
    let every = parse_interval(interval)?;
    loop {
        let (sock, _) = match connect(g, id) {
            Ok(c) => c,
            Err(e) if !stats_only && e == "container not running" => return Ok(0),
            Err(e) => return Err(e),
        };
        let v = match ask(&sock, &json!({ "op": "stats" }), &[]) {
            Ok(v) => v,
            Err(e) if !stats_only && e == "container not running" => return Ok(0),
            Err(e) => return Err(e),
        };
        let data = v.get("cpu").map(|_| json!({ "cpu": v["cpu"], "memory": v["memory"], "pids": v["pids"] }));
        println!("{}", json!({ "type": "stats", "id": id, "data": data.unwrap_or(json!({})) }));
        if stats_only {
            return Ok(0);
        }
        std::thread::sleep(every);
    }
}

fn wait(g: &GlobalFlags, id: &str) -> Result<i32, String> {
    let o = crate::state::observe(&g.root, id)?.ok_or_else(|| does_not_exist(id))?;
    let code = if o.alive {
        match connect(g, id).and_then(|(sock, _)| ask(&sock, &json!({ "op": "wait" }), &[])) {
            Ok(v) => v.get("exit").and_then(Value::as_i64).unwrap_or(0),
            Err(_) => stopped_status(g, id),
        }
    } else {
        stopped_status(g, id)
    };
    println!("{}", json!({ "id": id, "exitStatus": code }));
    Ok(0)
}

/// The exit status recorded for a stopped container (after its
/// supervisor has written it).
fn stopped_status(g: &GlobalFlags, id: &str) -> i64 {
    for _ in 0..200 {
        if let Ok(Some(o)) = crate::state::observe(&g.root, id) {
            if let Some(c) = o.state.get("exitStatus").and_then(Value::as_i64) {
                return c;
            }
            if !o.alive && o.state.get("lifecycle").is_none() {
                return 0;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("KILL"), Ok(9));
        assert_eq!(parse_signal("SIGKILL"), Ok(9));
        assert_eq!(parse_signal("sigusr1"), Ok(10));
        assert_eq!(parse_signal("RTMIN+2"), Ok(36));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s"), Ok(std::time::Duration::from_secs(5)));
        assert_eq!(parse_interval("250ms"), Ok(std::time::Duration::from_millis(250)));
        assert!(parse_interval("-1s").is_err());
    }
}
