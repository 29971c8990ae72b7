//! The system-wide files of /proc: loadavg, uptime, stat, meminfo and the
//! /proc/sys tree (kernel, vm, fs), each in Linux's format, with the
//! sandbox's own numbers where it has them.

use super::nodes::{file, ProcDir};
use crate::kernel::Kernel;
use abi::flags::{DT_DIR, DT_REG};
use abi::Errno;
use std::sync::{Arc, OnceLock, Weak};
use vfs::InodeRef;

/// Linux's USER_HZ: what /proc counts times in.
pub(super) const CLK_TCK: u64 = 100;

pub(super) fn ticks(ns: u64) -> u64 {
    ns / (1_000_000_000 / CLK_TCK)
}

/// Threads of the sandbox: (runnable now, all).
fn thread_counts(kernel: &Kernel) -> (usize, usize) {
    let (mut running, mut all) = (0, 0);
    for tg in kernel.groups() {
        // The state takes `jobctl`, which comes before `threads`.
        let threads = crate::locking::lock(&tg.threads).clone();
        for t in &threads {
            all += 1;
            if super::thread_state(&tg, Some(t)).0 == 'R' {
                running += 1;
            }
        }
    }
    (running, all)
}

/// /proc/loadavg: no load is sampled (the averages are 0), the counts are
/// the sandbox's.
pub(super) fn loadavg(k: &Weak<Kernel>) -> Result<Vec<u8>, Errno> {
    let kernel = k.upgrade().ok_or(Errno::ENOENT)?;
    let (running, all) = thread_counts(&kernel);
    let last = kernel.groups().iter().map(|tg| tg.tgid).max().unwrap_or(1);
    Ok(format!("0.00 0.00 0.00 {}/{} {}\n", running.max(1), all.max(1), last).into_bytes())
}

/// CPU time of every live process of the sandbox (user, system), ns.
fn busy_ns(kernel: &Kernel) -> (u64, u64) {
    kernel.groups().iter().fold((0, 0), |(u, s), tg| {
        let (tu, ts) = tg.cpu_times();
        (u.saturating_add(tu), s.saturating_add(ts))
    })
}

/// Idle time: the CPUs' time since boot that no task used.
fn idle_ns(kernel: &Kernel) -> u64 {
    let (u, s) = busy_ns(kernel);
    let ncpus = crate::hostfacts::ncpus() as u64;
    kernel.uptime_ns().saturating_mul(ncpus).saturating_sub(u.saturating_add(s))
}

pub(super) fn uptime(k: &Weak<Kernel>) -> Result<Vec<u8>, Errno> {
    let kernel = k.upgrade().ok_or(Errno::ENOENT)?;
    let up = kernel.uptime_ns();
    let idle = idle_ns(&kernel);
    Ok(format!(
        "{}.{:02} {}.{:02}\n",
        up / 1_000_000_000,
        (up / 10_000_000) % 100,
        idle / 1_000_000_000,
        (idle / 10_000_000) % 100
    )
    .into_bytes())
}

/// The wall-clock second the sandbox booted (fixed at the first call, so
/// /proc/stat's btime never moves).
pub(super) fn boot_time(kernel: &Kernel) -> u64 {
    static BTIME: OnceLock<u64> = OnceLock::new();
    *BTIME.get_or_init(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        now.saturating_sub(kernel.uptime_ns() / 1_000_000_000)
    })
}

/// /proc/stat: the sandbox's CPU time spread evenly over the CPUs.
pub(super) fn stat(k: &Weak<Kernel>) -> Result<Vec<u8>, Errno> {
    let kernel = k.upgrade().ok_or(Errno::ENOENT)?;
    // One line per online CPU, as Linux (whatever the affinity).
    let cpus = crate::hostfacts::parse_cpu_list(crate::hostfacts::online());
    let n = cpus.len().max(1) as u64;
    let (u, s) = busy_ns(&kernel);
    let (u, s, idle) = (ticks(u), ticks(s), ticks(idle_ns(&kernel)));
    let line = |name: &str, u: u64, s: u64, idle: u64| format!("{name} {u} 0 {s} {idle} 0 0 0 0 0 0\n");
    let mut out = line("cpu ", u, s, idle);
    for i in cpus {
        out.push_str(&line(&format!("cpu{i}"), u / n, s / n, idle / n));
    }
    let (running, all) = thread_counts(&kernel);
    out.push_str(&format!(
        "intr 0\nctxt 0\nbtime {}\nprocesses {}\nprocs_running {}\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
        boot_time(&kernel),
        all,
        running.max(1)
    ));
    Ok(out.into_bytes())
}

/// The host's meminfo, with MemTotal, MemFree and MemAvailable the
/// sandbox's own when it has a memory limit (as runsc reports them), and
/// the host's caches left out.
pub(super) fn meminfo(k: &Weak<Kernel>) -> Vec<u8> {
    let host = crate::hostfacts::meminfo().to_vec();
    let Some(kernel) = k.upgrade() else { return host };
    let Some(limit) = kernel.limits.get().and_then(|l| l.memory) else { return host };
    let free = limit.saturating_sub(crate::limits::memory_usage(&kernel));
    let mut out = String::new();
    for line in String::from_utf8_lossy(&host).lines() {
        let kb = match line.split(':').next() {
            Some("MemTotal") => Some(limit),
            Some("MemFree") | Some("MemAvailable") => Some(free),
            // The host's caches are not the sandbox's.
            Some("Buffers" | "Cached" | "SwapCached" | "Shmem" | "SReclaimable") => Some(0),
            _ => None,
        };
        match (kb, line.split(':').next()) {
            (Some(bytes), Some(name)) => {
                out.push_str(&format!("{:<16}{:>8} kB\n", format!("{name}:"), bytes / 1024));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.into_bytes()
}

type Value = Box<dyn Fn() -> String + Send + Sync>;

/// A directory of read-only one-value files; `value` answers a name.
fn values_dir(
    path: &str,
    names: &'static [&'static str],
    subdirs: Vec<(&'static str, InodeRef)>,
    value: impl Fn(&str) -> Option<Value> + Send + Sync + 'static,
) -> InodeRef {
    let dir = path.to_string();
    let listed: Vec<&'static str> = subdirs.iter().map(|(n, _)| *n).collect();
    Arc::new(ProcDir {
        path: path.to_string(),
        list: Box::new(move || {
            let mut v: Vec<(Vec<u8>, u8)> = listed.iter().map(|n| (n.as_bytes().to_vec(), DT_DIR)).collect();
            v.extend(names.iter().map(|n| (n.as_bytes().to_vec(), DT_REG)));
            v
        }),
        lookup: Box::new(move |name| {
            let name = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
            if let Some((_, d)) = subdirs.iter().find(|(n, _)| *n == name) {
                return Ok(d.clone());
            }
            if !names.contains(&name) {
                return Err(Errno::ENOENT);
            }
            let v = value(name).ok_or(Errno::ENOENT)?;
            Ok(file(format!("{dir}/{name}"), move || Ok(format!("{}\n", v()).into_bytes())))
        }),
    })
}

fn fixed(s: &'static str) -> Option<Value> {
    Some(Box::new(move || s.to_string()))
}

/// A random UUID in its text form (version 4, as Linux's random/uuid).
fn uuid() -> String {
    let mut b = [0u8; 16];
    crate::exec::fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", h[0..4].concat(), h[4..6].concat(), h[6..8].concat(), h[8..10].concat(), h[10..].concat())
}

const KERNEL_FILES: &[&str] = &[
    "cap_last_cap",
    "core_pattern",
    "dmesg_restrict",
    "domainname",
    "hostname",
    "msgmax",
    "msgmnb",
    "msgmni",
    "ngroups_max",
    "osrelease",
    "ostype",
    "overflowgid",
    "overflowuid",
    "pid_max",
    "printk",
    "randomize_va_space",
    "sem",
    "shmall",
    "shmmax",
    "shmmni",
    "threads-max",
    "version",
];

pub(super) fn sys_dir(kernel: &Arc<Kernel>) -> InodeRef {
    let k = Arc::downgrade(kernel);
    let random =
        values_dir("/proc/sys/kernel/random", &["boot_id", "entropy_avail", "poolsize", "uuid"], vec![], |n| match n {
            "boot_id" => {
                static BOOT_ID: OnceLock<String> = OnceLock::new();
                Some(Box::new(|| BOOT_ID.get_or_init(uuid).clone()))
            }
            "uuid" => Some(Box::new(uuid)),
            "entropy_avail" => fixed("256"),
            "poolsize" => fixed("4096"),
            _ => None,
        });
    // ptrace inside the sandbox is refused: Yama's "no attach" mode.
    let yama = values_dir("/proc/sys/kernel/yama", &["ptrace_scope"], vec![], |n| match n {
        "ptrace_scope" => fixed("3"),
        _ => None,
    });
    let kern = values_dir("/proc/sys/kernel", KERNEL_FILES, vec![("random", random), ("yama", yama)], move |n| {
        let k = k.clone();
        Some(match n {
            "hostname" => Box::new(move || {
                k.upgrade().map(|k| k.uts.read().map(|u| u.hostname.clone()).unwrap_or_default()).unwrap_or_default()
            }),
            "domainname" => Box::new(move || {
                k.upgrade().map(|k| k.uts.read().map(|u| u.domainname.clone()).unwrap_or_default()).unwrap_or_default()
            }),
            "osrelease" => return fixed(crate::RELEASE),
            "ostype" => return fixed("Linux"),
            "version" => return fixed(crate::VERSION),
            "pid_max" => return fixed("4194304"),
            "threads-max" => return fixed("127764"),
            "ngroups_max" => return fixed("65536"),
            // CAP_AUDIT_READ, the last capability of Linux 4.4.
            "cap_last_cap" => return fixed("37"),
            "overflowuid" | "overflowgid" => return fixed("65534"),
            "shmmax" | "shmall" => return fixed("18446744073692774399"),
            "shmmni" => return fixed("4096"),
            "msgmax" => return fixed("8192"),
            "msgmnb" => return fixed("16384"),
            "msgmni" => return fixed("32000"),
            "sem" => return fixed("32000\t1024000000\t500\t32000"),
            // The boot log is the sandbox's own: anyone may read it.
            "dmesg_restrict" => return fixed("0"),
            "printk" => return fixed("7\t4\t1\t7"),
            "core_pattern" => return fixed("core"),
            "randomize_va_space" => return fixed("2"),
            _ => return None,
        })
    });
    let vm = values_dir(
        "/proc/sys/vm",
        &["max_map_count", "mmap_min_addr", "overcommit_memory", "overcommit_ratio"],
        vec![],
        |n| match n {
            "max_map_count" => fixed("65530"),
            "mmap_min_addr" => fixed("65536"),
            "overcommit_memory" => fixed("0"),
            "overcommit_ratio" => fixed("50"),
            _ => None,
        },
    );
    let fs = values_dir("/proc/sys/fs", &["file-max", "nr_open"], vec![], |n| match n {
        "file-max" => fixed("9223372036854775807"),
        "nr_open" => fixed("1048576"),
        _ => None,
    });
    let core = values_dir("/proc/sys/net/core", &["somaxconn"], vec![], |n| match n {
        // Linux 4.4's default listen backlog cap.
        "somaxconn" => fixed("128"),
        _ => None,
    });
    let net = values_dir("/proc/sys/net", &[], vec![("core", core)], |_| None);
    values_dir("/proc/sys", &[], vec![("fs", fs), ("kernel", kern), ("net", net), ("vm", vm)], |_| None)
}
