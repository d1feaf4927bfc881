//! `oms-cli`: run the OMS server and the tools around it.

mod args;
mod commands;
mod logging;

use std::process::ExitCode;

use clap::Parser;

// The built-in plugins register themselves with `inventory`; naming the
// crate keeps the linker from dropping those registrations.
use oms_plugins as _;

/// mimalloc, built without transparent huge pages (feature `no_thp`):
/// at 1,000 busy connections glibc's malloc spent a quarter of the CPU
/// consolidating and unlinking chunks; mimalloc served 1.44x the requests
/// with a lower peak RSS (82-87 MB vs 95-97 MB). With huge pages its idle
/// RSS doubled. BENCHMARKS.md, "Allocator".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
