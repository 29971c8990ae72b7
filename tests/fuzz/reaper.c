/* reaper: runs a command as a child subreaper and reports the host
 * processes it left behind. Runs on the HOST (around runsc-lite), not in
 * the sandbox.
 *
 *   reaper SECONDS CMD ARGS...
 *
 * Every process that CMD starts and that outlives its parent is handed to
 * us (PR_SET_CHILD_SUBREAPER), so once CMD has exited, whatever is still
 * running below us was left behind by it: runsc-lite's stubs must all end
 * with it (they die with the Sentry's forker thread). We wait up to
 * SECONDS for them to end, then kill them.
 *
 * The last stderr line is "reaper: left behind N (outlived M)": M counts
 * descendants that ended after CMD did (stubs dying a moment later), N
 * those still alive at the deadline. The exit status is CMD's (128+N when
 * a signal killed it).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Our children right now, from /proc: (pid, ppid) lines of every process. */
static int children(pid_t *out, int max)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t me = getpid();
    while (d && (e = readdir(d)) && n < max) {
        char path[64], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        /* pid (comm) state ppid ...; comm may hold spaces and parens. */
        char *rp = strrchr(buf, ')');
        int ppid = 0;
        char state = 0;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == me)
            out[n++] = atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return n;
}

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: reaper SECONDS CMD ARGS...\n");
        return 2;
    }
    long limit_ms = atol(argv[1]) * 1000L;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("reaper: PR_SET_CHILD_SUBREAPER");
        return 2;
    }
    pid_t c = fork();
    if (c < 0) {
        perror("reaper: fork");
        return 2;
    }
    if (c == 0) {
        execvp(argv[2], argv + 2);
        perror("reaper: exec");
        _exit(127);
    }
    int st = 0, outlived = 0;
    for (;;) {
        pid_t r = waitpid(-1, &st, 0);
        if (r == c)
            break;
        if (r > 0)
            outlived++; /* an orphan of CMD that ended while CMD ran: fine */
        else if (errno != EINTR)
            break;
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    /* Whatever is still below us now was left behind by CMD. */
    long deadline = now_ms() + limit_ms;
    int left = 0;
    for (;;) {
        pid_t r = waitpid(-1, 0, WNOHANG);
        if (r > 0) {
            outlived++;
            continue;
        }
        if (r < 0 && errno == ECHILD)
            break;
        if (now_ms() >= deadline) {
            pid_t kids[256];
            int n = children(kids, 256);
            for (int i = 0; i < n; i++) {
                char path[64], comm[64] = "?";
                snprintf(path, sizeof path, "/proc/%d/comm", kids[i]);
                FILE *f = fopen(path, "r");
                if (f) {
                    if (fgets(comm, sizeof comm, f))
                        comm[strcspn(comm, "\n")] = 0;
                    fclose(f);
                }
                fprintf(stderr, "reaper: pid %d (%s) still alive %ld s after the command ended; killed\n", kids[i],
                        comm, limit_ms / 1000);
                kill(kids[i], SIGKILL);
            }
            left = n > 0 ? n : 1;
            while (waitpid(-1, 0, 0) > 0) {
            }
            break;
        }
        usleep(10000);
    }
    fprintf(stderr, "reaper: left behind %d (outlived %d)\n", left, outlived);
    return code;
}
