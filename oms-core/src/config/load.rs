//! Merging the configuration layers with figment.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Data, Env, Format, Serialized, Toml};
use serde::Serialize;

use super::{Config, ConfigError};

/// The top-level sections; only `OMS_<SECTION>__...` variables are read, so
/// unrelated variables such as `OMS_TEST_POSTGRES_URL` are not mistaken for
/// configuration.
const SECTIONS: &[&str] = &[
    "server",
    "database",
    "orders",
    "audit",
    "metrics",
    "cache",
    "compression",
    "rate_limit",
    "auth",
];

/// Command-line flags: the highest layer. `None` leaves the lower layers'
/// value in place.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    /// `--bind`: `server.bind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// `--workers`: `server.workers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// `--log-level`: `server.log_level`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// `--database-url`: `database.url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Overrides {
    fn merge_into(&self, mut figment: Figment) -> Figment {
        if let Some(v) = &self.bind {
            figment = figment.merge(Serialized::default("server.bind", v));
        }
        if let Some(v) = &self.workers {
            figment = figment.merge(Serialized::default("server.workers", v));
        }
        if let Some(v) = &self.log_level {
            figment = figment.merge(Serialized::default("server.log_level", v));
        }
        if let Some(v) = &self.database_url {
            figment = figment.merge(Serialized::default("database.url", v));
        }
        figment
    }
}

impl Config {
    /// The merged layers below the flags: defaults < `path` (if given) <
    /// `OMS_` environment. Useful to inspect where a value came from.
    pub fn figment(path: Option<&Path>) -> Figment {
        Self::layers(path.map(Toml::file_exact))
    }

    fn layers(file: Option<Data<Toml>>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(file);
        }
        figment.merge(Env::prefixed("OMS_").split("__").filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            SECTIONS.iter().any(|s| {
                key.strip_prefix(s)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
        }))
    }

    /// Loads the configuration from `path` (or defaults only when `None`),
    /// the environment and `overrides`, then validates it.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for a missing or malformed file, an unknown key
    /// or a value of the wrong type; [`ConfigError::Invalid`] listing every
    /// rule the merged values break.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        if let Some(p) = path
            && !p.exists()
        {
            return Err(ConfigError::Parse(format!(
                "  - config file {} does not exist (pass --config PATH, or create it)",
                p.display()
            )));
        }
        let base_dir = path
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Self::extract(overrides.merge_into(Self::figment(path)), base_dir)
    }

    /// Parses `toml` as if it were the `oms.toml` file (environment and
    /// `overrides` still apply on top), then validates it.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_toml_str(toml: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::extract(
            overrides.merge_into(Self::layers(Some(Toml::string(toml)))),
            PathBuf::from("."),
        )
    }

    fn extract(figment: Figment, base_dir: PathBuf) -> Result<Config, ConfigError> {
        let mut config: Config = figment.extract().map_err(ConfigError::from_figment)?;
        config.base_dir = base_dir;
        config.validate()?;
        Ok(config)
    }
}
