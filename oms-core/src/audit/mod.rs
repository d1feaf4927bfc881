//! Audit: the [`AuditEvent`] recorded for every request and the
//! [`AuditSink`] plugin trait that stores events.

mod event;
mod sink;

pub use event::AuditEvent;
pub use sink::{AuditError, AuditSink};
