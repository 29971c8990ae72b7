//! The Sentry: a Linux 4.4 x86-64 kernel in user space. Tasks, thread
//! groups, the memory manager over the memory file, the ELF loader,
//! procfs and the task run loop. The syscall table itself is built by the
//! `syscalls` crate and handed in at boot.

pub mod exec;
pub mod failure;
pub mod filecache;
pub mod fown_signals;
pub mod freeze;
pub mod futex;
pub mod futex_pi;
pub mod hostfacts;
pub mod kernel;
pub mod kmsg;
pub mod limits;
pub mod loader;
pub mod locking;
pub mod membarrier;
pub mod memfile;
pub mod mm;
pub mod pidfd;
pub mod process;
pub mod procfs;
pub mod procfs_net;
pub mod rseq;
pub mod sched;
pub mod sharedfile;
pub mod signal;
pub mod signalfd;
pub mod splicefill;
pub mod strace;
pub mod sysfs;
pub mod table;
pub mod task;
pub mod textbusy;
pub mod timers;
pub mod tty_jobs;
pub mod vdso;

pub use kernel::{BootError, ExitStatus, FsContext, Kernel, ThreadGroup};
pub use table::{Support, SysResult, SyscallTable};
pub use task::Task;

/// `uname -r`.
pub const RELEASE: &str = "4.4.0";
/// `uname -v`.
pub const VERSION: &str = "#1 SMP Sun Jan 10 15:06:54 PST 2016";

use std::sync::Arc;
use vfs::{Creds, FdTable};

/// What the first process of a sandbox is.
pub struct InitSpec {
    /// The program: a path, or a name without `/` looked up in the `PATH`
    /// of `envp` inside the sandbox (as runc looks up `process.args[0]`).
    pub exe: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// Working directory (absolute, inside the sandbox).
    pub cwd: Vec<u8>,
    pub creds: Creds,
    /// Descriptors to install (normally 0, 1, 2: the caller's stdio).
    pub files: Vec<(i32, Arc<vfs::OpenFile>)>,
    pub umask: u32,
}

/// Start the first process and run it on the calling thread until the
/// sandbox's init exits.
pub fn run_init(kernel: &Arc<Kernel>, spec: InitSpec) -> Result<ExitStatus, BootError> {
    let started = start_process(kernel, spec)?;
    let status = started.run();
    if failure::failing() {
        // The panic hook ends the process with its own status.
        failure::wait_for_end();
    }
    Ok(status)
}

/// A process loaded (its program exec'd) but not yet running; it runs on
/// the thread that called [`start_process`] (procfs's notion of the
/// current pid is per thread).
pub struct StartedProcess {
    task: Task,
    tg: Arc<ThreadGroup>,
}

impl StartedProcess {
    /// The process's pid inside the sandbox.
    pub fn pid(&self) -> i32 {
        self.tg.tgid
    }

    /// Run until the process (every thread of it) has exited; it is reaped
    /// here (it has no parent inside the sandbox).
    pub fn run(mut self) -> ExitStatus {
        self.task.run();
        let tg = self.tg;
        let kernel = tg.kernel.clone();
        process::task_exited(self.task);
        // Other threads may still be running: the process ends with the last.
        loop {
            let gen = *locking::lock(&kernel.wait_gen);
            if *locking::lock(&tg.zombie) {
                break;
            }
            let g = locking::lock(&kernel.wait_gen);
            if *g == gen {
                let _ = kernel.wait_cv.wait_timeout(g, std::time::Duration::from_millis(50));
            }
        }
        kernel.unregister_group(tg.tgid);
        tg.exit_status().unwrap_or(ExitStatus::Exited(0))
    }
}

/// Load a new parentless process (the first one, or one an OCI `exec`
/// adds to a running sandbox) on the calling thread.
pub fn start_process(kernel: &Arc<Kernel>, spec: InitSpec) -> Result<StartedProcess, BootError> {
    let root = kernel.mounts.root();
    let cwd = kernel.mounts.resolve(&root, &root, &spec.cwd, vfs::Follow::Yes, &spec.creds).map_err(|e| {
        BootError::Other(format!("working directory {:?}: {}", String::from_utf8_lossy(&spec.cwd), e.describe()))
    })?;
    if !cwd.is_dir() {
        return Err(BootError::Other(format!(
            "working directory {:?} is not a directory",
            String::from_utf8_lossy(&spec.cwd)
        )));
    }
    let space = kernel.platform.new_address_space()?;
    let mm = mm::MemoryManager::new(space, kernel.memfile.clone(), kernel.platform.max_user_address());
    // It runs nothing before its exec, which builds on this space.
    mm.mark_unused();
    let fds = FdTable::new();
    for (fd, f) in spec.files {
        fds.install_at(fd, f, false, vfs::fdtable::MAX_NOFILE)
            .map_err(|e| BootError::Other(format!("installing fd {fd}: {e}")))?;
    }
    let path = find_program(kernel, &root, &cwd, &spec.exe, &spec.envp, &spec.creds)?;
    let fs = FsContext { root: root.clone(), cwd, umask: spec.umask };
    kernel.tasks.charge().map_err(|_| BootError::Other("pids limit: no room for a new process".into()))?;
    let tg = ThreadGroup::new(kernel, mm, fds, fs, spec.creds);
    if let Some(l) = kernel.limits.get() {
        let mut r = kernel::lock(&tg.rlimits);
        for &(res, lim) in &l.rlimits {
            if let Some(slot) = r.get_mut(res as usize) {
                *slot = lim;
            }
        }
    }
    procfs::set_current_pid(tg.tgid);
    tty_jobs::install(kernel);
    fown_signals::install(kernel);
    let fail = |e: BootError| {
        kernel.unregister_group(tg.tgid);
        e
    };
    let mut task = Task::new(tg.clone(), tg.tgid, Default::default()).map_err(|e| fail(e.into()))?;
    if let Err(errno) = exec::execve(&mut task, &path, spec.argv, spec.envp) {
        process::task_exited(task);
        return Err(fail(BootError::Exec { path: String::from_utf8_lossy(&path).into_owned(), errno }));
    }
    Ok(StartedProcess { task, tg })
}

/// The default `PATH` when the environment has none (runc's).
const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `exe` itself when it holds a `/`, else the first regular file called
/// `exe` in the directories of the environment's `PATH`, resolved inside
/// the sandbox.
fn find_program(
    kernel: &Arc<Kernel>,
    root: &vfs::DentryRef,
    cwd: &vfs::DentryRef,
    exe: &[u8],
    envp: &[Vec<u8>],
    creds: &Creds,
) -> Result<Vec<u8>, BootError> {
    if exe.is_empty() {
        return Err(BootError::Other("no program to run (process.args[0] is empty)".into()));
    }
    if exe.contains(&b'/') {
        return Ok(exe.to_vec());
    }
    let path_var = envp.iter().rev().find_map(|e| e.strip_prefix(b"PATH=")).unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let mut candidate = dir.to_vec();
        candidate.push(b'/');
        candidate.extend_from_slice(exe);
        let found = kernel.mounts.resolve(root, cwd, &candidate, vfs::Follow::Yes, creds);
        if found.is_ok_and(|d| d.is_regular()) {
            return Ok(candidate);
        }
    }
    Err(BootError::Other(format!(
        "{}: executable file not found in $PATH ({})",
        String::from_utf8_lossy(exe),
        String::from_utf8_lossy(path_var)
    )))
}
