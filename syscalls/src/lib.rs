//! The Linux amd64 syscall table. One file per area; `build_table`
//! registers every handler with its support level. Numbers not registered
//! stay `Unimplemented` and return ENOSYS (logged once per name).

pub mod advice;
pub mod attr;
pub mod clockset;
pub mod copy_range;
pub mod event;
pub mod fd;
pub mod fown;
pub mod fs;
pub mod inotify;
pub mod locks;
pub mod memfd;
pub mod mm;
pub mod names;
pub mod openat2;
pub mod pidfd;
pub mod process;
pub mod rseq;
pub mod rw;
pub mod rw2;
pub mod sched;
mod scratch;
pub mod signal;
pub mod socket;
pub mod socket_ioctl;
pub mod spawn;
pub mod splice;
pub mod stat;
pub mod statx;
pub mod syslog;
pub mod time;
pub mod tty;
pub mod xattr;

use abi::sysno::*;
use sentry::{Support, SyscallTable};

use Support::{Full, Partial};

/// The one way reads and receives differ from Linux's (`rw::do_read`,
/// `socket::recv_iovecs`).
const PARTLY_WRITABLE_BUFFER: &str = "a pipe, FIFO, terminal or stream socket read into a buffer writable only in part returns \
     the bytes that fit (Linux: EFAULT, having written them, the bytes kept); wholly unwritable: EFAULT, bytes kept, as Linux";

/// The whole table.
pub fn build_table() -> SyscallTable {
    let mut t = SyscallTable::new();

    // Files.
    t.register(READ, Partial(PARTLY_WRITABLE_BUFFER), rw::read);
    t.register(WRITE, Full, rw::write);
    t.register(OPEN, Full, fs::open);
    t.register(OPENAT, Full, fs::openat);
    t.register(CREAT, Full, fs::creat);
    t.register(CLOSE, Full, fs::close);
    t.register(STAT, Full, fs::stat);
    t.register(LSTAT, Full, fs::lstat);
    t.register(FSTAT, Full, fs::fstat);
    t.register(NEWFSTATAT, Full, fs::newfstatat);
    t.register(STATFS, Full, fs::statfs);
    t.register(FSTATFS, Full, fs::fstatfs);
    t.register(LSEEK, Full, rw::lseek);
    t.register(PREAD64, Full, rw::pread64);
    t.register(PWRITE64, Full, rw::pwrite64);
    t.register(READV, Partial(PARTLY_WRITABLE_BUFFER), rw::readv);
    t.register(WRITEV, Full, rw::writev);
    t.register(PREADV, Full, rw::preadv);
    t.register(PWRITEV, Full, rw::pwritev);
    t.register(GETDENTS, Full, fs::getdents);
    t.register(GETDENTS64, Full, fs::getdents64);
    t.register(GETCWD, Full, fs::getcwd);
    t.register(CHDIR, Full, fs::chdir);
    t.register(FCHDIR, Full, fs::fchdir);
    t.register(CHROOT, Full, fs::chroot);
    t.register(MKDIR, Full, names::mkdir);
    t.register(MKDIRAT, Full, names::mkdirat);
    t.register(MKNOD, Partial("regular files, fifos and sockets; device nodes per filesystem"), names::mknod);
    t.register(MKNODAT, Partial("regular files, fifos and sockets; device nodes per filesystem"), names::mknodat);
    t.register(RMDIR, Full, names::rmdir);
    t.register(UNLINK, Full, names::unlink);
    t.register(UNLINKAT, Full, names::unlinkat);
    t.register(RENAME, Full, names::rename);
    t.register(RENAMEAT, Full, names::renameat);
    t.register(RENAMEAT2, Partial("RENAME_EXCHANGE and RENAME_WHITEOUT per filesystem"), names::renameat2);
    t.register(LINK, Full, names::link);
    t.register(LINKAT, Full, names::linkat);
    t.register(SYMLINK, Full, names::symlink);
    t.register(SYMLINKAT, Full, names::symlinkat);
    t.register(READLINK, Full, names::readlink);
    t.register(READLINKAT, Full, names::readlinkat);
    t.register(ACCESS, Full, attr::access);
    t.register(FACCESSAT, Full, attr::faccessat);
    t.register(CHMOD, Full, attr::chmod);
    t.register(FCHMOD, Full, attr::fchmod);
    t.register(FCHMODAT, Full, attr::fchmodat);
    t.register(CHOWN, Full, attr::chown);
    t.register(LCHOWN, Full, attr::lchown);
    t.register(FCHOWN, Full, attr::fchown);
    t.register(FCHOWNAT, Full, attr::fchownat);
    t.register(TRUNCATE, Full, attr::truncate);
    t.register(FTRUNCATE, Full, attr::ftruncate);
    t.register(FSYNC, Full, attr::fsync);
    t.register(FDATASYNC, Full, attr::fsync);
    t.register(SYNC, Full, attr::sync);
    t.register(SYNCFS, Full, attr::syncfs);
    t.register(UTIMENSAT, Full, attr::utimensat);
    t.register(UTIMES, Full, attr::utimes);
    t.register(FUTIMESAT, Full, attr::futimesat);
    t.register(UTIME, Full, attr::utime);
    t.register(UMASK, Full, attr::umask);
    t.register(FADVISE64, Partial("advice is accepted and ignored"), attr::fadvise64);
    t.register(FALLOCATE, Partial("mode 0 only (extends the file)"), attr::fallocate);
    t.register(SENDFILE, Full, rw::sendfile);
    // File locks: syscalls/src/locks.rs over vfs/src/locks.rs.
    t.register(FLOCK, Full, locks::flock);

    // Newer file calls (issue 13): served although they post-date the
    // 4.4 ABI, as gVisor does, because modern userlands call them first.
    t.register(
        STATX,
        Partial(
            "STATX_BASIC_STATS and STATX_MNT_ID; no birth time, attributes or direct-I/O alignment (the mask says so)",
        ),
        statx::statx,
    );
    t.register(
        COPY_FILE_RANGE,
        Partial("a read/write copy in the Sentry (no extent sharing); EXDEV between two filesystems"),
        copy_range::copy_file_range,
    );
    t.register(
        SPLICE,
        Partial(
            "copies through read/write (no page moves; SPLICE_F_MOVE/MORE/GIFT ignored); a second reader racing a \
             splice out of the same pipe may read the bytes being moved",
        ),
        splice::splice,
    );
    t.register(TEE, Full, splice::tee);
    t.register(VMSPLICE, Partial("copies (SPLICE_F_GIFT gives no pages)"), splice::vmsplice);
    t.register(
        PREADV2,
        Partial("RWF_NOWAIT never refuses a file (Linux's EOPNOTSUPP for files without NOWAIT); RWF_ATOMIC and RWF_DONTCACHE are EOPNOTSUPP"),
        rw2::preadv2,
    );
    t.register(
        PWRITEV2,
        Partial("RWF_NOWAIT never refuses a file; RWF_ATOMIC and RWF_DONTCACHE are EOPNOTSUPP; RWF_NOAPPEND does not undo O_APPEND"),
        rw2::pwritev2,
    );

    // RESOLVE_CACHED walks are ordinary walks: Linux may, not must, say EAGAIN.
    t.register(OPENAT2, Full, openat2::openat2);
    t.register(
        MEMFD_CREATE,
        Partial(
            "MFD_HUGETLB is EINVAL (no huge pages); stores made after F_SEAL_FUTURE_WRITE through a shared \
             mapping that was writable before it stay in the mapping's pages, unseen by read(2)",
        ),
        memfd::memfd_create,
    );

    // Descriptors.
    t.register(DUP, Full, fd::dup);
    t.register(DUP2, Full, fd::dup2);
    t.register(DUP3, Full, fd::dup3);
    t.register(
        FCNTL,
        Partial(
            "record and OFD locks served (files and directories of bind mounts locked on the host too); leases broken by the sandbox's \
             opens only (SIGIO, not the F_SETSIG signal), not by host processes; F_NOTIFY (dnotify) for changes made inside the \
             sandbox; F_SETOWN/F_SETSIG kept and used by dnotify, but no SIGIO for O_ASYNC readiness; F_SETPIPE_SZ on \
             sandbox pipes and FIFOs only (host FIFOs EBADF); seals on memfds only",
        ),
        fd::fcntl,
    );
    t.register(
        IOCTL,
        Partial(
            "FIOCLEX/FIONCLEX/FIONBIO and what each file serves: the sandbox's ptys (vfs/src/tty: termios, window size, \
             sessions, TIOCGPTN/TIOCSPTLCK/TIOCGPTPEER, TIOCPKT without control bytes, no TCGETS2/TIOCSTI), \
             terminal ioctls on host ttys",
        ),
        fd::ioctl,
    );
    t.register(PIPE, Full, fd::pipe);
    t.register(PIPE2, Full, fd::pipe2);
    t.register(POLL, Full, fd::poll);
    t.register(PPOLL, Full, fd::ppoll);
    t.register(SELECT, Full, fd::select);
    t.register(PSELECT6, Full, fd::pselect6);

    // Event files.
    t.register(EVENTFD, Full, event::eventfd);
    t.register(EVENTFD2, Full, event::eventfd2);
    t.register(
        TIMERFD_CREATE,
        Partial("CLOCK_*_ALARM clocks are EINVAL; TFD_TIMER_CANCEL_ON_SET is accepted, never fires"),
        event::timerfd_create,
    );
    t.register(TIMERFD_SETTIME, Full, event::timerfd_settime);
    t.register(TIMERFD_GETTIME, Full, event::timerfd_gettime);
    t.register(EPOLL_CREATE, Full, event::epoll_create);
    t.register(EPOLL_CREATE1, Full, event::epoll_create1);
    t.register(
        EPOLL_CTL,
        Partial("EPOLLEXCLUSIVE (Linux 4.5) is accepted without its wake-one effect; EPOLLWAKEUP is ignored"),
        event::epoll_ctl,
    );
    t.register(EPOLL_WAIT, Full, event::epoll_wait);
    t.register(EPOLL_PWAIT, Full, event::epoll_pwait);

    // Memory.
    t.register(
        MMAP,
        Partial("a MAP_GROWSDOWN stack grows on the guest's own faults below it, not on a syscall's access there"),
        mm::mmap,
    );
    t.register(MUNMAP, Full, mm::munmap);
    t.register(MPROTECT, Full, mm::mprotect);
    t.register(
        MREMAP,
        Partial(
            "old_size 0 (duplicating a shared mapping) is EINVAL; a grown MAP_SHARED file mapping grows with anonymous \
             memory; MREMAP_DONTUNMAP only on private anonymous memory (EINVAL otherwise)",
        ),
        mm::mremap,
    );
    t.register(BRK, Full, mm::brk);
    t.register(MSYNC, Full, mm::msync);

    // Processes and identity.
    t.register(GETPID, Full, process::getpid);
    t.register(GETTID, Full, process::gettid);
    t.register(GETPPID, Full, process::getppid);
    t.register(GETUID, Full, process::getuid);
    t.register(GETEUID, Full, process::geteuid);
    t.register(GETGID, Full, process::getgid);
    t.register(GETEGID, Full, process::getegid);
    t.register(GETRESUID, Full, process::getresuid);
    t.register(GETRESGID, Full, process::getresgid);
    t.register(GETGROUPS, Full, process::getgroups);
    t.register(SETGROUPS, Full, process::setgroups);
    t.register(SETUID, Full, process::setuid);
    t.register(SETGID, Full, process::setgid);
    t.register(SETREUID, Full, process::setreuid);
    t.register(SETREGID, Full, process::setregid);
    t.register(SETRESUID, Full, process::setresuid);
    t.register(SETRESGID, Full, process::setresgid);
    t.register(SETFSUID, Full, process::setfsuid);
    t.register(SETFSGID, Full, process::setfsgid);
    t.register(GETPGID, Full, process::getpgid);
    t.register(GETPGRP, Full, process::getpgrp);
    t.register(GETSID, Full, process::getsid);
    t.register(SETPGID, Full, process::setpgid);
    t.register(SETSID, Full, process::setsid);
    t.register(EXIT, Full, process::exit);
    t.register(EXIT_GROUP, Full, process::exit_group);
    t.register(EXECVE, Full, process::execve);
    t.register(UNAME, Full, process::uname);
    t.register(SETHOSTNAME, Full, process::sethostname);
    t.register(SETDOMAINNAME, Full, process::setdomainname);
    t.register(GETRLIMIT, Full, process::getrlimit);
    const RLIMITS: &str = "enforced: NOFILE, NPROC, AS, FSIZE, SIGPENDING; the others are recorded";
    t.register(SETRLIMIT, Partial(RLIMITS), process::setrlimit);
    t.register(PRLIMIT64, Partial(RLIMITS), process::prlimit64);
    t.register(ARCH_PRCTL, Partial("ARCH_SET/GET_FS and _GS; no CPUID faulting"), process::arch_prctl);
    t.register(SET_TID_ADDRESS, Full, process::set_tid_address);
    t.register(SET_ROBUST_LIST, Full, process::set_robust_list);
    t.register(GET_ROBUST_LIST, Full, process::get_robust_list);
    t.register(
        PRCTL,
        Partial(
            "PR_SET/GET_NAME; PDEATHSIG, DUMPABLE, NO_NEW_PRIVS and KEEPCAPS are checked, not kept (GET answers the \
             default, no death signal is sent); CAPBSET_READ reports every capability; other options EINVAL",
        ),
        process::prctl,
    );
    t.register(
        SYSINFO,
        Partial("RAM is the memory limit and what is left of it; without a limit nominal (2 GiB, 1 GiB free)"),
        process::sysinfo,
    );
    t.register(GETRANDOM, Full, process::getrandom);
    t.register(SCHED_YIELD, Full, process::sched_yield);
    t.register(SCHED_GETAFFINITY, Full, sched::sched_getaffinity);
    t.register(
        SCHED_SETAFFINITY,
        Partial("kept per thread, inherited and reported back; the host thread is not pinned"),
        sched::sched_setaffinity,
    );
    t.register(GETCPU, Partial("always the first CPU of the sandbox's affinity mask, node 0"), process::getcpu);
    t.register(PERSONALITY, Partial("PER_LINUX only"), process::personality);
    t.register(CAPGET, Partial("root has every capability, others none"), process::capget);
    t.register(CAPSET, Partial("checked, not kept: capabilities stay as capget reports them"), process::capset);
    t.register(
        GETRUSAGE,
        Partial("user and system time as the Sentry accounts them; maxrss is the mapped size; the other fields are 0"),
        process::getrusage,
    );
    t.register(TIMES, Full, process::times);

    // Time.
    t.register(CLOCK_GETTIME, Full, time::clock_gettime);
    t.register(CLOCK_GETRES, Full, time::clock_getres);
    t.register(GETTIMEOFDAY, Full, time::gettimeofday);
    t.register(TIME, Full, time::time);
    t.register(NANOSLEEP, Full, time::nanosleep);
    t.register(CLOCK_NANOSLEEP, Full, time::clock_nanosleep);
    t.register(SETITIMER, Full, time::setitimer);
    t.register(GETITIMER, Full, time::getitimer);
    t.register(ALARM, Full, time::alarm);

    // Signals.
    t.register(RT_SIGACTION, Full, signal::rt_sigaction);
    t.register(
        RT_SIGRETURN,
        Partial("FXSAVE state only: AVX upper halves are not saved across handlers"),
        signal::rt_sigreturn,
    );
    t.register(RT_SIGSUSPEND, Full, signal::rt_sigsuspend);
    t.register(PAUSE, Full, signal::pause);
    t.register(RT_SIGTIMEDWAIT, Full, signal::rt_sigtimedwait);
    t.register(RT_SIGPROCMASK, Full, signal::rt_sigprocmask);
    t.register(RT_SIGPENDING, Full, signal::rt_sigpending);
    t.register(RT_SIGQUEUEINFO, Full, signal::rt_sigqueueinfo);
    t.register(RT_TGSIGQUEUEINFO, Full, signal::rt_tgsigqueueinfo);
    t.register(SIGNALFD, Full, signal::signalfd);
    t.register(SIGNALFD4, Full, signal::signalfd4);
    t.register(SIGALTSTACK, Full, signal::sigaltstack);
    t.register(KILL, Full, signal::kill);
    t.register(TGKILL, Full, signal::tgkill);
    t.register(TKILL, Full, signal::tkill);
    t.register(WAIT4, Full, signal::wait4);
    t.register(WAITID, Full, signal::waitid);
    t.register(
        CLONE,
        Partial("CLONE_VM without CLONE_THREAD copies memory instead of sharing it; CLONE_NEW* is EPERM"),
        process::clone,
    );
    t.register(FORK, Full, process::fork);
    t.register(VFORK, Partial("the address space is copied; the parent waits for exec or exit"), process::vfork);
    t.register(
        FUTEX,
        Partial("PI futexes hand the lock over but never boost the owner (no real priorities); FUTEX_FD is ENOSYS"),
        signal::futex,
    );

    // Scheduling and time-setting (issue 13): policies, priorities, nice
    // values and I/O priorities are kept per thread and reported back;
    // none reaches the host scheduler.
    const NOT_APPLIED: &str = "kept and reported per thread, never applied to the host scheduler";
    t.register(GETPRIORITY, Full, sched::getpriority);
    t.register(SETPRIORITY, Partial(NOT_APPLIED), sched::setpriority);
    t.register(SCHED_GETSCHEDULER, Full, sched::sched_getscheduler);
    t.register(SCHED_GETPARAM, Full, sched::sched_getparam);
    t.register(SCHED_GETATTR, Partial("utilization clamps read as 0..1024"), sched::sched_getattr);
    t.register(SCHED_SETSCHEDULER, Partial(NOT_APPLIED), sched::sched_setscheduler);
    t.register(SCHED_SETPARAM, Partial(NOT_APPLIED), sched::sched_setparam);
    t.register(
        SCHED_SETATTR,
        Partial("kept, never applied to the host scheduler; SCHED_DEADLINE is EBUSY; utilization clamps ignored"),
        sched::sched_setattr,
    );
    t.register(SCHED_RR_GET_INTERVAL, Partial("SCHED_RR: 100 ms; other policies 0"), sched::sched_rr_get_interval);
    t.register(SCHED_GET_PRIORITY_MAX, Full, sched::sched_get_priority_max);
    t.register(SCHED_GET_PRIORITY_MIN, Full, sched::sched_get_priority_min);
    t.register(IOPRIO_GET, Full, sched::ioprio_get);
    t.register(IOPRIO_SET, Partial(NOT_APPLIED), sched::ioprio_set);
    t.register(
        CLOCK_SETTIME,
        Partial("EPERM after the argument checks, as without CAP_SYS_TIME"),
        clockset::clock_settime,
    );
    t.register(
        SETTIMEOFDAY,
        Partial("EPERM after the argument checks, as without CAP_SYS_TIME"),
        clockset::settimeofday,
    );
    t.register(ADJTIMEX, Partial("read-only (an unsynchronised clock); any change is EPERM"), clockset::adjtimex);
    t.register(
        CLOCK_ADJTIME,
        Partial("CLOCK_REALTIME read-only as adjtimex; other clocks EOPNOTSUPP"),
        clockset::clock_adjtime,
    );

    // Memory advice, residency and locks (issue 13).
    t.register(
        MADVISE,
        Partial(
            "DONTNEED on a private file mapping gives back the file's bytes as they were when mapped (from the \
             file cache; files it does not cache keep the written pages); REMOVE on a shared file mapping writes \
             zeros to the file instead of punching a hole; paging hints are accepted and ignored; \
             HWPOISON/SOFT_OFFLINE are EPERM",
        ),
        advice::madvise,
    );
    t.register(MINCORE, Full, advice::mincore);
    const LOCKS: &str = "bookkeeping only (VmLck, RLIMIT_MEMLOCK): guest memory is never swapped differently";
    t.register(MLOCK, Partial(LOCKS), advice::mlock);
    t.register(MLOCK2, Partial(LOCKS), advice::mlock2);
    t.register(MUNLOCK, Full, advice::munlock);
    t.register(MLOCKALL, Partial(LOCKS), advice::mlockall);
    t.register(MUNLOCKALL, Full, advice::munlockall);

    // Sockets: the sandbox's own netstack; each family's gaps are in
    // netstack's module docs.
    t.register(
        SOCKET,
        Partial(
            "AF_UNIX, AF_INET, AF_INET6, AF_NETLINK (route) as the families serve them; inet sockets are the \
             Sentry's own (--network=none|sandbox) or host sockets the egress broker makes (--network=host); \
             no SOCK_RAW or AF_PACKET (EPERM)",
        ),
        socket::socket,
    );
    t.register(SOCKETPAIR, Full, socket::socketpair);
    t.register(BIND, Full, socket::bind);
    t.register(LISTEN, Full, socket::listen);
    t.register(ACCEPT, Full, socket::accept);
    t.register(ACCEPT4, Full, socket::accept4);
    t.register(
        CONNECT,
        Partial(
            "loopback inside the Sentry; other addresses through the egress broker's allowlist with \
             --network=sandbox|host (refused: ECONNREFUSED at once), ENETUNREACH with --network=none",
        ),
        socket::connect,
    );
    t.register(GETSOCKNAME, Full, socket::getsockname);
    t.register(GETPEERNAME, Full, socket::getpeername);
    t.register(SHUTDOWN, Full, socket::shutdown);
    t.register(
        SETSOCKOPT,
        Partial(
            "the options each family lists, others ENOPROTOOPT; TCP_NODELAY also reaches the host socket of a \
             connection out of the sandbox; --network=host: socket/TCP/IP/IPv6 options but binding to a device, \
             marks and filters",
        ),
        socket::setsockopt,
    );
    t.register(GETSOCKOPT, Partial("the options each family lists; others ENOPROTOOPT"), socket::getsockopt);
    t.register(
        SENDTO,
        Partial(
            "UDP to outside addresses relayed by the egress broker, one flow per destination (no ICMP errors \
             from outside reach the guest); ICMP echo and UDP-Lite never leave the sandbox (ENETUNREACH)",
        ),
        socket::sendto,
    );
    t.register(RECVFROM, Partial(PARTLY_WRITABLE_BUFFER), socket::recvfrom);
    t.register(
        SENDMSG,
        Partial("as sendto; with --network=host, control messages (IP_PKTINFO, IP_TOS) on send are dropped"),
        socket::sendmsg,
    );
    t.register(RECVMSG, Partial(PARTLY_WRITABLE_BUFFER), socket::recvmsg);
    t.register(SENDMMSG, Full, socket::sendmmsg);
    t.register(RECVMMSG, Partial(PARTLY_WRITABLE_BUFFER), socket::recvmmsg);

    // inotify (issue 13).
    t.register(INOTIFY_INIT, Full, inotify::inotify_init);
    t.register(INOTIFY_INIT1, Full, inotify::inotify_init1);
    t.register(
        INOTIFY_ADD_WATCH,
        Partial(
            "events for changes made inside the sandbox only (a host process writing under a bind mount \
             generates none); no IN_UNMOUNT (the sandbox cannot unmount); 8192 watches and 128 instances \
             per sandbox rather than per user",
        ),
        inotify::inotify_add_watch,
    );
    t.register(INOTIFY_RM_WATCH, Full, inotify::inotify_rm_watch);

    // Newer process calls (issue 13): what glibc 2.36, Python and Rust's
    // std try before their fallbacks.
    t.register(
        CLONE3,
        Partial(
            "as clone; set_tid can only fail (EEXIST for a pid in use, EPERM: choosing a pid is not served); \
             CLONE_INTO_CGROUP is EBADF (no cgroup filesystem); CLONE_PIDFD with CLONE_THREAD is EINVAL",
        ),
        spawn::clone3,
    );
    t.register(
        CLOSE_RANGE,
        Partial("CLOSE_RANGE_UNSHARE in one thread gives its whole process a table of its own"),
        spawn::close_range,
    );
    t.register(EXECVEAT, Full, spawn::execveat);
    t.register(FACCESSAT2, Full, attr::faccessat2);
    t.register(EPOLL_PWAIT2, Partial("EPOLLEXCLUSIVE and EPOLLWAKEUP are accepted and ignored"), event::epoll_pwait2);
    t.register(PIDFD_OPEN, Partial("PIDFD_THREAD (a pidfd for one thread) is EINVAL"), pidfd::pidfd_open);
    t.register(PIDFD_SEND_SIGNAL, Full, pidfd::pidfd_send_signal);
    t.register(PIDFD_GETFD, Full, pidfd::pidfd_getfd);
    t.register(
        RSEQ,
        Partial(
            "cpu_id is the one virtual CPU getcpu reports, for every thread; a critical section is aborted \
             when the Sentry delivers a signal or interrupts the thread, not when the host preempts or \
             migrates it, so per-CPU data guarded by rseq alone is not safe (as in gVisor)",
        ),
        rseq::rseq,
    );
    t.register(
        MEMBARRIER,
        Partial(
            "every barrier is a host GLOBAL_EXPEDITED barrier over all stubs; PRIVATE_EXPEDITED_RSEQ and \
             MEMBARRIER_CMD_FLAG_CPU are EINVAL (left out of QUERY)",
        ),
        rseq::membarrier,
    );

    // Extended attributes (issue 13): user.* and security.* kept by tmpfs
    // and the overlay, host files' own through their descriptors;
    // trusted.* as an unprivileged user namespace sees it.
    const XATTR_SET: &str =
        "POSIX ACLs only on host files (tmpfs and the overlay: EOPNOTSUPP); none on host symlinks and special files";
    const XATTR_GET: &str = "POSIX ACLs only on host files (tmpfs and the overlay: absent); none on host symlinks \
         and special files; sockets lack system.sockprotoname";
    t.register(SETXATTR, Partial(XATTR_SET), xattr::setxattr);
    t.register(LSETXATTR, Partial(XATTR_SET), xattr::lsetxattr);
    t.register(FSETXATTR, Partial(XATTR_SET), xattr::fsetxattr);
    t.register(GETXATTR, Partial(XATTR_GET), xattr::getxattr);
    t.register(LGETXATTR, Partial(XATTR_GET), xattr::lgetxattr);
    t.register(FGETXATTR, Partial(XATTR_GET), xattr::fgetxattr);
    t.register(LISTXATTR, Partial(XATTR_GET), xattr::listxattr);
    t.register(LLISTXATTR, Partial(XATTR_GET), xattr::llistxattr);
    t.register(FLISTXATTR, Partial(XATTR_GET), xattr::flistxattr);
    t.register(REMOVEXATTR, Partial(XATTR_SET), xattr::removexattr);
    t.register(LREMOVEXATTR, Partial(XATTR_SET), xattr::lremovexattr);
    t.register(FREMOVEXATTR, Partial(XATTR_SET), xattr::fremovexattr);

    // The kernel log (issue 13, "the seed fingerprint"): the sandbox's own
    // boot lines and what the guest writes to /dev/kmsg.
    t.register(SYSLOG, Full, syslog::syslog);

    // Not yet served, with the reason.
    for (nr, why) in [
        (PTRACE, "ptrace inside the sandbox is refused"),
        (MOUNT, "mounting from inside the sandbox is not served"),
        (UMOUNT2, "mounting from inside the sandbox is not served"),
        (IO_URING_SETUP, "not part of the Linux 4.4 ABI"),
        (USERFAULTFD, "not served"),
        (BPF, "not served"),
        (PERF_EVENT_OPEN, "not served"),
        (KEXEC_LOAD, "not served"),
        (INIT_MODULE, "not served"),
        (REBOOT, "not served"),
    ] {
        t.unimplemented(nr, why);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is the documentation: a number has a handler exactly
    /// when its entry is not Unimplemented, and no "not yet served" line
    /// names a number that has a handler (lists merged out of step).
    #[test]
    fn support_levels_match_handlers() {
        let t = build_table();
        let shadowed: Vec<&str> = t.shadowed().iter().map(|&nr| t.name(nr as u64)).collect();
        assert!(shadowed.is_empty(), "served but also listed as not served: {shadowed:?}");
        for (nr, e) in t.entries() {
            let unimplemented = matches!(e.support, sentry::Support::Unimplemented(_));
            assert_eq!(t.served(nr), !unimplemented, "{}: handler and support level disagree", e.name);
            if let sentry::Support::Partial(note) = e.support {
                assert!(!note.trim().is_empty(), "{}: a Partial note must say what is missing", e.name);
            }
        }
    }
}
