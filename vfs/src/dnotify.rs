//! dnotify (fcntl F_NOTIFY): a signal to a directory descriptor's owner
//! when the directory's entries change.
//!
//! Marks hang off the directory's (st_dev, st_ino), as inotify's watches
//! do, and are fed by the same event helpers (`inotify::deliver` calls
//! `event` first): while any mark exists the helpers count as active. A
//! mark belongs to one open file description and one descriptor table,
//! as in Linux: closing a descriptor of that file from that table removes
//! it (`flush`), and without DN_MULTISHOT it goes after its first event.
//!
//! Locks: `MARKS` alone; signals are sent after it is released.

use crate::fdtable::OpenFile;
use crate::inotify::{self, NodeKey};
use abi::Errno;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub const DN_ACCESS: u64 = 0x1;
pub const DN_MODIFY: u64 = 0x2;
pub const DN_CREATE: u64 = 0x4;
pub const DN_DELETE: u64 = 0x8;
pub const DN_RENAME: u64 = 0x10;
pub const DN_ATTRIB: u64 = 0x20;
pub const DN_MULTISHOT: u64 = 0x8000_0000;

/// Marks in the sandbox at most (Linux bounds them by memory only).
const MAX_MARKS: usize = 8192;

struct Mark {
    file: Weak<OpenFile>,
    file_id: u64,
    table: u64,
    fd: i32,
    /// The inotify events that fire it (see `events_of`).
    events: u32,
    multishot: bool,
}

static MARKS: Mutex<BTreeMap<NodeKey, Vec<Mark>>> = Mutex::new(BTreeMap::new());
/// Marks in `MARKS` (changed under its lock): inotify's events skip the
/// lock while there are none.
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn added() {
    COUNT.fetch_add(1, Ordering::Relaxed);
    inotify::watch_added();
}

fn removed(n: usize) {
    COUNT.fetch_sub(n, Ordering::Relaxed);
    for _ in 0..n {
        inotify::watch_removed();
    }
}

fn marks() -> std::sync::MutexGuard<'static, BTreeMap<NodeKey, Vec<Mark>>> {
    crate::util::lock(&MARKS)
}

/// The inotify events a DN_* mask stands for (Linux's convert_arg):
/// DN_RENAME is a rename within the directory (`inotify::IN_DN_RENAME`).
fn events_of(arg: u64) -> u32 {
    let mut m = 0;
    if arg & DN_ACCESS != 0 {
        m |= inotify::IN_ACCESS;
    }
    if arg & DN_MODIFY != 0 {
        m |= inotify::IN_MODIFY;
    }
    if arg & DN_CREATE != 0 {
        m |= inotify::IN_CREATE | inotify::IN_MOVED_TO;
    }
    if arg & DN_DELETE != 0 {
        m |= inotify::IN_DELETE | inotify::IN_MOVED_FROM;
    }
    if arg & DN_RENAME != 0 {
        m |= inotify::IN_DN_RENAME;
    }
    if arg & DN_ATTRIB != 0 {
        m |= inotify::IN_ATTRIB;
    }
    m
}

/// F_NOTIFY with `arg` on descriptor `fd` of `f` in table `table`;
/// `key` is the directory's identity, None when `f` is no directory.
/// The caller has made the calling process the file's owner when this
/// returns Ok with a mark set (Linux's __f_setown in fcntl_dirnotify).
pub fn set(key: Option<NodeKey>, f: &Arc<OpenFile>, table: u64, fd: i32, arg: u64) -> Result<bool, Errno> {
    // An unsigned int since Linux 5.x (an unsigned long in 4.4, whose
    // upper bits named no event either).
    let arg = arg & 0xffff_ffff;
    if arg & !DN_MULTISHOT == 0 {
        flush(f.id, table);
        return Ok(false);
    }
    let key = key.ok_or(Errno::ENOTDIR)?;
    let events = events_of(arg);
    let multishot = arg & DN_MULTISHOT != 0;
    let mut all = marks();
    // The same description through the same table: masks add up.
    if let Some(m) = all.get_mut(&key).and_then(|l| l.iter_mut().find(|m| m.file_id == f.id && m.table == table)) {
        m.events |= events;
        m.multishot |= multishot;
        m.fd = fd;
        return Ok(true);
    }
    if all.values().map(Vec::len).sum::<usize>() >= MAX_MARKS {
        return Err(Errno::ENOMEM);
    }
    all.entry(key).or_default().push(Mark { file: Arc::downgrade(f), file_id: f.id, table, fd, events, multishot });
    added();
    Ok(true)
}

/// A descriptor of the file with id `file_id` was closed through table
/// `table` (Linux's dnotify_flush).
pub fn flush(file_id: u64, table: u64) {
    if !inotify::active() {
        return;
    }
    let mut gone = 0;
    marks().retain(|_, list| {
        list.retain(|m| {
            let keep = !(m.file_id == file_id && m.table == table) && m.file.strong_count() > 0;
            gone += usize::from(!keep);
            keep
        });
        !list.is_empty()
    });
    removed(gone);
}

/// An event `mask` on the node `key` (called by inotify's delivery).
pub(crate) fn event(key: NodeKey, mask: u32) {
    if COUNT.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut fire = Vec::new();
    let mut gone = 0;
    {
        let mut all = marks();
        let Some(list) = all.get_mut(&key) else { return };
        list.retain(|m| {
            let fired = m.events & mask != 0;
            if fired {
                if let Some(f) = m.file.upgrade() {
                    fire.push((f, m.fd));
                }
            }
            let keep = (!fired || m.multishot) && m.file.strong_count() > 0;
            gone += usize::from(!keep);
            keep
        });
        if list.is_empty() {
            all.remove(&key);
        }
    }
    removed(gone);
    for (f, fd) in fire {
        crate::fown::send_sigio(&f, fd, crate::fown::POLL_MSG);
    }
}
