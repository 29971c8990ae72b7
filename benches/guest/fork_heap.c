// fork with a large touched heap, timed from inside the guest:
// fork+exit+wait, the parent rewriting its heap after the child is gone,
// a child writing every page, one write on each side.
//   gcc -O2 -static -o /tmp/fork_heap benches/guest/fork_heap.c
//   runsc-lite --platform=systrap do /tmp/fork_heap 64 20   # MiB, forks
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <sys/mman.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? atoi(argv[1]) : 64;
    int iters = argc > 2 ? atoi(argv[2]) : 20;
    size_t n = mb << 20;
    char *heap = malloc(n);
    memset(heap, 1, n);
    double t0 = now();
    for (int i = 0; i < iters; i++) {
        pid_t c = fork();
        if (c == 0)
            _exit(0);
        waitpid(c, NULL, 0);
    }
    double t1 = now();
    printf("fork+exit+wait, %zu MiB touched: %.3f ms per fork\n", mb, (t1 - t0) / iters);
    /* The parent writes its heap again after the child is gone. */
    t0 = now();
    memset(heap, 2, n);
    t1 = now();
    printf("parent rewrites heap after child exit: %.3f ms\n", t1 - t0);
    /* The child writes every page (all copied). */
    t0 = now();
    for (int i = 0; i < 3; i++) {
        pid_t c = fork();
        if (c == 0) {
            for (size_t j = 0; j < n; j += 4096)
                heap[j] = 3;
            _exit(0);
        }
        waitpid(c, NULL, 0);
    }
    t1 = now();
    printf("fork + child writes every page + exit: %.3f ms per fork\n", (t1 - t0) / 3);
    /* fork + a little touch, as a shell's child does before exec. */
    t0 = now();
    for (int i = 0; i < iters; i++) {
        pid_t c = fork();
        if (c == 0) {
            heap[0] = 4;
            _exit(0);
        }
        waitpid(c, NULL, 0);
        heap[4096 * 100] = 5;
    }
    t1 = now();
    printf("fork + one write each side: %.3f ms per fork\n", (t1 - t0) / iters);
    return 0;
}
