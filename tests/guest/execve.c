/* execve: re-exec self with arguments and environment, errors (ENOENT,
 * EACCES on a non-executable file, ENOEXEC on garbage, ENOTDIR) and that
 * close-on-exec descriptors are closed. (#! scripts: see workloads.rs.) */
#include "common.h"

extern char **environ;

int main(int argc, char **argv)
{
    guest_init();
    if (argc >= 2 && !strcmp(argv[1], "--child")) {
        printf("child_argc %d\n", argc);
        printf("child_arg2 %s\n", argc > 2 ? argv[2] : "(none)");
        const char *e = getenv("GUEST_EXEC_VAR");
        printf("child_env %s\n", e ? e : "(unset)");
        int keep = atoi(argv[3]), cloexec = atoi(argv[4]);
        printf("child_kept_fd_open %s\n", fcntl(keep, F_GETFD) >= 0 ? "yes" : "no");
        printf("child_cloexec_fd_closed %s\n", fcntl(cloexec, F_GETFD) < 0 && errno == EBADF ? "yes" : "no");
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        printf("child_proc_self_exe_ok %s\n", n > 0 ? "yes" : "no");
        printf("done\n");
        return 0;
    }
    guest_scratch(argc, argv);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        printf("readlink_self err %s\n", errno_name(errno));
        return 1;
    }
    self[n] = 0;

    char *noargs[] = { "x", NULL };
    char *noenv[] = { NULL };
    E("execve_enoent", execve(sp("missing"), noargs, noenv), ENOENT);
    write_file(sp("noexec"), "#!/bin/sh\necho hi\n", 0644);
    E("execve_not_executable_eacces", execve(sp("noexec"), noargs, noenv), EACCES);
    write_file(sp("garbage"), "this is not an ELF file\n", 0755);
    E("execve_garbage_enoexec", execve(sp("garbage"), noargs, noenv), ENOEXEC);
    E("execve_enotdir", execve(sp("garbage/x"), noargs, noenv), ENOTDIR);
    E("execve_dir_eacces", execve(guest_scratch_buf, noargs, noenv), EACCES);
    E("execve_bad_argv_efault", syscall(SYS_execve, self, BADPTR, noenv), EFAULT);
    char *badargv[] = { "x", BADPTR, NULL };
    E("execve_bad_argv_entry_efault", syscall(SYS_execve, self, badargv, noenv), EFAULT);
    B("still_running_after_failed_execs", 1);

    int keep = open("/dev/null", O_RDONLY);
    int cloexec = open("/dev/null", O_RDONLY | O_CLOEXEC);
    char kbuf[16], cbuf[16];
    snprintf(kbuf, sizeof kbuf, "%d", keep);
    snprintf(cbuf, sizeof cbuf, "%d", cloexec);
    char *args[] = { self, "--child", "second", kbuf, cbuf, NULL };
    char *env[] = { "GUEST_EXEC_VAR=passed", "PATH=/usr/bin:/bin", NULL };
    printf("exec_now\n");
    fflush(stdout);
    guest_cleanup();
    execve(self, args, env);
    printf("execve_self err %s\n", errno_name(errno));
    return 1;
}
