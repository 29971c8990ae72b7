/* The kernel log's interfaces and their error paths: syslog(2) actions and
 * argument checks, /dev/kmsg's one-record reads, lseek rules and
 * non-blocking end. Nothing is written or cleared: natively this is the
 * host's log. Verdicts only (the content is the host's natively). */
#include "common.h"
#include <sys/klog.h>
#include <sys/wait.h>

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char buf[8192];
    char *volatile bad = (char *)1;

    B("size_buffer_positive", klogctl(10, NULL, 0) > 0);
    B("size_unread_nonnegative", klogctl(9, NULL, 0) >= 0);
    V("read_all_zero_len", klogctl(3, buf, 0));
    E("read_all_null", klogctl(3, NULL, 10), EINVAL);
    E("read_all_negative", klogctl(3, buf, -1), EINVAL);
    E("read_all_badptr", klogctl(3, bad, sizeof buf), EFAULT);
    B("read_all_some", klogctl(3, buf, sizeof buf) > 0);
    E("read_null", klogctl(2, NULL, 10), EINVAL);
    E("read_negative", klogctl(2, buf, -1), EINVAL);
    V("read_zero_len", klogctl(2, buf, 0));
    E("console_level_zero", klogctl(8, NULL, 0), EINVAL);
    E("console_level_nine", klogctl(8, NULL, 9), EINVAL);
    E("bad_action", klogctl(99, NULL, 0), EINVAL);
    E("negative_action", klogctl(-1, NULL, 0), EINVAL);
    V("open_action", klogctl(1, NULL, 0));
    V("close_action", klogctl(0, NULL, 0));

    /* Unprivileged: the restricted actions are EPERM before any check
     * (whether reading the whole log is allowed depends on the host's
     * dmesg_restrict, so it is not checked here). */
    pid_t pid = fork();
    if (pid == 0) {
        if (setresuid(1000, 1000, 1000) < 0)
            _exit(1);
        int ok = klogctl(5, NULL, 0) < 0 && errno == EPERM;
        ok &= klogctl(99, NULL, 0) < 0 && errno == EPERM;
        ok &= klogctl(9, NULL, 0) < 0 && errno == EPERM;
        _exit(ok ? 0 : 2);
    }
    int st;
    waitpid(pid, &st, 0);
    B("unprivileged_rules", WIFEXITED(st) && WEXITSTATUS(st) == 0);

    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
    T("kmsg_open", fd);
    E("kmsg_tiny_buffer", read(fd, buf, 1), EINVAL);
    ssize_t n = read(fd, buf, sizeof buf);
    B("kmsg_one_record", n > 0 && buf[n - 1] == '\n' && memchr(buf, '\n', n) == buf + n - 1);
    buf[n > 0 ? n : 0] = 0;
    char *semi = strchr(buf, ';');
    int commas = 0;
    for (char *p = buf; semi && p < semi; p++)
        commas += *p == ',';
    B("kmsg_record_header", semi != NULL && commas >= 3);
    E("kmsg_seek_offset", lseek(fd, 5, SEEK_SET), ESPIPE);
    E("kmsg_seek_cur", lseek(fd, 0, SEEK_CUR), EINVAL);
    V("kmsg_seek_set", lseek(fd, 0, SEEK_SET));
    V("kmsg_seek_data", lseek(fd, 0, SEEK_DATA));
    V("kmsg_seek_end", lseek(fd, 0, SEEK_END));
    E("kmsg_end_nonblock", read(fd, buf, sizeof buf), EAGAIN);
    E("kmsg_badptr", (lseek(fd, 0, SEEK_SET), read(fd, bad, sizeof buf)), EFAULT);
    close(fd);
    printf("done\n");
    return 0;
}
