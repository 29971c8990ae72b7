//! What every socket is: the [`Socket`] trait each family implements, the
//! messages that pass through it, and [`SocketFile`], which makes a socket
//! an open file of the VFS (read, write, poll, epoll, fstat, close).
//!
//! Guest memory never reaches this crate: the syscall layer copies data,
//! addresses and control messages in and out, and hands over byte slices,
//! [`SockAddr`]s and [`Control`]s.

use crate::addr::SockAddr;
use abi::socket::Ucred;
use abi::{Errno, Stat};
use std::any::Any;
use std::sync::Arc;
use vfs::{FileOps, IoCtx, OpenFile, WaitQueue};

/// The identity of a socket node in the sandbox's filesystem (a unix
/// socket bound to a path), by which connect(2) finds the listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId {
    pub dev: u64,
    pub ino: u64,
}

/// How unix sockets reach the filesystem: implemented by the syscall
/// layer, which knows the caller's root, cwd, umask and credentials.
pub trait PathOps {
    /// Create the socket node `path` (mode 0777 less the umask);
    /// EADDRINUSE when the name exists, and the path walk's errors.
    fn bind_node(&self, path: &[u8]) -> Result<NodeId, Errno>;
    /// The socket node at `path`: ENOENT, ENOTDIR, EACCES as the walk
    /// gives them, ECONNREFUSED when it is not a socket.
    fn lookup_node(&self, path: &[u8]) -> Result<NodeId, Errno>;
}

/// PathOps for callers that never name a path (read/write on a socket).
pub struct NoPaths;

impl PathOps for NoPaths {
    fn bind_node(&self, _path: &[u8]) -> Result<NodeId, Errno> {
        Err(Errno::EINVAL)
    }
    fn lookup_node(&self, _path: &[u8]) -> Result<NodeId, Errno> {
        Err(Errno::EINVAL)
    }
}

/// Who is calling and how: blocking behaviour and interruption (`io`),
/// the calling process's credentials (SO_PEERCRED, SCM_CREDENTIALS), and
/// the filesystem for unix socket paths.
pub struct Caller<'a> {
    pub io: &'a IoCtx<'a>,
    pub cred: Ucred,
    pub paths: &'a dyn PathOps,
}

/// A control message (ancillary data) in transit.
pub enum Control {
    /// SCM_RIGHTS: open files, installed as new descriptors in the
    /// receiver; closed (dropped) if the message is never received.
    Rights(Vec<Arc<OpenFile>>),
    /// SCM_CREDENTIALS.
    Credentials(Ucred),
    /// Anything else a family produces or accepts, as the guest sees it
    /// (IP_PKTINFO, IP_TOS, SO_TIMESTAMP, ...).
    Raw { level: i32, typ: i32, data: Vec<u8> },
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Control::Rights(v) => write!(f, "Rights({} files)", v.len()),
            Control::Credentials(c) => write!(f, "Credentials({c:?})"),
            Control::Raw { level, typ, data } => write!(f, "Raw({level}, {typ}, {} bytes)", data.len()),
        }
    }
}

/// What one receive produced.
#[derive(Debug, Default)]
pub struct RecvMsg {
    /// Bytes placed in the caller's buffer.
    pub len: usize,
    /// The message's whole length (datagrams: larger than `len` when it
    /// was cut; MSG_TRUNC asks for this as the return value).
    pub full_len: usize,
    /// The sender's address (datagram sockets, and stream sockets where
    /// Linux reports it).
    pub addr: Option<SockAddr>,
    pub control: Vec<Control>,
    /// MSG_TRUNC, MSG_EOR, ... as recvmsg reports them in msg_flags
    /// (MSG_CTRUNC is added by the syscall layer).
    pub flags: i32,
}

/// A TCP-like connection state, for /proc/net and SocketInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SockState {
    #[default]
    Close,
    Listen,
    SynSent,
    Established,
    /// Sent FIN (shut down for writing), peer still open.
    FinWait,
    /// Peer shut down for writing, we are still open.
    CloseWait,
    /// A datagram socket with a default peer (connect(2)).
    Connected,
}

/// What /proc/net/* and ss-like listings show of one socket.
#[derive(Clone, Debug, Default)]
pub struct SocketInfo {
    pub family: i32,
    pub sock_type: i32,
    pub protocol: i32,
    pub local: Option<SockAddr>,
    pub peer: Option<SockAddr>,
    pub state: SockState,
    /// Bytes waiting to be read, and not yet read by the peer.
    pub rx_queue: usize,
    pub tx_queue: usize,
    /// The creating process's credentials.
    pub uid: u32,
}

/// One socket of one family. Methods a family does not serve keep the
/// defaults, which return the errno Linux gives for such a socket.
///
/// Blocking methods block through `io` (O_NONBLOCK or MSG_DONTWAIT give
/// EAGAIN; an interrupt gives ERESTARTSYS) and never hold a lock of
/// theirs while another socket's lock is taken in the opposite order:
/// each family writes its lock order at the top of its module.
pub trait Socket: Send + Sync + Any {
    /// AF_UNIX, AF_INET, ...
    fn family(&self) -> i32;
    /// SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW (no flags).
    fn sock_type(&self) -> i32;
    fn protocol(&self) -> i32;

    fn bind(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        let _ = (c, addr);
        Err(Errno::EOPNOTSUPP)
    }
    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        let _ = backlog;
        Err(Errno::EOPNOTSUPP)
    }
    /// Blocking connect; non-blocking stream sockets return EINPROGRESS
    /// and finish in the background (SO_ERROR, POLLOUT).
    fn connect(&self, c: &Caller, addr: &SockAddr) -> Result<(), Errno> {
        let _ = (c, addr);
        Err(Errno::EOPNOTSUPP)
    }
    /// The next connection and its peer's address.
    fn accept(&self, io: &IoCtx) -> Result<(Arc<dyn Socket>, Option<SockAddr>), Errno> {
        let _ = io;
        Err(Errno::EOPNOTSUPP)
    }
    /// Send `data` (to `addr` if given). Stream sockets may take part of
    /// it (non-blocking, or interrupted after some went); message sockets
    /// take all or nothing. EPIPE here makes the caller raise SIGPIPE
    /// unless MSG_NOSIGNAL.
    fn send(
        &self,
        c: &Caller,
        data: &[u8],
        addr: Option<&SockAddr>,
        control: Vec<Control>,
        flags: i32,
    ) -> Result<usize, Errno>;
    /// Receive into `buf`. `flags` are recvmsg's (MSG_PEEK, MSG_TRUNC,
    /// MSG_WAITALL, MSG_DONTWAIT already folded into `io`).
    fn recv(&self, io: &IoCtx, buf: &mut [u8], flags: i32) -> Result<RecvMsg, Errno>;
    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let _ = how;
        Err(Errno::ENOTCONN)
    }
    /// getsockname(2).
    fn local_addr(&self) -> Result<SockAddr, Errno>;
    /// getpeername(2): ENOTCONN when there is no peer.
    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        Err(Errno::ENOTCONN)
    }
    /// Options of any level; SO_TYPE, SO_DOMAIN and SO_PROTOCOL are
    /// answered by the syscall layer before this is asked.
    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno>;
    /// The option's value as the guest sees it (the caller cuts it to the
    /// guest's length).
    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno>;
    /// Readiness: POLLIN, POLLOUT, POLLHUP, POLLRDHUP, POLLERR.
    fn poll(&self) -> u32;
    /// Where poll/select/epoll waiters are told of readiness changes.
    fn wait_queue(&self) -> &WaitQueue;
    /// FIONREAD/SIOCINQ, SIOCOUTQ and other per-socket ioctls, as
    /// FileOps::ioctl.
    fn ioctl(&self, req: u64, input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        let _ = (req, input);
        Err(Errno::ENOTTY)
    }
    /// The last descriptor (and in-flight SCM_RIGHTS reference) is gone:
    /// disconnect, leave the listen tables, free the port.
    fn release(&self) {}
    /// For /proc/net and listings.
    fn info(&self) -> SocketInfo;
    fn as_any(&self) -> &dyn Any;
}

/// The two ends of a socketpair.
pub type SocketPair = (Arc<dyn Socket>, Arc<dyn Socket>);

/// A socket as an open file.
pub struct SocketFile {
    pub sock: Arc<dyn Socket>,
    /// The credentials of the process that made it, for read/write (which
    /// carry none of their own) and fstat.
    pub cred: Ucred,
    pub ino: u64,
}

/// The device number fstat reports for sockets (sockfs).
fn sockfs_dev() -> u64 {
    static DEV: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *DEV.get_or_init(|| vfs::makedev(0, 8))
}

impl SocketFile {
    /// `sock` as a new open file description with open(2)-style `flags`
    /// (O_RDWR and O_NONBLOCK), registered with `stack` for /proc/net.
    pub fn open(stack: &crate::Netstack, sock: Arc<dyn Socket>, cred: Ucred, flags: u32) -> Arc<OpenFile> {
        let ino = vfs::next_ino();
        stack.register(ino, &sock);
        let file = Arc::new(SocketFile { sock, cred, ino });
        OpenFile::new_anon(file, abi::flags::O_RDWR | flags, format!("socket:[{ino}]"))
    }

    /// The socket behind an open file, or ENOTSOCK.
    pub fn of(f: &OpenFile) -> Result<&SocketFile, Errno> {
        f.ops.as_any().downcast_ref::<SocketFile>().ok_or(Errno::ENOTSOCK)
    }
}

impl FileOps for SocketFile {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        self.sock.recv(ctx, buf, 0).map(|m| m.len)
    }

    fn write(&self, ctx: &IoCtx, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        let c = Caller { io: ctx, cred: self.cred, paths: &NoPaths };
        self.sock.send(&c, buf, None, Vec::new(), 0)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn stat(&self) -> Option<Stat> {
        Some(Stat {
            st_dev: sockfs_dev(),
            st_ino: self.ino,
            st_mode: abi::flags::S_IFSOCK | 0o777,
            st_nlink: 1,
            st_uid: self.cred.uid,
            st_gid: self.cred.gid,
            st_blksize: 4096,
            ..Default::default()
        })
    }

    fn poll(&self) -> u32 {
        self.sock.poll()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(self.sock.wait_queue())
    }

    fn ioctl(&self, req: u64, _arg: u64, input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        self.sock.ioctl(req, input)
    }

    fn release(&self) {
        self.sock.release();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
