//! UDP to destinations outside the sandbox: one connected host socket
//! per (guest socket, destination), asked of the broker at the first
//! datagram. Datagrams sent while the broker answers wait (a few, as a
//! neighbour table would hold them); datagrams from the destination are
//! delivered to the guest socket by the notifier. A destination the
//! broker refuses is refused to a connected socket at its next call, as
//! Linux reports an ICMP port unreachable.
//!
//! Lock order: a UdpSocket's `inner` is never held here while `Outbound`
//! or a destination's `state` is; those two are leaves in that order.

use super::udp::{Datagram, UdpSocket};
use crate::egress::client::Egress;
use crate::egress::notifier::{HostEvents, Registration};
use crate::egress::proto::Proto;
use crate::egress::sys;
use abi::Errno;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

/// Destinations one guest socket may have at once.
const MAX_DESTINATIONS: usize = 64;
/// Datagrams held for a destination the broker has not answered yet.
const MAX_WAITING: usize = 16;
/// Largest datagram read from the host.
const MAX_DATAGRAM: usize = 65536;

#[derive(Default)]
pub struct Outbound {
    dests: Mutex<HashMap<SocketAddr, Arc<Destination>>>,
}

enum State {
    Waiting(VecDeque<Vec<u8>>),
    Ready(OwnedFd, Option<Registration>),
    Refused,
}

struct Destination {
    sock: Weak<UdpSocket>,
    src: SocketAddr,
    dst: SocketAddr,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|_| vfs::poisoned())
}

/// Send `data` from `src` to `dst` outside the sandbox.
pub(super) fn send(
    s: &UdpSocket,
    egress: &Arc<Egress>,
    src: SocketAddr,
    dst: SocketAddr,
    data: &[u8],
) -> Result<usize, Errno> {
    let (d, fresh) = {
        let mut m = lock(&s.out.dests);
        match m.get(&dst) {
            Some(d) => (d.clone(), false),
            None => {
                if m.len() >= MAX_DESTINATIONS {
                    m.retain(|_, d| !matches!(*lock(&d.state), State::Refused));
                    if m.len() >= MAX_DESTINATIONS {
                        return Err(Errno::ENOBUFS);
                    }
                }
                let d = Arc::new(Destination {
                    sock: s.me.clone(),
                    src,
                    dst,
                    state: Mutex::new(State::Waiting(VecDeque::new())),
                });
                m.insert(dst, d.clone());
                (d, true)
            }
        }
    };
    {
        let mut st = lock(&d.state);
        match &mut *st {
            State::Waiting(q) => {
                if q.len() < MAX_WAITING {
                    q.push_back(data.to_vec());
                }
            }
            State::Ready(fd, _) => match sys::send_nb(fd.as_raw_fd(), data) {
                Ok(_) | Err(Errno::EAGAIN) | Err(Errno::ENOBUFS) => {}
                Err(e) => return Err(e),
            },
            State::Refused => return Err(Errno::ECONNREFUSED),
        }
    }
    if fresh {
        let weak = Arc::downgrade(&d);
        let e2 = egress.clone();
        egress.connect(Proto::Udp, dst, Box::new(move |r| opened(&e2, weak, r)));
    }
    Ok(data.len())
}

/// The broker answered for a destination.
fn opened(egress: &Arc<Egress>, d: Weak<Destination>, r: Result<OwnedFd, Errno>) {
    let Some(d) = d.upgrade() else { return };
    let fd = match r {
        Ok(fd) => fd,
        Err(_) => {
            *lock(&d.state) = State::Refused;
            if let Some(s) = d.sock.upgrade() {
                let connected = s.inner().peer == Some(d.dst);
                if connected {
                    s.inner().err = Some(Errno::ECONNREFUSED);
                    s.changed();
                }
            }
            return;
        }
    };
    let raw = fd.as_raw_fd();
    let waiting = {
        let mut st = lock(&d.state);
        match std::mem::replace(&mut *st, State::Ready(fd, None)) {
            State::Waiting(q) => q,
            _ => VecDeque::new(),
        }
    };
    for dg in waiting {
        let _ = sys::send_nb(raw, &dg);
    }
    let t: Arc<dyn crate::egress::client::Teardown> = d.clone();
    egress.track(Arc::downgrade(&t));
    let h: Arc<dyn HostEvents> = Arc::new(Incoming(Arc::downgrade(&d)));
    if let Ok(reg) = egress.notifier.add(raw, h) {
        if let State::Ready(_, slot) = &mut *lock(&d.state) {
            *slot = Some(reg);
        }
    }
}

impl crate::egress::client::Teardown for Destination {
    fn broker_gone(&self) {
        // Dropping the host socket (and its registration) ends the flow.
        *lock(&self.state) = State::Refused;
    }
}

/// Datagrams from a destination, for its guest socket.
struct Incoming(Weak<Destination>);

impl HostEvents for Incoming {
    fn ready(&self, _events: u32) {
        let Some(d) = self.0.upgrade() else { return };
        let Some(s) = d.sock.upgrade() else { return };
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let n = {
                let st = lock(&d.state);
                let State::Ready(fd, _) = &*st else { return };
                match sys::recv_nb(fd.as_raw_fd(), &mut buf) {
                    Ok(n) => n,
                    Err(Errno::EINTR) => continue,
                    Err(Errno::ECONNREFUSED) => {
                        drop(st);
                        if s.inner().peer == Some(d.dst) {
                            s.inner().err = Some(Errno::ECONNREFUSED);
                            s.changed();
                        }
                        continue;
                    }
                    Err(_) => return,
                }
            };
            let data = buf.get(..n).unwrap_or_default().to_vec();
            let stamp = std::time::SystemTime::now();
            s.deliver(Datagram { data, from: d.dst, to: d.src.ip(), tos: 0, ttl: 64, stamp });
        }
    }
}
