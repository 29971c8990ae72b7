//! The broker's host-syscall edge: the channel's socketpair, records with
//! a descriptor attached (SCM_RIGHTS), sockets connected to a checked
//! destination, host name resolution, and the descriptors a fresh broker
//! process keeps.

use std::ffi::CString;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A connected SOCK_SEQPACKET pair (close-on-exec).
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into a live array.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two new descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Room for one SCM_RIGHTS message carrying one descriptor, aligned as
/// a cmsghdr must be.
#[repr(C, align(8))]
struct OneFdControl([u8; 32]);

fn one_fd_control_len() -> usize {
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize }
}

/// Send `bytes` as one record, with `fd` attached when given. Never raises
/// SIGPIPE: a closed peer is EPIPE.
pub fn send_record(chan: BorrowedFd<'_>, bytes: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
    let mut control = OneFdControl([0; 32]);
    // SAFETY: an all-zero msghdr is valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        let space = one_fd_control_len();
        if space > control.0.len() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `space` live, aligned, zeroed
        // bytes, so CMSG_FIRSTHDR returns a header inside them, and its
        // data has room for one descriptor (CMSG_SPACE counted it).
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if cmsg.is_null() {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
        }
    }
    loop {
        // SAFETY: msg points at live buffers (iov over `bytes`, control
        // in `control`) for the duration of the call.
        let n = unsafe { libc::sendmsg(chan.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// What one receive on the channel gave.
pub enum Received {
    /// A record of this many bytes.
    Record(usize),
    /// Nothing queued now.
    Empty,
    /// The peer is gone.
    Closed,
}

/// Receive one record without waiting. Descriptors a peer attaches are
/// dropped by the kernel (no control buffer is offered), so a hostile
/// Sentry cannot fill the broker's descriptor table. A zero-length
/// record and the peer's close both read as 0 bytes: only a hang-up
/// makes it `Closed`.
pub fn recv_record(chan: BorrowedFd<'_>, buf: &mut [u8]) -> Received {
    loop {
        // SAFETY: receives into a live buffer of its length.
        let n = unsafe { libc::recv(chan.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n > 0 {
            return Received::Record(n as usize);
        }
        if n == 0 {
            let mut p = libc::pollfd { fd: chan.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one live pollfd, no wait.
            unsafe { libc::poll(&mut p, 1, 0) };
            return if p.revents & libc::POLLHUP != 0 { Received::Closed } else { Received::Record(0) };
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Received::Empty,
            _ => return Received::Closed,
        }
    }
}

/// Receive one record and the descriptor attached to it, if any,
/// waiting for it (the Sentry's side of the channel does this; the tests
/// use it).
#[cfg(test)]
pub fn recv_with_fd(chan: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    recv_with_fd_flags(chan, buf, 0)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // every sockaddr type.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// A non-blocking socket connected (TCP: connecting) to `to`; the errno
/// the guest should see otherwise. A TCP handshake still under way is
/// success: the Sentry waits for it and reads SO_ERROR itself.
pub fn connect(stream: bool, to: SocketAddr) -> Result<OwnedFd, i32> {
    let domain = if to.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let ty = if stream { libc::SOCK_STREAM } else { libc::SOCK_DGRAM };
    // SAFETY: no pointers.
    let raw = unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(errno());
    }
    // SAFETY: a new descriptor owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let (ss, len) = sockaddr(to);
    loop {
        // SAFETY: `ss` holds a sockaddr of `len` bytes.
        let r = unsafe { libc::connect(sock.as_raw_fd(), (&ss as *const libc::sockaddr_storage).cast(), len) };
        if r == 0 {
            return Ok(sock);
        }
        match errno() {
            libc::EINTR => continue,
            libc::EINPROGRESS if stream => return Ok(sock),
            e => return Err(e),
        }
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// How a host lookup ended.
pub enum HostLookup {
    Found(Vec<IpAddr>),
    NoSuchName,
    Failed,
}

/// Resolve `name` with the host's resolver (getaddrinfo, blocking);
/// families the host has no address of are left out (AI_ADDRCONFIG), so
/// a guest is not handed addresses the host cannot reach.
pub fn resolve(name: &str) -> HostLookup {
    let Ok(c_name) = CString::new(name) else { return HostLookup::NoSuchName };
    // SAFETY: an all-zero addrinfo is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_flags = libc::AI_ADDRCONFIG;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: a valid C string, live hints, and a live out-pointer.
    let r = unsafe { libc::getaddrinfo(c_name.as_ptr(), std::ptr::null(), &hints, &mut list) };
    match r {
        0 => {}
        libc::EAI_NONAME | libc::EAI_NODATA => return HostLookup::NoSuchName,
        _ => return HostLookup::Failed,
    }
    let mut ips = Vec::new();
    let mut at = list;
    // SAFETY: getaddrinfo succeeded: `list` is a linked list of valid
    // entries whose ai_addr matches ai_family; it is freed once, below.
    unsafe {
        while !at.is_null() {
            let ai = &*at;
            if !ai.ai_addr.is_null() {
                let ip = match ai.ai_family {
                    libc::AF_INET => {
                        let sin = &*(ai.ai_addr as *const libc::sockaddr_in);
                        Some(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()))
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(ai.ai_addr as *const libc::sockaddr_in6);
                        Some(IpAddr::from(sin6.sin6_addr.s6_addr))
                    }
                    _ => None,
                };
                if let Some(ip) = ip.filter(|ip| !ips.contains(ip)) {
                    ips.push(ip);
                }
            }
            at = ai.ai_next;
        }
        libc::freeaddrinfo(list);
    }
    if ips.is_empty() {
        HostLookup::NoSuchName
    } else {
        HostLookup::Found(ips)
    }
}

/// Close every descriptor but `keep` (stdin and stdout are pointed at
/// /dev/null: the broker reads and prints nothing there, and must not
/// hold a pipe the caller waits on).
pub fn keep_only(keep: &[RawFd]) {
    // SAFETY: open a constant path; dup2 onto 0 and 1; close our copy.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::close(null);
        }
    }
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= 0).chain(0..3).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from: u32 = 0;
    for &fd in keep.iter().chain(std::iter::once(&RawFd::MAX)) {
        let fd = fd as u32;
        if fd > from {
            close_range(from, fd - 1);
        }
        from = fd.saturating_add(1);
    }
}

fn close_range(first: u32, last: u32) {
    // SAFETY: closes descriptors of this (freshly forked, single-threaded)
    // process that no live object refers to any more.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r != 0 {
        // Kernels before 5.9: close what /proc says is open.
        let open: Vec<u32> = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
            .unwrap_or_default();
        for fd in open.into_iter().filter(|fd| (first..=last).contains(fd)) {
            // SAFETY: as above.
            unsafe { libc::close(fd as i32) };
        }
    }
}

/// Receive one record and the one descriptor a hostinet request carries
/// (`--network=host`). The control buffer has room for one: the kernel
/// does not install any further ones, so a hostile Sentry cannot fill
/// the broker's table; the caller closes what it got once answered.
pub fn recv_record_fd(chan: BorrowedFd<'_>, buf: &mut [u8]) -> (Received, Option<OwnedFd>) {
    loop {
        match recv_with_fd_nb(chan, buf) {
            Ok((0, None)) => {
                let mut p = libc::pollfd { fd: chan.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one live pollfd, no wait.
                unsafe { libc::poll(&mut p, 1, 0) };
                let r = if p.revents & libc::POLLHUP != 0 { Received::Closed } else { Received::Record(0) };
                return (r, None);
            }
            Ok((n, fd)) => return (Received::Record(n), fd),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return (Received::Empty, None),
                _ => return (Received::Closed, None),
            },
        }
    }
}

fn recv_with_fd_nb(chan: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    recv_with_fd_flags(chan, buf, libc::MSG_DONTWAIT)
}

/// recvmsg of one record and at most one descriptor (one is all a record
/// carries; a header too short to hold one is ignored).
fn recv_with_fd_flags(chan: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut control = OneFdControl([0; 32]);
    // SAFETY: an all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = one_fd_control_len() as _;
    // SAFETY: msg points at live buffers for the call.
    let n = unsafe { libc::recvmsg(chan.as_raw_fd(), &mut msg, flags | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fd = None;
    // SAFETY: the kernel filled msg_controllen bytes of `control`;
    // CMSG_FIRSTHDR/NXTHDR stay inside them, and an SCM_RIGHTS header's
    // data holds as many descriptors as its length says (one fits).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
                && (*cmsg).cmsg_len as usize >= libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize
            {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, fd))
}

/// A new non-blocking, close-on-exec host socket for the guest.
pub fn host_socket(domain: i32, ty: i32, protocol: i32) -> Result<OwnedFd, i32> {
    // SAFETY: no pointers.
    let raw = unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, protocol) };
    if raw < 0 {
        return Err(errno());
    }
    // SAFETY: a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The family of an inet socket the Sentry handed over; ENOTSOCK for a
/// descriptor that is not one (only inet sockets are acted on).
pub fn inet_domain(fd: BorrowedFd<'_>) -> Result<i32, i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live locals of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(errno());
    }
    match v {
        libc::AF_INET | libc::AF_INET6 => Ok(v),
        _ => Err(libc::ENOTSOCK),
    }
}

/// `addr` as a socket of `domain` takes it: an IPv4 address on an
/// AF_INET6 socket is its v4-mapped form; an IPv6 one on an AF_INET
/// socket is EAFNOSUPPORT.
fn sockaddr_for(domain: i32, addr: SocketAddr) -> Result<(libc::sockaddr_storage, libc::socklen_t), i32> {
    match (domain, addr) {
        (libc::AF_INET6, SocketAddr::V4(a)) => {
            Ok(sockaddr(SocketAddr::new(IpAddr::V6(a.ip().to_ipv6_mapped()), a.port())))
        }
        (libc::AF_INET, SocketAddr::V6(_)) => Err(libc::EAFNOSUPPORT),
        _ => Ok(sockaddr(addr)),
    }
}

/// bind(2) of a guest's host socket.
pub fn bind_to(fd: BorrowedFd<'_>, addr: SocketAddr) -> Result<(), i32> {
    let (ss, len) = sockaddr_for(inet_domain(fd)?, addr)?;
    // SAFETY: `ss` holds a sockaddr of `len` bytes.
    let r = unsafe { libc::bind(fd.as_raw_fd(), (&ss as *const libc::sockaddr_storage).cast(), len) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// connect(2) of a guest's host socket, without waiting: EINPROGRESS
/// while a TCP handshake is under way (the Sentry waits for it).
pub fn connect_to(fd: BorrowedFd<'_>, addr: SocketAddr) -> Result<(), i32> {
    let (ss, len) = sockaddr_for(inet_domain(fd)?, addr)?;
    loop {
        // SAFETY: `ss` holds a sockaddr of `len` bytes.
        let r = unsafe { libc::connect(fd.as_raw_fd(), (&ss as *const libc::sockaddr_storage).cast(), len) };
        if r == 0 {
            return Ok(());
        }
        match errno() {
            libc::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// connect(2) with AF_UNSPEC: a datagram socket forgets its peer.
pub fn disconnect(fd: BorrowedFd<'_>) -> Result<(), i32> {
    inet_domain(fd)?;
    // SAFETY: an all-zero sockaddr is AF_UNSPEC.
    let sa: libc::sockaddr = unsafe { std::mem::zeroed() };
    // SAFETY: `sa` is a live sockaddr of the size given.
    let r = unsafe { libc::connect(fd.as_raw_fd(), &sa, std::mem::size_of::<libc::sockaddr>() as libc::socklen_t) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// sendto(2) of one datagram, without waiting (EAGAIN: the Sentry waits
/// for room and asks again) and without SIGPIPE.
pub fn send_to(fd: BorrowedFd<'_>, payload: &[u8], addr: SocketAddr) -> Result<(), i32> {
    let (ss, len) = sockaddr_for(inet_domain(fd)?, addr)?;
    // SAFETY: `payload` is a live slice; `ss` holds a sockaddr of `len`
    // bytes.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            payload.as_ptr().cast(),
            payload.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}
