/* Priority-inheritance futexes: the TID-in-word protocol of LOCK_PI,
 * TRYLOCK_PI and UNLOCK_PI (WAITERS, OWNER_DIED, EDEADLK, EPERM, ESRCH),
 * the hand-over to a waiter on unlock and on the owner's death, requeue-PI
 * (WAIT_REQUEUE_PI / CMP_REQUEUE_PI), FUTEX_CLOCK_REALTIME timeouts, and
 * glibc's PTHREAD_PRIO_INHERIT mutexes (plain, error-checking, robust,
 * shared across processes) on top of them. */
#include "common.h"
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#ifndef FUTEX_LOCK_PI2
#define FUTEX_LOCK_PI2 13
#endif

static long fx(uint32_t *a, int op, uint32_t val, const void *ts, uint32_t *a2, uint32_t val3)
{
    return syscall(SYS_futex, a, op, val, ts, a2, val3);
}

static int tid(void)
{
    return syscall(SYS_gettid);
}

static const char *flags(uint32_t w)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%s%s", w & FUTEX_WAITERS ? "W" : "-", w & FUTEX_OWNER_DIED ? "D" : "-");
    return buf;
}

static void show(const char *name, uint32_t w, int owner)
{
    int t = w & FUTEX_TID_MASK;
    printf("%s %s owner=%s\n", name, flags(w), t == 0 ? "none" : t == owner ? "expected" : "other");
}

static struct timespec in_ms(clockid_t c, long ms)
{
    struct timespec t;
    clock_gettime(c, &t);
    t.tv_nsec += ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

/* Wait (without sleeping on a timer) until the word has WAITERS set. */
static void until_waiters(volatile uint32_t *w)
{
    while (!(*w & FUTEX_WAITERS))
        sched_yield();
}

static uint32_t lockw, condw;
static volatile int waiter_tid, result[4];

static void *pi_waiter(void *arg)
{
    int i = (int)(long)arg;
    waiter_tid = tid();
    result[i] = fx(&lockw, FUTEX_LOCK_PI, 0, NULL, NULL, 0) == 0 ? 1 : -errno;
    /* Owns it now: the word holds our tid. */
    if ((lockw & FUTEX_TID_MASK) != (uint32_t)tid())
        result[i] = -1000;
    fx(&lockw, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0);
    return NULL;
}

static void *holder_timed(void *arg)
{
    (void)arg;
    fx(&lockw, FUTEX_TRYLOCK_PI, 0, NULL, NULL, 0);
    while (condw == 0)
        fx(&condw, FUTEX_WAIT, 0, NULL, NULL, 0);
    fx(&lockw, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0);
    return NULL;
}

static void *rq_waiter(void *arg)
{
    int i = (int)(long)arg;
    long r = fx(&condw, FUTEX_WAIT_REQUEUE_PI, 0, NULL, &lockw, FUTEX_BITSET_MATCH_ANY);
    if (r == 0) {
        result[i] = (lockw & FUTEX_TID_MASK) == (uint32_t)tid() ? 1 : -1000;
        fx(&lockw, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0);
    } else {
        result[i] = -errno;
    }
    return NULL;
}

/* glibc's PI mutexes. */
static pthread_mutex_t pim;
static long counter;

static void *incr(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&pim);
        counter++;
        pthread_mutex_unlock(&pim);
    }
    return NULL;
}

static pthread_mutex_t robust;
static volatile int robust_stage;

static void *die_holding(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&robust);
    robust_stage = 1;
    /* Until the main thread waits in the kernel for it. */
    until_waiters((volatile uint32_t *)&robust.__data.__lock);
    return NULL;
}

static void *die_holding_alone(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&robust);
    return NULL;
}

static void *plain_waiter(void *arg)
{
    (void)arg;
    result[0] = fx(&condw, FUTEX_WAIT, 0, NULL, NULL, 0) == 0 ? 1 : -errno;
    return NULL;
}

static void *try_other(void *arg)
{
    (void)arg;
    result[0] = pthread_mutex_trylock(&pim);
    result[1] = pthread_mutex_unlock(&pim);
    return NULL;
}

static void init_pi(pthread_mutex_t *m, int type, int robust_, int pshared)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutexattr_settype(&a, type);
    if (robust_)
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pshared)
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

int main(void)
{
    guest_init();
    int me = tid();

    /* The protocol on one word, one thread. */
    uint32_t w = 0;
    T("trylock_free", fx(&w, FUTEX_TRYLOCK_PI, 0, NULL, NULL, 0));
    show("after_trylock", w, me);
    E("lock_own", fx(&w, FUTEX_LOCK_PI, 0, NULL, NULL, 0), EDEADLK);
    E("trylock_own", fx(&w, FUTEX_TRYLOCK_PI, 0, NULL, NULL, 0), EDEADLK);
    T("unlock", fx(&w, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0));
    show("after_unlock", w, me);
    E("unlock_free", fx(&w, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0), EPERM);
    T("lock_free", fx(&w, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0));
    show("after_lock", w, me);
    T("unlock_private", fx(&w, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0));
    w = 999999;
    E("unlock_other", fx(&w, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0), EPERM);
    E("lock_bogus_owner", fx(&w, FUTEX_LOCK_PI, 0, NULL, NULL, 0), ESRCH);
    show("after_bogus", w, 999999);
    w = 999999;
    E("trylock_bogus_owner", fx(&w, FUTEX_TRYLOCK_PI, 0, NULL, NULL, 0), ESRCH);
    w = FUTEX_OWNER_DIED;
    T("lock_owner_died", fx(&w, FUTEX_LOCK_PI, 0, NULL, NULL, 0));
    show("after_owner_died", w, me);
    T("unlock_owner_died", fx(&w, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0));
    show("after_unlock_owner_died", w, me);
    w = FUTEX_OWNER_DIED;
    T("trylock_owner_died", fx(&w, FUTEX_TRYLOCK_PI, 0, NULL, NULL, 0));
    show("after_trylock_owner_died", w, me);
    w = me | FUTEX_WAITERS;
    T("unlock_waiters_none", fx(&w, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0));
    show("after_unlock_waiters_none", w, me);

    /* Bad input. */
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    E("lock_unaligned", fx((uint32_t *)(page + 2), FUTEX_LOCK_PI, 0, NULL, NULL, 0), EINVAL);
    E("unlock_unaligned", fx((uint32_t *)(page + 2), FUTEX_UNLOCK_PI, 0, NULL, NULL, 0), EINVAL);
    E("lock_null", fx(NULL, FUTEX_LOCK_PI, 0, NULL, NULL, 0), EFAULT);
    E("unlock_null", fx(NULL, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0), EFAULT);
    E("trylock_null", fx(NULL, FUTEX_TRYLOCK_PI, 0, NULL, NULL, 0), EFAULT);
    mprotect(page, 4096, PROT_READ);
    E("lock_readonly", fx((uint32_t *)page, FUTEX_LOCK_PI, 0, NULL, NULL, 0), EFAULT);
    munmap(page, 4096);
    w = 0;
    struct timespec bad = { 0, 2000000000L };
    E("lock_realtime_flag", fx(&w, FUTEX_LOCK_PI | FUTEX_CLOCK_REALTIME, 0, NULL, NULL, 0), ENOSYS);
    E("wake_realtime_flag", fx(&w, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0), ENOSYS);
    E("unlock_realtime_flag", fx(&w, FUTEX_UNLOCK_PI | FUTEX_CLOCK_REALTIME, 0, NULL, NULL, 0), ENOSYS);
    E("cmp_requeue_pi_nwake2", fx(&condw, FUTEX_CMP_REQUEUE_PI, 2, (void *)1, &lockw, 0), EINVAL);
    E("cmp_requeue_pi_same", fx(&lockw, FUTEX_CMP_REQUEUE_PI, 1, (void *)1, &lockw, 0), EINVAL);
    E("cmp_requeue_pi_neg", fx(&condw, FUTEX_CMP_REQUEUE_PI, 1, (void *)-1L, &lockw, 0), EINVAL);
    E("cmp_requeue_pi_mismatch", fx(&condw, FUTEX_CMP_REQUEUE_PI, 1, (void *)1, &lockw, 5), EAGAIN);
    V("cmp_requeue_pi_nobody", fx(&condw, FUTEX_CMP_REQUEUE_PI, 1, (void *)1, &lockw, 0));
    E("wait_requeue_pi_same", fx(&condw, FUTEX_WAIT_REQUEUE_PI, 0, NULL, &condw, FUTEX_BITSET_MATCH_ANY), EINVAL);
    E("wait_requeue_pi_mismatch", fx(&condw, FUTEX_WAIT_REQUEUE_PI, 7, NULL, &lockw, FUTEX_BITSET_MATCH_ANY), EAGAIN);
    struct timespec soon = in_ms(CLOCK_MONOTONIC, 30);
    E("wait_requeue_pi_timeout", fx(&condw, FUTEX_WAIT_REQUEUE_PI, 0, &soon, &lockw, FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    soon = in_ms(CLOCK_REALTIME, 30);
    E("wait_requeue_pi_timeout_rt", fx(&condw, FUTEX_WAIT_REQUEUE_PI | FUTEX_CLOCK_REALTIME, 0, &soon, &lockw, FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    E("wait_requeue_pi_badtime", fx(&condw, FUTEX_WAIT_REQUEUE_PI, 0, &bad, &lockw, FUTEX_BITSET_MATCH_ANY), EINVAL);

    /* FUTEX_CLOCK_REALTIME on the waits. */
    soon = in_ms(CLOCK_REALTIME, 30);
    E("wait_bitset_realtime", fx(&w, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 0, &soon, NULL, FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    struct timespec past = { 1, 0 };
    E("wait_bitset_realtime_past", fx(&w, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 0, &past, NULL, FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    E("wait_bitset_realtime_badtime", fx(&w, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 0, &bad, NULL, FUTEX_BITSET_MATCH_ANY), EINVAL);
    E("wait_bitset_realtime_changed", fx(&w, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 1, &soon, NULL, FUTEX_BITSET_MATCH_ANY), EAGAIN);
    struct timespec rel = { 0, 20000000L };
    E("wait_realtime_flag", fx(&w, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 0, &rel, NULL, 0), ENOSYS);

    /* A waiter blocks behind the owner and gets the lock on unlock. */
    lockw = 0;
    T("main_takes", fx(&lockw, FUTEX_LOCK_PI, 0, NULL, NULL, 0));
    pthread_t th[4];
    pthread_create(&th[0], NULL, pi_waiter, (void *)0L);
    until_waiters(&lockw);
    show("with_waiter", lockw, me);
    T("main_unlocks_to_waiter", fx(&lockw, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0));
    pthread_join(th[0], NULL);
    V("waiter_result", result[0]);
    show("after_handover", lockw, me);

    /* Another thread holds it: trylock fails (and leaves WAITERS), a
     * timed lock times out on CLOCK_REALTIME, LOCK_PI2 on MONOTONIC. */
    lockw = 0;
    condw = 0;
    pthread_create(&th[0], NULL, holder_timed, NULL);
    while ((lockw & FUTEX_TID_MASK) == 0)
        sched_yield();
    E("trylock_other", fx(&lockw, FUTEX_TRYLOCK_PI, 0, NULL, NULL, 0), EAGAIN);
    printf("after_trylock_other %s\n", flags(lockw));
    E("unlock_not_owner", fx(&lockw, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0), EPERM);
    soon = in_ms(CLOCK_REALTIME, 30);
    E("lock_timeout", fx(&lockw, FUTEX_LOCK_PI, 0, &soon, NULL, 0), ETIMEDOUT);
    E("lock_badtime", fx(&lockw, FUTEX_LOCK_PI, 0, &bad, NULL, 0), EINVAL);
    soon = in_ms(CLOCK_MONOTONIC, 30);
    E("lock_pi2_timeout", fx(&lockw, FUTEX_LOCK_PI2, 0, &soon, NULL, 0), ETIMEDOUT);
    soon = in_ms(CLOCK_REALTIME, 30);
    E("lock_pi2_realtime_timeout", fx(&lockw, FUTEX_LOCK_PI2 | FUTEX_CLOCK_REALTIME, 0, &soon, NULL, 0), ETIMEDOUT);
    V("wake_pi_no_kernel_waiters", fx(&lockw, FUTEX_WAKE, 1, NULL, NULL, 0));
    condw = 1;
    fx(&condw, FUTEX_WAKE, 1, NULL, NULL, 0);
    pthread_join(th[0], NULL);
    show("after_holder", lockw, me);

    /* Requeue-PI: a free lock goes straight to the first waiter, the
     * second is moved onto the lock and gets it on unlock. */
    lockw = 0;
    condw = 0;
    result[1] = result[2] = 0;
    pthread_create(&th[1], NULL, rq_waiter, (void *)1L);
    pthread_create(&th[2], NULL, rq_waiter, (void *)2L);
    /* Each call takes what has queued so far; stop once both were. */
    long moved = 0;
    while (moved < 2) {
        if (fx(&lockw, FUTEX_LOCK_PI, 0, NULL, NULL, 0))
            printf("lock_for_requeue err %s\n", errno_name(errno));
        long n = fx(&condw, FUTEX_CMP_REQUEUE_PI, 1, (void *)(long)INT_MAX, &lockw, 0);
        if (n < 0)
            printf("cmp_requeue_pi err %s\n", errno_name(errno));
        else
            moved += n;
        fx(&lockw, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0);
        if (moved < 2)
            sched_yield();
    }
    pthread_join(th[1], NULL);
    pthread_join(th[2], NULL);
    V("requeued_total", moved);
    V("rq_waiter1", result[1]);
    V("rq_waiter2", result[2]);
    show("after_requeue", lockw, me);

    /* A requeue-PI waiter is no plain waiter: FUTEX_WAKE and a plain
     * requeue refuse it (EINVAL); requeue-PI releases it. */
    condw = 0;
    lockw = 0;
    result[3] = 0;
    pthread_create(&th[3], NULL, rq_waiter, (void *)3L);
    long r;
    while ((r = fx(&condw, FUTEX_WAKE, 1, NULL, NULL, 0)) == 0)
        sched_yield();
    E("wake_requeue_pi_waiter", r, EINVAL);
    E("requeue_requeue_pi_waiter", fx(&condw, FUTEX_CMP_REQUEUE, 1, (void *)1, &lockw, 0), EINVAL);
    V("release_requeue_pi_waiter", fx(&condw, FUTEX_CMP_REQUEUE_PI, 1, (void *)1, &lockw, 0));
    pthread_join(th[3], NULL);
    V("rq_waiter3", result[3]);
    show("after_release", lockw, me);
    condw = 0;
    result[0] = 0;
    pthread_create(&th[0], NULL, plain_waiter, NULL);
    while ((r = fx(&condw, FUTEX_CMP_REQUEUE_PI, 1, (void *)1, &lockw, 0)) == 0)
        sched_yield();
    E("requeue_pi_plain_waiter", r, EINVAL);
    V("wake_plain_waiter", fx(&condw, FUTEX_WAKE, 1, NULL, NULL, 0));
    pthread_join(th[0], NULL);
    V("plain_waiter_result", result[0]);

    /* glibc: PTHREAD_PRIO_INHERIT mutexes. */
    init_pi(&pim, PTHREAD_MUTEX_ERRORCHECK, 0, 0);
    pthread_t inc[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&inc[i], NULL, incr, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(inc[i], NULL);
    V("pi_counter", counter);
    V("pi_lock", pthread_mutex_lock(&pim));
    V("pi_relock", pthread_mutex_lock(&pim));
    pthread_create(&th[0], NULL, try_other, NULL);
    pthread_join(th[0], NULL);
    V("pi_trylock_other", result[0]);
    V("pi_unlock_other", result[1]);
    V("pi_unlock", pthread_mutex_unlock(&pim));
    V("pi_unlock_again", pthread_mutex_unlock(&pim));
    struct timespec dl = in_ms(CLOCK_REALTIME, 30);
    pthread_mutex_lock(&pim);
    pthread_create(&th[0], NULL, try_other, NULL);
    pthread_join(th[0], NULL);
    V("pi_trylock_held", result[0]);
    pthread_mutex_unlock(&pim);
    (void)dl;

    /* Robust PI: the owner dies while another waits, then with nobody
     * waiting. */
    init_pi(&robust, PTHREAD_MUTEX_NORMAL, 1, 0);
    pthread_create(&th[0], NULL, die_holding, NULL);
    while (!robust_stage)
        sched_yield();
    V("robust_wait_owner_died", pthread_mutex_lock(&robust));
    pthread_join(th[0], NULL);
    V("robust_consistent", pthread_mutex_consistent(&robust));
    V("robust_unlock", pthread_mutex_unlock(&robust));
    pthread_create(&th[0], NULL, die_holding_alone, NULL);
    pthread_join(th[0], NULL);
    V("robust_after_exit", pthread_mutex_lock(&robust));
    V("robust_unlock_unrecovered", pthread_mutex_unlock(&robust));
    V("robust_notrecoverable", pthread_mutex_lock(&robust));

    /* Shared between processes: the child dies holding it. */
    pthread_mutex_t *sm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    init_pi(sm, PTHREAD_MUTEX_NORMAL, 1, 1);
    int pfd[2];
    pipe(pfd);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(sm);
        write(pfd[1], "x", 1);
        until_waiters((volatile uint32_t *)&sm->__data.__lock);
        _exit(0);
    }
    char ch;
    read(pfd[0], &ch, 1);
    V("shared_owner_died", pthread_mutex_lock(sm));
    V("shared_consistent", pthread_mutex_consistent(sm));
    V("shared_unlock", pthread_mutex_unlock(sm));
    waitpid(c, NULL, 0);
    V("shared_lock_again", pthread_mutex_lock(sm));
    V("shared_unlock_again", pthread_mutex_unlock(sm));
    printf("done\n");
    return 0;
}
