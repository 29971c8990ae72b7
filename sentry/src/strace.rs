//! How `--strace` shows arguments, syscall by syscall, the way strace(1)
//! does: flags and commands by name, modes in octal, paths and written
//! data as quoted strings. A syscall without an entry here is shown
//! through the describers of its handler's typed arguments
//! (`table::FromArg`), so a new handler is traced before it is listed.

mod names;

pub use names::*;

use crate::task::Task;
use abi::flags::{
    AT_FDCWD, F_ADD_SEALS, F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL, F_GETLEASE, F_GETLK, F_GETOWN, F_GETOWN_EX,
    F_GETPIPE_SZ, F_GETSIG, F_GET_SEALS, F_NOTIFY, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_SETFD, F_SETFL,
    F_SETLEASE, F_SETLK, F_SETLKW, F_SETOWN, F_SETOWN_EX, F_SETPIPE_SZ, F_SETSIG, O_CREAT, O_TMPFILE,
};
use abi::sysno::*;
use abi::Errno;

/// Longest path shown; a longer one ends in `...`.
const PATH_BOUND: usize = 256;
/// Bytes shown of written data and of argv strings (strace's `-s 32`).
const DATA_BOUND: usize = 32;
/// argv elements shown before `...`.
const ARRAY_BOUND: usize = 32;

/// How one argument is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgFormat {
    /// A C int, in decimal.
    Int,
    /// A signed 64-bit value (offsets), in decimal.
    Long,
    /// An unsigned 64-bit value (sizes, counts), in decimal.
    ULong,
    Hex,
    /// A guest address: NULL or hex.
    Ptr,
    Fd,
    /// A directory fd of an *at() call: AT_FDCWD by name.
    DirFd,
    /// A NUL-terminated path.
    Path,
    /// Data the call reads from the guest; its length is argument N.
    InBuf(usize),
    /// A NULL-terminated array of strings (execve's argv).
    StrArray,
    /// A permission mode, in octal.
    Mode,
    /// An st_mode with its file type (mknod).
    FileMode,
    /// open's mode, shown only when the flags in argument N create a file
    /// (the kernel ignores it otherwise, and strace leaves it out).
    OpenMode(usize),
    OpenFlags,
    MmapProt,
    MmapFlags,
    CloneFlags,
    Signal,
    AccessMode,
    /// fcntl's third argument, as the command in argument 1 reads it.
    FcntlArg,
    FutexOp,
    /// A futex argument after the op, left out when the op ignores it.
    FutexArg,
    /// A bit set named by the table.
    Bits(Names),
    /// An int naming one value of the table; decimal otherwise.
    IntEnum(Names),
    /// An unsigned int (ioctl request, arch_prctl code) naming one value
    /// of the table; hex otherwise.
    HexEnum(Names),
}

use ArgFormat::*;

const AT_FLAGS_ARG: ArgFormat = Bits(AT_FLAG_NAMES);
const STATUS_FLAGS: ArgFormat = Bits(OPEN_FLAGS);
const RLIMIT: ArgFormat = IntEnum(RLIMIT_RESOURCES);
const CLOCK: ArgFormat = IntEnum(CLOCK_IDS);

/// The argument formats of syscall `nr`, or None to use its handler's.
pub fn formats(nr: usize) -> Option<&'static [ArgFormat]> {
    Some(match nr {
        READ => &[Fd, Ptr, ULong],
        WRITE => &[Fd, InBuf(2), ULong],
        OPEN => &[Path, OpenFlags, OpenMode(1)],
        OPENAT => &[DirFd, Path, OpenFlags, OpenMode(2)],
        CREAT => &[Path, Mode],
        CLOSE => &[Fd],
        STAT | LSTAT | STATFS => &[Path, Ptr],
        FSTAT | FSTATFS => &[Fd, Ptr],
        NEWFSTATAT => &[DirFd, Path, Ptr, AT_FLAGS_ARG],
        STATX => &[DirFd, Path, AT_FLAGS_ARG, Hex, Ptr],
        POLL => &[Ptr, ULong, Int],
        PPOLL => &[Ptr, ULong, Ptr, Ptr, ULong],
        SELECT => &[Int, Ptr, Ptr, Ptr, Ptr],
        PSELECT6 => &[Int, Ptr, Ptr, Ptr, Ptr, Ptr],
        LSEEK => &[Fd, Long, IntEnum(SEEK_WHENCE)],
        PREAD64 => &[Fd, Ptr, ULong, Long],
        PWRITE64 => &[Fd, InBuf(2), ULong, Long],
        READV | WRITEV => &[Fd, Ptr, Int],
        PREADV | PWRITEV => &[Fd, Ptr, Int, Long],
        GETDENTS | GETDENTS64 => &[Fd, Ptr, ULong],
        GETCWD => &[Ptr, ULong],
        CHDIR | CHROOT | RMDIR | UNLINK => &[Path],
        FCHDIR | FSYNC | FDATASYNC | SYNCFS | DUP => &[Fd],
        MKDIR | CHMOD => &[Path, Mode],
        MKDIRAT | FCHMODAT => &[DirFd, Path, Mode],
        FCHMOD => &[Fd, Mode],
        UMASK => &[Mode],
        MKNOD => &[Path, FileMode, Hex],
        MKNODAT => &[DirFd, Path, FileMode, Hex],
        UNLINKAT => &[DirFd, Path, AT_FLAGS_ARG],
        RENAME | LINK | SYMLINK => &[Path, Path],
        RENAMEAT => &[DirFd, Path, DirFd, Path],
        RENAMEAT2 => &[DirFd, Path, DirFd, Path, Bits(RENAME_FLAGS)],
        LINKAT => &[DirFd, Path, DirFd, Path, AT_FLAGS_ARG],
        SYMLINKAT => &[Path, DirFd, Path],
        READLINK => &[Path, Ptr, ULong],
        READLINKAT => &[DirFd, Path, Ptr, ULong],
        ACCESS => &[Path, AccessMode],
        FACCESSAT => &[DirFd, Path, AccessMode],
        FACCESSAT2 => &[DirFd, Path, AccessMode, Bits(FACCESSAT_FLAGS)],
        CHOWN | LCHOWN => &[Path, Int, Int],
        FCHOWN => &[Fd, Int, Int],
        FCHOWNAT => &[DirFd, Path, Int, Int, AT_FLAGS_ARG],
        TRUNCATE => &[Path, Long],
        FTRUNCATE => &[Fd, Long],
        UTIME | UTIMES => &[Path, Ptr],
        FUTIMESAT => &[DirFd, Path, Ptr],
        UTIMENSAT => &[DirFd, Path, Ptr, AT_FLAGS_ARG],
        // Extended attributes: the attribute's name reads as a path does.
        SETXATTR | LSETXATTR => &[Path, Path, InBuf(3), ULong, Int],
        FSETXATTR => &[Fd, Path, InBuf(3), ULong, Int],
        GETXATTR | LGETXATTR => &[Path, Path, Ptr, ULong],
        FGETXATTR => &[Fd, Path, Ptr, ULong],
        LISTXATTR | LLISTXATTR => &[Path, Ptr, ULong],
        FLISTXATTR => &[Fd, Ptr, ULong],
        REMOVEXATTR | LREMOVEXATTR => &[Path, Path],
        FREMOVEXATTR => &[Fd, Path],
        FALLOCATE => &[Fd, Int, Long, Long],
        SENDFILE => &[Fd, Fd, Ptr, ULong],
        FLOCK => &[Fd, Bits(FLOCK_OPS)],
        DUP2 => &[Fd, Fd],
        DUP3 => &[Fd, Fd, STATUS_FLAGS],
        PIPE => &[Ptr],
        PIPE2 => &[Ptr, STATUS_FLAGS],
        FCNTL => &[Fd, IntEnum(FCNTL_CMDS), FcntlArg],
        IOCTL => &[Fd, HexEnum(IOCTL_REQUESTS), Hex],
        EPOLL_CTL => &[Fd, IntEnum(EPOLL_CTL_OPS), Fd, Ptr],
        EPOLL_WAIT => &[Fd, Ptr, Int, Int],
        EPOLL_PWAIT => &[Fd, Ptr, Int, Int, Ptr, ULong],
        TIMERFD_CREATE => &[CLOCK, Hex],

        MMAP => &[Ptr, ULong, MmapProt, MmapFlags, Fd, Hex],
        MPROTECT => &[Ptr, ULong, MmapProt],
        MUNMAP | MLOCK | MUNLOCK => &[Ptr, ULong],
        MREMAP => &[Ptr, ULong, ULong, Bits(MREMAP_FLAGS), Ptr],
        MADVISE => &[Ptr, ULong, IntEnum(MADVISE_ADVICE)],
        MSYNC => &[Ptr, ULong, Bits(MSYNC_FLAGS)],
        MINCORE => &[Ptr, ULong, Ptr],
        MLOCKALL => &[Bits(MLOCKALL_FLAGS)],
        BRK => &[Ptr],

        CLONE => &[CloneFlags, Ptr, Ptr, Ptr, Hex],
        CLONE3 => &[Ptr, ULong],
        EXECVE => &[Path, StrArray, Ptr],
        EXECVEAT => &[DirFd, Path, StrArray, Ptr, AT_FLAGS_ARG],
        EXIT | EXIT_GROUP => &[Int],
        WAIT4 => &[Int, Ptr, Bits(WAIT4_OPTIONS), Ptr],
        WAITID => &[IntEnum(WAITID_TYPES), Int, Ptr, Bits(WAITID_OPTIONS), Ptr],
        ARCH_PRCTL => &[HexEnum(ARCH_PRCTL_CODES), Ptr],
        PRCTL => &[IntEnum(PRCTL_OPTIONS), Hex, Hex, Hex, Hex],
        SET_TID_ADDRESS => &[Ptr],
        SET_ROBUST_LIST => &[Ptr, ULong],
        GET_ROBUST_LIST => &[Int, Ptr, Ptr],
        RSEQ => &[Ptr, ULong, Hex, Hex],
        GETRLIMIT | SETRLIMIT => &[RLIMIT, Ptr],
        PRLIMIT64 => &[Int, RLIMIT, Ptr, Ptr],
        GETRANDOM => &[Ptr, ULong, Bits(GETRANDOM_FLAGS)],
        FUTEX => &[Ptr, FutexOp, FutexArg, FutexArg, FutexArg, FutexArg],
        SCHED_GETAFFINITY | SCHED_SETAFFINITY => &[Int, ULong, Ptr],

        CLOCK_GETTIME | CLOCK_GETRES => &[CLOCK, Ptr],
        CLOCK_NANOSLEEP => &[CLOCK, Bits(TIMER_FLAGS), Ptr, Ptr],

        RT_SIGACTION => &[Signal, Ptr, Ptr, ULong],
        RT_SIGPROCMASK => &[IntEnum(SIGPROCMASK_HOW), Ptr, Ptr, ULong],
        RT_SIGPENDING | RT_SIGSUSPEND => &[Ptr, ULong],
        RT_SIGTIMEDWAIT => &[Ptr, Ptr, Ptr, ULong],
        RT_SIGQUEUEINFO => &[Int, Signal, Ptr],
        RT_TGSIGQUEUEINFO => &[Int, Int, Signal, Ptr],
        SIGALTSTACK => &[Ptr, Ptr],
        KILL | TKILL => &[Int, Signal],
        TGKILL => &[Int, Int, Signal],
        _ => return None,
    })
}

/// The arguments of syscall `nr` as strace shows them, or None when the
/// syscall has no entry here.
pub fn describe_args(task: &Task, nr: u64, args: &[u64; 6]) -> Option<String> {
    let formats = formats(usize::try_from(nr).ok()?)?;
    let shown: Vec<String> = formats
        .iter()
        .zip(args.iter())
        .enumerate()
        .filter_map(|(index, (format, &raw))| render(task, *format, index, raw, args))
        .collect();
    Some(shown.join(", "))
}

/// Argument `index` (value `raw`) in `format`; None leaves it out.
fn render(task: &Task, format: ArgFormat, index: usize, raw: u64, args: &[u64; 6]) -> Option<String> {
    let arg = |i: usize| args.get(i).copied().unwrap_or(0);
    Some(match format {
        Int | Fd => (raw as i32).to_string(),
        Long => (raw as i64).to_string(),
        ULong => raw.to_string(),
        Hex => hex(raw),
        Ptr => pointer(raw),
        DirFd if raw as i32 == AT_FDCWD => "AT_FDCWD".into(),
        DirFd => (raw as i32).to_string(),
        Path => path(task, raw),
        InBuf(len_index) => in_buf(task, raw, arg(len_index)),
        StrArray => str_array(task, raw),
        Mode => mode(raw),
        FileMode => file_mode(raw),
        OpenMode(flags_index) => {
            let flags = arg(flags_index) as u32;
            if flags & O_CREAT == 0 && flags & O_TMPFILE != O_TMPFILE {
                return None;
            }
            mode(raw)
        }
        OpenFlags => open_flags(raw),
        MmapProt => mmap_prot(raw),
        MmapFlags => mmap_flags(raw),
        CloneFlags => clone_flags(raw),
        Signal => signal(raw),
        AccessMode => access_mode(raw),
        FcntlArg => return fcntl_arg(arg(1), raw),
        FutexOp => futex_op(raw),
        FutexArg => return futex_arg(arg(1), index, raw),
        Bits(names) => bits(u64::from(raw as u32), names),
        IntEnum(names) => int_enum(raw, names),
        HexEnum(names) => hex_enum(u64::from(raw as u32), names),
    })
}

/// fcntl's argument as `cmd` reads it; None for the commands that take none.
fn fcntl_arg(cmd: u64, raw: u64) -> Option<String> {
    Some(match cmd as u32 {
        F_GETFD | F_GETFL | F_GETOWN | F_GETSIG | F_GETLEASE | F_GETPIPE_SZ | F_GET_SEALS => return None,
        F_SETFD => bits(u64::from(raw as u32), FD_FLAGS),
        F_SETFL => open_flags(raw),
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW | F_GETOWN_EX | F_SETOWN_EX => {
            pointer(raw)
        }
        F_DUPFD | F_DUPFD_CLOEXEC | F_SETOWN | F_SETSIG | F_SETLEASE | F_NOTIFY | F_SETPIPE_SZ | F_ADD_SEALS => {
            (raw as i32).to_string()
        }
        _ => hex(raw),
    })
}

/// A path argument as a quoted string; NULL, or the address when the
/// guest's memory there is unreadable.
pub fn path(task: &Task, addr: u64) -> String {
    string(task, addr, PATH_BOUND)
}

/// The NUL-terminated string at `addr`, at most `bound` bytes of it.
fn string(task: &Task, addr: u64, bound: usize) -> String {
    if addr == 0 {
        return "NULL".into();
    }
    // One byte past the bound tells a string of exactly `bound` bytes from
    // a longer one.
    match task.mm().read_cstr(addr, bound.saturating_add(1)) {
        Ok(s) => quote(&s, false),
        Err(Errno::ENAMETOOLONG) => {
            let mut prefix = vec![0u8; bound];
            match task.mm().copy_in(addr, &mut prefix) {
                Ok(()) => quote(&prefix, true),
                Err(_) => pointer(addr),
            }
        }
        Err(_) => pointer(addr),
    }
}

/// The first bytes of a `len`-byte buffer the call will read.
fn in_buf(task: &Task, addr: u64, len: u64) -> String {
    let mut head = [0u8; DATA_BOUND];
    let n = usize::try_from(len).map_or(DATA_BOUND, |l| l.min(DATA_BOUND));
    let Some(shown) = head.get_mut(..n) else { return pointer(addr) };
    match task.mm().copy_in(addr, shown) {
        Ok(()) => quote(shown, len > DATA_BOUND as u64),
        Err(_) => pointer(addr),
    }
}

/// `["ls", "-l"]` from a NULL-terminated array of string pointers.
fn str_array(task: &Task, addr: u64) -> String {
    if addr == 0 {
        return "NULL".into();
    }
    let mut out = String::from("[");
    for i in 0..=ARRAY_BOUND {
        let Some(slot) = (i as u64).checked_mul(8).and_then(|off| addr.checked_add(off)) else {
            return pointer(addr);
        };
        let Ok(element) = task.mm().read_obj::<u64>(slot) else {
            return pointer(addr);
        };
        if element == 0 {
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        if i == ARRAY_BOUND {
            out.push_str("...");
            break;
        }
        out.push_str(&string(task, element, DATA_BOUND));
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_fits_six_registers_and_names_a_syscall() {
        for nr in 0..SYSCALL_COUNT {
            if let Some(f) = formats(nr) {
                assert!(f.len() <= 6, "syscall {nr}: {} formats", f.len());
                assert!(abi::sysno::name(nr).is_some(), "syscall {nr} has formats but no name");
            }
        }
    }

    #[test]
    fn fcntl_arg_follows_the_command() {
        assert_eq!(fcntl_arg(u64::from(F_GETFD), 0), None);
        assert_eq!(fcntl_arg(u64::from(F_SETFD), 1).as_deref(), Some("FD_CLOEXEC"));
        assert_eq!(fcntl_arg(u64::from(F_SETFL), 0o4002).as_deref(), Some("O_RDWR|O_NONBLOCK"));
        assert_eq!(fcntl_arg(u64::from(F_DUPFD_CLOEXEC), 10).as_deref(), Some("10"));
        assert_eq!(fcntl_arg(u64::from(F_SETLK), 0x1000).as_deref(), Some("0x1000"));
        assert_eq!(fcntl_arg(4242, 7).as_deref(), Some("0x7"));
    }
}
