//! # OMS core
//!
//! The library behind the OMS order management system: configuration,
//! the plugin traits and their registry, the order domain, and the salvo
//! router and middleware a host application mounts.
//!
//! - [`config`]: typed, layered configuration (defaults < `oms.toml` <
//!   `OMS_` environment < flags), validated with every error at once.
//! - [`plugin`]: the registry of [`db::ConnectionPool`], [`audit::AuditSink`]
//!   and [`metrics::MetricsRecorder`] implementations, selected by name.
//! - [`db`]: the pool trait, the database handle, migrations, per-request
//!   statement accounting.
//! - [`http`]: routes, middleware and problem+json errors.
//! - [`Oms`]: builds all of it from a config.

pub mod app;
pub mod audit;
pub mod cache;
pub mod config;
mod cursor;
pub mod db;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod plugin;

pub use app::{AppState, Oms, OmsBuilder, OmsError};
