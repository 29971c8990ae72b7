// The server side of the egress bench (benches/src/bin/egress.rs), run
// natively as the "outside" server:
//   net_server ADDR PORT
// listens on ADDR:PORT, then serially accepts, reads a "GET N\n" line,
// writes N bytes and closes. Serial is enough: the clients are sequential.
// It runs until killed; a bad request only drops that connection.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char data[1 << 20];

static void die(const char *what) {
    fprintf(stderr, "net_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

// Read one request line; the number asked for, or -1.
static long long read_request(int c) {
    char line[64];
    size_t len = 0;
    while (len < sizeof line - 1) {
        ssize_t r = read(c, line + len, 1);
        if (r <= 0) return -1;
        if (line[len] == '\n') break;
        len++;
    }
    line[len] = 0;
    if (strncmp(line, "GET ", 4)) return -1;
    char *end;
    long long n = strtoll(line + 4, &end, 10);
    return *end || n < 0 ? -1 : n;
}

static void serve(int c) {
    long long n = read_request(c);
    if (n < 0) {
        fprintf(stderr, "net_server: bad request\n");
        return;
    }
    for (long long sent = 0; sent < n;) {
        long long left = n - sent;
        ssize_t w = write(c, data, left < (long long)sizeof data ? left : (long long)sizeof data);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            perror("net_server: write");
            return;
        }
        sent += w;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s ADDR PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(data, 'x', sizeof data);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
        fprintf(stderr, "net_server: bad address %s\n", argv[1]);
        return 2;
    }
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    int one = 1;
    if (setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) die("setsockopt");
    if (bind(l, (struct sockaddr *)&a, sizeof a)) die("bind");
    if (listen(l, 128)) die("listen");
    for (;;) {
        int c = accept(l, 0, 0);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            die("accept");
        }
        serve(c);
        close(c);
    }
}
