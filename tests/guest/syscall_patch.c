/* Patched syscall sites (systrap rewrites hot `mov $nr, %eax; syscall`
 * pairs into jumps to its trampolines): guests must not be able to tell,
 * whatever they do with their code. Every check here runs the same
 * natively. Sites get hot after a few traps, so every site is called many
 * times before the interesting part. Linked dynamically: the sites in
 * libc.so and in mmap'd pages are the ones within reach of the trampoline.
 * glibc's generic syscall() is patched too (its last instruction before
 * the `syscall` loads the sixth argument from the stack): see wrapper().
 */
#include "common.h"
#include <asm/prctl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <ucontext.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define HOT 200

typedef long (*fn_t)(void);

/* mov $nr, %eax; syscall; ret */
static void put_site(unsigned char *p, int nr)
{
    unsigned char c[8] = {0xb8, (unsigned char)nr, 0, 0, 0, 0x0f, 0x05, 0xc3};
    memcpy(p, c, 8);
}

static int call_all(fn_t f, long want)
{
    for (int i = 0; i < HOT; i++)
        if (f() != want)
            return 0;
    return 1;
}

static void own_code(void)
{
    long ppid = getppid(), pid = getpid();
    unsigned char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    B("own_map", page != MAP_FAILED);
    put_site(page, SYS_getppid);
    /* At 16: mov $getpid, %eax; jmp to the site's own syscall (offset 5). */
    unsigned char j[10] = {0xb8, SYS_getpid, 0, 0, 0, 0xe9};
    int32_t rel = 5 - (16 + 10);
    memcpy(j + 6, &rel, 4);
    memcpy(page + 16, j, 10);
    T("own_rx", mprotect(page, 4096, PROT_READ | PROT_EXEC));
    B("own_site", call_all((fn_t)page, ppid));
    B("jump_to_syscall", call_all((fn_t)(page + 16), pid));
    /* A code generator making its code writable reads back what it wrote,
     * and may change just the immediate. */
    T("own_rw", mprotect(page, 4096, PROT_READ | PROT_WRITE));
    B("reads_back_mov", page[0] == 0xb8 && page[1] == SYS_getppid && page[5] == 0x0f);
    page[1] = SYS_getpid;
    T("own_rx_again", mprotect(page, 4096, PROT_READ | PROT_EXEC));
    B("rewritten_imm", call_all((fn_t)page, pid));
    /* New code mapped over the old page. */
    unsigned char *again = mmap(page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    B("fixed_over", again == page);
    put_site(page, SYS_getppid);
    T("fixed_rx", mprotect(page, 4096, PROT_READ | PROT_EXEC));
    B("fixed_site", call_all((fn_t)page, ppid));
    /* Writable and executable: self-modifying code, rewritten between
     * calls. */
    T("rwx", mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
    int good = 1;
    for (int i = 0; i < HOT; i++) {
        page[1] = (i & 1) ? SYS_getpid : SYS_getppid;
        if (((fn_t)page)() != ((i & 1) ? pid : ppid))
            good = 0;
    }
    B("self_modifying", good);
    munmap(page, 4096);
}

static void file_code(void)
{
    long ppid = getppid();
    int fd = memfd_create("code", 0);
    T("memfd", fd);
    unsigned char c[4096] = {0};
    put_site(c, SYS_getppid);
    T("write_code", write(fd, c, sizeof c) == sizeof c ? 0 : -1);
    unsigned char *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    B("file_map", p != MAP_FAILED);
    B("file_site", call_all((fn_t)p, ppid));
    T("file_unmap", munmap(p, 4096));
    p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    B("file_remap", p != MAP_FAILED);
    B("file_site_again", call_all((fn_t)p, ppid));
    B("file_site_reads_mov", p[0] == 0xb8);
    munmap(p, 4096);
    p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    B("shared_map", p != MAP_FAILED);
    B("shared_site", call_all((fn_t)p, ppid));
    munmap(p, 4096);
    unsigned char back[8];
    T("pread", pread(fd, back, 8, 0) == 8 ? 0 : -1);
    B("file_unchanged", memcmp(back, c, 8) == 0);
    close(fd);
}

static volatile int handled;
static volatile double fp_in_handler;

static void on_usr1(int sig)
{
    (void)sig;
    /* FPU state belongs to the interrupted code: use it here. */
    fp_in_handler = fp_in_handler * 1.5 + 0.25;
    handled++;
}

static pthread_t target;
static volatile int stop_loop;

static void *signaller(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        int before = handled;
        pthread_kill(target, SIGUSR1);
        while (handled == before)
            sched_yield();
    }
    stop_loop = 1;
    return NULL;
}

static void signals(void)
{
    long ppid = getppid();
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    T("sigaction", sigaction(SIGUSR1, &sa, NULL));
    target = pthread_self();
    int n = 300;
    pthread_t t;
    double acc = 1.0;
    long bad = 0, calls = 0;
    T("signaller", pthread_create(&t, NULL, signaller, &n) == 0 ? 0 : -1);
    while (!stop_loop) {
        if (getppid() != ppid)
            bad++;
        acc = acc * 1.0000001 + 1.0;
        calls++;
    }
    pthread_join(t, NULL);
    double check = 1.0;
    for (long i = 0; i < calls; i++)
        check = check * 1.0000001 + 1.0;
    V("signals_handled", handled);
    B("results_while_signalled", bad == 0);
    B("fp_kept", acc == check);
}

static void *getppid_loop(void *arg)
{
    long ppid = (long)arg;
    for (int i = 0; i < 2000; i++)
        if (getppid() != ppid)
            return (void *)1;
    return NULL;
}

static void threads(void)
{
    pthread_t t[4];
    long ppid = getppid();
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, getppid_loop, (void *)ppid);
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad |= r != NULL;
    }
    B("threads", !bad);
}

/* glibc's read() sets its number with `xor %eax, %eax`; its site is
 * patched at the `cmpb $0, __libc_single_threaded` that starts it, and
 * the slot takes the slow path itself once a thread exists. */
static int pipe_reads(int rfd, int wfd, int n)
{
    for (int i = 0; i < n; i++) {
        char c = (char)('a' + i % 26), got = 0;
        if (write(wfd, &c, 1) != 1 || read(rfd, &got, 1) != 1 || got != c)
            return 0;
    }
    return 1;
}

static int read_fds[2];

static void *reader_thread(void *arg)
{
    (void)arg;
    return (void *)(long)pipe_reads(read_fds[0], read_fds[1], HOT);
}

static void reads(void)
{
    T("read_pipe", pipe(read_fds));
    B("read_hot", pipe_reads(read_fds[0], read_fds[1], HOT));
    int ebadf = 1, efault = 1, eof = 1;
    for (int i = 0; i < HOT; i++) {
        errno = 0;
        ebadf &= read(-1, &ebadf, 1) == -1 && errno == EBADF;
    }
    B("read_ebadf", ebadf);
    for (int i = 0; i < HOT; i++) {
        char c = 'x';
        errno = 0;
        write(read_fds[1], &c, 1);
        efault &= read(read_fds[0], (void *)1, 1) == -1 && errno == EFAULT;
        read(read_fds[0], &c, 1);
    }
    B("read_efault", efault);
    /* With a second thread, glibc's slow path (cancellation points). */
    pthread_t t;
    void *r = NULL;
    pthread_create(&t, NULL, reader_thread, NULL);
    pthread_join(t, &r);
    B("read_in_thread", r == (void *)1L);
    B("read_after_thread", pipe_reads(read_fds[0], read_fds[1], HOT));
    close(read_fds[1]);
    for (int i = 0; i < HOT; i++) {
        char c;
        eof &= read(read_fds[0], &c, 1) == 0;
    }
    B("read_eof", eof);
    close(read_fds[0]);
}

static void forked(void)
{
    for (int i = 0; i < HOT; i++)
        getppid();
    long me = getpid();
    pid_t c = fork();
    if (c == 0) {
        int ok = 1;
        for (int i = 0; i < HOT; i++)
            if (getppid() != me)
                ok = 0;
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    B("fork_child", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void gs_base(void)
{
    static long block[16];
    long ppid = getppid();
    unsigned long got = 0;
    T("set_gs", syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)block));
    int ok = 1;
    for (int i = 0; i < HOT; i++)
        if (getppid() != ppid)
            ok = 0;
    T("get_gs", syscall(SYS_arch_prctl, ARCH_GET_GS, &got));
    B("gs_kept", got == (unsigned long)block);
    B("calls_with_gs", ok);
    T("clear_gs", syscall(SYS_arch_prctl, ARCH_SET_GS, 0UL));
    T("get_gs_zero", syscall(SYS_arch_prctl, ARCH_GET_GS, &got));
    B("gs_zero", got == 0);
}

/* glibc's syscall(): its `mov 0x8(%rsp), %r9; syscall`, found before any
 * call makes it hot (a patched site reads differently). */
static unsigned char *wrapper_fn, *wrapper_site;

static void find_wrapper(void)
{
    static const unsigned char tail[7] = {0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05};
    wrapper_fn = dlsym(RTLD_DEFAULT, "syscall");
    for (int i = 0; wrapper_fn && i < 64 && !wrapper_site; i++)
        if (memcmp(wrapper_fn + i, tail, sizeof tail) == 0)
            wrapper_site = wrapper_fn + i;
}

/* Enter syscall(nr) with rsp = sp, its return address stored at sp by
 * hand (no call: the stack is the point). */
static long call_on_stack(long nr, char *sp)
{
    long ret;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "mov %3, %%rsp\n\t"
                     "lea 1f(%%rip), %%rax\n\t"
                     "mov %%rax, (%%rsp)\n\t"
                     "mov %2, %%rdi\n\t"
                     "jmp *%1\n\t"
                     "1: mov %%r12, %%rsp\n\t"
                     : "=&a"(ret)
                     : "r"(wrapper_fn), "r"(nr), "r"(sp)
                     : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "memory", "cc");
    return ret;
}

static sigjmp_buf fault_jb;
static volatile unsigned long fault_rip;

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)si;
    fault_rip = ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
    siglongjmp(fault_jb, 1);
}

static void wrapper(void)
{
    B("wrapper_found", wrapper_site != NULL);
    if (!wrapper_site)
        return;
    long ppid = getppid();
    int ok = 1;
    for (int i = 0; i < HOT; i++)
        if (syscall(SYS_getppid) != ppid)
            ok = 0;
    B("wrapper_calls", ok);
    /* The sixth argument comes from the stack: mmap's offset. */
    char path[] = "/tmp/syscall_patch.XXXXXX";
    int fd = mkstemp(path);
    T("wrapper_file", fd);
    unlink(path);
    static char pages[8192];
    memset(pages, 'a', 4096);
    memset(pages + 4096, 'b', 4096);
    T("wrapper_write", write(fd, pages, sizeof pages) == (ssize_t)sizeof pages ? 0 : -1);
    ok = 1;
    for (int i = 0; i < HOT; i++) {
        char *m = (char *)syscall(SYS_mmap, 0L, 4096L, (long)PROT_READ, (long)MAP_PRIVATE, (long)fd, 4096L);
        if (m == MAP_FAILED || m[0] != 'b' || munmap(m, 4096) != 0)
            ok = 0;
    }
    B("wrapper_sixth_arg", ok);
    close(fd);
    ok = 1;
    for (int i = 0; i < HOT; i++) {
        errno = 0;
        if (syscall(1000) != -1 || errno != ENOSYS)
            ok = 0;
    }
    B("wrapper_enosys", ok);
    /* A stack whose next word is unmapped: the site's own load faults, at
     * the site. */
    char *st = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    B("wrapper_stack", st != MAP_FAILED);
    T("wrapper_guard_low", mprotect(st, 4096, PROT_NONE));
    T("wrapper_guard_high", mprotect(st + 2 * 4096, 4096, PROT_NONE));
    static char alt[65536];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
    T("wrapper_altstack", sigaltstack(&ss, NULL));
    struct sigaction sa = {0}, old;
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    T("wrapper_sigsegv", sigaction(SIGSEGV, &sa, &old));
    fault_rip = 0;
    if (sigsetjmp(fault_jb, 1) == 0)
        call_on_stack(SYS_getppid, st + 2 * 4096 - 8);
    B("wrapper_fault_at_site", fault_rip == (unsigned long)wrapper_site);
    /* Nothing mapped below rsp: the wrapper never writes there. */
    fault_rip = 0;
    long got = -2;
    if (sigsetjmp(fault_jb, 1) == 0)
        got = call_on_stack(SYS_getppid, st + 4096);
    B("wrapper_nothing_below", got == ppid && fault_rip == 0);
    /* And the site still works from an ordinary stack. */
    B("wrapper_after_faults", call_all((fn_t)getppid, ppid) && syscall(SYS_getppid) == ppid);
    sigaction(SIGSEGV, &old, NULL);
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    munmap(st, 3 * 4096);
}

/* A signal raised by a patched call (kill of the caller itself) is
 * delivered on that call's way back: the handler's frame and the code
 * after the call must see every register as the call left it, including
 * those the trampoline does not hand the Sentry on the fast way (all but
 * the number and the arguments). */
static volatile unsigned long seen[8];

static void on_usr2(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)si;
    greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
    seen[0] = g[REG_RBX];
    seen[1] = g[REG_RBP];
    seen[2] = g[REG_R12];
    seen[3] = g[REG_R13];
    seen[4] = g[REG_R14];
    seen[5] = g[REG_R15];
    seen[6] = g[REG_RIP];
    seen[7] = g[REG_RSP];
}

/* Calls `site` (kill) with pid and sig and regs[0..6] in rbx, rbp and
 * r12-r15; regs: those registers after the call, then rsp at the call
 * instruction. Below the red zone, so pushes touch nothing the compiler
 * keeps there. */
static long kill_with_marks(unsigned char *site, long pid, long sig, unsigned long regs[7])
{
    long ret;
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "push %%rbx\n\t"
                     "push %%rbp\n\t"
                     "push %%r12\n\t"
                     "push %%r13\n\t"
                     "push %%r14\n\t"
                     "push %%r15\n\t"
                     "mov 0(%%rdx), %%rbx\n\t"
                     "mov 8(%%rdx), %%rbp\n\t"
                     "mov 16(%%rdx), %%r12\n\t"
                     "mov 24(%%rdx), %%r13\n\t"
                     "mov 32(%%rdx), %%r14\n\t"
                     "mov 40(%%rdx), %%r15\n\t"
                     "mov %%rsp, 48(%%rdx)\n\t"
                     "call *%%rcx\n\t"
                     "mov %%rbx, 0(%%rdx)\n\t"
                     "mov %%rbp, 8(%%rdx)\n\t"
                     "mov %%r12, 16(%%rdx)\n\t"
                     "mov %%r13, 24(%%rdx)\n\t"
                     "mov %%r14, 32(%%rdx)\n\t"
                     "mov %%r15, 40(%%rdx)\n\t"
                     "pop %%r15\n\t"
                     "pop %%r14\n\t"
                     "pop %%r13\n\t"
                     "pop %%r12\n\t"
                     "pop %%rbp\n\t"
                     "pop %%rbx\n\t"
                     "add $128, %%rsp"
                     : "=a"(ret), "+D"(pid), "+S"(sig), "+c"(site)
                     : "d"(regs)
                     : "r8", "r9", "r10", "r11", "memory", "cc");
    return ret;
}

static void regs_at_signal(void)
{
    unsigned char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        T("mmap_site", -1);
        return;
    }
    put_site(p, SYS_kill);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr2;
    sa.sa_flags = SA_SIGINFO;
    T("sigaction_usr2", sigaction(SIGUSR2, &sa, NULL));
    unsigned long out[7];
    long pid = getpid(), bad = 0;
    /* Signal 0: checks only. Hot, so the site is patched by now; other
     * register values each time, so none seen before can pass for them. */
    for (int i = 0; i < HOT; i++) {
        for (int k = 0; k < 6; k++)
            out[k] = (unsigned long)(i * 8 + k);
        if (kill_with_marks(p, pid, 0, out) != 0 || out[5] != (unsigned long)(i * 8 + 5))
            bad++;
    }
    B("kill0_calls", bad == 0);
    memset((void *)seen, 0, sizeof seen);
    for (int k = 0; k < 6; k++)
        out[k] = 0x1111111111111111ul * (unsigned long)(k + 1);
    long r = kill_with_marks(p, pid, SIGUSR2, out);
    V("kill_usr2", r);
    int after = 1, in_handler = 1;
    for (int i = 0; i < 6; i++) {
        unsigned long want = 0x1111111111111111ul * (unsigned long)(i + 1);
        after &= out[i] == want;
        in_handler &= seen[i] == want;
    }
    B("callee_saved_after_call", after);
    B("callee_saved_in_handler", in_handler);
    B("rip_in_handler", seen[6] == (unsigned long)(p + 7));
    B("rsp_in_handler", seen[7] == out[6] - 8);
    munmap(p, 4096);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    find_wrapper();
    own_code();
    file_code();
    reads();
    threads();
    signals();
    regs_at_signal();
    forked();
    gs_base();
    wrapper();
    printf("done\n");
    return 0;
}
