/* signalfd and sigqueue: blocked signals read as records (signo, code,
 * pid, sigqueue value, SIGCHLD status), non-blocking reads, updating the
 * mask, and the errors Linux gives. */
#include "common.h"
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

int main(void)
{
    guest_init();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    T("block", sigprocmask(SIG_BLOCK, &set, NULL));
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    T("signalfd_create", sfd);
    struct signalfd_siginfo si;
    E("signalfd_empty_eagain", read(sfd, &si, sizeof si), EAGAIN);
    struct pollfd p = { sfd, POLLIN, 0 };
    V("poll_empty", poll(&p, 1, 0));
    kill(getpid(), SIGUSR1);
    V("poll_pending", poll(&p, 1, 0));
    V("read_size", read(sfd, &si, sizeof si));
    V("ssi_signo", si.ssi_signo);
    V("ssi_code", si.ssi_code);
    B("ssi_pid_is_self", si.ssi_pid == (unsigned)getpid());
    B("ssi_uid", si.ssi_uid == getuid());
    E("consumed_eagain", read(sfd, &si, sizeof si), EAGAIN);

    union sigval val = { .sival_int = 1234 };
    T("sigqueue", sigqueue(getpid(), SIGUSR1, val));
    read(sfd, &si, sizeof si);
    V("sigqueue_code", si.ssi_code);
    V("sigqueue_int", si.ssi_int);

    pid_t c = fork();
    if (c == 0)
        _exit(9);
    int st;
    waitpid(c, &st, 0);
    V("sigchld_read", read(sfd, &si, sizeof si));
    V("sigchld_signo", si.ssi_signo);
    V("sigchld_code", si.ssi_code);
    V("sigchld_status", si.ssi_status);
    B("sigchld_pid", si.ssi_pid == (unsigned)c);

    sigset_t only2;
    sigemptyset(&only2);
    sigaddset(&only2, SIGUSR2);
    V("update_mask_same_fd", signalfd(sfd, &only2, 0) == sfd);
    E("small_buffer_einval", read(sfd, &si, 8), EINVAL);
    E("not_signalfd_einval", signalfd(0, &set, 0), EINVAL);
    E("bad_flags_einval", signalfd(-1, &set, 0x1), EINVAL);
    E("bad_size_einval", syscall(SYS_signalfd4, -1, &set, 4, 0), EINVAL);
    E("bad_mask_ptr_efault", syscall(SYS_signalfd4, -1, (void *)1, 8, 0), EFAULT);
    E("sigqueue_bad_sig_einval", sigqueue(getpid(), 99, val), EINVAL);
    P("done\n");
    return 0;
}
