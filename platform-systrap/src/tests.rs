//! Tests: hand-assembled guest code in a memfd, run in real stubs.

use crate::layout::*;
use crate::space;
use crate::stubcode::Labels;
use crate::SystrapPlatform;
use platform::{Access, AddressSpace, Exit, FpState, Platform, PlatformError, Prot, Regs};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

mod affinity;
mod recycle;

const MOV_EAX_GETPPID: [u8; 5] = [0xb8, 39, 0, 0, 0];
const SYSCALL: [u8; 2] = [0x0f, 0x05];
const MOV_RDI_RAX: [u8; 3] = [0x48, 0x89, 0xc7];
const MOV_RDI_MEM_RBX: [u8; 3] = [0x48, 0x8b, 0x3b];
const MOV_MEM_RBX_RDI: [u8; 3] = [0x48, 0x89, 0x3b];
const MOV_RDI_FS0: [u8; 9] = [0x64, 0x48, 0x8b, 0x3c, 0x25, 0, 0, 0, 0];
const MOVQ_RDI_XMM0: [u8; 5] = [0x66, 0x48, 0x0f, 0x7e, 0xc7];
const MOVQ_XMM1_RDI: [u8; 5] = [0x66, 0x48, 0x0f, 0x6e, 0xcf];
const UD2: [u8; 2] = [0x0f, 0x0b];
const INT3: [u8; 1] = [0xcc];
const JMP_SELF: [u8; 2] = [0xeb, 0xfe];
/// `jmp rbx`
const JMP_RBX: [u8; 2] = [0xff, 0xe3];
/// `int 0x80`
const INT80: [u8; 2] = [0xcd, 0x80];

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x1000_0000;

fn asm(parts: &[&[u8]]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// `mov eax, 39; syscall; mov rdi, rax; mov eax, 39; syscall; jmp 0`.
fn getppid_loop() -> Vec<u8> {
    let mut c = asm(&[&MOV_EAX_GETPPID, &SYSCALL, &MOV_RDI_RAX, &MOV_EAX_GETPPID, &SYSCALL]);
    let rel = -(c.len() as i8 + 2);
    c.extend_from_slice(&[0xeb, rel as u8]);
    c
}

struct Mem {
    fd: i32,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: shared memory owned by Mem; tests synchronise with the guest
// through switch().
unsafe impl Send for Mem {}
// SAFETY: as above.
unsafe impl Sync for Mem {}

impl Mem {
    fn new(len: usize) -> Mem {
        // SAFETY: plain libc calls on a fresh memfd; results checked.
        unsafe {
            let fd = libc::memfd_create(c"platform-systrap-test".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, len as i64), 0);
            let p = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
            assert_ne!(p, libc::MAP_FAILED);
            Mem { fd, ptr: p.cast(), len }
        }
    }

    fn write(&self, off: u64, bytes: &[u8]) {
        assert!(off as usize + bytes.len() <= self.len);
        // SAFETY: in bounds of our mapping.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(off as usize), bytes.len()) }
    }

    fn read_u64(&self, off: u64) -> u64 {
        assert!(off as usize + 8 <= self.len);
        // SAFETY: in bounds; the guest is stopped while we read.
        unsafe { std::ptr::read_volatile(self.ptr.add(off as usize) as *const u64) }
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: our own mapping and fd.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
            libc::close(self.fd);
        }
    }
}

struct Env {
    mem: Mem,
    platform: SystrapPlatform,
}

fn env() -> Env {
    let mem = Mem::new(16 << 20);
    let platform = SystrapPlatform::new(mem.fd).expect("systrap platform");
    Env { mem, platform }
}

impl Env {
    /// A space with `code` RX at CODE (file offset 0) and a data page RW at
    /// DATA (file offset PAGE).
    fn space_with(&self, code: &[u8]) -> Arc<dyn AddressSpace> {
        self.mem.write(0, code);
        let s = self.platform.new_address_space().unwrap();
        s.map(CODE, PAGE, Prot::RX, 0).unwrap();
        s.map(DATA, PAGE, Prot::RW, PAGE).unwrap();
        s
    }
}

fn pid_of(space: &Arc<dyn AddressSpace>) -> i32 {
    space::lookup(space::key_of(space)).unwrap().pid
}

fn expect_syscall(r: Result<Exit, PlatformError>) {
    match r {
        Ok(Exit::Syscall) => {}
        other => panic!("expected a syscall exit, got {other:?}"),
    }
}

fn proc_exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// How long to wait for something that must happen: far beyond what a
/// loaded machine takes to schedule the thread or process doing it.
const DEADLINE: Duration = Duration::from_secs(20);

fn gone(pid: i32) -> bool {
    let t = Instant::now();
    while t.elapsed() < DEADLINE {
        if !proc_exists(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn maps_of(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn stub_code_fits() {
    assert!(crate::stubcode::code().len() as u64 <= CODE_SIZE);
}

#[test]
fn syscall_exits_and_results() {
    let env = env();
    let space = env.space_with(&getppid_loop());
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(regs.orig_rax, 39);
    assert_eq!(regs.rip, CODE + 7);
    for i in 0..100u64 {
        regs.rax = 1000 + i;
        expect_syscall(ctx.switch(&space, &mut regs));
        assert_eq!(regs.orig_rax, 39);
        assert_eq!(regs.rdi, 1000 + i, "the guest sees the result we wrote");
        regs.rax = 0;
        expect_syscall(ctx.switch(&space, &mut regs));
        assert_eq!(regs.rip, CODE + 7);
    }
    // Registers survive a round trip untouched.
    regs.r15 = 0x1515;
    regs.r11 = 0x1111;
    regs.rbp = 0xb0b0;
    regs.rip = CODE + 7;
    regs.rax = 0;
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!((regs.r15, regs.rbp), (0x1515, 0xb0b0));
}

/// Whatever the Sentry says of its answer (nothing, "later" from the
/// block hint, `answer_later`), and however late the answer comes (past
/// the stub's poll, so it sleeps), the guest gets it.
#[test]
fn answers_arrive_whatever_the_hint() {
    let env = env();
    let space = env.space_with(&getppid_loop());
    let mut ctx = env.platform.new_context().unwrap();
    let hint = ctx.block_hint().expect("systrap has a block hint");
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    for i in 0..40u64 {
        match i % 4 {
            1 => hint(),
            2 => ctx.answer_later(),
            3 => std::thread::sleep(Duration::from_millis(1)),
            _ => {}
        }
        regs.rax = 500 + i;
        expect_syscall(ctx.switch(&space, &mut regs));
        assert_eq!(regs.rdi, 500 + i, "answer {i} reached the guest");
        regs.rax = 0;
        expect_syscall(ctx.switch(&space, &mut regs));
    }
}

#[test]
fn stub_holds_only_the_stub_region_and_its_descriptors() {
    let env = env();
    let space = env.space_with(&getppid_loop());
    let pid = pid_of(&space);
    let maps = maps_of(pid);
    for l in &maps {
        let start = u64::from_str_radix(l.split('-').next().unwrap(), 16).unwrap();
        // The stub region, the patch slots' low copy (read-only), what
        // the test mapped, the vsyscall page.
        let low = start == LOW_SLOTS && l.starts_with(&format!("{:08x}-{:08x} r-xs", LOW_SLOTS, LOW_SLOTS + SLOTS_LEN));
        let ok = (STUB_BASE..STUB_END).contains(&start)
            || low
            || start == CODE
            || start == DATA
            || l.ends_with("[vsyscall]");
        assert!(ok, "unexpected mapping in the stub: {l} (all: {maps:?})");
    }
    let mut fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    fds.sort();
    // The memory file, the pipe and the cache file (here the memory file
    // again).
    assert_eq!(fds, vec![STUB_MEMFD_FD.to_string(), STUB_PIPE_FD.to_string(), STUB_CACHE_FD.to_string()]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.lines().any(|l| l.starts_with("Seccomp:") && l.ends_with('2')), "{status}");
}

#[test]
fn low_slots_are_given_up_at_the_first_change_there() {
    let env = env();
    let space = env.space_with(&getppid_loop());
    assert_eq!(space.code_window(), Some((LOW_SLOTS, LOW_SLOTS + SLOTS_LEN)));
    space.protect(DATA, PAGE, Prot::R).unwrap();
    assert!(space.code_window().is_some(), "a change elsewhere keeps them");
    space.map(LOW_SLOTS + SLOTS_LEN - PAGE, PAGE, Prot::R, 0).unwrap();
    assert_eq!(space.code_window(), None);
}

#[test]
fn fault_on_unmapped_address_then_resume() {
    let env = env();
    let code = asm(&[&MOV_RDI_MEM_RBX, &MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]);
    let space = env.space_with(&code);
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    let far = 0x2000_0000u64;
    regs.rbx = far + 0x18;
    match ctx.switch(&space, &mut regs) {
        Ok(Exit::Fault { addr, access, signo, code }) => {
            assert_eq!((addr, access, signo, code), (far + 0x18, Access::Read, libc::SIGSEGV, 1));
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    assert_eq!(regs.rip, CODE, "rip at the faulting instruction");
    env.mem.write(2 * PAGE + 0x18, &0x1234_5678_9abc_def0u64.to_le_bytes());
    space.map(far, PAGE, Prot::R, 2 * PAGE).unwrap();
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(regs.rdi, 0x1234_5678_9abc_def0);
    space.unmap(far, PAGE).unwrap();
    regs.rip = CODE;
    assert!(matches!(ctx.switch(&space, &mut regs), Ok(Exit::Fault { access: Access::Read, .. })));
}

#[test]
fn exec_fault_on_jump_to_unmapped() {
    let env = env();
    let space = env.space_with(&getppid_loop());
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(0x3000_0000, 0);
    match ctx.switch(&space, &mut regs) {
        Ok(Exit::Fault { addr, access, signo, .. }) => {
            assert_eq!((addr, access, signo), (0x3000_0000, Access::Exec, libc::SIGSEGV));
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    regs.rip = DATA;
    match ctx.switch(&space, &mut regs) {
        Ok(Exit::Fault { addr, access, code, .. }) => assert_eq!((addr, access, code), (DATA, Access::Exec, 2)),
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn write_faults_are_reported_as_writes() {
    let env = env();
    let code = asm(&[&MOV_MEM_RBX_RDI, &MOV_EAX_GETPPID, &SYSCALL, &[0xeb, (-12i8) as u8]]);
    let space = env.space_with(&code);
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    regs.rbx = DATA + 8;
    regs.rdi = 0xfeed;
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(env.mem.read_u64(PAGE + 8), 0xfeed, "guest write landed in the memory file");
    space.protect(DATA, PAGE, Prot::R).unwrap();
    regs.rdi = 0xbeef;
    // The page-fault error code says it at once.
    match ctx.switch(&space, &mut regs) {
        Ok(Exit::Fault { addr, access, signo, code }) => {
            assert_eq!((addr, access, signo, code), (DATA + 8, Access::Write, libc::SIGSEGV, 2));
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    assert_eq!(env.mem.read_u64(PAGE + 8), 0xfeed);
    space.protect(DATA, PAGE, Prot::RW).unwrap();
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(env.mem.read_u64(PAGE + 8), 0xbeef);
}

#[test]
fn cache_file_offsets_map_the_cache_file() {
    let mem = Mem::new(1 << 20);
    let cache = Mem::new(1 << 20);
    let platform = SystrapPlatform::with_memory(platform::MemoryFds { main: mem.fd, cache: cache.fd }).unwrap();
    let code = asm(&[&MOV_MEM_RBX_RDI, &MOV_EAX_GETPPID, &SYSCALL, &[0xeb, (-12i8) as u8]]);
    mem.write(0, &code);
    cache.write(3 * PAGE, &0x1234u64.to_le_bytes());
    let space = platform.new_address_space().unwrap();
    space.map(CODE, PAGE, Prot::RX, 0).unwrap();
    // Offsets from CACHE_FILE_BASE on are the cache file's.
    space.map(DATA, PAGE, Prot::RW, platform::CACHE_FILE_BASE + 3 * PAGE).unwrap();
    let mut ctx = platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    regs.rbx = DATA + 8;
    regs.rdi = 0xfeed;
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(cache.read_u64(3 * PAGE + 8), 0xfeed, "guest write landed in the cache file");
    assert_eq!(cache.read_u64(3 * PAGE), 0x1234, "the page is the cache file's");
    assert_eq!(mem.read_u64(3 * PAGE + 8), 0, "not the memory file's");
    // Batched (a new image's mappings) as well.
    let space = platform.new_address_space().unwrap();
    space.begin_batch();
    space.map(CODE, PAGE, Prot::RX, 0).unwrap();
    space.map(DATA, PAGE, Prot::RW, platform::CACHE_FILE_BASE + 3 * PAGE).unwrap();
    space.flush().unwrap();
    regs = Regs::new_user(CODE, 0);
    regs.rbx = DATA + 16;
    regs.rdi = 0xbeef;
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(cache.read_u64(3 * PAGE + 16), 0xbeef);
}

#[test]
fn fs_base_from_regs() {
    let env = env();
    let code = asm(&[&MOV_RDI_FS0, &MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]);
    let space = env.space_with(&code);
    env.mem.write(PAGE + 0x40, &0x1122_3344_5566_7788u64.to_le_bytes());
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    regs.fs_base = DATA + 0x40;
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(regs.rdi, 0x1122_3344_5566_7788);
    assert_eq!(regs.fs_base, DATA + 0x40);
    env.mem.write(PAGE + 0x80, &7u64.to_le_bytes());
    regs.fs_base = DATA + 0x80;
    regs.rip = CODE;
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(regs.rdi, 7);
}

#[test]
fn interrupt_from_another_thread() {
    let env = env();
    let space = env.space_with(&JMP_SELF);
    let mut ctx = env.platform.new_context().unwrap();
    let intr = ctx.interrupter();
    let mut regs = Regs::new_user(CODE, 0);
    let i2 = intr.clone();
    // Started before the interrupter, so however late either thread runs,
    // the interrupt comes at least 50 ms after it.
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        i2.interrupt();
    });
    assert!(matches!(ctx.switch(&space, &mut regs), Ok(Exit::Interrupted)));
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(regs.rip, CODE, "registers of the spinning guest");
    t.join().unwrap();

    intr.interrupt();
    assert!(matches!(ctx.switch(&space, &mut regs), Ok(Exit::Interrupted)));
    env.mem.write(0, &getppid_loop());
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    for _ in 0..100 {
        expect_syscall(ctx.switch(&space, &mut regs));
    }

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (i3, s3) = (intr.clone(), stop.clone());
    let t = std::thread::spawn(move || {
        let mut n = 0;
        while !s3.load(std::sync::atomic::Ordering::Relaxed) {
            i3.interrupt();
            n += 1;
            std::thread::sleep(Duration::from_micros(200));
        }
        n
    });
    // At least 3000 switches, and on until an interrupt has landed: the
    // interrupter may not get a CPU for a while on a loaded machine.
    let mut interrupted = 0;
    let t0 = Instant::now();
    let mut n = 0;
    while n < 3000 || (interrupted == 0 && t0.elapsed() < DEADLINE) {
        match ctx.switch(&space, &mut regs) {
            Ok(Exit::Syscall) => {}
            Ok(Exit::Interrupted) => interrupted += 1,
            other => panic!("unexpected {other:?}"),
        }
        n += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = t.join().unwrap();
    assert!(interrupted > 0 && interrupted <= sent + 1, "interrupted {interrupted}, sent {sent}");
    intr.interrupt();
    assert!(matches!(ctx.switch(&space, &mut regs), Ok(Exit::Interrupted)));
}

#[test]
fn two_contexts_share_one_address_space() {
    let env = env();
    let mut code = asm(&[&MOV_MEM_RBX_RDI, &MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]);
    code.resize(16, 0x90);
    code.extend(asm(&[&MOV_RDI_MEM_RBX, &MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]));
    code.resize(32, 0x90);
    code.extend(getppid_loop());
    let space = env.space_with(&code);
    let barrier = Arc::new(Barrier::new(2));
    let platform = &env.platform;
    std::thread::scope(|s| {
        let (sp, b) = (space.clone(), barrier.clone());
        s.spawn(move || {
            let mut ctx = platform.new_context().unwrap();
            let mut regs = Regs::new_user(CODE, 0);
            regs.rbx = DATA + 0x100;
            regs.rdi = 0xabcdef;
            expect_syscall(ctx.switch(&sp, &mut regs));
            b.wait();
            let mut regs = Regs::new_user(CODE + 32, 0);
            for _ in 0..2000 {
                expect_syscall(ctx.switch(&sp, &mut regs));
            }
        });
        let (sp, b) = (space.clone(), barrier.clone());
        s.spawn(move || {
            let mut ctx = platform.new_context().unwrap();
            let _ = ctx.fp_state(&sp).unwrap();
            b.wait();
            let mut regs = Regs::new_user(CODE + 16, 0);
            regs.rbx = DATA + 0x100;
            expect_syscall(ctx.switch(&sp, &mut regs));
            assert_eq!(regs.rdi, 0xabcdef);
            let mut regs = Regs::new_user(CODE + 32, 0);
            for i in 0..200u64 {
                sp.map(DATA + (2 + i % 8) * PAGE, PAGE, Prot::RW, 3 * PAGE).unwrap();
                expect_syscall(ctx.switch(&sp, &mut regs));
            }
        });
    });
    let maps = maps_of(pid_of(&space));
    assert!(maps.iter().any(|l| l.starts_with(&format!("{:08x}-", DATA + 2 * PAGE))), "{maps:?}");
}

#[test]
fn map_from_many_threads() {
    let env = env();
    let space = env.platform.new_address_space().unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let sp = space.clone();
            s.spawn(move || {
                for i in 0..50u64 {
                    let addr = DATA + (t * 64 + i) * PAGE;
                    sp.map(addr, PAGE, Prot::RW, PAGE).unwrap();
                    sp.protect(addr, PAGE, Prot::R).unwrap();
                    if i % 2 == 0 {
                        sp.unmap(addr, PAGE).unwrap();
                    }
                }
            });
        }
    });
    let n = maps_of(pid_of(&space)).iter().filter(|l| l.contains("platform-systrap-test")).count();
    assert!(n >= 1);
}

#[test]
fn map_errors_are_host_errors() {
    let env = env();
    let space = env.platform.new_address_space().unwrap();
    match space.map(DATA, PAGE, Prot::R, 123) {
        Err(PlatformError::Host { call: "mmap", errno }) => assert_eq!(errno, abi::Errno::EINVAL),
        other => panic!("unexpected {other:?}"),
    }
    assert!(space.map(STUB_BASE, PAGE, Prot::RW, 0).is_err());
    assert!(space.unmap(STUB_BASE - PAGE, 2 * PAGE).is_err());
    assert!(space.protect(u64::MAX - PAGE + 1, PAGE, Prot::R).is_err());
    space.map(DATA, PAGE, Prot::R, 0).unwrap();
}

#[test]
fn guest_signals() {
    let env = env();
    let mut code = asm(&[&UD2]);
    code.resize(16, 0x90);
    code.extend(INT3);
    let space = env.space_with(&code);
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    match ctx.switch(&space, &mut regs) {
        Ok(Exit::Signal(info)) => assert_eq!(info.signo, libc::SIGILL),
        other => panic!("expected SIGILL, got {other:?}"),
    }
    assert_eq!(regs.rip, CODE);
    let mut regs = Regs::new_user(CODE + 16, 0);
    match ctx.switch(&space, &mut regs) {
        Ok(Exit::Signal(info)) => assert_eq!((info.signo, info.code), (libc::SIGTRAP, 0x80)),
        other => panic!("expected SIGTRAP, got {other:?}"),
    }
    assert_eq!(regs.rip, CODE + 17);
    env.mem.write(0, &getppid_loop());
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
}

#[test]
fn fp_state_round_trip() {
    let env = env();
    let code = asm(&[&MOVQ_RDI_XMM0, &MOVQ_XMM1_RDI, &MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]);
    let space = env.space_with(&code);
    let mut ctx = env.platform.new_context().unwrap();
    let fp = ctx.fp_state(&space).unwrap();
    assert_eq!(fp.0[..24], FpState::default().0[..24]);
    assert!(fp.0[160..416].iter().all(|&b| b == 0), "xmm registers are zero");
    let mut fp = FpState::default();
    fp.0[160..168].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
    ctx.set_fp_state(&space, &fp).unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(regs.rdi, 0x0123_4567_89ab_cdef);
    let fp = ctx.fp_state(&space).unwrap();
    assert_eq!(fp.0[176..184], 0x0123_4567_89ab_cdefu64.to_le_bytes(), "xmm1 set by the guest");
    // An MXCSR with reserved bits is cleaned, not fatal.
    let mut fp = FpState::default();
    fp.0[24..28].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
    ctx.set_fp_state(&space, &fp).unwrap();
    regs.rip = CODE;
    expect_syscall(ctx.switch(&space, &mut regs));
}

#[test]
fn drop_cleans_up_processes() {
    let env = env();
    let space = env.space_with(&getppid_loop());
    let pid = pid_of(&space);
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    let space2 = env.space_with(&getppid_loop());
    let pid2 = pid_of(&space2);
    let mut regs2 = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space2, &mut regs2));
    // Not recycled (see tests_recycle.rs): killed.
    env.platform.shared.bin.set_enabled(false);
    drop(space);
    assert!(gone(pid), "address space's stub reaped");
    for _ in 0..10 {
        expect_syscall(ctx.switch(&space2, &mut regs2));
    }
    drop(ctx);
    assert!(proc_exists(pid2));
    // Its thread went back to the pool: a new context reuses it.
    let threads = || std::fs::read_dir(format!("/proc/{pid2}/task")).unwrap().count();
    let before = threads();
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space2, &mut regs));
    assert_eq!(threads(), before);
    drop(space2);
    assert!(gone(pid2));
    assert!(matches!(ctx.switch(&env.space_with(&getppid_loop()), &mut regs), Ok(Exit::Syscall)));
}

#[test]
fn stub_killed_from_outside_is_reported() {
    let env = env();
    let space = env.space_with(&JMP_SELF);
    let mut ctx = env.platform.new_context().unwrap();
    let pid = pid_of(&space);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: kill of our own stub process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut regs = Regs::new_user(CODE, 0);
    assert!(matches!(ctx.switch(&space, &mut regs), Err(PlatformError::StubDied(_))));
    assert!(space.map(DATA, PAGE, Prot::R, 0).is_err());
    // Signals sent from outside (other than SIGKILL) are ignored.
    let space = env.space_with(&getppid_loop());
    let pid = pid_of(&space);
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    for sig in [libc::SIGTERM, libc::SIGSYS, libc::SIGSEGV, libc::SIGUSR1] {
        // SAFETY: kill of our own stub process.
        unsafe { libc::kill(pid, sig) };
    }
    for _ in 0..50 {
        expect_syscall(ctx.switch(&space, &mut regs));
    }
}

#[test]
fn context_moves_between_threads() {
    let env = env();
    let space = env.space_with(&getppid_loop());
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    let sp = space.clone();
    let (ctx, regs) = std::thread::spawn(move || {
        expect_syscall(ctx.switch(&sp, &mut regs));
        (ctx, regs)
    })
    .join()
    .unwrap();
    drop(ctx);
    assert_eq!(regs.orig_rax, 39);
}

#[test]
fn int80_gets_enosys_without_reaching_the_sentry() {
    let env = env();
    let code = asm(&[&[0xb8, 20, 0, 0, 0], &INT80, &MOV_RDI_RAX, &MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]);
    let space = env.space_with(&code);
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(regs.rdi as i64, -38);
}

/// A guest jumping into the stub's own syscall instructions gains nothing:
/// the calls trap like any other, or (rt_sigreturn, futex) only affect the
/// guest itself.
#[test]
fn guest_cannot_use_the_stubs_syscalls() {
    let env = env();
    let l = Labels::get();
    // Code: jmp rbx (rbx = a stub syscall instruction's address).
    let space = env.space_with(&asm(&[&JMP_RBX]));
    let mut ctx = env.platform.new_context().unwrap();
    let pid = pid_of(&space);
    for (after, nr, args) in [
        // mmap of the memory file over the control page, writable.
        (l.ctl_syscall, 9u64, [STUB_BASE + CTRL_OFF, PAGE, 3, 0x11, STUB_MEMFD_FD as u64, 0]),
        (l.ctl_syscall, 11, [0x40_0000, PAGE, 0, 0, 0, 0]),
        (l.clone_syscall, 56, [crate::process::THREAD_CLONE_FLAGS, 0, 0, 0, 0, 0]),
        (l.init_syscall, 317, [1, 0, 0, 0, 0, 0]),
        (l.futex_syscall, 202, [DATA, 3 /* REQUEUE */, 1, 0, DATA + 8, 0]),
        (l.arch_prctl_syscall, 158, [0x1003 /* GET_FS */, DATA, 0, 0, 0, 0]),
        (l.ctl_syscall, 1, [STUB_PIPE_FD as u64, DATA, 8, 0, 0, 0]),
    ] {
        let mut regs = Regs::new_user(CODE, 0);
        regs.rbx = after - 2;
        regs.rax = nr;
        [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = args;
        expect_syscall(ctx.switch(&space, &mut regs));
        assert_eq!((regs.orig_rax, regs.rip), (nr, after), "trapped to the Sentry");
    }
    // Writing to the control page faults; so does jumping into the middle of
    // nowhere in the stub region.
    let space2 = env.space_with(&asm(&[&MOV_MEM_RBX_RDI, &JMP_SELF]));
    let mut regs = Regs::new_user(CODE, 0);
    regs.rbx = STUB_BASE + CTRL_OFF;
    assert!(matches!(ctx.switch(&space2, &mut regs), Ok(Exit::Fault { access: Access::Write, .. })));
    // The stub is intact: no extra mappings, still serving.
    assert!(maps_of(pid)
        .iter()
        .all(|l| !l.starts_with(&format!("{:x}-", STUB_BASE + CTRL_OFF)) || l.contains(" r--s ")));
    let mut regs = Regs::new_user(CODE, 0);
    regs.rbx = CODE + 2;
    env.mem.write(0, &getppid_loop());
    expect_syscall(ctx.switch(&space, &mut regs));
}

/// A guest that corrupts its own message page or signal stack hurts only
/// itself: the Sentry sees a dead stub, not a crash.
#[test]
fn guest_scribbling_on_its_stub_dies_alone() {
    let env = env();
    // rep stosq over the whole thread block of thread 0: rdi = block, rcx
    // = count, rax = garbage; then a syscall.
    let code = asm(&[&[0xf3, 0x48, 0xab], &MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]);
    let space = env.space_with(&code);
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    regs.rdi = STUB_BASE + THREADS_OFF;
    regs.rcx = THREAD_STRIDE / 8;
    regs.rax = 0x4141_4141_4141_4141;
    let r = ctx.switch(&space, &mut regs);
    assert!(matches!(r, Err(PlatformError::StubDied(_)) | Ok(_)), "{r:?}");
    // The platform goes on with other spaces.
    let space = env.space_with(&getppid_loop());
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
}

/// Round-trip cost of `switch` for a getppid loop.
/// `cargo test -p platform-systrap --release -- --ignored --nocapture roundtrip`
#[test]
#[ignore]
fn roundtrip_benchmark() {
    let n = 200_000;
    let env = env();
    let space = env.space_with(&getppid_loop());
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    for _ in 0..1000 {
        expect_syscall(ctx.switch(&space, &mut regs));
    }
    let t = Instant::now();
    for _ in 0..n {
        regs.rax = 0;
        expect_syscall(ctx.switch(&space, &mut regs));
    }
    let ours = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..20 {
        drop(env.platform.new_address_space().unwrap());
    }
    let as_create = t.elapsed() / 20;
    let t = Instant::now();
    for i in 0..2000u64 {
        space.map(DATA + (i % 16) * PAGE, PAGE, Prot::RW, PAGE).unwrap();
    }
    let map = t.elapsed() / 2000;
    println!("systrap Context::switch round trip: {ours:?}; new_address_space + drop: {as_create:?}; map: {map:?}");
}

/// Changes collected between `begin_batch` and `flush` reach the stub in
/// batch requests (more than one batch page's worth here), in order; the
/// guest then runs on them; a failing change shows at `flush`.
#[test]
fn batched_changes_land_in_order() {
    let env = env();
    env.mem.write(0, &getppid_loop());
    let space = env.platform.new_address_space().unwrap();
    let pid = pid_of(&space);
    space.begin_batch();
    // An unmap that a map of the same range follows is dropped; the
    // result must be the same as without batching.
    space.map(CODE, PAGE, Prot::R, PAGE).unwrap();
    space.unmap(CODE, PAGE).unwrap();
    space.map(CODE, PAGE, Prot::RX, 0).unwrap();
    let n = 2 * BATCH_MAX;
    for i in 0..n {
        space.map(DATA + i * 2 * PAGE, PAGE, Prot::RW, PAGE).unwrap();
    }
    for i in (0..n).step_by(2) {
        space.protect(DATA + i * 2 * PAGE, PAGE, Prot::R).unwrap();
    }
    space.unmap(DATA + (n - 1) * 2 * PAGE, PAGE).unwrap();
    space.flush().unwrap();
    let maps = maps_of(pid);
    let test_maps: Vec<&String> = maps.iter().filter(|l| l.contains("platform-systrap-test")).collect();
    // The code page, then n - 1 data pages (the last was unmapped).
    assert_eq!(test_maps.len() as u64, n, "{test_maps:#?}");
    assert!(test_maps[0].contains("r-xs"), "{}", test_maps[0]);
    assert!(test_maps[1].contains("r--s"), "{}", test_maps[1]);
    assert!(test_maps[2].contains("rw-s"), "{}", test_maps[2]);
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(regs.orig_rax, 39);

    // Not collecting any more: each change is made at once.
    space.unmap(DATA, PAGE).unwrap();
    assert_eq!(maps_of(pid).iter().filter(|l| l.contains("platform-systrap-test")).count() as u64, n - 1);

    let other = 0x2000_0000u64;
    space.begin_batch();
    space.map(other, PAGE, Prot::R, 0).unwrap();
    space.map(other + PAGE, PAGE, Prot::R, 123).unwrap();
    space.map(other + 2 * PAGE, PAGE, Prot::R, 0).unwrap();
    assert!(space.flush().is_err(), "an unaligned offset fails at flush");
    // The calls before the failing one were made, none after it.
    let maps = maps_of(pid);
    assert!(maps.iter().any(|l| l.starts_with(&format!("{other:08x}-"))), "{maps:#?}");
    assert!(!maps.iter().any(|l| l.starts_with(&format!("{:08x}-", other + 2 * PAGE))), "{maps:#?}");
    space.flush().unwrap();
}

#[test]
#[ignore]
fn stub_creation_benchmark() {
    let env = env();
    for _ in 0..3 {
        let t = Instant::now();
        let n = 50;
        let mut v = Vec::new();
        for _ in 0..n {
            let s = env.platform.new_address_space().unwrap();
            s.prepare();
            v.push(s);
        }
        let made = t.elapsed() / n;
        let t = Instant::now();
        drop(v);
        eprintln!("stub creation: {made:?} each (with its first thread); drop: {:?} each", t.elapsed() / n);
    }
}
