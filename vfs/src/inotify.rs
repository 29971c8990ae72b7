//! inotify: watches on nodes and the event queues of inotify instances.
//!
//! A watch hangs off a node's identity, its (st_dev, st_ino), in one
//! sandbox-wide registry, so a node is the same node whichever mount,
//! dentry or hard link reached it and every filesystem is covered alike.
//! Events are reported by the syscall layer after the VFS operation
//! succeeded (the helpers at the bottom: `file_event`, `dir_event`,
//! `removed`, ...), as Linux's fsnotify hooks are called by its VFS; each
//! helper returns at once when no watch exists anywhere in the sandbox
//! (`active`, one atomic load), so the read/write path pays nothing then.
//!
//! Locks: `REGISTRY` before an instance's state; events are delivered
//! after the registry lock is released (one instance's state at a time),
//! and a watch removed on the delivery path (IN_ONESHOT, a deleted node)
//! leaves the instance first and the registry afterwards: a registry
//! entry whose watch is gone is ignored by delivery.

use crate::inode::{FileOps, Inode, SetAttr};
use crate::mount::Dentry;
use crate::wait::{IoCtx, WaitQueue, Waitable};
use abi::flags::{S_IFDIR, S_IFMT};
use abi::Errno;
use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_ALL_EVENTS: u32 = 0xfff;
pub const IN_UNMOUNT: u32 = 0x2000;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;
/// Every bit inotify_add_watch accepts (Linux's ALL_INOTIFY_BITS).
pub const ALL_INOTIFY_BITS: u32 =
    IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE | IN_MASK_ADD | IN_ISDIR | IN_ONESHOT;
/// Not an inotify bit: with IN_MOVED_FROM, a rename within one
/// directory (what dnotify's DN_RENAME reports; Linux's FS_DN_RENAME).
pub const IN_DN_RENAME: u32 = 0x0800_0000;
/// The bits a read event may carry.
const REPORTED: u32 = IN_ALL_EVENTS | IN_ISDIR | IN_UNMOUNT | IN_IGNORED | IN_Q_OVERFLOW;
/// The watch flags kept with its mask.
const KEPT_FLAGS: u32 = IN_ONESHOT | IN_EXCL_UNLINK;

/// /proc/sys/fs/inotify/max_queued_events.
pub const MAX_QUEUED_EVENTS: usize = 16384;
/// /proc/sys/fs/inotify/max_user_watches, here per sandbox.
pub const MAX_USER_WATCHES: usize = 8192;
/// /proc/sys/fs/inotify/max_user_instances, here per sandbox.
pub const MAX_USER_INSTANCES: usize = 128;
/// sizeof(struct inotify_event).
const EVENT_HEADER: usize = 16;

/// A node's identity: (st_dev, st_ino).
pub type NodeKey = (u64, u64);

type Group = Waitable<State>;

/// Live watches in the sandbox; zero means no event helper does anything.
static WATCHES: AtomicUsize = AtomicUsize::new(0);
static INSTANCES: AtomicUsize = AtomicUsize::new(0);
static COOKIE: AtomicU32 = AtomicU32::new(0);
/// Which instances watch each node, by wd (entries may name watches
/// already gone).
type Registry = BTreeMap<NodeKey, Vec<(Weak<Group>, i32)>>;
static REGISTRY: Mutex<Registry> = Mutex::new(BTreeMap::new());

/// Whether any watch exists in the sandbox: the hot path's only cost.
#[inline]
pub fn active() -> bool {
    WATCHES.load(Ordering::Relaxed) != 0
}

struct Watch {
    key: NodeKey,
    /// Events wanted, plus IN_ONESHOT / IN_EXCL_UNLINK.
    mask: u32,
}

struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The name's length as read(2) reports it: NUL-terminated and
    /// padded to a multiple of the header size, 0 without a name.
    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).div_ceil(EVENT_HEADER) * EVENT_HEADER
        }
    }

    fn size(&self) -> usize {
        EVENT_HEADER + self.name_len()
    }

    /// What it costs the Sentry's heap, charged to the sandbox's memory.
    fn heap_cost(&self) -> u64 {
        (std::mem::size_of::<Event>() + self.name.len()) as u64
    }
}

#[derive(Default)]
pub struct State {
    events: VecDeque<Event>,
    /// The IN_Q_OVERFLOW event is in `events`: later events are dropped.
    overflowed: bool,
    watches: BTreeMap<i32, Watch>,
    by_key: BTreeMap<NodeKey, i32>,
    last_wd: i32,
    /// Heap bytes of the queued events, charged with `limits::charge_heap_always`.
    charged: u64,
}

impl State {
    /// Queue an event as Linux's fsnotify_insert_event: merged with the
    /// last queued one when identical, an overflow marker past the limit.
    fn queue(&mut self, ev: Event) {
        if let Some(last) = self.events.back() {
            if last.mask & IN_IGNORED == 0 && last.mask == ev.mask && last.wd == ev.wd && last.name == ev.name {
                return;
            }
        }
        if self.events.len() >= MAX_QUEUED_EVENTS {
            if !self.overflowed {
                self.overflowed = true;
                self.push(Event { wd: -1, mask: IN_Q_OVERFLOW, cookie: 0, name: Vec::new() });
            }
            return;
        }
        self.push(ev);
    }

    fn push(&mut self, ev: Event) {
        let cost = ev.heap_cost();
        crate::limits::charge_heap_always(cost);
        self.charged += cost;
        self.events.push_back(ev);
    }

    fn pop(&mut self) {
        if let Some(ev) = self.events.pop_front() {
            let cost = ev.heap_cost().min(self.charged);
            crate::limits::uncharge_heap(cost);
            self.charged -= cost;
        }
    }

    /// Drop watch `wd` and queue its IN_IGNORED; false if there is none.
    fn drop_watch(&mut self, wd: i32) -> bool {
        let Some(w) = self.watches.remove(&wd) else {
            return false;
        };
        self.by_key.remove(&w.key);
        WATCHES.fetch_sub(1, Ordering::Relaxed);
        self.queue(Event { wd, mask: IN_IGNORED, cookie: 0, name: Vec::new() });
        true
    }

    fn next_wd(&mut self) -> i32 {
        // Cyclic, as Linux's idr_alloc_cyclic: a removed wd is not reused
        // at once. At most MAX_USER_WATCHES are live, so this ends.
        loop {
            self.last_wd = if self.last_wd >= i32::MAX - 1 { 1 } else { self.last_wd + 1 };
            if !self.watches.contains_key(&self.last_wd) {
                return self.last_wd;
            }
        }
    }
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    crate::util::lock(&REGISTRY)
}

/// Forget `group`'s registry entry for `wd` on `key` (its watch is gone).
fn unregister(group: &Arc<Group>, key: NodeKey, wd: i32) {
    let mut reg = registry();
    if let Some(list) = reg.get_mut(&key) {
        list.retain(|(g, w)| !(*w == wd && std::ptr::eq(g.as_ptr(), Arc::as_ptr(group))) && g.strong_count() > 0);
        if list.is_empty() {
            reg.remove(&key);
        }
    }
}

/// An inotify instance: what inotify_init1 returns.
pub struct Inotify {
    group: Arc<Group>,
}

impl Inotify {
    /// A new instance (EMFILE past the sandbox's instance limit).
    pub fn new_ops() -> Result<Arc<dyn FileOps>, Errno> {
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        if n >= MAX_USER_INSTANCES {
            INSTANCES.fetch_sub(1, Ordering::Relaxed);
            return Err(Errno::EMFILE);
        }
        Ok(Arc::new(Inotify { group: Waitable::new(State::default()) }))
    }

    /// Add or update the watch on the node `key` (inotify_add_watch after
    /// the path walk); returns its wd.
    pub fn add_watch(&self, key: NodeKey, mask: u32) -> Result<i32, Errno> {
        let events = mask & (IN_ALL_EVENTS | KEPT_FLAGS);
        let mut reg = registry();
        let mut s = self.group.lock();
        if let Some(&wd) = s.by_key.get(&key) {
            if mask & IN_MASK_CREATE != 0 {
                return Err(Errno::EEXIST);
            }
            if let Some(w) = s.watches.get_mut(&wd) {
                w.mask = if mask & IN_MASK_ADD != 0 { w.mask | events } else { events };
            }
            return Ok(wd);
        }
        if WATCHES.load(Ordering::Relaxed) >= MAX_USER_WATCHES {
            return Err(Errno::ENOSPC);
        }
        let wd = s.next_wd();
        s.watches.insert(wd, Watch { key, mask: events });
        s.by_key.insert(key, wd);
        WATCHES.fetch_add(1, Ordering::Relaxed);
        reg.entry(key).or_default().push((Arc::downgrade(&self.group), wd));
        Ok(wd)
    }

    /// inotify_rm_watch: EINVAL for a wd this instance does not have.
    pub fn rm_watch(&self, wd: i32) -> Result<(), Errno> {
        let key = {
            let mut s = self.group.lock();
            let key = s.watches.get(&wd).map(|w| w.key).ok_or(Errno::EINVAL)?;
            s.drop_watch(wd);
            key
        };
        self.group.notify();
        unregister(&self.group, key, wd);
        Ok(())
    }

    /// The bytes a read would return now (FIONREAD).
    fn pending_bytes(&self) -> usize {
        self.group.lock().events.iter().map(Event::size).sum()
    }
}

impl FileOps for Inotify {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        self.group.block_on(
            ctx,
            |s| {
                let first = s.events.front()?;
                if first.size() > buf.len() {
                    return Some(Err(Errno::EINVAL));
                }
                let mut at = 0;
                while let Some(ev) = s.events.front() {
                    let size = ev.size();
                    let Some(out) = buf.get_mut(at..at + size) else { break };
                    out.fill(0);
                    out[0..4].copy_from_slice(&ev.wd.to_ne_bytes());
                    out[4..8].copy_from_slice(&ev.mask.to_ne_bytes());
                    out[8..12].copy_from_slice(&ev.cookie.to_ne_bytes());
                    out[12..16].copy_from_slice(&(ev.name_len() as u32).to_ne_bytes());
                    out[16..16 + ev.name.len()].copy_from_slice(&ev.name);
                    if ev.mask == IN_Q_OVERFLOW {
                        s.overflowed = false;
                    }
                    s.pop();
                    at += size;
                }
                Some(Ok(at))
            },
            |_| None,
        )
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> u32 {
        if self.group.lock().events.is_empty() {
            0
        } else {
            (libc::POLLIN | libc::POLLRDNORM) as u32
        }
    }

    /// lseek answers 0, as Linux's noop_llseek for inotify.
    fn pinned_offset(&self) -> bool {
        true
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.group.queue)
    }

    fn ioctl(&self, req: u64, _arg: u64, _input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        if req == abi::flags::FIONREAD {
            let n = i32::try_from(self.pending_bytes()).unwrap_or(i32::MAX);
            return Ok((0, Some(n.to_ne_bytes().to_vec())));
        }
        Err(Errno::ENOTTY)
    }

    fn stat(&self) -> Option<abi::Stat> {
        Some(abi::Stat { st_mode: 0o600, st_nlink: 1, st_blksize: 4096, ..Default::default() })
    }

    fn release(&self) {
        let gone: Vec<(i32, NodeKey)> = {
            let mut s = self.group.lock();
            let gone = s.watches.iter().map(|(wd, w)| (*wd, w.key)).collect();
            WATCHES.fetch_sub(s.watches.len(), Ordering::Relaxed);
            s.watches.clear();
            s.by_key.clear();
            s.events.clear();
            crate::limits::uncharge_heap(s.charged);
            s.charged = 0;
            gone
        };
        for (wd, key) in gone {
            unregister(&self.group, key, wd);
        }
        INSTANCES.fetch_sub(1, Ordering::Relaxed);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

// ---- Reporting events (called by the syscall layer) ----

/// What the event helpers need of a node: its identity, whether it is a
/// directory, and whether it still has a name (IN_EXCL_UNLINK).
#[derive(Clone, Copy, Debug)]
pub struct Node {
    pub key: NodeKey,
    pub is_dir: bool,
    pub nlink: u64,
}

/// The node behind `inode`, None if it cannot be stat()ed.
pub fn node_of(inode: &dyn Inode) -> Option<Node> {
    let st = inode.stat().ok()?;
    Some(Node { key: (st.st_dev, st.st_ino), is_dir: st.st_mode & S_IFMT == S_IFDIR, nlink: st.st_nlink })
}

/// A fresh cookie tying an IN_MOVED_FROM to its IN_MOVED_TO.
pub fn new_cookie() -> u32 {
    COOKIE.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
}

/// How a watch receives an event.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    /// On the watched node itself.
    Itself,
    /// On a child of the watched directory (IN_EXCL_UNLINK applies).
    Child { unlinked: bool },
    /// On an entry of the watched directory (create, delete, move).
    Entry,
}

/// A dnotify mark was set or went: it keeps the event helpers active as
/// a watch does.
pub(crate) fn watch_added() {
    WATCHES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn watch_removed() {
    WATCHES.fetch_sub(1, Ordering::Relaxed);
}

/// Deliver `mask` to every watch on `key`.
fn deliver(key: NodeKey, mask: u32, cookie: u32, name: &[u8], via: Via) {
    reap(None);
    crate::dnotify::event(key, mask);
    let targets: Vec<(Arc<Group>, i32)> = match registry().get(&key) {
        Some(list) => list.iter().filter_map(|(g, wd)| Some((g.upgrade()?, *wd))).collect(),
        None => return,
    };
    for (group, wd) in targets {
        let mut oneshot_gone = false;
        {
            let mut s = group.lock();
            let Some(w) = s.watches.get(&wd).filter(|w| w.key == key) else { continue };
            let wmask = w.mask;
            if wmask & mask & IN_ALL_EVENTS == 0 {
                continue;
            }
            if wmask & IN_EXCL_UNLINK != 0 && via == (Via::Child { unlinked: true }) {
                continue;
            }
            s.queue(Event { wd, mask: mask & REPORTED, cookie, name: name.to_vec() });
            if wmask & IN_ONESHOT != 0 {
                s.drop_watch(wd);
                oneshot_gone = true;
            }
        }
        group.notify();
        if oneshot_gone {
            unregister(&group, key, wd);
        }
    }
}

/// The node was deleted: IN_DELETE_SELF, then IN_IGNORED, and its
/// watches are gone.
pub fn removed(node: &Node) {
    if !active() {
        return;
    }
    // inotify never reports IN_ISDIR with the self events.
    deliver(node.key, IN_DELETE_SELF, 0, &[], Via::Itself);
    let list = registry().remove(&node.key).unwrap_or_default();
    for (g, wd) in list {
        let Some(group) = g.upgrade() else { continue };
        let dropped = {
            let mut s = group.lock();
            s.watches.get(&wd).is_some_and(|w| w.key == node.key) && s.drop_watch(wd)
        };
        if dropped {
            group.notify();
        }
    }
}

/// Deleted nodes whose dentry is still held (an open file, a working
/// directory): Linux reports IN_DELETE_SELF when the last holder lets go.
static PENDING: Mutex<Vec<(Weak<Dentry>, Node)>> = Mutex::new(Vec::new());
static ANY_PENDING: AtomicBool = AtomicBool::new(false);

/// The node at `d` lost its last name. Deleted now when nobody but the
/// caller (who holds `own_refs` references to `d`) holds its dentry,
/// otherwise when the last holder lets go.
pub fn unlinked(d: &Arc<Dentry>, node: &Node, own_refs: usize) {
    if !active() {
        return;
    }
    if Arc::strong_count(d) <= own_refs {
        removed(node);
        return;
    }
    let node = Node { nlink: 0, ..*node };
    crate::util::lock(&PENDING).push((Arc::downgrade(d), node));
    ANY_PENDING.store(true, Ordering::Release);
}

/// The node of a deleted file still held at `d`: what events on it are
/// reported for where the filesystem can no longer stat it (hostfs).
fn pending_node(d: &Dentry) -> Option<Node> {
    if !ANY_PENDING.load(Ordering::Acquire) {
        return None;
    }
    let p = crate::util::lock(&PENDING);
    p.iter().find(|(w, _)| std::ptr::eq(w.as_ptr(), d)).map(|(_, n)| *n)
}

/// Report the deletions whose dentry is gone, or whose last holder is
/// `closing` (an open file about to drop its reference).
pub fn reap(closing: Option<&Arc<Dentry>>) {
    if !ANY_PENDING.load(Ordering::Acquire) {
        return;
    }
    let due: Vec<Node> = {
        let mut p = crate::util::lock(&PENDING);
        let mut due = Vec::new();
        p.retain(|(w, node)| {
            let last = match closing {
                Some(d) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(d)) && Arc::strong_count(d) == 1,
                None => false,
            };
            let gone = last || w.strong_count() == 0;
            if gone {
                due.push(*node);
            }
            !gone
        });
        ANY_PENDING.store(!p.is_empty(), Ordering::Release);
        due
    };
    for node in due {
        removed(&node);
    }
}

/// An event on a node alone (Linux's fsnotify_inode): IN_ATTRIB of a
/// link count, IN_MOVE_SELF.
pub fn node_event(node: &Node, mask: u32) {
    if !active() {
        return;
    }
    // inotify never reports IN_ISDIR with the self events.
    let isdir = if node.is_dir && mask & (IN_MOVE_SELF | IN_DELETE_SELF) == 0 { IN_ISDIR } else { 0 };
    deliver(node.key, mask | isdir, 0, &[], Via::Itself);
}

/// An event on the file at `d` (Linux's fsnotify_parent, then the node):
/// its directory's watches get it with the name first, then its own.
pub fn file_event(d: &Dentry, mask: u32) {
    if !active() {
        return;
    }
    let Some(node) = node_of(&*d.inode).or_else(|| pending_node(d)) else { return };
    let isdir = if node.is_dir { IN_ISDIR } else { 0 };
    // A mount's root has no parent on its own filesystem.
    if let Some(parent) = d.parent().filter(|p| Arc::ptr_eq(&p.mount, &d.mount)) {
        if let Some(pnode) = node_of(&*parent.inode) {
            let unlinked = !node.is_dir && node.nlink == 0;
            deliver(pnode.key, mask | isdir, 0, &d.name(), Via::Child { unlinked });
        }
    }
    let unlinked = !node.is_dir && node.nlink == 0;
    deliver(node.key, mask | isdir, 0, &[], if unlinked { Via::Child { unlinked } } else { Via::Itself });
}

/// An event on an entry `name` of directory `dir` (create, delete,
/// moves); `is_dir` says whether the entry is a directory.
pub fn dir_event(dir: &Dentry, mask: u32, name: &[u8], cookie: u32, is_dir: bool) {
    if !active() {
        return;
    }
    let Some(dnode) = node_of(&*dir.inode) else { return };
    let isdir = if is_dir { IN_ISDIR } else { 0 };
    deliver(dnode.key, mask | isdir, cookie, name, Via::Entry);
}

/// The events of an attribute change (Linux's fsnotify_change).
pub fn setattr_mask(attr: &SetAttr) -> u32 {
    let mut mask = 0;
    if attr.uid.is_some() || attr.gid.is_some() || attr.mode.is_some() {
        mask |= IN_ATTRIB;
    }
    if attr.size.is_some() {
        mask |= IN_MODIFY;
    }
    match (attr.atime.is_some(), attr.mtime.is_some()) {
        (true, true) => mask |= IN_ATTRIB,
        (true, false) => mask |= IN_ACCESS,
        (false, true) => mask |= IN_MODIFY,
        (false, false) => {}
    }
    mask
}

/// After a successful setattr of the file at `d`.
pub fn attr_changed(d: &Dentry, attr: &SetAttr) {
    if !active() {
        return;
    }
    let mask = setattr_mask(attr);
    if mask != 0 {
        file_event(d, mask);
    }
}

/// After `n` bytes were read (IN_ACCESS) or written (IN_MODIFY) through
/// `f`: nothing for files without a path or transfers of nothing.
pub fn transferred(f: &crate::OpenFile, n: u64, mask: u32) {
    if n == 0 || !active() {
        return;
    }
    if let Some(d) = &f.dentry {
        file_event(d, mask);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(i: &crate::Interrupt) -> IoCtx<'_> {
        IoCtx { flags: abi::flags::O_NONBLOCK, interrupt: i }
    }

    fn read_all(ino: &Inotify) -> Vec<(i32, u32, Vec<u8>)> {
        let irq = crate::Interrupt::new();
        let mut buf = vec![0u8; 4096];
        let n = match ino.read(&ctx(&irq), &mut buf, 0) {
            Ok(n) => n,
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        let mut at = 0;
        while at < n {
            let wd = i32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
            let mask = u32::from_ne_bytes(buf[at + 4..at + 8].try_into().unwrap());
            let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
            let name: Vec<u8> = buf[at + 16..at + 16 + len].iter().copied().take_while(|b| *b != 0).collect();
            out.push((wd, mask, name));
            at += 16 + len;
        }
        out
    }

    #[test]
    fn merge_oneshot_and_removal() {
        let ops = Inotify::new_ops().unwrap();
        let ino = ops.as_any().downcast_ref::<Inotify>().unwrap();
        let key = (0xfeed, 1);
        let wd = ino.add_watch(key, IN_MODIFY | IN_ATTRIB).unwrap();
        assert_eq!(ino.add_watch(key, IN_ACCESS | IN_MASK_ADD).unwrap(), wd);
        assert_eq!(ino.add_watch(key, IN_ACCESS | IN_MASK_CREATE), Err(Errno::EEXIST));
        deliver(key, IN_MODIFY, 0, &[], Via::Itself);
        deliver(key, IN_MODIFY, 0, &[], Via::Itself);
        deliver(key, IN_ACCESS, 0, &[], Via::Itself);
        deliver(key, IN_OPEN, 0, &[], Via::Itself);
        assert_eq!(ino.pending_bytes(), 32);
        assert_eq!(read_all(ino), vec![(wd, IN_MODIFY, vec![]), (wd, IN_ACCESS, vec![])]);
        let wd2 = ino.add_watch((0xfeed, 2), IN_CREATE | IN_ONESHOT).unwrap();
        assert_ne!(wd, wd2);
        deliver((0xfeed, 2), IN_CREATE, 0, b"abc", Via::Entry);
        deliver((0xfeed, 2), IN_CREATE, 0, b"abd", Via::Entry);
        assert_eq!(read_all(ino), vec![(wd2, IN_CREATE, b"abc".to_vec()), (wd2, IN_IGNORED, vec![])]);
        assert_eq!(ino.rm_watch(wd2), Err(Errno::EINVAL));
        ino.rm_watch(wd).unwrap();
        assert_eq!(read_all(ino), vec![(wd, IN_IGNORED, vec![])]);
        ops.release();
    }

    #[test]
    fn overflow_marks_the_queue() {
        let ops = Inotify::new_ops().unwrap();
        let ino = ops.as_any().downcast_ref::<Inotify>().unwrap();
        let key = (0xfeed, 3);
        let wd = ino.add_watch(key, IN_CREATE).unwrap();
        for i in 0..MAX_QUEUED_EVENTS + 10 {
            deliver(key, IN_CREATE, 0, format!("f{i}").as_bytes(), Via::Entry);
        }
        let s = ino.group.lock();
        assert_eq!(s.events.len(), MAX_QUEUED_EVENTS + 1);
        assert_eq!(s.events.back().map(|e| (e.wd, e.mask)), Some((-1, IN_Q_OVERFLOW)));
        drop(s);
        let _ = wd;
        ops.release();
    }
}
