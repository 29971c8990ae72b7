/* Inet socket options at every level with Linux's defaults, ranges and
 * errnos; socket(2)'s type and protocol errors; TCP_INFO; bad pointers
 * and lengths through the data calls. */
#include "inet_common.h"
#include <sys/utsname.h>

/* Non-loopback destinations: only in the sandbox (which reports Linux
 * 4.4.0), where no packet can leave; natively nothing is sent anywhere.
 * The lines are masked in the comparison and checked in the sandbox's
 * output by the test registry. */
static void foreign(void)
{
    struct utsname u;
    uname(&u);
    if (strcmp(u.release, "4.4.0") != 0) {
        P("foreign connect skipped natively\n");
        P("foreign sendto skipped natively\n");
        P("foreign connect6 skipped natively\n");
        P("foreign udp connect skipped natively\n");
        return;
    }
    int t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sin4("198.51.100.7", 80);
    E("foreign connect", connect(t, (struct sockaddr *)&a, sizeof a), ENETUNREACH);
    int u4 = socket(AF_INET, SOCK_DGRAM, 0);
    E("foreign sendto", sendto(u4, "x", 1, 0, (struct sockaddr *)&a, sizeof a), ENETUNREACH);
    int t6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = sin6("2001:db8::1", 80);
    E("foreign connect6", connect(t6, (struct sockaddr *)&a6, sizeof a6), ENETUNREACH);
    E("foreign udp connect", connect(u4, (struct sockaddr *)&a, sizeof a), ENETUNREACH);
    close(t);
    close(u4);
    close(t6);
}

static void show(const char *name, int fd, int level, int opt)
{
    int v = geti(fd, level, opt);
    if (v <= -1000)
        P("%s err %s\n", name, errno_name(-v - 1000));
    else
        P("%s = %d\n", name, v);
}

#define SHOW(fd, level, opt) show(#opt, fd, level, opt)
#define SET(fd, level, opt, v) T(#opt " set " #v, seti(fd, level, opt, v))

int main(void)
{
    guest_init();
    signal(SIGPIPE, SIG_IGN);
    char buf[256];

    /* socket(2) errors. */
    E("stream udp", socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
    E("dgram tcp", socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT);
    E("seqpacket", socket(AF_INET, SOCK_SEQPACKET, 0), ESOCKTNOSUPPORT);
    E("rdm", socket(AF_INET6, SOCK_RDM, 0), ESOCKTNOSUPPORT);
    E("type 0", socket(AF_INET, 0, 0), ESOCKTNOSUPPORT);
    E("type 99", socket(AF_INET, 99, 0), EINVAL);
    E("protocol -1", socket(AF_INET, SOCK_STREAM, -1), EINVAL);
    E("v6 dgram icmp", socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMP), EPROTONOSUPPORT);
    E("v4 dgram icmpv6", socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMPV6), EPROTONOSUPPORT);
    E("socketpair inet", socketpair(AF_INET, SOCK_STREAM, 0, (int[2]){ 0, 0 }), EOPNOTSUPP);
    int t6 = socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP);
    V("v6 tcp protocol", geti(t6, SOL_SOCKET, SO_PROTOCOL));

    /* TCP level. */
    int t = socket(AF_INET, SOCK_STREAM, 0);
    SHOW(t, IPPROTO_TCP, TCP_NODELAY);
    SET(t, IPPROTO_TCP, TCP_NODELAY, 1);
    SHOW(t, IPPROTO_TCP, TCP_NODELAY);
    SHOW(t, IPPROTO_TCP, TCP_CORK);
    SET(t, IPPROTO_TCP, TCP_CORK, 1);
    SHOW(t, IPPROTO_TCP, TCP_CORK);
    SET(t, IPPROTO_TCP, TCP_CORK, 0);
    SHOW(t, IPPROTO_TCP, TCP_KEEPIDLE);
    SHOW(t, IPPROTO_TCP, TCP_KEEPINTVL);
    SHOW(t, IPPROTO_TCP, TCP_KEEPCNT);
    SET(t, IPPROTO_TCP, TCP_KEEPIDLE, 60);
    SET(t, IPPROTO_TCP, TCP_KEEPIDLE, 0);
    SET(t, IPPROTO_TCP, TCP_KEEPIDLE, 40000);
    SHOW(t, IPPROTO_TCP, TCP_KEEPIDLE);
    SET(t, IPPROTO_TCP, TCP_KEEPINTVL, 5);
    SET(t, IPPROTO_TCP, TCP_KEEPCNT, 3);
    SET(t, IPPROTO_TCP, TCP_KEEPCNT, 200);
    SHOW(t, IPPROTO_TCP, TCP_KEEPCNT);
    SHOW(t, IPPROTO_TCP, TCP_MAXSEG);
    SET(t, IPPROTO_TCP, TCP_MAXSEG, 10);
    SHOW(t, IPPROTO_TCP, TCP_USER_TIMEOUT);
    SET(t, IPPROTO_TCP, TCP_USER_TIMEOUT, 3000);
    SET(t, IPPROTO_TCP, TCP_USER_TIMEOUT, -1);
    SHOW(t, IPPROTO_TCP, TCP_USER_TIMEOUT);
    SET(t, IPPROTO_TCP, TCP_QUICKACK, 1);
    SET(t, IPPROTO_TCP, TCP_DEFER_ACCEPT, 0);
    SHOW(t, IPPROTO_TCP, TCP_DEFER_ACCEPT);
    SHOW(t, IPPROTO_TCP, 9999);
    E("tcp short int", setsockopt(t, IPPROTO_TCP, TCP_NODELAY, "x", 1), EINVAL);
    socklen_t cl = sizeof buf;
    T("congestion cubic", setsockopt(t, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5));
    T("congestion get", getsockopt(t, IPPROTO_TCP, TCP_CONGESTION, buf, &cl));
    P("congestion %s\n", buf);
    E("congestion bogus", setsockopt(t, IPPROTO_TCP, TCP_CONGESTION, "bogus", 5), ENOENT);
    SHOW(t, SOL_SOCKET, SO_KEEPALIVE);
    SET(t, SOL_SOCKET, SO_KEEPALIVE, 1);
    SHOW(t, SOL_SOCKET, SO_KEEPALIVE);
    SHOW(t, SOL_SOCKET, SO_ERROR);
    SHOW(t, SOL_SOCKET, SO_REUSEADDR);
    SHOW(t, SOL_SOCKET, SO_ACCEPTCONN);
    B("sndbuf positive", geti(t, SOL_SOCKET, SO_SNDBUF) > 0);
    B("rcvbuf positive", geti(t, SOL_SOCKET, SO_RCVBUF) > 0);
    SET(t, SOL_SOCKET, SO_RCVBUF, 100000);
    SHOW(t, SOL_SOCKET, SO_RCVBUF);
    struct linger lg = { 1, 5 };
    T("linger set", setsockopt(t, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    cl = sizeof lg;
    memset(&lg, 0, sizeof lg);
    T("linger get", getsockopt(t, SOL_SOCKET, SO_LINGER, &lg, &cl));
    P("linger %d %d\n", lg.l_onoff, lg.l_linger);
    E("setsockopt SO_ERROR", seti(t, SOL_SOCKET, SO_ERROR, 1), ENOPROTOOPT);
    E("unknown level", seti(t, 12345, 1, 1), ENOPROTOOPT);
    E("ipv6 level on v4", seti(t, IPPROTO_IPV6, IPV6_V6ONLY, 1), ENOPROTOOPT);
    E("udp level on tcp", seti(t, IPPROTO_UDP, 1, 1), ENOPROTOOPT);
    E("getsockopt bad len", getsockopt(t, SOL_SOCKET, SO_TYPE, buf, (socklen_t *)1), EFAULT);
    cl = 2;
    T("getsockopt short", getsockopt(t, IPPROTO_TCP, TCP_KEEPCNT, buf, &cl));
    V("getsockopt short len", cl);
    E("setsockopt bad pointer", setsockopt(t, IPPROTO_TCP, TCP_NODELAY, (void *)1, 4), EFAULT);

    /* IP level. */
    SHOW(t, IPPROTO_IP, IP_TTL);
    SET(t, IPPROTO_IP, IP_TTL, 10);
    SHOW(t, IPPROTO_IP, IP_TTL);
    SET(t, IPPROTO_IP, IP_TTL, 0);
    SET(t, IPPROTO_IP, IP_TTL, 256);
    SET(t, IPPROTO_IP, IP_TTL, -1);
    SHOW(t, IPPROTO_IP, IP_TTL);
    SHOW(t, IPPROTO_IP, IP_TOS);
    SET(t, IPPROTO_IP, IP_TOS, 0x10);
    SHOW(t, IPPROTO_IP, IP_TOS);
    SET(t, IPPROTO_IP, IP_RECVTOS, 1);
    SHOW(t, IPPROTO_IP, IP_RECVTOS);
    SET(t, IPPROTO_IP, IP_PKTINFO, 1);
    SHOW(t, IPPROTO_IP, IP_PKTINFO);
    SHOW(t, IPPROTO_IP, IP_MULTICAST_LOOP);
    SHOW(t, IPPROTO_IP, 9999);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW(u, IPPROTO_IP, IP_MULTICAST_TTL);
    SET(u, IPPROTO_IP, IP_MULTICAST_TTL, 4);
    SHOW(u, IPPROTO_IP, IP_MULTICAST_TTL);
    SET(u, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
    SHOW(u, IPPROTO_IP, IP_MULTICAST_LOOP);
    SET(u, IPPROTO_IP, IP_TOS, 0x13);
    SHOW(u, IPPROTO_IP, IP_TOS);
    SHOW(u, IPPROTO_TCP, TCP_NODELAY);
    SHOW(u, SOL_SOCKET, SO_ACCEPTCONN);
    B("udp rcvbuf positive", geti(u, SOL_SOCKET, SO_RCVBUF) > 0);

    /* IPv6 level. */
    SHOW(t6, IPPROTO_IPV6, IPV6_V6ONLY);
    SHOW(t6, IPPROTO_IPV6, IPV6_UNICAST_HOPS);
    SET(t6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 7);
    SHOW(t6, IPPROTO_IPV6, IPV6_UNICAST_HOPS);
    SET(t6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 300);
    SET(t6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, -1);
    SHOW(t6, IPPROTO_IPV6, IPV6_UNICAST_HOPS);
    SHOW(t6, IPPROTO_IPV6, IPV6_TCLASS);
    SET(t6, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
    SHOW(t6, IPPROTO_IPV6, IPV6_TCLASS);
    SET(t6, IPPROTO_IPV6, IPV6_TCLASS, 256);
    SET(t6, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    SHOW(t6, IPPROTO_IPV6, IPV6_RECVPKTINFO);
    SET(t6, IPPROTO_IP, IP_TOS, 0x20);
    SHOW(t6, IPPROTO_IP, IP_TOS);
    SHOW(t6, IPPROTO_IPV6, 9999);
    SHOW(t6, IPPROTO_UDP, 1);
    SHOW(t, IPPROTO_IPV6, IPV6_V6ONLY);
    SHOW(t, 12345, 1);
    SET(t6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    SHOW(t6, IPPROTO_IPV6, IPV6_V6ONLY);

    /* TCP_INFO and per-connection values. */
    int l = tcp_listener("127.0.0.1", 4);
    struct tcp_info ti;
    socklen_t tl = 104;
    memset(&ti, 0, sizeof ti);
    T("tcp_info listener", getsockopt(l, IPPROTO_TCP, TCP_INFO, &ti, &tl));
    V("tcp_info len", tl);
    V("listener state", ti.tcpi_state);
    int c = tcp_connect("127.0.0.1", port_of(l));
    int s = accept(l, NULL, NULL);
    tl = 104;
    getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl);
    V("client state", ti.tcpi_state);
    B("client mss set", ti.tcpi_snd_mss > 1000);
    B("client rto set", ti.tcpi_rto > 0);
    B("client cwnd set", ti.tcpi_snd_cwnd > 0);
    B("maxseg connected", geti(c, IPPROTO_TCP, TCP_MAXSEG) > 1000);
    tl = 8;
    T("tcp_info short", getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl));
    V("tcp_info short len", tl);
    SHOW(s, IPPROTO_TCP, TCP_NODELAY);
    SHOW(s, SOL_SOCKET, SO_KEEPALIVE);
    struct ucred cr;
    socklen_t crl = sizeof cr;
    T("peercred tcp", getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &crl));
    P("peercred %d %d %d\n", cr.pid, (int)cr.uid, (int)cr.gid);

    /* Bad pointers and lengths on the data path. */
    E("send bad buf", send(c, (void *)1, 10, 0), EFAULT);
    E("sendto bad addr", sendto(u, "x", 1, 0, (struct sockaddr *)1, 16), EFAULT);
    struct sockaddr_in ua = sin4("127.0.0.1", 9);
    E("sendto short addr", sendto(u, "x", 1, 0, (struct sockaddr *)&ua, 4), EINVAL);
    struct sockaddr_in6 u6 = sin6("::1", 9);
    E("sendto v6 addr on v4", sendto(u, "x", 1, 0, (struct sockaddr *)&u6, sizeof u6), EAFNOSUPPORT);
    send(s, "abc", 3, 0);
    wait_ev(c, POLLIN, 5000);
    E("recv bad buf", recv(c, (void *)1, 10, 0), EFAULT);
    E("ioctl bad arg", ioctl(c, FIONREAD, (int *)1), EFAULT);
    E("bad fd", send(9999, "x", 1, 0), EBADF);
    E("not a socket", send(0 == 1 ? 0 : open("/dev/null", O_RDONLY), "x", 1, 0), ENOTSOCK);
    close(c);
    close(s);
    close(l);
    close(t);
    close(t6);
    close(u);
    foreign();
    P("done\n");
    return 0;
}
