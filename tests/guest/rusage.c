/* CPU-time accounting: getrusage (self, thread, children), times, wait4's
 * rusage, the CPU-time clocks, and ITIMER_VIRTUAL / ITIMER_PROF. Only
 * verdicts are printed.
 *
 * The machine may be loaded, so nothing here assumes how much CPU a stretch
 * of wall time buys: work is measured in CPU time (the thread's own CPU
 * clock), and the bounds are ones that hold at any load: a thread's CPU
 * time grows at most as fast as wall time, sleeping adds (next to) none,
 * and spinning for X seconds of CPU adds about X. A Sentry reporting zero
 * fails the lower bounds; one reporting wall time fails the sleep checks. */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>

/* Slack for tick-based accounting (Linux splits user/system by ticks; the
 * CONFIG_HZ=100 tick is 10 ms) and for the reads around a measurement. */
#define TICK 0.02
/* A spin that has not got its CPU time by then has a broken clock: give up
 * so the checks fail instead of the harness timing out. */
#define SPIN_LIMIT 15.0

static double tv(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }
static double cpu_of(struct rusage *r) { return tv(r->ru_utime) + tv(r->ru_stime); }

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile unsigned long sink;
static void burn(void)
{
    for (int i = 0; i < 100000; i++) sink += i;
}

/* Spin in user code until this thread's CPU clock has advanced by `secs`,
 * or until *flag is set when flag is given. */
static void spin_cpu(double secs, volatile sig_atomic_t *flag)
{
    double end = now(CLOCK_THREAD_CPUTIME_ID) + secs, give_up = now(CLOCK_MONOTONIC) + SPIN_LIMIT;
    while (flag ? !*flag : now(CLOCK_THREAD_CPUTIME_ID) < end) {
        burn();
        if (now(CLOCK_MONOTONIC) > give_up) break;
    }
}

static volatile sig_atomic_t vt, prof;
static void on_vt(int s) { (void)s; vt++; }
static void on_prof(int s) { (void)s; prof++; }

#define SPIN 0.2

static void *spin_thread(void *a)
{
    (void)a;
    spin_cpu(SPIN, 0);
    return 0;
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    struct rusage r0, ru;
    /* The wall readings enclose the two getrusage calls, so everything
     * accounted between them happened within the measured wall time. */
    double w0 = now(CLOCK_MONOTONIC);
    T("getrusage_self_0", getrusage(RUSAGE_SELF, &r0));
    spin_cpu(SPIN, 0);
    T("getrusage_self", getrusage(RUSAGE_SELF, &ru));
    double wall = now(CLOCK_MONOTONIC) - w0;
    double du = tv(ru.ru_utime) - tv(r0.ru_utime), ds = tv(ru.ru_stime) - tv(r0.ru_stime);
    B("cpu_time_covers_spin", du + ds >= SPIN - TICK);
    B("cpu_time_within_wall_time", du + ds <= wall + TICK);
    B("utime_grows_with_spinning", du >= SPIN / 2);
    B("stime_small", ds < du);
    /* Sleeping costs no CPU time. Half the sleep is far more than the
     * bookkeeping around it, and far less than counting the sleep. */
    getrusage(RUSAGE_SELF, &r0);
    w0 = now(CLOCK_MONOTONIC);
    usleep(200000);
    wall = now(CLOCK_MONOTONIC) - w0;
    getrusage(RUSAGE_SELF, &ru);
    B("sleep_is_not_cpu_time", cpu_of(&ru) - cpu_of(&r0) < wall / 2);

    /* Another thread's CPU time counts for the process, not for us (we
     * sleep in pthread_join). */
    double p0 = now(CLOCK_PROCESS_CPUTIME_ID), t0 = now(CLOCK_THREAD_CPUTIME_ID);
    pthread_t th;
    pthread_create(&th, 0, spin_thread, 0);
    pthread_join(th, 0);
    double p1 = now(CLOCK_PROCESS_CPUTIME_ID), t1 = now(CLOCK_THREAD_CPUTIME_ID);
    B("process_clock_counts_other_threads", p1 - p0 >= SPIN - TICK);
    B("thread_clock_does_not", t1 - t0 < (p1 - p0) / 2);
    T("getrusage_thread", getrusage(RUSAGE_THREAD, &ru));
    /* Ours includes our spin but not the other thread's. */
    double pc = now(CLOCK_PROCESS_CPUTIME_ID);
    B("rusage_thread_is_own", cpu_of(&ru) >= SPIN - TICK && cpu_of(&ru) <= pc - SPIN + TICK);

    /* Children: counted once waited for, and no more than they could use. */
    T("getrusage_children_0", getrusage(RUSAGE_CHILDREN, &r0));
    w0 = now(CLOCK_MONOTONIC);
    pid_t c = fork();
    if (c == 0) {
        spin_cpu(SPIN, 0);
        _exit(0);
    }
    int st;
    struct rusage cru;
    V("wait4_child", wait4(c, &st, 0, &cru) == c);
    wall = now(CLOCK_MONOTONIC) - w0;
    B("wait4_rusage_utime", tv(cru.ru_utime) >= SPIN / 2 && cpu_of(&cru) >= SPIN - TICK);
    B("wait4_rusage_within_wall_time", cpu_of(&cru) <= wall + TICK);
    getrusage(RUSAGE_CHILDREN, &ru);
    B("children_utime_after_wait", cpu_of(&ru) - cpu_of(&r0) >= SPIN - TICK);
    struct tms tm;
    clock_t t = times(&tm);
    B("times_returns_ticks", t != (clock_t)-1);
    /* In ticks of 1/100 s: our spin and the thread's, and the child's; each
     * sum loses at most a tick per term to rounding down. */
    B("times_utime", tm.tms_utime + tm.tms_stime >= (clock_t)(200 * SPIN) - 4 &&
                         tm.tms_cutime + tm.tms_cstime >= (clock_t)(100 * SPIN) - 4);

    /* ITIMER_VIRTUAL runs down with user time only: sleeping well past its
     * value does not fire it, spinning does, once. */
    signal(SIGVTALRM, on_vt);
    signal(SIGPROF, on_prof);
    struct itimerval it = {{0, 0}, {0, 200000}}, old;
    double a0 = now(CLOCK_THREAD_CPUTIME_ID);
    T("setitimer_virtual", setitimer(ITIMER_VIRTUAL, &it, 0));
    usleep(400000);
    V("virtual_fired_while_asleep", vt);
    T("getitimer_virtual", getitimer(ITIMER_VIRTUAL, &old));
    B("virtual_still_armed", old.it_value.tv_sec == 0 && old.it_value.tv_usec > 100000);
    spin_cpu(0, &vt);
    double a1 = now(CLOCK_THREAD_CPUTIME_ID);
    V("virtual_fired_once", vt);
    /* Linux samples user time by ticks: allow for that, but a timer that
     * fires on wall time or at once has used far less. */
    B("virtual_fired_after_its_time", a1 - a0 >= 0.1);
    getitimer(ITIMER_VIRTUAL, &old);
    B("one_shot_disarmed", old.it_value.tv_sec == 0 && old.it_value.tv_usec == 0);
    /* A periodic profiling timer: fires again and again, each time after
     * another interval of CPU time. */
    struct itimerval per = {{0, 50000}, {0, 50000}};
    p0 = now(CLOCK_PROCESS_CPUTIME_ID);
    T("setitimer_prof", setitimer(ITIMER_PROF, &per, 0));
    while (prof < 3 && now(CLOCK_PROCESS_CPUTIME_ID) - p0 < 5.0) spin_cpu(0.01, 0);
    struct itimerval off = {{0, 0}, {0, 0}};
    T("setitimer_prof_off", setitimer(ITIMER_PROF, &off, &old));
    p1 = now(CLOCK_PROCESS_CPUTIME_ID);
    int fired = prof;
    B("prof_fired_several_times", fired >= 3);
    B("prof_not_early", p1 - p0 >= fired * 0.05 / 2);
    B("prof_old_interval", old.it_interval.tv_usec == 50000);

    E("getrusage_bad_who", getrusage(7, &ru), EINVAL);
    E("getrusage_bad_ptr", getrusage(RUSAGE_SELF, (struct rusage *)8), EFAULT);
    E("setitimer_bad_which", setitimer(5, &it, 0), EINVAL);
    struct itimerval bad = {{0, 0}, {0, 2000000}};
    E("setitimer_bad_usec", setitimer(ITIMER_VIRTUAL, &bad, 0), EINVAL);
    printf("done\n");
    return 0;
}
