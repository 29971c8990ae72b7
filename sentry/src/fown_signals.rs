//! The kernel's side of file-owner signals (`vfs::fown::SignalSink`):
//! dnotify's (and any later SIGIO's) way to the thread, process or
//! process group an open file description names as its owner.

use crate::kernel::Kernel;
use crate::locking::lock;
use crate::tty_jobs::live;
use std::sync::{Arc, Weak};
use vfs::fown::{SignalSink, F_OWNER_PGRP, F_OWNER_TID};

struct OwnerSignals {
    kernel: Weak<Kernel>,
}

/// Install the kernel's sink for file-owner signals.
pub fn install(kernel: &Arc<Kernel>) {
    vfs::fown::install(Arc::new(OwnerSignals { kernel: Arc::downgrade(kernel) }));
}

impl SignalSink for OwnerSignals {
    fn exists(&self, kind: i32, id: i32) -> bool {
        let Some(k) = self.kernel.upgrade() else { return false };
        match kind {
            F_OWNER_TID => k.group_of_tid(id).is_some_and(|g| live(&g)),
            F_OWNER_PGRP => k.groups().iter().any(|g| *lock(&g.pgid) == id && live(g)),
            _ => k.group(id).is_some_and(|g| live(&g)),
        }
    }

    fn send(&self, kind: i32, id: i32, info: abi::SigInfo) {
        let Some(k) = self.kernel.upgrade() else { return };
        match kind {
            F_OWNER_TID => {
                if let Some(g) = k.group_of_tid(id).filter(|g| live(g)) {
                    let _ = crate::signal::send_signal_to_thread(&g, id, info);
                }
            }
            F_OWNER_PGRP => {
                for g in k.groups() {
                    if *lock(&g.pgid) == id && live(&g) {
                        crate::signal::send_signal(&g, info);
                    }
                }
            }
            _ => {
                if let Some(g) = k.group(id).filter(|g| live(g)) {
                    crate::signal::send_signal(&g, info);
                }
            }
        }
    }
}
