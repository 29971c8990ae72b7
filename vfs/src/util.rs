//! Small helpers shared by the filesystems of this crate.

use abi::flags::{NAME_MAX, S_IFDIR, S_IFMT};
use abi::{Errno, Stat};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Check that `name` is one path component: not empty, not "." or "..",
/// without '/' or NUL, at most NAME_MAX bytes.
pub(crate) fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Linux's userspace dev_t encoding (glibc's gnu_dev_makedev).
pub const fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (major as u64, minor as u64);
    (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & !0xff) << 12) | ((ma & !0xfff) << 32)
}

/// A fresh anonymous device number (major 0), as Linux gives to tmpfs,
/// pipefs and other filesystems without a backing device.
pub(crate) fn anon_dev() -> u64 {
    static NEXT: AtomicU32 = AtomicU32::new(0x40);
    makedev(0, NEXT.fetch_add(1, Ordering::Relaxed) & 0xf_ffff)
}

pub(crate) fn is_dir(st: &Stat) -> bool {
    st.st_mode & S_IFMT == S_IFDIR
}

/// The errno of the last failed libc call.
pub(crate) fn last_errno() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

/// A lock was poisoned: a thread panicked while holding it. The Sentry's
/// failure policy ends the sandbox at the panic, before any unwinding, so
/// this only happens without it (unit tests); it is never recovered from
/// (sentry::locking).
#[cold]
pub fn poisoned() -> ! {
    panic!("a lock is poisoned: a thread panicked while holding it")
}

/// Lock a mutex (a poisoned one is a bug: [`poisoned`]).
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|_| poisoned())
}

pub(crate) fn read<T: ?Sized>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|_| poisoned())
}

pub(crate) fn write<T: ?Sized>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|_| poisoned())
}

pub(crate) fn wait<'a, T>(c: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    c.wait(g).unwrap_or_else(|_| poisoned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(check_name(b""), Err(Errno::ENOENT));
        assert_eq!(check_name(b"."), Err(Errno::EINVAL));
        assert_eq!(check_name(b".."), Err(Errno::EINVAL));
        assert_eq!(check_name(b"a/b"), Err(Errno::EINVAL));
        assert_eq!(check_name(b"a\0"), Err(Errno::EINVAL));
        assert_eq!(check_name(&[b'x'; 256]), Err(Errno::ENAMETOOLONG));
        assert_eq!(check_name(b"..."), Ok(()));
    }

    #[test]
    fn devs() {
        assert_eq!(makedev(1, 3), 0x103);
        assert_eq!(makedev(136, 0), 0x8800);
        assert_eq!(makedev(0, 0x123), 0x10_0023);
    }
}
