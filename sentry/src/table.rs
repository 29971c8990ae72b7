//! The syscall table: one entry per number with its name, handler and
//! support level. The same data drives dispatch, `--strace` names and
//! `runsc-lite syscalls`, so they cannot disagree.
//!
//! Handlers take typed arguments decoded once from the registers by
//! [`FromArg`]; registering `fn(&mut Task, Fd, UserAddr, usize)` is enough.

use crate::task::Task;
use abi::Errno;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub type SysResult = Result<u64, Errno>;

/// How completely a syscall is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Support {
    Full,
    /// Served, with the note saying what is missing.
    Partial(&'static str),
    /// Returns ENOSYS (logged once); the note says why.
    Unimplemented(&'static str),
}

/// A value decoded from one syscall argument register.
pub trait FromArg: Sized {
    fn from_arg(raw: u64) -> Self;
    /// How --strace shows it.
    fn describe(raw: u64, _task: &Task) -> String {
        format!("{:#x}", raw)
    }
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl FromArg for $t {
            fn from_arg(raw: u64) -> Self {
                raw as $t
            }
            fn describe(raw: u64, _task: &Task) -> String {
                (raw as $t).to_string()
            }
        }
    )*};
}
int_arg!(i32, u32, i64, u64, usize);

/// A file descriptor argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fd(pub i32);
impl FromArg for Fd {
    fn from_arg(raw: u64) -> Self {
        Fd(raw as i32)
    }
    fn describe(raw: u64, _task: &Task) -> String {
        (raw as i32).to_string()
    }
}

/// A directory fd for *at() calls (AT_FDCWD allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirFd(pub i32);
impl FromArg for DirFd {
    fn from_arg(raw: u64) -> Self {
        DirFd(raw as i32)
    }
    fn describe(raw: u64, _task: &Task) -> String {
        if raw as i32 == abi::flags::AT_FDCWD {
            "AT_FDCWD".into()
        } else {
            (raw as i32).to_string()
        }
    }
}

/// A guest address (never a host pointer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct UserAddr(pub u64);
impl UserAddr {
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
    /// `self + n`, EFAULT on overflow.
    pub fn offset(self, n: u64) -> Result<UserAddr, Errno> {
        self.0.checked_add(n).map(UserAddr).ok_or(Errno::EFAULT)
    }
}
impl FromArg for UserAddr {
    fn from_arg(raw: u64) -> Self {
        UserAddr(raw)
    }
    fn describe(raw: u64, _task: &Task) -> String {
        if raw == 0 {
            "NULL".into()
        } else {
            format!("{:#x}", raw)
        }
    }
}

/// The guest address of a NUL-terminated path; strace shows the string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathAddr(pub u64);
impl FromArg for PathAddr {
    fn from_arg(raw: u64) -> Self {
        PathAddr(raw)
    }
    fn describe(raw: u64, task: &Task) -> String {
        crate::strace::path(task, raw)
    }
}

/// Flag bits, shown in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(pub u64);
impl FromArg for Flags {
    fn from_arg(raw: u64) -> Self {
        Flags(raw)
    }
}

/// An argument list (a tuple of FromArg) and how strace shows it.
pub trait ArgList {
    fn describe(task: &Task, a: &[u64; 6]) -> String;
}

/// A handler taking `Args` after the task.
pub trait SyscallFn<Args>: Send + Sync + 'static {
    fn call(&self, task: &mut Task, a: &[u64; 6]) -> SysResult;
}

macro_rules! handler_arity {
    ($($t:ident $i:tt),*) => {
        impl<$($t: FromArg),*> ArgList for ($($t,)*) {
            #[allow(unused_variables)]
            fn describe(task: &Task, a: &[u64; 6]) -> String {
                let parts: Vec<String> = vec![$($t::describe(a[$i], task)),*];
                parts.join(", ")
            }
        }
        impl<F, $($t: FromArg),*> SyscallFn<($($t,)*)> for F
        where
            F: Fn(&mut Task, $($t),*) -> SysResult + Send + Sync + 'static,
        {
            #[allow(unused_variables)]
            fn call(&self, task: &mut Task, a: &[u64; 6]) -> SysResult {
                self(task, $($t::from_arg(a[$i])),*)
            }
        }
    };
}
handler_arity!();
handler_arity!(A 0);
handler_arity!(A 0, B 1);
handler_arity!(A 0, B 1, C 2);
handler_arity!(A 0, B 1, C 2, D 3);
handler_arity!(A 0, B 1, C 2, D 3, E 4);
handler_arity!(A 0, B 1, C 2, D 3, E 4, G 5);

type Handler = Box<dyn Fn(&mut Task, &[u64; 6]) -> SysResult + Send + Sync>;
type Describer = fn(&Task, &[u64; 6]) -> String;

/// One syscall number's entry.
pub struct Entry {
    pub name: &'static str,
    pub support: Support,
    handler: Option<Handler>,
    describe: Describer,
    warned: AtomicBool,
}

fn describe_raw(_t: &Task, a: &[u64; 6]) -> String {
    a.iter().map(|v| format!("{:#x}", v)).collect::<Vec<_>>().join(", ")
}

/// How many calls to numbers outside the table are logged: a guest can
/// make them in a loop, and one log line each would let it fill the log.
const UNKNOWN_LOGGED: u32 = 8;

/// The table the Sentry dispatches through.
pub struct SyscallTable {
    entries: Vec<Entry>,
    /// Calls to numbers outside the table logged so far.
    unknown_logged: AtomicU32,
    /// Numbers `unimplemented` was asked to mark while a handler was
    /// registered (the handler is kept; a test fails on any).
    shadowed: Vec<usize>,
}

impl Default for SyscallTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SyscallTable {
    /// Every number known to the ABI, all unimplemented.
    pub fn new() -> SyscallTable {
        let entries = (0..abi::sysno::SYSCALL_COUNT)
            .map(|nr| Entry {
                name: abi::sysno::name(nr).unwrap_or(""),
                support: Support::Unimplemented("not implemented"),
                handler: None,
                describe: describe_raw,
                warned: AtomicBool::new(false),
            })
            .collect();
        SyscallTable { entries, unknown_logged: AtomicU32::new(0), shadowed: Vec::new() }
    }

    /// Serve `nr` with `f`.
    pub fn register<A: ArgList + 'static, F: SyscallFn<A>>(&mut self, nr: usize, support: Support, f: F) {
        if let Some(e) = self.entries.get_mut(nr) {
            e.support = support;
            e.handler = Some(Box::new(move |t, a| f.call(t, a)));
            e.describe = A::describe;
        }
    }

    /// Record why `nr` is not served (it returns ENOSYS). A number that
    /// already has a handler keeps it (the two lists were merged out of
    /// step) and is reported by `shadowed`.
    pub fn unimplemented(&mut self, nr: usize, why: &'static str) {
        if let Some(e) = self.entries.get_mut(nr) {
            if e.handler.is_some() {
                self.shadowed.push(nr);
                return;
            }
            e.support = Support::Unimplemented(why);
            e.handler = None;
        }
    }

    /// Numbers marked unimplemented after a handler was registered.
    pub fn shadowed(&self) -> &[usize] {
        &self.shadowed
    }

    /// Whether `nr` has a handler.
    pub fn served(&self, nr: usize) -> bool {
        self.entries.get(nr).is_some_and(|e| e.handler.is_some())
    }

    pub fn entries(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.entries.iter().enumerate().filter(|(_, e)| !e.name.is_empty())
    }

    pub fn name(&self, nr: u64) -> &'static str {
        self.entries.get(nr as usize).map(|e| e.name).unwrap_or("")
    }

    /// Run syscall `nr` for `task`.
    pub fn dispatch(&self, task: &mut Task, nr: u64, args: &[u64; 6]) -> SysResult {
        vfs::attrcache::begin_call();
        let Some(e) = self.entries.get(nr as usize) else {
            #[cfg(debug_assertions)]
            if nr == crate::failure::DEBUG_PANIC_SYSCALL {
                return crate::failure::debug_panic(task, args);
            }
            self.log_unknown(nr);
            return Err(Errno::ENOSYS);
        };
        match &e.handler {
            Some(h) => h(task, args),
            None => {
                if !e.warned.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "unimplemented syscall {} ({nr}): ENOSYS",
                        if e.name.is_empty() { "?" } else { e.name }
                    );
                }
                Err(Errno::ENOSYS)
            }
        }
    }

    /// Logs the first few calls to numbers outside the table, then says
    /// that the rest go unlogged.
    fn log_unknown(&self, nr: u64) {
        let n = self.unknown_logged.fetch_add(1, Ordering::Relaxed);
        if n < UNKNOWN_LOGGED {
            tracing::warn!("unknown syscall number {nr}: ENOSYS");
        }
        if n + 1 == UNKNOWN_LOGGED {
            tracing::warn!("further unknown syscall numbers are not logged");
        }
        if n > UNKNOWN_LOGGED {
            // Keep the counter from wrapping back into the logged range.
            self.unknown_logged.store(UNKNOWN_LOGGED + 1, Ordering::Relaxed);
        }
    }

    /// "name(arg, arg, ...)" for --strace: decoded as `strace::formats`
    /// lists for the number, else by the handler's argument types.
    pub fn describe_call(&self, task: &Task, nr: u64, args: &[u64; 6]) -> String {
        match self.entries.get(nr as usize) {
            Some(e) if !e.name.is_empty() => {
                let shown = crate::strace::describe_args(task, nr, args).unwrap_or_else(|| (e.describe)(task, args));
                format!("{}({shown})", e.name)
            }
            _ => format!("syscall_{nr}({})", describe_raw(task, args)),
        }
    }
}
