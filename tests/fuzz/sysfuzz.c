/* sysfuzz: a syscall fuzzer meant to run INSIDE the sandbox
 * (`runsc-lite do sysfuzz ...`). Never run it natively as root: it makes
 * random system calls on whatever it can reach.
 *
 *   sysfuzz [-s SEED] [-n ITERATIONS] [-f FIRST] [-v] [-t THREADS]
 *
 *   -s SEED   the run's seed (default 1); printed first, so a failing run
 *             can be replayed with the same -s and -n
 *   -n N      how many calls (default 2000)
 *   -f FIRST  start at call FIRST (replay a stretch of a long run)
 *   -v        print each call before making it (to stderr): the last line
 *             before a crash names the culprit
 *   -t N      N more threads (at most 4) making calls of their own beside
 *             the main stream, racing on the same descriptors and memory
 *
 * Call i's number and arguments depend on (SEED, i) only.
 *
 * Structure: this process (the sandbox's init) forks a worker that makes
 * the calls and reports its progress in a shared page. A worker that
 * dies, execs something else or makes no progress for a while is killed
 * and replaced, starting after the call it was in; the replacement also
 * happens every WORKER_CALLS calls, so descriptors and mappings do not
 * pile up. Blocking calls are cut short by an interval timer (SIGALRM,
 * no SA_RESTART). The worker keeps away from what would end or wedge the
 * fuzzer rather than the sandbox: exit, signals to init or to every
 * process, mappings over its own code and data, its own TLS register.
 *
 * The output is a summary and "done"; the harness checks the exit status,
 * the Sentry's stderr and the host's processes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Memory the arguments point into, at fixed addresses so that a seed
 * gives the same pointers in every run. */

#define SHARED_ADDR 0x0f0000000UL /* parent <-> worker progress page */
#define BASE 0x100000000UL
#define POOL BASE                  /* rw: slots, then random bytes */
#define POOL_LEN 0x10000UL
#define SLOT_LEN 0x1000UL          /* one slot per argument: [POOL, POOL+6 slots) */
#define RAND_AREA (POOL + 8 * SLOT_LEN)
#define RAND_LEN (POOL_LEN - 8 * SLOT_LEN)
#define GUARD1 (BASE + 0x10000UL)  /* PROT_NONE */
#define RO_PAGE (BASE + 0x11000UL) /* read-only, random bytes */
#define GUARD2 (BASE + 0x12000UL)  /* PROT_NONE */
#define EDGE_PAGE (BASE + 0x13000UL) /* rw, followed by a hole */
#define HOLE (BASE + 0x14000UL)    /* never mapped */
#define SCRATCH (BASE + 0x100000UL) /* what the memory calls may change */
#define SCRATCH_LEN 0x40000UL
#define MIN_ADDR 0x10000UL

#define WORKER_CALLS 256
#define LOGFD 1000
#define NULLFD 1001 /* the parent's /dev/null, for the worker's stdio */
#define TICK_US 20000            /* the interval timer that ends blocking calls */
#define STUCK_NS 1500000000L     /* no progress for this long: kill the worker */
#define KILL_GRACE_NS 60000000000L /* a SIGKILLed worker must be gone by then */

struct shared {
    volatile long next;    /* the call the worker is about to make */
    volatile long made;    /* calls made in total */
    volatile long finished; /* the worker reached its last call */
    volatile long nr;
    volatile long args[6];
};

static struct shared *sh = (struct shared *)SHARED_ADDR;
static int verbose;
static unsigned long seed = 1;
static pid_t parent_pid, parent_pgid;
/* The end of our stack: from there up are the platform's stub pages and
 * the end of the address space. */
static uint64_t high_addr = 0x7ffff0000000UL;

/* ------------------------------------------------------------------ */
/* Randomness: call i's generator is seeded from (seed, i). */

/* Per thread: the worker may run helper threads (-t). */
static __thread uint64_t rng;
/* This thread's argument slots. */
static __thread char *slots;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rnd(void) { return splitmix(&rng); }
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static int chance(int percent) { return (int)below(100) < percent; }

/* ------------------------------------------------------------------ */
/* Raw system calls: no errno, no libc in between. */

static long raw6(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
    long ret;
    register long r10 __asm__("r10") = a3;
    register long r8 __asm__("r8") = a4;
    register long r9 __asm__("r9") = a5;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

/* clone, fork, vfork, clone3: the child leaves at once with exit(2),
 * touching neither the stack (which may be the parent's or garbage) nor
 * memory, so it can never run the fuzz loop a second time. */
static long raw_clone6(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
    long ret;
    register long r10 __asm__("r10") = a3;
    register long r8 __asm__("r8") = a4;
    register long r9 __asm__("r9") = a5;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov $60, %%eax\n\t"
                     "xor %%edi, %%edi\n\t"
                     "syscall\n\t"
                     "hlt\n"
                     "1:"
                     : "=a"(ret)
                     : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static void say(int fd, const char *s) { raw6(SYS_write, fd, (long)s, strlen(s), 0, 0, 0); }

#include "sysfuzz_calls.h"

/* ------------------------------------------------------------------ */
/* The worker's descriptors and recent results. */

static int fds[64];
static int nfds;
static long recent_fd[8], recent_pid[8];
static int listen_port = 1;

static void add_fd(int fd)
{
    if (fd >= 0 && nfds < 64)
        fds[nfds++] = fd;
}

static const char *const paths[] = {
    "/", ".", "..", "", "/tmp", "/tmp/sysfuzz", "/tmp/sysfuzz/a", "/tmp/sysfuzz/b",
    "/tmp/sysfuzz/d", "/tmp/sysfuzz/d/e", "/tmp/sysfuzz/up", "/tmp/sysfuzz/abs",
    "/tmp/sysfuzz/loop", "/tmp/sysfuzz/fifo", "/tmp/sysfuzz/sock", "/tmp/sysfuzz/new",
    "/tmp/sysfuzz/elf0", "/tmp/sysfuzz/elf1", "/tmp/sysfuzz/elf2", "/tmp/sysfuzz/script",
    "a", "b", "d", "d/e", "new", "up/etc/passwd", "abs", "loop/x", "fifo", "sock",
    "/etc/passwd", "/etc", "/etc/hostname", "/bin", "/usr/bin",
    "/proc", "/proc/self", "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/3",
    "/proc/self/exe", "/proc/self/root", "/proc/self/root/..", "/proc/self/cwd",
    "/proc/self/maps", "/proc/self/status", "/proc/self/stat", "/proc/self/cmdline",
    "/proc/self/environ", "/proc/self/mounts", "/proc/self/task", "/proc/1/root",
    "/proc/1/cwd", "/proc/1/fd", "/proc/1/status", "/proc/2/status", "/proc/net/tcp",
    "/proc/net/unix", "/proc/sys/kernel/hostname", "/proc/cpuinfo", "/proc/meminfo",
    "/dev", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
    "/dev/tty", "/dev/stdin", "/dev/fd/1", "/dev/pts", "/dev/shm", "/dev/mem",
    "/../../../../etc/passwd", "/tmp/../../..", "/tmp/sysfuzz/d/../../../..",
    "/tmp/sysfuzz/a/", "/tmp/sysfuzz/a/.", "/tmp/sysfuzz//d///e", "/sys", "/run",
};
#define NPATHS (sizeof paths / sizeof paths[0])

#include "sysfuzz_args.h"

/* ------------------------------------------------------------------ */
/* Keeping the worker able to go on. */

static void on_alarm(int s) { (void)s; }

static void arm_timer(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: blocked calls return EINTR */
    sigaction(SIGALRM, &sa, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &s, 0);
    struct itimerval it = {{0, TICK_US}, {0, TICK_US}};
    setitimer(ITIMER_REAL, &it, 0);
}

/* Rewrites what would end the fuzzer itself; returns 0 when the call is
 * skipped. (Huge timeouts and nested epoll sets, once known defects left
 * out here, are made like any other call since they were fixed.) */
static int sanitize(long *nr, uint64_t *a)
{
    long n = *nr;
    if (never(n))
        return 0;
    if (signals_or_changes_pid(n)) {
        /* Never init (the fuzzer's parent), its group or every process;
         * 0 is our own process group, which is fine. */
        long self = raw6(SYS_getpid, 0, 0, 0, 0, 0, 0);
        for (int i = 0; kinds[n][i]; i++) {
            long p = (long)(int)a[i];
            if (kinds[n][i] == 'n' && (p == 1 || p == -1 || p == parent_pid || p == parent_pgid ||
                                      p == -parent_pgid || (p == 0 && n == SYS_setpgid)))
                a[i] = (uint64_t)self;
        }
    }
    if (is_mm(n)) {
        a[0] = safe_addr(a[0]);
        if (n == SYS_mremap)
            a[4] = safe_addr(a[4]);
    }
    if (n == SYS_brk && a[0] >= MIN_ADDR && a[0] < high_addr && a[0] < (uint64_t)(uintptr_t)sbrk(0))
        a[0] = 0; /* shrinking the heap under libc */
    if (n == SYS_arch_prctl && (a[0] == 0x1002 /* SET_FS */ || a[0] == 0x1012 /* SET_CPUID */))
        a[0] = 0x1003; /* our TLS stays */
    if ((n == SYS_rt_sigaction || n == SYS_signalfd || n == SYS_signalfd4) && a[0] == SIGALRM)
        a[0] = SIGUSR2;
    if (n == SYS_execve || n == SYS_execveat) {
        /* Only the files made to fail (bad ELF, script loops, no such
         * file): never a real program with garbage argv. */
        static const char *const bad[] = {"/tmp/sysfuzz/elf0", "/tmp/sysfuzz/elf1", "/tmp/sysfuzz/elf2",
                                          "/tmp/sysfuzz/script", "/tmp/sysfuzz/none", "/tmp/sysfuzz/a",
                                          "/tmp/sysfuzz", "/proc/self/fd/0"};
        int pi = n == SYS_execve ? 0 : 1;
        a[pi] = (uint64_t)(uintptr_t)bad[below(8)];
        if (n == SYS_execveat) {
            a[0] = (uint64_t)(long)-100;
            a[4] &= ~0x1000UL; /* AT_EMPTY_PATH: not on an arbitrary descriptor */
        }
    }
    if (n == 436 /* close_range */ && verbose && a[1] >= LOGFD)
        a[1] = LOGFD - 1;
    if (verbose)
        for (int i = 0; i < 6; i++)
            if ((long)(int)a[i] == LOGFD && n != SYS_write)
                a[i] = 3;
    return 1;
}

/* After calls that reset what keeps the worker going. */
static void repair(long nr, uint64_t *a)
{
    if (nr == SYS_alarm || nr == SYS_setitimer || nr == SYS_rt_sigprocmask || nr == SYS_rt_sigaction ||
        nr == SYS_sigaltstack || (nr == SYS_prctl && a[0] == 22 /* PR_SET_SECCOMP */))
        arm_timer();
}

/* ------------------------------------------------------------------ */
/* The worker. */

static int must(const char *what, long r)
{
    /* A worker before may have removed what is opened here: only -v
     * says so. */
    if (r < 0 && verbose) {
        char b[160];
        snprintf(b, sizeof b, "sysfuzz: worker setup: %s failed (%ld)\n", what, r);
        say(LOGFD, b);
    }
    return (int)r;
}

static void worker_setup(void)
{
    nfds = 0;
    setpgid(0, 0);
    /* stdio: stdin stays (the host's), 1 and 2 go to the /dev/null the
     * parent opened at the start (the worker may have removed the node). */
    if (verbose)
        dup2(2, LOGFD);
    dup2(NULLFD, 1);
    dup2(NULLFD, 2);
    close(NULLFD);
    add_fd(0);
    add_fd(1);
    int p[2];
    if (must("pipe", pipe(p)) == 0) {
        add_fd(p[0]);
        add_fd(p[1]);
        write(p[1], "some bytes", 10);
    }
    add_fd(must("fifo", open("/tmp/sysfuzz/fifo", O_RDWR | O_NONBLOCK)));
    add_fd(must("file", open("/tmp/sysfuzz/a", O_RDWR)));
    add_fd(must("passwd", open("/etc/passwd", O_RDONLY)));
    add_fd(must("dir", open("/tmp/sysfuzz", O_RDONLY | O_DIRECTORY)));
    add_fd(must("root", open("/", O_RDONLY | O_DIRECTORY)));
    add_fd(must("proc", open("/proc/self/status", O_RDONLY)));
    add_fd(must("procdir", open("/proc/self", O_RDONLY | O_DIRECTORY)));
    add_fd(must("zero", open("/dev/zero", O_RDWR)));
    add_fd(must("urandom", open("/dev/urandom", O_RDONLY)));
    add_fd(must("opath", open("/tmp/sysfuzz/d", O_PATH)));
    add_fd(must("exe", open("/proc/self/exe", O_RDONLY)));
    add_fd(must("eventfd", eventfd(1, EFD_NONBLOCK)));
    int tfd = must("timerfd", timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
    if (tfd >= 0) {
        struct itimerspec its = {{0, 1000000}, {0, 1000000}};
        timerfd_settime(tfd, 0, &its, 0);
        add_fd(tfd);
    }
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGUSR1);
    add_fd(must("signalfd", signalfd(-1, &ss, SFD_NONBLOCK)));
    int ep = must("epoll", epoll_create1(0));
    if (ep >= 0) {
        struct epoll_event ev = {EPOLLIN, {0}};
        if (nfds > 2)
            epoll_ctl(ep, EPOLL_CTL_ADD, fds[2], &ev);
        add_fd(ep);
    }
    int sv[2];
    if (must("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) == 0) {
        add_fd(sv[0]);
        add_fd(sv[1]);
    }
    if (must("socketpair dgram", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) == 0) {
        add_fd(sv[0]);
        add_fd(sv[1]);
    }
    int us = must("unix listener", socket(AF_UNIX, SOCK_SEQPACKET, 0));
    if (us >= 0) {
        struct sockaddr_un a = {AF_UNIX, "/tmp/sysfuzz/sock"};
        unlink(a.sun_path);
        bind(us, (struct sockaddr *)&a, sizeof a);
        listen(us, 4);
        add_fd(us);
    }
    int tl = must("tcp listener", socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    if (tl >= 0) {
        struct sockaddr_in a = {AF_INET, 0, {htonl(0x7f000001)}, {0}};
        socklen_t al = sizeof a;
        bind(tl, (struct sockaddr *)&a, sizeof a);
        listen(tl, 8);
        getsockname(tl, (struct sockaddr *)&a, &al);
        listen_port = ntohs(a.sin_port);
        add_fd(tl);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c >= 0) {
            connect(c, (struct sockaddr *)&a, sizeof a);
            add_fd(c);
            add_fd(accept(tl, 0, 0));
        }
    }
    add_fd(must("udp", socket(AF_INET, SOCK_DGRAM, 0)));
    add_fd(must("tcp6", socket(AF_INET6, SOCK_STREAM, 0)));
    add_fd(must("udp6", socket(AF_INET6, SOCK_DGRAM, 0)));
    add_fd(must("netlink", socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)));
    add_fd(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)); /* may be refused */
    arm_timer();
}

/* Where rt_sigreturn's random frames return to: it ends the worker at
 * once (exit_group), using neither stack nor memory. */
__asm__(".text\n"
        "sysfuzz_landing:\n"
        "    mov $231, %eax\n"
        "    xor %edi, %edi\n"
        "    syscall\n"
        "    hlt\n");
extern char sysfuzz_landing[];

/* rt_sigreturn with a frame of random registers, flags, segments, signal
 * mask and FPU state pointer, except that rip leads to sysfuzz_landing:
 * the Sentry's checks of the frame are fuzzed, and no worker runs on
 * through our code with garbage registers (a wild worker can reach the
 * parent's own kill calls). Offsets are the kernel's rt_sigframe:
 * pretcode, then the ucontext at rsp. */
static void fuzz_sigreturn(char *slot)
{
    fill_random(slot, 2048);
    char *uc = slot + 64;
    uint64_t *u = (uint64_t *)uc;
    if (chance(50))
        u[0] = 0; /* uc_flags */
    u[160 / 8] = ((uint64_t)(uintptr_t)(slot + 3072)) & ~15UL; /* rsp */
    u[168 / 8] = (uint64_t)(uintptr_t)sysfuzz_landing;       /* rip */
    if (chance(70))
        u[176 / 8] = 0x246 | (chance(20) ? (rnd() & 0x40dd5) : 0); /* eflags */
    if (chance(70)) {
        uint16_t *seg = (uint16_t *)(uc + 184);
        seg[0] = 0x33, seg[1] = 0, seg[2] = 0, seg[3] = 0x2b; /* cs, gs, fs, ss */
    }
    switch (below(4)) {
    case 0: u[224 / 8] = 0; break;                                                  /* no FPU state */
    case 1: u[224 / 8] = ((uint64_t)(uintptr_t)(slot + 1024)) & ~63UL; break;      /* random FXSAVE */
    case 2: u[224 / 8] = gen_ptr(); break;
    default: break;
    }
    u[296 / 8] &= ~(1UL << (SIGALRM - 1)); /* uc_sigmask */
    __asm__ volatile("mov %0, %%rsp\n\t"
                     "mov $15, %%eax\n\t"
                     "syscall\n\t"
                     "hlt"
                     :
                     : "r"(uc)
                     : "memory");
}

/* Makes call `i` of the stream `stream`, its arguments built in this
 * thread's slots; `is_main` says whether it is the main stream (whose
 * progress the parent watches) or a helper's. */
static void make_call(uint64_t stream, long i, int is_main)
{
    rng = stream * 0x9e3779b97f4a7c15ULL ^ (uint64_t)i * 0xd1b54a32d192ed03ULL;
    len_hint = 0;
    long nr = gen_nr();
    const char *k = (nr >= 0 && nr < 460 && kinds[nr]) ? kinds[nr] : "gggggg";
    uint64_t a[6];
    for (int j = 0; j < 6; j++)
        a[j] = gen_arg(j < (int)strlen(k) ? k[j] : 'g', slots + j * SLOT_LEN);
    if (!sanitize(&nr, a))
        return;
    if (nr == SYS_rt_sigreturn) {
        if (is_main)
            sh->nr = nr;
        fuzz_sigreturn(slots); /* never returns */
    }
    /* Refresh some random bytes. */
    fill_random((void *)(RAND_AREA + (below(RAND_LEN - 256))), 256);
    if (is_main) {
        sh->nr = nr;
        for (int j = 0; j < 6; j++)
            sh->args[j] = (long)a[j];
    }
    if (verbose) {
        char b[256];
        snprintf(b, sizeof b, "%s %ld: syscall(%ld, %#lx, %#lx, %#lx, %#lx, %#lx, %#lx)\n", is_main ? "call" : "helper",
                 i, nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        say(LOGFD, b);
    }
    long r = is_clone(nr) ? raw_clone6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
                          : raw6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (is_main)
        sh->made++;
    if (r >= 0 && r < 4096 && is_fd_maker(nr))
        recent_fd[i & 7] = r;
    if (r > 0 && is_clone(nr))
        recent_pid[i & 7] = r;
    repair(nr, a);
}

/* -t N: threads making calls of their own streams beside the main one,
 * so that calls race on the same descriptors and memory. Their calls
 * are not replayable one by one; the seed still fixes what each stream
 * makes. */
#define MAX_HELPERS 4
#define HELPER_SLOTS (BASE + 0x20000UL)
static int helpers;
static volatile long helper_tid[MAX_HELPERS];

static void *helper(void *arg)
{
    long t = (long)arg;
    slots = (char *)(HELPER_SLOTS + (uint64_t)t * 8 * SLOT_LEN);
    helper_tid[t] = raw6(SYS_gettid, 0, 0, 0, 0, 0, 0);
    uint64_t stream = seed ^ ((uint64_t)(t + 1) << 56) ^ ((uint64_t)sh->next << 20);
    for (long j = 0;; j++)
        make_call(stream, j, 0);
    return 0;
}

static void worker(long first, long end)
{
    worker_setup();
    slots = (char *)POOL;
    pthread_t th;
    for (long t = 0; t < helpers; t++)
        pthread_create(&th, 0, helper, (void *)t);
    long self = raw6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    for (long i = first; i < end; i++) {
        sh->next = i;
        make_call(seed, i, 1);
        if ((i & 15) == 0) {
            /* Reap our own children now and then. */
            while (raw6(SYS_wait4, -1, 0, WNOHANG | __WALL, 0, 0, 0) > 0) {
            }
            /* The timer's signal goes to one thread: cut the helpers'
             * blocking calls short too. */
            for (int t = 0; t < helpers; t++)
                if (helper_tid[t] > 0)
                    raw6(SYS_tgkill, self, helper_tid[t], SIGALRM, 0, 0, 0);
        }
    }
    sh->next = end;
    sh->finished = 1;
    raw6(SYS_exit_group, 0, 0, 0, 0, 0, 0);
}

/* ------------------------------------------------------------------ */
/* The parent. */

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void write_file(const char *path, const void *b, size_t n, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd >= 0) {
        write(fd, b, n);
        close(fd);
    }
}

/* Broken copies of our own executable for execve (made once). */
static char elf_images[3][1 << 16];
static long elf_len;

static void make_images(void)
{
    int fd = open("/proc/self/exe", O_RDONLY);
    elf_len = fd >= 0 ? read(fd, elf_images[0], sizeof elf_images[0]) : 0;
    if (fd >= 0)
        close(fd);
    uint64_t r = seed;
    for (int k = 0; k < 3 && elf_len > 512; k++) {
        memcpy(elf_images[k], elf_images[0], (size_t)elf_len);
        /* Header and program headers: a few bytes changed. */
        for (int j = 0; j < 4 + 4 * k; j++)
            elf_images[k][splitmix(&r) % 512] = (char)splitmix(&r);
    }
}

/* `path` as a directory, whatever the last worker left there. */
static void ensure_dir(const char *path, int mode)
{
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode))
        unlink(path);
    mkdir(path, mode);
    chmod(path, mode);
}

/* The tree under /tmp/sysfuzz (in the sandbox's overlay), made again
 * before each worker: the last one may have removed or replaced any of
 * it. */
static void make_tree(void)
{
    ensure_dir("/tmp", 01777);
    ensure_dir("/tmp/sysfuzz", 0755);
    ensure_dir("/tmp/sysfuzz/d", 0755);
    ensure_dir("/tmp/sysfuzz/d/e", 0755);
    static const char *const files[] = {"a", "b", "up", "abs", "loop", "fifo", "script", "elf0", "elf1", "elf2"};
    char p[64];
    for (unsigned i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "/tmp/sysfuzz/%s", files[i]);
        if (unlink(p) != 0)
            rmdir(p);
    }
    write_file("/tmp/sysfuzz/a", "file a\n", 7, 0644);
    write_file("/tmp/sysfuzz/b", "file b\n", 7, 0600);
    symlink("../../../..", "/tmp/sysfuzz/up");
    symlink("/etc/passwd", "/tmp/sysfuzz/abs");
    symlink("loop", "/tmp/sysfuzz/loop");
    mkfifo("/tmp/sysfuzz/fifo", 0644);
    write_file("/tmp/sysfuzz/script", "#!/tmp/sysfuzz/script\n", 22, 0755);
    for (int k = 0; k < 3 && elf_len > 512; k++) {
        snprintf(p, sizeof p, "/tmp/sysfuzz/elf%d", k);
        write_file(p, elf_images[k], (size_t)(k == 2 ? 100 : elf_len), 0755);
    }
    if (chdir("/tmp/sysfuzz") != 0)
        chdir("/");
}

static int setup_memory(void)
{
    if (mmap((void *)SHARED_ADDR, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
        MAP_FAILED)
        return -1;
    if (mmap((void *)BASE, 0x14000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
        MAP_FAILED)
        return -1;
    if (mmap((void *)HELPER_SLOTS, MAX_HELPERS * 8 * SLOT_LEN, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
        return -1;
    uint64_t r = seed;
    for (unsigned long i = 0; i < 0x14000; i += 8)
        *(uint64_t *)(BASE + i) = splitmix(&r);
    mprotect((void *)GUARD1, 4096, PROT_NONE);
    mprotect((void *)RO_PAGE, 4096, PROT_READ);
    mprotect((void *)GUARD2, 4096, PROT_NONE);
    if (mmap((void *)SCRATCH, SCRATCH_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
        MAP_FAILED)
        return -1;
    return 0;
}

/* A copy of our executable, read at the start: the worker may rename or
 * replace anything on the way to /bin/echo or to our own file. */
static char *self_image;
static long self_len;

static void read_self(void)
{
    int fd = open("/proc/self/exe", O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return;
    self_image = malloc((size_t)st.st_size);
    while (self_image && self_len < st.st_size) {
        long n = read(fd, self_image + self_len, (size_t)(st.st_size - self_len));
        if (n <= 0)
            break;
        self_len += n;
    }
    close(fd);
}

/* After fuzzing: the sandbox still makes directories and files, runs a
 * program (a fresh copy of this one) and pipes its output. Returns what
 * failed, or 0. */
static const char *still_serving(void)
{
    char dir[64], exe[96];
    snprintf(dir, sizeof dir, "/sysfuzz-after-%d", (int)getpid());
    snprintf(exe, sizeof exe, "%s/sysfuzz", dir);
    if (mkdir(dir, 0755) != 0)
        return "mkdir";
    int fd = open(exe, O_WRONLY | O_CREAT | O_EXCL, 0755);
    if (fd < 0 || !self_image || write(fd, self_image, (size_t)self_len) != self_len || close(fd) != 0)
        return "writing a file";
    int p[2];
    if (pipe(p) != 0)
        return "pipe";
    pid_t c = fork();
    if (c < 0)
        return "fork";
    if (c == 0) {
        dup2(p[1], 1);
        execl(exe, "sysfuzz", "--serving", (char *)0);
        _exit(100 + errno);
    }
    close(p[1]);
    char b[64] = {0};
    long n = 0, r;
    while ((r = read(p[0], b + n, sizeof b - 1 - (size_t)n)) > 0)
        n += r;
    close(p[0]);
    int st = 0;
    if (waitpid(c, &st, 0) != c)
        return "waitpid";
    if (WIFSIGNALED(st))
        return strsignal(WTERMSIG(st));
    if (WEXITSTATUS(st) > 100) {
        errno = WEXITSTATUS(st) - 100;
        return "execve";
    }
    if (WEXITSTATUS(st) != 0)
        return "the child's exit status";
    if (strcmp(b, "still serving\n") != 0)
        return "the child's output";
    return 0;
}

int main(int argc, char **argv)
{
    long count = 2000, first = 0;
    int opt;
    if (argc == 2 && strcmp(argv[1], "--serving") == 0) {
        printf("still serving\n");
        return 0;
    }
    while ((opt = getopt(argc, argv, "s:n:f:vt:")) != -1) {
        switch (opt) {
        case 's': seed = strtoul(optarg, 0, 0); break;
        case 'n': count = strtol(optarg, 0, 0); break;
        case 'f': first = strtol(optarg, 0, 0); break;
        case 'v': verbose = 1; break;
        case 't':
            helpers = atoi(optarg);
            helpers = helpers < 0 ? 0 : helpers > MAX_HELPERS ? MAX_HELPERS : helpers;
            break;
        default:
            fprintf(stderr, "usage: sysfuzz [-s SEED] [-n ITERATIONS] [-f FIRST] [-v] [-t THREADS]\n");
            return 2;
        }
    }
    setvbuf(stdout, 0, _IOLBF, 0);
    /* Random calls as root on the host could do anything: refuse to run
     * outside the sandbox, which reports itself as Linux 4.4.0. */
    struct utsname u;
    if (uname(&u) != 0 || strcmp(u.release, "4.4.0") != 0) {
        fprintf(stderr, "sysfuzz: this is not runsc-lite's sandbox (kernel %s); run it with `runsc-lite do`\n",
                u.release);
        return 2;
    }
    printf("sysfuzz seed %lu calls %ld first %ld", seed, count, first);
    printf(helpers ? " threads %d\n" : "\n", helpers + 1);
    parent_pid = getpid();
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[256];
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, "[stack]"))
            high_addr = strtoul(strchr(line, '-') + 1, 0, 16);
    if (maps)
        fclose(maps);
    parent_pgid = getpgrp();
    if (setup_memory() != 0) {
        printf("sysfuzz: cannot map the fixed areas\n");
        return 1;
    }
    /* A worker gone wild (a fuzzed call that lands it anywhere in this
     * program) may signal us: every signal that can be ignored is. SIGCHLD keeps its default, so waitpid sees children. */
    for (int sig = 1; sig < 65; sig++) {
        /* The raw call: libc refuses the two signals it keeps for itself. */
        struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } ign = {SIG_IGN, 0, 0, 0};
        if (sig != SIGCHLD && sig != SIGKILL && sig != SIGSTOP)
            raw6(SYS_rt_sigaction, sig, (long)&ign, 0, 8, 0, 0);
    }
    read_self();
    make_images();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0 && null != NULLFD) {
        dup2(null, NULLFD);
        close(null);
    }
    sh->made = 0;
    long next = first, end = first + count;
    long workers = 0, died = 0, stuck = 0, spurious = 0;
    while (next < end) {
        long stop = next + WORKER_CALLS < end ? next + WORKER_CALLS : end;
        make_tree();
        sh->next = next;
        sh->finished = 0;
        pid_t w = fork();
        if (w < 0) {
            printf("sysfuzz: fork failed: %s\n", strerror(errno));
            return 1;
        }
        if (w == 0)
            worker(next, stop);
        workers++;
        long seen = sh->next, since = now_ns(), killed_at = 0;
        int st = 0;
        for (;;) {
            pid_t r = waitpid(-1, &st, WNOHANG | __WALL);
            if (r == w)
                break;
            if (r > 0) {
                spurious++; /* a grandchild handed to us (CLONE_PARENT) */
                continue;
            }
            if (r < 0 && errno == ECHILD)
                break;
            if (killed_at && now_ns() - killed_at > KILL_GRACE_NS) {
                /* The Sentry failed to end a SIGKILLed process: that is
                 * a defect to report, not something to wait out. */
                printf("sysfuzz: worker survived SIGKILL for %ld s (call %ld: syscall %ld)\n",
                       KILL_GRACE_NS / 1000000000L, sh->next, sh->nr);
                return 3;
            }
            if (sh->next != seen) {
                seen = sh->next;
                since = now_ns();
            } else if (!killed_at && now_ns() - since > STUCK_NS) {
                kill(w, SIGKILL);
                stuck++;
                killed_at = now_ns();
            }
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, 0);
        }
        /* Its own children and process group go with it. */
        kill(-w, SIGKILL);
        if (!(sh->finished && WIFEXITED(st)))
            died++;
        next = sh->finished ? stop : sh->next + 1;
    }
    while (waitpid(-1, 0, WNOHANG | __WALL) > 0) {
    }
    /* Counts that vary with timing go to stderr: stdout stays the same
     * for a seed. */
    fprintf(stderr, "sysfuzz: %ld calls made, %ld workers, %ld ended early, %ld were stuck, %ld strays reaped\n",
            sh->made, workers, died, stuck, spurious);
    const char *broken = still_serving();
    if (broken) {
        printf("sysfuzz: the sandbox stopped serving: %s (%s)\n", broken, strerror(errno));
        return 1;
    }
    printf("sandbox still serving\ndone\n");
    return 0;
}
