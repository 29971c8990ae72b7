//! The sandbox's network interfaces: `lo` always (127.0.0.1/8, ::1/128).

/// The interface table.
pub struct Interfaces {}

impl Interfaces {
    pub fn loopback_only() -> Interfaces {
        Interfaces {}
    }
}
