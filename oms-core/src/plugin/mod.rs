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
//!     RecorderPlugin { name: "quiet", description: "records nothing", build }
//! }
//!
//! assert!(oms_core::plugin::available(oms_core::plugin::PluginKind::MetricsRecorder)
//!     .contains(&"quiet"));
//! ```
//!
//! The linker drops a crate that nothing references, registrations
//! included: a binary that wants a plugin crate's registrations must name
//! it (`use my_plugins as _;` or call a function of it).

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::audit::AuditSink;
use crate::config::Config;
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

/// A registered [`ConnectionPool`] factory.
pub struct PoolPlugin {
    /// The name `database.pool` selects it by.
    pub name: &'static str,
    /// One line for `oms-cli plugins`.
    pub description: &'static str,
    /// The factory.
    pub build: BuildPool,
}

/// A registered [`AuditSink`] factory.
pub struct SinkPlugin {
    /// The name `audit.sink(s)` selects it by.
    pub name: &'static str,
    /// One line for `oms-cli plugins`.
    pub description: &'static str,
    /// The factory.
    pub build: BuildSink,
}

/// A registered [`MetricsRecorder`] factory.
pub struct RecorderPlugin {
    /// The name `metrics.recorder` selects it by.
    pub name: &'static str,
    /// One line for `oms-cli plugins`.
    pub description: &'static str,
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

/// One line of `oms-cli plugins`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct PluginInfo {
    /// The plugin's kind.
    pub kind: PluginKind,
    /// Its name.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
}

fn infos<R: Registration>() -> impl Iterator<Item = PluginInfo> {
    inventory::iter::<R>.into_iter().map(|p| PluginInfo {
        kind: R::KIND,
        name: p.name(),
        description: p.description(),
    })
}

/// Every registered plugin, sorted by kind then name.
pub fn all() -> Vec<PluginInfo> {
    let mut all: Vec<_> = infos::<PoolPlugin>()
        .chain(infos::<SinkPlugin>())
        .chain(infos::<RecorderPlugin>())
        .collect();
    all.sort();
    all
}

/// Checks that every plugin `config` selects is registered.
///
/// # Errors
/// Every [`PluginError::UnknownPlugin`] found.
pub fn check_selected(config: &Config) -> Result<(), Vec<PluginError>> {
    let mut errors = Vec::new();
    if let Err(e) = find::<PoolPlugin>(&config.database.pool) {
        errors.push(e);
    }
    for sink in config.audit.sink_names() {
        if let Err(e) = find::<SinkPlugin>(&sink) {
            errors.push(e);
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
