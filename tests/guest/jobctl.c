/* Job control: stop and continue signals, their effect on a process and
 * its threads, and how the parent learns of them (SIGCHLD codes, wait4
 * WUNTRACED/WCONTINUED, waitid WSTOPPED/WCONTINUED/WNOWAIT). */
#include "common.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static volatile sig_atomic_t chld_code, chld_status, cont_handled, tstp_handled;

static void on_chld(int s, siginfo_t *si, void *u)
{
    (void)s;
    (void)u;
    chld_code = si->si_code;
    chld_status = si->si_status;
}
static void on_cont(int s) { (void)s; cont_handled = 1; }
static void on_tstp(int s) { (void)s; tstp_handled = 1; }

/* How long to wait for something that must happen: a loaded machine may
 * leave a runnable process off the CPU for a long while. Checks that
 * something does NOT happen (while stopped) use a short window instead. */
#define DEADLINE 20.0

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void wait_for_chld(int code)
{
    double end = mono() + DEADLINE;
    while (chld_code != code && mono() < end) usleep(1000);
}

/* Whether fd becomes readable before the deadline. */
static int wait_readable(int fd)
{
    double end = mono() + DEADLINE;
    struct pollfd p = {fd, POLLIN, 0};
    while (mono() < end)
        if (poll(&p, 1, 100) > 0) return 1; /* SIGCHLD may cut a poll short */
    return 0;
}

/* A child that counts in a pipe while it runs: a stopped child writes
 * nothing. */
static pid_t counting_child(int wfd)
{
    pid_t p = fork();
    if (p == 0) {
        for (;;) {
            if (write(wfd, "x", 1) != 1) _exit(1);
            usleep(2000);
        }
    }
    return p;
}

static int drain(int fd)
{
    char b[4096];
    int n = 0, r;
    while ((r = read(fd, b, sizeof b)) > 0) n += r;
    return n;
}

static void *spinner(void *a)
{
    volatile long *n = a;
    for (;;) (*n)++;
    return 0;
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, 0);

    int p[2];
    T("pipe", pipe2(p, O_NONBLOCK));
    pid_t c = counting_child(p[1]);
    usleep(20000);
    T("kill_stop", kill(c, SIGSTOP));
    int st = 0;
    V("wait_untraced_pid", waitpid(c, &st, WUNTRACED) == c);
    B("stopped", WIFSTOPPED(st));
    V("stopsig", WSTOPSIG(st));
    wait_for_chld(CLD_STOPPED);
    V("sigchld_code_stopped", chld_code);
    V("sigchld_status_stopped", chld_status);
    drain(p[0]);
    usleep(30000);
    V("writes_while_stopped", drain(p[0]));
    V("wait_untraced_again_nohang", waitpid(c, &st, WUNTRACED | WNOHANG));

    T("kill_cont", kill(c, SIGCONT));
    V("wait_continued_pid", waitpid(c, &st, WCONTINUED) == c);
    B("continued", WIFCONTINUED(st));
    wait_for_chld(CLD_CONTINUED);
    V("sigchld_code_continued", chld_code);
    B("writes_after_continue", wait_readable(p[0]) && drain(p[0]) > 0);

    /* waitid with WNOWAIT leaves the event for the next call. */
    T("kill_tstp", kill(c, SIGTSTP));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    T("waitid_stopped_nowait", waitid(P_PID, c, &si, WSTOPPED | WNOWAIT));
    V("waitid_code", si.si_code);
    V("waitid_status", si.si_status);
    memset(&si, 0, sizeof si);
    T("waitid_stopped", waitid(P_PID, c, &si, WSTOPPED));
    V("waitid_code_again", si.si_code);
    memset(&si, 0, sizeof si);
    T("waitid_nothing", waitid(P_PID, c, &si, WSTOPPED | WNOHANG));
    V("waitid_nothing_pid", si.si_pid);

    /* SIGKILL ends a stopped process. */
    T("kill_kill_stopped", kill(c, SIGKILL));
    V("wait_killed", waitpid(c, &st, 0) == c);
    B("killed_by_9", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* A handled SIGTSTP does not stop; SIGCONT's handler runs on continue;
     * a stop signal cancels a pending SIGCONT and vice versa. */
    pid_t h = fork();
    if (h == 0) {
        signal(SIGTSTP, on_tstp);
        signal(SIGCONT, on_cont);
        raise(SIGTSTP);
        printf("child_tstp_handled %d\n", tstp_handled);
        raise(SIGSTOP);
        /* Runs after the parent's SIGCONT. */
        printf("child_cont_handled %d\n", cont_handled);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGCONT);
        sigprocmask(SIG_BLOCK, &s, 0);
        raise(SIGCONT);
        sigpending(&s);
        printf("child_cont_pending %d\n", sigismember(&s, SIGCONT));
        signal(SIGTTIN, SIG_IGN);
        raise(SIGTTIN);
        sigpending(&s);
        printf("child_cont_pending_after_ignored_stop %d\n", sigismember(&s, SIGCONT));
        fflush(stdout);
        _exit(7);
    }
    V("handled_child_stops", waitpid(h, &st, WUNTRACED) == h);
    B("handled_child_stopped_by_sigstop", WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    kill(h, SIGCONT);
    V("handled_child_exit", waitpid(h, &st, 0) == h);
    V("handled_child_status", WEXITSTATUS(st));

    /* All threads stop: a spinning thread makes no progress while the
     * process is stopped. */
    int q[2];
    T("pipe2", pipe(q));
    pid_t m = fork();
    if (m == 0) {
        static volatile long n;
        pthread_t t;
        pthread_create(&t, 0, spinner, (void *)&n);
        for (;;) {
            char cmd;
            if (read(q[0], &cmd, 1) != 1) _exit(1);
            long v = n;
            if (write(p[1], &v, sizeof v) != sizeof v) _exit(1);
        }
    }
    usleep(20000);
    T("stop_threaded", kill(m, SIGSTOP));
    V("threaded_stopped", waitpid(m, &st, WUNTRACED) == m);
    drain(p[0]);
    /* A request written while stopped is only answered after SIGCONT. */
    T("request", write(q[1], "a", 1));
    usleep(50000);
    V("answers_while_stopped", drain(p[0]));
    kill(m, SIGCONT);
    long v1 = 0, v2 = 0;
    B("answer_after_continue", wait_readable(p[0]) && read(p[0], &v1, sizeof v1) == sizeof v1);
    /* Ask again until the spinner has moved on. */
    double end = mono() + DEADLINE;
    do {
        usleep(1000);
        if (write(q[1], "b", 1) != 1 || !wait_readable(p[0]) || read(p[0], &v2, sizeof v2) != sizeof v2) break;
    } while (v2 <= v1 && mono() < end);
    B("spinner_runs_after_continue", v2 > v1);
    kill(m, SIGKILL);
    waitpid(m, &st, 0);

    /* SA_NOCLDSTOP: no SIGCHLD for stops, wait still reports them. */
    sa.sa_flags |= SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, 0);
    chld_code = 0;
    c = counting_child(p[1]);
    kill(c, SIGSTOP);
    V("nocldstop_wait", waitpid(c, &st, WUNTRACED) == c);
    usleep(20000);
    V("nocldstop_sigchld_code", chld_code);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);

    /* Errors. */
    E("wait4_bad_options", wait4(-1, &st, 0x10000, 0), EINVAL);
    E("waitid_no_event_flags", waitid(P_ALL, 0, &si, WNOHANG), EINVAL);
    E("waitid_no_child", waitid(P_PID, 99999, &si, WSTOPPED), ECHILD);
    printf("done\n");
    return 0;
}
