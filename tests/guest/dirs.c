/* Directories and names: mkdir/rmdir, chdir/fchdir/getcwd, getdents64,
 * rename, unlink, link, symlink, readlink, access, chmod, utimensat,
 * umask. */
#include "common.h"
#include <limits.h>
#include <linux/fs.h>
#include <sys/time.h>

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists a directory with raw getdents64, sorted, with d_type letters. */
static void list_dir(const char *label, const char *path, int bufsize)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        printf("%s err %s\n", label, errno_name(errno));
        return;
    }
    char *names[64];
    int n = 0, calls = 0;
    char buf[4096];
    for (;;) {
        long r = syscall(SYS_getdents64, fd, buf, bufsize);
        if (r < 0) {
            printf("%s getdents err %s\n", label, errno_name(errno));
            break;
        }
        if (r == 0)
            break;
        calls++;
        for (long off = 0; off < r;) {
            struct linux_dirent64 *de = (struct linux_dirent64 *)(buf + off);
            char t = de->d_type == DT_DIR ? 'd' : de->d_type == DT_REG ? 'f' : de->d_type == DT_LNK ? 'l' : '?';
            if (n < 64) {
                names[n] = malloc(strlen(de->d_name) + 3);
                sprintf(names[n], "%s:%c", de->d_name, t);
                n++;
            }
            off += de->d_reclen;
        }
    }
    close(fd);
    qsort(names, n, sizeof names[0], cmpstr);
    printf("%s", label);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
    if (bufsize < 100)
        printf("%s needed_several_calls %s\n", label, calls > 1 ? "yes" : "no");
}

static void show_mode(const char *name, const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        printf("%s err %s\n", name, errno_name(errno));
    else
        printf("%s %o\n", name, st.st_mode & 07777);
}

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    char s[4200], buf[4200];
    snprintf(s, sizeof s, "%s", guest_scratch_buf);
    struct stat st;
    int fd, r;

    umask(022);

    /* mkdir / mkdirat */
    T("chdir_scratch", chdir(s));
    T("mkdir", mkdir("a", 0755));
    E("mkdir_eexist", mkdir("a", 0755), EEXIST);
    E("mkdir_enoent_parent", mkdir("nope/x", 0755), ENOENT);
    write_file("file", "data", 0644);
    E("mkdir_enotdir_parent", mkdir("file/x", 0755), ENOTDIR);
    E("mkdir_over_file_eexist", mkdir("file", 0755), EEXIST);
    E("mkdir_bad_path_efault", syscall(SYS_mkdir, BADPTR, 0755), EFAULT);
    int dfd = open("a", O_RDONLY | O_DIRECTORY);
    T("mkdirat", mkdirat(dfd, "b", 0700));
    E("mkdirat_eexist", mkdirat(dfd, "b", 0700), EEXIST);
    show_mode("mkdirat_mode", "a/b");
    T("mkdir_trailing_slash", mkdir("t2/", 0755));
    B("mkdir_trailing_slash_exists", exists("t2"));

    /* umask effect */
    umask(077);
    mkdir("um_dir", 0777);
    show_mode("umask077_mkdir_mode", "um_dir");
    fd = creat("um_file", 0666);
    close(fd);
    show_mode("umask077_creat_mode", "um_file");
    V("umask_returns_old", umask(0));
    fd = open("um0", O_CREAT | O_WRONLY, 0777);
    close(fd);
    show_mode("umask0_open_mode", "um0");
    V("umask_returns_zero", umask(022));
    fd = open("um22", O_CREAT | O_WRONLY, 0777);
    close(fd);
    show_mode("umask022_open_mode", "um22");

    /* getdents64 */
    mkdir("ls", 0755);
    write_file("ls/one", "1", 0644);
    write_file("ls/two", "22", 0644);
    mkdir("ls/sub", 0755);
    symlink("one", "ls/lnk");
    list_dir("getdents_ls", "ls", sizeof buf);
    list_dir("getdents_small_buf", "ls", 64);
    list_dir("getdents_empty", "a/b", sizeof buf);
    fd = open("ls", O_RDONLY | O_DIRECTORY);
    E("getdents_tiny_buf_einval", syscall(SYS_getdents64, fd, buf, 8), EINVAL);
    E("getdents_bad_buf_efault", syscall(SYS_getdents64, fd, BADPTR, 4096), EFAULT);
    close(fd);
    fd = open("file", O_RDONLY);
    E("getdents_on_file_enotdir", syscall(SYS_getdents64, fd, buf, sizeof buf), ENOTDIR);
    close(fd);
    E("getdents_ebadf", syscall(SYS_getdents64, -1, buf, sizeof buf), EBADF);

    /* chdir / fchdir / getcwd */
    T("chdir_a", chdir("a"));
    char *cwd = getcwd(buf, sizeof buf);
    B("getcwd_after_chdir", cwd && strlen(cwd) == strlen(s) + 2 && !strncmp(cwd, s, strlen(s)) && !strcmp(cwd + strlen(s), "/a"));
    T("chdir_dotdot", chdir(".."));
    cwd = getcwd(buf, sizeof buf);
    B("getcwd_after_dotdot", cwd && !strcmp(cwd, s));
    T("fchdir", fchdir(dfd));
    cwd = getcwd(buf, sizeof buf);
    B("getcwd_after_fchdir", cwd && !strcmp(cwd + strlen(s), "/a"));
    E("getcwd_small_erange", syscall(SYS_getcwd, buf, 3), ERANGE);
    E("getcwd_zero_erange", syscall(SYS_getcwd, buf, 0), ERANGE);
    r = (int)syscall(SYS_getcwd, buf, sizeof buf);
    B("getcwd_raw_returns_len_plus_nul", r == (int)strlen(buf) + 1);
    E("chdir_enoent", chdir("missing"), ENOENT);
    E("chdir_file_enotdir", chdir("../file"), ENOTDIR);
    fd = open("../file", O_RDONLY);
    E("fchdir_file_enotdir", fchdir(fd), ENOTDIR);
    close(fd);
    E("fchdir_ebadf", fchdir(-1), EBADF);
    T("chdir_root", chdir("/"));
    cwd = getcwd(buf, sizeof buf);
    B("getcwd_root", cwd && !strcmp(cwd, "/"));
    T("chdir_root_dotdot", chdir(".."));
    cwd = getcwd(buf, sizeof buf);
    B("getcwd_root_dotdot_is_root", cwd && !strcmp(cwd, "/"));
    T("chdir_back", chdir(s));

    /* rmdir */
    E("rmdir_enotempty", rmdir("a"), ENOTEMPTY);
    E("rmdir_file_enotdir", rmdir("file"), ENOTDIR);
    E("rmdir_enoent", rmdir("missing"), ENOENT);
    E("rmdir_dot_einval", rmdir("a/b/."), EINVAL);
    E("rmdir_dotdot_enotempty", rmdir("a/b/.."), ENOTEMPTY);
    T("rmdir", rmdir("a/b"));
    B("rmdir_gone", !exists("a/b"));

    /* unlink / unlinkat */
    E("unlink_dir_eisdir", unlink("a"), EISDIR);
    E("unlink_enoent", unlink("missing"), ENOENT);
    E("unlink_enotdir", unlink("file/x"), ENOTDIR);
    write_file("u1", "x", 0644);
    T("unlink", unlink("u1"));
    B("unlink_gone", !exists("u1"));
    write_file("a/u2", "x", 0644);
    T("unlinkat", unlinkat(dfd, "u2", 0));
    mkdir("a/d", 0755);
    E("unlinkat_dir_no_flag_eisdir", unlinkat(dfd, "d", 0), EISDIR);
    T("unlinkat_removedir", unlinkat(dfd, "d", AT_REMOVEDIR));
    write_file("a/f", "x", 0644);
    E("unlinkat_removedir_file_enotdir", unlinkat(dfd, "f", AT_REMOVEDIR), ENOTDIR);
    E("unlinkat_bad_flag_einval", unlinkat(dfd, "f", 0x1), EINVAL);
    unlinkat(dfd, "f", 0);

    /* link / linkat */
    T("link", link("file", "hard"));
    E("link_eexist", link("file", "hard"), EEXIST);
    E("link_enoent", link("missing", "hard2"), ENOENT);
    E("link_dir_eperm", link("a", "adir_link"), EPERM);
    T("linkat", linkat(AT_FDCWD, "file", dfd, "hard3", 0));
    stat("file", &st);
    V("nlink_after_links", st.st_nlink);
    symlink("file", "sym_to_file");
    T("linkat_symlink_nofollow", linkat(AT_FDCWD, "sym_to_file", AT_FDCWD, "hard_sym", 0));
    lstat("hard_sym", &st);
    B("linkat_nofollow_is_symlink", S_ISLNK(st.st_mode));
    T("linkat_symlink_follow", linkat(AT_FDCWD, "sym_to_file", AT_FDCWD, "hard_follow", AT_SYMLINK_FOLLOW));
    lstat("hard_follow", &st);
    B("linkat_follow_is_regular", S_ISREG(st.st_mode));
    E("linkat_bad_flags_einval", linkat(AT_FDCWD, "file", AT_FDCWD, "hx", 0x1), EINVAL);

    /* symlink / readlink */
    T("symlink", symlink("target/does/not/matter", "sl"));
    E("symlink_eexist", symlink("x", "sl"), EEXIST);
    memset(buf, 0, sizeof buf);
    V("readlink_len", readlink("sl", buf, sizeof buf));
    P("readlink_content %s\n", buf);
    memset(buf, 0, sizeof buf);
    V("readlink_truncated", readlink("sl", buf, 6));
    P("readlink_truncated_content %s\n", buf);
    E("readlink_file_einval", readlink("file", buf, sizeof buf), EINVAL);
    E("readlink_dir_einval", readlink("a", buf, sizeof buf), EINVAL);
    E("readlink_enoent", readlink("missing", buf, sizeof buf), ENOENT);
    E("readlink_zero_einval", readlink("sl", buf, 0), EINVAL);
    E("readlink_bad_buf_efault", syscall(SYS_readlink, "sl", BADPTR, 100), EFAULT);
    T("symlinkat", symlinkat("../file", dfd, "up"));
    memset(buf, 0, sizeof buf);
    V("readlinkat_len", readlinkat(dfd, "up", buf, sizeof buf));
    P("readlinkat_content %s\n", buf);
    V("read_through_relative_symlink", read_file("a/up", buf, sizeof buf));
    E("symlink_empty_target_enoent", symlink("", "empty_sl"), ENOENT);
    symlink("self", "self");
    E("open_self_loop_eloop", open("self", O_RDONLY), ELOOP);
    symlink("loopb", "loopa");
    symlink("loopa", "loopb");
    E("stat_loop_eloop", stat("loopa", &st), ELOOP);
    E("open_loop_creat_eloop", open("loopa", O_CREAT | O_WRONLY, 0644), ELOOP);
    /* A chain of 40 links resolves, 41 does not (Linux MAXSYMLINKS = 40). */
    {
        char name[32], target[32];
        write_file("chain0", "end", 0644);
        for (int i = 1; i <= 41; i++) {
            snprintf(name, sizeof name, "chain%d", i);
            snprintf(target, sizeof target, "chain%d", i - 1);
            symlink(target, name);
        }
        T("symlink_chain_40", stat("chain40", &st));
        E("symlink_chain_41_eloop", stat("chain41", &st), ELOOP);
    }
    /* Symlink to a directory: walk through it and trailing-slash semantics. */
    symlink("ls", "ls_link");
    T("walk_through_dir_symlink", stat("ls_link/one", &st));
    lstat("ls_link/", &st);
    B("trailing_slash_follows_dir_link", S_ISDIR(st.st_mode));
    E("unlink_dir_link_trailing_slash_enotdir", unlink("ls_link/"), ENOTDIR);

    /* rename family */
    write_file("r1", "one", 0644);
    T("rename_file", rename("r1", "r2"));
    B("rename_old_gone", !exists("r1"));
    V("rename_new_content_len", read_file("r2", buf, sizeof buf));
    write_file("r3", "three", 0644);
    T("rename_over_file", rename("r3", "r2"));
    V("rename_over_content_len", read_file("r2", buf, sizeof buf));
    T("rename_same", rename("r2", "r2"));
    T("rename_hardlink_same_inode", rename("file", "hard"));
    B("rename_hardlink_both_kept", exists("file") && exists("hard"));
    mkdir("rd1", 0755);
    mkdir("rd2", 0755);
    write_file("rd2/x", "x", 0644);
    mkdir("rd3", 0755);
    E("rename_file_over_dir_eisdir", rename("r2", "rd1"), EISDIR);
    E("rename_dir_over_file_enotdir", rename("rd1", "r2"), ENOTDIR);
    E("rename_dir_over_nonempty_enotempty", rename("rd1", "rd2"), ENOTEMPTY);
    T("rename_dir_over_empty_dir", rename("rd1", "rd3"));
    B("rename_dir_moved", !exists("rd1") && exists("rd3"));
    E("rename_into_own_subdir_einval", rename("rd2", "rd2/sub"), EINVAL);
    E("rename_enoent", rename("missing", "zz"), ENOENT);
    E("rename_dest_parent_enoent", rename("r2", "nope/zz"), ENOENT);
    E("rename_dot_ebusy", rename(".", "dotdir"), EBUSY);
    T("rename_dir", rename("rd2", "rd4"));
    V("rename_dir_child_content", read_file("rd4/x", buf, sizeof buf));
    T("renameat", renameat(AT_FDCWD, "r2", dfd, "r5"));
    B("renameat_moved", exists("a/r5"));
    write_file("n1", "n1", 0644);
    write_file("n2", "n2", 0644);
    E("renameat2_noreplace_eexist", syscall(SYS_renameat2, AT_FDCWD, "n1", AT_FDCWD, "n2", RENAME_NOREPLACE), EEXIST);
    T("renameat2_noreplace_ok", syscall(SYS_renameat2, AT_FDCWD, "n1", AT_FDCWD, "n3", RENAME_NOREPLACE));
    E("renameat2_bad_flags_einval", syscall(SYS_renameat2, AT_FDCWD, "n3", AT_FDCWD, "n4", 0x100), EINVAL);
    E("renameat2_exchange_noreplace_einval", syscall(SYS_renameat2, AT_FDCWD, "n3", AT_FDCWD, "n2", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
    T("rename_symlink_itself", rename("sl", "sl2"));
    lstat("sl2", &st);
    B("rename_symlink_kept_link", S_ISLNK(st.st_mode));

    /* access / faccessat (no W_OK on read-only files: root bypasses it) */
    T("access_f_ok", access("file", F_OK));
    T("access_r_ok", access("file", R_OK));
    E("access_x_ok_noexec_eacces", access("file", X_OK), EACCES);
    chmod("file", 0755);
    T("access_x_ok_exec", access("file", X_OK));
    E("access_enoent", access("missing", F_OK), ENOENT);
    E("access_bad_mode_einval", access("file", 0100), EINVAL);
    T("faccessat", faccessat(dfd, "r5", R_OK, 0));
    E("faccessat_enoent", faccessat(dfd, "missing", R_OK, 0), ENOENT);
    E("access_dangling_enoent", access("sl2", F_OK), ENOENT);

    /* chmod family */
    T("chmod", chmod("file", 0600));
    show_mode("chmod_mode", "file");
    T("chmod_suid_bits", chmod("file", 04755));
    show_mode("chmod_suid_mode", "file");
    T("chmod_sticky_dir", chmod("a", 01777));
    show_mode("chmod_sticky_dir_mode", "a");
    fd = open("file", O_RDONLY);
    T("fchmod", fchmod(fd, 0640));
    show_mode("fchmod_mode", "file");
    T("fchmod_on_rdonly_fd", fchmod(fd, 0444));
    close(fd);
    T("fchmodat", fchmodat(dfd, "r5", 0611, 0));
    show_mode("fchmodat_mode", "a/r5");
    E("chmod_enoent", chmod("missing", 0644), ENOENT);
    E("fchmod_ebadf", fchmod(-1, 0644), EBADF);
    T("chmod_through_symlink", chmod("sym_to_file", 0604));
    show_mode("chmod_through_symlink_target", "file");
    show_mode("chmod_through_symlink_link", "sym_to_file");

    /* utimensat: set explicit times and read them back. */
    struct timespec ts[2] = { { 1000000000, 5 }, { 1200000000, 7 } };
    T("utimensat", utimensat(AT_FDCWD, "file", ts, 0));
    stat("file", &st);
    V("utimensat_atime", st.st_atim.tv_sec);
    V("utimensat_mtime", st.st_mtim.tv_sec);
    V("utimensat_mtime_nsec", st.st_mtim.tv_nsec);
    struct timespec omit[2] = { { 0, UTIME_OMIT }, { 1300000000, 0 } };
    T("utimensat_omit_atime", utimensat(AT_FDCWD, "file", omit, 0));
    stat("file", &st);
    V("utimensat_omit_atime_kept", st.st_atim.tv_sec);
    V("utimensat_omit_mtime_set", st.st_mtim.tv_sec);
    struct timespec now[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
    T("utimensat_now", utimensat(AT_FDCWD, "file", now, 0));
    stat("file", &st);
    B("utimensat_now_recent", st.st_mtim.tv_sec > 1600000000);
    T("utimensat_null_times", utimensat(AT_FDCWD, "file", NULL, 0));
    struct timespec bad[2] = { { 0, 1000000000 }, { 0, 0 } };
    E("utimensat_bad_nsec_einval", utimensat(AT_FDCWD, "file", bad, 0), EINVAL);
    E("utimensat_enoent", utimensat(AT_FDCWD, "missing", ts, 0), ENOENT);
    T("utimensat_nofollow_link", utimensat(AT_FDCWD, "sym_to_file", ts, AT_SYMLINK_NOFOLLOW));
    lstat("sym_to_file", &st);
    V("utimensat_nofollow_link_mtime", st.st_mtim.tv_sec);
    struct timeval tv[2] = { { 900000000, 0 }, { 950000000, 0 } };
    T("utimes", utimes("file", tv));
    stat("file", &st);
    V("utimes_mtime", st.st_mtim.tv_sec);

    close(dfd);
    guest_cleanup();
    P("done\n");
    return 0;
}
