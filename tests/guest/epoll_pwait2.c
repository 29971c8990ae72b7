/* epoll_pwait2: timespec timeouts (zero, finite, NULL = forever), the
 * temporary signal mask, and EINVAL for a bad timespec. */
#include "common.h"
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>

static long pw2(int ep, struct epoll_event *ev, int max, const struct timespec *ts, const sigset_t *mask)
{
    return syscall(SYS_epoll_pwait2, ep, ev, max, ts, mask, 8);
}

static volatile int got_usr1;

static void on_usr1(int s)
{
    (void)s;
    got_usr1 = 1;
}

int main(void)
{
    guest_init();
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 7 }, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    struct timespec zero = { 0, 0 }, short_ = { 0, 1000000 };
    V("empty_zero", pw2(ep, out, 4, &zero, NULL));
    V("empty_short", pw2(ep, out, 4, &short_, NULL));
    write(p[1], "x", 1);
    V("ready_zero", pw2(ep, out, 4, &zero, NULL));
    V("ready_data", out[0].data.u32);
    V("ready_null", pw2(ep, out, 4, NULL, NULL));
    char c;
    read(p[0], &c, 1);

    struct timespec neg = { -1, 0 }, big_ns = { 0, 1000000000 }, neg_ns = { 0, -1 };
    E("negative_sec", pw2(ep, out, 4, &neg, NULL), EINVAL);
    E("nsec_too_big", pw2(ep, out, 4, &big_ns, NULL), EINVAL);
    E("nsec_negative", pw2(ep, out, 4, &neg_ns, NULL), EINVAL);
    E("bad_timeout_ptr", pw2(ep, out, 4, (struct timespec *)8, NULL), EFAULT);
    E("max_zero", pw2(ep, out, 0, &zero, NULL), EINVAL);
    E("bad_epfd", pw2(999, out, 4, &zero, NULL), EBADF);
    E("not_epoll", pw2(p[0], out, 4, &zero, NULL), EINVAL);
    sigset_t none;
    sigemptyset(&none);
    E("bad_sigsetsize", syscall(SYS_epoll_pwait2, ep, out, 4, &zero, &none, 4), EINVAL);
    E("bad_mask_ptr", pw2(ep, out, 4, &zero, (sigset_t *)8), EFAULT);

    /* SIGUSR1 blocked outside, unblocked only during the wait: a child's
     * signal interrupts the (infinite) wait with EINTR and runs the
     * handler. */
    signal(SIGUSR1, on_usr1);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    int parent = getpid();
    int pid = fork();
    if (pid == 0) {
        kill(parent, SIGUSR1);
        _exit(0);
    }
    E("masked_wait_eintr", pw2(ep, out, 4, NULL, &none), EINTR);
    B("handler_ran", got_usr1);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    B("mask_restored", sigismember(&now, SIGUSR1));
    waitpid(pid, NULL, 0);
    printf("done\n");
    return 0;
}
