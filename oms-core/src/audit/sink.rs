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
///
/// A plugin also registers a factory (`oms_core::plugin::SinkPlugin`) and
/// may own the settings table `[audit.<name>]`; see `docs/plugins.md`.
///
/// # Examples
///
/// A sink keeping events in memory (several workers may call it at once,
/// so its state is behind a mutex):
///
/// ```
/// use async_trait::async_trait;
/// use oms_core::audit::{AuditError, AuditEvent, AuditSink};
///
/// #[derive(Default)]
/// struct MemorySink(tokio::sync::Mutex<Vec<AuditEvent>>);
///
/// #[async_trait]
/// impl AuditSink for MemorySink {
///     fn name(&self) -> &str {
///         "memory"
///     }
///     async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
///         self.0.lock().await.extend_from_slice(events); // all or none
///         Ok(())
///     }
///     async fn flush(&self) -> Result<(), AuditError> {
///         Ok(()) // nothing buffered outside the Vec
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let sink = MemorySink::default();
/// sink.write_batch(&[AuditEvent::example(), AuditEvent::example()]).await.unwrap();
/// sink.flush().await.unwrap();
/// assert_eq!(sink.0.lock().await.len(), 2);
/// # });
/// ```
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
