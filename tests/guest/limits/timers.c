/* Sandbox-only (tests/tests/limits.rs): argv[1] processes each arm
 * ITIMER_REAL and ITIMER_PROF (far off), print "ready" and wait for
 * stdin to close; the parent also takes one real SIGALRM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;
static void on_alrm(int s)
{
    (void)s;
    alarms++;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int n = argc > 1 ? atoi(argv[1]) : 50;
    struct itimerval far = { { 0, 0 }, { 1000, 0 } };
    int armed[2];
    pipe(armed);
    for (int i = 0; i < n; i++) {
        pid_t c = fork();
        if (c == 0) {
            setitimer(ITIMER_REAL, &far, NULL);
            setitimer(ITIMER_PROF, &far, NULL);
            /* Re-arming many times must not leave threads behind either. */
            for (int j = 0; j < 20; j++)
                setitimer(ITIMER_REAL, &far, NULL);
            write(armed[1], "x", 1);
            char ch;
            while (read(0, &ch, 1) > 0)
                ;
            _exit(0);
        }
    }
    for (int i = 0; i < n; i++) {
        char x;
        read(armed[0], &x, 1);
    }
    signal(SIGALRM, on_alrm);
    struct itimerval soon = { { 0, 0 }, { 0, 20000 } };
    setitimer(ITIMER_REAL, &soon, NULL);
    while (!alarms)
        pause();
    setitimer(ITIMER_PROF, &far, NULL);
    printf("ready: %d alarm\n", (int)alarms);
    char ch;
    while (read(0, &ch, 1) > 0)
        ;
    int done = 0;
    while (wait(NULL) > 0)
        done++;
    printf("reaped %d\n", done);
    return 0;
}
