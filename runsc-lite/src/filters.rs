//! The Sentry's own seccomp filter: the host syscalls it (and, for
//! ptrace, the stubs it forks) may make once confined, with argument rules
//! where they matter. `runsc-lite debug filters` prints it.
//!
//! Three filters are stacked (seccompiler compiles each; one answer per
//! filter):
//! 1. the allowlist: a listed call whose rules match is allowed; anything
//!    else traps (SIGSYS) into `violation`'s handler, which writes one
//!    report line for runsc-lite and then makes the *executioner* call;
//! 2. [`ANSWERED`] calls get ENOSYS without running: clone3 (its flags
//!    live in memory a filter cannot read; glibc then falls back to
//!    clone, whose flags are checked);
//! 3. the executioner: syscall [`EXECUTIONER_NR`] with the boot's random
//!    cookie in its first argument is SECCOMP_RET_KILL_PROCESS. So every
//!    violation ends in a kill by seccomp, after a report naming it.
//!
//! Filters stack and the strictest answer wins, so a forbidden call never
//! runs, whatever a compromised Sentry does with its SIGSYS handler (it
//! cannot replace it: rt_sigaction on SIGSYS is not allowed).

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// A syscall number no kernel has: the executioner (see the module doc).
pub const EXECUTIONER_NR: i64 = 1000;

/// Calls the second filter answers with ENOSYS:
/// they never run on the host, so they are not in the allowlist (see the
/// module doc). rseq cannot be one: glibc aborts a new thread whose
/// registration fails once the main thread's succeeded.
pub const ANSWERED: [(i64, &str, &str); 1] =
    [(libc::SYS_clone3, "clone3", "its flags are in memory; glibc falls back to clone")];

/// One argument check.
#[derive(Clone, Copy, Debug)]
pub enum Cond {
    /// argument == value (64 bits)
    Eq(u8, u64),
    /// (int) argument == value
    Eq32(u8, u64),
    /// (int) argument != value
    Ne32(u8, u64),
    /// (int) argument is not negative
    NonNeg32(u8),
    /// argument has these bits set
    Set(u8, u64),
    /// argument has these bits clear
    Clear(u8, u64),
}

impl Cond {
    fn compile(self) -> SeccompCondition {
        let (i, len, op, v) = match self {
            Cond::Eq(i, v) => (i, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, v),
            Cond::Eq32(i, v) => (i, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v),
            Cond::Ne32(i, v) => (i, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, v),
            Cond::NonNeg32(i) => (i, SeccompCmpArgLen::Dword, SeccompCmpOp::Le, i32::MAX as u64),
            Cond::Set(i, v) => (i, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(v), v),
            Cond::Clear(i, v) => (i, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(v), 0),
        };
        // Arguments 0..=5 and these operators are always valid.
        SeccompCondition::new(i, len, op, v).unwrap_or_else(|e| panic!("seccomp condition {self:?}: {e}"))
    }

    fn describe(self) -> String {
        match self {
            Cond::Eq(i, v) => format!("arg{i} == {v:#x}"),
            Cond::Eq32(i, v) => format!("(int)arg{i} == {v}"),
            Cond::Ne32(i, v) => format!("arg{i} != {v}"),
            Cond::NonNeg32(i) => format!("arg{i} >= 0"),
            Cond::Set(i, v) => format!("arg{i} & {v:#x} set"),
            Cond::Clear(i, v) => format!("arg{i} & {v:#x} clear"),
        }
    }
}

/// One allowed syscall: allowed if any of `rules` (each a conjunction)
/// matches; no rules: always.
pub struct Allowed {
    pub nr: i64,
    pub rules: Vec<Vec<Cond>>,
    pub why: &'static str,
}

fn any(nr: i64, why: &'static str) -> Allowed {
    Allowed { nr, rules: Vec::new(), why }
}

fn when(nr: i64, rules: Vec<Vec<Cond>>, why: &'static str) -> Allowed {
    Allowed { nr, rules, why }
}

/// One rule per value of argument `i`.
fn one_of(i: u8, values: &[u64]) -> Vec<Vec<Cond>> {
    values.iter().map(|v| vec![Cond::Eq(i, *v)]).collect()
}

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PTRACE: u64 = 0x2000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
/// glibc's pthread_create (the clone fallback after clone3's ENOSYS).
const THREAD_FLAGS: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID;
/// The ptrace platform's stub threads (injected into a stub, which
/// inherits this filter).
const STUB_THREAD_FLAGS: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_PARENT | CLONE_PTRACE;

const PROT_EXEC_BIT: u64 = 4;

/// The allowlist for platform `platform` ("systrap" or "ptrace").
pub fn allowlist(platform: &str) -> Vec<Allowed> {
    use libc::*;
    let ptrace = platform == "ptrace";
    // TIOCOUTQ is SIOCOUTQ on a host socket (--network=host).
    let ioctls = [TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, TIOCSWINSZ, TIOCGPGRP, FIONREAD, TIOCOUTQ];
    // --network=host: options of these levels on the broker's sockets.
    let opt_levels = [SOL_SOCKET, IPPROTO_TCP, IPPROTO_IP, IPPROTO_IPV6];
    let level_rules = |levels: &[i32]| levels.iter().map(|&l| vec![Cond::Eq32(1, l as u64)]).collect::<Vec<_>>();
    // setsockopt: SOL_SOCKET except what reaches past the socket (a
    // device, a mark, a packet filter); the other levels whole.
    const SO_ATTACH_REUSEPORT_CBPF: i32 = 51;
    const SO_ATTACH_REUSEPORT_EBPF: i32 = 52;
    const SO_BINDTOIFINDEX: i32 = 62;
    let refused = [
        SO_BINDTODEVICE,
        SO_BINDTOIFINDEX,
        SO_MARK,
        SO_ATTACH_FILTER,
        SO_ATTACH_BPF,
        SO_ATTACH_REUSEPORT_CBPF,
        SO_ATTACH_REUSEPORT_EBPF,
    ];
    let mut set_rules = vec![refused
        .iter()
        .map(|&n| Cond::Ne32(2, n as u64))
        .chain(std::iter::once(Cond::Eq32(1, SOL_SOCKET as u64)))
        .collect::<Vec<_>>()];
    set_rules.extend(level_rules(&opt_levels[1..]));
    let mut v = vec![
        any(SYS_read, "files, pipes, the platforms' channels"),
        any(SYS_write, "files, stdio, the log"),
        any(SYS_close, "descriptors"),
        any(SYS_lseek, "the caller's stdio (shared offset); rewinding a host directory's node descriptor"),
        any(SYS_pread64, "host files"),
        any(SYS_pwrite64, "host files"),
        any(SYS_splice, "the file cache's fill: host file to a pipe to the memory file, in the host kernel"),
        any(SYS_pwritev2, "host files opened O_APPEND (RWF_APPEND)"),
        when(SYS_ioctl, one_of(1, &ioctls), "terminal requests on the caller's stdio"),
        any(SYS_poll, "waits on host descriptors (stdio, host FIFOs)"),
        any(SYS_madvise, "the allocator; punching guest memory"),
        any(SYS_munmap, "memory"),
        any(SYS_mremap, "the allocator"),
        any(SYS_brk, "the allocator"),
        any(SYS_rt_sigprocmask, "threads; signal masks"),
        when(
            SYS_rt_sigaction,
            vec![vec![Cond::Ne32(0, SIGSYS as u64)]],
            "signal handlers, never SIGSYS's (the violation report)",
        ),
        any(SYS_rt_sigreturn, "signal handlers"),
        any(SYS_restart_syscall, "an allowed call restarted after a signal"),
        any(SYS_sigaltstack, "threads (Rust's stack-overflow handler)"),
        any(SYS_sched_yield, "spinning hand-offs"),
        any(SYS_sched_getaffinity, "Rust's new-thread set-up (pthread_getattr_np)"),
        any(SYS_sched_setaffinity, "CPU placement of stubs and tracers"),
        any(SYS_clock_nanosleep, "sleeps (glibc's nanosleep too)"),
        any(SYS_clock_gettime, "clocks (CPU-time clocks are not in the vDSO)"),
        any(SYS_futex, "locks, the systrap hand-off"),
        any(SYS_getpid, "stubs' parent checks"),
        any(SYS_gettid, "threads"),
        any(SYS_tgkill, "interrupting stub threads"),
        when(
            SYS_clone,
            if ptrace { one_of(0, &[THREAD_FLAGS, STUB_THREAD_FLAGS]) } else { one_of(0, &[THREAD_FLAGS]) },
            if ptrace { "Sentry threads; ptrace stub threads (injected)" } else { "Sentry threads only" },
        ),
        any(SYS_exit, "threads"),
        any(SYS_exit_group, "the end"),
        any(SYS_set_robust_list, "threads"),
        when(
            SYS_membarrier,
            vec![vec![Cond::Eq32(0, 1), Cond::Eq32(1, 0)], vec![Cond::Eq32(0, 2), Cond::Eq32(1, 0)]],
            "the guest's membarrier: a host GLOBAL_EXPEDITED barrier (stubs inherit the boot's registration), GLOBAL as the fallback",
        ),
        any(SYS_rseq, "threads (glibc aborts a thread whose registration fails); a new ptrace stub unregisters the area its fork copied"),
        when(
            SYS_prctl,
            one_of(0, &[PR_SET_NAME as u64, PR_GET_NAME as u64, PR_SET_PDEATHSIG as u64, PR_SET_NO_NEW_PRIVS as u64]),
            "thread names; stubs' PDEATHSIG and no_new_privs",
        ),
        when(
            SYS_openat,
            vec![vec![Cond::NonNeg32(0), Cond::Set(2, O_NOFOLLOW as u64)]],
            "host files: relative to a held descriptor, never following a symlink",
        ),
        any(SYS_statx, "every stat of a host file (with its birth time: identity)"),
        any(SYS_getdents64, "host directories"),
        any(SYS_readlinkat, "host symlinks"),
        any(SYS_mkdirat, "host files (rw mounts)"),
        any(SYS_mknodat, "host FIFOs and socket nodes (rw mounts)"),
        any(SYS_symlinkat, "host files (rw mounts)"),
        any(SYS_linkat, "host files (rw mounts)"),
        any(SYS_unlinkat, "host files (rw mounts)"),
        any(SYS_renameat2, "host files (rw mounts)"),
        any(SYS_fchownat, "host files (rw mounts)"),
        any(452, "fchmodat2: host files (rw mounts)"),
        any(SYS_utimensat, "host files (rw mounts)"),
        any(SYS_ftruncate, "host files; memory files"),
        when(SYS_fgetxattr, vec![vec![Cond::NonNeg32(0)]], "host files' extended attributes: on a held descriptor, never a path"),
        when(SYS_flistxattr, vec![vec![Cond::NonNeg32(0)]], "host files' extended attributes: on a held descriptor"),
        when(SYS_fsetxattr, vec![vec![Cond::NonNeg32(0)]], "host files' extended attributes (rw mounts): on a held descriptor"),
        when(SYS_fremovexattr, vec![vec![Cond::NonNeg32(0)]], "host files' extended attributes (rw mounts): on a held descriptor"),
        any(SYS_fsync, "host files"),
        any(SYS_fstatfs, "host files"),
        any(SYS_fcntl, "descriptor flags, F_DUPFD_CLOEXEC; guests' locks on host files (F_OFD_SETLK/GETLK)"),
        when(
            SYS_flock,
            vec![vec![Cond::Eq32(1, 5)], vec![Cond::Eq32(1, 6)], vec![Cond::Eq32(1, 8)]],
            "guests' flocks on host files: LOCK_NB or LOCK_UN only, never a blocking host call",
        ),
        any(SYS_fallocate, "the memory file (punching freed pages)"),
        any(SYS_memfd_create, "memory files"),
        any(SYS_pipe2, "stub completion pipes; waking waits on host descriptors"),
        any(SYS_getrandom, "guest randomness (AT_RANDOM, /dev/urandom)"),
        any(SYS_mincore, "resident pages of the memory file (the memory limit)"),
        when(SYS_sendto, vec![vec![Cond::Eq(4, 0)]], "bytes out on broker-given sockets, never to an address of the Sentry's choosing"),
        any(SYS_recvfrom, "bytes in on broker-given sockets"),
        any(SYS_shutdown, "half-closing broker-given connections"),
        when(
            SYS_getsockopt,
            level_rules(&opt_levels),
            "a host connect's outcome (SO_ERROR); --network=host: reading the broker's sockets' options",
        ),
        when(
            SYS_setsockopt,
            set_rules,
            "--network=host: options of the broker's sockets, never SO_BINDTODEVICE/BINDTOIFINDEX, SO_MARK or filters",
        ),
        any(SYS_listen, "--network=host: a guest server on a socket the broker made and bound"),
        any(SYS_accept4, "--network=host: its connections (non-blocking, close-on-exec)"),
        any(SYS_getsockname, "--network=host: a broker-made socket's address"),
        any(SYS_getpeername, "--network=host: a broker-made socket's peer"),
        any(SYS_epoll_create1, "the host-events thread (broker-given sockets)"),
        any(SYS_epoll_ctl, "the host-events thread"),
        any(SYS_epoll_wait, "the host-events thread"),
        any(SYS_epoll_pwait, "the host-events thread"),
    ];
    if ptrace {
        v.extend([
            any(SYS_fork, "the first stub of an address space (it inherits this filter, then adds its own)"),
            any(SYS_ptrace, "driving stubs"),
            any(SYS_wait4, "ptrace stops of stubs"),
            any(SYS_kill, "stubs: SIGKILL; a new stub's SIGSTOP"),
            any(SYS_setsid, "a new stub"),
            any(SYS_getppid, "a new stub's parent check"),
            any(SYS_close_range, "a new stub's descriptors"),
            when(SYS_mmap, Vec::new(), "memory; injected into stubs (guest code is executable there)"),
            any(SYS_mprotect, "memory; injected into stubs"),
            when(SYS_seccomp, vec![vec![Cond::Eq(0, 1), Cond::Eq(1, 0)]], "a stub installing its own filter"),
            any(SYS_recvmsg, "the broker's answers (SCM_RIGHTS)"),
            any(SYS_sendmsg, "--network=host: a socket handed to the broker with its bind/connect/sendto (SCM_RIGHTS)"),
        ]);
    } else {
        v.extend([
            when(SYS_mmap, vec![vec![Cond::Clear(2, PROT_EXEC_BIT)]], "memory, never executable"),
            when(SYS_mprotect, vec![vec![Cond::Clear(2, PROT_EXEC_BIT)]], "memory, never executable"),
            any(SYS_sendmsg, "requests to the stub forker; --network=host: sockets handed to the broker (SCM_RIGHTS)"),
            any(SYS_recvmsg, "the stub forker's answers (pid and pidfd); the broker's (SCM_RIGHTS)"),
            any(SYS_pidfd_send_signal, "killing stubs"),
        ]);
    }
    v.sort_by_key(|a| a.nr);
    v
}

fn compile(filter: SeccompFilter) -> Result<BpfProgram, String> {
    filter.try_into().map_err(|e: seccompiler::BackendError| format!("seccomp filter: {e}"))
}

fn arch() -> TargetArch {
    TargetArch::x86_64
}

/// The three filters, in the order they are installed.
pub fn programs(platform: &str, cookie: u64) -> Result<Vec<BpfProgram>, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for a in allowlist(platform) {
        let compiled = a
            .rules
            .iter()
            .map(|conj| SeccompRule::new(conj.iter().map(|c| c.compile()).collect()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        rules.insert(a.nr, compiled);
    }
    // The answered calls pass this filter so that the second one's ENOSYS
    // is the answer (a TRAP here would win over it).
    for (nr, _, _) in ANSWERED {
        rules.insert(nr, Vec::new());
    }
    // Debug builds: RUNSC_LITE_SECCOMP_LOG logs (kernel audit) instead of
    // trapping, for finding out what a workload needs.
    let mismatch = if cfg!(debug_assertions) && std::env::var_os("RUNSC_LITE_SECCOMP_LOG").is_some() {
        SeccompAction::Log
    } else {
        SeccompAction::Trap
    };
    let main = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, arch()).map_err(|e| e.to_string())?;
    let clone3 = SeccompFilter::new(
        ANSWERED.iter().map(|&(nr, _, _)| (nr, Vec::new())).collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch(),
    )
    .map_err(|e| e.to_string())?;
    let lo = Cond::Eq(0, cookie).compile();
    let executioner = SeccompFilter::new(
        [(EXECUTIONER_NR, vec![SeccompRule::new(vec![lo]).map_err(|e| e.to_string())?])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::KillProcess,
        arch(),
    )
    .map_err(|e| e.to_string())?;
    Ok(vec![compile(main)?, compile(clone3)?, compile(executioner)?])
}

/// Install the filters on every thread of the process (TSYNC). The
/// allowlist goes last: it does not allow seccomp(2) itself (the other two
/// allow everything but their one target, and all three are evaluated on
/// every call whatever their order).
pub fn install(platform: &str, cookie: u64) -> Result<(), String> {
    for p in programs(platform, cookie)?.into_iter().rev() {
        seccompiler::apply_filter_all_threads(&p).map_err(|e| format!("installing the seccomp filter: {e}"))?;
    }
    Ok(())
}

/// `runsc-lite debug filters`: the allowlist, its rules and its size.
pub fn print(platform: &str) {
    let list = allowlist(platform);
    println!("Sentry seccomp allowlist, platform {platform}:");
    for a in &list {
        let name = match a.nr {
            452 => "fchmodat2",
            nr => usize::try_from(nr).ok().and_then(abi::sysno::name).unwrap_or("?"),
        };
        let rules = if a.rules.is_empty() {
            "any arguments".to_string()
        } else {
            a.rules
                .iter()
                .map(|conj| conj.iter().map(|c| c.describe()).collect::<Vec<_>>().join(" && "))
                .collect::<Vec<_>>()
                .join(" || ")
        };
        println!("{:>4}  {:<18} {:<60} {}", a.nr, name, rules, a.why);
    }
    println!("total: {} syscalls", list.len());
    for (nr, name, why) in ANSWERED {
        println!("{nr:>4}  {name:<18} {:<60} {why}", "answered ENOSYS, never run");
    }
    println!("anything else: SIGSYS, one report line, then SECCOMP_RET_KILL_PROCESS");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlists_are_small_and_refuse_what_they_must() {
        for p in ["systrap", "ptrace"] {
            let list = allowlist(p);
            let nrs: Vec<i64> = list.iter().map(|a| a.nr).collect();
            for forbidden in [libc::SYS_socket, libc::SYS_connect, libc::SYS_bind, libc::SYS_open, libc::SYS_execve] {
                assert!(!nrs.contains(&forbidden), "{p}: {forbidden} allowed");
            }
            let mut dedup = nrs.clone();
            dedup.dedup();
            assert_eq!(dedup.len(), nrs.len(), "{p}: a syscall listed twice");
            assert!(programs(p, 42).is_ok());
        }
        // 60 before networking; the broker-given sockets added sendto,
        // recvfrom, shutdown, getsockopt and four epoll calls;
        // --network=host added setsockopt, listen, accept4, getsockname
        // and getpeername (and sendmsg for ptrace); the guest's
        // membarrier added membarrier (barrier commands only); host files'
        // extended attributes added f{get,list,set,remove}xattr; guests'
        // locks on host files added flock; the file cache's fill from
        // host files added splice.
        assert!(allowlist("systrap").len() <= 80);
        assert!(allowlist("ptrace").len() <= 87);
        for p in ["systrap", "ptrace"] {
            let set = allowlist(p).into_iter().find(|a| a.nr == libc::SYS_setsockopt);
            let described = set.map(|a| a.rules.iter().map(|c| format!("{c:?}")).collect::<String>());
            assert!(
                described.is_some_and(|d| d.contains(&format!("Ne32(2, {})", libc::SO_BINDTODEVICE))),
                "{p}: setsockopt never SO_BINDTODEVICE"
            );
        }
        for p in ["systrap", "ptrace"] {
            let sendto = allowlist(p).into_iter().find(|a| a.nr == libc::SYS_sendto);
            assert!(sendto.is_some_and(|a| !a.rules.is_empty()), "{p}: sendto only without an address");
        }
        for p in ["systrap", "ptrace"] {
            for (nr, _, _) in ANSWERED {
                assert!(!allowlist(p).iter().any(|a| a.nr == nr), "{p}: {nr} both answered and allowed");
            }
        }
    }
}
