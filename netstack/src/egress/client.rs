//! The Sentry's end of the broker channel: requests go out with an id,
//! replies come back on the notifier thread and complete the request
//! waiting under that id. Nothing here blocks: a connect's caller waits
//! on its own socket, which the completion wakes.
//!
//! Lock order: every lock of [`Egress`] (`pending`, `waiters`, `flows`,
//! `live`, `held`, `connecting`, `udp_peers`) is a leaf, except `readers`
//! → `reg` (re-arming the channel's registration) and `connecting` →
//! the notifier's `handlers` (adding a handshake watch). Completions,
//! sinks and teardowns run with nothing held.

use super::notifier::{HostEvents, Notifier, Registration};
use super::proto::{self, Proto, Reply, Request};
use super::sys;
use abi::Errno;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

/// What a connect's completion receives: the connected host socket.
pub type ConnectDone = Box<dyn FnOnce(Result<OwnedFd, Errno>) + Send>;
/// What a DNS query's completion receives: the answer datagram (empty
/// when the broker had none).
pub type DnsDone = Box<dyn FnOnce(Vec<u8>) + Send>;
/// Where a published port's connection goes.
pub type AcceptFn = Box<dyn Fn(Proto, u16, SocketAddr, OwnedFd) + Send + Sync>;
/// Where a published UDP port's datagram goes: (guest port, the peer as
/// the guest sees it, the bytes).
pub type DatagramFn = Box<dyn Fn(u16, SocketAddr, Vec<u8>) + Send + Sync>;

/// Peers of published UDP ports remembered at once (for the guest's
/// answers); beyond it the table starts over.
const MAX_UDP_PEERS: usize = 4096;
/// What a hostinet op's completion receives: the descriptor the reply
/// carried (a new socket), or the errno.
type CallDone = Box<dyn FnOnce(Result<Option<OwnedFd>, Errno>) + Send>;

enum Pending {
    Connect(Proto, ConnectDone),
    Dns(DnsDone),
    Call(CallDone),
    Flow(FlowDone),
}

/// What opening a UDP flow's completion receives: the flow's id, or the
/// errno (ECONNREFUSED: refused by the policy).
pub type FlowDone = Box<dyn FnOnce(Result<u32, Errno>) + Send>;

/// Where a UDP flow's incoming datagrams go.
pub trait FlowSink: Send + Sync {
    fn datagram(&self, payload: Vec<u8>);
}

/// UDP flows one sandbox may have open at once.
const MAX_FLOWS: usize = 1024;

/// Most requests waiting for the broker at once: beyond it, ENOBUFS.
const MAX_PENDING: usize = 4096;

pub struct Egress {
    chan: OwnedFd,
    pub notifier: Arc<Notifier>,
    next_id: AtomicU32,
    pending: Mutex<HashMap<u32, Pending>>,
    /// The broker is gone: every request fails at once.
    dead: AtomicBool,
    on_accept: OnceLock<AcceptFn>,
    on_datagram: OnceLock<DatagramFn>,
    /// (guest port, peer port as the guest sees it at the gateway) → the
    /// peer on the host, for answers to published UDP ports.
    udp_peers: Mutex<HashMap<(u16, u16), SocketAddr>>,
    reg: Mutex<Option<Registration>>,
    /// TCP connects whose handshake the host is still doing.
    connecting: Mutex<HashMap<u64, (Registration, Arc<HandshakeWatch>)>>,
    /// Tasks reading the channel themselves ([`Egress::wait_reply`]):
    /// while there are any, the notifier does not watch the channel (it
    /// would only wake to find their answers gone).
    readers: Mutex<usize>,
    /// Open UDP flows (the broker holds their host sockets).
    flows: Mutex<HashMap<u32, Weak<dyn FlowSink>>>,
    /// Tasks reading the channel themselves for a request's answer
    /// ([`Egress::wait_reply`]): woken when another thread took it.
    waiters: Mutex<HashMap<u32, sys::Waker>>,
    /// Live connections out of the sandbox, ended when the broker dies.
    live: Mutex<Vec<Weak<dyn Teardown>>>,
    /// Connections the egress owns until they end (bridges), by key.
    held: Mutex<HashMap<usize, Arc<dyn Teardown>>>,
    next_held: std::sync::atomic::AtomicUsize,
}

/// A connection that ends with the broker: the sandbox's networking
/// stops as a whole, and its guests see resets rather than hangs.
pub trait Teardown: Send + Sync {
    fn broker_gone(&self);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|_| vfs::poisoned())
}

impl Egress {
    /// Serve the channel `chan` (the Sentry's end of runsc-lite's
    /// socketpair with the broker).
    pub fn start(chan: OwnedFd) -> Result<Arc<Egress>, Errno> {
        sys::set_nonblocking(chan.as_raw_fd())?;
        let notifier = Notifier::start()?;
        let e = Arc::new(Egress {
            chan,
            notifier,
            next_id: AtomicU32::new(1),
            pending: Mutex::new(HashMap::new()),
            dead: AtomicBool::new(false),
            on_accept: OnceLock::new(),
            on_datagram: OnceLock::new(),
            udp_peers: Mutex::new(HashMap::new()),
            reg: Mutex::new(None),
            connecting: Mutex::new(HashMap::new()),
            live: Mutex::new(Vec::new()),
            held: Mutex::new(HashMap::new()),
            next_held: std::sync::atomic::AtomicUsize::new(1),
            waiters: Mutex::new(HashMap::new()),
            flows: Mutex::new(HashMap::new()),
            readers: Mutex::new(0),
        });
        let reader: Arc<dyn HostEvents> = Arc::new(ChannelReader(Arc::downgrade(&e)));
        let reg = e.notifier.add_for(e.chan.as_raw_fd(), reader, sys::EPOLLIN)?;
        *lock(&e.reg) = Some(reg);
        Ok(e)
    }

    /// Where connections to published ports go (set once, by the stack).
    pub fn set_on_accept(&self, f: AcceptFn) {
        let _ = self.on_accept.set(f);
    }

    /// Record a live connection (see [`Teardown`]).
    pub fn track(&self, t: Weak<dyn Teardown>) {
        let mut l = lock(&self.live);
        if l.len() >= 64 && l.len().is_power_of_two() {
            l.retain(|w| w.strong_count() > 0);
        }
        l.push(t);
    }

    /// Own a connection until [`Egress::release`] (torn down with the
    /// broker like the tracked ones); returns its key.
    pub fn hold(&self, t: Arc<dyn Teardown>) -> usize {
        let key = self.next_held.fetch_add(1, Ordering::Relaxed);
        lock(&self.held).insert(key, t);
        key
    }

    /// Let go of a connection [`Egress::hold`] owned.
    pub fn release(&self, key: usize) {
        let t = lock(&self.held).remove(&key);
        drop(t);
    }

    /// Whether the broker is gone.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Where datagrams to published UDP ports go (set once, by the stack).
    pub fn set_on_datagram(&self, f: DatagramFn) {
        let _ = self.on_datagram.set(f);
    }

    /// The host peer behind gateway port `peer_port` that sent to
    /// published UDP port `guest_port`, if any.
    pub fn published_peer(&self, guest_port: u16, peer_port: u16) -> Option<SocketAddr> {
        lock(&self.udp_peers).get(&(guest_port, peer_port)).copied()
    }

    /// Answer a peer of a published UDP port (the broker sends it from the
    /// published socket).
    pub fn send_datagram(&self, guest_port: u16, peer: SocketAddr, payload: &[u8]) -> Result<(), Errno> {
        if self.is_dead() {
            return Err(Errno::ENETUNREACH);
        }
        if payload.len() > proto::MAX_PAYLOAD {
            return Err(Errno::EMSGSIZE);
        }
        let req = Request::Datagram { guest_port, peer, payload: payload.to_vec() };
        sys::send_record(self.chan.as_raw_fd(), &req.encode())
    }

    fn next_id(&self) -> u32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }

    fn request(&self, req: Request, p: Pending) -> Result<(), (Errno, Pending)> {
        self.request_with(req, p, None)
    }

    fn request_with(&self, req: Request, p: Pending, fd: Option<RawFd>) -> Result<(), (Errno, Pending)> {
        if self.dead.load(Ordering::Acquire) {
            return Err((Errno::ENETUNREACH, p));
        }
        let id = req.id();
        {
            let mut pend = lock(&self.pending);
            if pend.len() >= MAX_PENDING {
                return Err((Errno::ENOBUFS, p));
            }
            pend.insert(id, p);
        }
        let sent = match fd {
            None => sys::send_record(self.chan.as_raw_fd(), &req.encode()),
            Some(fd) => sys::send_record_fd(self.chan.as_raw_fd(), &req.encode(), fd),
        };
        if let Err(e) = sent {
            return match lock(&self.pending).remove(&id) {
                Some(p) => Err((e, p)),
                None => Ok(()),
            };
        }
        Ok(())
    }

    /// Ask for a connection to `dst`; `done` runs once, on another thread,
    /// when it is established or has failed (for TCP, after the host's
    /// handshake).
    ///
    /// Returns the request's id (for [`Egress::wait_reply`]), or None when
    /// `done` already ran.
    pub fn connect(&self, proto: Proto, dst: SocketAddr, done: ConnectDone) -> Option<u32> {
        let id = self.next_id();
        let req = Request::Connect { id, proto, dst };
        if let Err((e, p)) = self.request(req, Pending::Connect(proto, done)) {
            if let Pending::Connect(_, done) = p {
                done(Err(e));
            }
            return None;
        }
        Some(id)
    }

    /// Wait in the calling task's thread until the broker has answered
    /// request `id` (its completion has run), reading the channel itself:
    /// the answer reaches the waiting task without the notifier thread in
    /// between. ERESTARTSYS when interrupted (the request stays pending).
    pub fn wait_reply(self: &Arc<Self>, id: u32, interrupt: &vfs::Interrupt) -> Result<(), Errno> {
        let waiting = || lock(&self.pending).contains_key(&id);
        let set_poke = |w: Option<sys::Waker>| match w {
            Some(w) => {
                lock(&self.waiters).insert(id, w);
            }
            None => {
                lock(&self.waiters).remove(&id);
            }
        };
        self.readers_change(true);
        let mut r = Ok(());
        while waiting() {
            if let Err(e) = sys::wait_fd(
                self.chan.as_raw_fd(),
                libc::POLLIN,
                interrupt,
                None,
                &set_poke,
                &waiting,
                sys::WaitLength::Brief,
            ) {
                r = Err(e);
                break;
            }
            self.drain();
        }
        self.readers_change(false);
        r
    }

    /// One task more (or fewer) reads the channel itself: the notifier
    /// stops watching it while any does, and watches it again after the
    /// last (re-arming reports what came in meanwhile).
    fn readers_change(&self, more: bool) {
        let mut n = lock(&self.readers);
        let before = *n;
        *n = if more { before.saturating_add(1) } else { before.saturating_sub(1) };
        if (before == 0) != (*n == 0) {
            if let Some(reg) = lock(&self.reg).as_ref() {
                reg.modify(if *n == 0 { sys::EPOLLIN } else { 0 });
            }
        }
    }

    /// Open a UDP flow to `dst`: the broker checks the policy and keeps a
    /// host socket connected there; datagrams go through it both ways
    /// (`flow_send`, `sink`). `done` runs once, on another thread.
    pub fn open_flow(&self, dst: SocketAddr, sink: Weak<dyn FlowSink>, done: FlowDone) {
        let id = self.next_id();
        {
            let mut f = lock(&self.flows);
            if f.len() >= MAX_FLOWS {
                f.retain(|_, s| s.strong_count() > 0);
                if f.len() >= MAX_FLOWS {
                    drop(f);
                    return done(Err(Errno::ENOBUFS));
                }
            }
            f.insert(id, sink);
        }
        let req = Request::Connect { id, proto: Proto::Udp, dst };
        if let Err((e, p)) = self.request(req, Pending::Flow(done)) {
            lock(&self.flows).remove(&id);
            if let Pending::Flow(done) = p {
                done(Err(e));
            }
        }
    }

    /// Send a datagram on flow `flow` (never blocks: a full channel drops
    /// it, as a full queue would).
    pub fn flow_send(&self, flow: u32, payload: &[u8]) -> Result<(), Errno> {
        if self.is_dead() {
            return Err(Errno::ENETUNREACH);
        }
        if payload.len() > proto::MAX_DATAGRAM {
            return Err(Errno::EMSGSIZE);
        }
        match sys::send_record(self.chan.as_raw_fd(), &Request::FlowSend { flow, payload: payload.to_vec() }.encode()) {
            Err(Errno::ENOBUFS) => Ok(()),
            r => r,
        }
    }

    /// Close flow `flow` (its guest socket or destination is gone).
    pub fn flow_close(&self, flow: u32) {
        lock(&self.flows).remove(&flow);
        if !self.is_dead() {
            let _ = sys::send_record(self.chan.as_raw_fd(), &Request::FlowClose { flow }.encode());
        }
    }

    /// Ask the broker's resolver; `done` gets the answer datagram.
    pub fn dns(&self, query: &[u8], done: DnsDone) {
        if query.len() > proto::MAX_PAYLOAD {
            return;
        }
        let req = Request::Dns { id: self.next_id(), query: query.to_vec() };
        // A query that cannot be sent is lost, as a datagram may be.
        let _ = self.request(req, Pending::Dns(done));
    }

    /// hostinet: make request `make(id)` (with socket `fd` attached when
    /// the op acts on one) and wait for the broker's answer: the
    /// descriptor it sent, if any. The broker never blocks on a guest's
    /// behalf (its sockets are non-blocking), so the wait is short and
    /// not interruptible; a broker that dies fails it (ENETUNREACH).
    pub fn call(&self, make: impl FnOnce(u32) -> Request, fd: Option<RawFd>) -> Result<Option<OwnedFd>, Errno> {
        type Slot = (Mutex<Option<Result<Option<OwnedFd>, Errno>>>, Condvar);
        let slot: Arc<Slot> = Arc::new((Mutex::new(None), Condvar::new()));
        let s2 = slot.clone();
        let done: CallDone = Box::new(move |r| {
            *lock(&s2.0) = Some(r);
            s2.1.notify_all();
        });
        let req = make(self.next_id());
        if req.takes_socket() != fd.is_some() {
            return Err(Errno::EINVAL);
        }
        if let Err((e, _)) = self.request_with(req, Pending::Call(done), fd) {
            return Err(e);
        }
        let mut g = lock(&slot.0);
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = slot.1.wait(g).unwrap_or_else(|_| vfs::poisoned());
        }
    }

    fn drain(self: &Arc<Self>) {
        let mut buf = vec![0u8; proto::MAX_MESSAGE];
        loop {
            match sys::recv_record(self.chan.as_raw_fd(), &mut buf) {
                Ok(Some((n, fd))) => self.dispatch(buf.get(..n).unwrap_or_default(), fd),
                Ok(None) => return self.broker_gone(),
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("egress: reading the broker channel: {e}");
                    return self.broker_gone();
                }
            }
        }
    }

    /// Request `id` is answered: wake a task waiting for it in its own
    /// thread (another thread read the answer).
    fn answered(&self, id: u32) {
        let w = lock(&self.waiters).remove(&id);
        if let Some(w) = w {
            w();
        }
    }

    fn dispatch(self: &Arc<Self>, msg: &[u8], fd: Option<OwnedFd>) {
        let is_dns = |id: u32| matches!(lock(&self.pending).get(&id), Some(Pending::Dns(_)));
        let reply = match Reply::decode(msg, is_dns) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("egress: a bad message from the broker ({})", e.0);
                return;
            }
        };
        match reply {
            Reply::Connected { id, result } => {
                let p = lock(&self.pending).remove(&id);
                self.answered(id);
                let (proto, done) = match p {
                    Some(Pending::Connect(proto, done)) => (proto, done),
                    Some(Pending::Call(done)) => return done(result.map(|()| fd).map_err(Errno)),
                    Some(Pending::Flow(done)) => {
                        if result.is_err() {
                            lock(&self.flows).remove(&id);
                        }
                        return done(result.map(|()| id).map_err(Errno));
                    }
                    Some(Pending::Dns(done)) => return done(Vec::new()),
                    None => return,
                };
                match (result, fd) {
                    (Ok(()), Some(fd)) if proto == Proto::Tcp => match handshake_over(&fd) {
                        // A local destination has usually answered by now.
                        Some(Ok(())) => done(Ok(fd)),
                        Some(Err(e)) => done(Err(e)),
                        None => self.watch_handshake(fd, done),
                    },
                    (Ok(()), Some(fd)) => done(Ok(fd)),
                    (Ok(()), None) => done(Err(Errno::ECONNREFUSED)),
                    (Err(e), _) => done(Err(Errno(e))),
                }
            }
            Reply::Dns { id, answer } => {
                if let Some(Pending::Dns(done)) = lock(&self.pending).remove(&id) {
                    done(answer);
                }
            }
            Reply::Accepted { proto, guest_port, peer } => {
                if let (Some(f), Some(fd)) = (self.on_accept.get(), fd) {
                    f(proto, guest_port, peer, fd);
                }
            }
            Reply::Flow { flow, payload } => {
                let sink = lock(&self.flows).get(&flow).and_then(Weak::upgrade);
                if let Some(sink) = sink {
                    sink.datagram(payload);
                }
            }
            Reply::Datagram { guest_port, peer, payload } => {
                {
                    let mut m = lock(&self.udp_peers);
                    if m.len() >= MAX_UDP_PEERS {
                        m.clear();
                    }
                    m.insert((guest_port, peer.port()), peer);
                }
                if let Some(f) = self.on_datagram.get() {
                    f(guest_port, peer, payload);
                }
            }
        }
    }

    /// Wait (on the notifier) for the host's TCP handshake of `fd`.
    fn watch_handshake(self: &Arc<Self>, fd: OwnedFd, done: ConnectDone) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let key = NEXT.fetch_add(1, Ordering::Relaxed);
        let raw = fd.as_raw_fd();
        let w = Arc::new(HandshakeWatch { egress: Arc::downgrade(self), key, state: Mutex::new(Some((fd, done))) });
        // Registered before the notifier may call it: hold `connecting`.
        let mut c = lock(&self.connecting);
        match self.notifier.add(raw, w.clone()) {
            Ok(reg) => {
                c.insert(key, (reg, w));
            }
            Err(e) => {
                drop(c);
                if let Some((_, done)) = lock(&w.state).take() {
                    done(Err(e));
                }
            }
        }
    }

    fn broker_gone(&self) {
        if self.dead.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!("egress: the broker is gone; connections out of the sandbox now fail");
        *lock(&self.reg) = None;
        let pending: Vec<Pending> = lock(&self.pending).drain().map(|(_, p)| p).collect();
        for p in pending {
            match p {
                Pending::Connect(_, done) => done(Err(Errno::ECONNREFUSED)),
                Pending::Dns(done) => done(Vec::new()),
                Pending::Call(done) => done(Err(Errno::ENETUNREACH)),
                Pending::Flow(done) => done(Err(Errno::ENETUNREACH)),
            }
        }
        let live: Vec<Weak<dyn Teardown>> = std::mem::take(&mut *lock(&self.live));
        for t in live.iter().filter_map(Weak::upgrade) {
            t.broker_gone();
        }
        let held: Vec<Arc<dyn Teardown>> = lock(&self.held).values().cloned().collect();
        for t in held {
            t.broker_gone();
        }
    }
}

/// Whether the host finished `fd`'s TCP handshake: Some(outcome), or
/// None while it is still under way.
fn handshake_over(fd: &OwnedFd) -> Option<Result<(), Errno>> {
    match sys::so_error(fd.as_raw_fd()) {
        Ok(0) => {}
        Ok(e) => return Some(Err(Errno(e))),
        Err(e) => return Some(Err(e)),
    }
    sys::writable_now(fd.as_raw_fd()).then_some(Ok(()))
}

struct ChannelReader(Weak<Egress>);

impl HostEvents for ChannelReader {
    fn ready(&self, _events: u32) {
        if let Some(e) = self.0.upgrade() {
            e.drain();
        }
    }
}

/// A TCP connect the host is completing.
struct HandshakeWatch {
    egress: Weak<Egress>,
    key: u64,
    state: Mutex<Option<(OwnedFd, ConnectDone)>>,
}

impl HostEvents for HandshakeWatch {
    fn ready(&self, events: u32) {
        let mut st = lock(&self.state);
        let Some((fd, _)) = st.as_ref() else { return };
        let err = match sys::so_error(fd.as_raw_fd()) {
            Ok(0) if events & (sys::EPOLLOUT | sys::EPOLLERR | sys::EPOLLHUP) == 0 => return,
            Ok(0) => None,
            Ok(e) => Some(Errno(e)),
            Err(e) => Some(e),
        };
        let Some((fd, done)) = st.take() else { return };
        drop(st);
        // Deregister before the descriptor moves on (its new owner adds it
        // again).
        let entry = self.egress.upgrade().and_then(|e| lock(&e.connecting).remove(&self.key));
        drop(entry);
        match err {
            None => done(Ok(fd)),
            Some(e) => done(Err(e)),
        }
    }
}
