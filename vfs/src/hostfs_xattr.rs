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

pub(crate) fn get(fd: RawFd, name: &[u8]) -> Result<Vec<u8>, Errno> {
    let name = cname(name)?;
    let mut buf = vec![0u8; XATTR_SIZE_MAX];
    // SAFETY: `name` is a C string; the pointer and length describe `buf`.
    let n = retry_isize(|| unsafe { libc::fgetxattr(fd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })?;
    buf.truncate(n);
    Ok(buf)
}

pub(crate) fn list(fd: RawFd) -> Result<Vec<Vec<u8>>, Errno> {
    let mut buf = vec![0u8; XATTR_LIST_MAX];
    // SAFETY: the pointer and length describe `buf`.
    let n = retry_isize(|| unsafe { libc::flistxattr(fd, buf.as_mut_ptr().cast(), buf.len()) })?;
    Ok(buf.get(..n).unwrap_or_default().split(|&b| b == 0).filter(|s| !s.is_empty()).map(<[u8]>::to_vec).collect())
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
