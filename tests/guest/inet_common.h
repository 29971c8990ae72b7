/* Helpers for the inet conformance programs (inet_*.c).
 *
 * Every socket binds port 0 on a loopback address and learns its port with
 * getsockname, so native runs can share the host's loopback with other
 * tests. Nothing here ever addresses anything but 127.0.0.0/8 and ::1;
 * a non-local address appears only in bind(2), which sends nothing.
 * Ports and addresses are never printed: checks print yes/no.
 */
#ifndef RUNSC_LITE_INET_COMMON_H
#define RUNSC_LITE_INET_COMMON_H

#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#ifndef SIOCOUTQ
#define SIOCOUTQ TIOCOUTQ
#endif
#ifndef POLLRDHUP
#define POLLRDHUP 0x2000
#endif

static __attribute__((unused)) struct sockaddr_in sin4(const char *ip, int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static __attribute__((unused)) struct sockaddr_in6 sin6(const char *ip, int port)
{
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
}

/* The port a socket is bound to (-1 on error). */
static __attribute__((unused)) int port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* The address text of getsockname (peer=0) or getpeername (peer=1),
 * without the port, into a static buffer. */
static __attribute__((unused)) const char *addr_of(int fd, int peer)
{
    static char bufs[4][INET6_ADDRSTRLEN + 8];
    static int next;
    char *b = bufs[next++ % 4];
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len);
    if (r < 0) {
        snprintf(b, INET6_ADDRSTRLEN + 8, "err %s", errno_name(errno));
        return b;
    }
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, b, INET6_ADDRSTRLEN);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, b, INET6_ADDRSTRLEN);
    return b;
}

/* A TCP listener on ip:0 (v4 or v6 by the text). */
static __attribute__((unused)) int tcp_listener(const char *ip, int backlog)
{
    int v6 = strchr(ip, ':') != NULL;
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int r;
    if (v6) {
        struct sockaddr_in6 a = sin6(ip, 0);
        r = bind(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = sin4(ip, 0);
        r = bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (r < 0 || listen(fd, backlog) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* connect(2) to ip:port, with the socket made here (family by the text). */
static __attribute__((unused)) int tcp_connect(const char *ip, int port)
{
    int v6 = strchr(ip, ':') != NULL;
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int r;
    if (v6) {
        struct sockaddr_in6 a = sin6(ip, port);
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = sin4(ip, port);
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (r < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* poll one fd for `events` up to ms milliseconds; returns revents. */
static __attribute__((unused)) int wait_ev(int fd, short events, int ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    int r = poll(&p, 1, ms);
    return r > 0 ? p.revents : 0;
}

/* The poll bits that matter, by name. */
static __attribute__((unused)) const char *bits(int r)
{
    static char b[64];
    b[0] = 0;
    if (r & POLLIN)
        strcat(b, "IN|");
    if (r & POLLOUT)
        strcat(b, "OUT|");
    if (r & POLLHUP)
        strcat(b, "HUP|");
    if (r & POLLERR)
        strcat(b, "ERR|");
    if (r & POLLRDHUP)
        strcat(b, "RDHUP|");
    size_t n = strlen(b);
    if (n)
        b[n - 1] = 0;
    else
        strcpy(b, "0");
    return b;
}

/* Current poll bits of fd, no waiting. */
static __attribute__((unused)) const char *now_bits(int fd)
{
    return bits(wait_ev(fd, POLLIN | POLLOUT | POLLRDHUP, 0));
}

static __attribute__((unused)) int sock_err(int fd)
{
    int e = -1;
    socklen_t l = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
        return -errno;
    return e;
}

static __attribute__((unused)) int geti(int fd, int level, int name)
{
    int v = -12345;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, name, &v, &l) < 0)
        return -1000 - errno;
    return v;
}

static __attribute__((unused)) int seti(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof v);
}

static __attribute__((unused)) void set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

#endif
