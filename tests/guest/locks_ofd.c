/* Open file description locks (F_OFD_GETLK/SETLK/SETLKW): owned by the
 * description (dup and fork share it, threads with their own opens
 * conflict), conflicts with POSIX locks, l_pid rules; then leases
 * (F_SETLEASE/F_GETLEASE) and F_NOTIFY on a non-directory. */
#include "locks_common.h"

static const char *path;

struct blocker {
    int fd;
    int note;
    int result;
    int saw_note;
};

static void *thread_blocks(void *arg)
{
    struct blocker *b = arg;
    b->result = lk(b->fd, F_OFD_SETLKW, F_WRLCK, SEEK_SET, 0, 1);
    b->saw_note = has_data(b->note);
    return NULL;
}

static void *thread_try(void *arg)
{
    (void)arg;
    int c = open(path, O_RDWR);
    E("thread_own_open_conflicts", lk(c, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1), EAGAIN);
    close(c);
    return NULL;
}

static volatile sig_atomic_t sigios;
static volatile int sigio_code;
static void on_sigio(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    sigios++;
    sigio_code = si->si_code;
}

/* A child opens the leased file with `flags`, first non-blocking (which
 * must fail while the lease stands), then blocking; exit status bit 0:
 * the first failed with EWOULDBLOCK, bit 1: the second succeeded. */
static const char *leased;

static pid_t opener(int flags)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int st = 0;
        int fd = open(leased, flags | O_NONBLOCK);
        if (fd < 0 && errno == EWOULDBLOCK)
            st |= 1;
        fd = open(leased, flags);
        if (fd >= 0)
            st |= 2;
        _exit(st);
    }
    return pid;
}

static void wait_sigio(void)
{
    sigset_t none;
    sigemptyset(&none);
    while (!sigios)
        sigsuspend(&none);
}

static void lease_breaks(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigio;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGIO, &sa, NULL);
    sigset_t io;
    sigemptyset(&io);
    sigaddset(&io, SIGIO);
    sigprocmask(SIG_BLOCK, &io, NULL);

    leased = sp("leased");
    T("break_create", write_file(leased, "leased", 0644));
    int r = open(leased, O_RDONLY);
    T("break_rdlease_set", fcntl(r, F_SETLEASE, F_RDLCK));
    pid_t pid = opener(O_WRONLY);
    wait_sigio();
    B("break_sigio", sigios > 0);
    B("break_sigio_si_kernel", sigio_code == SI_KERNEL);
    V("break_getlease_target", fcntl(r, F_GETLEASE));
    proc_locks(leased);
    T("break_release", fcntl(r, F_SETLEASE, F_UNLCK));
    V("break_writer_status", reap(pid));

    sigios = 0;
    T("break_wrlease_set", fcntl(r, F_SETLEASE, F_WRLCK));
    pid = opener(O_RDONLY);
    wait_sigio();
    B("downgrade_sigio", sigios > 0);
    V("downgrade_getlease_target", fcntl(r, F_GETLEASE));
    T("downgrade", fcntl(r, F_SETLEASE, F_RDLCK));
    V("downgrade_getlease", fcntl(r, F_GETLEASE));
    V("downgrade_reader_status", reap(pid));
    T("downgrade_release", fcntl(r, F_SETLEASE, F_UNLCK));

    /* A truncate by path breaks a lease too (and waits). */
    sigios = 0;
    T("trunc_rdlease_set", fcntl(r, F_SETLEASE, F_RDLCK));
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        _exit(truncate(leased, 0) == 0 ? 0 : 1);
    wait_sigio();
    B("trunc_sigio", sigios > 0);
    V("trunc_getlease_target", fcntl(r, F_GETLEASE));
    T("trunc_release", fcntl(r, F_SETLEASE, F_UNLCK));
    V("trunc_child", reap(pid));
    close(r);
    sigprocmask(SIG_UNBLOCK, &io, NULL);
    signal(SIGIO, SIG_IGN);
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    path = sp("ofd");
    T("create", write_file(path, "0123456789012345678901234567890123456789", 0644));
    int a = open(path, O_RDWR);
    int b = open(path, O_RDWR);

    T("a_wr_0_10", lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    E("b_wr_conflicts_same_process", lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 5, 1), EAGAIN);
    struct flock q = getlk(b, F_OFD_GETLK, F_RDLCK, 0, 0);
    show("b_ofd_getlk", q);
    B("b_ofd_getlk_pid_minus_1", q.l_pid == -1);
    q = getlk(b, F_GETLK, F_RDLCK, 0, 0);
    show("b_posix_getlk_sees_ofd", q);
    B("b_posix_getlk_pid_minus_1", q.l_pid == -1);
    E("b_posix_setlk_conflicts", lk(b, F_SETLK, F_RDLCK, SEEK_SET, 0, 1), EAGAIN);
    show("a_own_lock_no_conflict", getlk(a, F_OFD_GETLK, F_WRLCK, 0, 0));
    T("a_wr_10_10_merges", lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 10, 10));
    show("b_sees_merged", getlk(b, F_OFD_GETLK, F_RDLCK, 0, 0));
    T("a_un_5_10_splits", lk(a, F_OFD_SETLK, F_UNLCK, SEEK_SET, 5, 10));
    show("b_sees_left", getlk(b, F_OFD_GETLK, F_RDLCK, 0, 0));
    show("b_sees_right", getlk(b, F_OFD_GETLK, F_RDLCK, 5, 0));
    T("a_un_all", lk(a, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0));

    /* A POSIX lock of this process blocks an OFD lock of another description. */
    T("posix_wr_0_5", lk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 5));
    q = getlk(b, F_OFD_GETLK, F_WRLCK, 0, 1);
    show("ofd_getlk_sees_posix", q);
    B("ofd_getlk_posix_pid_is_mine", q.l_pid == getpid());
    E("ofd_blocked_by_posix", lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1), EAGAIN);
    T("posix_un", lk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));

    /* dup shares the owner; the last close releases. */
    T("a_wr_again", lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    int a2 = dup(a);
    T("dup_same_owner", lk(a2, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    close(a2);
    E("still_held_after_dup_close", lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1), EAGAIN);
    int other = open(path, O_RDONLY);
    close(other);
    E("unlike_posix_other_close_keeps_it", lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1), EAGAIN);

    /* fork: the child shares the description, so the lock. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        T("child_inherited_same_owner", lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 10));
        int c = open(path, O_RDWR);
        E("child_new_open_conflicts", lk(c, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1), EAGAIN);
        _exit(0);
    }
    V("child1", reap(pid));
    E("held_after_child_exit", lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1), EAGAIN);

    pthread_t t;
    pthread_create(&t, NULL, thread_try, NULL);
    pthread_join(t, NULL);
    int note[2];
    T("pipe", pipe(note));
    struct blocker bl = {b, note[0], -1, 0};
    pthread_create(&t, NULL, thread_blocks, &bl);
    send_byte(note[1]);
    int r = lk(a, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    pthread_join(t, NULL);
    T("main_unlocks", r);
    T("thread_ofd_setlkw", bl.result);
    B("thread_got_it_only_after_release", bl.saw_note);

    /* EINTR */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int c = open(path, O_RDWR);
        start_interrupts();
        E("child_ofd_setlkw_eintr", lk(c, F_OFD_SETLKW, F_RDLCK, SEEK_SET, 0, 1), EINTR);
        stop_interrupts();
        _exit(0);
    }
    V("child2", reap(pid));
    close(b);
    T("released_on_last_close", lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1));

    /* Bad input. */
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_RDLCK;
    fl.l_pid = 1;
    E("setlk_pid_not_0", fcntl(a, F_OFD_SETLK, &fl), EINVAL);
    E("setlkw_pid_not_0", fcntl(a, F_OFD_SETLKW, &fl), EINVAL);
    E("getlk_pid_not_0", fcntl(a, F_OFD_GETLK, &fl), EINVAL);
    fl.l_type = 3;
    E("bad_type", fcntl(a, F_OFD_SETLK, &fl), EINVAL);
    show("getlk_unlck_own_lock", getlk(a, F_OFD_GETLK, F_UNLCK, 0, 0));
    int a3 = open(path, O_RDWR);
    show("getlk_unlck_other_description", getlk(a3, F_OFD_GETLK, F_UNLCK, 0, 0));
    close(a3);
    E("getlk_bad_type", fcntl(a, F_OFD_GETLK, &(struct flock){.l_type = 9}), EINVAL);
    int ro = open(path, O_RDONLY);
    E("wr_on_read_only", lk(ro, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1), EBADF);
    E("bad_range", lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, -5, 1), EINVAL);
    E("bad_ptr", fcntl(a, F_OFD_SETLK, (void *)16), EFAULT);
    E("bad_fd", lk(-1, F_OFD_SETLK, F_RDLCK, SEEK_SET, 0, 1), EBADF);
    close(a);

    P("-- leases\n");
    V("getlease_none", fcntl(ro, F_GETLEASE));
    T("rdlease", fcntl(ro, F_SETLEASE, F_RDLCK));
    V("getlease_rd", fcntl(ro, F_GETLEASE));
    proc_locks(path);
    int ro2 = open(path, O_RDONLY);
    T("second_reader_rdlease", fcntl(ro2, F_SETLEASE, F_RDLCK));
    E("wrlease_with_other_reader", fcntl(ro2, F_SETLEASE, F_WRLCK), EAGAIN);
    T("unlease", fcntl(ro, F_SETLEASE, F_UNLCK));
    T("unlease_2", fcntl(ro2, F_SETLEASE, F_UNLCK));
    V("getlease_after_un", fcntl(ro, F_GETLEASE));
    T("unlease_none_held", fcntl(ro, F_SETLEASE, F_UNLCK));
    close(ro2);
    T("wrlease_alone", fcntl(ro, F_SETLEASE, F_WRLCK));
    V("getlease_wr", fcntl(ro, F_GETLEASE));
    T("wrlease_downgrade", fcntl(ro, F_SETLEASE, F_RDLCK));
    V("getlease_rd_again", fcntl(ro, F_GETLEASE));
    T("unlease_3", fcntl(ro, F_SETLEASE, F_UNLCK));
    E("bad_lease_arg", fcntl(ro, F_SETLEASE, 7), EINVAL);
    int rw = open(path, O_RDWR);
    E("rdlease_on_rw", fcntl(rw, F_SETLEASE, F_RDLCK), EAGAIN);
    E("rdlease_with_writer", fcntl(ro, F_SETLEASE, F_RDLCK), EAGAIN);
    E("wrlease_with_reader", fcntl(rw, F_SETLEASE, F_WRLCK), EAGAIN);
    close(rw);
    int p[2];
    T("pipe2", pipe(p));
    E("lease_on_pipe", fcntl(p[0], F_SETLEASE, F_RDLCK), EINVAL);
    V("getlease_pipe", fcntl(p[0], F_GETLEASE));
    int d = open(guest_scratch_buf, O_RDONLY | O_DIRECTORY);
    E("lease_on_dir", fcntl(d, F_SETLEASE, F_RDLCK), EINVAL);
    E("lease_bad_fd", fcntl(-1, F_SETLEASE, F_RDLCK), EBADF);
    E("getlease_bad_fd", fcntl(-1, F_GETLEASE), EBADF);
    P("-- lease breaks\n");
    lease_breaks();
    P("-- dnotify\n");
    E("notify_on_file", fcntl(ro, F_NOTIFY, 0x1), ENOTDIR);
    E("notify_on_pipe", fcntl(p[0], F_NOTIFY, 0x1), ENOTDIR);
    E("notify_bad_fd", fcntl(-1, F_NOTIFY, 0x1), EBADF);
    close(d);
    close(p[0]);
    close(p[1]);
    close(ro);
    guest_cleanup();
    printf("done\n");
    return 0;
}
