//! The Linux x86-64 ABI as plain data: syscall numbers and names, `Errno`,
//! flag values and the `#[repr(C)]` structs that cross the guest boundary.
//!
//! Nothing here knows about the Sentry; every other crate may depend on it.

pub mod errno;
pub mod flags;
pub mod signal;
pub mod socket;
pub mod structs;
pub mod sysno;

pub use errno::Errno;
pub use structs::*;

/// Page size of the x86-64 guest.
pub const PAGE_SIZE: u64 = 4096;

/// Round `x` down to a page boundary.
pub const fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// Round `x` up to a page boundary, or None on overflow.
pub const fn page_up(x: u64) -> Option<u64> {
    match x.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & !(PAGE_SIZE - 1)),
        None => None,
    }
}

/// Marker for `#[repr(C)]` types that may be copied to and from guest
/// memory byte for byte: every bit pattern is a valid value and the type
/// has no padding whose contents would leak Sentry memory.
///
/// # Safety
/// Implement only for plain-old-data `#[repr(C)]` types without padding
/// (or whose padding is explicit fields), with no pointers or references.
pub unsafe trait Pod: Copy + Sized + 'static {
    /// The value's bytes.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: Pod guarantees no padding and plain data, so every byte is initialised.
        unsafe { core::slice::from_raw_parts(self as *const Self as *const u8, core::mem::size_of::<Self>()) }
    }

    /// A value made from the first size_of::<Self>() bytes of `b`, or None
    /// when `b` is too short.
    fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < core::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: length checked above; Pod guarantees any bit pattern is valid;
        // read_unaligned copes with the byte slice's alignment.
        Some(unsafe { core::ptr::read_unaligned(b.as_ptr() as *const Self) })
    }
}

// SAFETY: primitive integers are plain data with no padding.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}
// SAFETY: as above.
unsafe impl Pod for i64 {}
// SAFETY: arrays of Pod are Pod.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}
