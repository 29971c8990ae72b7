/* splice, tee and vmsplice: file <-> pipe, pipe <-> pipe, socket <-> pipe,
 * offsets, SPLICE_F_NONBLOCK, tee without consuming, and the error rules
 * (ESPIPE, EINVAL, EBADF, EFAULT, EAGAIN, EPIPE). */
#include "common.h"
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

static long drain(int fd, char *buf, size_t cap)
{
    long n = read(fd, buf, cap - 1);
    if (n >= 0)
        buf[n] = 0;
    return n;
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    char f[4200], g[4200];
    snprintf(f, sizeof f, "%s", sp("src"));
    snprintf(g, sizeof g, "%s", sp("dst"));
    char buf[256];
    int p[2], q[2];
    loff_t off;

    T("write_src", write_file(f, "0123456789abcdefghij", 0644));
    int in = open(f, O_RDONLY);
    int out = open(g, O_RDWR | O_CREAT | O_TRUNC, 0644);
    T("pipe", pipe(p));
    T("pipe2", pipe(q));

    /* file -> pipe at the file position. */
    V("file_to_pipe", splice(in, NULL, p[1], NULL, 5, 0));
    V("  file_pos", lseek(in, 0, SEEK_CUR));
    V("  read", drain(p[0], buf, sizeof buf));
    P("  got %s\n", buf);
    /* file -> pipe at an offset: the file position stays. */
    off = 10;
    V("file_off_to_pipe", splice(in, &off, p[1], NULL, 4, SPLICE_F_MORE | SPLICE_F_MOVE));
    V("  off_now", off);
    V("  file_pos_kept", lseek(in, 0, SEEK_CUR));
    V("  read", drain(p[0], buf, sizeof buf));
    P("  got %s\n", buf);
    /* EOF: 0. */
    off = 20;
    V("file_eof", splice(in, &off, p[1], NULL, 4, 0));
    /* len larger than the file. */
    off = 15;
    V("file_clamped", splice(in, &off, p[1], NULL, 1000, 0));
    /* pipe -> file at the position, then at an offset. */
    V("pipe_to_file", splice(p[0], NULL, out, NULL, 100, 0));
    V("  out_pos", lseek(out, 0, SEEK_CUR));
    T("write_pipe", write(p[1], "XYZ", 3));
    off = 1;
    V("pipe_to_file_off", splice(p[0], NULL, out, &off, 2, 0));
    V("  off_now", off);
    V("  out_pos_kept", lseek(out, 0, SEEK_CUR));
    V("  left_in_pipe", drain(p[0], buf, sizeof buf));
    P("  left %s\n", buf);
    V("pread_out", pread(out, buf, sizeof buf - 1, 0));
    buf[5] = 0;
    P("  out %s\n", buf);

    /* pipe -> pipe moves; tee copies. */
    T("fill", write(p[1], "tee-data", 8));
    V("tee", tee(p[0], q[1], 100, 0));
    V("  still_in_p", drain(p[0], buf, sizeof buf));
    V("  copy_in_q", drain(q[0], buf, sizeof buf));
    P("  q %s\n", buf);
    T("fill2", write(p[1], "move", 4));
    V("pipe_to_pipe", splice(p[0], NULL, q[1], NULL, 3, 0));
    V("  rest_in_p", drain(p[0], buf, sizeof buf));
    V("  moved_to_q", drain(q[0], buf, sizeof buf));
    P("  q %s\n", buf);

    /* Empty pipes with SPLICE_F_NONBLOCK: EAGAIN. */
    E("nb_empty_to_file", splice(p[0], NULL, out, NULL, 10, SPLICE_F_NONBLOCK), EAGAIN);
    E("nb_tee_empty", tee(p[0], q[1], 10, SPLICE_F_NONBLOCK), EAGAIN);
    E("nb_p2p_empty", splice(p[0], NULL, q[1], NULL, 10, SPLICE_F_NONBLOCK), EAGAIN);

    /* Full pipe, non-blocking: EAGAIN. */
    int r[2];
    T("pipe3", pipe2(r, O_NONBLOCK));
    long filled = 0;
    char chunk[4096];
    memset(chunk, 'z', sizeof chunk);
    while (write(r[1], chunk, sizeof chunk) > 0)
        filled++;
    B("full", filled > 0);
    off = 0;
    E("nb_full_from_file", splice(in, &off, r[1], NULL, 10, SPLICE_F_NONBLOCK), EAGAIN);
    close(r[0]);
    close(r[1]);

    /* Errors. */
    V("len0", splice(in, NULL, p[1], NULL, 0, 0));
    E("bad_flags", splice(in, NULL, p[1], NULL, 4, 0x10), EINVAL);
    E("bad_fd_in", splice(999, NULL, p[1], NULL, 4, 0), EBADF);
    E("bad_fd_out", splice(in, NULL, 999, NULL, 4, 0), EBADF);
    E("no_pipe", splice(in, NULL, out, NULL, 4, 0), EINVAL);
    off = 0;
    E("pipe_in_off", splice(p[0], &off, out, NULL, 4, 0), ESPIPE);
    E("pipe_out_off", splice(in, NULL, p[1], &off, 4, 0), ESPIPE);
    E("same_pipe", splice(p[0], NULL, p[1], NULL, 4, 0), EINVAL);
    E("write_end_in", splice(p[1], NULL, out, NULL, 4, 0), EBADF);
    E("read_end_out", splice(in, NULL, p[0], NULL, 4, 0), EBADF);
    E("bad_off_ptr", splice(in, BADPTR, p[1], NULL, 4, 0), EFAULT);
    off = -1;
    E("neg_off", splice(in, &off, p[1], NULL, 4, 0), EINVAL);
    int ro = open(f, O_RDONLY);
    T("write_pipe", write(p[1], "ab", 2));
    E("to_readonly_file", splice(p[0], NULL, ro, NULL, 2, 0), EBADF);
    int ap = open(g, O_WRONLY | O_APPEND);
    E("to_append_file", splice(p[0], NULL, ap, NULL, 2, 0), EINVAL);
    V("  drain", drain(p[0], buf, sizeof buf));
    E("tee_not_pipe", tee(in, q[1], 4, 0), EINVAL);
    E("tee_same", tee(p[0], p[1], 4, 0), EINVAL);
    E("tee_bad_flags", tee(p[0], q[1], 4, 0x100), EINVAL);
    E("tee_bad_fd", tee(999, q[1], 4, 0), EBADF);
    V("tee_len0", tee(p[0], q[1], 0, 0));

    /* Writers gone: 0 from an empty pipe; readers gone: EPIPE. */
    int s[2];
    T("pipe4", pipe(s));
    close(s[1]);
    V("eof_pipe_to_file", splice(s[0], NULL, out, NULL, 4, 0));
    V("eof_tee", tee(s[0], q[1], 4, 0));
    close(s[0]);
    T("pipe5", pipe(s));
    close(s[0]);
    off = 0;
    E("epipe", splice(in, &off, s[1], NULL, 4, 0), EPIPE);
    close(s[1]);

    /* Sockets: socket -> pipe -> socket. */
    int sv[2];
    T("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    T("send", write(sv[0], "sockdata", 8));
    V("sock_to_pipe", splice(sv[1], NULL, p[1], NULL, 100, 0));
    V("pipe_to_sock", splice(p[0], NULL, sv[1], NULL, 100, 0));
    V("  recv", drain(sv[0], buf, sizeof buf));
    P("  sock %s\n", buf);
    off = 0;
    E("sock_off", splice(sv[1], &off, p[1], NULL, 4, 0), EINVAL);

    /* vmsplice: into a pipe from guest memory, and back out. */
    struct iovec iov[3] = {{"vm", 2}, {"", 0}, {"splice", 6}};
    V("vmsplice_in", vmsplice(p[1], iov, 3, SPLICE_F_GIFT));
    char a[3] = {0}, b[16] = {0};
    struct iovec back[2] = {{a, 2}, {b, 15}};
    V("vmsplice_out", vmsplice(p[0], back, 2, 0));
    P("  out %s %s\n", a, b);
    E("vmsplice_nb_empty", vmsplice(p[0], back, 2, SPLICE_F_NONBLOCK), EAGAIN);
    V("vmsplice_zero", vmsplice(p[1], iov, 0, 0));
    E("vmsplice_file", vmsplice(out, iov, 1, 0), EBADF);
    E("vmsplice_bad_fd", vmsplice(999, iov, 1, 0), EBADF);
    E("vmsplice_bad_flags", vmsplice(p[1], iov, 1, 0x20), EINVAL);
    E("vmsplice_too_many", vmsplice(p[1], iov, 2000, 0), EINVAL);
    E("vmsplice_bad_iov", vmsplice(p[1], BADPTR, 1, 0), EFAULT);
    struct iovec badbase = {BADPTR, 4};
    E("vmsplice_bad_base", vmsplice(p[1], &badbase, 1, 0), EFAULT);
    T("pipe6", pipe(s));
    close(s[0]);
    E("vmsplice_epipe", vmsplice(s[1], iov, 1, 0), EPIPE);

    /* Blocking: a splice and a tee on an empty pipe wait for a writer
     * (whichever runs first, the result is the same). */
    int bp[2], cp[2];
    T("pipe7", pipe(bp));
    T("pipe8", pipe(cp));
    pid_t kid = fork();
    if (kid == 0) {
        if (write(bp[1], "late", 4) != 4)
            _exit(1);
        _exit(0);
    }
    V("blocking_tee", tee(bp[0], cp[1], 100, 0));
    V("blocking_splice", splice(bp[0], NULL, out, NULL, 100, 0));
    int ws;
    waitpid(kid, &ws, 0);
    V("  child_exit", WEXITSTATUS(ws));
    V("  tee_copy", drain(cp[0], buf, sizeof buf));
    P("  tee %s\n", buf);
    close(bp[1]);
    V("eof_after_writer", splice(bp[0], NULL, out, NULL, 100, 0));

    close(in);
    close(out);
    guest_cleanup();
    P("done\n");
    return 0;
}
