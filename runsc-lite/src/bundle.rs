//! Reading an OCI bundle's config.json into a sandbox configuration.

use crate::boot::{MountKind, MountSpec, SandboxConfig};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};
use vfs::MountFlags;

pub fn load(dir: &Path) -> Result<SandboxConfig, String> {
    if !dir.is_dir() {
        return Err(format!("bundle {}: not a directory", dir.display()));
    }
    let cfg_path = dir.join("config.json");
    if !cfg_path.is_file() {
        return Err(format!("bundle {}: no config.json", dir.display()));
    }
    let spec = Spec::load(&cfg_path).map_err(|e| format!("{}: {}", cfg_path.display(), one_line(&e.to_string())))?;

    let root = spec.root().as_ref().ok_or_else(|| format!("{}: no root", cfg_path.display()))?;
    let root_path = if root.path().is_absolute() { root.path().clone() } else { dir.join(root.path()) };
    if !root_path.is_dir() {
        return Err(format!("{}: root.path {} is not a directory", cfg_path.display(), root_path.display()));
    }
    let root_readonly = root.readonly().unwrap_or(false);

    let process = spec.process().as_ref().ok_or_else(|| format!("{}: no process", cfg_path.display()))?;
    let argv: Vec<String> = process.args().clone().unwrap_or_default();
    if argv.is_empty() {
        return Err(format!("{}: process.args is empty", cfg_path.display()));
    }
    let cwd = process.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(format!("{}: process.cwd {cwd:?} is not absolute", cfg_path.display()));
    }
    let user = process.user();

    let mut mounts = vec![MountSpec { dest: "/dev".into(), kind: MountKind::Dev, flags: MountFlags::default() }];
    for m in spec.mounts().clone().unwrap_or_default() {
        let dest = m.destination().to_string_lossy().into_owned();
        if !dest.starts_with('/') {
            return Err(format!("{}: mount destination {dest:?} is not absolute", cfg_path.display()));
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
            let src =
                m.source().clone().ok_or_else(|| format!("{}: bind mount {dest} has no source", cfg_path.display()))?;
            let src = if src.is_absolute() { src } else { dir.join(src) };
            if !src.exists() {
                return Err(format!("{}: bind mount source {} does not exist", cfg_path.display(), src.display()));
            }
            MountKind::Bind(src)
        } else {
            match typ.as_str() {
                "proc" => MountKind::Proc,
                "tmpfs" if dest == "/dev" => MountKind::Dev,
                "tmpfs" => MountKind::Tmpfs { mode: tmpfs_mode(&opts) },
                other => {
                    tracing::warn!("mount {dest}: type {other:?} is not served yet; skipped");
                    continue;
                }
            }
        };
        if matches!(kind, MountKind::Dev) {
            continue; // devfs is always at /dev
        }
        mounts.push(MountSpec { dest, kind, flags });
    }

    Ok(SandboxConfig {
        root_path,
        root_readonly,
        root_overlay: !root_readonly,
        mounts,
        argv,
        env: process.env().clone().unwrap_or_default(),
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        hostname: spec.hostname().clone().unwrap_or_else(|| "runsc".to_string()),
        umask: user.umask().unwrap_or(0o022),
    })
}

fn tmpfs_mode(opts: &[String]) -> u32 {
    opts.iter().find_map(|o| o.strip_prefix("mode=").and_then(|m| u32::from_str_radix(m, 8).ok())).unwrap_or(0o1777)
}

fn one_line(s: &str) -> String {
    s.split('\n').map(str::trim).collect::<Vec<_>>().join(" ")
}

/// A bundle-relative path made absolute.
#[allow(dead_code)]
pub fn absolute(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}
