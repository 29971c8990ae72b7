//! A minimal sysfs for bundles that mount one: /sys/devices/system/cpu
//! (online, possible, present, kernel_max and a directory per CPU), so
//! glibc's sysconf(_SC_NPROCESSORS_ONLN/CONF) agrees with nproc and
//! sched_getaffinity. (`runsc-lite do` shows the host's /sys through its
//! root instead, as the host's tools see it.)

use crate::procfs::nodes::{file, ProcDir};
use abi::flags::{DT_DIR, DT_REG};
use abi::Errno;
use std::sync::Arc;
use vfs::InodeRef;

/// A directory of fixed subdirectories.
fn dir(path: &str, children: Vec<(String, InodeRef)>) -> InodeRef {
    let names: Vec<Vec<u8>> = children.iter().map(|(n, _)| n.as_bytes().to_vec()).collect();
    Arc::new(ProcDir {
        path: path.to_string(),
        list: Box::new(move || names.iter().map(|n| (n.clone(), DT_DIR)).collect()),
        lookup: Box::new(move |name| {
            children.iter().find(|(n, _)| n.as_bytes() == name).map(|(_, d)| d.clone()).ok_or(Errno::ENOENT)
        }),
    })
}

fn cpu_dir() -> InodeRef {
    let online = crate::hostfacts::online().to_string();
    let cpus = crate::hostfacts::parse_cpu_list(&online);
    let files: Vec<(&'static str, String)> = vec![
        ("kernel_max", "8191".to_string()),
        ("online", online.clone()),
        ("possible", online.clone()),
        ("present", online),
    ];
    let per_cpu: Vec<(String, InodeRef)> =
        cpus.iter().map(|c| (format!("cpu{c}"), dir(&format!("/sys/devices/system/cpu/cpu{c}"), vec![]))).collect();
    let listed: Vec<(Vec<u8>, u8)> = per_cpu
        .iter()
        .map(|(n, _)| (n.as_bytes().to_vec(), DT_DIR))
        .chain(files.iter().map(|(n, _)| (n.as_bytes().to_vec(), DT_REG)))
        .collect();
    Arc::new(ProcDir {
        path: "/sys/devices/system/cpu".into(),
        list: Box::new(move || listed.clone()),
        lookup: Box::new(move |name| {
            if let Some((_, d)) = per_cpu.iter().find(|(n, _)| n.as_bytes() == name) {
                return Ok(d.clone());
            }
            let (n, v) = files.iter().find(|(n, _)| n.as_bytes() == name).ok_or(Errno::ENOENT)?;
            let text = format!("{v}\n").into_bytes();
            Ok(file(format!("/sys/devices/system/cpu/{n}"), move || Ok(text.clone())))
        }),
    })
}

/// The root of a sysfs.
pub fn new_root() -> InodeRef {
    let system = dir("/sys/devices/system", vec![("cpu".into(), cpu_dir())]);
    let devices = dir("/sys/devices", vec![("system".into(), system)]);
    dir("/sys", vec![("devices".into(), devices)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_files() {
        let cpu = new_root().lookup(b"devices").and_then(|d| d.lookup(b"system")).and_then(|d| d.lookup(b"cpu"));
        let cpu = cpu.expect("the cpu directory");
        let online = cpu.lookup(b"online").expect("online");
        let f = online.open(abi::flags::O_RDONLY).expect("open");
        let irq = vfs::Interrupt::default();
        let mut buf = [0u8; 64];
        let n = f.read(&vfs::IoCtx { flags: 0, interrupt: &irq }, &mut buf, 0).expect("read");
        assert!(buf[..n].ends_with(b"\n") && buf[0].is_ascii_digit());
        assert!(cpu.lookup(b"cpu0").is_ok());
    }
}
