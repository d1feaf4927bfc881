//! # OMS built-in plugins
//!
//! The implementations of the `oms-core` plugin traits that ship with OMS,
//! each registered with `inventory` under the name `oms.toml` selects:
//!
//! | kind | name | what |
//! |---|---|---|
//! | pool | `sea-orm` | sea-orm/sqlx pool for SQLite (WAL) and PostgreSQL |
//! | audit sink | `database` | batched multi-row inserts into `audit_events`, one transaction per batch |
//! | audit sink | `jsonl` | JSON lines appended to a file (`[audit.jsonl]`) |
//! | audit sink | `nats` | NATS JetStream, acks awaited per batch (`[audit.nats]`) |
//! | audit sink | `stdout` | JSON lines on standard output |
//! | audit sink | `null` | discards events (benchmarks, tests) |
//! | metrics recorder | `builtin` | in-process, lock-free histograms |
//!
//! The linker drops a crate nothing references, registrations included:
//! call [`link`] (or `use oms_plugins as _;`) from the binary.

pub mod audit;
pub mod metrics;
pub mod pool;

/// Does nothing; calling it keeps this crate, and so its plugin
/// registrations, in the final binary.
pub fn link() {}
