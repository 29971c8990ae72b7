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
mod lifecycle;
mod logging;
mod sandbox;
mod sentry_control;
mod state;
mod violation;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    logging::set_error_log(args.global.log.as_deref(), args.global.log_format == "json");
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
            logging::error_line(&e);
            eprintln!("runsc-lite: {e}");
            ExitCode::from(1)
        }
    }
}
