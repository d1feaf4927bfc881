//! A third-party audit sink, `counting`: writes the running number of
//! audit events to a file. Built by following `docs/plugins.md`.
//!
//! ```toml
//! [audit]
//! sinks = ["counting"]
//!
//! [audit.counting]
//! file = "audit-count.txt"   # relative to the config file
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::BoxFuture;
use oms_core::audit::{AuditError, AuditEvent, AuditSink};
use oms_core::config::{Config, ConfigIssue};
use oms_core::plugin::{PluginError, PluginKind, SinkContext, SinkPlugin, defaults_of};
use serde::{Deserialize, Serialize};

/// The plugin name, and its settings table `[audit.counting]`.
pub const NAME: &str = "counting";

/// `[audit.counting]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CountingSinkConfig {
    /// Where the running total is written; relative to the config file.
    /// Default `audit-count.txt`.
    pub file: PathBuf,
}

impl Default for CountingSinkConfig {
    fn default() -> Self {
        Self {
            file: PathBuf::from("audit-count.txt"),
        }
    }
}

/// Counts events and writes the total to a file after every batch.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use oms_core::audit::{AuditEvent, AuditSink};
/// let file = std::env::temp_dir().join(format!("counting-doc-{}", std::process::id()));
/// let sink = custom_audit_sink::CountingAuditSink::new(file.clone());
/// sink.write_batch(&[AuditEvent::example(), AuditEvent::example()]).await.unwrap();
/// assert_eq!(std::fs::read_to_string(&file).unwrap(), "2");
/// # std::fs::remove_file(file).unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct CountingAuditSink {
    file: PathBuf,
    total: AtomicU64,
    lock: tokio::sync::Mutex<()>,
}

impl CountingAuditSink {
    /// A sink writing its total to `file`, starting from 0.
    pub fn new(file: PathBuf) -> Self {
        Self {
            file,
            total: AtomicU64::new(0),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Events stored so far.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl AuditSink for CountingAuditSink {
    fn name(&self) -> &str {
        NAME
    }

    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        // Several pipeline workers call this at once.
        let _guard = self.lock.lock().await;
        let total = self.total() + events.len() as u64;
        tokio::fs::write(&self.file, total.to_string())
            .await
            .map_err(|e| AuditError::Write {
                sink: NAME.to_owned(),
                message: format!("{}: {e}", self.file.display()),
            })?;
        // Counted only once stored: a failed batch is retried whole.
        self.total.store(total, Ordering::Relaxed);
        Ok(())
    }

    async fn flush(&self) -> Result<(), AuditError> {
        // Every write is complete when write_batch returns.
        Ok(())
    }
}

/// Reads and checks `[audit.counting]`, resolving `file` against the
/// config file's directory.
///
/// # Errors
/// Every problem, each naming its key (`audit.counting.<key>`).
pub fn settings(config: &Config) -> Result<CountingSinkConfig, Vec<ConfigIssue>> {
    let mut settings: CountingSinkConfig = config
        .audit
        .plugin_settings(NAME)
        .map_err(|issue| vec![issue])?;
    if settings.file.as_os_str().is_empty() {
        return Err(vec![ConfigIssue {
            key: format!("audit.{NAME}.file"),
            value: "\"\"".to_owned(),
            allowed: "must name a file".to_owned(),
        }]);
    }
    if settings.file.is_relative() {
        settings.file = config.base_dir.join(&settings.file);
    }
    Ok(settings)
}

fn check(config: &Config) -> Result<(), Vec<ConfigIssue>> {
    settings(config).map(drop)
}

fn build<'a>(ctx: &'a SinkContext<'a>) -> BoxFuture<'a, Result<Arc<dyn AuditSink>, PluginError>> {
    async move {
        let settings = settings(ctx.config).map_err(|issues| PluginError::Settings {
            kind: PluginKind::AuditSink,
            name: NAME.to_owned(),
            issues,
        })?;
        Ok(Arc::new(CountingAuditSink::new(settings.file)) as Arc<dyn AuditSink>)
    }
    .boxed()
}

inventory::submit! {
    SinkPlugin {
        name: NAME,
        description: "counts audit events into a file (example third-party sink)",
        settings: defaults_of::<CountingSinkConfig>,
        check: Some(check),
        build,
    }
}

/// Does nothing; calling it (or `use custom_audit_sink as _;`) keeps this
/// crate, and so its registration, in a binary.
pub fn link() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_table_names_its_key() {
        let mut config = Config::default();
        config
            .audit
            .plugins
            .insert(NAME.into(), serde_json::json!({ "file": 42 }));
        let issues = check(&config).expect_err("invalid");
        assert_eq!(issues[0].key, "audit.counting.file");
    }

    #[test]
    fn it_is_registered() {
        assert!(oms_core::plugin::available(PluginKind::AuditSink).contains(&NAME));
    }
}
