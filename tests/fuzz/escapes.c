/* escapes: escape attempts made from inside the sandbox, one kind per
 * subcommand, run by tests/tests/escapes.rs in a bundle (or under `do`)
 * whose layout it knows: /mnt/rw and /mnt/ro are bind mounts, /tmp a
 * tmpfs, /proc the sandbox's. Never run it natively as root: natively
 * these attempts succeed.
 *
 * Output: one line per attempt, "NAME: RESULT" with RESULT an errno name,
 * "ok" or a count; any attempt that reads, sees or reaches what it must
 * not prints a line starting with "ESCAPED". The harness checks both the
 * lines and the host afterwards.
 *
 *   escapes dotdot TEXT PATH... -- NAME...
 *   escapes symlinks TEXT PATH...
 *   escapes exe_write
 *   escapes xdev
 *   escapes race TEXT ROUNDS
 *   escapes moved_cwd TEXT -- NAME...
 *   escapes tiocsti
 *   escapes killall HOSTPID
 *   escapes ptrace HOSTPID
 *   escapes ns TEXT PATH... -- NAME...
 *   escapes dev
 *
 * TEXT is the content of the host's marker files (never readable from
 * inside), PATH their host paths, NAME host-only directory entries (never
 * listed from inside).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../guest/common.h"

static const char *text;      /* the markers' content */
static char **hostpaths;      /* the markers' host paths */
static int nhostpaths;
static char **names;          /* host-only directory entries */
static int nnames;
static int escaped;
static long attempts;

/* Splits "A B -- C D" into paths and names. */
static void split_args(int argc, char **argv)
{
    hostpaths = argv;
    nhostpaths = argc;
    names = argv + argc;
    nnames = 0;
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            nhostpaths = i;
            names = argv + i + 1;
            nnames = argc - i - 1;
            break;
        }
}

/* Reads what `fd` holds (up to 4 KiB) and reports a leak of the marker. */
static void check_fd(const char *what, int fd)
{
    char b[4096];
    long n = read(fd, b, sizeof b - 1);
    close(fd);
    attempts++;
    if (n <= 0)
        return;
    b[n] = 0;
    if (text && strstr(b, text)) {
        printf("ESCAPED: %s read the marker\n", what);
        escaped++;
    }
}

static void try_open(const char *what, const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0)
        check_fd(what, fd);
    else
        attempts++;
}

static void try_openat(const char *what, int dirfd, const char *path)
{
    int fd = openat(dirfd, path, O_RDONLY);
    if (fd >= 0)
        check_fd(what, fd);
    else
        attempts++;
}

/* Lists `path` and reports any host-only name in it. */
static void check_listing(const char *what, const char *path)
{
    DIR *d = opendir(path);
    attempts++;
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        for (int i = 0; i < nnames; i++)
            if (strcmp(e->d_name, names[i]) == 0) {
                printf("ESCAPED: %s lists the host's %s\n", what, e->d_name);
                escaped++;
            }
    closedir(d);
}

static char *ups(int k)
{
    static char b[512];
    b[0] = 0;
    for (int i = 0; i < k && strlen(b) + 4 < sizeof b; i++)
        strcat(b, "../");
    return b;
}

static void contained(const char *name)
{
    printf("%s: %s (%ld attempts)\n", name, escaped ? "NOT contained" : "contained", attempts);
}

/* ------------------------------------------------------------------ */

static const char *const roots[] = {"/", "/mnt/rw", "/mnt/ro", "/tmp", "/proc", "/dev", "/proc/self",
                                    "/proc/1", "/proc/self/fd", "/proc/self/root", "/proc/self/cwd",
                                    "/mnt/rw/d", "/dev/pts"};
#define NROOTS (sizeof roots / sizeof roots[0])

/* `..` past every mount root: in paths, relative to descriptors of the
 * mount points, and by chdir. */
static int dotdot(void)
{
    static const int depth[] = {1, 2, 3, 8, 40};
    char p[1024], what[1200];
    for (unsigned r = 0; r < NROOTS; r++) {
        int dfd = open(roots[r], O_PATH | O_DIRECTORY);
        for (unsigned k = 0; k < sizeof depth / sizeof depth[0]; k++) {
            snprintf(p, sizeof p, "%s/%s", roots[r], ups(depth[k]));
            snprintf(what, sizeof what, "listing %s", p);
            check_listing(what, p);
            for (int h = 0; h < nhostpaths; h++) {
                const char *hp = hostpaths[h];
                snprintf(p, sizeof p, "%s/%s%s", roots[r], ups(depth[k]), hp + 1);
                snprintf(what, sizeof what, "open %s", p);
                try_open(what, p);
                if (dfd >= 0) {
                    snprintf(p, sizeof p, "%s%s", ups(depth[k]), hp + 1);
                    snprintf(what, sizeof what, "openat(%s) %s", roots[r], p);
                    try_openat(what, dfd, p);
                }
                if (chdir(roots[r]) == 0) {
                    for (int i = 0; i < depth[k]; i++)
                        if (chdir("..") != 0)
                            break;
                    snprintf(what, sizeof what, "chdir %s then ..x%d then open .%s", roots[r], depth[k], hp);
                    snprintf(p, sizeof p, ".%s", hp);
                    try_open(what, p);
                    check_listing(what, ".");
                    if (chdir("/") != 0)
                        return 1;
                }
                /* The host path itself, as given. */
                try_open("the host path itself", hp);
            }
        }
        if (dfd >= 0) {
            if (fchdir(dfd) == 0) {
                for (int i = 0; i < 50; i++)
                    if (chdir("..") != 0)
                        break;
                char cwd[4096];
                if (getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") != 0) {
                    printf("ESCAPED: fchdir(%s) then .. x50 is at %s, not /\n", roots[r], cwd);
                    escaped++;
                }
                snprintf(what, sizeof what, "fchdir(%s) then .. x50", roots[r]);
                check_listing(what, ".");
                if (chdir("/") != 0)
                    return 1;
            }
            close(dfd);
        }
    }
    contained("dotdot");
    return 0;
}

/* Symlinks pointing out, made inside (on the tmpfs and on the rw bind
 * mount, where they are host symlinks) and followed. */
static int symlinks(void)
{
    static const char *const dirs[] = {"/tmp", "/mnt/rw"};
    char target[1024], link[256], what[1400];
    int rwfd = open("/mnt/rw", O_PATH | O_DIRECTORY);
    for (unsigned d = 0; d < 2; d++) {
        for (int h = 0; h < nhostpaths; h++) {
            const char *hp = hostpaths[h];
            const char *forms[] = {"%s", "../../../../../../../../../..%s", "/proc/self/root/../../..%s",
                                   "/proc/1/root%s", "/proc/self/cwd/../../../..%s", "/..%s",
                                   "/proc/self/fd/%d/../../../../..%s", "/proc/1/cwd/../../..%s"};
            for (unsigned f = 0; f < sizeof forms / sizeof forms[0]; f++) {
                if (f == 6)
                    snprintf(target, sizeof target, forms[f], rwfd, hp);
                else
                    snprintf(target, sizeof target, forms[f], hp);
                snprintf(link, sizeof link, "%s/esc-%d-%u", dirs[d], h, f);
                unlink(link);
                if (symlink(target, link) != 0) {
                    printf("symlink %s: %s\n", link, errno_name(errno));
                    continue;
                }
                snprintf(what, sizeof what, "%s -> %s", link, target);
                try_open(what, link);
                /* Through a directory link to the root, then the path. */
                snprintf(link, sizeof link, "%s/escdir-%d-%u", dirs[d], h, f);
                unlink(link);
                if (symlink(f == 0 ? "/" : "../../../../../..", link) == 0) {
                    snprintf(target, sizeof target, "%s%s", link, hp);
                    snprintf(what, sizeof what, "through %s", target);
                    try_open(what, target);
                }
            }
        }
        snprintf(link, sizeof link, "%s/escdir-root", dirs[d]);
        unlink(link);
        if (symlink("../../../../../../../../..", link) == 0) {
            snprintf(what, sizeof what, "listing %s", link);
            check_listing(what, link);
        }
    }
    contained("symlinks");
    return 0;
}

/* The running executable opened for writing: ETXTBSY on Linux. */
static int exe_write(const char *self)
{
    E("exe_open_wronly", open("/proc/self/exe", O_WRONLY), ETXTBSY);
    E("exe_open_rdwr", open("/proc/self/exe", O_RDWR), ETXTBSY);
    E("exe_open_trunc", open("/proc/self/exe", O_WRONLY | O_TRUNC), ETXTBSY);
    E("exe_path_wronly", open(self, O_WRONLY), ETXTBSY);
    E("exe_truncate", truncate(self, 0), ETXTBSY);
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/exe", getpid());
    E("exe_pid_wronly", open(p, O_WRONLY), ETXTBSY);
    return 0;
}

/* Hard links and renames across mounts: EXDEV. */
static int xdev(void)
{
    int fd = open("/mnt/rw/f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    close(fd);
    mkdir("/mnt/rw/d2", 0755);
    fd = open("/tmp/t", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    close(fd);
    E("link_rw_to_tmp", link("/mnt/rw/f", "/tmp/f"), EXDEV);
    E("link_root_to_rw", link("/bin/escapes", "/mnt/rw/hardlink"), EXDEV);
    E("link_ro_to_rw", link("/mnt/ro/file", "/mnt/rw/hardlink2"), EXDEV);
    E("link_proc_to_rw", link("/proc/self/status", "/mnt/rw/hardlink3"), EXDEV);
    E("rename_rw_to_tmp", rename("/mnt/rw/f", "/tmp/g"), EXDEV);
    E("rename_tmp_to_rw", rename("/tmp/t", "/mnt/rw/t"), EXDEV);
    E("rename_dir_rw_to_tmp", rename("/mnt/rw/d2", "/tmp/d2"), EXDEV);
    E("rename_root_to_rw", rename("/bin/escapes", "/mnt/rw/escapes2"), EXDEV);
    int h = open("/etc/hostname", O_RDONLY);
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", h);
    E("linkat_follow_fd_to_rw", linkat(AT_FDCWD, p, AT_FDCWD, "/mnt/rw/hardlink4", AT_SYMLINK_FOLLOW), EXDEV);
    int o = open("/mnt/ro/file", O_PATH);
    E("linkat_empty_path_to_rw", linkat(o, "", AT_FDCWD, "/mnt/rw/hardlink5", AT_EMPTY_PATH), EXDEV);
    E("rename_exchange_rw_tmp",
      syscall(SYS_renameat2, AT_FDCWD, "/mnt/rw/f", AT_FDCWD, "/tmp/t", 2 /* RENAME_EXCHANGE */), EXDEV);
    /* Inside one mount, for contrast. */
    T("link_within_rw", link("/mnt/rw/f", "/mnt/rw/f2"));
    E("rename_into_itself", rename("/mnt/rw/d2", "/mnt/rw/d2/sub"), EINVAL);
    return 0;
}

/* Threads open a path through a directory the host keeps swapping with a
 * symlink to the outside. */
struct racer {
    int rounds;
    long inside, other;
    int dirfd;
};

static void *race_thread(void *arg)
{
    struct racer *r = arg;
    char b[256];
    for (int i = 0; i < r->rounds; i++) {
        int fd = (i & 1) ? openat(r->dirfd, "sw/marker", O_RDONLY) : open("/mnt/rw/sw/marker", O_RDONLY);
        if (fd < 0) {
            r->other++;
            continue;
        }
        long n = read(fd, b, sizeof b - 1);
        close(fd);
        b[n > 0 ? n : 0] = 0;
        if (strstr(b, text)) {
            printf("ESCAPED: /mnt/rw/sw/marker read the marker outside the bind mount\n");
            escaped++;
        } else if (strstr(b, "inside")) {
            r->inside++;
        } else {
            r->other++;
        }
        /* Listing through it now and then. */
        if (i % 64 == 0)
            check_listing("listing /mnt/rw/sw", "/mnt/rw/sw");
    }
    return 0;
}

static int race(int rounds)
{
    struct racer r[3];
    pthread_t t[3];
    int dfd = open("/mnt/rw", O_PATH | O_DIRECTORY);
    for (int i = 0; i < 3; i++) {
        r[i] = (struct racer){rounds, 0, 0, dfd};
        pthread_create(&t[i], 0, race_thread, &r[i]);
    }
    long inside = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], 0);
        inside += r[i].inside;
    }
    printf("race: read the inside file %s\n", inside > 0 ? "yes" : "no");
    contained("race");
    return 0;
}

/* The host moves the directory we are in out of the bind mount's source;
 * `..` from there must still end at the sandbox's root. */
static int moved_cwd(void)
{
    mkdir("/mnt/rw/a", 0755);
    mkdir("/mnt/rw/a/b", 0755);
    if (chdir("/mnt/rw/a/b") != 0) {
        printf("moved_cwd: chdir %s\n", errno_name(errno));
        return 1;
    }
    int fd = open("/mnt/rw/ready", O_WRONLY | O_CREAT, 0644);
    close(fd);
    /* Wait (generously) for the host to move us and say so. */
    struct stat st;
    for (int i = 0; i < 6000 && stat("/mnt/rw/go", &st) != 0; i++)
        usleep(10000);
    if (stat("/mnt/rw/go", &st) != 0) {
        printf("moved_cwd: the host never said go\n");
        return 1;
    }
    char what[128];
    for (int k = 0; k < 12; k++) {
        snprintf(what, sizeof what, "after ..x%d from the moved directory", k);
        try_open(what, "marker");
        try_open(what, "../marker");
        try_open(what, "../../marker");
        check_listing(what, ".");
        if (chdir("..") != 0)
            break;
    }
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") != 0) {
        printf("ESCAPED: .. x12 from the moved directory is at %s, not /\n", cwd);
        escaped++;
    }
    contained("moved_cwd");
    return 0;
}

/* Pushing input into the terminal we were given as stdin. */
static int tiocsti(void)
{
    int any_ok = 0;
    const char *cmd = "echo INJECTED-BY-THE-SANDBOX\n";
    for (const char *c = cmd; *c; c++)
        if (ioctl(0, TIOCSTI, c) == 0)
            any_ok = 1;
    printf("tiocsti: %s\n", any_ok ? "accepted" : "refused");
    int ld = 0;
    E("tiocsetd", ioctl(0, TIOCSETD, &ld), ENOTTY);
    E("tioccons", ioctl(0, TIOCCONS), ENOTTY);
    char sub = 2;
    E("tioclinux", ioctl(0, TIOCLINUX, &sub), ENOTTY);
    E("tiocsctty", ioctl(0, TIOCSCTTY, 1), ENOTTY);
    return 0;
}

/* kill(-1) and kill of a host pid. We are init; a child makes the
 * kill(-1), so that sparing the caller is seen apart from sparing init. */
static int killall(int hostpid)
{
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            for (;;)
                pause();
        }
    }
    /* The host process is not in the sandbox's /proc either. */
    char pp[64];
    snprintf(pp, sizeof pp, "/proc/%d/status", hostpid);
    E("proc_host_pid_status", open(pp, O_RDONLY), ENOENT);
    snprintf(pp, sizeof pp, "/proc/%d/root/", hostpid);
    E("proc_host_pid_root", open(pp, O_RDONLY), ENOENT);
    E("kill_host_pid_0", kill(hostpid, 0), ESRCH);
    E("kill_host_pid", kill(hostpid, SIGKILL), ESRCH);
    E("kill_host_pgrp", kill(-hostpid, SIGKILL), ESRCH);
    pid_t caller = fork();
    if (caller == 0) {
        T("kill_minus_1", kill(-1, SIGKILL));
        _exit(0);
    }
    int st = 0;
    waitpid(caller, &st, 0);
    printf("the caller survived kill(-1): %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "yes" : "no");
    int killed = 0;
    for (int i = 0; i < 2; i++) {
        st = 0;
        if (waitpid(kids[i], &st, 0) == kids[i] && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
            killed++;
    }
    printf("children killed by kill(-1): %d\n", killed);
    printf("init survived kill(-1)\n");
    return 0;
}

/* ptrace and process_vm_* on a host process, on init, on a child. */
static int tracing(int hostpid)
{
    pid_t kid = fork();
    if (kid == 0) {
        for (;;)
            pause();
    }
    char local[64] = {0};
    struct iovec l = {local, sizeof local}, r = {(void *)0x400000, sizeof local};
    pid_t targets[] = {hostpid, 1, kid, getpid()};
    const char *tn[] = {"host", "init", "child", "self"};
    for (int i = 0; i < 4; i++) {
        char n[64];
        snprintf(n, sizeof n, "ptrace_attach_%s", tn[i]);
        V(n, ptrace(PTRACE_ATTACH, targets[i], 0, 0));
        snprintf(n, sizeof n, "ptrace_seize_%s", tn[i]);
        V(n, ptrace(PTRACE_SEIZE, targets[i], 0, 0));
        snprintf(n, sizeof n, "process_vm_readv_%s", tn[i]);
        V(n, process_vm_readv(targets[i], &l, 1, &r, 1, 0));
        snprintf(n, sizeof n, "process_vm_writev_%s", tn[i]);
        V(n, process_vm_writev(targets[i], &l, 1, &r, 1, 0));
        snprintf(n, sizeof n, "kcmp_%s", tn[i]);
        V(n, syscall(SYS_kcmp, getpid(), targets[i], 0, 0, 0));
        snprintf(n, sizeof n, "pidfd_open_%s", tn[i]);
        V(n, syscall(434, targets[i], 0));
    }
    V("ptrace_traceme", ptrace(PTRACE_TRACEME, 0, 0, 0));
    kill(kid, SIGKILL);
    int st = 0;
    waitpid(kid, &st, 0);
    printf("child ended by SIGKILL: %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? "yes" : "no");
    return 0;
}

/* mount, umount, pivot_root, unshare, setns, new namespaces; chroot and
 * the classic way out of a chroot. */
static int ns(void)
{
    V("mount_tmpfs", mount("none", "/tmp", "tmpfs", 0, 0));
    V("mount_bind_root", mount("/", "/mnt/rw", 0, MS_BIND, 0));
    V("umount_proc", umount2("/proc", 0));
    V("umount_root_detach", umount2("/", MNT_DETACH));
    V("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
    V("unshare_ns", unshare(CLONE_NEWNS));
    V("unshare_user", unshare(CLONE_NEWUSER));
    V("unshare_pid_net", unshare(CLONE_NEWPID | CLONE_NEWNET));
    int nsfd = open("/proc/self/ns/mnt", O_RDONLY);
    V("open_ns_mnt", nsfd);
    V("setns", setns(nsfd >= 0 ? nsfd : 0, 0));
    V("clone_newns", syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0));
    V("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    /* chroot: allowed to root, and the way out of it leads back to the
     * sandbox's root, never further. */
    mkdir("/tmp/jail", 0755);
    mkdir("/tmp/jail/inner", 0755);
    int outside = open("/", O_PATH | O_DIRECTORY);
    T("chroot_jail", chroot("/tmp/jail"));
    T("chroot_inner", chroot("inner")); /* cwd now outside the root */
    for (int i = 0; i < 50; i++)
        if (chdir("..") != 0)
            break;
    T("chroot_dot", chroot("."));
    check_listing("after the chroot escape", "/");
    for (int h = 0; h < nhostpaths; h++)
        try_open("after the chroot escape", hostpaths[h]);
    if (outside >= 0 && fchdir(outside) == 0) {
        for (int i = 0; i < 50; i++)
            if (chdir("..") != 0)
                break;
        check_listing("fchdir to the old root, then ..", ".");
        for (int h = 0; h < nhostpaths; h++) {
            char p[1024];
            snprintf(p, sizeof p, ".%s", hostpaths[h]);
            try_open("fchdir to the old root, then ..", p);
        }
    }
    contained("chroot");
    return 0;
}

/* Device nodes: made on the tmpfs (only the sandbox's own devices open),
 * on the rw bind mount (refused: they would be host device nodes), and
 * the host's devices by name. */
static int dev(void)
{
    static const struct {
        const char *name;
        mode_t type;
        int major, minor;
    } nodes[] = {
        {"mem", S_IFCHR, 1, 1}, {"kmem", S_IFCHR, 1, 2}, {"port", S_IFCHR, 1, 4},
        {"kmsg", S_IFCHR, 1, 11}, {"sda", S_IFBLK, 8, 0}, {"vda", S_IFBLK, 253, 0},
        {"loop0", S_IFBLK, 7, 0}, {"tty0", S_IFCHR, 4, 0}, {"null", S_IFCHR, 1, 3},
    };
    char p[128], n[128];
    for (unsigned i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        snprintf(p, sizeof p, "/mnt/rw/%s", nodes[i].name);
        snprintf(n, sizeof n, "mknod_rw_%s", nodes[i].name);
        E(n, mknod(p, nodes[i].type | 0666, makedev(nodes[i].major, nodes[i].minor)), EPERM);
        snprintf(p, sizeof p, "/tmp/%s", nodes[i].name);
        snprintf(n, sizeof n, "mknod_tmp_%s", nodes[i].name);
        V(n, mknod(p, nodes[i].type | 0666, makedev(nodes[i].major, nodes[i].minor)));
        int fd = open(p, O_RDWR | O_NONBLOCK);
        snprintf(n, sizeof n, "open_tmp_%s", nodes[i].name);
        V(n, fd);
        if (fd >= 0) {
            char b[64];
            snprintf(n, sizeof n, "read_tmp_%s", nodes[i].name);
            V(n, read(fd, b, sizeof b));
            close(fd);
        }
        snprintf(p, sizeof p, "/dev/%s", nodes[i].name);
        snprintf(n, sizeof n, "open_dev_%s", nodes[i].name);
        fd = open(p, O_RDONLY | O_NONBLOCK);
        V(n, fd);
        if (fd >= 0)
            close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: escapes WHAT ARGS...\n");
        return 2;
    }
    const char *what = argv[1];
    int r = 2;
    if (strcmp(what, "dotdot") == 0 && argc >= 3) {
        text = argv[2];
        split_args(argc - 3, argv + 3);
        r = dotdot();
    } else if (strcmp(what, "symlinks") == 0 && argc >= 3) {
        text = argv[2];
        split_args(argc - 3, argv + 3);
        r = symlinks();
    } else if (strcmp(what, "exe_write") == 0) {
        r = exe_write(argv[0]);
    } else if (strcmp(what, "xdev") == 0) {
        r = xdev();
    } else if (strcmp(what, "race") == 0 && argc >= 4) {
        text = argv[2];
        r = race(atoi(argv[3]));
    } else if (strcmp(what, "moved_cwd") == 0 && argc >= 3) {
        text = argv[2];
        split_args(argc - 3, argv + 3);
        r = moved_cwd();
    } else if (strcmp(what, "tiocsti") == 0) {
        r = tiocsti();
    } else if (strcmp(what, "killall") == 0 && argc >= 3) {
        r = killall(atoi(argv[2]));
    } else if (strcmp(what, "ptrace") == 0 && argc >= 3) {
        r = tracing(atoi(argv[2]));
    } else if (strcmp(what, "ns") == 0 && argc >= 3) {
        text = argv[2];
        split_args(argc - 3, argv + 3);
        r = ns();
    } else if (strcmp(what, "dev") == 0) {
        r = dev();
    }
    if (r == 2)
        fprintf(stderr, "escapes: bad arguments for %s\n", what);
    printf("done\n");
    return r;
}
