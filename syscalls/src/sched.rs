//! Scheduling syscalls: policies and real-time priorities
//! (sched_setscheduler, sched_setparam, sched_setattr and their get
//! forms, sched_rr_get_interval, the priority ranges), nice values
//! (getpriority, setpriority) and I/O priorities (ioprio_get/set).
//!
//! Every value is kept per thread in `ThreadShared::sched` and reported
//! back; none reaches the host scheduler (see `sentry::sched`). The
//! permission rules are Linux's, with "capable" meaning euid 0 (the
//! sandbox's root holds every capability in its namespace).

use abi::flags::{RLIMIT_NICE, RLIMIT_RTPRIO};
use abi::{Errno, Pod, SchedAttr, Timespec};
use sentry::kernel::ThreadShared;
use sentry::locking::lock;
use sentry::sched::*;
use sentry::table::UserAddr;
use sentry::{SysResult, Task, ThreadGroup};
use std::sync::Arc;

const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;
const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;
const SCHED_FLAG_KEEP_POLICY: u64 = 0x08;
const SCHED_FLAG_KEEP_PARAMS: u64 = 0x10;
const SCHED_FLAG_UTIL_CLAMP: u64 = 0x60;
/// SCHED_FLAG_ALL and SCHED_FLAG_SUGOV.
const SCHED_FLAGS_KNOWN: u64 = 0x7f | 0x1000_0000;
const SCHED_ATTR_SIZE_VER0: u32 = 48;
const SCHED_ATTR_SIZE_VER1: u32 = 56;
/// Linux's RR timeslice (sched_rr_timeslice_ms = 100).
const RR_TIMESLICE_NS: i64 = 100_000_000;
const PAGE: u32 = 4096;

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;
const IOPRIO_WHO_PROCESS: i32 = 1;
const IOPRIO_WHO_PGRP: i32 = 2;
const IOPRIO_WHO_USER: i32 = 3;

/// One thread a call is aimed at, with its process.
struct Target {
    tg: Arc<ThreadGroup>,
    thread: Arc<ThreadShared>,
}

/// The thread with id `tid` (0: the caller), as find_task_by_vpid.
fn thread(task: &Task, tid: i32) -> Option<Target> {
    if tid == 0 || tid == task.tid {
        return Some(Target { tg: task.tg.clone(), thread: task.shared.clone() });
    }
    if tid < 0 {
        return None;
    }
    let tg = task.kernel.group_of_tid(tid)?;
    let thread = tg.thread(tid)?;
    Some(Target { tg, thread })
}

/// Every thread of the processes in group `pgid` or owned by real uid
/// `uid`.
fn threads_where(task: &Task, keep: impl Fn(&ThreadGroup) -> bool) -> Vec<Target> {
    let mut out = Vec::new();
    for tg in task.kernel.groups() {
        if !keep(&tg) {
            continue;
        }
        for thread in lock(&tg.threads).iter() {
            out.push(Target { tg: tg.clone(), thread: thread.clone() });
        }
    }
    out
}

fn capable(task: &Task) -> bool {
    task.creds().euid == 0
}

/// Linux's can_nice: may `t` go to `nice` (RLIMIT_NICE or privilege).
fn can_nice(task: &Task, t: &Target, nice: i32) -> bool {
    capable(task) || (20 - nice) as u64 <= t.tg.rlimit(RLIMIT_NICE).cur
}

/// Linux's check_same_owner (and set_one_prio's owner test).
fn same_owner(task: &Task, t: &Target) -> bool {
    let me = task.creds();
    let them = t.tg.creds();
    me.euid == them.euid || me.euid == them.uid
}

// ---- Policies ----

fn valid_policy(policy: u32) -> bool {
    matches!(policy, SCHED_OTHER | SCHED_FIFO | SCHED_RR | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE)
}

pub fn sched_get_priority_max(_task: &mut Task, policy: i32) -> SysResult {
    match policy as u32 {
        SCHED_FIFO | SCHED_RR => Ok(99),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE | 7 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sched_get_priority_min(_task: &mut Task, policy: i32) -> SysResult {
    match policy as u32 {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE | 7 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// The thread `pid` names for the sched_* calls (EINVAL below 0).
fn sched_target(task: &Task, pid: i32) -> Result<Target, Errno> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    thread(task, pid).ok_or(Errno::ESRCH)
}

pub fn sched_getscheduler(task: &mut Task, pid: i32) -> SysResult {
    let t = sched_target(task, pid)?;
    let p = *lock(&t.thread.sched);
    Ok((p.policy | if p.reset_on_fork { SCHED_RESET_ON_FORK } else { 0 }) as u64)
}

pub fn sched_getparam(task: &mut Task, pid: i32, param: UserAddr) -> SysResult {
    if param.is_null() || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let t = sched_target(task, pid)?;
    let prio = lock(&t.thread.sched).rt_priority;
    task.write_obj(param, &prio)?;
    Ok(0)
}

/// A change of policy and parameters, as __sched_setscheduler takes it.
struct Change {
    /// None: keep the current policy (sched_setparam, KEEP_POLICY).
    policy: Option<u32>,
    priority: u32,
    /// None: keep the nice value (sched_setscheduler).
    nice: Option<i32>,
    reset_on_fork: bool,
    /// KEEP_PARAMS: priority and nice are the thread's own.
    keep_params: bool,
}

fn apply(task: &Task, t: &Target, c: Change) -> Result<(), Errno> {
    let cur = *lock(&t.thread.sched);
    let policy = c.policy.unwrap_or(cur.policy);
    if !valid_policy(policy) {
        return Err(Errno::EINVAL);
    }
    let (priority, nice) =
        if c.keep_params { (cur.rt_priority, cur.nice) } else { (c.priority, c.nice.unwrap_or(cur.nice)) };
    let rt = matches!(policy, SCHED_FIFO | SCHED_RR);
    if priority > 99 || rt != (priority != 0) {
        return Err(Errno::EINVAL);
    }
    if policy == SCHED_DEADLINE {
        // No deadline admission control here: refused as a full CPU
        // bandwidth would refuse it.
        return Err(Errno::EBUSY);
    }
    if !capable(task) {
        if !rt && nice < cur.nice && !can_nice(task, t, nice) {
            return Err(Errno::EPERM);
        }
        if rt {
            let limit = t.tg.rlimit(RLIMIT_RTPRIO).cur;
            if policy != cur.policy && limit == 0 {
                return Err(Errno::EPERM);
            }
            if priority > cur.rt_priority && priority as u64 > limit {
                return Err(Errno::EPERM);
            }
        }
        if cur.policy == SCHED_IDLE && policy != SCHED_IDLE && !can_nice(task, t, cur.nice) {
            return Err(Errno::EPERM);
        }
        if !same_owner(task, t) {
            return Err(Errno::EPERM);
        }
        if cur.reset_on_fork && !c.reset_on_fork {
            return Err(Errno::EPERM);
        }
    }
    let mut p = lock(&t.thread.sched);
    p.policy = policy;
    p.rt_priority = priority;
    if !rt {
        p.nice = nice;
    }
    p.reset_on_fork = c.reset_on_fork;
    Ok(())
}

fn read_param(task: &Task, param: UserAddr, pid: i32) -> Result<u32, Errno> {
    if param.is_null() || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let prio: i32 = task.read_obj(param)?;
    // A negative priority is never valid.
    u32::try_from(prio).map_err(|_| Errno::EINVAL)
}

pub fn sched_setscheduler(task: &mut Task, pid: i32, policy: i32, param: UserAddr) -> SysResult {
    if policy < 0 {
        return Err(Errno::EINVAL);
    }
    let priority = read_param(task, param, pid)?;
    let t = thread(task, pid).ok_or(Errno::ESRCH)?;
    let policy = policy as u32;
    let reset = policy & SCHED_RESET_ON_FORK != 0;
    let change = Change {
        policy: Some(policy & !SCHED_RESET_ON_FORK),
        priority,
        nice: None,
        reset_on_fork: reset,
        keep_params: false,
    };
    apply(task, &t, change)?;
    Ok(0)
}

pub fn sched_setparam(task: &mut Task, pid: i32, param: UserAddr) -> SysResult {
    let priority = read_param(task, param, pid)?;
    let t = thread(task, pid).ok_or(Errno::ESRCH)?;
    let reset = lock(&t.thread.sched).reset_on_fork;
    apply(task, &t, Change { policy: None, priority, nice: None, reset_on_fork: reset, keep_params: false })?;
    Ok(0)
}

pub fn sched_setattr(task: &mut Task, pid: i32, uattr: UserAddr, flags: u32) -> SysResult {
    if uattr.is_null() || pid < 0 || flags != 0 {
        return Err(Errno::EINVAL);
    }
    let mut size: u32 = task.read_obj(uattr)?;
    if size == 0 {
        size = SCHED_ATTR_SIZE_VER0;
    }
    if !(SCHED_ATTR_SIZE_VER0..=PAGE).contains(&size) {
        task.write_obj(uattr, &SCHED_ATTR_SIZE_VER1)?;
        return Err(Errno::E2BIG);
    }
    let mut raw = [0u8; SCHED_ATTR_SIZE_VER1 as usize];
    let known = size.min(SCHED_ATTR_SIZE_VER1) as usize;
    task.copy_in(uattr, &mut raw[..known])?;
    if size > SCHED_ATTR_SIZE_VER1 {
        // A newer caller's fields past ours must be zero.
        let mut tail = vec![0u8; (size - SCHED_ATTR_SIZE_VER1) as usize];
        task.copy_in(uattr.offset(SCHED_ATTR_SIZE_VER1 as u64)?, &mut tail)?;
        if tail.iter().any(|&b| b != 0) {
            task.write_obj(uattr, &SCHED_ATTR_SIZE_VER1)?;
            return Err(Errno::E2BIG);
        }
    }
    let a = SchedAttr::from_bytes(&raw).ok_or(Errno::EFAULT)?;
    if a.flags & SCHED_FLAG_UTIL_CLAMP != 0 && size < SCHED_ATTR_SIZE_VER1 {
        return Err(Errno::EINVAL);
    }
    if (a.policy as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let t = thread(task, pid).ok_or(Errno::ESRCH)?;
    if a.flags & !SCHED_FLAGS_KNOWN != 0 {
        return Err(Errno::EINVAL);
    }
    let keep_policy = a.flags & (SCHED_FLAG_KEEP_POLICY | SCHED_FLAG_KEEP_PARAMS) != 0;
    let change = Change {
        policy: if keep_policy { None } else { Some(a.policy) },
        priority: a.priority,
        nice: Some(a.nice.clamp(-20, 19)),
        reset_on_fork: a.flags & SCHED_FLAG_RESET_ON_FORK != 0,
        keep_params: a.flags & SCHED_FLAG_KEEP_PARAMS != 0,
    };
    apply(task, &t, change)?;
    Ok(0)
}

pub fn sched_getattr(task: &mut Task, pid: i32, uattr: UserAddr, usize_: u32, flags: u32) -> SysResult {
    if uattr.is_null() || pid < 0 || !(SCHED_ATTR_SIZE_VER0..=PAGE).contains(&usize_) || flags != 0 {
        return Err(Errno::EINVAL);
    }
    let t = thread(task, pid).ok_or(Errno::ESRCH)?;
    let p = *lock(&t.thread.sched);
    let size = usize_.min(SCHED_ATTR_SIZE_VER1);
    let a = SchedAttr {
        size,
        policy: p.policy,
        flags: if p.reset_on_fork { SCHED_FLAG_RESET_ON_FORK } else { 0 },
        nice: if p.is_rt() { 0 } else { p.nice },
        priority: p.rt_priority,
        util_max: 1024,
        ..Default::default()
    };
    task.copy_out(uattr, &a.as_bytes()[..size as usize])?;
    Ok(0)
}

pub fn sched_rr_get_interval(task: &mut Task, pid: i32, tp: UserAddr) -> SysResult {
    let t = sched_target(task, pid)?;
    let policy = lock(&t.thread.sched).policy;
    let ts = if policy == SCHED_RR { Timespec { tv_sec: 0, tv_nsec: RR_TIMESLICE_NS } } else { Timespec::default() };
    task.write_obj(tp, &ts)?;
    Ok(0)
}

// ---- Nice values ----

/// The threads a PRIO_* call names; None for a bad `which`.
fn prio_targets(task: &Task, which: i32, who: i32) -> Option<Vec<Target>> {
    Some(match which {
        PRIO_PROCESS => thread(task, who).into_iter().collect(),
        PRIO_PGRP => {
            let pgid = if who == 0 { *lock(&task.tg.pgid) } else { who };
            threads_where(task, |tg| *lock(&tg.pgid) == pgid)
        }
        PRIO_USER => {
            let uid = if who == 0 { task.creds().uid } else { who as u32 };
            threads_where(task, |tg| tg.creds().uid == uid)
        }
        _ => return None,
    })
}

/// The raw syscall's answer: 20 - nice of the best (lowest) nice value,
/// so that it is never negative; glibc turns it back.
pub fn getpriority(task: &mut Task, which: i32, who: i32) -> SysResult {
    let targets = prio_targets(task, which, who).ok_or(Errno::EINVAL)?;
    targets.iter().map(|t| (20 - lock(&t.thread.sched).nice) as u64).max().ok_or(Errno::ESRCH)
}

pub fn setpriority(task: &mut Task, which: i32, who: i32, prio: i32) -> SysResult {
    let targets = prio_targets(task, which, who).ok_or(Errno::EINVAL)?;
    let nice = prio.clamp(-20, 19);
    let mut result = Err(Errno::ESRCH);
    for t in &targets {
        if !capable(task) && !same_owner(task, t) {
            result = Err(Errno::EPERM);
            continue;
        }
        let mut p = lock(&t.thread.sched);
        if nice < p.nice && !can_nice(task, t, nice) {
            result = Err(Errno::EACCES);
            continue;
        }
        p.nice = nice;
        if result == Err(Errno::ESRCH) {
            result = Ok(0);
        }
    }
    result
}

// ---- I/O priorities ----

const IOPRIO_CLASS_NONE: u32 = 0;
const IOPRIO_CLASS_RT: u32 = 1;
const IOPRIO_CLASS_BE: u32 = 2;
const IOPRIO_CLASS_IDLE: u32 = 3;

fn ioprio_targets(task: &Task, which: i32, who: i32) -> Option<Vec<Target>> {
    let prio_which = match which {
        IOPRIO_WHO_PROCESS => PRIO_PROCESS,
        IOPRIO_WHO_PGRP => PRIO_PGRP,
        IOPRIO_WHO_USER => PRIO_USER,
        _ => return None,
    };
    prio_targets(task, prio_which, who)
}

/// Linux's ioprio_best: the better of two values, no class counting as
/// best effort.
fn ioprio_best(a: u16, b: u16) -> u16 {
    let class = |v: u16| match (v >> 13) as u32 {
        IOPRIO_CLASS_NONE => IOPRIO_CLASS_BE,
        c => c,
    };
    match class(a).cmp(&class(b)) {
        std::cmp::Ordering::Equal => a.min(b),
        std::cmp::Ordering::Greater => b,
        std::cmp::Ordering::Less => a,
    }
}

pub fn ioprio_get(task: &mut Task, which: i32, who: i32) -> SysResult {
    let targets = ioprio_targets(task, which, who).ok_or(Errno::EINVAL)?;
    let best = targets.iter().map(|t| lock(&t.thread.sched).ioprio).reduce(ioprio_best).ok_or(Errno::ESRCH)?;
    Ok(best as u64)
}

pub fn ioprio_set(task: &mut Task, which: i32, who: i32, ioprio: i32) -> SysResult {
    let class = ((ioprio >> 13) & 7) as u32;
    let level = ioprio & 7;
    match class {
        IOPRIO_CLASS_RT if !capable(task) => return Err(Errno::EPERM),
        IOPRIO_CLASS_RT | IOPRIO_CLASS_BE | IOPRIO_CLASS_IDLE => {}
        IOPRIO_CLASS_NONE if level == 0 => {}
        _ => return Err(Errno::EINVAL),
    }
    let targets = ioprio_targets(task, which, who).ok_or(Errno::EINVAL)?;
    let me = task.creds();
    let mut result = Err(Errno::ESRCH);
    for t in &targets {
        let them = t.tg.creds();
        if !capable(task) && them.uid != me.euid && them.uid != me.uid {
            result = Err(Errno::EPERM);
            continue;
        }
        lock(&t.thread.sched).ioprio = ioprio as u16;
        if result == Err(Errno::ESRCH) {
            result = Ok(0);
        }
    }
    result
}

// ---- CPU affinity ----

/// The CPUs the sandbox may use, as a mask (the first 64: the Sentry serves
/// no more): the affinity mask it was started with, so a sandbox started
/// under `taskset -c 1` reports CPU 1, as natively.
fn online_cpus() -> u64 {
    sentry::hostfacts::affinity()
}

/// Linux's cpumask_size() for the CPUs served: one long.
const CPUMASK_SIZE: u32 = 8;

pub fn sched_getaffinity(task: &mut Task, pid: i32, len: u32, mask: UserAddr) -> SysResult {
    // Linux checks the length first (too short for nr_cpu_ids, or not
    // whole longs), then the process.
    let ncpus = sentry::hostfacts::ncpus().clamp(1, 64) as u64;
    if (len as u64) * 8 < ncpus || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let t = thread(task, pid).ok_or(Errno::ESRCH)?;
    let bits = lock(&t.thread.sched).cpus(online_cpus());
    let n = len.min(CPUMASK_SIZE) as usize;
    task.copy_out(mask, &bits.to_ne_bytes()[..n])?;
    Ok(n as u64)
}

pub fn sched_setaffinity(task: &mut Task, pid: i32, len: u32, mask: UserAddr) -> SysResult {
    // As get_user_cpu_mask: a short mask is zero-extended, a long one cut
    // to cpumask_size(); the copy (EFAULT) comes before the lookup.
    let n = len.min(CPUMASK_SIZE) as usize;
    let mut raw = [0u8; CPUMASK_SIZE as usize];
    task.copy_in(mask, &mut raw[..n])?;
    let wanted = u64::from_ne_bytes(raw);
    let t = thread(task, pid).ok_or(Errno::ESRCH)?;
    if !same_owner(task, &t) && !capable(task) {
        return Err(Errno::EPERM);
    }
    let effective = wanted & online_cpus();
    if effective == 0 {
        return Err(Errno::EINVAL);
    }
    lock(&t.thread.sched).affinity = effective;
    Ok(0)
}
