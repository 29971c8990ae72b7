/* dnotify (fcntl F_NOTIFY) and the file owner it signals: F_SETOWN,
 * F_GETOWN, F_SETOWN_EX, F_GETOWN_EX, F_SETSIG, F_GETSIG. Signals are
 * blocked and taken with sigtimedwait: dnotify sends them within the
 * call that changed the directory, so they are pending when it returns.
 */
#include "common.h"
#include <signal.h>
#include <time.h>

/* One signal `sig` pending? Its si_fd and si_code into *fd, *code. */
static int took(int sig, int *fd, int *code)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    struct timespec zero = {0, 0};
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (sigtimedwait(&s, &si, &zero) != sig)
        return 0;
    if (fd)
        *fd = si.si_fd;
    if (code)
        *code = si.si_code;
    return 1;
}

static char dir[64];

static void path(char *out, const char *name)
{
    snprintf(out, 128, "%s/%s", dir, name);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    strcpy(dir, "/tmp/dnotify.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    int rt = SIGRTMIN + 1;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, rt);
    sigaddset(&block, SIGIO);
    sigprocmask(SIG_BLOCK, &block, NULL);
    char p[128], q[128];

    int d = open(dir, O_RDONLY | O_DIRECTORY);
    T("open_dir", d);
    path(p, "file");
    int f = open(p, O_CREAT | O_RDWR, 0644);
    T("open_file", f);

    /* Errors and the mask-less forms. */
    T("multishot_alone_dir", fcntl(d, F_NOTIFY, DN_MULTISHOT));
    T("multishot_alone_file", fcntl(f, F_NOTIFY, DN_MULTISHOT));
    T("zero_file", fcntl(f, F_NOTIFY, 0));
    E("file_enotdir", fcntl(f, F_NOTIFY, DN_CREATE), ENOTDIR);
    E("bad_fd", fcntl(999, F_NOTIFY, DN_CREATE), EBADF);

    /* The owner. */
    V("getown_initial", fcntl(f, F_GETOWN));
    T("setown_self", fcntl(f, F_SETOWN, getpid()));
    B("getown_self", fcntl(f, F_GETOWN) == getpid());
    T("setown_pgrp", fcntl(f, F_SETOWN, -getpgrp()));
    B("getown_pgrp", fcntl(f, F_GETOWN) == -getpgrp());
    struct f_owner_ex ox = {F_OWNER_TID, (pid_t)syscall(SYS_gettid)}, got = {0, 0};
    T("setown_ex_tid", fcntl(f, F_SETOWN_EX, &ox));
    T("getown_ex", fcntl(f, F_GETOWN_EX, &got));
    B("getown_ex_tid", got.type == F_OWNER_TID && got.pid == ox.pid);
    ox.type = 7;
    E("setown_ex_bad_type", fcntl(f, F_SETOWN_EX, &ox), EINVAL);
    E("setown_ex_fault", fcntl(f, F_SETOWN_EX, (void *)8), EFAULT);
    E("getown_ex_fault", fcntl(f, F_GETOWN_EX, (void *)8), EFAULT);
    E("setown_no_such_pid", fcntl(f, F_SETOWN, 0x3ffffff0), ESRCH);
    T("setown_zero", fcntl(f, F_SETOWN, 0));
    V("getown_zero", fcntl(f, F_GETOWN));
    V("getsig_initial", fcntl(f, F_GETSIG));
    E("setsig_too_big", fcntl(f, F_SETSIG, 65), EINVAL);
    T("setsig_64", fcntl(f, F_SETSIG, 64));
    V("getsig_64", fcntl(f, F_GETSIG));

    /* DN_CREATE | DN_MULTISHOT with a real-time signal: si_fd and
     * POLL_MSG, every time. */
    T("setsig_rt", fcntl(d, F_SETSIG, rt));
    T("notify_create", fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT));
    B("owner_is_caller", fcntl(d, F_GETOWN) == getpid());
    B("nothing_yet", !took(rt, NULL, NULL));
    path(q, "a");
    int fd = -1, code = 0;
    T("create_a", close(open(q, O_CREAT | O_WRONLY, 0644)));
    B("signal_a", took(rt, &fd, &code));
    B("si_fd", fd == d);
    B("si_code_poll_msg", code == POLL_MSG);
    path(q, "b");
    T("mkdir_b", mkdir(q, 0755));
    B("signal_b", took(rt, NULL, NULL));
    B("once_per_event", !took(rt, NULL, NULL));
    /* A write is no creation. */
    T("write", write(f, "x", 1) == 1 ? 0 : -1);
    B("write_not_create", !took(rt, NULL, NULL));

    /* Masks add up; DN_MODIFY, DN_ATTRIB, DN_RENAME, DN_DELETE. */
    T("notify_more", fcntl(d, F_NOTIFY, DN_MODIFY | DN_ATTRIB | DN_RENAME | DN_DELETE | DN_MULTISHOT));
    T("write2", write(f, "y", 1) == 1 ? 0 : -1);
    B("signal_modify", took(rt, NULL, NULL));
    T("chmod", chmod(p, 0600));
    B("signal_attrib", took(rt, NULL, NULL));
    path(q, "a");
    char r[128];
    path(r, "a2");
    T("rename", rename(q, r));
    B("signal_rename", took(rt, NULL, NULL));
    T("unlink", unlink(r));
    B("signal_delete", took(rt, NULL, NULL));
    path(q, "c");
    T("create_c", close(open(q, O_CREAT | O_WRONLY, 0644)));
    B("signal_create_still", took(rt, NULL, NULL));

    /* DN_RENAME alone: a rename within the directory, not out of it. */
    int d3 = open(dir, O_RDONLY | O_DIRECTORY);
    T("open_dir3", d3);
    T("setsig_d3", fcntl(d3, F_SETSIG, rt + 1));
    sigaddset(&block, rt + 1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    T("notify_rename_only", fcntl(d3, F_NOTIFY, DN_RENAME | DN_MULTISHOT));
    path(q, "c");
    path(r, "c2");
    T("rename_within", rename(q, r));
    B("signal_rename_only", took(rt + 1, NULL, NULL));
    T("rename_out", rename(r, "/tmp/dnotify-moved-out"));
    B("no_rename_signal_out", !took(rt + 1, NULL, NULL));
    T("rename_back", rename("/tmp/dnotify-moved-out", q));
    B("no_rename_signal_in", !took(rt + 1, NULL, NULL));
    T("close_dir3", close(d3));
    while (took(rt, NULL, NULL))
        ;

    /* A one-shot mark on another descriptor, with plain SIGIO. */
    int d2 = open(dir, O_RDONLY | O_DIRECTORY);
    T("open_dir2", d2);
    T("notify_oneshot", fcntl(d2, F_NOTIFY, DN_DELETE));
    T("unlink_c", unlink(q));
    B("sigio", took(SIGIO, NULL, NULL));
    while (took(rt, NULL, NULL))
        ;
    path(q, "d");
    T("create_d", close(open(q, O_CREAT | O_WRONLY, 0644)));
    T("unlink_d", unlink(q));
    B("oneshot_gone", !took(SIGIO, NULL, NULL));
    while (took(rt, NULL, NULL))
        ;

    /* Removing: F_NOTIFY 0, then close. */
    T("notify_off", fcntl(d, F_NOTIFY, 0));
    path(q, "e");
    T("create_e", close(open(q, O_CREAT | O_WRONLY, 0644)));
    B("off_no_signal", !took(rt, NULL, NULL));
    T("notify_again", fcntl(d, F_NOTIFY, DN_DELETE | DN_MULTISHOT));
    int dup_d = dup(d);
    T("close_dup", close(dup_d));
    T("unlink_e", unlink(q));
    B("dup_close_removes", !took(rt, NULL, NULL));
    T("notify_third", fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT));
    T("close_dir", close(d));
    path(q, "g");
    T("create_g", close(open(q, O_CREAT | O_WRONLY, 0644)));
    B("close_removes", !took(rt, NULL, NULL));

    /* Cleanup. */
    close(f);
    close(d2);
    unlink(q);
    unlink(p);
    path(q, "b");
    rmdir(q);
    T("rmdir", rmdir(dir));
    printf("done\n");
    return 0;
}
