//! ioctls every socket answers about the sandbox's interfaces
//! (SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFINDEX, SIOCGIFNAME,
//! SIOCGIFMTU, ...), which exchange `struct ifreq`/`ifconf` with pointers
//! inside and so are served here rather than by FileOps::ioctl.

use netstack::SocketFile;
use sentry::table::UserAddr;
use sentry::{SysResult, Task};

/// The answer to interface ioctl `req`, or None when `req` is not one
/// (the socket's own FileOps::ioctl is asked next).
pub fn interface_ioctl(task: &Task, sock: &SocketFile, req: u64, arg: UserAddr) -> Option<SysResult> {
    let _ = (task, sock, req, arg);
    None
}
