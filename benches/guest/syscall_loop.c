// Times N iterations of one syscall (or a small group) from inside the
// guest and prints the total in nanoseconds, so the figure excludes
// sandbox start-up.
//   syscall_loop getppid|pipe|open|stat|futex|getdents|mmap|mprotect|fault|pollpong N
// (pollpong: a byte back and forth between two processes, each side
// waiting in poll() before it reads; N round trips.)
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// A fresh directory with 100 entries (98 files, "." and ".."); returns an
// open descriptor of it.
static int hundred_entry_dir(char *path, size_t len) {
    snprintf(path, len, "/tmp/syscall_loop.%d", getpid());
    if (mkdir(path, 0700) != 0) return -1;
    for (int i = 0; i < 98; i++) {
        char f[256];
        snprintf(f, sizeof f, "%s/entry-%03d", path, i);
        int fd = open(f, O_CREAT | O_WRONLY, 0600);
        if (fd < 0) return -1;
        close(fd);
    }
    return open(path, O_RDONLY | O_DIRECTORY);
}

static void remove_dir(const char *path) {
    for (int i = 0; i < 98; i++) {
        char f[256];
        snprintf(f, sizeof f, "%s/entry-%03d", path, i);
        unlink(f);
    }
    rmdir(path);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s getppid|pipe|open|stat|futex|getdents|mmap|mprotect|fault N\n", argv[0]);
        return 2;
    }
    const char *what = argv[1];
    long n = atol(argv[2]);
    int p[2];
    char b = 'x';
    struct stat st;
    static int word;
    static char dents[16384];
    char dir[128];
    int dfd = -1;
    if (strcmp(what, "pipe") == 0 && pipe(p) != 0) return 1;
    // mprotect: one page flipped between read-write and read-only;
    // fault: first touch of N anonymous pages, one write each.
    char *region = 0;
    if (strcmp(what, "mprotect") == 0 || strcmp(what, "fault") == 0) {
        size_t len = strcmp(what, "fault") == 0 ? (size_t)n * 4096 : 4096;
        region = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region == MAP_FAILED) return 1;
    }
    if (strcmp(what, "getdents") == 0 && (dfd = hundred_entry_dir(dir, sizeof dir)) < 0) return 1;
    if (strcmp(what, "pollpong") == 0) {
        int a[2], c[2];
        if (pipe(a) != 0 || pipe(c) != 0) return 1;
        pid_t child = fork();
        if (child == 0) {
            struct pollfd pf = {a[0], POLLIN, 0};
            for (long i = 0; i < n; i++) {
                if (poll(&pf, 1, -1) != 1 || read(a[0], &b, 1) != 1 || write(c[1], &b, 1) != 1) _exit(1);
            }
            _exit(0);
        }
        struct pollfd pf = {c[0], POLLIN, 0};
        long long t0 = now_ns();
        for (long i = 0; i < n; i++) {
            if (write(a[1], &b, 1) != 1 || poll(&pf, 1, -1) != 1 || read(c[0], &b, 1) != 1) return 1;
        }
        long long t1 = now_ns();
        int st;
        waitpid(child, &st, 0);
        printf("%lld\n", t1 - t0);
        return 0;
    }
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
        } else if (strcmp(what, "futex") == 0) {
            // Wake with no waiter.
            if (syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0) != 0) return 1;
        } else if (strcmp(what, "getdents") == 0) {
            // The whole directory, from the start.
            if (lseek(dfd, 0, SEEK_SET) != 0) return 1;
            long got = 0, r;
            while ((r = syscall(SYS_getdents64, dfd, dents, sizeof dents)) > 0) got += r;
            if (r < 0 || got == 0) return 1;
        } else if (strcmp(what, "mmap") == 0) {
            void *m = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED || munmap(m, 4096) != 0) return 1;
        } else if (strcmp(what, "mprotect") == 0) {
            if (mprotect(region, 4096, (i & 1) ? PROT_READ | PROT_WRITE : PROT_READ) != 0) return 1;
        } else if (strcmp(what, "fault") == 0) {
            region[(size_t)i * 4096] = 1;
        } else {
            return 2;
        }
    }
    long long t1 = now_ns();
    if (dfd >= 0) {
        close(dfd);
        remove_dir(dir);
    }
    printf("%lld\n", t1 - t0);
    return 0;
}
