//! AF_NETLINK, NETLINK_ROUTE: link, address and route dumps answered from
//! the sandbox's interface table.

use crate::socket::Socket;
use crate::Netstack;
use abi::Errno;
use std::sync::Arc;

/// Port ids in use.
#[derive(Default)]
pub struct NetlinkState {}

pub fn new_socket(_stack: &Arc<Netstack>, _sock_type: i32, _protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    Err(Errno::EAFNOSUPPORT)
}
