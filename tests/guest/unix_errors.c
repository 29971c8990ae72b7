/* AF_UNIX error returns: socket types and protocols, address lengths and
 * families, names in use, missing and wrong targets, calls in the wrong
 * state, options and ioctls, bad pointers and descriptors. */
#include "unix_common.h"
#include <netinet/in.h>
#include <sys/time.h>

static void creation(void)
{
    E("socket_bad_type", socket(AF_UNIX, 99, 0), EINVAL);
    E("socket_rdm", socket(AF_UNIX, SOCK_RDM, 0), ESOCKTNOSUPPORT);
    E("socket_bad_protocol", socket(AF_UNIX, SOCK_STREAM, 2), EPROTONOSUPPORT);
    int s = socket(AF_UNIX, SOCK_STREAM, PF_UNIX);
    T("socket_pf_unix", s);
    V("so_protocol", get_int(s, SOL_SOCKET, SO_PROTOCOL));
    close(s);
    s = socket(AF_UNIX, SOCK_RAW, 0);
    T("socket_raw", s);
    V("raw_is_dgram", get_int(s, SOL_SOCKET, SO_TYPE));
    close(s);
    E("socket_bad_flags", socket(AF_UNIX, SOCK_STREAM | 0x100000, 0), EINVAL);
    E("socket_bad_family", socket(99, SOCK_STREAM, 0), EAFNOSUPPORT);
    int sv[2];
    E("socketpair_bad_protocol", socketpair(AF_UNIX, SOCK_DGRAM, 5, sv), EPROTONOSUPPORT);
    E("socketpair_inet", socketpair(AF_INET, SOCK_STREAM, 0, sv), EOPNOTSUPP);
    E("socketpair_efault", socketpair(AF_UNIX, SOCK_STREAM, 0, BADPTR), EFAULT);
    T("socketpair_nonblock", socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
    B("pair_nonblock", fcntl(sv[1], F_GETFL) & O_NONBLOCK);
    B("pair_cloexec", fcntl(sv[1], F_GETFD) & FD_CLOEXEC);
    char c;
    E("pair_nonblock_recv", recv(sv[1], &c, 1, 0), EAGAIN);
    close(sv[0]);
    close(sv[1]);
}

static void binding(void)
{
    struct sockaddr_un a;
    socklen_t al = un_path(&a, sp("b.sock"));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    E("bind_len0", bind(s, (struct sockaddr *)&a, 0), EINVAL);
    E("bind_len1", bind(s, (struct sockaddr *)&a, 1), EINVAL);
    E("bind_len111", bind(s, (struct sockaddr *)&a, 111), EINVAL);
    E("bind_len200", bind(s, (struct sockaddr *)&a, 200), EINVAL);
    struct sockaddr_in in = { .sin_family = AF_INET };
    E("bind_inet_family", bind(s, (struct sockaddr *)&in, sizeof in), EINVAL);
    E("bind_efault", bind(s, BADPTR, al), EFAULT);
    struct sockaddr_un m;
    socklen_t ml = un_path(&m, sp("no/such/dir.sock"));
    E("bind_missing_dir", bind(s, (struct sockaddr *)&m, ml), ENOENT);
    write_file(sp("file"), "x", 0600);
    ml = un_path(&m, sp("file/x.sock"));
    E("bind_enotdir", bind(s, (struct sockaddr *)&m, ml), ENOTDIR);
    ml = un_path(&m, sp("file"));
    E("bind_existing_file", bind(s, (struct sockaddr *)&m, ml), EADDRINUSE);
    T("bind", bind(s, (struct sockaddr *)&a, al));
    struct sockaddr_un a2;
    socklen_t al2 = un_path(&a2, sp("b2.sock"));
    E("bind_twice", bind(s, (struct sockaddr *)&a2, al2), EINVAL);
    int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
    E("bind_in_use", bind(s2, (struct sockaddr *)&a, al), EADDRINUSE);
    /* A relative path of 108 bytes without its NUL fills sun_path; the
     * name Linux reports is one longer than struct sockaddr_un. */
    char here[4096];
    getcwd(here, sizeof here);
    chdir(guest_scratch_buf);
    struct sockaddr_un full;
    memset(&full, 0, sizeof full);
    full.sun_family = AF_UNIX;
    memset(full.sun_path, 'L', sizeof full.sun_path);
    int s4 = socket(AF_UNIX, SOCK_DGRAM, 0);
    T("bind_unterminated_108", bind(s4, (struct sockaddr *)&full, sizeof full));
    struct sockaddr_storage ss;
    socklen_t ssl = sizeof ss;
    getsockname(s4, (struct sockaddr *)&ss, &ssl);
    V("unterminated_name_len", ssl);
    close(s4);
    chdir(here);
    struct sockaddr_un ab;
    socklen_t abl = un_abs(&ab, "err");
    T("bind_abstract", bind(s2, (struct sockaddr *)&ab, abl));
    int s5 = socket(AF_UNIX, SOCK_STREAM, 0);
    E("bind_abstract_in_use", bind(s5, (struct sockaddr *)&ab, abl), EADDRINUSE);
    close(s5);
    /* Abstract names are per socket type. */
    int s3 = socket(AF_UNIX, SOCK_DGRAM, 0);
    T("bind_abstract_other_type", bind(s3, (struct sockaddr *)&ab, abl));
    close(s3);
    s3 = socket(AF_UNIX, SOCK_DGRAM, 0);
    E("sendto_abstract_other_type", sendto(s3, "x", 1, 0, (struct sockaddr *)&ab, abl), ECONNREFUSED);
    int reg = open(sp("file"), O_RDONLY);
    E("bind_enotsock", bind(reg, (struct sockaddr *)&a2, al2), ENOTSOCK);
    E("bind_ebadf", bind(9999, (struct sockaddr *)&a2, al2), EBADF);
    /* Names: getsockname truncates to the buffer and reports the length. */
    struct sockaddr_un got;
    socklen_t gl = 4;
    memset(&got, 0, sizeof got);
    T("getsockname_short", getsockname(s, (struct sockaddr *)&got, &gl));
    B("getsockname_short_len", gl == al);
    B("getsockname_short_cut", got.sun_path[2] == 0);
    E("getsockname_efault", getsockname(s, (struct sockaddr *)&got, BADPTR), EFAULT);
    E("getpeername_unconnected", getpeername(s, (struct sockaddr *)&got, &gl), ENOTCONN);
    close(reg);
    close(s);
    close(s2);
    close(s3);
}

static void connecting(void)
{
    struct sockaddr_un a, m;
    socklen_t al = un_path(&a, sp("c.sock"));
    socklen_t ml;
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    ml = un_path(&m, sp("missing.sock"));
    E("connect_enoent", connect(c, (struct sockaddr *)&m, ml), ENOENT);
    ml = un_path(&m, sp("file"));
    E("connect_regular_file", connect(c, (struct sockaddr *)&m, ml), ECONNREFUSED);
    ml = un_abs(&m, "nobody");
    E("connect_abstract_nobody", connect(c, (struct sockaddr *)&m, ml), ECONNREFUSED);
    E("connect_len2", connect(c, (struct sockaddr *)&a, 2), EINVAL);
    struct sockaddr_in in = { .sin_family = AF_INET };
    E("connect_inet_family", connect(c, (struct sockaddr *)&in, sizeof in), EINVAL);
    struct sockaddr unspec = { .sa_family = AF_UNSPEC };
    E("connect_stream_unspec", connect(c, &unspec, sizeof unspec), EINVAL);
    E("connect_efault", connect(c, BADPTR, al), EFAULT);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&a, al);
    E("connect_not_listening", connect(c, (struct sockaddr *)&a, al), ECONNREFUSED);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    E("listen_dgram", listen(d, 1), EOPNOTSUPP);
    E("accept_dgram", accept(d, NULL, NULL), EOPNOTSUPP);
    E("connect_dgram_to_stream", connect(d, (struct sockaddr *)&a, al), EPROTOTYPE);
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    E("listen_unbound", listen(u, 1), EINVAL);
    E("accept_unlistened", accept(l, NULL, NULL), EINVAL);
    T("listen", listen(l, 1));
    T("listen_again", listen(l, 3));
    E("connect_from_listener", connect(l, (struct sockaddr *)&a, al), EINVAL);
    T("connect", connect(c, (struct sockaddr *)&a, al));
    E("connect_twice", connect(c, (struct sockaddr *)&a, al), EISCONN);
    E("listen_connected", listen(c, 1), EINVAL);
    E("accept4_bad_flags", accept4(l, NULL, NULL, 0x4), EINVAL);
    /* accept with an unwritable address: the connection is dropped. */
    socklen_t bl = sizeof m;
    E("accept_efault", accept(l, BADPTR, &bl), EFAULT);
    char ch;
    V("client_sees_end", read(c, &ch, 1));
    close(c);
    close(d);
    close(u);
    close(l);
}

static void data_errors(void)
{
    struct sockaddr_un a;
    socklen_t al = un_path(&a, sp("d.sock"));
    char buf[8];
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    E("send_unconnected", send(s, "x", 1, 0), ENOTCONN);
    E("sendto_unconnected_stream", sendto(s, "x", 1, 0, (struct sockaddr *)&a, al), EOPNOTSUPP);
    E("recv_unconnected_stream", recv(s, buf, 1, MSG_DONTWAIT), EINVAL);
    E("write_unconnected", write(s, "x", 1), ENOTCONN);
    T("shutdown_unconnected", shutdown(s, SHUT_RDWR));
    E("shutdown_bad_how", shutdown(s, 3), EINVAL);
    E("shutdown_enotsock", shutdown(0 + open("/", O_RDONLY), SHUT_RD), ENOTSOCK);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    E("sendto_connected_stream", sendto(sv[0], "x", 1, 0, (struct sockaddr *)&a, al), EISCONN);
    E("send_efault", send(sv[0], BADPTR, 4, 0), EFAULT);
    V("send_zero", send(sv[0], "", 0, 0));
    write(sv[0], "abcd", 4);
    E("recv_efault", recv(sv[1], BADPTR, 4, 0), EFAULT);
    close(sv[0]);
    close(sv[1]);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_in in = { .sin_family = AF_INET };
    E("sendto_inet_family", sendto(d, "x", 1, 0, (struct sockaddr *)&in, sizeof in), EINVAL);
    E("sendto_len2", sendto(d, "x", 1, 0, (struct sockaddr *)&a, 2), EINVAL);
    E("send_oob_dgram", sendto(d, "x", 1, MSG_OOB, (struct sockaddr *)&a, al), EOPNOTSUPP);
    E("recv_oob_dgram", recv(d, buf, 1, MSG_OOB), EOPNOTSUPP);
    E("sendmsg_efault", sendmsg(d, BADPTR, 0), EFAULT);
    E("recvmsg_efault", recvmsg(d, BADPTR, MSG_DONTWAIT), EFAULT);
    E("send_enotsock", send(0 + open("/", O_RDONLY), "x", 1, 0), ENOTSOCK);
    close(d);
}

static void options(void)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int v = 1;
    socklen_t l = sizeof v;
    E("setsockopt_sol_tcp", setsockopt(s, IPPROTO_TCP, 1, &v, sizeof v), EOPNOTSUPP);
    E("getsockopt_sol_tcp", getsockopt(s, IPPROTO_TCP, 1, &v, &l), EOPNOTSUPP);
    E("setsockopt_unknown", setsockopt(s, SOL_SOCKET, 1000, &v, sizeof v), ENOPROTOOPT);
    E("getsockopt_unknown", getsockopt(s, SOL_SOCKET, 1000, &v, &l), ENOPROTOOPT);
    E("setsockopt_peercred", setsockopt(s, SOL_SOCKET, SO_PEERCRED, &v, sizeof v), ENOPROTOOPT);
    E("setsockopt_short", setsockopt(s, SOL_SOCKET, SO_PASSCRED, &v, 2), EINVAL);
    E("setsockopt_efault", setsockopt(s, SOL_SOCKET, SO_PASSCRED, BADPTR, sizeof v), EFAULT);
    l = sizeof v;
    E("getsockopt_efault", getsockopt(s, SOL_SOCKET, SO_TYPE, BADPTR, &l), EFAULT);
    struct ucred cr;
    socklen_t cl = sizeof cr;
    T("peercred_unconnected", getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl));
    P("peercred_unconnected %d %d %d len %u\n", cr.pid, (int)cr.uid, (int)cr.gid, cl);
    V("so_error", get_int(s, SOL_SOCKET, SO_ERROR));
    T("sndbuf_set", set_int(s, SOL_SOCKET, SO_SNDBUF, 100000));
    V("sndbuf_doubled", get_int(s, SOL_SOCKET, SO_SNDBUF));
    T("rcvbuf_set_tiny", set_int(s, SOL_SOCKET, SO_RCVBUF, 1));
    V("rcvbuf_floor", get_int(s, SOL_SOCKET, SO_RCVBUF));
    T("passcred_set", set_int(s, SOL_SOCKET, SO_PASSCRED, 5));
    V("passcred_get", get_int(s, SOL_SOCKET, SO_PASSCRED));
    V("fionread_unconnected", ioctl_int(s, FIONREAD));
    V("siocoutq_unconnected", ioctl_int(s, SIOCOUTQ));
    E("ioctl_unknown", ioctl(s, 0x5401 /* TCGETS */, &v), ENOTTY);
    struct sockaddr_un a;
    socklen_t al = un_abs(&a, "ioctl");
    bind(s, (struct sockaddr *)&a, al);
    listen(s, 1);
    E("fionread_listener", ioctl(s, FIONREAD, &v), EINVAL);
    cl = sizeof cr;
    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl);
    B("listener_peercred_is_me", cr.pid == getpid() && cr.uid == geteuid());
    close(s);
}

static void on_alarm(int s)
{
    (void)s;
}

/* Blocking calls end with EINTR when a handler without SA_RESTART runs,
 * and with EAGAIN when SO_RCVTIMEO/SO_SNDTIMEO pass. */
static void interrupted(void)
{
    struct sigaction sa = { 0 };
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, 0 }, { 0, 50000 } };
    int sv[2];
    char buf[4];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    setitimer(ITIMER_REAL, &it, NULL);
    E("recv_interrupted", recv(sv[0], buf, sizeof buf, 0), EINTR);
    write(sv[1], "ab", 2);
    setitimer(ITIMER_REAL, &it, NULL);
    V("waitall_interrupted_keeps_data", recv(sv[0], buf, sizeof buf, MSG_WAITALL));
    struct sockaddr_un a;
    socklen_t al = un_abs(&a, "intr");
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&a, al);
    listen(l, 0);
    setitimer(ITIMER_REAL, &it, NULL);
    E("accept_interrupted", accept(l, NULL, NULL), EINTR);
    int c1 = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(c1, (struct sockaddr *)&a, al);
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    setitimer(ITIMER_REAL, &it, NULL);
    E("connect_full_interrupted", connect(c2, (struct sockaddr *)&a, al), EINTR);
    struct timeval tv = { 0, 30000 };
    setsockopt(c2, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    E("connect_full_timeout", connect(c2, (struct sockaddr *)&a, al), EAGAIN);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    E("recv_timeout", recv(sv[0], buf, sizeof buf, 0), EAGAIN);
    int l2 = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l2, (struct sockaddr *)&a, 2);
    listen(l2, 1);
    setsockopt(l2, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    E("accept_timeout", accept(l2, NULL, NULL), EAGAIN);
    signal(SIGALRM, SIG_DFL);
    close(sv[0]);
    close(sv[1]);
    close(c1);
    close(c2);
    close(l);
    close(l2);
}

int main(int argc, char **argv)
{
    guest_init();
    alarm(60);
    guest_scratch(argc, argv);
    creation();
    binding();
    connecting();
    data_errors();
    options();
    interrupted();
    guest_cleanup();
    P("done\n");
    return 0;
}
