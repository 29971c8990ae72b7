//! Extended attributes of host files: the f*xattr calls on a descriptor
//! hostfs holds (never a path, as every other host access).

use crate::hostfs_fds::cvt;
use crate::util::last_errno;
use crate::xattr::{XATTR_LIST_MAX, XATTR_SIZE_MAX};
use abi::Errno;
use std::ffi::CString;
use std::os::fd::RawFd;

fn cname(name: &[u8]) -> Result<CString, Errno> {
    CString::new(name).map_err(|_| Errno::EINVAL)
}

/// Retry calls a Sentry-internal signal interrupted.
fn retry_isize(mut f: impl FnMut() -> isize) -> Result<usize, Errno> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r as usize);
        }
        match last_errno() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// What a first read of a value or list asks room for: most are short
/// or absent, and the host kernel allocates (and a fresh buffer here
/// zeroes) as much as the size passed, 64 KiB for the largest.
const FIRST_TRY: usize = 256;

/// Read into a buffer of `FIRST_TRY`, then, when that is too small, of
/// the size the host reports (`call(ptr, 0)`), up to `max`.
fn read_sized(max: usize, mut call: impl FnMut(*mut libc::c_void, usize) -> isize) -> Result<Vec<u8>, Errno> {
    let mut small = [0u8; FIRST_TRY];
    match retry_isize(|| call(small.as_mut_ptr().cast(), small.len())) {
        Ok(n) => return Ok(small.get(..n).unwrap_or_default().to_vec()),
        Err(Errno::ERANGE) => {}
        Err(e) => return Err(e),
    }
    // It may grow between asking and reading: a few tries, then the most
    // there can be.
    for _ in 0..3 {
        let want = retry_isize(|| call(std::ptr::null_mut(), 0))?.min(max);
        let mut buf = vec![0u8; want];
        match retry_isize(|| call(buf.as_mut_ptr().cast(), buf.len())) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    let mut buf = vec![0u8; max];
    let n = retry_isize(|| call(buf.as_mut_ptr().cast(), buf.len()))?;
    buf.truncate(n);
    Ok(buf)
}

pub(crate) fn get(fd: RawFd, name: &[u8]) -> Result<Vec<u8>, Errno> {
    let name = cname(name)?;
    // SAFETY: `name` is a C string; `read_sized` passes a pointer and a
    // length that describe a live buffer (or null and 0, which asks the size).
    read_sized(XATTR_SIZE_MAX, |p, len| unsafe { libc::fgetxattr(fd, name.as_ptr(), p, len) })
}

pub(crate) fn list(fd: RawFd) -> Result<Vec<Vec<u8>>, Errno> {
    // SAFETY: as in `get`.
    let buf = read_sized(XATTR_LIST_MAX, |p, len| unsafe { libc::flistxattr(fd, p.cast(), len) })?;
    Ok(buf.split(|&b| b == 0).filter(|s| !s.is_empty()).map(<[u8]>::to_vec).collect())
}

pub(crate) fn set(fd: RawFd, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
    let name = cname(name)?;
    // SAFETY: `name` is a C string; the pointer and length describe `value`.
    cvt(unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), flags as libc::c_int) })?;
    Ok(())
}

pub(crate) fn remove(fd: RawFd, name: &[u8]) -> Result<(), Errno> {
    let name = cname(name)?;
    // SAFETY: `name` is a C string.
    cvt(unsafe { libc::fremovexattr(fd, name.as_ptr()) })?;
    Ok(())
}
