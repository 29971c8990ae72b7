/* One pipe or FIFO description used by several readers and writers at
 * once: a task blocked reading it must not hold up another task writing
 * through the same description, nor stop a blocked reader from being
 * killed. (The file-position lock is only for seekable files.) */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static int fifo_fd;

/* Returns what it read; printed after the join, so the output order does
 * not depend on scheduling. */
static void *fifo_reader(void *a)
{
    (void)a;
    char c = 0;
    ssize_t n = read(fifo_fd, &c, 1);
    return (void *)(long)(n == 1 ? c : -1);
}

static void join_and_print(pthread_t t, const char *name)
{
    void *r;
    pthread_join(t, &r);
    printf("%s = %ld\n", name, (long)r);
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    /* A hang is a failure, not a stuck test run. */
    alarm(30);

    /* A FIFO opened O_RDWR: one thread blocks reading, another writes
     * through the same descriptor. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/pipe_shared-%d", getpid());
    T("mkfifo", mkfifo(path, 0600));
    fifo_fd = open(path, O_RDWR);
    T("open_fifo_rdwr", fifo_fd);
    pthread_t t;
    pthread_create(&t, 0, fifo_reader, 0);
    usleep(20000); /* usually lets the reader block first; either order must work */
    V("fifo_write", write(fifo_fd, "x", 1));
    join_and_print(t, "fifo_reader_got");
    close(fifo_fd);
    unlink(path);

    /* An anonymous pipe: two threads block reading one description while
     * a third writes. */
    int p[2];
    T("pipe", pipe(p));
    fifo_fd = p[0];
    pthread_t r1, r2;
    pthread_create(&r1, 0, fifo_reader, 0);
    pthread_create(&r2, 0, fifo_reader, 0);
    usleep(20000);
    V("pipe_write_two", write(p[1], "yy", 2));
    join_and_print(r1, "pipe_reader_1_got");
    join_and_print(r2, "pipe_reader_2_got");

    /* Two children blocked reading one pipe description: the second can
     * be killed and reaped while the first still blocks. */
    pid_t a = fork();
    if (a == 0) {
        char c;
        _exit(read(p[0], &c, 1) == 1 ? 0 : 1);
    }
    pid_t b = fork();
    if (b == 0) {
        char c;
        _exit(read(p[0], &c, 1) == 1 ? 0 : 1);
    }
    usleep(20000);
    T("kill_second_reader", kill(b, SIGKILL));
    int st;
    V("reaped_second", waitpid(b, &st, 0) == b);
    B("second_killed_by_9", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    V("feed_first", write(p[1], "z", 1));
    V("reaped_first", waitpid(a, &st, 0) == a);
    B("first_exited_0", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    puts("done");
    return 0;
}
