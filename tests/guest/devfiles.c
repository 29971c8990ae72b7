/* Device files and procfs: /dev/null, /dev/zero, /dev/full, /dev/urandom,
 * /dev/random, /proc/self/{exe,maps,status,fd,cmdline,stat},
 * /proc/version, /proc/cpuinfo, /proc/meminfo, /proc/filesystems. Prints
 * only facts that hold on any Linux (a prefix, that a line exists). */
#include "common.h"
#include <sys/sysmacros.h>

static char big[1 << 17];

static int has_line_starting(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, prefix, n))
            return 1;
    return 0;
}

static void check_file(const char *label, const char *path, const char *prefix, int anywhere)
{
    long n = read_file(path, big, sizeof big);
    if (n < 0) {
        printf("%s err %s\n", label, errno_name(errno));
        return;
    }
    printf("%s nonempty=%s has=%s\n", label, n > 0 ? "yes" : "no",
           (anywhere ? strstr(big, prefix) != NULL : has_line_starting(big, prefix)) ? "yes" : "no");
}

static void chr(const char *label, const char *path, int maj, int min)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        printf("%s err %s\n", label, errno_name(errno));
        return;
    }
    printf("%s chr=%s rdev_match=%s\n", label, S_ISCHR(st.st_mode) ? "yes" : "no",
           (major(st.st_rdev) == (unsigned)maj && minor(st.st_rdev) == (unsigned)min) ? "yes" : "no");
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    char buf[4200];
    int fd;

    /* /dev/null */
    fd = open("/dev/null", O_RDWR);
    T("null_open", fd);
    V("null_read", read(fd, buf, sizeof buf));
    V("null_write", write(fd, "abcdef", 6));
    V("null_write_big", write(fd, big, sizeof big));
    V("null_lseek", lseek(fd, 100, SEEK_SET));
    close(fd);
    chr("null_stat", "/dev/null", 1, 3);

    /* /dev/zero */
    fd = open("/dev/zero", O_RDWR);
    T("zero_open", fd);
    memset(buf, 'x', sizeof buf);
    V("zero_read", read(fd, buf, 4096));
    int allz = 1;
    for (int i = 0; i < 4096; i++)
        if (buf[i])
            allz = 0;
    B("zero_reads_zeros", allz);
    B("zero_read_leaves_rest", buf[4096] == 'x');
    V("zero_write", write(fd, "abc", 3));
    close(fd);
    chr("zero_stat", "/dev/zero", 1, 5);

    /* /dev/full */
    fd = open("/dev/full", O_WRONLY);
    T("full_open", fd);
    E("full_write_enospc", write(fd, "x", 1), ENOSPC);
    close(fd);
    fd = open("/dev/full", O_RDONLY);
    V("full_read_zeros", read(fd, buf, 16));
    close(fd);
    chr("full_stat", "/dev/full", 1, 7);

    /* random devices */
    fd = open("/dev/urandom", O_RDONLY);
    T("urandom_open", fd);
    V("urandom_read_16", read(fd, buf, 16));
    char b2[16];
    read(fd, b2, 16);
    B("urandom_differs", memcmp(buf, b2, 16) != 0);
    close(fd);
    fd = open("/dev/random", O_RDONLY);
    V("random_read_16", read(fd, buf, 16));
    close(fd);
    chr("urandom_stat", "/dev/urandom", 1, 9);
    chr("random_stat", "/dev/random", 1, 8);
    E("dev_missing_enoent", open("/dev/definitely-not-there", O_RDONLY), ENOENT);
    /* /proc/self */
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    B("proc_self_exe_nonempty", n > 0);
    if (n > 0) {
        buf[n] = 0;
        char *want = realpath(argv[0], NULL);
        B("proc_self_exe_is_argv0", want && !strcmp(want, buf));
        free(want);
    }
    n = readlink("/proc/self", buf, sizeof buf - 1);
    if (n > 0)
        buf[n] = 0;
    B("proc_self_link_is_pid", n > 0 && atoi(buf) == getpid());
    check_file("proc_self_maps_stack", "/proc/self/maps", "[stack]", 1);
    {
        char *exe = realpath(argv[0], NULL);
        check_file("proc_self_maps_has_exe", "/proc/self/maps", exe ? exe : "?", 1);
        free(exe);
    }
    check_file("proc_self_status_name", "/proc/self/status", "Name:", 0);
    check_file("proc_self_status_pid", "/proc/self/status", "Pid:", 0);
    check_file("proc_self_status_uid", "/proc/self/status", "Uid:", 0);
    check_file("proc_self_status_vmrss", "/proc/self/status", "VmRSS:", 0);
    read_file("/proc/self/stat", buf, sizeof buf);
    B("proc_self_stat_starts_with_pid", atoi(buf) == getpid());
    B("proc_self_stat_has_comm", strchr(buf, '(') != NULL && strchr(buf, ')') != NULL);
    long cl = read_file("/proc/self/cmdline", buf, sizeof buf);
    B("proc_self_cmdline_argv0", cl > 0 && !strcmp(buf, argv[0]));
    check_file("proc_version", "/proc/version", "Linux version ", 0);
    check_file("proc_cpuinfo", "/proc/cpuinfo", "processor", 0);
    check_file("proc_meminfo", "/proc/meminfo", "MemTotal:", 0);
    check_file("proc_filesystems_proc", "/proc/filesystems", "proc", 1);
    check_file("proc_filesystems_tmpfs", "/proc/filesystems", "tmpfs", 1);
    check_file("proc_self_mounts", "/proc/self/mounts", "proc", 1);
    check_file("proc_uptime", "/proc/uptime", "", 0);
    check_file("proc_loadavg", "/proc/loadavg", "", 0);
    check_file("proc_stat_cpu", "/proc/stat", "cpu", 0);
    check_file("proc_sys_hostname", "/proc/sys/kernel/hostname", "", 0);
    fd = open("/proc/version", O_WRONLY);
    B("proc_version_not_writable", fd < 0 || write(fd, "x", 1) < 0);
    if (fd >= 0)
        close(fd);
    E("proc_missing_enoent", open("/proc/self/definitely-not-there", O_RDONLY), ENOENT);

    /* /proc/self/fd lists 0, 1 and 2 (and the directory fd itself). */
    DIR *d = opendir("/proc/self/fd");
    int seen0 = 0, seen1 = 0, seen2 = 0, dirfd_seen = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, "0"))
            seen0 = 1;
        if (!strcmp(de->d_name, "1"))
            seen1 = 1;
        if (!strcmp(de->d_name, "2"))
            seen2 = 1;
        if (atoi(de->d_name) == dirfd(d))
            dirfd_seen = 1;
    }
    B("proc_self_fd_lists_012", seen0 && seen1 && seen2);
    B("proc_self_fd_lists_own_dirfd", dirfd_seen);
    if (d)
        closedir(d);
    fd = open("/dev/null", O_RDONLY);
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
    char tgt[256];
    n = readlink(buf, tgt, sizeof tgt - 1);
    if (n > 0)
        tgt[n] = 0;
    B("proc_self_fd_link_target", n > 0 && !strcmp(tgt, "/dev/null"));
    snprintf(buf, sizeof buf, "/proc/self/fdinfo/%d", fd);
    check_file("proc_self_fdinfo_flags", buf, "flags:", 0);
    close(fd);
    int p[2];
    pipe(p);
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", p[0]);
    n = readlink(buf, tgt, sizeof tgt - 1);
    if (n > 0)
        tgt[n] = 0;
    B("proc_self_fd_pipe_name", n > 0 && !strncmp(tgt, "pipe:[", 6));
    /* Reopening a pipe through /proc/self/fd works. */
    write(p[1], "through-proc", 12);
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", p[0]);
    fd = open(buf, O_RDONLY);
    T("proc_self_fd_reopen_pipe", fd);
    memset(tgt, 0, sizeof tgt);
    V("proc_self_fd_reopen_read", read(fd, tgt, 12));
    close(fd);
    close(p[0]);
    close(p[1]);
    /* A file written in the scratch dir, reopened via /proc/self/fd. */
    write_file(sp("f"), "content", 0644);
    fd = open(sp("f"), O_RDONLY);
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
    n = readlink(buf, tgt, sizeof tgt - 1);
    if (n > 0)
        tgt[n] = 0;
    B("proc_self_fd_file_path", n > 0 && !strcmp(tgt, sp("f")));
    close(fd);
    B("proc_self_cwd_link", readlink("/proc/self/cwd", tgt, sizeof tgt) > 0);
    B("proc_self_root_is_slash", (n = readlink("/proc/self/root", tgt, sizeof tgt)) == 1 && tgt[0] == '/');

    guest_cleanup();
    P("done\n");
    return 0;
}
