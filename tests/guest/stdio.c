/* The standard descriptors the harness hands in (stdin /dev/null, stdout
 * and stderr pipes) as the guest sees them: types, access modes, EOF on
 * stdin, writes to stderr, isatty, dup of stdout. */
#include "common.h"
#include <sys/ioctl.h>
#include <termios.h>

static const char *kind(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return errno_name(errno);
    if (S_ISCHR(st.st_mode))
        return "chr";
    if (S_ISFIFO(st.st_mode))
        return "fifo";
    if (S_ISREG(st.st_mode))
        return "reg";
    if (S_ISSOCK(st.st_mode))
        return "sock";
    return "other";
}

int main(void)
{
    guest_init();
    char buf[64];
    P("stdin_kind %s\n", kind(0));
    P("stdout_kind %s\n", kind(1));
    P("stderr_kind %s\n", kind(2));
    V("stdin_accmode", fcntl(0, F_GETFL) & O_ACCMODE);
    V("stdout_cloexec", fcntl(1, F_GETFD));
    V("stdin_read_eof", read(0, buf, sizeof buf));
    B("stdin_isatty", isatty(0));
    B("stdout_isatty", isatty(1));
    struct termios t;
    E("stdout_tcgetattr_enotty", tcgetattr(1, &t), ENOTTY);
    struct winsize ws;
    E("stdout_tiocgwinsz_enotty", ioctl(1, TIOCGWINSZ, &ws), ENOTTY);
    V("stderr_write", write(2, "to stderr\n", 10));
    E("stdout_lseek_espipe", lseek(1, 0, SEEK_CUR), ESPIPE);
    int d = dup(1);
    V("write_via_dup_of_stdout", write(d, "via dup\n", 8));
    close(d);
    /* Closing stdin and reopening gets fd 0 back. */
    close(0);
    int fd = open("/dev/null", O_RDONLY);
    V("reopen_gets_fd0", fd);
    P("done\n");
    return 0;
}
