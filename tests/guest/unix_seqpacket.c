/* AF_UNIX SOCK_SEQPACKET: connections that keep message boundaries;
 * MSG_TRUNC, FIONREAD, end of connection, errors of the unconnected. */
#include "unix_common.h"

static void pair(void)
{
    int sv[2];
    char buf[64];
    T("socketpair", socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    V("so_type", get_int(sv[0], SOL_SOCKET, SO_TYPE));
    show_poll("pair_idle", sv[0], POLLIN | POLLOUT | POLLRDHUP);
    V("send_abc", send(sv[0], "abc", 3, 0));
    V("send_empty", send(sv[0], "", 0, 0));
    V("send_defgh", send(sv[0], "defgh", 5, 0));
    V("fionread_all", ioctl_int(sv[1], FIONREAD));
    V("recv_abc", recv(sv[1], buf, sizeof buf, 0));
    V("recv_empty", recv(sv[1], buf, sizeof buf, 0));
    V("peek_defgh", recv(sv[1], buf, sizeof buf, MSG_PEEK));
    struct got g = recv_all(sv[1], buf, 2, 0, 0);
    V("recv_cut", g.n);
    B("recv_cut_flag", g.flags & MSG_TRUNC);
    V("rest_gone", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    send(sv[0], "12345", 5, 0);
    V("recv_trunc_len", recv(sv[1], buf, 1, MSG_TRUNC));
    /* Stream-style reads of a message socket: read() takes one message. */
    write(sv[0], "one", 3);
    write(sv[0], "two", 3);
    V("read_one", read(sv[1], buf, sizeof buf));
    V("read_two", read(sv[1], buf, sizeof buf));
    /* An address on a connected seqpacket socket is ignored. */
    struct sockaddr_un a;
    socklen_t al = un_path(&a, sp("nowhere.sock"));
    V("sendto_ignored", sendto(sv[0], "x", 1, 0, (struct sockaddr *)&a, al));
    V("recv_sendto", recv(sv[1], buf, sizeof buf, 0));
    /* Shutdown for writing ends the peer's input. */
    T("shut_wr", shutdown(sv[0], SHUT_WR));
    V("recv_after_shut_wr", recv(sv[1], buf, sizeof buf, 0));
    E("send_after_shut_wr", send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    show_poll("shut_wr_peer_poll", sv[1], POLLIN | POLLOUT | POLLRDHUP);
    close(sv[0]);
    show_poll("closed_peer_poll", sv[1], POLLIN | POLLOUT | POLLRDHUP);
    V("recv_closed", recv(sv[1], buf, sizeof buf, 0));
    V("recv_closed_nonblock", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    E("send_closed", send(sv[1], "x", 1, MSG_NOSIGNAL), EPIPE);
    close(sv[1]);

    /* Closing with unread messages resets the peer: once, before data. */
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
    send(sv[1], "unread", 6, 0);
    send(sv[0], "queued", 6, 0);
    close(sv[0]);
    E("reset_recv", recv(sv[1], buf, sizeof buf, 0), ECONNRESET);
    V("reset_then_data", recv(sv[1], buf, sizeof buf, 0));
    V("reset_then_eof", recv(sv[1], buf, sizeof buf, 0));
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
    send(sv[1], "unread", 6, 0);
    close(sv[0]);
    E("reset_send", send(sv[1], "x", 1, MSG_NOSIGNAL), ECONNRESET);
    E("reset_send_again", send(sv[1], "x", 1, MSG_NOSIGNAL), EPIPE);
    close(sv[1]);
}

static void connection(void)
{
    struct sockaddr_un a;
    socklen_t al = un_path(&a, sp("seq.sock"));
    char buf[64];
    int u = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    show_poll("unconnected_poll", u, POLLIN | POLLOUT);
    E("send_unconnected", send(u, "x", 1, 0), ENOTCONN);
    E("recv_unconnected", recv(u, buf, 1, MSG_DONTWAIT), ENOTCONN);
    E("listen_unbound", listen(u, 1), EINVAL);
    E("accept_not_listening", accept(u, NULL, NULL), EINVAL);
    int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    T("bind", bind(l, (struct sockaddr *)&a, al));
    T("listen", listen(l, 2));
    E("send_listening", send(l, "x", 1, 0), ENOTCONN);
    E("recv_listening", recv(l, buf, 1, 0), ENOTCONN);
    T("connect", connect(u, (struct sockaddr *)&a, al));
    V("send_before_accept", send(u, "first", 5, 0));
    V("send_before_accept_2", send(u, "second!", 7, 0));
    show_poll("listener_pending", l, POLLIN);
    struct sockaddr_un peer;
    socklen_t pl = sizeof peer;
    int s = accept(l, (struct sockaddr *)&peer, &pl);
    T("accept", s);
    V("accept_addrlen", pl);
    V("recv_first", recv(s, buf, sizeof buf, 0));
    V("recv_second", recv(s, buf, sizeof buf, 0));
    /* The client's source address is the listener's path. */
    send(s, "reply", 5, 0);
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    V("recvfrom_reply", recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    B("recvfrom_reply_addr", fl == al && strcmp(from.sun_path, a.sun_path) == 0);
    E("connect_again", connect(u, (struct sockaddr *)&a, al), EISCONN);
    int st = socket(AF_UNIX, SOCK_STREAM, 0);
    E("stream_to_seqpacket", connect(st, (struct sockaddr *)&a, al), EPROTOTYPE);
    int dg = socket(AF_UNIX, SOCK_DGRAM, 0);
    E("dgram_to_seqpacket", sendto(dg, "x", 1, 0, (struct sockaddr *)&a, al), EPROTOTYPE);
    /* Messages from another process keep their boundaries. */
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 1; i <= 5; i++) {
            char m[8];
            memset(m, 'a' + i, (size_t)i);
            send(u, m, (size_t)i, 0);
        }
        _exit(0);
    }
    close(u);
    int lens[6] = { 0 };
    for (int i = 0; i < 6; i++)
        lens[i] = (int)recv(s, buf, sizeof buf, 0);
    P("child_message_lens %d %d %d %d %d then %d\n", lens[0], lens[1], lens[2], lens[3], lens[4], lens[5]);
    waitpid(pid, NULL, 0);
    close(s);
    close(st);
    close(dg);
    close(l);
}

int main(int argc, char **argv)
{
    guest_init();
    alarm(60);
    guest_scratch(argc, argv);
    pair();
    connection();
    guest_cleanup();
    P("done\n");
    return 0;
}
