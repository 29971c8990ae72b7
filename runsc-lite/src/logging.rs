//! Where log lines go: `--debug-log=FILE` takes everything (debug level and
//! --strace lines); otherwise warnings, and --strace lines, go to stderr.

use crate::cli::GlobalFlags;
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Keeps the log set-up alive for the program's duration.
pub struct LogGuard;

/// The debug log's descriptor (-1: none), which a forked helper process
/// (the egress broker) keeps when it closes everything else.
static DEBUG_LOG_FD: AtomicI32 = AtomicI32::new(-1);

pub fn debug_log_fd() -> Option<RawFd> {
    Some(DEBUG_LOG_FD.load(Ordering::Relaxed)).filter(|&fd| fd >= 0)
}

pub fn init(g: &GlobalFlags) -> Result<LogGuard, String> {
    let strace_level = if g.strace { Level::INFO } else { Level::WARN };
    match &g.debug_log {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("--debug-log {}: {e}", path.display()))?;
            DEBUG_LOG_FD.store(file.as_raw_fd(), Ordering::Relaxed);
            let targets = Targets::new().with_default(Level::DEBUG).with_target("strace", strace_level);
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(Mutex::new(file))
                .with_ansi(false)
                .with_thread_ids(true)
                .with_filter(targets);
            tracing_subscriber::registry().with(layer).try_init().map_err(|e| e.to_string())?;
        }
        None => {
            let targets = Targets::new().with_default(Level::WARN).with_target("strace", strace_level);
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(Arc::new(std::io::stderr()))
                .without_time()
                .with_target(false)
                .with_level(true)
                .with_ansi(false)
                .with_filter(targets);
            tracing_subscriber::registry().with(layer).try_init().map_err(|e| e.to_string())?;
        }
    }
    Ok(LogGuard)
}
