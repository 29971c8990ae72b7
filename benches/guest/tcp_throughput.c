/* Loopback TCP throughput: 256 MiB (or argv[1] MiB) from one thread to
 * another through one 127.0.0.1 connection in 64 KiB writes. Prints MB/s.
 * Build: gcc -O2 -pthread -o tcp_throughput tcp_throughput.c */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static size_t total;
static int wfd;

static void *writer(void *arg)
{
    (void)arg;
    char *buf = malloc(CHUNK);
    memset(buf, 'x', CHUNK);
    for (size_t sent = 0; sent < total;) {
        ssize_t w = write(wfd, buf, CHUNK);
        if (w <= 0) {
            perror("write");
            exit(1);
        }
        sent += (size_t)w;
    }
    close(wfd);
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    total = (size_t)(argc > 1 ? atoi(argv[1]) : 256) << 20;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len)) {
        perror("listen");
        return 1;
    }
    wfd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(wfd, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    int rfd = accept(l, NULL, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t th;
    pthread_create(&th, NULL, writer, NULL);
    char *buf = malloc(CHUNK);
    size_t got = 0;
    for (;;) {
        ssize_t r = read(rfd, buf, CHUNK);
        if (r < 0) {
            perror("read");
            return 1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    pthread_join(th, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (got != total) {
        fprintf(stderr, "got %zu of %zu bytes\n", got, total);
        return 1;
    }
    printf("%zu MiB in %.3f s: %.0f MB/s\n", total >> 20, s, (double)total / s / 1e6);
    return 0;
}
