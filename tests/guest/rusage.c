/* CPU-time accounting: getrusage (self, thread, children), times, wait4's
 * rusage, the CPU-time clocks, and ITIMER_VIRTUAL / ITIMER_PROF. Times are
 * checked with generous bounds; only verdicts are printed. */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>

static double tv(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Spin in user code for `secs` of wall time. */
static volatile unsigned long sink;
static void spin(double secs)
{
    double end = now(CLOCK_MONOTONIC) + secs;
    while (now(CLOCK_MONOTONIC) < end)
        for (int i = 0; i < 100000; i++) sink += i;
}

static volatile sig_atomic_t vt, prof;
static void on_vt(int s) { (void)s; vt++; }
static void on_prof(int s) { (void)s; prof++; }

static void *spin_thread(void *a)
{
    (void)a;
    spin(0.2);
    return 0;
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    struct rusage ru;
    T("getrusage_self_0", getrusage(RUSAGE_SELF, &ru));
    double u0 = tv(ru.ru_utime);
    spin(0.3);
    T("getrusage_self", getrusage(RUSAGE_SELF, &ru));
    double du = tv(ru.ru_utime) - u0;
    B("utime_grows_with_spinning", du > 0.1 && du < 1.0);
    B("stime_small", tv(ru.ru_stime) < 0.3);
    /* Sleeping costs no CPU time. */
    double before = tv(ru.ru_utime) + tv(ru.ru_stime);
    usleep(200000);
    getrusage(RUSAGE_SELF, &ru);
    B("sleep_is_not_cpu_time", tv(ru.ru_utime) + tv(ru.ru_stime) - before < 0.05);

    double p0 = now(CLOCK_PROCESS_CPUTIME_ID), t0 = now(CLOCK_THREAD_CPUTIME_ID);
    pthread_t th;
    pthread_create(&th, 0, spin_thread, 0);
    pthread_join(th, 0);
    double p1 = now(CLOCK_PROCESS_CPUTIME_ID), t1 = now(CLOCK_THREAD_CPUTIME_ID);
    B("process_clock_counts_other_threads", p1 - p0 > 0.1);
    B("thread_clock_does_not", t1 - t0 < 0.1);
    T("getrusage_thread", getrusage(RUSAGE_THREAD, &ru));

    /* Children: counted once waited for. */
    T("getrusage_children_0", getrusage(RUSAGE_CHILDREN, &ru));
    double c0 = tv(ru.ru_utime);
    pid_t c = fork();
    if (c == 0) {
        spin(0.3);
        _exit(0);
    }
    int st;
    struct rusage cru;
    V("wait4_child", wait4(c, &st, 0, &cru) == c);
    B("wait4_rusage_utime", tv(cru.ru_utime) > 0.1 && tv(cru.ru_utime) < 1.0);
    getrusage(RUSAGE_CHILDREN, &ru);
    B("children_utime_after_wait", tv(ru.ru_utime) - c0 > 0.1);
    struct tms tm;
    clock_t t = times(&tm);
    B("times_returns_ticks", t != (clock_t)-1);
    B("times_utime", tm.tms_utime >= 30 && tm.tms_cutime >= 10);

    /* ITIMER_VIRTUAL fires while spinning in user code, not while asleep. */
    signal(SIGVTALRM, on_vt);
    signal(SIGPROF, on_prof);
    struct itimerval it = {{0, 0}, {0, 100000}}, old;
    T("setitimer_virtual", setitimer(ITIMER_VIRTUAL, &it, 0));
    usleep(300000);
    V("virtual_fired_while_asleep", vt);
    T("getitimer_virtual", getitimer(ITIMER_VIRTUAL, &old));
    B("virtual_still_armed", old.it_value.tv_sec == 0 && old.it_value.tv_usec > 50000);
    spin(0.4);
    V("virtual_fired_once", vt);
    getitimer(ITIMER_VIRTUAL, &old);
    B("one_shot_disarmed", old.it_value.tv_sec == 0 && old.it_value.tv_usec == 0);
    /* A periodic profiling timer. */
    struct itimerval per = {{0, 50000}, {0, 50000}};
    T("setitimer_prof", setitimer(ITIMER_PROF, &per, 0));
    spin(0.5);
    struct itimerval off = {{0, 0}, {0, 0}};
    T("setitimer_prof_off", setitimer(ITIMER_PROF, &off, &old));
    B("prof_fired_several_times", prof >= 3 && prof <= 20);
    B("prof_old_interval", old.it_interval.tv_usec == 50000);

    E("getrusage_bad_who", getrusage(7, &ru), EINVAL);
    E("getrusage_bad_ptr", getrusage(RUSAGE_SELF, (struct rusage *)8), EFAULT);
    E("setitimer_bad_which", setitimer(5, &it, 0), EINVAL);
    struct itimerval bad = {{0, 0}, {0, 2000000}};
    E("setitimer_bad_usec", setitimer(ITIMER_VIRTUAL, &bad, 0), EINVAL);
    printf("done\n");
    return 0;
}
