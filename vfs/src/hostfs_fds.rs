//! The host descriptors behind hostfs, and their budget.
//!
//! A sandbox holds two kinds of host descriptors for host files:
//!
//! * *node descriptors* (`O_PATH`, one per host node the Sentry knows):
//!   kept in a per-sandbox second-chance (clock) list of at most
//!   [`FdBudget::node_cap`] entries, which also keeps those nodes alive,
//!   so that walking a path again finds its nodes (one statx each instead
//!   of an open and a close). An evicted node reopens its
//!   descriptor on demand through its parent's descriptor and its name
//!   (`openat(parent, name, O_PATH|O_NOFOLLOW)`), checking that the device
//!   and inode are still the ones it had (else `ESTALE`, as NFS says when a
//!   name no longer leads to the file a handle was for). Mount roots are
//!   pinned: they are the descriptors opened at boot.
//! * *file descriptors* (opened for I/O): one per node and access mode,
//!   shared by every guest open file of that node and mode (reads and
//!   writes are positioned, so sharing changes nothing the guest sees).
//!   At most [`FdBudget::file_cap`] exist at once per sandbox; past that an
//!   open fails with `ENFILE` ("too many open files in the system": the
//!   sandbox is the guest's system), never exhausting the Sentry's own
//!   descriptor table.

use crate::util::last_errno;
use abi::Errno;
use std::collections::VecDeque;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Node descriptors a sandbox keeps by default.
pub const DEFAULT_NODE_FDS: usize = 1024;
/// Host files a sandbox may hold open by default.
pub const DEFAULT_FILE_FDS: usize = 4096;

/// What a sweep of the clock did to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// Its descriptor was dropped.
    Evicted,
    /// Used since the last sweep: kept (and marked unused).
    Kept,
    /// It had no descriptor any more (dropped elsewhere, e.g. on unlink).
    Empty,
}

/// Something that holds an evictable node descriptor.
pub(crate) trait Evict: Send + Sync {
    fn sweep(&self) -> Sweep;
}

/// The per-sandbox host-descriptor budget.
pub struct FdBudget {
    node_cap: usize,
    file_cap: usize,
    nodes_held: AtomicUsize,
    files_held: AtomicUsize,
    /// The nodes holding descriptors, each once (strong references: a
    /// cached node stays alive until swept out).
    clock: Mutex<VecDeque<Arc<dyn Evict>>>,
}

impl FdBudget {
    pub fn new(node_cap: usize, file_cap: usize) -> Arc<FdBudget> {
        Arc::new(FdBudget {
            node_cap: node_cap.max(16),
            file_cap: file_cap.max(16),
            nodes_held: AtomicUsize::new(0),
            files_held: AtomicUsize::new(0),
            clock: Mutex::new(VecDeque::new()),
        })
    }

    /// The node-descriptor budget.
    pub fn node_cap(&self) -> usize {
        self.node_cap
    }

    /// The open-file budget.
    pub fn file_cap(&self) -> usize {
        self.file_cap
    }

    /// Host descriptors held now: (node descriptors, files).
    pub fn held(&self) -> (usize, usize) {
        (self.nodes_held.load(Ordering::Relaxed), self.files_held.load(Ordering::Relaxed))
    }

    /// A node took a descriptor: count it and evict idle ones past the cap.
    pub(crate) fn node_acquired(&self, node: Arc<dyn Evict>) {
        let held = self.nodes_held.fetch_add(1, Ordering::AcqRel) + 1;
        let mut victims = Vec::new();
        {
            let mut clock = crate::util::lock(&self.clock);
            clock.push_back(node);
            // Second chance: a node used since the last sweep goes to the
            // back; at most two passes over the list.
            let mut excess = held.saturating_sub(self.node_cap);
            let mut budget = if excess > 0 { clock.len() * 2 } else { 0 };
            while excess > 0 && budget > 0 {
                budget -= 1;
                let Some(n) = clock.pop_front() else { break };
                match n.sweep() {
                    Sweep::Evicted => {
                        excess -= 1;
                        // Dropped outside the lock: it may be the last
                        // reference to the node.
                        victims.push(n);
                    }
                    Sweep::Empty => victims.push(n),
                    Sweep::Kept => clock.push_back(n),
                }
            }
            // Nodes whose descriptors went elsewhere leave the list too.
            if clock.len() > 2 * self.node_cap + 64 {
                let (keep, gone): (VecDeque<_>, VecDeque<_>) = clock.drain(..).partition(|n| n.sweep() != Sweep::Empty);
                *clock = keep;
                victims.extend(gone);
            }
        }
        drop(victims);
    }

    pub(crate) fn node_released(&self) {
        self.nodes_held.fetch_sub(1, Ordering::AcqRel);
    }

    /// Charge one open host file; `ENFILE` past the cap.
    pub(crate) fn charge_file(self: &Arc<Self>) -> Result<FileCharge, Errno> {
        let n = self.files_held.fetch_add(1, Ordering::AcqRel);
        if n >= self.file_cap {
            self.files_held.fetch_sub(1, Ordering::AcqRel);
            return Err(Errno::ENFILE);
        }
        Ok(FileCharge(self.clone()))
    }
}

/// One open host file counted against a budget, until dropped.
pub struct FileCharge(Arc<FdBudget>);

impl Drop for FileCharge {
    fn drop(&mut self) {
        self.0.files_held.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A cached node descriptor: taken and cloned under a short lock, so an
/// eviction never closes a descriptor a caller is using (the caller's
/// clone keeps it open).
#[derive(Default)]
pub(crate) struct FdSlot {
    /// The descriptor, and whether it is open for reading (a regular
    /// file's node descriptor is, when the host lets us: then it also
    /// serves the guest's reads) rather than O_PATH.
    fd: Mutex<Option<(Arc<OwnedFd>, bool)>>,
    used: AtomicBool,
}

impl FdSlot {
    pub(crate) fn with(fd: OwnedFd, readable: bool) -> FdSlot {
        FdSlot { fd: Mutex::new(Some((Arc::new(fd), readable))), used: AtomicBool::new(true) }
    }

    pub(crate) fn get(&self) -> Option<Arc<OwnedFd>> {
        let g = crate::util::lock(&self.fd);
        let fd = g.as_ref().map(|(f, _)| f.clone());
        if fd.is_some() {
            self.used.store(true, Ordering::Relaxed);
        }
        fd
    }

    /// The descriptor if it is open for reading.
    pub(crate) fn get_readable(&self) -> Option<Arc<OwnedFd>> {
        let g = crate::util::lock(&self.fd);
        let fd = g.as_ref().filter(|(_, r)| *r).map(|(f, _)| f.clone());
        if fd.is_some() {
            self.used.store(true, Ordering::Relaxed);
        }
        fd
    }

    /// Install `fd` unless another caller did meanwhile; true if installed.
    pub(crate) fn fill(&self, fd: &Arc<OwnedFd>, readable: bool) -> bool {
        let mut g = crate::util::lock(&self.fd);
        if g.is_some() {
            return false;
        }
        *g = Some((fd.clone(), readable));
        self.used.store(true, Ordering::Relaxed);
        true
    }

    pub(crate) fn sweep(&self) -> Sweep {
        let mut g = crate::util::lock(&self.fd);
        if g.is_none() {
            return Sweep::Empty;
        }
        if self.used.swap(false, Ordering::Relaxed) {
            return Sweep::Kept;
        }
        *g = None;
        Sweep::Evicted
    }

    /// Drop the descriptor now (the node's file was removed); true if there
    /// was one.
    pub(crate) fn clear(&self) -> bool {
        crate::util::lock(&self.fd).take().is_some()
    }

    pub(crate) fn is_filled(&self) -> bool {
        crate::util::lock(&self.fd).is_some()
    }
}

/// What identifies a host node: device, inode and, where the filesystem
/// records it, birth time (an inode number is reused as soon as a file is
/// deleted; the pair with its birth time is not).
pub(crate) type Ident = (u64, u64, i64);

/// The identity of `name` in `dir` (empty name and `AT_EMPTY_PATH`: of
/// `dir` itself), never following a symlink.
pub(crate) fn ident_at(dir: RawFd, name: &CStr, empty: bool) -> Result<(Ident, u32), Errno> {
    // SAFETY: an all-zero `struct statx` is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let flags = libc::AT_SYMLINK_NOFOLLOW | if empty { libc::AT_EMPTY_PATH } else { 0 };
    let mask = libc::STATX_TYPE | libc::STATX_INO | libc::STATX_BTIME;
    // SAFETY: `name` is a valid C string and `st` a valid out pointer.
    cvt(unsafe { libc::statx(dir, name.as_ptr(), flags, mask, &mut st) })?;
    let dev = libc::makedev(st.stx_dev_major, st.stx_dev_minor);
    let birth = if st.stx_mask & libc::STATX_BTIME != 0 {
        st.stx_btime.tv_sec.wrapping_mul(1_000_000_000).wrapping_add(st.stx_btime.tv_nsec as i64)
    } else {
        0
    };
    Ok(((dev, st.stx_ino, birth), st.stx_mode as u32 & abi::flags::S_IFMT))
}

/// The identity and file type of an open descriptor (O_PATH ones included).
pub(crate) fn ident_of(fd: &OwnedFd) -> Result<(Ident, u32), Errno> {
    ident_at(fd.as_raw_fd(), c"", true)
}

/// `-1` into the errno.
pub(crate) fn cvt(r: libc::c_int) -> Result<libc::c_int, Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Node(FdSlot, Arc<FdBudget>);
    impl Evict for Node {
        fn sweep(&self) -> Sweep {
            let e = self.0.sweep();
            if e == Sweep::Evicted {
                self.1.node_released();
            }
            e
        }
    }

    fn devnull() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn node_descriptors_stay_within_the_cap() {
        let b = FdBudget::new(16, 16);
        let nodes: Vec<Arc<Node>> = (0..100)
            .map(|_| {
                let n = Arc::new(Node(FdSlot::with(devnull(), true), b.clone()));
                b.node_acquired(n.clone());
                n
            })
            .collect();
        let (held, _) = b.held();
        assert!(held <= 16, "{held} node descriptors held");
        assert_eq!(nodes.iter().filter(|n| n.0.is_filled()).count(), held);
    }

    #[test]
    fn files_past_the_cap_are_enfile() {
        let b = FdBudget::new(16, 16);
        let charges: Vec<_> = (0..16).map(|_| b.charge_file().unwrap()).collect();
        assert_eq!(b.charge_file().err(), Some(Errno::ENFILE));
        drop(charges);
        assert!(b.charge_file().is_ok());
    }
}
