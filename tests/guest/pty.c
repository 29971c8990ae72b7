/* Pseudo-terminals: /dev/ptmx and /dev/pts, the N_TTY line discipline
 * (termios, canonical mode, echo, editing, signal characters), window
 * size and SIGWINCH, sessions and the controlling terminal, hang-ups. */
#include "common.h"
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>

static void show(const char *name, const char *b, int n)
{
    printf("%s = \"", name);
    for (int i = 0; i < n; i++) {
        unsigned char c = b[i];
        if (c >= 32 && c < 127 && c != '\\')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    printf("\"\n");
}

static int open_pair(int *m, int *s)
{
    *m = posix_openpt(O_RDWR | O_NOCTTY);
    if (*m < 0 || grantpt(*m) || unlockpt(*m))
        return -1;
    *s = open(ptsname(*m), O_RDWR | O_NOCTTY);
    return *s;
}

/* Read what the master has (non-blocking after a short poll). */
static int drain(int m, char *b, int len)
{
    int got = 0;
    struct pollfd p = {m, POLLIN, 0};
    while (got < len && poll(&p, 1, got ? 50 : 2000) > 0 && (p.revents & POLLIN)) {
        int n = read(m, b + got, len - got);
        if (n <= 0)
            break;
        got += n;
    }
    return got;
}

static volatile sig_atomic_t got_int, got_winch;
static void on_int(int s) { (void)s; got_int = 1; }
static void on_winch(int s) { (void)s; got_winch = 1; }

/* A child in a new session whose controlling terminal is the slave. */
static void session_child(const char *path, int ready, int go)
{
    setsid();
    signal(SIGINT, on_int);
    signal(SIGWINCH, on_winch);
    int s = open(path, O_RDWR); /* no O_NOCTTY: becomes the ctty */
    char c = s >= 0 ? 'y' : 'n';
    printf("child_pgrp_is_fg %s\n", tcgetpgrp(s) == getpgrp() ? "yes" : "no");
    printf("child_sid %s\n", tcgetsid(s) == getsid(0) ? "yes" : "no");
    int t = open("/dev/tty", O_RDWR);
    printf("child_dev_tty %s\n", t >= 0 ? "ok" : errno_name(errno));
    printf("child_sctty_again %s\n", ioctl(s, TIOCSCTTY, 0) == 0 ? "ok" : errno_name(errno));
    fflush(stdout);
    write(ready, &c, 1);
    /* Wait for SIGINT then SIGWINCH, each announced by the parent. */
    read(go, &c, 1);
    for (int i = 0; i < 2000 && !got_int; i++)
        usleep(1000);
    printf("child_sigint %s\n", got_int ? "yes" : "no");
    fflush(stdout);
    write(ready, &c, 1);
    read(go, &c, 1);
    for (int i = 0; i < 2000 && !got_winch; i++)
        usleep(1000);
    printf("child_sigwinch %s\n", got_winch ? "yes" : "no");
    struct winsize ws;
    ioctl(t, TIOCGWINSZ, &ws);
    printf("child_winsize %d %d\n", ws.ws_row, ws.ws_col);
    /* A background group reading its terminal is stopped by SIGTTIN. */
    pid_t bg = fork();
    if (bg == 0) {
        setpgid(0, 0);
        char x;
        read(s, &x, 1);
        _exit(0);
    }
    int st;
    waitpid(bg, &st, WUNTRACED);
    printf("bg_read %s\n", WIFSTOPPED(st) && WSTOPSIG(st) == SIGTTIN ? "SIGTTIN" : "other");
    kill(bg, SIGKILL);
    waitpid(bg, &st, 0);
    fflush(stdout);
    _exit(0);
}

int main(void)
{
    int m, s;
    char b[256];
    int n;

    /* The run's own session must not matter. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (fork() != 0) {
        int st;
        wait(&st);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    }
    setsid();
    E("dev_tty_without_ctty", open("/dev/tty", O_RDWR), ENXIO);

    m = posix_openpt(O_RDWR | O_NOCTTY);
    T("posix_openpt", m);
    int ptn = -1;
    T("TIOCGPTN", ioctl(m, TIOCGPTN, &ptn));
    char path[64];
    snprintf(path, sizeof path, "/dev/pts/%d", ptn);
    B("ptsname_matches", ptsname(m) && strcmp(ptsname(m), path) == 0);
    E("open_locked_slave", open(path, O_RDWR | O_NOCTTY), EIO);
    T("grantpt", grantpt(m));
    T("unlockpt", unlockpt(m));
    s = open(path, O_RDWR | O_NOCTTY);
    T("open_slave", s);
    B("isatty_slave", isatty(s));
    B("isatty_master", isatty(m));
    struct stat st;
    T("stat_slave", stat(path, &st));
    B("slave_is_chr", S_ISCHR(st.st_mode));
    B("slave_major_136", major(st.st_rdev) == 136);
    char name[64];
    T("ttyname_r", ttyname_r(s, name, sizeof name));
    B("ttyname_is_path", strcmp(name, path) == 0);
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    T("TIOCGPTPEER", peer);
    B("peer_name", ttyname_r(peer, name, sizeof name) == 0 && strcmp(name, path) == 0);
    B("peer_cloexec", fcntl(peer, F_GETFD) == FD_CLOEXEC);
    close(peer);
    E("TIOCGPTPEER_on_slave", ioctl(s, TIOCGPTPEER, O_RDWR), EIO);

    struct termios t, t2;
    T("tcgetattr", tcgetattr(s, &t));
    printf("default iflag=%#x oflag=%#x cflag=%#x lflag=%#x\n", t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag);
    printf("default cc");
    for (int i = 0; i < 17; i++)
        printf(" %d", t.c_cc[i]);
    printf("\n");
    T("tcgetattr_master", tcgetattr(m, &t2));
    B("master_sees_slave_termios", t.c_lflag == t2.c_lflag && t.c_iflag == t2.c_iflag && t.c_oflag == t2.c_oflag);

    /* Canonical mode with echo. */
    write(m, "hello\r", 6);
    n = read(s, b, sizeof b);
    show("canon_read", b, n);
    n = drain(m, b, sizeof b);
    show("canon_echo", b, n);

    /* Editing: erase, kill, word erase, EOF. */
    write(m, "abc\x7f" "d\x15xy z\x17w\n", 13);
    n = read(s, b, sizeof b);
    show("edit_read", b, n);
    n = drain(m, b, sizeof b);
    show("edit_echo", b, n);
    write(m, "\x01\n", 2);
    n = read(s, b, sizeof b);
    show("ctl_read", b, n);
    n = drain(m, b, sizeof b);
    show("ctl_echo", b, n);
    write(m, "ab\x04", 3);
    n = read(s, b, sizeof b);
    show("eof_partial", b, n);
    write(m, "\x04", 1);
    V("eof_empty", read(s, b, sizeof b));
    n = drain(m, b, sizeof b);
    show("eof_echo", b, n);
    write(m, "two\n", 4);
    struct pollfd ps = {s, POLLIN, 0};
    poll(&ps, 1, 2000);
    int avail = -1;
    ioctl(s, FIONREAD, &avail);
    V("fionread", avail);
    T("tcflush_in", tcflush(s, TCIFLUSH));
    ioctl(s, FIONREAD, &avail);
    V("fionread_flushed", avail);

    /* Output processing. */
    write(s, "a\nb\n", 4);
    n = drain(m, b, sizeof b);
    show("onlcr", b, n);

    /* Non-canonical mode, termios round trip. */
    t2 = t;
    cfmakeraw(&t2);
    t2.c_cc[VMIN] = 0;
    t2.c_cc[VTIME] = 0;
    T("tcsetattr_raw", tcsetattr(s, TCSANOW, &t2));
    struct termios t3;
    tcgetattr(s, &t3);
    B("raw_round_trip", t3.c_lflag == t2.c_lflag && t3.c_iflag == t2.c_iflag && t3.c_oflag == t2.c_oflag &&
                            t3.c_cc[VMIN] == 0);
    V("raw_empty_read", read(s, b, sizeof b));
    t2.c_cc[VTIME] = 1; /* 0.1 s for any byte, then 0 */
    tcsetattr(s, TCSANOW, &t2);
    V("vtime_read", read(s, b, sizeof b));
    t2.c_cc[VTIME] = 0;
    int fl = fcntl(s, F_GETFL);
    t2.c_cc[VMIN] = 1;
    tcsetattr(s, TCSANOW, &t2);
    fcntl(s, F_SETFL, fl | O_NONBLOCK);
    E("vmin_nonblock_read", read(s, b, sizeof b), EAGAIN);
    fcntl(s, F_SETFL, fl);
    t2.c_cc[VMIN] = 0;
    tcsetattr(s, TCSANOW, &t2);
    write(m, "x\r\x03", 3);
    t2.c_cc[VMIN] = 3;
    tcsetattr(s, TCSANOW, &t2);
    n = read(s, b, sizeof b);
    show("raw_read", b, n);
    write(s, "p\n", 2);
    n = drain(m, b, sizeof b);
    show("raw_output", b, n);
    T("tcsetattr_back", tcsetattr(s, TCSAFLUSH, &t));

    /* Window size. */
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    T("TIOCSWINSZ", ioctl(m, TIOCSWINSZ, &ws));
    struct winsize ws2 = {0};
    T("TIOCGWINSZ", ioctl(s, TIOCGWINSZ, &ws2));
    printf("winsize %d %d\n", ws2.ws_row, ws2.ws_col);

    /* Error paths. */
    E("TIOCGPTN_on_slave", ioctl(s, TIOCGPTN, &ptn), ENOTTY);
    E("tcflush_bad", tcflush(m, 99), EINVAL);
    E("tcflow_bad", tcflow(m, 99), EINVAL);
    E("TIOCGPGRP_not_ctty", ioctl(s, TIOCGPGRP, &avail), ENOTTY);
    pid_t me = getpid();
    E("TIOCSPGRP_not_ctty", ioctl(s, TIOCSPGRP, &me), ENOTTY);
    E("TIOCNOTTY_not_ctty", ioctl(s, TIOCNOTTY), ENOTTY);
    int fd = open("/dev/null", O_RDWR);
    E("TCGETS_on_null", tcgetattr(fd, &t2), ENOTTY);
    E("bad_request", ioctl(s, 0x54ff, 0), ENOTTY);
    close(fd);

    /* A session whose controlling terminal is the slave. */
    int up[2], down[2];
    pipe(up);
    pipe(down);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0)
        session_child(path, up[1], down[0]);
    char x;
    read(up[0], &x, 1);
    B("child_opened", x == 'y');
    write(m, "\x03", 1);
    write(down[1], &x, 1);
    read(up[0], &x, 1);
    n = drain(m, b, sizeof b);
    show("intr_echo", b, n);
    ws.ws_row = 30;
    ws.ws_col = 100;
    ioctl(m, TIOCSWINSZ, &ws);
    write(down[1], &x, 1);
    int wst;
    waitpid(c, &wst, 0);
    B("child_exited", WIFEXITED(wst) && WEXITSTATUS(wst) == 0);

    /* TIOCSCTTY by hand in a new session; EPERM for a non-leader. */
    fflush(stdout);
    c = fork();
    if (c == 0) {
        printf("nonleader_sctty %s\n", ioctl(s, TIOCSCTTY, 0) == 0 ? "ok" : errno_name(errno));
        setsid();
        printf("leader_sctty %s\n", ioctl(s, TIOCSCTTY, 0) == 0 ? "ok" : errno_name(errno));
        int tt = open("/dev/tty", O_RDWR);
        printf("dev_tty_after_sctty %s\n", tt >= 0 ? "ok" : errno_name(errno));
        fflush(stdout);
        /* The leader giving it up hangs up its own foreground group. */
        signal(SIGHUP, SIG_IGN);
        printf("TIOCNOTTY %s\n", ioctl(s, TIOCNOTTY) == 0 ? "ok" : errno_name(errno));
        printf("dev_tty_after_notty %s\n", open("/dev/tty", O_RDWR) >= 0 ? "ok" : errno_name(errno));
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, &wst, 0);

    /* Every slave descriptor closed: EIO and POLLHUP on the master. */
    close(s);
    struct pollfd p = {m, POLLIN, 0};
    poll(&p, 1, 1000);
    B("master_pollhup", p.revents & POLLHUP);
    E("master_read_eio", read(m, b, sizeof b), EIO);

    /* The master closed: the slave is hung up. */
    int m2 = -1, s2 = -1;
    T("second_pair", open_pair(&m2, &s2));
    close(m2);
    V("hungup_read", read(s2, b, sizeof b));
    E("hungup_write", write(s2, "x", 1), EIO);
    close(s2);

    /* A master whose slave was never opened: nothing to read yet. */
    int m3 = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    E("fresh_master_read", read(m3, b, sizeof b), EAGAIN);
    close(m3);
    close(m);
    printf("done\n");
    return 0;
}
