/* Hostile input to the socket syscalls themselves (not one family's
 * semantics): bad pointers, lengths that lie, control messages that lie
 * about their size, descriptors that are not sockets or not open. Each
 * gets Linux's errno; afterwards no descriptor has leaked. */
#include "common.h"
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

/* An address nothing is mapped at (volatile, so gcc does not see it). */
static void *volatile bad_ptr = (void *)8;
#define BAD bad_ptr

static void bad_control(int s)
{
    char data = 'x';
    struct iovec iov = { &data, 1 };
    union {
        struct cmsghdr h;
        char b[256];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b };
    struct cmsghdr *c = &u.h;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    /* cmsg_len beyond the control buffer. */
    c->cmsg_len = CMSG_LEN(64);
    m.msg_controllen = CMSG_SPACE(4);
    E("cmsg_len_past_end", sendmsg(s, &m, MSG_DONTWAIT), EINVAL);
    /* cmsg_len smaller than its own header. */
    c->cmsg_len = 4;
    E("cmsg_len_below_header", sendmsg(s, &m, MSG_DONTWAIT), EINVAL);
    /* An unknown SOL_SOCKET control message. */
    c->cmsg_len = CMSG_LEN(4);
    c->cmsg_type = 77;
    E("cmsg_unknown_type", sendmsg(s, &m, MSG_DONTWAIT), EINVAL);
    /* A control buffer past the end of memory, and a huge one. */
    m.msg_control = BAD;
    m.msg_controllen = 64;
    E("control_efault", sendmsg(s, &m, MSG_DONTWAIT), EFAULT);
    m.msg_control = u.b;
    m.msg_controllen = 1 << 20;
    E("control_too_big", sendmsg(s, &m, MSG_DONTWAIT), ENOBUFS);
    /* SCM_RIGHTS with a descriptor that is not open. */
    m.msg_controllen = CMSG_SPACE(4);
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(4);
    int closed = 1000;
    memcpy(CMSG_DATA(c), &closed, 4);
    E("rights_ebadf", sendmsg(s, &m, MSG_DONTWAIT), EBADF);
    /* A short control buffer (less than a header) is ignored. */
    m.msg_controllen = 8;
    V("control_shorter_than_header", sendmsg(s, &m, MSG_DONTWAIT));
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    int before = count_fds();
    int sv[2];
    T("socketpair", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    char buf[16];
    struct sockaddr_un un;
    socklen_t len = sizeof un;

    /* Not sockets, not descriptors. */
    int pfd[2];
    T("pipe", pipe(pfd));
    E("send_enotsock", send(pfd[1], "x", 1, 0), ENOTSOCK);
    E("getsockname_enotsock", getsockname(pfd[0], (struct sockaddr *)&un, &len), ENOTSOCK);
    E("listen_ebadf", listen(4242, 1), EBADF);
    E("shutdown_einval", shutdown(sv[0], 7), EINVAL);

    /* socket(2) arguments. */
    E("socket_bad_flags", socket(AF_UNIX, SOCK_STREAM | 0x100000, 0), EINVAL);
    E("socket_bad_family", socket(4242, SOCK_STREAM, 0), EAFNOSUPPORT);
    E("socketpair_efault", socketpair(AF_UNIX, SOCK_STREAM, 0, BAD), EFAULT);

    /* Bad pointers and lengths. */
    E("send_efault", send(sv[0], BAD, 4, MSG_DONTWAIT), EFAULT);
    E("sendmsg_msghdr_efault", sendmsg(sv[0], BAD, 0), EFAULT);
    struct iovec iov = { buf, 1 };
    struct msghdr m = { .msg_iov = BAD, .msg_iovlen = 1 };
    E("sendmsg_iov_efault", sendmsg(sv[0], &m, MSG_DONTWAIT), EFAULT);
    m.msg_iov = &iov;
    m.msg_iovlen = 5000;
    E("sendmsg_too_many_iovecs", sendmsg(sv[0], &m, MSG_DONTWAIT), EMSGSIZE);
    m.msg_iovlen = 1;
    m.msg_name = BAD;
    m.msg_namelen = sizeof(struct sockaddr_un);
    E("sendmsg_name_efault", sendmsg(sv[0], &m, MSG_DONTWAIT), EFAULT);
    m.msg_name = 0;
    m.msg_namelen = 0;
    E("sendto_long_addrlen", sendto(sv[0], "x", 1, 0, (struct sockaddr *)&un, 4096), EINVAL);
    E("getsockname_len_efault", getsockname(sv[0], (struct sockaddr *)&un, BAD), EFAULT);
    socklen_t neg = (socklen_t)-1;
    E("getsockname_negative_len", getsockname(sv[0], (struct sockaddr *)&un, &neg), EINVAL);
    int v;
    socklen_t vl = (socklen_t)-1;
    E("getsockopt_negative_len", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &vl), EINVAL);
    vl = 2;
    T("getsockopt_short_len", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &vl));
    V("getsockopt_short_len_out", vl);
    E("setsockopt_short", setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, 2), EINVAL);
    E("setsockopt_efault", setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, BAD, 4), EFAULT);
    E("setsockopt_readonly", setsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, 4), ENOPROTOOPT);
    E("getsockopt_unknown", getsockopt(sv[0], SOL_SOCKET, 4242, &v, &vl), ENOPROTOOPT);
    E("recv_efault", (send(sv[1], "y", 1, 0), recv(sv[0], BAD, 4, MSG_DONTWAIT)), EFAULT);
    E("accept4_bad_flags", accept4(sv[0], 0, 0, 0x4242), EINVAL);
    E("recvmmsg_efault", recvmmsg(sv[0], BAD, 2, MSG_DONTWAIT, 0), EFAULT);

    bad_control(sv[0]);

    /* Listening needs a connection-mode socket that is not connected. */
    int st[2];
    T("socketpair_stream", socketpair(AF_UNIX, SOCK_STREAM, 0, st));
    E("listen_connected", listen(st[0], 1), EINVAL);
    E("accept_not_listening", accept(st[0], 0, 0), EINVAL);
    E("listen_dgram", listen(sv[0], 1), EOPNOTSUPP);

    close(st[0]);
    close(st[1]);
    close(pfd[0]);
    close(pfd[1]);
    close(sv[0]);
    close(sv[1]);
    V("fds_leaked", count_fds() - before);
    puts("done");
    return 0;
}
