//! Terminals served by the Sentry: pseudo-terminal pairs ([`pty`]) with
//! Linux's N_TTY line discipline ([`ldisc`]), the devpts filesystem that
//! names them and the /dev/ptmx and /dev/tty devices ([`devpts`]).
//!
//! Sessions and process groups live in the Sentry's kernel, which the VFS
//! cannot see: the kernel installs a [`JobControl`] once at boot, through
//! which a terminal learns who is calling and signals process groups.
//! A terminal records the session it controls (`sid`) and its foreground
//! group; a session's controlling terminal is the one whose `sid` is the
//! session's (Linux keeps the pointer on both sides; one side is enough
//! because only a session leader can acquire or drop it).
//!
//! Lock order: the devpts table, then a pty's state. No lock is held while
//! signals are sent (sending one may wake a waiter that takes them).

pub mod console;
pub mod devpts;
pub mod ldisc;
pub mod pty;
pub mod termios;

use std::sync::{Arc, RwLock};

/// Who makes the current call, as the terminal needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub pid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub root: bool,
}

/// The kernel's side of job control, for terminals.
pub trait JobControl: Send + Sync {
    /// The process on whose behalf this thread runs (None outside a task).
    fn caller(&self) -> Option<Caller>;
    /// Send `sig` to every process of group `pgid`.
    fn signal_group(&self, pgid: i32, sig: i32);
    /// Send `sig` to process `pid`.
    fn signal_process(&self, pid: i32, sig: i32);
    /// The session of process group `pgid` (None: no such group).
    fn group_session(&self, pgid: i32) -> Option<i32>;
    /// Whether group `pgid` is orphaned (no member has a parent in another
    /// group of the same session).
    fn orphaned(&self, pgid: i32) -> bool;
    /// Whether the caller ignores or blocks `sig`.
    fn caller_ignores(&self, sig: i32) -> bool;
    /// Whether session `sid`'s leader still runs as its leader.
    fn session_alive(&self, sid: i32) -> bool;
}

static JOBS: RwLock<Option<Arc<dyn JobControl>>> = RwLock::new(None);

/// Install the kernel's job control (once per sandbox, at boot).
pub fn set_job_control(j: Arc<dyn JobControl>) {
    *JOBS.write().unwrap_or_else(|e| e.into_inner()) = Some(j);
}

pub(crate) fn jobs() -> Option<Arc<dyn JobControl>> {
    JOBS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

pub use devpts::DevPts;
pub use pty::Pty;

// ioctl requests of terminals (asm-generic/ioctls.h).
pub const TCGETS: u64 = 0x5401;
pub const TCSETS: u64 = 0x5402;
pub const TCSETSW: u64 = 0x5403;
pub const TCSETSF: u64 = 0x5404;
pub const TCSBRK: u64 = 0x5409;
pub const TCXONC: u64 = 0x540a;
pub const TCFLSH: u64 = 0x540b;
pub const TIOCEXCL: u64 = 0x540c;
pub const TIOCNXCL: u64 = 0x540d;
pub const TIOCSCTTY: u64 = 0x540e;
pub const TIOCGPGRP: u64 = 0x540f;
pub const TIOCSPGRP: u64 = 0x5410;
pub const TIOCOUTQ: u64 = 0x5411;
pub const TIOCGWINSZ: u64 = 0x5413;
pub const TIOCSWINSZ: u64 = 0x5414;
pub const FIONREAD: u64 = 0x541b;
pub const TIOCPKT: u64 = 0x5420;
pub const TIOCNOTTY: u64 = 0x5422;
pub const TIOCSETD: u64 = 0x5423;
pub const TIOCGETD: u64 = 0x5424;
pub const TCSBRKP: u64 = 0x5425;
pub const TIOCSBRK: u64 = 0x5427;
pub const TIOCCBRK: u64 = 0x5428;
pub const TIOCGSID: u64 = 0x5429;
pub const TIOCGPTPEER: u64 = 0x5441;
pub const TIOCGPTN: u64 = 0x8004_5430;
pub const TIOCSPTLCK: u64 = 0x4004_5431;
pub const TIOCGPKT: u64 = 0x8004_5438;
pub const TIOCGPTLCK: u64 = 0x8004_5439;
