/* Patched syscall sites of a static executable (systrap jumps from them
 * into a copy of its slots mapped low, at 0x300000, within reach of code
 * at 0x400000). That copy lies in the guest's half of the address space,
 * outside every mapping the guest has: the guest must be free to map,
 * unmap and probe that range as on Linux, and its patched sites must go
 * on working whatever it puts there. Linked statically: libc's sites are
 * in the executable.
 */
#include "common.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define HOT 200
#define LOW ((void *)0x300000)
#define LOW_LEN 0x40000

static int hot_getppid(long want)
{
    int ok = 1;
    for (int i = 0; i < HOT; i++)
        if (getppid() != want)
            ok = 0;
    return ok;
}

/* Whether /proc/self/maps lists a mapping holding `addr`. */
static int listed(unsigned long addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a <= addr && addr < b)
            found = 1;
    }
    fclose(f);
    return found;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    long ppid = getppid();
    B("hot_before", hot_getppid(ppid));
    B("low_not_listed", listed(0x300000) == 0);
    /* A child shares the patched code and has slots of its own; taking
     * the range over in the child leaves the parent's alone. */
    pid_t c = fork();
    if (c == 0) {
        int ok = hot_getppid(getppid());
        void *q = mmap(LOW, LOW_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (q == LOW)
            memset(q, 0xcc, LOW_LEN);
        ok &= hot_getppid(getppid());
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    B("child", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    B("hot_in_parent", hot_getppid(ppid));
    /* The range is free: a mapping may ask for it and get it. */
    void *p = mmap(LOW, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    B("noreplace_gets_it", p == LOW);
    B("reads_zero", p == LOW && ((volatile unsigned char *)p)[0] == 0);
    B("hot_after_noreplace", hot_getppid(ppid));
    /* Fill the whole range with int3: a jump into it now would trap. */
    p = mmap(LOW, LOW_LEN, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    B("fixed_over_it", p == LOW);
    if (p == LOW)
        memset(p, 0xcc, LOW_LEN);
    B("hot_over_int3", hot_getppid(ppid));
    T("unmap_it", munmap(LOW, LOW_LEN));
    B("hot_after_unmap", hot_getppid(ppid));
    /* A hint is honoured where the range is free. */
    p = mmap(LOW, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    B("hint_honoured", p == LOW);
    B("listed_now", listed(0x300000) == 1);
    if (p != MAP_FAILED)
        munmap(p, 4096);

    printf("done\n");
    return 0;
}
