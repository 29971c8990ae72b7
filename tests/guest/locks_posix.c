/* POSIX record locks (F_GETLK, F_SETLK, F_SETLKW): byte ranges, whence,
 * negative lengths, merging and splitting, per-process ownership (threads
 * share, children do not inherit), release on any close and on exit,
 * blocking, EINTR, EDEADLK, and bad input. */
#include "locks_common.h"

static const char *path;
static int fd;

/* Runs `fn` in a child (another lock owner) and waits for it. */
static void in_child(const char *name, void (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        fflush(stdout);
        _exit(0);
    }
    int st = reap(pid);
    if (st != 0)
        printf("%s child status %d\n", name, st);
}

static pid_t parent;

static void q_whole(void)
{
    int c = open(path, O_RDWR);
    struct flock fl = getlk(c, F_GETLK, F_WRLCK, 0, 0);
    show("  getlk_whole", fl);
    if (fl.l_type != F_UNLCK && fl.l_type != -1)
        B("  getlk_pid_is_holder", fl.l_pid == parent);
    show("  getlk_rd_0_5", getlk(c, F_GETLK, F_RDLCK, 0, 5));
    show("  getlk_wr_5_10", getlk(c, F_GETLK, F_WRLCK, 5, 10));
    show("  getlk_wr_15_5", getlk(c, F_GETLK, F_WRLCK, 15, 5));
    show("  getlk_wr_40_10", getlk(c, F_GETLK, F_WRLCK, 40, 10));
    show("  getlk_wr_90_20", getlk(c, F_GETLK, F_WRLCK, 90, 20));
    show("  getlk_wr_1000_0", getlk(c, F_GETLK, F_WRLCK, 1000, 0));
    close(c);
}

static void try_lock_50(void)
{
    int c = open(path, O_RDWR);
    T("  child_rd_50_10", lk(c, F_SETLK, F_RDLCK, SEEK_SET, 50, 10));
    E("  child_wr_50_10", lk(c, F_SETLK, F_WRLCK, SEEK_SET, 50, 10), EAGAIN);
    E("  child_wr_0_1", lk(c, F_SETLK, F_WRLCK, SEEK_SET, 0, 1), EAGAIN);
    close(c);
}

static void lock_and_exit(void)
{
    int c = open(path, O_RDWR);
    T("  child_wr_200_10", lk(c, F_SETLK, F_WRLCK, SEEK_SET, 200, 10));
    /* exits holding it */
}

static void inherited(void)
{
    E("  child_on_inherited_fd_conflicts", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 1), EAGAIN);
    show("  child_getlk_inherited_fd", getlk(fd, F_GETLK, F_WRLCK, 0, 1));
}

static void *thread_same_owner(void *arg)
{
    (void)arg;
    int c = open(path, O_RDWR);
    T("thread_wr_same_range", lk(c, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    show("thread_getlk", getlk(c, F_GETLK, F_WRLCK, 0, 10));
    /* Closing any descriptor of the file drops the process's locks. */
    close(c);
    return NULL;
}

static void deadlock_run(void)
{
    int ab[2], ba[2], res[2];
    if (pipe(ab) || pipe(ba) || pipe(res))
        printf("pipes failed\n");
    T("dl_parent_lock_0", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 1));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int c = open(path, O_RDWR);
        int r = lk(c, F_SETLK, F_WRLCK, SEEK_SET, 1, 1);
        send_byte(ba[1]);
        wait_byte(ab[0]);
        r = lk(c, F_SETLKW, F_WRLCK, SEEK_SET, 0, 1);
        int e = r < 0 ? errno : 0;
        if (r < 0)
            lk(c, F_SETLK, F_UNLCK, SEEK_SET, 0, 0);
        char out = e == EDEADLK ? 'D' : e == 0 ? 'S' : 'E';
        if (write(res[1], &out, 1) != 1)
            _exit(3);
        _exit(0);
    }
    wait_byte(ba[0]);
    send_byte(ab[1]);
    int r = lk(fd, F_SETLKW, F_WRLCK, SEEK_SET, 1, 1);
    int e = r < 0 ? errno : 0;
    if (r < 0)
        lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    char theirs = '?';
    if (read(res[0], &theirs, 1) != 1)
        printf("dl read failed\n");
    V("dl_child", reap(pid));
    int deadlocks = (e == EDEADLK) + (theirs == 'D');
    int successes = (r == 0) + (theirs == 'S');
    B("dl_exactly_one_edeadlk", deadlocks == 1);
    B("dl_the_other_got_its_lock", successes == 1);
    lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0);
}

/* The same conflicts on a tmpfs file (/dev/shm), as on the scratch
 * directory's filesystem. */
static char shm_name[64];

static void shm_probe(void)
{
    int c = open(shm_name, O_RDWR);
    show("  shm_getlk", getlk(c, F_GETLK, F_RDLCK, 0, 0));
    E("  shm_setlk", lk(c, F_SETLK, F_RDLCK, SEEK_SET, 5, 1), EAGAIN);
    E("  shm_flock", flock(c, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    close(c);
}

static void shm_free(void)
{
    int c = open(shm_name, O_RDWR);
    T("  shm_setlk_free", lk(c, F_SETLK, F_WRLCK, SEEK_SET, 0, 0));
    T("  shm_flock_free", flock(c, LOCK_EX | LOCK_NB));
    close(c);
}

static void on_tmpfs(void)
{
    snprintf(shm_name, sizeof shm_name, "/dev/shm/rl-locks-%d", (int)getpid());
    int t = open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    T("shm_open", t);
    if (t < 0)
        return;
    T("shm_wr", lk(t, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    T("shm_flock_ex", flock(t, LOCK_EX));
    in_child("shm", shm_probe);
    close(t);
    in_child("shm_after_close", shm_free);
    unlink(shm_name);
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    parent = getpid();
    path = sp("records");
    char hundred[101];
    memset(hundred, 'x', 100);
    hundred[100] = 0;
    T("create", write_file(path, hundred, 0644));
    fd = open(path, O_RDWR);

    P("-- one range\n");
    T("wr_0_10", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    show("own_lock_does_not_conflict", getlk(fd, F_GETLK, F_WRLCK, 0, 0));
    in_child("one", q_whole);
    P("-- merged with a neighbour\n");
    T("wr_10_10", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 10, 10));
    in_child("merged", q_whole);
    P("-- split by an unlock\n");
    T("un_5_10", lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 5, 10));
    in_child("split", q_whole);
    P("-- a read lock inside a write lock\n");
    T("wr_0_20", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 20));
    T("rd_5_5", lk(fd, F_SETLK, F_RDLCK, SEEK_SET, 5, 5));
    in_child("mixed", q_whole);
    T("un_all", lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
    in_child("none", q_whole);
    P("-- negative length, SEEK_END, SEEK_CUR, to EOF\n");
    T("neg_len", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 50, -10));
    T("seek_end", lk(fd, F_SETLK, F_RDLCK, SEEK_END, -10, 10));
    lseek(fd, 1000, SEEK_SET);
    T("seek_cur_to_eof", lk(fd, F_SETLK, F_WRLCK, SEEK_CUR, 0, 0));
    in_child("ends", q_whole);
    T("un_all2", lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
    P("-- read locks share\n");
    T("rd_0_100", lk(fd, F_SETLK, F_RDLCK, SEEK_SET, 0, 100));
    in_child("shared", try_lock_50);
    T("un_all3", lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));

    P("-- ownership\n");
    T("wr_0_10_again", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    in_child("inherit", inherited);
    pthread_t t;
    pthread_create(&t, NULL, thread_same_owner, NULL);
    pthread_join(t, NULL);
    in_child("after_thread_close", q_whole);
    T("wr_0_10_third", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    int opath = open(path, O_PATH);
    close(opath);
    in_child("after_o_path_close", q_whole);
    int other = open(path, O_RDONLY);
    close(other);
    in_child("after_other_close", q_whole);
    in_child("exit", lock_and_exit);
    show("released_on_exit", getlk(fd, F_GETLK, F_WRLCK, 200, 10));
    T("flock_and_posix_independent_1", flock(fd, LOCK_EX));
    T("flock_and_posix_independent_2", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 1));
    flock(fd, LOCK_UN);
    lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0);

    P("-- blocking\n");
    int note[2], ready[2];
    T("pipes", pipe(note) | pipe(ready));
    T("wr_hold", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int c = open(path, O_RDWR);
        send_byte(ready[1]);
        T("child_setlkw", lk(c, F_SETLKW, F_WRLCK, SEEK_SET, 5, 1));
        B("child_got_it_only_after_release", has_data(note[0]));
        _exit(0);
    }
    wait_byte(ready[0]);
    send_byte(note[1]);
    int rel = lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 10);
    V("child_blocking", reap(pid));
    T("release_for_child", rel);
    T("wr_hold_eintr", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int c = open(path, O_RDWR);
        start_interrupts();
        E("child_setlkw_eintr", lk(c, F_SETLKW, F_WRLCK, SEEK_SET, 0, 1), EINTR);
        stop_interrupts();
        _exit(0);
    }
    V("child_eintr", reap(pid));
    lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    deadlock_run();

    P("-- /proc/locks\n");
    T("pl_wr", lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    T("pl_rd_to_eof", lk(fd, F_SETLK, F_RDLCK, SEEK_SET, 20, 0));
    T("pl_flock", flock(fd, LOCK_SH));
    int ofd = open(path, O_RDWR);
    T("pl_ofd", lk(ofd, F_OFD_SETLK, F_RDLCK, SEEK_SET, 100, 10));
    proc_locks(path);
    close(ofd);
    flock(fd, LOCK_UN);
    lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    proc_locks(path);

    P("-- tmpfs\n");
    on_tmpfs();

    P("-- bad input\n");
    E("bad_type", lk(fd, F_SETLK, 7, SEEK_SET, 0, 1), EINVAL);
    E("bad_type_neg", lk(fd, F_SETLK, -1, SEEK_SET, 0, 1), EINVAL);
    E("getlk_unlck", fcntl(fd, F_GETLK, &(struct flock){.l_type = F_UNLCK}), EINVAL);
    E("getlk_bad_type", fcntl(fd, F_GETLK, &(struct flock){.l_type = 9}), EINVAL);
    E("bad_whence", lk(fd, F_SETLK, F_RDLCK, 3, 0, 1), EINVAL);
    E("bad_whence_neg", lk(fd, F_SETLK, F_RDLCK, -1, 0, 1), EINVAL);
    E("neg_start", lk(fd, F_SETLK, F_RDLCK, SEEK_SET, -1, 1), EINVAL);
    E("neg_len_before_0", lk(fd, F_SETLK, F_RDLCK, SEEK_SET, 5, -6), EINVAL);
    E("neg_len_min", lk(fd, F_SETLK, F_RDLCK, SEEK_SET, 5, LLONG_MIN), EINVAL);
    E("len_overflow", lk(fd, F_SETLK, F_RDLCK, SEEK_SET, LLONG_MAX, 2), EOVERFLOW);
    T("len_exactly_to_max", lk(fd, F_SETLK, F_RDLCK, SEEK_SET, LLONG_MAX, 1));
    E("seek_end_overflow", lk(fd, F_SETLK, F_RDLCK, SEEK_END, LLONG_MAX, 1), EOVERFLOW);
    E("seek_end_before_0", lk(fd, F_SETLK, F_RDLCK, SEEK_END, -101, 1), EINVAL);
    E("bad_type_and_range", lk(fd, F_SETLK, 7, SEEK_SET, -1, 1), EINVAL);
    E("getlk_overflow", fcntl(fd, F_GETLK, &(struct flock){.l_type = F_RDLCK, .l_start = LLONG_MAX, .l_len = 5}),
      EOVERFLOW);
    lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    int ro = open(path, O_RDONLY);
    int wo = open(path, O_WRONLY);
    E("wr_on_read_only", lk(ro, F_SETLK, F_WRLCK, SEEK_SET, 0, 1), EBADF);
    E("rd_on_write_only", lk(wo, F_SETLK, F_RDLCK, SEEK_SET, 0, 1), EBADF);
    E("wrw_on_read_only", lk(ro, F_SETLKW, F_WRLCK, SEEK_SET, 0, 1), EBADF);
    T("un_on_read_only", lk(ro, F_SETLK, F_UNLCK, SEEK_SET, 0, 1));
    T("rd_on_read_only", lk(ro, F_SETLK, F_RDLCK, SEEK_SET, 0, 1));
    T("wr_on_write_only", lk(wo, F_SETLK, F_WRLCK, SEEK_SET, 10, 1));
    show("getlk_on_write_only", getlk(wo, F_GETLK, F_RDLCK, 0, 1));
    E("bad_range_before_mode", lk(ro, F_SETLK, F_WRLCK, SEEK_SET, -1, 1), EINVAL);
    E("bad_type_before_mode", lk(ro, F_SETLK, 5, SEEK_SET, 0, 1), EINVAL);
    int op = open(path, O_PATH);
    E("o_path_setlk", lk(op, F_SETLK, F_RDLCK, SEEK_SET, 0, 1), EBADF);
    E("o_path_getlk", fcntl(op, F_GETLK, &(struct flock){.l_type = F_RDLCK}), EBADF);
    E("bad_fd", lk(-1, F_SETLK, F_RDLCK, SEEK_SET, 0, 1), EBADF);
    E("closed_fd", lk(999, F_SETLK, F_RDLCK, SEEK_SET, 0, 1), EBADF);
    E("bad_ptr", fcntl(fd, F_SETLK, (void *)8), EFAULT);
    E("bad_ptr_getlk", fcntl(fd, F_GETLK, (void *)8), EFAULT);
    E("bad_ptr_setlkw", fcntl(fd, F_SETLKW, (void *)8), EFAULT);
    close(op);
    close(ro);
    close(wo);
    int p[2];
    T("pipe", pipe(p));
    T("pipe_wr_on_write_end", lk(p[1], F_SETLK, F_WRLCK, SEEK_SET, 0, 0));
    show("pipe_getlk", getlk(p[0], F_GETLK, F_RDLCK, 0, 0));
    close(p[0]);
    close(p[1]);
    close(fd);
    guest_cleanup();
    printf("done\n");
    return 0;
}
