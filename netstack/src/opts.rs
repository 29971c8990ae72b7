//! SOL_SOCKET options every family shares, with Linux's semantics: buffer
//! sizes doubled and clamped, timeouts as `struct timeval`, flags as ints.
//! A family keeps one [`SockOpts`] and answers the options that depend on
//! its own state (SO_ERROR, SO_ACCEPTCONN, SO_PEERCRED) itself.

use abi::socket::*;
use abi::{Errno, Pod, Timeval};
use std::time::{Duration, Instant};

/// net.core.wmem_max / rmem_max: the most SO_SNDBUF / SO_RCVBUF take
/// before doubling.
pub const BUF_MAX: u32 = 212_992;
/// net.core.wmem_default / rmem_default.
pub const BUF_DEFAULT: u32 = 212_992;
/// SOCK_MIN_SNDBUF and SOCK_MIN_RCVBUF (after doubling).
pub const SNDBUF_MIN: u32 = 4608;
pub const RCVBUF_MIN: u32 = 2304;

#[derive(Clone, Debug)]
pub struct SockOpts {
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub keepalive: bool,
    pub broadcast: bool,
    pub oobinline: bool,
    pub passcred: bool,
    pub timestamp: bool,
    pub dontroute: bool,
    pub linger: Linger,
    pub sndbuf: u32,
    pub rcvbuf: u32,
    /// The buffer sizes were set (Linux's SOCK_SNDBUF_LOCK and
    /// SOCK_RCVBUF_LOCK): TCP stops autotuning them.
    pub sndbuf_set: bool,
    pub rcvbuf_set: bool,
    pub rcvlowat: i32,
    pub priority: i32,
    pub mark: u32,
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    pub bindtodevice: Vec<u8>,
}

impl SockOpts {
    /// Options of a new socket whose buffers default to `sndbuf` and
    /// `rcvbuf` bytes (as getsockopt reports them).
    pub fn new(sndbuf: u32, rcvbuf: u32) -> SockOpts {
        SockOpts {
            reuseaddr: false,
            reuseport: false,
            keepalive: false,
            broadcast: false,
            oobinline: false,
            passcred: false,
            timestamp: false,
            dontroute: false,
            linger: Linger::default(),
            sndbuf,
            rcvbuf,
            sndbuf_set: false,
            rcvbuf_set: false,
            rcvlowat: 1,
            priority: 0,
            mark: 0,
            rcvtimeo: None,
            sndtimeo: None,
            bindtodevice: Vec::new(),
        }
    }

    /// Set SOL_SOCKET option `name`. Ok(false) when the option is not one
    /// of these (the family may know it; otherwise ENOPROTOOPT).
    pub fn set(&mut self, name: i32, val: &[u8]) -> Result<bool, Errno> {
        match name {
            SO_REUSEADDR => self.reuseaddr = int(val)? != 0,
            SO_REUSEPORT => self.reuseport = int(val)? != 0,
            SO_KEEPALIVE => self.keepalive = int(val)? != 0,
            SO_BROADCAST => self.broadcast = int(val)? != 0,
            SO_OOBINLINE => self.oobinline = int(val)? != 0,
            SO_PASSCRED => self.passcred = int(val)? != 0,
            SO_TIMESTAMP => self.timestamp = int(val)? != 0,
            SO_DONTROUTE => self.dontroute = int(val)? != 0,
            SO_DEBUG | SO_NO_CHECK | SO_BSDCOMPAT | SO_BUSY_POLL | SO_ZEROCOPY | SO_TIMESTAMPNS | SO_RXQ_OVFL => {
                int(val)?;
            }
            SO_PRIORITY => {
                let p = int(val)?;
                if !(0..=6).contains(&p) {
                    return Err(Errno::EPERM);
                }
                self.priority = p;
            }
            SO_MARK => return Err(Errno::EPERM),
            SO_RCVLOWAT => self.rcvlowat = int(val)?.max(1),
            SO_SNDLOWAT => return Err(Errno::ENOPROTOOPT),
            SO_SNDBUF | SO_SNDBUFFORCE => {
                self.sndbuf = buffer_size(int(val)?, SNDBUF_MIN);
                self.sndbuf_set = true;
            }
            SO_RCVBUF | SO_RCVBUFFORCE => {
                self.rcvbuf = buffer_size(int(val)?, RCVBUF_MIN);
                self.rcvbuf_set = true;
            }
            SO_LINGER => {
                let l = Linger::from_bytes(val).ok_or(Errno::EINVAL)?;
                self.linger = Linger { onoff: i32::from(l.onoff != 0), linger: l.linger };
            }
            SO_RCVTIMEO => self.rcvtimeo = timeout(val)?,
            SO_SNDTIMEO => self.sndtimeo = timeout(val)?,
            SO_BINDTODEVICE => {
                let end = val.iter().position(|&b| b == 0).unwrap_or(val.len()).min(16);
                self.bindtodevice = val[..end].to_vec();
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// SOL_SOCKET option `name`, or None when it is not one of these.
    pub fn get(&self, name: i32) -> Option<Vec<u8>> {
        let b = |v: bool| Some(i32::from(v).to_ne_bytes().to_vec());
        match name {
            SO_REUSEADDR => b(self.reuseaddr),
            SO_REUSEPORT => b(self.reuseport),
            SO_KEEPALIVE => b(self.keepalive),
            SO_BROADCAST => b(self.broadcast),
            SO_OOBINLINE => b(self.oobinline),
            SO_PASSCRED => b(self.passcred),
            SO_TIMESTAMP => b(self.timestamp),
            SO_DONTROUTE => b(self.dontroute),
            SO_DEBUG | SO_NO_CHECK | SO_BSDCOMPAT | SO_ZEROCOPY | SO_TIMESTAMPNS | SO_RXQ_OVFL => b(false),
            SO_BUSY_POLL => Some(0i32.to_ne_bytes().to_vec()),
            SO_PRIORITY => Some(self.priority.to_ne_bytes().to_vec()),
            SO_MARK => Some(self.mark.to_ne_bytes().to_vec()),
            SO_RCVLOWAT => Some(self.rcvlowat.to_ne_bytes().to_vec()),
            SO_SNDLOWAT => Some(1i32.to_ne_bytes().to_vec()),
            SO_SNDBUF => Some(self.sndbuf.to_ne_bytes().to_vec()),
            SO_RCVBUF => Some(self.rcvbuf.to_ne_bytes().to_vec()),
            SO_LINGER => Some(self.linger.as_bytes().to_vec()),
            SO_RCVTIMEO => Some(timeval(self.rcvtimeo).as_bytes().to_vec()),
            SO_SNDTIMEO => Some(timeval(self.sndtimeo).as_bytes().to_vec()),
            SO_BINDTODEVICE => Some(self.bindtodevice.clone()),
            _ => None,
        }
    }

    /// When a blocking receive started now gives up (SO_RCVTIMEO).
    pub fn recv_deadline(&self) -> Option<Instant> {
        self.rcvtimeo.and_then(|d| Instant::now().checked_add(d))
    }

    /// When a blocking send started now gives up (SO_SNDTIMEO).
    pub fn send_deadline(&self) -> Option<Instant> {
        self.sndtimeo.and_then(|d| Instant::now().checked_add(d))
    }
}

/// An `int` option value: at least 4 bytes (Linux reads an int; shorter
/// is EINVAL).
pub fn int(val: &[u8]) -> Result<i32, Errno> {
    match val {
        [a, b, c, d, ..] => Ok(i32::from_ne_bytes([*a, *b, *c, *d])),
        _ => Err(Errno::EINVAL),
    }
}

/// Linux's sock_setsockopt for SO_SNDBUF/SO_RCVBUF: clamp to the max,
/// double (for bookkeeping overhead), floor at the minimum.
pub fn buffer_size(v: i32, min: u32) -> u32 {
    let v = u32::try_from(v.max(0)).unwrap_or(0).min(BUF_MAX);
    v.saturating_mul(2).max(min)
}

/// Linux counts socket timeouts in jiffies (HZ 250, Debian's); one of
/// MAX_SCHEDULE_TIMEOUT / HZ - 1 seconds or more is no timeout at all.
const TIMEO_FOREVER_SECS: i64 = i64::MAX / 250 - 1;

/// Linux's sock_set_timeout: a negative time is a timeout of zero (a
/// blocking call fails at once with EAGAIN, and reads back as 0), a zero
/// or a huge one is none.
fn timeout(val: &[u8]) -> Result<Option<Duration>, Errno> {
    let tv = Timeval::from_bytes(val).ok_or(Errno::EINVAL)?;
    if tv.tv_usec < 0 || tv.tv_usec >= 1_000_000 {
        return Err(Errno::EDOM);
    }
    if tv.tv_sec < 0 {
        return Ok(Some(Duration::ZERO));
    }
    if (tv.tv_sec == 0 && tv.tv_usec == 0) || tv.tv_sec >= TIMEO_FOREVER_SECS {
        return Ok(None);
    }
    Ok(tv.to_duration())
}

fn timeval(d: Option<Duration>) -> Timeval {
    d.map(Timeval::from_duration).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_double_and_clamp() {
        let mut o = SockOpts::new(BUF_DEFAULT, BUF_DEFAULT);
        assert!(o.set(SO_SNDBUF, &1000i32.to_ne_bytes()).unwrap());
        assert_eq!(o.get(SO_SNDBUF).unwrap(), 4608u32.to_ne_bytes().to_vec());
        o.set(SO_RCVBUF, &100_000i32.to_ne_bytes()).unwrap();
        assert_eq!(o.rcvbuf, 200_000);
        o.set(SO_RCVBUF, &i32::MAX.to_ne_bytes()).unwrap();
        assert_eq!(o.rcvbuf, 2 * BUF_MAX);
        o.set(SO_RCVBUF, &(-5i32).to_ne_bytes()).unwrap();
        assert_eq!(o.rcvbuf, RCVBUF_MIN);
    }

    #[test]
    fn timeouts_and_errors() {
        let mut o = SockOpts::new(BUF_DEFAULT, BUF_DEFAULT);
        let tv = Timeval { tv_sec: 1, tv_usec: 500_000 };
        o.set(SO_RCVTIMEO, tv.as_bytes()).unwrap();
        assert_eq!(o.rcvtimeo, Some(Duration::from_millis(1500)));
        assert_eq!(o.get(SO_RCVTIMEO).unwrap(), tv.as_bytes().to_vec());
        let bad = Timeval { tv_sec: 1, tv_usec: 1_000_000 };
        assert_eq!(o.set(SO_RCVTIMEO, bad.as_bytes()), Err(Errno::EDOM));
        assert_eq!(o.set(SO_RCVTIMEO, &[0; 8]), Err(Errno::EINVAL));
        let huge = Timeval { tv_sec: i64::MAX, tv_usec: 999_999 };
        o.set(SO_RCVTIMEO, huge.as_bytes()).unwrap();
        assert_eq!(o.rcvtimeo, None);
        let negative = Timeval { tv_sec: -1, tv_usec: 0 };
        o.set(SO_SNDTIMEO, negative.as_bytes()).unwrap();
        assert_eq!(o.sndtimeo, Some(Duration::ZERO));
        assert_eq!(o.get(SO_SNDTIMEO).unwrap(), Timeval::default().as_bytes().to_vec());
        assert_eq!(o.set(SO_REUSEADDR, &[1, 0]), Err(Errno::EINVAL));
        assert_eq!(o.set(9999, &[0; 4]), Ok(false));
        assert_eq!(o.get(9999), None);
    }
}
