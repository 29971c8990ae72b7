//! The host calls a hostinet socket makes itself, on a descriptor the
//! broker made: none creates a socket, binds or connects one, or names a
//! destination (sendto always with a NULL address); the Sentry's seccomp
//! filter holds it to that. Every call is non-blocking: a task that must
//! wait does so in `vfs::hostwait::wait_fd`, where it can be interrupted.

use abi::Errno;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

fn last_errno() -> Errno {
    Errno::from(std::io::Error::last_os_error())
}

fn check(r: libc::c_int) -> Result<(), Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// `sizeof(struct sockaddr_storage)`.
const ADDR_MAX: usize = 128;

/// A sockaddr as the host wrote it, cut to its length.
fn addr_bytes(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Vec<u8> {
    let len = (len as usize).min(ADDR_MAX);
    // SAFETY: `ss` is a live sockaddr_storage of ADDR_MAX bytes and `len`
    // is at most that.
    let b = unsafe { std::slice::from_raw_parts((ss as *const libc::sockaddr_storage).cast::<u8>(), len) };
    b.to_vec()
}

pub fn listen(fd: RawFd, backlog: i32) -> Result<(), Errno> {
    // SAFETY: listen takes no memory.
    check(unsafe { libc::listen(fd, backlog) })
}

/// accept4 without blocking: the new connection (non-blocking,
/// close-on-exec) and its peer's address bytes.
pub fn accept(fd: RawFd) -> Result<(OwnedFd, Vec<u8>), Errno> {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = ADDR_MAX as libc::socklen_t;
    // SAFETY: `ss` and `len` are live locals of the sizes given.
    let r = unsafe {
        libc::accept4(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(r) }, addr_bytes(&ss, len)))
}

/// getsockname (`peer` false) or getpeername (`peer` true).
pub fn name(fd: RawFd, peer: bool) -> Result<Vec<u8>, Errno> {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = ADDR_MAX as libc::socklen_t;
    let p = (&mut ss as *mut libc::sockaddr_storage).cast();
    // SAFETY: `ss` and `len` are live locals of the sizes given.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    check(r)?;
    Ok(addr_bytes(&ss, len))
}

pub fn setsockopt(fd: RawFd, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
    let len = libc::socklen_t::try_from(val.len()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `val` is a live slice of `len` bytes.
    check(unsafe { libc::setsockopt(fd, level, name, val.as_ptr().cast(), len) })
}

/// An option's value, at most `cap` bytes.
pub fn getsockopt(fd: RawFd, level: i32, name: i32, cap: usize) -> Result<Vec<u8>, Errno> {
    let mut v = vec![0u8; cap];
    let mut len = libc::socklen_t::try_from(cap).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `v` is a live buffer of `len` bytes.
    check(unsafe { libc::getsockopt(fd, level, name, v.as_mut_ptr().cast(), &mut len) })?;
    v.truncate(len as usize);
    Ok(v)
}

/// send(2) to the connected peer: never blocking, never raising SIGPIPE.
pub fn send(fd: RawFd, data: &[u8], flags: i32) -> Result<usize, Errno> {
    // SAFETY: `data` is a live slice; the address is NULL (the filter
    // allows no other).
    let r = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            flags | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            std::ptr::null(),
            0,
        )
    };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// What one receive gave.
pub struct Received {
    /// recvmsg's return value (the whole datagram's length with
    /// MSG_TRUNC on a datagram socket).
    pub n: usize,
    /// The sender's address bytes (empty when the host gave none).
    pub from: Vec<u8>,
    /// msg_flags.
    pub flags: i32,
    /// Control messages (IP_PKTINFO, IP_TTL, IP_TOS, timestamps, ...) as
    /// (level, type, data).
    pub control: Vec<(i32, i32, Vec<u8>)>,
}

/// Room for the control messages one receive may carry.
const CONTROL_MAX: usize = 512;

/// recvmsg(2) without blocking, with the sender's address.
pub fn recv(fd: RawFd, buf: &mut [u8], flags: i32) -> Result<Received, Errno> {
    // SAFETY: an all-zero sockaddr_storage and msghdr are valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: as above; the pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut ss as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = ADDR_MAX as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // Aligned as cmsghdr wants.
    let mut cbuf = [0u64; CONTROL_MAX / 8];
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = CONTROL_MAX;
    // SAFETY: `msg` points at live `ss`, `iov` (over `buf`) and `cbuf`.
    // An inet socket carries no descriptors (MSG_CMSG_CLOEXEC all the
    // same, should one ever come).
    let r = unsafe { libc::recvmsg(fd, &mut msg, flags | libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) };
    if r < 0 {
        return Err(last_errno());
    }
    let mut control = Vec::new();
    // SAFETY: CMSG_* walk the control buffer the kernel just filled within
    // msg_controllen; each header's data lies inside it, its length taken
    // from the header and bounded by the buffer's end.
    unsafe {
        let end = (cbuf.as_ptr() as usize).saturating_add(msg.msg_controllen.min(CONTROL_MAX));
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            let len = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            if (data as usize).saturating_add(len) <= end {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    // Never expected on an inet socket: close them.
                    for i in 0..len / 4 {
                        drop(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.cast::<RawFd>().add(i))));
                    }
                } else {
                    let bytes = std::slice::from_raw_parts(data, len).to_vec();
                    control.push(((*c).cmsg_level, (*c).cmsg_type, bytes));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Received { n: r as usize, from: addr_bytes(&ss, msg.msg_namelen), flags: msg.msg_flags, control })
}

pub fn shutdown(fd: RawFd, how: i32) -> Result<(), Errno> {
    // SAFETY: shutdown takes no memory.
    check(unsafe { libc::shutdown(fd, how) })
}

/// The readiness of `fd` right now (POLLIN, POLLOUT, POLLPRI, POLLRDHUP,
/// POLLHUP, POLLERR as the host reports them).
pub fn poll_now(fd: RawFd) -> u32 {
    let events = libc::POLLIN | libc::POLLOUT | libc::POLLPRI | libc::POLLRDHUP;
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one live pollfd, no wait.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    if r > 0 {
        u32::from(p.revents as u16)
    } else {
        0
    }
}

/// An ioctl answering one int (FIONREAD, TIOCOUTQ).
pub fn ioctl_int(fd: RawFd, req: u64) -> Result<i32, Errno> {
    let mut n: libc::c_int = 0;
    // SAFETY: the requests used write one int into a live local.
    check(unsafe { libc::ioctl(fd, req as libc::Ioctl, &mut n) })?;
    Ok(n)
}
