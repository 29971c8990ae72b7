/* Memory faults delivered as signals: SIGSEGV on unmapped and on
 * protected memory (with si_code and si_addr), SIGBUS past the end of a
 * file mapping. Needs rt_sigaction handlers, sigreturn and siglongjmp. */
#include "common.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

static sigjmp_buf jb;
static volatile int got_sig, got_code;
static void *volatile got_addr;

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    got_addr = si->si_addr;
    siglongjmp(jb, 1);
}

static const char *code_name(int sig, int code)
{
    if (sig == SIGSEGV && code == SEGV_MAPERR)
        return "SEGV_MAPERR";
    if (sig == SIGSEGV && code == SEGV_ACCERR)
        return "SEGV_ACCERR";
    if (sig == SIGBUS && code == BUS_ADRERR)
        return "BUS_ADRERR";
    if (code == SI_KERNEL)
        return "SI_KERNEL";
    static char b[32];
    snprintf(b, sizeof b, "code%d", code);
    return b;
}

/* Reads (write=0) or writes (write=1) *p and reports what happened. */
static void probe(const char *name, volatile unsigned char *p, int write)
{
    got_sig = 0;
    got_addr = NULL;
    if (sigsetjmp(jb, 1) == 0) {
        if (write)
            *p = 1;
        else
            (void)*p;
        printf("%s no_signal\n", name);
    } else {
        printf("%s %s %s addr_match=%s\n", name, got_sig == SIGSEGV ? "SIGSEGV" : got_sig == SIGBUS ? "SIGBUS" : "other",
               code_name(got_sig, got_code), got_addr == (void *)p ? "yes" : "no");
    }
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
    T("sigaction_bus", sigaction(SIGBUS, &sa, NULL));

    unsigned char *p = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 1;
    probe("rw_page_write", p, 1);
    T("munmap", munmap(p + PG, PG));
    probe("unmapped_read", p + PG + 8, 0);
    probe("unmapped_write", p + PG + 8, 1);
    T("mprotect_ro", mprotect(p + 2 * PG, PG, PROT_READ));
    probe("readonly_read", p + 2 * PG, 0);
    probe("readonly_write", p + 2 * PG + 16, 1);
    T("mprotect_none", mprotect(p, PG, PROT_NONE));
    probe("prot_none_read", p + 100, 0);
    T("mprotect_back", mprotect(p, PG, PROT_READ | PROT_WRITE));
    probe("after_mprotect_back_write", p + 100, 1);
    probe("null_read", (unsigned char *)0, 0);
    probe("low_address_write", (unsigned char *)16, 1);
    probe("kernel_address_read", (unsigned char *)0xffff880000000000UL, 0);
    probe("noncanonical_read", (unsigned char *)0x8000000000000000UL, 0);

    /* Text is not writable. */
    probe("text_write", (unsigned char *)(uintptr_t)&main, 1);

    /* SIGBUS past the end of a file mapping. */
    int fd = open(sp("small"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fd, "abc", 3);
    unsigned char *m = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    probe("file_map_in_first_page", m + 10, 0);
    probe("file_map_past_eof_page", m + PG + 10, 0);
    close(fd);

    /* The handler ran with the signal unblocked again (SA_NODEFER). */
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    B("segv_not_blocked_after", !sigismember(&cur, SIGSEGV));

    guest_cleanup();
    P("done\n");
    return 0;
}
