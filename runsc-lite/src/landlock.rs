//! Landlock over the Sentry's mount roots (raw syscalls; the host's ABI
//! version decides which rights exist and are handled).
//!
//! Every right the host's Landlock knows is handled, so anything not
//! granted here is denied: read-only roots get reading, read-write bind
//! sources reading and writing, and the Sentry's own /proc reading; no
//! executing, no devices, no TCP bind or connect (ABI 4), no abstract unix
//! sockets or signals outside the domain (ABI 6). Descriptors opened before
//! `restrict` keep working; every later open is checked again here.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const SYS_CREATE_RULESET: libc::c_long = 444;
const SYS_ADD_RULE: libc::c_long = 445;
const SYS_RESTRICT_SELF: libc::c_long = 446;
const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: u32 = 1;

pub const EXECUTE: u64 = 1 << 0;
pub const WRITE_FILE: u64 = 1 << 1;
pub const READ_FILE: u64 = 1 << 2;
pub const READ_DIR: u64 = 1 << 3;
pub const REMOVE_DIR: u64 = 1 << 4;
pub const REMOVE_FILE: u64 = 1 << 5;
pub const MAKE_DIR: u64 = 1 << 7;
pub const MAKE_REG: u64 = 1 << 8;
pub const MAKE_SOCK: u64 = 1 << 9;
pub const MAKE_FIFO: u64 = 1 << 10;
pub const MAKE_SYM: u64 = 1 << 12;
pub const REFER: u64 = 1 << 13;
pub const TRUNCATE: u64 = 1 << 14;
pub const IOCTL_DEV: u64 = 1 << 15;

/// Rights that apply to a file (not a directory) rule.
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;

#[repr(C)]
struct RulesetAttr {
    fs: u64,
    net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneath {
    allowed: u64,
    parent_fd: i32,
}

/// The host's Landlock ABI version (0: none).
pub fn abi_version() -> i64 {
    // SAFETY: a NULL attribute with the VERSION flag only queries.
    let v =
        unsafe { libc::syscall(SYS_CREATE_RULESET, std::ptr::null::<RulesetAttr>(), 0usize, CREATE_RULESET_VERSION) };
    v.max(0)
}

/// Rights a ruleset of ABI `abi` handles.
fn handled_fs(abi: i64) -> u64 {
    // EXECUTE through MAKE_SYM (bits 0-12): ABI 1.
    let mut r = (1 << 13) - 1;
    if abi >= 2 {
        r |= REFER;
    }
    if abi >= 3 {
        r |= TRUNCATE;
    }
    if abi >= 5 {
        r |= IOCTL_DEV;
    }
    r
}

/// What a root may do: `write` for read-write bind sources.
pub fn rights(write: bool) -> u64 {
    let read = READ_FILE | READ_DIR;
    if write {
        read | WRITE_FILE
            | REMOVE_DIR
            | REMOVE_FILE
            | MAKE_DIR
            | MAKE_REG
            | MAKE_SOCK
            | MAKE_FIFO
            | MAKE_SYM
            | REFER
            | TRUNCATE
    } else {
        read
    }
}

/// A ruleset being built.
pub struct Ruleset {
    fd: OwnedFd,
    handled: u64,
}

/// Start a ruleset; None when the host has no Landlock (then the other
/// fences stand alone; boot logs it).
pub fn ruleset() -> Result<Option<Ruleset>, String> {
    let abi = abi_version();
    if abi < 1 {
        return Ok(None);
    }
    let attr = RulesetAttr {
        fs: handled_fs(abi),
        net: if abi >= 4 { 0b11 } else { 0 },
        scoped: if abi >= 6 { 0b11 } else { 0 },
    };
    let size = if abi >= 6 {
        24
    } else if abi >= 4 {
        16
    } else {
        8
    };
    // SAFETY: `attr` is live and at least `size` bytes long.
    let fd = unsafe { libc::syscall(SYS_CREATE_RULESET, &attr as *const RulesetAttr, size as usize, 0u32) };
    if fd < 0 {
        return Err(format!("landlock_create_ruleset: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor owned by nobody else.
    Ok(Some(Ruleset { fd: unsafe { OwnedFd::from_raw_fd(fd as i32) }, handled: attr.fs }))
}

impl Ruleset {
    /// Allow `rights` beneath the node `fd` holds (a directory, or a file
    /// for a file bind mount: then only file rights apply).
    pub fn allow(&self, fd: RawFd, rights: u64, is_dir: bool) -> Result<(), String> {
        let mut allowed = rights & self.handled;
        if !is_dir {
            allowed &= FILE_RIGHTS;
        }
        let attr = PathBeneath { allowed, parent_fd: fd };
        // SAFETY: `attr` is live; the kernel copies it.
        let r = unsafe {
            libc::syscall(SYS_ADD_RULE, self.fd.as_raw_fd(), RULE_PATH_BENEATH, &attr as *const PathBeneath, 0u32)
        };
        if r < 0 {
            return Err(format!("landlock_add_rule: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Enforce the ruleset on this process (no_new_privs must be set).
    pub fn restrict(self) -> Result<(), String> {
        // SAFETY: no pointers.
        let r = unsafe { libc::syscall(SYS_RESTRICT_SELF, self.fd.as_raw_fd(), 0u32) };
        if r < 0 {
            return Err(format!("landlock_restrict_self: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}
