//! The owner of an open file description and its signal: F_SETOWN,
//! F_GETOWN, F_SETOWN_EX, F_GETOWN_EX, F_SETSIG, F_GETSIG (vfs::fown).
//! dnotify sends through it; SIGIO for O_ASYNC readiness is not served.

use abi::flags::*;
use abi::Errno;
use sentry::table::UserAddr;
use sentry::{SysResult, Task};
use std::sync::Arc;
use vfs::fown::{owner_exists, F_OWNER_PGRP, F_OWNER_PID, F_OWNER_TID};
use vfs::OpenFile;

pub fn fcntl(task: &Task, f: &Arc<OpenFile>, cmd: u32, arg: u64) -> SysResult {
    match cmd {
        F_GETOWN => {
            let (kind, id) = f.owner.get();
            Ok((if kind == F_OWNER_PGRP { -id } else { id }) as i64 as u64)
        }
        F_SETOWN => {
            let who = arg as i32;
            if who == i32::MIN {
                return Err(Errno::EINVAL);
            }
            let (kind, id) = if who < 0 { (F_OWNER_PGRP, -who) } else { (F_OWNER_PID, who) };
            if !owner_exists(kind, id) {
                return Err(Errno::ESRCH);
            }
            f.owner.set(kind, id);
            Ok(0)
        }
        F_GETOWN_EX => {
            // struct f_owner_ex { int type; pid_t pid; }
            let (kind, pid) = f.owner.get();
            task.write_obj(UserAddr(arg), &[kind, pid])?;
            Ok(0)
        }
        F_SETOWN_EX => {
            let [kind, pid]: [i32; 2] = task.read_obj(UserAddr(arg))?;
            if !matches!(kind, F_OWNER_TID | F_OWNER_PID | F_OWNER_PGRP) {
                return Err(Errno::EINVAL);
            }
            if pid < 0 || !owner_exists(kind, pid) {
                return Err(Errno::ESRCH);
            }
            f.owner.set(kind, pid);
            Ok(0)
        }
        F_GETSIG => Ok(f.owner.signal() as u64),
        F_SETSIG => {
            if arg > abi::signal::NSIG as u64 {
                return Err(Errno::EINVAL);
            }
            f.owner.set_signal(arg as i32);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
