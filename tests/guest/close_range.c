/* close_range: closing, CLOSE_RANGE_CLOEXEC, CLOSE_RANGE_UNSHARE, the
 * error paths, and posix_spawn's close-from action (glibc uses
 * close_range for it and fails the spawn without it). */
#include "common.h"
#include <spawn.h>
#include <sched.h>
#include <sys/wait.h>

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static int is_cloexec(int fd)
{
    int r = fcntl(fd, F_GETFD);
    return r >= 0 && (r & FD_CLOEXEC);
}

static long cr(unsigned first, unsigned last, unsigned flags)
{
    return syscall(SYS_close_range, first, last, flags);
}

static char stack[65536] __attribute__((aligned(16)));

static int shared_child(void *p)
{
    (void)p;
    /* Shares the parent's table until it unshares it. */
    if (cr(40, 40, CLOSE_RANGE_UNSHARE) != 0)
        return 1;
    return is_open(40) ? 2 : 0;
}

int main(int argc, char **argv)
{
    guest_init();
    if (argc > 1 && strcmp(argv[1], "check") == 0) {
        /* Spawned with closefrom(3): 30 and 31 must be gone. */
        return (is_open(30) ? 1 : 0) | (is_open(31) ? 2 : 0) | (is_open(1) ? 0 : 4);
    }
    int fd = open("/dev/null", O_RDONLY);
    for (int i = 20; i < 30; i++)
        dup2(fd, i);
    close(fd);
    T("close_20_24", cr(20, 24, 0));
    B("closed_20", !is_open(20));
    B("closed_24", !is_open(24));
    B("kept_25", is_open(25));
    T("cloexec_25_27", cr(25, 27, CLOSE_RANGE_CLOEXEC));
    B("cloexec_25", is_cloexec(25));
    B("cloexec_27", is_cloexec(27));
    B("open_25", is_open(25));
    B("not_cloexec_28", !is_cloexec(28) && is_open(28));
    T("empty_range", cr(100, 200, 0));
    T("same_fd", cr(28, 28, 0));
    B("closed_28", !is_open(28));
    E("first_gt_last", cr(29, 28, 0), EINVAL);
    E("bad_flags", cr(0, 10, 1), EINVAL);
    E("bad_flags_high", cr(0, 10, 1U << 3), EINVAL);
    T("to_max", cr(29, ~0U, 0));
    B("closed_29", !is_open(29));
    T("max_max", cr(~0U, ~0U, 0));
    B("stdout_alive", is_open(1));

    /* A CLONE_FILES child unshares before closing: the parent keeps 40. */
    fd = open("/dev/null", O_RDONLY);
    dup2(fd, 40);
    close(fd);
    int pid = clone(shared_child, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL);
    T("clone_files", pid);
    int st = 0;
    waitpid(pid, &st, 0);
    V("unshare_child", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    B("parent_kept_40", is_open(40));
    T("unshare_cloexec", cr(40, 40, CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC));
    B("cloexec_40", is_cloexec(40));
    close(40);

    /* posix_spawn with a close-from action. */
    fd = open("/dev/null", O_RDONLY);
    dup2(fd, 30);
    dup2(fd, 31);
    close(fd);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    T("addclosefrom", -posix_spawn_file_actions_addclosefrom_np(&fa, 3));
    char *args[] = { self, "check", NULL };
    pid_t sp = 0;
    T("posix_spawn_closefrom", -posix_spawn(&sp, self, &fa, NULL, args, environ));
    st = 0;
    waitpid(sp, &st, 0);
    V("spawned_status", WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
    posix_spawn_file_actions_destroy(&fa);
    B("parent_kept_30", is_open(30));
    printf("done\n");
    return 0;
}
