// Socket benchmarks that time themselves from inside the guest (so the
// figure excludes sandbox start-up) and print nanoseconds:
//   socket_loop tcp_stream BYTES    BYTES through one loopback TCP
//                                   connection in 64 KiB writes, until the
//                                   reader has them all
//   socket_loop unix_stream BYTES   the same over a unix stream socketpair
//   socket_loop tcp_connect N       N connect+accept+close on loopback
//   socket_loop tcp_pingpong N      N 1-byte request/response round trips
//   socket_loop udp_pingpong N      the same with UDP datagrams
//   socket_loop unix_pingpong N     the same over a unix stream socketpair
// The peer is a child process, as a client and a server would be.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

// A listening TCP socket on 127.0.0.1 with an ephemeral port.
static int tcp_listener(struct sockaddr_in *a) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *a;
    if (bind(l, (struct sockaddr *)a, sizeof *a) || listen(l, 128) || getsockname(l, (struct sockaddr *)a, &len))
        die("bind/listen");
    return l;
}

static int tcp_connect(const struct sockaddr_in *a) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (connect(s, (const struct sockaddr *)a, sizeof *a)) die("connect");
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return s;
}

// A connected pair of stream sockets: TCP through a listener, or unix.
static void stream_pair(int tcp, int *parent, int *child) {
    if (!tcp) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
        *parent = sv[0];
        *child = sv[1];
        return;
    }
    struct sockaddr_in a;
    int l = tcp_listener(&a);
    *parent = tcp_connect(&a);
    *child = accept(l, 0, 0);
    if (*child < 0) die("accept");
    int one = 1;
    setsockopt(*child, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    close(l);
}

static long long stream(int tcp, long long bytes) {
    int p, c;
    stream_pair(tcp, &p, &c);
    pid_t pid = fork();
    if (pid == 0) {
        close(p);
        static char buf[65536];
        long long got = 0;
        ssize_t r;
        while ((r = read(c, buf, sizeof buf)) > 0) got += r;
        char ok = got == bytes ? 'y' : 'n';
        if (write(c, &ok, 1) != 1) _exit(1);
        _exit(0);
    }
    close(c);
    static char buf[65536];
    memset(buf, 'x', sizeof buf);
    long long t0 = now_ns();
    for (long long sent = 0; sent < bytes;) {
        ssize_t w = write(p, buf, bytes - sent < (long long)sizeof buf ? bytes - sent : (long long)sizeof buf);
        if (w <= 0) die("write");
        sent += w;
    }
    shutdown(p, SHUT_WR);
    char ok = 0;
    if (read(p, &ok, 1) != 1 || ok != 'y') die("reader");
    long long t1 = now_ns();
    waitpid(pid, 0, 0);
    return t1 - t0;
}

static long long pingpong(int kind, long n) {
    int p, c;
    if (kind == 2) {
        // UDP: two sockets connected to each other.
        struct sockaddr_in a, b;
        socklen_t len = sizeof a;
        p = socket(AF_INET, SOCK_DGRAM, 0);
        c = socket(AF_INET, SOCK_DGRAM, 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        b = a;
        if (bind(p, (struct sockaddr *)&a, sizeof a) || getsockname(p, (struct sockaddr *)&a, &len)) die("bind");
        len = sizeof b;
        if (bind(c, (struct sockaddr *)&b, sizeof b) || getsockname(c, (struct sockaddr *)&b, &len)) die("bind");
        if (connect(p, (struct sockaddr *)&b, sizeof b) || connect(c, (struct sockaddr *)&a, sizeof a))
            die("connect");
    } else {
        stream_pair(kind == 1, &p, &c);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p);
        char b;
        for (long i = 0; i < n; i++)
            if (read(c, &b, 1) != 1 || write(c, &b, 1) != 1) _exit(1);
        _exit(0);
    }
    close(c);
    char b = 'x';
    long long t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (write(p, &b, 1) != 1 || read(p, &b, 1) != 1) die("pingpong");
    long long t1 = now_ns();
    waitpid(pid, 0, 0);
    return t1 - t0;
}

static long long connects(long n) {
    struct sockaddr_in a;
    int l = tcp_listener(&a);
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int s = tcp_connect(&a);
        int c = accept(l, 0, 0);
        if (c < 0) die("accept");
        close(s);
        close(c);
    }
    return now_ns() - t0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s tcp_stream|unix_stream BYTES | tcp_connect|tcp_pingpong|udp_pingpong|unix_pingpong N\n",
                argv[0]);
        return 2;
    }
    const char *w = argv[1];
    long long n = atoll(argv[2]);
    long long ns;
    if (!strcmp(w, "tcp_stream")) ns = stream(1, n);
    else if (!strcmp(w, "unix_stream")) ns = stream(0, n);
    else if (!strcmp(w, "tcp_connect")) ns = connects(n);
    else if (!strcmp(w, "tcp_pingpong")) ns = pingpong(1, n);
    else if (!strcmp(w, "udp_pingpong")) ns = pingpong(2, n);
    else if (!strcmp(w, "unix_pingpong")) ns = pingpong(0, n);
    else return 2;
    printf("%lld\n", ns);
    return 0;
}
