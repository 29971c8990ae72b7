//! Filling the memory file from a host file inside the host kernel: the
//! file's pages are spliced into a pipe and from the pipe into the memfd.
//! Reading the file through the Sentry's mapping of the memory file costs
//! a host page fault per fresh page besides the copy; the splice costs
//! neither (python3's 6.8 MB: 2.7 ms against 5.2 ms, natively, on these
//! machines).
//!
//! The pipes are made at boot (before the Sentry's seccomp filter, which
//! has splice but not pipe2), a few, each taken out of the pool for one
//! fill so that no lock is held across the host's file read.

use crate::locking::lock;
use abi::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// Pipes kept: one per fill running at once (more fills fall back to
/// reading through the mapping).
const PIPES: usize = 4;
/// Asked of F_SETPIPE_SZ: one splice round moves up to this much.
const PIPE_BYTES: i32 = 1 << 20;

struct SplicePipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Its capacity, what one round asks for.
    bytes: usize,
}

/// The pool. `free` is a leaf lock (sentry::locking, item 8), held only
/// to take a pipe out or put one back, never across a splice.
#[derive(Default)]
pub struct SplicePipes {
    free: Mutex<Vec<SplicePipe>>,
}

/// What a splice fill came to.
pub enum SpliceFill {
    /// All `len` bytes are in the memory file.
    Whole,
    /// The file ended first (it shrank): the range holds a short copy.
    Short,
    /// Not possible here (no free pipe, or the file cannot be spliced):
    /// nothing was written, fill another way.
    Unavailable,
}

impl SplicePipes {
    /// Make the pool's pipes (at boot; a failure leaves the pool short).
    pub fn new() -> SplicePipes {
        let mut free = Vec::new();
        for _ in 0..PIPES {
            let mut fds = [0; 2];
            // SAFETY: pipe2 writes two descriptors into `fds`.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
                break;
            }
            // SAFETY: both descriptors were just made and are owned by us.
            let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            // SAFETY: fcntl on a pipe we own; F_GETPIPE_SZ reads its size.
            let bytes = unsafe {
                libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES);
                libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)
            };
            let Ok(bytes) = usize::try_from(bytes) else { break };
            if bytes == 0 {
                break;
            }
            free.push(SplicePipe { read, write, bytes });
        }
        SplicePipes { free: Mutex::new(free) }
    }

    /// Copy `len` bytes of host file `src` from offset 0 into the memfd
    /// `dst` at `dst_off`. The destination must be pages nothing else uses
    /// yet (a fresh allocation).
    pub fn fill(&self, src: RawFd, dst: RawFd, dst_off: u64, len: u64) -> Result<SpliceFill, Errno> {
        let Some(pipe) = lock(&self.free).pop() else { return Ok(SpliceFill::Unavailable) };
        let r = copy(&pipe, src, dst, dst_off, len);
        if r.is_err() || matches!(r, Ok(SpliceFill::Unavailable)) {
            // Whatever a failed round left in the pipe must not reach the
            // next fill.
            drain(&pipe);
        }
        lock(&self.free).push(pipe);
        r
    }
}

fn copy(pipe: &SplicePipe, src: RawFd, dst: RawFd, dst_off: u64, len: u64) -> Result<SpliceFill, Errno> {
    let mut in_off: libc::loff_t = 0;
    let mut out_off = libc::loff_t::try_from(dst_off).map_err(|_| Errno::EINVAL)?;
    let len = libc::loff_t::try_from(len).map_err(|_| Errno::EINVAL)?;
    while in_off < len {
        let want = usize::try_from(len - in_off).unwrap_or(usize::MAX).min(pipe.bytes);
        // SAFETY: splice between descriptors; the offset pointer is ours.
        let n = unsafe {
            libc::splice(src, &mut in_off, pipe.write.as_raw_fd(), std::ptr::null_mut(), want, libc::SPLICE_F_MOVE)
        };
        if n == 0 {
            return Ok(SpliceFill::Short);
        }
        if n < 0 {
            return match Errno::from(std::io::Error::last_os_error()) {
                Errno::EINTR => continue,
                // The host file cannot be spliced (its filesystem has no
                // splice_read), or the pool's pipe refused: read instead,
                // if nothing was copied yet.
                Errno::EINVAL | Errno::EAGAIN if in_off == 0 => Ok(SpliceFill::Unavailable),
                e => Err(e),
            };
        }
        let mut left = n as usize;
        while left > 0 {
            // SAFETY: as above; `out_off` is ours and inside the memfd,
            // whose pages `[dst_off, dst_off+len)` belong to this fill.
            let k = unsafe {
                libc::splice(pipe.read.as_raw_fd(), std::ptr::null_mut(), dst, &mut out_off, left, libc::SPLICE_F_MOVE)
            };
            if k < 0 {
                match Errno::from(std::io::Error::last_os_error()) {
                    Errno::EINTR => continue,
                    e => return Err(e),
                }
            }
            if k == 0 {
                return Err(Errno::EIO);
            }
            left -= k as usize;
        }
    }
    Ok(SpliceFill::Whole)
}

/// Read out and drop whatever is in the pipe (it is non-blocking).
fn drain(pipe: &SplicePipe) {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into our own buffer.
        let n = unsafe { libc::read(pipe.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn memfd(len: u64) -> OwnedFd {
        // SAFETY: memfd_create with a valid name; the fd is ours.
        let fd = unsafe { OwnedFd::from_raw_fd(libc::memfd_create(c"splice-test".as_ptr(), libc::MFD_CLOEXEC)) };
        // SAFETY: ftruncate of our own memfd.
        assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), len as i64) }, 0);
        fd
    }

    fn pread(fd: &OwnedFd, len: usize, off: u64) -> Vec<u8> {
        let mut v = vec![0u8; len];
        // SAFETY: reading into our own buffer.
        let n = unsafe { libc::pread(fd.as_raw_fd(), v.as_mut_ptr().cast(), len, off as i64) };
        assert_eq!(n, len as isize);
        v
    }

    fn host_file(bytes: &[u8]) -> std::fs::File {
        let dir = std::env::temp_dir().join(format!("splicefill-{}-{}", std::process::id(), bytes.len()));
        let mut f = std::fs::File::create(&dir).unwrap();
        f.write_all(bytes).unwrap();
        let f = std::fs::File::open(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        f
    }

    #[test]
    fn copies_a_file_larger_than_the_pipe_at_an_offset() {
        let pipes = SplicePipes::new();
        let data: Vec<u8> = (0..3 * (1 << 20) + 123).map(|i: u32| (i % 251) as u8).collect();
        let src = host_file(&data);
        let dst = memfd(8 << 20);
        let r = pipes.fill(src.as_raw_fd(), dst.as_raw_fd(), 1 << 20, data.len() as u64).unwrap();
        assert!(matches!(r, SpliceFill::Whole));
        assert_eq!(pread(&dst, data.len(), 1 << 20), data);
        // The pipe went back to the pool, empty: a second fill is exact too.
        let r = pipes.fill(src.as_raw_fd(), dst.as_raw_fd(), 0, 4096).unwrap();
        assert!(matches!(r, SpliceFill::Whole));
        assert_eq!(pread(&dst, 4096, 0), data[..4096]);
    }

    #[test]
    fn a_file_shorter_than_asked_is_short() {
        let pipes = SplicePipes::new();
        let src = host_file(b"only this");
        let dst = memfd(1 << 20);
        let r = pipes.fill(src.as_raw_fd(), dst.as_raw_fd(), 0, 4096).unwrap();
        assert!(matches!(r, SpliceFill::Short));
        // The next fill starts from an empty pipe.
        let r = pipes.fill(src.as_raw_fd(), dst.as_raw_fd(), 8192, 9).unwrap();
        assert!(matches!(r, SpliceFill::Whole));
        assert_eq!(pread(&dst, 9, 8192), b"only this");
    }

    #[test]
    fn what_cannot_be_spliced_is_left_to_the_caller() {
        let pipes = SplicePipes::new();
        let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
        let dst = memfd(1 << 20);
        let r = pipes.fill(dir.as_raw_fd(), dst.as_raw_fd(), 0, 4096).unwrap();
        assert!(matches!(r, SpliceFill::Unavailable));
        // A bad descriptor is an error, not a hang.
        assert!(pipes.fill(-1, dst.as_raw_fd(), 0, 4096).is_err());
    }

    #[test]
    fn with_every_pipe_in_use_the_fill_is_unavailable() {
        let pipes = SplicePipes::new();
        let taken: Vec<_> = std::iter::from_fn(|| lock(&pipes.free).pop()).collect();
        assert!(!taken.is_empty());
        let src = host_file(b"x");
        let dst = memfd(1 << 20);
        assert!(matches!(pipes.fill(src.as_raw_fd(), dst.as_raw_fd(), 0, 1).unwrap(), SpliceFill::Unavailable));
    }
}
