//! The plugin registry: built-in and third-party implementations of
//! [`ConnectionPool`], [`AuditSink`] and [`MetricsRecorder`], collected at
//! link time with `inventory` and selected by name from `oms.toml`
//! (`database.pool`, `audit.sink`/`audit.sinks`, `metrics.recorder`).
//!
//! A plugin crate registers a factory:
//!
//! ```
//! use std::sync::Arc;
//! use oms_core::plugin::{RecorderPlugin, PluginError};
//! # use oms_core::metrics::*;
//! # struct Quiet;
//! # impl MetricsRecorder for Quiet {
//! #     fn name(&self) -> &str { "quiet" }
//! #     fn record_request(&self, _: &RequestRecord<'_>) {}
//! #     fn record_statement(&self, _: std::time::Duration, _: bool) {}
//! #     fn snapshot(&self) -> MetricsSnapshot { MetricsSnapshot::default() }
//! #     fn render_prometheus(&self) -> String { String::new() }
//! # }
//!
//! fn build(_: &oms_core::config::Config) -> Result<Arc<dyn MetricsRecorder>, PluginError> {
//!     Ok(Arc::new(Quiet))
//! }
//!
//! inventory::submit! {
//!     RecorderPlugin {
//!         name: "quiet",
//!         description: "records nothing",
//!         settings: oms_core::plugin::no_settings,
//!         build,
//!     }
//! }
//!
//! assert!(oms_core::plugin::available(oms_core::plugin::PluginKind::MetricsRecorder)
//!     .contains(&"quiet"));
//! ```
//!
//! The linker drops a crate that nothing references, registrations
//! included: a binary that wants a plugin crate's registrations must name
//! it (`use my_plugins as _;` or call a function of it).
//!
//! An audit sink owns the table `[audit.<name>]`: it reads it with
//! [`AuditConfig::plugin_settings`](crate::config::AuditConfig::plugin_settings),
//! lists its defaults in [`SinkPlugin::settings`] (shown by
//! `oms-cli plugins`) and validates it in [`SinkPlugin::check`] (run by
//! `oms-cli config check` and before anything starts). The authors' guide
//! is `docs/plugins.md`.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::audit::AuditSink;
use crate::config::{Config, ConfigIssue};
use crate::db::{ConnectionPool, Database, StatementObserver};
use crate::metrics::MetricsRecorder;

/// The three kinds of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// [`ConnectionPool`], selected by `database.pool`.
    Pool,
    /// [`AuditSink`], selected by `audit.sink` / `audit.sinks`.
    AuditSink,
    /// [`MetricsRecorder`], selected by `metrics.recorder`.
    MetricsRecorder,
}

impl PluginKind {
    /// The config key that selects plugins of this kind.
    pub fn config_key(self) -> &'static str {
        match self {
            PluginKind::Pool => "database.pool",
            PluginKind::AuditSink => "audit.sinks",
            PluginKind::MetricsRecorder => "metrics.recorder",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Pool => "pool",
            PluginKind::AuditSink => "audit sink",
            PluginKind::MetricsRecorder => "metrics recorder",
        })
    }
}

/// Why a plugin could not be found or built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// No plugin of that kind is registered under that name.
    #[error("{key} = {name:?}: no {kind} plugin has that name; available: {}", available.join(", "))]
    UnknownPlugin {
        /// The kind asked for.
        kind: PluginKind,
        /// The config key that named it.
        key: &'static str,
        /// The name asked for.
        name: String,
        /// The names registered for that kind.
        available: Vec<&'static str>,
    },
    /// The plugin's own settings table is invalid.
    #[error("{kind} plugin {name:?}: invalid settings:\n{}", issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Settings {
        /// The plugin's kind.
        kind: PluginKind,
        /// The plugin's name.
        name: String,
        /// Every problem found, each naming its key (`audit.<name>.<key>`).
        issues: Vec<ConfigIssue>,
    },
    /// The plugin was found but failed to start.
    #[error("{kind} plugin {name:?} failed to start: {message}")]
    Build {
        /// The plugin's kind.
        kind: PluginKind,
        /// The plugin's name.
        name: String,
        /// What went wrong.
        message: String,
    },
}

/// What a pool factory gets.
pub struct PoolContext<'a> {
    /// The whole validated configuration.
    pub config: &'a Config,
    /// The database URL to connect to (default resolved).
    pub url: String,
    /// Must be called after every statement (see [`StatementObserver`]).
    pub observer: StatementObserver,
}

/// What an audit sink factory gets.
pub struct SinkContext<'a> {
    /// The whole validated configuration.
    pub config: &'a Config,
    /// The database, for sinks that write to it.
    pub database: Database,
}

/// Builds a [`ConnectionPool`].
pub type BuildPool =
    for<'a> fn(PoolContext<'a>) -> BoxFuture<'a, Result<Arc<dyn ConnectionPool>, PluginError>>;
/// Builds an [`AuditSink`].
pub type BuildSink =
    for<'a> fn(&'a SinkContext<'a>) -> BoxFuture<'a, Result<Arc<dyn AuditSink>, PluginError>>;
/// Builds a [`MetricsRecorder`].
pub type BuildRecorder = fn(&Config) -> Result<Arc<dyn MetricsRecorder>, PluginError>;

/// A plugin's settings with their defaults, as a JSON object
/// (`Value::Null` when it has none); shown by `oms-cli plugins`.
pub type Settings = fn() -> serde_json::Value;
/// Validates a plugin's own settings table without starting anything.
pub type CheckSettings = fn(&Config) -> Result<(), Vec<ConfigIssue>>;

/// [`Settings`] for a plugin without settings.
pub fn no_settings() -> serde_json::Value {
    serde_json::Value::Null
}

/// [`Settings`] from a settings type's `Default`: `settings: defaults_of::<MyConfig>`.
pub fn defaults_of<T: Serialize + Default>() -> serde_json::Value {
    serde_json::to_value(T::default()).unwrap_or_default()
}

/// A registered [`ConnectionPool`] factory.
pub struct PoolPlugin {
    /// The name `database.pool` selects it by.
    pub name: &'static str,
    /// One line for `oms-cli plugins`.
    pub description: &'static str,
    /// Its settings with their defaults ([`no_settings`] for none).
    pub settings: Settings,
    /// The factory.
    pub build: BuildPool,
}

/// A registered [`AuditSink`] factory.
pub struct SinkPlugin {
    /// The name `audit.sink(s)` selects it by, and the name of its
    /// settings table `[audit.<name>]`.
    pub name: &'static str,
    /// One line for `oms-cli plugins`.
    pub description: &'static str,
    /// The keys of `[audit.<name>]` with their defaults ([`no_settings`]
    /// for none).
    pub settings: Settings,
    /// Validates `[audit.<name>]` without connecting or opening anything;
    /// run by `oms-cli config check` and before any plugin is built.
    /// `None` when the sink has no settings.
    pub check: Option<CheckSettings>,
    /// The factory.
    pub build: BuildSink,
}

/// A registered [`MetricsRecorder`] factory.
pub struct RecorderPlugin {
    /// The name `metrics.recorder` selects it by.
    pub name: &'static str,
    /// One line for `oms-cli plugins`.
    pub description: &'static str,
    /// Its settings with their defaults ([`no_settings`] for none).
    pub settings: Settings,
    /// The factory.
    pub build: BuildRecorder,
}

inventory::collect!(PoolPlugin);
inventory::collect!(SinkPlugin);
inventory::collect!(RecorderPlugin);

/// Implemented by the three registration types.
pub trait Registration: inventory::Collect {
    /// The kind of plugin this registers.
    const KIND: PluginKind;
    /// Its name.
    fn name(&self) -> &'static str;
    /// Its description.
    fn description(&self) -> &'static str;
    /// Its settings with their defaults (`Value::Null` for none).
    fn settings(&self) -> serde_json::Value;
}

macro_rules! registration {
    ($ty:ty, $kind:expr) => {
        impl Registration for $ty {
            const KIND: PluginKind = $kind;
            fn name(&self) -> &'static str {
                self.name
            }
            fn description(&self) -> &'static str {
                self.description
            }
            fn settings(&self) -> serde_json::Value {
                (self.settings)()
            }
        }
    };
}
registration!(PoolPlugin, PluginKind::Pool);
registration!(SinkPlugin, PluginKind::AuditSink);
registration!(RecorderPlugin, PluginKind::MetricsRecorder);

/// Finds the registration of kind `R` named `name`.
///
/// # Errors
/// [`PluginError::UnknownPlugin`] listing the names that exist.
pub fn find<R: Registration>(name: &str) -> Result<&'static R, PluginError> {
    inventory::iter::<R>
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| PluginError::UnknownPlugin {
            kind: R::KIND,
            key: R::KIND.config_key(),
            name: name.to_owned(),
            available: names::<R>(),
        })
}

fn names<R: Registration>() -> Vec<&'static str> {
    let mut names: Vec<_> = inventory::iter::<R>.into_iter().map(|p| p.name()).collect();
    names.sort_unstable();
    names
}

/// The names registered for `kind`, sorted.
pub fn available(kind: PluginKind) -> Vec<&'static str> {
    match kind {
        PluginKind::Pool => names::<PoolPlugin>(),
        PluginKind::AuditSink => names::<SinkPlugin>(),
        PluginKind::MetricsRecorder => names::<RecorderPlugin>(),
    }
}

/// One entry of `oms-cli plugins`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PluginInfo {
    /// The plugin's kind.
    pub kind: PluginKind,
    /// Its name.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// The table its settings live in (`audit.<name>` for a sink), if it
    /// has settings.
    pub table: Option<String>,
    /// Its settings with their defaults (`Value::Null` for none).
    pub settings: serde_json::Value,
}

fn infos<R: Registration>() -> impl Iterator<Item = PluginInfo> {
    inventory::iter::<R>.into_iter().map(|p| {
        let settings = p.settings();
        PluginInfo {
            kind: R::KIND,
            name: p.name(),
            description: p.description(),
            table: match R::KIND {
                PluginKind::AuditSink if !settings.is_null() => Some(format!("audit.{}", p.name())),
                _ => None,
            },
            settings,
        }
    })
}

/// Every registered plugin, sorted by kind then name.
pub fn all() -> Vec<PluginInfo> {
    let mut all: Vec<_> = infos::<PoolPlugin>()
        .chain(infos::<SinkPlugin>())
        .chain(infos::<RecorderPlugin>())
        .collect();
    all.sort_by(|a, b| (a.kind, a.name).cmp(&(b.kind, b.name)));
    all
}

/// Checks that every plugin `config` selects is registered, and that the
/// settings table of every selected audit sink is valid.
///
/// # Errors
/// Every [`PluginError::UnknownPlugin`] and [`PluginError::Settings`] found.
pub fn check_selected(config: &Config) -> Result<(), Vec<PluginError>> {
    let mut errors = Vec::new();
    if let Err(e) = find::<PoolPlugin>(&config.database.pool) {
        errors.push(e);
    }
    for sink in config.audit.sink_names() {
        match find::<SinkPlugin>(&sink) {
            Err(e) => errors.push(e),
            Ok(plugin) => {
                if let Some(Err(issues)) = plugin.check.map(|check| check(config)) {
                    errors.push(PluginError::Settings {
                        kind: PluginKind::AuditSink,
                        name: sink.clone(),
                        issues,
                    });
                }
            }
        }
    }
    if let Err(e) = find::<RecorderPlugin>(&config.metrics.recorder) {
        errors.push(e);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
