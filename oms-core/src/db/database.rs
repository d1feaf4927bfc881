//! The [`Database`] handle: the configured pool plus the transaction retry
//! policy, shared by the domain and the HTTP layer.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sea_orm::DatabaseBackend;

use super::{ConnectionPool, PoolError, PooledConnection};

/// Cheap to clone; every clone shares one pool.
#[derive(Clone)]
pub struct Database {
    pool: Arc<dyn ConnectionPool>,
    max_attempts: u32,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("pool", &self.pool.name())
            .field("backend", &self.pool.backend())
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl Database {
    /// Wraps `pool`; transient conflicts are retried up to `max_attempts`
    /// times in all.
    pub fn new(pool: Arc<dyn ConnectionPool>, max_attempts: u32) -> Self {
        Self {
            pool,
            max_attempts: max_attempts.max(1),
        }
    }

    /// The pool plugin behind this handle.
    pub fn pool(&self) -> &Arc<dyn ConnectionPool> {
        &self.pool
    }

    /// The SQL dialect.
    pub fn backend(&self) -> DatabaseBackend {
        self.pool.backend()
    }

    /// Leases a connection (see [`ConnectionPool::acquire`]).
    ///
    /// # Errors
    /// As [`ConnectionPool::acquire`].
    pub async fn acquire(&self) -> Result<PooledConnection, PoolError> {
        self.pool.acquire().await
    }

    /// Runs `op` until it succeeds, fails for a reason other than a
    /// transient conflict, or `max_attempts` is reached, sleeping a short
    /// jittered, growing backoff between attempts. `op` must be a whole
    /// transaction, safe to repeat.
    ///
    /// # Errors
    /// The last error of `op`.
    pub async fn retry<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: IsTransient,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(err) if err.is_transient() && attempt < self.max_attempts => {
                    let base = 2u64.saturating_pow(attempt.min(8));
                    let jitter = rand::rng().random_range(0..=base);
                    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Errors that can say whether repeating the operation may succeed.
pub trait IsTransient {
    /// True for serialization failures, deadlocks and busy databases.
    fn is_transient(&self) -> bool;
}

impl IsTransient for PoolError {
    fn is_transient(&self) -> bool {
        PoolError::is_transient(self)
    }
}
