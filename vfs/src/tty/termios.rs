//! The kernel's `struct termios` (what TCGETS/TCSETS exchange: 36 bytes,
//! no speed fields) and the flag bits the line discipline acts on.

pub const NCCS: usize = 19;
pub const TERMIOS_LEN: usize = 36;

// c_cc indices.
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VREPRINT: usize = 12;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;

// c_iflag.
pub const IGNBRK: u32 = 0o1;
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IMAXBEL: u32 = 0o20000;
pub const IUTF8: u32 = 0o40000;

// c_oflag.
pub const OPOST: u32 = 0o1;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
pub const ONOCR: u32 = 0o20;
pub const ONLRET: u32 = 0o40;

// c_cflag.
pub const B38400: u32 = 0o17;
pub const CS8: u32 = 0o60;
pub const CREAD: u32 = 0o200;

// c_lflag.
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const TOSTOP: u32 = 0o400;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;

/// A disabled control character.
pub const VDISABLE: u8 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

impl Default for Termios {
    /// Linux's tty_std_termios, as a new pty slave starts.
    fn default() -> Termios {
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B38400 | CS8 | CREAD,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc: [3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0],
        }
    }
}

impl Termios {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(TERMIOS_LEN);
        for f in [self.iflag, self.oflag, self.cflag, self.lflag] {
            v.extend_from_slice(&f.to_ne_bytes());
        }
        v.push(self.line);
        v.extend_from_slice(&self.cc);
        v
    }

    /// None when `b` is shorter than a termios.
    pub fn from_bytes(b: &[u8]) -> Option<Termios> {
        let word = |i: usize| -> Option<u32> {
            let s = b.get(i * 4..i * 4 + 4)?;
            Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
        };
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(b.get(17..17 + NCCS)?);
        Some(Termios { iflag: word(0)?, oflag: word(1)?, cflag: word(2)?, lflag: word(3)?, line: *b.get(16)?, cc })
    }

    pub fn canonical(&self) -> bool {
        self.lflag & ICANON != 0
    }

    pub fn l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }

    pub fn i(&self, f: u32) -> bool {
        self.iflag & f != 0
    }

    pub fn o(&self, f: u32) -> bool {
        self.oflag & f != 0
    }

    /// Whether `c` is the (enabled) control character at `idx`.
    pub fn is(&self, c: u8, idx: usize) -> bool {
        let v = self.cc[idx];
        v != VDISABLE && v == c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Termios::default();
        let b = t.to_bytes();
        assert_eq!(b.len(), TERMIOS_LEN);
        assert_eq!(Termios::from_bytes(&b), Some(t));
        assert_eq!(Termios::from_bytes(&b[..35]), None);
    }
}
