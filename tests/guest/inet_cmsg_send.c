/* Per-datagram TTL/hop limit and TOS/traffic class given to sendmsg as
 * control messages (IP_TTL, IP_TOS; IPV6_HOPLIMIT, IPV6_TCLASS), seen by
 * a receiver that asked for them, and the values Linux refuses. CPython's
 * test_socket (RFC 3542 ancillary data) checks exactly this. */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static int sendc(int s, int level, int type, const void *val, size_t len)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {"x", 1};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (len) {
        m.msg_control = cbuf;
        m.msg_controllen = CMSG_SPACE(len);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = level;
        c->cmsg_type = type;
        c->cmsg_len = CMSG_LEN(len);
        memcpy(CMSG_DATA(c), val, len);
    }
    return sendmsg(s, &m, 0);
}

/* The value of the one (level, type) control message received, or -1000. */
static int recvc(int s, int level, int type)
{
    char buf[8], cbuf[256];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    if (recvmsg(s, &m, 0) < 0)
        return -2000;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == level && c->cmsg_type == type) {
            if (c->cmsg_len == CMSG_LEN(1))
                return *(unsigned char *)CMSG_DATA(c);
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            return v;
        }
    }
    return -1000;
}

static void pair(int fam, int *a, int *b)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (fam == AF_INET) {
        struct sockaddr_in *x = (struct sockaddr_in *)&ss;
        x->sin_family = AF_INET;
        x->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *x;
    } else {
        struct sockaddr_in6 *x = (struct sockaddr_in6 *)&ss;
        x->sin6_family = AF_INET6;
        x->sin6_addr = in6addr_loopback;
        len = sizeof *x;
    }
    *a = socket(fam, SOCK_DGRAM, 0);
    bind(*a, (struct sockaddr *)&ss, len);
    getsockname(*a, (struct sockaddr *)&ss, &len);
    *b = socket(fam, SOCK_DGRAM, 0);
    connect(*b, (struct sockaddr *)&ss, len);
}

int main(void)
{
    int one = 1, r, s, v;
    unsigned char byte;

    pair(AF_INET, &r, &s);
    setsockopt(r, SOL_IP, IP_RECVTTL, &one, sizeof one);
    setsockopt(r, SOL_IP, IP_RECVTOS, &one, sizeof one);
    V("v4_plain", sendc(s, 0, 0, NULL, 0));
    V("v4_plain_ttl", recvc(r, SOL_IP, IP_TTL));
    v = 7;
    V("v4_ttl_7", sendc(s, SOL_IP, IP_TTL, &v, sizeof v));
    V("v4_ttl_7_seen", recvc(r, SOL_IP, IP_TTL));
    v = 0x20;
    V("v4_tos_int", sendc(s, SOL_IP, IP_TOS, &v, sizeof v));
    V("v4_tos_int_seen", recvc(r, SOL_IP, IP_TOS));
    byte = 0x40;
    V("v4_tos_byte", sendc(s, SOL_IP, IP_TOS, &byte, 1));
    V("v4_tos_byte_seen", recvc(r, SOL_IP, IP_TOS));
    V("v4_after_default_ttl", sendc(s, 0, 0, NULL, 0));
    V("v4_after_default_ttl_seen", recvc(r, SOL_IP, IP_TTL));
    v = 0;
    E("v4_ttl_0", sendc(s, SOL_IP, IP_TTL, &v, sizeof v), EINVAL);
    v = 256;
    E("v4_ttl_256", sendc(s, SOL_IP, IP_TTL, &v, sizeof v), EINVAL);
    E("v4_ttl_short", sendc(s, SOL_IP, IP_TTL, &byte, 1), EINVAL);
    v = 256;
    E("v4_tos_256", sendc(s, SOL_IP, IP_TOS, &v, sizeof v), EINVAL);
    v = 9;
    /* An IPv6 message on an IPv4 socket is not looked at. */
    V("v4_ignores_v6_level", sendc(s, SOL_IPV6, IPV6_HOPLIMIT, &v, sizeof v));
    V("v4_ignores_v6_level_seen", recvc(r, SOL_IP, IP_TTL));
    close(r);
    close(s);

    pair(AF_INET6, &r, &s);
    setsockopt(r, SOL_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one);
    setsockopt(r, SOL_IPV6, IPV6_RECVTCLASS, &one, sizeof one);
    V("v6_plain", sendc(s, 0, 0, NULL, 0));
    V("v6_plain_hops", recvc(r, SOL_IPV6, IPV6_HOPLIMIT));
    v = 2;
    V("v6_hops_2", sendc(s, SOL_IPV6, IPV6_HOPLIMIT, &v, sizeof v));
    V("v6_hops_2_seen", recvc(r, SOL_IPV6, IPV6_HOPLIMIT));
    v = 0;
    V("v6_hops_0", sendc(s, SOL_IPV6, IPV6_HOPLIMIT, &v, sizeof v));
    V("v6_hops_0_seen", recvc(r, SOL_IPV6, IPV6_HOPLIMIT));
    v = -1;
    V("v6_hops_default", sendc(s, SOL_IPV6, IPV6_HOPLIMIT, &v, sizeof v));
    V("v6_hops_default_seen", recvc(r, SOL_IPV6, IPV6_HOPLIMIT));
    v = 0x28;
    V("v6_tclass", sendc(s, SOL_IPV6, IPV6_TCLASS, &v, sizeof v));
    V("v6_tclass_seen", recvc(r, SOL_IPV6, IPV6_TCLASS));
    /* (IPV6_TCLASS -1: Linux 4.4 sends the socket's class, 6.x sends 0xff;
     * not checked.) */
    v = 256;
    E("v6_hops_256", sendc(s, SOL_IPV6, IPV6_HOPLIMIT, &v, sizeof v), EINVAL);
    v = -2;
    E("v6_hops_neg2", sendc(s, SOL_IPV6, IPV6_HOPLIMIT, &v, sizeof v), EINVAL);
    E("v6_hops_short", sendc(s, SOL_IPV6, IPV6_HOPLIMIT, &byte, 1), EINVAL);
    v = 300;
    E("v6_tclass_300", sendc(s, SOL_IPV6, IPV6_TCLASS, &v, sizeof v), EINVAL);
    v = 5;
    V("v6_ignores_v4_level", sendc(s, SOL_IP, IP_TTL, &v, sizeof v));
    V("v6_ignores_v4_level_seen", recvc(r, SOL_IPV6, IPV6_HOPLIMIT));
    printf("done\n");
    return 0;
}
