/* An anonymous pipe opened again by path (/proc/self/fd/N, /dev/stdin):
 * a new end of the same pipe that never waits for a partner (pipefs), so
 * a reader whose writers are gone reads what is queued and then EOF.
 * `cmd | cat /dev/stdin` and CPython's test_devstdin_input hung on it. */
#include "common.h"
#include <signal.h>
#include <sys/wait.h>

static int reopen(int fd, int flags)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    return open(p, flags);
}

int main(void)
{
    int p[2];
    char buf[16];
    T("pipe", pipe(p));
    V("write", write(p[1], "abc", 3));
    T("close_writer", close(p[1]));
    int r = reopen(p[0], O_RDONLY);
    T("reopen_reader", r);
    V("read_queued", read(r, buf, sizeof buf));
    V("read_eof", read(r, buf, sizeof buf));
    struct stat a, b;
    fstat(p[0], &a);
    fstat(r, &b);
    B("same_pipe", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    B("is_fifo", S_ISFIFO(b.st_mode));
    close(r);
    close(p[0]);

    /* Through /dev/stdin, with the writer a child that already exited. */
    T("pipe2", pipe(p));
    pid_t c = fork();
    if (c == 0) {
        write(p[1], "hello", 5);
        _exit(0);
    }
    close(p[1]);
    waitpid(c, NULL, 0);
    int saved = dup(0);
    dup2(p[0], 0);
    close(p[0]);
    int s = open("/dev/stdin", O_RDONLY);
    T("open_dev_stdin", s);
    V("stdin_read", read(s, buf, sizeof buf));
    V("stdin_eof", read(s, buf, sizeof buf));
    close(s);
    dup2(saved, 0);
    close(saved);

    /* A writer end opened by path feeds the same pipe. */
    T("pipe3", pipe(p));
    int w = reopen(p[1], O_WRONLY);
    T("reopen_writer", w);
    V("write_via_reopen", write(w, "xy", 2));
    close(w);
    close(p[1]);
    V("read_from_original", read(p[0], buf, sizeof buf));
    V("eof_after_both_writers", read(p[0], buf, sizeof buf));
    /* Read end as O_RDWR keeps a writer: no EOF then, so not read. */
    int rw = reopen(p[0], O_RDWR | O_NONBLOCK);
    T("reopen_rdwr", rw);
    E("rdwr_is_own_writer", read(rw, buf, sizeof buf), EAGAIN);
    close(rw);
    close(p[0]);

    /* A writer without readers opens (no FIFO's ENXIO) and gets EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    T("pipe4", pipe(p));
    close(p[0]);
    w = reopen(p[1], O_WRONLY | O_NONBLOCK);
    T("reopen_writer_no_reader", w);
    E("write_no_reader", write(w, "x", 1), EPIPE);
    close(w);
    close(p[1]);
    E("reopen_closed_fd", reopen(p[1], O_RDONLY), ENOENT);
    printf("done\n");
    return 0;
}
