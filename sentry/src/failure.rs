//! The failure policy (DESIGN.md, Failure policy): a guest can make a
//! syscall fail, never make the Sentry fail. If a Sentry thread panics all
//! the same, the sandbox ends as a whole, at once:
//!
//! - the first panic wins; a thread that panics after it waits for the end;
//! - one line on stderr names the panic, its thread and its location;
//! - every host child of the Sentry (the stubs that are the guest's
//!   processes) is killed with SIGKILL and reaped;
//! - the process exits with [`EXIT_STATUS`] through `_exit`, without
//!   unwinding, destructors or atexit handlers.
//!
//! The hook runs before any unwinding and never returns, so the panicking
//! thread keeps every lock it holds: no other thread ever sees a poisoned
//! lock (crate::locking), and nothing the hook does takes a Sentry lock, so
//! a panic with locks held cannot hang it. A thread that dies of a panic
//! therefore never leaves a sandbox hanging: a process's last thread, a
//! parent in wait4, a platform's owner thread all end with it.
//!
//! Killing the stubs here is an explicit first step; the kernel's own
//! backstops stay: every stub has PR_SET_PDEATHSIG (SIGKILL) against the
//! Sentry thread that forked it, and ptrace stubs PTRACE_O_EXITKILL, so a
//! stub this hook cannot see (no /proc in a confined Sentry, or forked
//! concurrently) dies when the process exits.

use std::sync::atomic::{AtomicBool, Ordering};

/// runsc-lite's exit status when the Sentry failed: the runtime-error
/// status of docker, podman and runc (`docker run` exits 125 when the
/// daemon fails). No exit status is beyond a guest's reach (exit(125)
/// gives 125 too), so the line on stderr is what tells them apart; 125 is
/// outside what shells give for signals (128 + N) and for commands that
/// cannot run (126, 127), and is the status tools already read as "the
/// runtime failed, not the container".
pub const EXIT_STATUS: i32 = 125;

/// Set by the first panic.
static FAILING: AtomicBool = AtomicBool::new(false);

/// Set when the Sentry is the init of its own pid namespace: its exit
/// kills every process in it (the stubs too), and its confinement allows
/// neither a walk of /proc nor kill(2) of arbitrary pids.
static NAMESPACE_INIT: AtomicBool = AtomicBool::new(false);

/// The Sentry is the init of its own pid namespace (see [`NAMESPACE_INIT`]).
pub fn set_pid_namespace_init() {
    NAMESPACE_INIT.store(true, Ordering::Release);
}

/// Install the panic hook for the rest of the process (idempotent).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(on_panic)));
}

/// Whether the sandbox is ending after a panic.
pub fn failing() -> bool {
    FAILING.load(Ordering::Acquire)
}

/// Stop here while the panic hook ends the process: a thread that sees
/// its stub killed, or init's end, must not race the hook to an exit with
/// another status (or log the kills as errors).
pub fn wait_for_end() -> ! {
    loop {
        std::thread::park();
    }
}

fn on_panic(info: &std::panic::PanicHookInfo<'_>) {
    if FAILING.swap(true, Ordering::AcqRel) {
        // Another thread is ending the sandbox.
        wait_for_end();
    }
    write_stderr(&describe(info));
    end_host_children();
    // SAFETY: _exit(2) ends the process without unwinding, destructors or
    // atexit handlers (which could need the locks this thread holds).
    unsafe { libc::_exit(EXIT_STATUS) }
}

/// The one line: thread, location and message (kept on one line, and
/// short: a message may quote guest data).
fn describe(info: &std::panic::PanicHookInfo<'_>) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    let at = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
    let msg = match (info.payload().downcast_ref::<&str>(), info.payload().downcast_ref::<String>()) {
        (Some(s), _) => s,
        (None, Some(s)) => s.as_str(),
        (None, None) => "(no message)",
    };
    let mut msg: String = msg.chars().take(400).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if msg.is_empty() {
        msg.push_str("(no message)");
    }
    format!("runsc-lite: Sentry panic in thread '{name}' at {at}: {msg}; sandbox ended (exit status {EXIT_STATUS})\n")
}

/// Straight to descriptor 2: std's stderr lock may be held by the thread
/// that panicked.
fn write_stderr(line: &str) {
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        // SAFETY: writes from a live byte slice; no other memory touched.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n > 0 {
            rest = &rest[n as usize..];
        } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            break;
        }
    }
}

/// SIGKILL every child process of the Sentry (its stubs) and reap them,
/// waiting at most a few seconds in all: the hook must never hang.
fn end_host_children() {
    if NAMESPACE_INIT.load(Ordering::Acquire) {
        return;
    }
    let children = host_children();
    for &pid in &children {
        // SAFETY: kill(2) touches no memory; `pid` was listed as our child
        // just now and only a wait by this process can free its pid.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut left = children;
    while !left.is_empty() && std::time::Instant::now() < deadline {
        left.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waitpid(2) writes one int to a live local.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
            // 0: not yet; else reaped, or reaped by someone else (ECHILD).
            r == 0
        });
        if !left.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// The pids in /proc/self/task/*/children (empty without /proc).
fn host_children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    let mut pids = Vec::new();
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            pids.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()).filter(|&p| p > 0));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The debug-only syscall that provokes a Sentry panic, for the tests of
/// this policy: number [`DEBUG_PANIC_SYSCALL`], first argument
/// [`DEBUG_PANIC_COOKIE`], second the kind of failure. Compiled into debug
/// builds only; release builds answer ENOSYS like any unknown number.
pub const DEBUG_PANIC_SYSCALL: u64 = 0x5253_4c00;
/// Guards the debug syscall against a random hit (a fuzzer).
pub const DEBUG_PANIC_COOKIE: u64 = 0x7061_6e69_6321;

/// What [`DEBUG_PANIC_SYSCALL`] asks for.
#[cfg(debug_assertions)]
pub fn debug_panic(task: &mut crate::Task, args: &[u64; 6]) -> crate::SysResult {
    use crate::locking::lock;
    if args[0] != DEBUG_PANIC_COOKIE {
        return Err(abi::Errno::ENOSYS);
    }
    match args[1] {
        // On this task's own thread.
        0 => panic!("debug panic requested by guest process {}", task.tg.tgid),
        // On another Sentry thread, while this task goes on.
        1 => {
            std::thread::Builder::new()
                .name("debug-panic".into())
                .spawn(|| panic!("debug panic on a helper thread"))
                .map_err(|_| abi::Errno::EAGAIN)?;
            Ok(0)
        }
        // With locks held that other threads need: the process's threads
        // (signals, exits) and the kernel's wait generation (wait4).
        2 => {
            let _threads = lock(&task.tg.threads);
            let _waits = lock(&task.kernel.wait_gen);
            panic!("debug panic holding the thread list and wait locks")
        }
        _ => Err(abi::Errno::EINVAL),
    }
}
