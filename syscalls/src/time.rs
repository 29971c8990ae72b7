//! Time syscalls: clocks, sleeps.

use abi::flags::*;
use abi::{Errno, Timespec, Timeval};
use sentry::table::UserAddr;
use sentry::{SysResult, Task};
use std::time::{Duration, Instant};

/// A host clock reading in nanoseconds (0 if the clock is unavailable).
pub fn host_clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: FFI call writing into a local timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// The sandbox's CLOCK_MONOTONIC (starts at one second, like a fresh boot).
pub fn monotonic_ns(task: &Task) -> u64 {
    task.kernel.monotonic_ns()
}

/// The sandbox's CLOCK_REALTIME.
pub fn realtime_ns(task: &Task) -> u64 {
    task.kernel.realtime_ns()
}

fn clock_now(task: &Task, id: i32) -> Result<u64, Errno> {
    Ok(match id {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE => realtime_ns(task),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_COARSE | CLOCK_MONOTONIC_RAW | CLOCK_BOOTTIME => monotonic_ns(task),
        CLOCK_PROCESS_CPUTIME_ID => {
            let (u, s) = task.tg.cpu_times();
            u + s
        }
        CLOCK_THREAD_CPUTIME_ID => {
            let (u, s) = task.shared.times.get();
            u + s
        }
        id if id < 0 => cpu_clock(task, id)?,
        _ => return Err(Errno::EINVAL),
    })
}

/// The clocks clock_getcpuclockid and pthread_getcpuclockid make (Linux's
/// posix-cpu-timers encoding): ~pid << 3 | perthread << 2 | which, with
/// pid 0 the caller. A thread's clock is readable by its own process
/// only; a process's by anyone (through its leader's id).
fn cpu_clock(task: &Task, id: i32) -> Result<u64, Errno> {
    const CPUCLOCK_PROF: i32 = 0;
    const CPUCLOCK_VIRT: i32 = 1;
    const CPUCLOCK_SCHED: i32 = 2;
    let which = id & 3;
    let perthread = id & 4 != 0;
    let pid = !(id >> 3);
    let (user, sys) = if perthread {
        let thread = if pid == 0 { Some(task.shared.clone()) } else { task.tg.thread(pid) };
        thread.ok_or(Errno::EINVAL)?.times.get()
    } else if pid == 0 || pid == task.tg.tgid {
        task.tg.cpu_times()
    } else {
        task.kernel.group(pid).ok_or(Errno::EINVAL)?.cpu_times()
    };
    match which {
        CPUCLOCK_PROF | CPUCLOCK_SCHED => Ok(user.saturating_add(sys)),
        CPUCLOCK_VIRT => Ok(user),
        _ => Err(Errno::EINVAL),
    }
}

/// Whether `id` is a thread's CPU clock (no clock_nanosleep on it).
fn is_thread_cpu_clock(id: i32) -> bool {
    id == CLOCK_THREAD_CPUTIME_ID || (id < 0 && id & 4 != 0)
}

pub fn clock_gettime(task: &mut Task, id: i32, ts: UserAddr) -> SysResult {
    let ns = clock_now(task, id)?;
    task.write_obj(ts, &Timespec::from_nanos(ns))?;
    Ok(0)
}

pub fn clock_getres(task: &mut Task, id: i32, ts: UserAddr) -> SysResult {
    clock_now(task, id)?;
    if !ts.is_null() {
        // A CPU clock's PROF and VIRT forms tick with the scheduler (HZ 250).
        let coarse = id == CLOCK_REALTIME_COARSE || id == CLOCK_MONOTONIC_COARSE || (id < 0 && id & 3 != 2);
        let res = if coarse { 4_000_000 } else { 1 };
        task.write_obj(ts, &Timespec { tv_sec: 0, tv_nsec: res })?;
    }
    Ok(0)
}

pub fn gettimeofday(task: &mut Task, tv: UserAddr, tz: UserAddr) -> SysResult {
    let ns = realtime_ns(task);
    if !tv.is_null() {
        task.write_obj(
            tv,
            &Timeval { tv_sec: (ns / 1_000_000_000) as i64, tv_usec: ((ns % 1_000_000_000) / 1000) as i64 },
        )?;
    }
    if !tz.is_null() {
        task.write_obj(tz, &abi::Timezone::default())?;
    }
    Ok(0)
}

pub fn time(task: &mut Task, t: UserAddr) -> SysResult {
    let s = (realtime_ns(task) / 1_000_000_000) as i64;
    if !t.is_null() {
        task.write_obj(t, &s)?;
    }
    Ok(s as u64)
}

/// Sleep until `deadline` (None: for ever), or until the task is
/// interrupted (EINTR): the interrupt wakes the sleep at once.
pub fn sleep_until(task: &Task, deadline: Option<Instant>) -> Result<(), Errno> {
    let w = vfs::Waitable::new(());
    let ctx = vfs::IoCtx { flags: 0, interrupt: &task.interrupt };
    let passed = move || deadline.is_some_and(|d| Instant::now() >= d);
    w.block_on(&ctx, |_| passed().then_some(Ok(())), |_| deadline).map_err(|e| {
        if e == Errno::ERESTARTSYS {
            Errno::EINTR
        } else {
            e
        }
    })
}

pub fn nanosleep(task: &mut Task, req: UserAddr, rem: UserAddr) -> SysResult {
    let wait = crate::fd::read_timespec(task, req)?;
    let deadline = vfs::deadline_after(wait);
    match sleep_until(task, deadline) {
        Ok(()) => Ok(0),
        Err(e) => {
            if !rem.is_null() {
                task.write_obj(rem, &Timespec::from_duration(time_left(wait, deadline)))?;
            }
            Err(e)
        }
    }
}

pub fn clock_nanosleep(task: &mut Task, id: i32, flags: u32, req: UserAddr, rem: UserAddr) -> SysResult {
    let now = clock_now(task, id)?;
    if is_thread_cpu_clock(id) {
        return Err(Errno::EINVAL);
    }
    let t: Timespec = task.read_obj(req)?;
    let ns = t.to_nanos().ok_or(Errno::EINVAL)?;
    let wait = Duration::from_nanos(if flags & TIMER_ABSTIME != 0 { ns.saturating_sub(now) } else { ns });
    let deadline = vfs::deadline_after(wait);
    match sleep_until(task, deadline) {
        Ok(()) => Ok(0),
        Err(e) => {
            if flags & TIMER_ABSTIME == 0 && !rem.is_null() {
                task.write_obj(rem, &Timespec::from_duration(time_left(wait, deadline)))?;
            }
            Err(e)
        }
    }
}

/// What is left of a sleep of `wait` (all of it if it never ends).
fn time_left(wait: Duration, deadline: Option<Instant>) -> Duration {
    deadline.map_or(wait, |d| d.saturating_duration_since(Instant::now()))
}

fn tv_dur(t: &Timeval) -> Result<Duration, Errno> {
    t.to_duration().ok_or(Errno::EINVAL)
}

fn dur_tv(d: Duration) -> Timeval {
    // A running timer never reads as zero (that would mean disarmed).
    let tv = Timeval::from_duration(d);
    if tv == Timeval::default() && !d.is_zero() {
        return Timeval { tv_sec: 0, tv_usec: 1 };
    }
    tv
}

const ITIMER_REAL: i32 = 0;

pub fn setitimer(task: &mut Task, which: i32, new: UserAddr, old: UserAddr) -> SysResult {
    if !(0..=2).contains(&which) {
        return Err(Errno::EINVAL);
    }
    let n: abi::Itimerval = if new.is_null() { abi::Itimerval::default() } else { task.read_obj(new)? };
    let (value, interval) = (tv_dur(&n.value)?, tv_dur(&n.interval)?);
    let (rem, ival) = if which != ITIMER_REAL {
        if new.is_null() {
            let t = sentry::locking::lock(&task.tg.cpu_timers)[which as usize - 1];
            (Duration::from_nanos(t.left), Duration::from_nanos(t.interval))
        } else {
            sentry::signal::set_cpu_timer(&task.tg, which as usize, value, interval)
        }
    } else if new.is_null() {
        let t = *sentry::locking::lock(&task.tg.itimer_real);
        (t.deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default(), t.interval)
    } else {
        sentry::signal::set_real_timer(&task.tg, value, interval)
    };
    if !old.is_null() {
        task.write_obj(old, &abi::Itimerval { interval: dur_tv(ival), value: dur_tv(rem) })?;
    }
    Ok(0)
}

pub fn getitimer(task: &mut Task, which: i32, cur: UserAddr) -> SysResult {
    setitimer(task, which, UserAddr(0), cur)
}

pub fn alarm(task: &mut Task, secs: u32) -> SysResult {
    let (rem, _) = sentry::signal::set_real_timer(&task.tg, Duration::from_secs(secs as u64), Duration::ZERO);
    // Whole seconds left, rounded to nearest, and never 0 for a pending alarm.
    let s = (rem.as_millis() as u64 + 500) / 1000;
    Ok(if s == 0 && !rem.is_zero() { 1 } else { s })
}
