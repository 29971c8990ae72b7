/* Pipes and FIFOs in one process: pipe/pipe2 flags, EAGAIN, EOF, EPIPE
 * with SIGPIPE ignored, FIONREAD, poll/select, capacity, ESPIPE. */
#include "common.h"
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/uio.h>

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    int p[2], q[2], n;
    char buf[256];
    struct stat st;

    T("pipe", pipe(p));
    B("pipe_distinct_fds", p[0] != p[1]);
    V("pipe_read_end_accmode", fcntl(p[0], F_GETFL) & O_ACCMODE);
    V("pipe_write_end_accmode", fcntl(p[1], F_GETFL) & O_ACCMODE);
    V("pipe_no_cloexec", fcntl(p[0], F_GETFD));
    fstat(p[0], &st);
    B("pipe_is_fifo", S_ISFIFO(st.st_mode));
    V("pipe_write", write(p[1], "hello", 5));
    T("fionread", ioctl(p[0], FIONREAD, &n));
    V("fionread_value", n);
    memset(buf, 0, sizeof buf);
    V("pipe_read_partial", read(p[0], buf, 3));
    P("pipe_read_content %s\n", buf);
    V("pipe_read_rest", read(p[0], buf, sizeof buf));
    E("pipe_write_on_read_end_ebadf", write(p[0], "x", 1), EBADF);
    E("pipe_read_on_write_end_ebadf", read(p[1], buf, 1), EBADF);
    E("pipe_lseek_espipe", lseek(p[0], 0, SEEK_SET), ESPIPE);
    E("pipe_pread_espipe", pread(p[0], buf, 1, 0), ESPIPE);
    E("pipe_pwrite_espipe", pwrite(p[1], buf, 1, 0), ESPIPE);

    /* poll */
    struct pollfd pf[2] = { { p[0], POLLIN, 0 }, { p[1], POLLOUT, 0 } };
    V("poll_empty_pipe", poll(pf, 2, 0));
    P("poll_empty_revents_r=%x w=%x\n", pf[0].revents, pf[1].revents);
    write(p[1], "x", 1);
    V("poll_readable", poll(pf, 2, 0));
    P("poll_readable_revents_r=%x w=%x\n", pf[0].revents, pf[1].revents);
    V("poll_timeout_only_reader", poll(pf, 1, 10));
    read(p[0], buf, 1);
    pf[1].events = 0;
    V("poll_timeout_nothing", poll(pf, 1, 10));
    E("poll_bad_ptr_efault", syscall(SYS_poll, BADPTR, 1, 0), EFAULT);
    struct pollfd bad = { 9999, POLLIN, 0 };
    V("poll_bad_fd_counted", poll(&bad, 1, 0));
    P("poll_bad_fd_revents %x\n", bad.revents);
    struct pollfd neg = { -1, POLLIN, 0 };
    V("poll_negative_fd_ignored", poll(&neg, 1, 0));

    /* select */
    fd_set rs, ws;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_SET(p[0], &rs);
    FD_SET(p[1], &ws);
    struct timeval tv = { 0, 0 };
    int maxfd = (p[0] > p[1] ? p[0] : p[1]) + 1;
    V("select_write_ready", select(maxfd, &rs, &ws, NULL, &tv));
    B("select_read_not_set", !FD_ISSET(p[0], &rs));
    B("select_write_set", FD_ISSET(p[1], &ws));
    write(p[1], "y", 1);
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    tv.tv_usec = 0;
    V("select_read_ready", select(maxfd, &rs, NULL, NULL, &tv));
    read(p[0], buf, 1);
    E("select_negative_nfds_einval", select(-1, NULL, NULL, NULL, &tv), EINVAL);

    /* EOF and EPIPE */
    close(p[1]);
    V("pipe_read_eof", read(p[0], buf, sizeof buf));
    pf[0].fd = p[0];
    pf[0].events = POLLIN;
    V("poll_after_writer_closed", poll(pf, 1, 0));
    P("poll_hup_revents %x\n", pf[0].revents);
    close(p[0]);

    T("signal_sigpipe_ignore", signal(SIGPIPE, SIG_IGN) == SIG_ERR ? -1 : 0);
    pipe(p);
    close(p[0]);
    E("pipe_write_no_reader_epipe", write(p[1], "x", 1), EPIPE);
    pf[0].fd = p[1];
    pf[0].events = POLLOUT;
    V("poll_writer_no_reader", poll(pf, 1, 0));
    P("poll_err_revents %x\n", pf[0].revents);
    close(p[1]);

    /* pipe2 flags */
    T("pipe2_cloexec", pipe2(q, O_CLOEXEC));
    V("pipe2_cloexec_flag_r", fcntl(q[0], F_GETFD));
    V("pipe2_cloexec_flag_w", fcntl(q[1], F_GETFD));
    close(q[0]);
    close(q[1]);
    T("pipe2_nonblock", pipe2(q, O_NONBLOCK));
    B("pipe2_nonblock_flag", (fcntl(q[0], F_GETFL) & O_NONBLOCK) != 0);
    E("pipe2_nonblock_empty_eagain", read(q[0], buf, 1), EAGAIN);
    E("pipe2_bad_flags_einval", pipe2(p, 0x12345), EINVAL);
    E("pipe_bad_ptr_efault", syscall(SYS_pipe, BADPTR), EFAULT);
    E("pipe2_bad_ptr_efault", syscall(SYS_pipe2, BADPTR, 0), EFAULT);

    /* capacity */
    V("pipe_getpipe_sz", fcntl(q[1], F_GETPIPE_SZ));
    static char chunk[100000];
    memset(chunk, 'c', sizeof chunk);
    V("pipe_nonblock_big_write_partial", write(q[1], chunk, sizeof chunk));
    E("pipe_full_eagain", write(q[1], chunk, 1), EAGAIN);
    ioctl(q[0], FIONREAD, &n);
    V("fionread_full", n);
    pf[0].fd = q[1];
    pf[0].events = POLLOUT;
    V("poll_full_not_writable", poll(pf, 1, 0));
    long total = 0;
    ssize_t r;
    while ((r = read(q[0], chunk, sizeof chunk)) > 0)
        total += r;
    V("pipe_drained_total", total);
    /* Small writes are atomic: 4096 fits after draining. */
    V("pipe_write_pipe_buf", write(q[1], chunk, 4096));
    struct iovec iov[2] = { { buf, 10 }, { buf + 10, 20 } };
    V("pipe_readv", readv(q[0], iov, 2));
    close(q[0]);
    close(q[1]);

    /* FIFOs */
    T("mkfifo", mkfifo(sp("fifo"), 0644));
    E("mkfifo_eexist", mkfifo(sp("fifo"), 0644), EEXIST);
    E("fifo_open_wronly_nonblock_no_reader_enxio", open(sp("fifo"), O_WRONLY | O_NONBLOCK), ENXIO);
    int fr = open(sp("fifo"), O_RDONLY | O_NONBLOCK);
    T("fifo_open_rdonly_nonblock", fr);
    int fw = open(sp("fifo"), O_WRONLY | O_NONBLOCK);
    T("fifo_open_wronly_with_reader", fw);
    V("fifo_write", write(fw, "fifo!", 5));
    memset(buf, 0, sizeof buf);
    V("fifo_read", read(fr, buf, sizeof buf));
    P("fifo_content %s\n", buf);
    close(fw);
    V("fifo_read_eof", read(fr, buf, sizeof buf));
    close(fr);
    int frw = open(sp("fifo"), O_RDWR);
    T("fifo_open_rdwr", frw);
    V("fifo_rdwr_write", write(frw, "ab", 2));
    V("fifo_rdwr_read", read(frw, buf, 2));
    close(frw);

    guest_cleanup();
    P("done\n");
    return 0;
}
