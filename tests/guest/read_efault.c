/* A read or receive whose buffer is not writable at all fails with EFAULT;
 * what it would have taken stays for the next reader on a pipe or a
 * stream socket (Linux fails before consuming), while a datagram is
 * dropped. */
#include "common.h"
#include <sys/socket.h>

#define BAD ((void *)1)

static void next(const char *name, int fd)
{
    char b[8] = {0};
    long n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK)
        n = read(fd, b, sizeof b);
    if (n < 0)
        printf("%s err %s\n", name, errno_name(errno));
    else
        printf("%s = %ld %s\n", name, n, b);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int p[2], s[2], d[2];
    T("pipe", pipe(p));
    T("pipe_write", write(p[1], "abc", 3));
    E("pipe_read_bad", read(p[0], BAD, 3), EFAULT);
    next("pipe_kept", p[0]);

    T("stream_pair", socketpair(AF_UNIX, SOCK_STREAM, 0, s));
    T("stream_write", write(s[1], "def", 3));
    E("stream_read_bad", read(s[0], BAD, 3), EFAULT);
    E("stream_recv_bad", recv(s[0], BAD, 3, 0), EFAULT);
    next("stream_kept", s[0]);

    T("dgram_pair", socketpair(AF_UNIX, SOCK_DGRAM, 0, d));
    T("dgram_send", send(d[1], "ghi", 3, 0));
    T("dgram_send2", send(d[1], "jkl", 3, 0));
    E("dgram_recv_bad", recv(d[0], BAD, 3, 0), EFAULT);
    next("dgram_next", d[0]);
    printf("done\n");
    return 0;
}
