/* Helpers shared by the file-lock conformance guests (locks_*.c). */
#ifndef RUNSC_LITE_LOCKS_COMMON_H
#define RUNSC_LITE_LOCKS_COMMON_H

#include "common.h"
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/time.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

/* fcntl lock command on bytes (whence, start, len) of type `type`. */
static __attribute__((unused)) int lk(int fd, int cmd, short type, short whence, off_t start, off_t len)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = whence;
    fl.l_start = start;
    fl.l_len = len;
    return fcntl(fd, cmd, &fl);
}

/* F_GETLK-style query; returns the filled struct (l_type -1 on error, errno set). */
static __attribute__((unused)) struct flock getlk(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    fl.l_pid = 0;
    if (fcntl(fd, cmd, &fl) < 0)
        fl.l_type = -1;
    return fl;
}

/* Prints a query's answer without its pid: type and range. */
static __attribute__((unused)) void show(const char *name, struct flock fl)
{
    if (fl.l_type == -1)
        printf("%s err %s\n", name, errno_name(errno));
    else if (fl.l_type == F_UNLCK)
        printf("%s unlocked\n", name);
    else
        printf("%s %s start=%ld len=%ld whence=%d\n", name, fl.l_type == F_WRLCK ? "wr" : "rd", (long)fl.l_start,
               (long)fl.l_len, fl.l_whence);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* Interrupt whatever blocks next, again and again, without SA_RESTART. */
static __attribute__((unused)) void start_interrupts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static __attribute__((unused)) void stop_interrupts(void)
{
    struct itimerval it = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    signal(SIGALRM, SIG_IGN);
}

/* Whether a pipe has bytes to read right now. */
static __attribute__((unused)) int has_data(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

static __attribute__((unused)) void wait_byte(int fd)
{
    char c;
    if (read(fd, &c, 1) != 1)
        printf("wait_byte failed\n");
}

static __attribute__((unused)) void send_byte(int fd)
{
    if (write(fd, "x", 1) != 1)
        printf("send_byte failed\n");
}

/* Waits for child `pid` and returns its exit status (or 128+signal). */
static __attribute__((unused)) int reap(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static __attribute__((unused)) int cmp_lines(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The lines of /proc/locks about `file`, sorted, without their numbers,
 * the pid shown as me, -1 or other. */
static __attribute__((unused)) void proc_locks(const char *file)
{
    struct stat st;
    if (stat(file, &st) != 0) {
        printf("proc_locks stat failed\n");
        return;
    }
    char id[64];
    snprintf(id, sizeof id, "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino);
    FILE *f = fopen("/proc/locks", "r");
    B("proc_locks_opens", f != NULL);
    if (!f)
        return;
    static char lines[32][160];
    int n = 0;
    char buf[512];
    while (n < 32 && fgets(buf, sizeof buf, f)) {
        char kind[16], adv[16], rw[16], devino[64], from[32], to[32];
        int pid;
        char *p = strstr(buf, ": ");
        if (!p || strstr(buf, "->"))
            continue;
        if (sscanf(p + 2, "%15s %15s %15s %d %63s %31s %31s", kind, adv, rw, &pid, devino, from, to) != 7)
            continue;
        if (strcmp(devino, id) != 0)
            continue;
        snprintf(lines[n++], sizeof lines[0], "%s %s %s %s %s %s", kind, adv, rw,
                 pid == getpid() ? "me" : pid == -1 ? "-1" : "other", from, to);
    }
    fclose(f);
    qsort(lines, n, sizeof lines[0], cmp_lines);
    for (int i = 0; i < n; i++)
        printf("proc_locks %s\n", lines[i]);
}

#endif
