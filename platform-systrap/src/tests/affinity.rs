//! Where stub threads may run: wherever the Sentry may. The control
//! thread follows the CPU of the Sentry thread that asks (`follow_cpu`),
//! and new stub threads are its clones: they must not keep its binding.

use super::*;
use crate::process::lock;

/// The `Cpus_allowed_list` line of host thread `tid` of process `pid`.
fn allowed(pid: i32, tid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap();
    status.lines().find(|l| l.starts_with("Cpus_allowed_list:")).unwrap().to_string()
}

#[test]
fn stub_threads_run_wherever_the_sentry_may() {
    let env = env();
    let ours = allowed(std::process::id() as i32, std::process::id() as i32);
    let code = asm(&[&MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]);
    let s = env.space_with(&code);
    let proc = space::lookup(space::key_of(&s)).unwrap();
    // Two guest threads, each on a stub thread of its own, cloned after
    // the maps above bound the control thread to this thread's CPU.
    let mut a = env.platform.new_context().unwrap();
    let mut b = env.platform.new_context().unwrap();
    for ctx in [&mut a, &mut b] {
        let mut regs = Regs::new_user(CODE, 0);
        expect_syscall(ctx.switch(&s, &mut regs));
    }
    let tids: Vec<i32> = lock(&proc.pool).threads.iter().map(|t| t.tid).collect();
    assert!(tids.len() >= 2, "two stub threads: {tids:?}");
    for tid in tids {
        assert_eq!(allowed(proc.pid, tid), ours, "stub thread {tid}");
    }
}
