/* Threads under contention: a 16-thread mutex hammer, condvar broadcast,
 * detached threads exiting while others run, raw futex error paths, fork
 * from a multi-threaded process, and exit_group from a non-main thread
 * (the exit status, 7, is part of the comparison). */
#include "common.h"
#include <linux/futex.h>
#include <pthread.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#define NTHREADS 16
#define ITERS 20000

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter;
static int go, woken;

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!go)
        pthread_cond_wait(&cv, &mu);
    woken++;
    pthread_mutex_unlock(&mu);
    return NULL;
}

static volatile int detached_done;
static void *detached(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&detached_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static long futex(int *uaddr, int op, int val, const struct timespec *ts)
{
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static void *exiter(void *arg)
{
    (void)arg;
    fflush(stdout);
    syscall(SYS_exit_group, 7);
    return NULL;
}

int main(void)
{
    guest_init();
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    V("mutex_counter", counter);

    pthread_t w[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&w[i], NULL, waiter, NULL);
    struct timespec d = { 0, 20 * 1000 * 1000 };
    nanosleep(&d, NULL);
    pthread_mutex_lock(&mu);
    go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < 8; i++)
        pthread_join(w[i], NULL);
    V("condvar_broadcast_woken", woken);

    for (int i = 0; i < 4; i++) {
        pthread_t dt;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_create(&dt, &a, detached, NULL);
    }
    while (__atomic_load_n(&detached_done, __ATOMIC_SEQ_CST) < 4)
        sched_yield();
    V("detached_ran", detached_done);

    int word = 1;
    E("futex_wait_mismatch_eagain", futex(&word, FUTEX_WAIT_PRIVATE, 2, NULL), EAGAIN);
    struct timespec short_ts = { 0, 10 * 1000 * 1000 };
    E("futex_wait_timeout", futex(&word, FUTEX_WAIT_PRIVATE, 1, &short_ts), ETIMEDOUT);
    V("futex_wake_nobody", futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL));
    E("futex_unaligned_einval", futex((int *)((char *)&word + 1), FUTEX_WAKE_PRIVATE, 1, NULL), EINVAL);
    E("futex_wait_bad_addr_efault", futex((int *)8, FUTEX_WAIT_PRIVATE, 0, NULL), EFAULT);
    E("futex_bad_timeout_einval", futex(&word, FUTEX_WAIT_PRIVATE, 1, &(struct timespec){ 0, 2000000000 }), EINVAL);

    pthread_t bg;
    pthread_create(&bg, NULL, waiter, NULL); /* go is 1: returns at once */
    pid_t pid = fork();
    if (pid == 0) {
        P("child_of_threaded_runs yes\n");
        _exit(3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    V("fork_from_threaded_status", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    pthread_join(bg, NULL);

    P("done\n");
    pthread_t ex;
    pthread_create(&ex, NULL, exiter, NULL);
    pthread_join(ex, NULL);
    P("not reached\n");
    return 0;
}
