//! Advisory file locks: flock(2) locks, POSIX record locks and open file
//! description (OFD) locks of fcntl(2). Leases are `leases.rs`.
//!
//! One table for the whole sandbox, keyed by the file's identity
//! (st_dev, st_ino), so every open of a file, on any filesystem and
//! through any mount, meets the same locks. Owners follow Linux: a flock
//! lock and an OFD lock belong to the open file description
//! (`OpenFile::id`), a POSIX lock to the descriptor table
//! (`FdTable::id`: the threads of a process, and processes sharing their
//! table with CLONE_FILES, share their locks).
//!
//! Files of host bind mounts also take the lock on the host file, so a
//! host process and the sandbox exclude each other: per locked file the
//! table holds one host descriptor of its own and keeps on it the union of
//! the sandbox's locks (an exclusive host flock if any guest holds one,
//! else shared; host OFD range locks covering what guests hold, write
//! where any guest holds a write lock). Host calls never block: a host
//! conflict is a conflict, waited out by re-checking every
//! `HOST_RECHECK`. Closing that descriptor, when the file's last lock
//! goes, drops everything it held on the host.
//!
//! Lock order: the table's lock is taken after the descriptor table's is
//! released and around nothing but host calls that cannot block (fcntl,
//! flock with LOCK_NB, openat with O_NONBLOCK of a regular file).

use crate::fdtable::OpenFile;
use crate::wait::{IoCtx, Waitable};
use abi::Errno;
use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A file's identity: (st_dev, st_ino).
pub type FileKey = (u64, u64);

/// The largest offset (Linux's OFFSET_MAX): a lock to EOF ends there.
pub const OFFSET_MAX: u64 = i64::MAX as u64;

/// How often a wait that a host process's lock holds up looks again.
const HOST_RECHECK: Duration = Duration::from_millis(10);

/// Linux's MAX_DEADLK_ITERATIONS: how far a deadlock chain is followed.
const MAX_DEADLOCK_STEPS: usize = 10;

/// Most record locks one file carries (every request walks them): past
/// it, ENOLCK, Linux's errno for a lock it cannot allocate.
const MAX_RANGES_PER_FILE: usize = 1 << 14;

/// Who owns a record lock.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Owner {
    /// A POSIX lock: the descriptor table's id.
    Process(u64),
    /// An OFD lock: the open file description's id.
    File(u64),
}

/// The type of a lock request (F_RDLCK, F_WRLCK, F_UNLCK).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Read,
    Write,
    Unlock,
}

impl Kind {
    /// From an l_type / lease argument (F_RDLCK 0, F_WRLCK 1, F_UNLCK 2).
    pub fn from_type(t: i64) -> Result<Kind, Errno> {
        match t {
            0 => Ok(Kind::Read),
            1 => Ok(Kind::Write),
            2 => Ok(Kind::Unlock),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn as_type(self) -> i16 {
        match self {
            Kind::Read => 0,
            Kind::Write => 1,
            Kind::Unlock => 2,
        }
    }
}

/// One record lock: bytes `start..=end`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Range {
    owner: Owner,
    /// The owner's process id as the guest sees it (what F_GETLK reports).
    pid: i32,
    start: u64,
    end: u64,
    write: bool,
}

impl Range {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }
}

/// A lock that stands in the way of a request (what F_GETLK reports).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Conflict {
    pub write: bool,
    pub start: u64,
    pub end: u64,
    /// The holder's pid; -1 for an OFD lock, 0 for a host process's lock.
    pub pid: i32,
}

/// A host descriptor through which a hostfs file's locks are mirrored,
/// with whatever keeps it counted against the sandbox's budget.
pub struct HostLockFd {
    pub fd: OwnedFd,
    pub charge: Option<Box<dyn Any + Send + Sync>>,
}

/// The host side of one file's locks.
struct HostSide {
    fd: HostLockFd,
    /// The host flock held on `fd`.
    flock: Kind,
}

#[derive(Default)]
struct FileLocks {
    /// flock locks: (open file description, exclusive, pid of the
    /// process that took it).
    flocks: Vec<(u64, bool, i32)>,
    /// Record locks, sorted by start.
    ranges: Vec<Range>,
    /// None: not a host file, or its descriptor is not open yet.
    host: Option<HostSide>,
    /// Whether the file has a host side (hostfs) at all.
    host_backed: bool,
}

impl FileLocks {
    fn is_empty(&self) -> bool {
        self.flocks.is_empty() && self.ranges.is_empty()
    }
}

/// A POSIX owner blocked in F_SETLKW, and the owner it waits for.
struct Waiter {
    token: u64,
    owner: Owner,
    blocker: Owner,
}

#[derive(Default)]
struct Table {
    files: HashMap<FileKey, FileLocks>,
    waiting: Vec<Waiter>,
    next_token: u64,
}

fn table() -> &'static Arc<Waitable<Table>> {
    static TABLE: OnceLock<Arc<Waitable<Table>>> = OnceLock::new();
    TABLE.get_or_init(|| Waitable::new(Table::default()))
}

/// Wake every blocked lock request (something was released).
fn wake() {
    table().notify();
}

/// Where the devices of host files (hostfs) live in the key space, away
/// from the sandbox's own anonymous devices (tmpfs, overlay, pipes),
/// whose numbers a host device may share.
const HOST_DEV: u64 = 1 << 63;

/// The key of files with no node at all (eventfd, epoll, ...): Linux
/// gives them all one anonymous inode, so their locks meet there too.
const ANON_KEY: FileKey = (u64::MAX, 0);

/// The identity of the node `inode`, whose stat is `st`.
pub fn node_key(inode: &dyn crate::Inode, st: &abi::Stat) -> FileKey {
    let host = inode.as_any().is::<crate::hostfs::HostInode>();
    (if host { st.st_dev | HOST_DEV } else { st.st_dev }, st.st_ino)
}

/// The identity locks of `f` are kept under.
pub fn key_of(f: &OpenFile) -> Result<FileKey, Errno> {
    if let Some(k) = f.lock_key.get() {
        return Ok(*k);
    }
    let k = match (f.ops.stat(), &f.dentry) {
        (Some(st), _) => (st.st_dev, st.st_ino),
        (None, Some(d)) => node_key(&*d.inode, &d.inode.stat()?),
        (None, None) => ANON_KEY,
    };
    let _ = f.lock_key.set(k);
    Ok(k)
}

/// Open the host descriptor of `f`'s file if it is a host file (outside
/// the table's lock: this may walk the host tree).
fn host_fd_for(f: &OpenFile) -> Option<Result<HostLockFd, Errno>> {
    f.dentry.as_ref()?.inode.host_lock_fd()
}

/// Give `fl` the host descriptor opened for this request when the file is
/// a host file and has none yet. One that could not be opened (the
/// host-file budget spent, a file the Sentry may not open) leaves the
/// locks to the sandbox alone rather than failing the guest's call.
fn ensure_host(fl: &mut FileLocks, open: &mut Option<Result<HostLockFd, Errno>>) {
    if fl.host.is_some() || !fl.host_backed {
        return;
    }
    if let Some(Ok(fd)) = open.take() {
        fl.host = Some(HostSide { fd, flock: Kind::Unlock });
    }
}

fn host_flock(fd: &OwnedFd, kind: Kind) -> Result<(), Errno> {
    let op = match kind {
        Kind::Read => libc::LOCK_SH | libc::LOCK_NB,
        Kind::Write => libc::LOCK_EX | libc::LOCK_NB,
        Kind::Unlock => libc::LOCK_UN,
    };
    loop {
        // SAFETY: flock on a descriptor we own; never blocks (LOCK_NB).
        let r = unsafe { libc::flock(fd.as_raw_fd(), op) };
        if r == 0 {
            return Ok(());
        }
        match crate::util::last_errno() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// One host F_OFD_SETLK over `start..=end`; Ok(false) on a conflict.
fn host_ofd(fd: &OwnedFd, kind: Kind, start: u64, end: u64) -> Result<bool, Errno> {
    // SAFETY: an all-zero struct flock is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind.as_type();
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = start as i64;
    fl.l_len = if end >= OFFSET_MAX { 0 } else { (end - start + 1) as i64 };
    loop {
        // SAFETY: F_OFD_SETLK with a valid struct flock; never blocks.
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl as *const libc::flock) };
        if r == 0 {
            return Ok(true);
        }
        match crate::util::last_errno() {
            Errno::EINTR => continue,
            Errno::EAGAIN | Errno::EACCES => return Ok(false),
            e => return Err(e),
        }
    }
}

/// What the union of `ranges` is over `start..=end`: (start, end, write)
/// segments, adjacent ones of one type merged (a sweep over the ranges'
/// boundaries).
fn union_over(ranges: &[Range], start: u64, end: u64) -> Vec<(u64, u64, bool)> {
    // (position, change in readers, change in writers)
    let mut events: Vec<(u64, i64, i64)> = Vec::new();
    for r in ranges.iter().filter(|r| r.overlaps(start, end)) {
        let (dr, dw) = if r.write { (0, 1) } else { (1, 0) };
        events.push((r.start.max(start), dr, dw));
        // Ranges end at OFFSET_MAX at most: the +1 cannot overflow.
        events.push((r.end.min(end).saturating_add(1), -dr, -dw));
    }
    events.sort_unstable_by_key(|e| e.0);
    let mut out: Vec<(u64, u64, bool)> = Vec::new();
    let (mut readers, mut writers) = (0i64, 0i64);
    let mut i = 0;
    while i < events.len() {
        let at = events[i].0;
        while i < events.len() && events[i].0 == at {
            readers += events[i].1;
            writers += events[i].2;
            i += 1;
        }
        let Some(next) = events.get(i) else { break };
        if readers + writers == 0 || at > end {
            continue;
        }
        let seg_end = (next.0 - 1).min(end);
        let write = writers > 0;
        match out.last_mut() {
            Some(last) if last.2 == write && last.1.checked_add(1) == Some(at) => last.1 = seg_end,
            _ => out.push((at, seg_end, write)),
        }
    }
    out
}

/// Bring the host's locks over `start..=end` from the union of `old` to
/// that of `new`. Ok(false): a host process holds a conflicting lock; the
/// host is then left as it was.
fn host_sync_ranges(fd: &OwnedFd, old: &[Range], new: &[Range], start: u64, end: u64) -> Result<bool, Errno> {
    let want = union_over(new, start, end);
    let had = union_over(old, start, end);
    if want == had {
        return Ok(true);
    }
    let apply = |segs: &[(u64, u64, bool)]| -> Result<bool, Errno> {
        for &(s, e, w) in segs {
            let kind = if w { Kind::Write } else { Kind::Read };
            match host_ofd(fd, kind, s, e) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                // A descriptor that cannot carry this lock type (a file
                // the Sentry may only read): the host is not told.
                Err(Errno::EBADF) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    };
    let unlock_gaps = |segs: &[(u64, u64, bool)]| -> Result<(), Errno> {
        let mut at = start;
        for &(s, e, _) in segs {
            if s > at {
                host_ofd(fd, Kind::Unlock, at, s - 1)?;
            }
            at = match e.checked_add(1) {
                Some(n) => n,
                None => return Ok(()),
            };
        }
        if at <= end {
            host_ofd(fd, Kind::Unlock, at, end)?;
        }
        Ok(())
    };
    if !apply(&want)? {
        // Downgrades and unlocks back to what was held cannot conflict.
        let _ = apply(&had);
        let _ = unlock_gaps(&had);
        return Ok(false);
    }
    unlock_gaps(&want)?;
    Ok(true)
}

/// The flock the host should hold for these guest locks.
fn host_flock_kind(flocks: &[(u64, bool, i32)]) -> Kind {
    if flocks.iter().any(|f| f.1) {
        Kind::Write
    } else if flocks.is_empty() {
        Kind::Unlock
    } else {
        Kind::Read
    }
}

/// Bring the host flock in line with the guest's; Ok(false) when a host
/// process holds a conflicting one.
fn host_sync_flock(fl: &mut FileLocks) -> Result<bool, Errno> {
    let want = host_flock_kind(&fl.flocks);
    let Some(host) = fl.host.as_mut() else { return Ok(true) };
    if host.flock == want {
        return Ok(true);
    }
    match host_flock(&host.fd.fd, want) {
        Ok(()) => {
            host.flock = want;
            Ok(true)
        }
        Err(Errno::EAGAIN) => {
            // Linux drops a flock before converting it: take back what was held.
            if host.flock != Kind::Unlock && host_flock(&host.fd.fd, host.flock).is_err() {
                host.flock = Kind::Unlock;
            }
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Drop the entry of `key` if nothing is locked there any more (closing
/// its host descriptor releases the host's locks).
fn tidy(t: &mut Table, key: FileKey) {
    if t.files.get(&key).is_some_and(|f| f.is_empty()) {
        t.files.remove(&key);
    }
}

/// A lock context for waiting: blocking or not, whatever the file's flags.
fn wait_ctx<'a>(ctx: &IoCtx<'a>, block: bool) -> IoCtx<'a> {
    IoCtx { flags: if block { 0 } else { abi::flags::O_NONBLOCK }, interrupt: ctx.interrupt }
}

/// flock(2) on `f` by the process `pid`: `kind` Read (LOCK_SH), Write
/// (LOCK_EX) or Unlock. `block` false is LOCK_NB (EWOULDBLOCK on a
/// conflict). As Linux, a conversion first drops the lock held, so a
/// failed one leaves none.
pub fn flock(f: &OpenFile, ctx: &IoCtx, pid: i32, kind: Kind, block: bool) -> Result<(), Errno> {
    let key = key_of(f)?;
    let id = f.id;
    let backed = f.dentry.as_ref().is_some_and(|d| d.inode.has_host_locks());
    let mut open = if kind != Kind::Unlock && backed { host_fd_for(f) } else { None };
    let exclusive = kind == Kind::Write;
    let host_busy = Cell::new(false);
    let wctx = wait_ctx(ctx, block);
    let r = table().block_on(
        &wctx,
        |t| {
            host_busy.set(false);
            let fl = t.files.entry(key).or_default();
            fl.host_backed = backed;
            let mine = fl.flocks.iter().position(|&(o, _, _)| o == id);
            if let Some(i) = mine {
                if fl.flocks[i].1 == exclusive && kind != Kind::Unlock {
                    return Some(Ok(false));
                }
                fl.flocks.remove(i);
            }
            if kind == Kind::Unlock {
                return Some(host_sync_flock(fl).map(|_| true));
            }
            if fl.flocks.iter().any(|&(_, x, _)| x || exclusive) {
                // The dropped lock (a conversion) goes on the host too.
                let _ = host_sync_flock(fl);
                return None;
            }
            ensure_host(fl, &mut open);
            fl.flocks.push((id, exclusive, pid));
            match host_sync_flock(fl) {
                Ok(true) => Some(Ok(true)),
                Ok(false) => {
                    fl.flocks.pop();
                    host_busy.set(true);
                    None
                }
                Err(e) => {
                    fl.flocks.pop();
                    Some(Err(e))
                }
            }
        },
        |_| host_busy.get().then(|| Instant::now().checked_add(HOST_RECHECK)).flatten(),
    );
    finish(key, true);
    r.map(|_| ())
}

/// After an operation that may have released something: drop an empty
/// entry and wake waiters.
fn finish(key: FileKey, released: bool) {
    {
        let mut t = table().lock();
        tidy(&mut t, key);
    }
    if released {
        wake();
    }
}

/// The first lock of another owner that conflicts with `kind` over
/// `start..=end` (F_GETLK, F_OFD_GETLK). A host file is asked too: a
/// host process's lock is reported with pid 0 (Linux's pid for a holder
/// outside the caller's pid namespace).
pub fn test_range(f: &OpenFile, owner: Owner, kind: Kind, start: u64, end: u64) -> Result<Option<Conflict>, Errno> {
    let key = key_of(f)?;
    {
        let t = table().lock();
        if let Some(fl) = t.files.get(&key) {
            if let Some(r) = first_conflict(&fl.ranges, owner, kind == Kind::Write, start, end) {
                let pid = if matches!(r.owner, Owner::File(_)) { -1 } else { r.pid };
                return Ok(Some(Conflict { write: r.write, start: r.start, end: r.end, pid }));
            }
        }
    }
    let backed = f.dentry.as_ref().is_some_and(|d| d.inode.has_host_locks());
    if !backed {
        return Ok(None);
    }
    let Some(Ok(h)) = host_fd_for(f) else { return Ok(None) };
    // A fresh description: only other descriptions' locks (ours
    // included, which the guest's own table already answered) show.
    let t = table().lock();
    let own = t.files.get(&key).map(|fl| union_over(&fl.ranges, start, end)).unwrap_or_default();
    drop(t);
    // SAFETY: an all-zero struct flock is a valid value.
    let mut q: libc::flock = unsafe { std::mem::zeroed() };
    q.l_type = kind.as_type();
    q.l_whence = libc::SEEK_SET as i16;
    q.l_start = start as i64;
    q.l_len = if end >= OFFSET_MAX { 0 } else { (end - start + 1) as i64 };
    // SAFETY: F_OFD_GETLK with a valid struct flock.
    let r = unsafe { libc::fcntl(h.fd.as_raw_fd(), libc::F_OFD_GETLK, &mut q as *mut libc::flock) };
    if r != 0 || q.l_type == libc::F_UNLCK as i16 {
        return Ok(None);
    }
    let s = q.l_start.max(0) as u64;
    let e = if q.l_len <= 0 { OFFSET_MAX } else { s.saturating_add(q.l_len as u64 - 1) };
    // The sandbox's own host lock shows up there as well: only a lock
    // the guests do not hold themselves is a host process's.
    if own.iter().any(|&(os, oe, ow)| os <= s && e <= oe && (ow || q.l_type == libc::F_RDLCK as i16)) {
        return Ok(None);
    }
    Ok(Some(Conflict { write: q.l_type == libc::F_WRLCK as i16, start: s, end: e, pid: 0 }))
}

/// F_OFD_GETLK with F_UNLCK (Linux 6.6+): the first lock of `f` itself
/// over `start..=end`.
pub fn test_own(f: &OpenFile, start: u64, end: u64) -> Result<Option<Conflict>, Errno> {
    let key = key_of(f)?;
    let t = table().lock();
    let own = Owner::File(f.id);
    Ok(t.files.get(&key).and_then(|fl| {
        fl.ranges.iter().find(|r| r.owner == own && r.overlaps(start, end)).map(|r| Conflict {
            write: r.write,
            start: r.start,
            end: r.end,
            pid: -1,
        })
    }))
}

fn first_conflict(ranges: &[Range], owner: Owner, write: bool, start: u64, end: u64) -> Option<Range> {
    ranges.iter().find(|r| r.owner != owner && r.overlaps(start, end) && (r.write || write)).copied()
}

/// The owner `who` waits for, if it is blocked.
fn waits_for(t: &Table, who: Owner) -> Option<Owner> {
    t.waiting.iter().find(|w| w.owner == who).map(|w| w.blocker)
}

/// Whether `me` waiting for `blocker` closes a cycle of POSIX owners.
fn deadlock(t: &Table, me: Owner, blocker: Owner) -> bool {
    let mut o = blocker;
    for _ in 0..MAX_DEADLOCK_STEPS {
        match waits_for(t, o) {
            Some(next) if next == me => return true,
            Some(next) => o = next,
            None => return false,
        }
    }
    false
}

/// `owner`'s ranges after setting `kind` over `start..=end`: its own
/// locks there are replaced (split where they stick out), and adjacent or
/// overlapping ones of one type merged, as Linux does.
fn apply(ranges: &[Range], owner: Owner, pid: i32, kind: Kind, start: u64, end: u64) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len() + 2);
    for r in ranges {
        if r.owner != owner || !r.overlaps(start, end) {
            out.push(*r);
            continue;
        }
        if r.start < start {
            out.push(Range { end: start - 1, ..*r });
        }
        if r.end > end {
            out.push(Range { start: end + 1, ..*r });
        }
    }
    if kind != Kind::Unlock {
        out.push(Range { owner, pid, start, end, write: kind == Kind::Write });
    }
    out.sort_by_key(|r| (r.start, r.end));
    // Merge the owner's neighbours of one type.
    let mut merged: Vec<Range> = Vec::with_capacity(out.len());
    let mut mine: Vec<Range> = Vec::new();
    for r in out {
        if r.owner == owner {
            match mine.last_mut() {
                Some(last) if last.write == r.write && last.end.checked_add(1).is_none_or(|n| n >= r.start) => {
                    last.end = last.end.max(r.end);
                }
                _ => mine.push(r),
            }
        } else {
            merged.push(r);
        }
    }
    merged.extend(mine);
    merged.sort_by_key(|r| (r.start, r.end));
    merged
}

/// One record-lock request: `kind` over `start..=end` for `owner`.
#[derive(Clone, Copy, Debug)]
pub struct RangeRequest {
    pub owner: Owner,
    /// The requester's process id as the guest sees it.
    pub pid: i32,
    pub kind: Kind,
    pub start: u64,
    pub end: u64,
}

/// F_SETLK/F_SETLKW (owner Process) and F_OFD_SETLK/F_OFD_SETLKW (owner
/// File) over `start..=end`. EAGAIN on a conflict when not blocking;
/// EDEADLK when a POSIX wait would close a cycle.
pub fn set_range(f: &OpenFile, ctx: &IoCtx, req: RangeRequest, block: bool) -> Result<(), Errno> {
    let RangeRequest { owner, pid, kind, start, end } = req;
    let key = key_of(f)?;
    let backed = f.dentry.as_ref().is_some_and(|d| d.inode.has_host_locks());
    let mut open = if kind != Kind::Unlock && backed { host_fd_for(f) } else { None };
    let host_busy = Cell::new(false);
    let token = {
        let mut t = table().lock();
        t.next_token += 1;
        t.next_token
    };
    let wctx = wait_ctx(ctx, block);
    let r = table().block_on(
        &wctx,
        |t| {
            host_busy.set(false);
            let fl = t.files.entry(key).or_default();
            fl.host_backed = backed;
            if kind != Kind::Unlock {
                if let Some(c) = first_conflict(&fl.ranges, owner, kind == Kind::Write, start, end) {
                    if block && matches!(owner, Owner::Process(_)) {
                        if deadlock(t, owner, c.owner) {
                            return Some(Err(Errno::EDEADLK));
                        }
                        t.waiting.retain(|w| w.token != token);
                        t.waiting.push(Waiter { token, owner, blocker: c.owner });
                    }
                    return None;
                }
                ensure_host(fl, &mut open);
            }
            let new = apply(&fl.ranges, owner, pid, kind, start, end);
            if new.len() > MAX_RANGES_PER_FILE && new.len() > fl.ranges.len() {
                return Some(Err(Errno::ENOLCK));
            }
            if let Some(h) = &fl.host {
                match host_sync_ranges(&h.fd.fd, &fl.ranges, &new, start, end) {
                    Ok(true) => {}
                    Ok(false) => {
                        host_busy.set(true);
                        return None;
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            fl.ranges = new;
            Some(Ok(()))
        },
        |_| host_busy.get().then(|| Instant::now().checked_add(HOST_RECHECK)).flatten(),
    );
    {
        let mut t = table().lock();
        t.waiting.retain(|w| w.token != token);
    }
    // Setting a range can release bytes (an unlock, a downgrade, a split).
    finish(key, true);
    r
}

/// Drop every lock that open file description `f` owns: flock and OFD
/// locks (its last reference is gone).
pub fn release_file(f: &OpenFile) {
    let Some(&key) = f.lock_key.get() else { return };
    let id = f.id;
    {
        let mut t = table().lock();
        if let Some(fl) = t.files.get_mut(&key) {
            fl.flocks.retain(|&(o, _, _)| o != id);
            let new: Vec<Range> = fl.ranges.iter().filter(|r| r.owner != Owner::File(id)).copied().collect();
            if let Some(h) = &fl.host {
                let _ = host_sync_ranges(&h.fd.fd, &fl.ranges, &new, 0, OFFSET_MAX);
            }
            fl.ranges = new;
            let _ = host_sync_flock(fl);
        }
        tidy(&mut t, key);
    }
    wake();
}

/// A process closed a descriptor of `f`: POSIX locks of its table on that
/// file go, whichever descriptor took them (Linux's rule).
pub fn close_posix(f: &OpenFile, table_id: u64) {
    // Most closes find nothing to release: look before asking the file
    // for its identity (a host stat for host files).
    let owner = Owner::Process(table_id);
    if !table().lock().files.values().any(|fl| fl.ranges.iter().any(|r| r.owner == owner)) {
        return;
    }
    let Ok(key) = key_of(f) else { return };
    release_posix(Some(key), table_id);
}

/// Drop the POSIX locks of descriptor table `table_id` on `key`, or on
/// every file (the table is gone: process exit).
pub fn release_posix(key: Option<FileKey>, table_id: u64) {
    let owner = Owner::Process(table_id);
    let mut released = false;
    {
        let mut t = table().lock();
        let keys: Vec<FileKey> = match key {
            Some(k) => vec![k],
            None => {
                t.files.iter().filter(|(_, fl)| fl.ranges.iter().any(|r| r.owner == owner)).map(|(k, _)| *k).collect()
            }
        };
        for k in keys {
            if let Some(fl) = t.files.get_mut(&k) {
                if !fl.ranges.iter().any(|r| r.owner == owner) {
                    continue;
                }
                let new: Vec<Range> = fl.ranges.iter().filter(|r| r.owner != owner).copied().collect();
                if let Some(h) = &fl.host {
                    let _ = host_sync_ranges(&h.fd.fd, &fl.ranges, &new, 0, OFFSET_MAX);
                }
                fl.ranges = new;
                released = true;
            }
            tidy(&mut t, k);
        }
    }
    if released {
        wake();
    }
}

/// One lock as /proc/locks lists it.
pub(crate) struct Held {
    pub key: FileKey,
    pub what: &'static str,
    pub write: bool,
    pub pid: i32,
    /// Byte range of a record lock (None for flock).
    pub range: Option<(u64, u64)>,
}

/// Every lock held now, file by file.
pub(crate) fn snapshot() -> Vec<Held> {
    let t = table().lock();
    let mut keys: Vec<&FileKey> = t.files.keys().collect();
    keys.sort_unstable();
    let mut out = Vec::new();
    for key in keys {
        let Some(fl) = t.files.get(key) else { continue };
        for &(_, write, pid) in &fl.flocks {
            out.push(Held { key: *key, what: "FLOCK  ADVISORY ", write, pid, range: None });
        }
        for r in &fl.ranges {
            let (what, pid) = match r.owner {
                Owner::Process(_) => ("POSIX  ADVISORY ", r.pid),
                Owner::File(_) => ("OFDLCK ADVISORY ", -1),
            };
            out.push(Held { key: *key, what, write: r.write, pid, range: Some((r.start, r.end)) });
        }
    }
    out
}

/// A key's device and inode as /proc/locks shows them.
pub(crate) fn shown_id(key: FileKey) -> (u64, u64) {
    if key == ANON_KEY {
        (0, 0)
    } else {
        (key.0 & !HOST_DEV, key.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::Interrupt;
    use std::sync::Arc;

    /// Two open file descriptions of one file (a pipe's read end: its
    /// identity comes from the pipe, no mount needed).
    fn two_opens() -> (Arc<OpenFile>, Arc<OpenFile>) {
        let (r, _w) = crate::pipe::new_pair();
        let a = OpenFile::new_anon(r.clone(), abi::flags::O_RDWR, "a".into());
        let b = OpenFile::new_anon(r, abi::flags::O_RDWR, "b".into());
        (a, b)
    }

    fn req(owner: Owner, kind: Kind, start: u64, end: u64) -> RangeRequest {
        RangeRequest { owner, pid: 1, kind, start, end }
    }

    #[test]
    fn flock_conflicts_block_and_release_on_drop() {
        let irq = Interrupt::default();
        let ctx = IoCtx { flags: 0, interrupt: &irq };
        let (a, b) = two_opens();
        flock(&a, &ctx, 1, Kind::Write, false).unwrap();
        assert_eq!(flock(&b, &ctx, 2, Kind::Read, false), Err(Errno::EAGAIN));
        let b2 = b.clone();
        let t = std::thread::spawn(move || {
            let irq = Interrupt::default();
            flock(&b2, &IoCtx { flags: 0, interrupt: &irq }, 2, Kind::Write, true)
        });
        drop(a);
        assert_eq!(t.join().unwrap(), Ok(()));
    }

    #[test]
    fn blocked_requests_end_on_interrupt_and_deadlocks_are_found() {
        let irq = Arc::new(Interrupt::default());
        let (a, b) = two_opens();
        let ctx = IoCtx { flags: 0, interrupt: &irq };
        let (p1, p2) = (Owner::Process(u64::MAX - 1), Owner::Process(u64::MAX - 2));
        set_range(&a, &ctx, req(p1, Kind::Write, 0, 0), false).unwrap();
        set_range(&b, &ctx, req(p2, Kind::Write, 1, 1), false).unwrap();
        assert_eq!(set_range(&b, &ctx, req(p2, Kind::Read, 0, 9), false), Err(Errno::EAGAIN));
        // p2 waits for p1 (in a thread) ...
        let b2 = b.clone();
        let irq2 = Arc::new(Interrupt::default());
        let i2 = irq2.clone();
        let t = std::thread::spawn(move || {
            set_range(&b2, &IoCtx { flags: 0, interrupt: &i2 }, req(p2, Kind::Write, 0, 0), true)
        });
        // ... so p1 waiting for p2 would close the cycle.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = set_range(&a, &ctx, req(p1, Kind::Write, 1, 1), false);
            assert_eq!(r, Err(Errno::EAGAIN));
            if table().lock().waiting.iter().any(|w| w.owner == p2) {
                break;
            }
            assert!(Instant::now() < deadline, "the waiter never blocked");
            std::thread::yield_now();
        }
        assert_eq!(set_range(&a, &ctx, req(p1, Kind::Write, 1, 1), true), Err(Errno::EDEADLK));
        irq2.interrupt();
        assert_eq!(t.join().unwrap(), Err(Errno::ERESTARTSYS));
        release_posix(None, u64::MAX - 1);
        release_posix(None, u64::MAX - 2);
        assert!(test_range(&a, Owner::Process(7), Kind::Write, 0, OFFSET_MAX).unwrap().is_none());
    }

    fn r(owner: u64, start: u64, end: u64, write: bool) -> Range {
        Range { owner: Owner::Process(owner), pid: owner as i32, start, end, write }
    }

    #[test]
    fn apply_merges_and_splits() {
        let a = Owner::Process(1);
        let v = apply(&[], a, 1, Kind::Read, 0, 9);
        let v = apply(&v, a, 1, Kind::Read, 10, 19);
        assert_eq!(v, vec![r(1, 0, 19, false)]);
        let v = apply(&v, a, 1, Kind::Write, 5, 9);
        assert_eq!(v, vec![r(1, 0, 4, false), r(1, 5, 9, true), r(1, 10, 19, false)]);
        let v = apply(&v, a, 1, Kind::Unlock, 0, 19);
        assert!(v.is_empty());
        let v = apply(&[], a, 1, Kind::Write, 0, OFFSET_MAX);
        let v = apply(&v, a, 1, Kind::Unlock, 100, 199);
        assert_eq!(v, vec![r(1, 0, 99, true), r(1, 200, OFFSET_MAX, true)]);
    }

    #[test]
    fn union_takes_the_strongest() {
        let v = vec![r(1, 0, 9, false), r(2, 5, 14, false), r(3, 20, 29, true)];
        assert_eq!(union_over(&v, 0, 100), vec![(0, 14, false), (20, 29, true)]);
        assert_eq!(union_over(&v, 8, 25), vec![(8, 14, false), (20, 25, true)]);
        let v = vec![r(1, 0, 9, false), r(2, 5, 14, true), r(3, 15, OFFSET_MAX, true)];
        assert_eq!(union_over(&v, 0, OFFSET_MAX), vec![(0, 4, false), (5, OFFSET_MAX, true)]);
        assert_eq!(union_over(&v, 3, 3), vec![(3, 3, false)]);
        assert!(union_over(&v[..1], 10, 20).is_empty());
    }

    #[test]
    fn conflicts_and_deadlocks() {
        let v = vec![r(1, 0, 9, false)];
        assert!(first_conflict(&v, Owner::Process(2), false, 0, 9).is_none());
        assert!(first_conflict(&v, Owner::Process(2), true, 9, 9).is_some());
        assert!(first_conflict(&v, Owner::Process(1), true, 0, 9).is_none());
        let mut t = Table::default();
        t.waiting.push(Waiter { token: 1, owner: Owner::Process(2), blocker: Owner::Process(1) });
        assert!(deadlock(&t, Owner::Process(1), Owner::Process(2)));
        assert!(!deadlock(&t, Owner::Process(3), Owner::Process(2)));
    }
}
