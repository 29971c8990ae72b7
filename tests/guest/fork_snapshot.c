/* fork while another thread writes: the child must see the parent's
 * memory as of one instant, as on Linux. A writer thread keeps two
 * counters in step, one in .bss (a small writable run) and one in a large
 * mapping; every child checks that they differ by at most the one
 * increment in flight. (A sandbox that copied small runs early and froze
 * large ones late gave children torn pairs: a lock-free malloc free seen
 * half done crashed forked Python workers.)
 */
#include "common.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define FORKS 100

static volatile long small;
static volatile long *big;
static volatile int stop;

static void *writer(void *arg)
{
    (void)arg;
    while (!stop) {
        big[0]++;
        small++;
    }
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t len = 16 << 20;
    big = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    B("mapped", big != MAP_FAILED);
    for (size_t i = 0; i < len / sizeof(long); i += 512)
        big[i] = 1;
    big[0] = 0;
    pthread_t t;
    T("writer", pthread_create(&t, NULL, writer, NULL) == 0 ? 0 : -1);
    while (small < 1000)
        ;
    int torn = 0, failed = 0;
    for (int i = 0; i < FORKS; i++) {
        pid_t c = fork();
        if (c == 0) {
            long d = big[0] - small;
            _exit(d == 0 || d == 1 ? 0 : 1);
        }
        int st = 0;
        if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st))
            failed++;
        else if (WEXITSTATUS(st) != 0)
            torn++;
    }
    stop = 1;
    pthread_join(t, NULL);
    V("failed_forks", failed);
    V("torn_snapshots", torn);
    B("writer_went_on", small > 1000);
    printf("done\n");
    return 0;
}
