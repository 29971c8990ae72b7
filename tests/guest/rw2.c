/* preadv2/pwritev2: offset -1 (the file position), the RWF_* flags
 * (HIPRI, DSYNC, SYNC accepted; NOWAIT on an empty pipe EAGAIN; APPEND),
 * unknown flags EOPNOTSUPP, and the error paths. */
#include "common.h"
#include <signal.h>
#include <sys/uio.h>

static long pr2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    return syscall(SYS_preadv2, fd, iov, cnt, off, 0, flags);
}

static long pw2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    return syscall(SYS_pwritev2, fd, iov, cnt, off, 0, flags);
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    char f[4200];
    snprintf(f, sizeof f, "%s", sp("file"));
    int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
    T("open", fd);
    char a[8] = {0}, b[8] = {0};
    struct iovec w[2] = {{"hello", 5}, {"world", 5}};
    struct iovec r[2] = {{a, 3}, {b, 4}};

    V("pwritev2_at_0", pw2(fd, w, 2, 0, 0));
    V("  pos_unmoved", lseek(fd, 0, SEEK_CUR));
    V("pwritev2_cur", pw2(fd, w, 1, -1, RWF_DSYNC));
    V("  pos_moved", lseek(fd, 0, SEEK_CUR));
    V("pwritev2_sync_hipri", pw2(fd, w + 1, 1, 10, RWF_SYNC | RWF_HIPRI));
    V("preadv2_at_2", pr2(fd, r, 2, 2, RWF_HIPRI));
    P("  got %s %s\n", a, b);
    V("  pos", lseek(fd, 0, SEEK_CUR));
    T("lseek", lseek(fd, 1, SEEK_SET));
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    V("preadv2_cur", pr2(fd, r, 2, -1, 0));
    P("  got %s %s\n", a, b);
    V("  pos", lseek(fd, 0, SEEK_CUR));
    V("preadv2_nowait_file", pr2(fd, r, 1, 0, RWF_NOWAIT));
    V("pwritev2_append", pw2(fd, w, 1, 0, RWF_APPEND));
    struct stat st;
    fstat(fd, &st);
    V("  size", st.st_size);
    V("  pos_after_append_at_off", lseek(fd, 0, SEEK_CUR));
    V("pwritev2_append_cur", pw2(fd, w + 1, 1, -1, RWF_APPEND));
    V("  pos_at_end", lseek(fd, 0, SEEK_CUR));
    V("preadv2_eof", pr2(fd, r, 2, 100, 0));

    /* Pipes. */
    int p[2];
    T("pipe", pipe(p));
    E("nowait_empty_pipe", pr2(p[0], r, 1, -1, RWF_NOWAIT), EAGAIN);
    V("pwritev2_pipe", pw2(p[1], w, 2, -1, 0));
    V("preadv2_pipe_nowait", pr2(p[0], r, 2, -1, RWF_NOWAIT));
    E("pipe_offset", pr2(p[0], r, 1, 0, 0), ESPIPE);
    E("pipe_offset_w", pw2(p[1], w, 1, 0, 0), ESPIPE);

    /* Errors. */
    E("unknown_flag", pr2(fd, r, 1, 0, 0x200), EOPNOTSUPP);
    int q[2];
    T("pipe_q", pipe(q));
    close(q[0]);
    signal(SIGPIPE, SIG_DFL);
    E("nosignal_epipe", pw2(q[1], w, 1, -1, 0x100), EPIPE);
    V("nosignal_read", pr2(fd, r, 1, 0, 0x100));
    E("unknown_flag_w", pw2(fd, w, 1, 0, 0x40000000), EOPNOTSUPP);
    V("unknown_flag_empty", pr2(fd, r, 0, 0, 0x200));
    E("bad_off", pr2(fd, r, 1, -2, 0), EINVAL);
    E("bad_off_w", pw2(fd, w, 1, -5, 0), EINVAL);
    E("bad_fd", pr2(999, r, 1, 0, 0), EBADF);
    int ro = open(f, O_RDONLY);
    E("write_readonly", pw2(ro, w, 1, 0, 0), EBADF);
    int wo = open(f, O_WRONLY);
    E("read_writeonly", pr2(wo, r, 1, 0, 0), EBADF);
    E("bad_iov", pr2(fd, BADPTR, 1, 0, 0), EFAULT);
    E("too_many", pr2(fd, r, 1025, 0, 0), EINVAL);
    E("neg_count", pr2(fd, r, -1, 0, 0), EINVAL);
    struct iovec bad = {BADPTR, 4};
    E("bad_base", pr2(fd, &bad, 1, 0, RWF_HIPRI), EFAULT);
    E("bad_base_w", pw2(fd, &bad, 1, 0, RWF_SYNC), EFAULT);
    close(fd);
    guest_cleanup();
    P("done\n");
    return 0;
}
