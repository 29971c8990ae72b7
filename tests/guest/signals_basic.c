/* Signals in one thread: sigaction + raise + handler, SA_SIGINFO fields,
 * sigprocmask blocking and pending, sigpending, SIG_IGN, kill to self,
 * sigaltstack, restart of the handler state, EINVAL paths. */
#include "common.h"
#include <signal.h>

static volatile sig_atomic_t hits, last_sig, last_code, last_pid_ok, on_altstack;
static char altstack[65536];

static void handler(int sig)
{
    hits++;
    last_sig = sig;
}

static void info_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    hits++;
    last_sig = sig;
    last_code = si->si_code;
    last_pid_ok = si->si_pid == getpid();
    char here;
    on_altstack = &here >= altstack && &here < altstack + sizeof altstack;
}

int main(int argc, char **argv)
{
    guest_init();
    guest_scratch(argc, argv);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    T("sigaction_usr1", sigaction(SIGUSR1, &sa, NULL));
    T("raise_usr1", raise(SIGUSR1));
    V("handler_hits", hits);
    V("handler_sig", last_sig);
    T("sigaction_query", sigaction(SIGUSR1, NULL, &old));
    B("sigaction_query_handler", old.sa_handler == handler);

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = info_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);
    T("kill_self_usr2", kill(getpid(), SIGUSR2));
    V("info_hits", hits);
    P("info_code_is_user %s\n", last_code == SI_USER ? "yes" : "no");
    B("info_pid_is_self", last_pid_ok);
    T("tgkill_self", syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR2));
    P("tgkill_code_is_tkill %s\n", last_code == SI_TKILL ? "yes" : "no");

    /* Blocking, pending, delivery on unblock */
    sigset_t set, oldset, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    T("sigprocmask_block", sigprocmask(SIG_BLOCK, &set, &oldset));
    hits = 0;
    raise(SIGUSR1);
    V("blocked_not_delivered", hits);
    sigpending(&pend);
    B("sigpending_has_usr1", sigismember(&pend, SIGUSR1));
    raise(SIGUSR1);
    T("sigprocmask_unblock", sigprocmask(SIG_UNBLOCK, &set, NULL));
    V("delivered_once_after_unblock", hits);
    sigpending(&pend);
    B("sigpending_empty", !sigismember(&pend, SIGUSR1));

    /* SIGKILL and SIGSTOP cannot be caught or blocked. */
    E("sigaction_sigkill_einval", sigaction(SIGKILL, &sa, NULL), EINVAL);
    E("sigaction_sigstop_einval", sigaction(SIGSTOP, &sa, NULL), EINVAL);
    E("sigaction_bad_signal_einval", sigaction(65, &sa, NULL), EINVAL);
    E("sigaction_zero_einval", sigaction(0, &sa, NULL), EINVAL);
    sigfillset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
    sigprocmask(SIG_SETMASK, NULL, &oldset);
    B("sigkill_not_blockable", !sigismember(&oldset, SIGKILL) && !sigismember(&oldset, SIGSTOP));
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
    E("sigprocmask_bad_how_einval", syscall(SYS_rt_sigprocmask, 99, &set, NULL, 8), EINVAL);
    E("sigprocmask_bad_size_einval", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 4), EINVAL);

    /* SIG_IGN: raise does nothing. */
    signal(SIGUSR1, SIG_IGN);
    hits = 0;
    T("raise_ignored", raise(SIGUSR1));
    V("ignored_hits", hits);
    /* kill with signal 0 checks existence only. */
    T("kill_sig0_self", kill(getpid(), 0));
    E("kill_esrch", kill(999999, 0), ESRCH);
    E("kill_bad_signal_einval", kill(getpid(), 99), EINVAL);

    /* SA_RESETHAND: the second raise takes the default (ignore for SIGCHLD
     * / SIGURG; use SIGURG whose default is to ignore). */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGURG, &sa, NULL);
    hits = 0;
    raise(SIGURG);
    raise(SIGURG);
    V("resethand_hits", hits);
    sigaction(SIGURG, NULL, &old);
    B("resethand_now_default", old.sa_handler == SIG_DFL);

    /* sigaltstack */
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 }, oss;
    T("sigaltstack", sigaltstack(&ss, &oss));
    B("sigaltstack_old_disabled", oss.ss_flags & SS_DISABLE);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = info_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    B("handler_ran_on_altstack", on_altstack);
    stack_t small = { .ss_sp = altstack, .ss_size = 100, .ss_flags = 0 };
    E("sigaltstack_too_small_enomem", sigaltstack(&small, NULL), ENOMEM);

    /* sigsuspend-free wait: rt_sigtimedwait on a blocked pending signal. */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    raise(SIGUSR2);
    siginfo_t si;
    struct timespec zero = { 0, 0 };
    V("sigtimedwait_got", sigtimedwait(&set, &si, &zero));
    E("sigtimedwait_none_eagain", sigtimedwait(&set, &si, &zero), EAGAIN);

    guest_cleanup();
    P("done\n");
    return 0;
}
