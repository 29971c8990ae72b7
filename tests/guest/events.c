/* eventfd, timerfd and epoll: values, blocking/non-blocking behaviour,
 * edge- and level-triggered readiness, one-shot interests, and the errors
 * Linux gives for bad arguments. */
#include "common.h"
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>

int main(void)
{
    guest_init();
    uint64_t v = 0;

    /* eventfd */
    int efd = eventfd(3, EFD_NONBLOCK);
    T("eventfd_create", efd);
    V("eventfd_read_initial", read(efd, &v, 8) == 8 ? (long)v : -1);
    E("eventfd_read_empty_eagain", read(efd, &v, 8), EAGAIN);
    v = 5;
    V("eventfd_write", write(efd, &v, 8));
    v = 2;
    V("eventfd_write_adds", write(efd, &v, 8));
    V("eventfd_read_sum", read(efd, &v, 8) == 8 ? (long)v : -1);
    E("eventfd_short_read_einval", read(efd, &v, 4), EINVAL);
    v = UINT64_MAX;
    E("eventfd_write_max_einval", write(efd, &v, 8), EINVAL);
    E("eventfd_bad_flags_einval", eventfd(0, 0x4), EINVAL);
    int sem = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    V("semaphore_read1", read(sem, &v, 8) == 8 ? (long)v : -1);
    V("semaphore_read2", read(sem, &v, 8) == 8 ? (long)v : -1);
    E("semaphore_empty_eagain", read(sem, &v, 8), EAGAIN);
    struct pollfd p = { efd, POLLIN | POLLOUT, 0 };
    V("eventfd_poll_empty", poll(&p, 1, 0) == 1 ? p.revents : -1);

    /* timerfd */
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    T("timerfd_create", tfd);
    E("timerfd_unarmed_eagain", read(tfd, &v, 8), EAGAIN);
    /* Armed far longer than a loaded machine could keep us from reading
     * it back, then re-armed short to see it fire. */
    struct itimerspec far = { { 0, 0 }, { 100, 0 } };
    T("timerfd_settime", timerfd_settime(tfd, 0, &far, NULL));
    struct itimerspec cur;
    T("timerfd_gettime", timerfd_gettime(tfd, &cur));
    B("timerfd_armed", cur.it_value.tv_sec > 0 || cur.it_value.tv_nsec > 0);
    struct itimerspec its = { { 0, 0 }, { 0, 20 * 1000 * 1000 } };
    T("timerfd_settime_short", timerfd_settime(tfd, 0, &its, NULL));
    struct pollfd tp = { tfd, POLLIN, 0 };
    V("timerfd_poll_fires", poll(&tp, 1, 30000));
    V("timerfd_read_one", read(tfd, &v, 8) == 8 ? (long)v : -1);
    struct itimerspec per = { { 0, 5 * 1000 * 1000 }, { 0, 5 * 1000 * 1000 } };
    timerfd_settime(tfd, 0, &per, NULL);
    struct timespec slp = { 0, 30 * 1000 * 1000 };
    nanosleep(&slp, NULL);
    B("timerfd_periodic_counts", read(tfd, &v, 8) == 8 && v >= 2);
    struct itimerspec off = { { 0, 0 }, { 0, 0 } };
    T("timerfd_disarm", timerfd_settime(tfd, 0, &off, NULL));
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec abs = { { 0, 0 }, { now.tv_sec, now.tv_nsec } };
    T("timerfd_abstime_past", timerfd_settime(tfd, TFD_TIMER_ABSTIME, &abs, NULL));
    V("timerfd_abstime_fires", poll(&tp, 1, 30000));
    E("timerfd_bad_clock_einval", timerfd_create(99, 0), EINVAL);
    E("timerfd_settime_not_timerfd_einval", timerfd_settime(efd, 0, &its, NULL), EINVAL);
    struct itimerspec bad = { { 0, 0 }, { 0, 2000000000 } };
    E("timerfd_bad_nsec_einval", timerfd_settime(tfd, 0, &bad, NULL), EINVAL);

    /* epoll */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    T("epoll_create1", ep);
    int pfd[2];
    pipe(pfd);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 42 };
    T("epoll_add_pipe", epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev));
    E("epoll_add_again_eexist", epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev), EEXIST);
    struct epoll_event out[4];
    V("epoll_wait_nothing", epoll_wait(ep, out, 4, 0));
    write(pfd[1], "x", 1);
    int n = epoll_wait(ep, out, 4, 1000);
    V("epoll_wait_ready", n);
    V("epoll_data", n == 1 ? (long)out[0].data.u64 : -1);
    V("epoll_events", n == 1 ? (long)out[0].events : -1);
    V("epoll_level_again", epoll_wait(ep, out, 4, 0));
    ev.events = EPOLLIN | EPOLLET;
    T("epoll_mod_et", epoll_ctl(ep, EPOLL_CTL_MOD, pfd[0], &ev));
    V("epoll_et_first", epoll_wait(ep, out, 4, 0));
    V("epoll_et_not_again", epoll_wait(ep, out, 4, 0));
    ev.events = EPOLLIN | EPOLLONESHOT;
    epoll_ctl(ep, EPOLL_CTL_MOD, pfd[0], &ev);
    V("epoll_oneshot_first", epoll_wait(ep, out, 4, 0));
    V("epoll_oneshot_disabled", epoll_wait(ep, out, 4, 0));
    T("epoll_del", epoll_ctl(ep, EPOLL_CTL_DEL, pfd[0], NULL));
    E("epoll_del_again_enoent", epoll_ctl(ep, EPOLL_CTL_DEL, pfd[0], NULL), ENOENT);
    E("epoll_mod_missing_enoent", epoll_ctl(ep, EPOLL_CTL_MOD, pfd[0], &ev), ENOENT);
    E("epoll_self_einval", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
    E("epoll_not_epoll_einval", epoll_ctl(efd, EPOLL_CTL_ADD, pfd[0], &ev), EINVAL);
    E("epoll_bad_fd_ebadf", epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev), EBADF);
    int reg = open("/proc/self/exe", O_RDONLY);
    int devnull = open("/etc/hostname", O_RDONLY);
    E("epoll_regular_file_eperm", epoll_ctl(ep, EPOLL_CTL_ADD, devnull, &ev), EPERM);
    close(reg);
    E("epoll_wait_maxevents0_einval", epoll_wait(ep, out, 0, 0), EINVAL);
    E("epoll_create_size0_einval", epoll_create(0), EINVAL);
    /* Watch the write end: readable pipe closed -> EPOLLERR on the writer. */
    ev.events = EPOLLOUT;
    epoll_ctl(ep, EPOLL_CTL_ADD, pfd[1], &ev);
    V("epoll_writable", epoll_wait(ep, out, 4, 0) == 1 ? (long)out[0].events : -1);
    close(pfd[0]);
    n = epoll_wait(ep, out, 4, 0);
    V("epoll_reader_gone", n == 1 ? (long)out[0].events : -1);
    /* Closing the only fd drops the interest. */
    close(pfd[1]);
    V("epoll_closed_fd_dropped", epoll_wait(ep, out, 4, 0));
    /* epoll over eventfd, and nested readiness. */
    int efd2 = eventfd(0, EFD_NONBLOCK);
    ev.events = EPOLLIN;
    ev.data.u64 = 7;
    epoll_ctl(ep, EPOLL_CTL_ADD, efd2, &ev);
    v = 1;
    write(efd2, &v, 8);
    n = epoll_wait(ep, out, 4, 1000);
    V("epoll_eventfd_data", n == 1 ? (long)out[0].data.u64 : -1);
    struct pollfd ip = { ep, POLLIN, 0 };
    V("poll_on_epoll", poll(&ip, 1, 0) == 1 ? ip.revents : -1);
    P("done\n");
    return 0;
}
