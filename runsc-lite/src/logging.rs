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
            let strace = Targets::new().with_target("strace", strace_level);
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(Arc::new(std::io::stderr()))
                .without_time()
                .with_target(false)
                .with_level(true)
                .with_ansi(false)
                .with_filter(strace);
            let warnings = Targets::new()
                .with_default(Level::WARN)
                .with_target("strace", tracing_subscriber::filter::LevelFilter::OFF);
            tracing_subscriber::registry()
                .with(layer)
                .with(WarningLayer.with_filter(warnings))
                .try_init()
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(LogGuard)
}

/// `--log FILE` and `--log-format`: where runsc-lite's errors go as well
/// as stderr, as runc writes them (containerd's shim reads the last error
/// line of that file to tell its caller why a command failed).
static ERROR_LOG: std::sync::OnceLock<(std::path::PathBuf, bool)> = std::sync::OnceLock::new();

/// Remember `--log` (json: `--log-format json`).
pub fn set_error_log(path: Option<&std::path::Path>, json: bool) {
    if let Some(p) = path {
        let _ = ERROR_LOG.set((p.to_path_buf(), json));
    }
}

/// Append one error line to the `--log` file, if any:
/// `{"level":"error","msg":"...","time":"..."}` with `--log-format json`,
/// else `time="..." level=error msg="..."` (logrus's text format).
pub fn error_line(msg: &str) {
    use std::io::Write;
    let Some((path, json)) = ERROR_LOG.get() else { return };
    let time = rfc3339(std::time::SystemTime::now());
    let line = if *json {
        serde_json::json!({ "level": "error", "msg": msg, "time": time }).to_string()
    } else {
        format!("time={} level=error msg={}", serde_json::json!(time), serde_json::json!(msg))
    };
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// Warnings and errors: to the `--log` file when there is one (as runc's
/// logrus writes them, in its format: containerd's shim parses every line
/// of that file, and the container's own stdio, which is runsc-lite's
/// stderr under `create`, must carry none of them), else to stderr.
struct WarningLayer;

#[derive(Default)]
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarningLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        use std::io::Write;
        let mut m = Message::default();
        event.record(&mut m);
        let level = *event.metadata().level();
        let Some((path, json)) = ERROR_LOG.get() else {
            let _ = writeln!(std::io::stderr(), "{level:>5} {}", m.0);
            return;
        };
        let name = if level == Level::ERROR { "error" } else { "warning" };
        let time = rfc3339(std::time::SystemTime::now());
        let line = if *json {
            serde_json::json!({ "level": name, "msg": m.0, "time": time }).to_string()
        } else {
            format!("time={} level={name} msg={}", serde_json::json!(time), serde_json::json!(m.0))
        };
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// `2026-11-30T19:48:20.123456789Z`.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_796_067_300, 5);
        assert_eq!(super::rfc3339(t), "2026-11-30T19:35:00.000000005Z");
        assert_eq!(super::rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }
}
