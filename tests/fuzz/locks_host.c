/* Host files' locks between the sandbox and the host (tests/tests/locks_host.rs).
 * The same program runs on either side of the wall:
 *
 *   locks_host hold DIR    take a flock (exclusive), a POSIX write lock on
 *                          bytes 0-9 and an OFD write lock on bytes 20-29 of
 *                          DIR/f and a flock on DIR itself, create
 *                          DIR/held, wait for DIR/release
 *   locks_host probe DIR   try the same locks without blocking; print what
 *                          happened (no pids)
 *   locks_host wait DIR    create DIR/waiting, then F_SETLKW bytes 0-9 and
 *                          flock(LOCK_EX), blocking until the holder goes
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static char path[4096], held[4096], release_[4096], waiting[4096];

static const char *res(int r)
{
    static char b[64];
    if (r == 0)
        return "ok";
    snprintf(b, sizeof b, "err %s", errno == EAGAIN ? "EAGAIN" : errno == EACCES ? "EACCES" : strerror(errno));
    return b;
}

static int lk(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    return fcntl(fd, cmd, &fl) < 0 ? -1 : 0;
}

static void touch(const char *p)
{
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0)
        close(fd);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 3)
        return 2;
    snprintf(path, sizeof path, "%s/f", argv[2]);
    snprintf(held, sizeof held, "%s/held", argv[2]);
    snprintf(release_, sizeof release_, "%s/release", argv[2]);
    snprintf(waiting, sizeof waiting, "%s/waiting", argv[2]);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    int fd2 = open(path, O_RDWR);
    int dir = open(argv[2], O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fd2 < 0 || dir < 0) {
        printf("open %s\n", strerror(errno));
        return 3;
    }
    if (!strcmp(argv[1], "hold")) {
        printf("flock %s\n", res(flock(fd, LOCK_EX | LOCK_NB)));
        printf("setlk %s\n", res(lk(fd, F_SETLK, F_WRLCK, 0, 10)));
        printf("ofd %s\n", res(lk(fd2, F_OFD_SETLK, F_WRLCK, 20, 10)));
        printf("dir %s\n", res(flock(dir, LOCK_EX | LOCK_NB)));
        touch(held);
        /* Poll for the release file for at most two minutes. */
        for (int i = 0; i < 12000 && access(release_, F_OK) != 0; i++) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        printf("released\n");
        return 0;
    }
    if (!strcmp(argv[1], "probe")) {
        printf("flock %s\n", res(flock(fd, LOCK_EX | LOCK_NB)));
        printf("flock_sh %s\n", res(flock(fd, LOCK_SH | LOCK_NB)));
        printf("setlk %s\n", res(lk(fd, F_SETLK, F_WRLCK, 0, 10)));
        printf("setlk_rd %s\n", res(lk(fd, F_SETLK, F_RDLCK, 5, 1)));
        printf("ofd %s\n", res(lk(fd2, F_OFD_SETLK, F_WRLCK, 25, 1)));
        printf("elsewhere %s\n", res(lk(fd, F_SETLK, F_WRLCK, 100, 10)));
        printf("dir %s\n", res(flock(dir, LOCK_SH | LOCK_NB)));
        struct flock q;
        memset(&q, 0, sizeof q);
        q.l_type = F_WRLCK;
        q.l_whence = SEEK_SET;
        q.l_start = 0;
        q.l_len = 10;
        if (fcntl(fd2, F_OFD_GETLK, &q) < 0)
            printf("getlk %s\n", strerror(errno));
        else if (q.l_type == F_UNLCK)
            printf("getlk unlocked\n");
        else
            printf("getlk %s start=%ld len=%ld\n", q.l_type == F_WRLCK ? "wr" : "rd", (long)q.l_start, (long)q.l_len);
        return 0;
    }
    if (!strcmp(argv[1], "wait")) {
        touch(waiting);
        printf("setlkw %s\n", res(lk(fd, F_SETLKW, F_WRLCK, 0, 10)));
        printf("flock_blocking %s\n", res(flock(fd, LOCK_EX)));
        printf("after_release %s\n", access(release_, F_OK) == 0 ? "yes" : "no");
        return 0;
    }
    return 2;
}
