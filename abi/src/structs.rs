//! `#[repr(C)]` structs with the exact x86-64 layout the guest sees.

use crate::Pod;
use std::time::Duration;

/// `struct stat` on x86-64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub pad0: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    pub reserved: [i64; 3],
}
// SAFETY: repr(C), all integer fields, padding made explicit (pad0).
unsafe impl Pod for Stat {}

/// `struct timespec`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}
// SAFETY: repr(C), two i64, no padding.
unsafe impl Pod for Timespec {}

/// Linux's largest time value (`KTIME_MAX`, about 292 years), in
/// nanoseconds. Longer timeouts and timers are clamped to it, as Linux's
/// `timespec64_to_ktime` clamps them: "forever" stays a number that any
/// clock reading can be added to.
pub const KTIME_MAX_NS: u64 = i64::MAX as u64;

impl Timespec {
    /// Nanoseconds, clamped to [`KTIME_MAX_NS`]; None when the value is
    /// not a valid timespec (negative, or nsec out of range: EINVAL).
    pub fn to_nanos(&self) -> Option<u64> {
        if self.tv_sec < 0 || !(0..1_000_000_000).contains(&self.tv_nsec) {
            return None;
        }
        Some((self.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(self.tv_nsec as u64).min(KTIME_MAX_NS))
    }

    /// [`Timespec::to_nanos`] as a Duration.
    pub fn to_duration(&self) -> Option<Duration> {
        self.to_nanos().map(Duration::from_nanos)
    }

    pub fn from_nanos(ns: u64) -> Self {
        Timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 }
    }

    /// `d` as a timespec (seconds saturating at i64::MAX).
    pub fn from_duration(d: Duration) -> Self {
        Timespec { tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), tv_nsec: i64::from(d.subsec_nanos()) }
    }
}

/// `struct timeval`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}
// SAFETY: repr(C), two i64, no padding.
unsafe impl Pod for Timeval {}

impl Timeval {
    /// The duration, clamped to [`KTIME_MAX_NS`]; None when the value is
    /// not a valid timeval (negative, or usec out of range: EINVAL).
    pub fn to_duration(&self) -> Option<Duration> {
        if !(0..1_000_000).contains(&self.tv_usec) {
            return None;
        }
        Timespec { tv_sec: self.tv_sec, tv_nsec: self.tv_usec * 1000 }.to_duration()
    }

    /// `d` as a timeval, truncated to microseconds (seconds saturating at
    /// i64::MAX).
    pub fn from_duration(d: Duration) -> Self {
        Timeval { tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), tv_usec: i64::from(d.subsec_micros()) }
    }
}

/// `struct timezone`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Timezone {
    pub tz_minuteswest: i32,
    pub tz_dsttime: i32,
}
// SAFETY: repr(C), two i32, no padding.
unsafe impl Pod for Timezone {}

/// `struct utsname`: six fields of 65 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Utsname {
    pub sysname: [u8; 65],
    pub nodename: [u8; 65],
    pub release: [u8; 65],
    pub version: [u8; 65],
    pub machine: [u8; 65],
    pub domainname: [u8; 65],
}
// SAFETY: repr(C) of byte arrays only, no padding.
unsafe impl Pod for Utsname {}

/// Copy `s` into a NUL-terminated fixed field, truncating if need be.
pub fn fill_cstr<const N: usize>(field: &mut [u8; N], s: &[u8]) {
    let n = s.len().min(N.saturating_sub(1));
    field[..n].copy_from_slice(&s[..n]);
    for b in &mut field[n..] {
        *b = 0;
    }
}

/// `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Iovec {
    pub base: u64,
    pub len: u64,
}
// SAFETY: repr(C), two u64.
unsafe impl Pod for Iovec {}

/// `struct rlimit`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}
// SAFETY: repr(C), two u64.
unsafe impl Pod for Rlimit {}

/// `struct rusage`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Rusage {
    pub ru_utime: Timeval,
    pub ru_stime: Timeval,
    pub rest: [i64; 14],
}
// SAFETY: repr(C), all i64.
unsafe impl Pod for Rusage {}

/// `struct tms`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Tms {
    pub tms_utime: i64,
    pub tms_stime: i64,
    pub tms_cutime: i64,
    pub tms_cstime: i64,
}
// SAFETY: repr(C), all i64.
unsafe impl Pod for Tms {}

/// `struct sysinfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub pad: u16,
    pub pad2: u32,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
    pub pad3: u32,
}
// SAFETY: repr(C), padding explicit.
unsafe impl Pod for Sysinfo {}

/// `struct statfs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Statfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}
// SAFETY: repr(C), all integers, no padding.
unsafe impl Pod for Statfs {}

/// `struct winsize`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Winsize {
    pub ws_row: u16,
    pub ws_col: u16,
    pub ws_xpixel: u16,
    pub ws_ypixel: u16,
}
// SAFETY: repr(C), four u16.
unsafe impl Pod for Winsize {}

/// Kernel `struct termios` (the ioctl layout, 36 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Termios {
    pub c_iflag: u32,
    pub c_oflag: u32,
    pub c_cflag: u32,
    pub c_lflag: u32,
    pub c_line: u8,
    pub c_cc: [u8; 19],
}
// SAFETY: repr(C), 16 + 1 + 19 = 36 bytes, no padding.
unsafe impl Pod for Termios {}

/// `struct pollfd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}
// SAFETY: repr(C), no padding.
unsafe impl Pod for PollFd {}

/// Kernel `struct sigaction` for rt_sigaction on x86-64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KSigaction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}
// SAFETY: repr(C), four u64.
unsafe impl Pod for KSigaction {}

/// `stack_t` for sigaltstack.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct StackT {
    pub ss_sp: u64,
    pub ss_flags: i32,
    pub pad: i32,
    pub ss_size: u64,
}
// SAFETY: repr(C), padding explicit.
unsafe impl Pod for StackT {}

/// `siginfo_t`: 128 bytes; the common head and the union as raw words.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    pub pad: i32,
    /// The union: for kill, [pid | uid<<32, ...]; for faults, [addr, ...];
    /// for SIGCHLD, [pid | uid<<32, status, utime, stime].
    pub fields: [u64; 14],
}
// SAFETY: repr(C), padding explicit, 128 bytes.
unsafe impl Pod for SigInfo {}

/// `struct itimerval`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Itimerval {
    pub interval: Timeval,
    pub value: Timeval,
}
// SAFETY: repr(C), all i64.
unsafe impl Pod for Itimerval {}

/// Append one `linux_dirent64` record for (ino, off, type, name) to `out`,
/// or return false (appending nothing) when it would not fit in `cap` bytes.
pub fn push_dirent64(out: &mut Vec<u8>, cap: usize, ino: u64, off: i64, d_type: u8, name: &[u8]) -> bool {
    // header: ino(8) off(8) reclen(2) type(1), then name and NUL, aligned to 8.
    let reclen = (19 + name.len() + 1 + 7) & !7;
    if out.len() + reclen > cap || reclen > u16::MAX as usize {
        return false;
    }
    out.extend_from_slice(&ino.to_ne_bytes());
    out.extend_from_slice(&off.to_ne_bytes());
    out.extend_from_slice(&(reclen as u16).to_ne_bytes());
    out.push(d_type);
    out.extend_from_slice(name);
    let pad = reclen - 19 - name.len();
    out.extend(std::iter::repeat_n(0u8, pad));
    true
}

/// Append one old `linux_dirent` record (getdents, not getdents64).
pub fn push_dirent(out: &mut Vec<u8>, cap: usize, ino: u64, off: i64, d_type: u8, name: &[u8]) -> bool {
    // header: ino(8) off(8) reclen(2), name, NUL, pad, then d_type as the last byte.
    let reclen = (18 + name.len() + 2 + 7) & !7;
    if out.len() + reclen > cap || reclen > u16::MAX as usize {
        return false;
    }
    out.extend_from_slice(&ino.to_ne_bytes());
    out.extend_from_slice(&off.to_ne_bytes());
    out.extend_from_slice(&(reclen as u16).to_ne_bytes());
    out.extend_from_slice(name);
    let pad = reclen - 18 - name.len() - 1;
    out.extend(std::iter::repeat_n(0u8, pad));
    out.push(d_type);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_linux() {
        assert_eq!(core::mem::size_of::<Stat>(), 144);
        assert_eq!(core::mem::size_of::<Utsname>(), 390);
        assert_eq!(core::mem::size_of::<SigInfo>(), 128);
        assert_eq!(core::mem::size_of::<Sysinfo>(), 112);
        assert_eq!(core::mem::size_of::<Statfs>(), 120);
        assert_eq!(core::mem::size_of::<Termios>(), 36);
        assert_eq!(core::mem::size_of::<Rusage>(), 144);
    }

    #[test]
    fn dirent_records_are_aligned() {
        let mut v = Vec::new();
        assert!(push_dirent64(&mut v, 1024, 1, 1, 4, b"."));
        assert_eq!(v.len(), 24);
        assert!(!push_dirent64(&mut v, 30, 2, 2, 4, b".."));
        assert_eq!(v.len(), 24);
    }

    #[test]
    fn huge_times_saturate_and_negative_ones_are_invalid() {
        let max = Timespec { tv_sec: i64::MAX, tv_nsec: 999_999_999 };
        assert_eq!(max.to_nanos(), Some(KTIME_MAX_NS));
        assert_eq!(Timespec { tv_sec: -1, tv_nsec: 0 }.to_nanos(), None);
        assert_eq!(Timespec { tv_sec: 0, tv_nsec: 1_000_000_000 }.to_nanos(), None);
        let tv = Timeval { tv_sec: i64::MAX, tv_usec: 999_999 };
        assert_eq!(tv.to_duration(), Some(Duration::from_nanos(KTIME_MAX_NS)));
        assert_eq!(Timeval { tv_sec: 0, tv_usec: -1 }.to_duration(), None);
        assert_eq!(Timeval::from_duration(Duration::MAX).tv_sec, i64::MAX);
        assert_eq!(Timespec::from_duration(Duration::MAX).tv_sec, i64::MAX);
    }
}

/// struct sched_attr (sched_setattr/sched_getattr), SCHED_ATTR_SIZE_VER1.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}
// SAFETY: repr(C), integers only, no padding (56 bytes).
unsafe impl Pod for SchedAttr {}
