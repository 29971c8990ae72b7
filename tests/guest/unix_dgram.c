/* AF_UNIX SOCK_DGRAM: message boundaries, MSG_TRUNC, sendto a path or an
 * abstract name, autobind, connect and disconnect, the receive queue limit,
 * EMSGSIZE, closed and shut-down peers, readiness, SO_TIMESTAMP. */
#define _GNU_SOURCE
#include "unix_common.h"
#include <ctype.h>
#include <sys/time.h>

static void pair(void)
{
    int sv[2];
    char buf[64];
    T("socketpair", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    V("so_type", get_int(sv[0], SOL_SOCKET, SO_TYPE));
    show_poll("pair_idle", sv[0], POLLIN | POLLOUT);
    V("send_ab", send(sv[0], "ab", 2, 0));
    V("send_cde", send(sv[0], "cde", 3, 0));
    V("send_empty", send(sv[0], "", 0, 0));
    show_poll("pair_data", sv[1], POLLIN | POLLOUT);
    V("fionread_first", ioctl_int(sv[1], FIONREAD));
    V("recv_ab", recv(sv[1], buf, sizeof buf, 0));
    V("peek_cde", recv(sv[1], buf, sizeof buf, MSG_PEEK));
    struct got g = recv_all(sv[1], buf, 1, MSG_TRUNC, 0);
    V("recv_trunc_ret", g.n);
    B("recv_trunc_flag", g.flags & MSG_TRUNC);
    V("recv_empty_msg", recv(sv[1], buf, sizeof buf, 0));
    V("recv_none", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    send(sv[0], "xyz", 3, 0);
    g = recv_all(sv[1], buf, 2, 0, 0);
    V("recv_cut", g.n);
    B("recv_cut_flag", g.flags & MSG_TRUNC);
    V("rest_discarded", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    /* sendmmsg / recvmmsg. */
    struct mmsghdr mm[3];
    struct iovec iov[3];
    char bufs[3][8];
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        iov[i].iov_base = (void *)"123";
        iov[i].iov_len = (size_t)i + 1;
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    V("sendmmsg", sendmmsg(sv[0], mm, 3, 0));
    for (int i = 0; i < 3; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof bufs[i];
    }
    V("recvmmsg", recvmmsg(sv[1], mm, 3, MSG_DONTWAIT, NULL));
    P("recvmmsg_lens %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
    /* The peer goes away: sends are refused once, then not connected;
     * reads just find nothing. */
    close(sv[1]);
    E("send_closed_peer", send(sv[0], "x", 1, 0), ECONNREFUSED);
    E("send_after_refused", send(sv[0], "x", 1, 0), ENOTCONN);
    E("recv_closed_peer", recv(sv[0], buf, 1, MSG_DONTWAIT), EAGAIN);
    show_poll("closed_pair_poll", sv[0], POLLIN | POLLOUT);
    close(sv[0]);
}

static void named(void)
{
    struct sockaddr_un ra, sa, from;
    socklen_t ral = un_path(&ra, sp("recv.sock"));
    socklen_t sal = un_path(&sa, sp("send.sock"));
    char buf[64];
    int r = socket(AF_UNIX, SOCK_DGRAM, 0);
    T("bind_recv", bind(r, (struct sockaddr *)&ra, ral));
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    E("send_unconnected", send(s, "x", 1, 0), ENOTCONN);
    V("sendto_unnamed", sendto(s, "one", 3, 0, (struct sockaddr *)&ra, ral));
    socklen_t fl = sizeof from;
    V("recvfrom_unnamed", recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    V("recvfrom_unnamed_len", fl);
    T("bind_send", bind(s, (struct sockaddr *)&sa, sal));
    V("sendto_named", sendto(s, "two", 3, 0, (struct sockaddr *)&ra, ral));
    fl = sizeof from;
    V("recvfrom_named", recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    B("recvfrom_named_addr", fl == sal && strcmp(from.sun_path, sa.sun_path) == 0);
    /* connect: a default destination; getpeername; AF_UNSPEC undoes it. */
    T("connect", connect(s, (struct sockaddr *)&ra, ral));
    fl = sizeof from;
    T("getpeername", getpeername(s, (struct sockaddr *)&from, &fl));
    B("getpeername_addr", fl == ral && strcmp(from.sun_path, ra.sun_path) == 0);
    V("send_connected", send(s, "three", 5, 0));
    V("recv_connected", recv(r, buf, sizeof buf, 0));
    /* r is not connected back, so others may still send to it; but a
     * socket connected elsewhere takes nothing from strangers. */
    int o = socket(AF_UNIX, SOCK_DGRAM, 0);
    V("stranger_to_unconnected", sendto(o, "s", 1, 0, (struct sockaddr *)&ra, ral));
    recv(r, buf, sizeof buf, 0);
    T("connect_r_to_s", connect(r, (struct sockaddr *)&sa, sal));
    E("stranger_to_connected", sendto(o, "s", 1, 0, (struct sockaddr *)&ra, ral), EPERM);
    E("connect_stranger_to_connected", connect(o, (struct sockaddr *)&ra, ral), EPERM);
    struct sockaddr sunspec = { .sa_family = AF_UNSPEC };
    T("disconnect_r", connect(r, &sunspec, sizeof sunspec));
    T("disconnect", connect(s, &sunspec, sizeof sunspec));
    E("send_disconnected", send(s, "x", 1, 0), ENOTCONN);
    fl = sizeof from;
    E("getpeername_disconnected", getpeername(s, (struct sockaddr *)&from, &fl), ENOTCONN);
    T("disconnect_again", connect(s, &sunspec, sizeof sunspec));
    /* Errors by address. */
    struct sockaddr_un bad;
    socklen_t bl = un_path(&bad, sp("missing.sock"));
    E("sendto_missing", sendto(s, "x", 1, 0, (struct sockaddr *)&bad, bl), ENOENT);
    write_file(sp("plain"), "x", 0600);
    bl = un_path(&bad, sp("plain"));
    E("sendto_regular_file", sendto(s, "x", 1, 0, (struct sockaddr *)&bad, bl), ECONNREFUSED);
    int st = socket(AF_UNIX, SOCK_STREAM, 0);
    bl = un_path(&bad, sp("stream.sock"));
    bind(st, (struct sockaddr *)&bad, bl);
    E("sendto_stream_socket", sendto(s, "x", 1, 0, (struct sockaddr *)&bad, bl), EPROTOTYPE);
    E("connect_stream_socket", connect(s, (struct sockaddr *)&bad, bl), EPROTOTYPE);
    close(st);
    E("sendto_closed_socket", sendto(s, "x", 1, 0, (struct sockaddr *)&bad, bl), ECONNREFUSED);
    /* Shut down for reading: senders get EPIPE; our own reads end. */
    T("shut_rd", shutdown(r, SHUT_RD));
    E("sendto_shut_rd", sendto(s, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&ra, ral), EPIPE);
    E("recv_shut_rd_nonblock", recv(r, buf, 1, MSG_DONTWAIT), EAGAIN);
    V("recv_shut_rd_block", recv(r, buf, 1, 0));
    show_poll("shut_rd_poll", r, POLLIN | POLLOUT | POLLRDHUP);
    T("shut_wr", shutdown(s, SHUT_WR));
    E("send_shut_wr", sendto(s, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&ra, ral), EPIPE);
    T("shut_wr_r", shutdown(r, SHUT_WR));
    show_poll("shut_both_poll", r, POLLIN | POLLOUT | POLLRDHUP);
    close(r);
    close(s);
    close(o);
}

static void abstract_names(void)
{
    struct sockaddr_un a, got;
    socklen_t al = un_abs(&a, "dg");
    char buf[16];
    int r = socket(AF_UNIX, SOCK_DGRAM, 0);
    T("bind_abstract", bind(r, (struct sockaddr *)&a, al));
    socklen_t gl = sizeof got;
    getsockname(r, (struct sockaddr *)&got, &gl);
    B("abstract_name_back", gl == al && memcmp(&got, &a, al) == 0);
    int r2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    E("bind_abstract_taken", bind(r2, (struct sockaddr *)&a, al), EADDRINUSE);
    /* Every byte of the name counts: one byte shorter is another name. */
    E("sendto_abstract_prefix", sendto(r2, "x", 1, 0, (struct sockaddr *)&a, al - 1), ECONNREFUSED);
    V("sendto_abstract", sendto(r2, "hey", 3, 0, (struct sockaddr *)&a, al));
    V("recv_abstract", recv(r, buf, sizeof buf, 0));
    close(r);
    E("sendto_abstract_released", sendto(r2, "x", 1, 0, (struct sockaddr *)&a, al), ECONNREFUSED);
    T("bind_abstract_freed", bind(r2, (struct sockaddr *)&a, al));
    close(r2);

    /* Autobind: five hex digits in the abstract namespace. */
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un fam = { .sun_family = AF_UNIX };
    T("autobind", bind(s, (struct sockaddr *)&fam, sizeof(sa_family_t)));
    gl = sizeof got;
    getsockname(s, (struct sockaddr *)&got, &gl);
    V("autobind_len", gl);
    int hex = got.sun_path[0] == 0;
    for (int i = 1; i <= 5; i++)
        hex = hex && isxdigit((unsigned char)got.sun_path[i]) && !isupper((unsigned char)got.sun_path[i]);
    B("autobind_hex", hex);
    T("autobind_again", bind(s, (struct sockaddr *)&fam, sizeof(sa_family_t)));
    struct sockaddr_un p;
    socklen_t pl = un_path(&p, sp("after-autobind.sock"));
    E("bind_after_autobind", bind(s, (struct sockaddr *)&p, pl), EINVAL);
    /* An unbound SO_PASSCRED sender is autobound by sendto. */
    int q = socket(AF_UNIX, SOCK_DGRAM, 0);
    set_int(q, SOL_SOCKET, SO_PASSCRED, 1);
    V("sendto_passcred", sendto(q, "p", 1, 0, (struct sockaddr *)&got, gl));
    struct sockaddr_un qn;
    socklen_t ql = sizeof qn;
    getsockname(q, (struct sockaddr *)&qn, &ql);
    V("passcred_sender_autobound_len", ql);
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    B("recvfrom_autobound", fl == ql && memcmp(&from, &qn, ql) == 0);
    close(q);
    close(s);
}

static void limits(void)
{
    struct sockaddr_un ra;
    socklen_t ral = un_abs(&ra, "queue");
    char buf[16];
    int r = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(r, (struct sockaddr *)&ra, ral);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    connect(s, (struct sockaddr *)&ra, ral);
    int n = 0;
    while (n < 100 && send(s, "m", 1, MSG_DONTWAIT) == 1)
        n++;
    P("queue_full_after %d %s\n", n, errno_name(errno));
    show_poll("queue_full_sender", s, POLLOUT);
    show_poll("queue_full_receiver", r, POLLIN);
    /* A blocked sender goes on once the receiver takes one. */
    pid_t pid = fork();
    if (pid == 0) {
        ssize_t w = send(s, "late", 4, 0);
        _exit(w == 4 ? 0 : 1);
    }
    recv(r, buf, sizeof buf, 0);
    int status;
    waitpid(pid, &status, 0);
    V("blocked_sender_status", WEXITSTATUS(status));
    show_poll("refilled_sender", s, POLLOUT);
    recv(r, buf, sizeof buf, 0);
    show_poll("room_again_sender", s, POLLOUT);
    int last = 0;
    while ((n = (int)recv(r, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        last = n;
    V("last_message_len", last);
    close(s);
    close(r);

    /* EMSGSIZE past SO_SNDBUF less 32; the largest that fits goes. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    static char big[300000];
    E("emsgsize", send(sv[0], big, 212961, 0), EMSGSIZE);
    V("largest", send(sv[0], big, 212960, 0));
    V("recv_largest", recv(sv[1], big, sizeof big, 0));
    set_int(sv[0], SOL_SOCKET, SO_SNDBUF, 4096);
    V("sndbuf_set", get_int(sv[0], SOL_SOCKET, SO_SNDBUF));
    E("emsgsize_small", send(sv[0], big, 8161, 0), EMSGSIZE);
    V("fits_small", send(sv[0], big, 8160, 0));
    /* SO_RCVTIMEO: an empty queue times out. */
    struct timeval tv = { 0, 50000 };
    T("rcvtimeo", setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    recv(sv[1], big, sizeof big, 0);
    E("recv_timeout", recv(sv[1], big, sizeof big, 0), EAGAIN);
    /* SO_TIMESTAMP: the send time comes with the message. */
    set_int(sv[1], SOL_SOCKET, SO_TIMESTAMP, 1);
    send(sv[0], "t", 1, 0);
    union {
        char b[256];
        struct cmsghdr align;
    } cb;
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof cb.b };
    V("recv_timestamped", recvmsg(sv[1], &m, 0));
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    B("timestamp_cmsg", c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP);
    if (c) {
        struct timeval stamp, now;
        memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
        gettimeofday(&now, NULL);
        B("timestamp_recent", stamp.tv_sec <= now.tv_sec && stamp.tv_sec + 60 > now.tv_sec);
    }
    /* EFAULT: a bad buffer, on either side. */
    E("send_efault", send(sv[0], BADPTR, 4, 0), EFAULT);
    send(sv[0], "f", 1, 0);
    E("recv_efault", recv(sv[1], BADPTR, 4, 0), EFAULT);
    close(sv[0]);
    close(sv[1]);
}

int main(int argc, char **argv)
{
    guest_init();
    alarm(60);
    guest_scratch(argc, argv);
    pair();
    named();
    abstract_names();
    limits();
    guest_cleanup();
    P("done\n");
    return 0;
}
