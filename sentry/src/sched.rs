//! Scheduling attributes of a thread: policy, real-time priority, nice
//! value and I/O priority, as sched_setscheduler(2), setpriority(2) and
//! ioprio_set(2) leave them. They are bookkeeping only: the host
//! scheduler never sees them (every task's host thread keeps the
//! Sentry's own policy and nice value), so a SCHED_FIFO guest thread is
//! not favoured over others. They are reported back by the get calls and
//! /proc/[pid]/stat.

pub const SCHED_OTHER: u32 = 0;
pub const SCHED_FIFO: u32 = 1;
pub const SCHED_RR: u32 = 2;
pub const SCHED_BATCH: u32 = 3;
pub const SCHED_IDLE: u32 = 5;
pub const SCHED_DEADLINE: u32 = 6;

/// What one thread holds. Locked alone (a leaf lock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedParams {
    pub policy: u32,
    /// 1..=99 under SCHED_FIFO/RR, else 0.
    pub rt_priority: u32,
    /// -20..=19; kept under every policy (a real-time thread keeps the
    /// nice value it had).
    pub nice: i32,
    pub reset_on_fork: bool,
    /// class << 13 | data, as ioprio_get returns it (0: none set).
    pub ioprio: u16,
    /// sched_setaffinity's mask of CPUs 0..64, already cut to the online
    /// ones; 0 means never set (every CPU). Like the rest, bookkeeping
    /// only: the host thread may still run anywhere.
    pub affinity: u64,
}

impl SchedParams {
    pub fn is_rt(&self) -> bool {
        matches!(self.policy, SCHED_FIFO | SCHED_RR)
    }

    /// What a new thread or process made by this one starts with: the
    /// same, except that SCHED_RESET_ON_FORK drops a real-time policy and
    /// a negative nice value (and is itself not inherited).
    pub fn inherited(&self) -> SchedParams {
        let mut p = *self;
        if p.reset_on_fork {
            if p.is_rt() || p.policy == SCHED_DEADLINE {
                p.policy = SCHED_OTHER;
                p.rt_priority = 0;
            }
            p.nice = p.nice.max(0);
            p.reset_on_fork = false;
        }
        p
    }

    /// The CPUs this thread may run on, given the `online` ones.
    pub fn cpus(&self, online: u64) -> u64 {
        if self.affinity == 0 {
            online
        } else {
            self.affinity & online
        }
    }

    /// /proc/[pid]/stat's priority field: 20 + nice, or -1 - rt_priority.
    pub fn proc_priority(&self) -> i64 {
        if self.is_rt() {
            -1 - self.rt_priority as i64
        } else {
            20 + self.nice as i64
        }
    }
}
