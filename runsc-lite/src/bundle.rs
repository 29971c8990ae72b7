//! Reading an OCI bundle's config.json into a sandbox configuration.
//!
//! Every error names the file, the field (and, for JSON errors, the line
//! and column) and what was expected. Fields that are parsed but not
//! enforced get one warning line each, never silence.

use crate::boot::{MountKind, MountSpec, SandboxConfig, SandboxLimits, Size};
use oci_spec::runtime::{PosixRlimitType, Spec};
use std::path::{Path, PathBuf};
use vfs::MountFlags;

pub fn load(dir: &Path) -> Result<SandboxConfig, String> {
    match std::fs::metadata(dir) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => return Err(format!("bundle {}: not a directory", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("bundle {}: no such directory", dir.display()))
        }
        Err(e) => return Err(format!("bundle {}: {e}", dir.display())),
    }
    let cfg_path = dir.join("config.json");
    let text = match std::fs::read_to_string(&cfg_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("bundle {}: no config.json in it", dir.display()))
        }
        Err(e) => return Err(format!("{}: {e}", cfg_path.display())),
    };
    let spec = parse(&text).map_err(|e| format!("{}: {e}", cfg_path.display()))?;
    let file = cfg_path.display().to_string();
    let err = |field: &str, what: String| format!("{file}: {field}: {what}");

    let root =
        spec.root().as_ref().ok_or_else(|| err("root", "missing (an object with \"path\" is required)".into()))?;
    if root.path().as_os_str().is_empty() {
        return Err(err("root.path", "missing or empty (the rootfs directory is required)".into()));
    }
    let root_path = absolute(dir, root.path());
    if !root_path.is_dir() {
        return Err(err("root.path", format!("{} is not a directory", root_path.display())));
    }
    let root_readonly = root.readonly().unwrap_or(false);

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| err("process", "missing (an object with args, cwd and user is required)".into()))?;
    let argv: Vec<String> = process.args().clone().unwrap_or_default();
    if argv.is_empty() {
        return Err(err("process.args", "empty (at least the program to run is required)".into()));
    }
    let cwd = process.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(err("process.cwd", format!("{cwd:?} is not an absolute path")));
    }
    let user = process.user();

    let mut mounts = vec![MountSpec { dest: "/dev".into(), kind: MountKind::Dev, flags: MountFlags::default() }];
    for (i, m) in spec.mounts().clone().unwrap_or_default().into_iter().enumerate() {
        let field = format!("mounts[{i}]");
        let dest = m.destination().to_string_lossy().into_owned();
        if !dest.starts_with('/') {
            return Err(err(&format!("{field}.destination"), format!("{dest:?} is not an absolute path")));
        }
        let opts: Vec<String> = m.options().clone().unwrap_or_default();
        let flags = MountFlags {
            readonly: opts.iter().any(|o| o == "ro"),
            nosuid: opts.iter().any(|o| o == "nosuid"),
            nodev: opts.iter().any(|o| o == "nodev"),
            noexec: opts.iter().any(|o| o == "noexec"),
        };
        let typ = m.typ().clone().unwrap_or_default();
        let is_bind = typ == "bind" || opts.iter().any(|o| o == "bind" || o == "rbind");
        let kind = if is_bind {
            let src = m.source().clone().ok_or_else(|| {
                err(&format!("{field}.source"), format!("missing (the bind mount at {dest} needs a host path)"))
            })?;
            let src = absolute(dir, &src);
            if !src.exists() {
                return Err(err(&format!("{field}.source"), format!("{} does not exist", src.display())));
            }
            MountKind::Bind(src)
        } else {
            match typ.as_str() {
                "proc" => MountKind::Proc,
                "tmpfs" if dest == "/dev" => MountKind::Dev,
                "tmpfs" => tmpfs_kind(&opts).map_err(|e| err(&format!("{field}.options"), e))?,
                other => {
                    tracing::warn!("{file}: {field}: type {other:?} at {dest} is not served yet; skipped");
                    continue;
                }
            }
        };
        if matches!(kind, MountKind::Dev) {
            continue; // devfs is always at /dev
        }
        mounts.push(MountSpec { dest, kind, flags });
    }
    warn_unenforced(&file, &spec);
    let limits = limits(&spec).map_err(|(field, what)| err(&field, what))?;
    let annotations = spec.annotations().clone().unwrap_or_default();
    let network = crate::egress::from_annotations(&annotations, crate::egress::NetworkMode::Sandbox)
        .map_err(|(field, what)| err(&field, what))?;

    Ok(SandboxConfig {
        root_path,
        root_readonly,
        root_overlay: !root_readonly,
        do_root: false,
        mounts,
        exe: argv[0].clone(),
        argv,
        env: process.env().clone().unwrap_or_default(),
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        hostname: spec.hostname().clone().unwrap_or_else(|| "runsc".to_string()),
        umask: user.umask().unwrap_or(0o022),
        limits,
        network,
        terminal: process.terminal() == Some(true),
    })
}

/// The limits the spec asks for: `linux.resources.memory.limit` and
/// `.pids.limit` (zero or negative: none) and `process.rlimits`.
fn limits(spec: &Spec) -> Result<SandboxLimits, (String, String)> {
    let mut l = SandboxLimits::default();
    if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        l.memory = r.memory().as_ref().and_then(|m| m.limit()).filter(|&m| m > 0).map(|m| m as u64);
        l.pids = r.pids().as_ref().map(|p| p.limit()).filter(|&p| p > 0).map(|p| p as u64);
    }
    let rlimits = spec.process().as_ref().and_then(|p| p.rlimits().clone()).unwrap_or_default();
    for (i, r) in rlimits.iter().enumerate() {
        let field = format!("process.rlimits[{i}]");
        let res = rlimit_number(r.typ());
        if r.soft() > r.hard() {
            return Err((field, format!("soft limit {} is above the hard limit {}", r.soft(), r.hard())));
        }
        if res == abi::flags::RLIMIT_NOFILE && r.hard() > vfs::fdtable::MAX_NOFILE {
            return Err((
                field,
                format!("RLIMIT_NOFILE {} is above fs.nr_open ({})", r.hard(), vfs::fdtable::MAX_NOFILE),
            ));
        }
        l.rlimits.push((res, r.soft(), r.hard()));
    }
    Ok(l)
}

/// The kernel's number of an rlimit type.
fn rlimit_number(t: PosixRlimitType) -> u32 {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => 0,
        RlimitFsize => 1,
        RlimitData => 2,
        RlimitStack => 3,
        RlimitCore => 4,
        RlimitRss => 5,
        RlimitNproc => 6,
        RlimitNofile => 7,
        RlimitMemlock => 8,
        RlimitAs => 9,
        RlimitLocks => 10,
        RlimitSigpending => 11,
        RlimitMsgqueue => 12,
        RlimitNice => 13,
        RlimitRtprio => 14,
        RlimitRttime => 15,
    }
}

/// The rlimits the Sentry enforces (the others are only reported).
const ENFORCED_RLIMITS: [u32; 5] = [
    abi::flags::RLIMIT_FSIZE,
    abi::flags::RLIMIT_NPROC,
    abi::flags::RLIMIT_NOFILE,
    abi::flags::RLIMIT_AS,
    abi::flags::RLIMIT_SIGPENDING,
];

/// The spec in `text`, or an error naming the field path, the line and
/// column, and what serde expected there.
fn parse(text: &str) -> Result<Spec, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let spec: Spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = format!("line {} column {}", inner.line(), inner.column());
        // serde_json appends " at line L column C"; say it once, up front.
        let msg = inner.to_string();
        let msg = msg.strip_suffix(&format!(" at {at}")).unwrap_or(&msg).to_string();
        let syntax = matches!(inner.classify(), serde_json::error::Category::Syntax | serde_json::error::Category::Eof);
        match (syntax, path.is_empty() || path == ".") {
            (true, true) => format!("{at}: invalid JSON: {msg}"),
            (true, false) => format!("{at}: invalid JSON: {msg} (in {path})"),
            (false, true) => format!("{at}: {msg}"),
            (false, false) => format!("{at}: {path}: {msg}"),
        }
    })?;
    de.end().map_err(|e| format!("line {} column {}: invalid JSON: trailing characters", e.line(), e.column()))?;
    Ok(spec)
}

/// One warning per field that is read but not enforced, so that nobody
/// believes a limit or a filter holds when it does not.
fn warn_unenforced(file: &str, spec: &Spec) {
    let mut unenforced: Vec<(&str, &str)> = Vec::new();
    if let Some(p) = spec.process() {
        if p.terminal() == Some(true) {
            unenforced.push(("process.terminal", "no terminal is allocated: the guest gets runsc-lite's own stdio"));
        }
        for r in p.rlimits().clone().unwrap_or_default() {
            let res = rlimit_number(r.typ());
            // No core file is ever written, so any RLIMIT_CORE holds.
            if ENFORCED_RLIMITS.contains(&res) || res == abi::flags::RLIMIT_CORE {
                continue;
            }
            let name = format!("{:?}", r.typ()).trim_start_matches("Rlimit").to_uppercase();
            tracing::warn!(
                "{file}: process.rlimits RLIMIT_{name} is not enforced: getrlimit reports it, nothing applies it"
            );
        }
        if p.capabilities().is_some() {
            unenforced.push(("process.capabilities", "capability sets are not applied"));
        }
        if p.apparmor_profile().is_some() {
            unenforced.push(("process.apparmorProfile", "not applied"));
        }
        if p.selinux_label().is_some() {
            unenforced.push(("process.selinuxLabel", "not applied"));
        }
        if p.oom_score_adj().is_some() {
            unenforced.push(("process.oomScoreAdj", "not applied"));
        }
    }
    if spec.hooks().is_some() {
        unenforced.push(("hooks", "hooks are not run"));
    }
    let annotations = spec.annotations().clone().unwrap_or_default();
    for key in annotations.keys().filter(|k| k.starts_with("dev.runsc-lite.")) {
        if !crate::egress::ANNOTATIONS.contains(&key.as_str()) {
            tracing::warn!("{file}: annotations: {key:?} is not a runsc-lite annotation; ignored");
        }
    }
    if annotations.keys().any(|k| !k.starts_with("dev.runsc-lite.")) {
        unenforced.push(("annotations", "only the dev.runsc-lite.* network annotations are acted on"));
    }
    if spec.domainname().is_some() {
        unenforced.push(("domainname", "not applied"));
    }
    if let Some(l) = spec.linux() {
        if l.seccomp().is_some() {
            unenforced.push(("linux.seccomp", "the guest's seccomp profile is not applied"));
        }
        if let Some(r) = l.resources() {
            if let Some(m) = r.memory() {
                let others = [
                    ("reservation", m.reservation().is_some()),
                    ("swap", m.swap().is_some()),
                    ("kernel", m.kernel().is_some()),
                    ("kernelTCP", m.kernel_tcp().is_some()),
                    ("swappiness", m.swappiness().is_some()),
                    ("disableOOMKiller", m.disable_oom_killer().is_some()),
                ];
                for (name, set) in others {
                    if set {
                        tracing::warn!("{file}: linux.resources.memory.{name} is not enforced: only memory.limit is");
                    }
                }
            }
            let others = [
                ("linux.resources.cpu", r.cpu().is_some()),
                ("linux.resources.blockIO", r.block_io().is_some()),
                ("linux.resources.hugepageLimits", r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())),
                ("linux.resources.network", r.network().is_some()),
                ("linux.resources.rdma", r.rdma().as_ref().is_some_and(|h| !h.is_empty())),
                ("linux.resources.unified", r.unified().as_ref().is_some_and(|h| !h.is_empty())),
                ("linux.resources.devices", r.devices().as_ref().is_some_and(|d| !d.is_empty())),
            ];
            for (field, set) in others {
                if set {
                    unenforced.push((field, "cgroup limit not applied"));
                }
            }
        }
        if l.sysctl().as_ref().is_some_and(|s| !s.is_empty()) {
            unenforced.push(("linux.sysctl", "not applied"));
        }
        if l.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            unenforced.push(("linux.devices", "only the sandbox's own /dev is served"));
        }
        if l.masked_paths().as_ref().is_some_and(|m| !m.is_empty()) {
            unenforced.push(("linux.maskedPaths", "not masked"));
        }
        if l.readonly_paths().as_ref().is_some_and(|r| !r.is_empty()) {
            unenforced.push(("linux.readonlyPaths", "not made read-only"));
        }
        if l.uid_mappings().is_some() || l.gid_mappings().is_some() {
            unenforced.push(("linux.uidMappings/gidMappings", "not applied"));
        }
    }
    for (field, what) in unenforced {
        tracing::warn!("{file}: {field} is not enforced: {what}");
    }
}

/// A tmpfs mount's `mode=`, `size=` (bytes with k/m/g suffixes, or a
/// percentage of the sandbox's memory) and `nr_inodes=` (with suffixes).
fn tmpfs_kind(opts: &[String]) -> Result<MountKind, String> {
    let mut mode = 0o1777;
    let (mut size, mut nr_inodes) = (None, None);
    for o in opts {
        if let Some(m) = o.strip_prefix("mode=") {
            mode = u32::from_str_radix(m, 8).map_err(|_| format!("tmpfs mode={m:?} is not an octal mode"))?;
        } else if let Some(v) = o.strip_prefix("size=") {
            size = Some(
                Size::parse(v).ok_or_else(|| format!("tmpfs size={v:?}: expected bytes (k, m, g suffixes) or N%"))?,
            );
        } else if let Some(v) = o.strip_prefix("nr_inodes=") {
            nr_inodes =
                Some(vfs::limits::parse_size(v).ok_or_else(|| format!("tmpfs nr_inodes={v:?}: expected a number"))?);
        }
    }
    Ok(MountKind::Tmpfs { mode, size, nr_inodes })
}

/// A bundle-relative path made absolute.
fn absolute(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn json_errors_name_line_field_and_expectation() {
        let e = parse("{ \"process\": { \"args\": \"/bin/true\" } }").expect_err("type error");
        assert!(e.contains("process.args") && e.contains("expected a sequence") && e.contains("line 1"), "{e}");
        let e = parse("{ \"process\": {\n \"args\": [\"x\"], \"cwd\": \"/\"\n} }").expect_err("no user");
        assert!(e.contains("process") && e.contains("missing field `user`") && e.contains("line 3"), "{e}");
        let e = parse("not json").expect_err("syntax");
        assert!(e.starts_with("line 1 column 2: invalid JSON"), "{e}");
        let e = parse("{} x").expect_err("trailing");
        assert!(e.contains("trailing"), "{e}");
        assert!(parse("{ \"ociVersion\": \"1.0.2\" }").is_ok());
    }

    mod props {
        use super::super::load;
        use super::parse;
        use proptest::prelude::*;
        use serde_json::{json, Value};
        use std::path::PathBuf;

        /// A bundle directory with an empty rootfs, removed on drop.
        struct Dir(PathBuf);

        impl Dir {
            fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "runsc-lite-bundle-props-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(p.join("rootfs")).expect("mkdir");
                Dir(p)
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }

        fn good() -> Value {
            json!({
                "ociVersion": "1.0.2",
                "process": {
                    "terminal": false,
                    "user": { "uid": 0, "gid": 0, "additionalGids": [5], "umask": 18 },
                    "args": ["/bin/sh", "-c", "true"],
                    "env": ["PATH=/bin"],
                    "cwd": "/",
                    "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }]
                },
                "root": { "path": "rootfs", "readonly": true },
                "hostname": "h",
                "mounts": [
                    { "destination": "/proc", "type": "proc", "source": "proc" },
                    { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777", "size=1m"] },
                    { "destination": "/mnt", "type": "bind", "source": "rootfs", "options": ["rbind", "ro"] }
                ],
                "linux": { "namespaces": [{ "type": "pid" }], "resources": { "memory": { "limit": 1048576 } } }
            })
        }

        /// JSON values of every kind, with the numbers and strings that
        /// hurt: huge, negative, fractional, empty, relative, with NULs.
        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                Just(json!(u64::MAX)),
                Just(json!(-1)),
                Just(json!(1.5e300)),
                prop::sample::select(vec![
                    "",
                    "/",
                    "relative",
                    "../../../..",
                    "/proc",
                    "/dev",
                    "/mnt/../../x",
                    "rootfs",
                    "bind",
                    "tmpfs",
                    "proc",
                    "mode=99999999999",
                    "mode=-1",
                    "size=abc",
                    "\u{0}",
                    "/a\u{0}b",
                    "ro",
                    "rbind",
                ])
                .prop_map(Value::from),
                "\\PC{0,40}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec(("[a-zA-Z]{1,10}", inner), 0..4)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        const FIELDS: &[&str] = &[
            "/ociVersion",
            "/process",
            "/process/args",
            "/process/args/0",
            "/process/env",
            "/process/env/0",
            "/process/cwd",
            "/process/user",
            "/process/user/uid",
            "/process/user/gid",
            "/process/user/additionalGids",
            "/process/user/umask",
            "/process/terminal",
            "/process/rlimits",
            "/process/rlimits/0/hard",
            "/process/capabilities",
            "/root",
            "/root/path",
            "/root/readonly",
            "/hostname",
            "/mounts",
            "/mounts/0",
            "/mounts/1/options",
            "/mounts/1/options/0",
            "/mounts/2/source",
            "/mounts/2/destination",
            "/mounts/2/type",
            "/mounts/1/destination",
            "/linux",
            "/linux/resources",
            "/linux/resources/memory/limit",
            "/linux/namespaces",
            "/annotations",
            "/hooks",
        ];

        /// `v` with the field at `pointer` replaced (or added to its parent).
        fn edit(v: &mut Value, pointer: &str, new: Value) {
            if let Some(slot) = v.pointer_mut(pointer) {
                *slot = new;
                return;
            }
            let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
            if let Some(Value::Object(m)) = v.pointer_mut(parent) {
                m.insert(key.to_string(), new);
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

            /// Any text: an error message or a spec, never a panic.
            #[test]
            fn parse_any_text(t in prop_oneof!["\\PC{0,200}", "[{}\\[\\]\",:0-9a-z ]{0,80}"]) {
                let _ = parse(&t);
            }

            /// A good config.json with fields replaced by any JSON value,
            /// then loaded from a bundle directory: a configuration or
            /// a one-line error, never a panic.
            #[test]
            fn load_mutated_config(edits in prop::collection::vec((prop::sample::select(FIELDS), value()), 0..4)) {
                let mut v = good();
                for (field, new) in edits {
                    edit(&mut v, field, new);
                }
                let d = Dir::new();
                std::fs::write(d.0.join("config.json"), v.to_string()).expect("write");
                if let Err(e) = load(&d.0) {
                    prop_assert!(!e.contains('\n'), "not one line: {e}");
                }
            }
        }
    }
}
