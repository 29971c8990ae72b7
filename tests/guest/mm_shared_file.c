/* File mappings that share the page cache with read/write: MAP_SHARED
 * writes reach the file, file writes are seen through MAP_SHARED and
 * through not-yet-copied MAP_PRIVATE pages, msync, truncation. */
#include "common.h"
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    long PG = sysconf(_SC_PAGESIZE);
    char buf[64];
    int fd = open(sp("f"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    T("ftruncate", ftruncate(fd, 2 * PG));
    pwrite(fd, "hello", 5, 0);

    char *s = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    T("mmap_shared", s == MAP_FAILED ? -1 : 0);
    char *pv = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    T("mmap_private", pv == MAP_FAILED ? -1 : 0);
    B("shared_sees_content", !memcmp(s, "hello", 5));

    memcpy(s + PG, "world", 5);
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 5, PG);
    P("shared_write_reaches_file %s\n", buf);
    B("private_sees_shared_write_before_cow", !memcmp(pv + PG, "world", 5));

    pwrite(fd, "HELLO", 5, 0);
    B("shared_sees_file_write", !memcmp(s, "HELLO", 5));
    B("private_sees_file_write_before_cow", !memcmp(pv, "HELLO", 5));
    pv[0] = 'p';
    pwrite(fd, "J", 1, 0);
    B("private_after_cow_keeps_own", pv[0] == 'p');
    B("shared_sees_second_write", s[0] == 'J');

    T("msync", msync(s, 2 * PG, MS_SYNC));
    T("msync_async", msync(s, PG, MS_ASYNC));
    E("msync_bad_flags_einval", msync(s, PG, MS_SYNC | MS_ASYNC), EINVAL);
    munmap(s, 2 * PG);
    munmap(pv, 2 * PG);

    memset(buf, 0, sizeof buf);
    pread(fd, buf, 5, PG);
    P("file_after_munmap %s\n", buf);

    /* Two shared mappings of the same file see each other. */
    char *a = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *b = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    a[100] = 'x';
    B("two_shared_maps_coherent", b[100] == 'x');
    munmap(a, PG);
    munmap(b, PG);
    close(fd);

    /* A mapping outlives its descriptor. */
    fd = open(sp("f"), O_RDWR);
    a = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    a[0] = 'Z';
    munmap(a, PG);
    memset(buf, 0, sizeof buf);
    read_file(sp("f"), buf, 2);
    P("write_after_close_reaches_file %s\n", buf);

    /* Shared across fork: the child's writes reach the parent and the file. */
    fd = open(sp("f"), O_RDWR);
    a = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    pid_t pid = fork();
    if (pid == 0) {
        memcpy(a + 8, "child", 5);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    B("fork_child_write_seen", !memcmp(a + 8, "child", 5));
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 5, 8);
    P("fork_child_write_in_file %s\n", buf);
    munmap(a, PG);

    /* Truncation: pages past the new end read back as zeros once the
     * file grows again, and mapped bytes past the end never reach it. */
    a = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    a[PG + 1] = 'q';
    T("ftruncate_shrink", ftruncate(fd, PG));
    T("ftruncate_grow", ftruncate(fd, 2 * PG));
    memset(buf, 1, sizeof buf);
    pread(fd, buf, 2, PG);
    B("truncated_bytes_zero", buf[0] == 0 && buf[1] == 0);
    B("truncated_map_zero", a[PG + 1] == 0);
    T("ftruncate_small", ftruncate(fd, 100));
    a[200] = 'w';
    munmap(a, 2 * PG);
    struct stat st;
    fstat(fd, &st);
    P("size_after_write_past_end %ld\n", (long)st.st_size);
    close(fd);

    /* A read-only descriptor: no writable shared mapping, now or later. */
    fd = open(sp("f"), O_RDONLY);
    E("shared_write_on_rdonly_eacces", mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0,
      EACCES);
    a = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    T("shared_read_on_rdonly", a == MAP_FAILED ? -1 : 0);
    E("mprotect_write_on_rdonly_eacces", mprotect(a, PG, PROT_READ | PROT_WRITE), EACCES);
    b = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    b[0] = 'P';
    B("private_write_on_rdonly_stays", a[0] != 'P');
    munmap(a, PG);
    munmap(b, PG);
    close(fd);

    guest_cleanup();
    P("done\n");
    return 0;
}
