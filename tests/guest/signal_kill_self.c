/* kill(2) of one's own process is process-directed: a thread that sends
 * it and blocks it does not keep it to itself. sigwait in another thread
 * receives it, it stays pending for the process after the sender exits,
 * and an unblocked caller still runs its handler before kill returns.
 * CPython's test_signal.test_sigwait_thread hung on this. */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <time.h>

static volatile sig_atomic_t handled;
static void on_usr2(int s)
{
    (void)s;
    handled++;
}

static int how; /* 0: kill(getpid()), 1: kill(0) (process group) */

static void *sender(void *p)
{
    (void)p;
    /* The signal is blocked here too (inherited mask). */
    kill(how ? 0 : getpid(), SIGUSR1);
    return NULL;
}

static int sigwait_for_thread_kill(int h)
{
    how = h;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    /* Every thread blocks SIGUSR1; without a timeout this would hang if
     * the signal stayed with the sender. */
    struct timespec ts = {30, 0};
    siginfo_t si;
    int r = sigtimedwait(&s, &si, &ts);
    pthread_join(t, NULL);
    return r == SIGUSR1 && si.si_code == SI_USER;
}

int main(void)
{
    /* kill(0) must reach this program only (the harness already gives it
     * a group of its own; the result does not matter). */
    (void)setpgid(0, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);

    B("sigwait_gets_thread_kill_getpid", sigwait_for_thread_kill(0));
    B("sigwait_gets_thread_kill_0", sigwait_for_thread_kill(1));

    /* Sent by a thread that then exits: still pending for the process. */
    how = 0;
    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    pthread_join(t, NULL);
    sigset_t pend;
    sigpending(&pend);
    B("pending_after_sender_exit", sigismember(&pend, SIGUSR1));
    int sig = 0;
    V("sigwait_after_exit", sigwait(&s, &sig));
    B("sigwait_after_exit_sig", sig == SIGUSR1);
    sigpending(&pend);
    B("none_pending", !sigismember(&pend, SIGUSR1));

    /* Unblocked in the caller: handled before kill returns. */
    signal(SIGUSR2, on_usr2);
    T("kill_self_usr2", kill(getpid(), SIGUSR2));
    B("handled_before_return", handled == 1);
    T("kill_group_usr2", kill(0, SIGUSR2));
    B("handled_group", handled == 2);
    T("kill_self_0", kill(getpid(), 0));
    E("kill_self_bad_sig", kill(getpid(), 65), EINVAL);
    E("kill_self_neg_sig", kill(getpid(), -1), EINVAL);
    printf("done\n");
    return 0;
}
