/* flock(2): shared and exclusive locks on open file descriptions, LOCK_NB,
 * conversion, sharing through dup and fork, release on the last close,
 * blocking across processes and threads, EINTR, and bad input. */
#include "locks_common.h"
#include <sys/eventfd.h>

static const char *path;

static void *thread_other_description(void *arg)
{
    (void)arg;
    int fd = open(path, O_RDONLY);
    T("thread_own_open_ex_nb", flock(fd, LOCK_EX | LOCK_NB));
    T("thread_own_open_sh_nb", flock(fd, LOCK_SH | LOCK_NB));
    close(fd);
    return NULL;
}

static void *thread_same_description(void *arg)
{
    int fd = *(int *)arg;
    T("thread_same_fd_ex_nb", flock(fd, LOCK_EX | LOCK_NB));
    return NULL;
}

struct blocker {
    int fd;
    int note;
    int result;
    int saw_note;
};

static void *thread_blocks(void *arg)
{
    struct blocker *b = arg;
    b->result = flock(b->fd, LOCK_EX);
    b->saw_note = has_data(b->note);
    return NULL;
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    path = sp("lockme");
    T("create", write_file(path, "0123456789", 0644));

    int a = open(path, O_RDWR);
    int b = open(path, O_RDWR);
    T("a_sh", flock(a, LOCK_SH));
    T("b_sh_nb", flock(b, LOCK_SH | LOCK_NB));
    E("b_ex_nb_conflict", flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    /* A failed conversion drops the lock that was held (Linux). */
    T("a_ex_nb_after_b_lost_its_lock", flock(a, LOCK_EX | LOCK_NB));
    E("b_sh_nb_vs_ex", flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    T("a_ex_again_noop", flock(a, LOCK_EX | LOCK_NB));
    T("a_downgrade", flock(a, LOCK_SH | LOCK_NB));
    T("b_sh_nb_after_downgrade", flock(b, LOCK_SH | LOCK_NB));
    T("b_un", flock(b, LOCK_UN));
    T("b_un_twice", flock(b, LOCK_UN));
    T("a_upgrade", flock(a, LOCK_EX | LOCK_NB));

    /* dup shares the description and so the lock. */
    int a2 = dup(a);
    T("dup_ex_same_lock", flock(a2, LOCK_EX | LOCK_NB));
    T("dup_unlocks_for_both", flock(a2, LOCK_UN));
    T("b_ex_after_dup_un", flock(b, LOCK_EX | LOCK_NB));
    E("a_ex_nb_vs_b", flock(a, LOCK_EX | LOCK_NB), EWOULDBLOCK);

    /* Released when the last descriptor of the description closes. */
    int b2 = dup(b);
    close(b);
    E("still_held_by_dup", flock(a, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    close(b2);
    T("released_on_last_close", flock(a, LOCK_EX | LOCK_NB));
    close(a2);

    /* A forked child shares the parent's description. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        T("child_inherited_ex", flock(a, LOCK_EX | LOCK_NB));
        int c = open(path, O_RDONLY);
        E("child_new_open_conflicts", flock(c, LOCK_SH | LOCK_NB), EWOULDBLOCK);
        close(c);
        _exit(0);
    }
    V("child1", reap(pid));
    int c = open(path, O_RDONLY);
    E("parent_still_holds_after_child_exit", flock(c, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    close(c);

    /* Blocking across processes: the child waits for the parent. */
    int note[2], ready[2];
    T("pipes", pipe(note) | pipe(ready));
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDONLY);
        send_byte(ready[1]);
        int r = flock(fd, LOCK_SH);
        T("child_blocking_sh", r);
        B("child_got_it_only_after_release", has_data(note[0]));
        _exit(0);
    }
    wait_byte(ready[0]);
    send_byte(note[1]);
    int un = flock(a, LOCK_UN);
    V("child2", reap(pid));
    T("parent_un", un);

    /* EINTR: a signal without SA_RESTART ends a blocked flock. */
    T("parent_ex_for_eintr", flock(a, LOCK_EX));
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDONLY);
        start_interrupts();
        E("child_blocked_flock_eintr", flock(fd, LOCK_EX), EINTR);
        stop_interrupts();
        B("child_saw_alarm", alarms > 0);
        _exit(0);
    }
    V("child3", reap(pid));

    /* Threads: another description conflicts, the same one does not. */
    pthread_t t;
    pthread_create(&t, NULL, thread_other_description, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, thread_same_description, &a);
    pthread_join(t, NULL);
    struct blocker bl = {open(path, O_RDONLY), note[0], -1, 0};
    char drain;
    if (read(note[0], &drain, 1) != 1)
        printf("drain failed\n");
    pthread_create(&t, NULL, thread_blocks, &bl);
    send_byte(note[1]);
    int mun = flock(a, LOCK_UN);
    pthread_join(t, NULL);
    T("main_un_for_thread", mun);
    T("thread_blocking_ex", bl.result);
    B("thread_got_it_only_after_release", bl.saw_note);
    close(bl.fd);

    /* Bad input. */
    E("bad_fd", flock(-1, LOCK_SH), EBADF);
    E("closed_fd", flock(999, LOCK_SH), EBADF);
    E("op_zero", flock(a, 0), EINVAL);
    E("op_sh_ex", flock(a, LOCK_SH | LOCK_EX), EINVAL);
    E("op_nb_only", flock(a, LOCK_NB), EINVAL);
    E("op_junk", flock(a, 0x100), EINVAL);
    E("op_junk_bad_fd", flock(-1, 0x100), EINVAL);
    int o = open(path, O_PATH);
    E("o_path", flock(o, LOCK_SH), EBADF);
    E("o_path_un", flock(o, LOCK_UN), EBADF);
    close(o);
    int ro = open(path, O_RDONLY);
    T("ex_on_read_only_fd", flock(ro, LOCK_EX | LOCK_NB));
    close(ro);
    int wo = open(path, O_WRONLY);
    T("sh_on_write_only_fd", flock(wo, LOCK_SH | LOCK_NB));
    close(wo);
    int p[2];
    T("pipe", pipe(p));
    T("pipe_ex", flock(p[0], LOCK_EX | LOCK_NB));
    T("pipe_other_end", flock(p[1], LOCK_EX | LOCK_NB));
    close(p[0]);
    close(p[1]);
    /* Files without a node share Linux's one anonymous inode. */
    int e1 = eventfd(0, 0), e2 = eventfd(0, 0);
    T("eventfd_ex", flock(e1, LOCK_EX | LOCK_NB));
    E("other_eventfd_same_anon_inode", flock(e2, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    close(e1);
    T("other_eventfd_after_close", flock(e2, LOCK_EX | LOCK_NB));
    close(e2);
    int d = open(guest_scratch_buf, O_RDONLY | O_DIRECTORY);
    T("dir_ex", flock(d, LOCK_EX | LOCK_NB));
    close(d);
    close(a);
    guest_cleanup();
    printf("done\n");
    return 0;
}
