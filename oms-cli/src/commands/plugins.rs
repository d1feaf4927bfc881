//! `oms-cli plugins`: every registered plugin by kind.

use std::process::ExitCode;

/// Prints one line per plugin: kind, name, description.
pub(crate) fn run() -> anyhow::Result<ExitCode> {
    let plugins = oms_core::plugin::all();
    let width = plugins.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in plugins {
        println!(
            "{:<18} {:<width$}  {}",
            p.kind.to_string(),
            p.name,
            p.description
        );
    }
    Ok(ExitCode::SUCCESS)
}
