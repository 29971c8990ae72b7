//! Building a sandbox: the memory file, the platform, the mount table and
//! the first process, then running it to the end.

use crate::cli::GlobalFlags;
use platform::profile::{self, Phase};
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
    /// A minimal sysfs (`sentry::sysfs`).
    Sys,
    Dev,
    Tmpfs {
        mode: u32,
        size: Option<Size>,
        nr_inodes: Option<u64>,
    },
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
    /// The root is the host's own (`do`): files the sandbox must see
    /// differently (resolv.conf) are replaced in the overlay.
    pub do_root: bool,
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
    pub network: crate::egress::NetworkConfig,
    /// `process.terminal` (`do -t`): the guest gets a terminal.
    pub terminal: bool,
    /// The host terminal descriptor the Sentry bridges the guest's
    /// terminal to (see console.rs); inherited by the Sentry.
    pub console: Option<std::os::fd::RawFd>,
}

/// Can platform `name` run here?
pub fn probe_platform(name: &str) -> Result<(), String> {
    let mf = MemoryFile::new().map_err(|e| e.to_string())?;
    make_platform(name, &mf).map(|_| ())
}

fn make_platform(name: &str, mf: &Arc<MemoryFile>) -> Result<Arc<dyn platform::Platform>, String> {
    let p = make_bare_platform(name, mf)?;
    match stub_pool_size() {
        0 => Ok(p),
        n => Ok(Arc::new(platform::pool::PooledPlatform::new(p, n))),
    }
}

/// Address spaces made ahead of time (`platform::pool`): two, what a
/// shell's fork+exec takes; `RUNSC_LITE_STUB_POOL=N` changes it (0: none,
/// for comparison).
fn stub_pool_size() -> usize {
    std::env::var("RUNSC_LITE_STUB_POOL").ok().and_then(|v| v.parse().ok()).unwrap_or(2).min(16)
}

fn make_bare_platform(name: &str, mf: &Arc<MemoryFile>) -> Result<Arc<dyn platform::Platform>, String> {
    match name {
        "systrap" => platform_systrap::SystrapPlatform::with_memory(mf.fds())
            .map(|p| Arc::new(p) as Arc<dyn platform::Platform>)
            .map_err(|e| e.to_string()),
        "ptrace" => platform_ptrace::PtracePlatform::with_memory(mf.fds(), platform_ptrace::CpuBinding::Pin)
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

/// The host roots a sandbox needs, opened before the Sentry confines
/// itself: the root and each bind-mount source, in `cfg.mounts` order.
struct OpenedRoots {
    root: OwnedFd,
    binds: Vec<OwnedFd>,
}

fn open_roots(cfg: &SandboxConfig) -> Result<OpenedRoots, String> {
    let open = |p: &Path, ro: bool| vfs::hostfs::HostFs::open_root(p, ro).map_err(|e| format!("{}: {e}", p.display()));
    let root = open(&cfg.root_path, true)?;
    let mut binds = Vec::new();
    for m in &cfg.mounts {
        if let MountKind::Bind(src) = &m.kind {
            binds.push(open(src, m.flags.readonly)?);
        }
    }
    Ok(OpenedRoots { root, binds })
}

fn build_mounts(
    cfg: &SandboxConfig,
    roots: OpenedRoots,
    budget: &Arc<vfs::hostfs_fds::FdBudget>,
    kernel_proc: &dyn Fn() -> InodeRef,
) -> Result<Arc<MountNamespace>, String> {
    let host = |fd: OwnedFd, ro: bool, what: &Path| {
        vfs::hostfs::HostFs::from_fd(fd, ro, budget.clone()).map_err(|e| format!("{}: {e}", what.display()))
    };
    // The root's host tree is read-only to the sandbox: its attributes
    // and names are trusted for a while (vfs::attrcache), bind mounts'
    // are revalidated at every guest call.
    let lower = vfs::hostfs::HostFs::from_fd_revalidated(
        roots.root,
        true,
        budget.clone(),
        vfs::attrcache::Revalidate::After(vfs::attrcache::TRUSTED_FOR),
    )
    .map_err(|e| format!("{}: {e}", cfg.root_path.display()))?;
    let total = cfg.limits.total_memory();
    // Linux's tmpfs defaults: half the memory, half as many inodes as it
    // has pages.
    let inodes = (total / abi::PAGE_SIZE / 2).max(1024);
    let (root, readonly) = if cfg.root_overlay {
        let upper = vfs::tmpfs::TmpFs::new_root_sized(0o755, 0, 0, cfg.limits.overlay_bytes(), inodes);
        let sandbox_dns = cfg.network.mode == crate::egress::NetworkMode::Sandbox && cfg.network.dns;
        if sandbox_dns {
            let text = crate::egress::dns::resolv_conf();
            // `do` always gets the sandbox's resolver (the host's own
            // resolv.conf names servers the sandbox cannot reach); a
            // bundle only when its root has none.
            let has_own = lower.lookup(b"etc").and_then(|etc| etc.lookup(b"resolv.conf")).is_ok();
            if cfg.do_root || !has_own {
                seed_file(&(upper.clone() as InodeRef), b"etc", b"resolv.conf", text.as_bytes())
                    .map_err(|e| format!("writing the sandbox's /etc/resolv.conf: {e}"))?;
            }
        }
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
    let mut binds = roots.binds.into_iter();
    for m in &cfg.mounts {
        let dest = normalize(&m.dest);
        let (fs, typ, source): (InodeRef, &str, String) = match &m.kind {
            MountKind::Proc => (kernel_proc(), "proc", "proc".into()),
            MountKind::Sys => (sentry::sysfs::new_root(), "sysfs", "sysfs".into()),
            MountKind::Dev => {
                // devpts comes with /dev, as in a container runc starts.
                let dev = vfs::devfs::DevFs::new_root();
                sentry::kmsg::add_dev_node(&dev).map_err(|e| format!("/dev/kmsg: {e:?}"))?;
                let pts = vfs::tty::DevPts::new();
                pts.attach_dev(&dev).map_err(|e| format!("/dev/ptmx: {e}"))?;
                ns.mount(dest.as_bytes(), "tmpfs", "none", dev, m.flags.clone());
                let pts_dest = format!("{}/pts", dest.trim_end_matches('/'));
                ns.mount(pts_dest.as_bytes(), "devpts", "devpts", pts.root(), m.flags.clone());
                continue;
            }
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
            MountKind::Bind(src) => {
                let fd = binds.next().ok_or("bind mount roots out of step")?;
                (host(fd, m.flags.readonly, src)?, "bind", src.to_string_lossy().into_owned())
            }
        };
        ns.mount(dest.as_bytes(), typ, &source, fs, m.flags.clone());
    }
    Ok(ns)
}

/// Put `name` with `content` in directory `dir` of a fresh in-memory
/// root (the overlay's upper layer, before the guest runs).
fn seed_file(root: &InodeRef, dir: &[u8], name: &[u8], content: &[u8]) -> Result<(), abi::Errno> {
    let creds = Creds::new(0, 0, Vec::new());
    match root.mkdir(dir, 0o755, &creds) {
        Ok(()) | Err(abi::Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    let d = root.lookup(dir)?;
    let f = d.create(name, 0o644, &creds)?;
    let file = f.open(abi::flags::O_WRONLY)?;
    let irq = vfs::Interrupt::new();
    let ctx = vfs::IoCtx { flags: 0, interrupt: &irq };
    file.write(&ctx, content, 0)?;
    Ok(())
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
    sandbox_file(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// A host descriptor (stdio handed to the sandbox) as a sandbox file.
pub fn sandbox_file(owned: OwnedFd) -> Option<Arc<OpenFile>> {
    let fd = owned.as_raw_fd();
    // SAFETY: F_GETFL on a descriptor we own.
    let fl = unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_GETFL) };
    let flags = if fl < 0 { abi::flags::O_RDWR } else { fl as u32 & (abi::flags::O_ACCMODE | abi::flags::O_APPEND) };
    let ops = vfs::hostfd::HostFdFile::new(owned);
    Some(OpenFile::new_anon(ops, flags, format!("host:[{fd}]")))
}

/// The guest's terminal: a Sentry pty bridged to the host terminal `fd`;
/// returns the bridge and init's stdio (the slave, opened by its path so
/// that ttyname works). Init (pid 1) leads its session and controls it.
fn start_console(
    kernel: &Arc<Kernel>,
    fd: i32,
    cfg: &SandboxConfig,
) -> Result<(vfs::tty::console::Console, Arc<OpenFile>), String> {
    // SAFETY: F_DUPFD_CLOEXEC on the descriptor the parent left us.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(format!("the console descriptor: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor owned by nobody else; the inherited one is closed.
    let host = unsafe {
        libc::close(fd);
        OwnedFd::from_raw_fd(dup)
    };
    console_on(kernel, host, &Creds::new(cfg.uid, cfg.gid, cfg.groups.clone()), 1)
}

/// A Sentry pty bridged to host terminal `host`, controlled by session
/// `sid`, and its slave opened for a process's stdio.
pub fn console_on(
    kernel: &Arc<Kernel>,
    host: OwnedFd,
    creds: &Creds,
    sid: i32,
) -> Result<(vfs::tty::console::Console, Arc<OpenFile>), String> {
    let c = vfs::tty::console::start(host, sid).map_err(|e| format!("the console: {}", e.describe()))?;
    let root = kernel.mounts.root();
    let d = kernel
        .mounts
        .resolve(&root, &root, c.slave_path.as_bytes(), vfs::Follow::Yes, creds)
        .map_err(|e| format!("the console {}: {}", c.slave_path, e.describe()))?;
    let ops = d
        .inode
        .open(abi::flags::O_RDWR | abi::flags::O_NOCTTY)
        .map_err(|e| format!("the console: {}", e.describe()))?;
    let f = OpenFile::new(ops, Some(d), abi::flags::O_RDWR);
    Ok((c, f))
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
    crate::sandbox::run(g, cfg)
}

/// The Sentry process (the child `sandbox::run` started in new
/// namespaces): returns its exit code, the guest's.
pub fn sentry_main(g: &GlobalFlags, cfg: SandboxConfig, ch: crate::sandbox::ChildChannels) -> i32 {
    // Die with runsc-lite; then wait until it has written our maps (EOF:
    // it is gone already).
    // SAFETY: prctl without pointers; read into a live local.
    let go = unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        let mut b = 0u8;
        libc::read(ch.go.as_raw_fd(), (&mut b as *mut u8).cast(), 1)
    };
    if go != 1 {
        return 1;
    }
    drop(ch.go);
    let control = ch.control.as_ref().and_then(|c| c.try_clone().ok());
    match sentry_boot(g, cfg, ch.report, ch.signals, ch.egress, ch.control) {
        Ok(code) => code,
        Err(e) => {
            match control {
                // `create` reports it to its caller.
                Some(c) => crate::sentry_control::report(c.as_raw_fd(), serde_json::json!({ "error": e })),
                None => eprintln!("runsc-lite: {e}"),
            }
            1
        }
    }
}

/// Host descriptors a sandbox may hold: the Sentry's soft RLIMIT_NOFILE is
/// raised to its hard limit; guest files get at most half of what is left
/// after a reserve for the Sentry itself (memory files, stubs' channels,
/// roots, stdio), node descriptors a fixed number.
fn fd_budget() -> Arc<vfs::hostfs_fds::FdBudget> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: get/setrlimit on a live local.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    let nofile = (lim.rlim_cur as usize).max(1024);
    let files = (nofile.saturating_sub(2048) / 2).clamp(256, 65536);
    vfs::hostfs_fds::FdBudget::new(vfs::hostfs_fds::DEFAULT_NODE_FDS, files)
}

/// Grow the Sentry's descriptor table now, while it has one thread: the
/// kernel grows a shared table only after an RCU grace period (several
/// milliseconds on these machines, at 256, 512, 1024, ... descriptors),
/// which the node-descriptor cache would otherwise pay in the middle of a
/// guest's file walk. A table never shrinks, so one dup past the size
/// the cache needs is enough.
fn presize_fd_table(any: &OwnedFd) {
    const SIZE: i32 = 2 * vfs::hostfs_fds::DEFAULT_NODE_FDS as i32 + 512;
    // SAFETY: F_DUPFD_CLOEXEC of a descriptor we own; the copy is closed
    // at once (only the table's size was wanted).
    unsafe {
        let fd = libc::fcntl(any.as_raw_fd(), libc::F_DUPFD_CLOEXEC, SIZE - 1);
        if fd >= 0 {
            libc::close(fd);
        }
    }
}

fn random_u64() -> u64 {
    let mut v = 0u64;
    // SAFETY: getrandom writes 8 bytes into a live u64.
    unsafe { libc::getrandom((&mut v as *mut u64).cast(), 8, 0) };
    v
}

fn sentry_boot(
    g: &GlobalFlags,
    cfg: SandboxConfig,
    report: OwnedFd,
    signals: OwnedFd,
    egress: Option<OwnedFd>,
    control: Option<OwnedFd>,
) -> Result<i32, String> {
    // From here on a panic in any thread ends the sandbox as a whole
    // (sentry::failure): one line, exit status 125; being the init of its
    // pid namespace, the Sentry takes every stub with it when it exits.
    sentry::failure::install();
    sentry::failure::set_pid_namespace_init();
    let t_boot = profile::start();
    let t = profile::start();
    // Everything the confined Sentry will reach on the host, opened now.
    sentry::hostfacts::init();
    // Whether the syscall loop's clock may be the TSC (reads /sys).
    platform::clock::init();
    profile::add(Phase::BootHostFacts, t);
    // glibc's malloc reads host files lazily, which the confined Sentry
    // may not: /sys/devices/system/cpu/online the first time it wants a
    // ninth arena (unless the arena limit is set), and
    // /proc/sys/vm/overcommit_memory the first time it shrinks a thread
    // arena's heap (never, with a trim threshold of a whole heap, 64 MiB).
    let arenas = (8 * sentry::hostfacts::ncpus()).min(i32::MAX as usize) as i32;
    // SAFETY: mallopt changes malloc parameters; still one thread here.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
    let budget = fd_budget();
    let t = profile::start();
    let roots = open_roots(&cfg)?;
    presize_fd_table(&roots.root);
    profile::add(Phase::BootRoots, t);
    let t = profile::start();
    let proc_fd = crate::confine::private_mounts_and_proc()?;
    profile::add(Phase::BootMountsProc, t);
    let t = profile::start();
    crate::confine::pivot_to_empty_root()?;
    profile::add(Phase::BootPivot, t);
    let mut held = vec![crate::confine::HeldRoot {
        fd: roots.root.as_raw_fd(),
        write: false,
        is_dir: crate::confine::is_dir(&roots.root),
    }];
    let bind_flags = cfg.mounts.iter().filter_map(|m| matches!(m.kind, MountKind::Bind(_)).then_some(m.flags.readonly));
    for (fd, ro) in roots.binds.iter().zip(bind_flags) {
        held.push(crate::confine::HeldRoot { fd: fd.as_raw_fd(), write: !ro, is_dir: crate::confine::is_dir(fd) });
    }
    // The cache file's tmpfs is mounted while the Sentry may still mount.
    let cache_file = sentry::memfile::huge_cache_file();
    let t = profile::start();
    crate::confine::drop_privileges(&held, proc_fd.as_raw_fd())?;
    profile::add(Phase::BootPrivileges, t);
    #[cfg(debug_assertions)]
    let probe_fd = roots.binds.first().unwrap_or(&roots.root).try_clone().ok();
    platform::set_proc_dir(proc_fd);

    // Before any stub exists: stubs inherit the registration (fork).
    sentry::membarrier::register_host();
    let t = profile::start();
    let memfile = MemoryFile::with_cache(cache_file).map_err(|e| e.to_string())?;
    profile::add(Phase::BootMemoryFile, t);
    let t = profile::start();
    let platform = match &g.platform {
        Some(name) => make_platform(name, &memfile)?,
        None => default_platform(&memfile)?,
    };
    profile::add(Phase::BootPlatform, t);
    let platform_name = platform.name();
    let t = profile::start();
    let table = Arc::new(syscalls::build_table());
    profile::add(Phase::BootTable, t);

    // procfs needs the kernel and the kernel needs the mounts: mount a
    // forwarding procfs root that is filled in once the kernel exists.
    let proc_slot: Arc<std::sync::OnceLock<InodeRef>> = Arc::new(std::sync::OnceLock::new());
    let slot = proc_slot.clone();
    let t = profile::start();
    let mounts = build_mounts(&cfg, roots, &budget, &move || sentry::procfs::deferred_root(slot.clone()))?;
    profile::add(Phase::BootMounts, t);
    let t = profile::start();
    let kernel = Kernel::new(platform, memfile, table, mounts, &cfg.hostname, g.strace);
    profile::add(Phase::BootKernel, t);
    kernel.set_limits(sentry_limits(&cfg.limits));
    if let Some(chan) = egress {
        let r = if cfg.network.mode == crate::egress::NetworkMode::Host {
            kernel.net.attach_hostinet(chan)
        } else {
            kernel.net.attach_egress(chan)
        };
        r.map_err(|e| format!("starting the sandbox's network: {}", e.describe()))?;
    }
    let _ = proc_slot.set(sentry::procfs::new_root(&kernel));
    relay_signals(&kernel, signals)?;

    let console = match cfg.console {
        Some(fd) => Some(start_console(&kernel, fd, &cfg)?),
        None => None,
    };
    let files = match &console {
        Some((_, f)) => (0..3).map(|fd| (fd, f.clone())).collect(),
        None => (0..3).filter_map(|fd| host_stdio(fd).map(|f| (fd, f))).collect(),
    };
    let spec = InitSpec {
        exe: cfg.exe.as_bytes().to_vec(),
        argv: cfg.argv.iter().map(|s| s.as_bytes().to_vec()).collect(),
        envp: cfg.env.iter().map(|s| s.as_bytes().to_vec()).collect(),
        cwd: cfg.cwd.as_bytes().to_vec(),
        creds: Creds::new(cfg.uid, cfg.gid, cfg.groups.clone()),
        files,
        umask: cfg.umask,
    };
    let cookie = random_u64();
    crate::violation::install(report.as_raw_fd(), cookie)?;
    std::mem::forget(report);
    let t = profile::start();
    crate::filters::install(platform_name, cookie)?;
    profile::add(Phase::BootSeccomp, t);
    #[cfg(debug_assertions)]
    debug_hooks(probe_fd);
    profile::add(Phase::BootToInit, t_boot);
    if let Some(control) = control {
        // `create`: booted and confined; the container's init runs at
        // `start` (an error from loading it is the guest's exit 127 then,
        // as the create has returned already).
        let fd = control.as_raw_fd();
        let start = crate::sentry_control::serve(&kernel, control)?;
        crate::sentry_control::report(fd, serde_json::json!({ "ready": true }));
        let Ok(reply) = start.recv() else { return Ok(0) };
        let init = match sentry::start_process(&kernel, spec) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("runsc-lite: {e}");
                let _ = reply.send(Err(e.to_string()));
                return Ok(127);
            }
        };
        let _ = reply.send(Ok(init.pid()));
        let status = init.run();
        if let Some((c, _)) = &console {
            // What init wrote last must reach the host before the Sentry ends.
            c.drain(std::time::Duration::from_secs(2));
        }
        if sentry::failure::failing() {
            sentry::failure::wait_for_end();
        }
        return Ok(status.shell_code());
    }
    let status = sentry::run_init(&kernel, spec).map_err(|e| e.to_string())?;
    if let Some((c, _)) = console {
        // What init wrote last must reach the host before the Sentry ends.
        c.drain(std::time::Duration::from_secs(2));
    }
    if profile::enabled() {
        eprint!("{}", profile::report(&|nr| kernel.table.name(nr).to_string()));
    }
    Ok(status.shell_code())
}

/// Debug builds only, for the confinement tests: RUNSC_LITE_DEBUG_VIOLATE
/// makes the confined Sentry call socket(2); RUNSC_LITE_DEBUG_OPEN=PATH
/// makes it try to open PATH relative to the first bind mount's root (or
/// the root) and print the outcome.
#[cfg(debug_assertions)]
fn debug_hooks(probe_fd: Option<OwnedFd>) {
    if let (Ok(path), Some(dir)) = (std::env::var("RUNSC_LITE_DEBUG_OPEN"), probe_fd) {
        let c = std::ffi::CString::new(path.clone()).unwrap_or_default();
        // SAFETY: a valid C string; the result is checked and closed.
        let fd =
            unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd >= 0 {
            eprintln!("runsc-lite: debug open {path}: opened");
            // SAFETY: a descriptor we just opened.
            unsafe { libc::close(fd) };
        } else {
            eprintln!("runsc-lite: debug open {path}: {}", std::io::Error::last_os_error());
        }
    }
    if std::env::var_os("RUNSC_LITE_DEBUG_VIOLATE").is_some() {
        // SAFETY: no pointers; the filter kills us here.
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    }
}

/// A thread that passes the signals runsc-lite relays (one byte each) to
/// the guest's init, as the kernel would: from outside, with no sender.
fn relay_signals(kernel: &Arc<Kernel>, signals: OwnedFd) -> Result<(), String> {
    let k = Arc::downgrade(kernel);
    std::thread::Builder::new()
        .name("signal-relay".into())
        .spawn(move || loop {
            let mut b = 0u8;
            // SAFETY: reads one byte into a live local.
            let n = unsafe { libc::read(signals.as_raw_fd(), (&mut b as *mut u8).cast(), 1) };
            if n == 0 || (n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR)) {
                return;
            }
            if n != 1 {
                continue;
            }
            let Some(kernel) = k.upgrade() else { return };
            if let Some(init) = kernel.group(1) {
                sentry::signal::send_signal(&init, sentry::signal::user_info(b as i32, 0, 0, 0));
            }
        })
        .map(drop)
        .map_err(|e| format!("signal relay thread: {e}"))
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
