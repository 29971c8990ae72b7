/* Renaming the working directory or one of its ancestors: getcwd,
 * /proc/self/cwd, another process's /proc/PID/cwd and open files'
 * /proc/self/fd links all show the new path, as Linux does. Also a chain
 * of directories far deeper than PATH_MAX. Paths are printed relative to
 * the scratch directory. */
#include "common.h"
#include <limits.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/wait.h>

static size_t scratch_len;

/* `p` with the scratch directory cut off ("<S>/x" -> "x"). */
static const char *rel(const char *p)
{
    if (strncmp(p, guest_scratch_buf, scratch_len) == 0)
        return p[scratch_len] == '/' ? p + scratch_len + 1 : p + scratch_len;
    return p;
}

static void show_cwd(const char *what)
{
    char buf[PATH_MAX];
    long n = syscall(SYS_getcwd, buf, sizeof buf);
    if (n < 0)
        printf("%s_getcwd err %s\n", what, errno_name(errno));
    else
        printf("%s_getcwd %s\n", what, rel(buf));
    n = readlink("/proc/self/cwd", buf, sizeof buf - 1);
    if (n < 0) {
        printf("%s_proc_cwd err %s\n", what, errno_name(errno));
    } else {
        buf[n] = 0;
        printf("%s_proc_cwd %s\n", what, rel(buf));
    }
}

static void show_link(const char *what, const char *link)
{
    char buf[PATH_MAX];
    long n = readlink(link, buf, sizeof buf - 1);
    if (n < 0) {
        printf("%s err %s\n", what, errno_name(errno));
        return;
    }
    buf[n] = 0;
    printf("%s %s\n", what, rel(buf));
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    /* The scratch directory as the kernel spells it (no symlinks). */
    T("chdir_scratch", chdir(guest_scratch_buf));
    static char real[PATH_MAX];
    T("getcwd_scratch", syscall(SYS_getcwd, real, sizeof real));
    snprintf(guest_scratch_buf, sizeof guest_scratch_buf, "%s", real);
    scratch_len = strlen(guest_scratch_buf);

    T("mkdir_a", mkdir(sp("a"), 0755));
    T("mkdir_a_b", mkdir(sp("a/b"), 0755));
    T("chdir_a_b", chdir(sp("a/b")));
    show_cwd("start");

    /* An ancestor renamed, by absolute paths. */
    T("rename_a_c", rename(sp("a"), sp("c")));
    show_cwd("ancestor");

    /* An open file below the renamed directory. */
    int fd = open("f", O_CREAT | O_RDWR, 0644);
    T("open_f", fd);
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    T("rename_c_d", rename(sp("c"), sp("d")));
    show_link("fd_link", link);
    show_cwd("again");

    /* The working directory itself, by a relative path. */
    T("rename_self", rename("../b", "../b2"));
    show_cwd("self");

    /* Another process's working directory. */
    int go[2], back[2];
    T("pipe_go", pipe(go));
    T("pipe_back", pipe(back));
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        if (write(back[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(1);
        char buf[PATH_MAX];
        long n = syscall(SYS_getcwd, buf, sizeof buf);
        if (n < 0)
            _exit(2);
        printf("child_getcwd %s\n", rel(buf));
        fflush(stdout);
        _exit(0);
    }
    char c;
    V("child_ready", read(back[0], &c, 1));
    T("rename_d_e", rename(sp("d"), sp("e")));
    char plink[64];
    snprintf(plink, sizeof plink, "/proc/%d/cwd", (int)pid);
    show_link("child_proc_cwd", plink);
    if (write(go[1], "g", 1) != 1)
        printf("child_go failed\n");
    int st;
    T("waitpid", waitpid(pid, &st, 0));
    B("child_ok", WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* Renamed over an empty directory. */
    T("mkdir_empty", mkdir(sp("empty"), 0755));
    T("rename_over_empty", rename(sp("e"), sp("empty")));
    show_cwd("over_empty");
    show_link("fd_link_over_empty", link);

    /* Exchanged with another directory. */
    T("mkdir_other", mkdir(sp("other"), 0755));
    T("exchange", syscall(SYS_renameat2, AT_FDCWD, sp("empty"), AT_FDCWD, sp("other"), RENAME_EXCHANGE));
    show_cwd("exchanged");
    close(fd);

    /* Far deeper than PATH_MAX: getcwd gives up, the walk back up and
     * the cleanup work. */
    T("chdir_deep_base", chdir(guest_scratch_buf));
    T("mkdir_deep", mkdir("deep", 0755));
    T("chdir_deep", chdir("deep"));
    int depth = 0, ok = 1;
    for (int i = 0; i < 20000 && ok; i++) {
        if (mkdir("d", 0755) != 0 || chdir("d") != 0)
            ok = 0;
        else
            depth++;
    }
    V("deep_depth", depth);
    char buf[64];
    E("deep_getcwd", syscall(SYS_getcwd, buf, sizeof buf), ENAMETOOLONG);
    V("deep_open", (fd = open("leaf", O_CREAT | O_RDWR, 0644)) >= 0);
    close(fd);
    T("deep_unlink", unlink("leaf"));
    int up = 0;
    for (int i = 0; i < depth; i++) {
        if (chdir("..") != 0 || rmdir("d") != 0)
            break;
        up++;
    }
    V("deep_up", up);
    T("chdir_back", chdir(guest_scratch_buf));
    T("rmdir_deep", rmdir("deep"));

    guest_cleanup();
    printf("done\n");
    return 0;
}
