//! procfs: files generated from kernel state when they are opened.

use crate::kernel::{Kernel, ThreadGroup};
use crate::locking::lock;
use crate::mm::VmaName;
use abi::flags::{DT_DIR, DT_LNK, DT_REG, S_IFDIR, S_IFLNK, S_IFREG};
use abi::{Errno, Stat};
use std::any::Any;
use std::cell::Cell;
use std::sync::{Arc, Weak};
use vfs::{DirEntry, FileOps, Inode, InodeRef, IoCtx};

thread_local! {
    /// The process whose task runs on this Sentry thread ("/proc/self").
    static CURRENT_PID: Cell<i32> = const { Cell::new(0) };
}

/// Record which process this Sentry thread serves.
pub fn set_current_pid(pid: i32) {
    CURRENT_PID.with(|c| c.set(pid));
}

fn current_pid() -> i32 {
    CURRENT_PID.with(|c| c.get())
}

const PROC_DEV: u64 = 0x16;

fn ino_of(path: &str) -> u64 {
    // FNV-1a: stable inode numbers per path.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h | 1
}

fn stat_for(path: &str, mode: u32, nlink: u64, size: i64) -> Stat {
    let (s, ns) = vfs::now();
    Stat {
        st_dev: PROC_DEV,
        st_ino: ino_of(path),
        st_nlink: nlink,
        st_mode: mode,
        st_blksize: 1024,
        st_size: size,
        st_atime: s,
        st_atime_nsec: ns,
        st_mtime: s,
        st_mtime_nsec: ns,
        st_ctime: s,
        st_ctime_nsec: ns,
        ..Default::default()
    }
}

type Gen = Box<dyn Fn() -> Result<Vec<u8>, Errno> + Send + Sync>;

/// A read-only file whose content is generated at open.
struct ProcFile {
    path: String,
    gen: Gen,
}

impl Inode for ProcFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_for(&self.path, S_IFREG | 0o444, 1, 0))
    }
    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        if flags & abi::flags::O_ACCMODE != abi::flags::O_RDONLY {
            return Err(Errno::EACCES);
        }
        Ok(Arc::new(Snapshot((self.gen)()?)))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The content of a proc file as it was when opened.
struct Snapshot(Vec<u8>);

impl FileOps for Snapshot {
    fn read(&self, _ctx: &IoCtx, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        if off >= self.0.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.0.len() - off);
        buf[..n].copy_from_slice(&self.0[off..off + n]);
        Ok(n)
    }
    fn size(&self) -> Result<u64, Errno> {
        Ok(self.0.len() as u64)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A symlink whose target is generated when read.
struct ProcLink {
    path: String,
    target: Gen,
}

impl Inode for ProcLink {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_for(&self.path, S_IFLNK | 0o777, 1, 0))
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        (self.target)()
    }
    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Err(Errno::ELOOP)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

type Lister = Box<dyn Fn() -> Vec<(Vec<u8>, u8)> + Send + Sync>;
type Looker = Box<dyn Fn(&[u8]) -> Result<InodeRef, Errno> + Send + Sync>;

/// A directory with generated entries.
struct ProcDir {
    path: String,
    list: Lister,
    lookup: Looker,
}

impl Inode for ProcDir {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_for(&self.path, S_IFDIR | 0o555, 2, 0))
    }
    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        (self.lookup)(name)
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Ok((self.list)()
            .into_iter()
            .map(|(name, d_type)| {
                let p = format!("{}/{}", self.path, String::from_utf8_lossy(&name));
                DirEntry { ino: ino_of(&p), d_type, name }
            })
            .collect())
    }
    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Ok(Arc::new(DirHandle))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct DirHandle;
impl FileOps for DirHandle {
    fn read(&self, _ctx: &IoCtx, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn file(path: String, gen: impl Fn() -> Result<Vec<u8>, Errno> + Send + Sync + 'static) -> InodeRef {
    Arc::new(ProcFile { path, gen: Box::new(gen) })
}

fn link(path: String, target: impl Fn() -> Result<Vec<u8>, Errno> + Send + Sync + 'static) -> InodeRef {
    Arc::new(ProcLink { path, target: Box::new(target) })
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
            for f in ["version", "cpuinfo", "meminfo", "filesystems", "uptime", "loadavg", "stat"] {
                v.push((f.as_bytes().to_vec(), DT_REG));
            }
            v.push((b"sys".to_vec(), DT_DIR));
            v.push((b"locks".to_vec(), DT_REG));
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
    Ok(match s {
        "self" => link("/proc/self".into(), || Ok(current_pid().to_string().into_bytes())),
        "thread-self" => link("/proc/thread-self".into(), || Ok(format!("{0}/task/{0}", current_pid()).into_bytes())),
        "mounts" => link("/proc/mounts".into(), || Ok(b"self/mounts".to_vec())),
        "net" => link("/proc/net".into(), || Ok(b"self/net".to_vec())),
        "version" => file("/proc/version".into(), || {
            Ok(format!("Linux version {} (root@runsc-lite) (gcc version 4.9.2) {}\n", crate::RELEASE, crate::VERSION)
                .into_bytes())
        }),
        "cpuinfo" => file("/proc/cpuinfo".into(), || Ok(crate::hostfacts::cpuinfo().to_vec())),
        "locks" => file("/proc/locks".into(), || Ok(vfs::proc_locks::text().into_bytes())),
        "meminfo" => {
            let k = Arc::downgrade(&kernel);
            file("/proc/meminfo".into(), move || Ok(meminfo(&k)))
        }
        "loadavg" => file("/proc/loadavg".into(), || Ok(b"0.00 0.00 0.00 1/1 1\n".to_vec())),
        "filesystems" => file("/proc/filesystems".into(), || {
            Ok(b"nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\tdevpts\nnodev\toverlay\n\text4\n"
                .to_vec())
        }),
        "uptime" => {
            let k = Arc::downgrade(&kernel);
            file("/proc/uptime".into(), move || {
                let up = k.upgrade().map(|k| k.uptime_ns()).unwrap_or(0);
                Ok(format!("{}.{:02} 0.00\n", up / 1_000_000_000, (up / 10_000_000) % 100).into_bytes())
            })
        }
        "stat" => {
            let k = Arc::downgrade(&kernel);
            file("/proc/stat".into(), move || {
                let btime = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
                    - k.upgrade().map(|k| k.uptime_ns() / 1_000_000_000).unwrap_or(0);
                let n = crate::hostfacts::ncpus();
                let mut s = String::from("cpu  0 0 0 0 0 0 0 0 0 0\n");
                for i in 0..n {
                    s.push_str(&format!("cpu{i} 0 0 0 0 0 0 0 0 0 0\n"));
                }
                s.push_str(&format!("intr 0\nctxt 0\nbtime {btime}\nprocesses 0\nprocs_running 1\nprocs_blocked 0\n"));
                Ok(s.into_bytes())
            })
        }
        "sys" => sys_dir(&kernel),
        _ => {
            let pid: i32 = s.parse().map_err(|_| Errno::ENOENT)?;
            let tg = kernel.group(pid).ok_or(Errno::ENOENT)?;
            pid_dir(&tg)
        }
    })
}

/// The host's meminfo, with MemTotal, MemFree and MemAvailable the
/// sandbox's own when it has a memory limit (as runsc reports them), and
/// the host's caches left out.
fn meminfo(k: &Weak<Kernel>) -> Vec<u8> {
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

fn sys_dir(kernel: &Arc<Kernel>) -> InodeRef {
    let k = Arc::downgrade(kernel);
    let kern_dir: InodeRef = Arc::new(ProcDir {
        path: "/proc/sys/kernel".into(),
        list: Box::new(|| {
            ["hostname", "domainname", "osrelease", "ostype", "pid_max", "ngroups_max"]
                .iter()
                .map(|s| (s.as_bytes().to_vec(), DT_REG))
                .collect()
        }),
        lookup: Box::new(move |name| {
            let k = k.clone();
            let v: Box<dyn Fn() -> String + Send + Sync> = match name {
                b"hostname" => Box::new(move || {
                    k.upgrade()
                        .map(|k| k.uts.read().map(|u| u.hostname.clone()).unwrap_or_default())
                        .unwrap_or_default()
                }),
                b"domainname" => Box::new(move || {
                    k.upgrade()
                        .map(|k| k.uts.read().map(|u| u.domainname.clone()).unwrap_or_default())
                        .unwrap_or_default()
                }),
                b"osrelease" => Box::new(|| crate::RELEASE.to_string()),
                b"ostype" => Box::new(|| "Linux".to_string()),
                b"pid_max" => Box::new(|| "4194304".to_string()),
                b"ngroups_max" => Box::new(|| "65536".to_string()),
                _ => return Err(Errno::ENOENT),
            };
            let p = format!("/proc/sys/kernel/{}", String::from_utf8_lossy(name));
            Ok(file(p, move || Ok(format!("{}\n", v()).into_bytes())))
        }),
    });
    Arc::new(ProcDir {
        path: "/proc/sys".into(),
        list: Box::new(|| vec![(b"kernel".to_vec(), DT_DIR)]),
        lookup: Box::new(move |name| if name == b"kernel" { Ok(kern_dir.clone()) } else { Err(Errno::ENOENT) }),
    })
}

fn pid_dir(tg: &Arc<ThreadGroup>) -> InodeRef {
    let pid = tg.tgid;
    let w = Arc::downgrade(tg);
    Arc::new(ProcDir {
        path: format!("/proc/{pid}"),
        list: Box::new(|| {
            let mut v: Vec<(Vec<u8>, u8)> =
                ["exe", "cwd", "root"].iter().map(|s| (s.as_bytes().to_vec(), DT_LNK)).collect();
            v.push((b"fd".to_vec(), DT_DIR));
            v.push((b"fdinfo".to_vec(), DT_DIR));
            v.push((b"task".to_vec(), DT_DIR));
            v.push((b"net".to_vec(), DT_DIR));
            for f in [
                "maps",
                "status",
                "stat",
                "statm",
                "cmdline",
                "environ",
                "mounts",
                "comm",
                "auxv",
                "limits",
                "mountinfo",
            ] {
                v.push((f.as_bytes().to_vec(), DT_REG));
            }
            v
        }),
        lookup: Box::new(move |name| pid_lookup(&w, pid, name)),
    })
}

fn with_tg<R>(w: &Weak<ThreadGroup>, f: impl FnOnce(&Arc<ThreadGroup>) -> Result<R, Errno>) -> Result<R, Errno> {
    let tg = w.upgrade().ok_or(Errno::ESRCH)?;
    f(&tg)
}

fn pid_lookup(w: &Weak<ThreadGroup>, pid: i32, name: &[u8]) -> Result<InodeRef, Errno> {
    let s = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
    let p = format!("/proc/{pid}/{s}");
    let w = w.clone();
    Ok(match s {
        "exe" => link(p, move || with_tg(&w, |tg| lock(&tg.exe).as_ref().map(|d| d.path()).ok_or(Errno::ENOENT))),
        "cwd" => link(p, move || with_tg(&w, |tg| Ok(tg.fs().cwd.path()))),
        "root" => link(p, move || with_tg(&w, |tg| Ok(tg.fs().root.path()))),
        "fd" => fd_dir(p, w, DT_LNK, move |fd, f| Arc::new(FdLink { path: format!("/proc/{pid}/fd/{fd}"), file: f })),
        "fdinfo" => fd_dir(p, w, DT_REG, move |fd, f| {
            file(format!("/proc/{pid}/fdinfo/{fd}"), move || {
                // Never the position lock: its holder may be blocked.
                let pos = f.pos_now();
                let mnt = f.dentry.as_ref().map(|d| d.mount.id).unwrap_or(0);
                let mut info = format!("pos:\t{pos}\nflags:\t0{:o}\nmnt_id:\t{mnt}\n", f.flags());
                if let Some(p) = f.ops.as_any().downcast_ref::<crate::pidfd::PidFd>() {
                    info.push_str(&p.fdinfo());
                }
                Ok(info.into_bytes())
            })
        }),
        "task" => {
            let w2 = w.clone();
            Arc::new(ProcDir {
                path: p.clone(),
                list: Box::new(move || vec![(pid.to_string().into_bytes(), DT_DIR)]),
                lookup: Box::new(move |name| {
                    if name != pid.to_string().as_bytes() {
                        return Err(Errno::ENOENT);
                    }
                    let tg = w2.upgrade().ok_or(Errno::ENOENT)?;
                    Ok(pid_dir(&tg))
                }),
            })
        }
        "net" => net_dir(p, Arc::downgrade(&w.upgrade().ok_or(Errno::ENOENT)?.kernel)),
        "maps" => file(p, move || with_tg(&w, |tg| Ok(maps(tg)))),
        "status" => file(p, move || with_tg(&w, |tg| Ok(status(tg)))),
        "stat" => file(p, move || with_tg(&w, |tg| Ok(stat_line(tg)))),
        "statm" => file(p, move || {
            with_tg(&w, |tg| {
                let pages: u64 =
                    tg.mm().map(|m| m.vmas()).unwrap_or_default().iter().map(|v| (v.end - v.start) / 4096).sum();
                Ok(format!("{pages} 0 0 0 0 0 0\n").into_bytes())
            })
        }),
        "comm" => file(p, move || {
            with_tg(&w, |tg| {
                let mut c = lock(&tg.comm).clone();
                c.push(b'\n');
                Ok(c)
            })
        }),
        "cmdline" => file(p, move || with_tg(&w, |tg| Ok(mem_range(tg, true)))),
        "environ" => file(p, move || with_tg(&w, |tg| Ok(mem_range(tg, false)))),
        "auxv" => file(p, || Ok(Vec::new())),
        "limits" => file(p, move || with_tg(&w, |tg| Ok(limits(tg)))),
        "mounts" => file(p, move || with_tg(&w, |tg| Ok(mounts(tg, false)))),
        "mountinfo" => file(p, move || with_tg(&w, |tg| Ok(mounts(tg, true)))),
        _ => return Err(Errno::ENOENT),
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

fn status(tg: &ThreadGroup) -> Vec<u8> {
    let c = tg.creds();
    let comm = String::from_utf8_lossy(&lock(&tg.comm)).into_owned();
    let vm: u64 = tg.mm().map(|m| m.vmas()).unwrap_or_default().iter().map(|v| v.end - v.start).sum::<u64>() / 1024;
    let locked = tg.mm().map(|m| m.locked_bytes(None)).unwrap_or_default() / 1024;
    let state = if tg.exit_status().is_some() {
        "Z (zombie)"
    } else if tg.is_stopped() {
        "T (stopped)"
    } else {
        "R (running)"
    };
    format!(
        "Name:\t{comm}\nUmask:\t{:04o}\nState:\t{state}\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{ppid}\nTracerPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t64\nGroups:\t{}\nVmSize:\t{vm} kB\nVmLck:\t{locked} kB\nVmRSS:\t{vm} kB\nThreads:\t1\nSigQ:\t0/63432\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\nCapInh:\t0000000000000000\nCapPrm:\t0000003fffffffff\nCapEff:\t0000003fffffffff\nCapBnd:\t0000003fffffffff\nSeccomp:\t0\nCpus_allowed_list:\t0-{}\nvoluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
        tg.fs().umask,
        c.uid, c.euid, c.suid, c.fsuid, c.gid, c.egid, c.sgid, c.fsgid,
        c.groups.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(" "),
        crate::hostfacts::ncpus() - 1,
        pid = tg.tgid,
        ppid = *lock(&tg.ppid),
    )
    .into_bytes()
}

fn stat_line(tg: &ThreadGroup) -> Vec<u8> {
    let comm = String::from_utf8_lossy(&lock(&tg.comm)).into_owned();
    let state = if tg.exit_status().is_some() {
        'Z'
    } else if tg.is_stopped() {
        'T'
    } else {
        'R'
    };
    let vsize: u64 = tg.mm().map(|m| m.vmas()).unwrap_or_default().iter().map(|v| v.end - v.start).sum();
    // Priority and nice are the main thread's, as on Linux.
    let sched = tg.thread(tg.tgid).map(|t| *lock(&t.sched)).unwrap_or_default();
    format!(
        "{} ({}) {} {} {} {} 0 -1 0 0 0 0 0 0 0 0 0 {} {} 1 0 0 {} 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 {} {} 0 0 0\n",
        tg.tgid, comm, state, *lock(&tg.ppid), *lock(&tg.pgid), *lock(&tg.sid), sched.proc_priority(), sched.nice, vsize,
        sched.rt_priority, sched.policy
    )
    .into_bytes()
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

/// A procfs root that forwards to the one put in `slot` later (the mount
/// table is built before the kernel that procfs reads from).
pub fn deferred_root(slot: Arc<std::sync::OnceLock<InodeRef>>) -> InodeRef {
    Arc::new(Deferred(slot))
}

struct Deferred(Arc<std::sync::OnceLock<InodeRef>>);

impl Deferred {
    fn get(&self) -> Result<&InodeRef, Errno> {
        self.0.get().ok_or(Errno::ENOENT)
    }
}

impl Inode for Deferred {
    fn stat(&self) -> Result<Stat, Errno> {
        self.get()?.stat()
    }
    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        self.get()?.lookup(name)
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        self.get()?.readdir()
    }
    fn statfs(&self) -> Result<abi::Statfs, Errno> {
        Ok(abi::Statfs { f_type: 0x9fa0, f_bsize: 4096, f_namelen: 255, f_frsize: 4096, ..Default::default() })
    }
    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        self.get()?.open(flags)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// /proc/[pid]/fd/N: shows the file's path, and following it reaches the
/// open file itself (even one without a path, like a pipe).
struct FdLink {
    path: String,
    file: Arc<vfs::OpenFile>,
}

impl Inode for FdLink {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_for(&self.path, S_IFLNK | 0o700, 1, 0))
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Ok(self.file.display_path())
    }
    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Err(Errno::ELOOP)
    }
    fn magic_link(&self) -> Option<vfs::MagicLink> {
        Some(match &self.file.dentry {
            Some(d) => vfs::MagicLink::Dentry(d.clone()),
            None => vfs::MagicLink::Inode(Arc::new(OpenFileNode(self.file.clone()))),
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open file without a path, seen as a node (reopened through /proc).
struct OpenFileNode(Arc<vfs::OpenFile>);

impl Inode for OpenFileNode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.0.ops.stat().unwrap_or(Stat { st_mode: S_IFREG | 0o600, st_nlink: 1, ..Default::default() }))
    }
    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        // A pipe reopens as a new end of the same pipe (its reader and
        // writer counts are per open); other files share their ops.
        if let Some(end) = self.0.ops.as_any().downcast_ref::<vfs::pipe::PipeEnd>() {
            return end.pipe().reopen(flags);
        }
        Ok(self.0.ops.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
