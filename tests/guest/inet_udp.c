/* UDP over IPv4 and IPv6: addresses, connect and its filter, datagram
 * boundaries and MSG_TRUNC, EMSGSIZE, the bounded receive queue,
 * ECONNREFUSED on connected sockets, control messages, sendmmsg and
 * recvmmsg, SO_REUSEADDR/SO_REUSEPORT sharing, shutdown and poll. */
#include "inet_common.h"

static int udp(int fam, const char *ip)
{
    int fd = socket(fam, SOCK_DGRAM, 0);
    if (fam == AF_INET) {
        struct sockaddr_in a = sin4(ip, 0);
        bind(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in6 a = sin6(ip, 0);
        bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    return fd;
}

static ssize_t to4(int fd, const void *b, size_t n, const char *ip, int port)
{
    struct sockaddr_in a = sin4(ip, port);
    return sendto(fd, b, n, 0, (struct sockaddr *)&a, sizeof a);
}

static ssize_t to6(int fd, const void *b, size_t n, const char *ip, int port)
{
    struct sockaddr_in6 a = sin6(ip, port);
    return sendto(fd, b, n, 0, (struct sockaddr *)&a, sizeof a);
}

static volatile int pipes;
static void on_pipe(int sig)
{
    (void)sig;
    pipes++;
}

int main(void)
{
    guest_init();
    signal(SIGPIPE, SIG_IGN);
    static char buf[70000];

    int f = socket(AF_INET, SOCK_DGRAM, 0);
    V("so_protocol", geti(f, SOL_SOCKET, SO_PROTOCOL));
    P("fresh poll %s\n", now_bits(f));
    E("fresh send", send(f, "x", 1, 0), EDESTADDRREQ);
    E("fresh peer", getpeername(f, (struct sockaddr *)buf, &(socklen_t){ 64 }), ENOTCONN);
    E("fresh recv", recv(f, buf, 1, MSG_DONTWAIT), EAGAIN);
    E("listen", listen(f, 1), EOPNOTSUPP);
    E("accept", accept(f, NULL, NULL), EOPNOTSUPP);
    E("shutdown unconnected", shutdown(f, SHUT_RD), ENOTCONN);
    P("after failed shutdown %s\n", now_bits(f));
    close(f);

    /* sendto/recvfrom with the sender's address; autobind on send. */
    int a = udp(AF_INET, "127.0.0.1");
    int b = socket(AF_INET, SOCK_DGRAM, 0);
    int pa = port_of(a);
    V("send autobinds", to4(b, "one", 3, "127.0.0.1", pa));
    B("sender got a port", port_of(b) >= 32768);
    P("sender name %s\n", addr_of(b, 0));
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    int n = -1;
    wait_ev(a, POLLIN, 5000);
    ioctl(a, FIONREAD, &n);
    V("fionread", n);
    V("recvfrom", recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    V("from len", fl);
    B("from is sender", ntohs(from.sin_port) == port_of(b) && from.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    E("sendto port 0", to4(b, "x", 1, "127.0.0.1", 0), EINVAL);
    V("zero length", to4(b, "", 0, "127.0.0.1", pa));
    V("recv zero length", recv(a, buf, sizeof buf, 0));

    /* Boundaries, MSG_PEEK, MSG_TRUNC. */
    to4(b, "first", 5, "127.0.0.1", pa);
    to4(b, "second!", 7, "127.0.0.1", pa);
    wait_ev(a, POLLIN, 5000);
    V("peek", recv(a, buf, sizeof buf, MSG_PEEK));
    V("one datagram", recv(a, buf, sizeof buf, 0));
    struct iovec iov = { buf, 3 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    V("cut datagram", recvmsg(a, &mh, 0));
    B("msg_trunc flag", mh.msg_flags & MSG_TRUNC);
    to4(b, "third", 5, "127.0.0.1", pa);
    wait_ev(a, POLLIN, 5000);
    V("MSG_TRUNC real length", recv(a, buf, 2, MSG_TRUNC));
    E("queue empty", recv(a, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);

    /* Sizes. */
    V("largest v4", to4(b, buf, 65507, "127.0.0.1", pa));
    E("too large v4", to4(b, buf, 65508, "127.0.0.1", pa), EMSGSIZE);
    V("read largest", recv(a, buf, sizeof buf, 0));

    /* connect: default peer, filter, names, AF_UNSPEC. */
    int c = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ta = sin4("127.0.0.1", pa);
    T("connect", connect(c, (struct sockaddr *)&ta, sizeof ta));
    P("connected names %s %s\n", addr_of(c, 0), addr_of(c, 1));
    V("send connected", send(c, "hi", 2, 0));
    V("recv connected", recv(a, buf, sizeof buf, 0));
    T("a connects to c", connect(a, (struct sockaddr *)&(struct sockaddr_in){ .sin_family = AF_INET,
                                                                            .sin_port = htons(port_of(c)),
                                                                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK) },
                                 sizeof(struct sockaddr_in)));
    V("stranger sends", to4(b, "stranger", 8, "127.0.0.1", pa));
    V("peer sends", send(c, "peer", 4, 0));
    B("a readable", wait_ev(a, POLLIN, 5000) & POLLIN);
    V("only the peer's arrives", recv(a, buf, sizeof buf, 0));
    E("nothing else", recv(a, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    T("disconnect", connect(a, (struct sockaddr *)&(struct sockaddr){ .sa_family = AF_UNSPEC }, sizeof(struct sockaddr)));
    E("peer gone", getpeername(a, (struct sockaddr *)buf, &(socklen_t){ 64 }), ENOTCONN);
    /* Bound to port 0, the port was automatic: disconnect drops it. */
    P("after disconnect %s port %d\n", addr_of(a, 0), port_of(a));
    struct sockaddr_in again = sin4("127.0.0.1", pa);
    T("bind again", bind(a, (struct sockaddr *)&again, sizeof again));
    V("stranger again", to4(b, "stranger", 8, "127.0.0.1", pa));
    V("stranger arrives", (wait_ev(a, POLLIN, 5000), recv(a, buf, sizeof buf, 0)));
    int d = socket(AF_INET, SOCK_DGRAM, 0);
    connect(d, (struct sockaddr *)&ta, sizeof ta);
    connect(d, (struct sockaddr *)&(struct sockaddr){ .sa_family = AF_UNSPEC }, sizeof(struct sockaddr));
    P("autobound after disconnect %s port %d\n", addr_of(d, 0), port_of(d));
    close(d);

    /* A connected socket learns of a port nobody listens on. */
    int dead = udp(AF_INET, "127.0.0.1");
    struct sockaddr_in da = sin4("127.0.0.1", port_of(dead));
    close(dead);
    T("connect to dead port", connect(c, (struct sockaddr *)&da, sizeof da));
    V("send to dead port", send(c, "x", 1, 0));
    P("after refusal %s\n", bits(wait_ev(c, POLLERR, 5000)));
    E("recv reports refusal", recv(c, buf, sizeof buf, MSG_DONTWAIT), ECONNREFUSED);
    E("then nothing", recv(c, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    send(c, "x", 1, 0);
    wait_ev(c, POLLERR, 5000);
    E("send reports refusal", send(c, "x", 1, 0), ECONNREFUSED);
    wait_ev(c, POLLERR, 5000);
    V("so_error reports refusal", sock_err(c) == ECONNREFUSED);
    V("unconnected sendto dead port", to4(b, "x", 1, "127.0.0.1", port_of(c) == 0 ? 1 : ntohs(da.sin_port)));
    V("no error unconnected", (wait_ev(b, POLLERR, 100), sock_err(b)));

    /* The receive queue is bounded: extra datagrams are dropped. */
    int small = udp(AF_INET, "127.0.0.1");
    seti(small, SOL_SOCKET, SO_RCVBUF, 4096);
    int sent = 0, got = 0;
    for (int i = 0; i < 200; i++)
        if (to4(b, buf, 1000, "127.0.0.1", port_of(small)) == 1000)
            sent++;
    while (recv(small, buf, sizeof buf, MSG_DONTWAIT) > 0)
        got++;
    V("all sends succeed", sent);
    B("some arrived", got > 0);
    B("some dropped", got < sent);
    close(small);

    /* Control messages: IP_PKTINFO, IP_RECVTOS, IP_RECVTTL. */
    seti(a, IPPROTO_IP, IP_PKTINFO, 1);
    seti(a, IPPROTO_IP, IP_RECVTOS, 1);
    seti(a, IPPROTO_IP, IP_RECVTTL, 1);
    seti(b, IPPROTO_IP, IP_TOS, 0x10);
    to4(b, "cm", 2, "127.0.0.1", pa);
    wait_ev(a, POLLIN, 5000);
    char cbuf[256];
    iov.iov_len = sizeof buf;
    mh = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    V("recvmsg with control", recvmsg(a, &mh, 0));
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        P("cmsg level %d type %d len %d", cm->cmsg_level, cm->cmsg_type, (int)cm->cmsg_len);
        if (cm->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(cm);
            P(" ifindex %d addr %s", pi->ipi_ifindex, inet_ntoa(pi->ipi_addr));
        } else if (cm->cmsg_type == IP_TOS) {
            P(" tos %d", *(unsigned char *)CMSG_DATA(cm));
        } else if (cm->cmsg_type == IP_TTL) {
            P(" ttl %d", *(int *)CMSG_DATA(cm));
        }
        P("\n");
    }

    /* sendmmsg / recvmmsg. */
    struct mmsghdr mm[3];
    struct iovec iv[3];
    char *words[3] = { "a", "bb", "ccc" };
    struct sockaddr_in dst = sin4("127.0.0.1", pa);
    for (int i = 0; i < 3; i++) {
        iv[i] = (struct iovec){ words[i], strlen(words[i]) };
        mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &dst, .msg_namelen = sizeof dst, .msg_iov = &iv[i], .msg_iovlen = 1 } };
    }
    V("sendmmsg", sendmmsg(b, mm, 3, 0));
    char rbufs[3][16];
    for (int i = 0; i < 3; i++) {
        iv[i] = (struct iovec){ rbufs[i], 16 };
        mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iv[i], .msg_iovlen = 1 } };
    }
    wait_ev(a, POLLIN, 5000);
    usleep(10000);
    V("recvmmsg", recvmmsg(a, mm, 3, MSG_DONTWAIT, NULL));
    P("lens %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);

    /* Sharing a port. */
    int r1 = socket(AF_INET, SOCK_DGRAM, 0), r2 = socket(AF_INET, SOCK_DGRAM, 0);
    seti(r1, SOL_SOCKET, SO_REUSEADDR, 1);
    seti(r2, SOL_SOCKET, SO_REUSEADDR, 1);
    struct sockaddr_in ra = sin4("127.0.0.1", 0);
    T("reuseaddr 1", bind(r1, (struct sockaddr *)&ra, sizeof ra));
    ra.sin_port = htons(port_of(r1));
    T("reuseaddr 2", bind(r2, (struct sockaddr *)&ra, sizeof ra));
    int r3 = socket(AF_INET, SOCK_DGRAM, 0);
    E("no reuse", bind(r3, (struct sockaddr *)&ra, sizeof ra), EADDRINUSE);
    to4(b, "shared", 6, "127.0.0.1", port_of(r1));
    int g1 = wait_ev(r1, POLLIN, 1000) & POLLIN, g2 = wait_ev(r2, POLLIN, 0) & POLLIN;
    B("one receiver", (g1 != 0) != (g2 != 0));
    close(r1);
    close(r2);
    close(r3);
    r1 = socket(AF_INET, SOCK_DGRAM, 0);
    r2 = socket(AF_INET, SOCK_DGRAM, 0);
    seti(r1, SOL_SOCKET, SO_REUSEPORT, 1);
    seti(r2, SOL_SOCKET, SO_REUSEPORT, 1);
    ra.sin_port = 0;
    T("reuseport 1", bind(r1, (struct sockaddr *)&ra, sizeof ra));
    ra.sin_port = htons(port_of(r1));
    T("reuseport 2", bind(r2, (struct sockaddr *)&ra, sizeof ra));
    close(r1);
    close(r2);
    V("broadcast option", seti(b, SOL_SOCKET, SO_BROADCAST, 1));
    V("broadcast get", geti(b, SOL_SOCKET, SO_BROADCAST));

    /* Shutdown of a connected socket. */
    T("shut_wr", shutdown(c, SHUT_WR));
    E("send after shut_wr", send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
    signal(SIGPIPE, on_pipe);
    E("send after shut_wr with signals", send(c, "x", 1, 0), EPIPE);
    V("no SIGPIPE for udp", pipes);
    signal(SIGPIPE, SIG_IGN);
    T("shut_rd", shutdown(c, SHUT_RD));
    P("both shut %s\n", now_bits(c));
    V("recv after shut_rd", recv(c, buf, 10, 0));
    close(c);

    /* IPv6 and dual stack. */
    int s6 = udp(AF_INET6, "::1");
    int c6 = socket(AF_INET6, SOCK_DGRAM, 0);
    V("v6 send", to6(c6, "v6", 2, "::1", port_of(s6)));
    struct sockaddr_in6 f6;
    fl = sizeof f6;
    V("v6 recvfrom", (wait_ev(s6, POLLIN, 5000), recvfrom(s6, buf, sizeof buf, 0, (struct sockaddr *)&f6, &fl)));
    V("v6 from len", fl);
    B("v6 from sender", ntohs(f6.sin6_port) == port_of(c6));
    V("largest v6", to6(c6, buf, 65527, "::1", port_of(s6)));
    E("too large v6", to6(c6, buf, 65528, "::1", port_of(s6)), EMSGSIZE);
    recv(s6, buf, sizeof buf, 0);
    seti(s6, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    to6(c6, "pi", 2, "::1", port_of(s6));
    wait_ev(s6, POLLIN, 5000);
    mh = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    recvmsg(s6, &mh, 0);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (cm) {
        struct in6_pktinfo *pi = (struct in6_pktinfo *)CMSG_DATA(cm);
        char t[64];
        inet_ntop(AF_INET6, &pi->ipi6_addr, t, sizeof t);
        P("v6 cmsg level %d type %d len %d ifindex %d addr %s\n", cm->cmsg_level, cm->cmsg_type, (int)cm->cmsg_len,
          pi->ipi6_ifindex, t);
    }
    int dual = udp(AF_INET6, "::");
    V("v4 to dual", to4(b, "dual", 4, "127.0.0.1", port_of(dual)));
    fl = sizeof f6;
    V("dual recvfrom", (wait_ev(dual, POLLIN, 5000), recvfrom(dual, buf, sizeof buf, 0, (struct sockaddr *)&f6, &fl)));
    inet_ntop(AF_INET6, &f6.sin6_addr, buf, 64);
    P("dual from %s\n", buf);
    struct sockaddr_in plain = sin4("127.0.0.1", port_of(a));
    V("v6 socket sendto sockaddr_in", sendto(dual, "m", 1, 0, (struct sockaddr *)&plain, sizeof plain));
    V("arrives at v4", (wait_ev(a, POLLIN, 5000), recv(a, buf, sizeof buf, 0)));
    close(s6);
    close(c6);
    close(dual);
    close(a);
    close(b);
    P("done\n");
    return 0;
}
