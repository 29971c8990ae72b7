//! The Sentry confining itself, in the child runsc-lite started in new
//! user, mount, pid, ipc, uts and net namespaces (see `sandbox`). Runs
//! while the Sentry is still one thread: capabilities, no_new_privs and
//! Landlock are per thread and inherited by the threads created later.
//!
//! Order: the mount roots and a /proc of the Sentry's own pid namespace
//! are opened first (boot); then [`pivot_to_empty_root`], then
//! [`drop_privileges`] (every capability, the bounding set, no_new_privs,
//! Landlock over the held roots). The seccomp filter comes last, once the
//! platform (whose stub forker must not inherit it) exists.

use crate::landlock;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn last_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn cstr(s: &str) -> CString {
    // Literals without NUL bytes.
    CString::new(s).unwrap_or_default()
}

fn mount(src: &str, target: &str, fstype: &str, flags: libc::c_ulong, data: &str) -> Result<(), String> {
    let (s, t, f, d) = (cstr(src), cstr(target), cstr(fstype), cstr(data));
    // SAFETY: valid C strings that outlive the call.
    let r = unsafe {
        libc::mount(
            if src.is_empty() { std::ptr::null() } else { s.as_ptr() },
            t.as_ptr(),
            if fstype.is_empty() { std::ptr::null() } else { f.as_ptr() },
            flags,
            if data.is_empty() { std::ptr::null() } else { d.as_ptr().cast() },
        )
    };
    if r != 0 {
        return Err(last_err(&format!("mount {fstype} on {target}")));
    }
    Ok(())
}

fn open_dir(path: &str) -> Result<OwnedFd, String> {
    let p = cstr(path);
    // SAFETY: a valid C string; the result is checked.
    let fd = unsafe { libc::open(p.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(last_err(&format!("open {path}")));
    }
    // SAFETY: a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Stop mount events from propagating back to the host, and mount a /proc
/// of the Sentry's own pid namespace (for other threads' CPU times);
/// returns its directory descriptor.
pub fn private_mounts_and_proc() -> Result<OwnedFd, String> {
    mount("", "/", "", libc::MS_REC | libc::MS_PRIVATE, "")?;
    mount("proc", "/proc", "proc", libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, "")?;
    open_dir("/proc")
}

/// Make an empty, read-only tmpfs the root and detach everything else:
/// afterwards only descriptors already held reach host files.
pub fn pivot_to_empty_root() -> Result<(), String> {
    // Over /proc (any directory would do; the proc mount just made stays
    // reachable through its descriptor).
    mount("none", "/proc", "tmpfs", libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, "size=4k,nr_inodes=2,mode=0")?;
    let dot = cstr(".");
    let newroot = cstr("/proc");
    // SAFETY: valid C strings.
    if unsafe { libc::chdir(newroot.as_ptr()) } != 0 {
        return Err(last_err("chdir to the new root"));
    }
    // pivot_root(".", "."): the old root ends up stacked on the new one,
    // then is detached.
    // SAFETY: valid C strings.
    if unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } != 0 {
        return Err(last_err("pivot_root"));
    }
    // SAFETY: a valid C string.
    if unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(last_err("detaching the old root"));
    }
    let root = cstr("/");
    // SAFETY: a valid C string.
    if unsafe { libc::chdir(root.as_ptr()) } != 0 {
        return Err(last_err("chdir /"));
    }
    mount(
        "",
        "/",
        "",
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        "",
    )?;
    Ok(())
}

/// One root the Sentry keeps, for Landlock.
pub struct HeldRoot {
    pub fd: RawFd,
    pub write: bool,
    pub is_dir: bool,
}

/// Drop every capability (effective, permitted, inheritable, ambient and
/// the bounding set), set no_new_privs, and restrict file access to the
/// held roots with Landlock where the host has it.
pub fn drop_privileges(roots: &[HeldRoot], proc_fd: RawFd) -> Result<(), String> {
    // Landlock's ruleset is built while the descriptors are known good.
    let ruleset = landlock::ruleset()?;
    if let Some(rs) = &ruleset {
        for r in roots {
            rs.allow(r.fd, landlock::rights(r.write), r.is_dir)?;
        }
        rs.allow(proc_fd, landlock::rights(false), true)?;
    }
    // SAFETY: prctl calls without pointers.
    unsafe {
        let mut cap = 0;
        while libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) >= 0 {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                return Err(last_err("PR_CAPBSET_DROP"));
            }
            cap += 1;
        }
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    }
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    let hdr = CapHeader { version: 0x2008_0522, pid: 0 };
    let data = [0u32; 6];
    // SAFETY: capset reads a v3 header and two data structs (6 u32).
    if unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) } != 0 {
        return Err(last_err("capset"));
    }
    // SAFETY: no pointers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(last_err("PR_SET_NO_NEW_PRIVS"));
    }
    match ruleset {
        Some(rs) => rs.restrict()?,
        None => tracing::warn!("this host has no Landlock: the Sentry's file access is fenced by its descriptors only"),
    }
    Ok(())
}

/// Is `fd` a directory?
pub fn is_dir(fd: &OwnedFd) -> bool {
    // SAFETY: an all-zero stat is valid; fstat writes into it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a descriptor we hold, into a live local.
    unsafe { libc::fstat(fd.as_raw_fd(), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR }
}
