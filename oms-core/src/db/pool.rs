//! The [`ConnectionPool`] plugin trait and the connection lease it hands out.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, TransactionTrait};
use serde::Serialize;

use super::PoolError;

/// Called by the pool after every statement with its duration and whether
/// it failed. Installed by the core; pool plugins must call it for every
/// statement they run (sea-orm pools do it with `set_metric_callback`).
pub type StatementObserver = Arc<dyn Fn(Duration, bool) + Send + Sync>;

/// Whatever a pool plugin holds while a connection is leased (a semaphore
/// permit, a driver connection...). Dropping it gives the connection back.
pub trait Lease: Send + Sync {}
impl<T: Send + Sync> Lease for T {}

/// A connection leased from a [`ConnectionPool`].
///
/// It dereferences to the sea-orm [`DatabaseConnection`], so the domain runs
/// statements and opens transactions on it directly. While it lives, one of
/// the pool's `max_connections` slots is reserved for its holder; dropping
/// it returns the slot (no manual release, also on error paths and panics).
pub struct PooledConnection {
    conn: DatabaseConnection,
    _lease: Box<dyn Lease>,
}

impl PooledConnection {
    /// Wraps a connection handle and the plugin's lease on it.
    pub fn new(conn: DatabaseConnection, lease: impl Lease + 'static) -> Self {
        Self {
            conn,
            _lease: Box::new(lease),
        }
    }
}

impl Deref for PooledConnection {
    type Target = DatabaseConnection;

    fn deref(&self) -> &DatabaseConnection {
        &self.conn
    }
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("backend", &self.conn.get_database_backend())
            .finish_non_exhaustive()
    }
}

/// A point-in-time view of a pool.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct PoolStats {
    /// Connections open (idle or in use).
    pub size: u32,
    /// Connections open and not in use.
    pub idle: u32,
    /// Leases currently held.
    pub in_use: u32,
    /// The configured minimum.
    pub min: u32,
    /// The configured maximum.
    pub max: u32,
    /// Callers waiting for a lease right now.
    pub waiting: u32,
    /// Acquires that gave up after `acquire_timeout_ms`, since start.
    pub timeouts: u64,
    /// Leases handed out since start.
    pub acquired: u64,
    /// 99th percentile of the time callers waited for a lease, ms.
    pub acquire_p99_ms: f64,
}

/// A pool of database connections: the storage plugin.
///
/// # Contract
/// - Implementations are `Send + Sync` and shared by every request.
/// - [`acquire`](Self::acquire) waits at most the configured
///   `database.acquire_timeout_ms`, then fails with [`PoolError::Timeout`];
///   it never blocks a thread (it is async all the way down).
/// - The lease goes back to the pool when the [`PooledConnection`] drops.
/// - Every statement run on a leased connection is reported to the
///   [`StatementObserver`] the pool was built with.
/// - [`close`](Self::close) waits for leased connections to return, then
///   closes them; later acquires fail with [`PoolError::Closed`].
///
/// A plugin also registers a factory (`oms_core::plugin::PoolPlugin`) that
/// gets the URL and the [`StatementObserver`]; see `docs/plugins.md`.
///
/// # Examples
///
/// A pool of at most `max` leases over one sea-orm connection, a
/// semaphore permit as the lease:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use oms_core::db::{ConnectionPool, PoolError, PoolStats, PooledConnection};
/// use sea_orm::{DatabaseBackend, DatabaseConnection};
/// use tokio::sync::Semaphore;
///
/// struct OnePool {
///     conn: DatabaseConnection,
///     leases: Arc<Semaphore>,
///     max: u32,
///     timeout: Duration,
/// }
///
/// #[async_trait]
/// impl ConnectionPool for OnePool {
///     fn name(&self) -> &str {
///         "one"
///     }
///     fn backend(&self) -> DatabaseBackend {
///         self.conn.get_database_backend()
///     }
///     async fn acquire(&self) -> Result<PooledConnection, PoolError> {
///         let permit = tokio::time::timeout(self.timeout, self.leases.clone().acquire_owned())
///             .await
///             .map_err(|_| PoolError::Timeout(self.timeout))? // never wait longer
///             .map_err(|_| PoolError::Closed)?;
///         Ok(PooledConnection::new(self.conn.clone(), permit)) // dropped = returned
///     }
///     fn stats(&self) -> PoolStats {
///         let idle = self.leases.available_permits() as u32;
///         PoolStats { size: 1, idle, in_use: self.max - idle, max: self.max, ..PoolStats::default() }
///     }
///     async fn ping(&self) -> Result<(), PoolError> {
///         self.conn.ping().await.map_err(|e| PoolError::Unavailable(e.to_string()))
///     }
///     async fn close(&self) {
///         self.leases.close();
///         let _ = self.conn.close_by_ref().await;
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let pool = OnePool {
///     conn: sea_orm::Database::connect("sqlite::memory:").await.unwrap(),
///     leases: Arc::new(Semaphore::new(2)),
///     max: 2,
///     timeout: Duration::from_millis(50),
/// };
/// let a = pool.acquire().await.unwrap();
/// let _b = pool.acquire().await.unwrap();
/// assert_eq!(pool.stats().in_use, 2);
/// assert!(matches!(pool.acquire().await, Err(PoolError::Timeout(_))));
/// drop(a);
/// pool.ping().await.unwrap();
/// pool.close().await;
/// assert!(matches!(pool.acquire().await, Err(PoolError::Closed)));
/// # });
/// ```
#[async_trait]
pub trait ConnectionPool: Send + Sync + 'static {
    /// The plugin name this pool was registered under.
    fn name(&self) -> &str;

    /// Which SQL dialect the connections speak.
    fn backend(&self) -> DatabaseBackend;

    /// Leases a connection, waiting at most the acquire timeout.
    ///
    /// # Errors
    /// [`PoolError::Timeout`] when none became free in time,
    /// [`PoolError::Closed`] after [`close`](Self::close).
    async fn acquire(&self) -> Result<PooledConnection, PoolError>;

    /// Current size, idle count, waiters and counters.
    fn stats(&self) -> PoolStats;

    /// Checks that the database answers (`SELECT 1`). `/health` calls it
    /// through [`DatabaseHealth`](super::DatabaseHealth): one ping at a
    /// time, its answer reused briefly, so an implementation needs no
    /// throttling of its own.
    ///
    /// # Errors
    /// Whatever kept the database from answering.
    async fn ping(&self) -> Result<(), PoolError>;

    /// Runs `statements` in one transaction on one connection: all or none.
    /// Returns the rows affected by each. The default runs them in order;
    /// a driver that can pipeline may do better.
    ///
    /// # Errors
    /// The first failing statement's error; nothing is committed then.
    async fn execute_batch(&self, statements: Vec<Statement>) -> Result<Vec<u64>, PoolError> {
        let conn = self.acquire().await?;
        let txn = conn.begin().await?;
        let mut affected = Vec::with_capacity(statements.len());
        for statement in statements {
            affected.push(txn.execute_raw(statement).await?.rows_affected());
        }
        txn.commit().await?;
        Ok(affected)
    }

    /// Closes the pool (graceful shutdown).
    async fn close(&self);
}
