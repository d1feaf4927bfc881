//! `oms-cli migrate`: apply pending migrations.

use std::process::ExitCode;

use crate::args::ConfigArgs;

/// Connects with the configured pool and applies every pending migration.
pub(crate) fn run(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.load()?;
    crate::logging::init(config.server.log_level.as_str());
    config.database.migrate_on_start = true;
    super::runtime(1)?.block_on(async {
        let oms = oms_core::Oms::builder().config(config).build().await?;
        oms.shutdown().await;
        tracing::info!("migrations applied");
        Ok(ExitCode::SUCCESS)
    })
}
