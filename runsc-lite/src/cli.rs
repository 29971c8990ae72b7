//! Command-line interface, in the shape of runsc's: global flags before
//! the subcommand.

use crate::boot::{self, MountKind, MountSpec, SandboxConfig};
use crate::egress::{NetworkFlags, NetworkMode};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

/// The platforms this build knows, the default first.
pub const PLATFORMS: &[&str] = &["systrap", "ptrace"];

#[derive(Parser, Debug)]
#[command(name = "runsc-lite", version, about = "Run programs in a userspace-kernel sandbox (a gVisor-style runsc).")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalFlags {
    /// Platform that traps guest syscalls: systrap (seccomp traps and
    /// shared memory) or ptrace (PTRACE_SYSEMU). Without the flag: systrap,
    /// or ptrace where seccomp is not available (see `runsc-lite platforms`).
    #[arg(long, global = true, value_name = "NAME")]
    pub platform: Option<String>,
    /// Log every guest syscall: name, decoded arguments, result.
    #[arg(long, global = true)]
    pub strace: bool,
    /// Write debug logs (and --strace lines) to this file.
    #[arg(long = "debug-log", global = true, value_name = "FILE")]
    pub debug_log: Option<PathBuf>,
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/var/run/runsc-lite", value_name = "DIR")]
    pub root: PathBuf,
    /// Network mode: sandbox (loopback and eth0; connections out only as
    /// --allow-host allows; the default of `run`), none (loopback only;
    /// the default of `do` unless --allow-host, --add-host or --publish
    /// is given) or host (inet sockets are host sockets the broker makes;
    /// --allow-host still applies to connects when given).
    #[arg(long, global = true, value_name = "MODE")]
    pub network: Option<String>,
    /// The sandbox's resolver (10.0.2.3): on (the default; it answers
    /// for allowed names only) or none.
    #[arg(long, global = true, value_name = "MODE")]
    pub dns: Option<String>,
    /// --allow-host, --add-host and --publish given before the
    /// subcommand (those given after it add to them).
    #[command(flatten)]
    pub lists: NetworkLists,
    /// Map only the caller's uid and gid (to 0 inside) into the Sentry's
    /// user namespace, as an unprivileged caller always gets; without it,
    /// root gets the whole uid/gid range mapped to itself.
    /// (`--rootless=true|false`, as containerd passes it, is accepted.)
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub rootless: bool,
    /// Also write errors to this file (runc's --log; containerd's shim
    /// reads the last error line of it).
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// text (the default) or json: the format of --log's lines.
    #[arg(long = "log-format", global = true, default_value = "text", value_name = "FORMAT")]
    pub log_format: String,
    /// Accepted for runc compatibility and ignored: runsc-lite makes no
    /// cgroups (the Sentry enforces memory and pids limits itself).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility; use --debug-log FILE for debug logs.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for runc compatibility and ignored (no checkpointing).
    #[arg(long, global = true, value_name = "PATH", hide = true)]
    pub criu: Option<String>,
    /// Seconds after the first SIGTERM/SIGINT/SIGHUP/SIGQUIT passed to the
    /// guest's init before the sandbox is killed (a second SIGINT kills at
    /// once).
    #[arg(long = "kill-after", global = true, default_value_t = 10.0, value_name = "SECONDS")]
    pub kill_after: f64,
}

/// The repeatable network flags. They are taken before the subcommand
/// and after it (`run`, `do`, `debug egress`) and add up: clap's global
/// flags would keep only the values given after the subcommand.
#[derive(Args, Debug, Clone, Default)]
pub struct NetworkLists {
    /// Allow connections out to a NAME, *.NAME, ADDR, CIDR, [V6ADDR] or
    /// host-gateway (the host's loopback), with an optional :PORT or
    /// :LO-HI; repeatable. Private, link-local and metadata ranges need
    /// an explicit address or CIDR rule.
    #[arg(long = "allow-host", value_name = "RULE")]
    pub allow_host: Vec<String>,
    /// A static name for the sandbox's resolver, NAME:IP or
    /// NAME:host-gateway; repeatable.
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// Make a server inside the sandbox reachable on the host's
    /// 127.0.0.1:HOST_PORT (TCP, or UDP with /udp); repeatable.
    #[arg(long, short = 'p', value_name = "HOST_PORT:GUEST_PORT[/udp]")]
    pub publish: Vec<String>,
}

impl NetworkLists {
    fn and(mut self, more: NetworkLists) -> NetworkLists {
        self.allow_host.extend(more.allow_host);
        self.add_host.extend(more.add_host);
        self.publish.extend(more.publish);
        self
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and run a container from an OCI bundle: `run BUNDLE_DIR` or
    /// `run --bundle DIR ID`.
    Run {
        /// Path to the bundle (the directory holding config.json).
        #[arg(long, short = 'b')]
        bundle: Option<PathBuf>,
        /// Container ID, or the bundle directory when --bundle is not given.
        target: Option<String>,
        /// With process.terminal: send the terminal's master to the unix
        /// socket at PATH (runc's protocol) instead of using this terminal.
        #[arg(long = "console-socket", value_name = "PATH")]
        console_socket: Option<PathBuf>,
        #[command(flatten)]
        lists: NetworkLists,
        /// create + start, then return (the container runs on; `wait`,
        /// `kill` and `delete` as after `create`).
        #[arg(long, short = 'd')]
        detach: bool,
        /// Write the pid whose exit status is the container's here.
        #[arg(long = "pid-file", value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// Accepted for runc compatibility.
        #[arg(long = "no-pivot")]
        no_pivot: bool,
        /// Accepted for runc compatibility.
        #[arg(long = "no-new-keyring")]
        no_new_keyring: bool,
    },
    /// Run a host command in a sandbox with the host's / as a read-only
    /// root and an in-memory overlay on top.
    Do {
        /// Working directory inside the sandbox (default: the current one).
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Memory the sandbox may use (512M, 4G, ...): guest memory, page
        /// cache and tmpfs data. Over it, the largest process is killed
        /// with SIGKILL. Default: no limit.
        #[arg(long = "memory-limit", value_name = "SIZE", value_parser = parse_bytes)]
        memory_limit: Option<u64>,
        /// Most tasks (processes and threads) the sandbox may have; clone
        /// beyond it fails with EAGAIN. Default: no limit.
        #[arg(long = "pids-limit", value_name = "N")]
        pids_limit: Option<u64>,
        /// Size of the in-memory overlay that takes writes to / (bytes with
        /// k/m/g suffixes, or N% of the memory limit or host RAM; 0: no
        /// size of its own). Default: half the memory limit, or 1G without
        /// one.
        #[arg(long = "overlay-size", value_name = "SIZE", value_parser = parse_size)]
        overlay_size: Option<boot::Size>,
        /// Give the command a terminal of the sandbox's own (a pty served
        /// by the Sentry), bridged to this one (put in raw mode meanwhile).
        #[arg(long, short = 't')]
        tty: bool,
        #[command(flatten)]
        lists: NetworkLists,
        /// Command and arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
    #[command(flatten)]
    Lifecycle(crate::lifecycle::Command),
    /// Print the syscall table with each entry's support level.
    Syscalls,
    /// List the platforms and whether this machine supports each.
    Platforms,
    /// Inspect the sandbox's own set-up.
    Debug {
        #[command(subcommand)]
        what: DebugCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum DebugCommand {
    /// Print the Sentry's host-syscall allowlist (seccomp) with its
    /// argument rules and its size, for --platform (default systrap).
    Filters,
    /// Evaluate an egress policy (the global --allow-host and
    /// --add-host) without touching the network: each destination
    /// (ADDR:PORT, [V6ADDR]:PORT, NAME:PORT, host-gateway:PORT) is
    /// printed as allowed or refused, with why.
    Egress {
        #[command(flatten)]
        lists: NetworkLists,
        /// The destinations to decide on.
        #[arg(value_name = "DEST", required = true)]
        dests: Vec<String>,
    },
}

pub fn run(cli: Cli) -> Result<i32, String> {
    let g = cli.global;
    if let Some(p) = g.platform.as_deref().filter(|p| !PLATFORMS.contains(p)) {
        return Err(format!("unknown platform {p:?}: known platforms are {}", PLATFORMS.join(", ")));
    }
    let lists = match &cli.command {
        Command::Run { lists, .. }
        | Command::Do { lists, .. }
        | Command::Debug { what: DebugCommand::Egress { lists, .. } } => g.lists.clone().and(lists.clone()),
        _ => g.lists.clone(),
    };
    let net = NetworkFlags::parse(
        g.network.as_deref(),
        &lists.allow_host,
        &lists.add_host,
        g.dns.as_deref(),
        &lists.publish,
    )?;
    match cli.command {
        Command::Syscalls => {
            print_syscalls();
            Ok(0)
        }
        Command::Platforms => {
            print_platforms();
            Ok(0)
        }
        Command::Debug { what: DebugCommand::Filters } => {
            crate::filters::print(g.platform.as_deref().unwrap_or(PLATFORMS[0]));
            Ok(0)
        }
        Command::Debug { what: DebugCommand::Egress { dests, .. } } => {
            crate::egress::print_decisions(&lists.allow_host, &lists.add_host, &dests)
        }
        Command::Lifecycle(c) => crate::lifecycle::run(&g, c),
        Command::Run { bundle, target, detach, pid_file, console_socket, .. } => {
            let (dir, id) = run_target(bundle, target)?;
            if detach {
                return crate::lifecycle::create_and_start(&g, &dir, &id, pid_file, console_socket);
            }
            if let Some(p) = &pid_file {
                crate::lifecycle::write_pid_file(p, std::process::id() as i32)?;
            }
            crate::state::validate_id(&id)?;
            crate::state::prepare_root(&g.root)?;
            let mut cfg = crate::bundle::load(&dir).map_err(|e| {
                if dir == Path::new(".") {
                    format!("{e} (took {id:?} as a container id; give a bundle as `run DIR` or `run --bundle DIR ID`)")
                } else {
                    e
                }
            })?;
            net.apply(&mut cfg.network)?;
            let console = crate::console::attach(&crate::console::target(cfg.terminal, console_socket))?;
            cfg.console = console.sentry_fd();
            let r = boot::run_container(&g, &id, &dir, cfg);
            drop(console);
            r
        }
        Command::Do { cwd, memory_limit, pids_limit, overlay_size, tty, cmd, .. } => {
            let mut cfg = do_config(cwd, cmd)?;
            cfg.limits.memory = memory_limit.filter(|&m| m > 0);
            cfg.limits.pids = pids_limit.filter(|&p| p > 0);
            cfg.limits.overlay_size = overlay_size;
            if net.wants_egress() {
                cfg.network.mode = NetworkMode::Sandbox;
            }
            net.apply(&mut cfg.network)?;
            cfg.terminal = tty;
            let console = crate::console::attach(&crate::console::target(tty, None))?;
            cfg.console = console.sentry_fd();
            let r = boot::run_sandbox(&g, cfg);
            drop(console);
            r
        }
    }
}

/// The bundle directory and container id of `run`: `--bundle DIR [ID]`
/// (the id defaults to the directory's name), `run DIR` (anything with a
/// `/` in it, or an existing directory, is a bundle path; its name is the
/// id) or `run ID` (the bundle is the current directory, as runc's).
fn run_target(bundle: Option<PathBuf>, target: Option<String>) -> Result<(PathBuf, String), String> {
    let dir_name = |dir: &Path| -> Result<String, String> {
        let name = dir
            .canonicalize()
            .map_err(|e| format!("bundle {}: {}", dir.display(), io_text(&e)))?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        crate::state::validate_id(&name).map_err(|e| {
            format!("bundle {}: its name is not a usable container id ({e}); use --bundle DIR ID", dir.display())
        })?;
        Ok(name)
    };
    match (bundle, target) {
        (Some(b), Some(id)) => Ok((b, id)),
        (Some(b), None) => {
            let id = dir_name(&b)?;
            Ok((b, id))
        }
        (None, Some(t)) if t.contains('/') || Path::new(&t).is_dir() => {
            let dir = PathBuf::from(&t);
            let id = dir_name(&dir)?;
            Ok((dir, id))
        }
        (None, Some(t)) => Ok((PathBuf::from("."), t)),
        (None, None) => Err("run: give a bundle directory (run BUNDLE_DIR) or --bundle DIR ID".into()),
    }
}

/// An I/O error without Rust's "(os error N)" suffix.
fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such directory".into(),
        _ => e.to_string(),
    }
}

/// `do`: host root read-only under an in-memory overlay, the caller's
/// working directory and environment, PATH looked up.
fn do_config(cwd: Option<PathBuf>, cmd: Vec<String>) -> Result<SandboxConfig, String> {
    let cwd = match cwd {
        Some(c) => c,
        None => std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
    };
    let env: Vec<String> = std::env::vars_os()
        .filter_map(|(k, v)| Some(format!("{}={}", k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let path_var = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let argv = cmd;
    let prog = argv.first().cloned().ok_or("do: no command given")?;
    // The executable is found here, in the host's PATH (the sandbox's root
    // is the host's /); argv[0] stays what the user typed, as a shell
    // leaves it.
    let exe = if prog.contains('/') {
        prog
    } else {
        path_var
            .split(':')
            .map(|d| PathBuf::from(if d.is_empty() { "." } else { d }).join(&prog))
            .find(|p| is_executable(p))
            .ok_or_else(|| format!("do: {prog}: command not found in PATH"))?
            .to_string_lossy()
            .into_owned()
    };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "runsc".into());
    Ok(SandboxConfig {
        root_path: PathBuf::from("/"),
        root_readonly: true,
        root_overlay: true,
        do_root: true,
        mounts: vec![
            MountSpec { dest: "/proc".into(), kind: MountKind::Proc, flags: Default::default() },
            MountSpec { dest: "/dev".into(), kind: MountKind::Dev, flags: Default::default() },
        ],
        exe,
        argv,
        env,
        cwd: cwd.to_string_lossy().into_owned(),
        uid: 0,
        gid: 0,
        groups: host_groups(),
        hostname,
        umask: 0o022,
        limits: Default::default(),
        network: Default::default(),
        terminal: false,
        console: None,
    })
}

/// `--memory-limit`: bytes with k/m/g suffixes (512M, 4G, 4GiB).
fn parse_bytes(s: &str) -> Result<u64, String> {
    match boot::Size::parse(s) {
        Some(boot::Size::Bytes(b)) => Ok(b),
        _ => Err(format!("{s:?} is not a size (bytes, or with a k, m or g suffix: 512M, 4G)")),
    }
}

/// `--overlay-size`: as `--memory-limit`, or N%.
fn parse_size(s: &str) -> Result<boot::Size, String> {
    boot::Size::parse(s).ok_or_else(|| format!("{s:?} is not a size (512M, 4G, or N% of the memory)"))
}

fn print_syscalls() {
    use std::io::Write as _;
    let table = syscalls::build_table();
    let (mut full, mut partial, mut unimpl) = (0, 0, 0);
    // Written, not println!'d: a closed pipe (`| head`) ends the listing
    // quietly instead of panicking.
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{:>4}  {:<24} SUPPORT", "NR", "NAME").is_err() {
        return;
    }
    for (nr, e) in table.entries() {
        let s = match &e.support {
            sentry::Support::Full => {
                full += 1;
                "full".to_string()
            }
            sentry::Support::Partial(n) => {
                partial += 1;
                format!("partial: {n}")
            }
            sentry::Support::Unimplemented(n) => {
                unimpl += 1;
                format!("unimplemented: {n}")
            }
        };
        if writeln!(out, "{nr:>4}  {:<24} {s}", e.name).is_err() {
            return;
        }
    }
    let _ = writeln!(out, "total {}: {full} full, {partial} partial, {unimpl} unimplemented", full + partial + unimpl);
}

fn print_platforms() {
    let mut default = None;
    for p in PLATFORMS {
        match boot::probe_platform(p) {
            Ok(()) => {
                let d = if default.is_none() { " (default)" } else { "" };
                default.get_or_insert(*p);
                println!("{p}\tavailable{d}");
            }
            Err(e) => println!("{p}\tunavailable: {e}"),
        }
    }
}

/// A regular file with an execute bit, as execvp(3) looks for.
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// The caller's supplementary groups, which `do` keeps.
fn host_groups() -> Vec<u32> {
    let mut g = vec![0 as libc::gid_t; 256];
    // SAFETY: the buffer holds 256 gids, as the size argument says.
    let n = unsafe { libc::getgroups(g.len() as i32, g.as_mut_ptr()) };
    g.truncate(usize::try_from(n).unwrap_or(0));
    g
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::{CommandFactory, Parser};

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn network_flags_are_global_and_repeatable() {
        let cli = Cli::try_parse_from([
            "runsc-lite",
            "--allow-host=example.org",
            "-p",
            "18080:8000",
            "do",
            "--allow-host",
            "*.example.net:443",
            "--publish=5353:53/udp",
            "--dns=none",
            "curl",
            "-p",
        ])
        .unwrap();
        let g = cli.global;
        assert_eq!(g.dns.as_deref(), Some("none"));
        let super::Command::Do { cmd, lists, .. } = cli.command else { panic!("not do") };
        let all = g.lists.and(lists);
        assert_eq!(all.allow_host, ["example.org", "*.example.net:443"]);
        assert_eq!(all.publish, ["18080:8000", "5353:53/udp"]);
        assert_eq!(cmd, ["curl", "-p"]);
    }
}
