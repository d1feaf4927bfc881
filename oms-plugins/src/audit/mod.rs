//! Audit-sink plugins.

pub mod database;
pub mod jsonl;
pub mod nats;
pub mod null;
pub mod stdout;

pub use database::DatabaseAuditSink;
pub use jsonl::{JsonlAuditSink, JsonlSinkConfig};
pub use nats::{NatsAuditSink, NatsSinkConfig};
