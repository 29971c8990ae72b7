//! The executables that processes are running, so that opening one for
//! writing or truncating it gives ETXTBSY, as Linux's deny_write_access
//! does for the file behind each mm's exe_file.
//!
//! Files are known by (device, inode): inodes are not cached, so two
//! walks to one file give two inode objects with one identity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// (st_dev, st_ino) of a file.
pub type FileKey = (u64, u64);

/// How many processes run each executable.
#[derive(Default)]
pub struct RunningExes {
    counts: Mutex<HashMap<FileKey, usize>>,
}

impl RunningExes {
    fn counts(&self) -> MutexGuard<'_, HashMap<FileKey, usize>> {
        // A poisoned map is still a map: keep serving.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more process runs `key`, until the returned hold is dropped.
    pub fn hold(self: &Arc<Self>, key: FileKey) -> ExeHold {
        *self.counts().entry(key).or_insert(0) += 1;
        ExeHold { set: self.clone(), key }
    }

    /// Whether some process runs `key`.
    pub fn is_running(&self, key: FileKey) -> bool {
        self.counts().contains_key(&key)
    }
}

/// A process's claim on its executable (held by its ThreadGroup from
/// execve until exit or the next execve; a fork takes its own).
pub struct ExeHold {
    set: Arc<RunningExes>,
    key: FileKey,
}

impl Clone for ExeHold {
    fn clone(&self) -> ExeHold {
        self.set.hold(self.key)
    }
}

impl Drop for ExeHold {
    fn drop(&mut self) {
        let mut c = self.set.counts();
        if let Some(n) = c.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_count_per_file() {
        let set = Arc::new(RunningExes::default());
        let a = set.hold((1, 2));
        let b = a.clone();
        assert!(set.is_running((1, 2)) && !set.is_running((1, 3)));
        drop(a);
        assert!(set.is_running((1, 2)));
        drop(b);
        assert!(!set.is_running((1, 2)));
    }
}
