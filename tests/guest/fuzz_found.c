/* Regressions found by the syscall fuzzer (tests/fuzz/sysfuzz.c) and the
 * property tests, where Linux's answer can be compared natively: each
 * line once took the Sentry down or gave a different answer. */
#include "common.h"
#include <signal.h>
#include <limits.h>
#include <sched.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* A thread in sigtimedwait with no timeout, and SIGKILL or exit_group
 * from elsewhere: the process must end (the Sentry's sigtimedwait
 * cleared the kick and slept on, for ever, found by the fuzzer). */
static int ready[2];

static void wait_forever(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, 0);
    if (write(ready[1], "r", 1) != 1)
        _exit(9);
    sigtimedwait(&s, 0, 0);
}

static void *waiter_thread(void *arg)
{
    (void)arg;
    wait_forever();
    return 0;
}

static void sigtimedwait_and_kill(void)
{
    if (pipe(ready) != 0)
        return;
    pid_t c = fork();
    if (c == 0) {
        wait_forever();
        _exit(0);
    }
    char b;
    if (read(ready[0], &b, 1) == 1)
        kill(c, SIGKILL);
    int st = 0;
    waitpid(c, &st, 0);
    B("sigtimedwait_sigkilled", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* Another thread's exit_group. */
    c = fork();
    if (c == 0) {
        pthread_t t;
        pthread_create(&t, 0, waiter_thread, 0);
        if (read(ready[0], &b, 1) == 1)
            syscall(SYS_exit_group, 5);
        _exit(1);
    }
    st = 0;
    waitpid(c, &st, 0);
    B("sigtimedwait_thread_exit_group", WIFEXITED(st) && WEXITSTATUS(st) == 5);
    close(ready[0]);
    close(ready[1]);
}

/* Exit signals that must not reach the reaper (found by the threaded
 * fuzzer: its init was killed): a child made with CLONE_PARENT signals
 * with its creator's exit signal, not the one in the flags; an orphan
 * signals its new parent with SIGCHLD, whatever it was made with. We are
 * the reaper: a subreaper natively, init in the sandbox. */
static void exit_signals_spare_the_reaper(void)
{
    int p[2];
    if (pipe(p) != 0)
        return;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t w = fork();
    if (w == 0) {
        /* Our sibling, with SIGKILL as the exit signal in the flags. */
        if (syscall(SYS_clone, CLONE_PARENT | SIGKILL, 0, 0, 0, 0) == 0)
            _exit(0);
        /* Our child with SIGKILL, orphaned when we exit below. */
        if (syscall(SYS_clone, SIGKILL, 0, 0, 0, 0) == 0) {
            char b;
            if (read(p[0], &b, 1) != 1)
                _exit(1);
            _exit(0);
        }
        _exit(0);
    }
    waitpid(w, 0, 0);
    if (write(p[1], "x", 1) != 1)
        return;
    int reaped = 0;
    while (waitpid(-1, 0, __WALL) > 0)
        reaped++;
    printf("exit_signals reaped %d, the reaper survived\n", reaped);
    close(p[0]);
    close(p[1]);
}

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
    sigtimedwait_and_kill();
    exit_signals_spare_the_reaper();
    /* Numbers outside the table. */
    E("syscall_1000", syscall(1000), ENOSYS);
    E("syscall_minus_1", syscall(-1L), ENOSYS);
    E("syscall_huge", syscall(0x7fffffffffffL), ENOSYS);
    printf("done\n");
    return 0;
}
