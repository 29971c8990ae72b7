//! The host side of a container's terminal (`process.terminal`, `do -t`).
//!
//! The terminal itself is a pty of the Sentry's (vfs/src/tty): the init
//! process gets its slave as stdio and controlling terminal, and two
//! Sentry threads bridge its master to ONE host terminal descriptor that
//! this module picks before the Sentry is started (the Sentry inherits
//! it; it needs only read, write, poll and TIOCGWINSZ on it, all in its
//! allowlist already):
//!
//! - [`ConsoleTarget::Socket`] (`--console-socket PATH`, runc's protocol):
//!   runsc-lite, outside the Sentry, opens a HOST pty pair, puts the
//!   slave in raw mode (the Sentry's line discipline does the work), and
//!   sends the host master to the unix socket at PATH as one SCM_RIGHTS
//!   message whose payload is the master's name ("/dev/ptmx"), as runc's
//!   utils.SendFile. The receiver (containerd's shim, a test) holds the
//!   host master; the Sentry holds the host slave; runsc-lite keeps
//!   nothing. Window size changes the receiver makes (TIOCSWINSZ on the
//!   master) reach the guest as SIGWINCH through the Sentry's bridge.
//! - [`ConsoleTarget::CallerTty`]: runsc-lite's own terminal (stdin's),
//!   put in raw mode while the container runs and restored when the
//!   [`Console`] is dropped (normal exit, errors, and the relayed signals,
//!   after which runsc-lite exits through the same path).
//! - [`ConsoleTarget::None`]: no terminal; the guest gets runsc-lite's
//!   stdio as today.
//!
//! The lifecycle commands call [`attach`] and put [`Console::sentry_fd`]
//! into `SandboxConfig::console` before starting the Sandbox, keeping the
//! `Console` alive until the Sentry is gone (for `create`: until the
//! Sentry process has been started; the descriptor lives on in it).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Where the container's terminal goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleTarget {
    None,
    CallerTty,
    Socket(PathBuf),
}

/// The host side of a container's terminal while it is being set up.
pub struct Console {
    /// The host terminal descriptor the Sentry bridges (inherited by it).
    endpoint: Option<OwnedFd>,
    /// The caller's terminal settings to put back.
    restore: Option<(RawFd, libc::termios)>,
}

impl Console {
    /// The descriptor for `SandboxConfig::console`.
    pub fn sentry_fd(&self) -> Option<RawFd> {
        self.endpoint.as_ref().map(|f| f.as_raw_fd())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some((fd, t)) = self.restore.take() {
            // SAFETY: tcsetattr reads the termios saved from this descriptor.
            unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, &t) };
        }
    }
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// The target for a container with `terminal` set or not and the
/// `--console-socket` given, if any (runc: a socket without a terminal is
/// not used).
pub fn target(terminal: bool, socket: Option<PathBuf>) -> ConsoleTarget {
    match (terminal, socket) {
        (false, _) => ConsoleTarget::None,
        (true, Some(p)) => ConsoleTarget::Socket(p),
        (true, None) => ConsoleTarget::CallerTty,
    }
}

/// Set up the host side for `target`.
pub fn attach(target: &ConsoleTarget) -> Result<Console, String> {
    match target {
        ConsoleTarget::None => Ok(Console { endpoint: None, restore: None }),
        ConsoleTarget::CallerTty => caller_tty(),
        ConsoleTarget::Socket(path) => socket(path),
    }
}

fn make_raw(fd: RawFd) -> Result<libc::termios, String> {
    // SAFETY: an all-zero termios is a valid buffer for tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes into `t`.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return Err(os_err("the terminal's settings"));
    }
    let saved = t;
    // SAFETY: cfmakeraw edits `t`; tcsetattr reads it.
    unsafe {
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
            return Err(os_err("raw mode on the terminal"));
        }
    }
    Ok(saved)
}

fn caller_tty() -> Result<Console, String> {
    // SAFETY: isatty only looks at descriptor 0.
    if unsafe { libc::isatty(0) } != 1 {
        return Err("process.terminal is set but stdin is not a terminal; give --console-socket".into());
    }
    // The bridge reads and writes one descriptor: the terminal opened
    // again for both (stdin may be read-only).
    let mut name = [0 as libc::c_char; 256];
    // SAFETY: ttyname_r writes a NUL-terminated name into `name`.
    if unsafe { libc::ttyname_r(0, name.as_mut_ptr(), name.len()) } != 0 {
        return Err(os_err("stdin's terminal name"));
    }
    // SAFETY: open of the NUL-terminated name just read.
    let fd = unsafe { libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(os_err("opening stdin's terminal"));
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let saved = make_raw(0)?;
    clear_cloexec(&fd);
    Ok(Console { endpoint: Some(fd), restore: Some((0, saved)) })
}

fn clear_cloexec(fd: &OwnedFd) {
    // SAFETY: F_SETFD on a descriptor we own.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) };
}

/// A host pty pair: (master, slave).
fn host_pty() -> Result<(OwnedFd, OwnedFd), String> {
    // SAFETY: posix_openpt returns a new descriptor or -1.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        return Err(os_err("opening /dev/ptmx"));
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: grantpt/unlockpt act on our master; ptsname_r writes a
    // NUL-terminated name into `name`.
    let ok = unsafe {
        libc::grantpt(m) == 0 && libc::unlockpt(m) == 0 && libc::ptsname_r(m, name.as_mut_ptr(), name.len()) == 0
    };
    if !ok {
        return Err(os_err("setting up a host pty"));
    }
    // SAFETY: `name` is NUL-terminated (ptsname_r succeeded).
    let path = unsafe { CStr::from_ptr(name.as_ptr()) };
    // SAFETY: open of a NUL-terminated path.
    let s = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if s < 0 {
        return Err(os_err("opening the host pty's slave"));
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    Ok((master, slave))
}

/// Send `fd` over the unix socket at `path` as runc does: one message,
/// the file's name as the payload, the descriptor as SCM_RIGHTS.
pub fn send_fd(path: &Path, name: &str, fd: RawFd) -> Result<(), String> {
    let sock = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("connecting to the console socket {}: {e}", path.display()))?;
    let mut payload = name.as_bytes().to_vec();
    let mut iov = libc::iovec { iov_base: payload.as_mut_ptr().cast(), iov_len: payload.len() };
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: an all-zero msghdr is valid; the fields set point at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: the control buffer has room for one header and one descriptor
    // (CMSG_SPACE above), so CMSG_FIRSTHDR is non-null and CMSG_DATA in bounds.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::copy_nonoverlapping(&fd as *const RawFd as *const u8, libc::CMSG_DATA(c), 4);
    }
    // SAFETY: `msg` describes live buffers.
    if unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) } < 0 {
        return Err(os_err("sending the console to the console socket"));
    }
    Ok(())
}

fn socket(path: &Path) -> Result<Console, String> {
    let (master, slave) = host_pty()?;
    make_raw(slave.as_raw_fd())?;
    send_fd(path, "/dev/ptmx", master.as_raw_fd())?;
    drop(master);
    clear_cloexec(&slave);
    Ok(Console { endpoint: Some(slave), restore: None })
}
