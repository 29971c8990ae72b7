//! Building a sandbox: the memory file, the platform, the mount table and
//! the first process, then running it to the end.

use crate::cli::GlobalFlags;
use sentry::memfile::MemoryFile;
use sentry::{InitSpec, Kernel};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vfs::{Creds, InodeRef, MountFlags, MountNamespace, OpenFile};

/// What a mount is.
#[derive(Clone, Debug)]
pub enum MountKind {
    Proc,
    Dev,
    Tmpfs { mode: u32, size: Option<Size>, nr_inodes: Option<u64> },
    Bind(PathBuf),
}

/// A size as `size=` and `--overlay-size` take it: bytes, or a percentage
/// of the sandbox's memory (its limit, else the host's RAM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Bytes(u64),
    Percent(u64),
}

impl Size {
    /// `4096`, `512k`, `64M`, `1g` (Linux's memparse suffixes, an optional
    /// trailing `B` or `iB`), or `N%`.
    pub fn parse(s: &str) -> Option<Size> {
        if let Some(p) = s.strip_suffix('%') {
            return p.parse().ok().map(Size::Percent);
        }
        let s = s.strip_suffix("iB").or_else(|| s.strip_suffix('B')).unwrap_or(s);
        vfs::limits::parse_size(s).map(Size::Bytes)
    }

    pub fn bytes(self, total_memory: u64) -> u64 {
        match self {
            Size::Bytes(b) => b,
            Size::Percent(p) => (total_memory as u128 * p as u128 / 100).min(u64::MAX as u128) as u64,
        }
    }
}

/// What the sandbox may use, from the spec's `linux.resources` and
/// `process.rlimits` or `do`'s flags.
#[derive(Clone, Debug, Default)]
pub struct SandboxLimits {
    /// Bytes of memory (None: no limit).
    pub memory: Option<u64>,
    /// Tasks, threads included (None: no limit).
    pub pids: Option<u64>,
    /// (resource, soft, hard) for the first process.
    pub rlimits: Vec<(u32, u64, u64)>,
    /// The size of the root's in-memory overlay (None: the default, half
    /// the memory limit, or 1 GiB without one).
    pub overlay_size: Option<Size>,
}

/// The overlay's size without `--overlay-size`.
pub const DEFAULT_OVERLAY_SIZE: u64 = 1 << 30;

impl SandboxLimits {
    /// The memory `N%` sizes are taken of: the limit, else the host's RAM.
    pub fn total_memory(&self) -> u64 {
        self.memory.unwrap_or_else(host_ram)
    }

    /// The overlay's size; `0` is no size limit (the memory limit holds).
    pub fn overlay_bytes(&self) -> u64 {
        match (self.overlay_size, self.memory) {
            (Some(s), _) if s.bytes(self.total_memory()) == 0 => vfs::tmpfs::UNLIMITED,
            (Some(s), _) => s.bytes(self.total_memory()),
            (None, Some(m)) => m / 2,
            (None, None) => DEFAULT_OVERLAY_SIZE,
        }
    }
}

/// The host's RAM in bytes.
fn host_ram() -> u64 {
    let mut si = std::mem::MaybeUninit::<libc::sysinfo>::zeroed();
    // SAFETY: sysinfo fills the struct it is given.
    if unsafe { libc::sysinfo(si.as_mut_ptr()) } != 0 {
        return 4 << 30;
    }
    // SAFETY: sysinfo succeeded.
    let si = unsafe { si.assume_init() };
    si.totalram.saturating_mul(u64::from(si.mem_unit.max(1)))
}

#[derive(Clone, Debug)]
pub struct MountSpec {
    pub dest: String,
    pub kind: MountKind,
    pub flags: MountFlags,
}

/// Everything needed to start a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub root_path: PathBuf,
    pub root_readonly: bool,
    /// Writes to the root go to an in-memory upper layer (the host is
    /// never written), as runsc's default rootfs overlay.
    pub root_overlay: bool,
    pub mounts: Vec<MountSpec>,
    /// The program to execute: a path, or a name looked up in the guest's
    /// `PATH` inside the sandbox. `argv[0]` is passed as given.
    pub exe: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub hostname: String,
    pub umask: u32,
    pub limits: SandboxLimits,
}

/// Can platform `name` run here?
pub fn probe_platform(name: &str) -> Result<(), String> {
    let mf = MemoryFile::new().map_err(|e| e.to_string())?;
    make_platform(name, &mf).map(|_| ())
}

fn make_platform(name: &str, mf: &Arc<MemoryFile>) -> Result<Arc<dyn platform::Platform>, String> {
    match name {
        "systrap" => platform_systrap::SystrapPlatform::new(mf.fd())
            .map(|p| Arc::new(p) as Arc<dyn platform::Platform>)
            .map_err(|e| e.to_string()),
        "ptrace" => platform_ptrace::PtracePlatform::new(mf.fd())
            .map(|p| Arc::new(p) as Arc<dyn platform::Platform>)
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown platform {other:?}")),
    }
}

/// The first platform of `cli::PLATFORMS` that works here (systrap, else
/// ptrace), as runsc picks systrap by default.
fn default_platform(mf: &Arc<MemoryFile>) -> Result<Arc<dyn platform::Platform>, String> {
    let mut why = Vec::new();
    for name in crate::cli::PLATFORMS {
        match make_platform(name, mf) {
            Ok(p) => {
                if !why.is_empty() {
                    tracing::warn!("using platform {name}: {}", why.join("; "));
                }
                return Ok(p);
            }
            Err(e) => why.push(format!("{name} unavailable: {e}")),
        }
    }
    Err(why.join("; "))
}

fn host_fs(path: &Path, readonly: bool) -> Result<InodeRef, String> {
    vfs::hostfs::HostFs::new_root(path, readonly).map_err(|e| format!("{}: {e}", path.display()))
}

fn build_mounts(cfg: &SandboxConfig, kernel_proc: &dyn Fn() -> InodeRef) -> Result<Arc<MountNamespace>, String> {
    let lower = host_fs(&cfg.root_path, true)?;
    let total = cfg.limits.total_memory();
    // Linux's tmpfs defaults: half the memory, half as many inodes as it
    // has pages.
    let inodes = (total / abi::PAGE_SIZE / 2).max(1024);
    let (root, readonly) = if cfg.root_overlay {
        let upper = vfs::tmpfs::TmpFs::new_root_sized(0o755, 0, 0, cfg.limits.overlay_bytes(), inodes);
        (vfs::overlay::Overlay::new(lower, upper), false)
    } else {
        (lower, cfg.root_readonly)
    };
    let src = cfg.root_path.to_string_lossy().into_owned();
    let ns = MountNamespace::new(
        if cfg.root_overlay { "overlay" } else { "bind" },
        &src,
        root,
        MountFlags { readonly, ..Default::default() },
    );
    for m in &cfg.mounts {
        let dest = normalize(&m.dest);
        let (fs, typ, source): (InodeRef, &str, String) = match &m.kind {
            MountKind::Proc => (kernel_proc(), "proc", "proc".into()),
            MountKind::Dev => (vfs::devfs::DevFs::new_root(), "tmpfs", "none".into()),
            MountKind::Tmpfs { mode, size, nr_inodes } => {
                let size = match size.map(|s| s.bytes(total)) {
                    Some(0) => vfs::tmpfs::UNLIMITED,
                    Some(b) => b,
                    None => total / 2,
                };
                let nr = match nr_inodes {
                    Some(0) => vfs::tmpfs::UNLIMITED,
                    Some(n) => *n,
                    None => inodes,
                };
                (vfs::tmpfs::TmpFs::new_root_sized(*mode, 0, 0, size, nr), "tmpfs", "none".into())
            }
            MountKind::Bind(src) => (host_fs(src, m.flags.readonly)?, "bind", src.to_string_lossy().into_owned()),
        };
        ns.mount(dest.as_bytes(), typ, &source, fs, m.flags.clone());
    }
    Ok(ns)
}

/// "/a//b/./c/" -> "/a/b/c" (".." is refused by the caller's spec checks).
fn normalize(p: &str) -> String {
    let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    format!("/{}", parts.join("/"))
}

/// The caller's descriptor `fd` as a sandbox file, if it is open.
fn host_stdio(fd: i32) -> Option<Arc<OpenFile>> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor number we only read.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return None;
    }
    // SAFETY: `dup` is a fresh descriptor owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(dup) };
    // SAFETY: F_GETFL on a descriptor we own.
    let fl = unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_GETFL) };
    let flags = if fl < 0 { abi::flags::O_RDWR } else { fl as u32 & (abi::flags::O_ACCMODE | abi::flags::O_APPEND) };
    let ops = vfs::hostfd::HostFdFile::new(owned);
    Some(OpenFile::new_anon(ops, flags, format!("host:[{fd}]")))
}

/// The Sentry's view of the limits; also sets the VFS's sandbox-wide ones
/// (fs.epoll.max_user_watches: Linux's 4% of memory at 200 bytes a watch).
fn sentry_limits(l: &SandboxLimits) -> sentry::limits::Limits {
    vfs::limits::set_max_watches((l.total_memory() / 25 / 200).max(1024));
    sentry::limits::Limits {
        memory: l.memory,
        pids: l.pids,
        rlimits: l.rlimits.iter().map(|&(r, cur, max)| (r, abi::Rlimit { cur, max })).collect(),
    }
}

/// Run a sandbox to completion; returns the shell-style exit code.
pub fn run_sandbox(g: &GlobalFlags, cfg: SandboxConfig) -> Result<i32, String> {
    // From here on a panic in any thread ends the sandbox as a whole
    // (sentry::failure): stubs killed, one line, exit status 125.
    sentry::failure::install();
    let memfile = MemoryFile::new().map_err(|e| e.to_string())?;
    let platform = match &g.platform {
        Some(name) => make_platform(name, &memfile)?,
        None => default_platform(&memfile)?,
    };
    let table = Arc::new(syscalls::build_table());

    // procfs needs the kernel and the kernel needs the mounts: mount a
    // forwarding procfs root that is filled in once the kernel exists.
    let proc_slot: Arc<std::sync::OnceLock<InodeRef>> = Arc::new(std::sync::OnceLock::new());
    let slot = proc_slot.clone();
    let mounts = build_mounts(&cfg, &move || sentry::procfs::deferred_root(slot.clone()))?;
    let kernel = Kernel::new(platform, memfile, table, mounts, &cfg.hostname, g.strace);
    kernel.set_limits(sentry_limits(&cfg.limits));
    let _ = proc_slot.set(sentry::procfs::new_root(&kernel));

    let files = (0..3).filter_map(|fd| host_stdio(fd).map(|f| (fd, f))).collect();
    let spec = InitSpec {
        exe: cfg.exe.as_bytes().to_vec(),
        argv: cfg.argv.iter().map(|s| s.as_bytes().to_vec()).collect(),
        envp: cfg.env.iter().map(|s| s.as_bytes().to_vec()).collect(),
        cwd: cfg.cwd.as_bytes().to_vec(),
        creds: Creds::new(cfg.uid, cfg.gid, cfg.groups.clone()),
        files,
        umask: cfg.umask,
    };
    let status = sentry::run_init(&kernel, spec).map_err(|e| e.to_string())?;
    Ok(status.shell_code())
}

/// Run a bundle's container, recording its state under --root while it
/// runs.
pub fn run_container(g: &GlobalFlags, id: &str, bundle: &Path, cfg: SandboxConfig) -> Result<i32, String> {
    let state = crate::state::ContainerState::create(&g.root, id)?;
    state.write_running(id, bundle)?;
    let r = run_sandbox(g, cfg);
    drop(state);
    r
}
