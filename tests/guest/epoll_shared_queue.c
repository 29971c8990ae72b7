/* epoll interests whose files share one wait queue (a pipe through two
 * descriptors; pidfds, which all share the exits queue): removing one
 * interest leaves the others woken. Every wait has a generous timeout;
 * natively each returns at once when the event comes. (The hang this
 * family had, asyncio's PidfdChildWatcher with ten children, is
 * tests/tests/workloads.rs::python3_asyncio_pidfd_children.)
 */
#include "common.h"
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>

static void nap_ms(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int add(int ep, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* A pipe watched through two descriptors; one interest removed. */
    int p[2];
    T("pipe", pipe(p));
    int dupfd = dup(p[0]);
    T("dup", dupfd);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    T("epoll", ep);
    T("add_read_end", add(ep, p[0]));
    T("add_dup", add(ep, dupfd));
    T("del_read_end", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    pid_t w = fork();
    if (w == 0) {
        nap_ms(100);
        _exit(write(p[1], "x", 1) == 1 ? 0 : 1);
    }
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 10000);
    B("dup_still_woken", n == 1 && out[0].data.fd == dupfd);
    waitpid(w, NULL, 0);
    close(ep);

    /* Pidfds: two children, the first reaped and its interest removed,
     * the second exits later and must still wake the set. */
    ep = epoll_create1(EPOLL_CLOEXEC);
    /* b exits only once told (through `go`), whatever the load. */
    int go[2];
    T("go_pipe", pipe(go));
    pid_t a = fork();
    if (a == 0)
        _exit(0);
    pid_t b = fork();
    if (b == 0) {
        char c;
        close(go[1]);
        _exit(read(go[0], &c, 1) == 1 ? 0 : 1);
    }
    close(go[0]);
    int pa = (int)syscall(SYS_pidfd_open, a, 0), pb = (int)syscall(SYS_pidfd_open, b, 0);
    B("pidfds", pa >= 0 && pb >= 0);
    T("add_a", add(ep, pa));
    T("add_b", add(ep, pb));
    n = epoll_wait(ep, out, 4, 10000);
    B("first_exit_seen", n >= 1 && out[0].data.fd == pa);
    T("reap_a", waitpid(a, NULL, 0) == a ? 0 : -1);
    T("del_a", epoll_ctl(ep, EPOLL_CTL_DEL, pa, NULL));
    pid_t tell = fork();
    if (tell == 0) {
        /* Told after the parent is waiting, as far as it can be. */
        nap_ms(100);
        _exit(write(go[1], "g", 1) == 1 ? 0 : 1);
    }
    n = epoll_wait(ep, out, 4, 10000);
    B("second_exit_seen", n == 1 && out[0].data.fd == pb);
    T("reap_b", waitpid(b, NULL, 0) == b ? 0 : -1);
    T("reap_teller", waitpid(tell, NULL, 0) == tell ? 0 : -1);
    printf("done\n");
    return 0;
}
