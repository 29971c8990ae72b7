//! The two seccomp filters, in classic BPF.
//!
//! Guest threads: every syscall traps (SIGSYS), except the few the stub's
//! handler makes itself, each allowed only from its own `syscall`
//! instruction and, where it matters, with its arguments pinned. A guest
//! that jumps to one of those instructions can do no more than the handler
//! does for it: return from a signal frame, wait on or wake a futex, set
//! its own fs/gs base.
//!
//! The control thread gets a second filter that additionally allows the
//! address-space calls from its own instruction. Filters stack and the
//! strictest answer wins, so the guest threads (which start as clones of
//! the control thread and then add the guest filter) never get those.

use crate::layout::{STUB_CACHE_FD, STUB_MEMFD_FD, STUB_PIPE_FD};
use crate::stubcode::Labels;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;

const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP_LO: u32 = 8;
const OFF_IP_HI: u32 = 12;
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn off_arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

/// `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const fn ld(off: u32) -> SockFilter {
    SockFilter { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: off }
}
const fn ret(k: u32) -> SockFilter {
    SockFilter { code: BPF_RET_K, jt: 0, jf: 0, k }
}

/// One allowance: syscall `nr` from the instruction ending at `ip`, with
/// argument `arg.0` (as a 64-bit value) one of `arg.1`, if given.
struct Rule {
    ip: u64,
    nr: u32,
    arg: Option<(u32, &'static [u32])>,
}

/// A rule compiled on its own: every failed check jumps to the rule's end
/// (the next rule); success returns ALLOW.
fn compile_rule(r: &Rule) -> Vec<SockFilter> {
    let jeq = |k: u32| SockFilter { code: BPF_JEQ_K, jt: 0, jf: 0, k };
    // Checks whose failure goes to the next rule and success falls through.
    let mut p = vec![ld(OFF_IP_LO), jeq(r.ip as u32), ld(OFF_NR), jeq(r.nr)];
    let mut values = 0..0;
    if let Some((i, vals)) = r.arg {
        p.extend([ld(off_arg_hi(i)), jeq(0), ld(off_arg_lo(i))]);
        values = p.len()..p.len() + vals.len();
        p.extend(vals.iter().map(|&v| jeq(v)));
        p.push(SockFilter { code: BPF_JA, jt: 0, jf: 0, k: 0 });
    }
    p.push(ret(SECCOMP_RET_ALLOW));
    let n = p.len();
    let allow = n - 1;
    for (i, f) in p.iter_mut().enumerate() {
        let rel = |target: usize| target - (i + 1);
        match f.code {
            BPF_JEQ_K if values.contains(&i) => f.jt = rel(allow) as u8,
            BPF_JEQ_K => f.jf = rel(n) as u8,
            BPF_JA => f.k = rel(n) as u32,
            _ => {}
        }
    }
    p
}

fn compile(rules: &[Rule]) -> Vec<SockFilter> {
    let hi = (rules.first().map(|r| r.ip).unwrap_or(0) >> 32) as u32;
    let mut p = vec![
        ld(OFF_ARCH),
        SockFilter { code: BPF_JEQ_K, jt: 1, jf: 0, k: AUDIT_ARCH_X86_64 },
        ret(SECCOMP_RET_TRAP),
        ld(OFF_IP_HI),
        SockFilter { code: BPF_JEQ_K, jt: 1, jf: 0, k: hi },
        ret(SECCOMP_RET_TRAP),
    ];
    for r in rules {
        debug_assert_eq!(r.ip >> 32, hi as u64, "all allowed instructions share the high half");
        p.extend(compile_rule(r));
    }
    p.push(ret(SECCOMP_RET_TRAP));
    p
}

const FUTEX_WAIT: u32 = 0;
const FUTEX_WAKE: u32 = 1;
const ARCH_SET_GS: u32 = 0x1001;
const ARCH_SET_FS: u32 = 0x1002;

fn guest_rules(l: &Labels) -> Vec<Rule> {
    vec![
        Rule { ip: l.sigreturn_syscall, nr: 15, arg: None },
        Rule { ip: l.futex_syscall, nr: 202, arg: Some((1, &[FUTEX_WAIT, FUTEX_WAKE])) },
        Rule { ip: l.tramp_futex_syscall, nr: 202, arg: Some((1, &[FUTEX_WAIT, FUTEX_WAKE])) },
        Rule { ip: l.arch_prctl_syscall, nr: 158, arg: Some((0, &[ARCH_SET_FS, ARCH_SET_GS])) },
    ]
}

/// The guest threads' filter.
pub fn guest_filter(l: &Labels) -> Vec<SockFilter> {
    compile(&guest_rules(l))
}

/// The control thread's filter (inherited by every thread it clones).
pub fn control_filter(l: &Labels) -> Vec<SockFilter> {
    let mut rules = guest_rules(l);
    // What the Sentry asks for: mmap of the memory and cache files only,
    // mprotect, munmap, madvise; futex to sleep; write of a result to the
    // pipe.
    rules.push(Rule { ip: l.ctl_syscall, nr: 9, arg: Some((4, &[STUB_MEMFD_FD as u32, STUB_CACHE_FD as u32])) });
    for nr in [10, 11, 28, 202] {
        rules.push(Rule { ip: l.ctl_syscall, nr, arg: None });
    }
    rules.push(Rule { ip: l.ctl_syscall, nr: 1, arg: Some((0, &[STUB_PIPE_FD as u32])) });
    rules.push(Rule { ip: l.clone_syscall, nr: 56, arg: Some((0, &[crate::process::THREAD_CLONE_FLAGS as u32])) });
    for nr in [14, 131, 317] {
        // rt_sigprocmask, sigaltstack, seccomp: a new thread's set-up.
        rules.push(Rule { ip: l.init_syscall, nr, arg: None });
    }
    compile(&rules)
}

/// Every syscall a stub (before and after its own filters) and the
/// forker itself make. See `forker::Forker`.
const FORKER_ALLOWED: &[u32] = &[
    1,   // write: the control thread's results
    3,   // close
    9,   // mmap
    10,  // mprotect
    11,  // munmap
    13,  // rt_sigaction: a new stub's handlers
    14,  // rt_sigprocmask
    15,  // rt_sigreturn
    28,  // madvise
    33,  // dup2
    39,  // getpid
    46,  // sendmsg: the forker's answers (pid and pidfd)
    47,  // recvmsg: the forker's requests
    56,  // clone: stubs (with CLONE_PIDFD) and stub threads (their flags are the control filter's business)
    60,  // exit
    72,  // fcntl: F_DUPFD
    110, // getppid
    112, // setsid
    131, // sigaltstack
    157, // prctl: PDEATHSIG, NO_NEW_PRIVS
    158, // arch_prctl
    202, // futex
    231, // exit_group
    317, // seccomp: the stubs' own filters
    334, // rseq: unregistration
    436, // close_range
];

/// The forker's filter, inherited by every stub beneath its own. Anything
/// else traps (SIGSYS) rather than kills: a stub's guest syscalls must
/// reach the stub's handler (SECCOMP_RET_TRAP is the strongest answer
/// either filter gives them), and in the forker itself, whose signals are
/// all blocked, a forced SIGSYS kills as surely.
pub fn forker_filter() -> Vec<SockFilter> {
    let mut p = vec![
        ld(OFF_ARCH),
        SockFilter { code: BPF_JEQ_K, jt: 1, jf: 0, k: AUDIT_ARCH_X86_64 },
        ret(SECCOMP_RET_TRAP),
        ld(OFF_NR),
    ];
    let n = FORKER_ALLOWED.len();
    for (i, nr) in FORKER_ALLOWED.iter().enumerate() {
        // On a match jump to the ALLOW at the end (after the TRAP).
        p.push(SockFilter { code: BPF_JEQ_K, jt: (n - i) as u8, jf: 0, k: *nr });
    }
    p.push(ret(SECCOMP_RET_TRAP));
    p.push(ret(SECCOMP_RET_ALLOW));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the instructions we emit.
    fn run(prog: &[SockFilter], nr: u32, ip: u64, args: [u64; 6]) -> u32 {
        let mut data = [0u32; 16];
        data[0] = nr;
        data[1] = AUDIT_ARCH_X86_64;
        data[2] = ip as u32;
        data[3] = (ip >> 32) as u32;
        for (i, a) in args.iter().enumerate() {
            data[4 + 2 * i] = *a as u32;
            data[5 + 2 * i] = (*a >> 32) as u32;
        }
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let f = prog[pc];
            pc += 1;
            match f.code {
                BPF_LD_W_ABS => acc = data[(f.k / 4) as usize],
                BPF_JEQ_K => pc += if acc == f.k { f.jt as usize } else { f.jf as usize },
                BPF_JA => pc += f.k as usize,
                BPF_RET_K => return f.k,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn guest_filter_allows_only_the_handler_calls() {
        let l = Labels::get();
        let p = guest_filter(&l);
        assert_eq!(run(&p, 15, l.sigreturn_syscall, [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 15, l.futex_syscall, [0; 6]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 202, l.futex_syscall, [0, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 202, l.futex_syscall, [0, 1, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 202, l.futex_syscall, [0, 3, 0, 0, 0, 0]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 202, l.tramp_futex_syscall, [0, 1, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 202, l.tramp_futex_syscall, [0, 3, 0, 0, 0, 0]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 39, l.tramp_futex_syscall, [0; 6]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 202, l.futex_syscall, [0, 1 | (1 << 32), 0, 0, 0, 0]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 158, l.arch_prctl_syscall, [0x1002, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 158, l.arch_prctl_syscall, [0x1003, 0, 0, 0, 0, 0]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 9, l.ctl_syscall, [0; 6]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 39, 0x40_0000, [0; 6]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 15, 0x40_0000, [0; 6]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 15, l.sigreturn_syscall + (1 << 32), [0; 6]), SECCOMP_RET_TRAP);
    }

    #[test]
    fn forker_filter_allows_its_list_and_traps_the_rest() {
        let p = forker_filter();
        for nr in FORKER_ALLOWED {
            assert_eq!(run(&p, *nr, 0x40_0000, [0; 6]), SECCOMP_RET_ALLOW, "{nr}");
        }
        for nr in [0, 2, 41, 42, 59, 62, 101, 257, 322] {
            assert_eq!(run(&p, nr, 0x40_0000, [0; 6]), SECCOMP_RET_TRAP, "{nr}");
        }
    }

    #[test]
    fn control_filter_adds_the_address_space_calls() {
        let l = Labels::get();
        let p = control_filter(&l);
        assert_eq!(run(&p, 9, l.ctl_syscall, [0, 0, 0, 0, 10, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 9, l.ctl_syscall, [0, 0, 0, 0, 3, 0]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 1, l.ctl_syscall, [11, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 1, l.ctl_syscall, [1, 0, 0, 0, 0, 0]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 11, l.ctl_syscall, [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 59, l.ctl_syscall, [0; 6]), SECCOMP_RET_TRAP);
        let flags = crate::process::THREAD_CLONE_FLAGS;
        assert_eq!(run(&p, 56, l.clone_syscall, [flags, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 56, l.clone_syscall, [flags & !0x100, 0, 0, 0, 0, 0]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 317, l.init_syscall, [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 317, l.ctl_syscall, [0; 6]), SECCOMP_RET_TRAP);
        assert_eq!(run(&p, 15, l.sigreturn_syscall, [0; 6]), SECCOMP_RET_ALLOW);
        assert!(p.len() as u64 <= crate::layout::C_FILTER_MAX);
    }
}
