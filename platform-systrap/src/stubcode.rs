//! The code that runs in a stub process, as position-independent machine
//! code copied into the stub's code pages.
//!
//! Three pieces:
//! * the control thread (the stub's first thread): unmaps everything of the
//!   Sentry that the fork left, installs its filter, then serves requests
//!   from the control page (mmap, munmap, mprotect, clone) using registers
//!   only, so guest threads that scribble on stub memory cannot steer it;
//! * a new stub thread's start: signal mask, signal stack, guest filter,
//!   then a trapped syscall that parks it in the handler;
//! * the signal handler every trap, fault and interrupt enters: it records
//!   where the kernel put the `ucontext`, hands over to the Sentry through
//!   the thread's message page (spinning for a while, then on a futex),
//!   and returns to the guest with `rt_sigreturn` once the Sentry has
//!   written the registers into that `ucontext`.
//!
//! The filters allow each host syscall only from one instruction, named
//! below (`*_syscall` labels); the Sentry reads their addresses from
//! [`Labels`].

use crate::layout::*;
use std::arch::global_asm;

global_asm!(
    ".pushsection .text.runsc_systrap_stub, \"ax\", @progbits",
    ".p2align 12",
    ".globl runsc_systrap_code_start",
    "runsc_systrap_code_start:",

    // ---- Control thread entry: rbx, r14 = control and response pages.
    ".globl runsc_systrap_ctl_entry",
    "runsc_systrap_ctl_entry:",
    "mov rbx, {ctrl}",
    "mov r14, {resp}",
    // munmap(0, STUB_BASE); munmap(STUB_END, TASK_END - STUB_END)
    "mov eax, 11",
    "xor edi, edi",
    "mov rsi, {stub_base}",
    "syscall",
    "test rax, rax",
    "jnz .Lctl_die",
    "mov eax, 11",
    "mov rdi, {stub_end}",
    "mov rsi, {above_len}",
    "syscall",
    "test rax, rax",
    "jnz .Lctl_die",
    // seccomp(SECCOMP_SET_MODE_FILTER, 0, &fprog_ctl)
    "mov eax, 317",
    "mov edi, 1",
    "xor esi, esi",
    "lea rdx, [rbx + {c_fprog_ctl}]",
    "syscall",
    "test rax, rax",
    "jnz .Lctl_die",
    // Report in: the first result on the completion pipe.
    "xor r13d, r13d",
    "xor eax, eax",
    "jmp .Lctl_done",
    ".Lctl_loop:",
    "mov ecx, dword ptr [rbx + {c_ctl_spin}]",
    ".Lctl_spin:",
    "mov eax, dword ptr [rbx + {c_req_seq}]",
    "cmp eax, r13d",
    "jne .Lctl_req",
    "pause",
    "dec ecx",
    "jnz .Lctl_spin",
    // Sleep: announce it (xchg is a full barrier), check again, wait.
    "mov eax, 1",
    "xchg dword ptr [r14 + {r_ctl_waiting}], eax",
    "mov eax, dword ptr [rbx + {c_req_seq}]",
    "cmp eax, r13d",
    "jne .Lctl_woke",
    "mov eax, 202",
    "lea rdi, [rbx + {c_req_seq}]",
    "xor esi, esi",
    "mov edx, r13d",
    "xor r10d, r10d",
    "lea r15, [rip + .Lctl_woke]",
    "jmp runsc_systrap_ctl_syscall",
    ".Lctl_woke:",
    "mov dword ptr [r14 + {r_ctl_waiting}], 0",
    "jmp .Lctl_loop",
    ".Lctl_req:",
    "mov r13d, eax",
    "mov rax, qword ptr [rbx + {c_nr}]",
    "mov rdi, qword ptr [rbx + {c_args}]",
    "mov rsi, qword ptr [rbx + {c_args} + 8]",
    "mov rdx, qword ptr [rbx + {c_args} + 16]",
    "mov r10, qword ptr [rbx + {c_args} + 24]",
    "mov r8, qword ptr [rbx + {c_args} + 32]",
    "mov r9, qword ptr [rbx + {c_args} + 40]",
    "cmp rax, 56",
    "je .Lctl_clone",
    "lea r15, [rip + .Lctl_done]",
    "jmp runsc_systrap_ctl_syscall",
    ".Lctl_clone:",
    "mov r12, qword ptr [rbx + {c_thread}]",
    ".globl runsc_systrap_clone_syscall",
    "runsc_systrap_clone_syscall:",
    "syscall",
    "test rax, rax",
    "jz .Lthread_start",
    // The result goes to the Sentry through the completion pipe: guest
    // threads can scribble on the response page but cannot write to a
    // file, so the Sentry knows the call really finished.
    ".Lctl_done:",
    "mov qword ptr [r14 + {r_result}], rax",
    "mov eax, 1",
    "mov edi, {pipe_fd}",
    "lea rsi, [r14 + {r_result}]",
    "mov edx, 8",
    "lea r15, [rip + .Lctl_written]",
    "jmp runsc_systrap_ctl_syscall",
    // Then a hint for a Sentry spinning on the page (it still reads the
    // pipe, which by now holds the result).
    ".Lctl_written:",
    "mov dword ptr [r14 + {r_done_seq}], r13d",
    "jmp .Lctl_loop",
    ".Lctl_die:",
    "ud2",
    ".globl runsc_systrap_ctl_syscall",
    "runsc_systrap_ctl_syscall:",
    "syscall",
    "jmp r15",

    // ---- A new stub thread (clone child): r12 = its index, rbx = control page.
    ".Lthread_start:",
    // rt_sigprocmask(SIG_SETMASK, &zero, NULL, 8)
    "mov eax, 14",
    "mov edi, 2",
    "lea rsi, [rbx + {c_zero_mask}]",
    "xor edx, edx",
    "mov r10d, 8",
    "lea r15, [rip + .Lthread_1]",
    "jmp runsc_systrap_init_syscall",
    ".Lthread_1:",
    "test rax, rax",
    "jnz .Lthread_die",
    // sigaltstack(&table[r12], NULL)
    "mov rdi, r12",
    "shl rdi, 5",
    "mov rax, {table}",
    "add rdi, rax",
    "xor esi, esi",
    "mov eax, 131",
    "lea r15, [rip + .Lthread_2]",
    "jmp runsc_systrap_init_syscall",
    ".Lthread_2:",
    "test rax, rax",
    "jnz .Lthread_die",
    // seccomp(SECCOMP_SET_MODE_FILTER, 0, &fprog_guest)
    "mov eax, 317",
    "mov edi, 1",
    "xor esi, esi",
    "lea rdx, [rbx + {c_fprog_guest}]",
    "lea r15, [rip + .Lthread_3]",
    "jmp runsc_systrap_init_syscall",
    ".Lthread_3:",
    "test rax, rax",
    "jnz .Lthread_die",
    // Report in: a trapped getpid parks the thread in its handler.
    "mov eax, 39",
    ".globl runsc_systrap_ready_syscall",
    "runsc_systrap_ready_syscall:",
    "syscall",
    ".Lthread_die:",
    "ud2",
    ".globl runsc_systrap_init_syscall",
    "runsc_systrap_init_syscall:",
    "syscall",
    "jmp r15",

    // ---- The signal handler: rdi = signo, rsi = siginfo, rdx = ucontext,
    // rsp on the thread's signal stack (so rsp & -STRIDE is its message page).
    ".p2align 4",
    ".globl runsc_systrap_handler",
    "runsc_systrap_handler:",
    "mov r12, rdx",
    "mov rbx, rsp",
    "and rbx, {stride_mask}",
    // An asynchronous signal (the interrupt, or one sent from outside) that
    // caught the thread inside a patch trampoline is not reported from
    // there: the trampoline leaves through `M_T_EXIT`, which now leads to
    // the kick trap, so the Sentry sees it once the registers are the
    // guest's again. Faults the trampoline itself takes are reported.
    "mov rax, qword ptr [rdx + {uc_rip}]",
    "lea rcx, [rip + runsc_systrap_tramp]",
    "cmp rax, rcx",
    "jb .Lh_record",
    "lea rcx, [rip + runsc_systrap_tramp_end]",
    "cmp rax, rcx",
    "jae .Lh_record",
    "cmp edi, {sigchld}",
    "je .Lh_defer",
    "cmp dword ptr [rsi + 8], 0",
    "jg .Lh_record",
    ".Lh_defer:",
    "lea rax, [rip + runsc_systrap_kick]",
    "mov qword ptr [rbx + {m_t_exit}], rax",
    "jmp .Lh_return",
    ".Lh_record:",
    "mov dword ptr [rbx + {m_signo}], edi",
    "mov qword ptr [rbx + {m_siginfo}], rsi",
    "mov qword ptr [rbx + {m_ucontext}], rdx",
    "mov rcx, {ctrl}",
    "cmp dword ptr [rcx + {c_fsgsbase}], 0",
    "je .Lh_report",
    "rdfsbase rax",
    "mov qword ptr [rbx + {m_fs}], rax",
    "rdgsbase rax",
    "mov qword ptr [rbx + {m_gs}], rax",
    ".Lh_report:",
    "mov eax, {state_event}",
    "xchg dword ptr [rbx + {m_state}], eax",
    "cmp dword ptr [rbx + {m_sentry_waiting}], 0",
    "je .Lh_wait",
    "mov eax, 202",
    "mov rdi, rbx",
    "mov esi, 1",
    "mov edx, 1",
    "lea r15, [rip + .Lh_wait]",
    "jmp runsc_systrap_futex_syscall",
    ".Lh_wait:",
    "mov rcx, {ctrl}",
    "mov ecx, dword ptr [rcx + {c_stub_spin}]",
    ".Lh_spin:",
    "cmp dword ptr [rbx + {m_state}], {state_run}",
    "je .Lh_run",
    "pause",
    "dec ecx",
    "jnz .Lh_spin",
    "mov eax, 1",
    "xchg dword ptr [rbx + {m_stub_waiting}], eax",
    "cmp dword ptr [rbx + {m_state}], {state_run}",
    "je .Lh_run",
    "mov eax, 202",
    "mov rdi, rbx",
    "xor esi, esi",
    "mov edx, {state_event}",
    "xor r10d, r10d",
    "lea r15, [rip + .Lh_slept]",
    "jmp runsc_systrap_futex_syscall",
    ".Lh_slept:",
    "mov dword ptr [rbx + {m_stub_waiting}], 0",
    "jmp .Lh_wait",
    ".Lh_run:",
    "mov dword ptr [rbx + {m_stub_waiting}], 0",
    "mov rcx, {ctrl}",
    "cmp dword ptr [rcx + {c_fsgsbase}], 0",
    "je .Lh_arch_prctl",
    "mov rax, qword ptr [rbx + {m_fs}]",
    "wrfsbase rax",
    "mov rax, qword ptr [rbx + {m_gs}]",
    "wrgsbase rax",
    "jmp .Lh_return",
    ".Lh_arch_prctl:",
    "mov rsi, qword ptr [rbx + {m_fs}]",
    "cmp rsi, qword ptr [rbx + {m_cur_fs}]",
    "je .Lh_gs",
    "mov qword ptr [rbx + {m_cur_fs}], rsi",
    "mov edi, 0x1002",
    "mov eax, 158",
    "lea r15, [rip + .Lh_gs]",
    "jmp runsc_systrap_arch_prctl_syscall",
    ".Lh_gs:",
    "mov rsi, qword ptr [rbx + {m_gs}]",
    "cmp rsi, qword ptr [rbx + {m_cur_gs}]",
    "je .Lh_return",
    "mov qword ptr [rbx + {m_cur_gs}], rsi",
    "mov edi, 0x1001",
    "mov eax, 158",
    "lea r15, [rip + .Lh_return]",
    "jmp runsc_systrap_arch_prctl_syscall",
    ".Lh_return:",
    // rt_sigreturn wants rsp at the ucontext (the frame minus its return address).
    "mov rsp, r12",
    "mov eax, 15",
    ".globl runsc_systrap_sigreturn_syscall",
    "runsc_systrap_sigreturn_syscall:",
    "syscall",
    "ud2",
    ".globl runsc_systrap_futex_syscall",
    "runsc_systrap_futex_syscall:",
    "syscall",
    "jmp r15",
    ".globl runsc_systrap_arch_prctl_syscall",
    "runsc_systrap_arch_prctl_syscall:",
    "syscall",
    "jmp r15",

    // ---- Trampoline of patched syscall sites (see patch.rs). A site's
    // `mov $nr, %eax` became `jmp slot`; the slot does `lea rcx, [its
    // data]` (nr: u32 at 0, return address: u64 at 8) and jumps here. rax,
    // rcx and r11 are free (the mov would have overwritten eax, syscall
    // clobbers rcx and r11). No stack: the guest's rsp may be anything.
    // A wrapper slot (glibc's syscall(), whose last `mov` loads r9) did
    // that load and put rax at [rsp - 8] first; its nr reads -1.
    ".p2align 4",
    ".globl runsc_systrap_tramp",
    "runsc_systrap_tramp:",
    // The arithmetic flags (all the trampoline touches) into ax.
    "lahf",
    "seto al",
    // gs base is this thread's message page while the guest's is 0; a
    // guest that set its own takes the trap as before.
    "rdgsbase r11",
    "cmp r11, qword ptr [rip + .Lt_lo]",
    "jb .Lt_fallback",
    "cmp r11, qword ptr [rip + .Lt_hi]",
    "jae .Lt_fallback",
    "test r11d, {stride_low}",
    "jnz .Lt_fallback",
    "mov qword ptr [r11 + {m_t_flags}], rax",
    "mov qword ptr [r11 + {t_r15}], r15",
    "mov qword ptr [r11 + {t_r14}], r14",
    "mov qword ptr [r11 + {t_r13}], r13",
    "mov qword ptr [r11 + {t_r12}], r12",
    "mov qword ptr [r11 + {t_rbp}], rbp",
    "mov qword ptr [r11 + {t_rbx}], rbx",
    "mov qword ptr [r11 + {t_r10}], r10",
    "mov qword ptr [r11 + {t_r9}], r9",
    "mov qword ptr [r11 + {t_r8}], r8",
    "mov qword ptr [r11 + {t_rdx}], rdx",
    "mov qword ptr [r11 + {t_rsi}], rsi",
    "mov qword ptr [r11 + {t_rdi}], rdi",
    "mov qword ptr [r11 + {t_rsp}], rsp",
    // A wrapper slot (patch.rs) left the number below rsp.
    "mov eax, dword ptr [rcx]",
    "cmp eax, -1",
    "jne .Lt_have_nr",
    "mov rax, qword ptr [rsp - 8]",
    ".Lt_have_nr:",
    "mov qword ptr [r11 + {t_rax}], rax",
    "mov rax, qword ptr [rcx + 8]",
    "mov qword ptr [r11 + {t_rip}], rax",
    "mov qword ptr [r11 + {t_rcx}], rax",
    "mov qword ptr [r11 + {m_t_exit}], rax",
    // rflags as syscall would leave it in r11: IF, bit 1, and the saved
    // arithmetic flags (DF and the system flags are never touched here).
    "movzx edx, byte ptr [r11 + {m_t_flags} + 1]",
    "and edx, 0xd5",
    "or edx, 0x202",
    "movzx esi, byte ptr [r11 + {m_t_flags}]",
    "shl esi, 11",
    "or edx, esi",
    "mov qword ptr [r11 + {t_efl}], rdx",
    "mov qword ptr [r11 + {t_r11}], rdx",
    "rdfsbase rdx",
    "mov qword ptr [r11 + {t_fs}], rdx",
    // The same hand-off as the handler's, on the same state word.
    "mov rbx, r11",
    "mov eax, {state_tevent}",
    "xchg dword ptr [rbx + {m_state}], eax",
    "cmp dword ptr [rbx + {m_sentry_waiting}], 0",
    "je .Lt_wait",
    "mov eax, 202",
    "mov rdi, rbx",
    "mov esi, 1",
    "mov edx, 1",
    "lea r15, [rip + .Lt_wait]",
    "jmp .Lt_futex",
    ".Lt_wait:",
    "mov rcx, {ctrl}",
    "mov ecx, dword ptr [rcx + {c_stub_spin}]",
    ".Lt_spin:",
    "mov eax, dword ptr [rbx + {m_state}]",
    "cmp eax, {state_run}",
    "je .Lt_run",
    "cmp eax, {state_upgrade}",
    "je .Lt_upgrade",
    "pause",
    "dec ecx",
    "jnz .Lt_spin",
    "mov eax, 1",
    "xchg dword ptr [rbx + {m_stub_waiting}], eax",
    "cmp dword ptr [rbx + {m_state}], {state_tevent}",
    "jne .Lt_woke",
    "mov eax, 202",
    "mov rdi, rbx",
    "xor esi, esi",
    "mov edx, {state_tevent}",
    "xor r10d, r10d",
    "lea r15, [rip + .Lt_woke]",
    "jmp .Lt_futex",
    ".Lt_woke:",
    "mov dword ptr [rbx + {m_stub_waiting}], 0",
    "jmp .Lt_wait",
    ".globl runsc_systrap_tramp_futex_syscall",
    "runsc_systrap_tramp_futex_syscall:",
    ".Lt_futex:",
    "syscall",
    "jmp r15",
    // Not ours to use: do what the site did, `mov $nr, %eax`, and go on to
    // its `syscall` (the signal path).
    ".Lt_fallback:",
    "mov r11, qword ptr [rcx + 8]",
    "lea r11, [r11 - 2]",
    "cmp dword ptr [rcx], -1",
    "je .Lt_fallback_stack",
    "add al, 0x7f",
    "sahf",
    "mov eax, dword ptr [rcx]",
    "jmp r11",
    // A wrapper slot's site: it did its load already; rax is below rsp.
    ".Lt_fallback_stack:",
    "add al, 0x7f",
    "sahf",
    "mov rax, qword ptr [rsp - 8]",
    "jmp r11",
    // The Sentry needs a full frame (new registers, FPU state): stop in
    // the handler; the Sentry writes every register before resuming.
    ".Lt_upgrade:",
    "mov dword ptr [rbx + {m_stub_waiting}], 0",
    ".globl runsc_systrap_upgrade",
    "runsc_systrap_upgrade:",
    "int3",
    "ud2",
    ".Lt_run:",
    "mov dword ptr [rbx + {m_stub_waiting}], 0",
    "mov rax, qword ptr [rbx + {m_t_flags}]",
    "add al, 0x7f",
    "sahf",
    // From here on nothing changes the flags.
    "mov r15, qword ptr [rbx + {t_r15}]",
    "mov r14, qword ptr [rbx + {t_r14}]",
    "mov r13, qword ptr [rbx + {t_r13}]",
    "mov r12, qword ptr [rbx + {t_r12}]",
    "mov rbp, qword ptr [rbx + {t_rbp}]",
    "mov r11, qword ptr [rbx + {t_r11}]",
    "mov r10, qword ptr [rbx + {t_r10}]",
    "mov r9, qword ptr [rbx + {t_r9}]",
    "mov r8, qword ptr [rbx + {t_r8}]",
    "mov rcx, qword ptr [rbx + {t_rcx}]",
    "mov rdx, qword ptr [rbx + {t_rdx}]",
    "mov rsi, qword ptr [rbx + {t_rsi}]",
    "mov rdi, qword ptr [rbx + {t_rdi}]",
    "mov rax, qword ptr [rbx + {t_rax}]",
    "mov rbx, qword ptr [rbx + {t_rbx}]",
    // One instruction: a signal before it has redirected it.
    "jmp qword ptr gs:[{m_t_exit}]",
    // An interrupt came while in the trampoline: report it with the
    // guest's registers (rcx = where it resumes).
    ".globl runsc_systrap_kick",
    "runsc_systrap_kick:",
    "int3",
    ".globl runsc_systrap_tramp_end",
    "runsc_systrap_tramp_end:",
    "ud2",
    ".p2align 3",
    ".Lt_lo:",
    ".quad {threads_lo}",
    ".Lt_hi:",
    ".quad {threads_hi}",
    ".globl runsc_systrap_code_end",
    "runsc_systrap_code_end:",
    ".popsection",
    ctrl = const STUB_BASE + CTRL_OFF,
    resp = const STUB_BASE + RESP_OFF,
    table = const STUB_BASE + TABLE_OFF,
    stub_base = const STUB_BASE,
    stub_end = const STUB_END,
    above_len = const TASK_END - STUB_END,
    stride_mask = const -(THREAD_STRIDE as i64),
    c_ctl_spin = const C_CTL_SPIN,
    c_stub_spin = const C_STUB_SPIN,
    state_event = const STATE_EVENT,
    state_run = const STATE_RUN,
    c_req_seq = const C_REQ_SEQ,
    c_nr = const C_NR,
    c_args = const C_ARGS,
    c_thread = const C_THREAD,
    c_fsgsbase = const C_FSGSBASE,
    c_fprog_ctl = const C_FPROG_CTL,
    c_fprog_guest = const C_FPROG_GUEST,
    c_zero_mask = const C_ZERO_MASK,
    pipe_fd = const STUB_PIPE_FD,
    r_ctl_waiting = const R_CTL_WAITING,
    r_done_seq = const R_DONE_SEQ,
    r_result = const R_RESULT,
    m_state = const M_STATE,
    m_stub_waiting = const M_STUB_WAITING,
    m_sentry_waiting = const M_SENTRY_WAITING,
    m_signo = const M_SIGNO,
    m_siginfo = const M_SIGINFO,
    m_ucontext = const M_UCONTEXT,
    m_fs = const M_FS_BASE,
    m_gs = const M_GS_BASE,
    m_cur_fs = const M_CUR_FS,
    m_cur_gs = const M_CUR_GS,
    uc_rip = const 40 + 16 * 8,
    sigchld = const libc::SIGCHLD,
    m_t_exit = const M_T_EXIT,
    m_t_flags = const M_T_FLAGS,
    stride_low = const THREAD_STRIDE - 1,
    threads_lo = const STUB_BASE + THREADS_OFF,
    threads_hi = const STUB_END,
    state_tevent = const STATE_TEVENT,
    state_upgrade = const STATE_UPGRADE,
    t_r15 = const M_T_REGS + 8 * T_R15,
    t_r14 = const M_T_REGS + 8 * T_R14,
    t_r13 = const M_T_REGS + 8 * T_R13,
    t_r12 = const M_T_REGS + 8 * T_R12,
    t_rbp = const M_T_REGS + 8 * T_RBP,
    t_rbx = const M_T_REGS + 8 * T_RBX,
    t_r11 = const M_T_REGS + 8 * T_R11,
    t_r10 = const M_T_REGS + 8 * T_R10,
    t_r9 = const M_T_REGS + 8 * T_R9,
    t_r8 = const M_T_REGS + 8 * T_R8,
    t_rax = const M_T_REGS + 8 * T_RAX,
    t_rcx = const M_T_REGS + 8 * T_RCX,
    t_rdx = const M_T_REGS + 8 * T_RDX,
    t_rsi = const M_T_REGS + 8 * T_RSI,
    t_rdi = const M_T_REGS + 8 * T_RDI,
    t_rip = const M_T_REGS + 8 * T_RIP,
    t_rsp = const M_T_REGS + 8 * T_RSP,
    t_efl = const M_T_REGS + 8 * T_EFL,
    t_fs = const M_T_REGS + 8 * T_FS,
);

extern "C" {
    static runsc_systrap_code_start: u8;
    static runsc_systrap_code_end: u8;
    static runsc_systrap_ctl_entry: u8;
    static runsc_systrap_ctl_syscall: u8;
    static runsc_systrap_clone_syscall: u8;
    static runsc_systrap_init_syscall: u8;
    static runsc_systrap_ready_syscall: u8;
    static runsc_systrap_handler: u8;
    static runsc_systrap_sigreturn_syscall: u8;
    static runsc_systrap_futex_syscall: u8;
    static runsc_systrap_arch_prctl_syscall: u8;
    static runsc_systrap_tramp: u8;
    static runsc_systrap_tramp_futex_syscall: u8;
    static runsc_systrap_upgrade: u8;
    static runsc_systrap_kick: u8;
}

/// The stub code's bytes, as they are copied to `STUB_BASE + CODE_OFF`.
pub fn code() -> &'static [u8] {
    // SAFETY: the two symbols delimit the assembled block above in this
    // binary's read-only text; the block is shorter than CODE_SIZE (checked
    // by a test) and never written.
    unsafe {
        let start = &raw const runsc_systrap_code_start;
        let end = &raw const runsc_systrap_code_end;
        std::slice::from_raw_parts(start, end as usize - start as usize)
    }
}

/// Stub addresses of the code's entry points, and of the instruction right
/// after each `syscall` the filters allow (what seccomp reports as the
/// instruction pointer).
#[derive(Clone, Copy, Debug)]
pub struct Labels {
    pub ctl_entry: u64,
    pub handler: u64,
    pub ctl_syscall: u64,
    pub clone_syscall: u64,
    pub init_syscall: u64,
    pub ready_syscall: u64,
    pub sigreturn_syscall: u64,
    pub futex_syscall: u64,
    pub arch_prctl_syscall: u64,
    /// The patch trampoline's entry, its futex call, and the addresses its
    /// two traps report (after the `int3`).
    pub tramp: u64,
    pub tramp_futex_syscall: u64,
    pub upgrade_trap: u64,
    pub kick_trap: u64,
}

impl Labels {
    pub fn get() -> Labels {
        let start = &raw const runsc_systrap_code_start as u64;
        let at = |p: *const u8| STUB_BASE + CODE_OFF + (p as u64 - start);
        let after = |p: *const u8| at(p) + 2;
        {
            Labels {
                ctl_entry: at(&raw const runsc_systrap_ctl_entry),
                handler: at(&raw const runsc_systrap_handler),
                ctl_syscall: after(&raw const runsc_systrap_ctl_syscall),
                clone_syscall: after(&raw const runsc_systrap_clone_syscall),
                init_syscall: after(&raw const runsc_systrap_init_syscall),
                ready_syscall: after(&raw const runsc_systrap_ready_syscall),
                sigreturn_syscall: after(&raw const runsc_systrap_sigreturn_syscall),
                futex_syscall: after(&raw const runsc_systrap_futex_syscall),
                arch_prctl_syscall: after(&raw const runsc_systrap_arch_prctl_syscall),
                tramp: at(&raw const runsc_systrap_tramp),
                tramp_futex_syscall: after(&raw const runsc_systrap_tramp_futex_syscall),
                upgrade_trap: at(&raw const runsc_systrap_upgrade) + 1,
                kick_trap: at(&raw const runsc_systrap_kick) + 1,
            }
        }
    }
}
