/* Private anonymous memory the Sentry maps into the host only on first
 * touch (sentry/src/mm/lazy.rs): every operation on memory not touched
 * yet must behave as on touched memory. mmap+munmap untouched, mprotect
 * before the first touch, PROT_NONE, partial munmap and MAP_FIXED over
 * touched memory, fork before the first touch, mremap and MADV_DONTNEED
 * of untouched memory, a thread touching what another mapped, and a
 * vfork child (which may share the parent's memory) reading it first.
 * Whether the parent sees a vfork child's writes is left undefined by
 * POSIX and differs by platform here, so it is not printed. */
#include "common.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

static sigjmp_buf jb;
static volatile int got_sig, got_code;

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    siglongjmp(jb, 1);
}

/* Reads (write=0) or writes (write=1) *p and reports what happened. */
static void probe(const char *name, volatile unsigned char *p, int write)
{
    got_sig = 0;
    if (sigsetjmp(jb, 1) == 0) {
        unsigned char v = 0;
        if (write)
            *p = 7;
        else
            v = *p;
        printf("%s ok value=%d\n", name, write ? *p : v);
    } else {
        printf("%s %s %s\n", name, got_sig == SIGSEGV ? "SIGSEGV" : "other",
               got_code == SEGV_MAPERR   ? "SEGV_MAPERR"
               : got_code == SEGV_ACCERR ? "SEGV_ACCERR"
                                         : "code?");
    }
}

static void *toucher(void *arg)
{
    unsigned char *p = arg;
    p[0] = 9;
    return NULL;
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    long PG = sysconf(_SC_PAGESIZE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    T("sigaction_segv", sigaction(SIGSEGV, &sa, NULL));

    /* Untouched, then unmapped: gone. */
    for (int i = 0; i < 100; i++) {
        void *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED || munmap(m, PG) != 0) {
            P("mmap_munmap_loop failed at %d\n", i);
            break;
        }
    }
    P("mmap_munmap_loop done\n");
    unsigned char *a = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    T("munmap_untouched", munmap(a, PG));
    probe("after_munmap_untouched_read", a, 0);

    /* mprotect before the first touch. */
    unsigned char *b = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    T("mprotect_ro_untouched", mprotect(b, PG, PROT_READ));
    probe("ro_untouched_read", b, 0);
    probe("ro_untouched_write", b + 8, 1);
    probe("rw_neighbour_write", b + PG, 1);
    T("mprotect_rw_again", mprotect(b, PG, PROT_READ | PROT_WRITE));
    probe("rw_again_write", b, 1);

    /* PROT_NONE untouched. */
    unsigned char *c = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    probe("none_read", c, 0);
    probe("none_write", c, 1);
    T("none_to_rw", mprotect(c, PG, PROT_READ | PROT_WRITE));
    probe("none_to_rw_write", c, 1);

    /* Partial munmap of an untouched range. */
    unsigned char *d = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    T("munmap_middle", munmap(d + PG, PG));
    probe("left_write", d, 1);
    probe("middle_read", d + PG, 0);
    probe("right_read", d + 2 * PG, 0);

    /* MAP_FIXED of untouched memory over touched memory: zeros. */
    unsigned char *e = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(e, 0x5a, 2 * PG);
    unsigned char *e2 = mmap(e, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    B("fixed_same_address", e2 == e);
    probe("fixed_over_touched_read", e, 0);
    probe("fixed_neighbour_kept_read", e + PG, 0);

    /* fork before the first touch: each side its own zeros. */
    unsigned char *f = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    f[3 * PG] = 3; /* one page touched, the others not */
    pid_t pid = fork();
    if (pid == 0) {
        int bad = f[0] != 0 || f[3 * PG] != 3;
        f[0] = 1;
        f[PG] = 1;
        f[3 * PG] = 4;
        _exit(bad ? 1 : 0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    B("fork_child_ok", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    B("fork_parent_untouched_zero", f[0] == 0 && f[PG] == 0);
    B("fork_parent_touched_kept", f[3 * PG] == 3);
    f[2 * PG] = 2;
    B("fork_parent_write_after", f[2 * PG] == 2);

    /* mremap of untouched memory: moved, grown, still zeros. */
    unsigned char *g = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *g2 = mremap(g, PG, 4 * PG, MREMAP_MAYMOVE);
    B("mremap_ok", g2 != MAP_FAILED);
    if (g2 != MAP_FAILED) {
        probe("mremap_first_read", g2, 0);
        probe("mremap_last_write", g2 + 3 * PG, 1);
    }

    /* MADV_DONTNEED on untouched and on touched memory. */
    unsigned char *h = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    T("dontneed_untouched", madvise(h, 2 * PG, MADV_DONTNEED));
    h[0] = 5;
    T("dontneed_touched", madvise(h, 2 * PG, MADV_DONTNEED));
    probe("dontneed_read", h, 0);

    /* A thread touching what the main thread mapped. */
    unsigned char *k = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, toucher, k) == 0) {
        pthread_join(t, NULL);
        B("thread_touch_seen", k[0] == 9);
    }

    /* vfork: the child faults the parent's untouched page in first. */
    static volatile unsigned char *vshared;
    vshared = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pid_t vp = vfork();
    if (vp == 0)
        _exit(vshared[100] == 0 ? 0 : 1);
    waitpid(vp, &st, 0);
    B("vfork_child_read_zero", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    vshared[0] = 12;
    B("vfork_parent_writes_after", vshared[0] == 12 && vshared[100] == 0);

    /* MAP_POPULATE and a large reservation, touched at both ends. */
    unsigned char *m = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    B("populate_ok", m != MAP_FAILED && m[0] == 0);
    unsigned char *r = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    r[0] = 1;
    r[(64 << 20) - 1] = 2;
    B("reservation_ends", r[0] == 1 && r[(64 << 20) - 1] == 2);

    guest_cleanup();
    P("done\n");
    return 0;
}
