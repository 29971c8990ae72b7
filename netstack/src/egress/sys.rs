//! The host calls the Sentry makes on descriptors the broker handed it:
//! non-blocking sends and receives, shutdown, SO_ERROR, the channel's
//! SCM_RIGHTS, and the epoll the notifier waits in. None of them creates
//! a socket or names an address: that stays the broker's.

use abi::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn last_errno() -> Errno {
    Errno::from(std::io::Error::last_os_error())
}

/// send(2) without blocking and without SIGPIPE.
pub fn send_nb(fd: RawFd, data: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `data` is a live slice of `data.len()` bytes.
    let r = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// recv(2) without blocking.
pub fn recv_nb(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    recv_flags(fd, buf, 0)
}

/// recv(2) without blocking, with MSG_PEEK / MSG_TRUNC as the guest asked.
pub fn recv_flags(fd: RawFd, buf: &mut [u8], flags: i32) -> Result<usize, Errno> {
    // SAFETY: `buf` is a live, writable slice of `buf.len()` bytes.
    let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags | libc::MSG_DONTWAIT) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

pub fn shutdown(fd: RawFd, how: i32) {
    // SAFETY: shutdown takes no memory.
    unsafe { libc::shutdown(fd, how) };
}

/// The pending error of a socket (SO_ERROR), taken.
pub fn so_error(fd: RawFd) -> Result<i32, Errno> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live locals of the sizes given.
    let r = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&mut v as *mut libc::c_int).cast(), &mut len)
    };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(v)
    }
}

/// Whether a recv on `fd` would not block (data, EOF or an error).
pub fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one live pollfd, no wait.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents != 0
}

/// Bytes waiting to be received on `fd` (FIONREAD); 0 when unknown.
pub fn fionread(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into a live local.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r < 0 {
        0
    } else {
        usize::try_from(n).unwrap_or(0)
    }
}

pub use vfs::hostwait::{wait_fd, SetPoke, WaitLength, Waker};

/// Whether `fd` is writable (or failed) right now.
pub fn writable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: one live pollfd, no wait.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents != 0
}

/// TCP_NODELAY on `fd` (best effort: the guest's own option was taken).
pub fn set_nodelay(fd: RawFd, on: bool) {
    let v: libc::c_int = on.into();
    // SAFETY: `v` is a live int of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// Make `fd` non-blocking (the channel, whose replies the notifier drains).
pub fn set_nonblocking(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: F_GETFL/F_SETFL take no memory.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if fl < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// Send one record on the channel (never blocks: a full channel is
/// ENOBUFS to the caller).
pub fn send_record(fd: RawFd, data: &[u8]) -> Result<(), Errno> {
    match send_nb(fd, data) {
        Ok(_) => Ok(()),
        Err(Errno::EAGAIN) => Err(Errno::ENOBUFS),
        Err(e) => Err(e),
    }
}

/// Send one record with descriptor `fd` attached (SCM_RIGHTS): a
/// hostinet request naming the socket it acts on. Never blocks (a full
/// channel is ENOBUFS).
pub fn send_record_fd(chan: RawFd, data: &[u8], fd: RawFd) -> Result<(), Errno> {
    // Room for one descriptor's cmsg, aligned as cmsghdr wants.
    let mut cbuf = [0u64; 4];
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    if space > std::mem::size_of_val(&cbuf) {
        return Err(Errno::EINVAL);
    }
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: an all-zero msghdr is valid; the pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: msg_control points at `space` live, aligned, zeroed bytes,
    // so CMSG_FIRSTHDR is inside them and its data has room for one
    // descriptor (CMSG_SPACE counted it).
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() {
            return Err(Errno::EINVAL);
        }
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
    }
    loop {
        // SAFETY: `msg` points at live buffers (`iov` over `data`, `cbuf`).
        let r = unsafe { libc::sendmsg(chan, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        match last_errno() {
            Errno::EINTR => continue,
            Errno::EAGAIN => return Err(Errno::ENOBUFS),
            e => return Err(e),
        }
    }
}

/// Receive one record and the descriptor riding with it, if any. Ok(None)
/// at EOF (the broker is gone); EAGAIN when nothing is waiting.
pub fn recv_record(fd: RawFd, buf: &mut [u8]) -> Result<Option<(usize, Option<OwnedFd>)>, Errno> {
    // Room for one descriptor's cmsg, aligned as cmsghdr wants.
    let mut cbuf = [0u64; 4];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: an all-zero msghdr is valid; the pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: `msg` points at the live `iov` (over `buf`) and `cbuf`.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(last_errno());
    }
    let mut got: Option<OwnedFd> = None;
    // SAFETY: CMSG_* walk the control buffer the kernel just filled
    // within msg_controllen; every descriptor found is ours to own.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let count = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    let fd = OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i)));
                    // One descriptor per record: any extra is closed.
                    if got.is_none() {
                        got = Some(fd);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if n == 0 && got.is_none() {
        return Ok(None);
    }
    Ok(Some((n as usize, got)))
}

/// An epoll instance.
pub struct Epoll(OwnedFd);

pub const EPOLLIN: u32 = libc::EPOLLIN as u32;
pub const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
pub const EPOLLERR: u32 = libc::EPOLLERR as u32;
pub const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
pub const EPOLLRDHUP: u32 = libc::EPOLLRDHUP as u32;
const EPOLLET: u32 = libc::EPOLLET as u32;
pub const EPOLLONESHOT: u32 = libc::EPOLLONESHOT as u32;

impl Epoll {
    pub fn new() -> Result<Epoll, Errno> {
        // SAFETY: epoll_create1 takes no memory.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: a new descriptor nobody else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watch `fd` edge-triggered for `events` (and hang-ups), reported
    /// with `key`.
    pub fn add(&self, fd: RawFd, key: u64, events: u32) -> Result<(), Errno> {
        let mut ev = libc::epoll_event { events: events | EPOLLRDHUP | EPOLLET, u64: key };
        // SAFETY: `ev` is a live local.
        if unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(last_errno());
        }
        Ok(())
    }

    /// Change what `fd` is watched for.
    pub fn modify(&self, fd: RawFd, key: u64, events: u32) {
        let mut ev = libc::epoll_event { events: events | EPOLLRDHUP | EPOLLET, u64: key };
        // SAFETY: `ev` is a live local.
        unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, &mut ev) };
    }

    pub fn remove(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `ev` is a live local (ignored by DEL, required by old kernels).
        unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }

    /// Wait for events: (key, events) pairs into `out`.
    pub fn wait(&self, out: &mut Vec<(u64, u32)>) -> Result<(), Errno> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // SAFETY: `evs` is a live array of 64 events.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), evs.len() as i32, -1) };
        if n < 0 {
            return Err(last_errno());
        }
        out.clear();
        for e in evs.iter().take(n as usize) {
            out.push((e.u64, e.events));
        }
        Ok(())
    }
}
