//! Address spaces: one stub process each. Changes go to the stub's control
//! thread through the control page; no ptrace anywhere.

use crate::layout::{BATCH_MAX, LOW_SLOTS, SLOTS_LEN, STUB_BASE, STUB_CACHE_FD, STUB_MEMFD_FD};
use crate::process::{host, lock, StubProcess};
use crate::sys::{SYS_MMAP, SYS_MPROTECT, SYS_MUNMAP};
use crate::Shared;
use abi::Errno;
use platform::{AddressSpace, PlatformError, Prot};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// Stub processes by the address of their `SystrapAddressSpace` (the data
/// pointer of the `Arc<dyn AddressSpace>` handed out), so that a context
/// can find the one it is given. Entries go in `drop`, before the
/// allocation can be reused.
static REGISTRY: LazyLock<Mutex<HashMap<usize, Arc<StubProcess>>>> = LazyLock::new(Default::default);

pub(crate) fn lookup(key: usize) -> Option<Arc<StubProcess>> {
    lock(&REGISTRY).get(&key).cloned()
}

#[inline(always)]
pub(crate) fn key_of(space: &Arc<dyn AddressSpace>) -> usize {
    Arc::as_ptr(space) as *const () as usize
}

pub(crate) struct SystrapAddressSpace {
    pub(crate) proc: Arc<StubProcess>,
    /// Changes collected between `begin_batch` and `flush` (None: each
    /// change is its own request).
    batch: Mutex<Option<Vec<[u64; 8]>>>,
    /// Keeps the forker thread (the stubs' parent) alive; where the stub
    /// goes back to for reuse.
    shared: Arc<Shared>,
    /// The low patch slots (`LOW_SLOTS`) are still mapped: no change has
    /// touched their range. Every stub maps them, patching on or off, so
    /// the memory manager must hear of them either way (a lazy guest
    /// mapping there must fault, not read them). Written by `touch`,
    /// read by `code_window`; both run under the memory manager's lock,
    /// which orders them.
    low_slots: AtomicBool,
}

impl SystrapAddressSpace {
    pub(crate) fn create(shared: &Arc<Shared>) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let proc = match shared.bin.take() {
            Some(p) => {
                p.refresh_slots();
                p
            }
            None => {
                let _t = platform::profile::span(platform::profile::Phase::NewAddressSpace);
                Arc::new(StubProcess::create(shared)?)
            }
        };
        let space = Arc::new(SystrapAddressSpace {
            proc: proc.clone(),
            batch: Mutex::new(None),
            shared: shared.clone(),
            low_slots: AtomicBool::new(true),
        });
        lock(&REGISTRY).insert(Arc::as_ptr(&space) as usize, proc);
        Ok(space)
    }
}

impl Drop for SystrapAddressSpace {
    fn drop(&mut self) {
        lock(&REGISTRY).remove(&(self as *const SystrapAddressSpace as usize));
        // A stub whose low slots a guest mapping replaced cannot get them
        // back (its control thread maps the memory file only): not
        // recycled.
        let recycle = self.shared.bin.enabled() && self.low_slots.load(Ordering::Acquire);
        if !recycle {
            self.proc.kill_nowait();
        }
        // Cleaning it, or the rest of its end (closing its descriptors,
        // unmapping its region from the Sentry: a TLB shoot-down on every
        // CPU the Sentry runs on), is done off the exiting guest's path.
        drop_later(self.proc.clone(), recycle.then(|| self.shared.clone()));
    }
}

/// Hand `proc` to the "stub-reaper" thread, to be recycled into `bin`'s
/// platform when given, or dropped (here when that thread cannot be
/// started).
fn drop_later(proc: Arc<StubProcess>, bin: Option<Arc<Shared>>) {
    type Job = (Arc<StubProcess>, Option<Arc<Shared>>);
    static REAPER: LazyLock<Option<Mutex<std::sync::mpsc::Sender<Job>>>> = LazyLock::new(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("stub-reaper".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                for (proc, shared) in rx {
                    match shared {
                        Some(s) => s.bin.recycle_or_kill(proc),
                        None => drop(proc),
                    }
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    });
    let sent = match REAPER.as_ref() {
        Some(tx) => lock(tx).send((proc, bin)).map_err(|std::sync::mpsc::SendError(job)| job),
        None => Err((proc, bin)),
    };
    if let Err((proc, _)) = sent {
        proc.kill_nowait();
    }
}

/// `[addr, addr+len)` must be page-aligned and stay below the stub.
fn check_range(call: &'static str, addr: u64, len: u64) -> Result<(), PlatformError> {
    let ok = addr.is_multiple_of(abi::PAGE_SIZE)
        && len.is_multiple_of(abi::PAGE_SIZE)
        && len != 0
        && addr.checked_add(len).is_some_and(|end| end <= STUB_BASE);
    if ok {
        Ok(())
    } else {
        Err(host(call, Errno::EINVAL))
    }
}

impl SystrapAddressSpace {
    /// A change to `[addr, addr+len)` is about to be made: the low slots
    /// are gone from the guest's point of view if it touches them (a
    /// guest mapping replaces them, an unmap takes them away).
    fn touch(&self, addr: u64, len: u64) {
        if addr < LOW_SLOTS + SLOTS_LEN && LOW_SLOTS < addr.saturating_add(len) {
            self.low_slots.store(false, Ordering::Release);
        }
    }

    /// Queue `call` when collecting (sending a full batch on); false when
    /// not collecting.
    fn queue(&self, call: [u64; 8]) -> Result<bool, PlatformError> {
        let mut b = lock(&self.batch);
        let Some(q) = b.as_mut() else { return Ok(false) };
        // An unmap right before a map of the same range is redundant:
        // MAP_FIXED replaces.
        if call[0] == SYS_MMAP {
            if let Some(last) = q.last() {
                if last[0] == SYS_MUNMAP && last[1] == call[1] && last[2] == call[2] {
                    q.pop();
                }
            }
        }
        q.push(call);
        if q.len() as u64 >= BATCH_MAX {
            let full = std::mem::take(q);
            drop(b);
            self.send(&full)?;
        }
        Ok(true)
    }

    fn send(&self, calls: &[[u64; 8]]) -> Result<(), PlatformError> {
        if calls.is_empty() {
            return Ok(());
        }
        let _t = platform::profile::span(platform::profile::Phase::SpaceBatch);
        platform::profile::count(platform::profile::Phase::SpaceBatched, calls.len() as u64);
        self.proc.request_batch(calls)
    }
}

impl AddressSpace for SystrapAddressSpace {
    fn begin_batch(&self) {
        let mut b = lock(&self.batch);
        if b.is_none() {
            *b = Some(Vec::new());
        }
    }

    fn flush(&self) -> Result<(), PlatformError> {
        let q = lock(&self.batch).take();
        self.send(&q.unwrap_or_default())
    }

    fn map(&self, addr: u64, len: u64, prot: Prot, file_offset: u64) -> Result<(), PlatformError> {
        check_range("mmap", addr, len)?;
        self.touch(addr, len);
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let (fd, file_offset) = match platform::MemoryFds::locate(file_offset) {
            (true, o) => (STUB_CACHE_FD as u64, o),
            (false, o) => (STUB_MEMFD_FD as u64, o),
        };
        if self.queue([SYS_MMAP, addr, len, prot.bits() as u64, flags, fd, file_offset, addr])? {
            return Ok(());
        }
        let _t = platform::profile::span(platform::profile::Phase::SpaceMap);
        let args = [addr, len, prot.bits() as u64, flags, fd, file_offset];
        let r = self.proc.request("mmap", SYS_MMAP, args, 0)?;
        if r != addr {
            return Err(host("mmap", Errno::EFAULT));
        }
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        check_range("munmap", addr, len)?;
        self.touch(addr, len);
        if self.queue([SYS_MUNMAP, addr, len, 0, 0, 0, 0, 0])? {
            return Ok(());
        }
        let _t = platform::profile::span(platform::profile::Phase::SpaceUnmap);
        self.proc.request("munmap", SYS_MUNMAP, [addr, len, 0, 0, 0, 0], 0).map(drop)
    }

    fn protect(&self, addr: u64, len: u64, prot: Prot) -> Result<(), PlatformError> {
        check_range("mprotect", addr, len)?;
        self.touch(addr, len);
        if self.queue([SYS_MPROTECT, addr, len, prot.bits() as u64, 0, 0, 0, 0])? {
            return Ok(());
        }
        let _t = platform::profile::span(platform::profile::Phase::SpaceProtect);
        self.proc.request("mprotect", SYS_MPROTECT, [addr, len, prot.bits() as u64, 0, 0, 0], 0).map(drop)
    }

    fn prepare(&self) {
        if let Ok(t) = self.proc.acquire_thread() {
            self.proc.release_thread(t);
        }
    }

    fn refresh(&self) {
        self.proc.refresh_slots();
    }

    fn code_window(&self) -> Option<(u64, u64)> {
        self.low_slots.load(Ordering::Acquire).then_some((LOW_SLOTS, LOW_SLOTS + SLOTS_LEN))
    }
}
