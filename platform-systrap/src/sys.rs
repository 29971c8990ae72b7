//! Host calls of the Sentry side, and the raw syscall used by a freshly
//! forked stub (which may not touch libc's state).

use abi::Errno;
use std::arch::asm;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

pub(crate) const SYS_MMAP: u64 = 9;
pub(crate) const SYS_MPROTECT: u64 = 10;
pub(crate) const SYS_MUNMAP: u64 = 11;
pub(crate) const SYS_RT_SIGACTION: u64 = 13;
pub(crate) const SYS_RT_SIGPROCMASK: u64 = 14;
pub(crate) const SYS_CLONE: u64 = 56;
pub(crate) const SYS_GETPID: u64 = 39;
pub(crate) const SYS_GETPPID: u64 = 110;
pub(crate) const SYS_SETSID: u64 = 112;
pub(crate) const SYS_PRCTL: u64 = 157;
pub(crate) const SYS_EXIT_GROUP: u64 = 231;
pub(crate) const SYS_RSEQ: u64 = 334;
pub(crate) const SYS_CLOSE: u64 = 3;
pub(crate) const SYS_CLOSE_RANGE: u64 = 436;

/// One raw system call.
///
/// # Safety
/// The caller must make sure the call with these arguments does not break
/// memory safety of this process.
#[inline(always)]
pub(crate) unsafe fn syscall6(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64) -> i64 {
    let ret: i64;
    // SAFETY: `syscall` clobbers only rax, rcx and r11, all declared; what
    // the call does is the caller's contract.
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

fn errno() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

fn check(r: libc::c_long) -> Result<u64, Errno> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as u64)
    }
}

/// Wait while `*word == val`, at most `timeout` (a shared futex: the word
/// is in memory shared with another process).
pub(crate) fn futex_wait(word: &AtomicU32, val: u32, timeout: Duration) {
    let ts = libc::timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: timeout.subsec_nanos() as i64 };
    // SAFETY: FUTEX_WAIT reads the word (a live atomic) and the timespec (a
    // live local); it writes nothing.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, val, &ts as *const libc::timespec, 0, 0) };
}

/// Wake one waiter on `word`.
pub(crate) fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1, 0, 0, 0) };
}

pub(crate) fn memfd_create(name: &std::ffi::CStr) -> Result<i32, Errno> {
    // SAFETY: a NUL-terminated name; returns a new descriptor.
    check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) } as libc::c_long).map(|fd| fd as i32)
}

pub(crate) fn ftruncate(fd: i32, len: u64) -> Result<(), Errno> {
    // SAFETY: plain call on our descriptor.
    check(unsafe { libc::ftruncate(fd, len as i64) } as libc::c_long).map(drop)
}

/// Map `len` bytes of `fd` shared and writable in the Sentry.
pub(crate) fn map_shared(fd: i32, len: u64) -> Result<*mut u8, Errno> {
    // SAFETY: a new mapping at an address the kernel picks: nothing of
    // ours is replaced.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len as usize, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
    };
    if p == libc::MAP_FAILED {
        Err(errno())
    } else {
        Ok(p.cast())
    }
}

/// # Safety
/// `[p, p+len)` must be a mapping of ours that nothing uses any more.
pub(crate) unsafe fn unmap(p: *mut u8, len: u64) {
    // SAFETY: the caller's contract.
    unsafe { libc::munmap(p.cast(), len as usize) };
}

pub(crate) fn close(fd: i32) {
    // SAFETY: closing a descriptor this crate owns.
    unsafe { libc::close(fd) };
}

/// Has the process behind `pidfd` exited?
pub(crate) fn pidfd_exited(pidfd: i32) -> bool {
    let mut p = libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one live pollfd.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents != 0
}

/// Is thread `tid` of process `pid` still there?
pub(crate) fn thread_alive(pid: i32, tid: i32) -> bool {
    tgkill(pid, tid, 0).is_ok()
}

pub(crate) fn tgkill(pid: i32, tid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: no pointers.
    check(unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) }).map(drop)
}

/// SIGKILL the process behind `pidfd` (no pid-reuse race).
pub(crate) fn pidfd_kill(pidfd: i32) {
    // SAFETY: no pointers (a NULL siginfo).
    unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, libc::SIGKILL, 0, 0) };
}

/// Wait at most `timeout` for the process behind `pidfd` to exit.
pub(crate) fn pidfd_wait(pidfd: i32, timeout: Duration) -> bool {
    let mut p = libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one live pollfd.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    r > 0 && p.revents != 0
}

/// May user code on this machine use rd/wrfsbase (the kernel says so in
/// AT_HWCAP2)?
pub(crate) fn has_fsgsbase() -> bool {
    const HWCAP2_FSGSBASE: u64 = 1 << 1;
    // SAFETY: getauxval reads the process's auxiliary vector.
    (unsafe { libc::getauxval(libc::AT_HWCAP2) }) & HWCAP2_FSGSBASE != 0
}

/// How a stub thread may read its CPU number (Linux loads it into
/// IA32_TSC_AUX's low 12 bits when the CPU has RDTSCP or RDPID): the
/// `layout::CPU_*` value.
pub(crate) fn cpu_number_insn() -> u32 {
    use crate::layout::{CPU_RDPID, CPU_RDTSCP, CPU_UNKNOWN};
    // Leaf 0x8000_0001 is below the highest extended leaf on every x86-64 CPU.
    let rdtscp = std::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 27) != 0;
    // Leaf 7 exists on every CPU with RDTSCP that might have RDPID.
    let max = std::arch::x86_64::__cpuid(0).eax;
    let rdpid = max >= 7 && std::arch::x86_64::__cpuid_count(7, 0).ecx & (1 << 22) != 0;
    if rdpid {
        CPU_RDPID
    } else if rdtscp {
        CPU_RDTSCP
    } else {
        CPU_UNKNOWN
    }
}

/// Is seccomp filtering available to this process?
pub(crate) fn seccomp_available() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointers.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP) >= 0 }
}

/// The CPUs the Sentry may run on, as it started (`remember_cpus`):
/// what "anywhere" means for a stub thread set free again.
static START_CPUS: std::sync::OnceLock<libc::cpu_set_t> = std::sync::OnceLock::new();

/// Note the CPUs this process may use, before the Sentry's own filter
/// (which does not allow sched_getaffinity) is installed.
pub(crate) fn remember_cpus() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, filled by the call.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most size_of::<cpu_set_t>() bytes into `set`.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r == 0 {
        let _ = START_CPUS.set(set);
    }
}

/// Bind host thread (or process) `tid` to `cpu`, or let it run wherever
/// the Sentry could when it started (None).
/// Best effort: a thread that is gone or a CPU that is not allowed leaves
/// it as it was.
pub(crate) fn bind_thread(tid: i32, cpu: Option<usize>) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays in
    // bounds for any cpu the kernel reports (< CPU_SETSIZE); the raw call
    // reads the set we pass (glibc's wrapper may ask sched_getaffinity
    // first, which the confined Sentry's filter does not allow).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match (cpu, START_CPUS.get()) {
            (Some(c), _) => libc::CPU_SET(c, &mut set),
            (None, Some(start)) => set = *start,
            (None, None) => {
                for c in 0..libc::CPU_SETSIZE as usize {
                    libc::CPU_SET(c, &mut set);
                }
            }
        }
        libc::syscall(
            libc::SYS_sched_setaffinity,
            tid,
            std::mem::size_of::<libc::cpu_set_t>(),
            &set as *const libc::cpu_set_t,
        );
    }
}
