//! Builds the guest vDSO (vdso/vdso.c) into a shared object that
//! src/vdso.rs embeds. It is C compiled by the system gcc (the same one the
//! conformance tests use) because it must be a freestanding ELF shared
//! object with version definitions, which rustc does not produce; no crate
//! is needed for one gcc call.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=vdso/vdso.c");
    println!("cargo:rerun-if-changed=vdso/vdso.lds");
    println!("cargo:rerun-if-env-changed=CC");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("vdso.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let status = Command::new(&cc)
        .args([
            "-O2",
            "-fPIC",
            "-fno-stack-protector",
            "-fno-builtin",
            "-fno-plt",
            "-fcf-protection=none",
            "-nostdlib",
            "-shared",
            "-Wl,--hash-style=both",
            "-Wl,-soname=linux-vdso.so.1",
            "-Wl,-Bsymbolic",
            "-Wl,--no-undefined",
            "-Wl,-z,max-page-size=4096",
            "-Wl,--build-id=none",
        ])
        .arg(format!("-Wl,-T,{}", dir.join("vdso/vdso.lds").display()))
        .arg("-o")
        .arg(&out)
        .arg(dir.join("vdso/vdso.c"))
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{cc} failed to build the vDSO ({s})"),
        Err(e) => panic!("building the vDSO needs a C compiler ({cc}): {e}"),
    }
}
