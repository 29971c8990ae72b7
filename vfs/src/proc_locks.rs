//! The text of /proc/locks: every flock, POSIX and OFD lock and lease in
//! the sandbox, in Linux's format (blocked requests are not listed).

use crate::locks::{self, Kind};

/// Linux's MAJOR/MINOR of a userspace dev_t.
fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

fn type_name(write: bool) -> &'static str {
    if write {
        "WRITE"
    } else {
        "READ "
    }
}

/// /proc/locks now.
pub fn text() -> String {
    let mut out = String::new();
    let mut n = 0u64;
    let mut line = |what: &str, ty: &str, pid: i32, key: locks::FileKey, range: Option<(u64, u64)>| {
        n += 1;
        let (dev, ino) = locks::shown_id(key);
        let (major, minor) = major_minor(dev);
        let span = match range {
            None => "0 EOF".to_string(),
            Some((s, e)) if e >= locks::OFFSET_MAX => format!("{s} EOF"),
            Some((s, e)) => format!("{s} {e}"),
        };
        out.push_str(&format!("{n}: {what} {ty} {pid} {major:02x}:{minor:02x}:{ino} {span}\n"));
    };
    for h in locks::snapshot() {
        line(h.what, type_name(h.write), h.pid, h.key, h.range);
    }
    for (key, kind, pid, breaking) in crate::leases::snapshot() {
        let what = if breaking { "LEASE  BREAKING " } else { "LEASE  ACTIVE   " };
        let ty = match kind {
            Kind::Write => "WRITE",
            Kind::Read => "READ ",
            Kind::Unlock => "UNLCK",
        };
        line(what, ty, pid, key, None);
    }
    out
}
