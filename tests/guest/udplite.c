/* UDP-Lite (RFC 3828) over loopback: its own port space beside UDP's,
 * datagrams between UDP-Lite sockets only, the checksum-coverage options
 * with Linux's rounding, and the error paths. CPython's test_socket runs
 * its whole UDP suite over UDP-Lite too. */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#define SOL_UDPLITE 136
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11

static int getint(int s, int level, int name)
{
    int v = -99;
    socklen_t l = sizeof v;
    if (getsockopt(s, level, name, &v, &l) < 0)
        return -errno;
    return v;
}

static void family(int fam, const char *tag)
{
    char n[64];
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (fam == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
#define N(x) (snprintf(n, sizeof n, "%s_%s", tag, x), n)
    int lite = socket(fam, SOCK_DGRAM, IPPROTO_UDPLITE);
    T(N("socket"), lite);
    V(N("so_protocol"), getint(lite, SOL_SOCKET, SO_PROTOCOL));
    V(N("so_type"), getint(lite, SOL_SOCKET, SO_TYPE));
    T(N("bind"), bind(lite, (struct sockaddr *)&ss, len));
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    getsockname(lite, (struct sockaddr *)&bound, &bl);
    /* The same number is free for UDP, and UDP never sees lite's datagrams. */
    int udp = socket(fam, SOCK_DGRAM, 0);
    T(N("udp_same_port"), bind(udp, (struct sockaddr *)&bound, bl));
    int lite2 = socket(fam, SOCK_DGRAM, IPPROTO_UDPLITE);
    E(N("lite_same_port"), bind(lite2, (struct sockaddr *)&bound, bl), EADDRINUSE);

    int cli = socket(fam, SOCK_DGRAM, IPPROTO_UDPLITE);
    V(N("send"), sendto(cli, "ping", 4, 0, (struct sockaddr *)&bound, bl));
    char buf[16] = {0};
    V(N("recv"), recv(lite, buf, sizeof buf, 0));
    B(N("payload"), memcmp(buf, "ping", 4) == 0);
    V(N("udp_got_nothing"), recv(udp, buf, sizeof buf, MSG_DONTWAIT));
    /* A UDP sender reaches the UDP socket only. */
    int ucli = socket(fam, SOCK_DGRAM, 0);
    V(N("udp_send"), sendto(ucli, "pong", 4, 0, (struct sockaddr *)&bound, bl));
    V(N("udp_recv"), recv(udp, buf, sizeof buf, 0));
    V(N("lite_got_nothing"), recv(lite, buf, sizeof buf, MSG_DONTWAIT));

    /* Coverage options: 1..7 mean the header (8), above 65535 is capped. */
    V(N("cscov_default"), getint(cli, SOL_UDPLITE, UDPLITE_SEND_CSCOV));
    int v = 3;
    T(N("send_cscov_3"), setsockopt(cli, SOL_UDPLITE, UDPLITE_SEND_CSCOV, &v, sizeof v));
    V(N("send_cscov_3_is"), getint(cli, SOL_UDPLITE, UDPLITE_SEND_CSCOV));
    v = 20;
    T(N("recv_cscov_20"), setsockopt(cli, SOL_UDPLITE, UDPLITE_RECV_CSCOV, &v, sizeof v));
    V(N("recv_cscov_20_is"), getint(cli, SOL_UDPLITE, UDPLITE_RECV_CSCOV));
    v = 100000;
    T(N("send_cscov_big"), setsockopt(cli, SOL_UDPLITE, UDPLITE_SEND_CSCOV, &v, sizeof v));
    V(N("send_cscov_big_is"), getint(cli, SOL_UDPLITE, UDPLITE_SEND_CSCOV));
    v = 0;
    T(N("send_cscov_0"), setsockopt(cli, SOL_UDPLITE, UDPLITE_SEND_CSCOV, &v, sizeof v));
    V(N("send_cscov_0_is"), getint(cli, SOL_UDPLITE, UDPLITE_SEND_CSCOV));
    V(N("send_after_cscov"), sendto(cli, "ping", 4, 0, (struct sockaddr *)&bound, bl));
    V(N("recv_after_cscov"), recv(lite, buf, sizeof buf, 0));
    v = 1;
    T(N("cork_on_udplite_level"), setsockopt(cli, SOL_UDPLITE, 1 /* UDP_CORK */, &v, sizeof v));
    V(N("cork_is"), getint(cli, SOL_UDPLITE, 1));
    v = 0;
    setsockopt(cli, SOL_UDPLITE, 1, &v, sizeof v);

    /* Connected, to a port nobody has: the refusal comes back. */
    int lone = socket(fam, SOCK_DGRAM, IPPROTO_UDPLITE);
    T(N("bind_lone"), bind(lone, (struct sockaddr *)&ss, len));
    struct sockaddr_storage gone;
    socklen_t gl = sizeof gone;
    getsockname(lone, (struct sockaddr *)&gone, &gl);
    close(lone);
    T(N("connect"), connect(cli, (struct sockaddr *)&gone, gl));
    V(N("send_refused_first"), send(cli, "x", 1, 0));
    struct pollfd p = {cli, POLLIN, 0};
    poll(&p, 1, 5000);
    E(N("recv_refused"), recv(cli, buf, sizeof buf, 0), ECONNREFUSED);

    /* Errors. */
    E(N("stream"), socket(fam, SOCK_STREAM, IPPROTO_UDPLITE), EPROTONOSUPPORT);
    v = 8;
    E(N("cscov_on_udp"), setsockopt(udp, SOL_UDPLITE, UDPLITE_SEND_CSCOV, &v, sizeof v), ENOPROTOOPT);
    E(N("cscov_on_udp_level_udp"), setsockopt(udp, IPPROTO_UDP, UDPLITE_RECV_CSCOV, &v, sizeof v), ENOPROTOOPT);
    E(N("cscov_short"), setsockopt(cli, SOL_UDPLITE, UDPLITE_SEND_CSCOV, &v, 2), EINVAL);
    E(N("cscov_bad_ptr"), setsockopt(cli, SOL_UDPLITE, UDPLITE_SEND_CSCOV, (void *)8, sizeof v), EFAULT);
    E(N("unknown_opt"), setsockopt(cli, SOL_UDPLITE, 99, &v, sizeof v), ENOPROTOOPT);
    socklen_t l = sizeof v;
    E(N("get_bad_ptr"), getsockopt(cli, SOL_UDPLITE, UDPLITE_SEND_CSCOV, (void *)8, &l), EFAULT);
    E(N("bad_fd"), setsockopt(999, SOL_UDPLITE, UDPLITE_SEND_CSCOV, &v, sizeof v), EBADF);
    close(cli);
    close(ucli);
    close(udp);
    close(lite);
    close(lite2);
#undef N
}

int main(void)
{
    family(AF_INET, "v4");
    family(AF_INET6, "v6");
    printf("done\n");
    return 0;
}
