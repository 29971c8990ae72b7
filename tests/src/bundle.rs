//! OCI bundles for the tests: a rootfs with the host's static busybox and
//! its applets, a config.json written from a [`Config`], and runs of
//! `runsc-lite run` on it.

use crate::{run_with_timeout, runsc_lite, timeout, RunOutput, TempDir};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn tmp() -> PathBuf {
    std::env::temp_dir()
}

pub const MARKER: &str = "SECRET-MARKER-outside-the-rootfs";

/// A bundle directory: rootfs/ with busybox and applet symlinks, a marker
/// file next to rootfs/ (must never be readable from inside), config.json
/// written by `write_config`.
pub struct Bundle {
    dir: TempDir,
}

#[derive(Clone)]
pub struct Mount {
    pub dest: String,
    pub typ: String,
    pub source: String,
    pub options: Vec<String>,
}

pub fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        dest: dest.into(),
        typ: typ.into(),
        source: source.into(),
        options: options.iter().map(|s| s.to_string()).collect(),
    }
}

#[derive(Clone)]
pub struct Config {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub readonly: bool,
    pub hostname: String,
    pub mounts: Vec<Mount>,
}

pub fn config(args: &[&str]) -> Config {
    Config {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into(), "HOME=/".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        readonly: true,
        hostname: "testhost".into(),
        mounts: vec![mount("/proc", "proc", "proc", &[]), mount("/tmp", "tmpfs", "tmpfs", &["mode=1777"])],
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_list(v: &[String]) -> String {
    format!("[{}]", v.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(", "))
}

impl Config {
    /// config.json per the OCI runtime spec 1.0.
    pub fn to_json(&self) -> String {
        let mounts: Vec<String> = self
            .mounts
            .iter()
            .map(|m| {
                format!(
                    "    {{ \"destination\": {}, \"type\": {}, \"source\": {}, \"options\": {} }}",
                    json_str(&m.dest),
                    json_str(&m.typ),
                    json_str(&m.source),
                    json_list(&m.options)
                )
            })
            .collect();
        format!(
            "{{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {{\n    \"terminal\": false,\n    \"user\": {{ \"uid\": {}, \"gid\": {} }},\n    \"args\": {},\n    \"env\": {},\n    \"cwd\": {}\n  }},\n  \"root\": {{ \"path\": \"rootfs\", \"readonly\": {} }},\n  \"hostname\": {},\n  \"mounts\": [\n{}\n  ],\n  \"linux\": {{ \"namespaces\": [ {{ \"type\": \"pid\" }}, {{ \"type\": \"mount\" }}, {{ \"type\": \"uts\" }}, {{ \"type\": \"ipc\" }}, {{ \"type\": \"network\" }} ] }}\n}}\n",
            self.uid,
            self.gid,
            json_list(&self.args),
            json_list(&self.env),
            json_str(&self.cwd),
            self.readonly,
            json_str(&self.hostname),
            mounts.join(",\n")
        )
    }
}

pub const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "id", "hostname", "touch", "mkdir", "readlink", "uname", "pwd", "test", "stat", "env",
    "rm", "true", "false",
];

impl Bundle {
    pub fn new(busybox: &Path) -> Bundle {
        let dir = TempDir::new("bundle");
        let root = dir.path().join("rootfs");
        for d in ["bin", "proc", "dev", "tmp", "etc", "mnt/rw", "mnt/ro", "home/user"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("symlink");
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
        )
        .expect("write");
        std::fs::write(root.join("etc/group"), "root:x:0:\nuser:x:1000:\n").expect("write");
        std::fs::write(root.join("etc/hostname"), "rootfs-hostname-file\n").expect("write");
        std::fs::write(dir.path().join("secret-marker"), format!("{MARKER}\n")).expect("write");
        Bundle { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    pub fn marker(&self) -> PathBuf {
        self.dir.path().join("secret-marker")
    }
    pub fn write_config(&self, c: &Config) {
        std::fs::write(self.path().join("config.json"), c.to_json()).expect("write config.json");
    }
    pub fn write_raw_config(&self, text: &str) {
        std::fs::write(self.path().join("config.json"), text).expect("write config.json");
    }
    /// `runsc-lite run DIR`
    pub fn run(&self, platform: &str) -> RunOutput {
        let (mut c, _state) = runsc_lite(platform);
        c.arg("run").arg(self.path()).stdin(Stdio::null()).current_dir(tmp());
        run_with_timeout(&mut c, timeout())
    }
    /// `runsc-lite run --bundle DIR ID`
    pub fn run_bundle_id(&self, platform: &str, id: &str) -> RunOutput {
        let (mut c, _state) = runsc_lite(platform);
        c.arg("run").arg("--bundle").arg(self.path()).arg(id).stdin(Stdio::null()).current_dir(tmp());
        run_with_timeout(&mut c, timeout())
    }
    /// Writes a config running `args` and runs it.
    pub fn run_args(&self, platform: &str, args: &[&str]) -> RunOutput {
        self.write_config(&config(args));
        self.run(platform)
    }
}

/// A state root and a bundle for the OCI lifecycle commands (create,
/// start, exec, ...). The container's stdio (create's) goes to files, as
/// containerd gives it fifos: the sandbox outlives `create`. Every
/// container left is deleted with --force on drop.
pub struct Lifecycle {
    pub bundle: Bundle,
    root: TempDir,
    platform: String,
}

impl Lifecycle {
    pub fn new(busybox: &Path, platform: &str) -> Lifecycle {
        Lifecycle { bundle: Bundle::new(busybox), root: TempDir::new("lcroot"), platform: platform.into() }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `runsc-lite --platform P --root R ARGS...` (stdin /dev/null).
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(crate::runsc_lite_bin());
        c.arg(format!("--platform={}", self.platform)).arg(format!("--root={}", self.root.path().display()));
        c.args(args).stdin(Stdio::null()).current_dir(tmp());
        c
    }

    /// Runs a command that does not leave a process behind.
    pub fn cmd(&self, args: &[&str]) -> RunOutput {
        run_with_timeout(&mut self.command(args), timeout())
    }

    /// The file that takes container `id`'s stdout (and stderr with `.err`).
    pub fn out_file(&self, id: &str, ext: &str) -> PathBuf {
        self.root.path().join(format!("{id}.{ext}"))
    }

    /// `create --bundle B [EXTRA...] ID` with the container's stdout and
    /// stderr in files; returns create's status and its stderr.
    pub fn create(&self, id: &str, extra: &[&str]) -> (i32, String) {
        let out = std::fs::File::create(self.out_file(id, "out")).expect("create out");
        let err = std::fs::File::create(self.out_file(id, "err")).expect("create err");
        let bundle = self.bundle.path().to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", &bundle];
        args.extend_from_slice(extra);
        args.push(id);
        let mut c = self.command(&args);
        c.stdout(out).stderr(err);
        let mut child = c.spawn().expect("spawn create");
        let deadline = std::time::Instant::now() + timeout();
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait create") {
                break st.code().unwrap_or(-1);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                break -1;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        (status, self.output(id, "err"))
    }

    /// What container `id` wrote so far to stdout ("out") or stderr ("err").
    pub fn output(&self, id: &str, ext: &str) -> String {
        std::fs::read_to_string(self.out_file(id, ext)).unwrap_or_default()
    }

    /// Polls until `cond` holds on the container's stdout; panics after
    /// the test timeout.
    pub fn wait_output(&self, id: &str, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + timeout();
        loop {
            let o = self.output(id, "out");
            if cond(&o) {
                return o;
            }
            assert!(std::time::Instant::now() < deadline, "{id}: waiting for {what}; stdout so far: {o:?}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.root.path()) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    let id = e.file_name().to_string_lossy().into_owned();
                    let _ = self.cmd(&["delete", "--force", &id]);
                }
            }
        }
    }
}
