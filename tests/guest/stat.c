/* stat family: stat/lstat/fstat/newfstatat (AT_SYMLINK_NOFOLLOW,
 * AT_EMPTY_PATH), statfs/fstatfs, mode bits, sizes, link counts, errors. */
#include "common.h"
#include <limits.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

static const char *type_name(mode_t m)
{
    if (S_ISREG(m))
        return "reg";
    if (S_ISDIR(m))
        return "dir";
    if (S_ISLNK(m))
        return "lnk";
    if (S_ISCHR(m))
        return "chr";
    if (S_ISBLK(m))
        return "blk";
    if (S_ISFIFO(m))
        return "fifo";
    if (S_ISSOCK(m))
        return "sock";
    return "unknown";
}

static void show(const char *name, int r, const struct stat *st)
{
    if (r < 0) {
        printf("%s err %s\n", name, errno_name(errno));
        return;
    }
    printf("%s type=%s perm=%o\n", name, type_name(st->st_mode), st->st_mode & 07777);
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    char f[4200], d[4200], l[4200], dl[4200];
    snprintf(f, sizeof f, "%s", sp("file"));
    snprintf(d, sizeof d, "%s", sp("dir"));
    snprintf(l, sizeof l, "%s", sp("link"));
    snprintf(dl, sizeof dl, "%s", sp("dangling"));
    struct stat st, st2;
    int r, fd;

    umask(022);
    T("write_file", write_file(f, "0123456789abcdef", 0640));
    T("mkdir", mkdir(d, 0751));
    T("symlink", symlink("file", l));
    T("symlink_dangling", symlink("nowhere", dl));

    errno = 0;
    r = stat(f, &st);
    show("stat_file", r, &st);
    V("stat_file_size", st.st_size);
    V("stat_file_nlink", st.st_nlink);
    B("stat_file_blksize_positive", st.st_blksize > 0);
    B("stat_file_blocks_cover_size", st.st_blocks * 512 >= st.st_size);
    B("stat_uid_is_euid", st.st_uid == geteuid());
    r = stat(d, &st);
    show("stat_dir", r, &st);
    B("stat_dir_nlink_at_least_2", st.st_nlink >= 2);
    r = stat(l, &st);
    show("stat_symlink_follows", r, &st);
    V("stat_symlink_follows_size", st.st_size);
    r = lstat(l, &st);
    show("lstat_symlink", r, &st);
    V("lstat_symlink_size", st.st_size);
    r = stat(dl, &st);
    show("stat_dangling", r, &st);
    r = lstat(dl, &st);
    show("lstat_dangling", r, &st);
    r = stat("/", &st);
    show("stat_root", r, &st);
    r = stat("/dev/null", &st);
    show("stat_dev_null", r, &st);
    B("dev_null_rdev", st.st_rdev == makedev(1, 3));
    r = stat("/proc/self", &st);
    show("stat_proc_self", r, &st);

    /* fstat and consistency with stat */
    fd = open(f, O_RDONLY);
    r = fstat(fd, &st);
    show("fstat_file", r, &st);
    stat(f, &st2);
    B("fstat_same_ino_as_stat", st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
    E("fstat_ebadf", fstat(-1, &st), EBADF);
    E("fstat_bad_buf_efault", syscall(SYS_fstat, fd, BADPTR), EFAULT);

    /* newfstatat */
    int dfd = open(guest_scratch_buf, O_RDONLY | O_DIRECTORY);
    r = fstatat(dfd, "file", &st, 0);
    show("fstatat_rel", r, &st);
    r = fstatat(dfd, "link", &st, 0);
    show("fstatat_link_follow", r, &st);
    r = fstatat(dfd, "link", &st, AT_SYMLINK_NOFOLLOW);
    show("fstatat_link_nofollow", r, &st);
    r = fstatat(fd, "", &st, AT_EMPTY_PATH);
    show("fstatat_empty_path", r, &st);
    B("fstatat_empty_path_same_ino", st.st_ino == st2.st_ino);
    r = fstatat(dfd, "", &st, AT_EMPTY_PATH);
    show("fstatat_empty_path_dir", r, &st);
    E("fstatat_empty_without_flag_enoent", fstatat(dfd, "", &st, 0), ENOENT);
    E("fstatat_bad_flags_einval", fstatat(dfd, "file", &st, 0x40000000), EINVAL);
    E("fstatat_file_dirfd_enotdir", fstatat(fd, "x", &st, 0), ENOTDIR);
    E("fstatat_badfd_ebadf", fstatat(9999, "x", &st, 0), EBADF);
    r = fstatat(AT_FDCWD, f, &st, 0);
    show("fstatat_fdcwd", r, &st);
    r = fstatat(9999, f, &st, 0);
    show("fstatat_badfd_absolute_ok", r, &st);
    close(fd);

    /* Sizes after writes. */
    fd = open(f, O_WRONLY | O_APPEND);
    write(fd, "XYZ", 3);
    fstat(fd, &st);
    V("size_after_append", st.st_size);
    close(fd);

    /* nlink after link / unlink */
    T("link", link(f, sp("hard")));
    stat(f, &st);
    V("nlink_after_link", st.st_nlink);
    stat(sp("hard"), &st2);
    B("link_same_ino", st.st_ino == st2.st_ino);
    T("unlink_hard", unlink(sp("hard")));
    stat(f, &st);
    V("nlink_after_unlink", st.st_nlink);
    mkdir(sp("dir/sub"), 0755);
    stat(d, &st);
    V("dir_nlink_with_subdir", st.st_nlink);
    fd = open(f, O_RDONLY);
    unlink(f);
    r = fstat(fd, &st);
    show("fstat_unlinked", r, &st);
    V("fstat_unlinked_nlink", st.st_nlink);
    V("fstat_unlinked_size", st.st_size);
    close(fd);
    write_file(f, "again", 0644);

    /* Mode bits of special files */
    T("mkfifo", mkfifo(sp("fifo"), 0600));
    r = stat(sp("fifo"), &st);
    show("stat_fifo", r, &st);

    /* Errors */
    E("stat_enoent", stat(sp("missing"), &st), ENOENT);
    E("stat_enotdir", stat(sp("file/x"), &st), ENOTDIR);
    E("stat_empty_enoent", stat("", &st), ENOENT);
    char longname[NAME_MAX + 10];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    E("stat_component_enametoolong", stat(longname, &st), ENAMETOOLONG);
    static char longpath[PATH_MAX + 100];
    for (size_t i = 0; i + 1 < sizeof longpath; i++)
        longpath[i] = (i % 2) ? '/' : 'a';
    longpath[sizeof longpath - 1] = 0;
    E("stat_path_enametoolong", stat(longpath, &st), ENAMETOOLONG);
    E("stat_bad_path_efault", syscall(SYS_stat, BADPTR, &st), EFAULT);
    E("stat_bad_buf_efault", syscall(SYS_stat, f, BADPTR), EFAULT);
    E("lstat_bad_buf_efault", syscall(SYS_lstat, f, BADPTR), EFAULT);
    E("newfstatat_bad_buf_efault", syscall(SYS_newfstatat, AT_FDCWD, f, BADPTR, 0), EFAULT);
    symlink("loop2", sp("loop1"));
    symlink("loop1", sp("loop2"));
    E("stat_loop_eloop", stat(sp("loop1"), &st), ELOOP);
    r = lstat(sp("loop1"), &st);
    show("lstat_loop", r, &st);

    /* statfs / fstatfs: only that they work (f_type differs by host fs). */
    struct statfs sf;
    T("statfs_scratch", statfs(guest_scratch_buf, &sf));
    T("statfs_root", statfs("/", &sf));
    T("statfs_proc", statfs("/proc", &sf));
    B("statfs_proc_magic", sf.f_type == 0x9fa0);
    fd = open(guest_scratch_buf, O_RDONLY);
    T("fstatfs", fstatfs(fd, &sf));
    B("fstatfs_bsize_positive", sf.f_bsize > 0);
    B("fstatfs_namelen_255", sf.f_namelen == 255);
    close(fd);
    E("statfs_enoent", statfs(sp("missing"), &sf), ENOENT);
    E("fstatfs_ebadf", fstatfs(-1, &sf), EBADF);
    E("statfs_bad_buf_efault", syscall(SYS_statfs, "/", BADPTR), EFAULT);

    guest_cleanup();
    P("done\n");
    return 0;
}
