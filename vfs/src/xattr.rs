//! Extended attributes kept in the Sentry's memory (tmpfs nodes, and so
//! the overlay's upper layer), with Linux's limits and flag semantics.
//!
//! Which namespaces a caller may touch (trusted.* is for the initial
//! namespace's CAP_SYS_ADMIN only; user.* only on regular files and
//! directories) is decided once, in the syscall layer, for every
//! filesystem; a store here only knows names and values.

use abi::Errno;
use std::collections::BTreeMap;

/// Longest name (with its namespace prefix).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest value.
pub const XATTR_SIZE_MAX: usize = 65536;
/// Largest list listxattr returns.
pub const XATTR_LIST_MAX: usize = 65536;
/// setxattr flags.
pub const XATTR_CREATE: u32 = 1;
pub const XATTR_REPLACE: u32 = 2;

/// Most bytes (names, values and per-entry overhead) one node may hold:
/// the Sentry's heap is not a disk, and a list must fit XATTR_LIST_MAX.
pub const XATTR_NODE_MAX: u64 = 128 * 1024;
/// What each attribute costs beyond its name and value (as Linux's
/// simple_xattr_space counts the structure).
const ENTRY_OVERHEAD: u64 = 32;

const STORED: [&[u8]; 3] = [b"user.", b"security.", b"trusted."];

/// Whether an in-memory store keeps `name`, as tmpfs does (trusted.*
/// included: the syscall layer lets only privileged callers reach it):
/// EOPNOTSUPP for other namespaces, EINVAL for a bare prefix.
pub fn check_stored(name: &[u8]) -> Result<(), Errno> {
    match STORED.iter().find(|p| name.starts_with(p)) {
        Some(p) if name.len() == p.len() => Err(Errno::EINVAL),
        Some(_) => Ok(()),
        None => Err(Errno::EOPNOTSUPP),
    }
}

/// POSIX ACL names: a node without an ACL has none to give (ENODATA);
/// setting one is not supported.
pub fn is_posix_acl(name: &[u8]) -> bool {
    name == b"system.posix_acl_access" || name == b"system.posix_acl_default"
}

/// The attributes of one node.
#[derive(Default)]
pub struct Xattrs {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Bytes charged to the sandbox's heap for this map.
    charged: u64,
}

fn cost(name: &[u8], value: &[u8]) -> u64 {
    (name.len() + value.len()) as u64 + ENTRY_OVERHEAD
}

impl Xattrs {
    pub fn get(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        if is_posix_acl(name) {
            return Err(Errno::ENODATA);
        }
        check_stored(name)?;
        self.map.get(name).cloned().ok_or(Errno::ENODATA)
    }

    /// Set `name` (XATTR_CREATE: EEXIST if present; XATTR_REPLACE: ENODATA
    /// if absent); ENOSPC past the per-node cap or the memory limit.
    pub fn set(&mut self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        check_stored(name)?;
        let old = self.map.get(name).map(|v| cost(name, v));
        match old {
            Some(_) if flags & XATTR_CREATE != 0 => return Err(Errno::EEXIST),
            None if flags & XATTR_REPLACE != 0 => return Err(Errno::ENODATA),
            _ => {}
        }
        let new = cost(name, value);
        let total = self.charged - old.unwrap_or(0) + new;
        if total > XATTR_NODE_MAX {
            return Err(Errno::ENOSPC);
        }
        if total > self.charged {
            crate::limits::charge_heap(total - self.charged).map_err(|_| Errno::ENOSPC)?;
        } else {
            crate::limits::uncharge_heap(self.charged - total);
        }
        self.charged = total;
        self.map.insert(name.to_vec(), value.to_vec());
        Ok(())
    }

    pub fn remove(&mut self, name: &[u8]) -> Result<(), Errno> {
        check_stored(name)?;
        let v = self.map.remove(name).ok_or(Errno::ENODATA)?;
        let c = cost(name, &v);
        self.charged = self.charged.saturating_sub(c);
        crate::limits::uncharge_heap(c);
        Ok(())
    }

    /// Every name, in a stable order.
    pub fn list(&self) -> Vec<Vec<u8>> {
        self.map.keys().cloned().collect()
    }

    /// Every (name, value), for copying to another node.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Drop for Xattrs {
    fn drop(&mut self) {
        crate::limits::uncharge_heap(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_limits() {
        let mut x = Xattrs::default();
        assert_eq!(x.get(b"user.a"), Err(Errno::ENODATA));
        assert_eq!(x.set(b"user.a", b"1", XATTR_REPLACE), Err(Errno::ENODATA));
        x.set(b"user.a", b"1", XATTR_CREATE).unwrap();
        assert_eq!(x.set(b"user.a", b"2", XATTR_CREATE), Err(Errno::EEXIST));
        x.set(b"user.a", b"22", XATTR_REPLACE).unwrap();
        assert_eq!(x.get(b"user.a").unwrap(), b"22");
        assert_eq!(x.set(b"user.", b"", 0), Err(Errno::EINVAL));
        assert_eq!(x.set(b"other.a", b"", 0), Err(Errno::EOPNOTSUPP));
        assert_eq!(x.get(b"system.posix_acl_access"), Err(Errno::ENODATA));
        let big = vec![7u8; 60_000];
        x.set(b"user.b", &big, 0).unwrap();
        x.set(b"user.c", &big, 0).unwrap();
        assert_eq!(x.set(b"user.d", &big, 0), Err(Errno::ENOSPC));
        x.set(b"user.b", b"", 0).unwrap();
        x.set(b"user.d", &big, 0).unwrap();
        let names: Vec<&[u8]> = vec![b"user.a", b"user.b", b"user.c", b"user.d"];
        assert_eq!(x.list(), names);
        x.remove(b"user.c").unwrap();
        x.remove(b"user.d").unwrap();
        assert_eq!(x.remove(b"user.c"), Err(Errno::ENODATA));
        assert_eq!(x.charged, cost(b"user.a", b"22") + cost(b"user.b", b""));
    }
}
