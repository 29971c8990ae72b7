/* Memory advice and the newer mapping calls: madvise (DONTNEED, FREE,
 * DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK, REMOVE and the error paths),
 * MAP_FIXED_NOREPLACE, mremap MREMAP_FIXED and MREMAP_DONTUNMAP, mincore,
 * msync of shared file mappings, and the mlock family with VmLck. */
#include "common.h"
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#define MADV_KEEPONFORK 19
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

#define PG 4096

static char *anon(size_t len, int flags)
{
    return mmap(NULL, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
}

/* The child's view of `p[0]`: its value, or -1 if reading faults. */
static int child_reads(volatile char *p)
{
    int fds[2];
    pipe(fds);
    pid_t c = fork();
    if (c == 0) {
        close(fds[0]);
        char v = p[0];
        write(fds[1], &v, 1);
        _exit(0);
    }
    close(fds[1]);
    char v;
    int n = read(fds[0], &v, 1);
    close(fds[0]);
    int st;
    waitpid(c, &st, 0);
    if (n != 1)
        return WIFSIGNALED(st) ? 200 + WTERMSIG(st) : 300;
    return v;
}

static long vmlck(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

int main(void)
{
    guest_init();

    /* madvise: errors. */
    char *p = anon(4 * PG, MAP_PRIVATE);
    E("madv_unaligned", madvise(p + 1, PG, MADV_DONTNEED), EINVAL);
    E("madv_bad_advice", madvise(p, PG, 1234), EINVAL);
    E("madv_bad_advice_neg", madvise(p, PG, -1), EINVAL);
    T("madv_len0", madvise(p, 0, MADV_DONTNEED));
    T("madv_normal", madvise(p, PG, MADV_NORMAL));
    T("madv_willneed", madvise(p, PG, MADV_WILLNEED));
    T("madv_random", madvise(p, PG, MADV_RANDOM));
    T("madv_sequential", madvise(p, PG, MADV_SEQUENTIAL));
    E("madv_overflow", madvise(p, (size_t)-PG, MADV_DONTNEED), EINVAL);
    char *hole = anon(3 * PG, MAP_PRIVATE);
    munmap(hole + PG, PG);
    E("madv_hole", madvise(hole, 3 * PG, MADV_DONTNEED), ENOMEM);
    E("madv_unmapped", madvise(hole + PG, PG, MADV_NORMAL), ENOMEM);
    E("madv_unmapped_willneed", madvise(hole + PG, PG, MADV_WILLNEED), ENOMEM);

    /* DONTNEED: private anonymous memory reads back as zeros. */
    memset(p, 'a', 4 * PG);
    T("dontneed", madvise(p + PG, PG, MADV_DONTNEED));
    V("dontneed_zeroed", p[PG]);
    V("dontneed_neighbour", p[0]);
    V("dontneed_after", p[2 * PG]);
    /* ... while shared memory keeps its data. */
    char *sh = anon(2 * PG, MAP_SHARED);
    memset(sh, 's', 2 * PG);
    T("dontneed_shared", madvise(sh, PG, MADV_DONTNEED));
    V("dontneed_shared_kept", sh[0]);
    /* FREE: private anonymous only. */
    T("free", madvise(p, PG, MADV_FREE));
    E("free_shared", madvise(sh, PG, MADV_FREE), EINVAL);
    p[0] = 'b';
    V("free_rewritten", p[0]);

    /* DONTNEED on a private file mapping: the file's bytes again, small
     * (copied when mapped) and large (copy-on-write) alike. */
    char path[] = "/tmp/madvXXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    char buf[2 * PG];
    memset(buf, 'f', sizeof buf);
    write(fd, buf, sizeof buf);
    char *fp = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    fp[0] = 'x';
    T("dontneed_file", madvise(fp, 2 * PG, MADV_DONTNEED));
    V("dontneed_file_reread", fp[0]);
    fp[PG] = 'y';
    T("dontneed_file_one_page", madvise(fp + PG, PG, MADV_DONTNEED));
    V("dontneed_file_one_page_reread", fp[PG]);
    static char big[512 * 1024];
    memset(big, 'B', sizeof big);
    char bpath[] = "/tmp/madvbigXXXXXX";
    int bfd = mkstemp(bpath);
    unlink(bpath);
    write(bfd, big, sizeof big);
    char *bp = mmap(NULL, sizeof big, PROT_READ | PROT_WRITE, MAP_PRIVATE, bfd, 0);
    bp[0] = 'x';
    bp[300 * 1024] = 'x';
    T("dontneed_bigfile", madvise(bp, sizeof big, MADV_DONTNEED));
    V("dontneed_bigfile_reread", bp[0]);
    V("dontneed_bigfile_reread2", bp[300 * 1024]);
    /* Past the end of the file: a partial last page. */
    ftruncate(bfd, sizeof big - 100);
    char *tp = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, bfd, sizeof big - PG);
    tp[PG - 100] = 'q';
    tp[PG - 101] = 'q';
    T("dontneed_tail", madvise(tp, PG, MADV_DONTNEED));
    V("dontneed_tail_zero", tp[PG - 100]);
    V("dontneed_tail_data", tp[PG - 101]);

    /* DONTFORK: the range is absent in a child; DOFORK brings it back. */
    p[0] = 'c';
    T("dontfork", madvise(p, PG, MADV_DONTFORK));
    V("dontfork_child", child_reads(p));
    V("dontfork_child_next_page", child_reads(p + PG));
    T("dofork", madvise(p, PG, MADV_DOFORK));
    V("dofork_child", child_reads(p));

    /* WIPEONFORK: the child sees zeros; private anonymous only. */
    T("wipeonfork", madvise(p, PG, MADV_WIPEONFORK));
    V("wipeonfork_child", child_reads(p));
    V("wipeonfork_parent", p[0]);
    T("keeponfork", madvise(p, PG, MADV_KEEPONFORK));
    V("keeponfork_child", child_reads(p));
    E("wipeonfork_shared", madvise(sh, PG, MADV_WIPEONFORK), EINVAL);
    E("wipeonfork_file", madvise(fp, PG, MADV_WIPEONFORK), EINVAL);

    /* REMOVE: punches shared memory; private mappings are EINVAL. */
    T("remove_shared", madvise(sh, PG, MADV_REMOVE));
    V("remove_shared_zero", sh[0]);
    V("remove_shared_next", sh[PG]);
    E("remove_private", madvise(p, PG, MADV_REMOVE), EINVAL);
    /* MAP_FIXED_NOREPLACE. */
    char *q = mmap(p, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    E("noreplace_taken", q == MAP_FAILED ? -1 : 0, EEXIST);
    V("noreplace_kept", p[0]);
    q = mmap(hole + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    B("noreplace_free", q == hole + PG);
    q = mmap(hole + PG + 1, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    E("noreplace_unaligned", q == MAP_FAILED ? -1 : 0, EINVAL);
    munmap(hole + 2 * PG, PG);
    q = mmap(hole + PG, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    E("noreplace_partial", q == MAP_FAILED ? -1 : 0, EEXIST);

    /* mremap. */
    char *r = anon(2 * PG, MAP_PRIVATE);
    memset(r, 'r', 2 * PG);
    char *dst = anon(2 * PG, MAP_PRIVATE);
    E("mremap_fixed_nomaymove", mremap(r, 2 * PG, 2 * PG, MREMAP_FIXED, dst) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mremap_fixed_unaligned", mremap(r, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst + 1) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mremap_fixed_overlap", mremap(r, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, r + PG) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mremap_bad_flags", mremap(r, 2 * PG, 2 * PG, 64) == MAP_FAILED ? -1 : 0, EINVAL);
    E("mremap_unaligned", mremap(r + 1, PG, PG, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    char *moved = mremap(r, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    B("mremap_fixed_at", moved == dst);
    V("mremap_fixed_data", dst[PG]);
    V("mremap_fixed_old_gone", child_reads(r));
    E("dontunmap_nomaymove", mremap(dst, 2 * PG, 2 * PG, MREMAP_DONTUNMAP) == MAP_FAILED ? -1 : 0, EINVAL);
    E("dontunmap_resize", mremap(dst, 2 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP) == MAP_FAILED ? -1 : 0, EINVAL);
    /* (A successful MREMAP_DONTUNMAP is not compared: this host's kernel
     * refuses it with EINVAL even for private anonymous memory.) */

    /* mincore. */
    char *m = anon(4 * PG, MAP_PRIVATE);
    unsigned char vec[4] = { 9, 9, 9, 9 };
    m[PG] = 1;
    m[3 * PG] = 1;
    T("mincore", mincore(m, 4 * PG, vec));
    printf("mincore_vec %d%d%d%d\n", vec[0] & 1, vec[1] & 1, vec[2] & 1, vec[3] & 1);
    madvise(m + PG, PG, MADV_DONTNEED);
    mincore(m, 4 * PG, vec);
    printf("mincore_after_dontneed %d%d%d%d\n", vec[0] & 1, vec[1] & 1, vec[2] & 1, vec[3] & 1);
    E("mincore_unaligned", mincore(m + 1, PG, vec), EINVAL);
    E("mincore_unmapped", mincore(hole + 2 * PG, PG, vec), ENOMEM);
    E("mincore_badvec", mincore(m, PG, (unsigned char *)8), EFAULT);
    T("mincore_len0", mincore(m, 0, vec));

    /* msync. */
    char *fs = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    fs[10] = 'Z';
    T("msync_sync", msync(fs, 2 * PG, MS_SYNC));
    char got = 0;
    pread(fd, &got, 1, 10);
    V("msync_file_byte", got);
    fs[11] = 'Y';
    T("msync_async", msync(fs, PG, MS_ASYNC));
    T("msync_invalidate", msync(fs, PG, MS_INVALIDATE));
    E("msync_both", msync(fs, PG, MS_SYNC | MS_ASYNC), EINVAL);
    E("msync_badflag", msync(fs, PG, 8), EINVAL);
    E("msync_unaligned", msync(fs + 1, PG, MS_SYNC), EINVAL);
    E("msync_unmapped", msync(hole + 2 * PG, PG, MS_SYNC), ENOMEM);
    T("msync_len0", msync(fs, 0, MS_SYNC));
    T("msync_mlock", mlock(fs + PG, PG));
    E("msync_invalidate_locked", msync(fs, 2 * PG, MS_INVALIDATE), EBUSY);
    E("msync_invalidate_locked_hole", msync(fs + PG, 2 * PG, MS_INVALIDATE | MS_SYNC), EBUSY);
    T("msync_sync_locked", msync(fs, 2 * PG, MS_SYNC));
    T("msync_munlock", munlock(fs + PG, PG));
    T("msync_invalidate_unlocked", msync(fs, 2 * PG, MS_INVALIDATE));
    pread(fd, &got, 1, 11);
    V("msync_file_byte2", got);

    /* mlock family. */
    char *l = anon(4 * PG, MAP_PRIVATE);
    V("vmlck_start", vmlck());
    T("mlock", mlock(l, 2 * PG));
    V("vmlck_mlock", vmlck());
    T("mlock_unaligned", mlock(l + 1, PG));
    E("mlock_unmapped", mlock(hole + 2 * PG, PG), ENOMEM);
    T("munlock", munlock(l, 2 * PG));
    V("vmlck_munlock", vmlck());
    T("mlock2_onfault", syscall(SYS_mlock2, l, 4 * PG, MLOCK_ONFAULT));
    V("vmlck_mlock2", vmlck());
    E("mlock2_badflag", syscall(SYS_mlock2, l, PG, 2), EINVAL);
    T("munlock_all_of_it", munlock(l, 4 * PG));
    E("munlock_unmapped", munlock(hole + 2 * PG, PG), ENOMEM);
    E("mlockall_zero", mlockall(0), EINVAL);
    E("mlockall_onfault_alone", mlockall(MCL_ONFAULT), EINVAL);
    E("mlockall_bad", mlockall(8), EINVAL);
    T("mlockall_current", mlockall(MCL_CURRENT));
    B("vmlck_mlockall_nonzero", vmlck() > 0);
    T("munlockall", munlockall());
    V("vmlck_munlockall", vmlck());
    T("mlockall_future", mlockall(MCL_FUTURE | MCL_ONFAULT));
    V("vmlck_future_before", vmlck());
    char *fut = anon(2 * PG, MAP_PRIVATE);
    V("vmlck_future_after", vmlck());
    munmap(fut, 2 * PG);
    T("munlockall2", munlockall());
    V("vmlck_end", vmlck());
    /* An unprivileged process within RLIMIT_MEMLOCK. */
    pid_t c = fork();
    if (c == 0) {
        struct rlimit rl = { 2 * PG, 2 * PG };
        setrlimit(RLIMIT_MEMLOCK, &rl);
        setresuid(54321, 54321, 54321);
        T("unpriv_mlock_within", mlock(l, 2 * PG));
        E("unpriv_mlock_over", mlock(l, 4 * PG), ENOMEM);
        T("unpriv_munlock", munlock(l, 4 * PG));
        E("unpriv_mlockall", mlockall(MCL_CURRENT), ENOMEM);
        rl.rlim_cur = rl.rlim_max = 0;
        setrlimit(RLIMIT_MEMLOCK, &rl);
        E("unpriv_mlock_nolimit", mlock(l, PG), EPERM);
        E("unpriv_mlockall_nolimit", mlockall(MCL_CURRENT), EPERM);
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    /* REMOVE on a shared file mapping: the file reads zeros there. */
    char rpath[] = "/tmp/madvremXXXXXX";
    int rfd = mkstemp(rpath);
    unlink(rpath);
    write(rfd, buf, sizeof buf);
    char *rm = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
    T("remove_file", madvise(rm, PG, MADV_REMOVE));
    V("remove_file_map_zero", rm[0]);
    V("remove_file_map_next", rm[PG]);
    char rb = 1;
    pread(rfd, &rb, 1, 0);
    V("remove_file_read_zero", rb);
    pread(rfd, &rb, 1, PG);
    V("remove_file_read_next", rb);
    struct stat rst;
    fstat(rfd, &rst);
    V("remove_file_size", rst.st_size);
    /* Read-only, but of a descriptor open for writing: allowed. */
    char *rro = mmap(NULL, PG, PROT_READ, MAP_SHARED, rfd, 0);
    T("remove_file_readonly_map", madvise(rro, PG, MADV_REMOVE));
    int rdo = open("/proc/self/exe", O_RDONLY);
    char *rx = mmap(NULL, PG, PROT_READ, MAP_SHARED, rdo, 0);
    E("remove_file_readonly_fd", madvise(rx, PG, MADV_REMOVE), EACCES);

    /* MAP_GROWSDOWN: a fault below the mapping grows it, within
     * RLIMIT_STACK (8 MiB here). Placed at the top of a free 16 MiB so
     * that no other mapping is near below. */
    char *resv = mmap(NULL, 16 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(resv, 16 << 20);
    char *g = mmap(resv + (12 << 20), 4 * PG, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
    B("growsdown_mapped", g == resv + (12 << 20));
    g[0] = 'g';
    for (int k = 0; k < 4; k++) {
        static const long below[] = { 1, 16, 256 * 4, 9 * 256 * 4 };
        static const char *names[] = { "growsdown_page_below", "growsdown_16_below", "growsdown_4m_below",
                                       "growsdown_past_rlimit" };
        c = fork();
        if (c == 0) {
            volatile char *at = g - below[k] * PG;
            *at = 'h';
            _exit(*at == 'h' && g[0] == 'g' ? 0 : 1);
        }
        int st;
        waitpid(c, &st, 0);
        printf("%s %s\n", names[k], WIFEXITED(st) ? (WEXITSTATUS(st) ? "wrong" : "grew") : WTERMSIG(st) == SIGSEGV ? "SIGSEGV" : "other");
    }
    char *plain = mmap(resv + (1 << 20), 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    V("plain_below_parent", child_reads(plain - PG));
    printf("done\n");
    return 0;
}
