//! Credentials and the DAC permission check the VFS applies itself (the
//! host sees only the Sentry's own identity).

use abi::{Errno, Stat};

/// The identity a task acts with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub suid: u32,
    pub sgid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
}

impl Creds {
    pub fn new(uid: u32, gid: u32, groups: Vec<u32>) -> Creds {
        Creds { uid, gid, euid: uid, egid: gid, suid: uid, sgid: gid, fsuid: uid, fsgid: gid, groups }
    }

    pub fn root() -> Creds {
        Creds::new(0, 0, Vec::new())
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.contains(&gid)
    }

    /// May this identity access a node with `st` for `mask` (R_OK=4,
    /// W_OK=2, X_OK=1)? Root bypasses read/write and needs one x bit to
    /// execute, as Linux's CAP_DAC_OVERRIDE does.
    pub fn may_access(&self, st: &Stat, mask: u32) -> Result<(), Errno> {
        if mask == 0 {
            return Ok(());
        }
        if self.fsuid == 0 {
            let is_dir = st.st_mode & abi::flags::S_IFMT == abi::flags::S_IFDIR;
            if mask & 1 != 0 && !is_dir && st.st_mode & 0o111 == 0 {
                return Err(Errno::EACCES);
            }
            return Ok(());
        }
        let bits = if self.fsuid == st.st_uid {
            (st.st_mode >> 6) & 7
        } else if self.in_group(st.st_gid) {
            (st.st_mode >> 3) & 7
        } else {
            st.st_mode & 7
        };
        if bits & mask == mask {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }
}
