/* Memory an exited process leaves behind is never seen by the next one:
 * each child fills fresh anonymous pages, its stack and its heap with a
 * pattern and exits; the next child's fresh pages, stack and heap read as
 * zeros (apart from what the C runtime wrote there). Under systrap the
 * next child may run in the first one's recycled stub process
 * (platform-systrap recycle.rs) and get its freed memory-file pages. */
#include "common.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define PATTERN 0x5ec2e75ec2e75ec2UL

static int count_pattern(const unsigned long *p, size_t words)
{
    int n = 0;
    for (size_t i = 0; i < words; i++)
        n += p[i] == PATTERN;
    return n;
}

static void leave(void)
{
    for (size_t len = 4096; len <= 64 * 4096; len *= 2) {
        unsigned long *m = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            _exit(2);
        for (size_t i = 0; i < len / 8; i++)
            m[i] = PATTERN;
    }
    volatile unsigned long stack[4096];
    for (size_t i = 0; i < 4096; i++)
        stack[i] = PATTERN;
    unsigned long *h = malloc(256 * 1024);
    for (size_t i = 0; h && i < 256 * 1024 / 8; i++)
        h[i] = PATTERN;
    _exit(0);
}

/* 1 if no fresh page, no stack word and no heap word holds the pattern. */
static int look(void)
{
    int seen = 0;
    for (size_t len = 4096; len <= 64 * 4096; len *= 2) {
        unsigned long *m = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return 0;
        seen += count_pattern(m, len / 8);
    }
    volatile unsigned long stack[4096];
    seen += count_pattern((const unsigned long *)stack, 4096);
    unsigned long *h = malloc(256 * 1024);
    if (h)
        seen += count_pattern(h, 256 * 1024 / 8);
    return seen == 0;
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    int clean = 1;
    for (int round = 0; round < 20; round++) {
        pid_t p = fork();
        if (p == 0)
            leave();
        int st = 0;
        waitpid(p, &st, 0);
        p = fork();
        if (p == 0)
            _exit(look() ? 0 : 1);
        waitpid(p, &st, 0);
        clean &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    B("pages_of_exited_processes_read_as_zero", clean);
    printf("done\n");
    return 0;
}
