//! Socket syscalls: the guest-memory side of the netstack. Addresses,
//! iovecs, msghdrs and control messages are copied in and checked here
//! (with Linux's errnos), then handed to the socket as bytes and values;
//! what comes back is copied out the same way. Descriptors passed with
//! SCM_RIGHTS are looked up and installed here.

use crate::names::creation_target;
use crate::rw::read_iovecs;
use abi::flags::{AT_FDCWD, O_NONBLOCK, S_IFMT, S_IFSOCK, W_OK};
use abi::socket::*;
use abi::{Errno, Iovec, Pod};
use netstack::{Caller, Control, NodeId, PathOps, RecvMsg, SockAddr, Socket, SocketFile};
use sentry::table::{Fd, UserAddr};
use sentry::{SysResult, Task};
use std::sync::Arc;
use std::time::Instant;
use vfs::{Follow, IoCtx, OpenFile};

/// Most bytes one send copies in at a time: stream sockets are fed in
/// chunks of this size, so a huge length never becomes a huge buffer.
const SEND_CHUNK: usize = 256 * 1024;
/// Largest message a datagram or seqpacket send copies in (above every
/// family's own limit, which gives the EMSGSIZE first).
const MAX_MESSAGE: usize = 1 << 20;
/// Largest buffer one receive fills; stream receives loop for more.
const RECV_CHUNK: usize = 512 * 1024;
/// net.core.optmem_max: the most control bytes sendmsg accepts.
const OPTMEM_MAX: usize = 20480;
/// UIO_MAXIOV: the most iovecs, and the most messages of sendmmsg/recvmmsg.
const UIO_MAXIOV: usize = 1024;
/// The most option bytes setsockopt copies in.
const OPT_MAX: usize = 4096;

// ---------------------------------------------------------------------------
// Descriptors and context

/// The socket of descriptor `fd`: EBADF, or ENOTSOCK for other files.
fn socket_of(task: &Task, fd: Fd) -> Result<(Arc<OpenFile>, Arc<dyn Socket>), Errno> {
    let f = task.file(fd.0)?;
    let sock = SocketFile::of(&f)?.sock.clone();
    Ok((f, sock))
}

fn ucred(task: &Task) -> Ucred {
    let c = task.creds();
    Ucred { pid: task.tg.tgid, uid: c.euid, gid: c.egid }
}

/// The I/O context of `file` with MSG_DONTWAIT folded in.
fn io_ctx<'a>(task: &'a Task, file: &OpenFile, flags: i32) -> IoCtx<'a> {
    let mut io = task.io_ctx(file);
    if flags & MSG_DONTWAIT != 0 {
        io.flags |= O_NONBLOCK;
    }
    io
}

/// Unix socket paths, resolved as the calling task sees the filesystem.
struct TaskPaths<'a> {
    task: &'a Task,
}

impl PathOps for TaskPaths<'_> {
    fn bind_node(&self, path: &[u8]) -> Result<NodeId, Errno> {
        let task = self.task;
        let (parent, name) = creation_target(task, AT_FDCWD, path).map_err(|e| match e {
            Errno::EEXIST => Errno::EADDRINUSE,
            e => e,
        })?;
        let mode = S_IFSOCK | (0o777 & !task.fs().umask);
        parent.inode.mknod(&name, mode, 0, &task.creds()).map_err(|e| match e {
            Errno::EEXIST => Errno::EADDRINUSE,
            e => e,
        })?;
        let node = task.kernel.mounts.child(&parent, &name)?;
        let st = node.inode.stat()?;
        Ok(NodeId { dev: st.st_dev, ino: st.st_ino })
    }

    fn lookup_node(&self, path: &[u8]) -> Result<NodeId, Errno> {
        let node = self.task.resolve(path, Follow::Yes)?;
        let st = node.inode.stat()?;
        if st.st_mode & S_IFMT != S_IFSOCK {
            return Err(Errno::ECONNREFUSED);
        }
        self.task.creds().may_access(&st, W_OK)?;
        Ok(NodeId { dev: st.st_dev, ino: st.st_ino })
    }
}

fn install(task: &Task, sock: Arc<dyn Socket>, flags: i32) -> Result<i32, Errno> {
    let status = if flags & SOCK_NONBLOCK != 0 { O_NONBLOCK } else { 0 };
    let file = SocketFile::open(&task.kernel.net, sock, ucred(task), status);
    task.fds().install(file, flags & SOCK_CLOEXEC != 0, task.tg.nofile())
}

// ---------------------------------------------------------------------------
// Addresses

/// The address of `len` bytes at `addr` (move_addr_to_kernel).
fn read_addr(task: &Task, addr: UserAddr, len: u32) -> Result<SockAddr, Errno> {
    let len = len as usize;
    if len > netstack::addr::SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    let mut b = vec![0u8; len];
    task.copy_in(addr, &mut b)?;
    SockAddr::parse(&b)
}

/// The guest's buffer length at `len_addr` (an int; negative is EINVAL).
fn read_len(task: &Task, len_addr: UserAddr) -> Result<usize, Errno> {
    let len: i32 = task.read_obj(len_addr)?;
    usize::try_from(len).map_err(|_| Errno::EINVAL)
}

/// Copy `a` out to a buffer of `cap` bytes at `addr`, cut to fit, and its
/// whole length to `len_addr` (move_addr_to_user).
fn write_addr(task: &Task, a: &SockAddr, addr: UserAddr, cap: usize, len_addr: UserAddr) -> Result<(), Errno> {
    let b = a.to_bytes();
    let n = b.len().min(cap);
    if n > 0 {
        task.copy_out(addr, &b[..n])?;
    }
    task.write_obj(len_addr, &(b.len() as u32))
}

// ---------------------------------------------------------------------------
// socket, socketpair, bind, listen, accept, connect, names, shutdown

fn split_type(t: i32) -> Result<(i32, i32), Errno> {
    let flags = t & !SOCK_TYPE_MASK;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((t & SOCK_TYPE_MASK, flags))
}

pub fn socket(task: &mut Task, domain: i32, typ: i32, protocol: i32) -> SysResult {
    let (base, flags) = split_type(typ)?;
    let sock = task.kernel.net.socket(domain, base, protocol)?;
    Ok(install(task, sock, flags)? as u64)
}

pub fn socketpair(task: &mut Task, domain: i32, typ: i32, protocol: i32, sv: UserAddr) -> SysResult {
    let (base, flags) = split_type(typ)?;
    let (a, b) = task.kernel.net.socketpair(domain, base, protocol, ucred(task))?;
    let fa = install(task, a, flags)?;
    let fb = match install(task, b, flags) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = task.fds().remove(fa);
            return Err(e);
        }
    };
    if let Err(e) = task.write_obj(sv, &[fa, fb]) {
        let _ = task.fds().remove(fa);
        let _ = task.fds().remove(fb);
        return Err(e);
    }
    Ok(0)
}

/// The address a socket of `sock`'s family is given: an unknown family
/// is EAFNOSUPPORT for inet sockets and EINVAL for the others, as each
/// Linux family checks it.
fn read_addr_for(task: &Task, sock: &Arc<dyn Socket>, addr: UserAddr, len: u32) -> Result<SockAddr, Errno> {
    read_addr(task, addr, len).map_err(|e| match (e, sock.family()) {
        (Errno::EAFNOSUPPORT, AF_INET | AF_INET6) => Errno::EAFNOSUPPORT,
        (Errno::EAFNOSUPPORT, _) => Errno::EINVAL,
        (e, _) => e,
    })
}

pub fn bind(task: &mut Task, fd: Fd, addr: UserAddr, len: u32) -> SysResult {
    let (f, sock) = socket_of(task, fd)?;
    let a = read_addr_for(task, &sock, addr, len)?;
    let io = task.io_ctx(&f);
    let paths = TaskPaths { task };
    sock.bind(&Caller { io: &io, cred: ucred(task), paths: &paths }, &a)?;
    Ok(0)
}

pub fn listen(task: &mut Task, fd: Fd, backlog: i32) -> SysResult {
    let (_, sock) = socket_of(task, fd)?;
    // Linux compares as unsigned: a negative backlog is the maximum.
    let backlog = if (0..=SOMAXCONN).contains(&backlog) { backlog } else { SOMAXCONN };
    sock.listen(backlog)?;
    Ok(0)
}

pub fn accept4(task: &mut Task, fd: Fd, addr: UserAddr, len_addr: UserAddr, flags: i32) -> SysResult {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (f, sock) = socket_of(task, fd)?;
    let cap = if addr.is_null() { 0 } else { read_len(task, len_addr)? };
    let (new, peer) = {
        let io = task.io_ctx(&f);
        sock.accept(&io)?
    };
    if !addr.is_null() {
        let peer = peer.unwrap_or(SockAddr::Unix(netstack::UnixAddr::Unnamed));
        write_addr(task, &peer, addr, cap, len_addr)?;
    }
    Ok(install(task, new, flags)? as u64)
}

pub fn accept(task: &mut Task, fd: Fd, addr: UserAddr, len_addr: UserAddr) -> SysResult {
    accept4(task, fd, addr, len_addr, 0)
}

pub fn connect(task: &mut Task, fd: Fd, addr: UserAddr, len: u32) -> SysResult {
    let (f, sock) = socket_of(task, fd)?;
    let a = read_addr_for(task, &sock, addr, len)?;
    let io = task.io_ctx(&f);
    let paths = TaskPaths { task };
    sock.connect(&Caller { io: &io, cred: ucred(task), paths: &paths }, &a)?;
    Ok(0)
}

pub fn getsockname(task: &mut Task, fd: Fd, addr: UserAddr, len_addr: UserAddr) -> SysResult {
    let (_, sock) = socket_of(task, fd)?;
    let cap = read_len(task, len_addr)?;
    let a = sock.local_addr()?;
    write_addr(task, &a, addr, cap, len_addr)?;
    Ok(0)
}

pub fn getpeername(task: &mut Task, fd: Fd, addr: UserAddr, len_addr: UserAddr) -> SysResult {
    let (_, sock) = socket_of(task, fd)?;
    let cap = read_len(task, len_addr)?;
    let a = sock.peer_addr()?;
    write_addr(task, &a, addr, cap, len_addr)?;
    Ok(0)
}

pub fn shutdown(task: &mut Task, fd: Fd, how: i32) -> SysResult {
    let (_, sock) = socket_of(task, fd)?;
    if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
        return Err(Errno::EINVAL);
    }
    sock.shutdown(how)?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// Options

pub fn setsockopt(task: &mut Task, fd: Fd, level: i32, name: i32, val: UserAddr, len: i32) -> SysResult {
    let (_, sock) = socket_of(task, fd)?;
    let len = usize::try_from(len).map_err(|_| Errno::EINVAL)?.min(OPT_MAX);
    let mut b = vec![0u8; len];
    if len > 0 {
        task.copy_in(val, &mut b)?;
    }
    if level == SOL_SOCKET && matches!(name, SO_TYPE | SO_DOMAIN | SO_PROTOCOL | SO_ACCEPTCONN | SO_PEERCRED | SO_ERROR)
    {
        return Err(Errno::ENOPROTOOPT);
    }
    sock.setsockopt(level, name, &b)?;
    Ok(0)
}

pub fn getsockopt(task: &mut Task, fd: Fd, level: i32, name: i32, val: UserAddr, len_addr: UserAddr) -> SysResult {
    let (_, sock) = socket_of(task, fd)?;
    let cap = read_len(task, len_addr)?;
    let v = match (level, name) {
        (SOL_SOCKET, SO_TYPE) => sock.sock_type().to_ne_bytes().to_vec(),
        (SOL_SOCKET, SO_DOMAIN) => sock.family().to_ne_bytes().to_vec(),
        (SOL_SOCKET, SO_PROTOCOL) => sock.protocol().to_ne_bytes().to_vec(),
        _ => sock.getsockopt(level, name)?,
    };
    let n = v.len().min(cap);
    if n > 0 {
        task.copy_out(val, &v[..n])?;
    }
    task.write_obj(len_addr, &(n as u32))?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// Sending

/// A send that failed with EPIPE raises SIGPIPE, unless MSG_NOSIGNAL.
fn sigpipe(task: &Task, r: Result<usize, Errno>, flags: i32) -> SysResult {
    match r {
        Err(Errno::EPIPE) if flags & MSG_NOSIGNAL == 0 => {
            task.queue_self(abi::signal::SIGPIPE, abi::signal::SI_USER);
            Err(Errno::EPIPE)
        }
        r => r.map(|n| n as u64),
    }
}

/// Copy the bytes of `iovs` from `skip` on, at most `max`, into one buffer.
fn gather(task: &Task, iovs: &[Iovec], skip: usize, max: usize) -> Result<Vec<u8>, Errno> {
    let total: usize = iovs.iter().map(|e| e.len as usize).fold(0, usize::saturating_add);
    let want = total.saturating_sub(skip).min(max);
    let mut out = vec![0u8; want];
    let (mut at, mut pos) = (0usize, 0usize);
    for e in iovs {
        let len = e.len as usize;
        if at >= want {
            break;
        }
        let end = pos.saturating_add(len);
        if end > skip {
            let from = skip.saturating_sub(pos);
            let n = (len - from).min(want - at);
            task.copy_in(UserAddr(e.base).offset(from as u64)?, &mut out[at..at + n])?;
            at += n;
        }
        pos = end;
    }
    Ok(out)
}

/// Send the bytes of `iovs` through `sock`: stream sockets in chunks
/// (the control messages go with the first), others as one message.
fn send_iovecs(
    task: &Task,
    file: &OpenFile,
    sock: &Arc<dyn Socket>,
    iovs: &[Iovec],
    addr: Option<SockAddr>,
    mut control: Vec<Control>,
    flags: i32,
) -> SysResult {
    let io = io_ctx(task, file, flags);
    let paths = TaskPaths { task };
    let caller = Caller { io: &io, cred: ucred(task), paths: &paths };
    let total: usize = iovs.iter().map(|e| e.len as usize).fold(0, usize::saturating_add);
    if sock.sock_type() != SOCK_STREAM {
        if total > MAX_MESSAGE {
            return Err(Errno::EMSGSIZE);
        }
        let data = gather(task, iovs, 0, total)?;
        // Only stream sockets raise SIGPIPE (sk_stream_error,
        // unix_stream_sendmsg); a datagram send just fails with EPIPE.
        return sock.send(&caller, &data, addr.as_ref(), control, flags).map(|n| n as u64);
    }
    let mut done = 0usize;
    loop {
        let chunk = gather(task, iovs, done, SEND_CHUNK)?;
        let last = done + chunk.len() >= total;
        let more = if last { flags } else { flags | MSG_MORE };
        match sock.send(&caller, &chunk, addr.as_ref(), std::mem::take(&mut control), more) {
            Ok(n) => {
                done += n;
                if n < chunk.len() || last {
                    crate::rw::note_bulk(task, done);
                    return Ok(done as u64);
                }
            }
            Err(e) if done > 0 => {
                let _ = e;
                return Ok(done as u64);
            }
            Err(e) => return sigpipe(task, Err(e), flags),
        }
    }
}

pub fn sendto(task: &mut Task, fd: Fd, buf: UserAddr, len: u64, flags: i32, addr: UserAddr, alen: u32) -> SysResult {
    let (f, sock) = socket_of(task, fd)?;
    // A length of 0 is no address at all (msg_namelen 0), as Linux has it.
    let to = if addr.is_null() || alen == 0 { None } else { Some(read_addr_for(task, &sock, addr, alen)?) };
    let len = len.min(i32::MAX as u64);
    send_iovecs(task, &f, &sock, &[Iovec { base: buf.0, len }], to, Vec::new(), flags)
}

/// The control messages of a msghdr (__scm_send and the protocols' cmsg
/// parsers): SCM_RIGHTS and SCM_CREDENTIALS here, other levels passed on.
fn read_control(task: &Task, addr: UserAddr, len: usize) -> Result<Vec<Control>, Errno> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if len > OPTMEM_MAX {
        return Err(Errno::ENOBUFS);
    }
    let mut buf = vec![0u8; len];
    task.copy_in(addr, &mut buf)?;
    let mut out = Vec::new();
    for c in cmsgs(&buf) {
        let c = c?;
        let data = c.data;
        match (c.level, c.typ) {
            (SOL_SOCKET, SCM_RIGHTS) => {
                let n = data.len() / 4;
                if n > SCM_MAX_FD {
                    return Err(Errno::EINVAL);
                }
                let mut files = Vec::with_capacity(n);
                for c in data.chunks_exact(4) {
                    let fd = i32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                    files.push(task.file(fd)?);
                }
                if !files.is_empty() {
                    out.push(Control::Rights(files));
                }
            }
            (SOL_SOCKET, SCM_CREDENTIALS) => {
                let c = Ucred::from_bytes(data).ok_or(Errno::EINVAL)?;
                let me = task.creds();
                let root = me.euid == 0;
                if !root
                    && (c.pid != task.tg.tgid
                        || ![me.uid, me.euid, me.suid].contains(&c.uid)
                        || ![me.gid, me.egid, me.sgid].contains(&c.gid))
                {
                    return Err(Errno::EPERM);
                }
                out.push(Control::Credentials(c));
            }
            (SOL_SOCKET, _) => return Err(Errno::EINVAL),
            (level, typ) => out.push(Control::Raw { level, typ, data: data.to_vec() }),
        }
    }
    Ok(out)
}

fn sendmsg_one(task: &Task, fd: Fd, msg_addr: UserAddr, flags: i32) -> SysResult {
    let (f, sock) = socket_of(task, fd)?;
    let m: Msghdr = task.read_obj(msg_addr)?;
    if m.iovlen > UIO_MAXIOV as u64 {
        return Err(Errno::EMSGSIZE);
    }
    if (m.namelen as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let to = if m.name == 0 || m.namelen == 0 {
        None
    } else {
        let len = (m.namelen as usize).min(netstack::addr::SOCKADDR_MAX) as u32;
        Some(read_addr_for(task, &sock, UserAddr(m.name), len)?)
    };
    let iovs = read_iovecs(task, UserAddr(m.iov), m.iovlen as i32)?;
    let control = read_control(task, UserAddr(m.control), m.controllen as usize)?;
    send_iovecs(task, &f, &sock, &iovs, to, control, flags)
}

pub fn sendmsg(task: &mut Task, fd: Fd, msg: UserAddr, flags: i32) -> SysResult {
    sendmsg_one(task, fd, msg, flags)
}

pub fn sendmmsg(task: &mut Task, fd: Fd, vec: UserAddr, vlen: u32, flags: i32) -> SysResult {
    let vlen = (vlen as usize).min(UIO_MAXIOV);
    socket_of(task, fd)?;
    let mut sent = 0usize;
    for i in 0..vlen {
        let entry = vec.offset(i as u64 * std::mem::size_of::<Mmsghdr>() as u64)?;
        match sendmsg_one(task, fd, entry, flags) {
            Ok(n) => {
                task.write_obj(entry.offset(56)?, &(n as u32))?;
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent as u64)
}

// ---------------------------------------------------------------------------
// Receiving

/// Scatter `data` over `iovs`.
fn scatter(task: &Task, iovs: &[Iovec], skip: usize, data: &[u8]) -> Result<(), Errno> {
    let (mut at, mut pos) = (0usize, 0usize);
    for e in iovs {
        if at >= data.len() {
            break;
        }
        let len = e.len as usize;
        let end = pos.saturating_add(len);
        if end > skip {
            let from = skip.saturating_sub(pos);
            let n = (len - from).min(data.len() - at);
            task.copy_out(UserAddr(e.base).offset(from as u64)?, &data[at..at + n])?;
            at += n;
        }
        pos = end;
    }
    Ok(())
}

/// What a receive into `iovs` produced: the message (its control and
/// address from the first piece) and the bytes placed.
fn recv_iovecs(
    task: &Task,
    file: &OpenFile,
    sock: &Arc<dyn Socket>,
    iovs: &[Iovec],
    flags: i32,
) -> Result<(RecvMsg, usize), Errno> {
    let mut total: usize = iovs.iter().map(|e| e.len as usize).fold(0, usize::saturating_add);
    // A stream keeps what a receive could not place (Linux's tcp_recvmsg
    // and unix_stream_read_generic fail with EFAULT before consuming):
    // take no more than the iovecs' writable prefix, nothing (EFAULT)
    // when it is empty. A datagram is dropped either way.
    if sock.sock_type() == SOCK_STREAM && flags & MSG_TRUNC == 0 && total > 0 {
        let mut fits = 0usize;
        for e in iovs.iter().filter(|e| e.len != 0) {
            let n = task.mm().writable_prefix(e.base, e.len) as usize;
            fits = fits.saturating_add(n);
            if n < e.len as usize {
                break;
            }
        }
        if fits == 0 {
            return Err(Errno::EFAULT);
        }
        total = total.min(fits);
    }
    let mut buf = crate::scratch::scratch(total.min(RECV_CHUNK));
    let io = io_ctx(task, file, flags);
    let mut first = sock.recv(&io, &mut buf, flags)?;
    let placed = first.len.min(buf.len());
    // TCP's MSG_TRUNC discards the bytes instead of copying them.
    let stream = sock.sock_type() == SOCK_STREAM;
    let discard = stream && flags & MSG_TRUNC != 0;
    if !discard {
        scatter(task, iovs, 0, &buf[..placed])?;
    }
    let mut done = placed;
    // Stream sockets: take what else is there (all of it with
    // MSG_WAITALL), never across a peek, nor past a piece that came with
    // control messages (descriptors and credentials end a unix read).
    let want_more = placed == buf.len() || flags & MSG_WAITALL != 0;
    if stream && flags & MSG_PEEK == 0 && placed > 0 && want_more && first.control.is_empty() {
        while done < total {
            let mut more_io = io_ctx(task, file, flags);
            if flags & MSG_WAITALL == 0 {
                more_io.flags |= O_NONBLOCK;
            }
            let want = (total - done).min(RECV_CHUNK);
            let chunk = &mut buf[..want];
            match sock.recv(&more_io, chunk, flags) {
                Ok(m) if m.len > 0 => {
                    let n = m.len.min(want);
                    if !discard {
                        scatter(task, iovs, done, &chunk[..n])?;
                    }
                    done += n;
                    if !m.control.is_empty() {
                        first.control.extend(m.control);
                        break;
                    }
                }
                _ => break,
            }
        }
    }
    crate::rw::note_bulk(task, done);
    Ok((first, done))
}

/// Lay the control messages out for a buffer of `cap` bytes at `addr`,
/// as Linux's put_cmsg and scm_detach_fds do: a message that does not fit
/// is cut (its cmsg_len says how much is there), received descriptors are
/// installed as far as room allows and the rest closed. Returns the bytes
/// used and whether anything was cut (MSG_CTRUNC).
fn write_control(
    task: &Task,
    control: Vec<Control>,
    addr: UserAddr,
    cap: usize,
    flags: i32,
) -> Result<(usize, bool), Errno> {
    let mut out: Vec<u8> = Vec::new();
    let mut truncated = false;
    let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
    for c in control {
        let room = cap.saturating_sub(out.len());
        let (level, typ, data) = match c {
            Control::Rights(files) => {
                let fdmax = room.saturating_sub(CMSG_HDR_LEN) / 4;
                let count = files.len();
                let mut data = Vec::new();
                // Those past fdmax (or the descriptor limit) are dropped
                // here, which closes them.
                for f in files.into_iter().take(fdmax) {
                    match task.fds().install(f, cloexec, task.tg.nofile()) {
                        Ok(fd) => data.extend_from_slice(&fd.to_ne_bytes()),
                        Err(_) => break,
                    }
                }
                if data.len() / 4 < count {
                    truncated = true;
                }
                if data.is_empty() {
                    continue;
                }
                (SOL_SOCKET, SCM_RIGHTS, data)
            }
            Control::Credentials(c) => (SOL_SOCKET, SCM_CREDENTIALS, c.as_bytes().to_vec()),
            Control::Raw { level, typ, data } => (level, typ, data),
        };
        if room < CMSG_HDR_LEN {
            truncated = true;
            continue;
        }
        let mut cmlen = cmsg_len(data.len());
        if room < cmlen {
            truncated = true;
            cmlen = room;
        }
        let start = out.len();
        out.extend_from_slice(Cmsghdr { len: cmlen as u64, level, typ }.as_bytes());
        out.extend_from_slice(&data[..cmlen - CMSG_HDR_LEN]);
        out.resize(start + cmsg_space(data.len()).min(room), 0);
    }
    if !out.is_empty() {
        task.copy_out(addr, &out)?;
    }
    Ok((out.len(), truncated))
}

fn recvmsg_one(task: &Task, fd: Fd, msg_addr: UserAddr, flags: i32) -> SysResult {
    let (f, sock) = socket_of(task, fd)?;
    let m: Msghdr = task.read_obj(msg_addr)?;
    if m.iovlen > UIO_MAXIOV as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let iovs = read_iovecs(task, UserAddr(m.iov), m.iovlen as i32)?;
    let (msg, placed) = recv_iovecs(task, &f, &sock, &iovs, flags)?;
    let name_len = match (&msg.addr, m.name) {
        (Some(a), name) if name != 0 => {
            let b = a.to_bytes();
            let n = b.len().min(m.namelen as usize);
            if n > 0 {
                task.copy_out(UserAddr(m.name), &b[..n])?;
            }
            b.len() as u32
        }
        _ => 0,
    };
    let (clen, ctrunc) = if m.control == 0 || m.controllen == 0 {
        (0, !msg.control.is_empty())
    } else {
        write_control(task, msg.control, UserAddr(m.control), m.controllen as usize, flags)?
    };
    let mut out_flags = msg.flags;
    if ctrunc {
        out_flags |= MSG_CTRUNC;
    }
    task.write_obj(msg_addr.offset(8)?, &name_len)?;
    task.write_obj(msg_addr.offset(40)?, &(clen as u64))?;
    task.write_obj(msg_addr.offset(48)?, &out_flags)?;
    let ret = if flags & MSG_TRUNC != 0 && sock.sock_type() != SOCK_STREAM { msg.full_len } else { placed };
    Ok(ret as u64)
}

pub fn recvmsg(task: &mut Task, fd: Fd, msg: UserAddr, flags: i32) -> SysResult {
    recvmsg_one(task, fd, msg, flags)
}

pub fn recvfrom(
    task: &mut Task,
    fd: Fd,
    buf: UserAddr,
    len: u64,
    flags: i32,
    addr: UserAddr,
    alen: UserAddr,
) -> SysResult {
    let (f, sock) = socket_of(task, fd)?;
    let cap = if addr.is_null() { 0 } else { read_len(task, alen)? };
    let len = len.min(i32::MAX as u64);
    let (msg, placed) = recv_iovecs(task, &f, &sock, &[Iovec { base: buf.0, len }], flags)?;
    if !addr.is_null() {
        match &msg.addr {
            Some(a) => write_addr(task, a, addr, cap, alen)?,
            None => task.write_obj(alen, &0u32)?,
        }
    }
    let ret = if flags & MSG_TRUNC != 0 && sock.sock_type() != SOCK_STREAM { msg.full_len } else { placed };
    Ok(ret as u64)
}

pub fn recvmmsg(task: &mut Task, fd: Fd, vec: UserAddr, vlen: u32, flags: i32, timeout: UserAddr) -> SysResult {
    let vlen = (vlen as usize).min(UIO_MAXIOV);
    socket_of(task, fd)?;
    let deadline = if timeout.is_null() { None } else { vfs::deadline_after(crate::fd::read_timespec(task, timeout)?) };
    let mut got = 0usize;
    let mut flags = flags;
    for i in 0..vlen {
        let entry = vec.offset(i as u64 * std::mem::size_of::<Mmsghdr>() as u64)?;
        match recvmsg_one(task, fd, entry, flags & !MSG_WAITFORONE) {
            Ok(n) => {
                task.write_obj(entry.offset(56)?, &(n as u32))?;
                got += 1;
            }
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        if flags & MSG_WAITFORONE != 0 {
            flags |= MSG_DONTWAIT;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    Ok(got as u64)
}
