//! The broker's `--network=host` ops (gVisor's hostinet, with the
//! socket-making calls kept out of the Sentry): it makes a host socket
//! for each guest inet socket, and binds, connects and sends addressed
//! datagrams on one the Sentry hands back with the request. Connects and
//! datagrams are checked against the allowlist when one was given (host
//! mode without rules reaches everything, the host's loopback too);
//! binds are the host kernel's to decide. Incoming traffic (accepted
//! connections, datagrams received) is not checked: host mode is for
//! trusted code.

use super::sys;
use super::{Counters, LogKey, Shared};
use netstack::egress::proto::{Reply, Request};
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

/// Answer one request of a broker in host mode; `fd` is the socket the
/// request came with (closed when this returns).
pub(super) fn serve(shared: &Shared, req: Request, fd: Option<OwnedFd>) {
    let id = req.id();
    let (result, give) = match req {
        Request::Socket { domain, sock_type, protocol, .. } => match socket(domain, sock_type, protocol) {
            Ok(s) => (Ok(()), Some(s)),
            Err(e) => (Err(e), None),
        },
        Request::Bind { addr, .. } => (with_socket(fd, |s| sys::bind_to(s.as_fd(), addr)), None),
        Request::ConnectSocket { addr, again, .. } => {
            let r = match shared.host_check(addr, !again) {
                Err(e) => Err(e),
                Ok(()) => with_socket(fd, |s| sys::connect_to(s.as_fd(), addr)),
            };
            (r, None)
        }
        Request::Disconnect { .. } => (with_socket(fd, |s| sys::disconnect(s.as_fd())), None),
        Request::SendTo { addr, payload, .. } => {
            let r = match shared.host_check(addr, false) {
                Err(e) => Err(e),
                Ok(()) => with_socket(fd, |s| sys::send_to(s.as_fd(), &payload, addr)),
            };
            (r, None)
        }
        // The sandbox's ops have no place here: the guest has no eth0,
        // no resolver of ours.
        Request::Dns { .. } => return shared.send(&Reply::Dns { id, answer: Vec::new() }, None),
        Request::Connect { .. } => (Err(libc::EOPNOTSUPP), None),
        // No published ports and no flows in host mode (the guest's
        // sockets are host sockets).
        Request::Datagram { .. } | Request::FlowSend { .. } | Request::FlowClose { .. } => return,
    };
    shared.send(&Reply::Connected { id, result }, give.as_ref().map(|s| s.as_fd()));
}

/// The op on the socket that came with the request (EBADF without one).
fn with_socket(fd: Option<OwnedFd>, f: impl FnOnce(&OwnedFd) -> Result<(), i32>) -> Result<(), i32> {
    match fd {
        Some(s) => f(&s),
        None => Err(libc::EBADF),
    }
}

/// A new host socket: inet stream and datagram sockets only (the Sentry
/// refuses raw ones first; a hostile Sentry gets EAFNOSUPPORT or
/// ESOCKTNOSUPPORT here). The protocol is the host's to check.
fn socket(domain: i32, sock_type: i32, protocol: i32) -> Result<OwnedFd, i32> {
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        return Err(libc::EAFNOSUPPORT);
    }
    if sock_type != libc::SOCK_STREAM && sock_type != libc::SOCK_DGRAM {
        return Err(libc::ESOCKTNOSUPPORT);
    }
    sys::host_socket(domain, sock_type, protocol)
}

impl Shared {
    /// Whether a connect (`connect`: a new one; else one datagram or the
    /// call that finishes a connect, not counted as connections) to
    /// `dst` may go: everything without rules, else the allowlist
    /// (ECONNREFUSED, counted and logged, when it says no).
    fn host_check(&self, dst: SocketAddr, connect: bool) -> Result<(), i32> {
        let policy = &self.cfg.policy;
        if policy.is_empty() {
            if connect {
                Counters::bump(&self.counts.connects_allowed);
            }
            return Ok(());
        }
        let key = LogKey::Connect(connect, dst);
        let what = if connect { "connect" } else { "datagram" };
        // Address and CIDR rules only: the guest resolves names with the
        // host's resolver, which the broker does not see, so a name rule
        // never matches an address here.
        match policy.check_host_mode(dst.ip(), dst.port()).err() {
            None => {
                if connect {
                    Counters::bump(&self.counts.connects_allowed);
                }
                self.log(key, || format!("allowed {what} {dst} (host network)"));
                Ok(())
            }
            Some(why) => {
                Counters::bump(&self.counts.connects_refused);
                self.log(key, || format!("refused {what} {dst} (host network): {why}"));
                Err(libc::ECONNREFUSED)
            }
        }
    }
}
