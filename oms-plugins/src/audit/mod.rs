//! Audit-sink plugins.

pub mod null;
pub mod stdout;
