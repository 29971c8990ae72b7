//! Reporting a seccomp violation of the confined Sentry.
//!
//! A forbidden syscall traps (SIGSYS, see `filters`); this handler writes
//! "syscall NAME (NR)" to the report pipe that runsc-lite (the parent)
//! reads, then makes the executioner call, which the last filter answers
//! with SECCOMP_RET_KILL_PROCESS. Only async-signal-safe work here: no
//! allocation, no locks, raw syscalls.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

static REPORT_FD: AtomicI32 = AtomicI32::new(-1);
static COOKIE: AtomicU64 = AtomicU64::new(0);

/// Install the SIGSYS handler: reports go to `report_fd`; `cookie` is the
/// executioner's argument.
pub fn install(report_fd: i32, cookie: u64) -> Result<(), String> {
    REPORT_FD.store(report_fd, Ordering::SeqCst);
    COOKIE.store(cookie, Ordering::SeqCst);
    // SAFETY: an all-zero sigaction is valid; the handler is an
    // async-signal-safe extern "C" fn with the SA_SIGINFO signature.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigfillset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) != 0 {
            return Err(format!("sigaction(SIGSYS): {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Append `s` to `buf` at `*n` (truncating at the end of `buf`).
fn put(buf: &mut [u8], n: &mut usize, s: &[u8]) {
    for &b in s {
        if let Some(slot) = buf.get_mut(*n) {
            *slot = b;
            *n += 1;
        }
    }
}

/// `v` in hexadecimal.
fn put_hex(buf: &mut [u8], n: &mut usize, v: u64) {
    put(buf, n, b"0x");
    let mut started = false;
    for i in (0..16).rev() {
        let d = ((v >> (4 * i)) & 0xf) as u8;
        if d != 0 || started || i == 0 {
            started = true;
            put(buf, n, &[if d < 10 { b'0' + d } else { b'a' + d - 10 }]);
        }
    }
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // siginfo for SIGSYS: si_call_addr at 16, si_syscall (int) at 24.
    let nr = if info.is_null() {
        -1
    } else {
        // SAFETY: the kernel passes a valid siginfo of 128 bytes.
        unsafe { std::ptr::read_unaligned((info as *const u8).add(24) as *const i32) }
    };
    let mut buf = [0u8; 160];
    let mut n = 0;
    put(&mut buf, &mut n, b"syscall ");
    put(&mut buf, &mut n, usize::try_from(nr).ok().and_then(abi::sysno::name).unwrap_or("unknown").as_bytes());
    put(&mut buf, &mut n, b" (");
    let mut digits = [0u8; 12];
    let mut d = 0;
    let mut v = nr.unsigned_abs();
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if nr < 0 {
        put(&mut buf, &mut n, b"-");
    }
    while d > 0 {
        d -= 1;
        put(&mut buf, &mut n, &digits[d..d + 1]);
    }
    put(&mut buf, &mut n, b")");
    if !ctx.is_null() {
        // SAFETY: the kernel passes the interrupted thread's ucontext.
        let g = unsafe { &(*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs };
        put(&mut buf, &mut n, b" with arguments ");
        for (i, r) in [libc::REG_RDI, libc::REG_RSI, libc::REG_RDX].iter().enumerate() {
            if i > 0 {
                put(&mut buf, &mut n, b", ");
            }
            put_hex(&mut buf, &mut n, g[*r as usize] as u64);
        }
    }
    put(&mut buf, &mut n, b"\n");
    let fd = REPORT_FD.load(Ordering::Relaxed);
    // SAFETY: write(2) of a live local buffer; then the executioner call,
    // which does not return (KILL_PROCESS), and as a last resort exit_group.
    unsafe {
        libc::write(fd, buf.as_ptr().cast(), n);
        libc::syscall(crate::filters::EXECUTIONER_NR, COOKIE.load(Ordering::Relaxed), 0, 0, 0, 0, 0);
        libc::_exit(128 + libc::SIGSYS);
    }
}
