//! UDP to destinations outside the sandbox: one broker *flow* per (guest
//! socket, destination), opened at the first datagram. The broker holds
//! the flow's host socket, connected to the destination after the policy
//! check, and relays datagrams both ways: the Sentry never holds a UDP
//! socket it could aim at an address of its own choosing. Datagrams sent
//! while the broker answers wait (a few, as a neighbour table would hold
//! them). A destination the broker refuses is refused to a connected
//! socket at its next call, as Linux reports an ICMP port unreachable.
//!
//! Lock order: a UdpSocket's `inner` is never held here while `Outbound`
//! or a destination's `state` is; those two are leaves in that order.

use super::udp::{Datagram, UdpSocket};
use crate::egress::client::{Egress, FlowSink, Teardown};
use abi::Errno;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

/// Destinations one guest socket may have at once.
const MAX_DESTINATIONS: usize = 64;
/// Datagrams held for a destination the broker has not answered yet.
const MAX_WAITING: usize = 16;

#[derive(Default)]
pub struct Outbound {
    dests: Mutex<HashMap<SocketAddr, Arc<Destination>>>,
}

enum State {
    Waiting(VecDeque<Vec<u8>>),
    Open(u32),
    Refused,
}

struct Destination {
    sock: Weak<UdpSocket>,
    egress: Weak<Egress>,
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
                    egress: Arc::downgrade(egress),
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
            State::Open(flow) => egress.flow_send(*flow, data)?,
            State::Refused => return Err(Errno::ECONNREFUSED),
        }
    }
    if fresh {
        let teardown: Arc<dyn Teardown> = d.clone();
        egress.track(Arc::downgrade(&teardown));
        let sink: Arc<dyn FlowSink> = d.clone();
        let weak = Arc::downgrade(&d);
        egress.open_flow(dst, Arc::downgrade(&sink), Box::new(move |r| opened(weak, r)));
    }
    Ok(data.len())
}

/// The broker answered for a destination.
fn opened(d: Weak<Destination>, r: Result<u32, Errno>) {
    let Some(d) = d.upgrade() else { return };
    let flow = match r {
        Ok(flow) => flow,
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
    let waiting = match std::mem::replace(&mut *lock(&d.state), State::Open(flow)) {
        State::Waiting(q) => q,
        _ => VecDeque::new(),
    };
    if let Some(e) = d.egress.upgrade() {
        for dg in waiting {
            let _ = e.flow_send(flow, &dg);
        }
    }
}

impl FlowSink for Destination {
    fn datagram(&self, payload: Vec<u8>) {
        if let Some(s) = self.sock.upgrade() {
            let stamp = std::time::SystemTime::now();
            s.deliver(Datagram { data: payload, from: self.dst, to: self.src.ip(), tos: 0, ttl: 64, stamp });
        }
    }
}

impl Teardown for Destination {
    fn broker_gone(&self) {
        *lock(&self.state) = State::Refused;
    }
}

impl Drop for Destination {
    fn drop(&mut self) {
        if let (State::Open(flow), Some(e)) = (&*lock(&self.state), self.egress.upgrade()) {
            e.flow_close(*flow);
        }
    }
}
