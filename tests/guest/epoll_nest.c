/* Epoll sets inside epoll sets: Linux allows chains of at most 5 epolls
 * (EP_MAX_NESTS = 4 links) and no loops; EPOLL_CTL_ADD that would make a
 * longer chain or a loop fails with ELOOP, whichever end the chain is
 * built from. Readiness still travels up a legal chain, and a thousand
 * attempts to build deeper ones change nothing. */
#include "common.h"
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
    printf("done\n");
    return 0;
}
