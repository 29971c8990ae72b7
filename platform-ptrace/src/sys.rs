//! Thin, typed wrappers over the host syscalls this crate makes.
//!
//! Everything goes through [`syscall6`], a raw `syscall` instruction: no
//! libc state (errno, locks) is touched, so the same helpers are safe to use
//! in the forked stub child before it stops itself.

use abi::Errno;
use core::arch::asm;
use platform::{FpState, Regs};

pub(crate) const SYS_MMAP: u64 = 9;
pub(crate) const SYS_MPROTECT: u64 = 10;
pub(crate) const SYS_MUNMAP: u64 = 11;
pub(crate) const SYS_RT_SIGACTION: u64 = 13;
pub(crate) const SYS_RT_SIGPROCMASK: u64 = 14;
pub(crate) const SYS_GETPID: u64 = 39;
pub(crate) const SYS_CLONE: u64 = 56;
pub(crate) const SYS_FORK: u64 = 57;
pub(crate) const SYS_EXIT_GROUP: u64 = 231;
pub(crate) const SYS_WAIT4: u64 = 61;
pub(crate) const SYS_KILL: u64 = 62;
pub(crate) const SYS_PTRACE: u64 = 101;
pub(crate) const SYS_GETPPID: u64 = 110;
pub(crate) const SYS_SETSID: u64 = 112;
pub(crate) const SYS_PRCTL: u64 = 157;
pub(crate) const SYS_GETTID: u64 = 186;
pub(crate) const SYS_TGKILL: u64 = 234;
pub(crate) const SYS_SCHED_SETAFFINITY: u64 = 203;
pub(crate) const SYS_SCHED_GETAFFINITY: u64 = 204;
pub(crate) const SYS_RSEQ: u64 = 334;
pub(crate) const SYS_CLOSE_RANGE: u64 = 436;
pub(crate) const SYS_SECCOMP: u64 = 317;
pub(crate) const SECCOMP_SET_MODE_FILTER: u64 = 1;
pub(crate) const PR_SET_NO_NEW_PRIVS: u64 = 38;
pub(crate) const RSEQ_FLAG_UNREGISTER: u64 = 1;

pub(crate) const PTRACE_TRACEME: u64 = 0;
pub(crate) const PTRACE_CONT: u64 = 7;
pub(crate) const PTRACE_GETREGS: u64 = 12;
pub(crate) const PTRACE_SETREGS: u64 = 13;
pub(crate) const PTRACE_GETFPREGS: u64 = 14;
pub(crate) const PTRACE_SETFPREGS: u64 = 15;
pub(crate) const PTRACE_DETACH: u64 = 17;
pub(crate) const PTRACE_SYSEMU: u64 = 31;
pub(crate) const PTRACE_SETOPTIONS: u64 = 0x4200;
pub(crate) const PTRACE_GETSIGINFO: u64 = 0x4202;
pub(crate) const PTRACE_GETREGSET: u64 = 0x4204;
pub(crate) const PTRACE_SETREGSET: u64 = 0x4205;
pub(crate) const PTRACE_SEIZE: u64 = 0x4206;
pub(crate) const PTRACE_GET_RSEQ_CONFIGURATION: u64 = 0x420f;

pub(crate) const PTRACE_O_TRACESYSGOOD: u64 = 1;
pub(crate) const PTRACE_O_EXITKILL: u64 = 0x10_0000;
/// The options every stub thread is traced with.
pub(crate) const TRACE_OPTIONS: u64 = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL;

pub(crate) const NT_X86_XSTATE: u64 = 0x202;

pub(crate) const CLONE_VM: u64 = 0x100;
pub(crate) const CLONE_FS: u64 = 0x200;
pub(crate) const CLONE_FILES: u64 = 0x400;
pub(crate) const CLONE_SIGHAND: u64 = 0x800;
pub(crate) const CLONE_PTRACE: u64 = 0x2000;
pub(crate) const CLONE_PARENT: u64 = 0x8000;

pub(crate) const PR_SET_PDEATHSIG: u64 = 1;
pub(crate) const WALL: u64 = 0x4000_0000;

pub(crate) const PROT_READ: u64 = 1;
pub(crate) const PROT_WRITE: u64 = 2;
pub(crate) const PROT_EXEC: u64 = 4;
pub(crate) const MAP_SHARED: u64 = 1;
pub(crate) const MAP_PRIVATE: u64 = 2;
pub(crate) const MAP_FIXED: u64 = 0x10;
pub(crate) const MAP_ANONYMOUS: u64 = 0x20;

pub(crate) const SIGTRAP: i32 = 5;
pub(crate) const SIGKILL: i32 = 9;
pub(crate) const SIGSTOP: i32 = 19;
/// si_code of signals the kernel raised itself (int3, #GP, ...).
pub(crate) const SI_KERNEL: i32 = 0x80;

/// One raw system call.
///
/// # Safety
/// The caller must make sure the call with these arguments does not break
/// memory safety of this process (pointers valid for what the call does with
/// them, no unmapping of memory in use, ...).
#[inline(always)]
pub(crate) unsafe fn syscall6(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64) -> i64 {
    let ret: i64;
    // SAFETY: the `syscall` instruction clobbers only rax (result), rcx and
    // r11, all declared; what the call itself does is the caller's contract.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r9") a6,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// A raw return value as a Result.
#[inline(always)]
pub(crate) fn check(r: i64) -> Result<u64, Errno> {
    if (-4095..0).contains(&r) {
        Err(Errno(-r as i32))
    } else {
        Ok(r as u64)
    }
}

/// A ptrace request that passes no pointer (or only integers).
#[inline(always)]
fn ptrace_int(req: u64, pid: i32, addr: u64, data: u64) -> Result<u64, Errno> {
    // SAFETY: only called with requests whose addr/data are plain integers
    // (CONT, SYSEMU, DETACH, SEIZE, SETOPTIONS): the kernel reads no memory
    // of ours.
    check(unsafe { syscall6(SYS_PTRACE, req, pid as u64, addr, data, 0, 0) })
}

#[inline(always)]
pub(crate) fn getregs(pid: i32, regs: &mut Regs) -> Result<(), Errno> {
    // SAFETY: Regs is #[repr(C)] with the layout and size (216 bytes) of the
    // kernel's user_regs_struct, which PTRACE_GETREGS writes.
    check(unsafe { syscall6(SYS_PTRACE, PTRACE_GETREGS, pid as u64, 0, regs as *mut Regs as u64, 0, 0) }).map(drop)
}

#[inline(always)]
pub(crate) fn setregs(pid: i32, regs: &Regs) -> Result<(), Errno> {
    // SAFETY: the kernel reads a user_regs_struct (same layout as Regs) from
    // a live reference.
    check(unsafe { syscall6(SYS_PTRACE, PTRACE_SETREGS, pid as u64, 0, regs as *const Regs as u64, 0, 0) }).map(drop)
}

pub(crate) fn getfpregs(pid: i32, fp: &mut FpState) -> Result<(), Errno> {
    // SAFETY: FpState is the 512-byte user_fpregs_struct that
    // PTRACE_GETFPREGS writes.
    check(unsafe { syscall6(SYS_PTRACE, PTRACE_GETFPREGS, pid as u64, 0, fp as *mut FpState as u64, 0, 0) }).map(drop)
}

pub(crate) fn setfpregs(pid: i32, fp: &FpState) -> Result<(), Errno> {
    // SAFETY: the kernel reads 512 bytes from a live FpState.
    check(unsafe { syscall6(SYS_PTRACE, PTRACE_SETFPREGS, pid as u64, 0, fp as *const FpState as u64, 0, 0) }).map(drop)
}

pub(crate) fn getsiginfo(pid: i32, info: &mut abi::SigInfo) -> Result<(), Errno> {
    // SAFETY: SigInfo is the kernel's 128-byte siginfo_t.
    check(unsafe { syscall6(SYS_PTRACE, PTRACE_GETSIGINFO, pid as u64, 0, info as *mut abi::SigInfo as u64, 0, 0) })
        .map(drop)
}

/// PTRACE_GETREGSET into `buf`; returns the number of bytes the kernel wrote.
pub(crate) fn getregset(pid: i32, note: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: the iovec describes `buf`, live and writable for its length;
    // the kernel writes at most iov_len bytes and updates iov_len.
    check(unsafe {
        syscall6(SYS_PTRACE, PTRACE_GETREGSET, pid as u64, note, &mut iov as *mut libc::iovec as u64, 0, 0)
    })?;
    Ok(iov.iov_len)
}

/// PTRACE_SETREGSET from `buf`.
pub(crate) fn setregset(pid: i32, note: u64, buf: &[u8]) -> Result<(), Errno> {
    let iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: the iovec describes `buf`, which the kernel only reads.
    check(unsafe { syscall6(SYS_PTRACE, PTRACE_SETREGSET, pid as u64, note, &iov as *const libc::iovec as u64, 0, 0) })
        .map(drop)
}

/// `struct ptrace_rseq_configuration`.
#[repr(C)]
#[derive(Default)]
pub(crate) struct RseqConfiguration {
    pub(crate) rseq_abi_pointer: u64,
    pub(crate) rseq_abi_size: u32,
    pub(crate) signature: u32,
    pub(crate) flags: u32,
    pub(crate) pad: u32,
}

/// The tracee's rseq registration (None if the kernel cannot tell: < 5.13).
pub(crate) fn rseq_configuration(pid: i32) -> Option<RseqConfiguration> {
    let mut c = RseqConfiguration::default();
    // SAFETY: the kernel writes at most `addr` = size_of::<RseqConfiguration>()
    // bytes to the live local `c`.
    check(unsafe {
        syscall6(
            SYS_PTRACE,
            PTRACE_GET_RSEQ_CONFIGURATION,
            pid as u64,
            core::mem::size_of::<RseqConfiguration>() as u64,
            &mut c as *mut RseqConfiguration as u64,
            0,
            0,
        )
    })
    .ok()?;
    Some(c)
}

#[inline(always)]
pub(crate) fn sysemu(pid: i32) -> Result<(), Errno> {
    ptrace_int(PTRACE_SYSEMU, pid, 0, 0).map(drop)
}

pub(crate) fn cont(pid: i32, sig: i32) -> Result<(), Errno> {
    ptrace_int(PTRACE_CONT, pid, 0, sig as u64).map(drop)
}

pub(crate) fn detach(pid: i32, sig: i32) -> Result<(), Errno> {
    ptrace_int(PTRACE_DETACH, pid, 0, sig as u64).map(drop)
}

pub(crate) fn seize(pid: i32, options: u64) -> Result<(), Errno> {
    ptrace_int(PTRACE_SEIZE, pid, 0, options).map(drop)
}

pub(crate) fn setoptions(pid: i32, options: u64) -> Result<(), Errno> {
    ptrace_int(PTRACE_SETOPTIONS, pid, 0, options).map(drop)
}

/// wait4(pid, __WALL), retried on EINTR. Returns the raw status.
#[inline(always)]
pub(crate) fn wait(pid: i32) -> Result<i32, Errno> {
    loop {
        let mut status: i32 = 0;
        // SAFETY: wait4 writes one int to `status`, a live local; rusage NULL.
        let r = unsafe { syscall6(SYS_WAIT4, pid as u64, &mut status as *mut i32 as u64, WALL, 0, 0, 0) };
        match check(r) {
            Ok(_) => return Ok(status),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

pub(crate) fn kill(pid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: kill takes no pointers.
    check(unsafe { syscall6(SYS_KILL, pid as u64, sig as u64, 0, 0, 0, 0) }).map(drop)
}

pub(crate) fn tgkill(tgid: i32, tid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: tgkill takes no pointers.
    check(unsafe { syscall6(SYS_TGKILL, tgid as u64, tid as u64, sig as u64, 0, 0, 0) }).map(drop)
}

pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { syscall6(SYS_GETTID, 0, 0, 0, 0, 0, 0) as i32 }
}

pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { syscall6(SYS_GETPID, 0, 0, 0, 0, 0, 0) as i32 }
}

/// Kill `pid` (a process this thread may reap: a child of this process or
/// a tracee of this thread) and reap it. Errors are ignored: the process
/// may already be gone.
pub(crate) fn kill_and_reap(pid: i32) {
    let _ = kill(pid, SIGKILL);
    reap(pid);
}

/// Wait until `pid` has exited (skipping stop reports) and reap it.
pub(crate) fn reap(pid: i32) {
    loop {
        match wait(pid) {
            Ok(st) if exited(st) => return,
            Ok(_) => continue,
            Err(_) => return,
        }
    }
}

/// The process terminated (exited or was killed): it has been reaped.
#[inline(always)]
pub(crate) fn exited(status: i32) -> bool {
    libc::WIFEXITED(status) || libc::WIFSIGNALED(status)
}

#[inline(always)]
pub(crate) fn stopped(status: i32) -> bool {
    libc::WIFSTOPPED(status)
}

/// The signal of a stop (with 0x80 set for TRACESYSGOOD syscall stops).
#[inline(always)]
pub(crate) fn stop_sig(status: i32) -> i32 {
    (status >> 8) & 0xff
}

/// The PTRACE_EVENT_* of a stop, 0 if none.
#[inline(always)]
pub(crate) fn stop_event(status: i32) -> i32 {
    (status >> 16) & 0xff
}

/// Human-readable wait status, for errors.
pub(crate) fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else if libc::WIFSTOPPED(status) {
        format!("stopped by signal {} (event {})", stop_sig(status), stop_event(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// A CPU mask big enough for any machine we run on (8192 CPUs).
pub(crate) type CpuMask = [u64; 128];

/// The affinity mask of thread/process `pid` (0: the calling thread).
pub(crate) fn get_affinity(pid: i32) -> Result<CpuMask, Errno> {
    let mut mask: CpuMask = [0; 128];
    // SAFETY: the kernel writes at most size_of::<CpuMask>() bytes to the
    // live local `mask`.
    check(unsafe {
        syscall6(
            SYS_SCHED_GETAFFINITY,
            pid as u64,
            core::mem::size_of::<CpuMask>() as u64,
            mask.as_mut_ptr() as u64,
            0,
            0,
            0,
        )
    })?;
    Ok(mask)
}

pub(crate) fn set_affinity_mask(pid: i32, mask: &CpuMask) -> Result<(), Errno> {
    // SAFETY: the kernel reads size_of::<CpuMask>() bytes from `mask`.
    check(unsafe {
        syscall6(
            SYS_SCHED_SETAFFINITY,
            pid as u64,
            core::mem::size_of::<CpuMask>() as u64,
            mask.as_ptr() as u64,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// Pin thread/process `pid` (0: the calling thread) to one CPU.
pub(crate) fn set_affinity(pid: i32, cpu: usize) -> Result<(), Errno> {
    let mut mask: CpuMask = [0; 128];
    if cpu >= mask.len() * 64 {
        return Err(Errno::EINVAL);
    }
    mask[cpu / 64] |= 1 << (cpu % 64);
    set_affinity_mask(pid, &mask)
}

/// The CPUs set in `mask`.
pub(crate) fn mask_cpus(mask: &CpuMask) -> Vec<usize> {
    let mut v = Vec::new();
    for (i, w) in mask.iter().enumerate() {
        for b in 0..64 {
            if w & (1 << b) != 0 {
                v.push(i * 64 + b);
            }
        }
    }
    v
}

/// The CPU the calling thread runs on.
#[inline(always)]
pub(crate) fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments (vDSO/rdpid in glibc).
    let c = unsafe { libc::sched_getcpu() };
    (c >= 0).then_some(c as usize)
}

/// Block every signal on the calling thread.
pub(crate) fn block_all_signals() {
    let all: u64 = !0;
    // SAFETY: rt_sigprocmask reads 8 bytes from a live local; old set NULL.
    unsafe { syscall6(SYS_RT_SIGPROCMASK, libc::SIG_SETMASK as u64, &all as *const u64 as u64, 0, 8, 0, 0) };
}
