//! Process syscalls: identity, exit, execve, limits, prctl, arch_prctl.

use abi::flags::*;
use abi::{fill_cstr, Errno, Rlimit, Utsname};
use sentry::kernel::ExitStatus;
use sentry::locking::lock;
use sentry::table::{PathAddr, UserAddr};
use sentry::{SysResult, Task};
use std::sync::Arc;

pub fn getpid(task: &mut Task) -> SysResult {
    Ok(task.tg.tgid as u64)
}

pub fn gettid(task: &mut Task) -> SysResult {
    Ok(task.tid as u64)
}

pub fn getppid(task: &mut Task) -> SysResult {
    Ok(*lock(&task.tg.ppid) as u64)
}

pub fn getuid(task: &mut Task) -> SysResult {
    Ok(lock(&task.tg.creds).uid as u64)
}

pub fn geteuid(task: &mut Task) -> SysResult {
    Ok(lock(&task.tg.creds).euid as u64)
}

pub fn getgid(task: &mut Task) -> SysResult {
    Ok(lock(&task.tg.creds).gid as u64)
}

pub fn getegid(task: &mut Task) -> SysResult {
    Ok(lock(&task.tg.creds).egid as u64)
}

pub fn getresuid(task: &mut Task, r: UserAddr, e: UserAddr, s: UserAddr) -> SysResult {
    let c = task.creds();
    task.write_obj(r, &c.uid)?;
    task.write_obj(e, &c.euid)?;
    task.write_obj(s, &c.suid)?;
    Ok(0)
}

pub fn getresgid(task: &mut Task, r: UserAddr, e: UserAddr, s: UserAddr) -> SysResult {
    let c = task.creds();
    task.write_obj(r, &c.gid)?;
    task.write_obj(e, &c.egid)?;
    task.write_obj(s, &c.sgid)?;
    Ok(0)
}

pub fn getgroups(task: &mut Task, size: i32, list: UserAddr) -> SysResult {
    let g = task.creds().groups;
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(g.len() as u64);
    }
    if (size as usize) < g.len() {
        return Err(Errno::EINVAL);
    }
    for (i, gid) in g.iter().enumerate() {
        task.write_obj(list.offset(i as u64 * 4)?, gid)?;
    }
    Ok(g.len() as u64)
}

pub fn setgroups(task: &mut Task, size: i32, list: UserAddr) -> SysResult {
    if !(0..=65536).contains(&size) {
        return Err(Errno::EINVAL);
    }
    if task.creds().euid != 0 {
        return Err(Errno::EPERM);
    }
    let mut g = Vec::with_capacity(size as usize);
    for i in 0..size as u64 {
        g.push(task.read_obj::<u32>(list.offset(i * 4)?)?);
    }
    lock(&task.tg.creds).groups = g;
    Ok(0)
}

/// setresuid semantics; -1 (u32::MAX) leaves a field alone. Unprivileged
/// callers may only pick among their current real, effective and saved ids.
fn set_ids(task: &Task, r: u32, e: u32, s: u32, uid: bool) -> SysResult {
    let mut c = lock(&task.tg.creds);
    let (cr, ce, cs) = if uid { (c.uid, c.euid, c.suid) } else { (c.gid, c.egid, c.sgid) };
    let privileged = c.euid == 0;
    let ok = |v: u32| v == u32::MAX || privileged || v == cr || v == ce || v == cs;
    if !ok(r) || !ok(e) || !ok(s) {
        return Err(Errno::EPERM);
    }
    let pick = |v: u32, cur: u32| if v == u32::MAX { cur } else { v };
    let (nr, ne, ns) = (pick(r, cr), pick(e, ce), pick(s, cs));
    if uid {
        c.uid = nr;
        c.euid = ne;
        c.suid = ns;
        c.fsuid = ne;
    } else {
        c.gid = nr;
        c.egid = ne;
        c.sgid = ns;
        c.fsgid = ne;
    }
    Ok(0)
}

pub fn setresuid(task: &mut Task, r: u32, e: u32, s: u32) -> SysResult {
    set_ids(task, r, e, s, true)
}

pub fn setresgid(task: &mut Task, r: u32, e: u32, s: u32) -> SysResult {
    set_ids(task, r, e, s, false)
}

pub fn setreuid(task: &mut Task, r: u32, e: u32) -> SysResult {
    let c = task.creds();
    // The saved id follows the new effective id when the real id is set
    // or the effective id changes to something other than the real id.
    let s = if r != u32::MAX || (e != u32::MAX && e != c.uid) {
        if e == u32::MAX {
            c.euid
        } else {
            e
        }
    } else {
        u32::MAX
    };
    set_ids(task, r, e, s, true)
}

pub fn setregid(task: &mut Task, r: u32, e: u32) -> SysResult {
    let c = task.creds();
    let s = if r != u32::MAX || (e != u32::MAX && e != c.gid) {
        if e == u32::MAX {
            c.egid
        } else {
            e
        }
    } else {
        u32::MAX
    };
    set_ids(task, r, e, s, false)
}

pub fn setuid(task: &mut Task, uid: u32) -> SysResult {
    if uid == u32::MAX {
        return Err(Errno::EINVAL);
    }
    if task.creds().euid == 0 {
        set_ids(task, uid, uid, uid, true)
    } else {
        set_ids(task, u32::MAX, uid, u32::MAX, true)
    }
}

pub fn setgid(task: &mut Task, gid: u32) -> SysResult {
    if gid == u32::MAX {
        return Err(Errno::EINVAL);
    }
    if task.creds().euid == 0 {
        set_ids(task, gid, gid, gid, false)
    } else {
        set_ids(task, u32::MAX, gid, u32::MAX, false)
    }
}

pub fn setfsuid(task: &mut Task, uid: u32) -> SysResult {
    let mut c = lock(&task.tg.creds);
    let old = c.fsuid;
    if c.euid == 0 || [c.uid, c.euid, c.suid, c.fsuid].contains(&uid) {
        c.fsuid = uid;
    }
    Ok(old as u64)
}

pub fn setfsgid(task: &mut Task, gid: u32) -> SysResult {
    let mut c = lock(&task.tg.creds);
    let old = c.fsgid;
    if c.euid == 0 || [c.gid, c.egid, c.sgid, c.fsgid].contains(&gid) {
        c.fsgid = gid;
    }
    Ok(old as u64)
}

pub fn getpgid(task: &mut Task, pid: i32) -> SysResult {
    if pid != 0 && pid != task.tg.tgid {
        let tg = task.kernel.group(pid).ok_or(Errno::ESRCH)?;
        return Ok(*lock(&tg.pgid) as u64);
    }
    Ok(*lock(&task.tg.pgid) as u64)
}

pub fn getpgrp(task: &mut Task) -> SysResult {
    getpgid(task, 0)
}

pub fn getsid(task: &mut Task, pid: i32) -> SysResult {
    if pid != 0 && pid != task.tg.tgid {
        let tg = task.kernel.group(pid).ok_or(Errno::ESRCH)?;
        return Ok(*lock(&tg.sid) as u64);
    }
    Ok(*lock(&task.tg.sid) as u64)
}

pub fn setpgid(task: &mut Task, pid: i32, pgid: i32) -> SysResult {
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = if pid == 0 { task.tg.clone() } else { task.kernel.group(pid).ok_or(Errno::ESRCH)? };
    if target.tgid != task.tg.tgid && *lock(&target.ppid) != task.tg.tgid {
        return Err(Errno::ESRCH);
    }
    if *lock(&target.sid) == target.tgid {
        return Err(Errno::EPERM);
    }
    *lock(&target.pgid) = if pgid == 0 { target.tgid } else { pgid };
    Ok(0)
}

pub fn setsid(task: &mut Task) -> SysResult {
    let tgid = task.tg.tgid;
    if *lock(&task.tg.pgid) == tgid {
        return Err(Errno::EPERM);
    }
    *lock(&task.tg.pgid) = tgid;
    *lock(&task.tg.sid) = tgid;
    Ok(tgid as u64)
}

pub fn exit(task: &mut Task, code: i32) -> SysResult {
    task.exit_thread(ExitStatus::Exited(code & 0xff));
    Ok(0)
}

pub fn exit_group(task: &mut Task, code: i32) -> SysResult {
    task.exit_group(ExitStatus::Exited(code & 0xff));
    Ok(0)
}

/// Read a NULL-terminated array of string pointers (argv, envp), bounded
/// by ARG_MAX bytes in all.
pub(crate) fn read_str_array(task: &Task, addr: UserAddr, total: &mut usize) -> Result<Vec<Vec<u8>>, Errno> {
    let mut v = Vec::new();
    if addr.is_null() {
        return Ok(v);
    }
    for i in 0u64.. {
        let p: u64 = task.read_obj(addr.offset(i * 8)?)?;
        if p == 0 {
            break;
        }
        let room = sentry::exec::ARG_MAX.saturating_sub(*total);
        let s = task.mm().read_cstr(p, room.min(128 * 1024)).map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                Errno::E2BIG
            } else {
                e
            }
        })?;
        *total += s.len() + 1 + 8;
        if *total > sentry::exec::ARG_MAX {
            return Err(Errno::E2BIG);
        }
        v.push(s);
    }
    Ok(v)
}

pub fn execve(task: &mut Task, path: PathAddr, argv: UserAddr, envp: UserAddr) -> SysResult {
    let p = task.read_path(UserAddr(path.0))?;
    let mut total = 0;
    let a = read_str_array(task, argv, &mut total)?;
    let e = read_str_array(task, envp, &mut total)?;
    sentry::exec::execve(task, &p, a, e)?;
    Ok(0)
}

pub fn uname(task: &mut Task, buf: UserAddr) -> SysResult {
    let uts = task.kernel.uts.read().map(|u| u.clone()).map_err(|_| Errno::EFAULT)?;
    let mut u = Utsname {
        sysname: [0; 65],
        nodename: [0; 65],
        release: [0; 65],
        version: [0; 65],
        machine: [0; 65],
        domainname: [0; 65],
    };
    fill_cstr(&mut u.sysname, b"Linux");
    fill_cstr(&mut u.nodename, uts.hostname.as_bytes());
    fill_cstr(&mut u.release, sentry::RELEASE.as_bytes());
    fill_cstr(&mut u.version, sentry::VERSION.as_bytes());
    fill_cstr(&mut u.machine, b"x86_64");
    fill_cstr(&mut u.domainname, uts.domainname.as_bytes());
    task.write_obj(buf, &u)?;
    Ok(0)
}

fn set_uts(task: &Task, name: UserAddr, len: i32, host: bool) -> SysResult {
    if !(0..=64).contains(&len) {
        return Err(Errno::EINVAL);
    }
    if task.creds().euid != 0 {
        return Err(Errno::EPERM);
    }
    let mut b = vec![0u8; len as usize];
    task.copy_in(name, &mut b)?;
    let s = String::from_utf8_lossy(&b).trim_end_matches('\0').to_string();
    let mut u = task.kernel.uts.write().map_err(|_| Errno::EFAULT)?;
    if host {
        u.hostname = s;
    } else {
        u.domainname = s;
    }
    Ok(0)
}

pub fn sethostname(task: &mut Task, name: UserAddr, len: i32) -> SysResult {
    set_uts(task, name, len, true)
}

pub fn setdomainname(task: &mut Task, name: UserAddr, len: i32) -> SysResult {
    set_uts(task, name, len, false)
}

pub fn prlimit64(task: &mut Task, pid: i32, res: u32, new: UserAddr, old: UserAddr) -> SysResult {
    if res >= RLIM_NLIMITS {
        return Err(Errno::EINVAL);
    }
    let tg =
        if pid == 0 || pid == task.tg.tgid { task.tg.clone() } else { task.kernel.group(pid).ok_or(Errno::ESRCH)? };
    if !Arc::ptr_eq(&tg, &task.tg) {
        // Linux's check_prlimit_permission: the caller's uid must be each
        // of the target's uids and its gid each of the target's gids,
        // unless it has CAP_SYS_RESOURCE (euid 0 here).
        let (me, them) = (task.creds(), tg.creds());
        let same = [them.uid, them.euid, them.suid].iter().all(|&u| u == me.uid)
            && [them.gid, them.egid, them.sgid].iter().all(|&g| g == me.gid);
        if !same && me.euid != 0 {
            return Err(Errno::EPERM);
        }
    }
    let newlim = if new.is_null() { None } else { Some(task.read_obj::<Rlimit>(new)?) };
    if let Some(n) = newlim {
        if n.cur > n.max {
            return Err(Errno::EINVAL);
        }
        let cur = tg.rlimit(res);
        if n.max > cur.max && task.creds().euid != 0 {
            return Err(Errno::EPERM);
        }
        if res == RLIMIT_NOFILE && n.max > vfs::fdtable::MAX_NOFILE {
            return Err(Errno::EPERM);
        }
    }
    let prev = tg.rlimit(res);
    if !old.is_null() {
        task.write_obj(old, &prev)?;
    }
    if let Some(n) = newlim {
        if let Some(slot) = lock(&tg.rlimits).get_mut(res as usize) {
            *slot = n;
        }
        if res == RLIMIT_AS {
            if let Some(mm) = tg.mm() {
                mm.set_as_limit(n.cur);
            }
        }
    }
    Ok(0)
}

pub fn getrlimit(task: &mut Task, res: u32, old: UserAddr) -> SysResult {
    if res >= RLIM_NLIMITS {
        return Err(Errno::EINVAL);
    }
    let r = task.tg.rlimit(res);
    task.write_obj(old, &r)?;
    Ok(0)
}

pub fn setrlimit(task: &mut Task, res: u32, new: UserAddr) -> SysResult {
    prlimit64(task, 0, res, new, UserAddr(0))
}

pub fn arch_prctl(task: &mut Task, code: u64, addr: UserAddr) -> SysResult {
    match code {
        ARCH_SET_FS => {
            if addr.0 >= task.mm().top() {
                return Err(Errno::EPERM);
            }
            task.regs.fs_base = addr.0;
            Ok(0)
        }
        ARCH_SET_GS => {
            if addr.0 >= task.mm().top() {
                return Err(Errno::EPERM);
            }
            task.regs.gs_base = addr.0;
            Ok(0)
        }
        ARCH_GET_FS => {
            let v = task.regs.fs_base;
            task.write_obj(addr, &v)?;
            Ok(0)
        }
        ARCH_GET_GS => {
            let v = task.regs.gs_base;
            task.write_obj(addr, &v)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn set_tid_address(task: &mut Task, addr: UserAddr) -> SysResult {
    task.clear_child_tid = addr.0;
    Ok(task.tid as u64)
}

/// sizeof(struct robust_list_head).
const ROBUST_LIST_HEAD_SIZE: u64 = 24;

pub fn set_robust_list(task: &mut Task, head: UserAddr, len: u64) -> SysResult {
    if len != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    task.shared.robust_list.store(head.0, std::sync::atomic::Ordering::Release);
    Ok(0)
}

pub fn get_robust_list(task: &mut Task, pid: i32, head: UserAddr, len: UserAddr) -> SysResult {
    let h = if pid == 0 {
        task.shared.robust_list.load(std::sync::atomic::Ordering::Acquire)
    } else {
        let tg = task.kernel.group_of_tid(pid).ok_or(Errno::ESRCH)?;
        let t = tg.thread(pid).ok_or(Errno::ESRCH)?;
        // Linux's ptrace_may_access (read, real credentials): the caller's
        // uid and gid are all of the target's, or it has CAP_SYS_PTRACE
        // (euid 0 in the sandbox).
        let (me, them) = (task.creds(), tg.creds());
        let same_user = [them.uid, them.euid, them.suid].iter().all(|&u| u == me.uid)
            && [them.gid, them.egid, them.sgid].iter().all(|&g| g == me.gid);
        if tg.tgid != task.tg.tgid && me.euid != 0 && !same_user {
            return Err(Errno::EPERM);
        }
        t.robust_list.load(std::sync::atomic::Ordering::Acquire)
    };
    task.write_obj(head, &h)?;
    task.write_obj(len, &ROBUST_LIST_HEAD_SIZE)?;
    Ok(0)
}

pub fn prctl(task: &mut Task, option: u64, arg2: u64, _a3: u64, _a4: u64, _a5: u64) -> SysResult {
    match option {
        PR_SET_NAME => {
            let name = task.mm().read_cstr(arg2, 16).or_else(|e| {
                if e == Errno::ENAMETOOLONG {
                    let mut b = [0u8; 15];
                    task.copy_in(UserAddr(arg2), &mut b)?;
                    Ok(b.to_vec())
                } else {
                    Err(e)
                }
            })?;
            *lock(&task.tg.comm) = name.into_iter().take(15).collect();
            Ok(0)
        }
        PR_GET_NAME => {
            let mut b = [0u8; 16];
            let c = lock(&task.tg.comm).clone();
            let n = c.len().min(15);
            b[..n].copy_from_slice(&c[..n]);
            task.copy_out(UserAddr(arg2), &b)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG => {
            if arg2 > 64 {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            task.write_obj(UserAddr(arg2), &0i32)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE => {
            if arg2 > 1 {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if arg2 != 1 {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(0),
        PR_CAPBSET_READ => {
            if arg2 > 40 {
                return Err(Errno::EINVAL);
            }
            Ok(1)
        }
        PR_SET_SECCOMP => Err(Errno::EINVAL),
        // Capabilities are not tracked (see capset), so neither is
        // whether a setuid keeps them.
        PR_GET_KEEPCAPS => Ok(0),
        PR_SET_KEEPCAPS => {
            if arg2 > 1 {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sysinfo(task: &mut Task, buf: UserAddr) -> SysResult {
    let up = task.kernel.uptime_ns() / 1_000_000_000;
    // With a memory limit the sandbox's RAM is the limit (as runsc
    // reports it), so programs that size themselves by it fit.
    let (totalram, freeram) = match task.kernel.limits.get().and_then(|l| l.memory) {
        Some(limit) => (limit, limit.saturating_sub(sentry::limits::memory_usage(&task.kernel))),
        None => (2 << 30, 1 << 30),
    };
    let s = abi::Sysinfo {
        uptime: up as i64,
        totalram,
        freeram,
        procs: task.kernel.groups().len() as u16,
        mem_unit: 1,
        ..Default::default()
    };
    task.write_obj(buf, &s)?;
    Ok(0)
}

pub fn getrandom(task: &mut Task, buf: UserAddr, len: u64, flags: u32) -> SysResult {
    if flags & !(GRND_NONBLOCK | GRND_RANDOM) != 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.min(32 << 20) as usize;
    let mut b = vec![0u8; len.min(1 << 20)];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(b.len());
        sentry::exec::fill_random(&mut b[..n]);
        task.copy_out(buf.offset(done as u64)?, &b[..n])?;
        done += n;
    }
    Ok(len as u64)
}

pub fn sched_yield(_task: &mut Task) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

pub fn getcpu(task: &mut Task, cpu: UserAddr, node: UserAddr, _cache: UserAddr) -> SysResult {
    if !cpu.is_null() {
        // The CPU rseq areas report too: the first of the sandbox's mask.
        task.write_obj(cpu, &sentry::rseq::virtual_cpu())?;
    }
    if !node.is_null() {
        task.write_obj(node, &0u32)?;
    }
    Ok(0)
}

pub fn personality(_task: &mut Task, p: u64) -> SysResult {
    if p == 0xffff_ffff || p == 0 {
        return Ok(0);
    }
    Err(Errno::EINVAL)
}

pub fn capget(task: &mut Task, hdr: UserAddr, data: UserAddr) -> SysResult {
    let version: u32 = task.read_obj(hdr)?;
    if version != 0x2008_0522 && version != 0x2007_1026 && version != 0x1998_0330 {
        task.write_obj(hdr, &0x2008_0522u32)?;
        return Err(Errno::EINVAL);
    }
    if data.is_null() {
        return Ok(0);
    }
    let full: u32 = if task.creds().euid == 0 { u32::MAX } else { 0 };
    let words = if version == 0x1998_0330 { 1 } else { 2 };
    for i in 0..words {
        let v = if i == 0 { full } else { full & 0x3f };
        let triple = [v, v, 0u32];
        task.write_obj(data.offset(i * 12)?, &triple)?;
    }
    Ok(0)
}

/// capset(2). Capabilities are not tracked (root has all of them, others
/// none), so a request is checked against that and then accepted without
/// being kept: a process dropping capabilities (ping does) goes on, one
/// asking for more than it has gets EPERM.
pub fn capset(task: &mut Task, hdr: UserAddr, data: UserAddr) -> SysResult {
    let version: u32 = task.read_obj(hdr)?;
    if version != 0x2008_0522 && version != 0x2007_1026 && version != 0x1998_0330 {
        task.write_obj(hdr, &0x2008_0522u32)?;
        return Err(Errno::EINVAL);
    }
    let pid: i32 = task.read_obj(hdr.offset(4)?)?;
    if pid != 0 && pid != task.tid {
        return Err(Errno::EPERM);
    }
    let words = if version == 0x1998_0330 { 1 } else { 2 };
    let root = task.creds().euid == 0;
    for i in 0..words {
        let [effective, permitted, inheritable]: [u32; 3] = task.read_obj(data.offset(i * 12)?)?;
        if effective & !permitted != 0 || (!root && (permitted | inheritable) != 0) {
            return Err(Errno::EPERM);
        }
    }
    Ok(0)
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

fn timeval(ns: u64) -> abi::Timeval {
    abi::Timeval { tv_sec: (ns / 1_000_000_000) as i64, tv_usec: ((ns % 1_000_000_000) / 1000) as i64 }
}

/// A struct rusage with user/system time (ns) and maximum RSS (KiB).
pub fn rusage((user, sys): (u64, u64), maxrss_kb: i64) -> abi::Rusage {
    let mut r = abi::Rusage { ru_utime: timeval(user), ru_stime: timeval(sys), ..Default::default() };
    r.rest[0] = maxrss_kb;
    r
}

/// The process's mapped private memory in KiB: what stands in for the
/// maximum resident set (pages are not tracked one by one).
fn mapped_kb(task: &Task) -> i64 {
    let bytes: u64 = task.mm().vmas().iter().map(|v| v.end - v.start).sum();
    (bytes / 1024) as i64
}

pub fn getrusage(task: &mut Task, who: i32, buf: UserAddr) -> SysResult {
    let r = match who {
        RUSAGE_SELF => rusage(task.tg.cpu_times(), mapped_kb(task)),
        RUSAGE_THREAD => rusage(task.shared.times.get(), mapped_kb(task)),
        RUSAGE_CHILDREN => rusage(task.tg.children_times.get(), 0),
        _ => return Err(Errno::EINVAL),
    };
    task.write_obj(buf, &r)?;
    Ok(0)
}

/// Nanoseconds to clock ticks (USER_HZ = 100).
fn ticks(ns: u64) -> i64 {
    (ns / 10_000_000) as i64
}

pub fn times(task: &mut Task, buf: UserAddr) -> SysResult {
    if !buf.is_null() {
        let (u, s) = task.tg.cpu_times();
        let (cu, cs) = task.tg.children_times.get();
        task.write_obj(
            buf,
            &abi::Tms { tms_utime: ticks(u), tms_stime: ticks(s), tms_cutime: ticks(cu), tms_cstime: ticks(cs) },
        )?;
    }
    Ok(ticks(task.kernel.uptime_ns()) as u64)
}

pub fn clone(task: &mut Task, flags: u64, stack: UserAddr, ptid: UserAddr, ctid: UserAddr, tls: u64) -> SysResult {
    let a = sentry::process::CloneArgs { flags, stack: stack.0, ptid: ptid.0, ctid: ctid.0, tls, pidfd: ptid.0 };
    Ok(sentry::process::clone_process(task, a)? as u64)
}

pub fn fork(task: &mut Task) -> SysResult {
    let a = sentry::process::CloneArgs { flags: abi::signal::SIGCHLD as u64, ..Default::default() };
    Ok(sentry::process::clone_process(task, a)? as u64)
}

pub fn vfork(task: &mut Task) -> SysResult {
    let flags = sentry::process::CLONE_VM | sentry::process::CLONE_VFORK | abi::signal::SIGCHLD as u64;
    let a = sentry::process::CloneArgs { flags, ..Default::default() };
    Ok(sentry::process::clone_process(task, a)? as u64)
}
