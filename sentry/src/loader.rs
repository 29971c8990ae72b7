//! ELF loading (static, static-PIE, dynamic with PT_INTERP) and the
//! initial stack: argv, envp, auxv as the kernel lays them out.

use crate::mm::{MemoryManager, VmaName, PIE_BASE, STACK_SIZE};
use abi::flags::*;
use abi::{page_down, page_up, Errno, PAGE_SIZE};
use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{Header, EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{ProgramHeader, PT_INTERP, PT_LOAD, PT_PHDR};
use platform::Prot;
use std::sync::Arc;
use vfs::{DentryRef, FileOps, Interrupt, IoCtx};

/// Most program headers we accept (Linux: 64 KiB of them).
const MAX_PHNUM: usize = 1024;

/// An opened executable file.
pub struct ExecFile {
    pub dentry: DentryRef,
    pub ops: Arc<dyn FileOps>,
}

impl ExecFile {
    /// Read up to `buf.len()` bytes at `off`.
    pub fn read_at(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let irq = Interrupt::default();
        let ctx = IoCtx { flags: O_RDONLY, interrupt: &irq };
        let mut done = 0;
        while done < buf.len() {
            let n = self.ops.read(&ctx, &mut buf[done..], off + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        if done > 0 {
            vfs::inotify::file_event(&self.dentry, vfs::inotify::IN_ACCESS);
        }
        Ok(done)
    }
}

impl Drop for ExecFile {
    fn drop(&mut self) {
        vfs::inotify::file_event(&self.dentry, vfs::inotify::IN_CLOSE_NOWRITE);
    }
}

/// Where the pieces of a loaded image landed.
#[derive(Clone, Copy, Debug, Default)]
pub struct ElfInfo {
    pub entry: u64,
    pub phdr: u64,
    pub phnum: u64,
    pub phent: u64,
    pub bias: u64,
    pub end: u64,
}

/// A parsed header and program headers.
pub struct ParsedElf {
    pub header: Header,
    pub phdrs: Vec<ProgramHeader>,
}

pub fn parse(file: &ExecFile) -> Result<ParsedElf, Errno> {
    let mut hb = [0u8; 64];
    if file.read_at(&mut hb, 0)? < 64 {
        return Err(Errno::ENOEXEC);
    }
    let header = goblin::elf::Elf::parse_header(&hb).map_err(|_| Errno::ENOEXEC)?;
    if header.e_ident[4] != 2 || header.e_machine != EM_X86_64 || (header.e_type != ET_EXEC && header.e_type != ET_DYN)
    {
        return Err(Errno::ENOEXEC);
    }
    let phnum = header.e_phnum as usize;
    if header.e_phentsize as usize != 56 || phnum == 0 || phnum > MAX_PHNUM {
        return Err(Errno::ENOEXEC);
    }
    let mut pb = vec![0u8; phnum * 56];
    if file.read_at(&mut pb, header.e_phoff)? < pb.len() {
        return Err(Errno::ENOEXEC);
    }
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = ProgramHeader::parse(&pb, 0, phnum, ctx).map_err(|_| Errno::ENOEXEC)?;
    Ok(ParsedElf { header, phdrs })
}

/// The PT_INTERP path, if any.
pub fn interp_path(file: &ExecFile, elf: &ParsedElf) -> Result<Option<Vec<u8>>, Errno> {
    let Some(ph) = elf.phdrs.iter().find(|p| p.p_type == PT_INTERP) else {
        return Ok(None);
    };
    if ph.p_filesz == 0 || ph.p_filesz > PATH_MAX as u64 {
        return Err(Errno::ENOEXEC);
    }
    let mut b = vec![0u8; ph.p_filesz as usize];
    file.read_at(&mut b, ph.p_offset)?;
    if let Some(i) = b.iter().position(|&c| c == 0) {
        b.truncate(i);
    }
    Ok(Some(b))
}

fn seg_prot(p: &ProgramHeader) -> Prot {
    Prot { read: p.is_read(), write: p.is_write(), exec: p.is_executable() }
}

/// Map every PT_LOAD of `elf` into `mm`. A PIE main program goes at
/// PIE_BASE; an interpreter wherever there is room.
/// `cache` is the file's contents in the file cache, when it is cached:
/// read-only segments then map it directly, writable ones copy from it.
pub fn load(
    mm: &MemoryManager,
    file: &ExecFile,
    elf: &ParsedElf,
    is_interp: bool,
    cache: Option<&Arc<crate::memfile::MemRange>>,
) -> Result<ElfInfo, Errno> {
    let loads: Vec<&ProgramHeader> = elf.phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    // The image spans the lowest to the highest segment. The ELF spec
    // wants segments sorted by address, but a hostile file need not
    // sort them: no segment may lie below `lo`.
    let lo = loads.iter().map(|p| page_down(p.p_vaddr)).min().ok_or(Errno::ENOEXEC)?;
    let mut hi = 0u64;
    for p in &loads {
        if p.p_filesz > p.p_memsz {
            return Err(Errno::ENOEXEC);
        }
        let end = p.p_vaddr.checked_add(p.p_memsz).ok_or(Errno::ENOEXEC)?;
        hi = hi.max(page_up(end).ok_or(Errno::ENOEXEC)?);
    }
    if hi <= lo || hi - lo > (1 << 36) {
        return Err(Errno::ENOEXEC);
    }
    let span = hi - lo;
    let st = file.dentry.inode.stat()?;
    let path = file.dentry.path();

    // One memory range for the whole image; each segment maps its part.
    let mem = mm.memfile().alloc(span)?;
    let (base, fixed) = if elf.header.e_type == ET_DYN {
        if is_interp {
            (0, false)
        } else {
            (PIE_BASE, false)
        }
    } else {
        (lo, true)
    };
    // Reserve the whole span first so the segments land together.
    let start = mm.map_range(base, span, Prot::NONE, false, fixed, mem.clone(), 0, VmaName::Anon)?;
    // What the file's addresses are moved by; it wraps when the image
    // goes below its link address, so only wrapping arithmetic uses it.
    // Segments are placed at `start + (seg_lo - lo)`, which cannot wrap.
    let bias = start.wrapping_sub(lo);

    for p in &loads {
        let seg_lo = page_down(p.p_vaddr);
        let seg_hi = page_up(p.p_vaddr + p.p_memsz).ok_or(Errno::ENOEXEC)?;
        let name = VmaName::File { path: path.clone(), dev: st.st_dev, ino: st.st_ino, offset: page_down(p.p_offset) };
        // File bytes from the page start (Linux maps whole file pages).
        let head = p.p_vaddr - seg_lo;
        let foff = p.p_offset.checked_sub(head).ok_or(Errno::ENOEXEC)?;
        let seg_len = seg_hi - seg_lo;
        let seg_at = start + (seg_lo - lo);
        if let Some(c) = cache {
            let fits = foff.is_multiple_of(PAGE_SIZE) && foff.checked_add(seg_len).is_some_and(|e| e <= c.len);
            if !p.is_write() && p.p_memsz == p.p_filesz && fits && seg_len > 0 {
                mm.map_cached(seg_at, seg_len, seg_prot(p), true, c.clone(), foff, name)?;
                continue;
            }
            if seg_len > 0 {
                mm.map_range(seg_at, seg_len, seg_prot(p), false, true, mem.clone(), seg_lo - lo, name)?;
            }
            let n = head + p.p_filesz;
            if foff.checked_add(n).is_none_or(|e| e > c.len) {
                return Err(Errno::ENOEXEC);
            }
            mm.memfile().copy_within(c.off + foff, mem.off + (seg_lo - lo), n)?;
            continue;
        }
        if seg_len > 0 {
            mm.map_range(seg_at, seg_len, seg_prot(p), false, true, mem.clone(), seg_lo - lo, name)?;
        }
        let mut remaining = p.p_filesz + head;
        let mut at = 0u64;
        let mut buf = vec![0u8; 256 << 10];
        while remaining > 0 {
            let n = remaining.min(buf.len() as u64) as usize;
            let got = file.read_at(&mut buf[..n], foff + at)?;
            if got == 0 {
                break;
            }
            mm.force_write(seg_at + at, &buf[..got])?;
            at += got as u64;
            remaining -= got as u64;
        }
    }

    // Only reported to the program (AT_PHDR, AT_ENTRY): wrapping is
    // harmless, a panic is not.
    let phoff = elf.header.e_phoff;
    let phdr = match elf.phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        Some(p) => bias.wrapping_add(p.p_vaddr),
        None => loads
            .iter()
            .find(|p| p.p_offset <= phoff && phoff < p.p_offset.saturating_add(p.p_filesz))
            .map(|p| bias.wrapping_add(p.p_vaddr).wrapping_add(phoff - p.p_offset))
            .unwrap_or(0),
    };
    Ok(ElfInfo {
        entry: bias.wrapping_add(elf.header.e_entry),
        phdr,
        phnum: elf.phdrs.len() as u64,
        phent: 56,
        bias,
        end: start + span,
    })
}

/// What goes on the initial stack.
pub struct StackArgs<'a> {
    pub argv: &'a [Vec<u8>],
    pub envp: &'a [Vec<u8>],
    pub execfn: &'a [u8],
    pub exe: ElfInfo,
    pub interp_base: u64,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub random: [u8; 16],
    /// The vDSO's address (AT_SYSINFO_EHDR), 0 if none is mapped.
    pub vdso: u64,
}

/// Map the main stack and lay out argc/argv/envp/auxv; returns the
/// initial stack pointer.
pub fn setup_stack(mm: &MemoryManager, a: &StackArgs) -> Result<u64, Errno> {
    let top = mm.stack_top();
    mm.map_anon(top - STACK_SIZE, STACK_SIZE, Prot::RW, false, true, VmaName::Stack)?;
    let mut sp = top;
    let push_bytes = |mm: &MemoryManager, b: &[u8], sp: &mut u64| -> Result<u64, Errno> {
        *sp -= b.len() as u64;
        mm.copy_out(*sp, b)?;
        Ok(*sp)
    };
    // Strings, highest first: execfn, envp, argv, then platform and random.
    let mut execfn = a.execfn.to_vec();
    execfn.push(0);
    let execfn_addr = push_bytes(mm, &execfn, &mut sp)?;
    let mut env_addrs = Vec::with_capacity(a.envp.len());
    let env_end = sp;
    for e in a.envp.iter().rev() {
        let mut s = e.clone();
        s.push(0);
        env_addrs.push(push_bytes(mm, &s, &mut sp)?);
    }
    env_addrs.reverse();
    let env_start = sp;
    let arg_end = sp;
    let mut arg_addrs = Vec::with_capacity(a.argv.len());
    for s in a.argv.iter().rev() {
        let mut s = s.clone();
        s.push(0);
        arg_addrs.push(push_bytes(mm, &s, &mut sp)?);
    }
    arg_addrs.reverse();
    let arg_start = sp;
    mm.set_arg_env_ranges((arg_start, arg_end), (env_start, env_end));
    let platform_addr = push_bytes(mm, b"x86_64\0", &mut sp)?;
    sp &= !15;
    let random_addr = push_bytes(mm, &a.random, &mut sp)?;

    let mut auxv: Vec<(u64, u64)> = vec![
        (AT_PHDR, a.exe.phdr),
        (AT_PHENT, a.exe.phent),
        (AT_PHNUM, a.exe.phnum),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_BASE, a.interp_base),
        (AT_FLAGS, 0),
        (AT_ENTRY, a.exe.entry),
        (AT_UID, a.uid as u64),
        (AT_EUID, a.euid as u64),
        (AT_GID, a.gid as u64),
        (AT_EGID, a.egid as u64),
        (AT_SECURE, 0),
        (AT_CLKTCK, 100),
        (AT_HWCAP, hwcap()),
        (AT_HWCAP2, 0),
        (AT_RANDOM, random_addr),
        (AT_PLATFORM, platform_addr),
        (AT_EXECFN, execfn_addr),
    ];
    if a.vdso != 0 {
        auxv.insert(0, (AT_SYSINFO_EHDR, a.vdso));
    }
    auxv.push((AT_NULL, 0));
    let words = 1 + arg_addrs.len() + 1 + env_addrs.len() + 1 + auxv.len() * 2;
    sp -= (words * 8) as u64;
    sp &= !15;
    let mut v: Vec<u8> = Vec::with_capacity(words * 8);
    v.extend_from_slice(&(a.argv.len() as u64).to_ne_bytes());
    for p in &arg_addrs {
        v.extend_from_slice(&p.to_ne_bytes());
    }
    v.extend_from_slice(&0u64.to_ne_bytes());
    for p in &env_addrs {
        v.extend_from_slice(&p.to_ne_bytes());
    }
    v.extend_from_slice(&0u64.to_ne_bytes());
    for (k, val) in &auxv {
        v.extend_from_slice(&k.to_ne_bytes());
        v.extend_from_slice(&val.to_ne_bytes());
    }
    mm.copy_out(sp, &v)?;
    Ok(sp)
}

/// CPUID leaf 1 EDX, as Linux reports in AT_HWCAP.
fn hwcap() -> u64 {
    let r = core::arch::x86_64::__cpuid(1);
    r.edx as u64
}

#[cfg(test)]
#[path = "loader_tests.rs"]
mod tests;
