/* statx: basic stats agree with stat, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW,
 * the sync flags, and the error paths (reserved mask bit, bad flags,
 * bad pointers, missing files). */
#include "common.h"
#include <linux/stat.h>
#include <sys/sysmacros.h>

/* What every filesystem reports whatever was asked (ext4's multigrain
 * timestamps leave mtime/ctime out unless requested). */
#define CORE (STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_GID | STATX_ATIME | STATX_INO | STATX_SIZE | STATX_BLOCKS)

static long sx(int dirfd, const char *path, int flags, unsigned mask, struct statx *buf)
{
    return syscall(SYS_statx, dirfd, path, flags, mask, buf);
}

static void agree(const char *name, const struct statx *x, const struct stat *st)
{
    int same = x->stx_mode == st->st_mode && x->stx_ino == st->st_ino && x->stx_size == (uint64_t)st->st_size &&
               x->stx_nlink == st->st_nlink && x->stx_uid == st->st_uid && x->stx_gid == st->st_gid &&
               x->stx_blocks == (uint64_t)st->st_blocks && x->stx_blksize == (uint32_t)st->st_blksize &&
               makedev(x->stx_dev_major, x->stx_dev_minor) == st->st_dev &&
               makedev(x->stx_rdev_major, x->stx_rdev_minor) == st->st_rdev &&
               x->stx_mtime.tv_sec == st->st_mtim.tv_sec && x->stx_mtime.tv_nsec == (uint32_t)st->st_mtim.tv_nsec &&
               x->stx_ctime.tv_sec == st->st_ctim.tv_sec && x->stx_atime.tv_sec == st->st_atim.tv_sec;
    B(name, same);
    B("  basic_mask", (x->stx_mask & CORE) == CORE);
    /* Birth time only where the mask says it is known. */
    B("  btime_consistent", !(x->stx_mask & STATX_BTIME) || x->stx_btime.tv_sec != 0);
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    char f[4200], l[4200], d[4200];
    snprintf(f, sizeof f, "%s", sp("file"));
    snprintf(l, sizeof l, "%s", sp("link"));
    snprintf(d, sizeof d, "%s", sp("dir"));
    struct statx x;
    struct stat st;

    T("write_file", write_file(f, "hello statx", 0640));
    T("symlink", symlink("file", l));
    T("mkdir", mkdir(d, 0750));

    memset(&x, 0, sizeof x);
    T("statx_file", sx(AT_FDCWD, f, 0, STATX_BASIC_STATS, &x));
    stat(f, &st);
    agree("file_agrees", &x, &st);
    P("file_size = %llu mode=%o\n", (unsigned long long)x.stx_size, x.stx_mode);

    T("statx_link_follow", sx(AT_FDCWD, l, 0, STATX_ALL, &x));
    B("  is_reg", S_ISREG(x.stx_mode));
    T("statx_link_nofollow", sx(AT_FDCWD, l, AT_SYMLINK_NOFOLLOW, STATX_ALL, &x));
    lstat(l, &st);
    agree("link_agrees", &x, &st);
    B("  is_lnk", S_ISLNK(x.stx_mode));

    T("statx_dir", sx(AT_FDCWD, d, AT_STATX_FORCE_SYNC, STATX_TYPE, &x));
    B("  is_dir", S_ISDIR(x.stx_mode));
    T("statx_dontsync", sx(AT_FDCWD, f, AT_STATX_DONT_SYNC, 0, &x));
    B("  mask_has_core", (x.stx_mask & CORE) == CORE);

    int fd = open(f, O_RDONLY);
    T("open", fd);
    T("statx_empty_path", sx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &x));
    fstat(fd, &st);
    agree("fd_agrees", &x, &st);
    /* The mount id is the one /proc/self/fdinfo shows, by fd and by path. */
    T("statx_mnt_id", sx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &x));
    B("  mask_has_mnt_id", x.stx_mask & STATX_MNT_ID);
    {
        char info[64], text[512];
        snprintf(info, sizeof info, "/proc/self/fdinfo/%d", fd);
        unsigned long long from_proc = 0;
        if (read_file(info, text, sizeof text) > 0) {
            const char *m = strstr(text, "mnt_id:");
            if (m)
                from_proc = strtoull(m + 7, NULL, 10);
        }
        B("  mnt_id_matches_fdinfo", from_proc != 0 && from_proc == x.stx_mnt_id);
        uint64_t by_fd = x.stx_mnt_id;
        sx(AT_FDCWD, f, 0, STATX_MNT_ID, &x);
        B("  mnt_id_same_by_path", x.stx_mnt_id == by_fd);
    }
    T("statx_null_path_empty", sx(fd, NULL, AT_EMPTY_PATH, STATX_SIZE, &x));
    B("  size_ok", x.stx_size == 11);
    int dfd = open(d, O_RDONLY | O_DIRECTORY);
    T("statx_relative", sx(dfd, "..", 0, STATX_BASIC_STATS, &x));
    B("  rel_is_dir", S_ISDIR(x.stx_mode));
    T("chdir", chdir(d));
    T("statx_cwd_empty", sx(AT_FDCWD, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &x));
    B("  cwd_is_dir", S_ISDIR(x.stx_mode));
    T("statx_dot", sx(AT_FDCWD, ".", 0, STATX_BASIC_STATS, &x));

    /* Error paths. */
    E("empty_no_flag", sx(fd, "", 0, STATX_BASIC_STATS, &x), ENOENT);
    E("fstatat_empty_no_flag", fstatat(fd, "", &st, 0), ENOENT);
    E("reserved_mask", sx(AT_FDCWD, f, 0, 0x80000000u, &x), EINVAL);
    E("both_sync", sx(AT_FDCWD, f, AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &x), EINVAL);
    E("bad_flag", sx(AT_FDCWD, f, 0x1, STATX_BASIC_STATS, &x), EINVAL);
    E("bad_flag_high", sx(AT_FDCWD, f, 0x80000, STATX_BASIC_STATS, &x), EINVAL);
    E("bad_buf", sx(AT_FDCWD, f, 0, STATX_BASIC_STATS, BADPTR), EFAULT);
    E("bad_path", sx(AT_FDCWD, BADPTR, 0, STATX_BASIC_STATS, &x), EFAULT);
    E("missing", sx(AT_FDCWD, sp("nope"), 0, STATX_BASIC_STATS, &x), ENOENT);
    E("bad_fd", sx(999, "x", 0, STATX_BASIC_STATS, &x), EBADF);
    E("bad_fd_empty", sx(999, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &x), EBADF);
    E("notdir_fd", sx(fd, "x", 0, STATX_BASIC_STATS, &x), ENOTDIR);
    char fs[4300];
    snprintf(fs, sizeof fs, "%s/", f);
    E("file_slash", sx(AT_FDCWD, fs, 0, STATX_BASIC_STATS, &x), ENOTDIR);
    T("unknown_mask_bits_ok", sx(AT_FDCWD, f, 0, 0x40000000u, &x));
    close(fd);
    close(dfd);
    guest_cleanup();
    P("done\n");
    return 0;
}
