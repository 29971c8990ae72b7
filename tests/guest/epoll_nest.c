/* Epoll sets inside epoll sets: Linux allows chains of at most 5 epolls
 * (EP_MAX_NESTS = 4 links) and no loops; EPOLL_CTL_ADD that would make a
 * longer chain or a loop fails with ELOOP, whichever end the chain is
 * built from. Readiness still travels up a legal chain, and a thousand
 * attempts to build deeper ones change nothing. */
#include "common.h"
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>

#define N 8

static int add(int ep, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int ready(int ep)
{
    struct epoll_event out[4];
    return epoll_wait(ep, out, 4, 0);
}

static int chain_top, chain_pipe[2];
static volatile int waiting;

static void *wait_on_top(void *arg)
{
    (void)arg;
    struct epoll_event out[4];
    waiting = 1;
    long n = epoll_wait(chain_top, out, 4, -1);
    return (void *)n;
}

int main(void)
{
    guest_init();
    int p[2];
    T("pipe", pipe(p));

    /* Top down: e[0] holds e[1] holds e[2] ... */
    int e[N];
    for (int i = 0; i < N; i++)
        e[i] = epoll_create1(0);
    char name[64];
    for (int i = 0; i + 1 < N; i++) {
        snprintf(name, sizeof name, "down_add_%d_into_%d", i + 1, i);
        T(name, add(e[i], e[i + 1]));
    }
    /* The pipe at the bottom of the deepest legal chain. */
    T("down_add_pipe_into_4", add(e[4], p[0]));
    V("down_ready_before", ready(e[0]));
    V("write", write(p[1], "x", 1));
    V("down_ready_top", ready(e[0]));
    V("down_ready_middle", ready(e[2]));

    /* Bottom up: f[4] first, then each new one on top. */
    int f[N];
    for (int i = 0; i < N; i++)
        f[i] = epoll_create1(0);
    for (int i = N - 2; i >= 0; i--) {
        snprintf(name, sizeof name, "up_add_%d_into_%d", i + 1, i);
        T(name, add(f[i], f[i + 1]));
    }

    /* In the middle: joining two legal chains into one too long. */
    int g[6];
    for (int i = 0; i < 6; i++)
        g[i] = epoll_create1(0);
    T("mid_add_1_into_0", add(g[0], g[1]));
    T("mid_add_2_into_1", add(g[1], g[2]));
    T("mid_add_4_into_3", add(g[3], g[4]));
    T("mid_add_5_into_4", add(g[4], g[5]));
    E("mid_join_3_into_2", add(g[2], g[3]), ELOOP);
    T("mid_del_5_from_4", epoll_ctl(g[4], EPOLL_CTL_DEL, g[5], NULL));
    T("mid_join_3_into_2_after_del", add(g[2], g[3]));

    /* Loops. */
    int a = epoll_create1(0), b = epoll_create1(0), c = epoll_create1(0);
    E("self", add(a, a), EINVAL);
    T("a_holds_b", add(a, b));
    E("b_holds_a", add(b, a), ELOOP);
    T("b_holds_c", add(b, c));
    E("c_holds_a", add(c, a), ELOOP);
    int a2 = dup(a);
    E("c_holds_dup_of_a", add(c, a2), ELOOP);

    /* A diamond is no loop. */
    int d = epoll_create1(0);
    T("diamond_a_holds_c", add(a, c));
    T("diamond_c_holds_d", add(c, d));
    T("diamond_b_holds_d", add(b, d));

    /* Closing an epoll takes it out of the chain: h[0..4] is full, h[5]
     * holding h[6] fits under h[4] once h[2] in the middle is gone. */
    int h[7];
    for (int i = 0; i < 7; i++)
        h[i] = epoll_create1(0);
    for (int i = 0; i + 1 < 5; i++) {
        snprintf(name, sizeof name, "close_add_%d_into_%d", i + 1, i);
        T(name, add(h[i], h[i + 1]));
    }
    T("close_add_6_into_5", add(h[5], h[6]));
    E("close_add_5_into_4", add(h[4], h[5]), ELOOP);
    T("close_2", close(h[2]));
    T("close_add_5_into_4_after", add(h[4], h[5]));

    /* A thousand tries at a deeper chain: each fails, nothing breaks. */
    int top = e[0], failed = 0, deep = epoll_create1(0);
    for (int i = 0; i < 1000; i++) {
        int n = epoll_create1(0);
        if (add(n, top) < 0 && errno == ELOOP)
            failed++;
        else
            top = n;
        if (add(e[4], n) == 0)
            failed += 1000;
        close(n);
    }
    V("deep_failed", failed);
    V("deep_ready_top_again", ready(e[0]));
    close(deep);

    /* A wake-up travels up the deepest legal chain to a thread blocked
     * on its top; poll sees the top ready too. */
    int w[5];
    for (int i = 0; i < 5; i++)
        w[i] = epoll_create1(0);
    for (int i = 0; i + 1 < 5; i++)
        add(w[i], w[i + 1]);
    T("wake_pipe", pipe(chain_pipe));
    T("wake_add_pipe", add(w[4], chain_pipe[0]));
    chain_top = w[0];
    pthread_t th;
    pthread_create(&th, NULL, wait_on_top, NULL);
    while (!waiting)
        sched_yield();
    struct pollfd pfd = { .fd = w[0], .events = POLLIN };
    V("wake_poll_before", poll(&pfd, 1, 0));
    V("wake_write", write(chain_pipe[1], "y", 1));
    void *got;
    pthread_join(th, &got);
    V("wake_thread_saw", (long)got);
    V("wake_poll_after", poll(&pfd, 1, 0));
    B("wake_poll_pollin", pfd.revents == POLLIN);

    /* Edge-triggered interest in a nested epoll: one report per change. */
    int et = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = w[3] };
    T("et_add", epoll_ctl(et, EPOLL_CTL_ADD, w[3], &ev));
    V("et_first", ready(et));
    V("et_again", ready(et));
    /* (A second write while still readable: Linux reports an
     * edge-triggered interest again on any wake-up; not compared here.) */
    ev.events = EPOLLIN;
    T("et_mod_level", epoll_ctl(et, EPOLL_CTL_MOD, w[3], &ev));
    V("et_level", ready(et));
    V("et_level_again", ready(et));
    ev.events = EPOLLIN | EPOLLONESHOT;
    T("oneshot_mod", epoll_ctl(et, EPOLL_CTL_MOD, w[3], &ev));
    V("oneshot_first", ready(et));
    V("oneshot_again", ready(et));
    T("nested_del", epoll_ctl(et, EPOLL_CTL_DEL, w[3], NULL));
    E("nested_del_again", epoll_ctl(et, EPOLL_CTL_DEL, w[3], NULL), ENOENT);
    E("nested_mod_gone", epoll_ctl(et, EPOLL_CTL_MOD, w[3], &ev), ENOENT);
    /* et holds w[3] holds w[4]: w[0] may hold et (4 epolls deep), but
     * then nothing may go on top of w[0] or under w[4]. */
    T("et_readd", add(et, w[3]));
    T("chain_through_et", add(w[0], et));
    int over = epoll_create1(0);
    E("chain_on_top", add(over, w[0]), ELOOP);
    E("chain_under_bottom", add(w[4], over), ELOOP);
    E("chain_loop_through_et", add(w[4], et), ELOOP);

    /* Bad input. */
    E("ctl_badfd", add(w[0], 9999), EBADF);
    E("ctl_bad_epfd", add(9999, w[1]), EBADF);
    E("ctl_not_epoll", add(chain_pipe[0], w[1]), EINVAL);
    E("ctl_bad_op", epoll_ctl(w[0], 99, w[1], &ev), EINVAL);
    E("ctl_add_twice", add(w[0], w[1]), EEXIST);
    E("ctl_badptr", epoll_ctl(et, EPOLL_CTL_ADD, w[2], (struct epoll_event *)8), EFAULT);
    int reg = open("/proc/self/exe", O_RDONLY);
    E("ctl_regular_file", add(w[0], reg), EPERM);
    E("wait_maxevents0", epoll_wait(w[0], (struct epoll_event *)&ev, 0, 0), EINVAL);
    E("wait_not_epoll", epoll_wait(chain_pipe[0], (struct epoll_event *)&ev, 1, 0), EINVAL);
    E("create1_badflags", epoll_create1(1), EINVAL);
    E("create_zero", epoll_create(0), EINVAL);
    printf("done\n");
    return 0;
}
