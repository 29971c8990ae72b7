/* Waiting for readiness: poll, ppoll, select, pselect6 and epoll_wait are
 * woken by the event itself (a write from another thread or process, a
 * writer's close, a timer, a signal), with the mask and timeout semantics
 * Linux has. */
#include "common.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

/* Timeout of waits that an event must end: far longer than a loaded
 * machine takes to run the thread or child that makes the event, so a
 * wait that ends by timing out is a missed wake-up, never slowness. */
#define LONG_MS 30000

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int wfd;
static void *late_writer(void *a)
{
    (void)a;
    usleep(50000);
    write(wfd, "x", 1);
    return 0;
}

static volatile sig_atomic_t usr1;
static void on_usr1(int s) { (void)s; usr1++; }

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    int p[2];
    T("pipe", pipe(p));
    wfd = p[1];

    /* poll woken by another thread's write. */
    pthread_t t;
    pthread_create(&t, 0, late_writer, 0);
    struct pollfd pf = {p[0], POLLIN, 0};
    double t0 = now();
    V("poll_thread_write", poll(&pf, 1, LONG_MS));
    B("poll_revents_in", pf.revents == POLLIN);
    B("poll_woke_before_timeout", now() - t0 < LONG_MS / 1000.0 - 10);
    pthread_join(t, 0);
    char b;
    read(p[0], &b, 1);

    /* select over several fds, one made ready by a child process. */
    int q[2];
    pipe(q);
    pid_t c = fork();
    if (c == 0) {
        usleep(50000);
        write(q[1], "y", 1);
        _exit(0);
    }
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    FD_SET(q[0], &rs);
    struct timeval tv = {LONG_MS / 1000, 0};
    V("select_child_write", select((p[0] > q[0] ? p[0] : q[0]) + 1, &rs, 0, 0, &tv));
    B("select_right_fd", FD_ISSET(q[0], &rs) && !FD_ISSET(p[0], &rs));
    B("select_time_left_written", tv.tv_sec < LONG_MS / 1000 && tv.tv_sec >= 10);
    waitpid(c, 0, 0);
    read(q[0], &b, 1);

    /* select timing out writes back zero. */
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval shortv = {0, 20000};
    V("select_timeout", select(p[0] + 1, &rs, 0, 0, &shortv));
    B("select_timeout_zeroed", shortv.tv_sec == 0 && shortv.tv_usec == 0);

    /* epoll on an eventfd written by a child. */
    int efd = eventfd(0, 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {.u64 = 77}};
    T("epoll_ctl_eventfd", epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
    c = fork();
    if (c == 0) {
        usleep(50000);
        uint64_t one = 1;
        write(efd, &one, 8);
        _exit(0);
    }
    struct epoll_event out[4];
    V("epoll_wait_child_eventfd", epoll_wait(ep, out, 4, LONG_MS));
    V("epoll_data", (int)out[0].data.u64);
    waitpid(c, 0, 0);

    /* Nested epoll: the outer one wakes when the inner one's pipe does. */
    int inner = epoll_create1(0), outer = epoll_create1(0);
    struct epoll_event iev = {EPOLLIN, {.u64 = 1}}, oev = {EPOLLIN, {.u64 = 2}};
    epoll_ctl(inner, EPOLL_CTL_ADD, p[0], &iev);
    epoll_ctl(outer, EPOLL_CTL_ADD, inner, &oev);
    pthread_create(&t, 0, late_writer, 0);
    V("nested_epoll_wait", epoll_wait(outer, out, 4, LONG_MS));
    V("nested_epoll_data", (int)out[0].data.u64);
    pthread_join(t, 0);
    read(p[0], &b, 1);

    /* poll on a FIFO whose writer goes away: POLLHUP. */
    char fifo[] = "/tmp/poll_wake_fifo_XXXXXX";
    int tmpfd = mkstemp(fifo);
    close(tmpfd);
    unlink(fifo);
    T("mkfifo", mkfifo(fifo, 0600));
    c = fork();
    if (c == 0) {
        int w = open(fifo, O_WRONLY);
        usleep(50000);
        close(w);
        _exit(0);
    }
    int r = open(fifo, O_RDONLY);
    struct pollfd hf = {r, POLLIN, 0};
    V("poll_fifo_hangup", poll(&hf, 1, LONG_MS));
    B("pollhup", (hf.revents & POLLHUP) != 0);
    waitpid(c, 0, 0);
    close(r);
    unlink(fifo);

    /* A timer wakes poll; a timerfd in epoll too. */
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {{0, 0}, {0, 30000000}};
    timerfd_settime(tfd, 0, &its, 0);
    struct pollfd tp = {tfd, POLLIN, 0};
    V("poll_timerfd", poll(&tp, 1, -1));
    uint64_t ticks;
    read(tfd, &ticks, 8);
    timerfd_settime(tfd, 0, &its, 0);
    struct epoll_event tev = {EPOLLIN, {.u64 = 9}};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    V("epoll_timerfd", epoll_wait(ep, out, 4, LONG_MS));
    V("epoll_timerfd_data", (int)out[0].data.u64);

    /* signalfd in poll: a blocked signal sent later by a child. */
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGUSR2);
    sigprocmask(SIG_BLOCK, &ss, 0);
    int sfd = signalfd(-1, &ss, 0);
    pid_t me = getpid();
    c = fork();
    if (c == 0) {
        usleep(50000);
        kill(me, SIGUSR2);
        _exit(0);
    }
    struct pollfd sp = {sfd, POLLIN, 0};
    V("poll_signalfd", poll(&sp, 1, LONG_MS));
    struct signalfd_siginfo si;
    V("signalfd_read_size", (int)read(sfd, &si, sizeof si));
    V("signalfd_signo", (int)si.ssi_signo);
    waitpid(c, 0, 0);

    /* ppoll/pselect6: the given mask applies while waiting only. */
    signal(SIGUSR1, on_usr1);
    sigset_t block1, none, cur;
    sigemptyset(&block1);
    sigaddset(&block1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block1, 0);
    sigemptyset(&none);
    c = fork();
    if (c == 0) {
        usleep(50000);
        kill(me, SIGUSR1);
        _exit(0);
    }
    struct pollfd np = {p[0], POLLIN, 0};
    struct timespec longts = {LONG_MS / 1000, 0};
    E("ppoll_interrupted", ppoll(&np, 1, &longts, &none), EINTR);
    V("usr1_handled", usr1);
    sigprocmask(SIG_BLOCK, 0, &cur);
    B("mask_restored_after_ppoll", sigismember(&cur, SIGUSR1));
    waitpid(c, 0, 0);
    c = fork();
    if (c == 0) {
        usleep(50000);
        kill(me, SIGUSR1);
        _exit(0);
    }
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    E("pselect_interrupted", pselect(p[0] + 1, &rs, 0, 0, &longts, &none), EINTR);
    V("usr1_handled_again", usr1);
    sigprocmask(SIG_BLOCK, 0, &cur);
    B("mask_restored_after_pselect", sigismember(&cur, SIGUSR1));
    waitpid(c, 0, 0);
    /* A signal blocked by the given mask does not interrupt. */
    struct timespec tenth = {0, 100000000};
    kill(me, SIGUSR1);
    V("ppoll_with_blocking_mask", ppoll(&np, 1, &tenth, &block1));
    sigprocmask(SIG_UNBLOCK, &block1, 0);
    V("usr1_after_unblock", usr1);

    /* Errors. */
    E("poll_bad_ptr", poll((struct pollfd *)8, 1, 0), EFAULT);
    E("epoll_wait_bad_max", epoll_wait(ep, out, 0, 0), EINVAL);
    E("ppoll_bad_sigsetsize", syscall(SYS_ppoll, &np, 1, &tenth, &none, 4), EINVAL);
    struct pollfd bad = {999, POLLIN, 0};
    V("poll_nval", poll(&bad, 1, 0));
    B("pollnval", bad.revents == POLLNVAL);
    printf("done\n");
    return 0;
}
