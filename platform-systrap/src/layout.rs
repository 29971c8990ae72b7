//! Where things live in a stub process, and in the stub memory file that
//! backs them (one memfd per stub process, mapped at the same offsets in
//! the Sentry).
//!
//! ```text
//! STUB_BASE + 0x0000  code          (RX in the stub)
//!           + 0x2000  control page  (R  in the stub: Sentry -> stub)
//!           + 0x3000  response page (RW in the stub: control thread -> Sentry)
//!           + 0x4000  thread table  (R  in the stub: each thread's stack_t)
//!           + 0x14000 batch page    (R  in the stub: address-space changes
//!                                    done in one control request)
//!           + 0x20000 patch slots   (RX in the stub: one per patched syscall site)
//!           + THREADS_OFF + i * THREAD_STRIDE
//!                     thread i: message page, then its signal stack
//!
//! LOW_SLOTS           the patch slots again (RX), below where static
//!                     executables load, within a rel32 jump of them
//! ```
//!
//! Everything the stub can write is also writable by guest code (it is one
//! address space): the Sentry treats the response and message pages as
//! guest input. What the Sentry tells the stub lives in read-only pages.

/// Start of the stub region; guest mappings stay below it.
pub const STUB_BASE: u64 = 0x7fff_f000_0000;
/// The end of the x86-64 user address space (4-level paging).
pub const TASK_END: u64 = 0x7fff_ffff_f000;

pub const PAGE: u64 = 4096;
pub const CODE_OFF: u64 = 0;
pub const CODE_SIZE: u64 = 2 * PAGE;
pub const CTRL_OFF: u64 = 0x2000;
pub const RESP_OFF: u64 = 0x3000;
pub const TABLE_OFF: u64 = 0x4000;
/// One `stack_t` (24 bytes) per thread, padded to 32.
pub const TABLE_ENTRY: u64 = 32;
/// Most stub threads one stub process may have (guest threads of one
/// address space at once).
pub const MAX_THREADS: u64 = 2048;
pub const TABLE_SIZE: u64 = MAX_THREADS * TABLE_ENTRY;
pub const THREADS_OFF: u64 = 0x10_0000;
/// The batch page: right after the thread table, mapped read-only with it.
/// `BATCH_MAX` entries of `BATCH_ENTRY` bytes: syscall number, six
/// arguments, the result that means success.
pub const BATCH_OFF: u64 = TABLE_OFF + TABLE_SIZE;
pub const BATCH_ENTRY: u64 = 64;
pub const BATCH_MAX: u64 = PAGE / BATCH_ENTRY;
/// The request number of a batch (not a syscall): `C_ARGS[0]` entries of
/// the batch page, in order, stopping at the first unexpected result; the
/// result is the number done.
pub const BATCH_NR: u64 = 0x1_0000;
/// Patch slots (see `patch.rs`): `SLOT_SIZE` bytes each, written by the
/// Sentry only.
pub const SLOTS_OFF: u64 = 0x2_0000;
pub const SLOT_SIZE: u64 = 64;
pub const SLOTS_LEN: u64 = 0x4_0000;
pub const MAX_SLOTS: u64 = SLOTS_LEN / SLOT_SIZE;
/// The second mapping of the slot pages, for code a rel32 jump from the
/// stub region cannot reach: a non-PIE executable at 0x400000 and its
/// heap's neighbours. It lies in the guest's part of the address space,
/// outside every guest mapping, until the guest maps or unmaps anything
/// there (`AddressSpace::code_window`): from then on no site jumps to it.
pub const LOW_SLOTS: u64 = 0x30_0000;
/// A thread's block: its message page, then its signal stack. A power of
/// two, so the signal handler finds its message page by masking `rsp`.
pub const THREAD_STRIDE: u64 = 0x1_0000;
pub const ALTSTACK_OFF: u64 = PAGE;
pub const ALTSTACK_SIZE: u64 = THREAD_STRIDE - PAGE;
pub const REGION_SIZE: u64 = THREADS_OFF + MAX_THREADS * THREAD_STRIDE;
pub const STUB_END: u64 = STUB_BASE + REGION_SIZE;

// Control page (read-only in the stub).
/// u32: bumped by the Sentry for each request (the control thread's futex).
pub const C_REQ_SEQ: u64 = 0x00;
/// u64: syscall number of the request.
pub const C_NR: u64 = 0x08;
/// 6 × u64: its arguments.
pub const C_ARGS: u64 = 0x10;
/// u64: thread index for a clone request.
pub const C_THREAD: u64 = 0x40;
/// u32: 1 if the handler may use rd/wrfsbase.
pub const C_FSGSBASE: u64 = 0x48;
/// `struct sock_fprog` of the control thread's filter.
pub const C_FPROG_CTL: u64 = 0x50;
/// `struct sock_fprog` of the guest threads' filter.
pub const C_FPROG_GUEST: u64 = 0x60;
/// u32: how often the control thread polls for a request before sleeping
/// (at least 1).
pub const C_CTL_SPIN: u64 = 0x78;
/// u32: how often a stub thread polls for the Sentry's answer before
/// sleeping (at least 1).
pub const C_STUB_SPIN: u64 = 0x7c;
/// u32: how stub threads read their CPU number: [`CPU_UNKNOWN`] (they
/// do not), [`CPU_RDTSCP`] or [`CPU_RDPID`] (both read IA32_TSC_AUX,
/// which Linux loads with it; `rdpid` takes ~3 ns here, `rdtscp` ~30).
pub const C_CPU_INSN: u64 = 0x80;
pub const CPU_UNKNOWN: u32 = 0;
pub const CPU_RDTSCP: u32 = 1;
pub const CPU_RDPID: u32 = 2;
/// u64: an empty signal set.
pub const C_ZERO_MASK: u64 = 0x70;
/// The filters' instructions.
pub const C_FILTER_CTL: u64 = 0x100;
pub const C_FILTER_GUEST: u64 = 0x800;
pub const C_FILTER_MAX: u64 = (C_FILTER_GUEST - C_FILTER_CTL) / 8;

// Response page (writable by the stub).
/// u32: the control thread sleeps on the request sequence (wake it).
pub const R_CTL_WAITING: u64 = 0x04;
/// u32: the sequence number of the last request whose result is in the
/// pipe (a hint: the pipe is the proof).
pub const R_DONE_SEQ: u64 = 0x00;
/// i64: the result of the last request (then written to the pipe).
pub const R_RESULT: u64 = 0x08;

// Message page of a thread (writable by the stub). Its fields are laid
// out in cache lines by who writes them and how often: a patched site's
// syscall and its answer cross in line 0 and nothing else moves between
// the two CPUs per call. (A second line moved per round trip costs about
// as much again as the first: a shared-page ping-pong between two CPUs
// here took 150-220 ns with the answer in the flag's line, 350-520 ns
// with it in the next one.)

// Line 0: the hand-off.
/// u32: [`STATE_EVENT`] or [`STATE_RUN`] (the futex of both sides).
pub const M_STATE: u64 = 0x00;
/// u64: a patched site's syscall (see `patch.rs`): the number in rax
/// (the result on the way back) and its six arguments.
pub const M_T_RAX: u64 = 0x08;
pub const M_T_RDI: u64 = 0x10;
pub const M_T_RSI: u64 = 0x18;
pub const M_T_RDX: u64 = 0x20;
pub const M_T_R10: u64 = 0x28;
pub const M_T_R8: u64 = 0x30;
pub const M_T_R9: u64 = 0x38;

// Line 1: written by the stub thread only when it sleeps or moves.
/// u32: the stub thread sleeps on the state (wake it).
pub const M_STUB_WAITING: u64 = 0x40;
/// u32: the CPU the stub thread reported its last event from
/// ([`NO_CPU`] while unknown).
pub const M_STUB_CPU: u64 = 0x44;

// Line 2: written by the Sentry only when it sleeps, moves or hints.
/// u32: the Sentry sleeps on the state (wake it).
pub const M_SENTRY_WAITING: u64 = 0x80;
/// u32: what the Sentry says of the answer it owes this thread, read by
/// the stub while it polls: [`HINT_NONE`] (nothing: poll) or
/// [`HINT_LATER`] (the syscall blocked, or is one that waits for other
/// parties: sleep at once). Reset to NONE by the Sentry before each
/// resume. The guest may write it too: that only changes how long its
/// own thread polls.
pub const M_ANSWER_HINT: u64 = 0x84;
pub const HINT_NONE: u32 = 0;
pub const HINT_LATER: u32 = 1;
/// u32: the CPU of the Sentry thread at its last resume. Neither side
/// polls for the other while both are on one CPU (this and
/// [`M_STUB_CPU`]): the poll would keep the CPU from the very thread it
/// waits for.
pub const M_SENTRY_CPU: u64 = 0x88;
pub const NO_CPU: u32 = u32::MAX;

// Line 3: the signal handler's report.
/// u32: the signal the handler got.
pub const M_SIGNO: u64 = 0xc0;
/// u64: its siginfo and ucontext (stub addresses, on the signal stack).
pub const M_SIGINFO: u64 = 0xc8;
pub const M_UCONTEXT: u64 = 0xd0;
/// u64: fs/gs base, read at entry (with FSGSBASE), set on resume.
pub const M_FS_BASE: u64 = 0xd8;
pub const M_GS_BASE: u64 = 0xe0;
/// u64: fs/gs base last set with arch_prctl (without FSGSBASE).
pub const M_CUR_FS: u64 = 0xe8;
pub const M_CUR_GS: u64 = 0xf0;

/// Lines 4-5: the rest of the guest's registers at a patched site (u64
/// each), its saved arithmetic flags (`lahf`/`seto` in the low 16 bits)
/// and where it returns to. The stub thread writes and reads them back
/// itself; the Sentry reads them only when it needs a full frame
/// (`Context::complete_regs`), so they stay in the stub's CPU's cache.
pub const M_T_R15: u64 = 0x100;
pub const M_T_R14: u64 = 0x108;
pub const M_T_R13: u64 = 0x110;
pub const M_T_R12: u64 = 0x118;
pub const M_T_RBP: u64 = 0x120;
pub const M_T_RBX: u64 = 0x128;
pub const M_T_R11: u64 = 0x130;
pub const M_T_RCX: u64 = 0x138;
pub const M_T_RIP: u64 = 0x140;
pub const M_T_RSP: u64 = 0x148;
pub const M_T_EFL: u64 = 0x150;
pub const M_T_FS: u64 = 0x158;
pub const M_T_FLAGS: u64 = 0x160;
pub const M_T_EXIT: u64 = 0x168;

/// The stub thread stopped in its handler and reported a signal.
pub const STATE_EVENT: u32 = 1;
/// The Sentry has set the registers: return to the guest.
pub const STATE_RUN: u32 = 2;
/// A patched site's trampoline reported a syscall (registers in `M_T_REGS`).
pub const STATE_TEVENT: u32 = 3;
/// The Sentry wants the trampoline to stop in the handler (a full frame).
pub const STATE_UPGRADE: u32 = 4;

/// Descriptors of a stub process: the Sentry's memory file (guest memory),
/// the write end of the completion pipe, (during set-up only) the stub
/// memory file, and the Sentry's cache file (`platform::CACHE_FILE_BASE`).
pub const STUB_MEMFD_FD: i32 = 10;
pub const STUB_PIPE_FD: i32 = 11;
pub const STUB_REGION_FD: i32 = 12;
pub const STUB_CACHE_FD: i32 = 13;

/// Offset in the stub memory file of thread `i`'s block.
pub const fn thread_off(i: u64) -> u64 {
    THREADS_OFF + i * THREAD_STRIDE
}
