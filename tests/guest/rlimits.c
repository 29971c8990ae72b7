/* Resource limits a process sets on itself, and what they do:
 * setrlimit's rules, RLIMIT_NOFILE (EMFILE), RLIMIT_AS (ENOMEM from mmap,
 * brk and mremap), RLIMIT_FSIZE (short writes, then SIGXFSZ and EFBIG),
 * RLIMIT_NPROC (EAGAIN for a non-root user, root exempt) and
 * RLIMIT_SIGPENDING (sigqueue EAGAIN past the queued real-time signals).
 * Must run as root (it drops to uid 65534 in a child). */
#include "common.h"
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

static void set_lim(const char *name, int res, rlim_t cur, rlim_t max)
{
    struct rlimit r = { cur, max };
    T(name, setrlimit(res, &r));
}

static void rules(void)
{
    struct rlimit r, old;
    getrlimit(RLIMIT_STACK, &old);
    r.rlim_cur = 2 << 20;
    r.rlim_max = 1 << 20;
    E("soft_above_hard", setrlimit(RLIMIT_STACK, &r), EINVAL);
    E("bad_resource", setrlimit(99, &old), EINVAL);
    set_lim("stack_set", RLIMIT_STACK, 4 << 20, RLIM_INFINITY);
    getrlimit(RLIMIT_STACK, &r);
    B("stack_reads_back", r.rlim_cur == (4 << 20) && r.rlim_max == RLIM_INFINITY);
    set_lim("core_set", RLIMIT_CORE, 0, 1 << 20);
    getrlimit(RLIMIT_CORE, &r);
    B("core_reads_back", r.rlim_cur == 0 && r.rlim_max == (1 << 20));
    struct rlimit pr;
    T("prlimit_get", prlimit(0, RLIMIT_CORE, NULL, &pr));
    B("prlimit_same", pr.rlim_max == (1 << 20));
    /* (Raising a hard limit back needs CAP_SYS_RESOURCE, which a root
     * in a container may lack: not checked here.) */
    r.rlim_cur = r.rlim_max = (rlim_t)1 << 40;
    E("nofile_past_nr_open", setrlimit(RLIMIT_NOFILE, &r), EPERM);
    setrlimit(RLIMIT_STACK, &old);
}

static void nofile(void)
{
    struct rlimit old;
    getrlimit(RLIMIT_NOFILE, &old);
    set_lim("nofile_set", RLIMIT_NOFILE, 16, old.rlim_max);
    int last = -1, err = 0;
    for (int i = 0; i < 64; i++) {
        int fd = dup(0);
        if (fd < 0) {
            err = errno;
            break;
        }
        last = fd;
    }
    P("dup_stops %s\n", errno_name(err));
    B("dup_below_limit", last == 15);
    E("pipe_at_limit", pipe((int[2]){ 0, 0 }), EMFILE);
    E("eventfd_at_limit", eventfd(0, 0), EMFILE);
    E("timerfd_at_limit", timerfd_create(CLOCK_MONOTONIC, 0), EMFILE);
    E("epoll_at_limit", epoll_create1(0), EMFILE);
    E("open_at_limit", open("/", O_RDONLY), EMFILE);
    E("dup2_past_limit", dup2(0, 16), EBADF);
    E("fcntl_dupfd_past_limit", fcntl(0, F_DUPFD, 16), EINVAL);
    for (int fd = 3; fd <= last; fd++)
        close(fd);
    setrlimit(RLIMIT_NOFILE, &old);
    T("open_after_restore", close(open("/", O_RDONLY)));
}

/* The bytes mapped now, from /proc/self/maps ([vsyscall] is no VMA). */
static unsigned long mapped_now(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return 0;
    char line[512];
    unsigned long total = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (strstr(line, "[vsyscall]") || sscanf(line, "%lx-%lx", &a, &b) != 2)
            continue;
        total += b - a;
    }
    fclose(f);
    return total;
}

static void address_space(void)
{
    struct rlimit old;
    getrlimit(RLIMIT_AS, &old);
    unsigned long base = mapped_now();
    B("maps_read", base > 0);
    set_lim("as_set", RLIMIT_AS, base + (64 << 20), RLIM_INFINITY);
    void *ok = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    B("mmap_within", ok != MAP_FAILED);
    void *big = mmap(NULL, 128 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    P("mmap_past %s\n", big == MAP_FAILED ? errno_name(errno) : "mapped");
    void *grown = mremap(ok, 16 << 20, 128 << 20, MREMAP_MAYMOVE);
    P("mremap_past %s\n", grown == MAP_FAILED ? errno_name(errno) : "grown");
    void *brk0 = sbrk(0);
    void *b = sbrk(128 << 20);
    P("sbrk_past %s\n", b == (void *)-1 ? errno_name(errno) : "grown");
    B("brk_unchanged", sbrk(0) == brk0);
    /* MAP_FIXED over what is already mapped costs nothing more. */
    void *again = mmap(ok, 16 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    B("mmap_fixed_over_itself", again == ok);
    munmap(ok, 16 << 20);
    setrlimit(RLIMIT_AS, &old);
    big = mmap(NULL, 128 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    B("mmap_after_restore", big != MAP_FAILED);
    munmap(big, 128 << 20);
}

static volatile int xfsz;
static void on_xfsz(int sig)
{
    (void)sig;
    xfsz++;
}

static void file_size(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/fsize", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    T("fsize_open", fd);
    static char buf[10000];
    memset(buf, 'x', sizeof buf);
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, on_xfsz);
    set_lim("fsize_set", RLIMIT_FSIZE, 10000, RLIM_INFINITY);
    V("write_within", write(fd, buf, 8000));
    V("write_cut_short", write(fd, buf, 8000));
    B("no_signal_yet", xfsz == 0);
    E("write_at_limit", write(fd, buf, 10), EFBIG);
    V("sigxfsz_count", xfsz);
    E("pwrite_past", pwrite(fd, buf, 10, 20000), EFBIG);
    E("ftruncate_past", ftruncate(fd, 20000), EFBIG);
    V("sigxfsz_count2", xfsz);
    T("ftruncate_shrink", ftruncate(fd, 5000));
    V("size_now", lseek(fd, 0, SEEK_END));
    int p[2];
    pipe(p);
    V("pipe_unlimited", write(p[1], buf, 8000) + write(p[1], buf, 8000));
    close(p[0]);
    close(p[1]);
    signal(SIGXFSZ, SIG_IGN);
    V("ignored_write_cut", write(fd, buf, 10000));
    E("ignored_still_efbig", write(fd, buf, 10), EFBIG);
    V("ignored_no_count", xfsz);
    signal(SIGXFSZ, SIG_DFL);
    pid_t c = fork();
    if (c == 0) {
        write(fd, buf, 10000);
        write(fd, buf, 10000);
        _exit(0);
    }
    int st = 0;
    waitpid(c, &st, 0);
    P("default_action %s %d\n", WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    setrlimit(RLIMIT_FSIZE, &old);
    V("write_after_restore", pwrite(fd, buf, 10, 20000));
    close(fd);
    unlink(path);
}

static void nproc(void)
{
    pid_t c = fork();
    if (c == 0) {
        set_lim("nproc_set_root", RLIMIT_NPROC, 1, 1);
        pid_t g = fork();
        if (g == 0)
            _exit(0);
        P("root_fork %s\n", g > 0 ? "ok" : errno_name(errno));
        if (g > 0)
            waitpid(g, NULL, 0);
        if (setgid(65534) || setuid(65534)) {
            P("setuid failed\n");
            _exit(1);
        }
        g = fork();
        if (g == 0)
            _exit(0);
        P("user_fork %s\n", g > 0 ? "ok" : errno_name(errno));
        if (g > 0)
            waitpid(g, NULL, 0);
        struct rlimit r = { 4, 4 };
        E("user_raises_hard", setrlimit(RLIMIT_NPROC, &r), EPERM);
        r.rlim_cur = 0;
        r.rlim_max = 1;
        T("user_lowers_soft", setrlimit(RLIMIT_NPROC, &r));
        r.rlim_cur = RLIM_INFINITY;
        r.rlim_max = RLIM_INFINITY;
        E("user_prlimit_other", prlimit(getppid(), RLIMIT_NPROC, &r, NULL), EPERM);
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

static volatile int rt_seen;
static void on_rt(int sig)
{
    (void)sig;
    rt_seen++;
}

static void sigpending_limit(void)
{
    struct rlimit old;
    getrlimit(RLIMIT_SIGPENDING, &old);
    sigset_t set, prev;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigaddset(&set, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &set, &prev);
    signal(SIGRTMIN, on_rt);
    signal(SIGRTMIN + 1, on_rt);
    set_lim("sigpending_set", RLIMIT_SIGPENDING, 4, old.rlim_max);
    int queued = 0, err = 0;
    for (int i = 0; i < 10; i++) {
        union sigval v = { .sival_int = i };
        if (sigqueue(getpid(), SIGRTMIN, v) != 0) {
            err = errno;
            break;
        }
        queued++;
    }
    /* The count is per user: natively other processes of this user may
     * hold some or all of the four, so none queued is a pass too, as long
     * as the refusal is EAGAIN (checked below). */
    B("rt_queued_at_most_limit", queued <= 4);
    P("rt_past_limit %s\n", errno_name(err));
    T("kill_still_pends", kill(getpid(), SIGRTMIN + 1));
    sigset_t pend;
    sigpending(&pend);
    B("kill_pending", sigismember(&pend, SIGRTMIN + 1));
    sigprocmask(SIG_SETMASK, &prev, NULL);
    B("rt_each_delivered", rt_seen == queued + 1);
    setrlimit(RLIMIT_SIGPENDING, &old);
    union sigval v = { .sival_int = 0 };
    T("sigqueue_after", sigqueue(getpid(), SIGRTMIN, v));
    B("rt_delivered_after", rt_seen == queued + 2);
    signal(SIGRTMIN, SIG_DFL);
    signal(SIGRTMIN + 1, SIG_DFL);
}

int main(int argc, char **argv)
{
    guest_init();
    const char *dir = guest_scratch(argc, argv);
    rules();
    nofile();
    address_space();
    file_size(dir);
    nproc();
    sigpending_limit();
    guest_cleanup();
    P("done\n");
    return 0;
}
