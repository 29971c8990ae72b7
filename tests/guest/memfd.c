/* memfd_create and file seals: flags, names, /proc/self/fd, shared
 * mappings (across fork too), F_ADD_SEALS/F_GET_SEALS and every seal's
 * effect on write, truncate, fallocate and mmap, with the error paths. */
#include "common.h"
#include <sys/mman.h>
#include <sys/wait.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x8U
#define MFD_EXEC 0x10U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x10
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x20
#endif

static long mfd(const char *name, unsigned flags)
{
    return syscall(SYS_memfd_create, name, flags);
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    umask(022);
    char link[64], target[300];
    struct stat st;

    int fd = mfd("hello", MFD_CLOEXEC);
    T("create", fd);
    V("cloexec", fcntl(fd, F_GETFD));
    V("getfl_acc", fcntl(fd, F_GETFL) & O_ACCMODE);
    T("fstat", fstat(fd, &st));
    P("  mode=%o nlink=%ld size=%ld\n", st.st_mode, (long)st.st_nlink, (long)st.st_size);
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    long n = readlink(link, target, sizeof target - 1);
    if (n >= 0)
        target[n] = 0;
    P("  link %s\n", n >= 0 ? target : "error");
    V("seals_default", fcntl(fd, F_GET_SEALS));
    E("add_seal_not_allowed", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EPERM);
    V("write", write(fd, "memfd data", 10));
    V("pread", pread(fd, target, 20, 0));
    T("ftruncate", ftruncate(fd, 8192));
    fstat(fd, &st);
    V("  size", st.st_size);
    int re = open(link, O_RDWR);
    T("reopen_via_proc", re);
    V("  reopen_read", pread(re, target, 6, 0));
    close(re);

    /* Shared mapping, seen by read(2) and by a forked child. */
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    B("mmap_shared", m != MAP_FAILED);
    memcpy(m, "MAPPED", 6);
    V("read_sees_map", pread(fd, target, 6, 0));
    target[6] = 0;
    P("  got %s\n", target);
    pid_t pid = fork();
    if (pid == 0) {
        memcpy(m + 4096, "child", 5);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    B("child_write_seen", memcmp(m + 4096, "child", 5) == 0);
    V("pread_child", pread(fd, target, 5, 4096));
    munmap(m, 8192);

    /* Sealing. */
    int s = mfd("sealed", MFD_ALLOW_SEALING);
    T("create_sealable", s);
    V("seals_none", fcntl(s, F_GET_SEALS));
    V("fill", write(s, "0123456789", 10));
    char *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    B("mmap_writable", w != MAP_FAILED);
    E("seal_write_busy", fcntl(s, F_ADD_SEALS, F_SEAL_WRITE), EBUSY);
    munmap(w, 4096);
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, s, 0);
    B("mmap_readonly", ro != MAP_FAILED);
    T("seal_shrink", fcntl(s, F_ADD_SEALS, F_SEAL_SHRINK));
    E("shrink_sealed", ftruncate(s, 5), EPERM);
    T("grow_ok", ftruncate(s, 20));
    T("seal_grow", fcntl(s, F_ADD_SEALS, F_SEAL_GROW));
    E("grow_sealed", ftruncate(s, 30), EPERM);
    T("same_size_ok", ftruncate(s, 20));
    E("write_past_end", pwrite(s, "abc", 3, 19), EPERM);
    V("write_inside", pwrite(s, "abc", 3, 2));
    E("fallocate_grow", fallocate(s, 0, 0, 100), EPERM);
    T("fallocate_inside", fallocate(s, 0, 0, 10));
    /* A read-only shared mapping of a writable descriptor may still be
     * made writable: it blocks F_SEAL_WRITE too. */
    E("seal_write_busy_ro_map", fcntl(s, F_ADD_SEALS, F_SEAL_WRITE), EBUSY);
    munmap(ro, 4096);
    T("seal_write", fcntl(s, F_ADD_SEALS, F_SEAL_WRITE));
    E("write_sealed", write(s, "x", 1), EPERM);
    E("pwrite_sealed", pwrite(s, "x", 1, 0), EPERM);
    void *m2 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    E("mmap_write_sealed", m2 == MAP_FAILED ? -1 : 0, EPERM);
    void *m3 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, s, 0);
    B("mmap_private_ok", m3 != MAP_FAILED);
    void *m4 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, s, 0);
    B("mmap_shared_ro_ok", m4 != MAP_FAILED);
    E("mprotect_write_sealed", mprotect(m4, 4096, PROT_READ | PROT_WRITE), EACCES);
    V("read_still", pread(s, target, 10, 0));
    V("seals_now", fcntl(s, F_GET_SEALS));
    T("seal_seal", fcntl(s, F_ADD_SEALS, F_SEAL_SEAL));
    E("add_after_seal", fcntl(s, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), EPERM);
    V("seals_final", fcntl(s, F_GET_SEALS));

    /* F_SEAL_FUTURE_WRITE: new writes and writable mappings refused. */
    int fw = mfd("future", MFD_ALLOW_SEALING);
    V("fw_fill", write(fw, "abcdef", 6));
    T("seal_future_write", fcntl(fw, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
    E("fw_write", write(fw, "x", 1), EPERM);
    void *m5 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fw, 0);
    E("fw_mmap_write", m5 == MAP_FAILED ? -1 : 0, EPERM);
    void *m6 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fw, 0);
    B("fw_mmap_ro", m6 != MAP_FAILED);
    E("fw_mprotect_write", mprotect(m6, 4096, PROT_READ | PROT_WRITE), EACCES);
    T("fw_truncate_grow", ftruncate(fw, 100));

    /* MFD_NOEXEC_SEAL: sealable, not executable, F_SEAL_EXEC. */
    int ne = mfd("noexec", MFD_NOEXEC_SEAL);
    T("create_noexec", ne);
    fstat(ne, &st);
    P("  mode=%o\n", st.st_mode);
    V("  seals", fcntl(ne, F_GET_SEALS));
    E("  chmod_x", fchmod(ne, 0755), EPERM);
    T("  chmod_same", fchmod(ne, 0644));

    /* Read-only descriptor: no seals added. */
    int rd = open(link, O_RDONLY);
    char l2[64];
    snprintf(l2, sizeof l2, "/proc/self/fd/%d", s);
    close(rd);
    int fwl = fw;
    snprintf(l2, sizeof l2, "/proc/self/fd/%d", fwl);
    rd = open(l2, O_RDONLY);
    T("open_ro", rd);
    E("add_seals_ro", fcntl(rd, F_ADD_SEALS, F_SEAL_GROW), EPERM);
    V("get_seals_ro", fcntl(rd, F_GET_SEALS));
    close(rd);

    /* Errors. */
    E("bad_seal_bits", fcntl(fw, F_ADD_SEALS, 0x100), EINVAL);
    int plain = open(sp("plain"), O_RDWR | O_CREAT, 0600);
    E("seals_plain_file", fcntl(plain, F_ADD_SEALS, F_SEAL_WRITE), EINVAL);
    E("get_seals_plain", fcntl(plain, F_GET_SEALS), EINVAL);
    int p[2];
    T("pipe", pipe(p));
    E("seals_pipe", fcntl(p[0], F_GET_SEALS), EINVAL);
    E("bad_flags", mfd("x", 0x100), EINVAL);
    E("exec_and_noexec", mfd("x", MFD_EXEC | MFD_NOEXEC_SEAL), EINVAL);
    E("huge_bits_without_hugetlb", mfd("x", 21U << 26), EINVAL);
    E("bad_name", mfd(BADPTR, 0), EFAULT);
    char longname[300];
    memset(longname, 'a', sizeof longname);
    longname[249] = 0;
    int ok249 = mfd(longname, 0);
    T("name_249", ok249);
    longname[249] = 'a';
    longname[250] = 0;
    E("name_250", mfd(longname, 0), EINVAL);
    V("empty_name", mfd("", 0) >= 0);
    T("exec_flag", mfd("x", MFD_EXEC));
    guest_cleanup();
    P("done\n");
    return 0;
}
