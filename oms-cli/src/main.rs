//! `oms-cli`: run the OMS server and the tools around it.

mod args;
mod commands;
mod logging;

use std::process::ExitCode;

use clap::Parser;

// The built-in plugins register themselves with `inventory`; naming the
// crate keeps the linker from dropping those registrations.
use oms_plugins as _;

fn main() -> ExitCode {
    oms_plugins::link();
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
