/* TCP over IPv4 loopback: connection set-up, names, data, shutdown,
 * resets, poll bits, non-blocking connect and the listen backlog. */
#include "inet_common.h"

#define BIG (8 << 20)

static int big_fd;
static void *big_writer(void *arg)
{
    (void)arg;
    char *buf = malloc(65536);
    size_t sent = 0;
    unsigned seed = 1;
    while (sent < BIG) {
        for (int i = 0; i < 65536; i++)
            buf[i] = (char)((seed = seed * 1103515245 + 12345) >> 16);
        size_t off = 0;
        while (off < 65536) {
            ssize_t w = write(big_fd, buf + off, 65536 - off);
            if (w <= 0)
                return NULL;
            off += w;
        }
        sent += 65536;
    }
    free(buf);
    shutdown(big_fd, SHUT_WR);
    return NULL;
}

static int pieces_fd;
static void *pieces_writer(void *arg)
{
    (void)arg;
    char b[1000];
    memset(b, 'p', sizeof b);
    for (int i = 0; i < 3; i++) {
        if (write(pieces_fd, b, sizeof b) != sizeof b)
            return NULL;
        usleep(20000);
    }
    return NULL;
}

static int blocked_port, blocked_result = -2;
static void *blocked_connect(void *arg)
{
    (void)arg;
    int fd = tcp_connect("127.0.0.1", blocked_port);
    blocked_result = fd >= 0 ? 0 : -errno;
    if (fd >= 0)
        close(fd);
    return NULL;
}

static volatile int pipes;
static void on_pipe(int sig)
{
    (void)sig;
    pipes++;
}

/* A connected pair: *c client, *s accepted server side. */
static int pair(int l, int *c, int *s)
{
    *c = tcp_connect("127.0.0.1", port_of(l));
    *s = accept(l, NULL, NULL);
    return (*c >= 0 && *s >= 0) ? 0 : -1;
}

int main(void)
{
    guest_init();
    signal(SIGPIPE, SIG_IGN);

    /* A fresh socket. */
    int f = socket(AF_INET, SOCK_STREAM, 0);
    T("socket", f);
    V("so_type", geti(f, SOL_SOCKET, SO_TYPE));
    V("so_protocol", geti(f, SOL_SOCKET, SO_PROTOCOL));
    V("so_domain", geti(f, SOL_SOCKET, SO_DOMAIN));
    P("fresh poll %s\n", now_bits(f));
    P("fresh name %s port %d\n", addr_of(f, 0), port_of(f));
    P("fresh peer %s\n", addr_of(f, 1));
    char buf[4096];
    E("fresh recv", recv(f, buf, 1, 0), ENOTCONN);
    E("fresh send", send(f, "x", 1, MSG_NOSIGNAL), EPIPE);
    E("fresh accept", accept(f, NULL, NULL), EINVAL);
    E("fresh shutdown", shutdown(f, SHUT_RDWR), ENOTCONN);
    V("fresh fionread", ioctl(f, FIONREAD, &(int){0}));
    T("listen unbound", listen(f, 5));
    B("listen autobind", port_of(f) >= 32768);
    V("acceptconn", geti(f, SOL_SOCKET, SO_ACCEPTCONN));
    P("listener poll %s\n", now_bits(f));
    E("listener fionread", ioctl(f, FIONREAD, &(int){0}), EINVAL);
    E("listener recv", recv(f, buf, 1, 0), ENOTCONN);
    struct sockaddr_in any = sin4("127.0.0.1", 0);
    E("listener connect", connect(f, (struct sockaddr *)&any, sizeof any), EISCONN);
    close(f);

    /* Names. */
    int l = tcp_listener("127.0.0.1", 8);
    T("listener", l);
    int c, s;
    T("pair", pair(l, &c, &s));
    struct sockaddr_in cn, sp, sn, ln;
    socklen_t len = sizeof cn;
    getsockname(c, (struct sockaddr *)&cn, &len);
    len = sizeof sp;
    V("accepted peer len", (getpeername(s, (struct sockaddr *)&sp, &len), len));
    len = sizeof sn;
    getsockname(s, (struct sockaddr *)&sn, &len);
    getsockname(l, (struct sockaddr *)&ln, &len);
    B("client port ephemeral", ntohs(cn.sin_port) >= 32768);
    B("peer is client", sp.sin_port == cn.sin_port && sp.sin_addr.s_addr == cn.sin_addr.s_addr);
    B("server name is listener's", sn.sin_port == ln.sin_port && sn.sin_addr.s_addr == ln.sin_addr.s_addr);
    P("client name %s peer %s\n", addr_of(c, 0), addr_of(c, 1));
    P("connected poll %s\n", now_bits(c));
    E("connect again", connect(c, (struct sockaddr *)&ln, sizeof ln), EISCONN);
    E("bind connected", bind(c, (struct sockaddr *)&any, sizeof any), EINVAL);
    E("listen connected", listen(c, 1), EINVAL);
    V("acceptconn accepted", geti(s, SOL_SOCKET, SO_ACCEPTCONN));

    /* accept4 with a peer address cut short, and SOCK_NONBLOCK. */
    int c2 = tcp_connect("127.0.0.1", port_of(l));
    struct sockaddr_in small;
    socklen_t slen = 4;
    int s2 = accept4(l, (struct sockaddr *)&small, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    T("accept4", s2);
    V("accept4 addrlen", slen);
    B("accept4 nonblock", fcntl(s2, F_GETFL) & O_NONBLOCK);
    E("accept4 recv empty", recv(s2, buf, 10, 0), EAGAIN);
    close(c2);
    close(s2);

    /* Data, peek, FIONREAD, SIOCOUTQ, MSG_DONTWAIT. */
    E("recv dontwait", recv(s, buf, 10, MSG_DONTWAIT), EAGAIN);
    V("send hello", send(c, "hello", 5, 0));
    B("server readable", wait_ev(s, POLLIN, 5000) & POLLIN);
    int n = -1;
    ioctl(s, FIONREAD, &n);
    V("fionread", n);
    V("peek", recv(s, buf, 3, MSG_PEEK));
    V("read", read(s, buf, sizeof buf));
    P("got %.5s\n", buf);
    ioctl(c, SIOCOUTQ, &n);
    V("outq after read", n);
    V("send zero", send(c, "", 0, 0));
    V("recv zero len", recv(s, buf, 0, MSG_DONTWAIT));
    E("recv oob", recv(s, buf, 1, MSG_OOB), EINVAL);

    /* MSG_WAITALL across three writes. */
    pthread_t th;
    pieces_fd = c;
    pthread_create(&th, NULL, pieces_writer, NULL);
    V("waitall", recv(s, buf, 3000, MSG_WAITALL));
    pthread_join(th, NULL);

    /* SO_RCVTIMEO. */
    struct timeval tv = { 0, 50000 };
    T("rcvtimeo", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    E("recv times out", recv(s, buf, 1, 0), EAGAIN);
    tv.tv_usec = 0;
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    /* 8 MiB through one connection, checked byte by byte. */
    big_fd = c;
    pthread_create(&th, NULL, big_writer, NULL);
    size_t total = 0;
    unsigned seed = 1;
    int good = 1;
    char *rb = malloc(100000);
    for (;;) {
        ssize_t r = read(s, rb, 100000);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (rb[i] != (char)((seed = seed * 1103515245 + 12345) >> 16))
                good = 0;
        total += r;
    }
    pthread_join(th, NULL);
    B("big transfer complete", total == BIG);
    B("big transfer intact", good);

    /* Half close: the client shut down for writing above. */
    E("send after shut_wr", send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
    signal(SIGPIPE, on_pipe);
    E("send after shut_wr raises", send(c, "x", 1, 0), EPIPE);
    V("sigpipe count", pipes);
    signal(SIGPIPE, SIG_IGN);
    P("client after shut_wr %s\n", now_bits(c));
    P("server after peer fin %s\n", now_bits(s));
    struct tcp_info ti;
    len = sizeof ti;
    getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len);
    V("server state", ti.tcpi_state);
    V("server sends back", send(s, "back", 4, 0));
    V("client reads back", recv(c, buf, 10, 0));
    T("server shut_wr", shutdown(s, SHUT_WR));
    V("client eof", recv(c, buf, 10, 0));
    B("client hup", wait_ev(c, POLLIN, 5000) & POLLHUP);
    P("client both shut %s\n", now_bits(c));
    P("server both shut %s\n", now_bits(s));
    close(c);
    close(s);

    /* SHUT_RD: reads end, the peer can still send. */
    T("pair rd", pair(l, &c, &s));
    T("shut_rd", shutdown(s, SHUT_RD));
    V("read after shut_rd", recv(s, buf, 10, 0));
    P("after shut_rd %s\n", now_bits(s));
    V("peer sends after shut_rd", send(c, "abc", 3, 0));
    close(c);
    close(s);

    /* Closing with unread data resets the connection. */
    T("pair rst", pair(l, &c, &s));
    send(c, "unread", 6, 0);
    wait_ev(s, POLLIN, 5000);
    V("server sends before reset", send(s, "tail", 4, 0));
    close(s);
    P("reset poll %s\n", bits(wait_ev(c, POLLERR, 5000)));
    V("reads data before reset", recv(c, buf, 10, 0));
    E("recv after reset", recv(c, buf, 10, 0), ECONNRESET);
    V("recv after reset again", recv(c, buf, 10, 0));
    E("send after reset", send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
    close(c);

    /* SO_LINGER 0 resets too; the error goes to send first. */
    T("pair linger", pair(l, &c, &s));
    struct linger lg = { 1, 0 };
    T("linger0", setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    close(s);
    wait_ev(c, POLLERR, 5000);
    E("send after linger reset", send(c, "x", 1, MSG_NOSIGNAL), ECONNRESET);
    E("send after that", send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
    close(c);

    /* The peer closed cleanly: the first write goes, then EPIPE. */
    T("pair close", pair(l, &c, &s));
    close(s);
    V("eof after close", recv(c, buf, 10, 0));
    V("first write after peer close", send(c, "x", 1, MSG_NOSIGNAL));
    wait_ev(c, POLLERR, 5000);
    E("second write after peer close", send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
    close(c);

    /* Non-blocking writes fill the buffers, then POLLOUT comes back. */
    T("pair fill", pair(l, &c, &s));
    set_nonblock(c, 1);
    char *chunk = calloc(1, 65536);
    size_t filled = 0;
    for (int i = 0; i < 10000; i++) {
        ssize_t w = send(c, chunk, 65536, 0);
        if (w < 0) {
            P("fill stops with %s\n", errno_name(errno));
            break;
        }
        filled += w;
    }
    B("filled something", filled > 0);
    B("full: no pollout", !(wait_ev(c, POLLOUT, 0) & POLLOUT));
    size_t drained = 0;
    set_nonblock(s, 1);
    while (drained < filled) {
        ssize_t r = recv(s, rb, 100000, 0);
        if (r > 0)
            drained += r;
        else
            wait_ev(s, POLLIN, 1000);
    }
    B("pollout after drain", wait_ev(c, POLLOUT, 5000) & POLLOUT);
    free(chunk);
    close(c);
    close(s);
    close(l);

    /* Refused: a port that is bound but does not listen. */
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ba = sin4("127.0.0.1", 0);
    bind(b, (struct sockaddr *)&ba, sizeof ba);
    int dead = port_of(b);
    E("connect refused", tcp_connect("127.0.0.1", dead), ECONNREFUSED);
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in da = sin4("127.0.0.1", dead);
    E("nb connect refused", connect(c, (struct sockaddr *)&da, sizeof da), EINPROGRESS);
    P("refused poll %s\n", bits(wait_ev(c, POLLOUT, 5000)));
    V("refused so_error", sock_err(c) == ECONNREFUSED);
    E("connect after so_error", connect(c, (struct sockaddr *)&da, sizeof da), ECONNABORTED);
    close(c);
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(c, (struct sockaddr *)&da, sizeof da);
    wait_ev(c, POLLOUT, 5000);
    E("second connect reports", connect(c, (struct sockaddr *)&da, sizeof da), ECONNREFUSED);
    close(c);
    close(b);

    /* Non-blocking connect that succeeds. */
    l = tcp_listener("127.0.0.1", 8);
    struct sockaddr_in la = sin4("127.0.0.1", port_of(l));
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    E("nb connect", connect(c, (struct sockaddr *)&la, sizeof la), EINPROGRESS);
    B("nb connect pollout", wait_ev(c, POLLOUT, 5000) & POLLOUT);
    V("nb so_error", sock_err(c));
    T("nb connect again", connect(c, (struct sockaddr *)&la, sizeof la));
    E("nb connect third", connect(c, (struct sockaddr *)&la, sizeof la), EISCONN);
    close(c);
    close(l);

    /* Backlog 0 holds one connection; the next waits for an accept. */
    l = tcp_listener("127.0.0.1", 0);
    la = sin4("127.0.0.1", port_of(l));
    int q1 = tcp_connect("127.0.0.1", port_of(l));
    T("first fits", q1);
    int q2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    E("second waits", connect(q2, (struct sockaddr *)&la, sizeof la), EINPROGRESS);
    B("second not yet", !(wait_ev(q2, POLLOUT, 200) & POLLOUT));
    E("connect while pending", connect(q2, (struct sockaddr *)&la, sizeof la), EALREADY);
    int a1 = accept(l, NULL, NULL);
    T("accept first", a1);
    B("second completes", wait_ev(q2, POLLOUT, 20000) & POLLOUT);
    V("second so_error", sock_err(q2));
    B("second accepted", wait_ev(l, POLLIN, 5000) & POLLIN);
    int a2 = accept(l, NULL, NULL);
    T("accept second", a2);
    /* A blocking connect waits for room too. */
    blocked_port = port_of(l);
    int q4 = tcp_connect("127.0.0.1", port_of(l));
    T("fills again", q4);
    pthread_t bt;
    pthread_create(&bt, NULL, blocked_connect, NULL);
    int a3 = accept(l, NULL, NULL);
    T("accept makes room", a3);
    pthread_join(bt, NULL);
    V("blocked connect completes", blocked_result);
    close(accept(l, NULL, NULL));
    close(a3);
    close(q4);
    /* Closing a listener resets what it did not accept. */
    int q3 = tcp_connect("127.0.0.1", port_of(l));
    T("third queued", q3);
    close(l);
    wait_ev(q3, POLLERR, 5000);
    E("unaccepted is reset", recv(q3, buf, 1, 0), ECONNRESET);
    close(q1);
    close(q2);
    close(q3);
    close(a1);
    close(a2);
    free(rb);
    P("done\n");
    return 0;
}
