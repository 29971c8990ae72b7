//! The kernel log the guest sees (`dmesg`): the sandbox's own boot lines,
//! the same on every run, plus what the guest writes to /dev/kmsg. Read
//! through syslog(2) (`syscalls/src/syslog.rs`) and /dev/kmsg
//! ([`KmsgFile`]), as Linux serves its printk ring.

use abi::Errno;
use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use vfs::{FileOps, IoCtx, Waitable};

/// One printk record.
#[derive(Clone, Debug)]
pub struct Record {
    pub seq: u64,
    /// (facility << 3) | level.
    pub prefix: u32,
    pub ts_usec: u64,
    pub text: Vec<u8>,
}

impl Record {
    /// The /dev/kmsg form: "prefix,seq,ts_usec,-;text\n".
    fn kmsg_line(&self) -> Vec<u8> {
        let mut v = format!("{},{},{},-;", self.prefix, self.seq, self.ts_usec).into_bytes();
        v.extend_from_slice(&self.text);
        v.push(b'\n');
        v
    }

    /// The syslog(2) form: "<level>[seconds.micros] text\n".
    pub fn syslog_line(&self) -> Vec<u8> {
        let mut v = format!("<{}>[{:5}.{:06}] ", self.prefix & 7, self.ts_usec / 1_000_000, self.ts_usec % 1_000_000)
            .into_bytes();
        v.extend_from_slice(&self.text);
        v.push(b'\n');
        v
    }
}

/// The boot log: (microseconds after boot, text). Fixed, so `dmesg` is
/// the same on every run and tells what runs underneath.
const BOOT_LINES: &[(u64, &str)] = &[
    (0, "Starting runsc-lite..."),
    (113_204, "Counting every system call twice, just in case..."),
    (247_918, "Teaching the Sentry to say ENOSYS politely..."),
    (381_556, "Folding page tables into paper cranes..."),
    (502_337, "Reticulating stub threads..."),
    (640_129, "Making sure the seccomp filter is still grumpy..."),
    (771_845, "Setting up /proc with the truth..."),
    (903_310, "Ready!"),
];

/// Most bytes the log keeps (Linux's default 1 << CONFIG_LOG_BUF_SHIFT
/// for a small machine); the oldest records go first.
pub const LOG_BUF_LEN: usize = 1 << 17;
/// Longest record text a write makes (Linux's LOG_LINE_MAX).
const LINE_MAX: usize = 1024 - 32;

pub struct LogState {
    records: VecDeque<Record>,
    bytes: usize,
    next_seq: u64,
    /// The first record syslog's READ_ALL and /dev/kmsg's SEEK_DATA show
    /// (moved by SYSLOG_ACTION_CLEAR).
    pub clear_seq: u64,
    /// The next record syslog's READ (the consuming read) returns.
    pub syslog_seq: u64,
}

impl LogState {
    pub fn first_seq(&self) -> u64 {
        self.records.front().map(|r| r.seq).unwrap_or(self.next_seq)
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The records from `seq` on.
    pub fn from(&self, seq: u64) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| r.seq >= seq)
    }

    fn push(&mut self, prefix: u32, ts_usec: u64, text: Vec<u8>) {
        self.bytes += text.len() + 16;
        self.records.push_back(Record { seq: self.next_seq, prefix, ts_usec, text });
        self.next_seq += 1;
        while self.bytes > LOG_BUF_LEN {
            match self.records.pop_front() {
                Some(r) => self.bytes -= r.text.len() + 16,
                None => break,
            }
        }
    }
}

/// The sandbox's log (one Sentry, one sandbox, one log).
pub fn log() -> &'static Arc<Waitable<LogState>> {
    static LOG: OnceLock<Arc<Waitable<LogState>>> = OnceLock::new();
    LOG.get_or_init(|| {
        START.get_or_init(std::time::Instant::now);
        let mut s = LogState { records: VecDeque::new(), bytes: 0, next_seq: 0, clear_seq: 0, syslog_seq: 0 };
        for (ts, text) in BOOT_LINES {
            // KERN_INFO from the kernel facility, as printk's lines.
            s.push(6, *ts, text.as_bytes().to_vec());
        }
        Waitable::new(s)
    })
}

static START: OnceLock<std::time::Instant> = OnceLock::new();

/// A written record's timestamp: the log's creation (at boot) is second
/// 1, after the fixed boot lines.
fn now_usec() -> u64 {
    START.get_or_init(std::time::Instant::now).elapsed().as_micros() as u64 + 1_000_000
}

/// /dev/kmsg's device number (1, 11).
pub const KMSG_RDEV: (u32, u32) = (1, 11);

/// Add /dev/kmsg to a /dev.
pub fn add_dev_node(dev: &vfs::InodeRef) -> Result<(), Errno> {
    let _ = log();
    let open: vfs::tmpfs::DevOpener = Arc::new(|_flags| Ok(Arc::new(KmsgFile::new()) as Arc<dyn FileOps>));
    vfs::devfs::DevFs::add_file(dev, b"kmsg", abi::flags::S_IFCHR | 0o644, vfs::makedev(KMSG_RDEV.0, KMSG_RDEV.1), open)
}

/// An open /dev/kmsg: a reader at its own record.
pub struct KmsgFile {
    seq: Mutex<u64>,
}

impl KmsgFile {
    fn new() -> KmsgFile {
        KmsgFile { seq: Mutex::new(log().lock().first_seq()) }
    }

    fn seq(&self) -> std::sync::MutexGuard<'_, u64> {
        self.seq.lock().unwrap_or_else(|_| vfs::poisoned())
    }
}

impl FileOps for KmsgFile {
    /// One record per read: EINVAL if it does not fit, EPIPE (once) if the
    /// reader's record was overwritten, EAGAIN or a wait at the end.
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        let mut seq = *self.seq();
        let line = log().block_on(
            ctx,
            |s| {
                if seq < s.first_seq() {
                    seq = s.first_seq();
                    return Some(Err(Errno::EPIPE));
                }
                s.from(seq).next().map(|r| Ok(r.kmsg_line()))
            },
            |_| None,
        );
        let line = match line {
            Err(Errno::EPIPE) => {
                *self.seq() = seq;
                return Err(Errno::EPIPE);
            }
            r => r?,
        };
        if line.len() > buf.len() {
            return Err(Errno::EINVAL);
        }
        buf[..line.len()].copy_from_slice(&line);
        *self.seq() = seq + 1;
        Ok(line.len())
    }

    /// One record per write, "<N>" choosing its level (and facility);
    /// user-space records default to LOG_USER, level 4 (as Linux's
    /// default_message_loglevel).
    fn write(&self, _ctx: &IoCtx, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        if buf.len() > LINE_MAX {
            return Err(Errno::EINVAL);
        }
        let (mut facility, mut level, mut text) = (1u32, 4u32, buf);
        if let Some(rest) = buf.strip_prefix(b"<") {
            if let Some(end) = rest.iter().position(|&c| c == b'>') {
                let n = std::str::from_utf8(&rest[..end]).ok().and_then(|s| s.parse::<u32>().ok());
                if let Some(n) = n {
                    level = n & 7;
                    if n >> 3 != 0 {
                        facility = (n >> 3) & 0xff;
                    }
                    text = &rest[end + 1..];
                }
            }
        }
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let w = log();
        w.lock().push(facility << 3 | level, now_usec(), text.to_vec());
        w.notify();
        Ok(buf.len())
    }

    fn poll(&self) -> u32 {
        let seq = *self.seq();
        let mut ev = libc::POLLOUT as u32;
        if log().lock().next_seq() > seq {
            ev |= (libc::POLLIN | libc::POLLRDNORM) as u32;
        }
        ev
    }

    fn wait_queue(&self) -> Option<&vfs::WaitQueue> {
        Some(&log().queue)
    }

    /// Only whole-log positions: the start, after the last clear, the end.
    fn seek(&self, off: i64, whence: u32) -> Option<Result<u64, Errno>> {
        if off != 0 {
            return Some(Err(Errno::ESPIPE));
        }
        let s = log().lock();
        let to = match whence {
            abi::flags::SEEK_SET => s.first_seq(),
            abi::flags::SEEK_DATA => s.clear_seq.max(s.first_seq()),
            abi::flags::SEEK_END => s.next_seq(),
            _ => return Some(Err(Errno::EINVAL)),
        };
        drop(s);
        *self.seq() = to;
        Some(Ok(0))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_log_reads_as_records() {
        let irq = vfs::Interrupt::default();
        let ctx = IoCtx { flags: abi::flags::O_NONBLOCK, interrupt: &irq };
        let f = KmsgFile::new();
        let mut buf = [0u8; 256];
        let n = f.read(&ctx, &mut buf, 0).unwrap();
        assert_eq!(&buf[..n], b"6,0,0,-;Starting runsc-lite...\n");
        assert_eq!(f.read(&ctx, &mut buf[..4], 0), Err(Errno::EINVAL));
        assert_eq!(f.seek(0, abi::flags::SEEK_END), Some(Ok(0)));
        assert_eq!(f.read(&ctx, &mut buf, 0), Err(Errno::EAGAIN));
        assert_eq!(f.seek(1, abi::flags::SEEK_SET), Some(Err(Errno::ESPIPE)));
    }
}
