//! Recycled stub processes (`recycle.rs`): reused, clean, and never
//! reused when the old guest may have left something behind.

use super::*;
use crate::process::{lock, StubProcess};

const PATTERN: u64 = 0x5ec2_e75e_c2e7_5ec2;
const DATA2: u64 = 0x2000_0000;

fn wait_for_bin(env: &Env, n: usize) -> bool {
    let t = Instant::now();
    while t.elapsed() < DEADLINE {
        if env.platform.shared.bin.len() == n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

fn proc_of(space: &Arc<dyn AddressSpace>) -> Arc<StubProcess> {
    space::lookup(space::key_of(space)).unwrap()
}

/// The first PATTERN word in any thread block of `proc`, as (thread,
/// offset in the block).
fn find_pattern(proc: &StubProcess) -> Option<(u64, u64)> {
    let n = lock(&proc.pool).next as u64;
    let mut block = vec![0u8; THREAD_STRIDE as usize];
    for i in 0..n {
        proc.region.read(thread_off(i), &mut block);
        for (k, w) in block.chunks_exact(8).enumerate() {
            if u64::from_le_bytes(w.try_into().unwrap()) == PATTERN {
                return Some((i, 8 * k as u64));
            }
        }
    }
    None
}

/// Put PATTERN in rbx, rbp, r12, xmm1 (and ymm2's upper half, with
/// AVX2) and at DATA2, then trap.
fn leave_secrets() -> Vec<u8> {
    let imm = |op: &[u8]| {
        let mut v = op.to_vec();
        v.extend_from_slice(&PATTERN.to_le_bytes());
        v
    };
    let mut c = asm(&[
        &imm(&[0x48, 0xbb]),             // mov rbx, PATTERN
        &imm(&[0x48, 0xbd]),             // mov rbp, PATTERN
        &imm(&[0x49, 0xbc]),             // mov r12, PATTERN
        &[0x66, 0x48, 0x0f, 0x6e, 0xcb], // movq xmm1, rbx
        &[0x48, 0xbf],
        &DATA2.to_le_bytes(), // mov rdi, DATA2
        &[0x48, 0x89, 0x1f],  // mov [rdi], rbx
    ]);
    if std::arch::is_x86_feature_detected!("avx2") {
        c.extend_from_slice(&[0xc4, 0xe2, 0x7d, 0x59, 0xd1]); // vpbroadcastq ymm2, xmm1
    }
    c.extend(asm(&[&MOV_EAX_GETPPID, &SYSCALL, &JMP_SELF]));
    c
}

#[test]
fn a_dropped_space_s_stub_is_recycled_clean() {
    let env = env();
    let a = env.space_with(&leave_secrets());
    a.map(DATA2, PAGE, Prot::RW, 2 * PAGE).unwrap();
    let pid = pid_of(&a);
    let proc = proc_of(&a);
    let mut old_ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(old_ctx.switch(&a, &mut regs));
    assert_eq!(regs.rbx, PATTERN);
    assert!(find_pattern(&proc).is_some(), "the frame holds the guest's registers");
    // The guest may write all of its message page, the unused ends of
    // its cache lines too.
    for off in [M_STUB_CPU + 4, M_SENTRY_CPU + 8, M_CUR_GS + 8] {
        proc.region.write(thread_off(0) + off, &PATTERN.to_le_bytes());
    }
    // The context keeps its (now stale) entry until later.
    drop(a);
    assert!(wait_for_bin(&env, 1), "the stub reached the bin");
    assert!(find_pattern(&proc).is_none(), "a register of the old guest survived: {:?}", find_pattern(&proc));

    let b = env.space_with(&getppid_loop());
    assert_eq!(pid_of(&b), pid, "the new space got the recycled stub");
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    for _ in 0..5 {
        expect_syscall(ctx.switch(&b, &mut regs));
    }
    // The old guest's memory is gone.
    let mut regs = Regs::new_user(CODE, 0);
    regs.rip = CODE + 1000;
    b.map(CODE, PAGE, Prot::RX, 0).unwrap();
    env.mem.write(1000, &asm(&[&[0x48, 0xbf], &DATA2.to_le_bytes(), &[0x48, 0x8b, 0x3f]])); // mov rdi, [DATA2]
    match ctx.switch(&b, &mut regs) {
        Ok(Exit::Fault { addr, .. }) => assert_eq!(addr, DATA2),
        other => panic!("the old guest's page is still there: {other:?}"),
    }
    // The stale context gives its thread back: ignored, so no thread is
    // pooled twice.
    drop(old_ctx);
    drop(ctx);
    let free: Vec<u32> = lock(&proc.pool).free.iter().map(|t| t.index).collect();
    let mut unique = free.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(free.len(), unique.len(), "a thread pooled twice: {free:?}");
}

#[test]
fn a_forged_frame_keeps_a_stub_from_reuse() {
    let env = env();
    let a = env.space_with(&getppid_loop());
    let pid = pid_of(&a);
    let proc = proc_of(&a);
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&a, &mut regs));
    // As another thread of the guest could: the real frame blocks the
    // interrupt signal and returns to the ready trap, and the message
    // page points the Sentry at a decoy.
    let m = thread_off(0);
    let uc = proc.region.u64(m + M_UCONTEXT).load(std::sync::atomic::Ordering::Relaxed) - STUB_BASE;
    let greg = |k: u64| uc + 40 + 8 * k;
    let set = |off: u64, v: u64| proc.region.u64(off).store(v, std::sync::atomic::Ordering::Relaxed);
    set(uc + 296, 1 << (crate::INTERRUPT_SIGNAL - 1));
    set(greg(16), Labels::get().ready_syscall - 2);
    set(greg(13), 39);
    set(greg(15), STUB_BASE + m);
    set(m + M_UCONTEXT, STUB_BASE + uc - 0x2000);
    drop(a);
    assert!(gone(pid), "a stub whose frames were forged is killed");
    assert_eq!(env.platform.shared.bin.len(), 0);
    drop(ctx);
}

#[test]
fn a_stub_without_its_low_slots_is_not_recycled() {
    let env = env();
    let a = env.space_with(&getppid_loop());
    let pid = pid_of(&a);
    let mut ctx = env.platform.new_context().unwrap();
    let mut regs = Regs::new_user(CODE, 0);
    expect_syscall(ctx.switch(&a, &mut regs));
    a.map(LOW_SLOTS, PAGE, Prot::RW, PAGE).unwrap();
    drop(a);
    assert!(gone(pid));
    assert_eq!(env.platform.shared.bin.len(), 0);
}

#[test]
fn the_bin_is_bounded_and_emptied_with_the_platform() {
    let env = env();
    let mut spaces = Vec::new();
    let mut ctx = env.platform.new_context().unwrap();
    for _ in 0..6 {
        let s = env.space_with(&getppid_loop());
        let mut regs = Regs::new_user(CODE, 0);
        expect_syscall(ctx.switch(&s, &mut regs));
        spaces.push(s);
    }
    let pids: Vec<i32> = spaces.iter().map(pid_of).collect();
    drop(spaces);
    drop(ctx);
    assert!(wait_for_bin(&env, 4));
    let alive = || pids.iter().filter(|&&p| proc_exists(p)).count();
    let t = Instant::now();
    while alive() > 4 && t.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(alive(), 4, "only what the bin holds lives on");
    drop(env);
    assert!(pids.iter().all(|&p| gone(p)), "the platform's end kills the stubs it kept");
}

#[test]
fn a_stub_with_many_threads_is_not_kept() {
    let env = env();
    let a = env.space_with(&getppid_loop());
    let pid = pid_of(&a);
    let mut ctxs: Vec<_> = (0..9).map(|_| env.platform.new_context().unwrap()).collect();
    for ctx in &mut ctxs {
        let mut regs = Regs::new_user(CODE, 0);
        expect_syscall(ctx.switch(&a, &mut regs));
    }
    drop(ctxs);
    drop(a);
    assert!(gone(pid), "a stub with nine threads is killed");
    assert_eq!(env.platform.shared.bin.len(), 0);
}
