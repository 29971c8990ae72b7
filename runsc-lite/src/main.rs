//! `runsc-lite`: run programs in a userspace-kernel sandbox, as gVisor's
//! `runsc` does.

mod boot;
mod bundle;
mod cli;
mod confine;
mod console;
mod egress;
mod filters;
mod landlock;
mod logging;
mod sandbox;
mod state;
mod violation;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let _log = match logging::init(&args.global) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("runsc-lite: {e}");
            return ExitCode::from(1);
        }
    };
    match cli::run(args) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("runsc-lite: {e}");
            ExitCode::from(1)
        }
    }
}
