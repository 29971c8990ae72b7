//! Stub processes: creating the first one of an address space, injecting
//! syscalls into a stopped stub, and cloning more stub threads.

use crate::sys::{self, *};
use crate::{STUB_ADDR, STUB_SIZE, TASK_SIZE};
use abi::Errno;
use platform::{FpState, PlatformError, Regs};

/// The stub code page. Offset 0 is the injection entry point: `syscall`
/// followed by `int3`, so the tracer regains control with a SIGTRAP right
/// after the injected call. The rest of the page is `int3` so a stray jump
/// into it traps instead of running garbage.
const STUB_CODE: [u8; 3] = [0x0f, 0x05, 0xcc];

/// Where an injected syscall starts.
pub(crate) const STUB_SYSCALL: u64 = STUB_ADDR;
/// `rip` after the `int3` following the injected `syscall`.
const STUB_AFTER_TRAP: u64 = STUB_ADDR + 3;

/// Where in the stub page the stub's own seccomp filter is kept (a
/// `sock_fprog`, then the program), for the injected seccomp(2) that
/// installs it.
const FILTER_OFF: u64 = 2048;

/// The stub's own seccomp filter: only the calls the Sentry injects
/// (mmap, mprotect, munmap, the clone of a stub thread, prctl for its
/// PDEATHSIG), each from the stub page's `syscall` instruction; anything
/// else kills the stub. Guest syscalls never meet it: PTRACE_SYSEMU stops
/// them before seccomp runs.
pub(crate) fn stub_filter() -> Vec<[u8; 8]> {
    const LD: u16 = 0x20;
    const JEQ: u16 = 0x15;
    const RET: u16 = 0x06;
    const KILL_PROCESS: u32 = 0x8000_0000;
    const ALLOW: u32 = 0x7fff_0000;
    let ip = STUB_SYSCALL + 2;
    let ins = |code: u16, jt: u8, jf: u8, k: u32| {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&code.to_le_bytes());
        b[2] = jt;
        b[3] = jf;
        b[4..8].copy_from_slice(&k.to_le_bytes());
        b
    };
    let allowed = [SYS_MMAP, SYS_MPROTECT, SYS_MUNMAP, SYS_CLONE, SYS_PRCTL];
    let mut p = vec![
        ins(LD, 0, 0, 4),
        ins(JEQ, 1, 0, 0xc000_003e),
        ins(RET, 0, 0, KILL_PROCESS),
        ins(LD, 0, 0, 12),
        ins(JEQ, 1, 0, (ip >> 32) as u32),
        ins(RET, 0, 0, KILL_PROCESS),
        ins(LD, 0, 0, 8),
        ins(JEQ, 1, 0, ip as u32),
        ins(RET, 0, 0, KILL_PROCESS),
        ins(LD, 0, 0, 0),
    ];
    let n = allowed.len();
    for (i, nr) in allowed.iter().enumerate() {
        p.push(ins(JEQ, (n - i) as u8, 0, *nr as u32));
    }
    p.push(ins(RET, 0, 0, KILL_PROCESS));
    p.push(ins(RET, 0, 0, ALLOW));
    p
}

/// Why an injected syscall did not return a value.
#[derive(Debug)]
pub(crate) enum InjectError {
    /// The syscall ran and returned this errno.
    Syscall(Errno),
    /// The stub is gone and has been reaped (its pid must not be used again).
    Died(String),
    /// The stub is still there but could not be driven (a ptrace call failed
    /// or it stopped somewhere unexpected).
    Stub(PlatformError),
}

impl InjectError {
    pub(crate) fn into_platform(self, call: &'static str) -> PlatformError {
        match self {
            InjectError::Syscall(errno) => PlatformError::Host { call, errno },
            InjectError::Died(s) => PlatformError::StubDied(s),
            InjectError::Stub(e) => e,
        }
    }
}

/// Registers for an injected call: everything clean, rip at the stub.
fn injection_regs(nr: u64, args: [u64; 6]) -> Regs {
    let mut r = Regs::new_user(STUB_SYSCALL, 0);
    r.rax = nr;
    r.orig_rax = u64::MAX;
    r.rdi = args[0];
    r.rsi = args[1];
    r.rdx = args[2];
    r.r10 = args[3];
    r.r8 = args[4];
    r.r9 = args[5];
    r
}

fn host(call: &'static str, errno: Errno) -> InjectError {
    if errno == Errno::ESRCH {
        // The tracee vanished (killed while stopped): report it as death;
        // the caller still has to reap it.
        InjectError::Stub(PlatformError::StubDied(format!("{call}: stub no longer traceable")))
    } else {
        InjectError::Stub(PlatformError::Host { call, errno })
    }
}

/// Run syscall `nr(args)` in stopped stub thread `pid`, traced by the
/// calling thread. The stub's registers are clobbered (callers either never
/// run guest code in it, or set all registers before the next run).
pub(crate) fn inject(pid: i32, nr: u64, args: [u64; 6]) -> Result<u64, InjectError> {
    let regs = injection_regs(nr, args);

    let mut out = Regs::default();
    loop {
        sys::setregs(pid, &regs).map_err(|e| host("PTRACE_SETREGS", e))?;
        let mut suppressed = 0u32;
        loop {
            sys::cont(pid, 0).map_err(|e| host("PTRACE_CONT", e))?;
            let st = sys::wait(pid).map_err(|e| match e {
                Errno::ECHILD => InjectError::Died(format!("stub {pid} reaped elsewhere")),
                e => InjectError::Stub(PlatformError::Host { call: "wait4", errno: e }),
            })?;
            if sys::exited(st) {
                return Err(InjectError::Died(format!("stub {pid} {}", describe_status(st))));
            }
            if !sys::stopped(st) {
                continue;
            }
            let sig = stop_sig(st);
            if sig == SIGTRAP && stop_event(st) == 0 {
                sys::getregs(pid, &mut out).map_err(|e| host("PTRACE_GETREGS", e))?;
                if out.rip == STUB_AFTER_TRAP {
                    break;
                }
                return Err(InjectError::Stub(PlatformError::StubDied(format!(
                    "stub {pid} trapped at {:#x} during an injected syscall {nr}",
                    out.rip
                ))));
            }
            if matches!(sig, 4 | 7 | 8 | 11 | 31) {
                // SIGILL/SIGBUS/SIGFPE/SIGSEGV/SIGSYS: the stub code itself
                // faulted (its page is gone?). Resuming would loop.
                return Err(InjectError::Stub(PlatformError::StubDied(format!(
                    "stub {pid} got signal {sig} during an injected syscall {nr}"
                ))));
            }
            // An asynchronous signal (a stale interrupt kick, SIGSTOP from
            // outside, ...) or a group-stop event: suppress it and go on.
            suppressed += 1;
            if suppressed > 10_000 {
                return Err(InjectError::Stub(PlatformError::StubDied(format!(
                    "stub {pid} keeps stopping during an injected syscall {nr}"
                ))));
            }
        }
        let rax = out.rax as i64;
        match rax {
            // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK:
            // normally restarted by the kernel itself; run it again if seen.
            -516..=-512 => continue,
            _ => return sys::check(rax).map_err(InjectError::Syscall),
        }
    }
}

/// A kernel `struct sigaction` (x86-64).
#[repr(C)]
struct KernelSigaction {
    handler: u64,
    flags: u64,
    restorer: u64,
    mask: u64,
}

/// The forked child. Only raw syscalls, no allocation, no locks: the parent
/// is multi-threaded and any lock may have been held at fork time.
///
/// Exits with status `step` if set-up step `step` fails.
///
/// # Safety
/// Must only run in a freshly forked child of this process.
unsafe fn child_main(fds: platform::MemoryFds, sentry_pid: i32, filter: &[[u8; 8]]) -> ! {
    macro_rules! sys {
        ($step:expr, $nr:expr $(, $a:expr)*) => {{
            let a: [u64; 6] = {
                let mut a = [0u64; 6];
                let v: &[u64] = &[$($a as u64),*];
                let mut i = 0;
                while i < v.len() { a[i] = v[i]; i += 1; }
                a
            };
            // SAFETY: the calls made below only affect the child's own,
            // private copy of the address space and fd table.
            let r = unsafe { syscall6($nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
            if $step != 0 && r < 0 {
                // SAFETY: exit_group takes no pointers and does not return.
                unsafe { syscall6(SYS_EXIT_GROUP, $step, 0, 0, 0, 0, 0) };
            }
            r
        }};
    }
    // A session of its own: no job-control signals meant for the Sentry's
    // process group.
    sys!(1u64, SYS_SETSID);
    // Only the memory and cache files stay open (at the Sentry's numbers,
    // which the injected mmaps name).
    let (lo, hi) = (fds.main.min(fds.cache), fds.main.max(fds.cache));
    if lo > 0 {
        sys!(2u64, SYS_CLOSE_RANGE, 0, (lo - 1) as u64, 0);
    }
    if hi > lo + 1 {
        sys!(2u64, SYS_CLOSE_RANGE, (lo + 1) as u64, (hi - 1) as u64, 0);
    }
    sys!(2u64, SYS_CLOSE_RANGE, (hi + 1) as u64, u32::MAX, 0);
    // Default dispositions for every signal (errors ignored: SIGKILL and
    // SIGSTOP cannot be changed).
    // SIGSYS is left alone: the confined Sentry's filter refuses to change
    // its disposition (and a stub never runs a host handler anyway: the
    // tracer sees every signal first).
    let dfl = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    let mut sig = 1u64;
    while sig <= 64 {
        if sig != libc::SIGSYS as u64 {
            sys!(0u64, SYS_RT_SIGACTION, sig, &dfl as *const KernelSigaction as u64, 0, 8);
        }
        sig += 1;
    }
    // All signals unblocked, so the tracer sees (and suppresses) them.
    let empty: u64 = 0;
    sys!(3u64, SYS_RT_SIGPROCMASK, libc::SIG_SETMASK, &empty as *const u64 as u64, 0, 8);
    // Die with the thread that created us (the address-space owner).
    sys!(4u64, SYS_PRCTL, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if sys!(5u64, SYS_GETPPID) != sentry_pid as i64 {
        sys!(5u64, SYS_EXIT_GROUP, 5);
    }
    // The stub code page.
    let p = sys!(
        6u64,
        SYS_MMAP,
        STUB_ADDR,
        STUB_SIZE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
        u64::MAX,
        0
    );
    if p as u64 != STUB_ADDR {
        sys!(6u64, SYS_EXIT_GROUP, 6);
    }
    let page = STUB_ADDR as *mut u8;
    let mut i = 0;
    while i < STUB_SIZE as usize {
        let b = if i < STUB_CODE.len() { STUB_CODE[i] } else { 0xcc };
        // SAFETY: [STUB_ADDR, +STUB_SIZE) was just mapped read-write in this
        // (child) address space, and nothing else refers to it.
        unsafe { page.add(i).write_volatile(b) };
        i += 1;
    }
    // The stub's own filter, installed by an injected seccomp(2) once the
    // address space is emptied: a sock_fprog, then the program.
    let prog = STUB_ADDR + FILTER_OFF + 16;
    let head: [u64; 2] = [filter.len() as u64, prog];
    let mut j = 0;
    while j < 16 {
        // SAFETY: within the stub page mapped above (FILTER_OFF + 16 < STUB_SIZE).
        unsafe { page.add(FILTER_OFF as usize + j).write_volatile((head[j / 8] >> (8 * (j % 8))) as u8) };
        j += 1;
    }
    let mut k = 0;
    while k < filter.len() * 8 && (FILTER_OFF as usize + 16 + k) < STUB_SIZE as usize {
        // SAFETY: within the stub page (bounds checked in the condition).
        unsafe { page.add(FILTER_OFF as usize + 16 + k).write_volatile(filter[k / 8][k % 8]) };
        k += 1;
    }
    sys!(7u64, SYS_PRCTL, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    sys!(7u64, SYS_MPROTECT, STUB_ADDR, STUB_SIZE, PROT_READ | PROT_EXEC);
    sys!(8u64, SYS_PTRACE, PTRACE_TRACEME, 0, 0, 0);
    let me = sys!(9u64, SYS_GETPID);
    sys!(9u64, SYS_KILL, me, SIGSTOP);
    // Not reached: the tracer never lets this code run again.
    loop {
        sys!(10u64, SYS_EXIT_GROUP, 10);
    }
}

fn setup_step(step: i32) -> &'static str {
    match step {
        1 => "setsid",
        2 => "close_range",
        3 => "rt_sigprocmask",
        4 => "prctl(PR_SET_PDEATHSIG)",
        5 => "getppid (parent gone)",
        6 => "mmap of the stub page",
        7 => "mprotect of the stub page",
        8 => "ptrace(PTRACE_TRACEME)",
        9 => "kill(SIGSTOP)",
        _ => "unknown step",
    }
}

/// Fork the first stub of a new address space from the calling thread (the
/// address-space owner, which becomes its tracer), then empty its address
/// space except for the stub page. Returns its pid, stopped.
pub(crate) fn create_first_stub(fds: platform::MemoryFds, cpu: Option<usize>) -> Result<i32, PlatformError> {
    let sentry_pid = sys::getpid();
    let filter = stub_filter();
    // SAFETY: a plain fork (no shared memory, no CLONE_VM): the child gets
    // a copy of the address space and runs only `child_main`, which makes
    // raw syscalls and never returns, so it touches no state (locks,
    // allocator) that another thread of the parent may have held.
    let pid = unsafe { syscall6(SYS_FORK, 0, 0, 0, 0, 0, 0) };
    if pid == 0 {
        // SAFETY: we are the freshly forked child.
        unsafe { child_main(fds, sentry_pid, &filter) };
    }
    let pid = sys::check(pid).map_err(|errno| PlatformError::Host { call: "fork", errno })? as i32;

    let fail = |e: PlatformError| {
        sys::kill_and_reap(pid);
        e
    };
    let st = sys::wait(pid).map_err(|errno| fail(PlatformError::Host { call: "wait4", errno }))?;
    if sys::exited(st) {
        let what = if libc::WIFEXITED(st) {
            format!("stub set-up failed at {}", setup_step(libc::WEXITSTATUS(st)))
        } else {
            format!("stub {}", describe_status(st))
        };
        return Err(PlatformError::Unavailable(what));
    }
    if !sys::stopped(st) || stop_sig(st) != SIGSTOP {
        return Err(fail(PlatformError::StubDied(format!("new stub {}", describe_status(st)))));
    }
    sys::setoptions(pid, TRACE_OPTIONS)
        .map_err(|errno| fail(PlatformError::Host { call: "PTRACE_SETOPTIONS", errno }))?;
    if let Some(cpu) = cpu {
        let _ = sys::set_affinity(pid, cpu);
    }
    // The fork copied the owner thread's rseq registration (glibc registers
    // every thread); once its TLS is unmapped the kernel's rseq updates
    // would SIGSEGV the stub. Unregister it while the area is still mapped.
    if let Some(cfg) = sys::rseq_configuration(pid) {
        if cfg.rseq_abi_pointer != 0 {
            let args =
                [cfg.rseq_abi_pointer, cfg.rseq_abi_size as u64, RSEQ_FLAG_UNREGISTER, cfg.signature as u64, 0, 0];
            match inject(pid, SYS_RSEQ, args) {
                Ok(_) => {}
                Err(InjectError::Died(s)) => return Err(PlatformError::StubDied(s)),
                Err(e) => return Err(fail(e.into_platform("rseq"))),
            }
        }
    }
    // Empty the address space: everything below the stub page, and
    // everything above it up to the top of user space.
    let unmaps = [(0, STUB_ADDR), (STUB_ADDR + STUB_SIZE, TASK_SIZE - STUB_ADDR - STUB_SIZE)];
    for (addr, len) in unmaps {
        match inject(pid, SYS_MUNMAP, [addr, len, 0, 0, 0, 0]) {
            Ok(_) => {}
            Err(InjectError::Died(s)) => return Err(PlatformError::StubDied(s)),
            Err(e) => return Err(fail(e.into_platform("munmap"))),
        }
    }
    reset_fpu(pid).map_err(fail)?;
    match inject(pid, SYS_SECCOMP, [SECCOMP_SET_MODE_FILTER, 0, STUB_ADDR + FILTER_OFF, 0, 0, 0]) {
        Ok(_) => {}
        Err(InjectError::Died(s)) => return Err(PlatformError::StubDied(s)),
        Err(e) => return Err(fail(e.into_platform("seccomp"))),
    }
    Ok(pid)
}

/// Put the stub's whole extended FPU state (x87, SSE, AVX, ...) in its
/// initial state: the fork copied the Sentry thread's registers, which must
/// not leak into the guest. Threads cloned from this stub inherit it.
fn reset_fpu(pid: i32) -> Result<(), PlatformError> {
    let mut buf = vec![0u8; 64 * 1024];
    match sys::getregset(pid, NT_X86_XSTATE, &mut buf) {
        Ok(len) if len >= 576 => {
            let mut x = vec![0u8; len];
            x[..512].copy_from_slice(&FpState::default().0);
            // XSAVE header: xstate_bv = x87 | SSE; every other component in
            // its initial state.
            x[512..520].copy_from_slice(&3u64.to_le_bytes());
            sys::setregset(pid, NT_X86_XSTATE, &x)
                .map_err(|errno| PlatformError::Host { call: "PTRACE_SETREGSET", errno })
        }
        _ => sys::setfpregs(pid, &FpState::default())
            .map_err(|errno| PlatformError::Host { call: "PTRACE_SETFPREGS", errno }),
    }
}

/// Clone a new stub thread (a process sharing the address space, fd table
/// and signal handlers of `first`) and leave it stopped and untraced, for
/// another host thread to attach. Called by the tracer of `first`.
///
/// `Err(Died)` means `first` itself is gone.
pub(crate) fn clone_stub_thread(first: i32) -> Result<i32, InjectError> {
    // CLONE_PTRACE: the child starts traced by us with SIGSTOP pending.
    // CLONE_PARENT: its parent is the Sentry (not `first`), so the thread
    // that finally traces it can reap it.
    let flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_PARENT | CLONE_PTRACE;
    let child = inject(first, SYS_CLONE, [flags, 0, 0, 0, 0, 0])? as i32;
    let st = match sys::wait(child) {
        Ok(st) => st,
        Err(errno) => {
            sys::kill_and_reap(child);
            return Err(InjectError::Stub(PlatformError::Host { call: "wait4", errno }));
        }
    };
    if sys::exited(st) {
        return Err(InjectError::Stub(PlatformError::StubDied(format!("new stub thread {}", describe_status(st)))));
    }
    // Die with the owner thread, like `first` (PDEATHSIG is not inherited).
    match inject(child, SYS_PRCTL, [PR_SET_PDEATHSIG, SIGKILL as u64, 0, 0, 0, 0]) {
        Ok(_) => {}
        Err(InjectError::Died(s)) => return Err(InjectError::Stub(PlatformError::StubDied(s))),
        Err(e) => {
            sys::kill_and_reap(child);
            return Err(InjectError::Stub(e.into_platform("prctl")));
        }
    }
    // Detach with SIGSTOP: the child enters group-stop, untraced, until its
    // new tracer seizes it.
    if let Err(errno) = sys::detach(child, SIGSTOP) {
        sys::kill_and_reap(child);
        return Err(InjectError::Stub(PlatformError::Host { call: "PTRACE_DETACH", errno }));
    }
    Ok(child)
}

/// Become the tracer of stub thread `pid` (fresh from `clone_stub_thread`)
/// and wait until it is in a ptrace stop. On error the stub is killed and
/// reaped.
pub(crate) fn attach_stub_thread(pid: i32, cpu: Option<usize>) -> Result<(), PlatformError> {
    let fail = |e: PlatformError| {
        sys::kill_and_reap(pid);
        e
    };
    sys::seize(pid, TRACE_OPTIONS).map_err(|errno| fail(PlatformError::Host { call: "PTRACE_SEIZE", errno }))?;
    // Either the SIGSTOP signal-delivery-stop or, if it was already in
    // group-stop, a PTRACE_EVENT_STOP.
    let st = sys::wait(pid).map_err(|errno| fail(PlatformError::Host { call: "wait4", errno }))?;
    if sys::exited(st) {
        return Err(PlatformError::StubDied(format!("new stub thread {}", describe_status(st))));
    }
    if let Some(cpu) = cpu {
        let _ = sys::set_affinity(pid, cpu);
    }
    Ok(())
}
