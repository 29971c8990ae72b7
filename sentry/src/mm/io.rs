//! Reaching guest memory from the Sentry: copy_in/copy_out, forced
//! access, C strings and objects.

use super::*;

impl MemoryManager {
    /// Walk the pieces of `[addr, addr+len)` as memory-file ranges,
    /// requiring `need` of each VMA; EFAULT on any hole. `write` first
    /// gives the range's private pages to this address space alone.
    fn for_each_piece(
        &self,
        addr: u64,
        len: usize,
        need: fn(&Vma) -> bool,
        write: bool,
        mut f: impl FnMut(u64, usize, usize) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mut s = self.lock();
        let mut at = addr;
        while at < end {
            let (_, v) = s.vmas.range(..=at).next_back().ok_or(Errno::EFAULT)?;
            if v.end <= at || !need(v) || v.past_eof {
                return Err(Errno::EFAULT);
            }
            let vend = v.end.min(end);
            if let Some(off) = v.file_offset_at(at) {
                let n = (vend - at) as usize;
                f(off, (at - addr) as usize, n)?;
                at += n as u64;
                continue;
            }
            if write {
                self.unshare_locked(&mut s, at, vend)?;
            }
            while at < vend {
                let (&ps, p) = s.pmas.range(..=at).next_back().ok_or(Errno::EFAULT)?;
                if p.end <= at {
                    return Err(Errno::EFAULT);
                }
                let n = (p.end.min(vend) - at) as usize;
                f(p.off + (at - ps), (at - addr) as usize, n)?;
                at += n as u64;
            }
        }
        Ok(())
    }

    /// Copy guest memory at `addr` into `dst` (EFAULT if any byte is not
    /// readable).
    pub fn copy_in(&self, addr: u64, dst: &mut [u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, dst.len(), |v| v.prot.read, false, |off, at, n| mf.read(off, &mut dst[at..at + n]))
    }

    /// Copy `src` to guest memory at `addr` (EFAULT if any byte is not
    /// writable).
    pub fn copy_out(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(
            addr,
            src.len(),
            |v| v.prot.write && !v.cached,
            true,
            |off, at, n| mf.write(off, &src[at..at + n]),
        )
    }

    /// Write regardless of protection (the loader filling read-only
    /// segments, ptrace-like access by the Sentry itself).
    pub fn force_write(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, src.len(), |v| !v.cached, true, |off, at, n| mf.write(off, &src[at..at + n]))
    }

    /// Read regardless of protection (/proc/[pid]/cmdline and the like).
    pub fn force_read(&self, addr: u64, dst: &mut [u8]) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, dst.len(), |_| true, false, |off, at, n| mf.read(off, &mut dst[at..at + n]))
    }

    /// Zero `[addr, addr+len)` regardless of protection.
    pub fn force_zero(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let mf = &self.memfile;
        self.for_each_piece(addr, len as usize, |v| !v.cached, true, |off, _, n| mf.zero(off, n as u64))
    }

    /// Read a NUL-terminated string of at most `max` bytes (without the
    /// NUL); ENAMETOOLONG when no NUL comes within `max`.
    pub fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            // Stop at page ends so an unmapped page after the string is fine.
            let chunk = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(max - out.len());
            let mut found = None;
            let mf = &self.memfile;
            let start_len = out.len();
            self.for_each_piece(
                at,
                chunk,
                |v| v.prot.read,
                false,
                |off, _, n| {
                    if found.is_some() {
                        return Ok(());
                    }
                    match mf.find_nul(off, n)? {
                        Some(i) => {
                            let mut b = vec![0u8; i];
                            mf.read(off, &mut b)?;
                            out.extend_from_slice(&b);
                            found = Some(i);
                        }
                        None => {
                            let mut b = vec![0u8; n];
                            mf.read(off, &mut b)?;
                            out.extend_from_slice(&b);
                        }
                    }
                    Ok(())
                },
            )?;
            if found.is_some() {
                return Ok(out);
            }
            at = at.checked_add((out.len() - start_len) as u64).ok_or(Errno::EFAULT)?;
        }
        Err(Errno::ENAMETOOLONG)
    }

    /// Read a `T` from guest memory.
    pub fn read_obj<T: abi::Pod>(&self, addr: u64) -> Result<T, Errno> {
        let mut b = [0u8; 512];
        let n = core::mem::size_of::<T>();
        if n <= b.len() {
            self.copy_in(addr, &mut b[..n])?;
            T::from_bytes(&b[..n]).ok_or(Errno::EFAULT)
        } else {
            let mut v = vec![0u8; n];
            self.copy_in(addr, &mut v)?;
            T::from_bytes(&v).ok_or(Errno::EFAULT)
        }
    }

    /// Write a `T` to guest memory.
    pub fn write_obj<T: abi::Pod>(&self, addr: u64, v: &T) -> Result<(), Errno> {
        self.copy_out(addr, v.as_bytes())
    }

    /// How many bytes from `addr` on, up to `len`, copy_out could write:
    /// the writable prefix of the range (0 when its first byte is not).
    pub fn writable_prefix(&self, addr: u64, len: u64) -> u64 {
        let Some(end) = addr.checked_add(len) else { return 0 };
        let s = self.lock();
        let mut at = addr;
        while at < end {
            match s.vmas.range(..=at).next_back() {
                Some((_, v)) if v.end > at && v.prot.write && !v.cached && !v.past_eof => at = v.end,
                _ => break,
            }
        }
        at.min(end) - addr
    }

    /// Is `[addr, addr+len)` entirely mapped?
    pub fn is_mapped(&self, addr: u64, len: u64) -> bool {
        self.for_each_piece(addr, len as usize, |_| true, false, |_, _, _| Ok(())).is_ok()
    }
}
