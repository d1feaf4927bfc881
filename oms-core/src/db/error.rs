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

/// The SQLSTATE the server sent with a statement's error, if any.
fn sqlstate(err: &sea_orm::DbErr) -> Option<String> {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => match &**e {
            sea_orm::sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        },
        _ => None,
    }
}

fn is_transient_db_err(err: &sea_orm::DbErr) -> bool {
    // By code first: the message of a 40001 varies by engine (CockroachDB:
    // "restart transaction: ...", YugabyteDB: "Restart read required ...").
    if matches!(sqlstate(err).as_deref(), Some("40001" | "40P01")) {
        return true;
    }
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

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use sea_orm::ConnectionTrait;

    use super::PoolError;

    /// A 40001 is retried whatever its message says: the one here is how
    /// CockroachDB words it, raised by PostgreSQL with that SQLSTATE.
    #[tokio::test]
    async fn serialization_failures_are_transient_by_sqlstate() {
        let Ok(url) = std::env::var("OMS_TEST_POSTGRES_URL") else {
            eprintln!("SKIPPED (PostgreSQL): OMS_TEST_POSTGRES_URL is not set");
            return;
        };
        let conn = sea_orm::Database::connect(&url).await.expect("connect");
        for (code, transient) in [("40001", true), ("40P01", true), ("22012", false)] {
            let err = conn
                .execute_unprepared(&format!(
                    "DO $$ BEGIN RAISE EXCEPTION 'restart transaction: \
                     TransactionRetryWithProtoRefreshError' USING ERRCODE = '{code}'; END $$"
                ))
                .await
                .expect_err("raised");
            assert_eq!(PoolError::Db(err).is_transient(), transient, "{code}");
        }
        conn.close().await.ok();
    }
}
