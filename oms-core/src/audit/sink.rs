//! The [`AuditSink`] plugin trait.

use async_trait::async_trait;

use super::AuditEvent;

/// Why a sink could not store a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The destination is unreachable or refused the write; the pipeline
    /// retries and then spills the batch.
    #[error("audit sink {sink} failed: {message}")]
    Write {
        /// The sink's name.
        sink: String,
        /// What went wrong.
        message: String,
    },
}

/// Where audit events go: a database table, a file, a broker...
///
/// # Contract
/// - `Send + Sync`; called from the pipeline's background workers, never
///   on the request path, possibly from several workers at once.
/// - [`write_batch`](Self::write_batch) stores all events or fails as a
///   whole; on error the pipeline retries the same batch and finally spills
///   it to a local file, so a sink need not buffer failed events itself.
///   It must not block a thread: use async I/O or `spawn_blocking`.
/// - [`flush`](Self::flush) makes everything written so far durable; it is
///   called at shutdown after the queue is drained.
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// The sink's plugin name.
    fn name(&self) -> &str;

    /// Stores `events`, all or none.
    ///
    /// # Errors
    /// [`AuditError::Write`] when the destination failed.
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError>;

    /// Makes all written events durable.
    ///
    /// # Errors
    /// [`AuditError::Write`] when the destination failed.
    async fn flush(&self) -> Result<(), AuditError>;
}
