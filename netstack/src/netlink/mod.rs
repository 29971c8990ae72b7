//! AF_NETLINK sockets of protocol NETLINK_ROUTE, SOCK_RAW or SOCK_DGRAM.
//!
//! A message sent to the kernel (port 0) is answered at once, as Linux's
//! netlink_unicast_kernel does, from the interface table ([`route`]); the
//! answers wait on the socket as datagrams for recv. Dumps are cut into
//! datagrams the way netlink_dump cuts them (about a page, or as much as
//! the reader's largest buffer), the next part queued once the reader has
//! drained the previous one, then NLMSG_DONE on its own.
//!
//! Port ids: bind to a chosen id, or to 0 for the caller's process id,
//! then unique negative ids once that is taken (as Linux).
//!
//! The socket's queue is bounded by SO_RCVBUF: an answer that finds it
//! full is dropped and the next recv fails with ENOBUFS (NETLINK_NO_ENOBUFS
//! silences that), as Linux's netlink_overrun.
//!
//! Lock order: a socket's state, then [`NetlinkState`]'s port table, then
//! the interface table. No path holds two sockets' locks.

mod link;
pub mod msg;
mod route;

use crate::addr::SockAddr;
use crate::iface::Interfaces;
use crate::opts::{self, SockOpts};
use crate::socket::{Caller, Control, RecvMsg, SockState, Socket, SocketInfo};
use crate::Netstack;
use abi::socket::*;
use abi::{Errno, Pod};
use msg::{
    Msg, Request, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_MIN_TYPE, NLM_F_ACK, NLM_F_CAPPED, NLM_F_MULTI,
    NLM_F_REQUEST,
};
use std::any::Any;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use vfs::{IoCtx, WaitQueue, Waitable};

// SOL_NETLINK options.
pub const NETLINK_ADD_MEMBERSHIP: i32 = 1;
pub const NETLINK_DROP_MEMBERSHIP: i32 = 2;
pub const NETLINK_PKTINFO: i32 = 3;
pub const NETLINK_BROADCAST_ERROR: i32 = 4;
pub const NETLINK_NO_ENOBUFS: i32 = 5;
pub const NETLINK_RX_RING: i32 = 6;
pub const NETLINK_TX_RING: i32 = 7;
pub const NETLINK_LISTEN_ALL_NSID: i32 = 8;
pub const NETLINK_LIST_MEMBERSHIPS: i32 = 9;
pub const NETLINK_CAP_ACK: i32 = 10;
pub const NETLINK_EXT_ACK: i32 = 11;
pub const NETLINK_GET_STRICT_CHK: i32 = 12;

/// MAX_LINKS: protocols are below it (the others are EPROTONOSUPPORT too).
const MAX_LINKS: i32 = 32;
/// RTNLGRP_MAX: NETLINK_ROUTE's multicast groups are 1..=39.
const RTNLGRP_MAX: i32 = 39;
/// NLMSG_GOODSIZE: a dump's datagram when the reader's buffers are small.
const NLMSG_GOODSIZE: usize = 4096 - 320;
/// The most a dump's datagram grows to with the reader's buffer
/// (SKB_WITH_OVERHEAD(32768)).
const DUMP_MAX: usize = 32768 - 320;
/// What a queued datagram costs against SO_RCVBUF beyond its bytes (an
/// sk_buff's truesize overhead), so many small answers fill it as on Linux.
const SKB_OVERHEAD: usize = 576;
/// The first port id tried once the process id is taken (Linux starts
/// below -4096).
const ROVER_START: i32 = -4097;

/// The port ids of the sandbox's NETLINK_ROUTE sockets.
#[derive(Default)]
pub struct NetlinkState {
    ports: Mutex<Ports>,
}

#[derive(Default)]
struct Ports {
    used: HashSet<u32>,
    /// The next negative id to try (0: not started).
    rover: i32,
}

impl NetlinkState {
    fn ports(&self) -> MutexGuard<'_, Ports> {
        self.ports.lock().unwrap_or_else(|_| vfs::poisoned())
    }

    fn insert(&self, pid: u32) -> Result<(), Errno> {
        if self.ports().used.insert(pid) {
            Ok(())
        } else {
            Err(Errno::EADDRINUSE)
        }
    }

    /// netlink_autobind: `tgid` if free, else the next free negative id.
    fn autobind(&self, tgid: i32) -> u32 {
        let mut p = self.ports();
        if tgid > 0 && p.used.insert(tgid as u32) {
            return tgid as u32;
        }
        loop {
            if p.rover > ROVER_START || p.rover == i32::MIN {
                p.rover = ROVER_START;
            }
            let id = p.rover as u32;
            p.rover -= 1;
            if p.used.insert(id) {
                return id;
            }
        }
    }

    fn remove(&self, pid: u32) {
        self.ports().used.remove(&pid);
    }
}

/// A new NETLINK_ROUTE socket.
pub fn new_socket(stack: &Arc<Netstack>, sock_type: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    if sock_type != SOCK_RAW && sock_type != SOCK_DGRAM {
        return Err(Errno::ESOCKTNOSUPPORT);
    }
    if !(0..MAX_LINKS).contains(&protocol) || protocol != NETLINK_ROUTE {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(Arc::new(NetlinkSocket {
        stack: stack.clone(),
        sock_type,
        state: Waitable::new(State {
            portid: 0,
            bound: false,
            dst_portid: 0,
            dst_group: 0,
            groups: 0,
            queue: VecDeque::new(),
            queued: 0,
            dump: None,
            err: None,
            opts: SockOpts::new(opts::BUF_DEFAULT, opts::BUF_DEFAULT),
            flags: Flags::default(),
            max_recvmsg_len: 0,
            uid: 0,
        }),
    }))
}

/// The SOL_NETLINK flags.
#[derive(Clone, Copy, Default)]
struct Flags {
    pktinfo: bool,
    broadcast_error: bool,
    no_enobufs: bool,
    listen_all_nsid: bool,
    cap_ack: bool,
    ext_ack: bool,
    strict: bool,
}

/// A dump under way: the messages not yet queued.
struct Dump {
    msgs: VecDeque<Vec<u8>>,
    seq: u32,
}

struct State {
    portid: u32,
    bound: bool,
    /// connect(2)'s destination: port and the one group (as a mask).
    dst_portid: u32,
    dst_group: u32,
    /// Multicast groups joined (bit n-1 for group n); no events are sent.
    groups: u64,
    queue: VecDeque<Vec<u8>>,
    /// The queue's cost against SO_RCVBUF.
    queued: usize,
    dump: Option<Dump>,
    /// The error the next recv reports (ENOBUFS after an overrun).
    err: Option<Errno>,
    opts: SockOpts,
    flags: Flags,
    /// The largest buffer recv was given, for the size of dump datagrams.
    max_recvmsg_len: usize,
    /// The user that last bound, connected or sent (for listings).
    uid: u32,
}

impl State {
    /// Queue one datagram, or drop it when the queue is over SO_RCVBUF.
    fn enqueue(&mut self, d: Vec<u8>) {
        if self.queued > self.opts.rcvbuf as usize {
            if !self.flags.no_enobufs {
                self.err = Some(Errno::ENOBUFS);
            }
            return;
        }
        self.queued += d.len() + SKB_OVERHEAD;
        self.queue.push_back(d);
    }

    fn dequeued(&mut self, d: &[u8]) {
        self.queued = self.queued.saturating_sub(d.len() + SKB_OVERHEAD);
    }

    /// Queue the next datagram of the dump under way, or its NLMSG_DONE.
    fn continue_dump(&mut self) {
        let portid = self.portid;
        let limit = NLMSG_GOODSIZE.max(self.max_recvmsg_len);
        let Some(dump) = self.dump.as_mut() else { return };
        let mut out = Vec::new();
        while let Some(m) = dump.msgs.front() {
            if !out.is_empty() && out.len() + m.len() > limit {
                break;
            }
            if let Some(m) = dump.msgs.pop_front() {
                out.extend_from_slice(&m);
            }
        }
        if out.is_empty() {
            let mut done = Msg::new(NLMSG_DONE, NLM_F_MULTI, dump.seq, portid);
            done.push(&0i32.to_ne_bytes());
            out = done.finish();
            self.dump = None;
        }
        self.enqueue(out);
    }

    /// Whether the reader has made room for more of a dump (Linux goes on
    /// once the queue is down to half of SO_RCVBUF).
    fn dump_room(&self) -> bool {
        self.dump.is_some() && self.queued <= self.opts.rcvbuf as usize / 2
    }
}

/// NLMSG_ERROR for `req`: error 0 is an ACK. The request comes back whole
/// with an error, only its header otherwise (or with NETLINK_CAP_ACK).
fn ack(req: &Request, err: Option<Errno>, portid: u32, cap_ack: bool) -> Vec<u8> {
    let code = err.map_or(0, |e| -e.0);
    let whole = err.is_some() && !cap_ack;
    let mut m = Msg::new(NLMSG_ERROR, if whole { 0 } else { NLM_F_CAPPED }, req.seq, portid);
    let mut body = code.to_ne_bytes().to_vec();
    body.extend_from_slice(if whole { req.raw } else { &req.raw[..NLMSG_HDRLEN] });
    m.push(&body);
    m.finish()
}

pub struct NetlinkSocket {
    stack: Arc<Netstack>,
    sock_type: i32,
    state: Arc<Waitable<State>>,
}

impl NetlinkSocket {
    fn ifaces(&self) -> &Interfaces {
        &self.stack.ifaces
    }

    /// Bind to the caller's process id or a free negative id.
    fn autobind(&self, s: &mut State, tgid: i32) {
        if !s.bound {
            s.portid = self.stack.netlink.autobind(tgid);
            s.bound = true;
        }
    }

    /// Serve every request in `data` (netlink_rcv_skb), queueing answers.
    fn serve(&self, s: &mut State, data: &[u8], uid: u32) {
        for req in msg::requests(data) {
            let mut err = None;
            if req.flags & NLM_F_REQUEST != 0 && req.typ >= NLMSG_MIN_TYPE {
                let ctx = route::Ctx { ifaces: self.ifaces(), portid: s.portid, strict: s.flags.strict, uid };
                match route::handle(&ctx, &req) {
                    Ok(route::Answer::Nothing) => {}
                    Ok(route::Answer::Reply(m)) => s.enqueue(m),
                    Ok(route::Answer::Dump(msgs)) if s.dump.is_none() => {
                        s.dump = Some(Dump { msgs: msgs.into(), seq: req.seq });
                        if s.queued < s.opts.rcvbuf as usize {
                            s.continue_dump();
                        }
                        // A dump is never acknowledged.
                        continue;
                    }
                    Ok(route::Answer::Dump(_)) => err = Some(Errno::EBUSY),
                    Err(e) => err = Some(e),
                }
            }
            if req.flags & NLM_F_ACK != 0 || err.is_some() {
                let a = ack(&req, err, s.portid, s.flags.cap_ack);
                s.enqueue(a);
            }
        }
    }
}

impl Drop for NetlinkSocket {
    /// A socket that never became a file (or whose release was missed)
    /// still gives its port id back.
    fn drop(&mut self) {
        let s = self.state.lock();
        if s.bound {
            self.stack.netlink.remove(s.portid);
        }
    }
}

fn flag_int(v: bool) -> Vec<u8> {
    i32::from(v).to_ne_bytes().to_vec()
}

impl Socket for NetlinkSocket {
    fn family(&self) -> i32 {
        AF_NETLINK
    }

    fn sock_type(&self) -> i32 {
        self.sock_type
    }

    fn protocol(&self) -> i32 {
        NETLINK_ROUTE
    }

    fn bind(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        let SockAddr::Netlink { pid, groups } = *addr else { return Err(Errno::EINVAL) };
        let mut s = self.state.lock();
        s.uid = c.cred.uid;
        if s.bound {
            if pid != s.portid {
                return Err(Errno::EINVAL);
            }
        } else if pid != 0 {
            self.stack.netlink.insert(pid)?;
            s.portid = pid;
            s.bound = true;
        } else {
            self.autobind(&mut s, c.cred.pid);
        }
        s.groups = (s.groups & !0xffff_ffff) | u64::from(groups);
        Ok(())
    }

    fn connect(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        let mut s = self.state.lock();
        match *addr {
            SockAddr::Unspec => {
                s.dst_portid = 0;
                s.dst_group = 0;
                Ok(())
            }
            SockAddr::Netlink { pid, groups } => {
                s.uid = c.cred.uid;
                self.autobind(&mut s, c.cred.pid);
                s.dst_portid = pid;
                // Linux keeps one group: the lowest asked for.
                s.dst_group = groups & groups.wrapping_neg();
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn send(
        &self,
        c: &Caller,
        data: &[u8],
        addr: Option<&SockAddr>,
        _control: Vec<Control>,
        flags: i32,
    ) -> Result<usize, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let dst = match addr {
            None => None,
            Some(SockAddr::Netlink { pid, .. }) => Some(*pid),
            Some(_) => return Err(Errno::EINVAL),
        };
        {
            let mut s = self.state.lock();
            s.uid = c.cred.uid;
            self.autobind(&mut s, c.cred.pid);
            if data.len() > (s.opts.sndbuf as usize).saturating_sub(32) {
                return Err(Errno::EMSGSIZE);
            }
            // Only the kernel answers here: no socket-to-socket netlink.
            if dst.unwrap_or(s.dst_portid) != 0 {
                return Err(Errno::ECONNREFUSED);
            }
            self.serve(&mut s, data, c.cred.uid);
        }
        self.state.notify();
        Ok(data.len())
    }

    fn recv(&self, io: &IoCtx, buf: &mut [u8], flags: i32) -> Result<RecvMsg, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let peek = flags & MSG_PEEK != 0;
        let deadline = {
            let mut s = self.state.lock();
            s.max_recvmsg_len = s.max_recvmsg_len.max(buf.len().min(DUMP_MAX));
            s.opts.recv_deadline()
        };
        let (data, pktinfo, passcred, more) = self.state.block_on(
            io,
            |s| {
                if let Some(e) = s.err.take() {
                    return Some(Err(e));
                }
                let d = if peek { s.queue.front().cloned() } else { s.queue.pop_front() };
                let Some(d) = d else {
                    return match deadline {
                        Some(t) if Instant::now() >= t => Some(Err(Errno::EAGAIN)),
                        _ => None,
                    };
                };
                if !peek {
                    s.dequeued(&d);
                }
                let more = s.dump_room();
                if more {
                    s.continue_dump();
                }
                Some(Ok((d, s.flags.pktinfo, s.opts.passcred, more)))
            },
            |_| deadline,
        )?;
        if more {
            self.state.notify();
        }
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        let mut control = Vec::new();
        if pktinfo {
            // struct nl_pktinfo: the group a message came by (0: unicast).
            control.push(Control::Raw { level: SOL_NETLINK, typ: NETLINK_PKTINFO, data: 0u32.to_ne_bytes().to_vec() });
        }
        if passcred {
            control.push(Control::Credentials(Ucred { pid: 0, uid: 0, gid: 0 }));
        }
        Ok(RecvMsg {
            len: n,
            full_len: data.len(),
            addr: Some(SockAddr::Netlink { pid: 0, groups: 0 }),
            control,
            flags: if data.len() > buf.len() { MSG_TRUNC } else { 0 },
        })
    }

    fn local_addr(&self) -> Result<SockAddr, Errno> {
        let s = self.state.lock();
        Ok(SockAddr::Netlink { pid: s.portid, groups: s.groups as u32 })
    }

    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        let s = self.state.lock();
        Ok(SockAddr::Netlink { pid: s.dst_portid, groups: s.dst_group })
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut s = self.state.lock();
        if level == SOL_SOCKET {
            return if s.opts.set(name, val)? { Ok(()) } else { Err(Errno::ENOPROTOOPT) };
        }
        if level != SOL_NETLINK {
            return Err(Errno::ENOPROTOOPT);
        }
        // Linux reads an int when there are 4 bytes, else takes 0.
        let v = opts::int(val).unwrap_or(0);
        let f = &mut s.flags;
        match name {
            NETLINK_ADD_MEMBERSHIP | NETLINK_DROP_MEMBERSHIP => {
                if v <= 0 || v > RTNLGRP_MAX {
                    return Err(Errno::EINVAL);
                }
                let bit = 1u64 << (v - 1);
                if name == NETLINK_ADD_MEMBERSHIP {
                    s.groups |= bit;
                } else {
                    s.groups &= !bit;
                }
            }
            NETLINK_PKTINFO => f.pktinfo = v != 0,
            NETLINK_BROADCAST_ERROR => f.broadcast_error = v != 0,
            NETLINK_NO_ENOBUFS => {
                f.no_enobufs = v != 0;
                if v != 0 {
                    s.err = None;
                }
            }
            NETLINK_LISTEN_ALL_NSID => f.listen_all_nsid = v != 0,
            NETLINK_CAP_ACK => f.cap_ack = v != 0,
            NETLINK_EXT_ACK => f.ext_ack = v != 0,
            NETLINK_GET_STRICT_CHK => f.strict = v != 0,
            // Memory-mapped rings are gone from Linux.
            NETLINK_RX_RING | NETLINK_TX_RING => return Err(Errno::ENOPROTOOPT),
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let mut s = self.state.lock();
        match level {
            SOL_SOCKET => match name {
                SO_ERROR => Ok(s.err.take().map_or(0, |e| e.0).to_ne_bytes().to_vec()),
                SO_ACCEPTCONN => Ok(flag_int(false)),
                // No peer process: Linux reports pid 0 and uid/gid -1.
                SO_PEERCRED => Ok(Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX }.as_bytes().to_vec()),
                _ => s.opts.get(name).ok_or(Errno::ENOPROTOOPT),
            },
            SOL_NETLINK => {
                let f = s.flags;
                match name {
                    NETLINK_PKTINFO => Ok(flag_int(f.pktinfo)),
                    NETLINK_BROADCAST_ERROR => Ok(flag_int(f.broadcast_error)),
                    NETLINK_NO_ENOBUFS => Ok(flag_int(f.no_enobufs)),
                    NETLINK_LISTEN_ALL_NSID => Ok(flag_int(f.listen_all_nsid)),
                    NETLINK_CAP_ACK => Ok(flag_int(f.cap_ack)),
                    NETLINK_EXT_ACK => Ok(flag_int(f.ext_ack)),
                    NETLINK_GET_STRICT_CHK => Ok(flag_int(f.strict)),
                    NETLINK_LIST_MEMBERSHIPS => Ok(s.groups.to_ne_bytes().to_vec()),
                    _ => Err(Errno::ENOPROTOOPT),
                }
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn poll(&self) -> u32 {
        let s = self.state.lock();
        let mut r = (libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND) as u32;
        if !s.queue.is_empty() {
            r |= (libc::POLLIN | libc::POLLRDNORM) as u32;
        }
        if s.err.is_some() {
            r |= libc::POLLERR as u32;
        }
        r
    }

    fn wait_queue(&self) -> &WaitQueue {
        &self.state.queue
    }

    fn release(&self) {
        let mut s = self.state.lock();
        if s.bound {
            self.stack.netlink.remove(s.portid);
            s.bound = false;
        }
        s.queue.clear();
        s.queued = 0;
        s.dump = None;
    }

    fn info(&self) -> SocketInfo {
        let s = self.state.lock();
        SocketInfo {
            family: AF_NETLINK,
            sock_type: self.sock_type,
            protocol: NETLINK_ROUTE,
            local: Some(SockAddr::Netlink { pid: s.portid, groups: s.groups as u32 }),
            peer: Some(SockAddr::Netlink { pid: s.dst_portid, groups: s.dst_group }),
            state: if s.dst_portid != 0 || s.dst_group != 0 { SockState::Connected } else { SockState::Close },
            rx_queue: s.queued,
            tx_queue: 0,
            uid: s.uid,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::msg::*;
    use super::*;
    use crate::socket::NoPaths;
    use vfs::wait::Interrupt;

    fn io(int: &Interrupt) -> IoCtx<'_> {
        IoCtx { flags: abi::flags::O_NONBLOCK, interrupt: int }
    }

    fn request(typ: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Msg::new(typ, flags, seq, 0);
        m.push(payload);
        m.finish()
    }

    fn send(sock: &Arc<dyn Socket>, int: &Interrupt, data: &[u8]) -> Result<usize, Errno> {
        let io = io(int);
        let c = Caller { io: &io, cred: Ucred { pid: 100, uid: 0, gid: 0 }, paths: &NoPaths };
        sock.send(&c, data, None, Vec::new(), 0)
    }

    fn recv(sock: &Arc<dyn Socket>, int: &Interrupt, cap: usize, flags: i32) -> Result<(Vec<u8>, RecvMsg), Errno> {
        let mut buf = vec![0u8; cap];
        let m = sock.recv(&io(int), &mut buf, flags)?;
        buf.truncate(m.len);
        Ok((buf, m))
    }

    #[test]
    fn socket_kinds() {
        let stack = Netstack::new();
        assert!(new_socket(&stack, SOCK_RAW, NETLINK_ROUTE).is_ok());
        assert!(new_socket(&stack, SOCK_DGRAM, NETLINK_ROUTE).is_ok());
        assert_eq!(new_socket(&stack, SOCK_STREAM, 0).err(), Some(Errno::ESOCKTNOSUPPORT));
        assert_eq!(new_socket(&stack, SOCK_RAW, 16).err(), Some(Errno::EPROTONOSUPPORT));
        assert_eq!(new_socket(&stack, SOCK_RAW, 99).err(), Some(Errno::EPROTONOSUPPORT));
    }

    #[test]
    fn dump_with_peek_truncation_and_done() {
        let stack = Netstack::new();
        let int = Interrupt::default();
        let sock = new_socket(&stack, SOCK_RAW, NETLINK_ROUTE).unwrap();
        assert_eq!(recv(&sock, &int, 100, 0).err(), Some(Errno::EAGAIN));
        let req = request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 5, &[0]);
        assert_eq!(send(&sock, &int, &req), Ok(req.len()));
        assert_eq!(sock.local_addr(), Ok(SockAddr::Netlink { pid: 100, groups: 0 }));
        assert_ne!(sock.poll() & libc::POLLIN as u32, 0);
        // Peek with no room: the size, MSG_TRUNC, nothing consumed.
        let (b, m) = recv(&sock, &int, 0, MSG_PEEK | MSG_TRUNC).unwrap();
        assert!(b.is_empty() && m.full_len > 100 && m.flags == MSG_TRUNC);
        let (b, m) = recv(&sock, &int, 8192, 0).unwrap();
        assert_eq!(b.len(), m.full_len);
        let link = requests(&b).next().unwrap();
        assert_eq!((link.typ, link.flags, link.seq, u32_at(link.raw, 12)), (RTM_NEWLINK, NLM_F_MULTI, 5, 100));
        let (b, _) = recv(&sock, &int, 8192, 0).unwrap();
        let done = requests(&b).next().unwrap();
        assert_eq!((done.typ, done.seq), (NLMSG_DONE, 5));
        assert_eq!(recv(&sock, &int, 100, 0).err(), Some(Errno::EAGAIN));
    }

    #[test]
    fn acks_errors_and_autobind_ids() {
        let stack = Netstack::new();
        let int = Interrupt::default();
        let a = new_socket(&stack, SOCK_RAW, NETLINK_ROUTE).unwrap();
        let b = new_socket(&stack, SOCK_DGRAM, NETLINK_ROUTE).unwrap();
        let mut req = request(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK, 3, &[2, 8, 0, 0, 1, 0, 0, 0]);
        req.extend_from_slice(&request(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 4, &[]));
        send(&a, &int, &req).unwrap();
        send(&b, &int, &request(NLMSG_NOOP, NLM_F_REQUEST, 1, &[])).unwrap();
        let (pa, pb) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(pa, SockAddr::Netlink { pid: 100, groups: 0 });
        assert!(matches!(pb, SockAddr::Netlink { pid, .. } if (pid as i32) < -4096));
        let (m, _) = recv(&a, &int, 1000, 0).unwrap();
        let e = requests(&m).next().unwrap();
        assert_eq!((e.typ, e.seq, u32_at(e.payload, 0) as i32), (NLMSG_ERROR, 3, -1));
        assert_eq!(e.payload.len(), 4 + 24, "the failed request comes back whole");
        let (m, _) = recv(&a, &int, 1000, 0).unwrap();
        let e = requests(&m).next().unwrap();
        assert_eq!((e.typ, e.seq, u32_at(e.payload, 0)), (NLMSG_ERROR, 4, 0));
        assert_eq!(recv(&b, &int, 100, 0).err(), Some(Errno::EAGAIN), "no ACK unless asked");
        // Rebinding elsewhere is EINVAL; the id is free once released.
        let c = Caller { io: &io(&int), cred: Ucred::default(), paths: &NoPaths };
        assert_eq!(a.bind(&c, &SockAddr::Netlink { pid: 5, groups: 0 }), Err(Errno::EINVAL));
        let d = new_socket(&stack, SOCK_RAW, NETLINK_ROUTE).unwrap();
        assert_eq!(d.bind(&c, &SockAddr::Netlink { pid: 100, groups: 0 }), Err(Errno::EADDRINUSE));
        a.release();
        assert_eq!(d.bind(&c, &SockAddr::Netlink { pid: 100, groups: 0 }), Ok(()));
        drop(d);
        let e = new_socket(&stack, SOCK_RAW, NETLINK_ROUTE).unwrap();
        assert_eq!(e.bind(&c, &SockAddr::Netlink { pid: 100, groups: 0 }), Ok(()));
    }

    #[test]
    fn full_queue_gives_enobufs() {
        let stack = Netstack::new();
        let int = Interrupt::default();
        let a = new_socket(&stack, SOCK_RAW, NETLINK_ROUTE).unwrap();
        a.setsockopt(SOL_SOCKET, SO_RCVBUF, &0i32.to_ne_bytes()).unwrap();
        let noop = request(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 1, &[]);
        for _ in 0..10 {
            send(&a, &int, &noop).unwrap();
        }
        assert_ne!(a.poll() & libc::POLLERR as u32, 0);
        assert_eq!(recv(&a, &int, 100, 0).err(), Some(Errno::ENOBUFS));
        assert!(recv(&a, &int, 100, 0).is_ok());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Requests as a guest might write them: plausible headers with
        /// known or random types and flags, bodies of attribute-like
        /// bytes, lengths that are right or lie.
        fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
            let one = (
                prop_oneof![
                    Just(RTM_GETLINK),
                    Just(RTM_GETADDR),
                    Just(RTM_GETROUTE),
                    Just(RTM_GETRULE),
                    Just(RTM_GETNETCONF),
                    Just(RTM_GETNEIGH),
                    Just(RTM_NEWLINK),
                    Just(RTM_NEWADDR),
                    Just(RTM_NEWROUTE),
                    Just(NLMSG_NOOP),
                    Just(NLMSG_DONE),
                    Just(NLMSG_ERROR),
                    any::<u16>(),
                ],
                prop_oneof![
                    Just(NLM_F_REQUEST),
                    Just(NLM_F_REQUEST | NLM_F_DUMP),
                    Just(NLM_F_REQUEST | NLM_F_ACK),
                    any::<u16>()
                ],
                proptest::collection::vec(any::<u8>(), 0..96),
                proptest::collection::vec((0u16..40, 0usize..64), 0..4),
                prop_oneof![3 => Just(None), 1 => any::<u32>().prop_map(Some)],
            );
            proptest::collection::vec(one, 1..4).prop_map(|msgs| {
                let mut out = Vec::new();
                for (typ, flags, mut body, attrs, lie) in msgs {
                    for (t, n) in attrs {
                        let n = n.min(60);
                        body.extend_from_slice(&((4 + n) as u16).to_ne_bytes());
                        body.extend_from_slice(&t.to_ne_bytes());
                        body.extend(std::iter::repeat_n(7u8, n));
                        body.resize(body.len().next_multiple_of(4), 0);
                    }
                    let mut m = Msg::new(typ, flags, 9, 0);
                    m.push(&body);
                    let mut b = m.finish();
                    if let Some(l) = lie {
                        b[..4].copy_from_slice(&l.to_ne_bytes());
                    }
                    out.extend(b);
                }
                out
            })
        }

        proptest! {
            /// Any request: no panic, and every answer is whole messages
            /// that exactly fill their datagram.
            #[test]
            fn any_request_gets_well_formed_answers(
                data in prop_oneof![request_bytes(), proptest::collection::vec(any::<u8>(), 0..200)],
                typ in prop_oneof![Just(SOCK_RAW), Just(SOCK_DGRAM)],
                cap in prop_oneof![Just(65536usize), 0usize..300],
            ) {
                let stack = Netstack::new();
                let int = Interrupt::default();
                let sock = new_socket(&stack, typ, NETLINK_ROUTE).expect("socket");
                let _ = send(&sock, &int, &data);
                // Dumps come part by part; each part is queued once the last
                // one is read, so this ends.
                for _ in 0..10_000 {
                    match recv(&sock, &int, cap, 0) {
                        Ok((b, m)) => {
                            if m.flags & MSG_TRUNC != 0 {
                                continue;
                            }
                            let mut covered = 0;
                            for r in requests(&b) {
                                covered += r.raw.len().next_multiple_of(4);
                            }
                            prop_assert_eq!(covered.min(b.len()), b.len(), "datagram {:?}", b);
                        }
                        Err(Errno::EAGAIN) => break,
                        Err(Errno::ENOBUFS) => {}
                        Err(e) => prop_assert!(false, "recv: {e:?}"),
                    }
                }
                prop_assert_eq!(recv(&sock, &int, 65536, 0).err(), Some(Errno::EAGAIN));
            }
        }
    }
}
