//! A host descriptor passed through as-is: the guest's stdin, stdout and
//! stderr are runsc-lite's own descriptors, never reopened by path, so
//! the file offset, O_APPEND and terminal state stay the caller's.
//!
//! Streams (pipes, terminals, sockets) use read(2)/write(2) and wait for
//! readiness with poll(2) on the descriptor plus the thread's wake-up pipe
//! that the task's interrupt signals (`hostwait`), so a blocked read ends
//! with ERESTARTSYS as soon as the Sentry interrupts the task.
//!
//! Seekable descriptors (regular files, /dev/null) share the host's file
//! offset: reads and writes use read(2)/write(2), so two descriptors of
//! one host open file (`2>&1`) interleave as they do natively and the
//! caller finds the offset where the guest left it. The VFS keeps its own
//! position, counted from where the host offset stood when the file was
//! passed in; whenever the position the VFS asks for is not where the last
//! operation ended (an lseek, a pread), the host offset is moved there
//! first.

use crate::hostfs::fstat_fd;
use crate::inode::FileOps;
use crate::pipe::PIPE_BUF;
use crate::util::{last_errno, lock};
use crate::wait::IoCtx;
use abi::flags::{FIONREAD, TCGETS, TCSETS, TCSETSF, TCSETSW, TIOCGPGRP, TIOCGWINSZ, TIOCSWINSZ};
use abi::{Errno, Stat};
use std::any::Any;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

/// An open host descriptor.
pub struct HostFdFile {
    fd: OwnedFd,
    /// Host offset when the descriptor was passed in (seekable only).
    base: Option<i64>,
    /// Where the last read/write left the VFS position (seekable only),
    /// and the lock that keeps seek + transfer together.
    next: Mutex<u64>,
    /// The sandbox's host-descriptor budget, when this is a host file the
    /// guest opened (a FIFO on a bind mount) rather than the caller's stdio.
    _charge: Option<crate::hostfs_fds::FileCharge>,
}

impl HostFdFile {
    /// Wrap `fd` (a descriptor the caller gives up, e.g. a dup of 0/1/2).
    // The name the Sentry calls; it returns the trait object it installs.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(fd: OwnedFd) -> Arc<dyn FileOps> {
        Arc::new(Self::from_fd(fd))
    }

    /// As [`HostFdFile::new`], counted against a host-descriptor budget.
    pub(crate) fn new_charged(fd: OwnedFd, charge: crate::hostfs_fds::FileCharge) -> Arc<dyn FileOps> {
        let mut f = Self::from_fd(fd);
        f._charge = Some(charge);
        Arc::new(f)
    }

    /// As [`HostFdFile::new`], typed.
    pub fn from_fd(fd: OwnedFd) -> HostFdFile {
        // SAFETY: lseek on a descriptor we own; SEEK_CUR by 0 changes nothing.
        let pos = unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_CUR) };
        HostFdFile { fd, base: (pos >= 0).then_some(pos), next: Mutex::new(0), _charge: None }
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// fstat of the host descriptor.
    pub fn host_stat(&self) -> Result<Stat, Errno> {
        fstat_fd(self.raw())
    }

    /// poll(2) the descriptor for `events` without waiting.
    fn ready(&self, events: i16) -> i16 {
        let mut p = libc::pollfd { fd: self.raw(), events, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        if r < 0 {
            0
        } else {
            p.revents
        }
    }

    /// Wait until the descriptor reports `events` (or an error/hang-up),
    /// or the task is interrupted (ERESTARTSYS).
    fn wait(&self, ctx: &IoCtx, events: i16) -> Result<(), Errno> {
        crate::hostwait::wait_fd(
            self.raw(),
            events,
            ctx.interrupt,
            None,
            &|_| {},
            &|| true,
            crate::hostwait::WaitLength::Open,
        )
    }

    /// Put the host offset at VFS position `off` if the last transfer
    /// did not end there.
    fn seek_to(&self, base: i64, next: &mut u64, off: u64) -> Result<(), Errno> {
        if *next == off {
            return Ok(());
        }
        let to = i64::try_from(off).ok().and_then(|o| o.checked_add(base)).ok_or(Errno::EINVAL)?;
        // SAFETY: lseek on a descriptor we own.
        if unsafe { libc::lseek(self.raw(), to, libc::SEEK_SET) } < 0 {
            return Err(last_errno());
        }
        *next = off;
        Ok(())
    }

    fn sys_read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let n = unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = last_errno();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }

    fn sys_write(&self, buf: &[u8]) -> Result<usize, Errno> {
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let n = unsafe { libc::write(self.raw(), buf.as_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = last_errno();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }

    fn ioctl_out(&self, req: u64, len: usize) -> Result<(u64, Option<Vec<u8>>), Errno> {
        let mut out = vec![0u8; len];
        // SAFETY: `out` has room for the `len` bytes this request writes.
        let r = unsafe { libc::ioctl(self.raw(), req as _, out.as_mut_ptr()) };
        if r < 0 {
            return Err(last_errno());
        }
        Ok((r as u64, Some(out)))
    }

    fn ioctl_in(&self, req: u64, input: &[u8], len: usize) -> Result<(u64, Option<Vec<u8>>), Errno> {
        let arg = input.get(..len).ok_or(Errno::EFAULT)?;
        // SAFETY: `arg` holds the `len` bytes this request reads; the host does not write it.
        let r = unsafe { libc::ioctl(self.raw(), req as _, arg.as_ptr()) };
        if r < 0 {
            return Err(last_errno());
        }
        Ok((r as u64, None))
    }
}

const TERMIOS_LEN: usize = 36;
const WINSIZE_LEN: usize = 8;

impl FileOps for HostFdFile {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        if let Some(base) = self.base {
            let mut next = lock(&self.next);
            self.seek_to(base, &mut next, off)?;
            let n = self.sys_read(buf)?;
            *next = off + n as u64;
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let want = libc::POLLIN;
        loop {
            let rev = self.ready(want);
            if rev != 0 {
                match self.sys_read(buf) {
                    Err(Errno::EAGAIN) => {}
                    r => return r,
                }
            }
            if ctx.nonblock() {
                return Err(Errno::EAGAIN);
            }
            self.wait(ctx, want)?;
        }
    }

    fn write(&self, ctx: &IoCtx, buf: &[u8], off: u64) -> Result<usize, Errno> {
        if let Some(base) = self.base {
            let mut next = lock(&self.next);
            self.seek_to(base, &mut next, off)?;
            let n = self.sys_write(buf)?;
            *next = off + n as u64;
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        // POLLOUT promises room for PIPE_BUF bytes: write that much at a
        // time so no write blocks where an interrupt cannot reach it. A
        // write of at most PIPE_BUF bytes stays one (atomic) write.
        let mut done = 0;
        while done < buf.len() {
            let chunk = &buf[done..buf.len().min(done + PIPE_BUF)];
            let rev = self.ready(libc::POLLOUT);
            if rev & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                match self.sys_write(chunk) {
                    Ok(n) => {
                        done += n;
                        continue;
                    }
                    Err(Errno::EAGAIN) => {}
                    Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
                }
            }
            if ctx.nonblock() {
                return if done > 0 { Ok(done) } else { Err(Errno::EAGAIN) };
            }
            if let Err(e) = self.wait(ctx, libc::POLLOUT) {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
        Ok(done)
    }

    fn seekable(&self) -> bool {
        self.base.is_some()
    }

    fn stat(&self) -> Option<Stat> {
        self.host_stat().ok()
    }

    fn size(&self) -> Result<u64, Errno> {
        let st = self.host_stat()?;
        let base = self.base.unwrap_or(0);
        Ok(st.st_size.saturating_sub(base).max(0) as u64)
    }

    fn poll(&self) -> u32 {
        self.ready(libc::POLLIN | libc::POLLOUT | libc::POLLPRI) as u16 as u32
    }

    fn needs_polling(&self) -> bool {
        true
    }

    fn ioctl(&self, req: u64, _arg: u64, input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        match req {
            TCGETS => self.ioctl_out(req, TERMIOS_LEN),
            TCSETS | TCSETSW | TCSETSF => self.ioctl_in(req, input, TERMIOS_LEN),
            TIOCGWINSZ => self.ioctl_out(req, WINSIZE_LEN),
            TIOCSWINSZ => self.ioctl_in(req, input, WINSIZE_LEN),
            TIOCGPGRP | FIONREAD => self.ioctl_out(req, 4),
            _ => Err(Errno::ENOTTY),
        }
    }

    fn fsync(&self) -> Result<(), Errno> {
        // SAFETY: fsync on a descriptor we own.
        if unsafe { libc::fsync(self.raw()) } < 0 {
            return Err(last_errno());
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::Interrupt;
    use abi::flags::O_NONBLOCK;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::FromRawFd;
    use std::time::Duration;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for two descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both were just created and are ours.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn ctx(irq: &Interrupt, flags: u32) -> IoCtx<'_> {
        IoCtx { flags, interrupt: irq }
    }

    #[test]
    fn host_pipe_stream() {
        let (r, w) = pipe();
        let r = HostFdFile::new(r);
        let w = HostFdFile::new(w);
        assert!(!r.seekable() && !w.seekable());
        assert_eq!(r.stat().unwrap().st_mode & abi::flags::S_IFMT, abi::flags::S_IFIFO);
        let irq = Interrupt::default();
        let mut b = [0u8; 8];
        assert_eq!(r.read(&ctx(&irq, O_NONBLOCK), &mut b, 0), Err(Errno::EAGAIN));
        assert_eq!(r.poll() & libc::POLLIN as u32, 0);
        assert_eq!(w.write(&ctx(&irq, 0), b"abc", 0), Ok(3));
        assert_ne!(r.poll() & libc::POLLIN as u32, 0);
        let (_, out) = r.ioctl(FIONREAD, 0, &[]).unwrap();
        assert_eq!(out.unwrap(), 3i32.to_ne_bytes().to_vec());
        assert_eq!(r.read(&ctx(&irq, 0), &mut b, 0), Ok(3));
        assert_eq!(r.ioctl(TCGETS, 0, &[]).err(), Some(Errno::ENOTTY));
        assert_eq!(r.ioctl(0x1234, 0, &[]).err(), Some(Errno::ENOTTY));
        // A big write goes through in pieces while a reader drains.
        let big = vec![5u8; 300_000];
        let t = std::thread::spawn(move || {
            let irq = Interrupt::default();
            let mut got = 0;
            let mut b = vec![0u8; 65536];
            while got < 300_000 {
                got += r.read(&ctx(&irq, 0), &mut b, 0).unwrap();
            }
            (got, r)
        });
        assert_eq!(w.write(&ctx(&irq, 0), &big, 0), Ok(300_000));
        let (got, r) = t.join().unwrap();
        assert_eq!(got, 300_000);
        drop(w);
        assert_eq!(r.read(&ctx(&irq, 0), &mut b, 0), Ok(0));
    }

    #[test]
    fn blocked_read_is_interrupted() {
        let (r, _w) = pipe();
        let r = HostFdFile::new(r);
        let irq = Arc::new(Interrupt::default());
        let i2 = irq.clone();
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 8];
            r.read(&ctx(&i2, 0), &mut b, 0)
        });
        std::thread::sleep(Duration::from_millis(50));
        irq.interrupt();
        assert_eq!(t.join().unwrap(), Err(Errno::ERESTARTSYS));
    }

    #[test]
    fn write_to_closed_pipe_is_epipe() {
        let (r, w) = pipe();
        drop(r);
        let w = HostFdFile::new(w);
        let irq = Interrupt::default();
        assert_eq!(w.write(&ctx(&irq, 0), b"x", 0), Err(Errno::EPIPE));
    }

    #[test]
    fn seekable_file_shares_host_offset() {
        let td = crate::hostfs::tests::TempDir::new("hostfd");
        let path = td.0.join("out");
        let mut host =
            std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        host.write_all(b"head:").unwrap();
        let dup = host.try_clone().unwrap();
        let f = HostFdFile::new(OwnedFd::from(dup));
        assert!(f.seekable());
        let irq = Interrupt::default();
        // The guest's position 0 is where the caller left the offset.
        assert_eq!(f.write(&ctx(&irq, 0), b"guest", 0), Ok(5));
        assert_eq!(f.size(), Ok(5));
        // The caller continues after the guest's output.
        host.write_all(b":tail").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"head:guest:tail");
        // An lseek in the guest moves the host offset.
        let mut b = [0u8; 5];
        assert_eq!(f.read(&ctx(&irq, 0), &mut b, 0), Ok(5));
        assert_eq!(&b, b"guest");
        assert_eq!(host.stream_position().unwrap(), 10);
        host.seek(SeekFrom::Start(0)).unwrap();
        let mut all = String::new();
        host.read_to_string(&mut all).unwrap();
        assert_eq!(all, "head:guest:tail");
        let st = f.stat().unwrap();
        assert_eq!(st.st_size, 15);
    }
}
