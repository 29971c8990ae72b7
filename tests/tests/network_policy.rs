//! `runsc-lite debug egress`: the egress policy decided from the command
//! line, without a packet sent (the policy's own unit tests are in
//! runsc-lite/src/egress/).

use std::process::{Command, Stdio};
use tests::{run_with_timeout, runsc_lite_bin, timeout};

fn egress(args: &[&str]) -> tests::RunOutput {
    let mut c = Command::new(runsc_lite_bin());
    c.args(["debug", "egress"]).args(args).stdin(Stdio::null());
    run_with_timeout(&mut c, timeout())
}

#[test]
fn debug_egress_decides_each_destination() {
    let out = egress(&[
        "--allow-host=example.org:443",
        "--allow-host=198.51.100.0/24",
        "--allow-host=10.9.0.0/16:5432",
        "--allow-host=host-gateway:8080",
        "--add-host=db.test:10.9.1.1",
        "--add-host=evil.test:169.254.169.254",
        "198.51.100.10:80",
        "203.0.113.5:80",
        "10.9.1.1:5432",
        "10.8.1.1:5432",
        "[::ffff:169.254.169.254]:80",
        "127.0.0.1:80",
        "example.org:443",
        "example.org:80",
        "db.test:5432",
        "evil.test:80",
        "host-gateway:8080",
        "host-gateway:9090",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let verdicts: Vec<(&str, bool)> = out
        .stdout
        .lines()
        .map(|l| {
            let (dest, rest) = l.split_once(' ').unwrap_or((l, ""));
            (dest, rest.starts_with("allowed"))
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("198.51.100.10:80", true),
            ("203.0.113.5:80", false),
            ("10.9.1.1:5432", true),
            ("10.8.1.1:5432", false),
            ("[::ffff:169.254.169.254]:80", false),
            ("127.0.0.1:80", false),
            ("example.org:443", true),
            ("example.org:80", false),
            ("db.test:5432", true),
            ("evil.test:80", false),
            ("host-gateway:8080", true),
            ("host-gateway:9090", false),
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn malformed_values_are_one_line_errors() {
    for (args, needle) in [
        (vec!["--allow-host=exa mple.org", "x.org:1"], "invalid --allow-host value \"exa mple.org\""),
        (vec!["--allow-host=a.org:0", "x.org:1"], "invalid --allow-host value \"a.org:0\""),
        (vec!["--add-host=name", "x.org:1"], "invalid --add-host value \"name\""),
        (vec!["--allow-host=a.org", "a.org"], "invalid destination \"a.org\""),
    ] {
        let out = egress(&args);
        assert_ne!(out.status, 0, "{args:?}");
        tests::assert_one_line_error(&out);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
}
