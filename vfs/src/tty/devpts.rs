//! devpts: /dev/pts/ptmx and one /dev/pts/N per live pair (Linux's
//! defaults: slaves mode 0600, ptmx mode 0000), plus the /dev/ptmx and
//! /dev/tty devices of /dev. The directory is a tmpfs whose device nodes
//! open the pair; a pair's name goes when its master closes.
//!
//! The table of live pairs is one per Sentry process (one sandbox).

use super::pty::{Pty, PtyMaster};
use super::*;
use crate::devfs::DevFs;
use crate::inode::{FileOps, Inode, InodeRef};
use crate::tmpfs::{DevOpener, TmpFs, TmpInode};
use crate::util::makedev;
use abi::flags::O_NOCTTY;
use abi::Errno;
use std::collections::BTreeMap;
use std::sync::{Mutex, Weak};

/// /proc/sys/kernel/pty/max.
pub const PTY_MAX: u32 = 4096;
const PTS_MAJOR: u32 = 136;

static TABLE: Mutex<BTreeMap<u32, Weak<Pty>>> = Mutex::new(BTreeMap::new());
/// The sandbox's devpts directory (the console's pair is made in it).
static INSTANCE: Mutex<Option<Weak<TmpInode>>> = Mutex::new(None);

/// A new pair in the sandbox's devpts (for the console).
pub fn open_sandbox_master() -> Result<Arc<dyn FileOps>, Errno> {
    let dir = INSTANCE.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(Weak::upgrade);
    open_master_in(&dir.ok_or(Errno::ENXIO)?)
}

fn table() -> std::sync::MutexGuard<'static, BTreeMap<u32, Weak<Pty>>> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

fn live() -> Vec<Arc<Pty>> {
    table().values().filter_map(|w| w.upgrade()).collect()
}

/// The terminal controlling session `sid`, if any.
pub fn tty_of_session(sid: i32) -> Option<Arc<Pty>> {
    live().into_iter().find(|p| p.master_open() && p.session() == Some(sid))
}

pub(crate) fn session_has_tty(sid: i32) -> bool {
    tty_of_session(sid).is_some()
}

/// A session leader gives up its terminal when it exits.
pub fn session_leader_exited(sid: i32) {
    for p in live() {
        if p.state.lock().session == Some(sid) {
            p.disassociate();
        }
    }
}

pub struct DevPts {
    root: Arc<TmpInode>,
}

impl DevPts {
    /// A new devpts instance.
    pub fn new() -> Arc<DevPts> {
        let root = TmpFs::new_root_inode(0o755, 0, 0, crate::tmpfs::DEFAULT_LIMIT);
        let pts = Arc::new(DevPts { root });
        let _ = pts.root.add_node(b"ptmx", 0, makedev(5, 2), Some(pts.ptmx_opener()));
        *INSTANCE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::downgrade(&pts.root));
        pts
    }

    /// The directory to mount at /dev/pts.
    pub fn root(&self) -> InodeRef {
        self.root.clone()
    }

    /// Give `dev` (a /dev from [`DevFs::new_root`]) its ptmx and tty devices.
    pub fn attach_dev(self: &Arc<Self>, dev: &InodeRef) -> Result<(), Errno> {
        DevFs::add_file(dev, b"ptmx", 0o666, makedev(5, 2), self.ptmx_opener())?;
        let tty: DevOpener = Arc::new(open_tty);
        DevFs::add_file(dev, b"tty", 0o666, makedev(5, 0), tty)
    }

    fn ptmx_opener(&self) -> DevOpener {
        // The mount holds the directory; the pair's names live in it.
        let root = Arc::downgrade(&self.root);
        Arc::new(move |_flags| open_master_in(&root.upgrade().ok_or(Errno::ENXIO)?))
    }

    /// A new pair; its slave appears as /dev/pts/N.
    pub fn open_master(&self) -> Result<Arc<dyn FileOps>, Errno> {
        open_master_in(&self.root)
    }
}

fn open_master_in(dir: &Arc<TmpInode>) -> Result<Arc<dyn FileOps>, Errno> {
    {
        let pty = {
            let mut t = table();
            t.retain(|_, w| w.strong_count() > 0);
            let index = (0..PTY_MAX).find(|i| !t.contains_key(i)).ok_or(Errno::ENOSPC)?;
            let pty = Pty::new(index);
            t.insert(index, Arc::downgrade(&pty));
            pty
        };
        let weak = Arc::downgrade(&pty);
        let slave: DevOpener = Arc::new(move |flags| {
            let pty = weak.upgrade().ok_or(Errno::EIO)?;
            let ctty = if flags & O_NOCTTY == 0 { ctty_candidate() } else { None };
            pty.open_slave(ctty)
        });
        let name = pty.index.to_string();
        if let Err(e) = dir.add_node(name.as_bytes(), 0o600, makedev(PTS_MAJOR, pty.index), Some(slave)) {
            table().remove(&pty.index);
            return Err(e);
        }
        let root = Arc::downgrade(dir);
        // The name goes with the master; the index stays taken while a
        // slave is open (its entry dies with the pair), as Linux's.
        let on_close = Box::new(move |p: &Pty| {
            if let Some(r) = root.upgrade() {
                let _ = r.unlink(p.index.to_string().as_bytes());
            }
        });
        Ok(Arc::new(PtyMaster { pty, on_close }))
    }
}

/// The caller, when an open without O_NOCTTY would make the terminal its
/// controlling one: a session leader whose session has none.
fn ctty_candidate() -> Option<Caller> {
    let c = jobs()?.caller()?;
    (c.pid == c.sid && !session_has_tty(c.sid)).then_some(c)
}

/// /dev/tty: the caller's controlling terminal (ENXIO without one).
fn open_tty(_flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
    let c = jobs().and_then(|j| j.caller()).ok_or(Errno::ENXIO)?;
    let pty = tty_of_session(c.sid).ok_or(Errno::ENXIO)?;
    pty.open_slave(None)
}

/// Which pair a file is, and whether it is the master.
pub fn pty_of(f: &dyn FileOps) -> Option<(Arc<Pty>, bool)> {
    let any = f.as_any();
    if let Some(m) = any.downcast_ref::<PtyMaster>() {
        return Some((m.pty.clone(), true));
    }
    any.downcast_ref::<super::pty::PtySlave>().map(|s| (s.pty.clone(), false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::{Interrupt, IoCtx};
    use abi::flags::{O_NONBLOCK, O_RDWR};

    #[test]
    fn pair_end_to_end() {
        let irq = Interrupt::default();
        let ctx = IoCtx { flags: 0, interrupt: &irq };
        let nb = IoCtx { flags: O_NONBLOCK, interrupt: &irq };
        let pts = DevPts::new();
        let m = pts.open_master().unwrap();
        let (pty, is_master) = pty_of(&*m).unwrap();
        assert!(is_master);
        let name = pty.index.to_string();
        let node = pts.root().lookup(name.as_bytes()).unwrap();
        assert_eq!(node.open(O_RDWR | O_NOCTTY).err(), Some(Errno::EIO), "locked");
        m.ioctl(TIOCSPTLCK, 0, &0i32.to_ne_bytes()).unwrap();
        let s = node.open(O_RDWR | O_NOCTTY).unwrap();
        assert_eq!(m.write(&ctx, b"hi\r", 0), Ok(3));
        let mut b = [0u8; 16];
        assert_eq!(s.read(&ctx, &mut b, 0), Ok(3));
        assert_eq!(&b[..3], b"hi\n");
        assert_eq!(m.read(&ctx, &mut b, 0), Ok(4));
        assert_eq!(&b[..4], b"hi\r\n");
        assert_eq!(s.write(&ctx, b"out\n", 0), Ok(4));
        assert_eq!(m.read(&ctx, &mut b, 0), Ok(5));
        assert_eq!(m.read(&nb, &mut b, 0), Err(Errno::EAGAIN));
        assert_eq!(s.ioctl(TIOCGPTN, 0, &[]).err(), Some(Errno::ENOTTY));
        s.release();
        assert_eq!(m.read(&ctx, &mut b, 0), Err(Errno::EIO));
        assert_ne!(m.poll() & libc::POLLHUP as u32, 0);
        m.release();
        assert!(pts.root().lookup(name.as_bytes()).is_err());
        assert_eq!(s.read(&ctx, &mut b, 0), Ok(0));
        assert_eq!(s.write(&ctx, b"x", 0), Err(Errno::EIO));
    }

    #[test]
    fn winsize_and_termios() {
        let pts = DevPts::new();
        let m = pts.open_master().unwrap();
        let ws = [24u8, 0, 80, 0, 0, 0, 0, 0];
        m.ioctl(TIOCSWINSZ, 0, &ws).unwrap();
        assert_eq!(m.ioctl(TIOCGWINSZ, 0, &[]).unwrap().1.unwrap(), ws.to_vec());
        let t = m.ioctl(TCGETS, 0, &[]).unwrap().1.unwrap();
        assert_eq!(t.len(), super::super::termios::TERMIOS_LEN);
        assert_eq!(m.ioctl(TCFLSH, 7, &[]).err(), Some(Errno::EINVAL));
        assert_eq!(m.ioctl(0x1234, 0, &[]).err(), Some(Errno::ENOTTY));
        m.release();
    }
}
