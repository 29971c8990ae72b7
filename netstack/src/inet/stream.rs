//! One direction of a TCP connection: a bounded byte queue from the
//! writing socket to the reading one, with FIN (the writer shut down or
//! closed), reset, and the reading socket's pending error (its sk_err).
//!
//! A connection is two streams; each socket reads one and writes the
//! other. Under the stream's lock nothing else is locked, except that a
//! stream with a host socket behind it (`HostSide`, a connection out of
//! the sandbox) may arm its bridge (the bridge's `armed` → `reg` → the
//! notifier's `handlers`; see bridge.rs). `poke` is a leaf taken without
//! `st`.
//! A socket's `sk_err` after a reset lives in the stream it reads, so a
//! reset never has to take the other socket's lock.

use super::wait::{block, lock, wake, Sleepers};
use crate::egress::sys::{SetPoke, Waker};
use abi::Errno;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Instant;
use vfs::{IoCtx, WaitQueue};

/// Bytes a stream holds. Linux reports SO_RCVBUF 87380 and SO_SNDBUF
/// 16384 for a new TCP socket but autotunes the real window to megabytes
/// on loopback; a large queue keeps the data path in big copies.
pub const STREAM_CAPACITY: usize = 4 << 20;
/// What an autotuned sender holds when its peer does not read, and the
/// window a default receive buffer offers (Linux 6.1 on loopback: a
/// writer facing a peer that set SO_RCVBUF 4096 got 2.8 MB out; one that
/// set SO_SNDBUF 4096 itself, facing a default peer, 80 KB).
const AUTOTUNED_SEND: usize = 2816 << 10;
const DEFAULT_WINDOW: usize = 72 << 10;

/// A stream's bound from the buffer sizes its writer and reader set
/// (SO_SNDBUF, SO_RCVBUF; None where not set): what Linux lets a writer
/// push to a peer that does not read, the writer's send buffer plus the
/// window the reader's receive buffer offers (about half of it). Neither
/// set: autotuned, `STREAM_CAPACITY`.
pub fn capacity(writer_sndbuf: Option<u32>, reader_rcvbuf: Option<u32>) -> usize {
    if writer_sndbuf.is_none() && reader_rcvbuf.is_none() {
        return STREAM_CAPACITY;
    }
    let w = writer_sndbuf.map_or(AUTOTUNED_SEND, |b| b as usize);
    let r = reader_rcvbuf.map_or(DEFAULT_WINDOW, |b| b as usize / 2);
    (w + r).min(STREAM_CAPACITY)
}

#[derive(Default)]
pub struct StreamState {
    buf: VecDeque<u8>,
    cap: usize,
    /// The writer sent FIN (shut down for writing, or closed cleanly).
    pub fin: bool,
    /// The reader's pending error (SO_ERROR, the next recv or send).
    pub err: Option<Errno>,
    /// The reader was reset: it reads what is queued, its error, then EOF.
    pub rst: bool,
    /// The reader shut down for reading: EOF once the queue is empty.
    pub reader_shut: bool,
    /// The reader is gone: the next write is answered by a reset.
    pub reader_closed: bool,
    /// The writer was reset: its writes fail.
    pub writer_reset: bool,
    sleepers: u32,
    /// A blocked writer queued bytes: tell the reader's poll waiters
    /// before sleeping.
    notify_reader: bool,
    /// The buffer sizes the writer and the reader set (see `capacity`).
    writer_sndbuf: Option<u32>,
    reader_rcvbuf: Option<u32>,
}

impl Sleepers for StreamState {
    fn sleepers(&mut self) -> &mut u32 {
        &mut self.sleepers
    }
    fn take_deferred(&mut self) -> bool {
        std::mem::take(&mut self.notify_reader)
    }
}

impl StreamState {
    /// Whether poll reports POLLOUT to the writer (sk_stream_is_writeable:
    /// at least a third free).
    pub fn writable(&self) -> bool {
        self.buf.len() <= self.cap / 3 * 2
    }

    pub fn queued(&self) -> usize {
        self.buf.len()
    }
}

pub struct Stream {
    st: Mutex<StreamState>,
    cond: Condvar,
    /// The reading socket's and the writing socket's poll waiters.
    reader_q: Arc<WaitQueue>,
    writer_q: Arc<WaitQueue>,
    /// A connection that leaves the sandbox: the host socket, read and
    /// written directly while nothing is queued here (no copy through
    /// the queue, no thread in between).
    host: OnceLock<Weak<dyn HostSide>>,
    /// Ends a reader's wait on the host socket when this stream changes
    /// (a shutdown or close from another thread), set for that wait.
    poke: Mutex<Option<Waker>>,
}

/// The host socket behind a stream of a connection that leaves the
/// sandbox. Called with the stream's lock held: never blocks, never
/// takes another stream's lock.
pub trait HostSide: Send + Sync {
    /// recv(2) without blocking: Ok(0) at EOF, EAGAIN when empty.
    fn recv(&self, buf: &mut [u8], peek: bool, discard: bool) -> Result<usize, Errno>;
    /// send(2) without blocking.
    fn send(&self, data: &[u8]) -> Result<usize, Errno>;
    /// Whether a recv would not block (data, EOF or an error).
    fn readable(&self) -> bool;
    /// Bytes waiting in the host socket (FIONREAD).
    fn pending(&self) -> usize;
    /// Someone will wait for the host socket through the notifier (a
    /// poll, a sleeping reader): have it report readiness once.
    fn want_readable(&self);
    /// TCP_NODELAY on the host socket, as the guest set it.
    fn set_nodelay(&self, on: bool);
    /// Wait until a recv would not block, `deadline` passes (EAGAIN), the
    /// task is interrupted (ERESTARTSYS) or `poke` is called (Ok): the
    /// reader waits on the host socket itself, one thread fewer between
    /// the bytes and the guest. `poke` is installed through `set_poke`
    /// before the caller last checks the stream, so no change is missed.
    fn wait_readable(
        &self,
        interrupt: &vfs::Interrupt,
        deadline: Option<Instant>,
        set_poke: &SetPoke<'_>,
        still_empty: &dyn Fn() -> bool,
    ) -> Result<(), Errno>;
}

/// What a write achieved.
pub enum Wrote {
    /// Bytes queued.
    Sent(usize),
    /// The reader had closed: the bytes were taken and the peer answers
    /// with a reset, which the writer must now receive.
    SentIntoReset(usize),
}

/// How a read treats the queue.
#[derive(Clone, Copy)]
pub struct ReadMode {
    pub peek: bool,
    /// MSG_TRUNC on a stream: drop the bytes instead of copying them.
    pub discard: bool,
}

impl Stream {
    pub fn new(reader_q: Arc<WaitQueue>, writer_q: Arc<WaitQueue>) -> Arc<Stream> {
        Arc::new(Stream {
            st: Mutex::new(StreamState { cap: STREAM_CAPACITY, ..Default::default() }),
            cond: Condvar::new(),
            reader_q,
            writer_q,
            host: OnceLock::new(),
            poke: Mutex::new(None),
        })
    }

    /// Before a blocking read: when nothing is queued and the host socket
    /// is behind this stream, wait on the host socket itself.
    pub fn wait_host(&self, io: &IoCtx, deadline: Option<Instant>) -> Result<(), Errno> {
        if io.nonblock() {
            return Ok(());
        }
        let Some(h) = self.host() else { return Ok(()) };
        let set_poke = |p: Option<Waker>| *lock(&self.poke) = p;
        let still_empty = || {
            let s = lock(&self.st);
            s.buf.is_empty() && !s.fin && !s.rst && !s.reader_shut && !s.reader_closed && s.err.is_none()
        };
        h.wait_readable(io.interrupt, deadline, &set_poke, &still_empty)
    }

    /// Put the host socket behind this stream (once, when a bridge is
    /// attached).
    pub fn set_host(&self, h: Weak<dyn HostSide>) {
        let _ = self.host.set(h);
    }

    /// Pass the guest's TCP_NODELAY to the host socket behind this stream.
    /// The writer set SO_SNDBUF (Some) or not.
    pub fn set_writer_sndbuf(&self, b: Option<u32>) {
        self.resize(|s| s.writer_sndbuf = b);
    }

    /// The reader set SO_RCVBUF (Some) or not.
    pub fn set_reader_rcvbuf(&self, b: Option<u32>) {
        self.resize(|s| s.reader_rcvbuf = b);
    }

    fn resize(&self, f: impl FnOnce(&mut StreamState)) {
        let grew = {
            let mut s = lock(&self.st);
            f(&mut s);
            let cap = capacity(s.writer_sndbuf, s.reader_rcvbuf);
            let grew = cap > s.cap;
            s.cap = cap;
            if grew {
                wake(&mut *s, &self.cond);
            }
            grew
        };
        if grew {
            self.writer_q.notify();
        }
    }

    pub fn set_host_nodelay(&self, on: bool) {
        if let Some(h) = self.host() {
            h.set_nodelay(on);
        }
    }

    /// Whether a host socket is behind this stream.
    pub fn has_host(&self) -> bool {
        self.host().is_some()
    }

    fn host(&self) -> Option<Arc<dyn HostSide>> {
        self.host.get().and_then(Weak::upgrade)
    }

    /// Whether a read would find something: queued bytes, or bytes (or
    /// EOF) waiting in the host socket.
    pub fn readable(&self) -> bool {
        if !lock(&self.st).buf.is_empty() {
            return true;
        }
        let Some(h) = self.host() else { return false };
        if h.readable() {
            return true;
        }
        // A poll waiter is registered (poll registers before it asks):
        // arm, then look again so that bytes that came in between are
        // not missed.
        h.want_readable();
        h.readable()
    }

    /// Bytes a read would find (FIONREAD).
    pub fn pending_in(&self) -> usize {
        lock(&self.st).buf.len().saturating_add(self.host().map_or(0, |h| h.pending()))
    }

    /// The host socket has something for the reader: wake it, and poll
    /// waiters (the reader fetches it itself).
    pub fn wake_reader(&self) {
        {
            let mut g = lock(&self.st);
            wake(&mut *g, &self.cond);
        }
        self.reader_q.notify();
    }

    /// Look at the state (for poll, ioctl, info).
    pub fn with<R>(&self, f: impl FnOnce(&StreamState) -> R) -> R {
        f(&lock(&self.st))
    }

    pub fn queued(&self) -> usize {
        lock(&self.st).buf.len()
    }

    /// Change the state and wake both sides.
    fn update(&self, f: impl FnOnce(&mut StreamState)) {
        {
            let mut g = lock(&self.st);
            f(&mut g);
            wake(&mut *g, &self.cond);
        }
        // Only a stream with a host socket behind it has a reader waiting
        // on that socket to poke (the loopback's changes skip the lock).
        if self.host.get().is_some() {
            let poke = lock(&self.poke).clone();
            if let Some(p) = poke {
                p();
            }
        }
        self.reader_q.notify();
        self.writer_q.notify();
    }

    /// The reader's pending error, taken (SO_ERROR, recv, send).
    pub fn take_err(&self) -> Option<Errno> {
        let e = lock(&self.st).err.take();
        if e.is_some() {
            self.reader_q.notify();
        }
        e
    }

    /// The writer shuts down for writing (or closes cleanly).
    pub fn send_fin(&self) {
        self.update(|s| s.fin = true);
    }

    /// The reader shuts down for reading.
    pub fn shut_reader(&self) {
        self.update(|s| s.reader_shut = true);
    }

    /// The reader closes: what it did not read is dropped, and the writer
    /// is answered by a reset at its next write.
    pub fn close_reader(&self) {
        self.update(|s| {
            s.reader_closed = true;
            s.buf = VecDeque::new();
        });
    }

    /// The reader receives a reset with error `e` (ECONNRESET, or EPIPE
    /// when it had already received FIN, as tcp_reset does).
    pub fn reset_reader(&self) {
        self.update(|s| {
            if !s.rst {
                s.err = Some(if s.fin { Errno::EPIPE } else { Errno::ECONNRESET });
                s.rst = true;
            }
        });
    }

    /// The writer receives a reset: its writes fail from now on.
    pub fn reset_writer(&self) {
        self.update(|s| {
            s.writer_reset = true;
            s.reader_closed = true;
            s.buf = VecDeque::new();
        });
    }

    /// Queue `data`, blocking for room unless non-blocking; a blocking
    /// write takes everything unless interrupted or timed out (then it
    /// returns what went, or the errno when nothing did). EPIPE when the
    /// writer shut down or was reset.
    pub fn write(self: &Arc<Self>, io: &IoCtx, data: &[u8], deadline: Option<Instant>) -> Result<Wrote, Errno> {
        let sent = std::cell::Cell::new(0usize);
        let mut woke_reader = false;
        let me = self.clone();
        let r = block(
            (&self.st, &self.cond),
            io,
            deadline,
            move || super::wait::waker(me, |s: &Stream| (&s.st, &s.cond)),
            |s| {
                let done = sent.get();
                if s.fin || s.writer_reset {
                    return Some(if done > 0 { Ok(Wrote::Sent(done)) } else { Err(Errno::EPIPE) });
                }
                if s.reader_closed {
                    // What the send buffer takes before the reset comes
                    // back (the peer's queue is gone: all of it is room).
                    s.writer_reset = true;
                    let n = (data.len() - done).min(s.cap.max(1));
                    return Some(Ok(Wrote::SentIntoReset(done + n)));
                }
                let mut done = done;
                if s.buf.is_empty() {
                    if let Some(h) = self.host() {
                        match h.send(data.get(done..).unwrap_or_default()) {
                            Ok(k) => {
                                done += k;
                                sent.set(done);
                                if done == data.len() {
                                    return Some(Ok(Wrote::Sent(done)));
                                }
                            }
                            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                            Err(e) => {
                                s.writer_reset = true;
                                return Some(if done > 0 { Ok(Wrote::Sent(done)) } else { Err(e) });
                            }
                        }
                    }
                }
                let room = s.cap.saturating_sub(s.buf.len());
                let n = room.min(data.len() - done);
                let done = done + n;
                if n > 0 {
                    let was_empty = s.buf.is_empty();
                    s.buf.extend(data.get(done - n..done).unwrap_or_default());
                    sent.set(done);
                    if was_empty {
                        wake(s, &self.cond);
                    }
                    woke_reader = true;
                    // Tell poll waiters before sleeping, not only at the
                    // end: a blocked writer must not hold back a reader.
                    s.notify_reader = done < data.len();
                }
                (done == data.len()).then_some(Ok(Wrote::Sent(done)))
            },
            |_, e| if sent.get() > 0 { Ok(Wrote::Sent(sent.get())) } else { Err(e) },
            &|| self.reader_q.notify(),
        );
        if woke_reader {
            self.reader_q.notify();
        }
        r
    }

    /// Read into `buf`, blocking until there is data, EOF or an error.
    pub fn read(
        self: &Arc<Self>,
        io: &IoCtx,
        buf: &mut [u8],
        mode: ReadMode,
        deadline: Option<Instant>,
    ) -> Result<usize, Errno> {
        let mut freed = false;
        let mut err_taken = false;
        let nonblock = io.nonblock();
        let me = self.clone();
        let r = block(
            (&self.st, &self.cond),
            io,
            deadline,
            move || super::wait::waker(me, |s: &Stream| (&s.st, &s.cond)),
            |s| {
                if !s.buf.is_empty() {
                    let n = buf.len().min(s.buf.len());
                    if !mode.discard {
                        let (a, b) = s.buf.as_slices();
                        let na = n.min(a.len());
                        buf[..na].copy_from_slice(&a[..na]);
                        if n > na {
                            buf[na..n].copy_from_slice(&b[..n - na]);
                        }
                    }
                    if !mode.peek {
                        let was_writable = s.writable();
                        s.buf.drain(..n);
                        if s.writable() {
                            wake(s, &self.cond);
                            freed = !was_writable;
                        }
                    }
                    return Some(Ok(n));
                }
                if s.fin {
                    return Some(Ok(0));
                }
                if let Some(e) = s.err.take() {
                    err_taken = true;
                    return Some(Err(e));
                }
                if s.rst || s.reader_shut {
                    return Some(Ok(0));
                }
                if buf.is_empty() {
                    return None;
                }
                let h = self.host()?;
                match h.recv(buf, mode.peek, mode.discard) {
                    Ok(0) => {
                        s.fin = true;
                        Some(Ok(0))
                    }
                    Ok(n) => Some(Ok(n)),
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {
                        // About to sleep: the notifier wakes this reader.
                        // Bytes that came in before the arming are found
                        // by the next round (the sleep is short). A
                        // non-blocking attempt sleeps on nothing.
                        if !nonblock {
                            h.want_readable();
                        }
                        None
                    }
                    Err(e) => {
                        // As tcp_reset: this error once, then EOF.
                        s.rst = true;
                        Some(Err(e))
                    }
                }
            },
            |_, e| Err(e),
            &|| {},
        );
        if freed {
            self.writer_q.notify();
        }
        if err_taken {
            self.reader_q.notify();
        }
        r
    }
}

/// What a bridge (the host side of a connection that leaves the sandbox)
/// sees of the stream it reads.
pub struct Outgoing {
    /// Bytes copied into the caller's buffer (not yet taken).
    pub n: usize,
    /// The guest sent FIN and nothing more is queued.
    pub fin: bool,
    /// The guest reset the connection.
    pub rst: bool,
}

/// The bridge's side of a stream. Unlike a socket's, these never block
/// and tell only the guest's side, so a bridge called from a wake-up
/// cannot wake itself.
impl Stream {
    /// Copy queued bytes into `out` without taking them.
    pub fn peek_out(&self, out: &mut [u8]) -> Outgoing {
        let s = lock(&self.st);
        let n = out.len().min(s.buf.len());
        let (a, b) = s.buf.as_slices();
        let na = n.min(a.len());
        out[..na].copy_from_slice(&a[..na]);
        if n > na {
            out[na..n].copy_from_slice(&b[..n - na]);
        }
        Outgoing { n, fin: s.fin && s.buf.len() == n, rst: s.rst }
    }

    /// Take `n` bytes the host accepted.
    pub fn consume(&self, n: usize) {
        let freed = {
            let mut s = lock(&self.st);
            let was_writable = s.writable();
            let n = n.min(s.buf.len());
            s.buf.drain(..n);
            let now = s.writable();
            if now {
                wake(&mut *s, &self.cond);
            }
            now && !was_writable
        };
        if freed {
            self.writer_q.notify();
        }
    }

    /// Whether the guest will never read this stream again.
    pub fn reader_gone(&self) -> bool {
        let s = lock(&self.st);
        s.reader_closed || s.writer_reset
    }

    /// The host reset the connection: the guest reads what is queued,
    /// then ECONNRESET.
    pub fn push_reset(&self) {
        {
            let mut s = lock(&self.st);
            if !s.rst {
                s.err = Some(if s.fin { Errno::EPIPE } else { Errno::ECONNRESET });
                s.rst = true;
            }
            wake(&mut *s, &self.cond);
        }
        self.reader_q.notify();
    }

    /// The host reset the connection: the guest's writes fail from now on.
    pub fn refuse_writes(&self) {
        {
            let mut s = lock(&self.st);
            s.writer_reset = true;
            s.reader_closed = true;
            s.buf = VecDeque::new();
            wake(&mut *s, &self.cond);
        }
        self.writer_q.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vfs::Interrupt;

    fn pair() -> Arc<Stream> {
        Stream::new(Arc::new(WaitQueue::default()), Arc::new(WaitQueue::default()))
    }

    #[test]
    fn bytes_fin_and_reset() {
        let irq = Interrupt::new();
        let io = IoCtx { flags: abi::flags::O_NONBLOCK, interrupt: &irq };
        let s = pair();
        assert!(matches!(s.write(&io, b"hello", None), Ok(Wrote::Sent(5))));
        let mut b = [0u8; 8];
        let m = ReadMode { peek: true, discard: false };
        assert_eq!(s.read(&io, &mut b, m, None), Ok(5));
        let m = ReadMode { peek: false, discard: false };
        assert_eq!(s.read(&io, &mut b[..2], m, None), Ok(2));
        assert_eq!(&b[..2], b"he");
        assert_eq!(s.queued(), 3);
        s.reset_reader();
        assert_eq!(s.read(&io, &mut b, m, None), Ok(3));
        assert_eq!(s.read(&io, &mut b, m, None), Err(Errno::ECONNRESET));
        assert_eq!(s.read(&io, &mut b, m, None), Ok(0));
        let t = pair();
        assert_eq!(t.read(&io, &mut b, m, None), Err(Errno::EAGAIN));
        t.close_reader();
        assert!(matches!(t.write(&io, b"x", None), Ok(Wrote::SentIntoReset(1))));
        assert!(matches!(t.write(&io, b"x", None), Err(Errno::EPIPE)));
    }
}
