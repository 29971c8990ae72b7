//! Property tests of the ELF loader: any bytes, generated ELF images with
//! hostile program headers, and a real executable with bytes changed are
//! parsed and loaded into an address space without a panic; what fails
//! fails with an errno.

use super::*;
use crate::memfile::MemoryFile;
use abi::flags::{O_WRONLY, S_IFREG};
use platform::PlatformError;
use proptest::prelude::*;
use std::sync::OnceLock;
use vfs::tmpfs::TmpFs;
use vfs::{Creds, Follow, MountFlags, MountNamespace};

/// An address space that maps nothing: the loader's bookkeeping is what
/// is tested, not a platform.
struct NoSpace;

impl platform::AddressSpace for NoSpace {
    fn map(&self, _: u64, _: u64, _: Prot, _: u64) -> Result<(), PlatformError> {
        Ok(())
    }
    fn unmap(&self, _: u64, _: u64) -> Result<(), PlatformError> {
        Ok(())
    }
    fn protect(&self, _: u64, _: u64, _: Prot) -> Result<(), PlatformError> {
        Ok(())
    }
}

/// One memory file for every case (each maps 256 GiB of address space).
fn memfile() -> Arc<MemoryFile> {
    static MF: OnceLock<Arc<MemoryFile>> = OnceLock::new();
    MF.get_or_init(|| MemoryFile::new().expect("memory file")).clone()
}

/// `bytes` as an executable file on a tmpfs.
fn exec_file(bytes: &[u8]) -> ExecFile {
    let ns = MountNamespace::new("tmpfs", "none", TmpFs::new_root(0o755, 0, 0), MountFlags::default());
    let root = ns.root();
    let c = Creds::root();
    root.inode.create(b"exe", S_IFREG | 0o755, &c).expect("create");
    let dentry = ns.resolve(&root, &root, b"/exe", Follow::Yes, &c).expect("resolve");
    let irq = vfs::Interrupt::default();
    let w = dentry.inode.open(O_WRONLY).expect("open");
    w.write(&IoCtx { flags: O_WRONLY, interrupt: &irq }, bytes, 0).expect("write");
    let ops = dentry.inode.open(O_RDONLY).expect("open");
    ExecFile { dentry, ops }
}

/// Parse and load `bytes` as exec does (main program, then as an
/// interpreter, then from a "cached" copy), and lay out a stack.
fn parse_and_load(bytes: &[u8]) {
    let file = exec_file(bytes);
    let Ok(elf) = parse(&file) else { return };
    let _ = interp_path(&file, &elf);
    let mf = memfile();
    let cache = mf.alloc(page_up(bytes.len().max(1) as u64).unwrap_or(PAGE_SIZE)).ok();
    if let Some(c) = &cache {
        let _ = mf.write(c.off, bytes);
    }
    for (is_interp, cached) in [(false, None), (true, None), (false, cache.as_ref())] {
        let mm = MemoryManager::new(Arc::new(NoSpace), mf.clone(), 0x7fff_f000_0000);
        if let Ok(info) = load(&mm, &file, &elf, is_interp, cached) {
            let args = StackArgs {
                argv: &[b"exe".to_vec()],
                envp: &[],
                execfn: b"/exe",
                exe: info,
                interp_base: 0,
                uid: 0,
                gid: 0,
                euid: 0,
                egid: 0,
                random: [0; 16],
                vdso: 0,
            };
            let _ = setup_stack(&mm, &args);
        }
    }
}

/// A program header: (type, flags, offset, vaddr, filesz, memsz).
type Phdr = (u32, u32, u64, u64, u64, u64);

/// An ELF64 x86-64 image with these program headers and `body` after them.
fn elf_image(e_type: u16, entry: u64, phdrs: &[Phdr], body: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    b.extend_from_slice(&e_type.to_le_bytes());
    b.extend_from_slice(&EM_X86_64.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&entry.to_le_bytes());
    b.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    b.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    b.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    b.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    b.extend_from_slice(&(phdrs.len() as u16).to_le_bytes());
    b.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    for &(typ, flags, off, vaddr, filesz, memsz) in phdrs {
        b.extend_from_slice(&typ.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        for v in [off, vaddr, vaddr, filesz, memsz, PAGE_SIZE] {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    b.extend_from_slice(body);
    b
}

/// Values around the edges that matter to the loader.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..0x3000,
        Just(0x40_0000u64),
        (0u64..0x100).prop_map(|p| 0x40_0000 + p * PAGE_SIZE),
        Just(PIE_BASE),
        Just(PIE_BASE + PAGE_SIZE),
        Just(0x7fff_f000_0000u64),
        Just(1u64 << 36),
        Just(1u64 << 47),
        Just(u64::MAX),
        Just(u64::MAX - PAGE_SIZE),
        Just(i64::MAX as u64),
        any::<u64>(),
    ]
}

fn phdr() -> impl Strategy<Value = Phdr> {
    let typ = prop_oneof![
        4 => Just(PT_LOAD),
        1 => Just(PT_INTERP),
        1 => Just(PT_PHDR),
        1 => Just(0x6474_e551u32), // PT_GNU_STACK
        1 => any::<u32>(),
    ];
    (typ, 0u32..8, edgy_u64(), edgy_u64(), edgy_u64(), edgy_u64())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any bytes at all, including a valid header's start.
    #[test]
    fn any_bytes(mut b in proptest::collection::vec(any::<u8>(), 0..512), elf_magic in any::<bool>()) {
        if elf_magic && b.len() >= 20 {
            b[..4].copy_from_slice(b"\x7fELF");
            b[4] = 2;
            b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        }
        parse_and_load(&b);
    }

    /// Well-formed headers with hostile program headers: offsets and
    /// addresses at the edges, sizes that overflow, segments out of order
    /// or overlapping, PT_INTERP paths without a NUL.
    #[test]
    fn hostile_program_headers(
        e_type in prop_oneof![Just(ET_EXEC), Just(ET_DYN), any::<u16>()],
        entry in edgy_u64(),
        phdrs in proptest::collection::vec(phdr(), 1..6),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        parse_and_load(&elf_image(e_type, entry, &phdrs, &body));
    }
}

/// A real program (this test's own executable's first pages, whose
/// headers describe the whole file) with bytes of its headers changed.
#[test]
fn mutated_real_executable() {
    let Ok(exe) = std::fs::read("/proc/self/exe") else { return };
    let head: Vec<u8> = exe.into_iter().take(64 << 10).collect();
    parse_and_load(&head);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let flips = proptest::collection::vec((0usize..1024, any::<u8>()), 1..16);
    runner
        .run(&flips, |flips| {
            let mut b = head.clone();
            for (at, v) in flips {
                if let Some(x) = b.get_mut(at) {
                    *x = v;
                }
            }
            parse_and_load(&b);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Found by the properties above: segments out of address order (the
/// offset of a segment below the first one underflowed) and a PIE linked
/// above where it is placed (the load bias wrapped).
#[test]
fn unsorted_segments_and_wrapping_bias() {
    let two = |e_type, a: u64, b: u64| {
        elf_image(e_type, a, &[(PT_LOAD, 5, 0, a, 0x200, 0x200), (PT_LOAD, 6, 0, b, 0x10, 0x2000)], &[0x90; 0x200])
    };
    for (e_type, a, b) in
        [(ET_EXEC, 0x60_0000, 0x40_0000), (ET_DYN, 0x5000, 0x1000), (ET_DYN, 0x7000_0000_0000, 0x7000_0001_0000)]
    {
        let file = exec_file(&two(e_type, a, b));
        let elf = parse(&file).expect("parses");
        let mm = MemoryManager::new(Arc::new(NoSpace), memfile(), 0x7fff_f000_0000);
        let info = load(&mm, &file, &elf, false, None).expect("loads");
        // Both segments are mapped where the bias puts them, whatever their order.
        for vaddr in [a, b] {
            let mut byte = [0u8; 1];
            assert_eq!(mm.force_read(info.bias.wrapping_add(vaddr), &mut byte), Ok(()), "{e_type} {vaddr:#x}");
        }
        assert_eq!(info.entry, info.bias.wrapping_add(a));
    }
}
