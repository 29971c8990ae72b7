/* The failure policy's debug hook. Without arguments (the conformance
 * run): the debug syscall number with a wrong cookie is ENOSYS, natively
 * and in the sandbox, so nothing but the exact call reaches the hook.
 *
 * With "panic MODE" (tests/tests/failure.rs, sandbox only): start a few
 * processes (one with a second thread), print "ready", wait for a line on
 * stdin, then have a forked child make the debug syscall (MODE 0: panic
 * on its own Sentry thread, 1: on a helper thread, 2: while holding the
 * process's thread list and the kernel's wait lock) while the parent
 * waits for it in wait4. The sandbox must end at once with status 125. */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define DEBUG_PANIC_SYSCALL 0x52534c00L
#define DEBUG_PANIC_COOKIE 0x70616e696321L

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv)
{
    guest_init();
    if (argc < 3 || strcmp(argv[1], "panic") != 0) {
        E("debug_syscall_wrong_cookie", syscall(DEBUG_PANIC_SYSCALL, 0L, 0L), ENOSYS);
        printf("done\n");
        return 0;
    }
    long mode = atol(argv[2]);
    /* Idle processes, one of them with a second thread. */
    for (int i = 0; i < 3; i++) {
        if (fork() == 0) {
            if (i == 0) {
                pthread_t t;
                pthread_create(&t, NULL, sleeper, NULL);
            }
            sleeper(NULL);
        }
    }
    int go[2];
    if (pipe(go) != 0)
        return 90;
    pid_t trigger = fork();
    if (trigger == 0) {
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(91);
        syscall(DEBUG_PANIC_SYSCALL, DEBUG_PANIC_COOKIE, mode);
        /* Mode 1 returns; the helper thread ends everything. */
        sleeper(NULL);
    }
    printf("ready\n");
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        return 92;
    if (write(go[1], "g", 1) != 1)
        return 93;
    int st;
    waitpid(trigger, &st, 0);
    /* Never reached: the sandbox ends while the parent waits. */
    printf("parent woke up\n");
    return 94;
}
