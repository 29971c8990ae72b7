/* Robust futexes: a mutex whose owner dies is handed to the next locker
 * with EOWNERDEAD (a thread that exits, a process that dies holding a
 * process-shared mutex, a process killed by a signal); set/get_robust_list. */
#include "common.h"
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

static pthread_mutex_t *make_mutex(void *where)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_t *m = where;
    pthread_mutex_init(m, &a);
    return m;
}

static void *die_holding(void *a)
{
    pthread_mutex_lock(a);
    return 0; /* thread exits with the mutex locked */
}

static volatile int waiter_result = -1;
static void *wait_for_it(void *a)
{
    waiter_result = pthread_mutex_lock(a);
    if (waiter_result == EOWNERDEAD) pthread_mutex_consistent(a);
    pthread_mutex_unlock(a);
    return 0;
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    void *shared = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    B("mmap_shared", shared != MAP_FAILED);

    /* A thread dies holding it. */
    static pthread_mutex_t tm;
    pthread_mutex_t *m = make_mutex(&tm);
    pthread_t t;
    pthread_create(&t, 0, die_holding, m);
    pthread_join(t, 0);
    int r = pthread_mutex_lock(m);
    printf("thread_owner_died %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : errno_name(r));
    V("consistent", pthread_mutex_consistent(m));
    V("unlock", pthread_mutex_unlock(m));
    V("relock", pthread_mutex_lock(m));
    V("unlock_again", pthread_mutex_unlock(m));

    /* A process dies holding a process-shared one, while we wait on it. */
    pthread_mutex_t *pm = make_mutex(shared);
    int go[2];
    pipe(go);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(pm);
        write(go[1], "x", 1);
        usleep(100000);
        _exit(0);
    }
    char b;
    read(go[0], &b, 1);
    pthread_t w;
    pthread_create(&w, 0, wait_for_it, pm);
    pthread_join(w, 0);
    printf("process_owner_died %s\n", waiter_result == EOWNERDEAD ? "EOWNERDEAD" : errno_name(waiter_result));
    int st;
    waitpid(c, &st, 0);

    /* Killed by a signal while holding it. */
    c = fork();
    if (c == 0) {
        pthread_mutex_lock(pm);
        write(go[1], "x", 1);
        for (;;) pause();
    }
    read(go[0], &b, 1);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    r = pthread_mutex_lock(pm);
    printf("killed_owner %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : errno_name(r));
    pthread_mutex_consistent(pm);
    pthread_mutex_unlock(pm);

    /* Not made consistent: the next locker gets ENOTRECOVERABLE. */
    c = fork();
    if (c == 0) {
        pthread_mutex_lock(pm);
        _exit(0);
    }
    waitpid(c, &st, 0);
    r = pthread_mutex_lock(pm);
    printf("owner_died_again %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : errno_name(r));
    pthread_mutex_unlock(pm);
    r = pthread_mutex_lock(pm);
    printf("not_recoverable %s\n", r == ENOTRECOVERABLE ? "ENOTRECOVERABLE" : errno_name(r));

    /* The syscalls themselves. */
    struct robust_list_head *head;
    size_t len;
    T("get_robust_list_self", syscall(SYS_get_robust_list, 0, &head, &len));
    B("robust_list_registered", head != 0 && len == sizeof(struct robust_list_head));
    E("set_robust_list_bad_len", syscall(SYS_set_robust_list, head, 7), EINVAL);
    E("get_robust_list_bad_ptr", syscall(SYS_get_robust_list, 0, (void *)8, &len), EFAULT);
    E("get_robust_list_no_such", syscall(SYS_get_robust_list, 999999, &head, &len), ESRCH);
    printf("done\n");
    return 0;
}
