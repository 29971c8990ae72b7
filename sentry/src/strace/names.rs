//! The names of flag bits and enumerated values, and the pure formatters
//! that render one syscall argument with them as strace(1) does. Nothing
//! here reads guest memory, so all of it is testable without a Task.

use abi::flags::*;
use abi::signal::{SIGRTMAX, SIGRTMIN, SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK};
use std::fmt::Write as _;

/// (value, name) pairs. In a bit-set table a multi-bit flag comes before
/// the single flags it contains, so it is named whole (O_SYNC, not
/// O_DSYNC|0x100000).
pub type Names = &'static [(u64, &'static str)];

/// `names![A, B]` is `[(A as u64, "A"), (B as u64, "B")]`: the name is
/// spelled once, so it cannot drift from the constant.
macro_rules! names {
    ($($c:ident),* $(,)?) => {
        &[$(($c as u64, stringify!($c))),*]
    };
}

/// open(2) flags other than the access mode.
pub const OPEN_FLAGS: Names = names![
    O_CREAT,
    O_EXCL,
    O_NOCTTY,
    O_TRUNC,
    O_APPEND,
    O_NONBLOCK,
    O_SYNC,
    O_DSYNC,
    O_ASYNC,
    O_DIRECT,
    O_LARGEFILE,
    O_TMPFILE,
    O_DIRECTORY,
    O_NOFOLLOW,
    O_NOATIME,
    O_CLOEXEC,
    O_PATH,
];

const ACCESS_MODES: Names = names![O_RDONLY, O_WRONLY, O_RDWR, O_ACCMODE];

const FILE_TYPES: Names = names![S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO];

const PROT_FLAGS: Names = names![PROT_READ, PROT_WRITE, PROT_EXEC, PROT_SEM, PROT_GROWSDOWN, PROT_GROWSUP];

const MAP_TYPES: Names = names![MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE];

const MAP_FLAGS: Names = names![
    MAP_FIXED,
    MAP_ANONYMOUS,
    MAP_32BIT,
    MAP_GROWSDOWN,
    MAP_DENYWRITE,
    MAP_EXECUTABLE,
    MAP_LOCKED,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_NONBLOCK,
    MAP_STACK,
    MAP_HUGETLB,
    MAP_SYNC,
    MAP_FIXED_NOREPLACE,
    MAP_UNINITIALIZED,
];

pub const MREMAP_FLAGS: Names = names![MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP];
pub const MSYNC_FLAGS: Names = names![MS_ASYNC, MS_INVALIDATE, MS_SYNC];
pub const MLOCKALL_FLAGS: Names = names![MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT];

pub const MADVISE_ADVICE: Names = names![
    MADV_NORMAL,
    MADV_RANDOM,
    MADV_SEQUENTIAL,
    MADV_WILLNEED,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_REMOVE,
    MADV_DONTFORK,
    MADV_DOFORK,
    MADV_MERGEABLE,
    MADV_UNMERGEABLE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_DONTDUMP,
    MADV_DODUMP,
    MADV_WIPEONFORK,
    MADV_KEEPONFORK,
    MADV_COLD,
    MADV_PAGEOUT,
    MADV_POPULATE_READ,
    MADV_POPULATE_WRITE,
    MADV_DONTNEED_LOCKED,
    MADV_COLLAPSE,
    MADV_HWPOISON,
    MADV_SOFT_OFFLINE,
];

const CLONE_FLAGS: Names = names![
    CLONE_VM,
    CLONE_FS,
    CLONE_FILES,
    CLONE_SIGHAND,
    CLONE_PIDFD,
    CLONE_PTRACE,
    CLONE_VFORK,
    CLONE_PARENT,
    CLONE_THREAD,
    CLONE_NEWNS,
    CLONE_SYSVSEM,
    CLONE_SETTLS,
    CLONE_PARENT_SETTID,
    CLONE_CHILD_CLEARTID,
    CLONE_DETACHED,
    CLONE_UNTRACED,
    CLONE_CHILD_SETTID,
    CLONE_NEWCGROUP,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
    CLONE_IO,
];

pub const SIGPROCMASK_HOW: Names = names![SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK];

/// AT_REMOVEDIR and AT_EACCESS share a bit: these are the unlinkat/stat
/// meanings, FACCESSAT_FLAGS the faccessat2 ones.
pub const AT_FLAG_NAMES: Names =
    names![AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_NO_AUTOMOUNT, AT_EMPTY_PATH];
pub const FACCESSAT_FLAGS: Names = names![AT_SYMLINK_NOFOLLOW, AT_EACCESS, AT_EMPTY_PATH];

const ACCESS_BITS: Names = names![R_OK, W_OK, X_OK];

pub const SEEK_WHENCE: Names = names![SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE];

pub const FCNTL_CMDS: Names = names![
    F_DUPFD,
    F_GETFD,
    F_SETFD,
    F_GETFL,
    F_SETFL,
    F_GETLK,
    F_SETLK,
    F_SETLKW,
    F_SETOWN,
    F_GETOWN,
    F_SETSIG,
    F_GETSIG,
    F_SETOWN_EX,
    F_GETOWN_EX,
    F_OFD_GETLK,
    F_OFD_SETLK,
    F_OFD_SETLKW,
    F_SETLEASE,
    F_GETLEASE,
    F_NOTIFY,
    F_DUPFD_CLOEXEC,
    F_SETPIPE_SZ,
    F_GETPIPE_SZ,
    F_ADD_SEALS,
    F_GET_SEALS,
];

pub const FD_FLAGS: Names = names![FD_CLOEXEC];

const FUTEX_CMDS: Names = names![
    FUTEX_WAIT,
    FUTEX_WAKE,
    FUTEX_FD,
    FUTEX_REQUEUE,
    FUTEX_CMP_REQUEUE,
    FUTEX_WAKE_OP,
    FUTEX_LOCK_PI,
    FUTEX_UNLOCK_PI,
    FUTEX_TRYLOCK_PI,
    FUTEX_WAIT_BITSET,
    FUTEX_WAKE_BITSET,
    FUTEX_WAIT_REQUEUE_PI,
    FUTEX_CMP_REQUEUE_PI,
    FUTEX_LOCK_PI2,
];

/// wait4 spells bit 2 WUNTRACED, waitid WSTOPPED; the `__W*` flags have
/// no Rust-legal name of their own.
pub const WAIT4_OPTIONS: Names = &[
    (WNOHANG as u64, "WNOHANG"),
    (WUNTRACED as u64, "WUNTRACED"),
    (WEXITED as u64, "WEXITED"),
    (WCONTINUED as u64, "WCONTINUED"),
    (WNOWAIT as u64, "WNOWAIT"),
    (WNOTHREAD as u64, "__WNOTHREAD"),
    (WALL as u64, "__WALL"),
    (WCLONE as u64, "__WCLONE"),
];
pub const WAITID_OPTIONS: Names = &[
    (WNOHANG as u64, "WNOHANG"),
    (WSTOPPED as u64, "WSTOPPED"),
    (WEXITED as u64, "WEXITED"),
    (WCONTINUED as u64, "WCONTINUED"),
    (WNOWAIT as u64, "WNOWAIT"),
    (WNOTHREAD as u64, "__WNOTHREAD"),
    (WALL as u64, "__WALL"),
    (WCLONE as u64, "__WCLONE"),
];
pub const WAITID_TYPES: Names = names![P_ALL, P_PID, P_PGID, P_PIDFD];

pub const PRCTL_OPTIONS: Names = names![
    PR_SET_PDEATHSIG,
    PR_GET_PDEATHSIG,
    PR_GET_DUMPABLE,
    PR_SET_DUMPABLE,
    PR_GET_KEEPCAPS,
    PR_SET_KEEPCAPS,
    PR_SET_NAME,
    PR_GET_NAME,
    PR_GET_SECCOMP,
    PR_SET_SECCOMP,
    PR_CAPBSET_READ,
    PR_CAPBSET_DROP,
    PR_SET_TIMERSLACK,
    PR_GET_TIMERSLACK,
    PR_SET_MM,
    PR_SET_CHILD_SUBREAPER,
    PR_GET_CHILD_SUBREAPER,
    PR_SET_NO_NEW_PRIVS,
    PR_GET_NO_NEW_PRIVS,
    PR_GET_TID_ADDRESS,
    PR_SET_THP_DISABLE,
    PR_GET_THP_DISABLE,
    PR_CAP_AMBIENT,
    PR_SET_VMA,
];

pub const ARCH_PRCTL_CODES: Names =
    names![ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS, ARCH_GET_CPUID, ARCH_SET_CPUID];

pub const IOCTL_REQUESTS: Names = names![
    TCGETS, TCSETS, TCSETSW, TCSETSF, TCSBRK, TCXONC, TCFLSH, TIOCSCTTY, TIOCGPGRP, TIOCSPGRP, TIOCOUTQ, TIOCGWINSZ,
    TIOCSWINSZ, FIONREAD, FIONBIO, TIOCNOTTY, TIOCGSID, FIONCLEX, FIOCLEX, FIOASYNC, TIOCGPTN, TIOCSPTLCK,
];

pub const RLIMIT_RESOURCES: Names = names![
    RLIMIT_CPU,
    RLIMIT_FSIZE,
    RLIMIT_DATA,
    RLIMIT_STACK,
    RLIMIT_CORE,
    RLIMIT_RSS,
    RLIMIT_NPROC,
    RLIMIT_NOFILE,
    RLIMIT_MEMLOCK,
    RLIMIT_AS,
    RLIMIT_LOCKS,
    RLIMIT_SIGPENDING,
    RLIMIT_MSGQUEUE,
    RLIMIT_NICE,
    RLIMIT_RTPRIO,
    RLIMIT_RTTIME,
];

pub const CLOCK_IDS: Names = names![
    CLOCK_REALTIME,
    CLOCK_MONOTONIC,
    CLOCK_PROCESS_CPUTIME_ID,
    CLOCK_THREAD_CPUTIME_ID,
    CLOCK_MONOTONIC_RAW,
    CLOCK_REALTIME_COARSE,
    CLOCK_MONOTONIC_COARSE,
    CLOCK_BOOTTIME,
    CLOCK_REALTIME_ALARM,
    CLOCK_BOOTTIME_ALARM,
    CLOCK_TAI,
];

pub const TIMER_FLAGS: Names = names![TIMER_ABSTIME];
pub const GETRANDOM_FLAGS: Names = names![GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE];
pub const RENAME_FLAGS: Names = names![RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT];
pub const FLOCK_OPS: Names = names![LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN];
pub const EPOLL_CTL_OPS: Names = names![EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD];

/// The name `names` gives `value`, if any.
pub fn lookup(value: u64, names: Names) -> Option<&'static str> {
    names.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}

/// Appends `part` to an `A|B` list.
fn push_flag(out: &mut String, part: &str) {
    if !out.is_empty() {
        out.push('|');
    }
    out.push_str(part);
}

/// Appends the names of the flags set in `value`, then the bits no name
/// covers as one hex number.
fn push_bits(out: &mut String, value: u64, names: Names) {
    let mut rest = value;
    for &(bit, name) in names {
        if bit != 0 && rest & bit == bit {
            push_flag(out, name);
            rest &= !bit;
        }
    }
    if rest != 0 {
        push_flag(out, &format!("{rest:#x}"));
    }
}

/// `A|B|0x...`, or "0" when no bit is set.
pub fn bits(value: u64, names: Names) -> String {
    let mut out = String::new();
    push_bits(&mut out, value, names);
    if out.is_empty() {
        out.push('0');
    }
    out
}

/// The name of `value`, or `value` in decimal as the kernel's `int` sees it.
pub fn int_enum(value: u64, names: Names) -> String {
    let as_int = value as u32 as i32;
    match lookup(as_int as u32 as u64, names) {
        Some(n) => n.to_string(),
        None => as_int.to_string(),
    }
}

/// The name of `value`, or `value` in hex (request codes, option words).
pub fn hex_enum(value: u64, names: Names) -> String {
    match lookup(value, names) {
        Some(n) => n.to_string(),
        None => hex(value),
    }
}

/// C's `%#x`: "0" for zero, else 0x-prefixed hex.
pub fn hex(value: u64) -> String {
    if value == 0 {
        "0".into()
    } else {
        format!("{value:#x}")
    }
}

/// open(2) flags: the access mode first, then the other flags.
pub fn open_flags(value: u64) -> String {
    let flags = u64::from(value as u32);
    let mode = flags & u64::from(O_ACCMODE);
    let mut out = lookup(mode, ACCESS_MODES).unwrap_or("O_ACCMODE").to_string();
    push_bits(&mut out, flags & !u64::from(O_ACCMODE), OPEN_FLAGS);
    out
}

/// A permission mode in octal as strace prints it (`0644`, `000`).
pub fn mode(value: u64) -> String {
    format!("0{:02o}", value as u32)
}

/// An st_mode with its file type: `S_IFIFO|0644`.
pub fn file_mode(value: u64) -> String {
    let m = value as u32;
    let kind = m & S_IFMT;
    let perms = m & !S_IFMT;
    match lookup(u64::from(kind), FILE_TYPES) {
        Some(name) => format!("{name}|{}", mode(u64::from(perms))),
        None if kind == 0 => mode(u64::from(perms)),
        None => mode(u64::from(m)),
    }
}

/// mmap/mprotect protection; PROT_NONE for none.
pub fn mmap_prot(value: u64) -> String {
    let prot = u64::from(value as u32);
    if prot == 0 {
        return "PROT_NONE".into();
    }
    bits(prot, PROT_FLAGS)
}

/// mmap flags: the mapping type, then the other flags.
pub fn mmap_flags(value: u64) -> String {
    let flags = u64::from(value as u32);
    let kind = flags & u64::from(MAP_TYPE);
    let mut out = String::new();
    match lookup(kind, MAP_TYPES) {
        Some(name) => out.push_str(name),
        None if kind == 0 => {}
        None => out.push_str(&hex(kind)),
    }
    push_bits(&mut out, flags & !u64::from(MAP_TYPE), MAP_FLAGS);
    if out.is_empty() {
        out.push('0');
    }
    out
}

/// clone(2) flags; the low byte is the exit signal, named last
/// (`CLONE_VM|CLONE_VFORK|SIGCHLD`).
pub fn clone_flags(value: u64) -> String {
    let mut out = String::new();
    push_bits(&mut out, value & !CSIGNAL, CLONE_FLAGS);
    let exit_signal = value & CSIGNAL;
    if exit_signal != 0 {
        push_flag(&mut out, &signal(exit_signal));
    }
    if out.is_empty() {
        out.push('0');
    }
    out
}

/// A signal number: `SIGUSR1`, `SIGRTMIN+2`; 0 and out-of-range values
/// in decimal.
///
/// Real-time signals count from the kernel's SIGRTMIN (32), not glibc's
/// (34, after the two it keeps for itself), as strace does.
pub fn signal(value: u64) -> String {
    let sig = value as u32 as i32;
    match sig {
        1..=31 => abi::signal::name(sig).to_string(),
        SIGRTMIN => "SIGRTMIN".into(),
        n if n > SIGRTMIN && n <= SIGRTMAX => format!("SIGRTMIN+{}", n - SIGRTMIN),
        n => n.to_string(),
    }
}

/// access(2) mode: F_OK, or the R_OK/W_OK/X_OK bits.
pub fn access_mode(value: u64) -> String {
    let m = u64::from(value as u32);
    if m == u64::from(F_OK) {
        return "F_OK".into();
    }
    bits(m, ACCESS_BITS)
}

/// futex(2) op: the command with `_PRIVATE` appended as strace spells
/// it, then FUTEX_CLOCK_REALTIME.
pub fn futex_op(value: u64) -> String {
    let op = value as u32 as i32;
    let Some(cmd) = lookup((op & FUTEX_CMD_MASK) as u32 as u64, FUTEX_CMDS) else {
        return hex(u64::from(op as u32));
    };
    let mut out = cmd.to_string();
    if op & FUTEX_PRIVATE_FLAG != 0 {
        out.push_str("_PRIVATE");
    }
    if op & FUTEX_CLOCK_REALTIME != 0 {
        out.push_str("|FUTEX_CLOCK_REALTIME");
    }
    out
}

/// futex(2)'s argument `index` (2..=5: val, timeout, uaddr2, val3) as
/// `op` reads it, or None when `op` ignores it (strace leaves those out).
pub fn futex_arg(op: u64, index: usize, raw: u64) -> Option<String> {
    let cmd = (op as u32 as i32) & FUTEX_CMD_MASK;
    let used = match cmd {
        FUTEX_WAIT => index <= 3,
        FUTEX_WAKE | FUTEX_FD => index <= 2,
        FUTEX_WAIT_BITSET => index != 4,
        FUTEX_WAKE_BITSET => index == 2 || index == 5,
        FUTEX_REQUEUE => index <= 4,
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 => index == 3,
        FUTEX_UNLOCK_PI | FUTEX_TRYLOCK_PI => false,
        _ => true,
    };
    if !used {
        return None;
    }
    // The timeout slot carries a count for the requeue and wake-op commands.
    let timeout_is_count = matches!(cmd, FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_WAKE_OP | FUTEX_CMP_REQUEUE_PI);
    Some(match index {
        2 => (raw as u32).to_string(),
        3 if timeout_is_count => (raw as u32).to_string(),
        3 | 4 => pointer(raw),
        _ if matches!(cmd, FUTEX_WAIT_BITSET | FUTEX_WAKE_BITSET) => futex_bitset(raw),
        _ if cmd == FUTEX_WAKE_OP => hex(u64::from(raw as u32)),
        _ => (raw as u32).to_string(),
    })
}

/// A futex bitset (val3 of the *_BITSET ops).
pub fn futex_bitset(value: u64) -> String {
    if value as u32 == FUTEX_BITSET_MATCH_ANY {
        "FUTEX_BITSET_MATCH_ANY".into()
    } else {
        hex(u64::from(value as u32))
    }
}

/// A guest address: NULL or hex.
pub fn pointer(value: u64) -> String {
    if value == 0 {
        "NULL".into()
    } else {
        format!("{value:#x}")
    }
}

/// Bytes as a C string literal, escaped as strace escapes them; `...`
/// after the closing quote when the guest's data went on.
pub fn quote(bytes: &[u8], truncated: bool) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                // Short octal unless a digit follows, which would extend it.
                let next_is_octal = bytes.get(i + 1).is_some_and(|n| (b'0'..=b'7').contains(n));
                if next_is_octal {
                    let _ = write!(out, "\\{b:03o}");
                } else {
                    let _ = write!(out, "\\{b:o}");
                }
            }
        }
    }
    out.push('"');
    if truncated {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_put_the_access_mode_first() {
        assert_eq!(open_flags(0), "O_RDONLY");
        assert_eq!(open_flags(u64::from(O_RDONLY | O_CLOEXEC | O_DIRECTORY)), "O_RDONLY|O_DIRECTORY|O_CLOEXEC");
        assert_eq!(open_flags(0x241), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(open_flags(u64::from(O_RDWR | O_APPEND)), "O_RDWR|O_APPEND");
        assert_eq!(open_flags(3), "O_ACCMODE");
        // O_SYNC contains O_DSYNC's bit and is named whole.
        assert_eq!(open_flags(u64::from(O_WRONLY | O_SYNC)), "O_WRONLY|O_SYNC");
        assert_eq!(open_flags(u64::from(O_DSYNC)), "O_RDONLY|O_DSYNC");
        assert_eq!(open_flags(u64::from(O_RDWR | O_TMPFILE)), "O_RDWR|O_TMPFILE");
    }

    #[test]
    fn unknown_bits_are_shown_in_hex() {
        assert_eq!(open_flags(u64::from(O_CLOEXEC) | 0x4000_0000), "O_RDONLY|O_CLOEXEC|0x40000000");
        assert_eq!(mmap_prot(0x11), "PROT_READ|0x10");
        assert_eq!(bits(0x80, AT_FLAG_NAMES), "0x80");
        assert_eq!(bits(0, AT_FLAG_NAMES), "0");
        // Only the int the kernel reads counts.
        assert_eq!(open_flags(0xffff_ffff_0000_0000), "O_RDONLY");
    }

    #[test]
    fn mmap_prot_and_flags() {
        assert_eq!(mmap_prot(0), "PROT_NONE");
        assert_eq!(mmap_prot(3), "PROT_READ|PROT_WRITE");
        assert_eq!(mmap_prot(5), "PROT_READ|PROT_EXEC");
        assert_eq!(mmap_flags(0x22), "MAP_PRIVATE|MAP_ANONYMOUS");
        assert_eq!(mmap_flags(0x812), "MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE");
        assert_eq!(
            mmap_flags(u64::from(MAP_SHARED | MAP_NORESERVE | MAP_POPULATE)),
            "MAP_SHARED|MAP_NORESERVE|MAP_POPULATE"
        );
        assert_eq!(
            mmap_flags(u64::from(MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_GROWSDOWN)),
            "MAP_PRIVATE|MAP_ANONYMOUS|MAP_GROWSDOWN|MAP_STACK"
        );
        assert_eq!(mmap_flags(0), "0");
        assert_eq!(mmap_flags(0x5), "0x5");
        assert_eq!(int_enum(4, MADVISE_ADVICE), "MADV_DONTNEED");
        assert_eq!(int_enum(77, MADVISE_ADVICE), "77");
    }

    #[test]
    fn clone_flags_end_with_the_exit_signal() {
        assert_eq!(clone_flags(0x1200011), "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD");
        assert_eq!(clone_flags(CLONE_VM | CLONE_VFORK | 17), "CLONE_VM|CLONE_VFORK|SIGCHLD");
        assert_eq!(
            clone_flags(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD),
            "CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD"
        );
        assert_eq!(clone_flags(0), "0");
        assert_eq!(clone_flags((1 << 40) | 10), "0x10000000000|SIGUSR1");
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal(10), "SIGUSR1");
        assert_eq!(signal(9), "SIGKILL");
        assert_eq!(signal(31), "SIGSYS");
        assert_eq!(signal(32), "SIGRTMIN");
        assert_eq!(signal(34), "SIGRTMIN+2");
        assert_eq!(signal(64), "SIGRTMIN+32");
        assert_eq!(signal(0), "0");
        assert_eq!(signal(65), "65");
        assert_eq!(signal(u64::MAX), "-1");
        assert_eq!(int_enum(1, SIGPROCMASK_HOW), "SIG_UNBLOCK");
        assert_eq!(int_enum(7, SIGPROCMASK_HOW), "7");
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(mode(0o644), "0644");
        assert_eq!(mode(0o7), "007");
        assert_eq!(mode(0), "000");
        assert_eq!(mode(0o4755), "04755");
        assert_eq!(file_mode(u64::from(S_IFIFO | 0o644)), "S_IFIFO|0644");
        assert_eq!(file_mode(0o600), "0600");
    }

    #[test]
    fn at_access_fcntl_and_whence() {
        assert_eq!(bits(u64::from(AT_REMOVEDIR), AT_FLAG_NAMES), "AT_REMOVEDIR");
        assert_eq!(
            bits(u64::from(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), AT_FLAG_NAMES),
            "AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH"
        );
        assert_eq!(bits(u64::from(AT_EACCESS), FACCESSAT_FLAGS), "AT_EACCESS");
        assert_eq!(access_mode(0), "F_OK");
        assert_eq!(access_mode(6), "R_OK|W_OK");
        assert_eq!(int_enum(u64::from(F_DUPFD_CLOEXEC), FCNTL_CMDS), "F_DUPFD_CLOEXEC");
        assert_eq!(int_enum(3, FCNTL_CMDS), "F_GETFL");
        assert_eq!(int_enum(9999, FCNTL_CMDS), "9999");
        assert_eq!(bits(1, FD_FLAGS), "FD_CLOEXEC");
        assert_eq!(int_enum(2, SEEK_WHENCE), "SEEK_END");
        assert_eq!(int_enum(u64::MAX, SEEK_WHENCE), "-1");
    }

    #[test]
    fn futex_ops_and_wait_options() {
        assert_eq!(futex_op(128), "FUTEX_WAIT_PRIVATE");
        assert_eq!(futex_op(129), "FUTEX_WAKE_PRIVATE");
        assert_eq!(futex_op(1), "FUTEX_WAKE");
        assert_eq!(futex_op(9 | 128 | 256), "FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME");
        assert_eq!(futex_op(0x7f), "0x7f");
        let shown = |op: u64, a: [u64; 4]| -> Vec<String> {
            (2..=5).filter_map(|i| futex_arg(op, i, a.get(i - 2).copied().unwrap_or(0))).collect()
        };
        assert_eq!(shown(128, [2, 0, 0, 0]), ["2", "NULL"]);
        assert_eq!(shown(129, [1, 0, 0, 0]), ["1"]);
        assert_eq!(shown(9 | 128, [0, 0x1000, 0, 0xffff_ffff]), ["0", "0x1000", "FUTEX_BITSET_MATCH_ANY"]);
        assert_eq!(shown(4 | 128, [1, 0x7fff_ffff, 0x2000, 5]), ["1", "2147483647", "0x2000", "5"]);
        assert_eq!(futex_bitset(0xffff_ffff), "FUTEX_BITSET_MATCH_ANY");
        assert_eq!(bits(1, WAIT4_OPTIONS), "WNOHANG");
        assert_eq!(bits(u64::from(WNOHANG | WALL), WAIT4_OPTIONS), "WNOHANG|__WALL");
        assert_eq!(bits(u64::from(WEXITED | WSTOPPED), WAITID_OPTIONS), "WSTOPPED|WEXITED");
        assert_eq!(bits(0, WAIT4_OPTIONS), "0");
    }

    #[test]
    fn requests_and_options() {
        assert_eq!(hex_enum(0x5401, IOCTL_REQUESTS), "TCGETS");
        assert_eq!(hex_enum(0x5413, IOCTL_REQUESTS), "TIOCGWINSZ");
        assert_eq!(hex_enum(0x541b, IOCTL_REQUESTS), "FIONREAD");
        assert_eq!(hex_enum(0xdead, IOCTL_REQUESTS), "0xdead");
        assert_eq!(hex_enum(0x1002, ARCH_PRCTL_CODES), "ARCH_SET_FS");
        assert_eq!(int_enum(15, PRCTL_OPTIONS), "PR_SET_NAME");
        assert_eq!(int_enum(3, RLIMIT_RESOURCES), "RLIMIT_STACK");
        assert_eq!(int_enum(1, CLOCK_IDS), "CLOCK_MONOTONIC");
        assert_eq!(int_enum((-6i64) as u64, CLOCK_IDS), "-6");
        assert_eq!(hex(0), "0");
        assert_eq!(hex(4096), "0x1000");
    }

    #[test]
    fn strings_are_quoted_like_c() {
        assert_eq!(quote(b"/etc/passwd", false), "\"/etc/passwd\"");
        assert_eq!(quote(b"hi\n\t\"\\", false), "\"hi\\n\\t\\\"\\\\\"");
        assert_eq!(quote(b"\x1b[0m", false), "\"\\33[0m\"");
        assert_eq!(quote(b"\x001", false), "\"\\0001\"");
        assert_eq!(quote(b"\xff", true), "\"\\377\"...");
        assert_eq!(quote(b"", false), "\"\"");
    }
}
