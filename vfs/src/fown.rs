//! Who an open file description signals, and with what (Linux's
//! fown_struct): F_SETOWN/F_GETOWN, F_SETOWN_EX/F_GETOWN_EX, F_SETSIG/
//! F_GETSIG, and `send_sigio`, which dnotify uses. The VFS knows no
//! processes: the Sentry installs a `SignalSink` at boot that finds them.

use crate::fdtable::OpenFile;
use abi::SigInfo;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// f_owner_ex.type values.
pub const F_OWNER_TID: i32 = 0;
pub const F_OWNER_PID: i32 = 1;
pub const F_OWNER_PGRP: i32 = 2;

/// siginfo si_code for a dnotify event (POLL_MSG), and its si_band
/// (POLLIN | POLLRDNORM | POLLMSG, Linux's band_table).
pub const POLL_MSG: i32 = 3;
const POLL_MSG_BAND: u64 = 0x441;
/// SIGIO sent without F_SETSIG carries SI_KERNEL (SEND_SIG_PRIV).
const SI_KERNEL: i32 = 0x80;

/// The owner of one open file description: (kind, id), 0 meaning none,
/// and the F_SETSIG signal (0: plain SIGIO).
#[derive(Default)]
pub struct FileOwner {
    owner: AtomicU64,
    signal: AtomicI32,
}

impl FileOwner {
    /// (F_OWNER_*, pid or pgid); pid 0 when nobody owns the file.
    pub fn get(&self) -> (i32, i32) {
        let v = self.owner.load(Ordering::Relaxed);
        ((v >> 32) as i32, v as u32 as i32)
    }

    pub fn set(&self, kind: i32, id: i32) {
        self.owner.store((kind as u32 as u64) << 32 | id as u32 as u64, Ordering::Relaxed);
    }

    pub fn signal(&self) -> i32 {
        self.signal.load(Ordering::Relaxed)
    }

    pub fn set_signal(&self, sig: i32) {
        self.signal.store(sig, Ordering::Relaxed);
    }
}

/// How the VFS reaches processes.
pub trait SignalSink: Send + Sync {
    /// Whether a thread (F_OWNER_TID), process or process group exists.
    fn exists(&self, kind: i32, id: i32) -> bool;
    /// Send `info` to the thread, process or every process of the group.
    fn send(&self, kind: i32, id: i32, info: SigInfo);
}

static SINK: OnceLock<Arc<dyn SignalSink>> = OnceLock::new();

/// Install the Sentry's sink (once, at boot).
pub fn install(sink: Arc<dyn SignalSink>) {
    let _ = SINK.set(sink);
}

/// Whether the owner F_SETOWN/F_SETOWN_EX names exists (ESRCH if not, as
/// Linux since 4.15 answers; 0 always does: it clears the owner).
pub fn owner_exists(kind: i32, id: i32) -> bool {
    id == 0 || SINK.get().is_none_or(|s| s.exists(kind, id))
}

/// Linux's send_sigio: the owner of `f` gets its F_SETSIG signal with the
/// descriptor and band, or plain SIGIO.
pub fn send_sigio(f: &OpenFile, fd: i32, reason: i32) {
    let (kind, id) = f.owner.get();
    let Some(sink) = SINK.get() else { return };
    if id == 0 {
        return;
    }
    let sig = f.owner.signal();
    let info = if sig != 0 {
        let mut info = SigInfo { signo: sig, code: reason, ..Default::default() };
        info.fields[0] = POLL_MSG_BAND;
        info.fields[1] = fd as u32 as u64;
        info
    } else {
        SigInfo { signo: abi::signal::SIGIO, code: SI_KERNEL, ..Default::default() }
    };
    sink.send(kind, id, info);
}
