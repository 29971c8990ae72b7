//! procfs: files generated from kernel state when they are opened. The
//! node types are in `procfs/nodes.rs`, the system-wide files (loadavg,
//! stat, /proc/sys) in `procfs/system.rs`; this file has the root and the
//! per-process directories.

pub(crate) mod nodes;
mod system;

use crate::kernel::{Kernel, ThreadGroup, ThreadShared};
use crate::locking::lock;
use crate::mm::VmaName;
use abi::flags::{DT_DIR, DT_LNK, DT_REG};
use abi::Errno;
pub use nodes::deferred_root;
use nodes::{file, link, private_file, rw_file, FdLink, ProcDir};
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use vfs::InodeRef;

thread_local! {
    /// The thread whose task runs on this Sentry thread ("/proc/self",
    /// "/proc/thread-self"): (tgid, tid).
    static CURRENT: Cell<(i32, i32)> = const { Cell::new((0, 0)) };
}

/// Record which process this Sentry thread serves (its main thread).
pub fn set_current_pid(pid: i32) {
    CURRENT.with(|c| c.set((pid, pid)));
}

/// Record which thread of which process this Sentry thread serves.
pub fn set_current_thread(tgid: i32, tid: i32) {
    CURRENT.with(|c| c.set((tgid, tid)));
}

pub(crate) fn current_pid() -> i32 {
    CURRENT.with(|c| c.get().0)
}

fn current_tid() -> i32 {
    CURRENT.with(|c| c.get().1)
}

/// A task's state as /proc shows it: (letter, word). A zombie or a
/// stopped process shows so in every thread; otherwise a thread inside a
/// blocking wait sleeps (S, or D in a wait signals do not end: a vfork
/// parent's) and one in the guest or in a syscall that does not block
/// runs (R). `thread` None: the process has no live thread.
pub fn thread_state(tg: &ThreadGroup, thread: Option<&Arc<ThreadShared>>) -> (char, &'static str) {
    if tg.exit_status().is_some() || thread.is_none() {
        ('Z', "zombie")
    } else if tg.is_stopped() {
        ('T', "stopped")
    } else if thread.is_some_and(|t| t.interrupt.is_uninterruptible()) {
        ('D', "disk sleep")
    } else if thread.is_some_and(|t| t.interrupt.is_sleeping()) {
        ('S', "sleeping")
    } else {
        ('R', "running")
    }
}

/// The thread /proc/[pid] describes: the main thread while it lives, else
/// any live one.
fn main_thread(tg: &ThreadGroup) -> Option<Arc<ThreadShared>> {
    let threads = lock(&tg.threads);
    threads.iter().find(|t| t.tid == tg.tgid).or(threads.first()).cloned()
}

/// The root of a procfs for `kernel`.
pub fn new_root(kernel: &Arc<Kernel>) -> InodeRef {
    let k = Arc::downgrade(kernel);
    let k2 = k.clone();
    Arc::new(ProcDir {
        path: "/proc".into(),
        list: Box::new(move || {
            let mut v: Vec<(Vec<u8>, u8)> =
                ["self", "thread-self", "mounts", "net"].iter().map(|s| (s.as_bytes().to_vec(), DT_LNK)).collect();
            for f in ["version", "cpuinfo", "meminfo", "filesystems", "uptime", "loadavg", "stat", "locks"] {
                v.push((f.as_bytes().to_vec(), DT_REG));
            }
            v.push((b"sys".to_vec(), DT_DIR));
            if let Some(k) = k.upgrade() {
                for tg in k.groups() {
                    v.push((tg.tgid.to_string().into_bytes(), DT_DIR));
                }
            }
            v
        }),
        lookup: Box::new(move |name| root_lookup(&k2, name)),
    })
}

fn root_lookup(k: &Weak<Kernel>, name: &[u8]) -> Result<InodeRef, Errno> {
    let kernel = k.upgrade().ok_or(Errno::ENOENT)?;
    let s = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
    let weak = Arc::downgrade(&kernel);
    Ok(match s {
        "self" => link("/proc/self".into(), || Ok(current_pid().to_string().into_bytes())),
        "thread-self" => {
            link("/proc/thread-self".into(), || Ok(format!("{}/task/{}", current_pid(), current_tid()).into_bytes()))
        }
        "mounts" => link("/proc/mounts".into(), || Ok(b"self/mounts".to_vec())),
        "net" => link("/proc/net".into(), || Ok(b"self/net".to_vec())),
        "version" => file("/proc/version".into(), || {
            Ok(format!("Linux version {} (root@runsc-lite) (gcc version 4.9.2) {}\n", crate::RELEASE, crate::VERSION)
                .into_bytes())
        }),
        "cpuinfo" => file("/proc/cpuinfo".into(), || Ok(crate::hostfacts::cpuinfo().to_vec())),
        "locks" => file("/proc/locks".into(), || Ok(vfs::proc_locks::text().into_bytes())),
        "meminfo" => file("/proc/meminfo".into(), move || Ok(system::meminfo(&weak))),
        "loadavg" => file("/proc/loadavg".into(), move || system::loadavg(&weak)),
        "filesystems" => file("/proc/filesystems".into(), || {
            Ok(b"nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\tdevpts\nnodev\toverlay\n\text4\n"
                .to_vec())
        }),
        "uptime" => file("/proc/uptime".into(), move || system::uptime(&weak)),
        "stat" => file("/proc/stat".into(), move || system::stat(&weak)),
        "sys" => system::sys_dir(&kernel),
        _ => {
            let pid: i32 = s.parse().map_err(|_| Errno::ENOENT)?;
            let tg = kernel.group(pid).ok_or(Errno::ENOENT)?;
            pid_dir(&tg, None)
        }
    })
}

/// What /proc/[pid] lists (task/ only in the process's own directory, not
/// in task/[tid]).
const PID_LINKS: &[&str] = &["cwd", "exe", "root"];
const PID_DIRS: &[&str] = &["fd", "fdinfo", "net", "ns", "task"];
const PID_FILES: &[&str] = &[
    "auxv",
    "cgroup",
    "cmdline",
    "comm",
    "coredump_filter",
    "cpuset",
    "environ",
    "gid_map",
    "io",
    "limits",
    "loginuid",
    "maps",
    "mountinfo",
    "mounts",
    "oom_adj",
    "oom_score",
    "oom_score_adj",
    "personality",
    "sessionid",
    "setgroups",
    "stat",
    "statm",
    "status",
    "uid_map",
    "wchan",
];

/// /proc/[pid] (`tid` None) or /proc/[pid]/task/[tid].
fn pid_dir(tg: &Arc<ThreadGroup>, tid: Option<i32>) -> InodeRef {
    let pid = tg.tgid;
    let w = Arc::downgrade(tg);
    let path = match tid {
        None => format!("/proc/{pid}"),
        Some(t) => format!("/proc/{pid}/task/{t}"),
    };
    let base = path.clone();
    Arc::new(ProcDir {
        path,
        list: Box::new(move || {
            let mut v: Vec<(Vec<u8>, u8)> = PID_LINKS.iter().map(|s| (s.as_bytes().to_vec(), DT_LNK)).collect();
            for d in PID_DIRS.iter().filter(|d| tid.is_none() || **d != "task") {
                v.push((d.as_bytes().to_vec(), DT_DIR));
            }
            v.extend(PID_FILES.iter().map(|s| (s.as_bytes().to_vec(), DT_REG)));
            v
        }),
        lookup: Box::new(move |name| {
            if tid.is_some() && name == b"task" {
                return Err(Errno::ENOENT);
            }
            pid_lookup(&w, pid, tid, &base, name)
        }),
    })
}

fn with_tg<R>(w: &Weak<ThreadGroup>, f: impl FnOnce(&Arc<ThreadGroup>) -> Result<R, Errno>) -> Result<R, Errno> {
    let tg = w.upgrade().ok_or(Errno::ESRCH)?;
    f(&tg)
}

/// The thread a /proc/[pid] (None) or task/[tid] directory describes.
fn thread_of(tg: &ThreadGroup, tid: Option<i32>) -> Option<Arc<ThreadShared>> {
    match tid {
        None => main_thread(tg),
        Some(t) => tg.thread(t),
    }
}

fn pid_lookup(w: &Weak<ThreadGroup>, pid: i32, tid: Option<i32>, base: &str, name: &[u8]) -> Result<InodeRef, Errno> {
    let s = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
    let p = format!("{base}/{s}");
    let w = w.clone();
    let fixed = |p: String, text: &'static str| file(p, move || Ok(text.as_bytes().to_vec()));
    Ok(match s {
        "exe" => link(p, move || with_tg(&w, |tg| lock(&tg.exe).as_ref().map(|d| d.path()).ok_or(Errno::ENOENT))),
        "cwd" => link(p, move || with_tg(&w, |tg| Ok(tg.fs().cwd.path()))),
        "root" => link(p, move || with_tg(&w, |tg| Ok(tg.fs().root.path()))),
        "fd" => {
            let dir = p.clone();
            fd_dir(p, w, DT_LNK, move |fd, f| Arc::new(FdLink { path: format!("{dir}/{fd}"), file: f }))
        }
        "fdinfo" => {
            let dir = p.clone();
            fd_dir(p, w, DT_REG, move |fd, f| {
                file(format!("{dir}/{fd}"), move || {
                    // Never the position lock: its holder may be blocked.
                    let pos = f.pos_now();
                    let mnt = f.dentry.as_ref().map(|d| d.mount.id).unwrap_or(0);
                    let mut info = format!("pos:\t{pos}\nflags:\t0{:o}\nmnt_id:\t{mnt}\n", f.flags());
                    if let Some(p) = f.ops.as_any().downcast_ref::<crate::pidfd::PidFd>() {
                        info.push_str(&p.fdinfo());
                    }
                    Ok(info.into_bytes())
                })
            })
        }
        "task" => task_dir(p, w, pid),
        "ns" => ns_dir(p),
        "net" => net_dir(p, Arc::downgrade(&w.upgrade().ok_or(Errno::ENOENT)?.kernel)),
        "maps" => file(p, move || with_tg(&w, |tg| Ok(maps(tg)))),
        "status" => file(p, move || with_tg(&w, |tg| Ok(status(tg, tid)))),
        "stat" => file(p, move || with_tg(&w, |tg| Ok(stat_line(tg, tid)))),
        "statm" => file(p, move || with_tg(&w, |tg| Ok(statm(tg)))),
        "comm" => file(p, move || {
            with_tg(&w, |tg| {
                let mut c = lock(&tg.comm).clone();
                c.push(b'\n');
                Ok(c)
            })
        }),
        "cmdline" => file(p, move || with_tg(&w, |tg| Ok(mem_range(tg, true)))),
        "environ" => private_file(p, move || with_tg(&w, |tg| Ok(mem_range(tg, false)))),
        "auxv" => private_file(p, || Ok(Vec::new())),
        "limits" => file(p, move || with_tg(&w, |tg| Ok(limits(tg)))),
        "mounts" => file(p, move || with_tg(&w, |tg| Ok(mounts(tg, false)))),
        "mountinfo" => file(p, move || with_tg(&w, |tg| Ok(mounts(tg, true)))),
        // The sandbox counts no I/O per process.
        "io" => private_file(p, || {
            Ok(b"rchar: 0\nwchar: 0\nsyscr: 0\nsyscw: 0\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n"
                .to_vec())
        }),
        // One cgroup (v2) for the whole sandbox, seen from inside.
        "cgroup" => fixed(p, "0::/\n"),
        "cpuset" => fixed(p, "/\n"),
        "coredump_filter" => fixed(p, "00000033\n"),
        "personality" => private_file(p, || Ok(b"00000000\n".to_vec())),
        "loginuid" | "sessionid" => fixed(p, "4294967295"),
        "setgroups" => fixed(p, "allow\n"),
        "uid_map" | "gid_map" => fixed(p, "         0          0 4294967295\n"),
        "oom_score" => fixed(p, "0\n"),
        "oom_score_adj" => {
            let w2 = w.clone();
            rw_file(
                p,
                move || with_tg(&w, |tg| Ok(format!("{}\n", tg.oom_score_adj.load(Ordering::Relaxed)).into_bytes())),
                move |buf| {
                    let v = parse_int(buf).filter(|v| (-1000..=1000).contains(v)).ok_or(Errno::EINVAL)?;
                    with_tg(&w2, |tg| {
                        tg.oom_score_adj.store(v as i32, Ordering::Relaxed);
                        Ok(())
                    })
                },
            )
        }
        // The old interface: -17..15, scaled from oom_score_adj as Linux does.
        "oom_adj" => file(p, move || {
            with_tg(&w, |tg| {
                let adj = tg.oom_score_adj.load(Ordering::Relaxed);
                let old = if adj == 1000 { 15 } else { adj * 17 / 1000 };
                Ok(format!("{old}\n").into_bytes())
            })
        }),
        // No kernel symbols to name: "0", as Linux shows to the unprivileged.
        "wchan" => fixed(p, "0"),
        _ => return Err(Errno::ENOENT),
    })
}

/// A decimal integer as written to a /proc file (surrounding blanks and
/// one newline allowed).
fn parse_int(buf: &[u8]) -> Option<i64> {
    std::str::from_utf8(buf).ok()?.trim().parse().ok()
}

/// /proc/[pid]/task: one directory per live thread.
fn task_dir(path: String, w: Weak<ThreadGroup>, pid: i32) -> InodeRef {
    let w2 = w.clone();
    Arc::new(ProcDir {
        path,
        list: Box::new(move || {
            w.upgrade()
                .map(|tg| lock(&tg.threads).iter().map(|t| (t.tid.to_string().into_bytes(), DT_DIR)).collect())
                .unwrap_or_default()
        }),
        lookup: Box::new(move |name| {
            let tid: i32 = std::str::from_utf8(name).ok().and_then(|s| s.parse().ok()).ok_or(Errno::ENOENT)?;
            let tg = w2.upgrade().ok_or(Errno::ENOENT)?;
            // A zombie's directory still has its main thread's entry.
            if tg.thread(tid).is_none() && tid != pid {
                return Err(Errno::ENOENT);
            }
            Ok(pid_dir(&tg, Some(tid)))
        }),
    })
}

/// /proc/[pid]/ns: one namespace of each kind for the whole sandbox
/// (the inode numbers are Linux's initial namespaces').
fn ns_dir(path: String) -> InodeRef {
    const NS: &[(&str, u64)] = &[
        ("ipc", 4026531839),
        ("mnt", 4026531840),
        ("net", 4026531992),
        ("pid", 4026531836),
        ("user", 4026531837),
        ("uts", 4026531838),
    ];
    let dir = path.clone();
    Arc::new(ProcDir {
        path,
        list: Box::new(|| NS.iter().map(|(n, _)| (n.as_bytes().to_vec(), DT_LNK)).collect()),
        lookup: Box::new(move |name| {
            let (n, ino) = NS.iter().find(|(n, _)| n.as_bytes() == name).ok_or(Errno::ENOENT)?;
            Ok(Arc::new(nodes::NsLink { path: format!("{dir}/{n}"), kind: n, ino: *ino }))
        }),
    })
}

/// /proc/[pid]/net: the sandbox's network (one namespace for all).
fn net_dir(path: String, k: Weak<Kernel>) -> InodeRef {
    let dir = path.clone();
    Arc::new(ProcDir {
        path,
        list: Box::new(|| crate::procfs_net::FILES.iter().map(|f| (f.as_bytes().to_vec(), DT_REG)).collect()),
        lookup: Box::new(move |name| {
            let name = std::str::from_utf8(name).ok().filter(|n| crate::procfs_net::FILES.contains(n));
            let name = name.ok_or(Errno::ENOENT)?.to_string();
            let k = k.clone();
            Ok(file(format!("{dir}/{name}"), move || {
                let k = k.upgrade().ok_or(Errno::ENOENT)?;
                crate::procfs_net::generate(&k.net, &name).ok_or(Errno::ENOENT)
            }))
        }),
    })
}

/// A directory with one entry per open descriptor of the process
/// (/proc/[pid]/fd, fdinfo); `node` makes the entry for one descriptor.
fn fd_dir(
    path: String,
    w: Weak<ThreadGroup>,
    d_type: u8,
    node: impl Fn(i32, Arc<vfs::OpenFile>) -> InodeRef + Send + Sync + 'static,
) -> InodeRef {
    let w2 = w.clone();
    Arc::new(ProcDir {
        path,
        list: Box::new(move || {
            w.upgrade()
                .map(|tg| tg.fds().list().into_iter().map(|(fd, _)| (fd.to_string().into_bytes(), d_type)).collect())
                .unwrap_or_default()
        }),
        lookup: Box::new(move |name| {
            let fd: i32 = std::str::from_utf8(name).ok().and_then(|s| s.parse().ok()).ok_or(Errno::ENOENT)?;
            let tg = w2.upgrade().ok_or(Errno::ENOENT)?;
            let f = tg.fds().get(fd).map_err(|_| Errno::ENOENT)?;
            Ok(node(fd, f))
        }),
    })
}

fn maps(tg: &ThreadGroup) -> Vec<u8> {
    let mut out = String::new();
    for v in tg.mm().map(|m| m.vmas()).unwrap_or_default() {
        let (off, dev, ino, name) = match &v.name {
            VmaName::File { path, dev, ino, offset } => {
                (*offset, *dev, *ino, String::from_utf8_lossy(path).into_owned())
            }
            VmaName::Heap => (0, 0, 0, "[heap]".into()),
            VmaName::Stack => (0, 0, 0, "[stack]".into()),
            VmaName::Vvar => (0, 0, 0, "[vvar]".into()),
            VmaName::Vdso => (0, 0, 0, "[vdso]".into()),
            VmaName::Anon => (0, 0, 0, String::new()),
        };
        let line = format!(
            "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {}",
            v.start,
            v.end,
            if v.prot.read { 'r' } else { '-' },
            if v.prot.write { 'w' } else { '-' },
            if v.prot.exec { 'x' } else { '-' },
            if v.shared && !matches!(v.name, VmaName::Vvar | VmaName::Vdso) { 's' } else { 'p' },
            off,
            (dev >> 8) & 0xfff,
            dev & 0xff,
            ino
        );
        if name.is_empty() {
            out.push_str(&line);
        } else {
            out.push_str(&format!("{:<73}{}", line, name));
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// Memory sizes of a process, in bytes: (total mapped, resident, stack,
/// data (private writable), text (executable file mappings)).
struct MemSizes {
    size: u64,
    rss: u64,
    stack: u64,
    data: u64,
    text: u64,
}

fn mem_sizes(tg: &ThreadGroup) -> MemSizes {
    let mut m = MemSizes { size: 0, rss: 0, stack: 0, data: 0, text: 0 };
    let Some(mm) = tg.mm() else { return m };
    for v in mm.vmas() {
        let len = v.end - v.start;
        m.size += len;
        match v.name {
            VmaName::Stack => m.stack += len,
            VmaName::File { .. } if v.prot.exec => m.text += len,
            _ if v.prot.write && !v.shared => m.data += len,
            _ => {}
        }
    }
    m.rss = mm.resident_bytes();
    m
}

/// The signal sets /proc shows: (pending for the thread, pending for the
/// process, blocked, ignored, caught).
fn signal_sets(tg: &ThreadGroup, thread: Option<&Arc<ThreadShared>>) -> [u64; 5] {
    let (mut ign, mut cgt) = (0u64, 0u64);
    for (i, a) in lock(&tg.signals).actions.iter().enumerate() {
        match a.handler {
            0 => {}
            1 => ign |= 1 << i,
            _ => cgt |= 1 << i,
        }
    }
    let (pnd, blk) =
        thread.map(|t| (t.pending.bits.load(Ordering::Acquire), t.sigmask.load(Ordering::Acquire))).unwrap_or_default();
    [pnd, tg.pending.bits.load(Ordering::Acquire), blk, ign, cgt]
}

fn status(tg: &ThreadGroup, tid: Option<i32>) -> Vec<u8> {
    let c = tg.creds();
    let comm = String::from_utf8_lossy(&lock(&tg.comm)).into_owned();
    let thread = thread_of(tg, tid);
    let (letter, word) = thread_state(tg, thread.as_ref());
    let m = mem_sizes(tg);
    let kb = |b: u64| b / 1024;
    let [pnd, shd, blk, ign, cgt] = signal_sets(tg, thread.as_ref());
    let caps = if c.euid == 0 { "0000003fffffffff" } else { "0000000000000000" };
    let cpus_mask = crate::hostfacts::affinity();
    let cpus_list = crate::hostfacts::cpu_list(cpus_mask);
    let pid = tid.unwrap_or(tg.tgid);
    let (pgid, sid) = (*lock(&tg.pgid), *lock(&tg.sid));
    let threads = lock(&tg.threads).len();
    // The described thread's own count, as Linux shows the main thread's.
    let waits = thread.as_ref().map(|t| t.interrupt.waits()).unwrap_or(0);
    let mut s = format!(
        "Name:\t{comm}\nUmask:\t{:04o}\nState:\t{letter} ({word})\nTgid:\t{tgid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{ppid}\n\
         TracerPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t64\nGroups:\t{}\n\
         NStgid:\t{tgid}\nNSpid:\t{pid}\nNSpgid:\t{pgid}\nNSsid:\t{sid}\n",
        tg.fs().umask,
        c.uid,
        c.euid,
        c.suid,
        c.fsuid,
        c.gid,
        c.egid,
        c.sgid,
        c.fsgid,
        c.groups.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(" "),
        tgid = tg.tgid,
        ppid = *lock(&tg.ppid),
    );
    if tg.exit_status().is_none() {
        s.push_str(&format!(
            "VmPeak:\t{:8} kB\nVmSize:\t{:8} kB\nVmLck:\t{:8} kB\nVmHWM:\t{:8} kB\nVmRSS:\t{:8} kB\nVmData:\t{:8} kB\n\
             VmStk:\t{:8} kB\nVmExe:\t{:8} kB\nVmLib:\t{:8} kB\nVmPTE:\t{:8} kB\nVmSwap:\t{:8} kB\n",
            kb(m.size),
            kb(m.size),
            kb(tg.mm().map(|m| m.locked_bytes(None)).unwrap_or_default()),
            kb(m.rss),
            kb(m.rss),
            kb(m.data),
            kb(m.stack),
            kb(m.text),
            0,
            0,
            0
        ));
    }
    s.push_str(&format!(
        "Threads:\t{threads}\nSigQ:\t0/63432\nSigPnd:\t{pnd:016x}\nShdPnd:\t{shd:016x}\nSigBlk:\t{blk:016x}\n\
         SigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\nCapInh:\t0000000000000000\nCapPrm:\t{caps}\nCapEff:\t{caps}\n\
         CapBnd:\t0000003fffffffff\nCapAmb:\t0000000000000000\nSeccomp:\t0\nCpus_allowed:\t{cpus_mask:x}\n\
         Cpus_allowed_list:\t{cpus_list}\nMems_allowed:\t1\nMems_allowed_list:\t0\nvoluntary_ctxt_switches:\t{waits}\n\
         nonvoluntary_ctxt_switches:\t0\n"
    ));
    s.into_bytes()
}

/// /proc/[pid]/stat: the 52 fields of Linux 4.4.
fn stat_line(tg: &ThreadGroup, tid: Option<i32>) -> Vec<u8> {
    let comm = String::from_utf8_lossy(&lock(&tg.comm)).into_owned();
    let thread = thread_of(tg, tid);
    let (state, _) = thread_state(tg, thread.as_ref());
    let m = mem_sizes(tg);
    let (utime, stime) = match (&thread, tid) {
        (Some(t), Some(_)) => t.times.get(),
        _ => tg.cpu_times(),
    };
    let (cutime, cstime) = tg.children_times.get();
    let t = system::ticks;
    let start = t(tg.start.saturating_duration_since(tg.kernel.boot).as_nanos() as u64);
    let [pnd, shd, blk, ign, cgt] = signal_sets(tg, thread.as_ref());
    // The described thread's (the main thread's for the process), as Linux.
    let sched = thread.as_ref().map(|t| *lock(&t.sched)).unwrap_or_default();
    let (priority, nice, rt_priority, policy) = (sched.proc_priority(), sched.nice, sched.rt_priority, sched.policy);
    let threads = lock(&tg.threads).len();
    let (arg, env) = tg.mm().map(|mm| mm.arg_env_ranges()).unwrap_or_default();
    let exit_code = tg.exit_status().map(|e| e.wait_status()).unwrap_or(0);
    format!(
        "{pid} ({comm}) {state} {ppid} {pgid} {sid} 0 -1 4194560 0 0 0 0 {} {} {} {} {priority} {nice} {threads} 0 \
         {start} {vsize} {rss} 18446744073709551615 0 0 0 0 0 {} {} {} {} 0 0 0 {exit_signal} 0 {rt_priority} {policy} 0 0 0 0 0 0 {} {} {} {} \
         {exit_code}\n",
        t(utime),
        t(stime),
        t(cutime),
        t(cstime),
        pnd | shd,
        blk,
        ign,
        cgt,
        arg.0,
        arg.1,
        env.0,
        env.1,
        pid = tid.unwrap_or(tg.tgid),
        ppid = *lock(&tg.ppid),
        pgid = *lock(&tg.pgid),
        sid = *lock(&tg.sid),
        vsize = m.size,
        rss = m.rss / 4096,
        exit_signal = *lock(&tg.exit_signal),
    )
    .into_bytes()
}

/// /proc/[pid]/statm: size resident shared text lib data dt, in pages.
fn statm(tg: &ThreadGroup) -> Vec<u8> {
    let m = mem_sizes(tg);
    let p = |b: u64| b / 4096;
    format!("{} {} 0 {} 0 {} 0\n", p(m.size), p(m.rss), p(m.text), p(m.data + m.stack)).into_bytes()
}

fn mem_range(tg: &ThreadGroup, args: bool) -> Vec<u8> {
    let Some(mm) = tg.mm() else { return Vec::new() };
    let (a, e) = mm.arg_env_ranges();
    let (start, end) = if args { a } else { e };
    let len = end.saturating_sub(start).min(1 << 20) as usize;
    let mut v = vec![0u8; len];
    if mm.force_read(start, &mut v).is_err() {
        return Vec::new();
    }
    v
}

fn limits(tg: &ThreadGroup) -> Vec<u8> {
    let names = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let lim = *lock(&tg.rlimits);
    let f = |v: u64| {
        if v == u64::MAX {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    let mut s = format!("{:<26}{:<21}{:<21}{:<10}\n", "Limit", "Soft Limit", "Hard Limit", "Units");
    for (i, (n, u)) in names.iter().enumerate() {
        s.push_str(&format!("{:<26}{:<21}{:<21}{:<10}\n", n, f(lim[i].cur), f(lim[i].max), u));
    }
    s.into_bytes()
}

fn mounts(tg: &ThreadGroup, info: bool) -> Vec<u8> {
    let mut s = String::new();
    for m in tg.kernel.mounts.mounts() {
        let opts = if m.flags.readonly { "ro" } else { "rw" };
        let mp = String::from_utf8_lossy(&m.mountpoint);
        if info {
            s.push_str(&format!(
                "{} {} 0:{} / {} {} - {} {} {}\n",
                m.id,
                if m.id == 1 { 0 } else { 1 },
                m.id,
                mp,
                opts,
                m.fs_type,
                m.source,
                opts
            ));
        } else {
            s.push_str(&format!("{} {} {} {} 0 0\n", m.source, mp, m.fs_type, opts));
        }
    }
    s.into_bytes()
}
