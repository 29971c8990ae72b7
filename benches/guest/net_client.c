// The client side of the egress bench (benches/src/bin/egress.rs); it
// times itself from inside the guest, so sandbox start-up is excluded, and
// prints nanoseconds:
//   net_client download ADDR PORT BYTES    connect, send "GET BYTES\n",
//                                          read to EOF (the count checked),
//                                          connect..EOF timed
//   net_client connect_loop ADDR PORT N    N times: connect, send
//                                          "GET 64\n", read the 64 bytes
//                                          to EOF, close; all N timed
// The server is benches/guest/net_server.c. Any error: a message on
// stderr and exit status 1. send/recv rather than write/read: Debian's
// runsc (20221219) with --network=host sometimes fails read(2) on a
// blocking host socket with EAGAIN, where recv(2) waits.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[65536];

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "net_client: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void fail(const char *msg, long long a, long long b) {
    fprintf(stderr, "net_client: %s (%lld, expected %lld)\n", msg, a, b);
    exit(1);
}

static int connect_to(const struct sockaddr_in *a) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (connect(s, (const struct sockaddr *)a, sizeof *a)) die("connect");
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return s;
}

// Send "GET n\n" on s, read to EOF and check that exactly n bytes came.
static void request(int s, long long n) {
    char req[64];
    int len = snprintf(req, sizeof req, "GET %lld\n", n);
    for (int off = 0; off < len;) {
        ssize_t w = send(s, req + off, len - off, 0);
        if (w <= 0) die("send");
        off += w;
    }
    long long got = 0;
    ssize_t r;
    while ((r = recv(s, buf, sizeof buf, 0)) > 0) got += r;
    if (r < 0) die("recv");
    if (got != n) fail("short or long reply", got, n);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s download|connect_loop ADDR PORT BYTES|N\n", argv[0]);
        return 2;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) {
        fprintf(stderr, "net_client: bad address %s\n", argv[2]);
        return 2;
    }
    long long n = atoll(argv[4]);
    long long t0 = now_ns();
    if (!strcmp(argv[1], "download")) {
        int s = connect_to(&a);
        request(s, n);
        close(s);
    } else if (!strcmp(argv[1], "connect_loop")) {
        for (long long i = 0; i < n; i++) {
            int s = connect_to(&a);
            request(s, 64);
            close(s);
        }
    } else {
        fprintf(stderr, "net_client: unknown mode %s\n", argv[1]);
        return 2;
    }
    printf("%lld\n", now_ns() - t0);
    return 0;
}
