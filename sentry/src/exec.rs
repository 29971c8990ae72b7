//! execve: build a new address space from an executable (ELF or `#!`
//! script) and, once nothing can fail any more, switch the task to it.

use crate::loader::{self, ExecFile, StackArgs};
use crate::locking::lock;
use crate::mm::MemoryManager;
use crate::task::Task;
use abi::flags::{O_RDONLY, S_IFMT, S_IFREG};
use abi::{page_up, Errno};
use platform::{FpState, Regs};
use vfs::{DentryRef, Follow};

/// Most bytes of argv + envp strings (Linux: a quarter of the 8 MiB stack).
pub const ARG_MAX: usize = 2 << 20;
/// Nested `#!` interpreters allowed.
const MAX_SCRIPT_DEPTH: usize = 4;

/// Open `d` for execution, checking type and permissions.
pub fn open_exec(task: &Task, d: &DentryRef) -> Result<ExecFile, Errno> {
    let st = d.inode.stat()?;
    if st.st_mode & S_IFMT != S_IFREG {
        return Err(Errno::EACCES);
    }
    if d.mount.flags.noexec {
        return Err(Errno::EACCES);
    }
    task.creds().may_access(&st, 1)?;
    let ops = d.inode.open(O_RDONLY)?;
    vfs::inotify::file_event(d, vfs::inotify::IN_OPEN);
    Ok(ExecFile { dentry: d.clone(), ops })
}

/// Parse a `#!` line: (interpreter, optional single argument).
fn parse_shebang(head: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let line = head.strip_prefix(b"#!")?;
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let line = &line[..end];
    let trimmed: &[u8] = {
        let s = line.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(line.len());
        let e = line.iter().rposition(|&b| b != b' ' && b != b'\t' && b != b'\r').map(|i| i + 1).unwrap_or(s);
        if s >= e {
            return None;
        }
        &line[s..e]
    };
    match trimmed.iter().position(|&b| b == b' ' || b == b'\t') {
        None => Some((trimmed.to_vec(), None)),
        Some(i) => {
            let rest = &trimmed[i..];
            let s = rest.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(rest.len());
            let arg = &rest[s..];
            Some((trimmed[..i].to_vec(), if arg.is_empty() { None } else { Some(arg.to_vec()) }))
        }
    }
}

/// Replace the task's program with `path`, as execve(2).
pub fn execve(task: &mut Task, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> Result<(), Errno> {
    execve_from(task, None, path, argv, envp, false)
}

/// execve of an already resolved file (execveat): `first` is the
/// program, `path` its name for AT_EXECFN and a script's interpreter
/// (Linux's "/dev/fd/N" or "/dev/fd/N/name"). `path_gone`: that name
/// dies with the exec (its descriptor is close-on-exec), so a script,
/// whose interpreter would have to open it, is ENOENT at once (Linux's
/// BINPRM_FLAGS_PATH_INACCESSIBLE).
pub fn execve_from(
    task: &mut Task,
    mut first: Option<DentryRef>,
    path: &[u8],
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    path_gone: bool,
) -> Result<(), Errno> {
    let _t_exec = platform::profile::span(platform::profile::Phase::Exec);
    // comm is the name the caller asked for (Linux's bprm->filename), not
    // the symlink's target nor a script's interpreter.
    let comm: Vec<u8> = path.rsplit(|&c| c == b'/').next().unwrap_or(path).iter().take(15).copied().collect();
    let mut path = path.to_vec();
    let mut file;
    // Scripts stay open until the end, as Linux keeps bprm->executable
    // (what inotify's IN_CLOSE_NOWRITE order shows).
    let mut scripts = Vec::new();
    let mut depth = 0;
    loop {
        let d = match first.take() {
            Some(d) => d,
            None => task.resolve(&path, Follow::Yes)?,
        };
        file = open_exec(task, &d)?;
        let mut head = [0u8; 256];
        let n = file.read_at(&mut head, 0)?;
        if n >= 2 && head.starts_with(b"#!") {
            if path_gone && depth == 0 {
                return Err(Errno::ENOENT);
            }
            depth += 1;
            if depth > MAX_SCRIPT_DEPTH {
                return Err(Errno::ELOOP);
            }
            let (interp, arg) = parse_shebang(&head[..n]).ok_or(Errno::ENOEXEC)?;
            let mut new_argv = vec![interp.clone()];
            new_argv.extend(arg);
            new_argv.push(path.clone());
            new_argv.extend(argv.into_iter().skip(1));
            argv = new_argv;
            path = interp;
            scripts.push(file);
            continue;
        }
        break;
    }
    let elf = loader::parse(&file)?;
    let interp = match loader::interp_path(&file, &elf)? {
        Some(p) => {
            let d = task.resolve(&p, Follow::Yes).map_err(|e| if e == Errno::ENOENT { Errno::ENOENT } else { e })?;
            let f = open_exec(task, &d)?;
            let ie = loader::parse(&f)?;
            Some((f, ie))
        }
        None => None,
    };

    let kernel = task.kernel.clone();
    let t_load = platform::profile::start();
    // A process's first exec before it ever ran (the sandbox's init, an
    // OCI exec) takes the space it was made with; else a new one.
    let space = match task.mm().take_unused_space(2) {
        Some(s) => s,
        None => kernel.platform.new_address_space().map_err(|e| {
            tracing::warn!("execve: new address space: {e}");
            Errno::ENOMEM
        })?,
    };
    // Nothing runs in the new space until the exec is done: its mappings
    // go to the platform in one batch (one round trip on systrap).
    space.begin_batch();
    let mm = MemoryManager::new(space, kernel.memfile.clone(), kernel.platform.max_user_address());
    mm.set_as_limit(task.tg.rlimit(abi::flags::RLIMIT_AS).cur);
    let cached = |f: &ExecFile| -> Result<_, Errno> {
        let st = f.dentry.inode.stat()?;
        kernel.file_cache.get(&kernel.memfile, &st, f.ops.host_fd(), |buf, off| f.read_at(buf, off))
    };
    let exe = loader::load(&mm, &file, &elf, false, cached(&file)?.as_ref())?;
    let (entry, interp_base) = match &interp {
        Some((f, ie)) => {
            let i = loader::load(&mm, f, ie, true, cached(f)?.as_ref())?;
            (i.entry, i.bias)
        }
        None => (exe.entry, 0),
    };
    platform::profile::add(platform::profile::Phase::ExecElfLoad, t_load);
    mm.set_brk_start(page_up(exe.end).ok_or(Errno::ENOMEM)?);
    let vdso = match &kernel.clock {
        Some(c) => c.map_into(&mm)?,
        None => 0,
    };
    let creds = task.creds();
    let mut random = [0u8; 16];
    fill_random(&mut random);
    let t_stack = platform::profile::start();
    let sp = loader::setup_stack(
        &mm,
        &StackArgs {
            argv: &argv,
            envp: &envp,
            execfn: &path,
            exe,
            interp_base,
            uid: creds.uid,
            gid: creds.gid,
            euid: creds.euid,
            egid: creds.egid,
            random,
            vdso,
        },
    )?;
    platform::profile::add(platform::profile::Phase::ExecStack, t_stack);
    mm.space().flush().map_err(|e| {
        tracing::warn!("execve: mapping the new image: {e}");
        Errno::ENOMEM
    })?;

    // Point of no return. Other threads go first (Linux's de_thread).
    let _t_switch = platform::profile::span(platform::profile::Phase::ExecSwitch);
    crate::process::kill_other_threads(task);
    task.release_robust_futexes();
    // The new image registers its own area (Linux's rseq_execve).
    task.rseq = None;
    task.set_mm(mm);
    task.tg.release_vfork();
    task.fds().close_on_exec();
    {
        let mut sig = lock(&task.tg.signals);
        for a in sig.actions.iter_mut() {
            if a.handler != abi::signal::SIG_IGN {
                *a = abi::KSigaction::default();
            }
        }
    }
    *lock(&task.tg.comm) = comm;
    *lock(&task.tg.exe) = Some(file.dentry.clone());
    // The old executable is free to be written once this is replaced.
    let hold = file.dentry.inode.stat().ok().map(|st| kernel.running_exes.hold((st.st_dev, st.st_ino)));
    *lock(&task.tg.exe_hold) = hold;
    task.regs = Regs::new_user(entry, sp);
    let space = task.mm().space().clone();
    if let Err(e) = task.ctx.set_fp_state(&space, &FpState::default()) {
        tracing::warn!("execve: resetting FP state: {e}");
    }
    Ok(())
}

/// Fill `buf` from the host's random source.
pub fn fill_random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: writing into our own buffer within its length.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr() as *mut libc::c_void, buf.len() - done, 0) };
        if n <= 0 {
            break;
        }
        done += n as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_shebang;

    #[test]
    fn shebang_lines() {
        assert_eq!(parse_shebang(b"#!/bin/sh\necho"), Some((b"/bin/sh".to_vec(), None)));
        assert_eq!(
            parse_shebang(b"#! /usr/bin/env  python3 \n"),
            Some((b"/usr/bin/env".to_vec(), Some(b"python3".to_vec())))
        );
        assert_eq!(parse_shebang(b"#!\n"), None);
    }
}
