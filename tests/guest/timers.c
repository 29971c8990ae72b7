/* Interval timers and alarm: ITIMER_REAL delivers SIGALRM, one-shot and
 * periodic; getitimer reads what is left; alarm returns the seconds left
 * of the previous alarm; bad arguments fail as Linux says. */
#include "common.h"
#include <signal.h>
#include <sys/time.h>

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

int main(void)
{
    guest_init();
    struct sigaction sa = { 0 };
    sa.sa_handler = on_alarm;
    T("sigaction_alrm", sigaction(SIGALRM, &sa, NULL));
    /* SIGALRM is blocked except inside sigsuspend: one arriving between
     * the check of `alarms` and the wait cannot be missed. */
    sigset_t alrm, waitmask;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alrm, &waitmask);

    /* Far too long to run out before getitimer however loaded the machine
     * is; then shortened so the test need not wait for it. */
    struct itimerval it = { { 0, 0 }, { 100, 0 } };
    T("setitimer_oneshot", setitimer(ITIMER_REAL, &it, NULL));
    struct itimerval cur;
    T("getitimer_running", getitimer(ITIMER_REAL, &cur));
    B("getitimer_remaining_positive", cur.it_value.tv_sec > 0 || cur.it_value.tv_usec > 0);
    B("getitimer_remaining_less", cur.it_value.tv_sec < 100);
    struct itimerval soon = { { 0, 0 }, { 0, 20000 } }, prev;
    T("setitimer_shorten", setitimer(ITIMER_REAL, &soon, &prev));
    B("setitimer_returns_remaining", prev.it_value.tv_sec > 0 && prev.it_value.tv_sec < 100);
    while (alarms == 0)
        sigsuspend(&waitmask);
    V("oneshot_alarms", alarms);
    T("getitimer_after", getitimer(ITIMER_REAL, &cur));
    B("getitimer_disarmed", cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0);

    alarms = 0;
    struct itimerval per = { { 0, 20000 }, { 0, 20000 } };
    T("setitimer_periodic", setitimer(ITIMER_REAL, &per, NULL));
    while (alarms < 3)
        sigsuspend(&waitmask);
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    struct itimerval old;
    T("setitimer_disarm", setitimer(ITIMER_REAL, &off, &old));
    B("old_interval_kept", old.it_interval.tv_sec == 0 && old.it_interval.tv_usec == 20000);
    B("periodic_fired_3", alarms >= 3);

    V("alarm_first", alarm(1000));
    /* Rounded to whole seconds; however long we were off the CPU in between,
     * not 1000 s. */
    unsigned left = alarm(0);
    B("alarm_replaced_returns_left", left > 900 && left <= 1000);
    V("alarm_none_left", alarm(0));

    struct itimerval bad = { { 0, 0 }, { 0, 1000000 } };
    E("setitimer_bad_usec_einval", setitimer(ITIMER_REAL, &bad, NULL), EINVAL);
    E("setitimer_bad_which_einval", setitimer(7, &it, NULL), EINVAL);
    E("getitimer_efault", syscall(SYS_getitimer, ITIMER_REAL, (void *)1), EFAULT);
    P("done\n");
    return 0;
}
