/* Sandbox-only (--network=sandbox, no --allow-host): eth0 as the guest
 * sees it, traffic to the sandbox's own eth0 addresses, and what an
 * outside destination gets when the broker has no rule for it. Natively
 * the host's interfaces and routes differ, so the output is compared with
 * tests/guest/inet_eth0.expected (what Linux would print with slirp's
 * numbering: 10.0.2.100/24 via 10.0.2.2, fd00:0:0:2::100/64).
 *
 * Nothing leaves the sandbox: every outside destination is refused by the
 * broker before any host socket connects. Ports are never printed. */
#include "inet_common.h"
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

static const char *ntop(int family, const void *a)
{
    static char b[4][INET6_ADDRSTRLEN];
    static int next;
    char *o = b[next++ % 4];
    inet_ntop(family, a, o, INET6_ADDRSTRLEN);
    return o;
}

static const char *sa_str(const struct sockaddr *sa)
{
    if (!sa)
        return "none";
    if (sa->sa_family == AF_INET)
        return ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr);
    return "other";
}

static void interfaces(void)
{
    struct ifaddrs *ifs;
    T("getifaddrs", getifaddrs(&ifs));
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (strcmp(i->ifa_name, "eth0") != 0 || !i->ifa_addr)
            continue;
        int f = i->ifa_addr->sa_family;
        /* Linux gives eth0 an fe80:: address of its MAC too; the sandbox
         * has none (nothing on its link to talk to). */
        if (f == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr))
            continue;
        if (f == AF_INET)
            P("ifaddr eth0 inet flags=%x addr=%s netmask=%s broadcast=%s\n", i->ifa_flags, sa_str(i->ifa_addr),
              sa_str(i->ifa_netmask), sa_str(i->ifa_broadaddr));
        else if (f == AF_INET6)
            P("ifaddr eth0 inet6 flags=%x addr=%s netmask=%s\n", i->ifa_flags, sa_str(i->ifa_addr),
              sa_str(i->ifa_netmask));
        else
            P("ifaddr eth0 family=%d flags=%x\n", f, i->ifa_flags);
    }
    freeifaddrs(ifs);
    V("if_nametoindex eth0", if_nametoindex("eth0"));

    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strcpy(r.ifr_name, "eth0");
    T("SIOCGIFADDR", ioctl(s, SIOCGIFADDR, &r));
    P("  %s\n", sa_str(&r.ifr_addr));
    T("SIOCGIFNETMASK", ioctl(s, SIOCGIFNETMASK, &r));
    P("  %s\n", sa_str(&r.ifr_netmask));
    T("SIOCGIFBRDADDR", ioctl(s, SIOCGIFBRDADDR, &r));
    P("  %s\n", sa_str(&r.ifr_broadaddr));
    T("SIOCGIFMTU", ioctl(s, SIOCGIFMTU, &r));
    P("  mtu %d\n", r.ifr_mtu);
    T("SIOCGIFHWADDR", ioctl(s, SIOCGIFHWADDR, &r));
    P("  hw family=%d\n", r.ifr_hwaddr.sa_family);
    close(s);
}

/* ---- routes (RTM_GETROUTE get, as `ip route get`) ---- */

static void route_get(int family, const char *dst)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct {
        struct nlmsghdr h;
        struct rtmsg r;
        char attrs[64];
    } req;
    memset(&req, 0, sizeof req);
    req.r.rtm_family = family;
    req.r.rtm_dst_len = family == AF_INET ? 32 : 128;
    struct rtattr *a = (struct rtattr *)req.attrs;
    a->rta_type = RTA_DST;
    a->rta_len = RTA_LENGTH(family == AF_INET ? 4 : 16);
    inet_pton(family, dst, RTA_DATA(a));
    req.h.nlmsg_len = NLMSG_LENGTH(NLMSG_ALIGN(sizeof req.r) + RTA_ALIGN(a->rta_len));
    req.h.nlmsg_type = RTM_GETROUTE;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    req.h.nlmsg_seq = 1;
    static char buf[8192];
    long n = -1;
    if (send(fd, &req, req.h.nlmsg_len, 0) >= 0)
        n = recv(fd, buf, sizeof buf, 0);
    close(fd);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (n <= 0 || h->nlmsg_type != RTM_NEWROUTE) {
        P("route_get %s failed type=%d error=%d\n", dst, n > 0 ? h->nlmsg_type : -1,
          n > 0 && h->nlmsg_type == NLMSG_ERROR ? ((struct nlmsgerr *)NLMSG_DATA(h))->error : 0);
        return;
    }
    struct rtmsg *r = NLMSG_DATA(h);
    P("route_get %s table=%d type=%d scope=%d\n", dst, r->rtm_table, r->rtm_type, r->rtm_scope);
    int len = RTM_PAYLOAD(h);
    for (struct rtattr *x = RTM_RTA(r); RTA_OK(x, len); x = RTA_NEXT(x, len)) {
        void *d = RTA_DATA(x);
        switch (x->rta_type) {
        case RTA_PREFSRC: P("  prefsrc %s\n", ntop(family, d)); break;
        case RTA_GATEWAY: P("  gateway %s\n", ntop(family, d)); break;
        case RTA_OIF: P("  oif %d\n", *(int *)d); break;
        }
    }
}

static void routes(void)
{
    route_get(AF_INET, "198.51.100.7");
    route_get(AF_INET, "10.0.2.2");
    route_get(AF_INET, "10.0.2.100");
    route_get(AF_INET6, "2001:db8::1");
    route_get(AF_INET6, "fd00:0:0:2::100");
}

/* ---- TCP to the sandbox's own eth0 address ---- */

static int connect_to(int fd, const char *ip, int port)
{
    if (strchr(ip, ':')) {
        struct sockaddr_in6 a = sin6(ip, port);
        return connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    struct sockaddr_in a = sin4(ip, port);
    return connect(fd, (struct sockaddr *)&a, sizeof a);
}

/* Connect to a listener on `bind_ip` at `to_ip`, report both ends. */
static void tcp_own(const char *what, const char *bind_ip, const char *to_ip)
{
    int l = tcp_listener(bind_ip, 4);
    if (l < 0) {
        P("%s listener err %s\n", what, errno_name(errno));
        return;
    }
    int c = tcp_connect(to_ip, port_of(l));
    if (c < 0) {
        P("%s connect err %s\n", what, errno_name(errno));
        close(l);
        return;
    }
    int a = accept(l, NULL, NULL);
    P("%s connect ok local=%s peer=%s\n", what, addr_of(c, 0), addr_of(c, 1));
    P("%s accepted local=%s peer=%s\n", what, addr_of(a, 0), addr_of(a, 1));
    char b[8] = { 0 };
    B("  bytes cross", write(c, "ping", 4) == 4 && read(a, b, sizeof b) == 4 && !memcmp(b, "ping", 4));
    close(a);
    close(c);
    close(l);
}

static void tcp(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sin4("10.0.2.100", 0);
    T("bind 10.0.2.100", bind(s, (struct sockaddr *)&a, sizeof a));
    close(s);
    s = socket(AF_INET, SOCK_STREAM, 0);
    a = sin4("10.0.2.101", 0);
    E("bind 10.0.2.101", bind(s, (struct sockaddr *)&a, sizeof a), EADDRNOTAVAIL);
    close(s);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = sin6("fd00:0:0:2::100", 0);
    T("bind fd00:0:0:2::100", bind(s, (struct sockaddr *)&a6, sizeof a6));
    close(s);

    tcp_own("any4->own", "0.0.0.0", "10.0.2.100");
    tcp_own("own->own", "10.0.2.100", "10.0.2.100");
    tcp_own("any6->own", "::", "10.0.2.100");
    tcp_own("any6->own6", "::", "fd00:0:0:2::100");
    tcp_own("lo->own", "127.0.0.1", "10.0.2.100");
    tcp_own("own->lo", "10.0.2.100", "127.0.0.1");

    /* Bound to eth0's address, connecting to the loopback: allowed. */
    int l = tcp_listener("127.0.0.1", 4);
    s = socket(AF_INET, SOCK_STREAM, 0);
    a = sin4("10.0.2.100", 0);
    bind(s, (struct sockaddr *)&a, sizeof a);
    T("bound own connect lo", connect_to(s, "127.0.0.1", port_of(l)));
    P("  local=%s peer=%s\n", addr_of(s, 0), addr_of(s, 1));
    close(s);
    close(l);
}

/* ---- outside destinations: no rule, the broker refuses ---- */

static void outside(void)
{
    const char *dsts[] = { "10.0.2.2", "198.51.100.7", "2001:db8::1" };
    for (int i = 0; i < 3; i++) {
        int s = socket(strchr(dsts[i], ':') ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
        char n[64];
        snprintf(n, sizeof n, "tcp connect %s", dsts[i]);
        E(n, connect_to(s, dsts[i], 9), ECONNREFUSED);
        close(s);
    }

    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    E("nonblocking connect", connect_to(s, "198.51.100.7", 9), EINPROGRESS);
    P("  poll %s\n", bits(wait_ev(s, POLLOUT, 20000)));
    P("  so_error %s\n", errno_name(sock_err(s)));
    close(s);

    /* A socket bound to the loopback cannot go out of eth0 (Linux's
     * __mkroute_output: EINVAL). */
    s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in lo = sin4("127.0.0.1", 0);
    bind(s, (struct sockaddr *)&lo, sizeof lo);
    E("loopback-bound tcp connect outside", connect_to(s, "198.51.100.7", 9), EINVAL);
    close(s);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    bind(s, (struct sockaddr *)&lo, sizeof lo);
    E("loopback-bound udp connect outside", connect_to(s, "198.51.100.7", 9), EINVAL);
    close(s);

    /* UDP: connect picks eth0's address; the broker's refusal comes back
     * as a port unreachable would, at the next call. */
    const char *udsts[] = { "10.0.2.2", "2001:db8::1" };
    for (int i = 0; i < 2; i++) {
        int v6 = strchr(udsts[i], ':') != NULL;
        s = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
        P("udp %s\n", udsts[i]);
        T("  connect", connect_to(s, udsts[i], 9));
        P("  local=%s peer=%s\n", addr_of(s, 0), addr_of(s, 1));
        T("  send", send(s, "x", 1, 0));
        struct timeval tv = { 20, 0 };
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char b[8];
        E("  recv", recv(s, b, sizeof b, 0), ECONNREFUSED);
        E("  recv again", recv(s, b, sizeof b, MSG_DONTWAIT), EAGAIN);
        close(s);
    }
}

/* ---- UDP to the sandbox's own eth0 address ---- */

static void udp_own(const char *bind_ip, const char *to_ip)
{
    int v6 = strchr(bind_ip, ':') != NULL;
    int r = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    int s = socket(strchr(to_ip, ':') ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    if (v6) {
        struct sockaddr_in6 a = sin6(bind_ip, 0);
        bind(r, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = sin4(bind_ip, 0);
        bind(r, (struct sockaddr *)&a, sizeof a);
    }
    P("udp %s -> %s\n", bind_ip, to_ip);
    T("  connect", connect_to(s, to_ip, port_of(r)));
    P("  local=%s\n", addr_of(s, 0));
    T("  send", send(s, "hi", 2, 0));
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    char b[8];
    B("  arrived", wait_ev(r, POLLIN, 20000) & POLLIN);
    V("  recvfrom", recvfrom(r, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&from, &fl));
    P("  from=%s\n", sa_str((struct sockaddr *)&from));
    close(s);
    close(r);
}

int main(void)
{
    guest_init();
    signal(SIGPIPE, SIG_IGN);
    interfaces();
    routes();
    tcp();
    udp_own("0.0.0.0", "10.0.2.100");
    udp_own("10.0.2.100", "10.0.2.100");
    udp_own("::", "fd00:0:0:2::100");
    outside();
    P("done\n");
    return 0;
}
