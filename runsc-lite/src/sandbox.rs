//! runsc-lite and its Sentry: two processes.
//!
//! runsc-lite (this process, unconfined) starts the Sentry as a child in
//! new user, mount, pid, ipc, uts and net namespaces (the Sentry is pid 1
//! of its pid namespace, so its death takes every stub with it), writes its
//! uid and gid maps, and waits. It relays the guest's exit status (the
//! Sentry exits with it), passes SIGTERM, SIGINT, SIGHUP and SIGQUIT to the
//! guest's init through a pipe, ends the sandbox (SIGKILL) on a second
//! SIGINT or `--kill-after` after the first signal, and names the syscall
//! when the Sentry dies for breaking its seccomp filter.
//!
//! Identity maps: as root, the whole uid and gid range maps to itself;
//! unprivileged (or with `--rootless`), the caller's uid and gid map to 0
//! inside and setgroups is denied, as `unshare --map-root-user` does.

use crate::boot::SandboxConfig;
use crate::cli::GlobalFlags;
use crate::egress::{broker, NetworkMode};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The child's ends of the channels to runsc-lite.
pub struct ChildChannels {
    /// runsc-lite writes one byte once the maps are written.
    pub go: OwnedFd,
    /// Violation reports, to runsc-lite.
    pub report: OwnedFd,
    /// Signal numbers (one byte each) for the guest's init.
    pub signals: OwnedFd,
    /// The egress broker's channel (`--network=sandbox` and `host`).
    pub egress: Option<OwnedFd>,
    /// OCI lifecycle (`create`): the Sentry's end of its control channel
    /// to the supervisor (crate::lifecycle); None for `run` and `do`.
    pub control: Option<OwnedFd>,
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

const RELAYED: [i32; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

fn sigset(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a live local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

fn write_file(path: &str, text: &str) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{path}: {e}"))
}

/// A Sentry started in its namespaces, not yet waited for.
pub struct Spawned {
    pub pid: i32,
    set: libc::sigset_t,
    sig_w: OwnedFd,
    rep_r: OwnedFd,
    broker: Option<broker::Broker>,
    /// `RUNSC_LITE_PROFILE`: when the set-up started and when the clone did.
    t_run: Option<std::time::Instant>,
    t_clone: Option<std::time::Instant>,
}

/// Run a sandbox: start the Sentry, wait for it, relay signals; returns
/// the guest's shell-style exit code.
pub fn run(g: &GlobalFlags, cfg: SandboxConfig) -> Result<i32, String> {
    let s = spawn(g, cfg, None)?;
    s.wait(g)
}

/// Start the Sentry in new namespaces (with `control`, its end of the
/// lifecycle channel). The relayed signals and SIGCHLD stay blocked in the
/// caller until [`Spawned::wait`].
pub fn spawn(g: &GlobalFlags, cfg: SandboxConfig, control: Option<OwnedFd>) -> Result<Spawned, String> {
    let t_run = platform::profile::start();
    // The broker forks from runsc-lite while it has one thread and no
    // descriptor meant for the Sentry; published ports are taken (or
    // refused) before anything else starts.
    let mut broker = match cfg.network.mode {
        NetworkMode::Sandbox | NetworkMode::Host => {
            Some(broker::spawn(cfg.network.broker_config(g.debug_log.is_some()))?)
        }
        NetworkMode::None => None,
    };
    let egress = broker.as_mut().and_then(broker::Broker::take_sentry_end);
    let (go_r, go_w) = pipe()?;
    let (rep_r, rep_w) = pipe()?;
    let (sig_r, sig_w) = pipe()?;
    let mut watched = RELAYED.to_vec();
    watched.push(libc::SIGCHLD);
    let set = sigset(&watched);
    // SAFETY: an all-zero sigset is valid; sigprocmask reads `set`, writes `old`.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) };

    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNET
        | libc::SIGCHLD;
    // SAFETY: a fork-like clone (no CLONE_VM, no new stack) of a process
    // that is still single-threaded: the child gets a private copy of
    // everything and may use it freely.
    let t_clone = platform::profile::start();
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        drop((go_w, rep_r, sig_w));
        // SAFETY: restores the mask saved above.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        let ch = ChildChannels { go: go_r, report: rep_w, signals: sig_r, egress, control };
        let code = crate::boot::sentry_main(g, cfg, ch);
        let _ = std::io::stdout().flush();
        std::process::exit(code);
    }
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "cannot start the Sentry in new namespaces (clone: {e}); user namespaces must be enabled (user.max_user_namespaces)"
        ));
    }
    let pid = pid as i32;
    // Only the Sentry holds the channel now: the broker sees its end.
    drop((go_r, rep_w, sig_r, egress, control));
    if let Err(e) = write_maps(pid, g.rootless) {
        // SAFETY: kills and reaps our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(format!("writing the Sentry's uid/gid maps: {e}"));
    }
    // SAFETY: writes one byte from a live local.
    unsafe { libc::write(go_w.as_raw_fd(), b"g".as_ptr().cast(), 1) };
    drop(go_w);
    Ok(Spawned { pid, set, sig_w, rep_r, broker, t_run, t_clone })
}

impl Spawned {
    /// Wait for the Sentry, relaying signals; the guest's shell-style exit
    /// code (a line on stderr when the Sentry did not end by itself).
    pub fn wait(self, g: &GlobalFlags) -> Result<i32, String> {
        let kill_after = Duration::from_secs_f64(g.kill_after.max(0.0));
        let t_go = platform::profile::start();
        let status = supervise(self.pid, &self.set, &self.sig_w, kill_after)?;
        if let (Some(a), Some(b), Some(c)) = (self.t_run, self.t_clone, t_go) {
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            eprintln!(
                "runsc-lite profile (outside): set-up before clone {:.1} µs, clone + uid/gid maps {:.1} µs, Sentry's life {:.1} µs",
                us(b - a),
                us(c - b),
                us(c.elapsed())
            );
        }
        if let Some(b) = self.broker {
            b.finish();
        }
        Ok(exit_code(status, &self.rep_r))
    }
}

fn write_maps(pid: i32, rootless: bool) -> Result<(), String> {
    // SAFETY: getuid/getgid take no arguments.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if rootless || uid != 0 {
        write_file(&format!("/proc/{pid}/uid_map"), &format!("0 {uid} 1\n"))?;
        write_file(&format!("/proc/{pid}/setgroups"), "deny")?;
        write_file(&format!("/proc/{pid}/gid_map"), &format!("0 {gid} 1\n"))?;
    } else {
        write_file(&format!("/proc/{pid}/uid_map"), "0 0 4294967295\n")?;
        write_file(&format!("/proc/{pid}/gid_map"), "0 0 4294967295\n")?;
    }
    Ok(())
}

/// How the Sentry ended, and whether we killed it.
struct Ended {
    status: i32,
    killed: Option<&'static str>,
}

/// Wait for the Sentry, relaying signals; SIGKILL it on a second SIGINT or
/// `kill_after` past the first relayed signal.
fn supervise(pid: i32, set: &libc::sigset_t, sig_w: &OwnedFd, kill_after: Duration) -> Result<Ended, String> {
    // SAFETY: a new signalfd for the (blocked) signals of `set`.
    let sfd = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if sfd < 0 {
        return Err(format!("signalfd: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor owned by nobody else.
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    let mut first: Option<Instant> = None;
    let mut sigints = 0;
    let mut killed: Option<&'static str> = None;
    loop {
        let mut st = 0;
        // SAFETY: writes the status into a live local.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return Ok(Ended { status: st, killed });
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(format!("waiting for the Sentry: {}", std::io::Error::last_os_error()));
        }
        let timeout = match (first, killed) {
            (Some(t), None) => {
                let left = kill_after.saturating_sub(t.elapsed());
                if left.is_zero() {
                    kill(pid);
                    killed = Some("the guest did not exit within --kill-after of the first signal");
                    continue;
                }
                left.as_millis().clamp(1, i32::MAX as u128) as i32
            }
            _ => -1,
        };
        let mut p = libc::pollfd { fd: sfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one live pollfd.
        unsafe { libc::poll(&mut p, 1, timeout) };
        // SAFETY: an all-zero signalfd_siginfo is valid.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads one record into a live local of that size.
        while unsafe { libc::read(sfd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size) }
            == size as isize
        {
            let sig = info.ssi_signo as i32;
            if !RELAYED.contains(&sig) || killed.is_some() {
                continue;
            }
            if sig == libc::SIGINT {
                sigints += 1;
                if sigints > 1 {
                    kill(pid);
                    killed = Some("a second SIGINT");
                    continue;
                }
            }
            first.get_or_insert_with(Instant::now);
            relay(sig_w.as_raw_fd(), sig);
        }
    }
}

fn kill(pid: i32) {
    // SAFETY: signals our own child (not yet reaped).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

fn relay(fd: RawFd, sig: i32) {
    let b = [sig as u8];
    // SAFETY: writes one byte from a live local; a full pipe (the Sentry
    // is not reading) drops the signal rather than blocking runsc-lite.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        libc::write(fd, b.as_ptr().cast(), 1);
    }
}

/// The exit code of runsc-lite, with one line on stderr when the Sentry
/// did not end by itself.
fn exit_code(e: Ended, report: &OwnedFd) -> i32 {
    let st = e.status;
    if libc::WIFEXITED(st) {
        return libc::WEXITSTATUS(st);
    }
    let sig = libc::WTERMSIG(st);
    if sig == libc::SIGSYS {
        let mut buf = [0u8; 256];
        // SAFETY: fcntl flags, then a read into a live local (non-blocking:
        // the report, if any, was written before the Sentry died).
        let n = unsafe {
            let fl = libc::fcntl(report.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(report.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
            libc::read(report.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
        };
        let what = String::from_utf8_lossy(&buf[..n.max(0) as usize]).trim().to_string();
        if what.is_empty() {
            // The handler could not run (SIGSYS blocked on that thread):
            // the kernel killed the Sentry with the signal instead.
            report_end(
                "seccomp violation: the Sentry was killed by SIGSYS before it could name the syscall; sandbox killed",
            );
        } else {
            report_end(&format!("seccomp violation: the Sentry made {what}, which its filter forbids; sandbox killed"));
        }
    } else if let Some(why) = e.killed {
        report_end(&format!("sandbox killed: {why}"));
    } else {
        report_end(&format!("the Sentry was killed by signal {sig}"));
    }
    128 + sig
}

/// A sandbox that did not end by itself: one line on stderr and, with
/// --log, an error line there (containerd's shim reads it).
fn report_end(msg: &str) {
    eprintln!("runsc-lite: {msg}");
    crate::logging::error_line(msg);
}
