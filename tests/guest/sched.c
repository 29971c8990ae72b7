/* Scheduling and time: policies and parameters kept per thread as Linux
 * reports them to root (nothing reaches the host's scheduler), nice values
 * per thread and per process group or user, seen in /proc/self/stat, I/O
 * priorities, and the clock-setting calls a container may not make. */
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>

struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t prio;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

static int stat_nice(const char *path)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (!f)
        return -1000;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1000;
    /* Field 3 follows ") "; nice is field 19, priority 18. */
    int field = 2, prio = 0, nice = 0;
    for (char *s = p + 1; *s; s++) {
        if (*s == ' ') {
            field++;
            if (field == 18)
                prio = atoi(s + 1);
            if (field == 19)
                nice = atoi(s + 1);
        }
    }
    return nice * 1000 + prio;
}

static int raw_getprio(int which, int who)
{
    return syscall(SYS_getpriority, which, who);
}

static void *thread_nice(void *arg)
{
    (void)arg;
    V("thread_inherits_nice", getpriority(PRIO_PROCESS, 0));
    T("thread_setprio", setpriority(PRIO_PROCESS, 0, 7));
    V("thread_nice_now", getpriority(PRIO_PROCESS, 0));
    return NULL;
}

int main(void)
{
    guest_init();
    struct sched_param sp = { 0 };

    /* Policies and their priority ranges. */
    for (int p = -1; p <= 7; p++) {
        char n[64];
        snprintf(n, sizeof n, "prio_max_%d", p);
        V(n, sched_get_priority_max(p));
        snprintf(n, sizeof n, "prio_min_%d", p);
        V(n, sched_get_priority_min(p));
    }
    V("getscheduler", sched_getscheduler(0));
    E("getscheduler_neg", sched_getscheduler(-1), EINVAL);
    E("getscheduler_nosuch", sched_getscheduler(999999), ESRCH);
    T("getparam", sched_getparam(0, &sp));
    V("getparam_prio", sp.sched_priority);
    E("getparam_null", syscall(SYS_sched_getparam, 0, NULL), EINVAL);
    E("getparam_badptr", syscall(SYS_sched_getparam, 0, (void *)8), EFAULT);
    E("getparam_neg", sched_getparam(-1, &sp), EINVAL);

    sp.sched_priority = 0;
    T("set_batch", sched_setscheduler(0, SCHED_BATCH, &sp));
    V("get_batch", sched_getscheduler(0));
    T("set_idle", sched_setscheduler(0, SCHED_IDLE, &sp));
    V("get_idle", sched_getscheduler(0));
    sp.sched_priority = 5;
    E("set_other_prio5", sched_setscheduler(0, SCHED_OTHER, &sp), EINVAL);
    E("set_bad_policy", sched_setscheduler(0, 9, &sp), EINVAL);
    E("set_null", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL), EINVAL);
    E("set_neg_pid", sched_setscheduler(-1, SCHED_OTHER, &sp), EINVAL);
    E("set_nosuch", sched_setscheduler(999999, SCHED_OTHER, &sp), ESRCH);
    sp.sched_priority = 0;
    T("set_other", sched_setscheduler(0, SCHED_OTHER, &sp));
    sp.sched_priority = 0;
    E("set_fifo_prio0", sched_setscheduler(0, SCHED_FIFO, &sp), EINVAL);
    sp.sched_priority = 100;
    E("set_fifo_prio100", sched_setscheduler(0, SCHED_FIFO, &sp), EINVAL);
    sp.sched_priority = 10;
    T("set_fifo", sched_setscheduler(0, SCHED_FIFO, &sp));
    V("get_fifo", sched_getscheduler(0));
    sp.sched_priority = 0;
    T("getparam_fifo", sched_getparam(0, &sp));
    V("getparam_fifo_prio", sp.sched_priority);
    sp.sched_priority = 20;
    T("setparam_fifo", sched_setparam(0, &sp));
    sched_getparam(0, &sp);
    V("getparam_fifo_prio2", sp.sched_priority);
    sp.sched_priority = 0;
    E("setparam_fifo_0", sched_setparam(0, &sp), EINVAL);
    sp.sched_priority = 3;
    T("set_rr", sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &sp));
    V("get_rr_reset", sched_getscheduler(0));
    struct timespec ts = { 7, 7 };
    T("rr_interval", sched_rr_get_interval(0, &ts));
    B("rr_interval_positive", ts.tv_sec > 0 || ts.tv_nsec > 0);
    E("rr_interval_badptr", syscall(SYS_sched_rr_get_interval, 0, (void *)8), EFAULT);
    E("rr_interval_neg", sched_rr_get_interval(-1, &ts), EINVAL);
    E("rr_interval_nosuch", sched_rr_get_interval(999999, &ts), ESRCH);
    pid_t c = fork();
    if (c == 0) {
        /* SCHED_RESET_ON_FORK: the child is back to SCHED_OTHER. */
        printf("child_policy = %d\n", sched_getscheduler(0));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    sp.sched_priority = 0;
    T("set_other_again", sched_setscheduler(0, SCHED_OTHER, &sp));
    T("other_rr_interval", sched_rr_get_interval(0, &ts));
    V("other_rr_interval_zero", ts.tv_sec == 0 && ts.tv_nsec == 0);

    /* sched_setattr/getattr. */
    struct attr a;
    memset(&a, 0, sizeof a);
    T("getattr", syscall(SYS_sched_getattr, 0, &a, sizeof a, 0));
    V("getattr_size", a.size);
    V("getattr_policy", a.policy);
    V("getattr_nice", a.nice);
    E("getattr_small", syscall(SYS_sched_getattr, 0, &a, 8, 0), EINVAL);
    E("getattr_flags", syscall(SYS_sched_getattr, 0, &a, sizeof a, 1), EINVAL);
    E("getattr_null", syscall(SYS_sched_getattr, 0, NULL, sizeof a, 0), EINVAL);
    memset(&a, 0, sizeof a);
    a.size = 48;
    a.policy = SCHED_BATCH;
    a.nice = 3;
    T("setattr_batch", syscall(SYS_sched_setattr, 0, &a, 0));
    V("after_setattr_policy", sched_getscheduler(0));
    V("after_setattr_nice", getpriority(PRIO_PROCESS, 0));
    memset(&a, 0, sizeof a);
    syscall(SYS_sched_getattr, 0, &a, sizeof a, 0);
    V("getattr_nice2", a.nice);
    E("setattr_flags", syscall(SYS_sched_setattr, 0, &a, 1), EINVAL);
    a.size = 4;
    E("setattr_small", syscall(SYS_sched_setattr, 0, &a, 0), E2BIG);
    E("setattr_null", syscall(SYS_sched_setattr, 0, NULL, 0), EINVAL);
    memset(&a, 0, sizeof a);
    a.size = 48;
    a.policy = 77;
    E("setattr_badpolicy", syscall(SYS_sched_setattr, 0, &a, 0), EINVAL);
    a.policy = SCHED_OTHER;
    a.nice = 0;
    T("setattr_other", syscall(SYS_sched_setattr, 0, &a, 0));

    /* Nice values. */
    errno = 0;
    V("getprio", getpriority(PRIO_PROCESS, 0));
    V("raw_getprio", raw_getprio(PRIO_PROCESS, 0));
    T("setprio_5", setpriority(PRIO_PROCESS, 0, 5));
    V("getprio_5", getpriority(PRIO_PROCESS, 0));
    V("raw_getprio_5", raw_getprio(PRIO_PROCESS, 0));
    V("stat_nice_5", stat_nice("/proc/self/stat"));
    T("setprio_big", setpriority(PRIO_PROCESS, 0, 100));
    V("getprio_big", getpriority(PRIO_PROCESS, 0));
    T("setprio_lower_neg", setpriority(PRIO_PROCESS, 0, -100));
    V("raw_getprio_low", raw_getprio(PRIO_PROCESS, 0));
    V("stat_nice_low", stat_nice("/proc/self/stat") + 100000);
    T("setprio_0", setpriority(PRIO_PROCESS, 0, 0));
    E("setprio_badwhich", setpriority(7, 0, 0), EINVAL);
    E("setprio_negwhich", setpriority(-1, 0, 0), EINVAL);
    E("getprio_badwhich", raw_getprio(7, 0), EINVAL);
    E("getprio_nosuch", raw_getprio(PRIO_PROCESS, 999999), ESRCH);
    E("getprio_negwho", raw_getprio(PRIO_PROCESS, -5), ESRCH);
    E("setprio_nosuch", setpriority(PRIO_PROCESS, 999999, 0), ESRCH);
    E("getprio_pgrp_nosuch", raw_getprio(PRIO_PGRP, 999999), ESRCH);
    E("getprio_user_nosuch", raw_getprio(PRIO_USER, 54321), ESRCH);

    /* Process groups and users only in a child of its own group and uid:
     * natively these calls reach every process of the group or user. */
    c = fork();
    if (c == 0) {
        setpgid(0, 0);
        int hold[2];
        pipe(hold);
        pid_t gc = fork();
        if (gc == 0) {
            /* Lives until its parent is gone (no kill needed across uids). */
            char ch;
            close(hold[1]);
            read(hold[0], &ch, 1);
            _exit(0);
        }
        close(hold[0]);
        T("setprio_pgrp", setpriority(PRIO_PGRP, 0, 4));
        V("getprio_pgrp", getpriority(PRIO_PGRP, 0));
        V("getprio_after_pgrp", getpriority(PRIO_PROCESS, 0));
        V("getprio_pgrp_member", getpriority(PRIO_PROCESS, gc));
        T("setprio_member", setpriority(PRIO_PROCESS, gc, 1));
        V("raw_getprio_pgrp_min", raw_getprio(PRIO_PGRP, 0));
        T("ioprio_pgrp_set", syscall(SYS_ioprio_set, 2, 0, (2 << 13) | 5));
        V("ioprio_pgrp_get", syscall(SYS_ioprio_get, 2, 0));
        V("ioprio_member_get", syscall(SYS_ioprio_get, 1, gc));
        if (setresgid(54321, 54321, 54321) || setresuid(54321, 54321, 54321))
            printf("setresuid failed\n");
        T("setprio_user", setpriority(PRIO_USER, 0, 6));
        V("getprio_user", getpriority(PRIO_USER, 0));
        V("getprio_after_user", getpriority(PRIO_PROCESS, 0));
        E("unpriv_lower_nice", setpriority(PRIO_PROCESS, 0, 2), EACCES);
        T("unpriv_raise_nice", setpriority(PRIO_PROCESS, 0, 8));
        E("unpriv_other_user", setpriority(PRIO_PROCESS, 1, 10), EPERM);
        E("unpriv_member_root", setpriority(PRIO_PROCESS, gc, 10), EPERM);
        V("unpriv_getprio_other", getpriority(PRIO_PROCESS, gc));
        struct sched_param up = { .sched_priority = 5 };
        E("unpriv_fifo", sched_setscheduler(0, SCHED_FIFO, &up), EPERM);
        up.sched_priority = 0;
        T("unpriv_batch", sched_setscheduler(0, SCHED_BATCH, &up));
        T("unpriv_idle", sched_setscheduler(0, SCHED_IDLE, &up));
        E("unpriv_idle_to_other", sched_setscheduler(0, SCHED_OTHER, &up), EPERM);
        E("unpriv_other_proc", sched_setscheduler(gc, SCHED_BATCH, &up), EPERM);
        E("unpriv_ioprio_rt", syscall(SYS_ioprio_set, 1, 0, (1 << 13) | 2), EPERM);
        T("unpriv_ioprio_be", syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 2));
        V("unpriv_ioprio_user", syscall(SYS_ioprio_get, 3, 0));
        E("unpriv_ioprio_other", syscall(SYS_ioprio_set, 1, gc, (2 << 13) | 2), EPERM);

        /* Setting the clocks: a container may not (natively: no
         * capabilities left after setresuid). */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        E("clock_settime", clock_settime(CLOCK_REALTIME, &now), EPERM);
        E("clock_settime_mono", clock_settime(CLOCK_MONOTONIC, &now), EINVAL);
        E("clock_settime_bad", clock_settime(99, &now), EINVAL);
        E("clock_settime_badptr", syscall(SYS_clock_settime, CLOCK_REALTIME, (void *)8), EFAULT);
        struct timeval tv;
        gettimeofday(&tv, NULL);
        E("settimeofday", settimeofday(&tv, NULL), EPERM);
        struct timex tx;
        memset(&tx, 0, sizeof tx);
        int st = adjtimex(&tx);
        B("adjtimex_read", st >= 0 && st <= 5);
        B("adjtimex_read_fields", tx.tick > 0);
        memset(&tx, 0, sizeof tx);
        tx.modes = ADJ_OFFSET;
        E("adjtimex_set", adjtimex(&tx), EPERM);
        E("adjtimex_badptr", syscall(SYS_adjtimex, (void *)8), EFAULT);
        memset(&tx, 0, sizeof tx);
        st = syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx);
        B("clock_adjtime_read", st >= 0 && st <= 5);
        tx.modes = ADJ_FREQUENCY;
        E("clock_adjtime_set", syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx), EPERM);
        memset(&tx, 0, sizeof tx);
        E("clock_adjtime_bad", syscall(SYS_clock_adjtime, 99, &tx), EINVAL);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    V("after_child_getprio", getpriority(PRIO_PROCESS, 0));

    /* Threads inherit the creator's nice and keep their own. */
    T("setprio_3", setpriority(PRIO_PROCESS, 0, 3));
    pthread_t th;
    pthread_create(&th, NULL, thread_nice, NULL);
    pthread_join(th, NULL);
    V("main_nice_after_thread", getpriority(PRIO_PROCESS, 0));
    c = fork();
    if (c == 0) {
        printf("child_nice = %d\n", getpriority(PRIO_PROCESS, 0));
        setpriority(PRIO_PROCESS, 0, 9);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    V("parent_nice_after_child", getpriority(PRIO_PROCESS, 0));
    c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    T("setprio_child", setpriority(PRIO_PROCESS, c, 11));
    V("getprio_child", getpriority(PRIO_PROCESS, c));
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    V("stat_nice_child", stat_nice(path));
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    T("setprio_back", setpriority(PRIO_PROCESS, 0, 0));

    /* I/O priorities: class << 13 | data. */
    V("ioprio_get", syscall(SYS_ioprio_get, 1, 0));
    T("ioprio_set_be4", syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 4));
    V("ioprio_get_be4", syscall(SYS_ioprio_get, 1, 0));
    T("ioprio_set_idle", syscall(SYS_ioprio_set, 1, 0, (3 << 13)));
    V("ioprio_get_idle", syscall(SYS_ioprio_get, 1, 0));
    T("ioprio_set_rt", syscall(SYS_ioprio_set, 1, 0, (1 << 13) | 2));
    V("ioprio_get_rt", syscall(SYS_ioprio_get, 1, 0));
    E("ioprio_set_class4", syscall(SYS_ioprio_set, 1, 0, (4 << 13)), EINVAL);
    E("ioprio_set_class7", syscall(SYS_ioprio_set, 1, 0, (7 << 13) | 1), EINVAL);
    E("ioprio_set_none_data", syscall(SYS_ioprio_set, 1, 0, 3), EINVAL);
    E("ioprio_badwho", syscall(SYS_ioprio_get, 9, 0), EINVAL);
    E("ioprio_set_badwho", syscall(SYS_ioprio_set, 9, 0, 0), EINVAL);
    E("ioprio_nosuch", syscall(SYS_ioprio_get, 1, 999999), ESRCH);
    E("ioprio_set_nosuch", syscall(SYS_ioprio_set, 1, 999999, 0), ESRCH);
    T("ioprio_set_none", syscall(SYS_ioprio_set, 1, 0, 0));
    V("ioprio_get_none", syscall(SYS_ioprio_get, 1, 0));

    printf("done\n");
    return 0;
}
