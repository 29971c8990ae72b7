//! A pseudo-terminal pair: the master (what /dev/ptmx opens) and the
//! slave (/dev/pts/N, /dev/tty), sharing one line discipline. The master
//! types into the slave's input and reads its output; closing every slave
//! descriptor gives the master EIO and POLLHUP, closing the master hangs
//! the slave up (reads 0, writes EIO, SIGHUP to the session leader).

use super::ldisc::{Ldisc, OUT_CAP};
use super::termios::*;
use super::*;
use crate::inode::FileOps;
use crate::wait::{IoCtx, WaitQueue, Waitable};
use abi::Errno;
use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIGHUP: i32 = 1;
const SIGCONT: i32 = 18;
const SIGTTIN: i32 = 21;
const SIGTTOU: i32 = 22;
const SIGWINCH: i32 = 28;

const POLLIN: u32 = libc::POLLIN as u32;
const POLLOUT: u32 = libc::POLLOUT as u32;
const POLLHUP: u32 = libc::POLLHUP as u32;
const POLLERR: u32 = libc::POLLERR as u32;
const POLLRDNORM: u32 = libc::POLLRDNORM as u32;
const POLLWRNORM: u32 = libc::POLLWRNORM as u32;

pub struct PtyState {
    pub ld: Ldisc,
    winsize: [u8; 8],
    locked: bool,
    /// Open slave files, and whether one was ever opened.
    slaves: usize,
    slave_opened: bool,
    master_open: bool,
    /// The session this terminal controls, and its foreground group.
    pub session: Option<i32>,
    pgrp: Option<i32>,
    packet: bool,
}

pub struct Pty {
    pub index: u32,
    pub(crate) state: Arc<Waitable<PtyState>>,
}

/// Signals to send once no lock is held.
#[derive(Default)]
struct Pending(Vec<(Target, i32)>);

enum Target {
    Group(i32),
    Process(i32),
}

impl Pending {
    fn send(self) {
        if self.0.is_empty() {
            return;
        }
        if let Some(j) = jobs() {
            for (t, sig) in self.0 {
                match t {
                    Target::Group(g) => j.signal_group(g, sig),
                    Target::Process(p) => j.signal_process(p, sig),
                }
            }
        }
    }
}

fn int_out(v: i32) -> Result<(u64, Option<Vec<u8>>), Errno> {
    Ok((0, Some(v.to_ne_bytes().to_vec())))
}

fn int_in(input: &[u8]) -> Result<i32, Errno> {
    let b = input.get(..4).ok_or(Errno::EFAULT)?;
    Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

impl Pty {
    pub(crate) fn new(index: u32) -> Arc<Pty> {
        Arc::new(Pty {
            index,
            state: Waitable::new(PtyState {
                ld: Ldisc::new(),
                winsize: [0; 8],
                locked: true,
                slaves: 0,
                slave_opened: false,
                master_open: true,
                session: None,
                pgrp: None,
                packet: false,
            }),
        })
    }

    pub fn master_open(&self) -> bool {
        self.state.lock().master_open
    }

    /// The session this terminal controls, if its leader still leads it.
    pub fn session(&self) -> Option<i32> {
        let sid = self.state.lock().session?;
        match jobs() {
            Some(j) if !j.session_alive(sid) => None,
            _ => Some(sid),
        }
    }

    /// Make this the controlling terminal of session `sid` with foreground
    /// group `pgrp` (the console, before its init runs).
    pub fn make_controlling(&self, sid: i32, pgrp: i32) {
        let mut s = self.state.lock();
        s.session = Some(sid);
        s.pgrp = Some(pgrp);
    }

    /// Open the slave side. `ctty`: the caller (a session leader without
    /// a terminal) takes this one as its controlling terminal if it is
    /// free (an open without O_NOCTTY).
    pub fn open_slave(self: &Arc<Self>, ctty: Option<Caller>) -> Result<Arc<dyn FileOps>, Errno> {
        let mut s = self.state.lock();
        if s.locked || !s.master_open {
            return Err(Errno::EIO);
        }
        s.slaves += 1;
        s.slave_opened = true;
        if let Some(c) = ctty {
            if s.session.is_none() {
                s.session = Some(c.sid);
                s.pgrp = Some(c.pgid);
            }
        }
        drop(s);
        self.state.notify();
        Ok(Arc::new(PtySlave { pty: self.clone() }))
    }

    /// The caller, when this terminal is its controlling terminal.
    fn caller_ctty(&self) -> Option<Caller> {
        let c = jobs()?.caller()?;
        (self.session() == Some(c.sid)).then_some(c)
    }

    /// Linux's job-control check for a slave read (SIGTTIN) or write or
    /// settings change (SIGTTOU) from a background group of the session.
    fn job_check(&self, sig: i32) -> Result<(), Errno> {
        let Some(c) = self.caller_ctty() else { return Ok(()) };
        let Some(j) = jobs() else { return Ok(()) };
        let pgrp = self.state.lock().pgrp;
        if pgrp.is_none_or(|p| p == c.pgid) {
            return Ok(());
        }
        if j.caller_ignores(sig) {
            return if sig == SIGTTIN { Err(Errno::EIO) } else { Ok(()) };
        }
        if j.orphaned(c.pgid) {
            return Err(Errno::EIO);
        }
        j.signal_group(c.pgid, sig);
        Err(Errno::ERESTARTSYS)
    }

    fn read_slave(&self, ctx: &IoCtx, buf: &mut [u8]) -> Result<usize, Errno> {
        self.job_check(SIGTTIN)?;
        if buf.is_empty() {
            return Ok(0);
        }
        let t = self.state.lock().ld.termios;
        let (vmin, vtime) = (t.cc[VMIN] as usize, t.cc[VTIME] as u64);
        let canon = t.canonical();
        let deadline: std::cell::Cell<Option<Instant>> = std::cell::Cell::new(None);
        if !canon && vmin == 0 && vtime > 0 {
            deadline.set(crate::deadline_after(Duration::from_millis(vtime * 100)));
        }
        let want = if canon { 1 } else { vmin.clamp(1, buf.len()) };
        let n = self.state.block_on(
            ctx,
            |s| {
                if !s.master_open {
                    return Some(Ok(0));
                }
                if s.ld.read_ready(want) {
                    return Some(Ok(s.ld.read(buf)));
                }
                if !canon {
                    if vmin == 0 && vtime == 0 {
                        return Some(Ok(0));
                    }
                    if vtime > 0 && s.ld.readable() > 0 && deadline.get().is_none() {
                        deadline.set(crate::deadline_after(Duration::from_millis(vtime * 100)));
                    }
                    if deadline.get().is_some_and(|d| Instant::now() >= d) {
                        return Some(Ok(s.ld.read(buf)));
                    }
                }
                None
            },
            |_| deadline.get(),
        )?;
        self.state.notify();
        Ok(n)
    }

    fn write_slave(&self, ctx: &IoCtx, buf: &[u8]) -> Result<usize, Errno> {
        if self.state.lock().ld.termios.l(TOSTOP) {
            self.job_check(SIGTTOU)?;
        }
        let mut done = 0;
        while done < buf.len() {
            let r = self.state.block_on(
                ctx,
                |s| {
                    if !s.master_open {
                        return Some(Err(Errno::EIO));
                    }
                    if s.ld.output_room() {
                        return Some(Ok(s.ld.output(&buf[done..])));
                    }
                    None
                },
                |_| None,
            );
            match r {
                Ok(n) => {
                    done += n;
                    self.state.notify();
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
            if ctx.nonblock() {
                break;
            }
        }
        Ok(done)
    }

    fn read_master(&self, ctx: &IoCtx, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.state.block_on(
            ctx,
            |s| {
                if !s.ld.out.is_empty() {
                    let (head, room) = if s.packet { (1, &mut buf[1..]) } else { (0, &mut buf[..]) };
                    let n = s.ld.out.len().min(room.len());
                    for (d, b) in room.iter_mut().zip(s.ld.out.drain(..n)) {
                        *d = b;
                    }
                    if head == 1 {
                        buf[0] = 0;
                    }
                    return Some(Ok(n + head));
                }
                if s.slave_opened && s.slaves == 0 {
                    return Some(Err(Errno::EIO));
                }
                None
            },
            |_| None,
        )?;
        self.state.notify();
        Ok(n)
    }

    fn write_master(&self, ctx: &IoCtx, buf: &[u8]) -> Result<usize, Errno> {
        let mut done = 0;
        while done < buf.len() {
            let mut sigs = Vec::new();
            let mut pgrp = None;
            let r = self.state.block_on(
                ctx,
                |s| {
                    let n = s.ld.receive(&buf[done..], &mut sigs);
                    pgrp = s.pgrp;
                    (n > 0).then_some(Ok(n))
                },
                |_| None,
            );
            let mut p = Pending::default();
            if let Some(g) = pgrp {
                p.0.extend(sigs.into_iter().map(|s| (Target::Group(g), s)));
            }
            match r {
                Ok(n) => {
                    done += n;
                    self.state.notify();
                    p.send();
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
            if ctx.nonblock() {
                break;
            }
        }
        Ok(done)
    }

    /// Terminal ioctls shared by both sides (`master`: which one asks).
    fn ioctl(&self, master: bool, req: u64, arg: u64, input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        if !master && !self.master_open() {
            return Err(Errno::EIO);
        }
        match req {
            TCGETS => Ok((0, Some(self.state.lock().ld.termios.to_bytes()))),
            TCSETS | TCSETSW | TCSETSF => {
                let t = Termios::from_bytes(input).ok_or(Errno::EFAULT)?;
                if !master {
                    self.job_check(SIGTTOU)?;
                }
                {
                    let mut s = self.state.lock();
                    if req == TCSETSF {
                        if master {
                            s.ld.out.clear();
                        } else {
                            s.ld.flush_input();
                        }
                    }
                    s.ld.set_termios(t);
                }
                self.state.notify();
                Ok((0, None))
            }
            TIOCGWINSZ => Ok((0, Some(self.state.lock().winsize.to_vec()))),
            TIOCSWINSZ => {
                let ws: [u8; 8] = input.get(..8).and_then(|b| b.try_into().ok()).ok_or(Errno::EFAULT)?;
                let pgrp = {
                    let mut s = self.state.lock();
                    if s.winsize == ws {
                        return Ok((0, None));
                    }
                    s.winsize = ws;
                    s.pgrp
                };
                if let Some(g) = pgrp {
                    Pending(vec![(Target::Group(g), SIGWINCH)]).send();
                }
                Ok((0, None))
            }
            FIONREAD => {
                let s = self.state.lock();
                int_out(if master { s.ld.out.len() } else { s.ld.readable() } as i32)
            }
            TIOCOUTQ => {
                let s = self.state.lock();
                int_out(if master { 0 } else { s.ld.out.len() } as i32)
            }
            TCFLSH => {
                let (inp, outp) = match arg {
                    0 => (true, false),
                    1 => (false, true),
                    2 => (true, true),
                    _ => return Err(Errno::EINVAL),
                };
                // The master's input is the slave's output.
                let (flush_in, flush_out) = if master { (outp, inp) } else { (inp, outp) };
                {
                    let mut s = self.state.lock();
                    if flush_in {
                        s.ld.flush_input();
                    }
                    if flush_out {
                        s.ld.out.clear();
                    }
                }
                self.state.notify();
                Ok((0, None))
            }
            TCXONC => {
                match arg {
                    0 => self.state.lock().ld.stopped = true,
                    1 => self.state.lock().ld.stopped = false,
                    2 | 3 => {}
                    _ => return Err(Errno::EINVAL),
                }
                self.state.notify();
                Ok((0, None))
            }
            TCSBRK | TCSBRKP | TIOCSBRK | TIOCCBRK | TIOCEXCL | TIOCNXCL => Ok((0, None)),
            TIOCGETD => int_out(0),
            TIOCSETD => match int_in(input)? {
                0 => Ok((0, None)),
                _ => Err(Errno::EINVAL),
            },
            TIOCGPGRP => {
                if !master && self.caller_ctty().is_none() {
                    return Err(Errno::ENOTTY);
                }
                int_out(self.state.lock().pgrp.unwrap_or(0))
            }
            TIOCGSID => {
                if !master && self.caller_ctty().is_none() {
                    return Err(Errno::ENOTTY);
                }
                int_out(self.session().ok_or(Errno::ENOTTY)?)
            }
            TIOCSPGRP => self.set_pgrp(master, input),
            TIOCSCTTY => self.set_ctty(arg),
            TIOCNOTTY => self.notty(master),
            TIOCGPTN if master => int_out(self.index as i32),
            TIOCSPTLCK if master => {
                self.state.lock().locked = int_in(input)? != 0;
                Ok((0, None))
            }
            TIOCGPTLCK if master => int_out(self.state.lock().locked as i32),
            TIOCPKT if master => {
                self.state.lock().packet = int_in(input)? != 0;
                Ok((0, None))
            }
            TIOCGPKT if master => int_out(self.state.lock().packet as i32),
            _ => Err(Errno::ENOTTY),
        }
    }

    fn set_pgrp(&self, master: bool, input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        if !master {
            self.job_check(SIGTTOU)?;
        }
        let c = self.caller_ctty().ok_or(Errno::ENOTTY)?;
        let pgid = int_in(input)?;
        if pgid < 0 {
            return Err(Errno::EINVAL);
        }
        let j = jobs().ok_or(Errno::ENOTTY)?;
        match j.group_session(pgid) {
            None => Err(Errno::ESRCH),
            Some(sid) if sid != c.sid => Err(Errno::EPERM),
            Some(_) => {
                self.state.lock().pgrp = Some(pgid);
                Ok((0, None))
            }
        }
    }

    fn set_ctty(&self, steal: u64) -> Result<(u64, Option<Vec<u8>>), Errno> {
        let c = jobs().and_then(|j| j.caller()).ok_or(Errno::EPERM)?;
        let cur = self.session();
        if cur == Some(c.sid) {
            return Ok((0, None));
        }
        if c.pid != c.sid || super::devpts::session_has_tty(c.sid) {
            return Err(Errno::EPERM);
        }
        if cur.is_some() && !(steal == 1 && c.root) {
            return Err(Errno::EPERM);
        }
        let mut s = self.state.lock();
        s.session = Some(c.sid);
        s.pgrp = Some(c.pgid);
        Ok((0, None))
    }

    fn notty(&self, master: bool) -> Result<(u64, Option<Vec<u8>>), Errno> {
        let c = if master { None } else { self.caller_ctty() };
        let c = c.ok_or(Errno::ENOTTY)?;
        if c.pid == c.sid {
            self.disassociate();
        }
        Ok((0, None))
    }

    /// The session leader gives the terminal up: its foreground group gets
    /// SIGHUP and SIGCONT (Linux's disassociate_ctty).
    pub fn disassociate(&self) {
        let pgrp = {
            let mut s = self.state.lock();
            s.session = None;
            s.pgrp.take()
        };
        if let Some(g) = pgrp {
            Pending(vec![(Target::Group(g), SIGHUP), (Target::Group(g), SIGCONT)]).send();
        }
    }

    fn master_closed(&self) {
        let leader = {
            let mut s = self.state.lock();
            s.master_open = false;
            s.pgrp = None;
            s.session.take()
        };
        self.state.notify();
        if let Some(p) = leader {
            Pending(vec![(Target::Process(p), SIGHUP), (Target::Process(p), SIGCONT)]).send();
        }
    }

    fn poll_master(&self) -> u32 {
        let s = self.state.lock();
        let mut r = 0;
        if !s.ld.out.is_empty() {
            r |= POLLIN | POLLRDNORM;
        }
        if s.ld.input_room() {
            r |= POLLOUT | POLLWRNORM;
        }
        if s.slave_opened && s.slaves == 0 {
            r |= POLLHUP;
        }
        r
    }

    fn poll_slave(&self) -> u32 {
        let s = self.state.lock();
        if !s.master_open {
            return POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM;
        }
        let mut r = 0;
        let min = if s.ld.termios.canonical() { 1 } else { s.ld.termios.cc[VMIN].max(1) as usize };
        if s.ld.read_ready(min) {
            r |= POLLIN | POLLRDNORM;
        }
        if s.ld.output_room() && s.ld.out.len() < OUT_CAP {
            r |= POLLOUT | POLLWRNORM;
        }
        r
    }
}

/// The master side (from /dev/ptmx).
pub struct PtyMaster {
    pub pty: Arc<Pty>,
    /// Called when the last descriptor goes (devpts removes the name).
    pub(crate) on_close: Box<dyn Fn(&Pty) + Send + Sync>,
}

/// A slave side (/dev/pts/N or /dev/tty).
pub struct PtySlave {
    pub pty: Arc<Pty>,
}

impl FileOps for PtyMaster {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        self.pty.read_master(ctx, buf)
    }
    fn write(&self, ctx: &IoCtx, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        self.pty.write_master(ctx, buf)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self) -> u32 {
        self.pty.poll_master()
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pty.state.queue)
    }
    fn ioctl(&self, req: u64, arg: u64, input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        self.pty.ioctl(true, req, arg, input)
    }
    fn release(&self) {
        self.pty.master_closed();
        (self.on_close)(&self.pty);
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl FileOps for PtySlave {
    fn read(&self, ctx: &IoCtx, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        self.pty.read_slave(ctx, buf)
    }
    fn write(&self, ctx: &IoCtx, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        self.pty.write_slave(ctx, buf)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self) -> u32 {
        self.pty.poll_slave()
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pty.state.queue)
    }
    fn ioctl(&self, req: u64, arg: u64, input: &[u8]) -> Result<(u64, Option<Vec<u8>>), Errno> {
        self.pty.ioctl(false, req, arg, input)
    }
    fn release(&self) {
        {
            let mut s = self.pty.state.lock();
            s.slaves = s.slaves.saturating_sub(1);
        }
        self.pty.state.notify();
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
