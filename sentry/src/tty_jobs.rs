//! The kernel's side of terminal job control (`vfs::tty::JobControl`):
//! who calls, process groups and sessions, signals to them.

use crate::kernel::{Kernel, ThreadGroup};
use crate::locking::lock;
use std::sync::{Arc, Weak};
use vfs::tty::{Caller, JobControl};

/// SI_KERNEL: the terminal sends, not a process.
const SI_KERNEL: i32 = 0x80;

pub struct SentryJobs {
    kernel: Weak<Kernel>,
}

/// Install the kernel's job control for the sandbox's terminals.
pub fn install(kernel: &Arc<Kernel>) {
    vfs::tty::set_job_control(Arc::new(SentryJobs { kernel: Arc::downgrade(kernel) }));
}

impl SentryJobs {
    fn current(&self) -> Option<(Arc<ThreadGroup>, i32)> {
        let tid = crate::procfs::current_pid();
        let k = self.kernel.upgrade()?;
        Some((k.group_of_tid(tid)?, tid))
    }

    fn groups(&self) -> Vec<Arc<ThreadGroup>> {
        self.kernel.upgrade().map(|k| k.groups()).unwrap_or_default()
    }

    fn send(tg: &Arc<ThreadGroup>, sig: i32) {
        let info = abi::SigInfo { signo: sig, code: SI_KERNEL, ..Default::default() };
        crate::signal::send_signal(tg, info);
    }
}

pub(crate) fn live(g: &ThreadGroup) -> bool {
    !*lock(&g.zombie) && g.exit_status().is_none()
}

impl JobControl for SentryJobs {
    fn caller(&self) -> Option<Caller> {
        let (tg, _) = self.current()?;
        let (pgid, sid) = (*lock(&tg.pgid), *lock(&tg.sid));
        Some(Caller { pid: tg.tgid, pgid, sid, root: tg.creds().euid == 0 })
    }

    fn signal_group(&self, pgid: i32, sig: i32) {
        for g in self.groups() {
            if *lock(&g.pgid) == pgid && live(&g) {
                Self::send(&g, sig);
            }
        }
    }

    fn signal_process(&self, pid: i32, sig: i32) {
        if let Some(g) = self.kernel.upgrade().and_then(|k| k.group(pid)) {
            if live(&g) {
                Self::send(&g, sig);
            }
        }
    }

    fn group_session(&self, pgid: i32) -> Option<i32> {
        self.groups().iter().find(|g| *lock(&g.pgid) == pgid && live(g)).map(|g| *lock(&g.sid))
    }

    fn orphaned(&self, pgid: i32) -> bool {
        let k = match self.kernel.upgrade() {
            Some(k) => k,
            None => return true,
        };
        for g in k.groups() {
            if *lock(&g.pgid) != pgid || !live(&g) {
                continue;
            }
            let ppid = *lock(&g.ppid);
            if let Some(p) = k.group(ppid) {
                if live(&p) && *lock(&p.pgid) != pgid && *lock(&p.sid) == *lock(&g.sid) {
                    return false;
                }
            }
        }
        true
    }

    fn caller_ignores(&self, sig: i32) -> bool {
        let Some((tg, tid)) = self.current() else { return false };
        let Some(idx) = usize::try_from(sig - 1).ok() else { return false };
        let ignored = lock(&tg.signals).actions.get(idx).is_some_and(|a| a.handler == abi::signal::SIG_IGN);
        ignored || tg.thread(tid).is_some_and(|t| t.blocks(sig))
    }

    fn session_alive(&self, sid: i32) -> bool {
        self.kernel.upgrade().and_then(|k| k.group(sid)).is_some_and(|g| live(&g) && *lock(&g.sid) == sid)
    }
}
