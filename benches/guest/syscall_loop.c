// Times N iterations of one syscall from inside the guest and prints the
// total in nanoseconds, so the figure excludes sandbox start-up.
//   syscall_loop getppid N | pipe N | open N | stat N
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s getppid|pipe|open|stat N\n", argv[0]);
        return 2;
    }
    const char *what = argv[1];
    long n = atol(argv[2]);
    int p[2];
    char b = 'x';
    struct stat st;
    if (strcmp(what, "pipe") == 0 && pipe(p) != 0) return 1;
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (strcmp(what, "getppid") == 0) {
            syscall(SYS_getppid);
        } else if (strcmp(what, "pipe") == 0) {
            if (write(p[1], &b, 1) != 1 || read(p[0], &b, 1) != 1) return 1;
        } else if (strcmp(what, "open") == 0) {
            int fd = open("/etc/hostname", O_RDONLY);
            if (fd < 0) return 1;
            close(fd);
        } else if (strcmp(what, "stat") == 0) {
            if (stat("/etc/hostname", &st) != 0) return 1;
        } else {
            return 2;
        }
    }
    long long t1 = now_ns();
    printf("%lld\n", t1 - t0);
    return 0;
}
