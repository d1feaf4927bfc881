//! `oms-cli config check`: validate and print the effective configuration.

use std::process::ExitCode;

use crate::args::ConfigArgs;

/// Validates the config and the selected plugins; prints the effective
/// config as TOML-like JSON with secrets masked.
pub(crate) fn run(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.load()?;
    if let Err(errors) = oms_core::plugin::check_selected(&config) {
        for e in errors {
            eprintln!("error: {e}");
        }
        return Ok(ExitCode::FAILURE);
    }
    let mut shown = config.redacted();
    shown.database.url = Some(oms_core::config::redact_url(
        &config.database.effective_url(&config.base_dir),
    ));
    println!("{}", serde_json::to_string_pretty(&shown)?);
    eprintln!("configuration OK");
    Ok(ExitCode::SUCCESS)
}
