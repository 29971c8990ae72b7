/* CPU affinity: what sched_setaffinity sets, sched_getaffinity reports
 * back (per thread, inherited by threads and children), with Linux's
 * length rules and error paths. CPython's test_posix checks the round
 * trip; taskset and nproc read it. */
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>

static long getaff(pid_t pid, size_t len, void *m)
{
    return syscall(SYS_sched_getaffinity, pid, len, m);
}

static long setaff(pid_t pid, size_t len, const void *m)
{
    return syscall(SYS_sched_setaffinity, pid, len, m);
}

static unsigned long cur(void)
{
    unsigned long m = 0;
    getaff(0, sizeof m, &m);
    return m;
}

static unsigned long thread_saw;
static unsigned long last_cpu;

static void *in_thread(void *p)
{
    (void)p;
    thread_saw = cur();
    /* A thread's own change stays its own. */
    setaff(0, sizeof last_cpu, &last_cpu);
    return NULL;
}

int main(void)
{
    unsigned long all = 0;
    V("get_len", getaff(0, sizeof all, &all));
    B("get_nonempty", all != 0);
    int ncpu = __builtin_popcountl(all);
    B("get_matches_nprocs", ncpu == sysconf(_SC_NPROCESSORS_ONLN) || ncpu == 64);
    unsigned long big[4] = {0};
    /* cpumask_size() is a kernel build choice (NR_CPUS or nr_cpu_ids): whole
     * longs, at least one. */
    long n = getaff(0, sizeof big, big);
    B("get_long_len", n >= 8 && n <= (long)sizeof big && n % 8 == 0);
    B("get_long_same", big[0] == all && big[1] == 0);
    cpu_set_t cs;
    CPU_ZERO(&cs);
    T("glibc_get", sched_getaffinity(0, sizeof cs, &cs));
    B("glibc_count", CPU_COUNT(&cs) == ncpu);

    last_cpu = 1ul << (63 - __builtin_clzl(all));
    T("set_one", setaff(0, sizeof last_cpu, &last_cpu));
    B("get_after_set", cur() == last_cpu);
    /* Offline CPUs are dropped, not refused while one online CPU is in. */
    unsigned long extra = last_cpu | (1ul << 63);
    if (all & (1ul << 63))
        extra = last_cpu;
    T("set_with_offline", setaff(0, sizeof extra, &extra));
    B("offline_dropped", cur() == last_cpu);
    /* A short mask is zero-extended. */
    unsigned int low = (unsigned int)(all & 1);
    if (low) {
        T("set_short", setaff(0, sizeof low, &low));
        B("short_applied", cur() == 1);
    } else {
        printf("set_short ok\nshort_applied yes\n");
    }
    T("restore", setaff(0, sizeof all, &all));
    B("restored", cur() == all);

    /* Inherited by a child; the child's change does not reach back. */
    T("set_for_fork", setaff(0, sizeof last_cpu, &last_cpu));
    pid_t c = fork();
    if (c == 0) {
        int ok = cur() == last_cpu;
        setaff(0, sizeof all, &all);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    B("child_inherited", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    B("parent_unchanged", cur() == last_cpu);
    /* Another process's mask, by pid. */
    c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    T("set_other", setaff(c, sizeof all, &all));
    unsigned long other = 0;
    getaff(c, sizeof other, &other);
    B("other_set", other == all);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    T("restore2", setaff(0, sizeof all, &all));

    /* Threads inherit and keep their own. */
    pthread_t t;
    pthread_create(&t, NULL, in_thread, NULL);
    pthread_join(t, NULL);
    B("thread_inherited", thread_saw == all);
    B("thread_change_own", cur() == all);

    /* Error paths. */
    unsigned long none = 0;
    E("set_empty", setaff(0, sizeof none, &none), EINVAL);
    E("set_len0", setaff(0, 0, &all), EINVAL);
    unsigned long off = 1ul << 63;
    if (!(all & off))
        E("set_offline_only", setaff(0, sizeof off, &off), EINVAL);
    else
        printf("set_offline_only err EINVAL\n");
    E("set_bad_ptr", setaff(0, sizeof all, (void *)8), EFAULT);
    E("set_neg_pid", setaff(-1, sizeof all, &all), ESRCH);
    E("set_no_pid", setaff(0x3ffffff0, sizeof all, &all), ESRCH);
    E("get_len4", getaff(0, 4, &all), EINVAL);
    E("get_len12", getaff(0, 12, big), EINVAL);
    E("get_len0", getaff(0, 0, &all), EINVAL);
    E("get_bad_ptr", getaff(0, sizeof all, (void *)8), EFAULT);
    E("get_neg_pid", getaff(-1, sizeof all, &all), ESRCH);
    B("unchanged_after_errors", cur() == all);
    printf("done\n");
    return 0;
}
