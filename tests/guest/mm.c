/* Memory management without signals: mmap (anonymous private/shared,
 * file-backed private), MAP_FIXED, munmap, mprotect, mremap, brk/sbrk,
 * madvise, and the EINVAL/ENOMEM/EBADF/EACCES paths. Nothing here touches
 * memory that is not mapped and accessible (that is mm_segv's job). */
#include "common.h"
#include <sys/mman.h>

static long PG;

static int all_equal(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    PG = sysconf(_SC_PAGESIZE);
    V("page_size", PG);
    char f[4200], buf[256];
    snprintf(f, sizeof f, "%s", sp("data"));
    unsigned char *p, *q;
    int fd;

    /* Anonymous private */
    p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    T("mmap_anon_private", p == MAP_FAILED ? -1 : 0);
    B("mmap_anon_page_aligned", ((uintptr_t)p % PG) == 0);
    B("mmap_anon_zeroed", all_equal(p, 4 * PG, 0));
    memset(p, 0xab, 4 * PG);
    B("mmap_anon_write_read", all_equal(p, 4 * PG, 0xab));

    /* madvise(DONTNEED) on private anonymous memory gives zeros back. */
    T("madvise_dontneed", madvise(p + PG, PG, MADV_DONTNEED));
    B("madvise_dontneed_zeroes", all_equal(p + PG, PG, 0) && all_equal(p, PG, 0xab));
    T("madvise_willneed", madvise(p, PG, MADV_WILLNEED));
    E("madvise_unaligned_einval", madvise(p + 1, PG, MADV_DONTNEED), EINVAL);
    E("madvise_bad_advice_einval", madvise(p, PG, 12345), EINVAL);

    /* munmap part of it; the rest stays usable. */
    T("munmap_middle", munmap(p + PG, PG));
    B("munmap_middle_rest_intact", all_equal(p, PG, 0xab) && all_equal(p + 2 * PG, 2 * PG, 0xab));
    T("munmap_already_unmapped_ok", munmap(p + PG, PG));
    /* MAP_FIXED into the hole */
    q = mmap(p + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    B("mmap_fixed_at_address", q == p + PG);
    B("mmap_fixed_zeroed", all_equal(q, PG, 0));
    /* MAP_FIXED over existing memory replaces it. */
    q = mmap(p + 2 * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    B("mmap_fixed_replaces", q == p + 2 * PG && all_equal(q, PG, 0) && all_equal(p + 3 * PG, PG, 0xab));
    E("mmap_fixed_unaligned_einval", mmap(p + 1, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    T("munmap_all", munmap(p, 4 * PG));

    /* Anonymous shared */
    p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    T("mmap_anon_shared", p == MAP_FAILED ? -1 : 0);
    B("mmap_anon_shared_zeroed", all_equal(p, 2 * PG, 0));
    memset(p, 7, 2 * PG);
    B("mmap_anon_shared_rw", all_equal(p, 2 * PG, 7));
    T("msync_anon_shared", msync(p, 2 * PG, MS_SYNC));
    E("msync_unaligned_einval", msync(p + 1, PG, MS_SYNC), EINVAL);
    munmap(p, 2 * PG);

    /* PROT_NONE then mprotect to read-write. */
    p = mmap(NULL, 3 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    T("mmap_prot_none", p == MAP_FAILED ? -1 : 0);
    T("mprotect_rw", mprotect(p, 3 * PG, PROT_READ | PROT_WRITE));
    memset(p, 1, 3 * PG);
    B("mprotect_rw_usable", all_equal(p, 3 * PG, 1));
    T("mprotect_ro_middle", mprotect(p + PG, PG, PROT_READ));
    B("mprotect_ro_readable", all_equal(p + PG, PG, 1));
    T("mprotect_rw_again", mprotect(p + PG, PG, PROT_READ | PROT_WRITE));
    p[PG] = 2;
    B("mprotect_rw_again_writable", p[PG] == 2);
    E("mprotect_unaligned_einval", mprotect(p + 1, PG, PROT_READ), EINVAL);
    E("mprotect_bad_prot_einval", mprotect(p, PG, 0x100), EINVAL);
    munmap(p, 3 * PG);
    E("mprotect_unmapped_enomem", mprotect(p, PG, PROT_READ), ENOMEM);

    /* File-backed private mapping. */
    fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < 3000; i++)
        buf[i % 256] = (char)('A' + i % 26), (i % 256 == 255) ? (void)write(fd, buf, 256) : (void)0;
    write(fd, buf, 3000 % 256);
    struct stat st;
    fstat(fd, &st);
    V("file_size", st.st_size);
    p = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    T("mmap_file_private", p == MAP_FAILED ? -1 : 0);
    int same = 1;
    for (int i = 0; i < 3000; i++)
        if (p[i] != 'A' + i % 26)
            same = 0;
    B("mmap_file_content", same);
    B("mmap_file_tail_of_page_zero", all_equal(p + 3000, PG - 3000, 0));
    munmap(p, 2 * PG);
    p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    p[0] = 'z';
    pread(fd, buf, 1, 0);
    B("mmap_private_write_not_in_file", buf[0] == 'A');
    B("mmap_private_write_visible", p[0] == 'z');
    /* A write to the file after a private page was copied is not seen. */
    pwrite(fd, "Q", 1, 0);
    B("mmap_private_cow_page_kept", p[0] == 'z');
    munmap(p, PG);
    /* Offset mapping */
    p = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    B("mmap_fresh_sees_file_write", p[0] == 'Q');
    munmap(p, PG);
    ftruncate(fd, 3 * PG);
    pwrite(fd, "page2", 5, 2 * PG);
    p = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 2 * PG);
    B("mmap_file_offset", p != MAP_FAILED && !memcmp(p, "page2", 5));
    munmap(p, PG);
    E("mmap_file_unaligned_offset_einval", mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 100) == MAP_FAILED ? -1 : 0, EINVAL);
    close(fd);

    /* Mapping errors */
    E("mmap_len0_einval", mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mmap_no_type_einval", mmap(NULL, PG, PROT_READ, MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mmap_both_types_einval", mmap(NULL, PG, PROT_READ, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mmap_huge_enomem", mmap(NULL, 1UL << 47, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED ? -1 : 0, ENOMEM);
    E("mmap_overflow_len_enomem", mmap(NULL, (size_t)-PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0, ENOMEM);
    E("mmap_badfd_ebadf", mmap(NULL, PG, PROT_READ, MAP_PRIVATE, 9999, 0) == MAP_FAILED ? -1 : 0, EBADF);
    fd = open(f, O_WRONLY);
    E("mmap_wronly_fd_eacces", mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED ? -1 : 0, EACCES);
    close(fd);
    fd = open(f, O_RDONLY);
    E("mmap_shared_write_on_rdonly_fd_eacces", mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0, EACCES);
    p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    T("mmap_private_write_on_rdonly_fd_ok", p == MAP_FAILED ? -1 : 0);
    munmap(p, PG);
    close(fd);
    fd = open(guest_scratch_buf, O_RDONLY | O_DIRECTORY);
    E("mmap_directory_enodev", mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED ? -1 : 0, ENODEV);
    close(fd);
    E("munmap_unaligned_einval", munmap((void *)(PG + 1), PG), EINVAL);
    E("munmap_len0_einval", munmap((void *)(16 * PG), 0), EINVAL);

    /* mremap */
    p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 9, 2 * PG);
    q = mremap(p, 2 * PG, PG, 0);
    B("mremap_shrink_in_place", q == p);
    B("mremap_shrink_content", all_equal(q, PG, 9));
    /* Grow without MAYMOVE fails when the next page is taken. */
    unsigned char *blocker = mmap(p + PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    B("blocker_mapped", blocker == p + PG);
    E("mremap_grow_blocked_enomem", mremap(p, PG, 4 * PG, 0) == MAP_FAILED ? -1 : 0, ENOMEM);
    q = mremap(p, PG, 4 * PG, MREMAP_MAYMOVE);
    T("mremap_grow_maymove", q == MAP_FAILED ? -1 : 0);
    B("mremap_moved", q != p);
    B("mremap_grow_content_kept", all_equal(q, PG, 9));
    B("mremap_grow_new_part_zero", all_equal(q + PG, 3 * PG, 0));
    memset(q + PG, 5, 3 * PG);
    B("mremap_grow_new_part_writable", all_equal(q + PG, 3 * PG, 5));
    munmap(blocker, PG);
    /* MREMAP_FIXED to a chosen place. */
    unsigned char *dst = mmap(NULL, 8 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *r = mremap(q, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst + 2 * PG);
    B("mremap_fixed_at_address", r == dst + 2 * PG);
    B("mremap_fixed_content", r != MAP_FAILED && all_equal(r, PG, 9) && all_equal(r + PG, 3 * PG, 5));
    if (r != MAP_FAILED)
        munmap(r, 4 * PG);
    munmap(dst, 8 * PG);
    /* Error paths, on a fresh mapping so they do not depend on the above. */
    unsigned char *e = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    E("mremap_fixed_without_maymove_einval", mremap(e, PG, PG, MREMAP_FIXED, e + PG) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mremap_unaligned_einval", mremap(e + 1, PG, 2 * PG, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mremap_new_size0_einval", mremap(e, PG, 0, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mremap_bad_flags_einval", mremap(e, PG, PG, 0x80) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mremap_fixed_overlap_einval", mremap(e, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, e + PG) == MAP_FAILED ? -1 : 0, EINVAL);
    munmap(e, 2 * PG);
    E("mremap_unmapped_efault", mremap(e, PG, 2 * PG, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0, EFAULT);

    /* brk / sbrk */
    void *b0 = sbrk(0);
    T("sbrk0", b0 == (void *)-1 ? -1 : 0);
    void *cur = (void *)syscall(SYS_brk, 0);
    B("brk0_equals_sbrk0", cur == b0);
    void *grown = (void *)syscall(SYS_brk, (char *)cur + 10 * PG);
    B("brk_grow", grown == (char *)cur + 10 * PG);
    B("brk_grown_zero", all_equal((unsigned char *)cur, 10 * PG, 0));
    memset(cur, 3, 10 * PG);
    B("brk_grown_writable", all_equal((unsigned char *)cur, 10 * PG, 3));
    void *shrunk = (void *)syscall(SYS_brk, (char *)cur + 2 * PG);
    B("brk_shrink", shrunk == (char *)cur + 2 * PG);
    void *regrown = (void *)syscall(SYS_brk, (char *)cur + 4 * PG);
    B("brk_regrow_zeroes_released_pages", regrown == (char *)cur + 4 * PG && all_equal((unsigned char *)cur + 2 * PG, 2 * PG, 0));
    void *low = (void *)syscall(SYS_brk, (void *)PG);
    B("brk_below_start_unchanged", low == regrown);
    void *huge = (void *)syscall(SYS_brk, (char *)cur + (1UL << 46));
    B("brk_huge_unchanged", huge == regrown);
    syscall(SYS_brk, cur);
    void *m = malloc(1 << 20);
    B("malloc_1m", m != NULL);
    memset(m, 1, 1 << 20);
    free(m);

    /* Many small mappings and unmappings. */
    int ok = 1;
    for (int i = 0; i < 200; i++) {
        unsigned char *t = mmap(NULL, PG * (1 + i % 4), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (t == MAP_FAILED) {
            ok = 0;
            break;
        }
        t[0] = (unsigned char)i;
        if (t[0] != (unsigned char)i)
            ok = 0;
        if (munmap(t, PG * (1 + i % 4)) != 0)
            ok = 0;
    }
    B("mmap_munmap_200", ok);

    /* A private read-only file mapping made writable gets its own copy:
     * the file and a second mapping of it keep the original bytes. */
    {
        char cpath[4200];
        snprintf(cpath, sizeof cpath, "%s/cow_file", guest_scratch_buf);
        int cf = open(cpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
        char page[4096];
        memset(page, 'a', sizeof page);
        write(cf, page, sizeof page);
        unsigned char *m1 = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, cf, 0);
        unsigned char *m2 = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, cf, 0);
        T("cow_mprotect_rw", mprotect(m1, 4096, PROT_READ | PROT_WRITE));
        m1[0] = 'Z';
        B("cow_write_seen", m1[0] == 'Z');
        B("cow_other_mapping_kept", m2[0] == 'a');
        char c = 0;
        pread(cf, &c, 1, 0);
        B("cow_file_kept", c == 'a');
        unsigned char *m3 = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, cf, 0);
        B("cow_new_mapping_kept", m3[0] == 'a');
        /* A write through the fd shows in new mappings. */
        pwrite(cf, "b", 1, 0);
        unsigned char *m4 = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, cf, 0);
        B("file_write_seen_by_new_mapping", m4[0] == 'b');
        munmap(m1, 4096);
        munmap(m2, 4096);
        munmap(m3, 4096);
        munmap(m4, 4096);
        close(cf);
        unlink(cpath);
    }
    guest_cleanup();
    P("done\n");
    return 0;
}
