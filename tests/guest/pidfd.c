/* pidfds: pidfd_open, poll (readable when the process exits), waitid
 * P_PIDFD with PIDFD_NONBLOCK, pidfd_send_signal, pidfd_getfd, fdinfo's
 * Pid line, and their error paths. */
#include "common.h"
#include <poll.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/wait.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#define PIDFD_NONBLOCK O_NONBLOCK

static long pidfd_open(int pid, unsigned flags)
{
    return syscall(SYS_pidfd_open, pid, flags);
}

static long pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned flags)
{
    return syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}

static long pidfd_getfd(int fd, int target, unsigned flags)
{
    return syscall(SYS_pidfd_getfd, fd, target, flags);
}

/* A child that puts the write end of `data` at fd 50, says it is ready,
 * and waits for a signal. */
static int start_child(int data[2])
{
    int ready[2];
    if (pipe(ready) != 0)
        return -1;
    int pid = fork();
    if (pid == 0) {
        dup2(data[1], 50);
        close(ready[0]);
        write(ready[1], "r", 1);
        for (;;)
            pause();
    }
    close(ready[1]);
    char c;
    read(ready[0], &c, 1);
    close(ready[0]);
    return pid;
}

static int fdinfo_pid(int fd)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int f = open(path, O_RDONLY);
    if (f < 0)
        return -1;
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strstr(buf, "\nPid:\t");
    return p ? atoi(p + 6) : -1;
}

int main(void)
{
    guest_init();
    int data[2];
    pipe(data);
    int pid = start_child(data);
    T("fork", pid);

    E("open_bad_flags", pidfd_open(pid, 1), EINVAL);
    E("open_pid_zero", pidfd_open(0, 0), EINVAL);
    E("open_pid_negative", pidfd_open(-1, 0), EINVAL);
    E("open_no_such", pidfd_open(4000000, 0), ESRCH);
    int pfd = pidfd_open(pid, 0);
    T("open", pfd);
    B("cloexec", (fcntl(pfd, F_GETFD) & FD_CLOEXEC) != 0);
    B("fdinfo_pid", fdinfo_pid(pfd) == pid);
    char c;
    E("read", read(pfd, &c, 1), EINVAL);
    struct pollfd p = { .fd = pfd, .events = POLLIN };
    V("poll_running", poll(&p, 1, 0));

    int nb = pidfd_open(pid, PIDFD_NONBLOCK);
    T("open_nonblock", nb);
    siginfo_t si;
    E("waitid_nonblock_running", waitid(P_PIDFD, nb, &si, WEXITED), EAGAIN);
    memset(&si, 0, sizeof si);
    T("waitid_wnohang_running", waitid(P_PIDFD, pfd, &si, WEXITED | WNOHANG));
    V("waitid_wnohang_pid", si.si_pid);
    E("waitid_bad_fd", waitid(P_PIDFD, 999, &si, WEXITED), EBADF);
    E("waitid_not_pidfd", waitid(P_PIDFD, 1, &si, WEXITED), EBADF);

    /* pidfd_getfd: the child's fd 50 is our pipe's write end. */
    int got = pidfd_getfd(pfd, 50, 0);
    T("getfd", got);
    B("getfd_cloexec", (fcntl(got, F_GETFD) & FD_CLOEXEC) != 0);
    T("getfd_write", write(got, "x", 1));
    c = 0;
    read(data[0], &c, 1);
    B("getfd_same_pipe", c == 'x');
    close(got);
    E("getfd_flags", pidfd_getfd(pfd, 50, 1), EINVAL);
    E("getfd_no_target", pidfd_getfd(pfd, 77, 0), EBADF);
    E("getfd_not_pidfd", pidfd_getfd(1, 1, 0), EBADF);
    E("getfd_bad_pidfd", pidfd_getfd(999, 1, 0), EBADF);

    /* pidfd_send_signal. */
    E("send_bad_flags", pidfd_send_signal(pfd, SIGTERM, NULL, 8), EINVAL);
    E("send_two_scopes", pidfd_send_signal(pfd, SIGTERM, NULL, 3), EINVAL);
    E("send_not_pidfd", pidfd_send_signal(1, SIGTERM, NULL, 0), EBADF);
    E("send_bad_fd", pidfd_send_signal(999, SIGTERM, NULL, 0), EBADF);
    E("send_bad_signal", pidfd_send_signal(pfd, 65, NULL, 0), EINVAL);
    T("send_zero", pidfd_send_signal(pfd, 0, NULL, 0));
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_QUEUE;
    E("send_info_mismatch", pidfd_send_signal(pfd, SIGTERM, &si, 0), EINVAL);
    si.si_signo = SIGTERM;
    si.si_code = SI_USER;
    E("send_info_si_user", pidfd_send_signal(pfd, SIGTERM, &si, 0), EPERM);
    E("send_info_bad_pointer", pidfd_send_signal(pfd, SIGTERM, (siginfo_t *)8, 0), EFAULT);
    T("send_term", pidfd_send_signal(pfd, SIGTERM, NULL, 0));
    p.revents = 0;
    V("poll_exited", poll(&p, 1, 60000));
    B("pollin_exited", (p.revents & POLLIN) != 0);
    T("send_zombie", pidfd_send_signal(pfd, SIGTERM, NULL, 0));
    E("getfd_zombie", pidfd_getfd(pfd, 50, 0), ESRCH);
    memset(&si, 0, sizeof si);
    T("waitid_pidfd", waitid(P_PIDFD, nb, &si, WEXITED));
    B("waitid_pid", si.si_pid == pid);
    V("waitid_code_killed", si.si_code == CLD_KILLED);
    V("waitid_status", si.si_status);
    E("send_reaped", pidfd_send_signal(pfd, SIGTERM, NULL, 0), ESRCH);
    {
        /* A /proc/PID directory stands for the process too. */
        int dfd_root = open("/", O_RDONLY | O_DIRECTORY);
        E("send_plain_dir", pidfd_send_signal(dfd_root, SIGTERM, NULL, 0), EBADF);
        close(dfd_root);
        pid_t k = fork();
        if (k == 0) {
            for (;;)
                pause();
        }
        char path[64];
        snprintf(path, sizeof path, "/proc/%d", (int)k);
        int pdir = open(path, O_RDONLY | O_DIRECTORY);
        T("open_proc_pid_dir", pdir);
        T("send_proc_dir", pidfd_send_signal(pdir, SIGKILL, NULL, 0));
        int kst = 0;
        waitpid(k, &kst, 0);
        B("proc_dir_killed", WIFSIGNALED(kst) && WTERMSIG(kst) == SIGKILL);
        E("send_proc_dir_reaped", pidfd_send_signal(pdir, SIGTERM, NULL, 0), ESRCH);
        close(pdir);
    }
    E("getfd_reaped", pidfd_getfd(pfd, 50, 0), ESRCH);
    E("waitid_reaped", waitid(P_PIDFD, pfd, &si, WEXITED), ECHILD);
    p.revents = 0;
    V("poll_reaped", poll(&p, 1, 0));
    B("pollin_reaped", (p.revents & POLLIN) != 0);
    B("pollhup_reaped", (p.revents & POLLHUP) != 0);
    E("open_reaped", pidfd_open(pid, 0), ESRCH);
    close(pfd);
    close(nb);

    /* epoll on a pidfd: readable when the child exits, not before. */
    int go[2];
    pipe(go);
    pid = fork();
    if (pid == 0) {
        char b;
        read(go[0], &b, 1);
        _exit(4);
    }
    int epfd_ = pidfd_open(pid, 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 9 }, out;
    T("epoll_add", epoll_ctl(ep, EPOLL_CTL_ADD, epfd_, &ev));
    V("epoll_running", epoll_wait(ep, &out, 1, 0));
    write(go[1], "g", 1);
    V("epoll_exited", epoll_wait(ep, &out, 1, 60000));
    V("epoll_data", out.data.u32);
    waitpid(pid, NULL, 0);
    close(ep);
    close(epfd_);

    /* pidfd_getfd needs ptrace-attach rights: a process that dropped
     * to another uid has none over us. */
    int me = pidfd_open(getpid(), 0);
    E("getfd_negative_target", pidfd_getfd(me, -1, 0), EBADF);
    T("getfd_own", pidfd_getfd(me, 1, 0) >= 0 ? 0 : -1);
    pid = fork();
    if (pid == 0) {
        if (setuid(65534) != 0)
            _exit(20);
        errno = 0;
        long r = pidfd_getfd(me, 1, 0);
        _exit(r < 0 && errno == EPERM ? 0 : 21);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    V("getfd_other_uid_eperm", WEXITSTATUS(st));
    close(me);

    /* A pidfd of ourselves: a signal we send is delivered to us. */
    int self = pidfd_open(getpid(), 0);
    T("open_self", self);
    signal(SIGUSR1, SIG_IGN);
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_QUEUE;
    T("send_self_info", pidfd_send_signal(self, SIGUSR1, &si, 0));
    close(self);
    printf("done\n");
    return 0;
}
