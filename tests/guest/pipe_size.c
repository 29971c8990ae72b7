/* F_GETPIPE_SZ / F_SETPIPE_SZ: the default size, Linux's rounding (a
 * power-of-two number of pages, at least one), the new size honoured by
 * writes, EBUSY below the data held, the limits, and non-pipes. Past
 * pipe-max-size (1 MiB) needs CAP_SYS_RESOURCE in the initial user
 * namespace: EPERM natively in a container and always in the sandbox. */
#include "common.h"

static long setsz(int fd, unsigned long arg)
{
    return syscall(SYS_fcntl, fd, F_SETPIPE_SZ, arg);
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    int p[2];
    T("pipe", pipe2(p, O_NONBLOCK));
    V("default", fcntl(p[0], F_GETPIPE_SZ));
    V("default_write_end", fcntl(p[1], F_GETPIPE_SZ));
    V("set_0", setsz(p[0], 0));
    V("get_after_0", fcntl(p[1], F_GETPIPE_SZ));
    V("set_1", setsz(p[1], 1));
    V("set_4096", setsz(p[1], 4096));
    static char buf[1 << 16];
    memset(buf, 'p', sizeof buf);
    V("write_one_page", write(p[1], buf, 4096));
    E("full_at_one_page", write(p[1], buf, 1), EAGAIN);
    V("set_0_with_one_page_held", setsz(p[1], 0));
    V("grow_with_data", setsz(p[1], 4097));
    V("write_more", write(p[1], buf, 4096));
    E("full_at_two_pages", write(p[1], buf, 1), EAGAIN);
    E("shrink_below_data", setsz(p[1], 4096), EBUSY);
    V("read_some", read(p[0], buf, 4096));
    V("shrink_to_data", setsz(p[1], 4096));
    V("read_rest", read(p[0], buf, 8192));
    V("set_65536", setsz(p[1], 65536));
    V("set_65537", setsz(p[1], 65537));
    V("set_100000", setsz(p[1], 100000));
    V("set_max", setsz(p[1], 1 << 20));
    V("set_over_max", setsz(p[1], (1 << 20) + 1));
    V("get_over_max", fcntl(p[0], F_GETPIPE_SZ));
    V("back_down", setsz(p[1], 8192));
    E("too_big", setsz(p[1], (1UL << 31) + 1), EINVAL);
    E("uint_max", setsz(p[1], 0xffffffffUL), EINVAL);
    V("high_bits_ignored", setsz(p[1], (1UL << 32) | 8192));
    int fd = open(sp("regular"), O_RDWR | O_CREAT, 0644);
    E("get_on_file", fcntl(fd, F_GETPIPE_SZ), EBADF);
    E("set_on_file", setsz(fd, 4096), EBADF);
    E("get_bad_fd", fcntl(-1, F_GETPIPE_SZ), EBADF);
    E("set_bad_fd", setsz(-1, 4096), EBADF);
    int d = open(guest_scratch_buf, O_RDONLY | O_DIRECTORY);
    E("get_on_dir", fcntl(d, F_GETPIPE_SZ), EBADF);
    close(d);
    close(fd);
    /* A FIFO is a pipe too. */
    T("mkfifo", mkfifo(sp("fifo"), 0600));
    int f = open(sp("fifo"), O_RDWR);
    V("fifo_default", fcntl(f, F_GETPIPE_SZ));
    V("fifo_set", setsz(f, 12345));
    close(f);
    close(p[0]);
    close(p[1]);
    guest_cleanup();
    printf("done\n");
    return 0;
}
