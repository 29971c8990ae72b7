/* fork is copy-on-write: parent and child each see their own writes to
 * heap, stack, static and mmap'd private pages; MAP_SHARED memory stays
 * shared; forks of forks; the kernel writing into a copy-on-write page
 * (read(2) into a buffer); mprotect, munmap, mremap and MADV_DONTNEED on
 * pages shared after fork. */
#include "common.h"
#include <sys/mman.h>
#include <sys/wait.h>
#include <pthread.h>
#include <fcntl.h>
#include <malloc.h>

#define PG 4096
#define BIG (1 << 20)

/* Larger than the runs fork copies at once (64 KiB), so shared. */
static char statics[96 * PG] = { 1 };
static char zeros[4 * PG];

/* Fill with a pattern depending on `seed`; check it. */
static void fill(char *p, size_t n, int seed)
{
    for (size_t i = 0; i < n; i += 64)
        p[i] = (char)(seed + i / 64);
}

static int check(const char *p, size_t n, int seed)
{
    for (size_t i = 0; i < n; i += 64)
        if (p[i] != (char)(seed + i / 64))
            return 0;
    return 1;
}

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Run `fn` in a child; its stdout lines come before the parent's next. */
static int in_child(void (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        fn(arg);
        fflush(stdout);
        _exit(0);
    }
    int st = -1;
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *heap, *big, *shared;

static void child_writes(void *stackp)
{
    char *stack = stackp;
    B("child_sees_parent_heap", check(heap, 16 * PG, 1));
    B("child_sees_parent_big", check(big, BIG, 2));
    B("child_sees_parent_static", check(statics, sizeof statics, 3));
    B("child_sees_parent_stack", check(stack, 2 * PG, 4));
    fill(heap, 16 * PG, 11);
    fill(big, BIG, 12);
    fill(statics, sizeof statics, 13);
    fill(stack, 2 * PG, 14);
    fill(zeros, sizeof zeros, 15);
    B("child_heap_own", check(heap, 16 * PG, 11));
    B("child_big_own", check(big, BIG, 12));
    B("child_static_own", check(statics, sizeof statics, 13));
    B("child_stack_own", check(stack, 2 * PG, 14));
    B("child_untouched_own", check(zeros, sizeof zeros, 15));
    fill(shared, PG, 16);
}

static void grandchild(void *unused)
{
    (void)unused;
    fill(big, BIG, 32);
    B("grandchild_own", check(big, BIG, 32));
}

static void child_forks(void *unused)
{
    (void)unused;
    fill(big, PG, 31); /* one page of its own before forking again */
    in_child(grandchild, NULL);
    B("child_after_grandchild_first_page", check(big, PG, 31));
    B("child_after_grandchild_rest", check(big + PG, BIG - PG, 2 + PG / 64));
}

static void child_reads(void *unused)
{
    (void)unused;
    int p[2];
    pipe(p);
    static char msg[3 * PG];
    memset(msg, 'r', sizeof msg);
    write(p[1], msg, 2 * PG);
    /* The Sentry writes into pages the parent still shares. */
    long n = read(p[0], big + PG / 2, 2 * PG);
    V("child_read_into_cow", n);
    B("child_read_content", big[PG / 2] == 'r' && big[PG / 2 + 2 * PG - 1] == 'r');
    B("child_read_neighbours_kept", check(big + 4 * PG, BIG - 4 * PG, 2));
    /* pipe(2) stores its fds into a shared heap page. */
    int *fds = (int *)(heap + 3 * PG);
    T("child_pipe_into_heap", pipe(fds));
    B("child_pipe_fds_stored", fds[0] > 2 && fds[1] > 2);
    close(p[0]);
    close(p[1]);
}

static void child_mprotect(void *unused)
{
    (void)unused;
    T("child_mprotect_ro", mprotect(big, 4 * PG, PROT_READ));
    B("child_ro_readable", check(big, 4 * PG, 2));
    T("child_mprotect_rw", mprotect(big, 4 * PG, PROT_READ | PROT_WRITE));
    fill(big, 4 * PG, 41);
    B("child_rw_own", check(big, 4 * PG, 41));
    /* Write-only-then-read-write in the middle of a shared run. */
    T("child_mprotect_split", mprotect(big + 8 * PG, PG, PROT_READ | PROT_WRITE | PROT_EXEC));
    fill(big + 7 * PG, 3 * PG, 42);
    B("child_split_own", check(big + 7 * PG, 3 * PG, 42));
}

static void child_unmaps(void *unused)
{
    (void)unused;
    T("child_munmap_half", munmap(big, BIG / 2));
    B("child_rest_kept", check(big + BIG / 2, BIG / 2, 2 + (BIG / 2) / 64));
    fill(big + BIG / 2, PG, 51);
    B("child_rest_own", check(big + BIG / 2, PG, 51));
}

static void child_dontneed(void *unused)
{
    (void)unused;
    T("child_madv_dontneed", madvise(big, 8 * PG, MADV_DONTNEED));
    B("child_dontneed_zero", all_zero(big, 8 * PG));
    B("child_dontneed_rest_kept", check(big + 8 * PG, BIG - 8 * PG, 2 + (8 * PG) / 64));
    fill(big, PG, 61);
    B("child_dontneed_writable", check(big, PG, 61));
}

static void child_mremap(void *unused)
{
    (void)unused;
    char *m = mremap(big, BIG, 2 * BIG, MREMAP_MAYMOVE);
    B("child_mremap_ok", m != MAP_FAILED);
    if (m == MAP_FAILED)
        return;
    B("child_mremap_content", check(m, BIG, 2));
    fill(m, BIG, 71);
    B("child_mremap_own", check(m, BIG, 71));
    B("child_mremap_grown_zero", all_zero(m + BIG, PG));
}

static volatile int stop_spinning;

static void *spin(void *arg)
{
    volatile long *counter = arg;
    while (!stop_spinning)
        (*counter)++;
    return NULL;
}

static void child_file(void *mp)
{
    char *m = mp;
    B("child_file_sees_parent_write", m[0] == 'P');
    m[0] = 'C';
    m[PG] = 'D';
    B("child_file_own", m[0] == 'C' && m[PG] == 'D');
}

static void child_exits(void *unused)
{
    (void)unused;
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    char stack[2 * PG];

    /* From the brk heap, and larger than what fork copies at once. */
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    heap = malloc(128 * PG);
    big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    shared = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!heap || big == MAP_FAILED || shared == MAP_FAILED)
        return 1;
    fill(heap, 16 * PG, 1);
    fill(big, BIG, 2);
    fill(statics, sizeof statics, 3);
    fill(stack, 2 * PG, 4);

    V("child_status", in_child(child_writes, stack));
    B("parent_heap_kept", check(heap, 16 * PG, 1));
    B("parent_big_kept", check(big, BIG, 2));
    B("parent_static_kept", check(statics, sizeof statics, 3));
    B("parent_stack_kept", check(stack, 2 * PG, 4));
    B("parent_untouched_zero", all_zero(zeros, sizeof zeros));
    B("shared_sees_child_write", check(shared, PG, 16));

    /* The child is gone: the parent's pages are its own again. */
    fill(big, BIG, 5);
    B("parent_writes_after_child", check(big, BIG, 5));
    fill(big, BIG, 2);

    /* Shared memory written by the parent while a child runs. */
    int p[2];
    pipe(p);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char x;
        read(p[0], &x, 1);
        B("shared_child_sees_parent_write", check(shared, PG, 17));
        B("private_child_keeps_old", check(big, PG, 2));
        fflush(stdout);
        _exit(0);
    }
    fill(shared, PG, 17);
    fill(big, PG, 18);
    write(p[1], "x", 1);
    waitpid(c, NULL, 0);
    B("private_parent_own", check(big, PG, 18));
    fill(big, PG, 2);
    close(p[0]);
    close(p[1]);

    V("fork_of_fork_status", in_child(child_forks, NULL));
    B("parent_after_fork_of_fork", check(big, BIG, 2));

    V("read_status", in_child(child_reads, NULL));
    B("parent_after_child_read", check(big, BIG, 2));

    /* The parent's own read into a page it shares with a live child. */
    pipe(p);
    int q[2];
    pipe(q);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        char x;
        read(p[0], &x, 1);
        B("child_sees_pre_read_content", check(big, 4 * PG, 2));
        fflush(stdout);
        _exit(0);
    }
    write(q[1], "abcdefgh", 8);
    T("parent_read_into_shared", read(q[0], big + 100, 8));
    B("parent_read_content", memcmp(big + 100, "abcdefgh", 8) == 0);
    write(p[1], "x", 1);
    waitpid(c, NULL, 0);
    fill(big, BIG, 2);

    V("mprotect_status", in_child(child_mprotect, NULL));
    B("parent_after_child_mprotect", check(big, BIG, 2));

    V("munmap_status", in_child(child_unmaps, NULL));
    B("parent_after_child_munmap", check(big, BIG, 2));

    V("dontneed_status", in_child(child_dontneed, NULL));
    B("parent_after_child_dontneed", check(big, BIG, 2));

    V("mremap_status", in_child(child_mremap, NULL));
    B("parent_after_child_mremap", check(big, BIG, 2));

    /* The parent unmaps its copy while a child still reads it. */
    fflush(stdout);
    c = fork();
    if (c == 0) {
        char x;
        read(p[0], &x, 1);
        B("child_after_parent_munmap", check(big, BIG, 2));
        fflush(stdout);
        _exit(0);
    }
    T("parent_munmap_shared_pages", munmap(big, BIG));
    write(p[1], "x", 1);
    waitpid(c, NULL, 0);

    /* Both sides write: the child copies a page first, then the parent
     * writes that page (its own again) and one still shared. */
    big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fill(big, BIG, 2);
    int r[2];
    pipe(r);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        char x;
        fill(big, PG, 81);
        write(r[1], "c", 1);
        read(p[0], &x, 1);
        B("child_own_first_page", check(big, PG, 81));
        B("child_last_page_kept", check(big + BIG - PG, PG, 2 + (BIG - PG) / 64));
        fflush(stdout);
        _exit(0);
    }
    char x;
    read(r[0], &x, 1);
    fill(big, PG, 82);
    fill(big + BIG - PG, PG, 83);
    write(p[1], "p", 1);
    waitpid(c, NULL, 0);
    B("parent_own_first_page", check(big, PG, 82));
    B("parent_own_last_page", check(big + BIG - PG, PG, 83));
    munmap(big, BIG);

    /* Another thread keeps writing while the process forks: the child's
     * copy does not change after fork returns. */
    long *counter = malloc(sizeof *counter);
    *counter = 0;
    pthread_t th;
    pthread_create(&th, NULL, spin, counter);
    while (*(volatile long *)counter < 1000)
        ;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        long a = *(volatile long *)counter;
        usleep(20000);
        long b = *(volatile long *)counter;
        B("child_counter_frozen", a == b);
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    /* The spinner may be off the CPU for a while on a loaded machine: wait
     * for it to move, up to a deadline far beyond that. */
    long before = *(volatile long *)counter;
    for (int i = 0; i < 20000 && *(volatile long *)counter == before; i++)
        usleep(1000);
    B("parent_counter_moves", *(volatile long *)counter != before);
    stop_spinning = 1;
    pthread_join(th, NULL);

    /* Many forks of a process with touched memory: nothing piles up. */
    big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fill(big, BIG, 2);
    int bad = 0;
    for (int i = 0; i < 100; i++) {
        if (in_child(i % 2 ? child_exits : grandchild, NULL) != 0)
            bad++;
        if (i % 10 == 0)
            fill(big, PG * 16, 2);
    }
    fflush(stdout);
    V("many_forks_failures", bad);
    B("many_forks_content", check(big, BIG, 2));

    /* A private writable file mapping: the file's cached pages until
     * written, then each side's own; the file never changes. */
    {
        /* Larger than what mmap copies from the file cache at once. */
        static char text[80 * PG];
        fill(text, sizeof text, 90);
        const char *path = sp("data");
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        write(fd, text, sizeof text);
        char *m = mmap(NULL, sizeof text, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        B("file_private_mapped", m != MAP_FAILED);
        B("file_private_content", check(m, sizeof text, 90));
        m[0] = 'P';
        V("file_private_child", in_child(child_file, m));
        B("file_private_parent_kept", m[0] == 'P' && m[PG] == text[PG]);
        m[PG] = 'Q';
        char back[2];
        pread(fd, back, 1, 0);
        pread(fd, back + 1, 1, PG);
        B("file_unchanged", back[0] == text[0] && back[1] == text[PG]);
        char *ro = mmap(NULL, sizeof text, PROT_READ, MAP_PRIVATE, fd, 0);
        B("file_other_mapping_clean", ro != MAP_FAILED && check(ro, sizeof text, 90));
        T("file_ro_mprotect_rw", mprotect(ro, PG, PROT_READ | PROT_WRITE));
        ro[1] = 'R';
        B("file_ro_now_own", ro[1] == 'R' && m[1] == text[1]);
        close(fd);
    }

    guest_cleanup();
    P("done\n");
    return 0;
}
