//! The unix namespace of one sandbox: sockets bound to filesystem nodes,
//! abstract names, and autobind's generated names. Abstract names are per
//! socket type (Linux keys its table by name and type: a stream and a
//! datagram socket may hold the same name, and neither finds the other).
//!
//! Entries are `Weak`: a released socket removes its own, and an entry
//! whose socket is gone counts as free. The lock here is never held with a
//! socket's state lock, and no socket is upgraded (so none can be dropped)
//! under it.

use super::{lock, UnixSocket};
use crate::addr::UnixAddr;
use crate::socket::{NodeId, PathOps};
use abi::Errno;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// How many names autobind has ("%05x" of 20 bits).
const AUTOBIND_NAMES: u32 = 0x10_0000;

/// Bound paths and abstract names.
#[derive(Default)]
pub struct UnixState {
    names: Mutex<Names>,
}

#[derive(Default)]
struct Names {
    /// Sockets by the node they were bound to. Unlinking the node does not
    /// unbind the socket; a connect through another link to it finds it.
    paths: HashMap<NodeId, Weak<UnixSocket>>,
    abstract_names: HashMap<(i32, Vec<u8>), Weak<UnixSocket>>,
    /// Where autobind tries next.
    next_auto: u32,
}

fn live(w: Option<&Weak<UnixSocket>>) -> bool {
    w.is_some_and(|w| w.strong_count() > 0)
}

impl UnixState {
    fn names(&self) -> MutexGuard<'_, Names> {
        lock(&self.names)
    }

    /// Record `sock` as bound to the (new) node `node`.
    pub(super) fn bind_path(&self, node: NodeId, sock: Weak<UnixSocket>) {
        let mut n = self.names();
        n.paths.retain(|_, w| w.strong_count() > 0);
        n.paths.insert(node, sock);
    }

    /// Give `sock` the abstract name `name`; EADDRINUSE when taken.
    pub(super) fn bind_abstract(&self, sock_type: i32, name: &[u8], sock: Weak<UnixSocket>) -> Result<(), Errno> {
        let mut n = self.names();
        let key = (sock_type, name.to_vec());
        if live(n.abstract_names.get(&key)) {
            return Err(Errno::EADDRINUSE);
        }
        n.abstract_names.insert(key, sock);
        Ok(())
    }

    /// Give `sock` a free abstract name of five hex digits, as Linux's
    /// unix_autobind; ENOSPC when all are taken.
    pub(super) fn autobind(&self, sock_type: i32, sock: Weak<UnixSocket>) -> Result<Vec<u8>, Errno> {
        let mut n = self.names();
        n.abstract_names.retain(|_, w| w.strong_count() > 0);
        for _ in 0..AUTOBIND_NAMES {
            let key = (sock_type, format!("{:05x}", n.next_auto).into_bytes());
            n.next_auto = (n.next_auto + 1) % AUTOBIND_NAMES;
            if !live(n.abstract_names.get(&key)) {
                let name = key.1.clone();
                n.abstract_names.insert(key, sock);
                return Ok(name);
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Forget the names of the socket at `me` (it is being released).
    pub(super) fn unbind(&self, sock_type: i32, addr: &UnixAddr, node: Option<NodeId>, me: *const UnixSocket) {
        let mut n = self.names();
        if let Some(node) = node {
            if n.paths.get(&node).is_some_and(|w| w.as_ptr() == me) {
                n.paths.remove(&node);
            }
        }
        if let UnixAddr::Abstract(name) = addr {
            let key = (sock_type, name.clone());
            if n.abstract_names.get(&key).is_some_and(|w| w.as_ptr() == me) {
                n.abstract_names.remove(&key);
            }
        }
    }

    /// The live socket bound at `addr` (a path as `paths` resolves it, or an
    /// abstract name of `sock_type`): the walk's errors, ECONNREFUSED when
    /// nobody is bound there, EPROTOTYPE when a path's socket is not of
    /// `sock_type`.
    pub(super) fn find(&self, paths: &dyn PathOps, addr: &UnixAddr, sock_type: i32) -> Result<Arc<UnixSocket>, Errno> {
        let found = match addr {
            UnixAddr::Path(p) => {
                let node = paths.lookup_node(p)?;
                self.names().paths.get(&node).cloned()
            }
            UnixAddr::Abstract(name) => self.names().abstract_names.get(&(sock_type, name.clone())).cloned(),
            UnixAddr::Unnamed => return Err(Errno::EINVAL),
        };
        let sock = found.and_then(|w| w.upgrade()).ok_or(Errno::ECONNREFUSED)?;
        if sock.is_released() {
            return Err(Errno::ECONNREFUSED);
        }
        if sock.sock_type != sock_type {
            return Err(Errno::EPROTOTYPE);
        }
        Ok(sock)
    }
}
