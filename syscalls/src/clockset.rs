//! Setting the clocks: clock_settime, settimeofday, adjtimex and
//! clock_adjtime, answered as in a container without CAP_SYS_TIME (the
//! sandbox's clocks are the host's): every change is EPERM after Linux's
//! own argument checks, and adjtimex reads back the state of an
//! unsynchronised kernel clock.

use abi::flags::*;
use abi::{Errno, Timespec, Timeval};
use sentry::table::UserAddr;
use sentry::{SysResult, Task};

/// sizeof(struct timex) on x86-64.
const TIMEX_SIZE: usize = 208;
const ADJ_OFFSET_SINGLESHOT: u32 = 0x0001;
const ADJ_OFFSET_READONLY: u32 = 0x2000;
const ADJ_ADJTIME: u32 = 0x8000;
const STA_UNSYNC: i32 = 0x0040;
/// The clock state adjtimex returns for an unsynchronised clock.
const TIME_ERROR: u64 = 5;
/// NTP_PHASE_LIMIT (16 s, in microseconds): maxerror of a free-running clock.
const NTP_PHASE_LIMIT_US: i64 = 16_000_000;
/// 500 ppm, scaled by 2^16 (MAXFREQ_SCALED >> 16).
const TOLERANCE: i64 = 500 << 16;

pub fn clock_settime(task: &mut Task, id: i32, tp: UserAddr) -> SysResult {
    match id {
        CLOCK_REALTIME => {
            let t: Timespec = task.read_obj(tp)?;
            if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
                return Err(Errno::EINVAL);
            }
            Err(Errno::EPERM)
        }
        // CPU clocks exist but cannot be set; the others cannot be set.
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => {
            task.read_obj::<Timespec>(tp)?;
            Err(Errno::EPERM)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn settimeofday(task: &mut Task, tv: UserAddr, tz: UserAddr) -> SysResult {
    if !tv.is_null() {
        let t: Timeval = task.read_obj(tv)?;
        if !(0..1_000_000).contains(&t.tv_usec) {
            return Err(Errno::EINVAL);
        }
        if t.tv_sec < 0 {
            return Err(Errno::EINVAL);
        }
    }
    if !tz.is_null() {
        task.read_obj::<abi::Timezone>(tz)?;
    }
    Err(Errno::EPERM)
}

/// The timex of an unsynchronised clock reading `now_ns`.
fn timex_state(now_ns: u64, adjtime_read: bool) -> [u8; TIMEX_SIZE] {
    let mut b = [0u8; TIMEX_SIZE];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &(if adjtime_read { ADJ_OFFSET_SINGLESHOT | ADJ_OFFSET_READONLY | ADJ_ADJTIME } else { 0 }).to_ne_bytes());
    put(24, &NTP_PHASE_LIMIT_US.to_ne_bytes()); // maxerror
    put(32, &NTP_PHASE_LIMIT_US.to_ne_bytes()); // esterror
    put(40, &STA_UNSYNC.to_ne_bytes()); // status
    put(48, &2i64.to_ne_bytes()); // constant
    put(56, &1i64.to_ne_bytes()); // precision (µs)
    put(64, &TOLERANCE.to_ne_bytes());
    put(72, &((now_ns / 1_000_000_000) as i64).to_ne_bytes());
    put(80, &(((now_ns % 1_000_000_000) / 1000) as i64).to_ne_bytes());
    put(88, &10_000i64.to_ne_bytes()); // tick: 1 s / USER_HZ, in µs
    b
}

/// adjtimex's body: only reading (modes 0, or ADJ_OFFSET_SS_READ).
fn adjust(task: &mut Task, tx: UserAddr) -> SysResult {
    let mut raw = [0u8; TIMEX_SIZE];
    task.copy_in(tx, &mut raw)?;
    let modes = u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let adjtime_read = if modes & ADJ_ADJTIME != 0 {
        if modes & ADJ_OFFSET_SINGLESHOT == 0 {
            return Err(Errno::EINVAL);
        }
        if modes & ADJ_OFFSET_READONLY == 0 {
            return Err(Errno::EPERM);
        }
        true
    } else if modes != 0 {
        return Err(Errno::EPERM);
    } else {
        false
    };
    let out = timex_state(crate::time::realtime_ns(task), adjtime_read);
    task.copy_out(tx, &out)?;
    Ok(TIME_ERROR)
}

pub fn adjtimex(task: &mut Task, tx: UserAddr) -> SysResult {
    adjust(task, tx)
}

pub fn clock_adjtime(task: &mut Task, id: i32, tx: UserAddr) -> SysResult {
    match id {
        CLOCK_REALTIME => adjust(task, tx),
        CLOCK_MONOTONIC
        | CLOCK_PROCESS_CPUTIME_ID
        | CLOCK_THREAD_CPUTIME_ID
        | CLOCK_MONOTONIC_RAW
        | CLOCK_REALTIME_COARSE
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_BOOTTIME
        | CLOCK_REALTIME_ALARM
        | CLOCK_BOOTTIME_ALARM
        | CLOCK_TAI => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}
