/* copy_file_range: NULL and explicit offsets, EOF clamp, the same file,
 * and the error paths (flags, modes, directories, pipes, overlap,
 * overflow, bad pointers). */
#include "common.h"

static long cfr(int in, loff_t *oi, int out, loff_t *oo, size_t len, unsigned flags)
{
    return syscall(SYS_copy_file_range, in, oi, out, oo, len, flags);
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    char f[4200], g[4200], d[4200];
    snprintf(f, sizeof f, "%s", sp("src"));
    snprintf(g, sizeof g, "%s", sp("dst"));
    snprintf(d, sizeof d, "%s", sp("dir"));
    char buf[256];
    loff_t oi, oo;

    T("write_src", write_file(f, "0123456789abcdefghij", 0644));
    T("mkdir", mkdir(d, 0755));
    int in = open(f, O_RDONLY);
    int out = open(g, O_RDWR | O_CREAT | O_TRUNC, 0644);

    V("copy_positions", cfr(in, NULL, out, NULL, 8, 0));
    V("  in_pos", lseek(in, 0, SEEK_CUR));
    V("  out_pos", lseek(out, 0, SEEK_CUR));
    oi = 10;
    oo = 2;
    V("copy_offsets", cfr(in, &oi, out, &oo, 4, 0));
    V("  oi", oi);
    V("  oo", oo);
    V("  in_pos_kept", lseek(in, 0, SEEK_CUR));
    V("  out_pos_kept", lseek(out, 0, SEEK_CUR));
    oi = 16;
    V("copy_clamped", cfr(in, &oi, out, NULL, 1000, 0));
    V("  oi", oi);
    oi = 20;
    V("copy_at_eof", cfr(in, &oi, out, NULL, 10, 0));
    oi = 100;
    V("copy_past_eof", cfr(in, &oi, out, NULL, 10, 0));
    V("copy_len0", cfr(in, NULL, out, NULL, 0, 0));
    V("pread_out", pread(out, buf, sizeof buf - 1, 0));
    buf[12] = 0;
    P("  out %s\n", buf);
    /* Into a hole past the end. */
    oi = 0;
    oo = 30;
    V("copy_to_hole", cfr(in, &oi, out, &oo, 3, 0));
    struct stat st;
    fstat(out, &st);
    V("  out_size", st.st_size);

    /* Within one file: disjoint is fine, overlapping EINVAL. */
    int rw = open(g, O_RDWR);
    oi = 0;
    oo = 20;
    V("same_file_disjoint", cfr(rw, &oi, rw, &oo, 4, 0));
    oi = 0;
    oo = 2;
    E("same_file_overlap", cfr(rw, &oi, rw, &oo, 4, 0), EINVAL);
    oi = 4;
    oo = 0;
    E("same_file_overlap_back", cfr(rw, &oi, rw, &oo, 8, 0), EINVAL);
    oi = 0;
    oo = 33;
    V("same_file_clamped_no_overlap", cfr(rw, &oi, rw, &oo, 100, 0));

    /* Errors. */
    E("flags", cfr(in, NULL, out, NULL, 4, 1), EINVAL);
    E("bad_fd_in", cfr(999, NULL, out, NULL, 4, 0), EBADF);
    E("bad_fd_out", cfr(in, NULL, 999, NULL, 4, 0), EBADF);
    E("in_writeonly", cfr(open(g, O_WRONLY), NULL, out, NULL, 4, 0), EBADF);
    E("out_readonly", cfr(in, NULL, in, NULL, 4, 0), EBADF);
    int ap = open(g, O_WRONLY | O_APPEND);
    E("out_append", cfr(in, NULL, ap, NULL, 4, 0), EBADF);
    int dfd = open(d, O_RDONLY | O_DIRECTORY);
    E("in_dir", cfr(dfd, NULL, out, NULL, 4, 0), EISDIR);
    int p[2];
    T("pipe", pipe(p));
    T("fill", write(p[1], "abc", 3));
    E("in_pipe", cfr(p[0], NULL, out, NULL, 4, 0), EINVAL);
    E("out_pipe", cfr(in, NULL, p[1], NULL, 4, 0), EINVAL);
    E("bad_off_in", cfr(in, BADPTR, out, NULL, 4, 0), EFAULT);
    E("bad_off_out", cfr(in, NULL, out, BADPTR, 4, 0), EFAULT);
    oi = -1;
    E("neg_off", cfr(in, &oi, out, NULL, 4, 0), EINVAL);
    oi = 0x7ffffffffffffff0LL;
    V("huge_off_at_eof", cfr(in, &oi, out, NULL, 100, 0));
    oi = -100;
    E("neg_off_small", cfr(in, &oi, out, NULL, 4, 0), EINVAL);
    oi = 0;
    oo = -100;
    E("neg_off_out", cfr(in, &oi, out, &oo, 4, 0), EINVAL);
    oi = 0;
    E("len_wraps", cfr(in, &oi, out, NULL, (size_t)-2, 0), EOVERFLOW);
    oi = 0;
    V("len_huge", cfr(in, &oi, out, NULL, (size_t)1 << 62, 0));
    E("flags_before_modes", cfr(p[0], NULL, p[1], NULL, 4, 1), EINVAL);

    close(in);
    close(out);
    guest_cleanup();
    P("done\n");
    return 0;
}
