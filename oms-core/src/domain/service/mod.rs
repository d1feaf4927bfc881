//! [`OrderService`]: the domain operations, each one a short transaction
//! (or a single statement) on a connection leased from the [`Database`].
//!
//! Every write runs inside [`Database::retry`], so SQLite busy errors and
//! PostgreSQL serialization failures or deadlocks are retried as a whole.
//! Concurrency control is by conditional statements only (`UPDATE ...
//! WHERE available >= q`, `WHERE status IN (...)`, `WHERE version = v`),
//! never by engine-specific locks, so the same SQL serves SQLite,
//! PostgreSQL and PostgreSQL-compatible distributed engines.

mod create;
mod idempotent;
mod insert;
mod products;
mod queries;
mod transition;

use crate::config::OrdersConfig;
use crate::db::Database;

/// The order domain's entry point. Cheap to clone (the database handle is
/// shared).
#[derive(Debug, Clone)]
pub struct OrderService {
    db: Database,
    idempotency_ttl_ms: i64,
}

impl OrderService {
    /// A service over `db`, with the idempotency TTL of `config`.
    pub fn new(db: Database, config: &OrdersConfig) -> Self {
        let ttl_ms = config.idempotency_ttl_s.saturating_mul(1000);
        Self {
            db,
            idempotency_ttl_ms: i64::try_from(ttl_ms).unwrap_or(i64::MAX),
        }
    }

    /// The database handle this service runs on.
    pub fn database(&self) -> &Database {
        &self.db
    }
}
