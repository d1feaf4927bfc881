//! Errors of the pool and of statements run through it.

use std::time::Duration;

/// Why a connection could not be leased or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Every connection stayed busy for the whole acquire timeout.
    #[error("no database connection became free within {0:?} (pool exhausted)")]
    Timeout(Duration),
    /// The database could not be reached or refused the connection.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The pool has been closed (shutdown).
    #[error("the connection pool is closed")]
    Closed,
    /// A statement failed.
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

/// An error from running statements: see [`PoolError`].
pub type DbError = PoolError;

impl PoolError {
    /// Whether retrying the same transaction may succeed: SQLite busy or
    /// locked, PostgreSQL serialization failure (40001) or deadlock (40P01).
    pub fn is_transient(&self) -> bool {
        match self {
            PoolError::Db(err) => is_transient_db_err(err),
            _ => false,
        }
    }

    /// Whether the error means the database is unreachable or the pool is
    /// exhausted (503 `database_unavailable`), rather than a bad statement.
    pub fn is_unavailable(&self) -> bool {
        match self {
            PoolError::Timeout(_) | PoolError::Unavailable(_) | PoolError::Closed => true,
            PoolError::Db(err) => {
                matches!(
                    err,
                    sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)
                ) || {
                    let text = err.to_string();
                    text.contains("Connection refused")
                        || text.contains("connection closed")
                        || text.contains("terminating connection")
                        || text.contains("broken pipe")
                        || text.contains("Broken pipe")
                        || text.contains("pool timed out")
                        || text.contains("the database system is")
                }
            }
        }
    }
}

fn is_transient_db_err(err: &sea_orm::DbErr) -> bool {
    let text = err.to_string();
    // PostgreSQL: serialization_failure, deadlock_detected. SQLite: BUSY/LOCKED.
    text.contains("40001")
        || text.contains("40P01")
        || text.contains("could not serialize access")
        || text.contains("deadlock detected")
        || text.contains("database is locked")
        || text.contains("database table is locked")
        || text.contains("(code: 5)")
        || text.contains("(code: 6)")
}
