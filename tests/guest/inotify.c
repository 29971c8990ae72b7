/* inotify: the events of changes made by this process and by a forked
 * child, in the working directory, the scratch directory and /var/tmp
 * (all on the overlay under `runsc-lite do`) and a tmpfs (/dev/shm); read(2) framing
 * and padding, coalescing, poll/epoll/FIONREAD readiness, IN_ONESHOT,
 * IN_MASK_ADD, IN_DONT_FOLLOW, IN_EXCL_UNLINK, IN_Q_OVERFLOW. */
#include "common.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <sys/wait.h>

#define NLABELS 8
static int labels_wd[NLABELS];
static const char *labels_name[NLABELS];
static unsigned last_cookie;

static void label(int wd, const char *name)
{
    for (int i = 0; i < NLABELS; i++) {
        if (!labels_name[i] || labels_wd[i] == wd) {
            labels_wd[i] = wd;
            labels_name[i] = name;
            return;
        }
    }
}

static const char *label_of(int wd)
{
    if (wd == -1)
        return "-";
    for (int i = 0; i < NLABELS && labels_name[i]; i++)
        if (labels_wd[i] == wd)
            return labels_name[i];
    return "?";
}

static void print_mask(uint32_t m)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
        {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
        {IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
        {IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"},
        {IN_MOVE_SELF, "MOVE_SELF"}, {IN_UNMOUNT, "UNMOUNT"}, {IN_Q_OVERFLOW, "Q_OVERFLOW"},
        {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"},
    };
    const char *sep = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (m & names[i].bit) {
            printf("%s%s", sep, names[i].name);
            sep = "|";
            m &= ~names[i].bit;
        }
    }
    if (m)
        printf("%s0x%x", sep, m);
}

/* Print every queued event of `fd` (non-blocking) under `tag`. */
static void drain(int fd, const char *tag)
{
    char buf[8192] __attribute__((aligned(8)));
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno != EAGAIN)
                printf("%s read err %s\n", tag, errno_name(errno));
            break;
        }
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            printf("%s %s ", tag, label_of(e->wd));
            print_mask(e->mask);
            if (e->len)
                printf(" %s len=%u", e->name, e->len);
            if (e->mask & IN_MOVED_FROM) {
                printf(" cookie=%s", e->cookie ? "set" : "zero");
                last_cookie = e->cookie;
            } else if (e->mask & IN_MOVED_TO) {
                printf(" cookie=%s", e->cookie == last_cookie ? "same" : "differs");
            } else if (e->cookie) {
                printf(" cookie=unexpected");
            }
            printf("\n");
            p += sizeof *e + e->len;
        }
    }
    printf("%s end\n", tag);
}

static void put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        printf("put %s err %s\n", text, errno_name(errno));
    close(fd);
}

static void suite(const char *where, const char *base)
{
    char dir[4096], f[4200], g[4200], h[4200], sub[4200], ln[4200], tag[64];
    snprintf(dir, sizeof dir, "%s/inotify-suite-%d", base, (int)getpid());
    guest_rm_rf(dir);
    if (mkdir(dir, 0755) != 0) {
        printf("%s mkdir err %s\n", where, errno_name(errno));
        return;
    }
    snprintf(f, sizeof f, "%s/f", dir);
    snprintf(g, sizeof g, "%s/g", dir);
    snprintf(h, sizeof h, "%s/a-longer-name-than-sixteen", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(ln, sizeof ln, "%s/ln", dir);
    snprintf(tag, sizeof tag, "%s", where);
    printf("== %s\n", where);

    int in = inotify_init1(IN_NONBLOCK);
    T("init1", in);
    int wd = inotify_add_watch(in, dir, IN_ALL_EVENTS);
    T("watch_dir", wd);
    label(wd, "D");

    /* Create, write, close. */
    int fd = open(f, O_WRONLY | O_CREAT | O_EXCL, 0644);
    T("create", fd);
    T("write", write(fd, "hello", 5));
    T("write2", write(fd, "hello", 5));
    T("write3", write(fd, "hello", 5));
    close(fd);
    drain(in, tag);

    /* A watch on the file too: each event on it comes to both. */
    int wf = inotify_add_watch(in, f, IN_ALL_EVENTS);
    T("watch_file", wf);
    label(wf, "F");
    B("distinct_wd", wf != wd);
    V("same_wd_again", inotify_add_watch(in, f, IN_ALL_EVENTS) == wf);
    fd = open(f, O_RDONLY);
    char b[16];
    T("read", read(fd, b, sizeof b));
    V("read_eof", read(fd, b, sizeof b));
    close(fd);
    drain(in, tag);

    T("chmod", chmod(f, 0600));
    T("truncate", truncate(f, 2));
    T("utimes", utimes(f, NULL));
    T("chown_none", chown(f, -1, -1));
    fd = open(f, O_WRONLY | O_TRUNC);
    close(fd);
    drain(in, tag);

    /* Directories, renames, links, removal. */
    T("mkdir", mkdir(sub, 0755));
    T("rename", rename(f, g));
    T("link", link(g, h));
    T("unlink_link", unlink(h));
    T("symlink", symlink("g", ln));
    T("rmdir", rmdir(sub));
    drain(in, tag);
    T("unlink", unlink(g));
    drain(in, tag);
    B("rm_gone_watch", inotify_rm_watch(in, wf) < 0 && errno == EINVAL);

    /* Unlinked while open: the file's watch lasts until the last close. */
    fd = open(g, O_RDWR | O_CREAT, 0644);
    int wo = inotify_add_watch(in, g, IN_ALL_EVENTS);
    label(wo, "U");
    T("unlink_open", unlink(g));
    T("write_unlinked", write(fd, "x", 1));
    drain(in, tag);
    close(fd);
    drain(in, tag);

    /* A directory watch sees listing and its own renames. */
    DIR *dd = opendir(dir);
    B("opendir", dd != NULL);
    while (dd && readdir(dd))
        ;
    if (dd)
        closedir(dd);
    drain(in, tag);

    /* A forked child's changes. */
    pid_t pid = fork();
    if (pid == 0) {
        put(f, "from child\n");
        _exit(0);
    }
    int st;
    V("child_reaped", waitpid(pid, &st, 0) == pid);
    drain(in, tag);

    /* Readiness. */
    struct pollfd pfd = {.fd = in, .events = POLLIN};
    V("poll_empty", poll(&pfd, 1, 0));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    T("epoll_add", epoll_ctl(ep, EPOLL_CTL_ADD, in, &ev));
    struct epoll_event got;
    V("epoll_empty", epoll_wait(ep, &got, 1, 0));
    put(h, "x");
    V("poll_ready", poll(&pfd, 1, 0));
    V("poll_revents", pfd.revents);
    V("epoll_ready", epoll_wait(ep, &got, 1, 0));
    int avail = -1;
    T("fionread", ioctl(in, FIONREAD, &avail));
    V("fionread_bytes", avail);
    /* A buffer too small for the next event; then exactly one event. */
    char small[sizeof(struct inotify_event) + 8];
    E("read_small", read(in, small, sizeof small), EINVAL);
    char one[sizeof(struct inotify_event) + 32];
    V("read_one", read(in, one, sizeof one));
    drain(in, tag);
    close(ep);

    /* A blocking read woken by a child's change. */
    int bl = inotify_init();
    T("init", bl);
    T("watch_blocking", inotify_add_watch(bl, dir, IN_CREATE));
    pid = fork();
    if (pid == 0) {
        put(g, "woken\n");
        _exit(0);
    }
    char big[256] __attribute__((aligned(8)));
    ssize_t n = read(bl, big, sizeof big);
    V("blocking_read", n);
    if (n > 0) {
        struct inotify_event *e = (struct inotify_event *)big;
        printf("blocking_event %s ", label_of(e->wd));
        print_mask(e->mask);
        printf(" %s\n", e->name);
    }
    waitpid(pid, &st, 0);

    /* Blocking poll, select and epoll_wait, each woken by a child. */
    for (int how = 0; how < 3; how++) {
        char drained[512];
        fcntl(bl, F_SETFL, O_NONBLOCK);
        while (read(bl, drained, sizeof drained) > 0)
            ;
        pid = fork();
        if (pid == 0) {
            char nm[4300];
            snprintf(nm, sizeof nm, "%s/wake%d", dir, how);
            put(nm, "w");
            _exit(0);
        }
        int r = -1;
        if (how == 0) {
            struct pollfd bp = {.fd = bl, .events = POLLIN};
            r = poll(&bp, 1, -1);
        } else if (how == 1) {
            fd_set rs;
            FD_ZERO(&rs);
            FD_SET(bl, &rs);
            r = select(bl + 1, &rs, NULL, NULL, NULL);
        } else {
            int bep = epoll_create1(0);
            struct epoll_event bev = {.events = EPOLLIN};
            epoll_ctl(bep, EPOLL_CTL_ADD, bl, &bev);
            r = epoll_wait(bep, &bev, 1, -1);
            close(bep);
        }
        printf("blocking_%s = %d\n", how == 0 ? "poll" : how == 1 ? "select" : "epoll", r);
        waitpid(pid, &st, 0);
        n = read(bl, big, sizeof big);
        V("woken_read", n);
        char nm[4300];
        snprintf(nm, sizeof nm, "%s/wake%d", dir, how);
        unlink(nm);
    }
    close(bl);

    /* IN_ONESHOT, IN_MASK_ADD, replacing a mask. */
    int w1 = inotify_add_watch(in, g, IN_MODIFY | IN_ONESHOT);
    label(w1, "O");
    put(g, "1");
    put(g, "2");
    V("mask_add_same_wd", inotify_add_watch(in, f, IN_MODIFY) == inotify_add_watch(in, f, IN_ATTRIB | IN_MASK_ADD));
    int w2 = inotify_add_watch(in, f, IN_ATTRIB | IN_MASK_ADD);
    label(w2, "M");
    E("mask_create_exists", inotify_add_watch(in, f, IN_ATTRIB | IN_MASK_CREATE), EEXIST);
    drain(in, tag);
    put(f, "m");
    chmod(f, 0644);
    drain(in, tag);
    T("replace_mask", inotify_add_watch(in, f, IN_ATTRIB));
    put(f, "m");
    chmod(f, 0600);
    drain(in, tag);
    T("rm_watch", inotify_rm_watch(in, w2));
    E("rm_watch_again", inotify_rm_watch(in, w2), EINVAL);
    drain(in, tag);

    /* IN_DONT_FOLLOW watches the link itself. */
    int wl = inotify_add_watch(in, ln, IN_ATTRIB | IN_DONT_FOLLOW);
    int wt = inotify_add_watch(in, ln, IN_ATTRIB);
    label(wl, "L");
    label(wt, "T");
    B("dont_follow_differs", wl != wt);
    chmod(g, 0640);
    drain(in, tag);
    inotify_rm_watch(in, wl);
    inotify_rm_watch(in, wt);
    drain(in, tag);

    /* The directory itself: moved, then deleted. */
    char moved[4200];
    snprintf(moved, sizeof moved, "%s/inotify-moved-%d", base, (int)getpid());
    guest_rm_rf(moved);
    unlink(f);
    unlink(g);
    unlink(h);
    unlink(ln);
    drain(in, tag);
    T("rename_dir", rename(dir, moved));
    T("rmdir_dir", rmdir(moved));
    drain(in, tag);
    close(in);
}

/* Events on a file unlinked while open reach the directory unless the
 * watch says IN_EXCL_UNLINK. */
static void excl_unlink(const char *base)
{
    char dir[4096], f[4200];
    snprintf(dir, sizeof dir, "%s/inotify-excl-%d", base, (int)getpid());
    guest_rm_rf(dir);
    mkdir(dir, 0755);
    snprintf(f, sizeof f, "%s/f", dir);
    for (int excl = 0; excl < 2; excl++) {
        int in = inotify_init1(IN_NONBLOCK);
        int fd = open(f, O_RDWR | O_CREAT, 0644);
        int wd = inotify_add_watch(in, dir, IN_MODIFY | IN_CLOSE | (excl ? IN_EXCL_UNLINK : 0));
        label(wd, excl ? "X" : "N");
        T("excl_unlink", unlink(f));
        T("excl_write", write(fd, "x", 1));
        close(fd);
        drain(in, excl ? "excl" : "noexcl");
        close(in);
    }
    rmdir(dir);
}

/* Device nodes (our own, so no other process's use shows): reads and
 * writes of null and zero. */
static void devices(const char *base)
{
    char dir[4096], null[4200], zero[4200];
    snprintf(dir, sizeof dir, "%s/inotify-dev-%d", base, (int)getpid());
    guest_rm_rf(dir);
    mkdir(dir, 0755);
    snprintf(null, sizeof null, "%s/null", dir);
    snprintf(zero, sizeof zero, "%s/zero", dir);
    T("mknod_null", mknod(null, S_IFCHR | 0666, makedev(1, 3)));
    T("mknod_zero", mknod(zero, S_IFCHR | 0666, makedev(1, 5)));
    int in = inotify_init1(IN_NONBLOCK);
    label(inotify_add_watch(in, null, IN_MODIFY | IN_ACCESS | IN_OPEN | IN_CLOSE), "null");
    label(inotify_add_watch(in, zero, IN_MODIFY | IN_ACCESS), "zero");
    int fd = open(null, O_RDWR);
    char b[8];
    T("null_write", write(fd, "x", 1));
    struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
    T("null_writev", writev(fd, iov, 2));
    V("null_read", read(fd, b, sizeof b));
    close(fd);
    fd = open(zero, O_RDONLY);
    T("zero_read", read(fd, b, sizeof b));
    close(fd);
    drain(in, "dev");
    close(in);
    guest_rm_rf(dir);

    /* procfs: a process's own status file. */
    in = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(in, "/proc/self/status", IN_OPEN | IN_ACCESS | IN_CLOSE_NOWRITE | IN_MODIFY);
    T("proc_watch", wd);
    label(wd, "status");
    fd = open("/proc/self/status", O_RDONLY);
    T("proc_read", read(fd, b, sizeof b));
    close(fd);
    drain(in, "proc");
    close(in);
}

/* Past max_queued_events: one IN_Q_OVERFLOW, then nothing. */
static void overflow(const char *base)
{
    char f[4200];
    snprintf(f, sizeof f, "%s/inotify-overflow-%d", base, (int)getpid());
    int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int in = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(in, f, IN_MODIFY | IN_ACCESS);
    label(wd, "Q");
    char c = 'x';
    for (int i = 0; i < 8200; i++) {
        pwrite(fd, &c, 1, 0);
        pread(fd, &c, 1, 0);
    }
    int avail = 0;
    ioctl(in, FIONREAD, &avail);
    V("overflow_bytes", avail);
    static char buf[16 * 16500] __attribute__((aligned(8)));
    ssize_t n = read(in, buf, sizeof buf);
    V("overflow_read", n);
    if (n >= 16) {
        struct inotify_event *e = (struct inotify_event *)(buf + n - 16);
        printf("overflow_last %s ", label_of(e->wd));
        print_mask(e->mask);
        printf("\n");
    }
    V("overflow_then", read(in, buf, sizeof buf));
    close(in);
    close(fd);
    unlink(f);
}

/* Exec opens and reads its file (IN_OPEN, IN_ACCESS, IN_CLOSE_NOWRITE),
 * directly and through a script's #! line. */
static void exec_events(const char *base)
{
    char dir[4096], bin[4200], script[4200], exe[4096];
    snprintf(dir, sizeof dir, "%s/inotify-exec-%d", base, (int)getpid());
    guest_rm_rf(dir);
    mkdir(dir, 0755);
    snprintf(bin, sizeof bin, "%s/prog", dir);
    snprintf(script, sizeof script, "%s/script", dir);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n < 0 ? 0 : n] = 0;
    int src = open(exe, O_RDONLY), dst = open(bin, O_WRONLY | O_CREAT, 0755);
    char buf[65536];
    while ((n = read(src, buf, sizeof buf)) > 0)
        if (write(dst, buf, n) != n)
            break;
    close(src);
    close(dst);
    snprintf(buf, sizeof buf, "#!%s --exit\n", bin);
    dst = open(script, O_WRONLY | O_CREAT, 0755);
    T("script_write", write(dst, buf, strlen(buf)));
    close(dst);
    int in = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(in, dir, IN_ALL_EVENTS);
    label(wd, "X");
    for (int k = 0; k < 2; k++) {
        const char *p = k ? script : bin;
        pid_t pid = fork();
        if (pid == 0) {
            execl(p, p, "--exit", (char *)NULL);
            _exit(9);
        }
        int st;
        waitpid(pid, &st, 0);
        V(k ? "exec_script_status" : "exec_status", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
        drain(in, "exec");
    }
    close(in);
    guest_rm_rf(dir);
}

/* A file that existed before the sandbox started (the program itself: the
 * overlay's lower layer under `do`): its watch survives the copy-up that
 * a change of its mode makes. */
static void lower_file(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) {
        printf("lower readlink err %s\n", errno_name(errno));
        return;
    }
    exe[n] = 0;
    struct stat st;
    T("lower_stat", stat(exe, &st));
    int in = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(in, exe, IN_ATTRIB | IN_OPEN | IN_CLOSE_NOWRITE | IN_MODIFY);
    T("lower_watch", wd);
    label(wd, "E");
    T("lower_chmod", chmod(exe, st.st_mode & 07777));
    close(open(exe, O_RDONLY));
    drain(in, "lower");
    close(in);
}

int main(int argc, char **argv)
{
    guest_init();
    if (argc > 1 && strcmp(argv[1], "--exit") == 0)
        return 0;
    const char *scratch = guest_scratch(argc, argv);
    char cwd_dir[4096];
    snprintf(cwd_dir, sizeof cwd_dir, "inotify-cwd-%d", (int)getpid());
    guest_rm_rf(cwd_dir);
    mkdir(cwd_dir, 0755);
    suite("cwd", cwd_dir);
    guest_rm_rf(cwd_dir);
    suite("scratch", scratch);
    suite("overlay", "/var/tmp");
    suite("tmpfs", "/dev/shm");
    lower_file();
    devices("/dev/shm");
    exec_events(scratch);
    excl_unlink("/dev/shm");
    overflow("/dev/shm");
    int fd = inotify_init1(IN_CLOEXEC);
    V("cloexec", fcntl(fd, F_GETFD) & FD_CLOEXEC);
    V("nonblock", fcntl(fd, F_GETFL) & O_NONBLOCK);
    close(fd);
    fd = inotify_init1(IN_NONBLOCK);
    V("nonblock1", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    close(fd);
    guest_cleanup();
    printf("done\n");
    return 0;
}
