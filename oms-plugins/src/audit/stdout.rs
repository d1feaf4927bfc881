//! The `stdout` sink: one JSON object per line on standard output.

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::BoxFuture;
use oms_core::audit::{AuditError, AuditEvent, AuditSink};
use oms_core::plugin::{PluginError, SinkContext, SinkPlugin};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// Writes each event as a JSON line to standard output.
#[derive(Debug)]
pub struct StdoutAuditSink {
    out: Mutex<tokio::io::Stdout>,
}

impl Default for StdoutAuditSink {
    fn default() -> Self {
        Self {
            out: Mutex::new(tokio::io::stdout()),
        }
    }
}

fn write_err(err: impl std::fmt::Display) -> AuditError {
    AuditError::Write {
        sink: "stdout".to_owned(),
        message: err.to_string(),
    }
}

#[async_trait]
impl AuditSink for StdoutAuditSink {
    fn name(&self) -> &str {
        "stdout"
    }

    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        let mut buf = Vec::with_capacity(events.len() * 256);
        for event in events {
            serde_json::to_writer(&mut buf, event).map_err(write_err)?;
            buf.push(b'\n');
        }
        // One write per batch, so lines of concurrent batches never interleave.
        self.out
            .lock()
            .await
            .write_all(&buf)
            .await
            .map_err(write_err)
    }

    async fn flush(&self) -> Result<(), AuditError> {
        self.out.lock().await.flush().await.map_err(write_err)
    }
}

fn build<'a>(_: &'a SinkContext<'a>) -> BoxFuture<'a, Result<Arc<dyn AuditSink>, PluginError>> {
    async { Ok(Arc::new(StdoutAuditSink::default()) as Arc<dyn AuditSink>) }.boxed()
}

inventory::submit! {
    SinkPlugin {
        name: "stdout",
        description: "audit events as JSON lines on standard output",
        settings: oms_core::plugin::no_settings,
        check: None,
        build,
    }
}
