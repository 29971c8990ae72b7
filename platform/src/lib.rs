//! What the Sentry needs from a platform, and nothing about how one works.
//!
//! A platform runs guest code until it does something the Sentry must
//! handle (a syscall, a fault, a signal) and reports that as an [`Exit`].
//! Guest memory is always a range of the Sentry's memory file, mapped into
//! the guest's address space by [`AddressSpace::map`]; the kernel never
//! learns which platform it runs on.

pub mod clock;
pub mod pool;
pub mod profile;

use std::os::fd::RawFd;
use std::sync::Arc;

/// Where the file cache's file starts in memory-file offsets. Guest memory
/// lives in two host files: offsets below this are in the memory file
/// proper (a memfd: anonymous memory, copies, small files), offsets from
/// it on in the cache file at `offset - CACHE_FILE_BASE` (a tmpfs file
/// with huge pages where the host allows them, holding large cached
/// files: filled and freed in 2 MiB folios instead of 4 KiB pages).
pub const CACHE_FILE_BASE: u64 = 1 << 38;

/// The host descriptors of the Sentry's memory: the memory file, and the
/// cache file (the memory file again when there is none, in which case no
/// offset reaches `CACHE_FILE_BASE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryFds {
    pub main: RawFd,
    pub cache: RawFd,
}

impl MemoryFds {
    /// One file for everything.
    pub fn single(fd: RawFd) -> MemoryFds {
        MemoryFds { main: fd, cache: fd }
    }

    /// Which file `offset` is in (true: the cache file), and where in it.
    pub fn locate(offset: u64) -> (bool, u64) {
        match offset.checked_sub(CACHE_FILE_BASE) {
            Some(o) => (true, o),
            None => (false, offset),
        }
    }
}

/// General-purpose registers, in the layout of the kernel's
/// `struct user_regs_struct` (so ptrace can copy them as they are).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl Regs {
    /// The six syscall arguments in ABI order (rdi, rsi, rdx, r10, r8, r9).
    pub fn syscall_args(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }

    /// Registers of a fresh user thread about to start at `rip` with stack `rsp`.
    pub fn new_user(rip: u64, rsp: u64) -> Regs {
        Regs { rip, rsp, cs: 0x33, ss: 0x2b, eflags: 0x202, ..Default::default() }
    }
}

/// Floating-point/SSE state in the 512-byte FXSAVE layout
/// (`struct user_fpregs_struct`).
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FpState(pub [u8; 512]);

impl Default for FpState {
    /// The state of a fresh thread: x87 control word 0x37f, MXCSR 0x1f80.
    fn default() -> Self {
        let mut b = [0u8; 512];
        b[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        b[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        b[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
        FpState(b)
    }
}

impl std::fmt::Debug for FpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FpState(..)")
    }
}

/// Memory protection of a mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Prot {
    pub const NONE: Prot = Prot { read: false, write: false, exec: false };
    pub const R: Prot = Prot { read: true, write: false, exec: false };
    pub const RW: Prot = Prot { read: true, write: true, exec: false };
    pub const RX: Prot = Prot { read: true, write: false, exec: true };
    pub const RWX: Prot = Prot { read: true, write: true, exec: true };

    /// From PROT_* bits (unknown bits ignored).
    pub fn from_bits(p: u32) -> Prot {
        Prot { read: p & 1 != 0, write: p & 2 != 0, exec: p & 4 != 0 }
    }

    /// To PROT_* bits.
    pub fn bits(self) -> u32 {
        (self.read as u32) | (self.write as u32) << 1 | (self.exec as u32) << 2
    }
}

/// The kind of access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Exec,
}

/// Why [`Context::switch`] returned.
#[derive(Clone, Debug)]
pub enum Exit {
    /// The guest made a syscall; the number is in `regs.orig_rax` (and
    /// `regs.rax`), the arguments in the ABI registers, and `regs.rip`
    /// points after the `syscall` instruction (once the registers are
    /// complete: [`Context::complete_regs`]). The syscall has not run.
    Syscall,
    /// A memory access the host refused (SIGSEGV/SIGBUS in the guest).
    /// `signo` is SIGSEGV or SIGBUS, `code` the host si_code.
    Fault { addr: u64, access: Access, signo: i32, code: i32 },
    /// Another synchronous signal raised by the guest's own instructions
    /// (SIGILL, SIGFPE, SIGTRAP from int3, ...), with the host's siginfo
    /// (boxed: rare, and inline it made every exit, the syscalls' too, a
    /// 136-byte copy on the way out of `switch`).
    Signal(Box<abi::SigInfo>),
    /// [`Interrupter::interrupt`] was called (or the guest got a host
    /// signal meant to kick it out): nothing happened in the guest.
    Interrupted,
}

/// Errors of the platform itself (not of the guest).
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("platform host call {call} failed: {errno}")]
    Host { call: &'static str, errno: abi::Errno },
    #[error("guest stub process died unexpectedly: {0}")]
    StubDied(String),
    #[error("platform not available: {0}")]
    Unavailable(String),
}

/// A platform: ptrace, systrap, kvm.
pub trait Platform: Send + Sync {
    /// The name users pass to `--platform`.
    fn name(&self) -> &'static str;

    /// A new, empty guest address space.
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError>;

    /// A new execution context for one guest thread. A context is used by
    /// one Sentry thread only: the one that created it.
    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError>;

    /// The lowest guest address the platform keeps for itself (stub code
    /// and data live at and above it); guest mappings must stay below.
    fn max_user_address(&self) -> u64;

    /// Is running another process's thread in an existing address space
    /// (vfork's child) cheaper than a new space and a copy? On ptrace a
    /// thread that leaves a space for another (the child's exec) costs more
    /// than the copy saves.
    fn vfork_shares_space(&self) -> bool {
        false
    }
}

/// The page tables of one guest address space. Ranges are page-aligned.
/// Callers may invoke these from any Sentry thread.
pub trait AddressSpace: Send + Sync {
    /// Map `[addr, addr+len)` to the memory file at `file_offset`, shared
    /// (guest writes land in the memory file), with protection `prot`.
    /// Replaces whatever was mapped there.
    fn map(&self, addr: u64, len: u64, prot: Prot, file_offset: u64) -> Result<(), PlatformError>;

    /// Remove any mapping in `[addr, addr+len)`.
    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError>;

    /// Change the protection of mapped pages in `[addr, addr+len)`.
    fn protect(&self, addr: u64, len: u64, prot: Prot) -> Result<(), PlatformError>;

    /// Collect the `map`/`unmap`/`protect` calls that follow, until
    /// `flush`, into as few platform round trips as the platform can.
    /// Only for a space that no guest thread runs in yet (exec's new
    /// image): until `flush` the host may not have made the changes, and a
    /// call's error may only show at `flush`.
    fn begin_batch(&self) {}

    /// Make the changes collected since `begin_batch` and stop collecting.
    fn flush(&self) -> Result<(), PlatformError> {
        Ok(())
    }

    /// Make ahead of time what the first thread to run in this space will
    /// need (systrap: a parked stub thread); the stub pool calls it on the
    /// spaces it makes. Failures are left for that thread to meet.
    fn prepare(&self) {}

    /// Bring a space made ahead of time (the stub pool) up to date with
    /// what the platform shares between spaces and added since (systrap's
    /// patch slots); called when it is handed out.
    fn refresh(&self) {}

    /// A range `[start, end)` of guest addresses (below
    /// `Platform::max_user_address`) holding code of the platform's own
    /// that patched guest code may jump to (systrap's low patch slots),
    /// while no `map`, `unmap` or `protect` has touched it; None from the
    /// first such call on. The memory manager patches jumps into it only
    /// while it is there, and puts back the sites that jump into it
    /// before it changes anything there.
    fn code_window(&self) -> Option<(u64, u64)> {
        None
    }
}

/// Kicks a guest thread out of [`Context::switch`]; callable from any thread.
pub trait Interrupter: Send + Sync {
    /// Make the context's current or next `switch` return
    /// [`Exit::Interrupted`] soon.
    fn interrupt(&self);
}

/// What leads up to a hot `syscall` instruction, for a platform that
/// enters patched sites through its own code (systrap). The instruction
/// the platform's jump replaces is five bytes or longer and ends
/// [`SyscallSite::patch_offset`] bytes before the return address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyscallSite {
    /// `mov $nr, %eax` (b8 imm32) right before the `syscall`: glibc's
    /// wrappers of one call.
    MovImm(u32),
    /// `mov 0x8(%rsp), %r9` (4c 8b 4c 24 08) ending glibc's generic
    /// `syscall()`, a leaf function: the number is in rax, the sixth
    /// argument on the stack, and nothing lives below rsp.
    SyscallWrapper,
    /// glibc's read(2) (whose number, 0, is set by `xor %eax, %eax`, two
    /// bytes): `cmpb $0, flag(%rip)` (80 3d rel32 00, `flag` being
    /// `__libc_single_threaded`), `je slow` (74 rel8), `xor %eax, %eax`,
    /// `syscall`. The `cmpb` is replaced; the platform's code makes the
    /// test and the branch itself.
    SingleThreadedRead { flag: u64, slow: u64 },
}

impl SyscallSite {
    /// How far before the return address the replaced instruction starts.
    pub fn patch_offset(self) -> u64 {
        match self {
            SyscallSite::MovImm(_) | SyscallSite::SyscallWrapper => 7,
            SyscallSite::SingleThreadedRead { .. } => 13,
        }
    }
}

/// The execution state of one guest thread on the platform.
pub trait Context: Send {
    /// Run the guest with `regs` in `space` until the next [`Exit`];
    /// `regs` is updated to the guest's registers at that point, except
    /// that after [`Exit::Syscall`] a platform may have updated only the
    /// syscall's number and arguments (`orig_rax`, rax, rdi, rsi, rdx,
    /// r10, r8, r9): the Sentry calls [`Context::complete_regs`] before it
    /// reads or changes any other register, and may change rax (the
    /// result) without it.
    fn switch(&mut self, space: &Arc<dyn AddressSpace>, regs: &mut Regs) -> Result<Exit, PlatformError>;

    /// Bring the registers `switch` left out into `regs` (see there),
    /// keeping those the Sentry changed since. Cheap when nothing was left
    /// out.
    fn complete_regs(&mut self, _regs: &mut Regs) {}

    /// The thread's floating-point state (as of the last switch).
    fn fp_state(&mut self, space: &Arc<dyn AddressSpace>) -> Result<FpState, PlatformError>;

    /// Replace the thread's floating-point state before the next switch.
    fn set_fp_state(&mut self, space: &Arc<dyn AddressSpace>, fp: &FpState) -> Result<(), PlatformError>;

    /// A handle that interrupts this context from another thread.
    fn interrupter(&self) -> Arc<dyn Interrupter>;

    /// What the Sentry calls, on the task's own thread, when a syscall is
    /// about to block (a wait that may last): the platform may stop the
    /// guest thread's side from polling for the answer. None: nothing to
    /// tell.
    fn block_hint(&self) -> Option<Arc<dyn Fn() + Send + Sync>> {
        None
    }

    /// What the Sentry calls, on the task's own thread, when the syscall
    /// just reported is one whose answer waits for other threads or
    /// processes (fork, exec, exit, sleeps): as the block hint,
    /// the guest thread's side may stop polling for the answer.
    fn answer_later(&mut self) {}

    /// The syscall being served moved a large amount of data between the
    /// guest and a file or socket (systrap: such calls may keep the stub
    /// thread on the Sentry thread's CPU, see `follow_bulk`).
    fn bulk_transfer(&self) {}

    /// The `Exit::Syscall` just returned came through a trap at a `syscall`
    /// instruction ending at `ret`: whether the platform wants that site
    /// entered another way from now on (it has trapped often enough). True
    /// at most once per site; the Sentry then classifies the site's bytes
    /// and asks `patch_slot`. False by default: leave guest code alone.
    fn patch_hot(&mut self, _space: &Arc<dyn AddressSpace>, _ret: u64) -> bool {
        false
    }

    /// Where a `jmp` replacing the five bytes in front of the `syscall`
    /// ending at `ret`, a site of the given kind, should go; None when the
    /// platform has no room or no such entry.
    fn patch_slot(&mut self, _ret: u64, _site: SyscallSite) -> Option<u64> {
        None
    }

    /// The host CPU time the thread that last ran this context's guest
    /// code has used, if known. Time spent in `switch` includes waiting
    /// for a CPU; this does not, so CPU-time timers consult it.
    fn cpu_time(&self) -> Option<std::time::Duration> {
        None
    }
}

/// A directory descriptor of a `/proc` of the Sentry's own pid namespace,
/// for reading other threads' CPU times once the Sentry cannot open paths
/// from its root (boot sets it before confinement).
static PROC_DIR: std::sync::OnceLock<std::os::fd::OwnedFd> = std::sync::OnceLock::new();

/// Use `fd` (a `/proc` directory) for [`host_thread_cpu_time`].
pub fn set_proc_dir(fd: std::os::fd::OwnedFd) {
    let _ = PROC_DIR.set(fd);
}

/// The CPU time host thread `tid` has run, from /proc/TID/schedstat (its
/// first field, in nanoseconds); None if it cannot be read.
pub fn host_thread_cpu_time(tid: i32) -> Option<std::time::Duration> {
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let text = match PROC_DIR.get() {
        Some(dir) => {
            let name = std::ffi::CString::new(format!("{tid}/schedstat")).ok()?;
            // SAFETY: `name` is a valid C string; the result is checked.
            let fd = unsafe {
                libc::openat(dir.as_raw_fd(), name.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            };
            if fd < 0 {
                return None;
            }
            // SAFETY: a descriptor just opened and owned by nobody else.
            let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            let mut s = String::new();
            f.read_to_string(&mut s).ok()?;
            s
        }
        None => std::fs::read_to_string(format!("/proc/{tid}/schedstat")).ok()?,
    };
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(ns))
}

/// The CPU time the calling thread has run (CLOCK_THREAD_CPUTIME_ID, the
/// same count as schedstat's first field).
pub fn current_thread_cpu_time() -> Option<std::time::Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes one timespec into a live local.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return None;
    }
    Some(std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}
