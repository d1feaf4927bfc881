//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use oms_core::config::Overrides;

/// OMS: an order management system.
#[derive(Debug, Parser)]
#[command(name = "oms-cli", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the HTTP server.
    Serve(ConfigArgs),
    /// Apply pending database migrations and exit.
    Migrate(ConfigArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List the registered plugins by kind.
    Plugins,
    /// API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Load-test a server: closed or open loop, HDR latencies, reports.
    Load(Box<crate::commands::load::args::LoadArgs>),
    /// Check the database's invariants (stock, totals, order histories);
    /// exit 0 consistent, 2 violations found, 1 error.
    Doctor(DoctorArgs),
}

/// `oms-cli doctor` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Violations listed per check (the counts are always exact).
    #[arg(long, default_value_t = 20)]
    pub(crate) max_listed: usize,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Print a new random token and the `[[auth.keys]]` entry for it.
    Generate {
        /// The caller's name (audit actor, rate-limit key).
        #[arg(long)]
        name: String,
        /// Comma-separated roles: read, write, admin.
        #[arg(long, value_delimiter = ',', value_parser = parse_role)]
        roles: Vec<oms_core::config::Role>,
    },
}

fn parse_role(s: &str) -> Result<oms_core::config::Role, String> {
    serde_json::from_value(serde_json::Value::String(s.trim().to_owned()))
        .map_err(|_| format!("unknown role {s:?}; use read, write or admin"))
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the configuration and print it (secrets masked).
    Check(ConfigArgs),
}

/// The config file and the flags that override it.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConfigArgs {
    /// Config file; a missing default `oms.toml` means built-in defaults.
    #[arg(long, short, default_value = "oms.toml", env = "OMS_CONFIG")]
    pub(crate) config: PathBuf,
    /// Address to listen on (`server.bind`).
    #[arg(long)]
    pub(crate) bind: Option<String>,
    /// Worker threads (`server.workers`).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Log level (`server.log_level`): trace, debug, info, warn, error.
    #[arg(long)]
    pub(crate) log_level: Option<String>,
    /// Database URL (`database.url`).
    #[arg(long)]
    pub(crate) database_url: Option<String>,
}

impl ConfigArgs {
    /// The flags as the config's top layer.
    pub(crate) fn overrides(&self) -> Overrides {
        Overrides {
            bind: self.bind.clone(),
            workers: self.workers,
            log_level: self.log_level.clone(),
            database_url: self.database_url.clone(),
        }
    }

    /// The config path to read: `None` when the default `oms.toml` is
    /// absent (defaults only); an explicit missing file is an error later.
    pub(crate) fn path(&self) -> Option<&std::path::Path> {
        let is_default = self.config.as_os_str() == "oms.toml";
        (!is_default || self.config.exists()).then_some(self.config.as_path())
    }

    /// Loads and validates the configuration.
    pub(crate) fn load(&self) -> anyhow::Result<oms_core::config::Config> {
        Ok(oms_core::config::Config::load(
            self.path(),
            &self.overrides(),
        )?)
    }
}
