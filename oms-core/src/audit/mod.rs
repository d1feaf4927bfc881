//! Audit: the [`AuditEvent`] recorded for every request, the
//! [`AuditSink`] plugin trait that stores events, the [`AuditPipeline`]
//! that carries events from the request path to the sinks, and the
//! [`query`] side of the `audit_events` table.

mod event;
mod example;
mod pipeline;
pub mod query;
mod runtime;
mod sink;
mod spill;
mod stats;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

pub use event::AuditEvent;
pub use pipeline::{AuditPipeline, AuditStartError, PipelineOptions};
pub use sink::{AuditError, AuditSink};
pub use stats::{AuditStats, SinkStats};
