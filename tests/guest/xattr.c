/* Extended attributes: the path, l- and f- forms of set/get/list/remove,
 * their flags, sizes and error paths, the namespaces (user, security,
 * trusted, system, unknown) on regular files, directories, symlinks,
 * FIFOs, pipes, /proc and /dev. Works in a scratch directory under /tmp
 * (natively the host's disk; in the sandbox the root overlay).
 *
 * trusted.* needs CAP_SYS_ADMIN in the initial user namespace: natively
 * (real root) it works, in the sandbox (root of its own namespace) it
 * does not; those lines start with "trusted_" and are masked, the
 * sandbox's answers checked apart. */
#include "common.h"
#include <sys/fsuid.h>
#include <sys/xattr.h>

static char path_f[4200], path_d[4200], path_l[4200], path_p[4200], path_g[4200], path_h[4200];

static int cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names of a list, sorted, trusted.* left out (native root has them). */
static void print_list(const char *label, const char *buf, long n)
{
    if (n < 0) {
        printf("%s err %s\n", label, errno_name(errno));
        return;
    }
    const char *names[64];
    int k = 0;
    for (long i = 0; i < n && k < 64; i += (long)strlen(buf + i) + 1)
        if (strncmp(buf + i, "trusted.", 8) != 0)
            names[k++] = buf + i;
    qsort(names, k, sizeof names[0], cmp);
    printf("%s:", label);
    for (int i = 0; i < k; i++)
        printf(" %s", names[i]);
    printf("\n");
}

static void list_path(const char *label, const char *p, int follow)
{
    char buf[4096];
    long n = follow ? listxattr(p, buf, sizeof buf) : llistxattr(p, buf, sizeof buf);
    print_list(label, buf, n);
}

static void get_str(const char *label, const char *p, const char *name)
{
    char buf[256];
    long n = getxattr(p, name, buf, sizeof buf - 1);
    if (n < 0) {
        printf("%s err %s\n", label, errno_name(errno));
        return;
    }
    buf[n] = 0;
    printf("%s = %ld '%s'\n", label, n, buf);
}

/* `xattr --ro FILE`: a host file on a read-only mount, whose user.tag
 * the host set: readable, not writable (run in the sandbox only). */
static int read_only_file(const char *p)
{
    get_str("ro_get", p, "user.tag");
    list_path("ro_list", p, 1);
    E("ro_set", setxattr(p, "user.tag", "x", 1, 0), EROFS);
    E("ro_remove", removexattr(p, "user.tag"), EROFS);
    int fd = open(p, O_RDONLY);
    E("ro_fset", fsetxattr(fd, "user.new", "x", 1, 0), EROFS);
    V("ro_fget", fgetxattr(fd, "user.tag", NULL, 0));
    close(fd);
    printf("done\n");
    return 0;
}

int main(int argc, char **argv)
{
    guest_init();
    if (argc == 3 && !strcmp(argv[1], "--ro"))
        return read_only_file(argv[2]);
    const char *dir = guest_scratch(argc, argv);
    snprintf(path_f, sizeof path_f, "%s/f", dir);
    snprintf(path_d, sizeof path_d, "%s/d", dir);
    snprintf(path_l, sizeof path_l, "%s/l", dir);
    snprintf(path_p, sizeof path_p, "%s/p", dir);
    snprintf(path_g, sizeof path_g, "%s/g", dir);
    snprintf(path_h, sizeof path_h, "%s/h", dir);
    int fd = open(path_f, O_CREAT | O_RDWR, 0644);
    T("create_f", fd);
    T("mkdir_d", mkdir(path_d, 0755));
    T("symlink_l", symlink("f", path_l));
    T("mkfifo_p", mkfifo(path_p, 0644));
    int gfd = open(path_g, O_CREAT | O_RDWR, 0644);
    T("create_g", gfd);

    /* A fresh file has none. */
    V("list_fresh_size", listxattr(path_f, NULL, 0));
    list_path("list_fresh", path_f, 1);

    /* set / get, size queries, ERANGE. */
    T("set_a", setxattr(path_f, "user.a", "hello", 5, 0));
    V("get_a_size", getxattr(path_f, "user.a", NULL, 0));
    get_str("get_a", path_f, "user.a");
    char small[2];
    E("get_a_small", getxattr(path_f, "user.a", small, sizeof small), ERANGE);
    E("get_missing", getxattr(path_f, "user.missing", NULL, 0), ENODATA);

    /* Flags. */
    E("create_existing", setxattr(path_f, "user.a", "x", 1, XATTR_CREATE), EEXIST);
    E("replace_missing", setxattr(path_f, "user.b", "x", 1, XATTR_REPLACE), ENODATA);
    T("replace_existing", setxattr(path_f, "user.a", "world!", 6, XATTR_REPLACE));
    get_str("get_a_replaced", path_f, "user.a");
    E("both_flags_existing", setxattr(path_f, "user.a", "x", 1, XATTR_CREATE | XATTR_REPLACE), EEXIST);
    E("both_flags_missing", setxattr(path_f, "user.b", "x", 1, XATTR_CREATE | XATTR_REPLACE), ENODATA);
    E("bad_flags", setxattr(path_f, "user.a", "x", 1, 4), EINVAL);
    E("bad_flags_high", setxattr(path_f, "user.a", "x", 1, 0x100), EINVAL);
    T("create_b", setxattr(path_f, "user.b", "bee", 3, XATTR_CREATE));
    T("set_empty", setxattr(path_f, "user.empty", "", 0, 0));
    T("set_empty_null", setxattr(path_f, "user.empty2", NULL, 0, 0));
    V("get_empty", getxattr(path_f, "user.empty", NULL, 0));
    char one[1];
    V("get_empty_buf", getxattr(path_f, "user.empty", one, sizeof one));

    /* Lists: size query, too small, full. */
    long need = listxattr(path_f, NULL, 0);
    V("list_size", need);
    char lbuf[8];
    E("list_small", listxattr(path_f, lbuf, sizeof lbuf), ERANGE);
    list_path("list_f", path_f, 1);

    /* Names: up to 255 bytes, not empty; values up to 64 KiB. */
    char name[300];
    memset(name, 'n', sizeof name);
    memcpy(name, "user.", 5);
    name[255] = 0;
    T("name_255", setxattr(path_g, name, "v", 1, 0));
    V("name_255_get", getxattr(path_g, name, NULL, 0));
    T("name_255_remove", removexattr(path_g, name));
    name[255] = 'n';
    name[256] = 0;
    E("name_256", setxattr(path_g, name, "v", 1, 0), ERANGE);
    E("name_256_get", getxattr(path_g, name, NULL, 0), ERANGE);
    E("name_256_remove", removexattr(path_g, name), ERANGE);
    E("name_empty", setxattr(path_g, "", "v", 1, 0), ERANGE);
    E("name_empty_get", getxattr(path_g, "", NULL, 0), ERANGE);
    static char big[65537];
    memset(big, 'x', sizeof big);
    E("value_too_big", setxattr(path_g, "user.big", big, sizeof big, 0), E2BIG);
    T("value_1000", setxattr(path_g, "user.k", big, 1000, 0));
    V("value_1000_get", getxattr(path_g, "user.k", big, sizeof big));
    T("value_1000_remove", removexattr(path_g, "user.k"));

    /* Namespaces. */
    E("unknown_ns_set", setxattr(path_g, "foo.bar", "v", 1, 0), EOPNOTSUPP);
    E("unknown_ns_get", getxattr(path_g, "foo.bar", NULL, 0), EOPNOTSUPP);
    E("unknown_ns_remove", removexattr(path_g, "foo.bar"), EOPNOTSUPP);
    E("no_dot_set", setxattr(path_g, "user", "v", 1, 0), EOPNOTSUPP);
    E("bare_user_set", setxattr(path_g, "user.", "v", 1, 0), EINVAL);
    E("bare_user_get", getxattr(path_g, "user.", NULL, 0), EINVAL);
    E("acl_get", getxattr(path_g, "system.posix_acl_access", NULL, 0), ENODATA);
    E("acl_default_get", getxattr(path_d, "system.posix_acl_default", NULL, 0), ENODATA);
    E("system_other_get", getxattr(path_g, "system.foo", NULL, 0), EOPNOTSUPP);
    T("security_set", setxattr(path_g, "security.s", "sec", 3, 0));
    get_str("security_get", path_g, "security.s");
    list_path("security_list", path_g, 1);
    T("security_remove", removexattr(path_g, "security.s"));
    E("security_get_removed", getxattr(path_g, "security.s", NULL, 0), ENODATA);
    /* trusted.*: masked, checked separately in the sandbox. */
    T("trusted_set", setxattr(path_g, "trusted.t", "t", 1, 0));
    V("trusted_get", getxattr(path_g, "trusted.t", NULL, 0));
    T("trusted_remove", removexattr(path_g, "trusted.t"));
    E("trusted_get_missing", getxattr(path_g, "trusted.none", NULL, 0), ENODATA);

    /* remove. */
    T("remove_b", removexattr(path_f, "user.b"));
    E("remove_b_again", removexattr(path_f, "user.b"), ENODATA);
    E("get_b_removed", getxattr(path_f, "user.b", NULL, 0), ENODATA);
    list_path("list_after_remove", path_f, 1);

    /* f- forms, including on a read-only descriptor. */
    int rfd = open(path_f, O_RDONLY);
    T("open_ro", rfd);
    T("fset", fsetxattr(rfd, "user.f", "fd", 2, 0));
    V("fget", fgetxattr(rfd, "user.f", NULL, 0));
    char fbuf[4096];
    print_list("flist", fbuf, flistxattr(rfd, fbuf, sizeof fbuf));
    T("fremove", fremovexattr(rfd, "user.f"));
    E("fremove_again", fremovexattr(rfd, "user.f"), ENODATA);
    E("fget_badfd", fgetxattr(-1, "user.a", NULL, 0), EBADF);
    E("fset_badfd", fsetxattr(999, "user.a", "x", 1, 0), EBADF);
    E("flist_badfd", flistxattr(-1, NULL, 0), EBADF);
    E("fremove_badfd", fremovexattr(999, "user.a"), EBADF);
    int pfd = open(path_f, O_PATH);
    T("open_path", pfd);
    E("fget_opath", fgetxattr(pfd, "user.a", NULL, 0), EBADF);
    E("fset_opath", fsetxattr(pfd, "user.a", "x", 1, 0), EBADF);
    E("flist_opath", flistxattr(pfd, NULL, 0), EBADF);
    close(pfd);

    /* Bad pointers. */
    E("get_badname", getxattr(path_f, (const char *)1, NULL, 0), EFAULT);
    E("get_badvalue", syscall(SYS_getxattr, path_f, "user.a", (void *)1, 100), EFAULT);
    E("set_badvalue", syscall(SYS_setxattr, path_f, "user.c", (void *)1, 10, 0), EFAULT);
    E("set_badname", setxattr(path_f, (const char *)1, "v", 1, 0), EFAULT);
    E("list_badbuf", syscall(SYS_listxattr, path_f, (char *)1, 100), EFAULT);
    E("get_badpath", getxattr((const char *)1, "user.a", NULL, 0), EFAULT);
    E("remove_badname", removexattr(path_f, (const char *)1), EFAULT);
    E("get_nopath", getxattr("/nonexistent/x", "user.a", NULL, 0), ENOENT);
    /* Which check comes first: the name and value before the target. */
    E("fget_badfd_emptyname", fgetxattr(-1, "", NULL, 0), ERANGE);
    E("fset_badfd_badflags", fsetxattr(-1, "user.a", "x", 1, 8), EINVAL);
    E("fremove_badfd_emptyname", fremovexattr(-1, ""), ERANGE);
    E("get_nopath_emptyname", getxattr("/nonexistent/x", "", NULL, 0), ERANGE);
    E("set_nopath_toobig", syscall(SYS_setxattr, "/nonexistent/x", "user.a", big, 70000, 0), E2BIG);
    E("list_nopath_badbuf", syscall(SYS_listxattr, "/nonexistent/x", (char *)1, 10), ENOENT);
    E("get_emptypath", getxattr("", "user.a", NULL, 0), ENOENT);

    /* Symlinks: l-forms act on the link (user.* is EPERM/ENODATA there),
     * the others follow it. */
    E("lset_symlink", lsetxattr(path_l, "user.x", "v", 1, 0), EPERM);
    E("lget_symlink", lgetxattr(path_l, "user.a", NULL, 0), ENODATA);
    E("lremove_symlink", lremovexattr(path_l, "user.a"), EPERM);
    list_path("llist_symlink", path_l, 0);
    T("set_via_symlink", setxattr(path_l, "user.vl", "1", 1, 0));
    V("get_via_symlink", getxattr(path_l, "user.a", NULL, 0));
    list_path("list_via_symlink", path_l, 1);
    V("lget_regular", lgetxattr(path_f, "user.vl", NULL, 0));

    /* FIFOs and pipes: user.* only on regular files and directories. */
    E("set_fifo", setxattr(path_p, "user.x", "v", 1, 0), EPERM);
    E("get_fifo", getxattr(path_p, "user.x", NULL, 0), ENODATA);
    E("remove_fifo", removexattr(path_p, "user.x"), EPERM);
    list_path("list_fifo", path_p, 1);
    int pp[2];
    T("pipe", pipe(pp));
    E("fset_pipe", fsetxattr(pp[0], "user.x", "v", 1, 0), EPERM);
    E("fget_pipe", fgetxattr(pp[0], "user.x", NULL, 0), ENODATA);
    V("flist_pipe", flistxattr(pp[0], NULL, 0));
    E("fget_pipe_security", fgetxattr(pp[0], "security.x", NULL, 0), EOPNOTSUPP);
    close(pp[0]);
    close(pp[1]);

    /* Directories. */
    T("set_dir", setxattr(path_d, "user.dir", "dv", 2, 0));
    get_str("get_dir", path_d, "user.dir");
    list_path("list_dir", path_d, 1);
    int dfd = open(path_d, O_RDONLY | O_DIRECTORY);
    V("fget_dir", fgetxattr(dfd, "user.dir", NULL, 0));
    close(dfd);

    /* Attributes belong to the inode: hard links and renames keep them,
     * an unlinked open file still has them. */
    T("link_h", link(path_f, path_h));
    get_str("get_via_link", path_h, "user.a");
    T("set_via_link", setxattr(path_h, "user.viah", "h", 1, 0));
    V("get_set_via_link", getxattr(path_f, "user.viah", NULL, 0));
    char renamed[4300];
    snprintf(renamed, sizeof renamed, "%s/renamed", dir);
    T("rename_f", rename(path_f, renamed));
    get_str("get_after_rename", renamed, "user.a");
    T("unlink_renamed", unlink(renamed));
    T("unlink_h", unlink(path_h));
    V("fget_unlinked", fgetxattr(fd, "user.a", NULL, 0));
    T("fset_unlinked", fsetxattr(fd, "user.u", "u", 1, 0));
    close(fd);
    close(rfd);

    /* Non-root: user.* needs write permission to set, read to get. */
    T("chmod_dir_0711", chmod(dir, 0711));
    T("chmod_g_0644", chmod(path_g, 0644));
    T("set_g_a", setxattr(path_g, "user.a", "a", 1, 0));
    setfsuid(65534);
    E("nonroot_set", setxattr(path_g, "user.x", "v", 1, 0), EACCES);
    E("nonroot_remove", removexattr(path_g, "user.a"), EACCES);
    V("nonroot_get", getxattr(path_g, "user.a", NULL, 0));
    T("chmod_g_0600_as_nonowner", chmod(path_g, 0600));
    setfsuid(0);
    T("chmod_g_0600", chmod(path_g, 0600));
    setfsuid(65534);
    E("nonroot_get_unreadable", getxattr(path_g, "user.a", NULL, 0), EACCES);
    setfsuid(0);

    /* /proc keeps none; /dev nodes take no user.*. */
    E("proc_get_user", getxattr("/proc/self/status", "user.x", NULL, 0), EOPNOTSUPP);
    E("proc_get_security", getxattr("/proc/self/status", "security.x", NULL, 0), EOPNOTSUPP);
    E("proc_set_user", setxattr("/proc/self/status", "user.x", "v", 1, 0), EOPNOTSUPP);
    V("proc_list", listxattr("/proc/self/status", NULL, 0));
    E("proc_lget_symlink", lgetxattr("/proc/self", "user.x", NULL, 0), ENODATA);
    E("dev_get_user", getxattr("/dev/null", "user.x", NULL, 0), ENODATA);
    E("dev_set_user", setxattr("/dev/null", "user.x", "v", 1, 0), EPERM);

    close(gfd);
    guest_cleanup();
    printf("done\n");
    return 0;
}
