/* faccessat2: its flags (AT_EACCESS, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH)
 * and errors. Run as root natively and in the sandbox (uid 0), so the
 * real/effective distinction shows only through a setuid-free drop. */
#include "common.h"

static long fa2(int dirfd, const char *path, int mode, int flags)
{
    return syscall(SYS_faccessat2, dirfd, path, mode, flags);
}

int main(int argc, char **argv)
{
    guest_init();
    const char *dir = guest_scratch(argc, argv);
    char f[8192], l[8192], dang[8192];
    snprintf(f, sizeof f, "%s/file", dir);
    snprintf(l, sizeof l, "%s/link", dir);
    snprintf(dang, sizeof dang, "%s/dangling", dir);
    int fd = open(f, O_CREAT | O_WRONLY, 0600);
    close(fd);
    symlink(f, l);
    symlink("/nonexistent/x", dang);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);

    T("plain_rw", fa2(AT_FDCWD, f, R_OK | W_OK, 0));
    E("plain_x", fa2(AT_FDCWD, f, X_OK, 0), EACCES);
    T("eaccess", fa2(AT_FDCWD, f, R_OK, AT_EACCESS));
    T("relative", fa2(dfd, "file", F_OK, 0));
    T("through_link", fa2(dfd, "link", R_OK, 0));
    E("dangling_follow", fa2(dfd, "dangling", F_OK, 0), ENOENT);
    T("dangling_nofollow", fa2(dfd, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));
    int ffd = open(f, O_RDONLY);
    T("empty_path_fd", fa2(ffd, "", R_OK, AT_EMPTY_PATH));
    E("empty_path_fd_x", fa2(ffd, "", X_OK, AT_EMPTY_PATH), EACCES);
    E("empty_without_flag", fa2(ffd, "", R_OK, 0), ENOENT);
    T("empty_path_cwd", fa2(AT_FDCWD, "", F_OK, AT_EMPTY_PATH));
    E("bad_flags", fa2(AT_FDCWD, f, R_OK, 0x1), EINVAL);
    E("bad_flags_follow", fa2(AT_FDCWD, f, R_OK, 0x400), EINVAL);
    E("bad_mode", fa2(AT_FDCWD, f, 8, 0), EINVAL);
    E("bad_fd", fa2(999, "file", F_OK, 0), EBADF);
    E("file_as_dirfd", fa2(ffd, "x", F_OK, 0), ENOTDIR);
    E("bad_path", fa2(AT_FDCWD, (const char *)8, F_OK, 0), EFAULT);
    E("missing", fa2(dfd, "missing", F_OK, 0), ENOENT);

    /* Drop the effective uid only: AT_EACCESS checks as that uid. */
    chmod(f, 0600);
    if (seteuid(65534) == 0) {
        T("real_root_access", fa2(AT_FDCWD, f, R_OK, 0));
        E("effective_nobody_access", fa2(AT_FDCWD, f, R_OK, AT_EACCESS), EACCES);
        seteuid(0);
    }
    guest_cleanup();
    printf("done\n");
    return 0;
}
