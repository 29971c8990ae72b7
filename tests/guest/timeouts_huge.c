/* Huge and negative timeouts in every call that takes one: LONG_MAX
 * seconds means "effectively for ever" (Linux clamps it to KTIME_MAX), a
 * negative time is EINVAL, and nothing may crash the kernel. Calls that
 * would then block for ever are either given a ready file, a pending
 * signal, or are interrupted by a short periodic SIGALRM (a handler
 * without SA_RESTART, so they fail with EINTR). Also in a forked child,
 * whose parent must see it exit. */
#include "common.h"
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#define HUGE_LEFT 1000000000L /* "more than 31 years left" */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* SIGALRM every 20 ms until disarmed: whatever blocks is interrupted. */
static void tick(int on)
{
    struct itimerval it = { { 0, on ? 20000 : 0 }, { 0, on ? 20000 : 0 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

/* The raw syscalls: libc's select normalizes the timeval itself. */
static void check_select(int rfd)
{
    fd_set r;
    struct timeval tv = { LONG_MAX, 999999 };
    FD_ZERO(&r);
    FD_SET(rfd, &r);
    V("select_longmax", syscall(SYS_select, rfd + 1, &r, NULL, NULL, &tv));
    B("select_left_huge", tv.tv_sec > HUGE_LEFT);
    FD_SET(rfd, &r);
    tv = (struct timeval){ 0, 1000000 }; /* whole seconds in tv_usec */
    V("select_usec_1e6", syscall(SYS_select, rfd + 1, &r, NULL, NULL, &tv));
    FD_SET(rfd, &r);
    tv = (struct timeval){ LONG_MAX, 1000000 }; /* wraps: negative */
    E("select_longmax_usec_1e6", syscall(SYS_select, rfd + 1, &r, NULL, NULL, &tv), EINVAL);
    FD_SET(rfd, &r);
    tv = (struct timeval){ -1, 0 };
    E("select_negative", syscall(SYS_select, rfd + 1, &r, NULL, NULL, &tv), EINVAL);
    FD_SET(rfd, &r);
    tv = (struct timeval){ 0, -1 };
    E("select_negative_usec", syscall(SYS_select, rfd + 1, &r, NULL, NULL, &tv), EINVAL);

    struct timespec ts = { LONG_MAX, 999999999 };
    FD_SET(rfd, &r);
    V("pselect_longmax", syscall(SYS_pselect6, rfd + 1, &r, NULL, NULL, &ts, NULL));
    B("pselect_left_huge", ts.tv_sec > HUGE_LEFT);
    ts = (struct timespec){ -1, 0 };
    FD_SET(rfd, &r);
    E("pselect_negative", syscall(SYS_pselect6, rfd + 1, &r, NULL, NULL, &ts, NULL), EINVAL);
    ts = (struct timespec){ 0, 1000000000 };
    FD_SET(rfd, &r);
    E("pselect_nsec_1e9", syscall(SYS_pselect6, rfd + 1, &r, NULL, NULL, &ts, NULL), EINVAL);
}

static void check_poll(int rfd)
{
    struct pollfd p = { rfd, POLLIN, 0 };
    V("poll_intmax", poll(&p, 1, INT_MAX));
    struct timespec ts = { LONG_MAX, 999999999 };
    V("ppoll_longmax", syscall(SYS_ppoll, &p, 1, &ts, NULL, 8));
    B("ppoll_left_huge", ts.tv_sec > HUGE_LEFT);
    ts = (struct timespec){ -1, 0 };
    E("ppoll_negative", syscall(SYS_ppoll, &p, 1, &ts, NULL, 8), EINVAL);
    ts = (struct timespec){ 0, -1 };
    E("ppoll_negative_nsec", syscall(SYS_ppoll, &p, 1, &ts, NULL, 8), EINVAL);

    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 };
    T("epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, rfd, &ev));
    struct epoll_event out;
    V("epoll_wait_intmax", epoll_wait(ep, &out, 1, INT_MAX));
    close(ep);
}

static void check_sleeps(void)
{
    struct timespec ts = { LONG_MAX, 999999999 }, rem = { 0, 0 };
    tick(1);
    E("nanosleep_longmax", nanosleep(&ts, &rem), EINTR);
    B("nanosleep_rem_huge", rem.tv_sec > HUGE_LEFT);
    rem = (struct timespec){ 0, 0 };
    E("clock_nanosleep_longmax", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, &rem), EINTR);
    B("clock_nanosleep_rem_huge", rem.tv_sec > HUGE_LEFT);
    E("clock_nanosleep_abs_longmax",
      syscall(SYS_clock_nanosleep, CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL), EINTR);
    tick(0);
    ts = (struct timespec){ -1, 0 };
    E("nanosleep_negative", nanosleep(&ts, NULL), EINVAL);
    ts = (struct timespec){ 0, 1000000000 };
    E("nanosleep_nsec_1e9", nanosleep(&ts, NULL), EINVAL);
    E("clock_nanosleep_negative", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL), EINVAL);
}

static void check_futex(void)
{
    static int word;
    struct timespec ts = { LONG_MAX, 999999999 };
    tick(1);
    E("futex_wait_longmax", syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0), EINTR);
    E("futex_wait_bitset_abs_longmax",
      syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &ts, NULL, FUTEX_BITSET_MATCH_ANY), EINTR);
    tick(0);
    ts = (struct timespec){ -1, 0 };
    E("futex_wait_negative", syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0), EINVAL);
}

static void check_itimers(void)
{
    struct itimerval it = { { LONG_MAX, 999999 }, { LONG_MAX, 999999 } }, cur;
    T("setitimer_real_longmax", setitimer(ITIMER_REAL, &it, NULL));
    T("getitimer_real", getitimer(ITIMER_REAL, &cur));
    B("getitimer_real_huge", cur.it_value.tv_sec > HUGE_LEFT);
    B("getitimer_real_interval_huge", cur.it_interval.tv_sec > HUGE_LEFT);
    T("setitimer_virtual_longmax", setitimer(ITIMER_VIRTUAL, &it, NULL));
    T("getitimer_virtual", getitimer(ITIMER_VIRTUAL, &cur));
    /* Linux's own arithmetic overflows here (it reads back negative):
     * only check that the timer is armed. */
    B("getitimer_virtual_armed", cur.it_value.tv_sec != 0 || cur.it_value.tv_usec != 0);
    T("setitimer_prof_longmax", setitimer(ITIMER_PROF, &it, NULL));
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    T("setitimer_real_off", setitimer(ITIMER_REAL, &off, NULL));
    T("setitimer_virtual_off", setitimer(ITIMER_VIRTUAL, &off, NULL));
    T("setitimer_prof_off", setitimer(ITIMER_PROF, &off, NULL));
    it = (struct itimerval){ { 0, 0 }, { -1, 0 } };
    E("setitimer_negative", setitimer(ITIMER_REAL, &it, NULL), EINVAL);
    it = (struct itimerval){ { 0, 0 }, { 0, 1000000 } };
    E("setitimer_usec_1e6", setitimer(ITIMER_REAL, &it, NULL), EINVAL);
    it = (struct itimerval){ { -1, 0 }, { 1, 0 } };
    E("setitimer_negative_interval", setitimer(ITIMER_REAL, &it, NULL), EINVAL);

    V("alarm_uintmax", alarm(UINT_MAX));
    unsigned left = alarm(0);
    B("alarm_left_huge", left > UINT_MAX - 1000);
}

static void check_timerfd(void)
{
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = { { LONG_MAX, 999999999 }, { LONG_MAX, 999999999 } }, cur;
    T("timerfd_settime_longmax", timerfd_settime(t, 0, &its, NULL));
    T("timerfd_gettime", timerfd_gettime(t, &cur));
    B("timerfd_left_huge", cur.it_value.tv_sec > HUGE_LEFT);
    B("timerfd_interval_huge", cur.it_interval.tv_sec > HUGE_LEFT);
    T("timerfd_settime_abs_longmax", timerfd_settime(t, TFD_TIMER_ABSTIME, &its, NULL));
    T("timerfd_gettime_abs", timerfd_gettime(t, &cur));
    B("timerfd_abs_left_huge", cur.it_value.tv_sec > HUGE_LEFT);
    its = (struct itimerspec){ { 0, 0 }, { -1, 0 } };
    E("timerfd_settime_negative", timerfd_settime(t, 0, &its, NULL), EINVAL);
    its = (struct itimerspec){ { 0, -1 }, { 1, 0 } };
    E("timerfd_settime_negative_interval", timerfd_settime(t, 0, &its, NULL), EINVAL);
    /* A 1 ns period that expires at once: counting the expirations must
     * not overflow anything. */
    its = (struct itimerspec){ { 0, 1 }, { 0, 1 } };
    T("timerfd_settime_1ns", timerfd_settime(t, 0, &its, NULL));
    unsigned long long n = 0;
    V("timerfd_read_1ns", read(t, &n, 8));
    B("timerfd_1ns_expired", n >= 1);
    close(t);
}

static void check_sigtimedwait(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    struct timespec ts = { LONG_MAX, 999999999 };
    raise(SIGUSR1);
    V("sigtimedwait_longmax", syscall(SYS_rt_sigtimedwait, &s, NULL, &ts, 8));
    ts = (struct timespec){ -1, 0 };
    raise(SIGUSR1);
    E("sigtimedwait_negative", syscall(SYS_rt_sigtimedwait, &s, NULL, &ts, 8), EINVAL);
    ts = (struct timespec){ 0, 0 };
    V("sigtimedwait_drain", syscall(SYS_rt_sigtimedwait, &s, NULL, &ts, 8));
}

static void check_sockets(void)
{
    int sv[2];
    T("socketpair", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    struct timeval tv = { LONG_MAX, 999999 }, got;
    socklen_t len = sizeof got;
    T("rcvtimeo_longmax", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    T("get_rcvtimeo", getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &len));
    /* Too long for jiffies: no timeout, read back as 0. */
    B("rcvtimeo_longmax_reads_0", got.tv_sec == 0 && got.tv_usec == 0);
    T("sndtimeo_longmax", setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    V("send", send(sv[1], "x", 1, 0));
    char c;
    V("recv_longmax", recv(sv[0], &c, 1, 0));
    tv = (struct timeval){ -1, 0 };
    T("rcvtimeo_negative", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    len = sizeof got;
    T("get_rcvtimeo_negative", getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &len));
    B("rcvtimeo_negative_reads_0", got.tv_sec == 0 && got.tv_usec == 0);
    /* A negative timeout is a zero one: no waiting at all. */
    E("recv_negative_timeo", recv(sv[0], &c, 1, 0), EAGAIN);
    tv = (struct timeval){ 0, -1 };
    E("rcvtimeo_negative_usec", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), EDOM);
    tv = (struct timeval){ 0, 0 };
    T("rcvtimeo_off", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));

    V("send2", send(sv[1], "y", 1, 0));
    struct mmsghdr m;
    struct iovec io = { &c, 1 };
    memset(&m, 0, sizeof m);
    m.msg_hdr.msg_iov = &io;
    m.msg_hdr.msg_iovlen = 1;
    struct timespec ts = { LONG_MAX, 999999999 };
    V("recvmmsg_longmax", syscall(SYS_recvmmsg, sv[0], &m, 1, MSG_WAITFORONE, &ts));
    ts = (struct timespec){ -1, 0 };
    E("recvmmsg_negative", syscall(SYS_recvmmsg, sv[0], &m, 1, MSG_DONTWAIT, &ts), EINVAL);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    guest_init();
    struct sigaction sa = { 0 };
    sa.sa_handler = on_alarm; /* no SA_RESTART: blocked calls end in EINTR */
    T("sigaction_alrm", sigaction(SIGALRM, &sa, NULL));

    int p[2];
    T("pipe", pipe(p));
    V("write", write(p[1], "z", 1));

    check_select(p[0]);
    check_poll(p[0]);
    check_sleeps();
    check_futex();
    check_itimers();
    check_timerfd();
    check_sigtimedwait();
    check_sockets();

    /* The same from a forked child: its parent must see it exit. */
    pid_t pid = fork();
    if (pid == 0) {
        fd_set r;
        struct timeval tv = { LONG_MAX, 999999 };
        FD_ZERO(&r);
        FD_SET(p[0], &r);
        select(p[0] + 1, &r, NULL, NULL, &tv);
        struct itimerval it = { { 0, 0 }, { LONG_MAX, 999999 } };
        setitimer(ITIMER_REAL, &it, NULL);
        _exit(select(p[0] + 1, &r, NULL, NULL, &tv) == 1 ? 7 : 8);
    }
    int st = 0;
    T("waitpid_child", waitpid(pid, &st, 0));
    B("child_exited_7", WIFEXITED(st) && WEXITSTATUS(st) == 7);
    printf("done\n");
    return 0;
}
