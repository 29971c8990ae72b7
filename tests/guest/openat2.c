/* openat2: struct open_how of every size, the strict flag checks, and
 * the RESOLVE_* restrictions (NO_SYMLINKS, NO_MAGICLINKS, NO_XDEV,
 * BENEATH, IN_ROOT, CACHED), error paths included. */
#include "common.h"
#include <linux/openat2.h>

static long o2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve)
{
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Opens and reports ok/err; closes what it opened. */
#define O2(name, dirfd, path, flags, mode, resolve)                 \
    do {                                                            \
        long fd_ = o2(dirfd, path, flags, mode, resolve);           \
        guest_report(name, fd_, errno, 0);                          \
        if (fd_ >= 0)                                               \
            close(fd_);                                             \
    } while (0)

int main(int argc, char **argv)
{
    guest_init();
    const char *scratch = guest_scratch(argc, argv);
    char d[4200], abs_target[4300], buf[64];
    snprintf(d, sizeof d, "%s", sp("d"));
    T("mkdir", mkdir(d, 0755));
    T("mkdir_sub", mkdir(sp("d/sub"), 0755));
    T("write_f", write_file(sp("d/f"), "inside", 0644));
    T("write_outside", write_file(sp("outside"), "outside", 0644));
    T("symlink_rel", symlink("f", sp("d/lnk")));
    T("symlink_dir", symlink("sub", sp("d/sublnk")));
    T("symlink_up", symlink("../outside", sp("d/up")));
    snprintf(abs_target, sizeof abs_target, "%s/d/f", scratch);
    T("symlink_abs", symlink(abs_target, sp("d/abs")));
    T("symlink_root", symlink("/f", sp("d/rootf")));
    int dfd = open(d, O_RDONLY | O_DIRECTORY);

    /* Sizes of struct open_how. */
    struct {
        struct open_how how;
        uint64_t extra[4];
    } big;
    memset(&big, 0, sizeof big);
    big.how.flags = O_RDONLY;
    long r = syscall(SYS_openat2, dfd, "f", &big, sizeof big);
    T("size_larger_zero_tail", r);
    if (r >= 0)
        close(r);
    big.extra[2] = 1;
    E("size_larger_nonzero_tail", syscall(SYS_openat2, dfd, "f", &big, sizeof big), E2BIG);
    E("size_too_small", syscall(SYS_openat2, dfd, "f", &big, 16), EINVAL);
    E("size_zero", syscall(SYS_openat2, dfd, "f", &big, 0), EINVAL);
    E("size_over_page", syscall(SYS_openat2, dfd, "f", &big, 8192), E2BIG);
    E("how_badptr", syscall(SYS_openat2, dfd, "f", BADPTR, 24), EFAULT);
    E("path_badptr", o2(dfd, BADPTR, O_RDONLY, 0, 0), EFAULT);

    /* Strict flags. */
    O2("plain", dfd, "f", O_RDONLY, 0, 0);
    E("unknown_flag_bit", o2(dfd, "f", 1ULL << 40, 0, 0), EINVAL);
    E("unknown_flag_low", o2(dfd, "f", 0x4, 0, 0), EINVAL);
    E("unknown_resolve", o2(dfd, "f", O_RDONLY, 0, 0x40), EINVAL);
    E("beneath_and_in_root", o2(dfd, "f", O_RDONLY, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT), EINVAL);
    E("mode_without_creat", o2(dfd, "f", O_RDONLY, 0644, 0), EINVAL);
    E("mode_bad_bits", o2(dfd, "new", O_CREAT | O_WRONLY, 010000, 0), EINVAL);
    E("directory_creat", o2(dfd, "new", O_CREAT | O_DIRECTORY, 0644, 0), EINVAL);
    E("cached_creat", o2(dfd, "new", O_CREAT | O_WRONLY, 0644, RESOLVE_CACHED), EAGAIN);
    E("cached_trunc", o2(dfd, "f", O_TRUNC | O_WRONLY, 0, RESOLVE_CACHED), EAGAIN);
    r = o2(dfd, "f", O_RDONLY, 0, RESOLVE_CACHED);
    B("cached_open_ok_or_eagain", r >= 0 || errno == EAGAIN);
    if (r >= 0)
        close(r);
    O2("creat_mode", dfd, "created", O_CREAT | O_EXCL | O_WRONLY, 0600, 0);
    struct stat st;
    stat(sp("d/created"), &st);
    P("  created mode %o\n", st.st_mode & 07777);
    E("bad_dirfd", o2(999, "f", O_RDONLY, 0, 0), EBADF);
    int ffd = open(sp("d/f"), O_RDONLY);
    E("file_dirfd", o2(ffd, "x", O_RDONLY, 0, 0), ENOTDIR);
    E("file_dirfd_beneath", o2(ffd, "x", O_RDONLY, 0, RESOLVE_BENEATH), ENOTDIR);
    E("missing", o2(dfd, "nope", O_RDONLY, 0, 0), ENOENT);

    /* RESOLVE_NO_SYMLINKS. */
    E("nosym_last", o2(dfd, "lnk", O_RDONLY, 0, RESOLVE_NO_SYMLINKS), ELOOP);
    E("nosym_middle", o2(dfd, "sublnk/x", O_RDONLY, 0, RESOLVE_NO_SYMLINKS), ELOOP);
    O2("nosym_opath_nofollow", dfd, "lnk", O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS);
    E("nosym_nofollow_open", o2(dfd, "lnk", O_RDONLY | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS), ELOOP);
    O2("nosym_plain_file", dfd, "sub/../f", O_RDONLY, 0, RESOLVE_NO_SYMLINKS);

    /* RESOLVE_BENEATH. */
    O2("beneath_file", dfd, "f", O_RDONLY, 0, RESOLVE_BENEATH);
    O2("beneath_dotdot_inside", dfd, "sub/../f", O_RDONLY, 0, RESOLVE_BENEATH);
    O2("beneath_rel_symlink", dfd, "lnk", O_RDONLY, 0, RESOLVE_BENEATH);
    O2("beneath_dot", dfd, ".", O_RDONLY, 0, RESOLVE_BENEATH);
    E("beneath_dotdot", o2(dfd, "../outside", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    E("beneath_dotdot_deep", o2(dfd, "sub/../../outside", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    E("beneath_absolute", o2(dfd, "/etc/passwd", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    E("beneath_abs_symlink", o2(dfd, "abs", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    E("beneath_up_symlink", o2(dfd, "up", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    E("beneath_creat_escape", o2(dfd, "../escape", O_CREAT | O_WRONLY, 0644, RESOLVE_BENEATH), EXDEV);
    O2("beneath_creat_inside", dfd, "made", O_CREAT | O_WRONLY, 0644, RESOLVE_BENEATH);

    /* RESOLVE_IN_ROOT: dfd is "/". */
    r = o2(dfd, "/f", O_RDONLY, 0, RESOLVE_IN_ROOT);
    T("in_root_absolute", r);
    if (r >= 0) {
        long n = read(r, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        P("  read %s\n", buf);
        close(r);
    }
    r = o2(dfd, "../../../f", O_RDONLY, 0, RESOLVE_IN_ROOT);
    T("in_root_dotdot_clamped", r);
    if (r >= 0)
        close(r);
    O2("in_root_root_symlink", dfd, "rootf", O_RDONLY, 0, RESOLVE_IN_ROOT);
    E("in_root_abs_symlink_elsewhere", o2(dfd, "abs", O_RDONLY, 0, RESOLVE_IN_ROOT), ENOENT);
    r = o2(dfd, "up", O_RDONLY, 0, RESOLVE_IN_ROOT);
    E("in_root_up_symlink", r, ENOENT);

    /* RESOLVE_NO_MAGICLINKS and magic links under scoping. */
    char fdlink[64];
    snprintf(fdlink, sizeof fdlink, "/proc/self/fd/%d", ffd);
    O2("magic_plain", AT_FDCWD, fdlink, O_RDONLY, 0, 0);
    E("magic_refused", o2(AT_FDCWD, fdlink, O_RDONLY, 0, RESOLVE_NO_MAGICLINKS), ELOOP);
    O2("magic_opath_nofollow", AT_FDCWD, fdlink, O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_MAGICLINKS);
    int proc = open("/proc", O_RDONLY | O_DIRECTORY);
    snprintf(fdlink, sizeof fdlink, "self/fd/%d", ffd);
    E("magic_beneath", o2(proc, fdlink, O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    O2("proc_self_beneath", proc, "self/status", O_RDONLY, 0, RESOLVE_BENEATH);
    E("nosym_proc_self", o2(proc, "self/status", O_RDONLY, 0, RESOLVE_NO_SYMLINKS), ELOOP);

    /* RESOLVE_NO_XDEV: /proc is a mount of its own. */
    int root = open("/", O_RDONLY | O_DIRECTORY);
    E("noxdev_into_proc", o2(root, "proc/version", O_RDONLY, 0, RESOLVE_NO_XDEV), EXDEV);
    E("noxdev_out_of_proc", o2(proc, "../etc/passwd", O_RDONLY, 0, RESOLVE_NO_XDEV), EXDEV);
    O2("noxdev_inside_proc", proc, "version", O_RDONLY, 0, RESOLVE_NO_XDEV);
    O2("noxdev_same_dir", dfd, "sub/../f", O_RDONLY, 0, RESOLVE_NO_XDEV);
    E("noxdev_absolute_into_proc", o2(dfd, "/proc/version", O_RDONLY, 0, RESOLVE_NO_XDEV), EXDEV);

    /* O_PATH keeps only its own flags. */
    O2("opath_rdwr", dfd, "f", O_PATH | O_RDWR, 0, 0);
    r = o2(dfd, "f", O_RDWR | O_CLOEXEC, 0, 0);
    V("cloexec", fcntl(r, F_GETFD));
    close(r);
    guest_cleanup();
    P("done\n");
    return 0;
}
