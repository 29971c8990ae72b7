/* pthreads: create/join, gettid differs from getpid, futex-based mutex
 * and condition variable, thread-local storage, exit of a thread. */
#include "common.h"
#include <pthread.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter;
static int ready;
static __thread int tls = 5;

static void *worker(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < 10000; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
    }
    tls += (int)n;
    return (void *)(long)(syscall(SYS_gettid) != getpid());
}

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!ready)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return (void *)42;
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) {
        int e = pthread_create(&t[i], NULL, worker, (void *)i);
        if (e != 0) {
            printf("pthread_create err %s\n", errno_name(e));
            return 1; /* nothing below makes sense without threads */
        }
        printf("pthread_create ok\n");
    }
    int own_tids = 1;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (!r)
            own_tids = 0;
    }
    B("threads_have_own_tid", own_tids);
    V("counter", counter);
    V("main_tls_unchanged", tls);

    pthread_t w;
    pthread_create(&w, NULL, waiter, NULL);
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&mu);
    ready = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    void *r;
    pthread_join(w, &r);
    V("condvar_waiter_result", (long)r);

    guest_cleanup();
    P("done\n");
    return 0;
}
