//! The forker: the process every stub process is forked from, and the
//! raw set-up a fresh stub makes before it jumps into the stub code.

use crate::layout::*;
use crate::process::{host, lock, HANDLED_SIGNALS};
use crate::sys::{self, syscall6};
use abi::Errno;
use platform::PlatformError;
use std::sync::Mutex;

#[allow(dead_code)] // names the exit codes of `child_main`
fn setup_step(step: i32) -> &'static str {
    match step {
        1 => "setsid",
        2 => "prctl(PR_SET_PDEATHSIG) (or the Sentry is gone)",
        3 => "rseq unregistration",
        4 => "descriptor set-up",
        5 => "sigaction",
        6 => "prctl(PR_SET_NO_NEW_PRIVS)",
        7 => "mmap of the stub region",
        _ => "unknown step",
    }
}

/// What a freshly forked stub needs, computed before the fork.
#[derive(Clone, Copy)]
struct ChildArgs {
    sentry_pid: i32,
    memfd: i32,
    cache_fd: i32,
    region_fd: i32,
    pipe_w: i32,
    rseq_addr: u64,
    rseq_size: u32,
    handler: u64,
    restorer: u64,
    entry: u64,
}

/// A kernel `struct sigaction` (x86-64).
#[repr(C)]
struct KernelSigaction {
    handler: u64,
    flags: u64,
    restorer: u64,
    mask: u64,
}

const SA_SIGINFO: u64 = 4;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTORER: u64 = 0x0400_0000;
const SIG_IGN: u64 = 1;

/// Every stub's signal dispositions, set once in the forker, whose forks
/// inherit them: the handler for traps and faults, every other signal
/// ignored, SIGCHLD too (the kernel then reaps the forker's children; each
/// stub sets its own handler for it, the interrupt signal). In the forker
/// itself, whose signals are all blocked, the handler's address is not
/// mapped: a fault there would end it as it would without a handler.
/// False when a call failed.
///
/// # Safety
/// Raw rt_sigaction calls: only for the forker, right after its fork.
unsafe fn set_stub_signals(handler: u64, restorer: u64) -> bool {
    let mut sig = 1u64;
    while sig <= 64 {
        let handled = HANDLED_SIGNALS.contains(&(sig as i32)) && sig != crate::INTERRUPT_SIGNAL as u64;
        let act = if handled {
            KernelSigaction { handler, flags: SA_SIGINFO | SA_ONSTACK | SA_RESTORER, restorer, mask: !0 }
        } else {
            KernelSigaction { handler: SIG_IGN, flags: SA_RESTORER, restorer, mask: 0 }
        };
        if sig != libc::SIGKILL as u64 && sig != libc::SIGSTOP as u64 {
            // SAFETY: the action is a live local; the call changes only
            // this process's dispositions.
            let r = unsafe { syscall6(sys::SYS_RT_SIGACTION, sig, &act as *const KernelSigaction as u64, 0, 8, 0, 0) };
            if r < 0 && handled {
                return false;
            }
        }
        sig += 1;
    }
    true
}

/// The forked child: set-up with raw syscalls only (no allocation, no
/// locks: the parent is multi-threaded), then a jump into the stub code,
/// which unmaps everything that came from the Sentry. Exits with the
/// number of the step that failed.
///
/// # Safety
/// Must only run in a freshly forked child of this process.
unsafe fn child_main(a: &ChildArgs) -> ! {
    macro_rules! sys {
        ($step:expr, $nr:expr $(, $a:expr)*) => {{
            let v: &[u64] = &[$($a as u64),*];
            let mut x = [0u64; 6];
            let mut i = 0;
            while i < v.len() { x[i] = v[i]; i += 1; }
            // SAFETY: every call below only changes this (child) process's
            // own state, and only memory the code that follows no longer uses.
            let r = unsafe { syscall6($nr, x[0], x[1], x[2], x[3], x[4], x[5]) };
            if $step != 0 && r < 0 {
                // SAFETY: exit_group takes no pointers.
                unsafe { syscall6(sys::SYS_EXIT_GROUP, $step, 0, 0, 0, 0, 0) };
            }
            r
        }};
    }
    sys!(1u64, sys::SYS_SETSID);
    sys!(2u64, sys::SYS_PRCTL, libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    if sys!(2u64, sys::SYS_GETPPID) != a.sentry_pid as i64 {
        sys!(2u64, sys::SYS_EXIT_GROUP, 2);
    }
    // The fork copied this thread's rseq registration; its area is in
    // memory about to be unmapped, where the kernel's updates would fault.
    if a.rseq_size != 0 {
        let mut done = false;
        for len in [32u64, a.rseq_size as u64, 20] {
            if sys!(0u64, sys::SYS_RSEQ, a.rseq_addr, len, 1, 0x5305_3053u64) == 0 {
                done = true;
                break;
            }
        }
        if !done {
            sys!(3u64, sys::SYS_EXIT_GROUP, 3);
        }
    }
    // Descriptors: the memory file, the pipe, the region and the cache
    // file at fixed numbers, nothing else.
    let memfd = sys!(4u64, libc::SYS_fcntl as u64, a.memfd, libc::F_DUPFD, 100);
    let pipe = sys!(4u64, libc::SYS_fcntl as u64, a.pipe_w, libc::F_DUPFD, 100);
    let region = sys!(4u64, libc::SYS_fcntl as u64, a.region_fd, libc::F_DUPFD, 100);
    let cache = sys!(4u64, libc::SYS_fcntl as u64, a.cache_fd, libc::F_DUPFD, 100);
    sys!(4u64, libc::SYS_dup2 as u64, memfd, STUB_MEMFD_FD);
    sys!(4u64, libc::SYS_dup2 as u64, pipe, STUB_PIPE_FD);
    sys!(4u64, libc::SYS_dup2 as u64, region, STUB_REGION_FD);
    sys!(4u64, libc::SYS_dup2 as u64, cache, STUB_CACHE_FD);
    sys!(4u64, sys::SYS_CLOSE_RANGE, 0, STUB_MEMFD_FD - 1, 0);
    sys!(4u64, sys::SYS_CLOSE_RANGE, STUB_CACHE_FD + 1, u32::MAX, 0);
    // Signal dispositions are the forker's (`set_stub_signals`), which
    // the fork copied, but for the interrupt signal: SIGCHLD, which the
    // forker ignores to have its children reaped. The mask stays full in
    // this (control) thread.
    let act = KernelSigaction {
        handler: a.handler,
        flags: SA_SIGINFO | SA_ONSTACK | SA_RESTORER,
        restorer: a.restorer,
        mask: !0,
    };
    sys!(5u64, sys::SYS_RT_SIGACTION, crate::INTERRUPT_SIGNAL, &act as *const KernelSigaction as u64, 0, 8);
    sys!(6u64, sys::SYS_PRCTL, libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    let rx = (libc::PROT_READ | libc::PROT_EXEC) as u64;
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    // (address, offset in the region file, length, protection)
    let maps: [(u64, u64, u64, u64); 7] = [
        (STUB_BASE + CODE_OFF, CODE_OFF, CODE_SIZE, rx),
        (STUB_BASE + SLOTS_OFF, SLOTS_OFF, SLOTS_LEN, rx),
        (LOW_SLOTS, SLOTS_OFF, SLOTS_LEN, rx),
        (STUB_BASE + CTRL_OFF, CTRL_OFF, PAGE, libc::PROT_READ as u64),
        (STUB_BASE + RESP_OFF, RESP_OFF, PAGE, rw),
        (STUB_BASE + TABLE_OFF, TABLE_OFF, TABLE_SIZE + PAGE, libc::PROT_READ as u64),
        (STUB_BASE + THREADS_OFF, THREADS_OFF, MAX_THREADS * THREAD_STRIDE, rw),
    ];
    let mut i = 0;
    while i < maps.len() {
        let (addr, off, len, prot) = maps[i];
        let r = sys!(7u64, sys::SYS_MMAP, addr, len, prot, libc::MAP_SHARED | libc::MAP_FIXED, STUB_REGION_FD, off);
        if r as u64 != addr {
            sys!(7u64, sys::SYS_EXIT_GROUP, 7);
        }
        i += 1;
    }
    sys!(0u64, sys::SYS_CLOSE, STUB_REGION_FD);
    // SAFETY: the stub code is mapped at `entry`; it never returns and uses
    // no stack.
    unsafe { std::arch::asm!("jmp {0}", in(reg) a.entry, options(noreturn)) }
}

extern "C" {
    static __rseq_offset: isize;
    static __rseq_size: u32;
}

/// The calling thread's rseq area (glibc registers one per thread), and its
/// size (0: none registered).
fn rseq_area() -> (u64, u32) {
    let tp: u64;
    // SAFETY: reads the thread pointer (fs:0 holds the TCB's own address on
    // x86-64 glibc); no memory is written.
    unsafe { std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly)) };
    // SAFETY: plain reads of glibc's exported, initialised constants.
    let (off, size) = unsafe { (__rseq_offset, __rseq_size) };
    (tp.wrapping_add(off as u64), size)
}

/// The process every stub is forked from, started before the Sentry
/// installs its own seccomp filter: a stub must not inherit that filter
/// (its default answer would beat the stub's own SECCOMP_RET_TRAP for
/// guest syscalls). It is forked from the Sentry at platform creation, so
/// it shares the Sentry's namespaces, root, capabilities (none, once
/// confined), no_new_privs and Landlock domain, keeps only the memory file
/// and its socket, blocks every signal, lets the kernel reap its children,
/// and installs a filter of its own (`filter::forker_filter`, which the
/// stubs inherit beneath theirs). Each request carries a stub's region
/// file and completion pipe (SCM_RIGHTS); the answer is the new pid or
/// -errno. It exits when the Sentry's end of the socket closes, and its
/// stubs follow (PR_SET_PDEATHSIG).
pub(crate) struct Forker {
    /// The Sentry's end of the socket; the lock serialises requests.
    sock: Mutex<i32>,
}

/// The forker's descriptors, at fixed numbers.
const FORKER_MEMFD: i32 = 3;
const FORKER_SOCK: i32 = 4;
const FORKER_CACHE: i32 = 5;

/// What the forker needs, computed before it is forked.
#[derive(Clone, Copy)]
struct ForkerArgs {
    memfd: i32,
    cache_fd: i32,
    sock: i32,
    filter: u64,
    filter_len: u64,
    child: ChildArgs,
}

const SYS_RECVMSG: u64 = 47;
const SYS_SECCOMP: u64 = 317;

/// The forker process's loop: raw syscalls only (it is a fork of a
/// multi-threaded process). Exits when the socket closes.
///
/// # Safety
/// Must only run in a freshly forked child of this process.
unsafe fn forker_main(a: &ForkerArgs) -> ! {
    macro_rules! sys {
        ($nr:expr $(, $a:expr)*) => {{
            let v: &[u64] = &[$($a as u64),*];
            let mut x = [0u64; 6];
            let mut i = 0;
            while i < v.len() { x[i] = v[i]; i += 1; }
            // SAFETY: each call below changes only this (forker) process's
            // own state, or reads and writes its own live locals.
            unsafe { syscall6($nr, x[0], x[1], x[2], x[3], x[4], x[5]) }
        }};
    }
    macro_rules! die {
        ($code:expr) => {{
            sys!(sys::SYS_EXIT_GROUP, $code);
            loop {}
        }};
    }
    let all: u64 = !0;
    sys!(sys::SYS_RT_SIGPROCMASK, libc::SIG_SETMASK, &all as *const u64 as u64, 0, 8);
    let m = sys!(libc::SYS_fcntl as u64, a.memfd, libc::F_DUPFD, 200);
    let s = sys!(libc::SYS_fcntl as u64, a.sock, libc::F_DUPFD, 200);
    let c = sys!(libc::SYS_fcntl as u64, a.cache_fd, libc::F_DUPFD, 200);
    if m < 0 || s < 0 || c < 0 {
        die!(1);
    }
    sys!(libc::SYS_dup2 as u64, m, FORKER_MEMFD);
    sys!(libc::SYS_dup2 as u64, s, FORKER_SOCK);
    sys!(libc::SYS_dup2 as u64, c, FORKER_CACHE);
    sys!(sys::SYS_CLOSE_RANGE, 0, FORKER_MEMFD - 1, 0);
    sys!(sys::SYS_CLOSE_RANGE, FORKER_CACHE + 1, u32::MAX, 0);
    // The stubs' dispositions, which they inherit; SIGCHLD ignored, so
    // the kernel reaps the forker's children (each stub handles it).
    // SAFETY: this is the freshly forked forker.
    if !unsafe { set_stub_signals(a.child.handler, a.child.restorer) } {
        die!(4);
    }
    if sys!(sys::SYS_PRCTL, libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
        die!(2);
    }
    let prog = [a.filter_len, a.filter];
    if a.filter_len > 0 && sys!(SYS_SECCOMP, 1, 0, prog.as_ptr() as u64) < 0 {
        die!(3);
    }
    let me = sys!(sys::SYS_GETPID);
    let mut child = a.child;
    child.sentry_pid = me as i32;
    child.memfd = FORKER_MEMFD;
    child.cache_fd = FORKER_CACHE;
    loop {
        // One request: a byte and two descriptors.
        let mut byte = 0u8;
        let mut iov = libc::iovec { iov_base: (&mut byte as *mut u8).cast(), iov_len: 1 };
        let mut cbuf = [0u64; 8];
        // SAFETY: an all-zero msghdr is valid; the pointers set below are live locals.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = sys!(SYS_RECVMSG, FORKER_SOCK, &mut msg as *mut libc::msghdr as u64, libc::MSG_CMSG_CLOEXEC);
        if n == -(libc::EINTR as i64) {
            continue;
        }
        if n <= 0 {
            die!(0);
        }
        // cmsghdr { len: u64, level: i32, type: i32 } then the fds.
        let words: &[u64; 8] = &cbuf;
        let len = words[0];
        let level_type = words[1];
        let fds = words[2];
        let want_len = 16 + 8;
        if msg.msg_controllen < want_len as usize
            || len != want_len
            || level_type != (libc::SOL_SOCKET as u32 as u64 | ((libc::SCM_RIGHTS as u32 as u64) << 32))
        {
            let bad: i64 = -(libc::EINVAL as i64);
            let mut iov = libc::iovec { iov_base: (&bad as *const i64 as *mut i64).cast(), iov_len: 8 };
            // SAFETY: an all-zero msghdr is valid; the iovec is a live local.
            let mut out: libc::msghdr = unsafe { std::mem::zeroed() };
            out.msg_iov = &mut iov;
            out.msg_iovlen = 1;
            sys!(SYS_SENDMSG, FORKER_SOCK, &out as *const libc::msghdr as u64, libc::MSG_NOSIGNAL);
            continue;
        }
        child.region_fd = (fds & 0xffff_ffff) as i32;
        child.pipe_w = (fds >> 32) as i32;
        // A fork that also gives a pidfd, which goes back with the pid (so
        // the Sentry needs no pidfd_open).
        let mut pidfd: i32 = -1;
        let pid = sys!(sys::SYS_CLONE, CLONE_PIDFD | libc::SIGCHLD as u64, 0, &mut pidfd as *mut i32 as u64, 0, 0);
        if pid == 0 {
            // SAFETY: we are the freshly forked child.
            unsafe { child_main(&child) };
        }
        sys!(sys::SYS_CLOSE, child.region_fd);
        sys!(sys::SYS_CLOSE, child.pipe_w);
        let mut reply = pid;
        let mut iov = libc::iovec { iov_base: (&mut reply as *mut i64).cast(), iov_len: 8 };
        let cmsg: [u64; 3] =
            [20, libc::SOL_SOCKET as u32 as u64 | ((libc::SCM_RIGHTS as u32 as u64) << 32), pidfd as u32 as u64];
        // SAFETY: an all-zero msghdr is valid; the pointers set below are live locals.
        let mut out: libc::msghdr = unsafe { std::mem::zeroed() };
        out.msg_iov = &mut iov;
        out.msg_iovlen = 1;
        if pid > 0 {
            out.msg_control = cmsg.as_ptr() as *mut libc::c_void;
            out.msg_controllen = 24;
        }
        sys!(SYS_SENDMSG, FORKER_SOCK, &out as *const libc::msghdr as u64, libc::MSG_NOSIGNAL);
        if pid > 0 {
            sys!(sys::SYS_CLOSE, pidfd);
        }
    }
}

/// The forker's stack. The forker (and every stub, a fork of it, until it
/// jumps into the stub code) runs on this stack rather than on a copy of
/// the calling thread's, which may lie where the stub region is mapped
/// with MAP_FIXED (the main thread's stack is near the top of the address
/// space, like STUB_BASE).
struct ForkerStack {
    base: *mut u8,
}

const FORKER_STACK_SIZE: usize = 256 * 1024;

impl ForkerStack {
    fn new() -> Result<ForkerStack, PlatformError> {
        let mut rejected = Vec::new();
        let r = loop {
            // SAFETY: a fresh private mapping where the kernel likes.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    FORKER_STACK_SIZE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                break Err(host("mmap", Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(12))));
            }
            let (lo, hi) = (p as u64, p as u64 + FORKER_STACK_SIZE as u64);
            if hi <= STUB_BASE || lo >= STUB_END {
                break Ok(ForkerStack { base: p.cast() });
            }
            rejected.push(p);
            if rejected.len() > 64 {
                break Err(host("mmap", Errno::ENOMEM));
            }
        };
        for p in rejected {
            // SAFETY: our own mappings, unused.
            unsafe { libc::munmap(p, FORKER_STACK_SIZE) };
        }
        r
    }

    fn top(&self) -> u64 {
        self.base as u64 + FORKER_STACK_SIZE as u64
    }
}

impl Drop for ForkerStack {
    fn drop(&mut self) {
        // SAFETY: the parent's copy of the stack, used only by the child's copy.
        unsafe { libc::munmap(self.base.cast(), FORKER_STACK_SIZE) };
    }
}

/// The forker's first frame, on its own stack.
extern "C" fn forker_entry(a: *const ForkerArgs) -> ! {
    // SAFETY: `a` points into the child's private copy of the parent's
    // memory (the args were live when the clone happened).
    unsafe { forker_main(&*a) }
}

/// clone(SIGCHLD) with the child's stack pointer at `stack_top`: the child
/// calls `forker_entry(args)` there; the parent gets the pid (or -errno).
///
/// # Safety
/// `stack_top` must be the 16-byte-aligned top of a writable mapping; the
/// child must never return (forker_entry does not).
unsafe fn clone_onto(stack_top: u64, args: &ForkerArgs) -> i64 {
    let ret: i64;
    // SAFETY: the caller's contract; the parent continues with its own
    // stack and registers untouched but rax, rcx and r11.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "call {entry}",
            "ud2",
            "2:",
            entry = sym forker_entry,
            inlateout("rax") sys::SYS_CLONE as i64 => ret,
            in("rdi") libc::SIGCHLD as u64,
            in("rsi") stack_top,
            in("rdx") 0u64,
            in("r10") 0u64,
            in("r8") 0u64,
            in("r12") args as *const ForkerArgs as u64,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

const SYS_SENDMSG: u64 = 46;
const CLONE_PIDFD: u64 = 0x1000;

impl Forker {
    pub(crate) fn start(
        fds: platform::MemoryFds,
        filter: &[crate::filter::SockFilter],
    ) -> Result<Forker, PlatformError> {
        let (memfd, cache_fd) = (fds.main, fds.cache);
        let labels = crate::stubcode::Labels::get();
        let mut sv = [0i32; 2];
        // SAFETY: socketpair writes two descriptors into a live array.
        if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) }
            != 0
        {
            return Err(host("socketpair", Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(5))));
        }
        let (rseq_addr, rseq_size) = rseq_area();
        let args = ForkerArgs {
            memfd,
            cache_fd,
            sock: sv[1],
            filter: filter.as_ptr() as u64,
            filter_len: filter.len() as u64,
            child: ChildArgs {
                sentry_pid: 0,
                memfd,
                cache_fd,
                region_fd: -1,
                pipe_w: -1,
                rseq_addr,
                rseq_size,
                handler: labels.handler,
                restorer: labels.sigreturn_syscall - 2,
                entry: labels.ctl_entry,
            },
        };
        let stack = ForkerStack::new()?;
        // SAFETY: a fork-like clone onto a stack of its own (see
        // `clone_onto`); the child runs only forker_main, which makes raw
        // syscalls and never returns, so it touches no state another thread
        // may have held.
        let pid = unsafe { clone_onto(stack.top(), &args) };
        drop(stack);
        sys::close(sv[1]);
        if pid < 0 {
            sys::close(sv[0]);
            return Err(host("fork", Errno(-pid as i32)));
        }
        Ok(Forker { sock: Mutex::new(sv[0]) })
    }

    /// Fork a stub with the stub memory file `region_fd` and completion pipe
    /// `pipe_w` (both still owned by the caller): its pid and a pidfd.
    pub(crate) fn fork(&self, region_fd: i32, pipe_w: i32) -> Result<(i32, i32), Errno> {
        let sock = lock(&self.sock);
        let mut byte = 0u8;
        let mut iov = libc::iovec { iov_base: (&mut byte as *mut u8).cast(), iov_len: 1 };
        let mut cbuf = [0u64; 3];
        cbuf[0] = 24;
        cbuf[1] = libc::SOL_SOCKET as u32 as u64 | ((libc::SCM_RIGHTS as u32 as u64) << 32);
        cbuf[2] = region_fd as u32 as u64 | ((pipe_w as u32 as u64) << 32);
        // SAFETY: an all-zero msghdr is valid; the pointers set below are live locals.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = 24;
        loop {
            // SAFETY: the message and everything it points to are live locals.
            let r = unsafe { libc::sendmsg(*sock, &msg, libc::MSG_NOSIGNAL) };
            if r >= 0 {
                break;
            }
            let e = Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(5));
            if e != Errno::EINTR {
                return Err(Errno::EAGAIN);
            }
        }
        let mut reply = 0i64;
        let mut iov = libc::iovec { iov_base: (&mut reply as *mut i64).cast(), iov_len: 8 };
        let mut cbuf = [0u64; 4];
        // SAFETY: an all-zero msghdr is valid; the pointers set below are live locals.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        loop {
            // SAFETY: the message and everything it points to are live locals.
            let r = unsafe { libc::recvmsg(*sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
            if r == 8 {
                break;
            }
            let e = Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(5));
            if r >= 0 || e != Errno::EINTR {
                return Err(Errno::EAGAIN);
            }
        }
        if reply < 0 {
            return Err(Errno(-reply as i32));
        }
        // cmsghdr { len: u64, level: i32, type: i32 } then the pidfd.
        let rights = libc::SOL_SOCKET as u32 as u64 | ((libc::SCM_RIGHTS as u32 as u64) << 32);
        if msg.msg_controllen < 20 || cbuf[0] != 20 || cbuf[1] != rights {
            return Err(Errno::EAGAIN);
        }
        Ok((reply as i32, (cbuf[2] & 0xffff_ffff) as i32))
    }
}

impl Drop for Forker {
    fn drop(&mut self) {
        // The forker sees the socket close and exits; its stubs follow. It
        // is not waited for: the Sentry's filter has no wait4 (a sandbox's
        // Sentry is pid 1 of its namespace, whose end reaps everything).
        sys::close(*lock(&self.sock));
    }
}
