/* rseq: glibc's own registration (every thread, cpu_id valid), then,
 * re-run with GLIBC_TUNABLES=glibc.pthread.rseq=0, a registration of our
 * own: Linux's checks (length, alignment, flags, EBUSY, signature EPERM),
 * the CPU fields, a critical section aborted by a signal, a bad abort
 * signature killing with SIGSEGV, and unregistration. The process pins
 * itself to CPU 0 so the CPU number is the same natively. */
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/wait.h>

extern char **environ;

#define SIG 0x53053053

struct area {
    uint32_t cpu_id_start;
    int32_t cpu_id;
    uint64_t rseq_cs;
    uint32_t flags, node_id, mm_cid;
    char pad[4];
} __attribute__((aligned(32)));

struct cs_desc {
    uint32_t version, flags;
    uint64_t start_ip, post_commit_offset, abort_ip;
} __attribute__((aligned(32)));

static struct area area;
static struct area area2;

static long rseq_(void *a, uint32_t len, int flags, uint32_t sig)
{
    return syscall(SYS_rseq, a, len, flags, sig);
}

static void pin(void)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(0, &s);
    sched_setaffinity(0, sizeof s, &s);
}

static void *thread_cpu(void *p)
{
    struct rseq *r = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
    *(int *)p = __rseq_size > 0 ? (int)r->cpu_id : -5;
    return NULL;
}

static void on_usr1(int s)
{
    (void)s;
}

/* Spin inside a critical section until it is aborted; returns 1 when
 * the good abort handler ran (the signature before it is RSEQ_SIG), 2 for
 * the bad one (preceded by another value: Linux kills with SIGSEGV). */
static int spin_in_cs(struct area *a, int good_sig, uint32_t cs_flags)
{
    static struct cs_desc d;
    long aborted = 0;
    d.flags = cs_flags;
    __asm__ volatile("lea 1f(%%rip), %%rax\n\t"
                     "mov %%rax, 8(%[d])\n\t" /* start_ip */
                     "lea 2f(%%rip), %%rcx\n\t"
                     "sub %%rax, %%rcx\n\t"
                     "mov %%rcx, 16(%[d])\n\t" /* post_commit_offset */
                     "lea 3f(%%rip), %%rax\n\t"
                     "lea 4f(%%rip), %%rcx\n\t"
                     "test %[good], %[good]\n\t"
                     "cmovz %%rcx, %%rax\n\t"
                     "mov %%rax, 24(%[d])\n\t" /* abort_ip */
                     "mov %[d], 8(%[a])\n\t" /* a->rseq_cs = d */
                     "1:\n\t"
                     "jmp 1b\n\t"
                     "2:\n\t"
                     "jmp 6f\n\t"
                     ".long 0x53053053\n\t"
                     "3:\n\t"
                     "movq $1, %[ab]\n\t"
                     "jmp 6f\n\t"
                     ".long 0x0badc0de\n\t"
                     "4:\n\t"
                     "movq $2, %[ab]\n\t"
                     "6:\n\t"
                     : [ab] "+m"(aborted)
                     : [d] "r"(&d), [a] "r"(a), [good] "r"((long)good_sig)
                     : "rax", "rcx", "memory", "cc");
    return (int)aborted;
}

static int signaller(void)
{
    int parent = getpid();
    int pid = fork();
    if (pid == 0) {
        /* Until the spinning process is gone (or kills this one), and
         * never past its life: a stray signaller would hit reused pids. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (int i = 0; i < 30000 && getppid() == parent && kill(parent, SIGUSR1) == 0; i++)
            usleep(2000);
        _exit(0);
    }
    return pid;
}

static void manual(void)
{
    B("glibc_not_registered", __rseq_size == 0);
    E("misaligned", rseq_((char *)&area2 + 8, 32, 0, SIG), EINVAL);
    E("short", rseq_(&area, 31, 0, SIG), EINVAL);
    E("bad_flags", rseq_(&area, 32, 2, SIG), EINVAL);
    E("unregister_none", rseq_(&area, 32, RSEQ_FLAG_UNREGISTER, SIG), EINVAL);
    E("unregister_bad_flags", rseq_(&area, 32, RSEQ_FLAG_UNREGISTER | 2, SIG), EINVAL);
    E("kernel_address", rseq_((void *)0xffffffffffffffe0ULL, 32, 0, SIG), EFAULT);
    area.cpu_id = -7;
    area.cpu_id_start = 77;
    T("register", rseq_(&area, 32, 0, SIG));
    V("cpu_id", area.cpu_id);
    V("cpu_id_start", area.cpu_id_start);
    E("again", rseq_(&area, 32, 0, SIG), EBUSY);
    E("again_other_sig", rseq_(&area, 32, 0, SIG + 1), EPERM);
    E("again_other_addr", rseq_(&area2, 32, 0, SIG), EINVAL);
    E("again_other_len", rseq_(&area, 64, 0, SIG), EINVAL);

    /* A fork keeps the registration. */
    int pid = fork();
    if (pid == 0)
        _exit(rseq_(&area, 32, 0, SIG) < 0 && errno == EBUSY ? 0 : 1);
    int st = 0;
    waitpid(pid, &st, 0);
    V("fork_keeps", WEXITSTATUS(st));

    /* A signal aborts the critical section to the handler. */
    signal(SIGUSR1, on_usr1);
    int s = signaller();
    int aborted = spin_in_cs(&area, 1, 0);
    kill(s, SIGKILL);
    waitpid(s, NULL, 0);
    V("aborted", aborted);
    V("rseq_cs_cleared", area.rseq_cs == 0);

    /* A bad signature before the abort handler: SIGSEGV. */
    pid = fork();
    if (pid == 0) {
        int s2 = signaller();
        int r = spin_in_cs(&area, 0, 0);
        kill(s2, SIGKILL);
        _exit(10 + r);
    }
    st = 0;
    waitpid(pid, &st, 0);
    V("bad_signature_signal", WIFSIGNALED(st) ? WTERMSIG(st) : -WEXITSTATUS(st));

    /* Deprecated flags in the descriptor: SIGSEGV as well. */
    pid = fork();
    if (pid == 0) {
        int s2 = signaller();
        int r = spin_in_cs(&area, 1, 1);
        kill(s2, SIGKILL);
        _exit(10 + r);
    }
    st = 0;
    waitpid(pid, &st, 0);
    V("cs_flags_signal", WIFSIGNALED(st) ? WTERMSIG(st) : -WEXITSTATUS(st));

    E("unregister_other_sig", rseq_(&area, 32, RSEQ_FLAG_UNREGISTER, SIG + 1), EPERM);
    E("unregister_other_len", rseq_(&area, 64, RSEQ_FLAG_UNREGISTER, SIG), EINVAL);
    E("unregister_other_addr", rseq_(&area2, 32, RSEQ_FLAG_UNREGISTER, SIG), EINVAL);
    T("unregister", rseq_(&area, 32, RSEQ_FLAG_UNREGISTER, SIG));
    B("cpu_id_after_uninitialized", area.cpu_id == -1);
    T("register_again", rseq_(&area2, 32, 0, SIG));
    T("unregister_again", rseq_(&area2, 32, RSEQ_FLAG_UNREGISTER, SIG));
}

int main(int argc, char **argv)
{
    guest_init();
    pin();
    if (argc > 1 && strcmp(argv[1], "manual") == 0) {
        manual();
        printf("done\n");
        return 0;
    }
    struct rseq *r = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
    B("glibc_registered", __rseq_size > 0);
    V("glibc_cpu_id", __rseq_size > 0 ? (long)r->cpu_id : -5);
    V("sched_getcpu", sched_getcpu());
    pthread_t t;
    int tcpu = -9;
    pthread_create(&t, NULL, thread_cpu, &tcpu);
    pthread_join(t, NULL);
    V("thread_cpu_id", tcpu);
    E("glibc_area_busy", rseq_(r, 32, 0, SIG), EBUSY);
    fflush(stdout);
    /* The rest with glibc's registration turned off. */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    char *args[] = { self, "manual", NULL };
    char *env[] = { "GLIBC_TUNABLES=glibc.pthread.rseq=0", NULL };
    execve(self, args, env);
    printf("execve err %s\n", errno_name(errno));
    return 1;
}
