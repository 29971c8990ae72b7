/* AF_UNIX SOCK_STREAM: socketpair, bind/listen/connect/accept on a path,
 * the byte stream, backlog, shutdown and close on either end, poll and
 * epoll readiness, MSG_PEEK/MSG_WAITALL/MSG_DONTWAIT, backpressure. */
#include "unix_common.h"

static volatile sig_atomic_t got_sigpipe;
static void on_sigpipe(int s)
{
    (void)s;
    got_sigpipe = 1;
}

static void pair_basics(void)
{
    int sv[2];
    char buf[64];
    T("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    V("so_type", get_int(sv[0], SOL_SOCKET, SO_TYPE));
    V("so_domain", get_int(sv[0], SOL_SOCKET, SO_DOMAIN));
    V("so_protocol", get_int(sv[0], SOL_SOCKET, SO_PROTOCOL));
    V("so_sndbuf", get_int(sv[0], SOL_SOCKET, SO_SNDBUF));
    V("so_rcvbuf", get_int(sv[0], SOL_SOCKET, SO_RCVBUF));
    V("so_acceptconn", get_int(sv[0], SOL_SOCKET, SO_ACCEPTCONN));
    show_poll("pair_poll_idle", sv[0], POLLIN | POLLOUT | POLLRDHUP);
    /* Writes are one stream: two writes come back in one read. */
    V("write_ab", write(sv[0], "ab", 2));
    V("write_cd", write(sv[0], "cd", 2));
    show_poll("pair_poll_data", sv[1], POLLIN | POLLOUT | POLLRDHUP);
    V("fionread", ioctl_int(sv[1], FIONREAD));
    B("siocoutq_busy", ioctl_int(sv[0], SIOCOUTQ) > 0);
    V("peek", recv(sv[1], buf, 3, MSG_PEEK));
    V("read_all", read(sv[1], buf, sizeof buf));
    buf[4] = 0;
    P("read_data %s\n", buf);
    V("siocoutq_idle", ioctl_int(sv[0], SIOCOUTQ));
    V("dontwait_empty", recv(sv[1], buf, 1, MSG_DONTWAIT));
    /* A short read leaves the rest. */
    write(sv[1], "hello", 5);
    V("read_2", read(sv[0], buf, 2));
    V("read_3", read(sv[0], buf, 10));
    /* recvfrom on a socketpair reports no address. */
    write(sv[1], "z", 1);
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    V("recvfrom", recvfrom(sv[0], buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    V("recvfrom_addrlen", fl);
    fl = sizeof from;
    T("getsockname_pair", getsockname(sv[0], (struct sockaddr *)&from, &fl));
    V("getsockname_pair_len", fl);
    fl = sizeof from;
    T("getpeername_pair", getpeername(sv[0], (struct sockaddr *)&from, &fl));
    V("getpeername_pair_len", fl);
    struct stat st;
    T("fstat", fstat(sv[0], &st));
    B("fstat_issock", S_ISSOCK(st.st_mode));
    close(sv[0]);
    close(sv[1]);
}

static void shutdowns(void)
{
    int sv[2];
    char buf[16];
    signal(SIGPIPE, on_sigpipe);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], "x", 1);
    T("shut_wr", shutdown(sv[0], SHUT_WR));
    show_poll("after_shut_wr_self", sv[0], POLLIN | POLLOUT | POLLRDHUP);
    show_poll("after_shut_wr_peer", sv[1], POLLIN | POLLOUT | POLLRDHUP);
    V("peer_reads_data", read(sv[1], buf, sizeof buf));
    V("peer_reads_eof", read(sv[1], buf, sizeof buf));
    got_sigpipe = 0;
    E("write_after_shut_wr", write(sv[0], "y", 1), EPIPE);
    B("sigpipe_raised", got_sigpipe);
    got_sigpipe = 0;
    E("send_nosignal", send(sv[0], "y", 1, MSG_NOSIGNAL), EPIPE);
    B("sigpipe_not_raised", !got_sigpipe);
    V("peer_can_still_write", write(sv[1], "back", 4));
    V("self_can_still_read", read(sv[0], buf, sizeof buf));
    T("shut_rd_peer", shutdown(sv[1], SHUT_RD));
    show_poll("after_both_peer", sv[1], POLLIN | POLLOUT | POLLRDHUP);
    show_poll("after_both_self", sv[0], POLLIN | POLLOUT | POLLRDHUP);
    close(sv[0]);
    close(sv[1]);

    /* SHUT_RD: own reads see the end once the queue is empty; the peer's
     * writes fail. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[1], "q", 1);
    T("shut_rd", shutdown(sv[0], SHUT_RD));
    V("read_queued_after_shut_rd", read(sv[0], buf, sizeof buf));
    V("read_after_shut_rd", read(sv[0], buf, sizeof buf));
    E("peer_write_after_shut_rd", send(sv[1], "w", 1, MSG_NOSIGNAL), EPIPE);
    V("own_write_after_shut_rd", write(sv[0], "o", 1));
    V("peer_reads_it", read(sv[1], buf, sizeof buf));
    close(sv[0]);
    close(sv[1]);
    signal(SIGPIPE, SIG_DFL);
}

static void closes(void)
{
    int sv[2];
    char buf[16];
    /* Peer closed with nothing unread: data, then end of file. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], "bye", 3);
    close(sv[0]);
    show_poll("closed_peer_poll", sv[1], POLLIN | POLLOUT | POLLRDHUP);
    V("read_before_eof", read(sv[1], buf, sizeof buf));
    V("read_eof", read(sv[1], buf, sizeof buf));
    E("write_closed", send(sv[1], "x", 1, MSG_NOSIGNAL), EPIPE);
    V("so_error_clean", get_int(sv[1], SOL_SOCKET, SO_ERROR));
    close(sv[1]);

    /* Peer closed leaving data it had not read: ECONNRESET once. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[1], "unread", 6);
    write(sv[0], "mine", 4);
    close(sv[0]);
    show_poll("reset_poll", sv[1], POLLIN | POLLOUT | POLLRDHUP);
    V("reset_read_data", read(sv[1], buf, sizeof buf));
    E("reset_read_err", read(sv[1], buf, sizeof buf), ECONNRESET);
    V("reset_read_then_eof", read(sv[1], buf, sizeof buf));
    close(sv[1]);

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[1], "unread", 6);
    close(sv[0]);
    V("reset_so_error", get_int(sv[1], SOL_SOCKET, SO_ERROR));
    V("reset_so_error_again", get_int(sv[1], SOL_SOCKET, SO_ERROR));
    close(sv[1]);
}

static void listener(void)
{
    struct sockaddr_un a, got;
    socklen_t al = un_path(&a, sp("srv.sock"));
    char buf[64];
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    T("socket", l);
    show_poll("unconnected_poll", l, POLLIN | POLLOUT);
    mode_t old = umask(022);
    T("bind", bind(l, (struct sockaddr *)&a, al));
    umask(old);
    struct stat st;
    T("stat_node", stat(sp("srv.sock"), &st));
    B("node_is_socket", S_ISSOCK(st.st_mode));
    P("node_mode %o\n", st.st_mode & 07777);
    socklen_t gl = sizeof got;
    T("getsockname", getsockname(l, (struct sockaddr *)&got, &gl));
    B("getsockname_len", gl == al);
    B("getsockname_path", strcmp(got.sun_path, a.sun_path) == 0);
    T("listen", listen(l, 5));
    V("acceptconn", get_int(l, SOL_SOCKET, SO_ACCEPTCONN));
    show_poll("listen_idle_poll", l, POLLIN);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    T("connect", connect(c, (struct sockaddr *)&a, al));
    /* Connected before accept: it may write at once. */
    V("write_before_accept", write(c, "early", 5));
    show_poll("listen_pending_poll", l, POLLIN);
    gl = sizeof got;
    memset(&got, 0x55, sizeof got);
    int s = accept(l, (struct sockaddr *)&got, &gl);
    T("accept", s);
    V("accept_addrlen", gl);
    V("accept_family", got.sun_family);
    V("read_early", read(s, buf, sizeof buf));
    gl = sizeof got;
    getsockname(s, (struct sockaddr *)&got, &gl);
    B("accepted_name_is_listener", gl == al && strcmp(got.sun_path, a.sun_path) == 0);
    gl = sizeof got;
    T("getpeername_accepted", getpeername(s, (struct sockaddr *)&got, &gl));
    V("getpeername_accepted_len", gl);
    gl = sizeof got;
    T("getpeername_client", getpeername(c, (struct sockaddr *)&got, &gl));
    B("client_peer_is_listener", gl == al && strcmp(got.sun_path, a.sun_path) == 0);
    gl = sizeof got;
    getsockname(c, (struct sockaddr *)&got, &gl);
    V("client_name_len", gl);
    /* recvfrom on the client names the server. */
    write(s, "hi", 2);
    gl = sizeof got;
    V("client_recvfrom", recvfrom(c, buf, sizeof buf, 0, (struct sockaddr *)&got, &gl));
    B("client_recvfrom_addr", gl == al && strcmp(got.sun_path, a.sun_path) == 0);
    struct ucred cr;
    socklen_t cl = sizeof cr;
    T("peercred_client", getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl));
    B("peercred_client_me", cr.pid == getpid() && cr.uid == geteuid() && cr.gid == getegid());
    cl = sizeof cr;
    T("peercred_accepted", getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl));
    B("peercred_accepted_me", cr.pid == getpid() && cr.uid == geteuid());
    E("connect_again", connect(c, (struct sockaddr *)&a, al), EISCONN);
    close(c);
    close(s);

    /* accept4 flags; a non-blocking listener. */
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(c2, (struct sockaddr *)&a, al);
    int s2 = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    T("accept4", s2);
    B("accept4_nonblock", fcntl(s2, F_GETFL) & O_NONBLOCK);
    B("accept4_cloexec", fcntl(s2, F_GETFD) & FD_CLOEXEC);
    E("accept4_nonblock_read", read(s2, buf, 1), EAGAIN);
    close(c2);
    close(s2);
    fcntl(l, F_SETFL, O_NONBLOCK);
    E("accept_nonblock_empty", accept(l, NULL, NULL), EAGAIN);
    fcntl(l, F_SETFL, 0);

    /* Unlinking the node does not unbind the listener, but the name is
     * gone for new connects; a new socket may bind it again. */
    int c3 = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(c3, (struct sockaddr *)&a, al);
    T("unlink_node", unlink(sp("srv.sock")));
    int c4 = socket(AF_UNIX, SOCK_STREAM, 0);
    E("connect_unlinked", connect(c4, (struct sockaddr *)&a, al), ENOENT);
    int s3 = accept(l, NULL, NULL);
    T("accept_after_unlink", s3);
    V("write_after_unlink", write(c3, "k", 1));
    V("read_after_unlink", read(s3, buf, 1));
    gl = sizeof got;
    getsockname(l, (struct sockaddr *)&got, &gl);
    B("name_kept_after_unlink", strcmp(got.sun_path, a.sun_path) == 0);
    int l2 = socket(AF_UNIX, SOCK_STREAM, 0);
    T("rebind_path", bind(l2, (struct sockaddr *)&a, al));
    T("listen_rebound", listen(l2, 1));
    T("connect_rebound", connect(c4, (struct sockaddr *)&a, al));
    close(c3);
    close(s3);
    close(c4);
    close(l2);

    /* Closing a listener resets connections it never accepted. */
    int c5 = socket(AF_UNIX, SOCK_STREAM, 0);
    int l3 = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a3;
    socklen_t al3 = un_path(&a3, sp("srv3.sock"));
    bind(l3, (struct sockaddr *)&a3, al3);
    listen(l3, 1);
    T("connect_l3", connect(c5, (struct sockaddr *)&a3, al3));
    close(l3);
    E("read_after_listener_closed", read(c5, buf, 1), ECONNRESET);
    V("read_after_listener_closed_eof", read(c5, buf, 1));
    E("connect_closed_listener", connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&a3, al3), ECONNREFUSED);
    close(c5);
    close(l);
}

static void backlog(void)
{
    struct sockaddr_un a;
    socklen_t al = un_path(&a, sp("backlog.sock"));
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&a, al);
    T("listen_1", listen(l, 1));
    int cs[4];
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        cs[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(cs[i], (struct sockaddr *)&a, al) == 0)
            ok++;
        else
            P("backlog_connect_%d err %s\n", i, errno_name(errno));
    }
    V("backlog_queued", ok);
    int s = accept(l, NULL, NULL);
    T("backlog_accept", s);
    T("backlog_connect_after_accept", connect(cs[3], (struct sockaddr *)&a, al));

    /* A blocking connect waits for room and goes on once one is taken. */
    pid_t pid = fork();
    if (pid == 0) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        int r = connect(c, (struct sockaddr *)&a, al);
        char ch = r == 0 ? 'y' : 'n';
        write(c, &ch, 1);
        _exit(0);
    }
    char ch = 0;
    int got = 0;
    for (int i = 0; i < 3; i++) {
        int t = accept(l, NULL, NULL);
        if (t < 0)
            break;
        got++;
        if (i == 2) {
            read(t, &ch, 1);
        }
        close(t);
    }
    V("backlog_accepted_more", got);
    P("blocked_connect_went_through %c\n", ch);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < 4; i++)
        close(cs[i]);
    close(s);
    close(l);
}

static void bulk(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    /* Fill the pipe without blocking: writes stop with EAGAIN and the
     * writer stops being writable. */
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    static char big[65536];
    memset(big, 'b', sizeof big);
    long total = 0;
    ssize_t w;
    while ((w = write(sv[0], big, sizeof big)) > 0)
        total += w;
    P("fill_stops_with %s\n", errno_name(errno));
    B("fill_took_some", total > 65536);
    show_poll("full_writer", sv[0], POLLOUT);
    show_poll("full_reader", sv[1], POLLIN);
    long drained = 0;
    ssize_t r;
    while ((r = recv(sv[1], big, sizeof big, MSG_DONTWAIT)) > 0)
        drained += r;
    B("drained_all", drained == total);
    show_poll("drained_writer", sv[0], POLLOUT);
    fcntl(sv[0], F_SETFL, 0);

    /* A megabyte from another process, with MSG_WAITALL on the reader. */
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[1]);
        static char out[1 << 20];
        for (size_t i = 0; i < sizeof out; i++)
            out[i] = (char)(i * 7);
        size_t off = 0;
        while (off < sizeof out) {
            ssize_t n = write(sv[0], out + off, sizeof out - off < 10000 ? sizeof out - off : 10000);
            if (n <= 0)
                _exit(1);
            off += (size_t)n;
        }
        _exit(0);
    }
    close(sv[0]);
    static char in[1 << 20];
    V("waitall_megabyte", recv(sv[1], in, sizeof in, MSG_WAITALL));
    int good = 1;
    for (size_t i = 0; i < sizeof in; i++)
        if (in[i] != (char)(i * 7))
            good = 0;
    B("megabyte_intact", good);
    int status;
    waitpid(pid, &status, 0);
    V("writer_status", WEXITSTATUS(status));
    V("eof_after_writer", read(sv[1], in, 10));
    close(sv[1]);
}

static void readiness(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = 7 };
    T("epoll_add", epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev));
    struct epoll_event out[2];
    V("epoll_idle", epoll_wait(ep, out, 2, 0));
    pid_t pid = fork();
    if (pid == 0) {
        write(sv[0], "w", 1);
        _exit(0);
    }
    int n = epoll_wait(ep, out, 2, 10000);
    V("epoll_woken", n);
    B("epoll_in", n == 1 && (out[0].events & EPOLLIN) && out[0].data.u32 == 7);
    waitpid(pid, NULL, 0);
    char c;
    read(sv[1], &c, 1);
    close(sv[0]);
    n = epoll_wait(ep, out, 2, 10000);
    B("epoll_rdhup", n == 1 && (out[0].events & EPOLLRDHUP) && (out[0].events & EPOLLHUP));
    /* A blocked poll wakes for a connection on a listener. */
    struct sockaddr_un a;
    socklen_t al = un_path(&a, sp("poll.sock"));
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&a, al);
    listen(l, 1);
    pid = fork();
    if (pid == 0) {
        int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
        connect(c2, (struct sockaddr *)&a, al);
        _exit(0);
    }
    B("listener_woken", wait_for(l, POLLIN) & POLLIN);
    waitpid(pid, NULL, 0);
    close(l);
    close(ep);
    close(sv[1]);
}

int main(int argc, char **argv)
{
    guest_init();
    alarm(60);
    guest_scratch(argc, argv);
    pair_basics();
    shutdowns();
    closes();
    listener();
    backlog();
    bulk();
    readiness();
    guest_cleanup();
    P("done\n");
    return 0;
}
