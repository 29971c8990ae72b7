/* File I/O: open/openat/creat flags, read/write and friends, lseek, close,
 * dup*, fcntl, truncate, sync, and their error paths. */
#include "common.h"
#include <limits.h>
#include <sys/uio.h>

static char big[64];

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    char f[4200];
    snprintf(f, sizeof f, "%s", sp("f"));
    int fd, fd2, r;
    char buf[128];

    /* open / creat */
    E("open_enoent", open(sp("missing"), O_RDONLY), ENOENT);
    E("open_missing_dir_component", open(sp("nodir/x"), O_RDONLY), ENOENT);
    fd = open(f, O_RDWR | O_CREAT | O_EXCL, 0644);
    T("open_creat_excl", fd);
    E("open_creat_excl_eexist", open(f, O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST);
    V("write_hello", write(fd, "hello world", 11));
    T("close", close(fd));
    E("close_again_ebadf", close(fd), EBADF);
    E("close_neg_ebadf", close(-1), EBADF);
    E("close_huge_ebadf", close(1 << 20), EBADF);

    fd = open(f, O_RDONLY);
    T("open_rdonly", fd);
    memset(buf, 0, sizeof buf);
    V("read_all", read(fd, buf, sizeof buf - 1));
    P("read_content %s\n", buf);
    V("read_eof", read(fd, buf, sizeof buf));
    E("write_rdonly_ebadf", write(fd, "x", 1), EBADF);
    /* At EOF nothing is copied, so even a bad buffer is not an error. */
    V("read_bad_buffer_at_eof", syscall(SYS_read, fd, BADPTR, 10));
    T("lseek_set0", lseek(fd, 0, SEEK_SET));
    E("read_bad_buffer_efault2", syscall(SYS_read, fd, BADPTR, 10), EFAULT);
    V("offset_after_efault", lseek(fd, 0, SEEK_CUR));
    /* A count much larger than the buffer is fine when the file is short. */
    V("read_huge_count_short_file", syscall(SYS_read, fd, big, 1UL << 30));
    E("read_count_overflow_efault", syscall(SYS_read, fd, big, SIZE_MAX), EFAULT);
    T("close_rdonly", close(fd));

    E("read_ebadf", read(-1, buf, 1), EBADF);
    E("read_closed_ebadf", read(fd, buf, 1), EBADF);
    E("write_ebadf", write(12345, buf, 1), EBADF);

    fd = open(f, O_WRONLY);
    E("read_wronly_ebadf", read(fd, buf, 1), EBADF);
    V("write_zero", write(fd, buf, 0));
    E("write_bad_buffer_efault", syscall(SYS_write, fd, BADPTR, 10), EFAULT);
    close(fd);

    /* O_TRUNC */
    fd = open(f, O_WRONLY | O_TRUNC);
    T("open_trunc", fd);
    struct stat st;
    fstat(fd, &st);
    V("size_after_trunc", st.st_size);
    V("write_abc", write(fd, "abc", 3));
    close(fd);

    /* O_APPEND: writes go to the end whatever the offset. */
    fd = open(f, O_WRONLY | O_APPEND);
    T("open_append", fd);
    lseek(fd, 0, SEEK_SET);
    V("write_append", write(fd, "def", 3));
    V("offset_after_append", lseek(fd, 0, SEEK_CUR));
    V("pwrite_append", pwrite(fd, "G", 1, 0));
    close(fd);
    memset(buf, 0, sizeof buf);
    V("read_file_len", read_file(f, buf, sizeof buf));
    P("append_content %s\n", buf);

    /* O_DIRECTORY on a file; O_CREAT on a directory; opening a dir for writing. */
    E("open_directory_on_file_enotdir", open(f, O_RDONLY | O_DIRECTORY), ENOTDIR);
    E("open_dir_wronly_eisdir", open(guest_scratch_buf, O_WRONLY), EISDIR);
    E("open_dir_creat_eisdir", open(guest_scratch_buf, O_RDWR | O_CREAT, 0644), EISDIR);
    fd = open(guest_scratch_buf, O_RDONLY | O_DIRECTORY);
    T("open_dir_rdonly", fd);
    E("read_dir_eisdir", read(fd, buf, 1), EISDIR);
    close(fd);
    E("open_file_as_dir_enotdir", open(sp("f/x"), O_RDONLY), ENOTDIR);
    E("open_bad_path_efault", syscall(SYS_open, BADPTR, O_RDONLY), EFAULT);
    E("open_empty_path_enoent", open("", O_RDONLY), ENOENT);

    /* openat relative to a dir fd, AT_FDCWD, a non-dir fd. */
    int dfd = open(guest_scratch_buf, O_RDONLY | O_DIRECTORY);
    fd = openat(dfd, "g", O_RDWR | O_CREAT | O_TRUNC, 0600);
    T("openat_dirfd_creat", fd);
    close(fd);
    T("openat_dirfd_existing", fd = openat(dfd, "g", O_RDONLY));
    close(fd);
    T("openat_fdcwd_absolute", fd = openat(AT_FDCWD, f, O_RDONLY));
    E("openat_file_fd_enotdir", openat(fd, "x", O_RDONLY), ENOTDIR);
    T("openat_file_fd_absolute_ok", fd2 = openat(fd, f, O_RDONLY));
    close(fd2);
    close(fd);
    E("openat_badfd_ebadf", openat(9999, "x", O_RDONLY), EBADF);

    /* creat = O_CREAT|O_WRONLY|O_TRUNC */
    fd = creat(sp("c"), 0644);
    T("creat", fd);
    E("creat_read_ebadf", read(fd, buf, 1), EBADF);
    V("creat_write", write(fd, "12345", 5));
    close(fd);
    fd = creat(sp("c"), 0644);
    fstat(fd, &st);
    V("creat_truncates", st.st_size);
    close(fd);

    /* pread / pwrite leave the offset alone. */
    fd = open(sp("p"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    V("write_digits", write(fd, "0123456789", 10));
    memset(buf, 0, sizeof buf);
    V("pread_4_at_3", pread(fd, buf, 4, 3));
    P("pread_content %s\n", buf);
    V("offset_after_pread", lseek(fd, 0, SEEK_CUR));
    V("pwrite_at_20", pwrite(fd, "XY", 2, 20));
    fstat(fd, &st);
    V("size_after_pwrite_hole", st.st_size);
    memset(buf, 'z', sizeof buf);
    V("pread_hole", pread(fd, buf, 12, 10));
    B("hole_reads_zero", buf[0] == 0 && buf[9] == 0 && buf[10] == 'X' && buf[11] == 'Y');
    E("pread_negative_offset_einval", pread(fd, buf, 1, -1), EINVAL);
    E("pwrite_negative_offset_einval", pwrite(fd, buf, 1, -1), EINVAL);
    V("pread_past_eof", pread(fd, buf, 10, 1000));

    /* readv / writev */
    lseek(fd, 0, SEEK_SET);
    char a[3], b[4];
    struct iovec iov[2] = { { a, 3 }, { b, 4 } };
    V("readv", readv(fd, iov, 2));
    B("readv_content", !memcmp(a, "012", 3) && !memcmp(b, "3456", 4));
    struct iovec wiov[3] = { { "ab", 2 }, { NULL, 0 }, { "cde", 3 } };
    lseek(fd, 0, SEEK_SET);
    V("writev", writev(fd, wiov, 3));
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 10, 0);
    P("writev_content %.10s\n", buf);
    E("readv_bad_iov_efault", syscall(SYS_readv, fd, BADPTR, 1), EFAULT);
    E("readv_negative_count_einval", syscall(SYS_readv, fd, iov, -1), EINVAL);
    E("readv_too_many_einval", syscall(SYS_readv, fd, iov, 1025), EINVAL);
    struct iovec badiov[1] = { { BADPTR, 4 } };
    lseek(fd, 0, SEEK_SET);
    E("readv_bad_base_efault", readv(fd, badiov, 1), EFAULT);
    V("readv_zero_iovs", readv(fd, iov, 0));

    /* lseek */
    V("lseek_set", lseek(fd, 5, SEEK_SET));
    V("lseek_cur", lseek(fd, 2, SEEK_CUR));
    V("lseek_cur_back", lseek(fd, -3, SEEK_CUR));
    V("lseek_end", lseek(fd, 0, SEEK_END));
    V("lseek_end_minus", lseek(fd, -2, SEEK_END));
    V("lseek_past_end", lseek(fd, 100, SEEK_END));
    E("lseek_negative_einval", lseek(fd, -1, SEEK_SET), EINVAL);
    E("lseek_cur_negative_einval", lseek(fd, -1000, SEEK_CUR), EINVAL);
    E("lseek_bad_whence_einval", lseek(fd, 0, 42), EINVAL);
    E("lseek_ebadf", lseek(-1, 0, SEEK_SET), EBADF);

    /* ftruncate / truncate */
    T("ftruncate_shrink", ftruncate(fd, 4));
    fstat(fd, &st);
    V("size_after_ftruncate", st.st_size);
    T("ftruncate_grow", ftruncate(fd, 100));
    fstat(fd, &st);
    V("size_after_ftruncate_grow", st.st_size);
    E("ftruncate_negative_einval", ftruncate(fd, -1), EINVAL);
    T("truncate_path", truncate(sp("p"), 7));
    fstat(fd, &st);
    V("size_after_truncate", st.st_size);
    E("truncate_enoent", truncate(sp("missing"), 0), ENOENT);
    E("truncate_dir_eisdir", truncate(guest_scratch_buf, 0), EISDIR);
    T("fsync", fsync(fd));
    T("fdatasync", fdatasync(fd));
    E("fsync_ebadf", fsync(-1), EBADF);
    close(fd);
    fd = open(sp("p"), O_RDONLY);
    E("ftruncate_rdonly_einval", ftruncate(fd, 0), EINVAL);
    close(fd);

    /* dup family */
    fd = open(sp("p"), O_RDONLY);
    fd2 = dup(fd);
    T("dup", fd2);
    B("dup_shares_offset", lseek(fd, 3, SEEK_SET) == 3 && lseek(fd2, 0, SEEK_CUR) == 3);
    E("dup_ebadf", dup(-1), EBADF);
    int target = fd2 + 10;
    V("dup2_returns_newfd", dup2(fd, target) - target);
    B("dup2_target_valid", fcntl(target, F_GETFD) == 0);
    V("dup2_same_fd_returns_fd", dup2(fd, fd) - fd);
    E("dup2_ebadf", dup2(-1, target), EBADF);
    E("dup2_same_closed_ebadf", dup2(target + 1, target + 1), EBADF);
    E("dup3_same_fd_einval", dup3(fd, fd, 0), EINVAL);
    E("dup3_bad_flags_einval", dup3(fd, target, 12345), EINVAL);
    V("dup3_cloexec", dup3(fd, target, O_CLOEXEC) - target);
    V("dup3_cloexec_flag", fcntl(target, F_GETFD));
    close(target);
    close(fd2);
    /* Lowest free descriptor is reused. */
    fd2 = dup(fd);
    close(fd2);
    r = dup(fd);
    B("dup_lowest_free", r == fd2);
    close(r);

    /* fcntl */
    V("fcntl_getfd", fcntl(fd, F_GETFD));
    T("fcntl_setfd", fcntl(fd, F_SETFD, FD_CLOEXEC));
    V("fcntl_getfd_after", fcntl(fd, F_GETFD));
    V("fcntl_getfl_accmode", fcntl(fd, F_GETFL) & O_ACCMODE);
    T("fcntl_setfl_nonblock_append", fcntl(fd, F_SETFL, O_NONBLOCK | O_APPEND));
    r = fcntl(fd, F_GETFL);
    B("fcntl_getfl_nonblock", (r & O_NONBLOCK) != 0);
    B("fcntl_getfl_append", (r & O_APPEND) != 0);
    B("fcntl_setfl_keeps_accmode", (r & O_ACCMODE) == O_RDONLY);
    r = fcntl(fd, F_DUPFD, 50);
    B("fcntl_dupfd_at_least_50", r >= 50);
    V("fcntl_dupfd_no_cloexec", fcntl(r, F_GETFD));
    close(r);
    r = fcntl(fd, F_DUPFD_CLOEXEC, 60);
    B("fcntl_dupfd_cloexec_at_least_60", r >= 60);
    V("fcntl_dupfd_cloexec_flag", fcntl(r, F_GETFD));
    close(r);
    E("fcntl_dupfd_negative_einval", fcntl(fd, F_DUPFD, -1), EINVAL);
    E("fcntl_bad_cmd_einval", fcntl(fd, 0x7fff), EINVAL);
    E("fcntl_ebadf", fcntl(-1, F_GETFD), EBADF);
    close(fd);

    /* Write to a file and read it back after reopen, at a larger size. */
    fd = open(sp("big"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    static char blk[70000];
    for (size_t i = 0; i < sizeof blk; i++)
        blk[i] = (char)('a' + i % 26);
    V("write_70000", write(fd, blk, sizeof blk));
    memset(blk, 0, sizeof blk);
    V("pread_70000", pread(fd, blk, sizeof blk, 0));
    int okc = 1;
    for (size_t i = 0; i < sizeof blk; i++)
        if (blk[i] != (char)('a' + i % 26))
            okc = 0;
    B("content_70000", okc);
    close(fd);

    /* O_CLOEXEC at open and O_NOFOLLOW / O_PATH-ish basics. */
    fd = open(f, O_RDONLY | O_CLOEXEC);
    V("open_cloexec_flag", fcntl(fd, F_GETFD));
    close(fd);
    symlink("f", sp("lnk"));
    E("open_nofollow_symlink_eloop", open(sp("lnk"), O_RDONLY | O_NOFOLLOW), ELOOP);
    T("open_through_symlink", fd = open(sp("lnk"), O_RDONLY));
    close(fd);
    E("open_creat_excl_on_symlink_eexist", open(sp("lnk"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    /* Access mode 3 is accepted by Linux (ioctl-only); reading is EBADF. */
    T("open_accmode3", fd = open(f, O_RDWR | O_WRONLY));
    E("read_accmode3_ebadf", read(fd, buf, 1), EBADF);
    if (fd >= 0)
        close(fd);

    guest_cleanup();
    P("done\n");
    return 0;
}
