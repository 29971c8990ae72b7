/* clone3: every struct size Linux accepts, its flag and argument checks,
 * CLONE_PIDFD, CLONE_CLEAR_SIGHAND, a child on a stack of its own, and
 * the glibc callers that use clone3 first (pthread_create, posix_spawn). */
#include "common.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif
#define CLONE_CLEAR_SIGHAND_ 0x100000000ULL
#define CLONE_INTO_CGROUP_ 0x200000000ULL
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct cargs {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
        cgroup;
    uint64_t extra[2];
};

extern char **environ;

static long clone3_raw(struct cargs *a, size_t size)
{
    return syscall(SYS_clone3, a, size);
}

/* Fork through clone3 with `size`; the child exits 5; returns the exit
 * status seen by the parent, or -1 with errno. */
static int fork_with(struct cargs *a, size_t size)
{
    long pid = clone3_raw(a, size);
    if (pid < 0)
        return -1;
    if (pid == 0)
        _exit(5);
    int st = 0;
    if (waitpid(pid, &st, __WALL) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static char child_stack[65536] __attribute__((aligned(16)));

/* Runs in the child of clone3_on_stack, on child_stack. */
__attribute__((used, noreturn)) void clone3_stack_child(unsigned long sp)
{
    int ok = sp > (unsigned long)child_stack && sp <= (unsigned long)child_stack + sizeof child_stack;
    syscall(SYS_exit_group, ok ? 9 : 1);
    __builtin_unreachable();
}

static long clone3_on_stack(struct cargs *a, size_t size)
{
    long r;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov %%rsp, %%rdi\n\t"
                     "and $-16, %%rsp\n\t"
                     "call clone3_stack_child\n\t"
                     "hlt\n"
                     "1:"
                     : "=a"(r)
                     : "a"((long)SYS_clone3), "D"(a), "S"(size)
                     : "rcx", "r11", "memory");
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD), the child exiting at once
 * without touching the shared stack: Go's check that pidfds work. */
static long vfork_pidfd(int *pidfd)
{
    long r;
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov $60, %%eax\n\t"
                     "mov $8, %%edi\n\t"
                     "syscall\n"
                     "1:"
                     : "=a"(r)
                     : "a"((long)SYS_clone), "D"((long)(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD)), "S"(0L),
                       "d"(pidfd), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static void on_usr1(int s)
{
    (void)s;
}

static void *thread_fn(void *p)
{
    *(long *)p = syscall(SYS_gettid);
    return NULL;
}

int main(int argc, char **argv)
{
    guest_init();
    if (argc > 1 && strcmp(argv[1], "spawned") == 0)
        return 3;

    struct cargs a;
    memset(&a, 0, sizeof a);
    a.exit_signal = SIGCHLD;
    V("ver0", fork_with(&a, 64));
    V("ver1", fork_with(&a, 80));
    V("ver2", fork_with(&a, 88));
    V("bigger_zero_tail", fork_with(&a, sizeof a));
    a.extra[1] = 1;
    E("bigger_nonzero_tail", clone3_raw(&a, sizeof a), E2BIG);
    a.extra[1] = 0;
    E("too_small", clone3_raw(&a, 63), EINVAL);
    E("zero_size", clone3_raw(&a, 0), EINVAL);
    E("over_page", clone3_raw(&a, 4097), E2BIG);
    E("bad_pointer", clone3_raw((struct cargs *)8, 64), EFAULT);

    struct cargs b;
#define RESET() (memset(&b, 0, sizeof b), b.exit_signal = SIGCHLD)
    RESET();
    b.exit_signal = 65;
    E("exit_signal_65", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.exit_signal = 0x111;
    E("exit_signal_high_bits", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.flags = SIGCHLD;
    E("csignal_in_flags", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.flags = 0x400000; /* CLONE_DETACHED */
    E("detached", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.flags = 1ULL << 40;
    E("unknown_flag", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.flags = CLONE_SIGHAND | CLONE_VM | CLONE_CLEAR_SIGHAND_;
    E("sighand_and_clear", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.flags = CLONE_THREAD | CLONE_SIGHAND | CLONE_VM;
    E("thread_with_exit_signal", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.flags = CLONE_PARENT;
    E("parent_with_exit_signal", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.stack = (uint64_t)child_stack;
    E("stack_without_size", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.stack_size = 4096;
    E("size_without_stack", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.stack = 0x7ffffffff000ULL;
    b.stack_size = 1ULL << 40;
    E("stack_past_top", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.set_tid_size = 33;
    E("set_tid_size_33", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.set_tid_size = 1;
    E("set_tid_null", clone3_raw(&b, 88), EINVAL);
    int tids[2] = { getpid(), getpid() };
    RESET();
    b.set_tid = (uint64_t)tids;
    E("set_tid_without_size", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.set_tid = (uint64_t)tids;
    b.set_tid_size = 1;
    E("set_tid_in_use", clone3_raw(&b, 88), EEXIST);
    b.set_tid_size = 2;
    E("set_tid_two_levels", clone3_raw(&b, 88), EINVAL);
    int neg = -1;
    RESET();
    b.set_tid = (uint64_t)&neg;
    b.set_tid_size = 1;
    E("set_tid_negative", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.set_tid = 8;
    b.set_tid_size = 1;
    E("set_tid_bad_pointer", clone3_raw(&b, 88), EFAULT);
    RESET();
    b.flags = CLONE_INTO_CGROUP_;
    E("cgroup_in_ver0", clone3_raw(&b, 64), EINVAL);
    RESET();
    b.flags = 0x40; /* a CSIGNAL bit that is not CLONE_NEWTIME */
    E("csignal_bit_0x40", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.flags = CLONE_FS | CLONE_NEWNS;
    E("fs_with_newns", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.flags = CLONE_FS | CLONE_NEWUSER;
    E("fs_with_newuser", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.exit_signal = 0;
    b.flags = CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWPID;
    E("thread_with_newpid", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.exit_signal = 0;
    b.flags = CLONE_THREAD;
    E("thread_without_sighand", clone3_raw(&b, 88), EINVAL);
    RESET();
    b.flags = CLONE_SIGHAND;
    E("sighand_without_vm", clone3_raw(&b, 88), EINVAL);
    /* A bad parent_tid or child_tid is ignored (the child is made). */
    RESET();
    b.flags = CLONE_PARENT_SETTID | CLONE_CHILD_SETTID;
    b.parent_tid = 8;
    b.child_tid = 8;
    V("bad_tid_pointers_ignored", fork_with(&b, 88));
    RESET();
    b.flags = CLONE_INTO_CGROUP_;
    b.cgroup = 1ULL << 32;
    E("cgroup_over_int", clone3_raw(&b, 88), EINVAL);

    /* CLONE_PIDFD: the descriptor comes back through args.pidfd. */
    RESET();
    int pidfd = -1;
    b.flags = CLONE_PIDFD;
    b.pidfd = (uint64_t)&pidfd;
    long pid = clone3_raw(&b, 88);
    if (pid == 0) {
        char c;
        /* Wait for the parent's go (a closed pipe would do too). */
        (void)c;
        _exit(7);
    }
    T("pidfd_clone", pid);
    B("pidfd_set", pidfd >= 0);
    B("pidfd_cloexec", (fcntl(pidfd, F_GETFD) & FD_CLOEXEC) != 0);
    struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
    V("pidfd_poll", poll(&pfd, 1, 60000));
    B("pidfd_pollin", (pfd.revents & POLLIN) != 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    T("waitid_pidfd", waitid(P_PIDFD, pidfd, &si, WEXITED));
    B("waitid_pid", si.si_pid == pid);
    V("waitid_status", si.si_status);
    close(pidfd);
    RESET();
    b.flags = CLONE_PIDFD;
    b.pidfd = 8;
    E("pidfd_bad_pointer", clone3_raw(&b, 88), EFAULT);
    RESET();
    b.flags = CLONE_PIDFD | CLONE_PARENT_SETTID;
    b.pidfd = (uint64_t)&pidfd;
    b.parent_tid = (uint64_t)&pidfd;
    E("pidfd_same_as_parent_tid", clone3_raw(&b, 88), EINVAL);

    /* clone(2)'s CLONE_PIDFD: the descriptor comes back through ptid. */
    int lpidfd = -1;
    pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &lpidfd, 0, 0);
    if (pid == 0)
        _exit(6);
    T("legacy_clone_pidfd", pid);
    memset(&si, 0, sizeof si);
    T("legacy_waitid_pidfd", waitid(P_PIDFD, lpidfd, &si, WEXITED));
    V("legacy_waitid_status", si.si_status);
    close(lpidfd);
    E("legacy_pidfd_with_settid", syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &lpidfd, 0, 0),
      EINVAL);
    E("legacy_pidfd_detached", syscall(SYS_clone, CLONE_PIDFD | 0x400000 | SIGCHLD, 0, &lpidfd, 0, 0), EINVAL);

    /* Go's probe: vfork with a pidfd, waitid(P_PIDFD) on our own pidfd
     * is ECHILD, pidfd_send_signal(0) to ourselves works. */
    lpidfd = -1;
    pid = vfork_pidfd(&lpidfd);
    T("vfork_pidfd", pid);
    B("vfork_pidfd_set", lpidfd >= 0);
    memset(&si, 0, sizeof si);
    T("vfork_waitid", waitid(P_PIDFD, lpidfd, &si, WEXITED));
    V("vfork_status", si.si_status);
    close(lpidfd);
    int selffd = syscall(SYS_pidfd_open, getpid(), 0);
    E("waitid_own_pidfd", waitid(P_PIDFD, selffd, NULL, WEXITED), ECHILD);
    T("signal_zero_self", syscall(SYS_pidfd_send_signal, selffd, 0, NULL, 0));
    close(selffd);

    /* CLONE_CLEAR_SIGHAND: handlers go back to SIG_DFL, SIG_IGN stays. */
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, SIG_IGN);
    RESET();
    b.flags = CLONE_CLEAR_SIGHAND_;
    pid = clone3_raw(&b, 88);
    if (pid == 0) {
        struct sigaction s1, s2;
        sigaction(SIGUSR1, NULL, &s1);
        sigaction(SIGUSR2, NULL, &s2);
        _exit((s1.sa_handler == SIG_DFL ? 1 : 0) | (s2.sa_handler == SIG_IGN ? 2 : 0));
    }
    int st = 0;
    waitpid(pid, &st, 0);
    V("clear_sighand_child", WEXITSTATUS(st));
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);

    /* exit_signal 0: only __WALL/__WCLONE waits see it. */
    RESET();
    b.exit_signal = 0;
    V("exit_signal_zero", fork_with(&b, 88));

    /* A stack of the child's own. */
    RESET();
    b.stack = (uint64_t)child_stack;
    b.stack_size = sizeof child_stack;
    pid = clone3_on_stack(&b, 88);
    T("stack_clone", pid);
    st = 0;
    waitpid(pid, &st, 0);
    V("stack_child", WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    /* glibc's users. */
    pthread_t th;
    long tid = 0;
    T("pthread_create", -pthread_create(&th, NULL, thread_fn, &tid));
    T("pthread_join", -pthread_join(th, NULL));
    B("thread_tid_differs", tid > 0 && tid != getpid());
    char *args[] = { "/proc/self/exe", "spawned", NULL };
    pid_t sp;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0)
        self[n] = 0;
    T("posix_spawn", -posix_spawn(&sp, self, NULL, NULL, args, environ));
    st = 0;
    waitpid(sp, &st, 0);
    V("spawned_status", WEXITSTATUS(st));
    printf("done\n");
    return 0;
}
