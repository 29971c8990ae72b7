/* Extreme argument values the Sentry once turned into its own overflow
 * (a panic in debug builds: -INT_MIN) or that sit at the edge of Linux's
 * checks: each must fail with Linux's errno, never crash the sandbox. */
#include "common.h"
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);

    /* -INT_MIN is no pid or process group. */
    E("kill_intmin", kill(INT_MIN, 0), ESRCH);
    E("wait4_intmin", syscall(SYS_wait4, INT_MIN, NULL, WNOHANG, NULL), ESRCH);
    E("waitid_pgid_negative", syscall(SYS_waitid, P_PGID, -5, NULL, WEXITED | WNOHANG, NULL), EINVAL);
    E("getpgid_intmin", getpgid(INT_MIN), ESRCH);
    E("getsid_intmin", getsid(INT_MIN), ESRCH);
    E("setpgid_intmin", setpgid(0, INT_MIN), EINVAL);
    E("kill_intmax", kill(INT_MAX, 0), ESRCH);
    E("tgkill_intmin", syscall(SYS_tgkill, INT_MIN, INT_MIN, 0), EINVAL);
    E("kill_bad_signal", kill(0, INT_MIN), EINVAL);

    /* Offsets at the end of loff_t. */
    int fd = open(sp("f"), O_RDWR | O_CREAT, 0600);
    T("open", fd);
    char c[2] = "xy";
    E("pread_longmax", pread(fd, c, 1, LONG_MAX), EINVAL);
    E("pwrite_longmax", pwrite(fd, c, 1, LONG_MAX), EINVAL);
    E("pread_negative", pread(fd, c, 1, -1), EINVAL);
    E("pwrite_end_of_loff_t", pwrite(fd, c, 2, LONG_MAX - 1), EINVAL);
    V("pwrite_zero_at_longmax", pwrite(fd, c, 0, LONG_MAX));
    E("lseek_negative", lseek(fd, LONG_MIN, SEEK_SET), EINVAL);
    E("ftruncate_negative", ftruncate(fd, -1), EINVAL);
    E("fallocate_overflow", fallocate(fd, 0, LONG_MAX, LONG_MAX), EFBIG);
    close(fd);

    /* Counts and descriptors at the end of int. */
    E("dup2_intmax", dup2(0, INT_MAX), EBADF);
    E("fcntl_dupfd_intmax", fcntl(0, F_DUPFD, INT_MAX), EINVAL);
    struct pollfd p = { 0, POLLIN, 0 };
    /* nfds is an unsigned int: 2^32 is 0. */
    V("poll_nfds_2_32", syscall(SYS_poll, &p, (unsigned long)UINT_MAX + 1, 0));
    E("poll_nfds_uintmax", syscall(SYS_poll, &p, (unsigned long)UINT_MAX, 0), EINVAL);
    /* select looks no further than the descriptor table. */
    struct timeval zero = { 0, 0 };
    V("select_nfds_intmax", syscall(SYS_select, INT_MAX, NULL, NULL, NULL, &zero));
    E("select_nfds_negative", syscall(SYS_select, -1, NULL, NULL, NULL, NULL), EINVAL);
    int ep = epoll_create1(0);
    struct epoll_event ev[2];
    E("epoll_wait_maxevents_intmax", syscall(SYS_epoll_wait, ep, ev, INT_MAX, 0), EINVAL);
    E("epoll_wait_maxevents_negative", syscall(SYS_epoll_wait, ep, ev, INT_MIN, 0), EINVAL);
    E("epoll_create_negative", epoll_create(INT_MIN), EINVAL);
    close(ep);
    struct rlimit rl;
    E("getrlimit_intmin", syscall(SYS_getrlimit, INT_MIN, &rl), EINVAL);
    E("getrlimit_intmax", syscall(SYS_getrlimit, INT_MAX, &rl), EINVAL);

    guest_cleanup();
    printf("done\n");
    return 0;
}
