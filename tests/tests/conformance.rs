//! Differential conformance: every program of `tests/guest/` runs natively
//! and then under `runsc-lite --platform=P --network=N do` for each P in
//! `tests::PLATFORMS` (N: the default, and for the programs that use
//! sockets every mode of `tests::NETWORKS`); exit status and (masked)
//! stdout must be equal. The programs and their expectations are listed
//! in `tests::GUESTS`; those without a native twin (`tests::EXPECTED_GUESTS`)
//! are compared with a fixed expected output instead.
//!
//! Run one with output: `cargo test -p tests --test conformance fileio -- --nocapture`.
//! Run the ignored ones (features not there yet): add `-- --ignored`.

macro_rules! conformance {
    ($( $(#[$attr:meta])* $name:ident ),* $(,)?) => {
        $(
            $(#[$attr])*
            #[test]
            fn $name() {
                tests::check_conformance(stringify!($name));
            }
        )*
    };
}

conformance! {
    fileio,
    fileio_dyn,
    stat,
    dirs,
    dirs_dyn,
    mm,
    mm_dyn,
    mm_segv,
    mm_shared_file,
    proc_info,
    proc_info_dyn,
    pipes,
    pipe_shared,
    socket_badinput,
    unix_stream,
    unix_dgram,
    unix_seqpacket,
    unix_scm,
    unix_errors,
    devfiles,
    stdio,
    badptr,
    stub_attacks,
    exit_pages_zero,
    jobctl,
    rusage,
    robust,
    vdso,
    poll_wake,
    vdso_dyn,
    netlink_route,
    ifaces,
    ifaces_dyn,
    ifaces_inet,
    execve,
    signals_basic,
    timers,
    events,
    signalfd,
    inet_tcp,
    inet_tcp6,
    inet_udp,
    inet_opts,
    fork_wait,
    fork_cow,
    threads,
    threads_dyn,
    threads_stress,
    exit3,
    exit42,
    exit_group,
    abort,
    segv_default,
    rlimits,
    timeouts_huge,
    epoll_nest,
    fdinfo_blocked,
    rename_cwd,
    sentry_panic,
    guest_extremes,
    fuzz_found,
    inotify,
    inotify_errors,
    statx,
    splice,
    copy_range,
    rw2,
    memfd,
    openat2,
    clone3,
    close_range,
    pidfd,
    execveat,
    faccessat2,
    epoll_pwait2,
    rseq,
    membarrier,
    clone3_dyn,
    close_range_dyn,
    rseq_dyn,
    xattr,
    overlay_ops,
    sched,
    futex_pi,
    madvise,
    locks_flock,
    locks_posix,
    locks_ofd,
    pipe_size,
    proc_state,
    kill_perm,
    kmsg,
    pty,
    mm_lazy,
    sched_affinity,
    udplite,
    inet_cmsg_send,
    cpu_clocks,
    signal_kill_self,
    pipe_reopen,
    syscall_patch,
    patch_attacks,
    syscall_patch_static,
    patch_attacks_static,
    patch_low_window,
    read_efault,
    dnotify,
    tcp_buffers,
    fork_snapshot,
    epoll_shared_queue,
}

/// eth0 under `--network=sandbox`: its addresses, routes, the sandbox's
/// own address reached, outside destinations refused by the broker.
#[test]
fn inet_eth0() {
    tests::check_expected("inet_eth0");
}

/// Every registry entry has a #[test] above (the list is kept by hand so
/// each can carry its own #[ignore]).
#[test]
fn every_guest_has_a_test() {
    let src = include_str!("conformance.rs");
    let body = &src[src.find("conformance! {").expect("macro call")..];
    for g in tests::GUESTS {
        assert!(
            body.lines().any(|l| l.trim().trim_end_matches(',') == g.name),
            "tests::GUESTS has {} but conformance.rs has no test for it",
            g.name
        );
    }
    for (name, _) in tests::EXPECTED_GUESTS {
        assert!(src.contains(&format!("fn {name}()")), "tests::EXPECTED_GUESTS has {name} but no test here");
    }
}
