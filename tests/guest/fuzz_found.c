/* Regressions found by the syscall fuzzer (tests/fuzz/sysfuzz.c) and the
 * property tests, where Linux's answer can be compared natively: each
 * line once took the Sentry down or gave a different answer. */
#include "common.h"
#include <signal.h>
#include <limits.h>
#include <sched.h>
#include <sys/wait.h>

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    /* -INT_MIN as a process group overflowed (the task thread panicked). */
    E("kill_int_min", kill(INT_MIN, 0), ESRCH);
    E("kill_int_min_badsig", kill(INT_MIN, 999), ESRCH);
    E("kill_int_min_sigusr", kill(INT_MIN, SIGUSR1), ESRCH);
    E("wait4_int_min", wait4(INT_MIN, 0, WNOHANG, 0), ESRCH);
    E("wait4_int_min_badopt", wait4(INT_MIN, 0, 0x1000, 0), EINVAL);
    E("waitpid_int_min", waitpid(INT_MIN, 0, 0), ESRCH);
    E("getpgid_int_min", getpgid(INT_MIN), ESRCH);
    E("getsid_int_min", getsid(INT_MIN), ESRCH);
    E("tgkill_int_min", syscall(SYS_tgkill, INT_MIN, INT_MIN, 0), EINVAL);
    E("tkill_int_min", syscall(SYS_tkill, INT_MIN, 0), EINVAL);
    cpu_set_t set;
    /* Linux: the length is checked first, a negative pid is ESRCH. */
    E("sched_getaffinity_int_min", sched_getaffinity(INT_MIN, sizeof set, &set), ESRCH);
    E("sched_getaffinity_neg_badlen", sched_getaffinity(-5, 3, &set), EINVAL);
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    E("sched_setaffinity_int_min", sched_setaffinity(INT_MIN, sizeof set, &set), ESRCH);
    /* The running executable cannot be written (found by the escape
     * suite: the Sentry let a guest truncate its own program). */
    E("exe_open_wronly", open("/proc/self/exe", O_WRONLY), ETXTBSY);
    E("exe_open_rdwr_trunc", open("/proc/self/exe", O_RDWR | O_TRUNC), ETXTBSY);
    /* Numbers outside the table. */
    E("syscall_1000", syscall(1000), ENOSYS);
    E("syscall_minus_1", syscall(-1L), ENOSYS);
    E("syscall_huge", syscall(0x7fffffffffffL), ENOSYS);
    printf("done\n");
    return 0;
}
