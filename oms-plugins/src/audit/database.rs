//! The `database` sink: audit events as rows of `audit_events`, the table
//! `GET /v1/audit` reads.
//!
//! Each batch is written by `oms_core::audit::query::insert` on a
//! connection leased from the configured pool (its statements reported to
//! the pool's statement observer like every other): on PostgreSQL inserts of
//! the columns as arrays (`unnest`), on SQLite multi-row inserts with
//! bound values; several statements share one transaction, so a batch is
//! stored whole or not at all. On SQLite the batch waits for the process's
//! write turn first, like every writer (`Database::write_turn`). Inserting
//! an event already stored is a no-op, so retries and spill replays never
//! duplicate rows. Each batch commits: [`flush`](AuditSink::flush) has
//! nothing to do.

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::BoxFuture;
use oms_core::audit::query::insert;
use oms_core::audit::{AuditError, AuditEvent, AuditSink};
use oms_core::db::Database;
use oms_core::plugin::{PluginError, SinkContext, SinkPlugin};

/// The plugin name.
pub const NAME: &str = "database";

/// Writes batches into `audit_events` through a [`Database`].
///
/// ```no_run
/// # async fn run(db: oms_core::db::Database) -> Result<(), oms_core::audit::AuditError> {
/// use oms_core::audit::{AuditEvent, AuditSink};
/// use oms_plugins::audit::DatabaseAuditSink;
///
/// let sink = DatabaseAuditSink::new(db);
/// sink.write_batch(&[AuditEvent::example(), AuditEvent::example()]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DatabaseAuditSink {
    db: Database,
}

impl DatabaseAuditSink {
    /// A sink writing through `db` (the `audit_events` table must exist:
    /// run the migrations first).
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn write_err(err: impl std::fmt::Display) -> AuditError {
    AuditError::Write {
        sink: NAME.to_owned(),
        message: err.to_string(),
    }
}

#[async_trait]
impl AuditSink for DatabaseAuditSink {
    fn name(&self) -> &str {
        NAME
    }

    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        insert(&self.db, events).await.map_err(write_err)
    }

    async fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

fn build<'a>(ctx: &'a SinkContext<'a>) -> BoxFuture<'a, Result<Arc<dyn AuditSink>, PluginError>> {
    async move { Ok(Arc::new(DatabaseAuditSink::new(ctx.database.clone())) as Arc<dyn AuditSink>) }
        .boxed()
}

inventory::submit! {
    SinkPlugin {
        name: NAME,
        description: "audit events as rows of the audit_events table (multi-row inserts, one transaction per batch, idempotent)",
        settings: oms_core::plugin::no_settings,
        check: None,
        build,
    }
}
