/* A guest that attacks systrap's patched-syscall machinery (patch.rs):
 * the trampoline in the stub's code, the slot pages, the trampoline's
 * state in the message pages. Each attack runs in a child: whatever it
 * does, only the child may suffer, and the rest of the sandbox goes on.
 *
 * Natively (and under ptrace) nothing is mapped there, so the children
 * fault; "contained" is printed when the child died of a signal or exited
 * cleanly, everywhere.
 */
#include "common.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>

#define STUB_BASE 0x7ffff0000000UL
#define SLOTS (STUB_BASE + 0x20000)
#define THREADS (STUB_BASE + 0x100000)
/* The slots' second copy, within reach of a static executable. */
#define LOW_SLOTS 0x300000UL

static sigjmp_buf env;
static void on_segv(int s) { (void)s; siglongjmp(env, 1); }

static int contained(void (*fn)(void))
{
    pid_t p = fork();
    if (p == 0) {
        alarm(5);
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    return WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The trampoline's first bytes (lahf; seto %al), if the stub code is there. */
static unsigned char *find_trampoline(void)
{
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, &old);
    unsigned char *found = 0;
    if (sigsetjmp(env, 1) == 0) {
        unsigned char *c = (unsigned char *)STUB_BASE;
        for (int i = 0; i + 3 < 8192; i++)
            if (c[i] == 0x9f && c[i + 1] == 0x0f && c[i + 2] == 0x90 && c[i + 3] == 0xc0) {
                found = c + i;
                break;
            }
    }
    sigaction(SIGSEGV, &old, 0);
    return found;
}

static unsigned long target, fake_rcx;

static void jump(void)
{
    __asm__ volatile("mov %0, %%rcx\n\txor %%edi, %%edi\n\tjmp *%1" ::"r"(fake_rcx), "r"(target)
                     : "rcx", "rdi", "memory");
}

/* Forged slot data: a syscall number and where to "return". */
static struct {
    uint32_t nr, pad;
    uint64_t ret;
} fake;

static void forged_request(void)
{
    /* getpid, "returning" into _exit(0): the request is a syscall the
     * child could make anyway. */
    fake.nr = SYS_getpid;
    fake.ret = (uint64_t)(void *)_exit;
    fake_rcx = (unsigned long)&fake;
    jump();
}

static void scribble_states(void)
{
    /* Every thread's state word says "trampoline event", and the register
     * block is garbage. */
    for (int i = 0; i < 8; i++) {
        volatile unsigned char *m = (unsigned char *)(THREADS + i * 0x10000UL);
        memset((void *)(m + 0x40), 0x43, 0xb0);
        *(volatile unsigned *)m = 3;
    }
    for (int i = 0; i < 100; i++)
        getppid();
}

/* Jumps to the first bytes of the first slots at `base`, each contained. */
static int jumps_into_slots(unsigned long base)
{
    int all = 1;
    for (int k = 0; k < 128; k += 3) {
        target = base + k;
        fake_rcx = 0;
        all &= contained(jump);
    }
    return all;
}

static void write_low_slots(void)
{
    /* Natively nothing is there; under systrap the copy is read-only. */
    memset((void *)LOW_SLOTS, 0xcc, 64);
    getppid();
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    unsigned char *t = find_trampoline();
    int all = 1;
    for (int k = 0; k < 400; k += 7) {
        target = t ? (unsigned long)(t + k) : STUB_BASE + k;
        fake_rcx = 0x1000 + k;
        all &= contained(jump);
    }
    B("jump_into_trampoline contained", all);
    B("jump_into_slots contained", jumps_into_slots(SLOTS));
    B("jump_into_low_slots contained", jumps_into_slots(LOW_SLOTS));
    B("write_low_slots contained", contained(write_low_slots));
    if (t)
        target = (unsigned long)t;
    else
        target = STUB_BASE;
    B("forged_request contained", contained(forged_request));
    B("scribbled_states contained", contained(scribble_states));
    /* The sandbox itself is fine. */
    int p[2];
    T("pipe_after_attacks", pipe(p));
    T("write_after_attacks", write(p[1], "ok", 2));
    char b[2];
    T("read_after_attacks", read(p[0], b, 2));
    B("getppid_after_attacks", getppid() >= 0);
    printf("done\n");
    return 0;
}
