//! AF_UNIX sockets: stream, datagram and seqpacket; socketpair; paths,
//! the abstract namespace and autobind; SCM_RIGHTS and SCM_CREDENTIALS.

use crate::socket::{Socket, SocketPair};
use crate::Netstack;
use abi::socket::Ucred;
use abi::Errno;
use std::sync::Arc;

/// The unix namespace of one sandbox: bound paths and abstract names.
#[derive(Default)]
pub struct UnixState {}

pub fn new_socket(_stack: &Arc<Netstack>, _sock_type: i32, _protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    Err(Errno::EAFNOSUPPORT)
}

pub fn new_pair(_stack: &Arc<Netstack>, _sock_type: i32, _protocol: i32, _cred: Ucred) -> Result<SocketPair, Errno> {
    Err(Errno::EAFNOSUPPORT)
}
