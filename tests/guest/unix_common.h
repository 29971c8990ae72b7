/* Helpers for the AF_UNIX conformance programs (unix_*.c): addresses,
 * poll bits as names, descriptor passing. */
#ifndef RUNSC_LITE_GUEST_UNIX_COMMON_H
#define RUNSC_LITE_GUEST_UNIX_COMMON_H

#include "common.h"
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef SIOCINQ
#define SIOCINQ FIONREAD
#endif
#ifndef SIOCOUTQ
#define SIOCOUTQ TIOCOUTQ
#endif

/* A path address; returns its length as Linux counts it. */
static __attribute__((unused)) socklen_t un_path(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s", path);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

/* An abstract address unique to this process and `tag`. */
static __attribute__((unused)) socklen_t un_abs(struct sockaddr_un *a, const char *tag)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "rlunix-%d-%s", (int)getpid(), tag);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* Prints the readiness of fd for `events` right now, bits by name. */
static __attribute__((unused)) void show_poll(const char *name, int fd, short events)
{
    struct pollfd p = { fd, events, 0 };
    int r = poll(&p, 1, 0);
    if (r < 0) {
        printf("%s err %s\n", name, errno_name(errno));
        return;
    }
    printf("%s:", name);
    if (p.revents & POLLIN) printf(" IN");
    if (p.revents & POLLOUT) printf(" OUT");
    if (p.revents & POLLRDHUP) printf(" RDHUP");
    if (p.revents & POLLHUP) printf(" HUP");
    if (p.revents & POLLERR) printf(" ERR");
    if (p.revents & POLLNVAL) printf(" NVAL");
    printf("\n");
}

/* Waits (up to 10 s) until fd shows one of `events`; returns revents. */
static __attribute__((unused)) int wait_for(int fd, short events)
{
    struct pollfd p = { fd, events, 0 };
    int r = poll(&p, 1, 10000);
    return r > 0 ? p.revents : 0;
}

/* sendmsg with `len` bytes of data and n descriptors (n may be 0). */
static __attribute__((unused)) ssize_t send_fds(int sock, const int *fds, int n, const void *data, size_t len, int flags)
{
    char cbuf[CMSG_SPACE(sizeof(int) * 16)];
    struct iovec iov = { (void *)data, len };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (n > 0) {
        memset(cbuf, 0, sizeof cbuf);
        m.msg_control = cbuf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
    }
    return sendmsg(sock, &m, flags);
}

/* What one recvmsg brought: bytes, descriptors, credentials, flags. */
struct got {
    ssize_t n;
    int nfds;
    int fds[16];
    int ncmsg;
    int have_cred;
    struct ucred cred;
    int flags;
};

static __attribute__((unused)) struct got recv_all(int sock, void *buf, size_t len, int flags, size_t ctl)
{
    struct got g;
    memset(&g, 0, sizeof g);
    union {
        char b[512];
        struct cmsghdr align;
    } cbuf;
    memset(&cbuf, 0, sizeof cbuf);
    struct iovec iov = { buf, len };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl ? cbuf.b : NULL;
    m.msg_controllen = ctl > sizeof cbuf ? sizeof cbuf : ctl;
    g.n = recvmsg(sock, &m, flags);
    if (g.n < 0)
        return g;
    g.flags = m.msg_flags;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        g.ncmsg++;
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k && g.nfds < 16; i++)
                memcpy(&g.fds[g.nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            g.have_cred = 1;
            memcpy(&g.cred, CMSG_DATA(c), sizeof g.cred);
        }
    }
    return g;
}

static __attribute__((unused)) int set_int(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof v);
}

static __attribute__((unused)) int get_int(int fd, int level, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, name, &v, &l) < 0)
        return -1;
    return v;
}

static __attribute__((unused)) int ioctl_int(int fd, unsigned long req)
{
    int v = -1;
    if (ioctl(fd, req, &v) < 0)
        return -1;
    return v;
}

#endif
