//! N_TTY, Linux's line discipline, as a state machine with no locking and
//! no blocking of its own: bytes typed at the master go through
//! [`Ldisc::receive`] (input flags, signal characters, canonical editing,
//! echo) into the slave's read side; bytes the slave writes go through
//! [`Ldisc::output`] (OPOST) to the master's read side. The pty around it
//! decides who waits and who is signalled.

use super::termios::*;
use std::collections::VecDeque;

/// Linux's N_TTY_BUF_SIZE: input the slave has not read, and the longest
/// canonical line (one byte is kept for the line's end).
pub const N_TTY_BUF_SIZE: usize = 4096;
/// Output waiting for the master to read it: a slave writer waits past this.
pub const OUT_CAP: usize = 8192;
/// Echoes are dropped rather than block the typist past this much
/// unread output (Linux drops them when its echo buffer is full).
const ECHO_CAP: usize = OUT_CAP + N_TTY_BUF_SIZE;

pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGTSTP: i32 = 20;

#[derive(Default)]
pub struct Ldisc {
    pub termios: Termios,
    /// Canonical mode: finished lines. An empty line is an end-of-file
    /// mark (a VEOF at the start of a line): one read returns 0 for it.
    lines: VecDeque<Vec<u8>>,
    lines_bytes: usize,
    /// Canonical mode: the line being edited (not readable yet).
    line: Vec<u8>,
    /// Non-canonical mode: bytes ready to read.
    raw: VecDeque<u8>,
    /// The next input byte is taken literally (after VLNEXT).
    lnext: bool,
    /// Bytes for the master to read (the slave's output and echoes).
    pub out: VecDeque<u8>,
    /// Output stopped by VSTOP or TCOOFF.
    pub stopped: bool,
    /// Column of the output, for ONOCR.
    column: usize,
}

fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

impl Ldisc {
    pub fn new() -> Ldisc {
        Ldisc::default()
    }

    /// Install new settings; data already typed moves between the
    /// canonical and non-canonical buffers when ICANON changes.
    pub fn set_termios(&mut self, t: Termios) {
        let was = self.termios.canonical();
        self.termios = t;
        if was && !t.canonical() {
            for l in self.lines.drain(..) {
                self.raw.extend(l);
            }
            self.lines_bytes = 0;
            self.raw.extend(self.line.drain(..));
        } else if !was && t.canonical() {
            self.line.extend(self.raw.drain(..));
            self.line.truncate(N_TTY_BUF_SIZE - 1);
        }
    }

    /// Bytes a read can take now (FIONREAD counts finished lines only in
    /// canonical mode).
    pub fn readable(&self) -> usize {
        if self.termios.canonical() {
            self.lines_bytes
        } else {
            self.raw.len()
        }
    }

    /// Whether a read would return at once (an end-of-file mark counts).
    pub fn read_ready(&self, min: usize) -> bool {
        if self.termios.canonical() {
            !self.lines.is_empty()
        } else {
            self.raw.len() >= min.max(1)
        }
    }

    /// Take what one read(2) returns now.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        if self.termios.canonical() {
            let Some(front) = self.lines.front_mut() else { return 0 };
            let n = front.len().min(buf.len());
            buf[..n].copy_from_slice(&front[..n]);
            front.drain(..n);
            if front.is_empty() {
                self.lines.pop_front();
            }
            self.lines_bytes -= n;
            n
        } else {
            let n = self.raw.len().min(buf.len());
            for (d, s) in buf.iter_mut().zip(self.raw.drain(..n)) {
                *d = s;
            }
            n
        }
    }

    /// Whether typed input has room (a master writer waits otherwise).
    pub fn input_room(&self) -> bool {
        if self.termios.canonical() {
            self.lines_bytes < N_TTY_BUF_SIZE
        } else {
            self.raw.len() < N_TTY_BUF_SIZE
        }
    }

    pub fn flush_input(&mut self) {
        self.lines.clear();
        self.lines_bytes = 0;
        self.line.clear();
        self.raw.clear();
        self.lnext = false;
    }

    /// Process bytes typed at the master. Returns how many were taken
    /// (fewer when the input is full) and the signals to send to the
    /// foreground process group.
    pub fn receive(&mut self, data: &[u8], sigs: &mut Vec<i32>) -> usize {
        let mut taken = 0;
        for &b in data {
            if !self.input_room() {
                break;
            }
            taken += 1;
            self.receive_one(b, sigs);
        }
        taken
    }

    fn receive_one(&mut self, mut c: u8, sigs: &mut Vec<i32>) {
        let t = self.termios;
        if t.i(ISTRIP) {
            c &= 0x7f;
        }
        if self.lnext {
            self.lnext = false;
            self.put_char(c, true);
            return;
        }
        if t.i(IXON) {
            if t.is(c, VSTART) {
                self.stopped = false;
                return;
            }
            if t.is(c, VSTOP) {
                self.stopped = true;
                return;
            }
            if self.stopped && t.i(IXANY) {
                self.stopped = false;
            }
        }
        if t.l(ISIG) {
            let sig = if t.is(c, VINTR) {
                Some(SIGINT)
            } else if t.is(c, VQUIT) {
                Some(SIGQUIT)
            } else if t.is(c, VSUSP) {
                Some(SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                if !t.l(NOFLSH) {
                    self.flush_input();
                    self.out.clear();
                }
                self.stopped = false;
                if t.l(ECHO) {
                    self.echo_char(c);
                }
                sigs.push(sig);
                return;
            }
        }
        if c == b'\r' {
            if t.i(IGNCR) {
                return;
            }
            if t.i(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(INLCR) {
            c = b'\r';
        }
        if t.canonical() {
            if t.is(c, VERASE) || t.is(c, VKILL) || (t.is(c, VWERASE) && t.l(IEXTEN)) {
                self.erase(c);
                return;
            }
            if t.is(c, VLNEXT) && t.l(IEXTEN) {
                self.lnext = true;
                if t.l(ECHO) && t.l(ECHOCTL) {
                    self.echo_raw(b"^\x08");
                }
                return;
            }
            if t.is(c, VREPRINT) && t.l(ECHO) && t.l(IEXTEN) {
                self.echo_char(c);
                self.echo_out(b"\n");
                let line = self.line.clone();
                for b in line {
                    self.echo_char(b);
                }
                return;
            }
            if c == b'\n' {
                if t.l(ECHO) || t.l(ECHONL) {
                    self.echo_out(b"\n");
                }
                self.line.push(c);
                self.finish_line();
                return;
            }
            if t.is(c, VEOF) {
                self.finish_line();
                return;
            }
            if t.is(c, VEOL) || (t.is(c, VEOL2) && t.l(IEXTEN)) {
                if t.l(ECHO) {
                    self.echo_char(c);
                }
                self.line.push(c);
                self.finish_line();
                return;
            }
        }
        self.put_char(c, false);
    }

    /// An ordinary input byte: to the line being edited or the raw queue.
    fn put_char(&mut self, c: u8, literal: bool) {
        let t = self.termios;
        if t.canonical() {
            // One byte stays free for the line's end.
            if self.line.len() >= N_TTY_BUF_SIZE - 1 {
                return;
            }
            self.line.push(c);
        } else {
            self.raw.push_back(c);
        }
        if t.l(ECHO) {
            if c == b'\n' && !literal {
                self.echo_out(b"\n");
            } else {
                self.echo_char(c);
            }
        }
    }

    fn finish_line(&mut self) {
        let l = std::mem::take(&mut self.line);
        self.lines_bytes += l.len();
        self.lines.push_back(l);
    }

    /// VERASE, VWERASE and VKILL, with Linux's echoes.
    fn erase(&mut self, c: u8) {
        let t = self.termios;
        let kill = t.is(c, VKILL);
        let werase = !kill && !t.is(c, VERASE);
        if self.line.is_empty() {
            return;
        }
        if kill {
            if !t.l(ECHO) {
                self.line.clear();
                return;
            }
            if !t.l(ECHOK) || !t.l(ECHOKE) || !t.l(ECHOE) {
                self.line.clear();
                self.echo_char(c);
                if t.l(ECHOK) {
                    self.echo_out(b"\n");
                }
                return;
            }
        }
        let mut seen_alnums = 0;
        while let Some(&last) = self.line.last() {
            // A whole UTF-8 character goes at once.
            let mut len = 1;
            if t.i(IUTF8) {
                while len < self.line.len() && self.line[self.line.len() - len] & 0xc0 == 0x80 {
                    len += 1;
                }
            }
            if werase {
                if last.is_ascii_alphanumeric() || last == b'_' {
                    seen_alnums += 1;
                } else if seen_alnums > 0 {
                    break;
                }
            }
            self.line.truncate(self.line.len() - len);
            if t.l(ECHO) {
                if !kill && !werase && !t.l(ECHOE) {
                    self.echo_char(c);
                } else {
                    if is_cntrl(last) && last != b'\t' && t.l(ECHOCTL) {
                        self.echo_raw(b"\x08 \x08");
                    }
                    if !is_cntrl(last) || last == b'\t' || t.l(ECHOCTL) {
                        self.echo_raw(b"\x08 \x08");
                    }
                }
            }
            if !kill && !werase {
                break;
            }
        }
    }

    /// Echo `c` as Linux's echo_char: control characters as ^X with ECHOCTL.
    fn echo_char(&mut self, c: u8) {
        if self.termios.l(ECHOCTL) && is_cntrl(c) && c != b'\t' {
            self.echo_raw(&[b'^', c ^ 0o100]);
        } else {
            self.echo_out(&[c]);
        }
    }

    /// Echo through output processing.
    fn echo_out(&mut self, b: &[u8]) {
        if self.out.len() < ECHO_CAP {
            for &c in b {
                self.out_char(c);
            }
        }
    }

    /// Echo without output processing (cursor movement).
    fn echo_raw(&mut self, b: &[u8]) {
        if self.out.len() < ECHO_CAP {
            self.out.extend(b);
            self.column = self.column.saturating_sub(b.iter().filter(|&&x| x == 8).count());
        }
    }

    /// Whether a slave write can make progress now.
    pub fn output_room(&self) -> bool {
        !self.stopped && self.out.len() < OUT_CAP
    }

    /// Process bytes the slave writes (OPOST); returns how many were taken.
    pub fn output(&mut self, data: &[u8]) -> usize {
        let mut n = 0;
        for &c in data {
            if !self.output_room() {
                break;
            }
            self.out_char(c);
            n += 1;
        }
        n
    }

    fn out_char(&mut self, c: u8) {
        let t = self.termios;
        if !t.o(OPOST) {
            self.out.push_back(c);
            return;
        }
        match c {
            b'\n' => {
                if t.o(ONLRET) {
                    self.column = 0;
                }
                if t.o(ONLCR) {
                    self.column = 0;
                    self.out.extend(b"\r\n");
                    return;
                }
            }
            b'\r' => {
                if t.o(ONOCR) && self.column == 0 {
                    return;
                }
                if t.o(OCRNL) {
                    if t.o(ONLRET) {
                        self.column = 0;
                    }
                    self.out.push_back(b'\n');
                    return;
                }
                self.column = 0;
            }
            8 => self.column = self.column.saturating_sub(1),
            _ if !is_cntrl(c) => self.column = self.column.saturating_add(1),
            _ => {}
        }
        self.out.push_back(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(l: &mut Ldisc, s: &[u8]) -> Vec<i32> {
        let mut sigs = Vec::new();
        assert_eq!(l.receive(s, &mut sigs), s.len());
        sigs
    }

    fn out(l: &mut Ldisc) -> Vec<u8> {
        l.out.drain(..).collect()
    }

    fn read_all(l: &mut Ldisc) -> Vec<u8> {
        let mut b = [0u8; 8192];
        let n = l.read(&mut b);
        b[..n].to_vec()
    }

    #[test]
    fn canonical_echo_and_lines() {
        let mut l = Ldisc::new();
        typed(&mut l, b"ab");
        assert!(!l.read_ready(1));
        typed(&mut l, b"c\r");
        assert_eq!(out(&mut l), b"abc\r\n");
        assert_eq!(l.readable(), 4);
        typed(&mut l, b"x\n");
        assert_eq!(read_all(&mut l), b"abc\n");
        assert_eq!(read_all(&mut l), b"x\n");
    }

    #[test]
    fn editing() {
        let mut l = Ldisc::new();
        typed(&mut l, b"abc\x7fd\n");
        assert_eq!(read_all(&mut l), b"abd\n");
        assert_eq!(out(&mut l), b"abc\x08 \x08d\r\n");
        typed(&mut l, b"junk\x15ok\n");
        assert_eq!(read_all(&mut l), b"ok\n");
        typed(&mut l, b"one two\x17three\n");
        assert_eq!(read_all(&mut l), b"one three\n");
        typed(&mut l, b"\x04");
        assert!(l.read_ready(1));
        assert_eq!(read_all(&mut l), b"");
        assert!(!l.read_ready(1));
        typed(&mut l, b"ab\x04");
        assert_eq!(read_all(&mut l), b"ab");
    }

    #[test]
    fn signals_flush_and_echo() {
        let mut l = Ldisc::new();
        assert_eq!(typed(&mut l, b"abc\x03"), vec![SIGINT]);
        assert_eq!(out(&mut l), b"^C");
        typed(&mut l, b"\n");
        assert_eq!(read_all(&mut l), b"\n");
        assert_eq!(typed(&mut l, b"\x1c\x1a"), vec![SIGQUIT, SIGTSTP]);
    }

    #[test]
    fn raw_mode_and_output() {
        let mut l = Ldisc::new();
        let mut t = l.termios;
        t.lflag &= !(ICANON | ECHO | ISIG);
        l.set_termios(t);
        typed(&mut l, b"a\x03\r");
        assert_eq!(read_all(&mut l), b"a\x03\n");
        assert_eq!(l.output(b"x\ny"), 3);
        assert_eq!(out(&mut l), b"x\r\ny");
        t.oflag &= !OPOST;
        l.set_termios(t);
        l.output(b"\n");
        assert_eq!(out(&mut l), b"\n");
    }

    #[test]
    fn bounded() {
        let mut l = Ldisc::new();
        let mut sigs = Vec::new();
        let long = vec![b'a'; 10000];
        assert_eq!(l.receive(&long, &mut sigs), 10000);
        l.out.clear();
        typed(&mut l, b"\n");
        assert_eq!(l.readable(), N_TTY_BUF_SIZE);
        let mut t = l.termios;
        t.lflag &= !ICANON;
        l.set_termios(t);
        assert_eq!(l.receive(b"zz", &mut sigs), 0);
    }
}
