/* membarrier: QUERY, the barriers, registration and the EPERM a private
 * command gets before it, GET_REGISTRATIONS, inheritance by fork and the
 * reset by exec, bad commands and flags. The RSEQ pair is not served in
 * the sandbox (masked: "rseq_" lines). */
#include "common.h"
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/wait.h>

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

static long mb(int cmd, unsigned flags)
{
    return syscall(SYS_membarrier, cmd, flags, 0);
}

static volatile int stop;
static volatile long counter;

static void *busy(void *p)
{
    (void)p;
    while (!stop)
        counter++;
    return NULL;
}

int main(int argc, char **argv)
{
    guest_init();
    if (argc > 1 && strcmp(argv[1], "exec") == 0) {
        V("after_exec_registrations", mb(MEMBARRIER_CMD_GET_REGISTRATIONS, 0));
        E("after_exec_private", mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0), EPERM);
        printf("done\n");
        return 0;
    }
    long q = mb(MEMBARRIER_CMD_QUERY, 0);
    T("query", q);
    int rseq_bits = MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ;
    V("query_bits", q & ~rseq_bits);
    E("query_flags", mb(MEMBARRIER_CMD_QUERY, 1), EINVAL);
    T("global", mb(MEMBARRIER_CMD_GLOBAL, 0));
    T("global_expedited", mb(MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0));
    E("private_unregistered", mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0), EPERM);
    E("sync_core_unregistered", mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0), EPERM);
    V("registrations_none", mb(MEMBARRIER_CMD_GET_REGISTRATIONS, 0));
    E("bad_cmd", mb(3, 0), EINVAL);
    E("bad_cmd_high", mb(1 << 12, 0), EINVAL);
    E("bad_flags", mb(MEMBARRIER_CMD_GLOBAL, 2), EINVAL);

    pthread_t t;
    pthread_create(&t, NULL, busy, NULL);
    T("register_private", mb(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0));
    T("private", mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0));
    E("sync_core_still_unregistered", mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0), EPERM);
    T("register_sync_core", mb(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0));
    T("sync_core", mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0));
    T("register_global", mb(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0));
    T("register_twice", mb(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0));
    V("registrations", mb(MEMBARRIER_CMD_GET_REGISTRATIONS, 0));
    for (int i = 0; i < 100; i++)
        mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0);
    T("private_repeated", mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0));
    stop = 1;
    pthread_join(t, NULL);

    int pid = fork();
    if (pid == 0)
        _exit(mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) == 0 ? 0 : 1);
    int st = 0;
    waitpid(pid, &st, 0);
    V("fork_keeps_registration", WEXITSTATUS(st));

    fflush(stdout);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    char *args[] = { self, "exec", NULL };
    execv(self, args);
    printf("execv err %s\n", errno_name(errno));
    return 1;
}
