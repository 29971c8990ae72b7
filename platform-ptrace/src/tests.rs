//! Tests: hand-assembled guest code in a memfd, run in real stubs.
//! They need ptrace (run as root, or with CAP_SYS_PTRACE).

use crate::context::PtraceContext;
use crate::space;
use crate::{CpuBinding, PtracePlatform, STUB_ADDR};
use platform::{Access, AddressSpace, Context, Exit, FpState, Platform, PlatformError, Prot, Regs};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

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

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x1000_0000;
const PAGE: u64 = 4096;

/// Concatenate instruction bytes.
fn asm(parts: &[&[u8]]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// `mov eax, 39; syscall; mov rdi, rax; mov eax, 39; syscall; jmp 0`:
/// the second syscall shows (in rdi) what the first one returned.
fn getppid_loop() -> Vec<u8> {
    let mut c = asm(&[&MOV_EAX_GETPPID, &SYSCALL, &MOV_RDI_RAX, &MOV_EAX_GETPPID, &SYSCALL]);
    let rel = -(c.len() as i8 + 2);
    c.extend_from_slice(&[0xeb, rel as u8]);
    c
}

/// A memory file mapped in the test process too.
struct Mem {
    fd: i32,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is shared memory owned by Mem; tests synchronise
// their accesses with the guest through switch().
unsafe impl Send for Mem {}
// SAFETY: as above.
unsafe impl Sync for Mem {}

impl Mem {
    fn new(len: usize) -> Mem {
        // SAFETY: plain libc calls on a fresh memfd; results checked.
        unsafe {
            let fd = libc::memfd_create(c"platform-ptrace-test".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, len as i64), 0);
            let p = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
            assert_ne!(p, libc::MAP_FAILED);
            Mem { fd, ptr: p.cast(), len }
        }
    }

    fn write(&self, off: u64, bytes: &[u8]) {
        assert!(off as usize + bytes.len() <= self.len);
        // SAFETY: in bounds of our mapping (checked above).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(off as usize), bytes.len()) }
    }

    fn read_u64(&self, off: u64) -> u64 {
        assert!(off as usize + 8 <= self.len);
        // SAFETY: in bounds, and the guest is stopped while we read.
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
    platform: PtracePlatform,
}

fn env_with(binding: CpuBinding) -> Env {
    let mem = Mem::new(16 << 20);
    let platform = PtracePlatform::with_cpu_binding(mem.fd, binding).expect("ptrace platform");
    Env { mem, platform }
}

fn env() -> Env {
    env_with(CpuBinding::Pin)
}

impl Env {
    /// A space with `code` mapped RX at CODE (file offset 0) and a data
    /// page RW at DATA (file offset PAGE).
    fn space_with(&self, code: &[u8]) -> Arc<dyn AddressSpace> {
        self.mem.write(0, code);
        let s = self.platform.new_address_space().unwrap();
        s.map(CODE, PAGE, Prot::RX, 0).unwrap();
        s.map(DATA, PAGE, Prot::RW, PAGE).unwrap();
        s
    }
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

/// Wait for a process to disappear from /proc (reaped).
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
    std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap().lines().map(str::to_string).collect()
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
}

#[test]
fn stub_address_space_holds_only_the_stub_page() {
    let env = env();
    let space = env.platform.new_address_space().unwrap();
    let pid = space::first_pid_of(&space).unwrap();
    let maps = maps_of(pid);
    let stub = format!("{:x}-{:x} r-xp", STUB_ADDR, STUB_ADDR + PAGE);
    let others: Vec<_> = maps.iter().filter(|l| !l.starts_with(&stub) && !l.ends_with("[vsyscall]")).collect();
    assert!(others.is_empty(), "unexpected mappings in the stub: {others:?}");
    assert!(maps.iter().any(|l| l.starts_with(&stub)), "stub page missing: {maps:?}");
    // Only the memory file is open in the stub.
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(fds, vec![std::ffi::OsString::from(env.mem.fd.to_string())]);

    // A context's stub thread shares that address space.
    env.mem.write(0, &getppid_loop());
    space.map(CODE, PAGE, Prot::RX, 0).unwrap();
    let mut ctx = PtraceContext::new(env.platform.shared.clone());
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    let tpid = ctx.stub_pid(&space).unwrap();
    assert_ne!(tpid, pid);
    let maps = maps_of(tpid);
    assert!(maps.iter().any(|l| l.starts_with(&format!("{:08x}-{:08x} r-xs", CODE, CODE + PAGE))), "{maps:?}");
    assert_eq!(maps_of(pid), maps);
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
            assert_eq!(addr, far + 0x18);
            assert_eq!(access, Access::Read);
            assert_eq!(signo, libc::SIGSEGV);
            assert_eq!(code, 1 /* SEGV_MAPERR */);
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    assert_eq!(regs.rip, CODE, "rip at the faulting instruction");
    // Handle the fault: map the page, resume with the same registers.
    env.mem.write(2 * PAGE + 0x18, &0x1234_5678_9abc_def0u64.to_le_bytes());
    space.map(far, PAGE, Prot::R, 2 * PAGE).unwrap();
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(regs.rdi, 0x1234_5678_9abc_def0);
    // Unmapped again: faults again.
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
    // A non-executable page faults as Exec too (ACCERR).
    regs.rip = DATA;
    match ctx.switch(&space, &mut regs) {
        Ok(Exit::Fault { addr, access, code, .. }) => {
            assert_eq!((addr, access, code), (DATA, Access::Exec, 2));
        }
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn protect_read_only_then_write_faults() {
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
    // First fault: reported as a read (ptrace gives no error code) ...
    match ctx.switch(&space, &mut regs) {
        Ok(Exit::Fault { addr, access, signo, code }) => {
            assert_eq!((addr, access, signo, code), (DATA + 8, Access::Read, libc::SIGSEGV, 2 /* SEGV_ACCERR */));
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    assert_eq!(regs.rip, CODE);
    // ... the same fault again right away: a write.
    match ctx.switch(&space, &mut regs) {
        Ok(Exit::Fault { addr, access, .. }) => {
            assert_eq!((addr, access), (DATA + 8, Access::Write))
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
    let fds = platform::MemoryFds { main: mem.fd, cache: cache.fd };
    let platform = PtracePlatform::with_memory(fds, CpuBinding::Pin).unwrap();
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
    // Changing it between switches works too.
    env.mem.write(PAGE + 0x80, &7u64.to_le_bytes());
    regs.fs_base = DATA + 0x80;
    regs.rip = CODE;
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(regs.rdi, 7);
}

#[test]
fn interrupt_from_another_thread() {
    let env = env();
    let spin = asm(&[&JMP_SELF]);
    let space = env.space_with(&spin);
    let mut ctx = env.platform.new_context().unwrap();
    let intr = ctx.interrupter();

    // Interrupt a guest spinning in user mode.
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

    // An interrupt while not in switch: the next switch reports it without
    // running the guest, and only once.
    intr.interrupt();
    assert!(matches!(ctx.switch(&space, &mut regs), Ok(Exit::Interrupted)));
    env.mem.write(0, &getppid_loop());
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    for _ in 0..100 {
        expect_syscall(ctx.switch(&space, &mut regs));
    }

    // Hammer: interrupts racing with switches never get lost or invent
    // exits other than Syscall/Interrupted.
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
    // The last interrupt is still seen.
    intr.interrupt();
    assert!(matches!(ctx.switch(&space, &mut regs), Ok(Exit::Interrupted)));
}

#[test]
fn two_contexts_share_one_address_space() {
    let env = env();
    // Writer: *rbx = rdi; syscall. Reader at +16: rdi = *rbx; syscall.
    let mut code = asm(&[&MOV_MEM_RBX_RDI, &MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]);
    code.resize(16, 0x90);
    code.extend(asm(&[&MOV_RDI_MEM_RBX, &MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]));
    code.resize(32, 0x90);
    code.extend(getppid_loop());
    let space = env.space_with(&code);
    let barrier = Arc::new(Barrier::new(2));
    let platform = &env.platform;
    let pids = std::thread::scope(|s| {
        let (sp, b) = (space.clone(), barrier.clone());
        let writer = s.spawn(move || {
            let mut ctx = PtraceContext::new(platform.shared.clone());
            let mut regs = Regs::new_user(CODE, 0);
            regs.rbx = DATA + 0x100;
            regs.rdi = 0xabcdef;
            expect_syscall(ctx.switch(&sp, &mut regs));
            b.wait();
            let mut regs = Regs::new_user(CODE + 32, 0);
            for _ in 0..2000 {
                expect_syscall(ctx.switch(&sp, &mut regs));
            }
            ctx.stub_pid(&sp).unwrap()
        });
        let (sp, b) = (space.clone(), barrier.clone());
        let reader = s.spawn(move || {
            let mut ctx = PtraceContext::new(platform.shared.clone());
            // Create the stub thread first, so both run concurrently later.
            let _ = ctx.fp_state(&sp).unwrap();
            b.wait();
            let mut regs = Regs::new_user(CODE + 16, 0);
            regs.rbx = DATA + 0x100;
            expect_syscall(ctx.switch(&sp, &mut regs));
            assert_eq!(regs.rdi, 0xabcdef);
            // Map from this thread (through its own stub thread) while the
            // other one runs; the writer's thread sees it.
            let mut regs = Regs::new_user(CODE + 32, 0);
            for i in 0..200u64 {
                sp.map(DATA + (2 + i % 8) * PAGE, PAGE, Prot::RW, 3 * PAGE).unwrap();
                expect_syscall(ctx.switch(&sp, &mut regs));
            }
            ctx.stub_pid(&sp).unwrap()
        });
        (writer.join().unwrap(), reader.join().unwrap())
    });
    assert_ne!(pids.0, pids.1);
    // Both stub threads are gone with their contexts.
    assert!(gone(pids.0) && gone(pids.1));
    // The mappings made through the reader's stub are in the shared space.
    let first = space::first_pid_of(&space).unwrap();
    let maps = maps_of(first);
    assert!(maps.iter().any(|l| l.starts_with(&format!("{:08x}-", DATA + 2 * PAGE))), "{maps:?}");
}

#[test]
fn map_from_many_threads_without_stubs() {
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
    let first = space::first_pid_of(&space).unwrap();
    let n = maps_of(first).iter().filter(|l| l.contains("platform-ptrace-test")).count();
    assert!(n >= 1, "mappings of the memory file are present");
}

#[test]
fn map_errors_are_host_errors() {
    let env = env();
    let space = env.platform.new_address_space().unwrap();
    // Unaligned file offset: the injected mmap fails with EINVAL.
    match space.map(DATA, PAGE, Prot::R, 123) {
        Err(PlatformError::Host { call: "mmap", errno }) => assert_eq!(errno, abi::Errno::EINVAL),
        other => panic!("unexpected {other:?}"),
    }
    // The stub page is not the guest's.
    assert!(space.map(STUB_ADDR, PAGE, Prot::RW, 0).is_err());
    assert!(space.unmap(STUB_ADDR - PAGE, 2 * PAGE).is_err());
    assert!(space.protect(u64::MAX - PAGE + 1, PAGE, Prot::R).is_err());
    // The space still works.
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
    // The signal was suppressed: the stub is still alive and usable.
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
    // A fresh thread has the initial state (nothing of the Sentry's).
    let fp = ctx.fp_state(&space).unwrap();
    // fcw .. mxcsr (mxcsr_mask, next, is the CPU's).
    assert_eq!(fp.0[..28], FpState::default().0[..28]);
    assert!(fp.0[160..416].iter().all(|&b| b == 0), "xmm registers are zero");

    let mut fp = FpState::default();
    fp.0[160..168].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
    ctx.set_fp_state(&space, &fp).unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_eq!(regs.rdi, 0x0123_4567_89ab_cdef);
    let fp = ctx.fp_state(&space).unwrap();
    assert_eq!(fp.0[176..184], 0x0123_4567_89ab_cdefu64.to_le_bytes(), "xmm1 set by the guest");
}

#[test]
fn drop_cleans_up_processes() {
    let env = env();
    let space = env.space_with(&getppid_loop());
    let first = space::first_pid_of(&space).unwrap();
    let mut ctx = PtraceContext::new(env.platform.shared.clone());
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    let tpid = ctx.stub_pid(&space).unwrap();
    assert!(proc_exists(first) && proc_exists(tpid));
    drop(ctx);
    assert!(gone(tpid), "context's stub thread reaped");
    assert!(proc_exists(first));
    drop(space);
    assert!(gone(first), "address space's stub reaped");

    // The other order: the address space goes first; its stub threads die
    // with it and the context reaps them.
    let space = env.space_with(&getppid_loop());
    let first = space::first_pid_of(&space).unwrap();
    let mut ctx = PtraceContext::new(env.platform.shared.clone());
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    let tpid = ctx.stub_pid(&space).unwrap();
    // A second space for the same context (execve).
    let space2 = env.space_with(&getppid_loop());
    let mut regs2 = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space2, &mut regs2));
    let tpid2 = ctx.stub_pid(&space2).unwrap();
    drop(space);
    assert!(gone(first));
    // Killed by PDEATHSIG, a zombie until the context notices.
    let t = Instant::now();
    while std::fs::read_to_string(format!("/proc/{tpid}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(t.elapsed() < DEADLINE, "stub thread of a dropped space still alive");
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..5000 {
        expect_syscall(ctx.switch(&space2, &mut regs2));
    }
    assert!(gone(tpid), "pruned and reaped");
    drop(ctx);
    assert!(gone(tpid2));
}

#[test]
fn stub_killed_from_outside_is_reported() {
    let env = env();
    let space = env.space_with(&getppid_loop());
    let mut ctx = PtraceContext::new(env.platform.shared.clone());
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    let tpid = ctx.stub_pid(&space).unwrap();
    // SAFETY: kill of our own stub process.
    unsafe { libc::kill(tpid, libc::SIGKILL) };
    assert!(matches!(ctx.switch(&space, &mut regs), Err(PlatformError::StubDied(_))));
    assert!(gone(tpid));
    // The next switch gets a fresh stub thread.
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&space, &mut regs));
    assert_ne!(ctx.stub_pid(&space).unwrap(), tpid);
}

#[test]
fn context_moved_to_another_thread_still_works() {
    let env = env_with(CpuBinding::Follow);
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
fn no_cpu_binding() {
    let env = env_with(CpuBinding::None);
    let space = env.space_with(&getppid_loop());
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    for _ in 0..10 {
        expect_syscall(ctx.switch(&space, &mut regs));
    }
}

#[test]
fn bad_registers_are_host_errors() {
    let env = env();
    let space = env.space_with(&getppid_loop());
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    regs.fs_base = 1 << 63;
    assert!(matches!(ctx.switch(&space, &mut regs), Err(PlatformError::Host { call: "PTRACE_SETREGS", .. })));
    regs.fs_base = 0;
    expect_syscall(ctx.switch(&space, &mut regs));
}

/// Round-trip cost: a bare PTRACE_SYSEMU loop against `switch`, same CPU.
/// `cargo test -p platform-ptrace --release -- --ignored --nocapture roundtrip`
#[test]
#[ignore]
fn roundtrip_benchmark() {
    let n = 200_000;
    let bare = bare_sysemu_roundtrip(n, false);
    let cross = bare_sysemu_roundtrip(n, true);
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
    println!(
        "bare PTRACE_SYSEMU round trip: {bare:?} (tracee on another CPU: {cross:?}); \
         Context::switch round trip: {ours:?}; ratio {:.3}",
        ours.as_secs_f64() / bare.as_secs_f64()
    );

    // Slow paths, for the record.
    let t = Instant::now();
    for _ in 0..20 {
        drop(env.platform.new_address_space().unwrap());
    }
    let as_create = t.elapsed() / 20;
    let t = Instant::now();
    for _ in 0..20 {
        let mut c = env.platform.new_context().unwrap();
        let mut r = Regs::new_user(CODE, 0);
        expect_syscall(c.switch(&space, &mut r));
    }
    let thread_create = t.elapsed() / 20;
    let t = Instant::now();
    for i in 0..2000u64 {
        space.map(DATA + (i % 16) * PAGE, PAGE, Prot::RW, PAGE).unwrap();
    }
    let direct = t.elapsed() / 2000;
    let sp = space.clone();
    let via_owner = std::thread::spawn(move || {
        let t = Instant::now();
        for i in 0..2000u64 {
            sp.map(DATA + (i % 16) * PAGE, PAGE, Prot::RW, PAGE).unwrap();
        }
        t.elapsed() / 2000
    })
    .join()
    .unwrap();
    println!(
        "new_address_space + drop: {as_create:?}; new context + first switch (stub thread clone + attach): {thread_create:?}; \
         map through own stub thread: {direct:?}; map through the owner thread: {via_owner:?}"
    );
}

/// The same as the platform does per syscall, with nothing around it.
fn bare_sysemu_roundtrip(n: u32, cross_cpu: bool) -> Duration {
    use crate::sys;
    let cpu = sys::current_cpu().unwrap_or(0);
    let cpus = sys::mask_cpus(&sys::get_affinity(0).unwrap());
    let child_cpu = if cross_cpu { cpus.iter().copied().find(|&c| c != cpu).unwrap_or(cpu) } else { cpu };
    let saved = sys::get_affinity(0).unwrap();
    sys::set_affinity(0, cpu).unwrap();
    // SAFETY: fork; the child only makes raw syscalls, forever.
    let pid = unsafe { sys::syscall6(sys::SYS_FORK, 0, 0, 0, 0, 0, 0) };
    if pid == 0 {
        // SAFETY: raw syscalls in the child.
        unsafe {
            sys::syscall6(sys::SYS_PTRACE, sys::PTRACE_TRACEME, 0, 0, 0, 0, 0);
            sys::syscall6(sys::SYS_KILL, sys::getpid() as u64, 19, 0, 0, 0, 0);
            loop {
                sys::syscall6(sys::SYS_GETPPID, 0, 0, 0, 0, 0, 0);
            }
        }
    }
    let pid = pid as i32;
    sys::wait(pid).unwrap();
    sys::setoptions(pid, sys::TRACE_OPTIONS).unwrap();
    sys::set_affinity(pid, child_cpu).unwrap();
    let mut regs = Regs::default();
    let mut one = || {
        sys::sysemu(pid).unwrap();
        sys::wait(pid).unwrap();
        sys::getregs(pid, &mut regs).unwrap();
        regs.rax = 0;
        sys::setregs(pid, &regs).unwrap();
    };
    for _ in 0..1000 {
        one();
    }
    let t = Instant::now();
    for _ in 0..n {
        one();
    }
    let d = t.elapsed() / n;
    sys::kill_and_reap(pid);
    sys::set_affinity_mask(0, &saved).unwrap();
    d
}
