/* kill(2), tgkill(2) and sigqueue permission: an unprivileged sender may
 * signal only processes of its own uid (real or effective against real or
 * saved), SIGCONT within its session, and root anything; nor may it read
 * another user's robust list. Run as root
 * natively and in the sandbox; as another user it only says so. */
#include "common.h"
#include <signal.h>
#include <sys/wait.h>

/* A child that runs as `uid`: returns once it has switched. */
static pid_t spawn_as(uid_t uid)
{
    int ready[2];
    pipe(ready);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        if (setresuid(uid, uid, uid) < 0)
            _exit(1);
        close(ready[1]);
        for (;;)
            pause();
    }
    close(ready[1]);
    char c;
    read(ready[0], &c, 1);
    close(ready[0]);
    return pid;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        printf("not root\ndone\n");
        return 0;
    }
    pid_t victim = spawn_as(1000);
    pid_t same = spawn_as(2000);
    int p[2];
    pipe(p);
    pid_t sender = fork();
    if (sender == 0) {
        close(p[0]);
        setresuid(2000, 2000, 2000);
        char out[1024];
        int n = 0;
#define R(name, expr) n += snprintf(out + n, sizeof out - n, "%s %s\n", name, (expr) < 0 ? errno_name(errno) : "ok")
        R("kill_other_uid", kill(victim, SIGTERM));
        R("kill_other_uid_sig0", kill(victim, 0));
        R("kill_other_uid_sigcont_same_session", kill(victim, SIGCONT));
        R("tgkill_other_uid", syscall(SYS_tgkill, victim, victim, SIGTERM));
        R("tkill_other_uid", syscall(SYS_tkill, victim, SIGTERM));
        siginfo_t si;
        memset(&si, 0, sizeof si);
        si.si_code = SI_QUEUE;
        si.si_pid = getpid();
        si.si_uid = 2000;
        R("sigqueueinfo_other_uid", syscall(SYS_rt_sigqueueinfo, victim, SIGUSR1, &si));
        void *head;
        size_t len;
        R("get_robust_list_other_uid", syscall(SYS_get_robust_list, victim, &head, &len));
        R("get_robust_list_self", syscall(SYS_get_robust_list, 0, &head, &len));
        R("kill_same_uid_sig0", kill(same, 0));
        R("kill_missing", kill(999999, 0));
        write(p[1], out, n);
        _exit(0);
    }
    close(p[1]);
    char buf[1024];
    ssize_t n, total = 0;
    while ((n = read(p[0], buf + total, sizeof buf - 1 - total)) > 0)
        total += n;
    buf[total] = 0;
    fputs(buf, stdout);
    int st;
    waitpid(sender, &st, 0);
    T("root_kills_other_uid", kill(victim, SIGKILL));
    T("root_kills_same", kill(same, SIGKILL));
    waitpid(victim, &st, 0);
    B("victim_killed", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    waitpid(same, &st, 0);
    printf("done\n");
    return 0;
}
