/* AF_NETLINK, NETLINK_ROUTE: socket kinds, binding and port ids, options,
 * message boundaries (peek, truncation), link/address/route/rule/netconf
 * dumps and gets, ACKs and errors, blocking and polling.
 *
 * The host has more interfaces than the sandbox's lo: only lo's entries
 * (index 1) and routes through lo are printed. Requests that change
 * anything are not sent: natively they run as root and would succeed. */
#include "common.h"
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/fib_rules.h>
#include <linux/netconf.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif

#define BUFSZ 65536
static char rbuf[BUFSZ];
static unsigned seq = 1000;
static unsigned my_pid;

static int nl_socket(int type)
{
    return socket(AF_NETLINK, type | SOCK_CLOEXEC, NETLINK_ROUTE);
}

/* Send one message: type, flags, a family header and attributes. */
static long nl_send(int fd, int type, int flags, const void *body, int len)
{
    char buf[1024];
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    memset(buf, 0, sizeof buf);
    h->nlmsg_len = NLMSG_LENGTH(len);
    h->nlmsg_type = type;
    h->nlmsg_flags = flags;
    h->nlmsg_seq = ++seq;
    if (len)
        memcpy(NLMSG_DATA(h), body, len);
    struct sockaddr_nl to = { .nl_family = AF_NETLINK };
    return sendto(fd, buf, h->nlmsg_len, 0, (struct sockaddr *)&to, sizeof to);
}

static long recv_dontwait(int fd)
{
    return recv(fd, rbuf, BUFSZ, MSG_DONTWAIT);
}

/* What collect() saw of a dump besides the messages it hands on. */
struct seen {
    int done, error, bad_seq, bad_pid, not_multi, msgs;
};

/* Read datagrams until NLMSG_DONE or NLMSG_ERROR for `want_seq`, calling
 * `cb` for every other message. */
static void collect(int fd, unsigned want_seq, void (*cb)(struct nlmsghdr *), struct seen *s)
{
    memset(s, 0, sizeof *s);
    for (int round = 0; round < 100; round++) {
        long n = recv(fd, rbuf, BUFSZ, 0);
        if (n < 0) {
            printf("collect recv err %s\n", errno_name(errno));
            return;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != want_seq)
                s->bad_seq++;
            if (h->nlmsg_pid != my_pid)
                s->bad_pid++;
            if (h->nlmsg_type == NLMSG_DONE) {
                s->done = 1;
                return;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                s->error = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
                return;
            }
            if (!(h->nlmsg_flags & NLM_F_MULTI))
                s->not_multi++;
            s->msgs++;
            if (cb)
                cb(h);
        }
    }
}

static void report(const char *what, struct seen *s)
{
    printf("%s done=%d error=%d bad_seq=%d bad_pid=%d not_multi=%d nonempty=%s\n", what, s->done, s->error,
           s->bad_seq, s->bad_pid, s->not_multi, s->msgs > 0 ? "yes" : "no");
}

static const char *ip_str(int family, const void *a)
{
    static char b[4][INET6_ADDRSTRLEN];
    static int next;
    char *o = b[next++ % 4];
    inet_ntop(family, a, o, INET6_ADDRSTRLEN);
    return o;
}

/* ---- links ---- */

static void print_link(struct nlmsghdr *h)
{
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    if (h->nlmsg_type != RTM_NEWLINK || ifi->ifi_index != 1)
        return;
    printf("link family=%d type=%d index=%d flags=%x change=%x\n", ifi->ifi_family, ifi->ifi_type,
           ifi->ifi_index, ifi->ifi_flags, ifi->ifi_change);
    int len = IFLA_PAYLOAD(h);
    for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        void *d = RTA_DATA(a);
        switch (a->rta_type) {
        case IFLA_IFNAME: printf("  ifname %s\n", (char *)d); break;
        case IFLA_MTU: printf("  mtu %u\n", *(unsigned *)d); break;
        case IFLA_TXQLEN: printf("  txqlen %u\n", *(unsigned *)d); break;
        case IFLA_OPERSTATE: printf("  operstate %u\n", *(unsigned char *)d); break;
        case IFLA_LINKMODE: printf("  linkmode %u\n", *(unsigned char *)d); break;
        case IFLA_GROUP: printf("  group %u\n", *(unsigned *)d); break;
        case IFLA_QDISC: printf("  qdisc %s\n", (char *)d); break;
        case IFLA_PROMISCUITY: printf("  promiscuity %u\n", *(unsigned *)d); break;
        case IFLA_CARRIER: printf("  carrier %u\n", *(unsigned char *)d); break;
        case IFLA_ADDRESS:
        case IFLA_BROADCAST: {
            int zero = 1;
            for (int i = 0; i < (int)RTA_PAYLOAD(a); i++)
                zero &= ((unsigned char *)d)[i] == 0;
            printf("  %s len=%d zero=%d\n", a->rta_type == IFLA_ADDRESS ? "address" : "broadcast",
                   (int)RTA_PAYLOAD(a), zero);
            break;
        }
        case IFLA_STATS: printf("  stats present\n"); break;
        case IFLA_STATS64: printf("  stats64 present\n"); break;
        }
    }
}

static void test_links(int fd)
{
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
    struct seen s;

    V("getlink_dump_send", nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &ifi, sizeof ifi));
    unsigned dump_seq = seq;
    /* What iproute2 does: learn the datagram's size with a peek. */
    long size = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
    B("peek_size_positive", size > (long)NLMSG_HDRLEN);
    struct iovec iov = { rbuf, (size_t)size };
    struct sockaddr_nl from;
    struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1 };
    B("peek_size_exact", recvmsg(fd, &mh, MSG_PEEK) == size && !(mh.msg_flags & MSG_TRUNC));
    P("from_kernel family=%d pid=%u groups=%u namelen=%u\n", from.nl_family, from.nl_pid, from.nl_groups,
      mh.msg_namelen);
    collect(fd, dump_seq, print_link, &s);
    report("getlink_dump", &s);

    /* By index, by name, with an ACK; and the errors. */
    struct {
        struct ifinfomsg ifi;
        char attrs[64];
    } req;
    memset(&req, 0, sizeof req);
    req.ifi.ifi_index = 1;
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, &req, sizeof req.ifi);
    long n = recv(fd, rbuf, BUFSZ, 0);
    struct nlmsghdr *h = (struct nlmsghdr *)rbuf;
    B("getlink_index_one_message", NLMSG_OK(h, n) && !NLMSG_OK(NLMSG_NEXT(h, n), n));
    P("getlink_index type=%d flags=%x seq_ok=%d\n", h->nlmsg_type, h->nlmsg_flags, h->nlmsg_seq == seq);
    print_link(h);
    n = recv(fd, rbuf, BUFSZ, 0);
    struct nlmsgerr *e = NLMSG_DATA(h);
    P("getlink_ack type=%d error=%d len=%u flags=%x seq_ok=%d\n", h->nlmsg_type, e->error, h->nlmsg_len,
      h->nlmsg_flags, h->nlmsg_seq == seq);

    memset(&req, 0, sizeof req);
    struct rtattr *a = (struct rtattr *)req.attrs;
    a->rta_type = IFLA_IFNAME;
    a->rta_len = RTA_LENGTH(3);
    memcpy(RTA_DATA(a), "lo", 3);
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &req, NLMSG_ALIGN(sizeof req.ifi) + RTA_ALIGN(a->rta_len));
    n = recv(fd, rbuf, BUFSZ, 0);
    P("getlink_name type=%d index=%d\n", h->nlmsg_type, ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_index);
    memcpy(RTA_DATA(a), "zz", 3);
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &req, NLMSG_ALIGN(sizeof req.ifi) + RTA_ALIGN(a->rta_len));
    n = recv(fd, rbuf, BUFSZ, 0);
    P("getlink_bad_name type=%d error=%d\n", h->nlmsg_type, e->error);

    memset(&req, 0, sizeof req);
    req.ifi.ifi_index = 99999;
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &req, sizeof req.ifi);
    n = recv(fd, rbuf, BUFSZ, 0);
    P("getlink_bad_index type=%d error=%d len=%u flags=%x echoed_seq_ok=%d\n", h->nlmsg_type, e->error,
      h->nlmsg_len, h->nlmsg_flags, e->msg.nlmsg_seq == seq);
    req.ifi.ifi_index = 0;
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &req, sizeof req.ifi);
    n = recv(fd, rbuf, BUFSZ, 0);
    P("getlink_no_index_no_name error=%d\n", e->error);
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &req, 1);
    n = recv(fd, rbuf, BUFSZ, 0);
    P("getlink_short_header error=%d\n", e->error);

    /* A second dump while one is under way. */
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &ifi, sizeof ifi);
    unsigned first = seq;
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &ifi, sizeof ifi);
    unsigned second = seq;
    int busy = 0, done = 0;
    for (int round = 0; round < 50 && !done; round++) {
        n = recv(fd, rbuf, BUFSZ, 0);
        if (n < 0)
            break;
        for (h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == second)
                busy = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
            if (h->nlmsg_type == NLMSG_DONE && h->nlmsg_seq == first)
                done = 1;
        }
    }
    P("second_dump_error=%d first_dump_done=%d\n", busy, done);
    E("nothing_left", recv_dontwait(fd), EAGAIN);
}

/* ---- addresses ---- */

static void print_addr(struct nlmsghdr *h)
{
    struct ifaddrmsg *ifa = NLMSG_DATA(h);
    if (h->nlmsg_type != RTM_NEWADDR || ifa->ifa_index != 1)
        return;
    printf("addr family=%d plen=%d flags=%x scope=%d\n", ifa->ifa_family, ifa->ifa_prefixlen, ifa->ifa_flags,
           ifa->ifa_scope);
    int len = IFA_PAYLOAD(h);
    for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        void *d = RTA_DATA(a);
        switch (a->rta_type) {
        case IFA_ADDRESS: printf("  address %s\n", ip_str(ifa->ifa_family, d)); break;
        case IFA_LOCAL: printf("  local %s\n", ip_str(ifa->ifa_family, d)); break;
        case IFA_BROADCAST: printf("  broadcast %s\n", ip_str(ifa->ifa_family, d)); break;
        case IFA_LABEL: printf("  label %s\n", (char *)d); break;
        case IFA_FLAGS: printf("  ifa_flags %x\n", *(unsigned *)d); break;
        case IFA_CACHEINFO: {
            struct ifa_cacheinfo *c = d;
            printf("  cacheinfo preferred=%x valid=%x\n", c->ifa_prefered, c->ifa_valid);
            break;
        }
        }
    }
}

static void test_addrs(int fd)
{
    struct seen s;
    int fams[] = { AF_UNSPEC, AF_INET, AF_INET6 };
    for (int i = 0; i < 3; i++) {
        struct ifaddrmsg ifa = { .ifa_family = fams[i] };
        printf("getaddr_dump family %d\n", fams[i]);
        nl_send(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &ifa, sizeof ifa);
        collect(fd, seq, print_addr, &s);
        report("getaddr_dump", &s);
    }
    /* glibc's form: a bare rtgenmsg. */
    struct rtgenmsg g = { .rtgen_family = AF_INET };
    nl_send(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &g, sizeof g);
    collect(fd, seq, print_addr, &s);
    report("getaddr_rtgenmsg", &s);
}

/* ---- routes ---- */

static void print_route(struct nlmsghdr *h)
{
    struct rtmsg *r = NLMSG_DATA(h);
    if (h->nlmsg_type != RTM_NEWROUTE)
        return;
    int len = RTM_PAYLOAD(h), oif = 0;
    for (struct rtattr *a = RTM_RTA(r); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == RTA_OIF)
            oif = *(int *)RTA_DATA(a);
    if (oif != 1)
        return;
    printf("route family=%d dst_len=%d src_len=%d tos=%d table=%d proto=%d scope=%d type=%d flags=%x\n",
           r->rtm_family, r->rtm_dst_len, r->rtm_src_len, r->rtm_tos, r->rtm_table, r->rtm_protocol,
           r->rtm_scope, r->rtm_type, r->rtm_flags);
    len = RTM_PAYLOAD(h);
    for (struct rtattr *a = RTM_RTA(r); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        void *d = RTA_DATA(a);
        switch (a->rta_type) {
        case RTA_TABLE: printf("  table %u\n", *(unsigned *)d); break;
        case RTA_DST: printf("  dst %s\n", ip_str(r->rtm_family, d)); break;
        case RTA_SRC: printf("  src %s\n", ip_str(r->rtm_family, d)); break;
        case RTA_PREFSRC: printf("  prefsrc %s\n", ip_str(r->rtm_family, d)); break;
        case RTA_GATEWAY: printf("  gateway %s\n", ip_str(r->rtm_family, d)); break;
        case RTA_PRIORITY: printf("  priority %u\n", *(unsigned *)d); break;
        case RTA_PREF: printf("  pref %u\n", *(unsigned char *)d); break;
        case RTA_OIF: printf("  oif %d\n", *(int *)d); break;
        }
    }
}

static void route_get(int fd, int family, const char *dst)
{
    struct {
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
    nl_send(fd, RTM_GETROUTE, NLM_F_REQUEST, &req, NLMSG_ALIGN(sizeof req.r) + RTA_ALIGN(a->rta_len));
    long n = recv(fd, rbuf, BUFSZ, 0);
    struct nlmsghdr *h = (struct nlmsghdr *)rbuf;
    if (n <= 0 || h->nlmsg_type != RTM_NEWROUTE) {
        printf("route_get %s failed type=%d\n", dst, n > 0 ? h->nlmsg_type : -1);
        return;
    }
    printf("route_get %s reply_flags=%x\n", dst, h->nlmsg_flags);
    print_route(h);
}

static void test_routes(int fd)
{
    struct seen s;
    int fams[] = { AF_INET, AF_INET6, AF_UNSPEC };
    for (int i = 0; i < 3; i++) {
        struct rtmsg r = { .rtm_family = fams[i] };
        printf("getroute_dump family %d\n", fams[i]);
        nl_send(fd, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, &r, sizeof r);
        collect(fd, seq, print_route, &s);
        report("getroute_dump", &s);
    }
    route_get(fd, AF_INET, "127.0.0.1");
    route_get(fd, AF_INET, "127.9.8.7");
    route_get(fd, AF_INET6, "::1");
    struct rtmsg r = { .rtm_family = AF_INET };
    nl_send(fd, RTM_GETROUTE, NLM_F_REQUEST, &r, 4);
    recv(fd, rbuf, BUFSZ, 0);
    P("route_get_short_header error=%d\n", ((struct nlmsgerr *)NLMSG_DATA((struct nlmsghdr *)rbuf))->error);
}

/* ---- rules, netconf, neighbours ---- */

static void print_rule(struct nlmsghdr *h)
{
    struct fib_rule_hdr *f = NLMSG_DATA(h);
    unsigned prio = 0, table = 0;
    int len = h->nlmsg_len - NLMSG_LENGTH(sizeof *f);
    for (struct rtattr *a = (struct rtattr *)((char *)f + NLMSG_ALIGN(sizeof *f)); RTA_OK(a, len);
         a = RTA_NEXT(a, len)) {
        if (a->rta_type == FRA_PRIORITY)
            prio = *(unsigned *)RTA_DATA(a);
        if (a->rta_type == FRA_TABLE)
            table = *(unsigned *)RTA_DATA(a);
    }
    /* Hosts may add rules of their own: only the three defaults. */
    if (prio == 0 || prio == 32766 || prio == 32767)
        printf("rule family=%d table=%d action=%d priority=%u fra_table=%u\n", f->family, f->table, f->action,
               prio, table);
}

static void print_netconf(struct nlmsghdr *h)
{
    struct netconfmsg *c = NLMSG_DATA(h);
    int len = h->nlmsg_len - NLMSG_LENGTH(sizeof *c), index = 0, fwd = -1;
    for (struct rtattr *a = (struct rtattr *)((char *)c + NLMSG_ALIGN(sizeof *c)); RTA_OK(a, len);
         a = RTA_NEXT(a, len)) {
        if (a->rta_type == NETCONFA_IFINDEX)
            index = *(int *)RTA_DATA(a);
        if (a->rta_type == NETCONFA_FORWARDING)
            fwd = *(int *)RTA_DATA(a);
    }
    /* Forwarding is the host's choice (on where containers run): only
     * that it is reported. */
    if (index == 1 || index == NETCONFA_IFINDEX_ALL || index == NETCONFA_IFINDEX_DEFAULT)
        printf("netconf family=%d index=%d forwarding_reported=%d\n", c->ncm_family, index, fwd == 0 || fwd == 1);
}

static void test_others(int fd)
{
    struct seen s;
    for (int fam = AF_INET; fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
        struct fib_rule_hdr f = { .family = fam };
        nl_send(fd, RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP, &f, sizeof f);
        collect(fd, seq, print_rule, &s);
        report("getrule_dump", &s);
        struct netconfmsg c = { .ncm_family = fam };
        nl_send(fd, RTM_GETNETCONF, NLM_F_REQUEST | NLM_F_DUMP, &c, sizeof c);
        collect(fd, seq, print_netconf, &s);
        report("getnetconf_dump", &s);
    }
    struct ndmsg nd = { .ndm_family = AF_UNSPEC };
    nl_send(fd, RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, &nd, sizeof nd);
    /* lo's NOARP entries come and go with traffic: only the framing. */
    collect(fd, seq, NULL, &s);
    printf("getneigh_dump done=%d error=%d bad_seq=%d\n", s.done, s.error, s.bad_seq);
}

/* ---- framing: ACKs, non-requests, several messages, short sends ---- */

static void test_framing(int fd)
{
    struct nlmsghdr *h = (struct nlmsghdr *)rbuf;
    struct nlmsgerr *e = NLMSG_DATA(h);

    V("noop_ack_send", nl_send(fd, NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, NULL, 0));
    V("noop_ack_recv", recv(fd, rbuf, BUFSZ, 0));
    P("noop_ack type=%d error=%d len=%u flags=%x\n", h->nlmsg_type, e->error, h->nlmsg_len, h->nlmsg_flags);
    nl_send(fd, RTM_GETLINK, NLM_F_ACK, NULL, 0);
    recv(fd, rbuf, BUFSZ, 0);
    P("not_request_ack type=%d error=%d\n", h->nlmsg_type, e->error);
    nl_send(fd, RTM_GETLINK, 0, NULL, 0);
    E("not_request_no_answer", recv_dontwait(fd), EAGAIN);
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK, NULL, 0);
    recv(fd, rbuf, BUFSZ, 0);
    P("empty_dump_request_ack type=%d error=%d\n", h->nlmsg_type, e->error);
    E("empty_dump_request_nothing_else", recv_dontwait(fd), EAGAIN);
    char b = 0;
    nl_send(fd, 200, NLM_F_REQUEST, &b, 1);
    recv(fd, rbuf, BUFSZ, 0);
    P("unknown_type error=%d\n", e->error);

    /* Two requests in one datagram, answered in order. */
    char two[128];
    memset(two, 0, sizeof two);
    struct nlmsghdr *a = (struct nlmsghdr *)two;
    a->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    a->nlmsg_type = RTM_GETLINK;
    a->nlmsg_flags = NLM_F_REQUEST;
    a->nlmsg_seq = 7001;
    ((struct ifinfomsg *)NLMSG_DATA(a))->ifi_index = 1;
    struct nlmsghdr *c = (struct nlmsghdr *)(two + NLMSG_ALIGN(a->nlmsg_len));
    c->nlmsg_len = NLMSG_HDRLEN;
    c->nlmsg_type = NLMSG_NOOP;
    c->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    c->nlmsg_seq = 7002;
    long total = NLMSG_ALIGN(a->nlmsg_len) + c->nlmsg_len;
    V("two_requests_send", send(fd, two, total, 0));
    recv(fd, rbuf, BUFSZ, 0);
    P("two_first type=%d seq=%u\n", h->nlmsg_type, h->nlmsg_seq);
    recv(fd, rbuf, BUFSZ, 0);
    P("two_second type=%d seq=%u\n", h->nlmsg_type, h->nlmsg_seq);

    /* Short and inconsistent buffers are accepted and ignored. */
    V("short_send", send(fd, two, 10, 0));
    a->nlmsg_len = 4000;
    V("overlong_len_send", send(fd, two, 64, 0));
    E("short_sends_no_answer", recv_dontwait(fd), EAGAIN);

    /* Truncation: the rest of the datagram is gone. */
    struct ifinfomsg ifi = { .ifi_index = 1 };
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
    struct iovec iov = { rbuf, 16 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    V("truncated_recvmsg", recvmsg(fd, &mh, 0));
    B("truncated_flag", mh.msg_flags & MSG_TRUNC);
    E("truncated_rest_dropped", recv_dontwait(fd), EAGAIN);
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
    long whole = recv(fd, rbuf, 16, MSG_TRUNC);
    B("msg_trunc_returns_whole_length", whole > 16);

    /* read(2) and write(2). */
    char w[64];
    memset(w, 0, sizeof w);
    a = (struct nlmsghdr *)w;
    a->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    a->nlmsg_type = RTM_GETLINK;
    a->nlmsg_flags = NLM_F_REQUEST;
    a->nlmsg_seq = 8001;
    ((struct ifinfomsg *)NLMSG_DATA(a))->ifi_index = 1;
    V("write_request", write(fd, w, a->nlmsg_len));
    B("read_answer", read(fd, rbuf, BUFSZ) > 0 && h->nlmsg_seq == 8001 && h->nlmsg_type == RTM_NEWLINK);
}

/* ---- sockets, addresses, options ---- */

static void *blocked_reader(void *arg)
{
    int fd = *(int *)arg;
    static char b[8192];
    long n = recv(fd, b, sizeof b, 0);
    return (void *)(long)(n > 0);
}

static void test_socket_calls(void)
{
    struct sockaddr_nl sa;
    socklen_t len;
    int fd, fd2, v;

    E("socket_stream_esocktnosupport", socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE), ESOCKTNOSUPPORT);
    E("socket_seqpacket_esocktnosupport", socket(AF_NETLINK, SOCK_SEQPACKET, 0), ESOCKTNOSUPPORT);
    E("socket_protocol_32", socket(AF_NETLINK, SOCK_RAW, 32), EPROTONOSUPPORT);
    E("socket_protocol_negative", socket(AF_NETLINK, SOCK_RAW, -1), EPROTONOSUPPORT);
    E("socketpair_eopnotsupp", socketpair(AF_NETLINK, SOCK_RAW, 0, (int[2]){ 0, 0 }), EOPNOTSUPP);

    fd = nl_socket(SOCK_RAW);
    T("socket_raw", fd);
    fd2 = nl_socket(SOCK_DGRAM);
    T("socket_dgram", fd2);
    len = sizeof v;
    getsockopt(fd2, SOL_SOCKET, SO_TYPE, &v, &len);
    V("so_type_dgram", v);
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len);
    V("so_domain", v);
    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len);
    V("so_protocol", v);

    len = sizeof sa;
    T("getsockname_unbound", getsockname(fd, (struct sockaddr *)&sa, &len));
    P("unbound family=%d pid=%u groups=%u len=%u\n", sa.nl_family, sa.nl_pid, sa.nl_groups, len);
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    E("bind_short_einval", bind(fd, (struct sockaddr *)&sa, 8), EINVAL);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    E("bind_inet_einval", bind(fd, (struct sockaddr *)&sin, sizeof sin), EINVAL);
    T("bind_pid0", bind(fd, (struct sockaddr *)&sa, sizeof sa));
    len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    my_pid = sa.nl_pid;
    B("first_socket_pid_is_getpid", sa.nl_pid == (unsigned)getpid());
    T("bind_same_again", bind(fd, (struct sockaddr *)&sa, sizeof sa));
    struct sockaddr_nl other = { .nl_family = AF_NETLINK, .nl_pid = 12345 };
    E("rebind_elsewhere_einval", bind(fd, (struct sockaddr *)&other, sizeof other), EINVAL);
    E("bind_taken_eaddrinuse", bind(fd2, (struct sockaddr *)&sa, sizeof sa), EADDRINUSE);
    struct sockaddr_nl zero = { .nl_family = AF_NETLINK };
    T("second_bind_pid0", bind(fd2, (struct sockaddr *)&zero, sizeof zero));
    len = sizeof sa;
    getsockname(fd2, (struct sockaddr *)&sa, &len);
    B("second_socket_pid_negative", (int)sa.nl_pid < -4096);

    int fd3 = nl_socket(SOCK_RAW);
    struct sockaddr_nl chosen = { .nl_family = AF_NETLINK, .nl_pid = 0x7ffff0aa, .nl_groups = 1 };
    T("bind_chosen_pid_and_group", bind(fd3, (struct sockaddr *)&chosen, sizeof chosen));
    len = sizeof sa;
    getsockname(fd3, (struct sockaddr *)&sa, &len);
    P("chosen pid_ok=%d groups=%u\n", sa.nl_pid == 0x7ffff0aa, sa.nl_groups);
    v = 3;
    T("add_membership_3", setsockopt(fd3, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &v, sizeof v));
    getsockname(fd3, (struct sockaddr *)&sa, &len);
    P("after_membership groups=%x\n", sa.nl_groups);
    T("drop_membership_1", setsockopt(fd3, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, (int[]){ 1 }, sizeof v));
    getsockname(fd3, (struct sockaddr *)&sa, &len);
    P("after_drop groups=%x\n", sa.nl_groups);
    E("add_membership_0", setsockopt(fd3, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, (int[]){ 0 }, sizeof v), EINVAL);
    E("add_membership_1000", setsockopt(fd3, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, (int[]){ 1000 }, sizeof v),
      EINVAL);
    close(fd3);
    fd3 = nl_socket(SOCK_RAW);
    T("freed_pid_rebindable", bind(fd3, (struct sockaddr *)&chosen, sizeof chosen));
    close(fd3);

    /* An unbound socket gets its id when it first sends. */
    int fd4 = nl_socket(SOCK_RAW);
    struct ifinfomsg ifi = { .ifi_index = 1 };
    nl_send(fd4, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
    len = sizeof sa;
    getsockname(fd4, (struct sockaddr *)&sa, &len);
    B("autobound_on_send", (int)sa.nl_pid < -4096);
    close(fd4);

    /* connect, getpeername, sendto's checks. */
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    T("connect_kernel", connect(fd, (struct sockaddr *)&kernel, sizeof kernel));
    len = sizeof sa;
    T("getpeername", getpeername(fd, (struct sockaddr *)&sa, &len));
    P("peer family=%d pid=%u groups=%u\n", sa.nl_family, sa.nl_pid, sa.nl_groups);
    struct sockaddr unspec = { .sa_family = AF_UNSPEC };
    T("connect_unspec", connect(fd, &unspec, sizeof unspec));
    E("connect_inet_einval", connect(fd, (struct sockaddr *)&sin, sizeof sin), EINVAL);
    E("sendto_inet_einval", sendto(fd, rbuf, 16, 0, (struct sockaddr *)&sin, sizeof sin), EINVAL);
    struct sockaddr_nl nobody = { .nl_family = AF_NETLINK, .nl_pid = 0x7ffffff3 };
    memset(rbuf, 0, 16);
    ((struct nlmsghdr *)rbuf)->nlmsg_len = 16;
    E("sendto_no_such_port", sendto(fd, rbuf, 16, 0, (struct sockaddr *)&nobody, sizeof nobody), ECONNREFUSED);
    E("send_oob", send(fd, rbuf, 16, MSG_OOB), EOPNOTSUPP);
    E("recv_oob", recv(fd, rbuf, 16, MSG_OOB), EOPNOTSUPP);

    /* Options. */
    v = 1;
    T("ext_ack", setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, sizeof v));
    T("strict_chk", setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &v, sizeof v));
    v = 0;
    T("strict_chk_off", setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &v, sizeof v));
    T("ext_ack_off", setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, sizeof v));
    E("unknown_netlink_option", setsockopt(fd, SOL_NETLINK, 999, &v, sizeof v), ENOPROTOOPT);
    E("unknown_level", setsockopt(fd, SOL_IP, 1, &v, sizeof v), ENOPROTOOPT);
    len = sizeof v;
    getsockopt(fd, SOL_NETLINK, NETLINK_PKTINFO, &v, &len);
    P("pktinfo_default %d len=%u\n", v, len);
    v = 100000;
    T("set_rcvbuf", setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
    len = sizeof v;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len);
    V("rcvbuf_doubled", v);

    /* Control messages: NETLINK_PKTINFO and SO_PASSCRED. */
    v = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_PKTINFO, &v, sizeof v);
    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &v, sizeof v);
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
    char cbuf[256];
    struct iovec iov = { rbuf, BUFSZ };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    T("recvmsg_with_control", recvmsg(fd, &mh, 0));
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_NETLINK && cm->cmsg_type == NETLINK_PKTINFO)
            printf("cmsg pktinfo len=%zu group=%u\n", (size_t)cm->cmsg_len, *(unsigned *)CMSG_DATA(cm));
        else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
            struct ucred *u = (struct ucred *)CMSG_DATA(cm);
            printf("cmsg creds pid=%d uid=%u gid=%u\n", u->pid, u->uid, u->gid);
        } else
            printf("cmsg other %d %d\n", cm->cmsg_level, cm->cmsg_type);
    }
    v = 0;
    setsockopt(fd, SOL_NETLINK, NETLINK_PKTINFO, &v, sizeof v);
    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &v, sizeof v);

    /* Blocking, non-blocking, timeouts, poll. */
    E("recv_dontwait_empty", recv_dontwait(fd), EAGAIN);
    struct timeval tv = { 0, 50000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    E("recv_timeout", recv(fd, rbuf, BUFSZ, 0), EAGAIN);
    tv.tv_usec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct pollfd pf = { fd, POLLIN | POLLOUT, 0 };
    V("poll_idle", poll(&pf, 1, 0));
    P("poll_idle_revents %x\n", pf.revents);
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
    V("poll_answer", poll(&pf, 1, 0));
    P("poll_answer_revents %x\n", pf.revents);
    recv(fd, rbuf, BUFSZ, 0);
    pthread_t t;
    pthread_create(&t, NULL, blocked_reader, &fd);
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
    void *got;
    pthread_join(t, &got);
    B("blocked_recv_woken", got != NULL);

    /* A full receive queue: answers are dropped and recv reports ENOBUFS. */
    v = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    char many[50 * 16];
    memset(many, 0, sizeof many);
    for (int i = 0; i < 50; i++) {
        struct nlmsghdr *m = (struct nlmsghdr *)(many + 16 * i);
        m->nlmsg_len = 16;
        m->nlmsg_type = NLMSG_NOOP;
        m->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        m->nlmsg_seq = i;
    }
    V("flood_send", send(fd, many, sizeof many, 0));
    E("flood_enobufs", recv(fd, rbuf, BUFSZ, 0), ENOBUFS);
    B("flood_then_acks", recv(fd, rbuf, BUFSZ, 0) > 0 && ((struct nlmsghdr *)rbuf)->nlmsg_seq == 0);
    while (recv_dontwait(fd) > 0)
        ;
    v = 200000;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    close(fd2);

    test_framing(fd);
    test_links(fd);
    test_addrs(fd);
    test_routes(fd);
    test_others(fd);
    close(fd);
}

int main(void)
{
    guest_init();
    test_socket_calls();
    /* SOCK_DGRAM answers the same. */
    int d = nl_socket(SOCK_DGRAM);
    struct sockaddr_nl sa;
    socklen_t len = sizeof sa;
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
    nl_send(d, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &ifi, sizeof ifi);
    getsockname(d, (struct sockaddr *)&sa, &len);
    my_pid = sa.nl_pid;
    struct seen s;
    collect(d, seq, NULL, &s);
    report("dgram_getlink_dump", &s);
    printf("done\n");
    return 0;
}
