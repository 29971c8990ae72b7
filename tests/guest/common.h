/* Shared helpers for the conformance guest programs.
 *
 * Every program prints one line per check. Lines must be deterministic:
 * the same on the host kernel and under runsc-lite (no pids, times, inode
 * numbers, addresses, fd numbers or host-dependent sizes), because the test
 * harness compares the two outputs byte for byte. Print "ok", an errno
 * name, a size or a yes/no instead.
 *
 *   T("name", expr)   "name ok"  or "name err ENAME"   (expr < 0 is an error)
 *   V("name", expr)   "name = N" or "name err ENAME"
 *   B("name", cond)   "name yes" or "name no"
 *   E("name", expr, ERRNO)  like T, for checks expected to fail
 *
 * errno is read right after expr, so T("x", fd) just after fd = open(...)
 * reports open's errno.
 *
 * Output is line buffered so a crash loses nothing already printed, and
 * each program ends with "done" so a truncated run is visible in the diff.
 */
#ifndef RUNSC_LITE_GUEST_COMMON_H
#define RUNSC_LITE_GUEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static __attribute__((unused)) const char *errno_name(int e)
{
    switch (e) {
#define N(x) case x: return #x;
        N(EPERM) N(ENOENT) N(ESRCH) N(EINTR) N(EIO) N(ENXIO) N(E2BIG)
        N(ENOEXEC) N(EBADF) N(ECHILD) N(EAGAIN) N(ENOMEM) N(EACCES)
        N(EFAULT) N(ENOTBLK) N(EBUSY) N(EEXIST) N(EXDEV) N(ENODEV)
        N(ENOTDIR) N(EISDIR) N(EINVAL) N(ENFILE) N(EMFILE) N(ENOTTY)
        N(ETXTBSY) N(EFBIG) N(ENOSPC) N(ESPIPE) N(EROFS) N(EMLINK)
        N(EPIPE) N(EDOM) N(ERANGE) N(EDEADLK) N(ENAMETOOLONG) N(ENOLCK)
        N(ENOSYS) N(ENOTEMPTY) N(ELOOP) N(ENOMSG) N(EIDRM) N(ENODATA)
        N(ENOSTR) N(ETIME) N(EOVERFLOW) N(EBADFD) N(ENOTSOCK)
        N(EDESTADDRREQ) N(EMSGSIZE) N(EPROTOTYPE) N(ENOPROTOOPT)
        N(EPROTONOSUPPORT) N(EOPNOTSUPP) N(EAFNOSUPPORT) N(EADDRINUSE)
        N(EADDRNOTAVAIL) N(ENETUNREACH) N(ECONNABORTED) N(ECONNRESET)
        N(ENOBUFS) N(EISCONN) N(ENOTCONN) N(ETIMEDOUT) N(ECONNREFUSED)
        N(EALREADY) N(EINPROGRESS) N(ESTALE) N(EDQUOT) N(ECANCELED)
        N(EOWNERDEAD) N(ENOTRECOVERABLE)
#undef N
    case 0:
        return "0";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno%d", e);
        return buf;
    }
    }
}

static __attribute__((unused)) void guest_report(const char *name, long r, int err, int show_value)
{
    if (r < 0)
        printf("%s err %s\n", name, errno_name(err));
    else if (show_value)
        printf("%s = %ld\n", name, r);
    else
        printf("%s ok\n", name);
}

/* Check that succeeds or fails: prints ok / err ENAME. */
#define T(name, expr)                                   \
    do {                                                \
        long t_r_ = (long)(expr);                       \
        guest_report((name), t_r_, errno, 0);           \
    } while (0)

/* Check whose (deterministic) return value is printed. */
#define V(name, expr)                                   \
    do {                                                \
        long v_r_ = (long)(expr);                       \
        guest_report((name), v_r_, errno, 1);           \
    } while (0)

/* A boolean. */
#define B(name, cond) printf("%s %s\n", (name), (cond) ? "yes" : "no")

/* Expected failure: same output as T, documents the expected errno. */
#define E(name, expr, expected) T(name, expr)

/* printf-style line, for values that are deterministic by construction. */
#define P(...) printf(__VA_ARGS__)

/* Line buffering so a crash loses nothing; call first in main. */
static __attribute__((unused)) void guest_init(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
}

/* A scratch directory: argv[1] when given, else a fresh mkdtemp under
 * $TMPDIR (default /tmp).
 * Returns a malloc'ed path; guest_cleanup removes it recursively. */
static char guest_scratch_buf[4096];
static int guest_scratch_owned;

static __attribute__((unused)) const char *guest_scratch(int argc, char **argv)
{
    if (argc > 1) {
        snprintf(guest_scratch_buf, sizeof guest_scratch_buf, "%s", argv[1]);
        return guest_scratch_buf;
    }
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    snprintf(guest_scratch_buf, sizeof guest_scratch_buf, "%s/rlguest.XXXXXX", tmpdir);
    if (!mkdtemp(guest_scratch_buf)) {
        printf("scratch_mkdtemp err %s\n", errno_name(errno));
        exit(90);
    }
    guest_scratch_owned = 1;
    return guest_scratch_buf;
}

static __attribute__((unused)) void guest_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, 0700);
        DIR *d = opendir(path);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                    continue;
                char sub[4096];
                snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
                guest_rm_rf(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static __attribute__((unused)) void guest_cleanup(void)
{
    if (guest_scratch_owned) {
        if (chdir("/") != 0) {
            /* nothing useful to do */
        }
        guest_rm_rf(guest_scratch_buf);
    }
}

/* Joins the scratch dir and a name into a static rotating buffer. */
static __attribute__((unused)) const char *sp(const char *name)
{
    static char bufs[8][4200];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", guest_scratch_buf, name);
    return b;
}

/* Writes a whole file; returns 0 or -1. */
static __attribute__((unused)) int write_file(const char *path, const char *data, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    size_t n = strlen(data);
    ssize_t w = write(fd, data, n);
    close(fd);
    return w == (ssize_t)n ? 0 : -1;
}

/* Reads up to cap-1 bytes of a file, NUL-terminated; returns length or -1. */
static __attribute__((unused)) long read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = 0;
    close(fd);
    return (long)got;
}

/* A pointer that is never mapped (the first page). */
#define BADPTR ((void *)1)

#endif
