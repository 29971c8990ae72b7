//! What waits in a unix socket's receive queue, and the control messages
//! that go in with a send and come out with a receive.

use super::UnixSocket;
use crate::addr::UnixAddr;
use crate::socket::Control;
use abi::socket::{Ucred, SCM_MAX_FD, SCM_TIMESTAMP, SOL_SOCKET};
use abi::{Errno, Pod, Timeval};
use std::sync::{Arc, Weak};
use std::time::SystemTime;
use vfs::OpenFile;

/// What SCM_CREDENTIALS says for a message that carries no credentials
/// (pid 0, uid and gid the overflow ids).
pub(super) const NO_CREDS: Ucred = Ucred { pid: 0, uid: 65534, gid: 65534 };

/// One datagram, or one piece of a byte stream.
pub(super) struct Msg {
    pub data: Vec<u8>,
    /// Bytes of `data` already read (stream pieces are read in parts).
    pub off: usize,
    /// SCM_RIGHTS: closed when the message is dropped unread.
    pub rights: Vec<Arc<OpenFile>>,
    /// The sender's credentials, when SO_PASSCRED on either end or an
    /// explicit SCM_CREDENTIALS asked for them.
    pub cred: Option<Ucred>,
    pub from: Weak<UnixSocket>,
    /// The sender's address when it sent (for recvfrom once it is gone).
    pub from_addr: UnixAddr,
    /// What the sender is still charged for this message.
    pub charge: usize,
    /// When it was sent (SO_TIMESTAMP).
    pub stamp: SystemTime,
}

/// What a queued message costs its sender beyond its bytes (Linux charges
/// an skb's truesize), and each file it carries.
pub(super) const MSG_OVERHEAD: usize = 512;
pub(super) const FILE_COST: usize = 64;

/// What a message of `len` bytes carrying `files` files is charged.
pub(super) fn cost(len: usize, files: usize) -> usize {
    len.saturating_add(MSG_OVERHEAD).saturating_add(files.saturating_mul(FILE_COST))
}

impl Msg {
    pub fn new(
        data: Vec<u8>,
        rights: Vec<Arc<OpenFile>>,
        from: &UnixSocket,
        from_addr: UnixAddr,
        charge: usize,
    ) -> Msg {
        Msg { data, off: 0, rights, cred: None, from: from.me.clone(), from_addr, charge, stamp: SystemTime::now() }
    }
}

/// The control messages of one send, as unix sockets use them.
pub(super) struct Ancillary {
    pub rights: Vec<Arc<OpenFile>>,
    /// SCM_CREDENTIALS (already checked by the syscall layer).
    pub cred: Option<Ucred>,
}

impl Ancillary {
    /// Every SCM_RIGHTS joined into one (at most SCM_MAX_FD files, else
    /// EINVAL), the last SCM_CREDENTIALS; other levels are ignored.
    pub fn of(control: Vec<Control>) -> Result<Ancillary, Errno> {
        let mut a = Ancillary { rights: Vec::new(), cred: None };
        for c in control {
            match c {
                Control::Rights(files) => {
                    if a.rights.len() + files.len() > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    a.rights.extend(files);
                }
                Control::Credentials(c) => a.cred = Some(c),
                Control::Raw { .. } => {}
            }
        }
        Ok(a)
    }

    /// The credentials a message to a receiver gets: the explicit ones, or
    /// the sender's own when either end has SO_PASSCRED (`wanted`).
    pub fn cred_for(&self, wanted: bool, sender: Ucred) -> Option<Ucred> {
        self.cred.or(wanted.then_some(sender))
    }
}

/// The control messages of one receive, in Linux's order: SCM_TIMESTAMP,
/// SCM_CREDENTIALS, SCM_RIGHTS.
pub(super) fn recv_control(stamp: Option<SystemTime>, cred: Option<Ucred>, rights: Vec<Arc<OpenFile>>) -> Vec<Control> {
    let mut out = Vec::new();
    if let Some(t) = stamp {
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let tv =
            Timeval { tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), tv_usec: i64::from(d.subsec_micros()) };
        out.push(Control::Raw { level: SOL_SOCKET, typ: SCM_TIMESTAMP, data: tv.as_bytes().to_vec() });
    }
    if let Some(c) = cred {
        out.push(Control::Credentials(c));
    }
    if !rights.is_empty() {
        out.push(Control::Rights(rights));
    }
    out
}
