/* Sandbox-only (tests/tests/limits.rs): a child touches argv[1] MiB; the
 * parent reports how it ended, then shows that the sandbox still serves
 * it and new processes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    long mib = argc > 1 ? atol(argv[1]) : 256;
    pid_t c = fork();
    if (c == 0) {
        for (long i = 0; i < mib; i++) {
            char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED)
                _exit(3);
            memset(p, 1, 1 << 20);
        }
        printf("hog survived\n");
        _exit(0);
    }
    int st = 0;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st))
        printf("hog killed by signal %d\n", WTERMSIG(st));
    else
        printf("hog exited %d\n", WEXITSTATUS(st));
    /* The Sentry lives on: a small allocation and a new process. */
    char *p = malloc(4 << 20);
    memset(p, 2, 4 << 20);
    c = fork();
    if (c == 0)
        _exit(7);
    waitpid(c, &st, 0);
    printf("after: child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
