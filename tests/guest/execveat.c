/* execveat: AT_EMPTY_PATH on a descriptor of the program (fexecve),
 * paths relative to a directory descriptor, AT_SYMLINK_NOFOLLOW, what
 * the new program sees as AT_EXECFN, and the error paths. */
#include "common.h"
#include <sys/auxv.h>
#include <sys/wait.h>
#include <libgen.h>

extern char **environ;

static long execveat_(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
    return syscall(SYS_execveat, dirfd, path, argv, envp, flags);
}

static char *child_argv[] = { "execveat-child", "child", NULL };

/* Run execveat in a child; the new program exits 11 (13 when its
 * AT_EXECFN starts with /dev/fd/). Returns that status, or 200 + errno
 * when execveat failed. */
static int run(int dirfd, const char *path, int flags)
{
    int pid = fork();
    if (pid == 0) {
        execveat_(dirfd, path, child_argv, environ, flags);
        _exit(200 + errno);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void report(const char *name, int status)
{
    if (status >= 200)
        printf("%s err %s\n", name, errno_name(status - 200));
    else
        printf("%s = %d\n", name, status);
}

int main(int argc, char **argv)
{
    guest_init();
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        const char *fn = (const char *)getauxval(AT_EXECFN);
        return fn && strncmp(fn, "/dev/fd/", 8) == 0 ? 13 : 11;
    }
    const char *dir = guest_scratch(argc, argv);
    char self[4096], dcopy[4096], bcopy[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    strcpy(dcopy, self);
    strcpy(bcopy, self);
    char *selfdir = dirname(dcopy), *selfbase = basename(bcopy);

    report("cwd_absolute", run(AT_FDCWD, self, 0));
    int fd = open(self, O_RDONLY);
    report("empty_path_fd", run(fd, "", AT_EMPTY_PATH));
    int pfd = open(self, O_PATH);
    report("empty_path_opath", run(pfd, "", AT_EMPTY_PATH));
    int pid = fork();
    if (pid == 0) {
        fexecve(fd, child_argv, environ);
        _exit(200 + errno);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    report("fexecve", WEXITSTATUS(st));
    int dfd = open(selfdir, O_RDONLY | O_DIRECTORY);
    report("dirfd_relative", run(dfd, selfbase, 0));

    char link[8192];
    snprintf(link, sizeof link, "%s/link", dir);
    T("symlink", symlink(self, link));
    int sfd = open(dir, O_RDONLY | O_DIRECTORY);
    report("via_symlink", run(sfd, "link", 0));
    E("symlink_nofollow", execveat_(sfd, "link", child_argv, environ, AT_SYMLINK_NOFOLLOW), ELOOP);
    report("absolute_ignores_dirfd", run(sfd, self, 0));

    /* A script through a descriptor: its interpreter opens /dev/fd/N,
     * which a close-on-exec descriptor no longer is (ENOENT up front). */
    char script[8192];
    snprintf(script, sizeof script, "%s/script", dir);
    int sf = open(script, O_CREAT | O_WRONLY, 0755);
    write(sf, "#!/bin/sh\nexit 12\n", 18);
    close(sf);
    int scfd = open(script, O_RDONLY);
    report("script_fd", run(scfd, "", AT_EMPTY_PATH));
    close(scfd);
    scfd = open(script, O_RDONLY | O_CLOEXEC);
    report("script_cloexec_fd", run(scfd, "", AT_EMPTY_PATH));
    close(scfd);
    report("script_dirfd_relative", run(sfd, "script", 0));
    fcntl(sfd, F_SETFD, FD_CLOEXEC);
    report("script_cloexec_dirfd", run(sfd, "script", 0));
    fcntl(sfd, F_SETFD, 0);

    E("bad_flags", execveat_(fd, "", child_argv, environ, 0x4), EINVAL);
    E("empty_without_flag", execveat_(fd, "", child_argv, environ, 0), ENOENT);
    E("bad_fd", execveat_(999, "", child_argv, environ, AT_EMPTY_PATH), EBADF);
    E("bad_dirfd", execveat_(999, "x", child_argv, environ, 0), EBADF);
    E("dir_fd_itself", execveat_(sfd, "", child_argv, environ, AT_EMPTY_PATH), EACCES);
    E("file_as_dirfd", execveat_(fd, "x", child_argv, environ, 0), ENOTDIR);
    E("missing", execveat_(sfd, "missing", child_argv, environ, 0), ENOENT);
    char plain[8192];
    snprintf(plain, sizeof plain, "%s/plain", dir);
    int pf = open(plain, O_CREAT | O_WRONLY, 0644);
    write(pf, "\177ELF", 4);
    close(pf);
    E("not_executable", execveat_(sfd, "plain", child_argv, environ, 0), EACCES);
    char **volatile bad_argv = (char **)8;
    E("bad_argv", execveat_(fd, "", bad_argv, environ, AT_EMPTY_PATH), EFAULT);
    E("bad_path", execveat_(sfd, (char *)8, child_argv, environ, 0), EFAULT);
    guest_cleanup();
    printf("done\n");
    return 0;
}
