//! syslog(2): the sandbox's kernel log (`sentry::kmsg`), with Linux 4.4's
//! actions and permission rules (dmesg_restrict is 0: reading the whole
//! log and its size is for everyone, the rest needs CAP_SYSLOG, which in
//! the sandbox is euid 0's).

use abi::Errno;
use sentry::kmsg;
use sentry::table::UserAddr;
use sentry::{SysResult, Task};

const ACTION_CLOSE: i32 = 0;
const ACTION_OPEN: i32 = 1;
const ACTION_READ: i32 = 2;
const ACTION_READ_ALL: i32 = 3;
const ACTION_READ_CLEAR: i32 = 4;
const ACTION_CLEAR: i32 = 5;
const ACTION_CONSOLE_OFF: i32 = 6;
const ACTION_CONSOLE_ON: i32 = 7;
const ACTION_CONSOLE_LEVEL: i32 = 8;
const ACTION_SIZE_UNREAD: i32 = 9;
const ACTION_SIZE_BUFFER: i32 = 10;

pub fn syslog(task: &mut Task, action: i32, buf: UserAddr, len: i32) -> SysResult {
    // Unknown actions are "restricted" too: EPERM comes before EINVAL.
    if action != ACTION_READ_ALL && action != ACTION_SIZE_BUFFER && task.creds().euid != 0 {
        return Err(Errno::EPERM);
    }
    let log = kmsg::log();
    match action {
        ACTION_CLOSE | ACTION_OPEN | ACTION_CONSOLE_OFF | ACTION_CONSOLE_ON => Ok(0),
        ACTION_CONSOLE_LEVEL => {
            if !(1..=8).contains(&len) {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        ACTION_READ => {
            if buf.is_null() || len < 0 {
                return Err(Errno::EINVAL);
            }
            if len == 0 {
                return Ok(0);
            }
            let ctx = vfs::IoCtx { flags: 0, interrupt: &task.interrupt };
            let out = log.block_on(
                &ctx,
                |s| {
                    if s.syslog_seq >= s.next_seq() {
                        return None;
                    }
                    let mut out = Vec::new();
                    let mut next = s.syslog_seq;
                    for r in s.from(s.syslog_seq) {
                        let line = r.syslog_line();
                        if out.len() + line.len() > len as usize {
                            if out.is_empty() {
                                out.extend_from_slice(&line[..len as usize]);
                                next = r.seq + 1;
                            }
                            break;
                        }
                        out.extend_from_slice(&line);
                        next = r.seq + 1;
                    }
                    s.syslog_seq = next;
                    Some(Ok(out))
                },
                |_| None,
            )?;
            task.copy_out(buf, &out)?;
            Ok(out.len() as u64)
        }
        ACTION_READ_ALL | ACTION_READ_CLEAR => {
            if buf.is_null() || len < 0 {
                return Err(Errno::EINVAL);
            }
            if len == 0 {
                return Ok(0);
            }
            // The newest records that fit, oldest first.
            let out = {
                let mut s = log.lock();
                let lines: Vec<Vec<u8>> = s.from(s.clear_seq).map(|r| r.syslog_line()).collect();
                let mut total = 0;
                let keep = lines.iter().rev().take_while(|l| {
                    total += l.len();
                    total <= len as usize
                });
                let n = keep.count();
                if action == ACTION_READ_CLEAR {
                    s.clear_seq = s.next_seq();
                }
                lines[lines.len() - n..].concat()
            };
            task.copy_out(buf, &out)?;
            Ok(out.len() as u64)
        }
        ACTION_CLEAR => {
            let mut s = log.lock();
            s.clear_seq = s.next_seq();
            Ok(0)
        }
        ACTION_SIZE_UNREAD => {
            let s = log.lock();
            Ok(s.from(s.syslog_seq).map(|r| r.syslog_line().len() as u64).sum())
        }
        ACTION_SIZE_BUFFER => Ok(kmsg::LOG_BUF_LEN as u64),
        _ => Err(Errno::EINVAL),
    }
}
