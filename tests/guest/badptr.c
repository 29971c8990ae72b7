/* Bad pointers handed to many syscalls: each must fail with EFAULT (or
 * the errno Linux gives) and the program must keep running. Raw syscall()
 * everywhere, so libc never touches the pointers itself. */
#include "common.h"
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/uio.h>
#include <time.h>

#define KERNEL_PTR ((void *)0xffff880000000000UL)
#define HIGH_PTR ((void *)0x7ffffffff000UL) /* last user page: unmapped */
#define NONCANON_PTR ((void *)0x8000000000000000UL)

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    char f[4200];
    snprintf(f, sizeof f, "%s", sp("file"));
    write_file(f, "0123456789", 0644);
    int fd = open(f, O_RDWR);
    char buf[256];

    void *ptrs[] = { BADPTR, KERNEL_PTR, HIGH_PTR, NONCANON_PTR };
    const char *pn[] = { "low", "kernel", "high", "noncanonical" };
    for (int i = 0; i < 4; i++) {
        void *bp = ptrs[i];
        char name[64];
#define C(label, call)                                          \
    do {                                                        \
        snprintf(name, sizeof name, "%s_%s", label, pn[i]);     \
        T(name, call);                                          \
    } while (0)
        C("open_path", syscall(SYS_open, bp, O_RDONLY));
        C("openat_path", syscall(SYS_openat, AT_FDCWD, bp, O_RDONLY));
        C("stat_buf", syscall(SYS_stat, f, bp));
        C("stat_path", syscall(SYS_stat, bp, buf));
        C("fstat_buf", syscall(SYS_fstat, fd, bp));
        C("write_buf", syscall(SYS_write, 1, bp, 10));
        C("read_buf", (lseek(fd, 0, SEEK_SET), syscall(SYS_read, fd, bp, 10)));
        C("pread_buf", syscall(SYS_pread64, fd, bp, 10, 0));
        C("pwrite_buf", syscall(SYS_pwrite64, fd, bp, 10, 0));
        C("readv_iov", syscall(SYS_readv, fd, bp, 1));
        C("writev_iov", syscall(SYS_writev, fd, bp, 1));
        C("uname", syscall(SYS_uname, bp));
        C("getcwd", syscall(SYS_getcwd, bp, 100));
        C("clock_gettime", syscall(SYS_clock_gettime, CLOCK_REALTIME, bp));
        C("gettimeofday", syscall(SYS_gettimeofday, bp, NULL));
        C("nanosleep", syscall(SYS_nanosleep, bp, NULL));
        C("pipe", syscall(SYS_pipe, bp));
        C("access", syscall(SYS_access, bp, F_OK));
        C("mkdir", syscall(SYS_mkdir, bp, 0755));
        C("rmdir", syscall(SYS_rmdir, bp));
        C("unlink", syscall(SYS_unlink, bp));
        C("rename_old", syscall(SYS_rename, bp, "x"));
        C("rename_new", syscall(SYS_rename, f, bp));
        C("chdir", syscall(SYS_chdir, bp));
        C("readlink_path", syscall(SYS_readlink, bp, buf, sizeof buf));
        C("getdents64", syscall(SYS_getdents64, open(guest_scratch_buf, O_RDONLY | O_DIRECTORY), bp, 4096));
        C("getrlimit", syscall(SYS_getrlimit, 0, bp));
        C("getrandom", syscall(SYS_getrandom, bp, 16, 0));
        C("poll", syscall(SYS_poll, bp, 1, 0));
        C("select_readfds", syscall(SYS_select, 1, bp, NULL, NULL, NULL));
        C("sysinfo", syscall(SYS_sysinfo, bp));
        C("getrusage", syscall(SYS_getrusage, 0, bp));
        C("rt_sigaction_act", syscall(SYS_rt_sigaction, SIGUSR1, bp, NULL, 8));
        C("rt_sigprocmask_set", syscall(SYS_rt_sigprocmask, SIG_BLOCK, bp, NULL, 8));
        C("execve_path", syscall(SYS_execve, bp, NULL, NULL));
        C("chmod", syscall(SYS_chmod, bp, 0644));
        C("truncate", syscall(SYS_truncate, bp, 0));
        C("symlink_target", syscall(SYS_symlink, bp, "sl"));
        C("utimensat_times", syscall(SYS_utimensat, AT_FDCWD, f, bp, 0));
        C("statfs_buf", syscall(SYS_statfs, "/", bp));
        C("newfstatat_path", syscall(SYS_newfstatat, AT_FDCWD, bp, buf, 0));
        C("prlimit64_old", syscall(SYS_prlimit64, 0, 7, NULL, bp));
        C("getresuid", syscall(SYS_getresuid, bp, bp, bp));
        C("arch_prctl_get_fs", syscall(SYS_arch_prctl, 0x1003, bp));
        C("wait4_status", syscall(SYS_wait4, -1, bp, 0, NULL));
#undef C
        /* Close the getdents directory fds (the lowest after fd). */
        for (int k = fd + 1; k < fd + 4; k++)
            close(k);
    }

    /* An iovec whose entries point nowhere. */
    struct iovec iov[2] = { { buf, 4 }, { BADPTR, 4 } };
    lseek(fd, 0, SEEK_SET);
    V("readv_second_iov_bad", syscall(SYS_readv, fd, iov, 2));
    V("writev_second_iov_bad_to_devnull", syscall(SYS_writev, open("/dev/null", O_WRONLY), iov, 2));
    /* A string that runs into unmapped memory. */
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(m + pg, pg);
    memset(m, 'a', pg);
    T("open_unterminated_path", syscall(SYS_open, m + pg - 10, O_RDONLY));
    T("open_path_longer_than_page", syscall(SYS_open, m, O_RDONLY));
    /* A buffer that is mapped but read-only, as a read target. */
    mprotect(m, pg, PROT_READ);
    lseek(fd, 0, SEEK_SET);
    T("read_into_readonly_page", syscall(SYS_read, fd, m, 10));
    T("stat_into_readonly_page", syscall(SYS_stat, f, m));
    T("write_from_readonly_page", syscall(SYS_write, open("/dev/null", O_WRONLY), m, 10));
    munmap(m, pg);

    /* The file is unchanged by all the failed writes above. */
    memset(buf, 0, sizeof buf);
    V("file_len_after", read_file(f, buf, sizeof buf));
    P("file_content_after %s\n", buf);
    P("alive\n");
    close(fd);
    guest_cleanup();
    P("done\n");
    return 0;
}
