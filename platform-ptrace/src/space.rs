//! Address spaces: one stub process each, owned by a dedicated host thread
//! (its tracer) that serves requests from the other Sentry threads.

use crate::stub::{self, InjectError};
use crate::sys::{self, SYS_MMAP, SYS_MPROTECT, SYS_MUNMAP};
use crate::{PlatformShared, STUB_ADDR};
use abi::Errno;
use platform::{AddressSpace, PlatformError, Prot};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

/// Lock a mutex.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Never recovered: the Sentry's failure policy ends the sandbox at a
    // panic, before unwinding could poison anything (sentry::locking).
    m.lock().unwrap_or_else(|_| panic!("a platform lock is poisoned"))
}

/// A request to the owner thread of an address space.
enum Request {
    /// Inject a syscall into the first stub.
    Syscall { nr: u64, args: [u64; 6], reply: SyncSender<Result<u64, InjectError>> },
    /// Clone a new stub thread and hand it over (stopped, untraced).
    NewThread { reply: SyncSender<Result<i32, PlatformError>> },
}

/// One stub thread attached to (traced by) one Sentry thread.
///
/// Its pid is this object's to kill and reap: `alive_flag` goes false
/// exactly when the process has been reaped, after which the pid is never
/// used again (it may belong to another process by then).
pub(crate) struct StubThread {
    pub(crate) pid: i32,
    /// Serialises kill/reap and injections (a context may be dropped on
    /// another thread than the one injecting through its stub thread).
    lock: Mutex<()>,
    /// False once reaped; changed with `lock` held, read without it (the
    /// switch fast path).
    alive_flag: AtomicBool,
}

impl StubThread {
    pub(crate) fn new(pid: i32) -> StubThread {
        StubThread { pid, lock: Mutex::new(()), alive_flag: AtomicBool::new(true) }
    }

    /// Kill and reap the process, unless that already happened.
    pub(crate) fn kill_and_reap(&self) {
        let _g = lock(&self.lock);
        if self.alive_flag.load(Ordering::Acquire) {
            sys::kill_and_reap(self.pid);
            self.alive_flag.store(false, Ordering::Release);
        }
    }

    /// Record that the process has been reaped (by a wait that saw its exit).
    pub(crate) fn mark_reaped(&self) {
        let _g = lock(&self.lock);
        self.alive_flag.store(false, Ordering::Release);
    }

    #[inline(always)]
    pub(crate) fn is_alive(&self) -> bool {
        self.alive_flag.load(Ordering::Acquire)
    }

    /// Inject a syscall; None if the stub is gone.
    fn inject(&self, nr: u64, args: [u64; 6]) -> Option<Result<u64, InjectError>> {
        let _g = lock(&self.lock);
        if !self.alive_flag.load(Ordering::Acquire) {
            return None;
        }
        let r = stub::inject(self.pid, nr, args);
        match &r {
            Err(InjectError::Died(_)) => self.alive_flag.store(false, Ordering::Release),
            Err(InjectError::Stub(PlatformError::StubDied(_))) => {
                sys::kill_and_reap(self.pid);
                self.alive_flag.store(false, Ordering::Release);
            }
            _ => {}
        }
        Some(r)
    }
}

/// This host thread's stub threads, by address space: map/unmap/protect
/// called from a thread that traces a stub of that space inject through it
/// directly instead of asking the owner thread.
struct LocalStub {
    key: usize,
    /// Keeps the address space's allocation (and so `key`) unique while
    /// this entry exists.
    _space: Weak<dyn AddressSpace>,
    stub: Arc<StubThread>,
}

thread_local! {
    static LOCAL_STUBS: RefCell<Vec<LocalStub>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn local_add(key: usize, space: Weak<dyn AddressSpace>, stub: Arc<StubThread>) {
    let _ = LOCAL_STUBS.try_with(|v| {
        if let Ok(mut v) = v.try_borrow_mut() {
            v.push(LocalStub { key, _space: space, stub });
        }
    });
}

pub(crate) fn local_remove(stub: &Arc<StubThread>) {
    let _ = LOCAL_STUBS.try_with(|v| {
        if let Ok(mut v) = v.try_borrow_mut() {
            v.retain(|e| !Arc::ptr_eq(&e.stub, stub));
        }
    });
}

fn local_find(key: usize) -> Option<Arc<StubThread>> {
    LOCAL_STUBS
        .try_with(|v| {
            let mut v = v.try_borrow_mut().ok()?;
            // Entries of contexts dropped on another thread are dead.
            v.retain(|e| e.stub.is_alive());
            v.iter().find(|e| e.key == key).map(|e| e.stub.clone())
        })
        .ok()
        .flatten()
}

/// The state of an address space shared with contexts.
pub(crate) struct AsInner {
    fds: platform::MemoryFds,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) first_pid: i32,
    /// Bumped by every unmap (for the write-fault heuristic).
    pub(crate) unmap_gen: AtomicU64,
    requests: Mutex<Option<Sender<Request>>>,
    owner: Mutex<Option<JoinHandle<()>>>,
}

impl AsInner {
    /// Ask the owner thread for a new stub thread (stopped, untraced).
    pub(crate) fn new_stub_thread(&self) -> Result<i32, PlatformError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Request::NewThread { reply: tx })?;
        rx.recv().map_err(|_| released())?
    }

    fn send(&self, r: Request) -> Result<(), PlatformError> {
        let g = lock(&self.requests);
        g.as_ref().ok_or_else(released)?.send(r).map_err(|_| released())
    }

    fn syscall(&self, key: usize, call: &'static str, nr: u64, args: [u64; 6]) -> Result<u64, PlatformError> {
        if let Some(stub) = local_find(key) {
            match stub.inject(nr, args) {
                Some(Ok(v)) => return Ok(v),
                Some(Err(InjectError::Syscall(errno))) => return Err(PlatformError::Host { call, errno }),
                Some(Err(e)) => {
                    // This thread's stub is broken; the owner's still works.
                    tracing::warn!("ptrace: local stub {} failed, using the owner: {e:?}", stub.pid);
                    local_remove(&stub);
                }
                None => local_remove(&stub),
            }
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Request::Syscall { nr, args, reply: tx })?;
        rx.recv().map_err(|_| released())?.map_err(|e| e.into_platform(call))
    }

    /// Stop the owner thread (it kills and reaps the first stub; its exit
    /// SIGKILLs every stub thread cloned from it) and wait for it.
    fn shutdown(&self) {
        lock(&self.requests).take();
        let h = lock(&self.owner).take();
        if let Some(h) = h {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

fn released() -> PlatformError {
    PlatformError::StubDied("address space owner thread is gone".into())
}

/// The owner thread: creates the first stub (so it is its tracer), then
/// serves requests until the address space is dropped.
fn owner_main(
    fds: platform::MemoryFds,
    cpu: Option<usize>,
    rx: Receiver<Request>,
    ready: SyncSender<Result<i32, PlatformError>>,
) {
    // Nothing of the Sentry's runs on this thread: no signal handler should
    // interrupt it, and the stub inherits a fully blocked mask until it
    // resets its dispositions and unblocks everything.
    sys::block_all_signals();
    if let Some(cpu) = cpu {
        let _ = sys::set_affinity(0, cpu);
    }
    let first = match stub::create_first_stub(fds, cpu) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(first)).is_err() {
        sys::kill_and_reap(first);
        return;
    }
    let mut first = Some(first);
    for req in rx {
        match req {
            Request::Syscall { nr, args, reply } => {
                let r = match first {
                    Some(pid) => stub::inject(pid, nr, args),
                    None => Err(InjectError::Stub(released_first())),
                };
                if matches!(r, Err(InjectError::Died(_))) {
                    first = None;
                }
                let _ = reply.send(r);
            }
            Request::NewThread { reply } => {
                let r = match first {
                    Some(pid) => stub::clone_stub_thread(pid),
                    None => Err(InjectError::Stub(released_first())),
                };
                let r = match r {
                    Ok(pid) => Ok(pid),
                    Err(InjectError::Died(s)) => {
                        first = None;
                        Err(PlatformError::StubDied(s))
                    }
                    Err(e) => Err(e.into_platform("clone")),
                };
                let _ = reply.send(r);
            }
        }
    }
    if let Some(pid) = first {
        sys::kill_and_reap(pid);
    }
    // Returning ends this thread, which SIGKILLs (PDEATHSIG) the stub
    // threads cloned with CLONE_PARENT from the first stub.
}

fn released_first() -> PlatformError {
    PlatformError::StubDied("the address space's stub process died".into())
}

/// Address spaces by the address of their `PtraceAddressSpace` (which is
/// the data pointer of the `Arc<dyn AddressSpace>` handed out), so a
/// context can find the one it is given. Entries are removed in `drop`,
/// before the allocation can be reused.
static REGISTRY: LazyLock<Mutex<HashMap<usize, Arc<AsInner>>>> = LazyLock::new(Default::default);

pub(crate) fn lookup(key: usize) -> Option<Arc<AsInner>> {
    lock(&REGISTRY).get(&key).cloned()
}

/// The pid of the first stub process of `space` (tests).
#[cfg(test)]
pub(crate) fn first_pid_of(space: &Arc<dyn AddressSpace>) -> Option<i32> {
    lookup(key_of(space)).map(|i| i.first_pid)
}

/// The key of an address space handed to a context.
#[inline(always)]
pub(crate) fn key_of(space: &Arc<dyn AddressSpace>) -> usize {
    Arc::as_ptr(space) as *const () as usize
}

pub(crate) struct PtraceAddressSpace {
    inner: Arc<AsInner>,
}

impl PtraceAddressSpace {
    pub(crate) fn create(shared: &PlatformShared) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let fds = shared.fds;
        let cpu = shared.owner_cpu();
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name("ptrace-as-owner".into())
            .stack_size(256 * 1024)
            .spawn(move || owner_main(fds, cpu, rx, ready_tx))
            .map_err(|e| PlatformError::Host {
                call: "pthread_create",
                errno: Errno(e.raw_os_error().unwrap_or(libc::EAGAIN)),
            })?;
        let first_pid = match ready_rx.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(e);
            }
            Err(_) => {
                let _ = handle.join();
                return Err(PlatformError::StubDied("address space owner thread died during set-up".into()));
            }
        };
        let inner = Arc::new(AsInner {
            fds,
            first_pid,
            unmap_gen: AtomicU64::new(0),
            requests: Mutex::new(Some(tx)),
            owner: Mutex::new(Some(handle)),
        });
        let space = Arc::new(PtraceAddressSpace { inner: inner.clone() });
        let key = Arc::as_ptr(&space) as usize;
        lock(&REGISTRY).insert(key, inner);
        Ok(space)
    }

    fn key(&self) -> usize {
        self as *const PtraceAddressSpace as usize
    }
}

impl Drop for PtraceAddressSpace {
    fn drop(&mut self) {
        let key = self.key();
        lock(&REGISTRY).remove(&key);
        self.inner.shutdown();
    }
}

/// `[addr, addr+len)` must be page-aligned and stay below the stub.
fn check_range(call: &'static str, addr: u64, len: u64) -> Result<(), PlatformError> {
    let ok = addr.is_multiple_of(abi::PAGE_SIZE)
        && len.is_multiple_of(abi::PAGE_SIZE)
        && len != 0
        && addr.checked_add(len).is_some_and(|end| end <= STUB_ADDR);
    if ok {
        Ok(())
    } else {
        Err(PlatformError::Host { call, errno: Errno::EINVAL })
    }
}

impl AddressSpace for PtraceAddressSpace {
    fn map(&self, addr: u64, len: u64, prot: Prot, file_offset: u64) -> Result<(), PlatformError> {
        check_range("mmap", addr, len)?;
        let _t = platform::profile::span(platform::profile::Phase::SpaceMap);
        let flags = sys::MAP_SHARED | sys::MAP_FIXED;
        // The stub holds both files at the Sentry's descriptor numbers.
        let (fd, file_offset) = match platform::MemoryFds::locate(file_offset) {
            (true, o) => (self.inner.fds.cache, o),
            (false, o) => (self.inner.fds.main, o),
        };
        let r = self.inner.syscall(
            self.key(),
            "mmap",
            SYS_MMAP,
            [addr, len, prot.bits() as u64, flags, fd as u64, file_offset],
        )?;
        if r != addr {
            return Err(PlatformError::Host { call: "mmap", errno: Errno::EFAULT });
        }
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        check_range("munmap", addr, len)?;
        let _t = platform::profile::span(platform::profile::Phase::SpaceUnmap);
        self.inner.unmap_gen.fetch_add(1, Ordering::Relaxed);
        self.inner.syscall(self.key(), "munmap", SYS_MUNMAP, [addr, len, 0, 0, 0, 0]).map(drop)
    }

    fn protect(&self, addr: u64, len: u64, prot: Prot) -> Result<(), PlatformError> {
        check_range("mprotect", addr, len)?;
        let _t = platform::profile::span(platform::profile::Phase::SpaceProtect);
        self.inner.syscall(self.key(), "mprotect", SYS_MPROTECT, [addr, len, prot.bits() as u64, 0, 0, 0]).map(drop)
    }
}
