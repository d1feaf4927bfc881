//! One module per subcommand.

mod config_check;
mod doctor;
mod keys;
pub(crate) mod load;
mod migrate;
mod plugins;
mod serve;

use std::process::ExitCode;

use crate::args::{Cli, Command, ConfigCommand, KeysCommand};

/// Runs the chosen subcommand.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Migrate(args) => migrate::run(&args),
        Command::Config(ConfigCommand::Check(args)) => config_check::run(&args),
        Command::Plugins => plugins::run(),
        Command::Keys(KeysCommand::Generate { name, roles }) => keys::generate(&name, &roles),
        Command::Load(args) => load::run(*args),
        Command::Doctor(args) => doctor::run(&args),
    }
}

/// A tokio runtime with `workers` threads.
pub(crate) fn runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()?)
}
