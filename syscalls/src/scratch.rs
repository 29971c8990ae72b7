//! Bounce buffers between guest memory and files or sockets, kept per
//! thread: a fresh zeroed buffer per read cost a memset (or fresh pages)
//! as large as the read itself, on the hottest path there is. A buffer
//! handed out may hold an earlier call's bytes; callers copy out only
//! what their read filled and copy in before they write.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

/// Largest buffer a thread keeps between calls (IO_CHUNK).
const KEEP: usize = 1 << 20;

thread_local! {
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A buffer of exactly `len` bytes, back to the thread when dropped.
pub struct Scratch {
    buf: Vec<u8>,
    len: usize,
}

/// A bounce buffer of `len` bytes (a nested call gets a new one).
pub fn scratch(len: usize) -> Scratch {
    let mut buf = SPARE.with(Cell::take);
    if buf.len() < len {
        buf.resize(len, 0);
    }
    Scratch { buf, len }
}

impl Deref for Scratch {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        self.buf.get_mut(..len).unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.buf.capacity() <= KEEP {
            let buf = std::mem::take(&mut self.buf);
            SPARE.with(|s| s.set(buf));
        }
    }
}
