//! Database access: the [`ConnectionPool`] plugin trait, the [`Database`]
//! handle the domain uses, per-request statement accounting and migrations.
//!
//! Every statement the domain runs goes through a connection leased from
//! the configured pool. The pool plugin reports each statement to a
//! [`StatementObserver`], which adds it to the current request's
//! [`DbCounters`] (see [`scope`]) and to the metrics recorder, so the domain
//! code never times itself.

mod database;
mod error;
mod health;
pub mod migration;
mod pool;
pub mod scope;
#[cfg(test)]
pub(crate) mod test_pool;

pub use database::{Database, IsTransient, WriteLease, WriteTurnGuard};
pub use error::{DbError, PoolError};
pub use health::{DatabaseHealth, HEALTH_FRESH_FOR};
pub use pool::{ConnectionPool, Lease, PoolStats, PooledConnection, StatementObserver};
pub use scope::DbCounters;
pub use sea_orm::{DatabaseBackend, DatabaseConnection, Statement};

/// `(?, ?, ...)` groups: `rows` groups of `cols` placeholders,
/// comma-separated (multi-row `VALUES`; `Statement`s for PostgreSQL
/// renumber them).
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    let group = format!("({})", vec!["?"; cols].join(", "));
    vec![group; rows].join(", ")
}

/// `sql` written with `?` placeholders, renumbered to `$1, $2, ...` for
/// PostgreSQL. The SQL must not contain `?` anywhere but in placeholders
/// (no string literals with `?`).
pub(crate) fn numbered(backend: DatabaseBackend, sql: &str) -> String {
    if backend != DatabaseBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}
