//! The `null` sink: accepts and discards every event.

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::BoxFuture;
use oms_core::audit::{AuditError, AuditEvent, AuditSink};
use oms_core::plugin::{PluginError, SinkContext, SinkPlugin};

/// Discards events; for benchmarks and for turning audit off.
#[derive(Debug, Default)]
pub struct NullAuditSink;

#[async_trait]
impl AuditSink for NullAuditSink {
    fn name(&self) -> &str {
        "null"
    }

    async fn write_batch(&self, _events: &[AuditEvent]) -> Result<(), AuditError> {
        Ok(())
    }

    async fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

fn build<'a>(_: &'a SinkContext<'a>) -> BoxFuture<'a, Result<Arc<dyn AuditSink>, PluginError>> {
    async { Ok(Arc::new(NullAuditSink) as Arc<dyn AuditSink>) }.boxed()
}

inventory::submit! {
    SinkPlugin {
        name: "null",
        description: "discards audit events",
        settings: oms_core::plugin::no_settings,
        check: None,
        build,
    }
}
