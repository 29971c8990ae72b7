/* A thread blocked in a read, write, writev or sendfile on a pipe or FIFO
 * must not keep anybody else from using the same open file description:
 * /proc/self/fdinfo, lseek, a write that unblocks the reader. (Linux
 * takes the file-position lock only for regular files and directories.) */
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <sys/sendfile.h>
#include <sys/uio.h>

static volatile int entered;

static void wait_entered(void)
{
    while (!__atomic_load_n(&entered, __ATOMIC_ACQUIRE))
        sched_yield();
    /* Give it every chance to block inside the call. */
    for (int i = 0; i < 100; i++)
        sched_yield();
}

/* Read fdinfo of `fd` many times; every read must finish. */
static void check_fdinfo(const char *what, int fd)
{
    char path[64], buf[256], name[96];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        long n = read_file(path, buf, sizeof buf);
        if (n <= 0 || strncmp(buf, "pos:", 4) != 0)
            ok = 0;
    }
    snprintf(name, sizeof name, "%s_fdinfo_readable", what);
    B(name, ok);
}

static int fill_pipe(int wfd)
{
    static char junk[4096];
    int flags = fcntl(wfd, F_GETFL);
    fcntl(wfd, F_SETFL, flags | O_NONBLOCK);
    long total = 0, n;
    while ((n = write(wfd, junk, sizeof junk)) > 0)
        total += n;
    fcntl(wfd, F_SETFL, flags);
    return total > 0 ? 0 : -1;
}

static long drain(int rfd, long want)
{
    static char buf[65536];
    long got = 0;
    while (got < want) {
        long n = read(rfd, buf, sizeof buf);
        if (n <= 0)
            break;
        got += n;
    }
    return got;
}

static int p[2];

static void *writev_blocked(void *arg)
{
    (void)arg;
    static char a[3000], b[3000];
    struct iovec iov[2] = { { a, sizeof a }, { b, sizeof b } };
    __atomic_store_n(&entered, 1, __ATOMIC_RELEASE);
    return (void *)(long)writev(p[1], iov, 2);
}

static int file_fd;

static void *sendfile_blocked(void *arg)
{
    (void)arg;
    __atomic_store_n(&entered, 1, __ATOMIC_RELEASE);
    return (void *)(long)sendfile(p[1], file_fd, NULL, 8192);
}

static int fifo_fd;

static void *fifo_read_blocked(void *arg)
{
    (void)arg;
    char c[4];
    __atomic_store_n(&entered, 1, __ATOMIC_RELEASE);
    return (void *)(long)read(fifo_fd, c, sizeof c);
}

static void run_blocked(const char *what, void *(*fn)(void *), int fd_checked, int rfd, long drain_bytes)
{
    pthread_t t;
    void *ret;
    char name[96];
    entered = 0;
    pthread_create(&t, NULL, fn, NULL);
    wait_entered();
    check_fdinfo(what, fd_checked);
    snprintf(name, sizeof name, "%s_lseek", what);
    E(name, lseek(fd_checked, 0, SEEK_CUR), ESPIPE);
    if (rfd >= 0) {
        snprintf(name, sizeof name, "%s_drained_enough", what);
        B(name, drain(rfd, drain_bytes) >= drain_bytes);
    }
    pthread_join(t, &ret);
    snprintf(name, sizeof name, "%s_result", what);
    V(name, (long)ret);
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);

    T("pipe", pipe(p));
    T("fill", fill_pipe(p[1]));
    run_blocked("writev", writev_blocked, p[1], p[0], 65536 + 6000);

    T("fill_again", fill_pipe(p[1]));
    T("file", write_file(sp("data"), "0123456789", 0600));
    static char big[8192];
    file_fd = open(sp("data"), O_RDWR);
    T("file_open", file_fd);
    V("file_pwrite", pwrite(file_fd, big, sizeof big, 0));
    run_blocked("sendfile", sendfile_blocked, p[1], p[0], 65536 + 8192);
    V("file_pos_after_sendfile", lseek(file_fd, 0, SEEK_CUR));
    check_fdinfo("file", file_fd);

    T("mkfifo", mkfifo(sp("fifo"), 0600));
    fifo_fd = open(sp("fifo"), O_RDWR);
    T("fifo_open_rdwr", fifo_fd);
    pthread_t t;
    void *ret;
    entered = 0;
    pthread_create(&t, NULL, fifo_read_blocked, NULL);
    wait_entered();
    check_fdinfo("fifo", fifo_fd);
    /* The same description, written while its reader is blocked. */
    V("fifo_write_same_description", write(fifo_fd, "abc", 3));
    pthread_join(t, &ret);
    V("fifo_read_result", (long)ret);

    close(file_fd);
    close(fifo_fd);
    guest_cleanup();
    printf("done\n");
    return 0;
}
