//! Port tables: one per protocol, shared by IPv4 and IPv6 sockets, with
//! Linux's bind-conflict rules (inet_csk_bind_conflict, udp_lib_lport_inuse)
//! and the ephemeral range of net.ipv4.ip_local_port_range.
//!
//! The table holds only weak references to its sockets and never calls
//! into them: it is a leaf lock, taken after a socket's own lock.

use super::addr::Local;
use abi::Errno;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// ip_local_port_range's default.
pub const EPHEMERAL_LOW: u16 = 32768;
pub const EPHEMERAL_HIGH: u16 = 60999;

/// The options of a bound socket that decide conflicts; they may change
/// after bind (setsockopt, listen), so they are shared, not copied.
#[derive(Default, Debug)]
pub struct BindFlags {
    pub reuseaddr: AtomicBool,
    pub reuseport: AtomicBool,
    pub listening: AtomicBool,
}

impl BindFlags {
    pub fn reuseaddr(&self) -> bool {
        self.reuseaddr.load(Ordering::Relaxed)
    }
    pub fn reuseport(&self) -> bool {
        self.reuseport.load(Ordering::Relaxed)
    }
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }
    /// A copy for an accepted child (Linux clones sk_reuse and
    /// sk_reuseport into it; it does not listen).
    pub fn child(&self) -> Arc<BindFlags> {
        Arc::new(BindFlags {
            reuseaddr: AtomicBool::new(self.reuseaddr()),
            reuseport: AtomicBool::new(self.reuseport()),
            listening: AtomicBool::new(false),
        })
    }
}

struct Binding<T> {
    id: u64,
    local: Local,
    /// The connected peer (UDP demultiplexing, TCP connection identity).
    peer: Option<SocketAddr>,
    flags: Arc<BindFlags>,
    uid: u32,
    owner: Weak<T>,
}

struct Map<T> {
    ports: HashMap<u16, Vec<Binding<T>>>,
    /// Where the next ephemeral search starts.
    rover: u16,
    /// Whether TCP's rule applies (a listener is never shared through
    /// SO_REUSEADDR).
    tcp: bool,
}

/// One protocol's ports.
pub struct PortTable<T> {
    map: Mutex<Map<T>>,
}

/// Whether binding `new` (with `flags`, `uid`) next to `old` is refused.
fn conflicts<T>(tcp: bool, new: &Local, flags: &BindFlags, uid: u32, old: &Binding<T>) -> bool {
    if !new.overlaps(&old.local) {
        return false;
    }
    let reuse = flags.reuseaddr() && old.flags.reuseaddr() && !(tcp && old.flags.listening());
    let reuseport = flags.reuseport() && old.flags.reuseport() && uid == old.uid;
    !(reuse || reuseport)
}

impl<T> PortTable<T> {
    pub fn new(tcp: bool) -> PortTable<T> {
        PortTable { map: Mutex::new(Map { ports: HashMap::new(), rover: EPHEMERAL_LOW, tcp }) }
    }

    fn lock(&self) -> MutexGuard<'_, Map<T>> {
        self.map.lock().unwrap_or_else(|_| vfs::poisoned())
    }

    /// Bind socket `id` to `local`:`port` (0: an ephemeral port). Returns
    /// the port; EADDRINUSE on a conflict, or when no ephemeral port is
    /// free.
    pub fn bind(
        &self,
        id: u64,
        local: Local,
        port: u16,
        flags: &Arc<BindFlags>,
        uid: u32,
        owner: Weak<T>,
    ) -> Result<u16, Errno> {
        let mut m = self.lock();
        let tcp = m.tcp;
        let port = if port != 0 {
            let busy = m
                .ports
                .get(&port)
                .is_some_and(|v| v.iter().any(|b| b.id != id && conflicts(tcp, &local, flags, uid, b)));
            if busy {
                return Err(Errno::EADDRINUSE);
            }
            port
        } else {
            // Ephemeral ports go to unused numbers only, so no rule is
            // needed; the rover spreads successive picks.
            let span = u32::from(EPHEMERAL_HIGH - EPHEMERAL_LOW) + 1;
            let start = u32::from(m.rover.clamp(EPHEMERAL_LOW, EPHEMERAL_HIGH) - EPHEMERAL_LOW);
            let mut found = None;
            for i in 0..span {
                let p = EPHEMERAL_LOW + ((start + i) % span) as u16;
                if m.ports.get(&p).is_none_or(|v| v.is_empty()) {
                    found = Some(p);
                    break;
                }
            }
            let p = found.ok_or(Errno::EADDRINUSE)?;
            m.rover = if p >= EPHEMERAL_HIGH { EPHEMERAL_LOW } else { p + 1 };
            p
        };
        m.ports.entry(port).or_default().push(Binding { id, local, peer: None, flags: flags.clone(), uid, owner });
        Ok(port)
    }

    /// Whether socket `id` at `port` conflicts with anyone under its
    /// current flags (listen(2) re-checks as Linux does, now listening).
    pub fn recheck(&self, id: u64, port: u16) -> Result<(), Errno> {
        let m = self.lock();
        let tcp = m.tcp;
        let Some(v) = m.ports.get(&port) else { return Ok(()) };
        let Some(me) = v.iter().find(|b| b.id == id) else { return Ok(()) };
        if v.iter().any(|b| b.id != id && conflicts(tcp, &me.local, &me.flags, me.uid, b)) {
            return Err(Errno::EADDRINUSE);
        }
        Ok(())
    }

    /// Add a socket without any conflict check (an accepted connection
    /// shares its listener's port).
    pub fn add(
        &self,
        id: u64,
        (local, port): (Local, u16),
        peer: Option<SocketAddr>,
        flags: Arc<BindFlags>,
        uid: u32,
        owner: Weak<T>,
    ) {
        self.lock().ports.entry(port).or_default().push(Binding { id, local, peer, flags, uid, owner });
    }

    /// Socket `id` now has a specific local address and maybe a peer
    /// (connect).
    pub fn update(&self, id: u64, port: u16, local: Local, peer: Option<SocketAddr>) {
        if let Some(b) = self.lock().ports.get_mut(&port).and_then(|v| v.iter_mut().find(|b| b.id == id)) {
            b.local = local;
            b.peer = peer;
        }
    }

    pub fn unbind(&self, id: u64, port: u16) {
        let mut m = self.lock();
        if let Some(v) = m.ports.get_mut(&port) {
            v.retain(|b| b.id != id);
            if v.is_empty() {
                m.ports.remove(&port);
            }
        }
    }

    /// The socket that takes traffic from `src` to `dst`:`port`, among
    /// those `accept` admits: the most specific match (a connected peer,
    /// then a specific address, then a dual-stack wildcard), and within a
    /// SO_REUSEPORT group one chosen by the source.
    pub fn lookup(
        &self,
        dst: IpAddr,
        port: u16,
        src: SocketAddr,
        accept: impl Fn(&BindFlags) -> bool,
    ) -> Option<Arc<T>> {
        let m = self.lock();
        let v = m.ports.get(&port)?;
        let mut best: Vec<&Binding<T>> = Vec::new();
        let mut best_score = 0;
        for b in v {
            if !b.local.covers(dst) || !accept(&b.flags) {
                continue;
            }
            let mut score = b.local.specificity();
            match b.peer {
                Some(p) if p == src => score += 8,
                Some(_) => continue,
                None => {}
            }
            if score > best_score {
                best_score = score;
                best.clear();
            }
            if score == best_score {
                best.push(b);
            }
        }
        let first = best.first()?;
        let group: Vec<&&Binding<T>> = if first.flags.reuseport() {
            best.iter().filter(|b| b.flags.reuseport() && b.uid == first.uid).collect()
        } else {
            // Without SO_REUSEPORT, the newest binding wins (Linux adds to
            // the head of the hash chain).
            return best.last().and_then(|b| b.owner.upgrade());
        };
        let h = src.port() as usize ^ ip_hash(src.ip());
        group.get(h % group.len().max(1)).and_then(|b| b.owner.upgrade())
    }

    /// Every live socket bound to `port`.
    pub fn owners(&self, port: u16) -> Vec<Arc<T>> {
        self.lock().ports.get(&port).map(|v| v.iter().filter_map(|b| b.owner.upgrade()).collect()).unwrap_or_default()
    }
}

fn ip_hash(ip: IpAddr) -> usize {
    match ip {
        IpAddr::V4(a) => u32::from(a) as usize,
        IpAddr::V6(a) => a.octets().iter().fold(0usize, |h, &b| h.wrapping_mul(31).wrapping_add(usize::from(b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn flags(reuseaddr: bool, reuseport: bool) -> Arc<BindFlags> {
        let f = BindFlags::default();
        f.reuseaddr.store(reuseaddr, Ordering::Relaxed);
        f.reuseport.store(reuseport, Ordering::Relaxed);
        Arc::new(f)
    }

    #[test]
    fn wildcards_and_families_conflict_as_linux() {
        let t: PortTable<()> = PortTable::new(true);
        let lo = Local::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let f = flags(false, false);
        assert_eq!(t.bind(1, Local::Any6 { v6only: false }, 5000, &f, 0, Weak::new()), Ok(5000));
        assert_eq!(t.bind(2, lo, 5000, &f, 0, Weak::new()), Err(Errno::EADDRINUSE));
        assert_eq!(t.bind(3, Local::Any4, 5000, &f, 0, Weak::new()), Err(Errno::EADDRINUSE));
        t.unbind(1, 5000);
        assert_eq!(t.bind(4, Local::Any6 { v6only: true }, 5000, &f, 0, Weak::new()), Ok(5000));
        assert_eq!(t.bind(5, Local::Any4, 5000, &f, 0, Weak::new()), Ok(5000));
        assert_eq!(
            t.bind(6, Local::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)), 5000, &f, 0, Weak::new()),
            Err(Errno::EADDRINUSE)
        );
    }

    #[test]
    fn reuse_rules() {
        let t: PortTable<()> = PortTable::new(true);
        let a = flags(true, false);
        let b = flags(true, false);
        assert!(t.bind(1, Local::Any4, 6000, &a, 0, Weak::new()).is_ok());
        assert!(t.bind(2, Local::Any4, 6000, &b, 0, Weak::new()).is_ok());
        a.listening.store(true, Ordering::Relaxed);
        assert_eq!(t.recheck(1, 6000), Ok(()));
        b.listening.store(true, Ordering::Relaxed);
        assert_eq!(t.recheck(2, 6000), Err(Errno::EADDRINUSE));
        let p1 = flags(false, true);
        let p2 = flags(false, true);
        assert!(t.bind(3, Local::Any4, 7000, &p1, 5, Weak::new()).is_ok());
        assert_eq!(t.bind(4, Local::Any4, 7000, &p2, 6, Weak::new()), Err(Errno::EADDRINUSE));
        assert!(t.bind(5, Local::Any4, 7000, &p2, 5, Weak::new()).is_ok());
        let e = t.bind(6, Local::Any4, 0, &flags(false, false), 0, Weak::new()).unwrap();
        assert!((EPHEMERAL_LOW..=EPHEMERAL_HIGH).contains(&e));
    }
}
