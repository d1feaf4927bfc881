//! The [`Database`] handle: the configured pool, the transaction retry
//! policy and, on SQLite, the process's write turn; shared by the domain,
//! the audit sink and the HTTP layer.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use sea_orm::{DatabaseBackend, DatabaseConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{ConnectionPool, PoolError, PoolStats, PooledConnection, StatementObserver};

/// How long a writer waits for its turn unless told otherwise
/// ([`Database::with_acquire_timeout`]): the default
/// `database.acquire_timeout_ms`.
const DEFAULT_TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// Cheap to clone; every clone shares one pool and one write turn.
#[derive(Clone)]
pub struct Database {
    pool: Arc<dyn ConnectionPool>,
    max_attempts: u32,
    /// SQLite only: one write transaction at a time in this process.
    turn: Option<Arc<WriteTurn>>,
    /// Longest wait for the write turn.
    turn_timeout: Duration,
    /// Told about statements run past sea-orm (straight on the driver),
    /// as the pool tells it about the rest.
    observer: Option<StatementObserver>,
}

/// SQLite allows one writer per database file; a writer that finds the
/// lock taken sleeps in SQLite's busy handler (1, 2, 5, 10, ... 100 ms
/// steps) while holding a pooled connection. Under a mix of reads and
/// writes those sleeping writers held the whole pool: reads queued behind
/// them for a connection (16 ms mean instead of 0.4 ms) and writes took
/// turns by timer instead of as soon as the lock was free. Writers of this
/// process therefore take the `lock` permit first, and lease a connection
/// only once they hold it; the busy handler remains for other processes on
/// the same file.
///
/// Request writers ([`Database::acquire_writer`]) queue in arrival order
/// in the `lane` and only its head waits for the `lock`; batch writers
/// ([`Database::write_turn`], the audit sink) wait for the `lock` directly.
/// A batch therefore waits for at most one request transaction, not for
/// every request queued at 1,000 connections (which let the audit queue
/// fill and block requests on it).
#[derive(Debug)]
struct WriteTurn {
    lane: Semaphore,
    lock: Arc<Semaphore>,
    waiting: AtomicU32,
    timeouts: AtomicU64,
}

impl WriteTurn {
    fn new() -> Self {
        Self {
            lane: Semaphore::new(1),
            lock: Arc::new(Semaphore::new(1)),
            waiting: AtomicU32::new(0),
            timeouts: AtomicU64::new(0),
        }
    }

    /// The `lock` permit, through the `lane` for request writers, within
    /// `timeout`.
    async fn take(
        &self,
        through_lane: bool,
        timeout: Duration,
    ) -> Result<OwnedSemaphorePermit, PoolError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        let wait = async {
            let _lane = match through_lane {
                true => Some(self.lane.acquire().await?),
                false => None,
            };
            self.lock.clone().acquire_owned().await
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(PoolError::Closed),
            Err(_) => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(PoolError::Timeout(timeout))
            }
        }
    }
}

/// A pooled connection leased for a write transaction, holding the
/// process's write turn on SQLite until it drops
/// ([`Database::acquire_writer`]).
#[derive(Debug)]
pub struct WriteLease {
    // Fields drop in order: the connection goes back before the turn does.
    conn: PooledConnection,
    _turn: Option<OwnedSemaphorePermit>,
}

impl Deref for WriteLease {
    type Target = DatabaseConnection;

    fn deref(&self) -> &DatabaseConnection {
        &self.conn
    }
}

/// The write turn, held until dropped ([`Database::write_turn`]); `None`
/// inside on databases that take concurrent writers.
#[derive(Debug)]
pub struct WriteTurnGuard {
    _permit: Option<OwnedSemaphorePermit>,
}

/// Decrements the waiting count however the wait ends (also on cancel).
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
    ///
    /// On SQLite, writers of this process take turns
    /// ([`acquire_writer`](Self::acquire_writer)), waiting at most 10 s
    /// for theirs; see [`with_acquire_timeout`](Self::with_acquire_timeout).
    pub fn new(pool: Arc<dyn ConnectionPool>, max_attempts: u32) -> Self {
        let turn = (pool.backend() == DatabaseBackend::Sqlite).then(|| Arc::new(WriteTurn::new()));
        Self {
            pool,
            max_attempts: max_attempts.max(1),
            turn,
            turn_timeout: DEFAULT_TURN_TIMEOUT,
            observer: None,
        }
    }

    /// Reports statements this crate runs on the driver directly, past
    /// sea-orm's hooks (the audit inserts, `audit::query::insert`), to
    /// `observer`: the one the pool was built with, so they count in the
    /// statement metrics like every other.
    #[must_use]
    pub fn with_observer(mut self, observer: StatementObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Tells the observer about one statement run past sea-orm.
    pub(crate) fn observe(&self, elapsed: Duration, failed: bool) {
        if let Some(observer) = &self.observer {
            observer(elapsed, failed);
        }
    }

    /// Waits at most `timeout` for the write turn (as the pool waits at
    /// most `database.acquire_timeout_ms` for a connection), then fails
    /// with [`PoolError::Timeout`].
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.turn_timeout = timeout;
        self
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

    /// Waits for this process's write turn (SQLite; immediate on
    /// PostgreSQL) as a batch writer, for writes that lease their own
    /// connection, such as the audit inserts: it goes ahead
    /// of request writers queued in [`acquire_writer`](Self::acquire_writer)
    /// and waits for at most the one whose turn has come. Hold the guard
    /// until the write has committed.
    ///
    /// # Errors
    /// [`PoolError::Timeout`] when the turn did not come within the acquire
    /// timeout; [`PoolError::Closed`] if the database was closed.
    pub async fn write_turn(&self) -> Result<WriteTurnGuard, PoolError> {
        let permit = match &self.turn {
            Some(turn) => Some(turn.take(false, self.turn_timeout).await?),
            None => None,
        };
        Ok(WriteTurnGuard { _permit: permit })
    }

    /// Leases a connection for a write transaction: on SQLite after
    /// waiting for this process's write turn, in arrival order among
    /// request writers, so that writers do not hold connections that
    /// readers need while they wait.
    ///
    /// # Errors
    /// As [`write_turn`](Self::write_turn) and [`acquire`](Self::acquire).
    ///
    /// ```no_run
    /// # async fn run(db: oms_core::db::Database) -> Result<(), oms_core::db::PoolError> {
    /// use sea_orm::TransactionTrait;
    /// let conn = db.acquire_writer().await?;
    /// let txn = conn.begin().await?;
    /// // ... statements ...
    /// txn.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn acquire_writer(&self) -> Result<WriteLease, PoolError> {
        let turn = match &self.turn {
            Some(turn) => Some(turn.take(true, self.turn_timeout).await?),
            None => None,
        };
        let conn = self.pool.acquire().await?;
        Ok(WriteLease { conn, _turn: turn })
    }

    /// The pool's statistics, with writers waiting for their turn counted
    /// as waiting and turns that timed out as timeouts.
    pub fn pool_stats(&self) -> PoolStats {
        let mut stats = self.pool.stats();
        if let Some(turn) = &self.turn {
            stats.waiting = stats
                .waiting
                .saturating_add(turn.waiting.load(Ordering::Relaxed));
            stats.timeouts = stats
                .timeouts
                .saturating_add(turn.timeouts.load(Ordering::Relaxed));
        }
        stats
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::db::test_pool::TestPool;

    async fn sqlite() -> Database {
        let conn = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        Database::new(Arc::new(TestPool(conn)), 3)
    }

    /// Yields until `n` writers wait for the turn.
    async fn until_waiting(db: &Database, n: u32) {
        while db.pool_stats().waiting < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_batch_writer_waits_for_one_request_writer_not_the_queue() {
        let db = sqlite().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = db.acquire_writer().await.unwrap();
        let mut tasks = Vec::new();
        for name in ["request 1", "request 2", "request 3"] {
            let (db, order) = (db.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _lease = db.acquire_writer().await.unwrap();
                order.lock().unwrap().push(name);
            }));
        }
        until_waiting(&db, 3).await;
        let (db2, order2) = (db.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let _turn = db2.write_turn().await.unwrap();
            order2.lock().unwrap().push("batch");
        }));
        until_waiting(&db, 4).await;
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["request 1", "batch", "request 2", "request 3"]
        );
        assert_eq!(db.pool_stats().waiting, 0);
    }

    #[tokio::test]
    async fn a_turn_that_does_not_come_in_time_is_a_counted_timeout() {
        let db = sqlite()
            .await
            .with_acquire_timeout(Duration::from_millis(30));
        let held = db.write_turn().await.unwrap();
        assert!(matches!(
            db.acquire_writer().await,
            Err(PoolError::Timeout(_))
        ));
        assert!(matches!(db.write_turn().await, Err(PoolError::Timeout(_))));
        let stats = db.pool_stats();
        assert_eq!((stats.timeouts, stats.waiting), (2, 0));
        drop(held);
        assert!(db.acquire_writer().await.is_ok());
    }
}
