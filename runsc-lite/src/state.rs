//! Container ids and the state directory under `--root`.
//!
//! A container's state lives in `<root>/<id>/`: `state.json` (the OCI
//! state) and `lock`, on which the owning runsc-lite holds an exclusive
//! POSIX record lock for the container's life. (A record lock belongs to
//! the process: the stub processes the Sentry forks do not inherit it,
//! so it goes the moment runsc-lite dies, even by SIGKILL. An flock would
//! live on in every forked child holding the descriptor.) runsc-lite creates that directory
//! itself and, when the container ends, removes exactly the files it
//! wrote and then the directory if it is empty: nothing it did not create
//! is ever removed, whatever the id or `--root` say.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Longest container id: one path component (NAME_MAX).
pub const MAX_ID_LEN: usize = 255;

const STATE_FILE: &str = "state.json";
/// state.json is written here first and renamed, so a reader never sees
/// it half written.
const STATE_TMP: &str = "state.json.tmp";
const LOCK_FILE: &str = "lock";
/// The lifecycle supervisor's socket (crate::lifecycle).
pub const CONTROL_SOCKET: &str = "control.sock";
/// Every name runsc-lite creates in a state directory.
const OUR_FILES: [&str; 4] = [STATE_FILE, STATE_TMP, LOCK_FILE, CONTROL_SOCKET];

/// Accepts the ids runc accepts: letters, digits, `_`, `+`, `-` and `.`,
/// not starting with `.`, at most [`MAX_ID_LEN`] bytes. Such an id is one
/// path component that is neither `.` nor `..`, so `<root>/<id>` never
/// leaves `<root>`.
pub fn validate_id(id: &str) -> Result<(), String> {
    let charset = id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if id.is_empty() || id.len() > MAX_ID_LEN || id.starts_with('.') || !charset {
        return Err(format!(
            "invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.', not starting with '.', \
             at most {MAX_ID_LEN} characters"
        ));
    }
    Ok(())
}

/// The state root given by `--root`: created (mode 0700) when missing,
/// refused when it exists and is not a directory.
pub fn prepare_root(root: &Path) -> Result<(), String> {
    match std::fs::metadata(root) {
        Ok(md) if md.is_dir() => Ok(()),
        Ok(_) => Err(format!("--root {}: not a directory", root.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| format!("--root {}: cannot create it: {e}", root.display())),
        Err(e) => Err(format!("--root {}: {e}", root.display())),
    }
}

/// A container's claim on `<root>/<id>/`, held while it runs.
pub struct ContainerState {
    dir: PathBuf,
    /// Holds the record lock that tells other runsc-lite commands the
    /// container is alive.
    _lock: File,
}

impl ContainerState {
    /// Claims `<root>/<id>/` for a new container: the directory must not
    /// exist, or be the leftover of a runsc-lite that died (holding only
    /// our own files, its lock free). Anything else is "container ID
    /// already exists".
    pub fn create(root: &Path, id: &str) -> Result<ContainerState, String> {
        validate_id(id)?;
        prepare_root(root)?;
        let dir = root.join(id);
        let exists = || format!("container ID already exists: {id} (state in {})", dir.display());
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let lock = Self::reclaim_stale(&dir).ok_or_else(exists)?;
                return Ok(ContainerState { dir, _lock: lock });
            }
            Err(e) => return Err(format!("creating state directory {}: {e}", dir.display())),
        }
        let lock = open_nofollow(&dir.join(LOCK_FILE), true)
            .map_err(|e| format!("creating {}: {e}", dir.join(LOCK_FILE).display()))?;
        // Blocking: a second runsc-lite that found our directory may hold
        // the lock for the moment it takes to see there is no state.json.
        lock_file(&lock, true).map_err(|e| format!("locking {}: {e}", dir.join(LOCK_FILE).display()))?;
        Ok(ContainerState { dir, _lock: lock })
    }

    /// The lock of a dead runsc-lite's directory, now ours, or None when
    /// the directory is alive, is not a plain directory, or holds files
    /// that are not ours.
    fn reclaim_stale(dir: &Path) -> Option<File> {
        let md = std::fs::symlink_metadata(dir).ok()?;
        if !md.is_dir() {
            return None;
        }
        let ours = std::fs::read_dir(dir)
            .ok()?
            .all(|e| e.map(|e| e.file_name() == STATE_FILE || e.file_name() == LOCK_FILE).unwrap_or(false));
        if !ours || !dir.join(STATE_FILE).is_file() {
            return None;
        }
        // A container of `create` stays until `delete`, stopped or not.
        let text = std::fs::read_to_string(dir.join(STATE_FILE)).ok()?;
        if text.contains("\"lifecycle\"") {
            return None;
        }
        let lock = open_nofollow(&dir.join(LOCK_FILE), false).ok()?;
        lock_file(&lock, false).ok()?;
        tracing::warn!("{}: reusing the state of a runsc-lite that is gone", dir.display());
        Some(lock)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `state` as state.json, atomically.
    pub fn write_value(&self, state: &serde_json::Value) -> Result<(), String> {
        write_state_file(&self.dir, state)
    }

    /// Writes the OCI state (`status` "running", `pid` this process).
    pub fn write_running(&self, id: &str, bundle: &Path) -> Result<(), String> {
        let bundle = bundle.canonicalize().unwrap_or_else(|_| bundle.to_path_buf());
        let state = serde_json::json!({
            "ociVersion": "1.0.2",
            "id": id,
            "status": "running",
            "pid": std::process::id(),
            "bundle": bundle.to_string_lossy(),
        });
        write_state_file(&self.dir, &state)
    }
}

fn write_state_file(dir: &Path, state: &serde_json::Value) -> Result<(), String> {
    let tmp = dir.join(STATE_TMP);
    let path = dir.join(STATE_FILE);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        writeln!(f, "{state}")?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| format!("writing {}: {e}", path.display()))
}

/// What a command other than the owner sees of `<root>/<id>/`.
pub struct Observed {
    pub dir: PathBuf,
    pub state: serde_json::Value,
    /// Some process (the supervisor, or `run`) holds the lock.
    pub alive: bool,
}

/// The state of container `id`, or None when it does not exist (no
/// directory, or one with no state.json yet: a `create` in progress).
pub fn observe(root: &Path, id: &str) -> Result<Option<Observed>, String> {
    validate_id(id)?;
    let dir = root.join(id);
    let text = match std::fs::read_to_string(dir.join(STATE_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", dir.join(STATE_FILE).display())),
    };
    let state = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dir.join(STATE_FILE).display()))?;
    let alive = match open_nofollow(&dir.join(LOCK_FILE), false) {
        // Taking the lock and closing the file gives it back at once.
        Ok(f) => lock_file(&f, false).is_err(),
        Err(_) => false,
    };
    Ok(Some(Observed { dir, state, alive }))
}

/// Wait until the owner of `<root>/<id>/` has gone; then remove the
/// files runsc-lite made there and the directory. The lock is held
/// while removing, so two deletes do not race.
pub fn remove(dir: &Path) -> Result<(), String> {
    let lock = open_nofollow(&dir.join(LOCK_FILE), false).map_err(|e| format!("{}: {e}", dir.display()))?;
    lock_file(&lock, true).map_err(|e| format!("locking {}: {e}", dir.display()))?;
    for name in OUR_FILES {
        let _ = std::fs::remove_file(dir.join(name));
    }
    std::fs::remove_dir(dir).map_err(|e| format!("removing {}: {e}", dir.display()))
}

impl Drop for ContainerState {
    fn drop(&mut self) {
        // Only the names we create, then the directory only if that left
        // it empty (remove_dir is not recursive).
        for name in OUR_FILES {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!("state directory {} left in place: {e}", self.dir.display());
        }
    }
}

fn open_nofollow(path: &Path, create: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// An exclusive POSIX record lock on the whole of `f`: waiting for it
/// when `wait`, else EAGAIN/EACCES at once when another process holds it.
fn lock_file(f: &File, wait: bool) -> std::io::Result<()> {
    let fl = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    let cmd = if wait { libc::F_SETLKW } else { libc::F_SETLK };
    loop {
        // SAFETY: fcntl(2) record locking on a descriptor this File owns,
        // with a pointer to a live, initialised struct flock.
        let r = unsafe { libc::fcntl(f.as_raw_fd(), cmd, &fl) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1", "x.y", "A_b+c", "0", &"a".repeat(MAX_ID_LEN)] {
            assert!(validate_id(ok).is_ok(), "{ok:?}");
        }
        for bad in
            ["", ".", "..", ".hidden", "../x", "a/b", "/abs", "a b", "a\0b", "ü", "a\n", &"a".repeat(MAX_ID_LEN + 1)]
        {
            let e = validate_id(bad).expect_err(bad);
            assert!(e.starts_with("invalid container id"), "{e}");
        }
    }
}
