//! Unit tests of the unix sockets' bookkeeping that the guest cannot see
//! directly: charges returned, names freed, passed sockets released.

use super::*;
use crate::socket::{NoPaths, SocketFile};
use abi::flags::O_NONBLOCK;
use vfs::{Interrupt, OpenFile};

const ME: Ucred = Ucred { pid: 1, uid: 0, gid: 0 };

struct Ctx {
    interrupt: Arc<Interrupt>,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx { interrupt: Interrupt::new() }
    }
    fn io(&self) -> IoCtx<'_> {
        IoCtx { flags: O_NONBLOCK, interrupt: &self.interrupt }
    }
}

fn unix(s: &Arc<dyn Socket>) -> &UnixSocket {
    s.as_any().downcast_ref::<UnixSocket>().expect("a unix socket")
}

fn send(s: &Arc<dyn Socket>, data: &[u8], control: Vec<Control>) -> Result<usize, Errno> {
    let cx = Ctx::new();
    let io = cx.io();
    s.send(&Caller { io: &io, cred: ME, paths: &NoPaths }, data, None, control, 0)
}

fn recv(s: &Arc<dyn Socket>, len: usize) -> Result<(Vec<u8>, RecvMsg), Errno> {
    let cx = Ctx::new();
    let mut buf = vec![0u8; len];
    let m = s.recv(&cx.io(), &mut buf, 0)?;
    buf.truncate(m.len);
    Ok((buf, m))
}

fn file(stack: &Arc<Netstack>, s: &Arc<dyn Socket>) -> Arc<OpenFile> {
    SocketFile::open(stack, s.clone(), ME, 0)
}

#[test]
fn stream_charges_come_back() {
    let stack = Netstack::new();
    let (a, b) = new_pair(&stack, SOCK_STREAM, 0, ME).unwrap();
    assert_eq!(send(&a, b"ab", vec![]), Ok(2));
    assert_eq!(send(&a, b"cd", vec![]), Ok(2));
    assert!(unix(&a).wmem.load(Ordering::Acquire) > 4);
    let (got, _) = recv(&b, 3).unwrap();
    assert_eq!(got, b"abc");
    assert!(unix(&a).wmem.load(Ordering::Acquire) > 0);
    let (got, _) = recv(&b, 10).unwrap();
    assert_eq!(got, b"d");
    assert_eq!(unix(&a).wmem.load(Ordering::Acquire), 0);
    assert_eq!(recv(&b, 10).err(), Some(Errno::EAGAIN));
}

#[test]
fn stream_sender_fills_and_stops() {
    let stack = Netstack::new();
    let (a, b) = new_pair(&stack, SOCK_STREAM, 0, ME).unwrap();
    let chunk = vec![7u8; 100_000];
    let mut total = 0;
    while let Ok(n) = send(&a, &chunk, vec![]) {
        total += n;
        assert!(total < 1 << 20, "no backpressure");
    }
    assert_eq!(send(&a, &chunk, vec![]), Err(Errno::EAGAIN));
    assert_eq!(a.poll() & POLLOUT, 0);
    let mut drained = 0;
    while let Ok((got, _)) = recv(&b, 65536) {
        drained += got.len();
    }
    assert_eq!(drained, total);
    assert_ne!(a.poll() & POLLOUT, 0);
}

#[test]
fn release_ends_the_peer() {
    let stack = Netstack::new();
    let (a, b) = new_pair(&stack, SOCK_STREAM, 0, ME).unwrap();
    send(&a, b"x", vec![]).unwrap();
    send(&b, b"unread", vec![]).unwrap();
    a.release();
    assert_eq!(recv(&b, 10).unwrap().0, b"x");
    assert_eq!(recv(&b, 10).err(), Some(Errno::ECONNRESET));
    assert_eq!(recv(&b, 10).unwrap().0, b"");
    assert_eq!(send(&b, b"y", vec![]), Err(Errno::EPIPE));
    // b's unread message to a was dropped with a: its charge came back.
    assert_eq!(unix(&b).wmem.load(Ordering::Acquire), 0);
}

#[test]
fn dropped_socket_is_released() {
    // An accepted socket that never became a file still ends its peer.
    let stack = Netstack::new();
    let (a, b) = new_pair(&stack, SOCK_SEQPACKET, 0, ME).unwrap();
    drop(b);
    assert_eq!(recv(&a, 10).unwrap().0, b"");
    assert_eq!(send(&a, b"x", vec![]), Err(Errno::EPIPE));
}

#[test]
fn passed_socket_released_with_the_queue() {
    let stack = Netstack::new();
    let (a, b) = new_pair(&stack, SOCK_STREAM, 0, ME).unwrap();
    let (c, d) = new_pair(&stack, SOCK_STREAM, 0, ME).unwrap();
    // c travels in b's queue; its only file is the one in flight.
    let cf = file(&stack, &c);
    send(&a, b"c", vec![Control::Rights(vec![cf])]).unwrap();
    assert!(!unix(&c).is_released());
    let bf = file(&stack, &b);
    drop(bf);
    assert!(unix(&b).is_released());
    assert!(unix(&c).is_released());
    assert_eq!(recv(&d, 10).unwrap().0, b"");
}

#[test]
fn cycles_do_not_deadlock() {
    let stack = Netstack::new();
    // A socket in its own queue, and two in each other's.
    let (a, b) = new_pair(&stack, SOCK_STREAM, 0, ME).unwrap();
    let (af, bf) = (file(&stack, &a), file(&stack, &b));
    send(&a, b"1", vec![Control::Rights(vec![bf.clone()])]).unwrap();
    send(&b, b"2", vec![Control::Rights(vec![af.clone()])]).unwrap();
    drop((af, bf));
    let (x, y) = new_pair(&stack, SOCK_DGRAM, 0, ME).unwrap();
    let yf = file(&stack, &y);
    send(&x, b"3", vec![Control::Rights(vec![yf.clone()])]).unwrap();
    drop(yf);
    // Received, the passed file is an ordinary reference again.
    let (_, m) = recv(&y, 10).unwrap();
    assert!(matches!(m.control.as_slice(), [Control::Rights(f)] if f.len() == 1));
    drop(m);
    assert!(unix(&y).is_released());
}

#[test]
fn names_are_per_type_and_freed() {
    let stack = Netstack::new();
    let cx = Ctx::new();
    let io = cx.io();
    let c = Caller { io: &io, cred: ME, paths: &NoPaths };
    let name = SockAddr::Unix(UnixAddr::Abstract(b"n".to_vec()));
    let s1 = new_socket(&stack, SOCK_STREAM, 0).unwrap();
    let s2 = new_socket(&stack, SOCK_STREAM, 0).unwrap();
    let d1 = new_socket(&stack, SOCK_DGRAM, 0).unwrap();
    s1.bind(&c, &name).unwrap();
    assert_eq!(s2.bind(&c, &name), Err(Errno::EADDRINUSE));
    assert_eq!(d1.bind(&c, &name), Ok(()));
    assert_eq!(s1.bind(&c, &SockAddr::Unix(UnixAddr::Abstract(b"m".to_vec()))), Err(Errno::EINVAL));
    s1.release();
    assert_eq!(s2.bind(&c, &name), Ok(()));
    let auto = new_socket(&stack, SOCK_DGRAM, 0).unwrap();
    auto.bind(&c, &SockAddr::Unix(UnixAddr::Unnamed)).unwrap();
    match auto.local_addr() {
        Ok(SockAddr::Unix(UnixAddr::Abstract(n))) => {
            assert_eq!(n.len(), 5);
            assert!(n.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)));
        }
        other => panic!("autobind gave {other:?}"),
    }
}

#[test]
fn dgram_queue_limit_and_backlog() {
    let stack = Netstack::new();
    let cx = Ctx::new();
    let io = cx.io();
    let c = Caller { io: &io, cred: ME, paths: &NoPaths };
    let name = SockAddr::Unix(UnixAddr::Abstract(b"q".to_vec()));
    let r = new_socket(&stack, SOCK_DGRAM, 0).unwrap();
    r.bind(&c, &name).unwrap();
    let s = new_socket(&stack, SOCK_DGRAM, 0).unwrap();
    s.connect(&c, &name).unwrap();
    let mut n = 0;
    while s.send(&c, b"m", None, vec![], 0).is_ok() {
        n += 1;
        assert!(n < 100);
    }
    assert_eq!(n, MAX_DGRAM_QLEN + 1);
    assert_eq!(s.poll() & POLLOUT, 0);
    recv(&r, 1).unwrap();
    assert_ne!(s.poll() & POLLOUT, 0);

    let lname = SockAddr::Unix(UnixAddr::Abstract(b"l".to_vec()));
    let l = new_socket(&stack, SOCK_STREAM, 0).unwrap();
    l.bind(&c, &lname).unwrap();
    l.listen(0).unwrap();
    let c1 = new_socket(&stack, SOCK_STREAM, 0).unwrap();
    let c2 = new_socket(&stack, SOCK_STREAM, 0).unwrap();
    c1.connect(&c, &lname).unwrap();
    assert_eq!(c2.connect(&c, &lname), Err(Errno::EAGAIN));
    send(&c1, b"hi", vec![]).unwrap();
    let (acc, peer) = l.accept(&io).unwrap();
    assert_eq!(peer, Some(SockAddr::Unix(UnixAddr::Unnamed)));
    assert_eq!(recv(&acc, 10).unwrap().0, b"hi");
    c2.connect(&c, &lname).unwrap();
    // Closing the listener resets the connection it never accepted.
    l.release();
    assert_eq!(recv(&c2, 10).err(), Some(Errno::ECONNRESET));
}
