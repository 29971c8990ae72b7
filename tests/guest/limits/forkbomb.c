/* Sandbox-only (tests/tests/limits.rs): fork until fork fails, then
 * start threads until that fails, report the errnos and counts, release
 * everything and show that fork works again. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int gate[2];

static void *waiter(void *arg)
{
    char c;
    (void)arg;
    read(gate[0], &c, 1);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pipe(gate);
    int procs = 0, err = 0;
    for (int i = 0; i < 10000; i++) {
        pid_t c = fork();
        if (c < 0) {
            err = errno;
            break;
        }
        if (c == 0) {
            char ch;
            close(gate[1]);
            read(gate[0], &ch, 1);
            _exit(0);
        }
        procs++;
    }
    printf("fork stopped: %s after %d children\n", err == EAGAIN ? "EAGAIN" : strerror(err), procs);
    /* Let half of them go: threads count against the same limit. */
    close(gate[1]);
    while (wait(NULL) > 0)
        ;
    pipe(gate);
    int threads = 0;
    pthread_t t[10000];
    for (int i = 0; i < 10000; i++) {
        int r = pthread_create(&t[i], NULL, waiter, NULL);
        if (r != 0) {
            err = r;
            break;
        }
        threads++;
    }
    printf("pthread_create stopped: %s after %d threads\n", err == EAGAIN ? "EAGAIN" : strerror(err), threads);
    close(gate[1]);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    pid_t c = fork();
    if (c == 0)
        _exit(5);
    int st = 0;
    waitpid(c, &st, 0);
    printf("fork after: child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
