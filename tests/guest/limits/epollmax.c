/* Sandbox-only (tests/tests/limits.rs): add eventfds to epoll sets until
 * EPOLL_CTL_ADD fails (fs.epoll.max_user_watches), report the errno and
 * count, and show that closing watched files gives the room back. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rlimit r = { 4096, 4096 };
    setrlimit(RLIMIT_NOFILE, &r);
    int ep[2] = { epoll_create1(0), epoll_create1(0) };
    int fds[3000], n = 0, err = 0;
    for (; n < 3000; n++) {
        fds[n] = eventfd(0, 0);
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = n };
        if (epoll_ctl(ep[n % 2], EPOLL_CTL_ADD, fds[n], &ev) != 0) {
            err = errno;
            close(fds[n]);
            break;
        }
    }
    printf("watches: %d, then %s\n", n, err == ENOSPC ? "ENOSPC" : strerror(err));
    for (int i = 0; i < 10; i++)
        close(fds[i]);
    int more = 0;
    for (int i = 0; i < 10; i++) {
        int fd = eventfd(0, 0);
        struct epoll_event ev = { .events = EPOLLIN };
        if (epoll_ctl(ep[0], EPOLL_CTL_ADD, fd, &ev) == 0)
            more++;
    }
    printf("after closing 10: %d more\n", more);
    return 0;
}
