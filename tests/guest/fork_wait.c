/* fork, wait4/waitpid statuses, exit codes and signals of children,
 * pipes between processes, getppid in the child, ECHILD. */
#include "common.h"
#include <signal.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    int st;
    fflush(stdout);

    pid_t parent = getpid();
    pid_t c = fork();
    if (c == 0) {
        if (getppid() != parent)
            _exit(100);
        _exit(7);
    }
    T("fork", c);
    if (c < 0)
        return 1; /* nothing below makes sense without fork */
    B("waitpid_returns_child", waitpid(c, &st, 0) == c);
    B("child_exited", WIFEXITED(st));
    V("child_exit_status", WEXITSTATUS(st));
    E("waitpid_echild", waitpid(-1, &st, 0), ECHILD);

    c = fork();
    if (c == 0) {
        raise(SIGTERM);
        _exit(0);
    }
    waitpid(c, &st, 0);
    B("child_signaled", WIFSIGNALED(st));
    V("child_term_sig", WTERMSIG(st));

    c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    V("child_killed_sig", WIFSIGNALED(st) ? WTERMSIG(st) : -1);

    /* WNOHANG on a running child, then reap. */
    int p[2];
    pipe(p);
    c = fork();
    if (c == 0) {
        char x;
        close(p[1]);
        read(p[0], &x, 1);
        _exit(3);
    }
    close(p[0]);
    V("wnohang_running", waitpid(c, &st, WNOHANG));
    write(p[1], "g", 1);
    close(p[1]);
    waitpid(c, &st, 0);
    V("child_after_pipe_status", WEXITSTATUS(st));

    /* Data through a pipe from a child. */
    pipe(p);
    c = fork();
    if (c == 0) {
        close(p[0]);
        write(p[1], "from child", 10);
        _exit(0);
    }
    close(p[1]);
    char buf[32] = { 0 };
    V("read_from_child", read(p[0], buf, sizeof buf));
    P("child_data %s\n", buf);
    waitpid(c, &st, 0);
    close(p[0]);

    /* Memory is copied, not shared. */
    static int shared_var = 1;
    c = fork();
    if (c == 0) {
        shared_var = 99;
        _exit(shared_var);
    }
    waitpid(c, &st, 0);
    V("child_saw_own_copy", WEXITSTATUS(st));
    V("parent_var_unchanged", shared_var);

    /* Many children, reaped in any order. */
    for (int i = 0; i < 10; i++) {
        if (fork() == 0)
            _exit(i);
    }
    int sum = 0, n = 0;
    while (wait(&st) > 0) {
        sum += WEXITSTATUS(st);
        n++;
    }
    V("reaped_children", n);
    V("sum_of_statuses", sum);

    /* SIGCHLD default is ignored (no death), vfork-style exec of /bin/true. */
    c = fork();
    if (c == 0) {
        char *args[] = { "true", NULL };
        execv("/bin/true", args);
        _exit(127);
    }
    waitpid(c, &st, 0);
    V("exec_true_status", WEXITSTATUS(st));

    guest_cleanup();
    P("done\n");
    return 0;
}
