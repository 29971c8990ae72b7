/* SCM_RIGHTS and SCM_CREDENTIALS on unix sockets: passing descriptors
 * (within a process, to and from a child, a socket passing itself),
 * truncation, descriptors never received, where a stream read stops,
 * SO_PASSCRED and autobind, SO_PEERCRED across processes. */
#include "unix_common.h"

static void rights_basics(void)
{
    int sv[2], p[2];
    char buf[16];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(p);
    int f = open(sp("file"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    int fds[2] = { p[1], f };
    V("send_two_fds", send_fds(sv[0], fds, 2, "x", 1, 0));
    struct got g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    V("recv_with_fds", g.n);
    V("received_fds", g.nfds);
    V("received_cmsgs", g.ncmsg);
    if (g.nfds == 2) {
        V("write_through_passed_pipe", write(g.fds[0], "via", 3));
        V("read_original_pipe", read(p[0], buf, sizeof buf));
        V("write_passed_file", write(g.fds[1], "12345", 5));
        V("shared_offset", lseek(f, 0, SEEK_CUR));
        close(g.fds[0]);
        close(g.fds[1]);
    }
    /* Two SCM_RIGHTS messages in one sendmsg arrive as one. */
    union {
        char b[CMSG_SPACE(sizeof(int)) * 2];
        struct cmsghdr align;
    } cb;
    memset(&cb, 0, sizeof cb);
    struct iovec iov = { (void *)"y", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof cb.b };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[1], sizeof(int));
    c = CMSG_NXTHDR(&m, c);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &f, sizeof(int));
    V("send_two_cmsgs", sendmsg(sv[0], &m, 0));
    g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    P("two_cmsgs_arrive_as %d cmsg %d fds\n", g.ncmsg, g.nfds);
    for (int i = 0; i < g.nfds; i++)
        close(g.fds[i]);
    /* Room for one descriptor of two: MSG_CTRUNC, the other is closed. */
    send_fds(sv[0], fds, 2, "z", 1, 0);
    g = recv_all(sv[1], buf, sizeof buf, 0, CMSG_LEN(sizeof(int)));
    P("ctrunc_fds %d flag %s\n", g.nfds, (g.flags & MSG_CTRUNC) ? "yes" : "no");
    for (int i = 0; i < g.nfds; i++)
        close(g.fds[i]);
    /* No control buffer at all. */
    send_fds(sv[0], fds, 1, "w", 1, 0);
    g = recv_all(sv[1], buf, sizeof buf, 0, 0);
    P("no_buffer_fds %d flag %s\n", g.nfds, (g.flags & MSG_CTRUNC) ? "yes" : "no");
    /* MSG_CMSG_CLOEXEC. */
    send_fds(sv[0], fds, 1, "v", 1, 0);
    g = recv_all(sv[1], buf, sizeof buf, MSG_CMSG_CLOEXEC, 256);
    B("cmsg_cloexec", g.nfds == 1 && (fcntl(g.fds[0], F_GETFD) & FD_CLOEXEC));
    if (g.nfds)
        close(g.fds[0]);
    /* A peek passes the descriptors too; the read passes them again. */
    send_fds(sv[0], fds, 1, "pk", 2, 0);
    g = recv_all(sv[1], buf, sizeof buf, MSG_PEEK, 256);
    P("peek_fds %d bytes %zd\n", g.nfds, g.n);
    int peeked = g.nfds ? g.fds[0] : -1;
    g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    P("read_after_peek_fds %d bytes %zd distinct %s\n", g.nfds, g.n, g.nfds && g.fds[0] != peeked ? "yes" : "no");
    if (g.nfds)
        close(g.fds[0]);
    if (peeked >= 0)
        close(peeked);
    /* Errors: a closed descriptor, too many, nothing to carry them on a stream. */
    int bad = 999;
    E("send_ebadf", send_fds(sv[0], &bad, 1, "b", 1, 0), EBADF);
    static int many[300];
    for (int i = 0; i < 300; i++)
        many[i] = f;
    struct msghdr mm = { .msg_iov = &iov, .msg_iovlen = 1 };
    static char big[CMSG_SPACE(sizeof many)];
    mm.msg_control = big;
    mm.msg_controllen = CMSG_SPACE(254 * sizeof(int));
    c = CMSG_FIRSTHDR(&mm);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(254 * sizeof(int));
    memcpy(CMSG_DATA(c), many, 254 * sizeof(int));
    E("send_254_fds", sendmsg(sv[0], &mm, 0), EINVAL);
    V("send_fd_no_data", send_fds(sv[0], fds, 1, "", 0, 0));
    E("nothing_arrived", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    close(f);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

static void stream_boundaries(void)
{
    int sv[2], p[2];
    char buf[16];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(p);
    /* A read stops after the piece that carried descriptors... */
    send_fds(sv[0], &p[0], 1, "ab", 2, 0);
    write(sv[0], "cd", 2);
    struct got g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    P("fd_piece_read %zd fds %d\n", g.n, g.nfds);
    if (g.nfds)
        close(g.fds[0]);
    g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    P("next_piece_read %zd fds %d\n", g.n, g.nfds);
    /* ...but takes the plain bytes before it along. */
    write(sv[0], "xy", 2);
    send_fds(sv[0], &p[0], 1, "zw", 2, 0);
    write(sv[0], "after", 5);
    g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    P("glued_read %zd fds %d\n", g.n, g.nfds);
    if (g.nfds)
        close(g.fds[0]);
    V("rest_read", read(sv[1], buf, sizeof buf));
    /* Descriptors at the start of a piece come with its first byte. */
    send_fds(sv[0], &p[0], 1, "long", 4, 0);
    g = recv_all(sv[1], buf, 1, 0, 256);
    P("first_byte_fds %d\n", g.nfds);
    if (g.nfds)
        close(g.fds[0]);
    g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    P("rest_of_piece %zd fds %d\n", g.n, g.nfds);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

static void unreceived_and_cycles(void)
{
    int sv[2], p[2];
    char c;
    /* A descriptor that is never received is closed with the socket:
     * the pipe's only writer was in flight, so the reader sees EOF. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(p);
    send_fds(sv[0], &p[1], 1, "x", 1, 0);
    close(p[1]);
    close(sv[1]);
    V("in_flight_writer_closed_eof", read(p[0], &c, 1));
    close(p[0]);
    close(sv[0]);

    /* A socket passing itself: received and used, then everything closed. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    V("send_self", send_fds(sv[0], &sv[0], 1, "s", 1, 0));
    close(sv[0]);
    char buf[8];
    struct got g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    V("self_fds", g.nfds);
    if (g.nfds) {
        V("write_via_passed_self", write(g.fds[0], "t", 1));
        V("read_it", read(sv[1], buf, sizeof buf));
        close(g.fds[0]);
        V("eof_after_last_ref", read(sv[1], buf, sizeof buf));
    }
    close(sv[1]);

    /* Cycles that are never read (a socket in its own queue, two in each
     * other's) must not hang the closes. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    send_fds(sv[0], &sv[1], 1, "c", 1, 0);
    send_fds(sv[1], &sv[0], 1, "c", 1, 0);
    T("close_cycle_a", close(sv[0]));
    T("close_cycle_b", close(sv[1]));
    int d[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, d);
    send_fds(d[0], &d[1], 1, "d", 1, 0);
    T("close_self_queue_a", close(d[0]));
    T("close_self_queue_b", close(d[1]));
}

static void between_processes(void)
{
    int sv[2];
    char buf[32];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child makes a pipe, sends its read end, writes into it. */
        close(sv[0]);
        int p[2];
        pipe(p);
        send_fds(sv[1], &p[0], 1, "r", 1, 0);
        close(p[0]);
        write(p[1], "from child", 10);
        close(p[1]);
        /* And takes a descriptor from the parent. */
        struct got g = recv_all(sv[1], buf, sizeof buf, 0, 256);
        if (g.nfds == 1) {
            write(g.fds[0], "child wrote", 11);
            _exit(0);
        }
        _exit(1);
    }
    struct got g = recv_all(sv[0], buf, sizeof buf, 0, 256);
    V("parent_got_fds", g.nfds);
    if (g.nfds == 1) {
        ssize_t n = read(g.fds[0], buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        P("parent_read '%s'\n", buf);
        V("parent_read_eof", read(g.fds[0], buf, sizeof buf));
        close(g.fds[0]);
    }
    int p[2];
    pipe(p);
    send_fds(sv[0], &p[1], 1, "w", 1, 0);
    close(p[1]);
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    P("child_wrote '%s'\n", buf);
    int status;
    waitpid(pid, &status, 0);
    V("child_status", WEXITSTATUS(status));
    close(p[0]);
    close(sv[0]);
    close(sv[1]);
}

static void credentials(void)
{
    int sv[2];
    char buf[16];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], "a", 1);
    struct got g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    P("no_passcred cmsgs %d\n", g.ncmsg);
    T("passcred_on", set_int(sv[1], SOL_SOCKET, SO_PASSCRED, 1));
    V("passcred_get", get_int(sv[1], SOL_SOCKET, SO_PASSCRED));
    write(sv[0], "b", 1);
    g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    B("cred_is_mine", g.have_cred && g.cred.pid == getpid() && g.cred.uid == geteuid() && g.cred.gid == getegid());
    /* Explicit SCM_CREDENTIALS with our own identity. */
    union {
        char b[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } cb;
    memset(&cb, 0, sizeof cb);
    struct iovec iov = { (void *)"e", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof cb.b };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred me = { getpid(), geteuid(), getegid() };
    memcpy(CMSG_DATA(c), &me, sizeof me);
    V("send_explicit_creds", sendmsg(sv[0], &m, 0));
    g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    B("explicit_cred_back", g.have_cred && g.cred.pid == getpid());
    /* Sends from two processes through one socket are not glued when
     * credentials are asked for. */
    send(sv[0], "p", 1, 0);
    pid_t pid = fork();
    if (pid == 0) {
        send(sv[0], "c", 1, 0);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    B("parent_piece", g.n == 1 && buf[0] == 'p' && g.cred.pid == getpid());
    g = recv_all(sv[1], buf, sizeof buf, 0, 256);
    B("child_piece", g.n == 1 && buf[0] == 'c' && g.cred.pid == pid);
    set_int(sv[1], SOL_SOCKET, SO_PASSCRED, 0);
    send(sv[0], "p", 1, 0);
    pid = fork();
    if (pid == 0) {
        send(sv[0], "c", 1, 0);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    V("glued_without_passcred", recv(sv[1], buf, sizeof buf, 0));
    close(sv[0]);
    close(sv[1]);

    /* SO_PASSCRED before connect autobinds; SO_PEERCRED across fork. */
    struct sockaddr_un a;
    socklen_t al = un_path(&a, sp("cred.sock"));
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&a, al);
    listen(l, 1);
    pid = fork();
    if (pid == 0) {
        int cl = socket(AF_UNIX, SOCK_STREAM, 0);
        set_int(cl, SOL_SOCKET, SO_PASSCRED, 1);
        if (connect(cl, (struct sockaddr *)&a, al) < 0)
            _exit(1);
        struct sockaddr_un n;
        socklen_t nl = sizeof n;
        getsockname(cl, (struct sockaddr *)&n, &nl);
        struct ucred pc;
        socklen_t pcl = sizeof pc;
        getsockopt(cl, SOL_SOCKET, SO_PEERCRED, &pc, &pcl);
        char r = (char)('0' + (nl == 8 && n.sun_path[0] == 0) + 2 * (pc.pid == getppid()));
        write(cl, &r, 1);
        _exit(0);
    }
    int s = accept(l, NULL, NULL);
    struct ucred pc;
    socklen_t pcl = sizeof pc;
    T("peercred_accepted", getsockopt(s, SOL_SOCKET, SO_PEERCRED, &pc, &pcl));
    B("peercred_is_child", pc.pid == pid && pc.uid == geteuid());
    V("peercred_len", pcl);
    char r = 0;
    read(s, &r, 1);
    P("child_autobound_and_saw_parent %c\n", r);
    waitpid(pid, NULL, 0);
    close(s);
    close(l);
}

int main(int argc, char **argv)
{
    guest_init();
    alarm(60);
    guest_scratch(argc, argv);
    rights_basics();
    stream_boundaries();
    unreceived_and_cycles();
    between_processes();
    credentials();
    guest_cleanup();
    P("done\n");
    return 0;
}
