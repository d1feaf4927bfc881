//! The `jsonl` sink: audit events appended as JSON lines to a local file.
//!
//! Settings, in `[audit.jsonl]` (unknown keys are refused):
//!
//! ```toml
//! [audit.jsonl]
//! path = "audit.jsonl"      # relative to the config file's directory
//! fsync = "batch"           # "batch": fsync every batch; "interval": every fsync_interval_ms
//! fsync_interval_ms = 1000
//! ```
//!
//! Each batch is one buffer written with one `write_all` (so lines of
//! concurrent batches never interleave). With `fsync = "batch"` a batch is
//! durable when `write_batch` returns; with `"interval"` up to
//! `fsync_interval_ms` of events may be lost at a power failure (not at a
//! process crash: they are in the OS page cache). A batch that failed half
//! way leaves a torn last line, which the next batch steps over with a
//! newline; the pipeline then retries the whole batch, so the lines before
//! the tear appear twice (at-least-once; `id` identifies duplicates).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::BoxFuture;
use oms_core::audit::{AuditError, AuditEvent, AuditSink};
use oms_core::config::ConfigIssue;
use oms_core::plugin::{PluginError, PluginKind, SinkContext, SinkPlugin};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// The plugin name, and the name of its settings table `[audit.jsonl]`.
pub const NAME: &str = "jsonl";

/// When the sink's file is fsync'd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// After every batch, before `write_batch` returns.
    #[default]
    Batch,
    /// Every `fsync_interval_ms`, if anything was written.
    Interval,
}

/// `[audit.jsonl]`.
///
/// ```
/// use oms_plugins::audit::jsonl::{FsyncPolicy, JsonlSinkConfig};
/// let config = JsonlSinkConfig::default();
/// assert_eq!(config.path, std::path::PathBuf::from("audit.jsonl"));
/// assert_eq!(config.fsync, FsyncPolicy::Batch);
/// assert_eq!(config.fsync_interval_ms, 1000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonlSinkConfig {
    /// The file events are appended to; relative paths resolve against the
    /// config file's directory. Default `audit.jsonl`.
    pub path: PathBuf,
    /// When to fsync. Default `batch`.
    pub fsync: FsyncPolicy,
    /// The fsync period with `fsync = "interval"`, at least 1. Default 1000.
    pub fsync_interval_ms: u64,
}

impl Default for JsonlSinkConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("audit.jsonl"),
            fsync: FsyncPolicy::Batch,
            fsync_interval_ms: 1_000,
        }
    }
}

/// Appends events as JSON lines to a file.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use oms_core::audit::{AuditEvent, AuditSink};
/// use oms_plugins::audit::jsonl::{JsonlAuditSink, JsonlSinkConfig};
///
/// let dir = std::env::temp_dir().join(format!("oms-doc-{}", std::process::id()));
/// let path = dir.join("audit.jsonl");
/// let sink = JsonlAuditSink::open(JsonlSinkConfig { path: path.clone(), ..Default::default() }).await?;
/// sink.write_batch(&[AuditEvent::example()]).await.unwrap();
/// let text = tokio::fs::read_to_string(&path).await?;
/// assert!(text.ends_with("\n"));
/// # tokio::fs::remove_dir_all(&dir).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct JsonlAuditSink {
    path: PathBuf,
    fsync: FsyncPolicy,
    state: Arc<Mutex<FileState>>,
    syncer: Option<tokio::task::AbortHandle>,
}

#[derive(Debug)]
struct FileState {
    /// `None` after a failed write: reopened by the next one.
    file: Option<tokio::fs::File>,
    /// The file may end in a torn line.
    needs_newline: bool,
    /// Written since the last fsync.
    dirty: bool,
}

async fn open_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

fn write_err(err: impl std::fmt::Display) -> AuditError {
    AuditError::Write {
        sink: NAME.to_owned(),
        message: err.to_string(),
    }
}

impl JsonlAuditSink {
    /// Opens (creating it and its directory if needed) `config.path` for
    /// appending, as given (not resolved against a base directory); with
    /// `fsync = "interval"` spawns the task that fsyncs it, so call it
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// The I/O error when the file cannot be created or opened.
    pub async fn open(config: JsonlSinkConfig) -> std::io::Result<Self> {
        if let Some(parent) = config.path.parent()
            && !parent.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(parent).await?;
        }
        let file = open_append(&config.path).await?;
        let needs_newline = {
            let len = file.metadata().await?.len();
            len > 0 && {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let mut reader = tokio::fs::File::open(&config.path).await?;
                reader.seek(std::io::SeekFrom::End(-1)).await?;
                let mut last = [0u8; 1];
                reader.read_exact(&mut last).await?;
                last[0] != b'\n'
            }
        };
        let state = Arc::new(Mutex::new(FileState {
            file: Some(file),
            needs_newline,
            dirty: false,
        }));
        let syncer = (config.fsync == FsyncPolicy::Interval).then(|| {
            let period = Duration::from_millis(config.fsync_interval_ms.max(1));
            tokio::spawn(sync_periodically(Arc::downgrade(&state), period)).abort_handle()
        });
        Ok(Self {
            path: config.path,
            fsync: config.fsync,
            state,
            syncer,
        })
    }

    /// The file this sink appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for JsonlAuditSink {
    fn drop(&mut self) {
        if let Some(syncer) = &self.syncer {
            syncer.abort();
        }
    }
}

/// Fsyncs the file every `period` while the sink lives.
async fn sync_periodically(state: std::sync::Weak<Mutex<FileState>>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        let mut state = state.lock().await;
        if !state.dirty {
            continue;
        }
        if let Some(file) = state.file.as_mut() {
            match file.sync_data().await {
                Ok(()) => state.dirty = false,
                Err(err) => tracing::warn!(%err, "jsonl audit sink: periodic fsync failed"),
            }
        }
    }
}

#[async_trait]
impl AuditSink for JsonlAuditSink {
    fn name(&self) -> &str {
        NAME
    }

    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(1 + events.len() * 320);
        buf.push(b'\n');
        for event in events {
            serde_json::to_writer(&mut buf, event).map_err(write_err)?;
            buf.push(b'\n');
        }
        let mut state = self.state.lock().await;
        let lines = if state.needs_newline {
            &buf[..]
        } else {
            &buf[1..]
        };
        if state.file.is_none() {
            state.file = Some(open_append(&self.path).await.map_err(write_err)?);
        }
        let fsync = self.fsync;
        let result = match state.file.as_mut() {
            Some(file) => {
                async {
                    file.write_all(lines).await?;
                    // tokio completes the write in the background: wait for it
                    // (and its error) before answering.
                    file.flush().await?;
                    if fsync == FsyncPolicy::Batch {
                        file.sync_data().await?;
                    }
                    Ok::<(), std::io::Error>(())
                }
                .await
            }
            None => Err(std::io::Error::other("file not open")),
        };
        match result {
            Ok(()) => {
                state.needs_newline = false;
                state.dirty = fsync == FsyncPolicy::Interval;
                Ok(())
            }
            Err(err) => {
                state.file = None;
                state.needs_newline = true;
                Err(write_err(format!("{}: {err}", self.path.display())))
            }
        }
    }

    async fn flush(&self) -> Result<(), AuditError> {
        let mut state = self.state.lock().await;
        if let Some(file) = state.file.as_mut() {
            file.flush().await.map_err(write_err)?;
            file.sync_data().await.map_err(write_err)?;
        }
        state.dirty = false;
        Ok(())
    }
}

fn build_error(message: String) -> PluginError {
    PluginError::Build {
        kind: PluginKind::AuditSink,
        name: NAME.to_owned(),
        message,
    }
}

/// Reads and checks `[audit.jsonl]`, resolving `path` against `base_dir`.
///
/// # Errors
/// The issue, naming the offending key (`audit.jsonl.<key>`).
fn settings(config: &oms_core::config::Config) -> Result<JsonlSinkConfig, ConfigIssue> {
    let mut settings: JsonlSinkConfig = config.audit.plugin_settings(NAME)?;
    if settings.fsync == FsyncPolicy::Interval && settings.fsync_interval_ms == 0 {
        return Err(ConfigIssue {
            key: format!("audit.{NAME}.fsync_interval_ms"),
            value: "0".to_owned(),
            allowed: "must be >= 1 with fsync = \"interval\"".to_owned(),
        });
    }
    if settings.path.as_os_str().is_empty() {
        return Err(ConfigIssue {
            key: format!("audit.{NAME}.path"),
            value: "\"\"".to_owned(),
            allowed: "must name a file".to_owned(),
        });
    }
    if settings.path.is_relative() {
        settings.path = config.base_dir.join(&settings.path);
    }
    Ok(settings)
}

/// [`SinkPlugin::check`]: `[audit.jsonl]` parses and passes the rules.
fn check(config: &oms_core::config::Config) -> Result<(), Vec<ConfigIssue>> {
    settings(config).map(drop).map_err(|issue| vec![issue])
}

fn build<'a>(ctx: &'a SinkContext<'a>) -> BoxFuture<'a, Result<Arc<dyn AuditSink>, PluginError>> {
    async move {
        let settings = settings(ctx.config).map_err(|issue| build_error(issue.to_string()))?;
        let path = settings.path.clone();
        let sink = JsonlAuditSink::open(settings).await.map_err(|err| {
            build_error(format!(
                "audit.{NAME}.path = {:?}: {err}",
                path.display().to_string()
            ))
        })?;
        Ok(Arc::new(sink) as Arc<dyn AuditSink>)
    }
    .boxed()
}

inventory::submit! {
    SinkPlugin {
        name: NAME,
        description: "audit events as JSON lines appended to a file (fsync per batch or on an interval)",
        settings: oms_core::plugin::defaults_of::<JsonlSinkConfig>,
        check: Some(check),
        build,
    }
}
