//! Leases (fcntl F_SETLEASE/F_GETLEASE): a table of its own, keyed like
//! the lock table by the file's (st_dev, st_ino), each lease owned by an
//! open file description.
//!
//! An open that conflicts with a lease (any open for writing meets every
//! lease, an open for reading a write lease) breaks it, as Linux's
//! __break_lease: the holder's process gets SIGIO (the caller sends it),
//! F_GETLEASE then answers the type the holder must go down to, and the
//! opener waits until the holder has done so, or `LEASE_BREAK_TIME` has
//! passed (the lease is then taken away), or fails with EWOULDBLOCK when
//! non-blocking. Leases are sandbox-wide: a host process's opens of a
//! bind-mounted file do not break them.
//!
//! Lock order: the table's lock is a leaf; signals are sent after it is
//! released.

use crate::fdtable::OpenFile;
use crate::locks::{key_of, FileKey, Kind};
use crate::wait::{IoCtx, Waitable};
use abi::Errno;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// /proc/sys/fs/lease-break-time's default.
pub const LEASE_BREAK_TIME: Duration = Duration::from_secs(45);

struct Lease {
    /// The open file description holding it.
    file: u64,
    write: bool,
    /// The process that set it (told with SIGIO when it is broken).
    pid: i32,
    /// Being broken: the type the holder must go down to, and when the
    /// lease is taken away if it has not.
    breaking: Option<(Kind, Instant)>,
}

impl Lease {
    fn conflicts(&self, want_write: bool) -> bool {
        self.write || want_write
    }
}

/// Every file's leases.
type Leases = HashMap<FileKey, Vec<Lease>>;

fn table() -> &'static Arc<Waitable<Leases>> {
    static TABLE: OnceLock<Arc<Waitable<Leases>>> = OnceLock::new();
    TABLE.get_or_init(|| Waitable::new(HashMap::new()))
}

/// Set once any lease was ever taken: until then opens need not look.
static ANY: AtomicBool = AtomicBool::new(false);

/// The lease `f` holds: F_RDLCK, F_WRLCK or F_UNLCK; while it is being
/// broken, the type it is going down to (Linux's target lease type).
pub fn get(f: &OpenFile) -> Kind {
    let Some(&key) = f.lock_key.get() else { return Kind::Unlock };
    let t = table().lock();
    match t.get(&key).and_then(|v| v.iter().find(|l| l.file == f.id)) {
        Some(Lease { breaking: Some((target, _)), .. }) => *target,
        Some(l) if l.write => Kind::Write,
        Some(_) => Kind::Read,
        None => Kind::Unlock,
    }
}

/// F_SETLEASE for the process `pid`. The caller has checked the file's
/// other opens (Linux's check_conflicting_open); this checks the other
/// descriptions' leases.
pub fn set(f: &OpenFile, kind: Kind, pid: i32) -> Result<(), Errno> {
    let key = key_of(f)?;
    let id = f.id;
    {
        let mut t = table().lock();
        let v = t.entry(key).or_default();
        let r = match kind {
            Kind::Unlock => {
                // Linux: EAGAIN when this description holds no lease.
                let before = v.len();
                v.retain(|l| l.file != id);
                if v.len() == before {
                    Err(Errno::EAGAIN)
                } else {
                    Ok(())
                }
            }
            Kind::Read | Kind::Write => {
                let write = kind == Kind::Write;
                // A break towards no lease means a writer is waiting in
                // open, already counted as one (Linux takes write access
                // before breaking leases): no lease can be taken.
                let writer_waits = v.iter().any(|l| matches!(l.breaking, Some((Kind::Unlock, _))));
                if writer_waits || v.iter().any(|l| l.file != id && (write || l.write)) {
                    Err(Errno::EAGAIN)
                } else {
                    match v.iter_mut().find(|l| l.file == id) {
                        Some(l) => {
                            l.write = write;
                            // Going down to what a break asked for ends it.
                            if let Some((target, _)) = l.breaking {
                                if target == Kind::Read && !write {
                                    l.breaking = None;
                                }
                            }
                        }
                        None => v.push(Lease { file: id, write, pid, breaking: None }),
                    }
                    ANY.store(true, Ordering::Relaxed);
                    Ok(())
                }
            }
        };
        if v.is_empty() {
            t.remove(&key);
        }
        r?;
    }
    table().notify();
    Ok(())
}

/// Drop the lease of `f` (its last reference is gone).
pub fn release_file(f: &OpenFile) {
    if !ANY.load(Ordering::Relaxed) {
        return;
    }
    let Some(&key) = f.lock_key.get() else { return };
    let removed = {
        let mut t = table().lock();
        let Some(v) = t.get_mut(&key) else { return };
        let before = v.len();
        v.retain(|l| l.file != f.id);
        let removed = v.len() != before;
        if v.is_empty() {
            t.remove(&key);
        }
        removed
    };
    if removed {
        table().notify();
    }
}

/// Leases whose break time passed are taken away (or downgraded).
fn time_out(v: &mut Vec<Lease>, now: Instant) {
    v.retain_mut(|l| match l.breaking {
        Some((Kind::Unlock, at)) if at <= now => false,
        Some((_, at)) if at <= now => {
            l.write = false;
            l.breaking = None;
            true
        }
        _ => true,
    });
}

/// An open of the file `key` (for writing if `want_write`) breaks the
/// leases it conflicts with: `notify(pid)` is called for each holder
/// newly told (outside the table's lock), then the open waits until no
/// lease conflicts (EWOULDBLOCK at once for a non-blocking `ctx`;
/// ERESTARTSYS on a signal).
pub fn break_for_open(key: FileKey, want_write: bool, ctx: &IoCtx, notify: impl Fn(i32)) -> Result<(), Errno> {
    if !ANY.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut tell: Vec<i32> = Vec::new();
    let conflict = {
        let mut t = table().lock();
        let Some(v) = t.get_mut(&key) else { return Ok(()) };
        let now = Instant::now();
        time_out(v, now);
        let conflict = v.iter().any(|l| l.conflicts(want_write));
        let until = now.checked_add(LEASE_BREAK_TIME).unwrap_or(now);
        for l in v.iter_mut().filter(|l| l.conflicts(want_write)) {
            let target = if want_write { Kind::Unlock } else { Kind::Read };
            match l.breaking {
                // Already going away, or already asked to.
                Some((Kind::Unlock, _)) => continue,
                Some(_) if !want_write => continue,
                _ => {}
            }
            l.breaking = Some((target, until));
            tell.push(l.pid);
        }
        if v.is_empty() {
            t.remove(&key);
        }
        conflict
    };
    tell.sort_unstable();
    tell.dedup();
    for pid in tell {
        notify(pid);
    }
    if !conflict {
        return Ok(());
    }
    // As Linux's __break_lease: a non-blocking open that found a
    // conflicting lease fails, even if the holder (told just now) gives it
    // up before a second look.
    let nonblock = ctx.nonblock();
    if nonblock {
        return Err(Errno::EWOULDBLOCK);
    }
    table().block_on(
        ctx,
        |t| {
            let Some(v) = t.get_mut(&key) else { return Some(Ok(())) };
            time_out(v, Instant::now());
            let conflict = v.iter().any(|l| l.conflicts(want_write));
            if v.is_empty() {
                t.remove(&key);
            }
            if !conflict {
                Some(Ok(()))
            } else if nonblock {
                Some(Err(Errno::EWOULDBLOCK))
            } else {
                None
            }
        },
        |t| t.get(&key).and_then(|v| v.iter().filter_map(|l| l.breaking.map(|b| b.1)).min()),
    )
}

/// Every lease now: (file, write, pid, breaking), for /proc/locks.
pub(crate) fn snapshot() -> Vec<(FileKey, Kind, i32, bool)> {
    let t = table().lock();
    let mut out: Vec<(FileKey, Kind, i32, bool)> = Vec::new();
    for (key, v) in t.iter() {
        for l in v {
            let kind = match l.breaking {
                Some((target, _)) => target,
                None if l.write => Kind::Write,
                None => Kind::Read,
            };
            out.push((*key, kind, l.pid, l.breaking.is_some()));
        }
    }
    out.sort_by_key(|e| e.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::Interrupt;

    #[test]
    fn breaks_time_out_to_their_target() {
        let now = Instant::now();
        let past = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        let mut v = vec![
            Lease { file: 1, write: false, pid: 1, breaking: Some((Kind::Unlock, past)) },
            Lease { file: 2, write: true, pid: 1, breaking: Some((Kind::Read, past)) },
            Lease { file: 3, write: true, pid: 1, breaking: None },
        ];
        time_out(&mut v, now);
        assert_eq!(v.len(), 2);
        assert!(!v[0].write && v[0].breaking.is_none());
        assert!(v[1].write);
    }

    #[test]
    fn an_open_for_writing_breaks_a_read_lease() {
        let (r, _w) = crate::pipe::new_pair();
        let holder = OpenFile::new_anon(r, abi::flags::O_RDONLY, "l".into());
        set(&holder, Kind::Read, 42).unwrap();
        assert_eq!(get(&holder), Kind::Read);
        let key = key_of(&holder).unwrap();
        let irq = Interrupt::default();
        let nb = IoCtx { flags: abi::flags::O_NONBLOCK, interrupt: &irq };
        // A reader does not conflict.
        assert_eq!(break_for_open(key, false, &nb, |_| panic!("no break")), Ok(()));
        let told = std::sync::Mutex::new(Vec::new());
        let r = break_for_open(key, true, &nb, |pid| told.lock().unwrap().push(pid));
        assert_eq!(r, Err(Errno::EWOULDBLOCK));
        assert_eq!(*told.lock().unwrap(), vec![42]);
        assert_eq!(get(&holder), Kind::Unlock);
        assert_eq!(set(&holder, Kind::Write, 42), Err(Errno::EAGAIN));
        set(&holder, Kind::Unlock, 42).unwrap();
        assert_eq!(break_for_open(key, true, &nb, |_| panic!("nothing left to break")), Ok(()));
    }
}
