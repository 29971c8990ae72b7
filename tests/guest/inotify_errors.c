/* inotify's error paths: bad flags, bad descriptors, descriptors that
 * are not inotify instances, bad masks, bad paths and pointers, reads
 * into buffers too small or unmapped, permission, and the limits on
 * watches and instances (per sandbox under runsc-lite: masked, with the
 * sandbox's numbers checked separately). */
#include "common.h"
#include <limits.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    guest_init();
    const char *scratch = guest_scratch(argc, argv);
    char dir[4096], file[4200], loop[4200], under[4200];
    snprintf(dir, sizeof dir, "/dev/shm/inotify-errors-%d", (int)getpid());
    guest_rm_rf(dir);
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/file", dir);
    snprintf(loop, sizeof loop, "%s/loop", dir);
    snprintf(under, sizeof under, "%s/file/x", dir);
    close(open(file, O_CREAT | O_WRONLY, 0600));
    symlink("loop", loop);

    /* inotify_init1 */
    E("init1_badflag", inotify_init1(1), EINVAL);
    E("init1_otherflag", inotify_init1(O_RDWR), EINVAL);
    E("init1_trunc", inotify_init1(O_TRUNC), EINVAL);
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    T("init1_both", in);

    /* inotify_add_watch: mask first, then the descriptor, then the path. */
    E("add_mask0_badfd", inotify_add_watch(-1, dir, 0), EINVAL);
    E("add_mask0", inotify_add_watch(in, dir, 0), EINVAL);
    E("add_unknown_bits", inotify_add_watch(in, dir, 0x00010000), EINVAL);
    E("add_add_create", inotify_add_watch(in, dir, IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE), EINVAL);
    E("add_badfd", inotify_add_watch(-1, dir, IN_MODIFY), EBADF);
    E("add_closedfd", inotify_add_watch(9999, dir, IN_MODIFY), EBADF);
    int plain = open(file, O_RDONLY);
    E("add_notinotify", inotify_add_watch(plain, dir, IN_MODIFY), EINVAL);
    int p[2];
    T("pipe", pipe(p));
    E("add_pipe", inotify_add_watch(p[0], dir, IN_MODIFY), EINVAL);
    E("add_badfd_badpath", inotify_add_watch(-1, (char *)1, IN_MODIFY), EBADF);
    E("add_enoent", inotify_add_watch(in, "/nonexistent/inotify", IN_MODIFY), ENOENT);
    E("add_empty", inotify_add_watch(in, "", IN_MODIFY), ENOENT);
    E("add_null", inotify_add_watch(in, NULL, IN_MODIFY), EFAULT);
    E("add_badptr", inotify_add_watch(in, (char *)1, IN_MODIFY), EFAULT);
    E("add_notdir_component", inotify_add_watch(in, under, IN_MODIFY), ENOTDIR);
    E("add_onlydir_file", inotify_add_watch(in, file, IN_MODIFY | IN_ONLYDIR), ENOTDIR);
    E("add_loop", inotify_add_watch(in, loop, IN_MODIFY), ELOOP);
    T("add_loop_dont_follow", inotify_add_watch(in, loop, IN_MODIFY | IN_DONT_FOLLOW));
    char longp[PATH_MAX + 16];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    E("add_toolong", inotify_add_watch(in, longp, IN_MODIFY), ENAMETOOLONG);
    T("add_onlydir_dir", inotify_add_watch(in, dir, IN_MODIFY | IN_ONLYDIR));
    T("add_flags_only", inotify_add_watch(in, file, IN_ONESHOT));
    E("add_create_exists", inotify_add_watch(in, file, IN_MODIFY | IN_MASK_CREATE), EEXIST);

    /* Permission: watching needs read access to the node. */
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0) {
            printf("child setuid err %s\n", errno_name(errno));
            _exit(1);
        }
        int cin = inotify_init();
        E("child_add_noread", inotify_add_watch(cin, file, IN_MODIFY), EACCES);
        T("child_add_dir", inotify_add_watch(cin, dir, IN_MODIFY));
        E("child_add_scratch", inotify_add_watch(cin, scratch, IN_MODIFY), EACCES);
        fflush(stdout);
        _exit(0);
    }
    int st;
    V("child_reaped", waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* inotify_rm_watch */
    E("rm_badfd", inotify_rm_watch(-1, 1), EBADF);
    E("rm_notinotify", inotify_rm_watch(plain, 1), EINVAL);
    E("rm_wd0", inotify_rm_watch(in, 0), EINVAL);
    E("rm_wdneg", inotify_rm_watch(in, -1), EINVAL);
    E("rm_wdbig", inotify_rm_watch(in, 123456), EINVAL);
    int other = inotify_init1(IN_NONBLOCK);
    int wo = inotify_add_watch(other, "/", IN_MODIFY);
    int wmine = inotify_add_watch(in, dir, IN_MODIFY);
    B("wds_per_instance", wo == 1 && wmine != wo);
    T("rm_mine", inotify_rm_watch(in, wmine));
    E("rm_other_instance", inotify_rm_watch(in, wmine), EINVAL);
    close(other);

    /* read */
    int empty = inotify_init1(IN_NONBLOCK);
    char buf[4096] __attribute__((aligned(8)));
    E("read_empty_nonblock", read(empty, buf, sizeof buf), EAGAIN);
    E("write", write(empty, buf, 16), EBADF);
    V("lseek", lseek(empty, 0, SEEK_SET));
    int w = inotify_add_watch(empty, dir, IN_CREATE);
    T("watch", w);
    char created[4200];
    snprintf(created, sizeof created, "%s/created", dir);
    close(open(created, O_CREAT | O_RDONLY, 0644));
    E("read_small", read(empty, buf, sizeof(struct inotify_event)), EINVAL);
    void *volatile bad = (void *)1;
    E("read_badbuf", read(empty, bad, sizeof buf), EFAULT);
    close(open(created, O_RDONLY));
    unlink(created);
    close(open(created, O_CREAT | O_RDONLY, 0644));
    void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    E("read_readonly_buf", read(empty, ro, 4096), EFAULT);
    V("read_after_fault", read(empty, buf, sizeof buf));

    struct stat sb;
    T("fstat", fstat(empty, &sb));
    V("fstat_type", sb.st_mode & S_IFMT);
    V("fstat_perm", sb.st_mode & 07777);
    char link[64], target[256];
    snprintf(link, sizeof link, "/proc/self/fd/%d", empty);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n >= 0) {
        target[n] = 0;
        printf("fd_link %s\n", target);
    } else {
        printf("fd_link err %s\n", errno_name(errno));
    }
    close(empty);
    close(in);

    /* Limits: watches (per user natively, per sandbox here). */
    int lim = inotify_init1(IN_NONBLOCK);
    int added = 0, err = 0;
    char many[4200];
    snprintf(many, sizeof many, "%s/many", dir);
    mkdir(many, 0755);
    for (int i = 0; i < 8200; i++) {
        char nm[4300];
        snprintf(nm, sizeof nm, "%s/%d", many, i);
        mkdir(nm, 0755);
        if (inotify_add_watch(lim, nm, IN_CREATE) < 0) {
            err = errno;
            break;
        }
        added++;
    }
    printf("watch_limit %d %s\n", added, err ? errno_name(err) : "none");
    close(lim);
    for (int i = 0; i < 8200; i++) {
        char nm[4300];
        snprintf(nm, sizeof nm, "%s/%d", many, i);
        rmdir(nm);
    }
    lim = inotify_init1(IN_NONBLOCK);
    T("watch_after_close", inotify_add_watch(lim, dir, IN_CREATE));
    close(lim);

    /* Instances. */
    int fds[200], made = 0;
    err = 0;
    for (; made < 200; made++) {
        fds[made] = inotify_init1(0);
        if (fds[made] < 0) {
            err = errno;
            break;
        }
    }
    printf("instance_limit %d %s\n", made, err ? errno_name(err) : "none");
    for (int i = 0; i < made; i++)
        close(fds[i]);
    T("instance_after_close", (in = inotify_init()));
    close(in);

    close(plain);
    guest_rm_rf(dir);
    guest_cleanup();
    printf("done\n");
    return 0;
}
