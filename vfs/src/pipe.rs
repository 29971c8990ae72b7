//! Pipes and FIFOs with Linux semantics: a 64 KiB buffer, EOF once every
//! writer is gone, EPIPE once every reader is gone, atomic writes of up to
//! PIPE_BUF bytes, O_NONBLOCK, poll readiness and FIONREAD.
//!
//! [`new_pair`] makes an anonymous pipe (pipe(2)); a named FIFO keeps one
//! [`Pipe`] per inode and opens it with [`Pipe::open_fifo`]. Linux blocks
//! open(2) of a FIFO until the other end appears; `Inode::open` cannot
//! block, so the wait moves to the first read (a reader that has not yet
//! seen a writer waits instead of seeing EOF) or write (a writer that has
//! not yet seen a reader waits instead of failing with EPIPE).

use crate::inode::FileOps;
use crate::util::{anon_dev, lock, wait};
use crate::wait::IoCtx;
use abi::flags::{O_ACCMODE, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, S_IFIFO};
use abi::{Errno, Stat};
use std::any::Any;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// Bytes a pipe holds (Linux's default pipe size).
pub const PIPE_CAPACITY: usize = 65536;
/// Writes of at most this many bytes are atomic.
pub const PIPE_BUF: usize = 4096;

const POLLIN: u32 = libc::POLLIN as u32;
const POLLRDNORM: u32 = libc::POLLRDNORM as u32;
const POLLOUT: u32 = libc::POLLOUT as u32;
const POLLWRNORM: u32 = libc::POLLWRNORM as u32;
const POLLHUP: u32 = libc::POLLHUP as u32;
const POLLERR: u32 = libc::POLLERR as u32;

#[derive(Default)]
struct State {
    buf: VecDeque<u8>,
    readers: u32,
    writers: u32,
    /// How many times each end was ever opened, so a FIFO end can tell
    /// whether a peer has come since it was opened.
    r_opens: u64,
    w_opens: u64,
    /// F_SETPIPE_SZ's size; 0 for the default PIPE_CAPACITY.
    size: usize,
}

impl State {
    fn capacity(&self) -> usize {
        if self.size == 0 {
            PIPE_CAPACITY
        } else {
            self.size
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        crate::limits::uncharge_heap(self.buf.len() as u64);
    }
}

/// The shared buffer of one pipe or FIFO (at most PIPE_CAPACITY bytes,
/// charged to the sandbox's memory use while they wait to be read).
pub struct Pipe {
    state: Mutex<State>,
    cond: Condvar,
    ino: u64,
    /// poll/select/epoll waiters.
    queue: crate::wait::WaitQueue,
}

fn pipefs_dev() -> u64 {
    static DEV: OnceLock<u64> = OnceLock::new();
    *DEV.get_or_init(anon_dev)
}

impl Pipe {
    /// A pipe with no ends open (for a FIFO inode).
    pub fn new() -> Arc<Pipe> {
        Arc::new(Pipe {
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
            ino: crate::next_ino(),
            queue: Default::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Wake blocked readers/writers and poll waiters (the state changed).
    fn wake(&self) {
        self.cond.notify_all();
        self.queue.notify();
    }

    /// Bytes waiting to be read.
    pub fn queued(&self) -> usize {
        self.lock().buf.len()
    }

    /// How many bytes the pipe holds at most (F_GETPIPE_SZ).
    pub fn capacity(&self) -> usize {
        self.lock().capacity()
    }

    /// F_SETPIPE_SZ to `size` bytes (a power-of-two number of pages, from
    /// the caller): EBUSY when the data held would not fit. Data is
    /// counted in pages, as Linux counts the buffers holding it.
    pub fn set_capacity(&self, size: usize) -> Result<(), Errno> {
        let mut g = self.lock();
        if g.buf.len().div_ceil(abi::PAGE_SIZE as usize) > size / abi::PAGE_SIZE as usize {
            return Err(Errno::EBUSY);
        }
        g.size = size;
        drop(g);
        self.wake();
        Ok(())
    }

    /// Open one end of this pipe as a named FIFO with open(2) `flags`:
    /// O_RDONLY a reader, O_WRONLY a writer (ENXIO when non-blocking and
    /// no reader is there, as Linux), O_RDWR both.
    pub fn open_fifo(self: &Arc<Self>, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        self.open_end(flags, true)
    }

    /// A new end of an anonymous pipe opened by path (/proc/[pid]/fd/N,
    /// /dev/stdin): Linux's fifo_open never waits for a partner on pipefs,
    /// so a reader whose writers are all gone reads EOF at once.
    pub fn reopen(self: &Arc<Self>, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        self.open_end(flags, false)
    }

    fn open_end(self: &Arc<Self>, flags: u32, fifo: bool) -> Result<Arc<dyn FileOps>, Errno> {
        let (read, write) = match flags & O_ACCMODE {
            O_RDONLY => (true, false),
            O_WRONLY => (false, true),
            O_RDWR => (true, true),
            _ => return Err(Errno::EINVAL),
        };
        let mut g = self.lock();
        // (A reopened anonymous pipe: no ENXIO either, as Linux 6.x.)
        if fifo && write && !read && flags & O_NONBLOCK != 0 && g.readers == 0 {
            return Err(Errno::ENXIO);
        }
        // A partner already open counts as seen: Linux's open would not
        // have blocked for it, and its later close is a hangup.
        let (other_readers, other_writers) = (g.readers, g.writers);
        if read {
            g.readers += 1;
            g.r_opens += 1;
        }
        if write {
            g.writers += 1;
            g.w_opens += 1;
        }
        let end = PipeEnd {
            pipe: self.clone(),
            read,
            write,
            fifo,
            r_seen: if other_readers > 0 { g.r_opens.saturating_sub(1) } else { g.r_opens },
            w_seen: if other_writers > 0 { g.w_opens.saturating_sub(1) } else { g.w_opens },
            released: AtomicBool::new(false),
        };
        drop(g);
        self.cond.notify_all();
        self.queue.notify();
        Ok(Arc::new(end))
    }
}

/// A new anonymous pipe: (read end, write end).
pub fn new_pair() -> (Arc<dyn FileOps>, Arc<dyn FileOps>) {
    let p = Pipe::new();
    {
        let mut g = p.lock();
        g.readers = 1;
        g.writers = 1;
        g.r_opens = 1;
        g.w_opens = 1;
    }
    let end = |read: bool| PipeEnd {
        pipe: p.clone(),
        read,
        write: !read,
        fifo: false,
        r_seen: 1,
        w_seen: 1,
        released: AtomicBool::new(false),
    };
    (Arc::new(end(true)), Arc::new(end(false)))
}

/// One open end of a pipe.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
    /// Opened through a named FIFO (its stat comes from the inode).
    fifo: bool,
    /// r_opens / w_opens when this end was opened.
    r_seen: u64,
    w_seen: u64,
    released: AtomicBool,
}

enum Step<T> {
    Done(Result<T, Errno>),
    Wait,
}

impl PipeEnd {
    /// The pipe this end belongs to.
    pub fn pipe(&self) -> &Arc<Pipe> {
        &self.pipe
    }

    /// A FIFO reader that has not seen any writer since it was opened
    /// waits (Linux would still be blocked in open).
    fn awaiting_writer(&self, st: &State) -> bool {
        self.fifo && st.w_opens == self.w_seen
    }

    fn awaiting_reader(&self, st: &State) -> bool {
        self.fifo && st.r_opens == self.r_seen
    }

    /// Run `step` under the pipe lock until it is done, sleeping on the
    /// pipe's condition variable in between; EAGAIN instead of sleeping
    /// for non-blocking files, ERESTARTSYS once the task is interrupted.
    fn block_on<T>(&self, ctx: &IoCtx, mut step: impl FnMut(&mut State) -> Step<T>) -> Result<T, Errno> {
        {
            let mut g = self.pipe.lock();
            if let Step::Done(r) = step(&mut g) {
                return r;
            }
            if ctx.nonblock() {
                return Err(Errno::EAGAIN);
            }
        }
        let p = self.pipe.clone();
        let waker: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _g = p.lock();
            p.cond.notify_all();
        });
        ctx.interrupt.with_waker(waker, || {
            let mut g = self.pipe.lock();
            loop {
                if let Step::Done(r) = step(&mut g) {
                    return r;
                }
                if ctx.interrupt.is_pending() {
                    return Err(Errno::ERESTARTSYS);
                }
                g = wait(&self.pipe.cond, g);
            }
        })
    }

    fn do_release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut g = self.pipe.lock();
        if self.read {
            g.readers = g.readers.saturating_sub(1);
        }
        if self.write {
            g.writers = g.writers.saturating_sub(1);
        }
        if g.readers == 0 && g.writers == 0 {
            // A FIFO's contents do not outlive its last open end.
            crate::limits::uncharge_heap(g.buf.len() as u64);
            g.buf = VecDeque::new();
        }
        drop(g);
        self.pipe.cond.notify_all();
        self.pipe.queue.notify();
    }
}

/// What splice(2), tee(2) and vmsplice(2) need beyond read and write:
/// looking at queued bytes without taking them, and waiting for room.
/// Between a `peek` and its `consume` the pipe lock is not held (the
/// bytes go to another file in between), so a second reader of the same
/// pipe racing a splice may see the same bytes; Linux's pipe_lock orders
/// the two instead.
impl PipeEnd {
    pub fn is_reader(&self) -> bool {
        self.read
    }

    pub fn is_writer(&self) -> bool {
        self.write
    }

    /// Copy up to `buf.len()` queued bytes without taking them, waiting
    /// for some as read(2) does; 0 at end of file.
    pub fn peek(&self, ctx: &IoCtx, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.read {
            return Err(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        self.block_on(ctx, |st| {
            if !st.buf.is_empty() {
                let n = buf.len().min(st.buf.len());
                for (d, s) in buf.iter_mut().zip(st.buf.iter()) {
                    *d = *s;
                }
                return Step::Done(Ok(n));
            }
            if st.writers == 0 && (!self.awaiting_writer(st) || ctx.nonblock()) {
                return Step::Done(Ok(0));
            }
            Step::Wait
        })
    }

    /// Take the first `n` queued bytes (after a `peek` moved them on).
    pub fn consume(&self, n: usize) {
        let mut g = self.pipe.lock();
        let n = n.min(g.buf.len());
        g.buf.drain(..n);
        crate::limits::uncharge_heap(n as u64);
        drop(g);
        self.pipe.wake();
    }

    /// Wait until the pipe has room, as a write would (EPIPE without
    /// readers); the free bytes.
    pub fn wait_room(&self, ctx: &IoCtx) -> Result<usize, Errno> {
        if !self.write {
            return Err(Errno::EBADF);
        }
        self.block_on(ctx, |st| {
            if st.readers == 0 && (!self.awaiting_reader(st) || ctx.nonblock()) {
                return Step::Done(Err(Errno::EPIPE));
            }
            let room = PIPE_CAPACITY.saturating_sub(st.buf.len());
            if room > 0 && st.readers > 0 {
                return Step::Done(Ok(room));
            }
            Step::Wait
        })
    }

    /// Whether `other` is an end of the same pipe.
    pub fn same_pipe(&self, other: &PipeEnd) -> bool {
        Arc::ptr_eq(&self.pipe, &other.pipe)
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        self.do_release();
    }
}

impl FileOps for PipeEnd {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if !self.read {
            return Err(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        self.block_on(ctx, |st| {
            if !st.buf.is_empty() {
                let n = buf.len().min(st.buf.len());
                for (d, s) in buf.iter_mut().zip(st.buf.drain(..n)) {
                    *d = s;
                }
                crate::limits::uncharge_heap(n as u64);
                self.pipe.wake();
                return Step::Done(Ok(n));
            }
            if st.writers == 0 && (!self.awaiting_writer(st) || ctx.nonblock()) {
                return Step::Done(Ok(0));
            }
            Step::Wait
        })
    }

    fn write(&self, ctx: &IoCtx, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        if !self.write {
            return Err(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let atomic = buf.len() <= PIPE_BUF;
        let done = Cell::new(0usize);
        let r = self.block_on(ctx, |st| {
            if st.readers == 0 {
                if done.get() == 0 && self.awaiting_reader(st) && !ctx.nonblock() {
                    return Step::Wait;
                }
                return Step::Done(if done.get() > 0 { Ok(done.get()) } else { Err(Errno::EPIPE) });
            }
            let space = st.capacity().saturating_sub(st.buf.len());
            let rest = &buf[done.get()..];
            if (atomic && space >= rest.len()) || (!atomic && space > 0) {
                let n = space.min(rest.len());
                st.buf.extend(&rest[..n]);
                // Pipe writes never fail for memory (as Linux's do not):
                // the memory monitor sees the data and acts on it.
                crate::limits::charge_heap_always(n as u64);
                done.set(done.get() + n);
                self.pipe.wake();
                if done.get() == buf.len() {
                    return Step::Done(Ok(done.get()));
                }
            }
            Step::Wait
        });
        match r {
            Err(e) if (e == Errno::EAGAIN || e == Errno::ERESTARTSYS) && done.get() > 0 => Ok(done.get()),
            r => r,
        }
    }

    fn seekable(&self) -> bool {
        false
    }

    fn stat(&self) -> Option<Stat> {
        if self.fifo {
            return None;
        }
        Some(Stat {
            st_dev: pipefs_dev(),
            st_ino: self.pipe.ino,
            st_nlink: 1,
            st_mode: S_IFIFO | 0o600,
            st_blksize: PIPE_BUF as i64,
            ..Default::default()
        })
    }

    fn size(&self) -> Result<u64, Errno> {
        Ok(0)
    }

    fn poll(&self) -> u32 {
        let g = self.pipe.lock();
        let mut r = 0;
        if self.read {
            if !g.buf.is_empty() {
                r |= POLLIN | POLLRDNORM;
            }
            if g.writers == 0 && !self.awaiting_writer(&g) {
                r |= POLLHUP;
            }
        }
        if self.write {
            if g.capacity().saturating_sub(g.buf.len()) >= PIPE_BUF.min(g.capacity()) {
                r |= POLLOUT | POLLWRNORM;
            }
            if g.readers == 0 {
                r |= POLLERR;
            }
        }
        r
    }

    fn wait_queue(&self) -> Option<&crate::wait::WaitQueue> {
        Some(&self.pipe.queue)
    }

    fn ioctl(&self, req: u64, _arg: u64, _input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        match req {
            abi::flags::FIONREAD => {
                let n = i32::try_from(self.pipe.queued()).unwrap_or(i32::MAX);
                Ok((0, Some(n.to_ne_bytes().to_vec())))
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn release(&self) {
        self.do_release();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::Interrupt;
    use std::time::Duration;

    fn ctx(irq: &Interrupt, flags: u32) -> IoCtx<'_> {
        IoCtx { flags, interrupt: irq }
    }

    #[test]
    fn read_write_eof_epipe() {
        let irq = Interrupt::default();
        let (r, w) = new_pair();
        assert_eq!(w.write(&ctx(&irq, 0), b"hello", 0), Ok(5));
        assert_eq!(r.poll() & POLLIN, POLLIN);
        assert_eq!(r.ioctl(abi::flags::FIONREAD, 0, &[]).unwrap().1.unwrap(), 5i32.to_ne_bytes().to_vec());
        let mut b = [0u8; 3];
        assert_eq!(r.read(&ctx(&irq, 0), &mut b, 0), Ok(3));
        assert_eq!(&b, b"hel");
        assert_eq!(r.read(&ctx(&irq, O_NONBLOCK), &mut b, 0), Ok(2));
        assert_eq!(r.read(&ctx(&irq, O_NONBLOCK), &mut b, 0), Err(Errno::EAGAIN));
        w.release();
        assert_eq!(r.read(&ctx(&irq, 0), &mut b, 0), Ok(0));
        assert_ne!(r.poll() & POLLHUP, 0);
        let (r, w) = new_pair();
        drop(r);
        assert_eq!(w.write(&ctx(&irq, 0), b"x", 0), Err(Errno::EPIPE));
        assert_ne!(w.poll() & POLLERR, 0);
        assert!(w.stat().is_some_and(|s| s.st_mode == S_IFIFO | 0o600));
        assert!(!w.seekable());
    }

    #[test]
    fn capacity_and_atomicity() {
        let irq = Interrupt::default();
        let nb = ctx(&irq, O_NONBLOCK);
        let (r, w) = new_pair();
        let big = vec![7u8; PIPE_CAPACITY + 100];
        assert_eq!(w.write(&nb, &big, 0), Ok(PIPE_CAPACITY));
        assert_eq!(w.poll() & POLLOUT, 0);
        assert_eq!(w.write(&nb, b"x", 0), Err(Errno::EAGAIN));
        let mut b = vec![0u8; 100];
        assert_eq!(r.read(&nb, &mut b, 0), Ok(100));
        // 100 bytes free: an atomic write of 200 must not be split.
        assert_eq!(w.write(&nb, &[1u8; 200], 0), Err(Errno::EAGAIN));
        assert_eq!(w.write(&nb, &[1u8; 100], 0), Ok(100));
    }

    #[test]
    fn blocking_read_is_woken_by_writer() {
        let (r, w) = new_pair();
        let t = std::thread::spawn(move || {
            let irq = Interrupt::default();
            let mut b = [0u8; 8];
            let n = r.read(&ctx(&irq, 0), &mut b, 0);
            (n, b)
        });
        std::thread::sleep(Duration::from_millis(50));
        let irq = Interrupt::default();
        assert_eq!(w.write(&ctx(&irq, 0), b"ping", 0), Ok(4));
        let (n, b) = t.join().unwrap();
        assert_eq!(n, Ok(4));
        assert_eq!(&b[..4], b"ping");
    }

    #[test]
    fn blocking_write_waits_for_room() {
        let (r, w) = new_pair();
        let irq = Interrupt::default();
        assert_eq!(w.write(&ctx(&irq, 0), &vec![0u8; PIPE_CAPACITY], 0), Ok(PIPE_CAPACITY));
        let t = std::thread::spawn(move || {
            let irq = Interrupt::default();
            w.write(&ctx(&irq, 0), &[1u8; 10_000], 0)
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut b = vec![0u8; 65536];
        let mut got = 0;
        while got < PIPE_CAPACITY + 10_000 {
            got += r.read(&ctx(&irq, 0), &mut b, 0).unwrap();
        }
        assert_eq!(t.join().unwrap(), Ok(10_000));
    }

    #[test]
    fn interrupt_blocked_read_and_write() {
        let irq = Arc::new(Interrupt::default());
        let (r, w) = new_pair();
        let i2 = irq.clone();
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 8];
            r.read(&ctx(&i2, 0), &mut b, 0)
        });
        std::thread::sleep(Duration::from_millis(50));
        irq.interrupt();
        assert_eq!(t.join().unwrap(), Err(Errno::ERESTARTSYS));
        drop(w);

        let irq = Arc::new(Interrupt::default());
        let (_r, w) = new_pair();
        let i2 = irq.clone();
        let t = std::thread::spawn(move || w.write(&ctx(&i2, 0), &vec![0u8; PIPE_CAPACITY + 5], 0));
        std::thread::sleep(Duration::from_millis(50));
        irq.interrupt();
        // Partly written before the interrupt: the count, not an error.
        assert_eq!(t.join().unwrap(), Ok(PIPE_CAPACITY));
    }

    #[test]
    fn fifo_open_semantics() {
        let irq = Interrupt::default();
        let p = Pipe::new();
        assert_eq!(p.open_fifo(O_WRONLY | O_NONBLOCK).err(), Some(Errno::ENXIO));
        let r = p.open_fifo(O_RDONLY | O_NONBLOCK).unwrap();
        // No writer yet: a non-blocking read sees EOF, poll no POLLHUP.
        let mut b = [0u8; 4];
        assert_eq!(r.read(&ctx(&irq, O_NONBLOCK), &mut b, 0), Ok(0));
        assert_eq!(r.poll() & POLLHUP, 0);
        assert!(r.stat().is_none());
        let p2 = p.clone();
        let t = std::thread::spawn(move || {
            let irq = Interrupt::default();
            let r = p2.open_fifo(O_RDONLY).unwrap();
            let mut b = [0u8; 4];
            // Blocks until a writer comes and writes (not EOF at once).
            r.read(&ctx(&irq, 0), &mut b, 0).map(|n| b[..n].to_vec())
        });
        std::thread::sleep(Duration::from_millis(50));
        let w = p.open_fifo(O_WRONLY).unwrap();
        assert_eq!(w.write(&ctx(&irq, 0), b"abc", 0), Ok(3));
        assert_eq!(t.join().unwrap(), Ok(b"abc".to_vec()));
        drop(w);
        // The writer came and went: now EOF and POLLHUP.
        assert_eq!(r.read(&ctx(&irq, 0), &mut b, 0), Ok(0));
        assert_ne!(r.poll() & POLLHUP, 0);
        drop(r);
        assert_eq!(p.queued(), 0);
        let rw = p.open_fifo(O_RDWR).unwrap();
        assert_eq!(rw.write(&ctx(&irq, 0), b"z", 0), Ok(1));
        assert_eq!(rw.read(&ctx(&irq, 0), &mut b, 0), Ok(1));
    }

    #[test]
    fn fifo_partner_open_first_then_gone() {
        // The writer opens first (its open returned at once in Linux
        // because the reader was on its way), then closes before the
        // reader looks: the reader sees a hangup, not an endless wait.
        let irq = Interrupt::default();
        let p = Pipe::new();
        let w = p.open_fifo(O_RDWR).unwrap();
        let w2 = p.open_fifo(O_WRONLY).unwrap();
        drop(w);
        let r = p.open_fifo(O_RDONLY).unwrap();
        drop(w2);
        let mut b = [0u8; 4];
        assert_ne!(r.poll() & POLLHUP, 0);
        assert_eq!(r.read(&ctx(&irq, 0), &mut b, 0), Ok(0));
        // The same for a writer whose reader was there first and left.
        let w = p.open_fifo(O_WRONLY).unwrap();
        drop(r);
        assert_ne!(w.poll() & POLLERR, 0);
        assert_eq!(w.write(&ctx(&irq, 0), b"x", 0), Err(Errno::EPIPE));
    }

    #[test]
    fn peek_consume_and_room() {
        let irq = Interrupt::default();
        let (r, w) = new_pair();
        let re = r.as_any().downcast_ref::<PipeEnd>().unwrap();
        let we = w.as_any().downcast_ref::<PipeEnd>().unwrap();
        assert!(re.same_pipe(we));
        assert_eq!(re.peek(&ctx(&irq, O_NONBLOCK), &mut [0u8; 4]), Err(Errno::EAGAIN));
        assert_eq!(we.wait_room(&ctx(&irq, 0)), Ok(PIPE_CAPACITY));
        assert_eq!(w.write(&ctx(&irq, 0), b"hello", 0), Ok(5));
        let mut b = [0u8; 3];
        assert_eq!(re.peek(&ctx(&irq, 0), &mut b), Ok(3));
        assert_eq!(re.peek(&ctx(&irq, 0), &mut b), Ok(3));
        assert_eq!(&b, b"hel");
        re.consume(2);
        assert_eq!(re.pipe().queued(), 3);
        assert_eq!(we.wait_room(&ctx(&irq, 0)), Ok(PIPE_CAPACITY - 3));
        assert_eq!(we.peek(&ctx(&irq, 0), &mut b), Err(Errno::EBADF));
        drop(r);
        assert_eq!(we.wait_room(&ctx(&irq, 0)), Err(Errno::EPIPE));
    }
}
