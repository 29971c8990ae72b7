//! The syscall table is the documentation (`runsc-lite syscalls`): checked
//! against what conformance programs actually call. A representative
//! subset of the conformance guests runs once under `--strace` on systrap
//! (the platform does not change which calls reach the table); then
//!
//! - a call that returned anything but ENOSYS must not be listed as
//!   unimplemented;
//! - a call listed as full must never return ENOSYS;
//! - a call that returned ENOSYS because nothing serves it must have its
//!   reason in the table (`t.unimplemented(NR, "why")`), not the default
//!   "not implemented".
//!
//! The other direction (a handler registered while the table says
//! unimplemented) is the unit test `syscalls::tests::support_levels_match_handlers`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use tests::{build_guest, run_with_timeout, runsc_lite, timeout, Link, GUESTS};

/// Guests that between them make most of the calls the conformance suite
/// makes (files, directories, memory, processes, threads, signals, timers,
/// events, /proc), so the cost stays at one sandboxed run each.
const SUBSET: &[&str] = &[
    "fileio",
    "stat",
    "dirs",
    "mm",
    "pipes",
    "threads",
    "signals_basic",
    "timers",
    "events",
    "signalfd",
    "jobctl",
    "execve",
    "rusage",
    "robust",
    "devfiles",
    "proc_state",
    "kill_perm",
];

/// `runsc-lite syscalls`: name -> support column.
fn table() -> BTreeMap<String, String> {
    let (mut cmd, _root) = runsc_lite("systrap");
    cmd.arg("syscalls").stdin(Stdio::null());
    let out = run_with_timeout(&mut cmd, timeout());
    assert_eq!(out.status, 0, "runsc-lite syscalls failed:\n{}", out.describe());
    out.stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let _nr: u32 = it.next()?.parse().ok()?;
            let name = it.next()?.to_string();
            Some((name, it.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

/// One strace line: (syscall name, whether it returned ENOSYS).
fn parse(line: &str) -> Option<(String, bool)> {
    let rest = &line[line.find("] ")? + 2..];
    let open = rest.find('(')?;
    let name = &rest[..open];
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let result = &rest[rest.rfind(") = ")? + 4..];
    Some((name.to_string(), result.starts_with("-1 ENOSYS")))
}

#[test]
fn table_matches_what_guests_call() {
    let table = table();
    let mut ok: BTreeSet<String> = BTreeSet::new();
    let mut enosys: BTreeMap<String, &str> = BTreeMap::new();
    for name in SUBSET {
        let g = GUESTS.iter().find(|g| g.name == *name).unwrap_or_else(|| panic!("{name} is not in tests::GUESTS"));
        let bin = build_guest(g.source, Link::Static);
        let (mut cmd, _root) = runsc_lite("systrap");
        cmd.args(["--strace", "do"]).arg(&bin).current_dir(std::env::temp_dir()).stdin(Stdio::null());
        let out = run_with_timeout(&mut cmd, timeout());
        assert!(!out.timed_out, "{name} timed out:\n{}", out.describe());
        for (call, failed) in out.stderr.lines().filter(|l| l.trim_start().starts_with("INFO [")).filter_map(parse) {
            if failed {
                enosys.entry(call).or_insert(name);
            } else {
                ok.insert(call);
            }
        }
    }
    assert!(ok.len() > 50, "too few calls seen under --strace: {ok:?}");
    let mut problems = Vec::new();
    for call in &ok {
        match table.get(call).map(String::as_str) {
            None => problems.push(format!("{call}: returned a value but is not in the table")),
            Some(s) if s.starts_with("unimplemented") => {
                problems.push(format!("{call}: returned a value but the table says `{s}`"))
            }
            _ => {}
        }
    }
    for (call, guest) in &enosys {
        match table.get(call).map(String::as_str) {
            Some("full") => problems.push(format!("{call}: full in the table but returned ENOSYS ({guest})")),
            Some("unimplemented: not implemented") | None => {
                problems.push(format!("{call}: {guest} calls it and gets ENOSYS; serve it or say why in the table"))
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "the syscall table and the calls disagree:\n{}", problems.join("\n"));
}
