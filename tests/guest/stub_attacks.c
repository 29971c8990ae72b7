/* A guest that attacks the systrap stub it runs in: the platform's region
 * at the top of the address space (code, read-only control page, writable
 * message pages and signal stacks). Each attack runs in a child; whatever
 * it does, only the child may suffer, the rest of the sandbox goes on.
 *
 * Natively (and under ptrace) there is no such region, so the attacks
 * fault or find nothing; the printed verdicts are the same everywhere:
 * "contained" means the child died of a signal, or the stub's read-only
 * pages stayed read-only.
 */
#include "common.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define STUB_BASE 0x7ffff0000000UL
#define CTRL (STUB_BASE + 0x2000)
#define THREADS (STUB_BASE + 0x100000)
/* The ptrace platform's stub page (syscall; int3). */
#define PTRACE_STUB 0x7ffffffe0000UL
#define VSYSCALL 0xffffffffff600000UL

static sigjmp_buf env;
static void on_segv(int s) { (void)s; siglongjmp(env, 1); }

/* Runs fn in a child; returns 1 if the child was killed by a signal. */
static int killed(void (*fn)(void))
{
    pid_t p = fork();
    if (p == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    return WIFSIGNALED(st);
}

/* Like killed(), but surviving is fine too: the stub may rewrite what was
 * scribbled before anyone reads it, or find it garbled and be killed. */
static int killed_or_unharmed(void (*fn)(void))
{
    pid_t p = fork();
    if (p == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    return WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void write_control_page(void) { *(volatile long *)CTRL = 1; }

static void scribble_message_page(void)
{
    memset((void *)THREADS, 0x41, 4096 * 4);
    getppid();
}

/* Address of "syscall; jmp r15" in the stub code, if the code is readable. */
static unsigned char *find_stub_syscall(void)
{
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, &old);
    unsigned char *found = 0;
    if (sigsetjmp(env, 1) == 0) {
        unsigned char *c = (unsigned char *)STUB_BASE;
        for (int i = 0; i + 4 < 8192; i++)
            if (c[i] == 0x0f && c[i + 1] == 0x05 && c[i + 2] == 0x41 && c[i + 3] == 0xff && c[i + 4] == 0xe7) {
                found = c + i;
                break;
            }
    }
    sigaction(SIGSEGV, &old, 0);
    return found;
}

/* Jump to a stub syscall instruction with r15 pointing back here. */
static long stub_syscall(unsigned char *insn, long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
    long ret;
    register long r10 __asm__("r10") = a3;
    register long r8 __asm__("r8") = a4;
    register long r9 __asm__("r9") = a5;
    __asm__ volatile("lea 1f(%%rip), %%r15\n\tjmp *%[insn]\n1:"
                     : "=a"(ret)
                     : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9), [insn] "r"(insn)
                     : "rcx", "r11", "r15", "memory");
    return ret;
}

static void remap_control_page_writable(void)
{
    unsigned char *insn = find_stub_syscall();
    if (insn) {
        /* mmap(CTRL, 4096, RW, MAP_SHARED|MAP_FIXED, memfd 10, 0) and
         * mprotect(CTRL, RW) through the control thread's own instruction. */
        stub_syscall(insn, SYS_mmap, CTRL, 4096, 3, 0x11, 10, 0);
        stub_syscall(insn, SYS_mprotect, CTRL, 4096, 3, 0, 0, 0);
        stub_syscall(insn, SYS_write, 11, (long)"x", 1, 0, 0, 0);
    }
    write_control_page();
}

static void forge_sigreturn(void)
{
    unsigned char *insn = find_stub_syscall();
    if (insn) {
        /* rt_sigreturn through the wrong instruction, with a garbage frame. */
        char frame[1024];
        memset(frame, 0x42, sizeof frame);
        __asm__ volatile("mov %0, %%rsp\n\tmov $15, %%eax\n\tjmp *%1" ::"r"(frame + 512), "r"(insn) : "memory");
    }
    raise(SIGKILL);
}

/* Asking the Sentry to write into the stub's pages, or to change them:
 * no guest mapping is there, so the answers are those for unmapped
 * memory (the same natively, where nothing is mapped there). */
static void through_syscalls(void)
{
    int z = open("/dev/zero", O_RDONLY);
    E("read_into_code", read(z, (void *)STUB_BASE, 16), EFAULT);
    E("read_into_control", read(z, (void *)CTRL, 16), EFAULT);
    E("read_into_messages", read(z, (void *)THREADS, 16), EFAULT);
    E("read_into_ptrace_stub", read(z, (void *)PTRACE_STUB, 16), EFAULT);
    int p[2];
    if (pipe(p) == 0) {
        E("write_from_control", write(p[1], (void *)CTRL, 16), EFAULT);
        E("write_from_messages", write(p[1], (void *)THREADS, 16), EFAULT);
        close(p[0]);
        close(p[1]);
    }
    close(z);
    E("mprotect_control", mprotect((void *)CTRL, 4096, PROT_READ | PROT_WRITE), ENOMEM);
    E("mprotect_ptrace_stub", mprotect((void *)PTRACE_STUB, 4096, PROT_READ | PROT_WRITE), ENOMEM);
    E("madvise_messages", madvise((void *)THREADS, 4096, MADV_DONTNEED), ENOMEM);
}

static void unmap_stub(void)
{
    munmap((void *)STUB_BASE, 0x200000);
    munmap((void *)PTRACE_STUB, 4096);
    getppid();
}

static void map_over_stub(void)
{
    mmap((void *)STUB_BASE, 0x200000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    mmap((void *)PTRACE_STUB, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    getppid();
}

/* Jump into the stub's code (systrap: its SIGSYS handler and control
 * loop; ptrace: its syscall; int3) with our registers. An alarm ends a
 * jump that spins. */
static unsigned long jump_to;
static void jump_into_stub(void)
{
    alarm(2);
    ((void (*)(void))jump_to)();
}

static int jumps_contained(void)
{
    static const unsigned long targets[] = {STUB_BASE, STUB_BASE + 0x10, STUB_BASE + 0x80, STUB_BASE + 0x400,
                                            PTRACE_STUB, PTRACE_STUB + 2};
    int all = 1;
    for (unsigned i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        jump_to = targets[i];
        all &= killed(jump_into_stub);
    }
    return all;
}

/* A process that leaves forged signal frames behind for whoever comes
 * next: a second thread parks in a blocking call; the first rewrites that
 * thread's saved frame (the interrupt signal blocked, a return into the
 * stub's ready trap) and points its message page at a decoy, then exits.
 * Systrap recycles a dead process's stub for a later one only after it
 * proves the stub's threads clean, so the processes after this one must
 * still be interruptible. Natively there is nothing to rewrite. */
static void *park(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return 0;
}

static unsigned long find_ready_trap(void)
{
    /* mov eax, 39; syscall */
    static const unsigned char pat[] = {0xb8, 0x27, 0, 0, 0, 0x0f, 0x05};
    const unsigned char *c = (const unsigned char *)STUB_BASE;
    for (int i = 0; i + (int)sizeof pat < 8192; i++)
        if (!memcmp(c + i, pat, sizeof pat))
            return (unsigned long)(c + i + 5);
    return 0;
}

static void leave_forged_frames(void)
{
    pthread_t t;
    pthread_create(&t, 0, park, 0);
    usleep(50000);
    struct sigaction sa = {0};
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, 0);
    if (sigsetjmp(env, 1) == 0) {
        unsigned long ready = find_ready_trap();
        for (int i = 0; ready && i < 16; i++) {
            unsigned long m = THREADS + (unsigned long)i * 0x10000;
            volatile unsigned int *state = (volatile unsigned int *)m;
            unsigned long uc = *(volatile unsigned long *)(m + 0x18);
            if (*state != 1 || uc < m + 4096 || uc > m + 0x10000 - 304)
                continue;
            unsigned long *greg = (unsigned long *)(uc + 40);
            *(unsigned long *)(uc + 296) = 1UL << (SIGCHLD - 1);
            greg[16] = ready;          /* rip */
            greg[13] = 39;             /* rax */
            greg[15] = m;              /* rsp */
            *(volatile unsigned long *)(m + 0x18) = uc - 0x2000;
        }
    }
    _exit(0);
}

static void spin(void)
{
    for (;;)
        __asm__ volatile("" ::: "memory");
}

/* Children that spin until SIGTERM: each must die of it (an alarm ends
 * the wait for one that does not). */
static int later_children_interruptible(void)
{
    for (int i = 0; i < 6; i++) {
        pid_t p = fork();
        if (p == 0)
            spin();
        usleep(20000);
        kill(p, SIGTERM);
        alarm(5);
        int st = 0;
        pid_t r = waitpid(p, &st, 0);
        alarm(0);
        if (r != p || !WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
            return 0;
    }
    return 1;
}

/* The vsyscall page: the host kernel emulates it (a host syscall the
 * Sentry never sees, or a fault); either way nothing else is harmed. */
static void call_vsyscall(void)
{
    struct timeval { long s, us; } tv;
    ((long (*)(void *, void *))VSYSCALL)(&tv, 0);
    getppid();
}

/* Natively the address space is randomised: about one run in two hundred
 * puts the main stack within growing distance above one of the probed
 * regions, and then a write or read() there silently grows the stack
 * instead of faulting, so two native runs differ. Such a run starts again
 * with a fresh layout. Nothing of the sandbox's own ever lies there (the
 * Sentry hides the stub and keeps guest mappings below it), so under
 * runsc-lite this never re-executes. */
#define GROWTH_MARGIN (64UL << 20)
static int near_probes(unsigned long s, unsigned long e)
{
    return (s < STUB_BASE + 0x200000 + GROWTH_MARGIN && e > STUB_BASE) || e > PTRACE_STUB;
}

static void avoid_probed_regions(char **argv)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return;
    char line[512];
    int clash = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < VSYSCALL && near_probes(s, e))
            clash = 1;
    }
    fclose(f);
    const char *tries = getenv("STUB_ATTACKS_TRIES");
    int n = tries ? atoi(tries) : 0;
    if (!clash || n >= 20)
        return;
    char buf[16];
    snprintf(buf, sizeof buf, "%d", n + 1);
    setenv("STUB_ATTACKS_TRIES", buf, 1);
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    (void)argc;
    avoid_probed_regions(argv);
    setvbuf(stdout, 0, _IOLBF, 0);
    B("write_control_page contained", killed(write_control_page));
    B("scribble_message_page contained", killed_or_unharmed(scribble_message_page));
    B("stub_syscall_remap contained", killed(remap_control_page_writable));
    B("forged_sigreturn contained", killed(forge_sigreturn));
    through_syscalls();
    B("unmap_stub contained", killed_or_unharmed(unmap_stub));
    B("map_over_stub contained", killed_or_unharmed(map_over_stub));
    B("jump_into_stub contained", jumps_contained());
    B("vsyscall contained", killed_or_unharmed(call_vsyscall));
    B("forged_frames contained", killed_or_unharmed(leave_forged_frames));
    B("later_children_interruptible", later_children_interruptible());
    /* The sandbox itself is fine. */
    int p[2];
    T("pipe_after_attacks", pipe(p));
    T("write_after_attacks", write(p[1], "ok", 2));
    char b[2];
    T("read_after_attacks", read(p[0], b, 2));
    printf("done\n");
    return 0;
}
