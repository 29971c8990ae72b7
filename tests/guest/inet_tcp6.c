/* TCP over IPv6 and dual stack, and the port rules every family shares:
 * v4-mapped names, IPV6_V6ONLY, EADDRINUSE and the SO_REUSEADDR /
 * SO_REUSEPORT exceptions, EADDRNOTAVAIL, EINVAL and EAFNOSUPPORT. */
#include "inet_common.h"

static int bind4(int fd, const char *ip, int port)
{
    struct sockaddr_in a = sin4(ip, port);
    return bind(fd, (struct sockaddr *)&a, sizeof a);
}

static int bind6(int fd, const char *ip, int port)
{
    struct sockaddr_in6 a = sin6(ip, port);
    return bind(fd, (struct sockaddr *)&a, sizeof a);
}

static int tcp4(void)
{
    return socket(AF_INET, SOCK_STREAM, 0);
}

static int tcp6(int v6only)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    seti(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only);
    return fd;
}

int main(void)
{
    guest_init();
    signal(SIGPIPE, SIG_IGN);
    char buf[64];

    /* Plain IPv6 on ::1. */
    int l = tcp_listener("::1", 4);
    T("listen6", l);
    int c = tcp_connect("::1", port_of(l));
    T("connect6", c);
    struct sockaddr_in6 pa;
    socklen_t len = sizeof pa;
    int s = accept(l, (struct sockaddr *)&pa, &len);
    T("accept6", s);
    V("accept6 addrlen", len);
    V("accept6 family", pa.sin6_family);
    B("accept6 peer port is client's", ntohs(pa.sin6_port) == port_of(c));
    P("names6 %s %s %s %s\n", addr_of(c, 0), addr_of(c, 1), addr_of(s, 0), addr_of(s, 1));
    V("send6", send(c, "six", 3, 0));
    V("recv6", recv(s, buf, sizeof buf, 0));
    struct tcp_info ti;
    len = sizeof ti;
    getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len);
    V("state6", ti.tcpi_state);
    close(c);
    close(s);
    close(l);
    E("fresh v6 getpeername", (c = tcp6(0), getpeername(c, (struct sockaddr *)&pa, &(socklen_t){ sizeof pa })),
      ENOTCONN);
    P("fresh v6 name %s\n", addr_of(c, 0));
    close(c);

    /* Dual stack: a :: listener takes IPv4 clients, named v4-mapped. */
    l = tcp_listener("::", 4);
    V("v6only default", geti(l, IPPROTO_IPV6, IPV6_V6ONLY));
    int port = port_of(l);
    c = tcp_connect("127.0.0.1", port);
    T("v4 to dual", c);
    s = accept(l, NULL, NULL);
    P("dual names %s %s\n", addr_of(s, 0), addr_of(s, 1));
    close(s);
    close(c);
    c = tcp_connect("::ffff:127.0.0.1", port);
    T("mapped to dual", c);
    P("mapped client names %s %s\n", addr_of(c, 0), addr_of(c, 1));
    s = accept(l, NULL, NULL);
    close(s);
    close(c);
    c = tcp_connect("::1", port);
    T("v6 to dual", c);
    s = accept(l, NULL, NULL);
    close(s);
    close(c);
    /* :: without V6ONLY holds the IPv4 port too. */
    int x = tcp4();
    E("v4 any vs dual", bind4(x, "0.0.0.0", port), EADDRINUSE);
    E("v4 lo vs dual", bind4(x, "127.0.0.1", port), EADDRINUSE);
    close(x);
    x = tcp6(0);
    E("v6 lo vs dual", bind6(x, "::1", port), EADDRINUSE);
    close(x);
    close(l);

    /* V6ONLY: IPv4 is another port space. */
    l = tcp6(1);
    T("v6only bind", bind6(l, "::", 0));
    port = port_of(l);
    T("v6only listen", listen(l, 4));
    E("v4 to v6only", tcp_connect("127.0.0.1", port), ECONNREFUSED);
    x = tcp4();
    T("v4 any beside v6only", bind4(x, "0.0.0.0", port));
    close(x);
    E("v6only after bind", seti(l, IPPROTO_IPV6, IPV6_V6ONLY, 0), EINVAL);
    x = tcp6(1);
    struct sockaddr_in6 m = sin6("::ffff:127.0.0.1", port);
    E("v6only connect mapped", connect(x, (struct sockaddr *)&m, sizeof m), ENETUNREACH);
    E("v6only bind mapped", bind6(x, "::ffff:127.0.0.1", 0), EINVAL);
    close(x);
    close(l);
    x = tcp6(0);
    T("bind mapped", bind6(x, "::ffff:127.0.0.1", 0));
    P("bound mapped %s\n", addr_of(x, 0));
    close(x);

    /* IPv4 conflicts: 0.0.0.0 against 127.0.0.1 both ways. */
    int a = tcp4();
    T("bind a", bind4(a, "127.0.0.1", 0));
    port = port_of(a);
    int b = tcp4();
    E("same addr", bind4(b, "127.0.0.1", port), EADDRINUSE);
    E("any vs lo", bind4(b, "0.0.0.0", port), EADDRINUSE);
    T("other lo addr", bind4(b, "127.0.0.2", port));
    close(b);
    b = tcp6(0);
    T("::1 beside 127.0.0.1", bind6(b, "::1", port));
    close(b);
    b = tcp6(0);
    E("dual :: vs 127.0.0.1", bind6(b, "::", port), EADDRINUSE);
    close(b);
    E("bind twice", bind4(a, "127.0.0.1", 0), EINVAL);
    close(a);
    a = tcp4();
    T("bind any", bind4(a, "0.0.0.0", 0));
    port = port_of(a);
    b = tcp4();
    E("lo vs any", bind4(b, "127.0.0.1", port), EADDRINUSE);
    close(b);
    close(a);

    /* SO_REUSEADDR: shared while nobody listens; one may listen. */
    a = tcp4();
    b = tcp4();
    seti(a, SOL_SOCKET, SO_REUSEADDR, 1);
    seti(b, SOL_SOCKET, SO_REUSEADDR, 1);
    T("reuse a", bind4(a, "127.0.0.1", 0));
    port = port_of(a);
    T("reuse b", bind4(b, "127.0.0.1", port));
    T("reuse a listens", listen(a, 4));
    E("reuse b listens", listen(b, 4), EADDRINUSE);
    int late = tcp4();
    seti(late, SOL_SOCKET, SO_REUSEADDR, 1);
    E("reuse vs listener", bind4(late, "127.0.0.1", port), EADDRINUSE);
    close(late);
    close(b);
    /* A restarted server: only the accepted connection holds the port. */
    c = tcp_connect("127.0.0.1", port);
    s = accept(a, NULL, NULL);
    close(a);
    a = tcp4();
    E("restart without reuse", bind4(a, "127.0.0.1", port), EADDRINUSE);
    close(a);
    a = tcp4();
    seti(a, SOL_SOCKET, SO_REUSEADDR, 1);
    T("restart with reuse", bind4(a, "127.0.0.1", port));
    T("restart listens", listen(a, 4));
    close(a);
    close(s);
    close(c);

    /* SO_REUSEPORT: both listen, a connection goes to one of them. */
    a = tcp4();
    b = tcp4();
    seti(a, SOL_SOCKET, SO_REUSEPORT, 1);
    seti(b, SOL_SOCKET, SO_REUSEPORT, 1);
    T("reuseport a", bind4(a, "127.0.0.1", 0));
    port = port_of(a);
    T("reuseport b", bind4(b, "127.0.0.1", port));
    T("reuseport listen a", listen(a, 4));
    T("reuseport listen b", listen(b, 4));
    x = tcp4();
    E("reuseport needs both", bind4(x, "127.0.0.1", port), EADDRINUSE);
    close(x);
    c = tcp_connect("127.0.0.1", port);
    T("reuseport connect", c);
    int ra = wait_ev(a, POLLIN, 1000) & POLLIN, rb = wait_ev(b, POLLIN, 0) & POLLIN;
    B("exactly one got it", (ra != 0) != (rb != 0));
    close(c);
    close(a);
    close(b);

    /* Addresses the sandbox does not have, and malformed ones. */
    a = tcp4();
    E("bind foreign v4", bind4(a, "198.51.100.7", 0), EADDRNOTAVAIL);
    struct sockaddr_in6 s6 = sin6("::1", 0);
    E("v4 socket v6 addr", bind(a, (struct sockaddr *)&s6, sizeof s6), EAFNOSUPPORT);
    E("v4 socket v6 connect", connect(a, (struct sockaddr *)&s6, sizeof s6), EAFNOSUPPORT);
    struct sockaddr_in s4 = sin4("127.0.0.1", 0);
    E("short v4 addr", bind(a, (struct sockaddr *)&s4, 15), EINVAL);
    E("short connect", connect(a, (struct sockaddr *)&s4, 8), EINVAL);
    E("bad addr pointer", bind(a, (struct sockaddr *)1, sizeof s4), EFAULT);
    E("bad connect pointer", connect(a, (struct sockaddr *)1, sizeof s4), EFAULT);
    E("huge addrlen", bind(a, (struct sockaddr *)&s4, 4096), EINVAL);
    T("bind after errors", bind(a, (struct sockaddr *)&s4, sizeof s4));
    E("getsockname bad len", getsockname(a, (struct sockaddr *)&s4, (socklen_t *)1), EFAULT);
    socklen_t neg = (socklen_t)-1;
    E("getsockname neg len", getsockname(a, (struct sockaddr *)&s4, &neg), EINVAL);
    socklen_t two = 2;
    T("getsockname short", getsockname(a, (struct sockaddr *)&s4, &two));
    V("getsockname full len", two);
    close(a);
    b = tcp6(0);
    E("bind foreign v6", bind6(b, "2001:db8::1", 0), EADDRNOTAVAIL);
    E("v6 socket v4 addr", bind(b, (struct sockaddr *)&s4, sizeof s4), EINVAL);
    E("short v6 addr", bind(b, (struct sockaddr *)&s6, 20), EINVAL);
    T("rfc2133 v6 addr", bind(b, (struct sockaddr *)&s6, 24));
    close(b);
    P("done\n");
    return 0;
}
