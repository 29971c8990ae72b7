/* /proc tells the truth: the state letter of a task blocked in a syscall
 * (read on a pipe, nanosleep, futex, wait4, poll) is S, a stopped one T, a
 * killed one not yet reaped Z, a spinning one R; the per-process files
 * have Linux's fields; every entry of /proc/self opens. */
#include "common.h"
#include <linux/futex.h>
#include <poll.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

/* The state letter of /proc/PID/stat (after the comm's last ')'), or '?'. */
static char state_of(pid_t pid, const char *file)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return '?';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    if (strcmp(file, "stat") == 0) {
        char *p = strrchr(buf, ')');
        return p && p[1] == ' ' ? p[2] : '?';
    }
    char *p = strstr(buf, "\nState:\t");
    return p ? p[8] : '?';
}

static void tiny_pause(void)
{
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Wait (up to a generous deadline) until PID's stat and status both show
 * state `want`; print whether they did. */
static void expect_state(const char *name, pid_t pid, char want)
{
    char got = '?';
    for (int i = 0; i < 30000; i++) {
        got = state_of(pid, "stat");
        if (got == want && state_of(pid, "status") == want)
            break;
        tiny_pause();
    }
    printf("%s %c\n", name, got);
}

static pid_t spawn(int kind, int *pipefd)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    char c;
    static int word;
    switch (kind) {
    case 0:
        close(pipefd[1]);
        read(pipefd[0], &c, 1);
        break;
    case 1: {
        struct timespec ts = {1000, 0};
        nanosleep(&ts, NULL);
        break;
    }
    case 2:
        syscall(SYS_futex, &word, FUTEX_WAIT, 0, NULL, NULL, 0);
        break;
    case 3: {
        pid_t g = fork();
        if (g == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            pause();
            _exit(0);
        }
        waitpid(g, NULL, 0);
        break;
    }
    case 4: {
        struct pollfd p = {pipefd[0], POLLIN, 0};
        close(pipefd[1]);
        poll(&p, 1, -1);
        break;
    }
    case 5:
        for (volatile unsigned long n = 0;; n++)
            ;
    }
    _exit(0);
}

static void kill_reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void states(void)
{
    int p[2];
    pipe(p);
    /* The parent keeps the write end: the child's read blocks. */
    pid_t reader = spawn(0, p);
    expect_state("pipe_read_blocked", reader, 'S');
    kill(reader, SIGSTOP);
    expect_state("sigstop", reader, 'T');
    int st;
    T("waitpid_stopped", waitpid(reader, &st, WUNTRACED));
    B("reported_stopped", WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    kill(reader, SIGCONT);
    expect_state("sigcont_back_to_read", reader, 'S');
    kill(reader, SIGKILL);
    expect_state("killed_unreaped", reader, 'Z');
    T("reap", waitpid(reader, &st, 0));
    B("reaped_killed", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)reader);
    E("gone_after_reap", open(path, O_RDONLY), ENOENT);
    close(p[0]);
    close(p[1]);

    const char *names[] = {"nanosleep", "futex_wait", "wait4", "poll"};
    int kinds[] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        pipe(p);
        pid_t c = spawn(kinds[i], p);
        char name[64];
        snprintf(name, sizeof name, "%s_blocked", names[i]);
        expect_state(name, c, 'S');
        kill_reap(c);
        close(p[0]);
        close(p[1]);
    }
    /* A vfork parent waits for its child uninterruptibly (killable
     * only): D. The child blocks in read until the pipe's last writer
     * goes. */
    pipe(p);
    pid_t vparent = fork();
    if (vparent == 0) {
        if (vfork() == 0) {
            char c;
            close(p[1]);
            read(p[0], &c, 1);
            _exit(0);
        }
        _exit(0);
    }
    expect_state("vfork_parent", vparent, 'D');
    kill_reap(vparent);
    close(p[0]);
    close(p[1]);

    pid_t spinner = spawn(5, p);
    expect_state("spinning", spinner, 'R');
    kill_reap(spinner);
    printf("self %c\n", state_of(getpid(), "stat"));
}

static int slurp(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return (int)n;
}

static int count_fields(const char *s)
{
    int n = 0, in = 0;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\n' || *s == '\t') {
            in = 0;
        } else if (!in) {
            in = 1;
            n++;
        }
    }
    return n;
}

static void files(void)
{
    char buf[8192], path[128];
    T("read_stat", slurp("/proc/self/stat", buf, sizeof buf));
    char *after = strrchr(buf, ')');
    V("stat_fields_after_comm", after ? count_fields(after + 1) + 2 : -1);
    T("read_statm", slurp("/proc/self/statm", buf, sizeof buf));
    V("statm_fields", count_fields(buf));
    T("read_status", slurp("/proc/self/status", buf, sizeof buf));
    const char *keys[] = {"Name:", "Umask:", "State:", "Tgid:", "Pid:", "PPid:", "TracerPid:", "Uid:", "Gid:",
                          "FDSize:", "Groups:", "VmSize:", "VmRSS:", "Threads:", "SigPnd:", "SigBlk:", "SigIgn:",
                          "SigCgt:", "CapEff:", "Cpus_allowed_list:", "voluntary_ctxt_switches:"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        snprintf(path, sizeof path, "status_has %s", keys[i]);
        B(path, strstr(buf, keys[i]) != NULL);
    }
    T("read_io", slurp("/proc/self/io", buf, sizeof buf));
    B("io_rchar", strncmp(buf, "rchar: ", 7) == 0);
    B("io_write_bytes", strstr(buf, "\nwrite_bytes: ") != NULL);
    T("read_limits", slurp("/proc/self/limits", buf, sizeof buf));
    B("limits_header", strncmp(buf, "Limit                     Soft Limit           Hard Limit           Units", 71) == 0);
    B("limits_nofile", strstr(buf, "\nMax open files            ") != NULL);
    T("read_cgroup", slurp("/proc/self/cgroup", buf, sizeof buf));
    T("read_mountinfo", slurp("/proc/self/mountinfo", buf, sizeof buf));
    B("mountinfo_separator", strstr(buf, " - ") != NULL);
    T("read_wchan", slurp("/proc/self/wchan", buf, sizeof buf));
    T("read_oom_score_adj", slurp("/proc/self/oom_score_adj", buf, sizeof buf));
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    T("oom_open_write", fd);
    T("oom_raise", write(fd, "1000\n", 5));
    E("oom_out_of_range", write(fd, "1001", 4), EINVAL);
    E("oom_not_a_number", write(fd, "x", 1), EINVAL);
    close(fd);
    slurp("/proc/self/oom_score_adj", buf, sizeof buf);
    printf("oom_score_adj %s", buf);

    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
    T("task_tid_stat", slurp(path, buf, sizeof buf));
    DIR *d = opendir("/proc/self/task");
    int ntasks = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        ntasks += e->d_name[0] != '.';
    if (d)
        closedir(d);
    V("tasks", ntasks);
    const char *ns[] = {"ipc", "mnt", "net", "pid", "user", "uts"};
    for (int i = 0; i < 6; i++) {
        char target[128] = {0};
        snprintf(path, sizeof path, "/proc/self/ns/%s", ns[i]);
        ssize_t n = readlink(path, target, sizeof target - 1);
        char want[32];
        snprintf(want, sizeof want, "%s:[", ns[i]);
        snprintf(path, sizeof path, "ns_%s", ns[i]);
        B(path, n > 0 && strncmp(target, want, strlen(want)) == 0);
    }

    T("read_loadavg", slurp("/proc/loadavg", buf, sizeof buf));
    V("loadavg_fields", count_fields(buf));
    B("loadavg_slash", strchr(buf, '/') != NULL);
    T("read_uptime", slurp("/proc/uptime", buf, sizeof buf));
    V("uptime_fields", count_fields(buf));
    T("read_proc_stat", slurp("/proc/stat", buf, sizeof buf));
    B("proc_stat_cpu", strncmp(buf, "cpu  ", 5) == 0);
    B("proc_stat_btime", strstr(buf, "\nbtime ") != NULL);
    B("proc_stat_procs_running", strstr(buf, "\nprocs_running ") != NULL);

    const char *sys[] = {"kernel/hostname", "kernel/domainname", "kernel/osrelease", "kernel/ostype",
                         "kernel/version", "kernel/pid_max", "kernel/threads-max", "kernel/ngroups_max",
                         "kernel/cap_last_cap", "kernel/overflowuid", "kernel/overflowgid", "kernel/shmmax",
                         "kernel/shmall", "kernel/shmmni", "kernel/msgmax", "kernel/msgmnb", "kernel/msgmni",
                         "kernel/random/boot_id", "kernel/random/uuid", "vm/overcommit_memory",
                         "vm/max_map_count", "vm/mmap_min_addr", "fs/nr_open"};
    for (size_t i = 0; i < sizeof sys / sizeof *sys; i++) {
        snprintf(path, sizeof path, "/proc/sys/%s", sys[i]);
        int n = slurp(path, buf, sizeof buf);
        snprintf(path, sizeof path, "sys %s", sys[i]);
        B(path, n > 1 && buf[n - 1] == '\n');
    }
    slurp("/proc/sys/kernel/ostype", buf, sizeof buf);
    printf("ostype %s", buf);
    slurp("/proc/sys/kernel/overflowuid", buf, sizeof buf);
    printf("overflowuid %s", buf);
    char boot1[64], boot2[64], uuid1[64], uuid2[64];
    slurp("/proc/sys/kernel/random/boot_id", boot1, sizeof boot1);
    slurp("/proc/sys/kernel/random/boot_id", boot2, sizeof boot2);
    slurp("/proc/sys/kernel/random/uuid", uuid1, sizeof uuid1);
    slurp("/proc/sys/kernel/random/uuid", uuid2, sizeof uuid2);
    B("boot_id_stable", strcmp(boot1, boot2) == 0 && strlen(boot1) == 37);
    B("uuid_fresh", strcmp(uuid1, uuid2) != 0 && strlen(uuid1) == 37);
}

/* Every name /proc/self lists can be looked at: lstat, then readlink for a
 * link, opendir for a directory, open for a file (EACCES allowed). */
static void every_entry(void)
{
    DIR *d = opendir("/proc/self");
    struct dirent *e;
    int bad = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], target[512];
        snprintf(path, sizeof path, "/proc/self/%s", e->d_name);
        struct stat st;
        int ok = lstat(path, &st) == 0;
        if (ok && S_ISLNK(st.st_mode)) {
            ok = readlink(path, target, sizeof target) > 0 || errno == EACCES;
        } else if (ok && S_ISDIR(st.st_mode)) {
            DIR *sub = opendir(path);
            ok = sub != NULL;
            if (sub)
                closedir(sub);
        } else if (ok) {
            int fd = open(path, O_RDONLY);
            ok = fd >= 0 || errno == EACCES || errno == EPERM;
            if (fd >= 0)
                close(fd);
        }
        if (!ok) {
            printf("entry %s err %s\n", e->d_name, errno_name(errno));
            bad++;
        }
    }
    if (d)
        closedir(d);
    V("bad_entries", bad);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    states();
    files();
    every_entry();
    printf("done\n");
    return 0;
}
