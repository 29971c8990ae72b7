//! Terminal requests that need the caller's descriptor table.

use abi::flags::{O_ACCMODE, O_CLOEXEC, O_NOCTTY, O_NONBLOCK};
use abi::Errno;
use sentry::{SysResult, Task};
use std::sync::Arc;

/// TIOCGPTPEER (Linux 4.13, served though the ABI is 4.4's: glibc uses
/// it first in openpty): open the slave of the pty whose master is
/// `master`, by the pair's name under the caller's root.
pub fn open_peer(task: &Task, master: &Arc<vfs::OpenFile>, flags: u64) -> SysResult {
    let (pty, is_master) = vfs::tty::devpts::pty_of(&*master.ops).ok_or(Errno::ENOTTY)?;
    if !is_master {
        // Linux's ptm_open_peer: a terminal, but not a master.
        return Err(Errno::EIO);
    }
    // The flags are open(2)'s, as Linux's ptm_open_peer takes them.
    let flags = (flags as u32) & (O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    let path = format!("/dev/pts/{}", pty.index);
    let f = crate::fs::open_path(task, libc::AT_FDCWD, path.as_bytes(), flags, 0)?;
    crate::fs::install(task, f, flags & O_CLOEXEC != 0)
}
