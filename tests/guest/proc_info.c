/* Process and system information: ids, uname, rlimits, getrandom,
 * arch_prctl, clocks and sleeps, auxv, prctl names, sysinfo.
 * Prints relations (yes/no), never raw pids or times. The one line that
 * differs by design is "uname_release": the harness masks it natively and
 * expects 4.4.0 under the sandbox. */
#include "common.h"
#include <asm/prctl.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <time.h>

static long ns_between(struct timespec a, struct timespec b)
{
    return (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    char buf[4200];

    /* ids */
    pid_t pid = getpid();
    B("getpid_positive", pid > 0);
    B("getpid_raw_same", syscall(SYS_getpid) == pid);
    B("getppid_nonnegative", getppid() >= 0);
    B("getppid_not_self", getppid() != pid);
    B("gettid_is_pid", syscall(SYS_gettid) == pid);
    B("set_tid_address_returns_tid", syscall(SYS_set_tid_address, NULL) == pid);
    B("getpgid0_is_getpgrp", getpgid(0) == getpgrp());
    B("getpgid_self_is_getpgrp", getpgid(pid) == getpgrp());
    E("getpgid_esrch", getpgid(999999), ESRCH);
    B("getsid_nonnegative", getsid(0) >= 0);
    uid_t uid = getuid(), euid = geteuid();
    gid_t gid = getgid(), egid = getegid();
    B("uid_is_euid", uid == euid);
    B("gid_is_egid", gid == egid);
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    T("getresuid", getresuid(&ru, &eu, &su));
    B("getresuid_consistent", ru == uid && eu == euid && su == euid);
    T("getresgid", getresgid(&rg, &eg, &sg));
    B("getresgid_consistent", rg == gid && eg == egid && sg == egid);
    E("getresuid_bad_ptr_efault", syscall(SYS_getresuid, BADPTR, &eu, &su), EFAULT);
    int ng = getgroups(0, NULL);
    B("getgroups_count_nonnegative", ng >= 0);
    gid_t groups[256];
    B("getgroups_fill_same_count", getgroups(256, groups) == ng);
    E("getgroups_negative_einval", syscall(SYS_getgroups, -1, groups), EINVAL);
    T("setuid_same", setuid(uid));
    T("setgid_same", setgid(gid));

    /* uname */
    struct utsname u;
    T("uname", uname(&u));
    P("uname_sysname %s\n", u.sysname);
    P("uname_machine %s\n", u.machine);
    P("uname_release %s\n", u.release);
    gethostname(buf, sizeof buf);
    B("uname_nodename_is_hostname", !strcmp(buf, u.nodename));
    B("uname_version_nonempty", u.version[0] != 0);
    E("uname_bad_ptr_efault", syscall(SYS_uname, BADPTR), EFAULT);

    /* rlimits */
    struct rlimit rl, rl2;
    T("getrlimit_nofile", getrlimit(RLIMIT_NOFILE, &rl));
    B("nofile_soft_le_hard", rl.rlim_cur <= rl.rlim_max);
    struct rlimit want = { 64, rl.rlim_max };
    T("setrlimit_nofile_64", setrlimit(RLIMIT_NOFILE, &want));
    T("getrlimit_nofile_again", getrlimit(RLIMIT_NOFILE, &rl2));
    V("nofile_soft_now", rl2.rlim_cur);
    B("nofile_hard_kept", rl2.rlim_max == rl.rlim_max);
    struct rlimit old;
    T("prlimit64_get", syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &old));
    V("prlimit64_soft", old.rlim_cur);
    struct rlimit p48 = { 48, rl.rlim_max };
    T("prlimit64_set_returns_old", syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &p48, &old));
    V("prlimit64_old_soft", old.rlim_cur);
    getrlimit(RLIMIT_NOFILE, &rl2);
    V("prlimit64_new_soft", rl2.rlim_cur);
    /* Enforcement of RLIMIT_NOFILE */
    struct rlimit ten = { 10, rl.rlim_max };
    setrlimit(RLIMIT_NOFILE, &ten);
    int fds[20], nopen = 0, err = 0;
    for (int i = 0; i < 20; i++) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) {
            err = errno;
            break;
        }
        fds[nopen++] = fd;
    }
    P("nofile_enforced_error %s\n", errno_name(err));
    B("nofile_highest_fd_below_limit", nopen > 0 && fds[nopen - 1] < 10);
    E("dup2_beyond_nofile_ebadf", dup2(0, 10), EBADF);
    E("fcntl_dupfd_beyond_nofile_einval", fcntl(0, F_DUPFD, 10), EINVAL);
    for (int i = 0; i < nopen; i++)
        close(fds[i]);
    T("setrlimit_restore", setrlimit(RLIMIT_NOFILE, &rl));
    struct rlimit bad = { 100, 50 };
    E("setrlimit_soft_gt_hard_einval", setrlimit(RLIMIT_NOFILE, &bad), EINVAL);
    E("getrlimit_bad_resource_einval", syscall(SYS_getrlimit, 9999, &rl2), EINVAL);
    E("getrlimit_bad_ptr_efault", syscall(SYS_getrlimit, RLIMIT_NOFILE, BADPTR), EFAULT);
    T("getrlimit_stack", getrlimit(RLIMIT_STACK, &rl2));
    B("stack_limit_nonzero", rl2.rlim_cur > 0);
    T("getrlimit_as", getrlimit(RLIMIT_AS, &rl2));
    E("prlimit64_esrch", syscall(SYS_prlimit64, 999999, RLIMIT_NOFILE, NULL, &old), ESRCH);

    /* getrandom */
    unsigned char r1[16], r2[16];
    V("getrandom_16", getrandom(r1, sizeof r1, 0));
    V("getrandom_nonblock_16", getrandom(r2, sizeof r2, GRND_NONBLOCK));
    B("getrandom_differs", memcmp(r1, r2, 16) != 0);
    V("getrandom_0", getrandom(r1, 0, 0));
    static unsigned char bigr[100000];
    B("getrandom_large_positive", getrandom(bigr, sizeof bigr, 0) > 0);
    E("getrandom_bad_flags_einval", getrandom(r1, 16, 0x100), EINVAL);
    E("getrandom_bad_ptr_efault", syscall(SYS_getrandom, BADPTR, 16, 0), EFAULT);

    /* arch_prctl: FS base is the TLS pointer (glibc stores it at fs:0). */
    unsigned long fs = 0, self = 0;
    T("arch_prctl_get_fs", syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
    __asm__ volatile("mov %%fs:0, %0" : "=r"(self));
    B("arch_prctl_fs_is_tls_self", fs != 0 && fs == self);
    T("arch_prctl_set_fs_same", syscall(SYS_arch_prctl, ARCH_SET_FS, fs));
    unsigned long gs = 1;
    T("arch_prctl_get_gs", syscall(SYS_arch_prctl, ARCH_GET_GS, &gs));
    E("arch_prctl_bad_code_einval", syscall(SYS_arch_prctl, 0x9999, &gs), EINVAL);
    E("arch_prctl_get_fs_bad_ptr_efault", syscall(SYS_arch_prctl, ARCH_GET_FS, BADPTR), EFAULT);
    static __thread int tls_var = 41;
    tls_var++;
    V("tls_var_after_set_fs", tls_var);

    /* clocks */
    struct timespec a, b, res;
    T("clock_gettime_monotonic", clock_gettime(CLOCK_MONOTONIC, &a));
    int nondecreasing = 1;
    for (int i = 0; i < 1000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (ns_between(a, b) < 0)
            nondecreasing = 0;
        a = b;
    }
    B("monotonic_nondecreasing", nondecreasing);
    T("clock_gettime_realtime", clock_gettime(CLOCK_REALTIME, &a));
    B("realtime_after_2020", a.tv_sec > 1577836800);
    B("realtime_nsec_in_range", a.tv_nsec >= 0 && a.tv_nsec < 1000000000);
    T("clock_gettime_boottime", clock_gettime(CLOCK_BOOTTIME, &a));
    T("clock_gettime_process_cputime", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a));
    T("clock_gettime_thread_cputime", clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a));
    T("clock_gettime_monotonic_raw", clock_gettime(CLOCK_MONOTONIC_RAW, &a));
    T("clock_gettime_realtime_coarse", clock_gettime(CLOCK_REALTIME_COARSE, &a));
    E("clock_gettime_bad_clock_einval", syscall(SYS_clock_gettime, 12345, &a), EINVAL);
    E("clock_gettime_bad_ptr_efault", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, BADPTR), EFAULT);
    T("clock_getres_monotonic", clock_getres(CLOCK_MONOTONIC, &res));
    B("clock_getres_monotonic_le_1ms", res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 1000000);
    E("clock_getres_bad_clock_einval", clock_getres(12345, &res), EINVAL);
    struct timeval tv;
    T("gettimeofday", gettimeofday(&tv, NULL));
    time_t t = time(NULL);
    /* time() reads the coarse clock, which can trail gettimeofday by a tick;
     * a loaded machine may keep us off the CPU for a while in between. */
    B("time_matches_gettimeofday", t - tv.tv_sec >= -1 && t - tv.tv_sec <= 10);
    time_t t2;
    B("time_stores_arg", syscall(SYS_time, &t2) == t2 || time(&t2) == t2);
    B("gettimeofday_usec_in_range", tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    E("gettimeofday_bad_ptr_efault", syscall(SYS_gettimeofday, BADPTR, NULL), EFAULT);

    /* sleeps */
    struct timespec req = { 0, 20 * 1000 * 1000 }, rem;
    clock_gettime(CLOCK_MONOTONIC, &a);
    T("nanosleep_20ms", nanosleep(&req, &rem));
    clock_gettime(CLOCK_MONOTONIC, &b);
    B("nanosleep_slept_at_least_20ms", ns_between(a, b) >= 20 * 1000 * 1000);
    /* Room for a loaded machine, not for a unit mix-up (20 s). */
    B("nanosleep_not_absurdly_long", ns_between(a, b) < 10L * 1000 * 1000 * 1000);
    struct timespec badreq = { 0, 1000000000 };
    E("nanosleep_bad_nsec_einval", nanosleep(&badreq, NULL), EINVAL);
    struct timespec negreq = { -1, 0 };
    E("nanosleep_negative_einval", nanosleep(&negreq, NULL), EINVAL);
    E("nanosleep_bad_ptr_efault", syscall(SYS_nanosleep, BADPTR, NULL), EFAULT);
    V("clock_nanosleep_rel", clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL));
    clock_gettime(CLOCK_MONOTONIC, &a);
    a.tv_nsec += 10 * 1000 * 1000;
    if (a.tv_nsec >= 1000000000) {
        a.tv_sec++;
        a.tv_nsec -= 1000000000;
    }
    V("clock_nanosleep_abs", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &a, NULL));
    clock_gettime(CLOCK_MONOTONIC, &b);
    B("clock_nanosleep_abs_reached", ns_between(a, b) >= 0);
    V("clock_nanosleep_bad_clock", clock_nanosleep(12345, 0, &req, NULL));
    T("sched_yield", sched_yield());

    /* misc */
    B("getcwd_ok", getcwd(buf, sizeof buf) != NULL);
    struct sysinfo si;
    T("sysinfo", sysinfo(&si));
    B("sysinfo_totalram_positive", si.totalram > 0);
    B("sysinfo_procs_positive", si.procs > 0);
    char name[32];
    T("prctl_set_name", prctl(PR_SET_NAME, "guest-name", 0, 0, 0));
    T("prctl_get_name", prctl(PR_GET_NAME, name, 0, 0, 0));
    P("prctl_name %s\n", name);
    T("prctl_set_long_name", prctl(PR_SET_NAME, "a-very-long-name-truncated-at-15", 0, 0, 0));
    prctl(PR_GET_NAME, name, 0, 0, 0);
    P("prctl_long_name %s\n", name);
    snprintf(buf, sizeof buf, "/proc/self/comm");
    char comm[64];
    read_file(buf, comm, sizeof comm);
    P("proc_self_comm %s", comm);
    V("prctl_get_dumpable", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    E("prctl_bad_option_einval", prctl(0x7fffffff, 0, 0, 0, 0), EINVAL);
    V("personality_query", personality(0xffffffff));
    struct tms tm;
    B("times_ok", times(&tm) != (clock_t)-1);
    struct rusage ru_;
    T("getrusage_self", getrusage(RUSAGE_SELF, &ru_));
    E("getrusage_bad_who_einval", getrusage(12345, &ru_), EINVAL);
    cpu_set_t set;
    CPU_ZERO(&set);
    T("sched_getaffinity", sched_getaffinity(0, sizeof set, &set));
    B("sched_getaffinity_some_cpu", CPU_COUNT(&set) > 0);
    B("nprocs_positive", sysconf(_SC_NPROCESSORS_ONLN) > 0);
    V("sched_getscheduler", sched_getscheduler(0));
    V("sched_priority_max_fifo", sched_get_priority_max(SCHED_FIFO));
    V("sched_priority_min_fifo", sched_get_priority_min(SCHED_FIFO));

    /* auxv */
    V("auxv_pagesz", getauxval(AT_PAGESZ));
    B("auxv_entry_nonzero", getauxval(AT_ENTRY) != 0);
    B("auxv_random_nonzero", getauxval(AT_RANDOM) != 0);
    B("auxv_phdr_nonzero", getauxval(AT_PHDR) != 0);
    V("auxv_secure", getauxval(AT_SECURE));
    B("auxv_uid_matches", getauxval(AT_UID) == uid && getauxval(AT_EUID) == euid);
    B("auxv_gid_matches", getauxval(AT_GID) == gid && getauxval(AT_EGID) == egid);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    B("auxv_execfn_is_argv0", execfn && !strcmp(execfn, argv[0]));
    B("environ_has_path", getenv("PATH") != NULL);

    guest_cleanup();
    P("done\n");
    return 0;
}
