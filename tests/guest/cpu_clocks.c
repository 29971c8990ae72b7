/* Per-process and per-thread CPU-time clocks by id, as
 * clock_getcpuclockid and pthread_getcpuclockid make them (Linux's
 * ~pid << 3 | perthread << 2 | which encoding): readable, advancing, a
 * thread's only within its process, and the ids Linux refuses. CPython's
 * test_time reads pthread_getcpuclockid's clock. */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define MAKE_PROCESS_CPUCLOCK(pid, clock) ((int)(~(unsigned)(pid) << 3) | (clock))
#define MAKE_THREAD_CPUCLOCK(tid, clock) (MAKE_PROCESS_CPUCLOCK(tid, clock) | 4)

static long long ns(clockid_t id)
{
    struct timespec ts;
    if (syscall(SYS_clock_gettime, id, &ts) < 0)
        return -errno;
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void burn(void)
{
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    do
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec) < 20000000);
}

static pthread_t main_thread;
static int stop_pipe[2];
static pid_t thread_tid;

static void *worker(void *p)
{
    (void)p;
    thread_tid = (pid_t)syscall(SYS_gettid);
    char c;
    if (read(stop_pipe[0], &c, 1) < 0)
        return NULL;
    return NULL;
}

int main(void)
{
    clockid_t c;
    main_thread = pthread_self();
    V("getcpuclockid_self", clock_getcpuclockid(0, &c));
    B("self_is_process_clock", c == CLOCK_PROCESS_CPUTIME_ID || c == MAKE_PROCESS_CPUCLOCK(0, 2));
    clockid_t mine;
    V("getcpuclockid_pid", clock_getcpuclockid(getpid(), &mine));
    burn();
    B("pid_clock_reads", ns(mine) >= 20000000);
    clockid_t th;
    V("pthread_getcpuclockid", pthread_getcpuclockid(pthread_self(), &th));
    B("thread_clock_reads", ns(th) >= 20000000);
    long long a = ns(th);
    burn();
    B("thread_clock_advances", ns(th) >= a + 20000000);
    B("thread_le_process", ns(th) <= ns(mine));

    /* The three kinds of one's own clocks, pid 0 and by tid. */
    pid_t me = (pid_t)syscall(SYS_gettid);
    B("prof_self", ns(MAKE_PROCESS_CPUCLOCK(0, 0)) > 0);
    B("virt_self", ns(MAKE_PROCESS_CPUCLOCK(0, 1)) >= 0);
    B("sched_self", ns(MAKE_PROCESS_CPUCLOCK(0, 2)) > 0);
    B("sched_thread_by_tid", ns(MAKE_THREAD_CPUCLOCK(me, 2)) > 0);
    B("sched_thread_0", ns(MAKE_THREAD_CPUCLOCK(0, 2)) > 0);
    struct timespec r;
    V("getres_sched", syscall(SYS_clock_getres, MAKE_PROCESS_CPUCLOCK(0, 2), &r));
    B("getres_sched_1ns", r.tv_sec == 0 && r.tv_nsec == 1);
    V("getres_prof", syscall(SYS_clock_getres, MAKE_PROCESS_CPUCLOCK(0, 0), &r));
    B("getres_prof_nonzero", r.tv_sec == 0 && r.tv_nsec > 0);

    /* Another thread of this process. */
    pipe(stop_pipe);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST) == 0)
        sched_yield();
    clockid_t other;
    V("pthread_getcpuclockid_other", pthread_getcpuclockid(t, &other));
    B("other_thread_reads", ns(other) >= 0);
    B("other_thread_by_tid", ns(MAKE_THREAD_CPUCLOCK(thread_tid, 2)) >= 0);

    /* Another process: its process clock is readable, its threads' not. */
    pid_t child = fork();
    if (child == 0) {
        burn();
        pause();
        _exit(0);
    }
    clockid_t cc;
    V("getcpuclockid_child", clock_getcpuclockid(child, &cc));
    B("child_clock_reads", ns(cc) >= 0);
    E("child_thread_clock", ns(MAKE_THREAD_CPUCLOCK(child, 2)), EINVAL);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);

    /* Errors. */
    E("which_3", ns(MAKE_PROCESS_CPUCLOCK(0, 3)), EINVAL);
    E("no_such_pid", ns(MAKE_PROCESS_CPUCLOCK(0x3ffffff0, 2)), EINVAL);
    E("no_such_tid", ns(MAKE_THREAD_CPUCLOCK(0x3ffffff0, 2)), EINVAL);
    E("getres_bad", syscall(SYS_clock_getres, MAKE_PROCESS_CPUCLOCK(0x3ffffff0, 2), &r), EINVAL);
    V("getcpuclockid_none", clock_getcpuclockid(0x3ffffff0, &c));
    struct timespec req = {0, 1000};
    E("nanosleep_thread_clock", syscall(SYS_clock_nanosleep, MAKE_THREAD_CPUCLOCK(0, 2), 0, &req, NULL), EINVAL);
    E("gettime_bad_ptr", syscall(SYS_clock_gettime, MAKE_PROCESS_CPUCLOCK(0, 2), (void *)8), EFAULT);

    write(stop_pipe[1], "x", 1);
    pthread_join(t, NULL);
    printf("done\n");
    return 0;
}
