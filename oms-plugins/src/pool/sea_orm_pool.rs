//! The `sea-orm` pool: sqlx's pool behind sea-orm, for SQLite and
//! PostgreSQL, with a lease semaphore that enforces the acquire timeout
//! and counts waiters and timeouts.
//!
//! SQLite connections use WAL journaling, `synchronous = NORMAL`, a busy
//! timeout and a small page cache, so readers never block the single
//! writer, a writer waits for the lock instead of failing at once, and
//! memory stays flat as tables grow.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::BoxFuture;
use oms_core::db::{ConnectionPool, PoolError, PoolStats, PooledConnection};
use oms_core::plugin::{PluginError, PluginKind, PoolContext, PoolPlugin};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, DatabaseBackend, DatabaseConnection};
use tokio::sync::Semaphore;

use crate::metrics::histogram::{LatencyHistogram, nanos_to_ms};

/// The plugin name.
pub const NAME: &str = "sea-orm";

/// Per-connection SQLite page cache: negative means KiB (here 512 KiB).
const SQLITE_CACHE_KIB: &str = "-512";

/// How long a SQLite writer waits for the lock before `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle at least this long is pinged before it is
/// handed out. sqlx pings on every checkout by default: one more round trip
/// for every statement run outside a transaction and every transaction,
/// paid under load when connections are never idle and a dead one is least
/// likely.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// A sea-orm connection pool with leases.
#[derive(Debug)]
pub struct SeaOrmPool {
    db: DatabaseConnection,
    backend: DatabaseBackend,
    leases: Arc<Semaphore>,
    min: u32,
    max: u32,
    acquire_timeout: Duration,
    waiting: AtomicU32,
    timeouts: AtomicU64,
    acquired: AtomicU64,
    acquire_wait: LatencyHistogram,
}

impl SeaOrmPool {
    /// Connects to `ctx.url` with the pool settings of `ctx.config`.
    ///
    /// # Errors
    /// [`PoolError::Unavailable`] when the database cannot be reached.
    pub async fn connect(ctx: PoolContext<'_>) -> Result<Self, PoolError> {
        let cfg = &ctx.config.database;
        let acquire_timeout = Duration::from_millis(cfg.acquire_timeout_ms);
        let mut opts = ConnectOptions::new(ctx.url.clone());
        opts.max_connections(cfg.max_connections)
            .min_connections(cfg.min_connections)
            .acquire_timeout(acquire_timeout)
            .connect_timeout(acquire_timeout)
            .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
            .sqlx_logging(false);
        let backend = if ctx.url.starts_with("sqlite:") {
            opts.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
                    // Each connection keeps its own page cache (2 MiB by
                    // default); with WAL the OS page cache serves the rest,
                    // so a small one keeps memory flat as tables grow.
                    .pragma("cache_size", SQLITE_CACHE_KIB)
            });
            DatabaseBackend::Sqlite
        } else {
            DatabaseBackend::Postgres
        };
        let mut db = sea_orm::Database::connect(opts)
            .await
            .map_err(|e| PoolError::Unavailable(e.to_string()))?;
        let observer = ctx.observer.clone();
        db.set_metric_callback(move |info| observer(info.elapsed, info.failed));
        Ok(Self {
            db,
            backend,
            leases: Arc::new(Semaphore::new(cfg.max_connections as usize)),
            min: cfg.min_connections,
            max: cfg.max_connections,
            acquire_timeout,
            waiting: AtomicU32::new(0),
            timeouts: AtomicU64::new(0),
            acquired: AtomicU64::new(0),
            acquire_wait: LatencyHistogram::new(),
        })
    }

    fn size_and_idle(&self) -> (u32, u32) {
        match self.backend {
            DatabaseBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
            _ => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
        }
    }
}

/// Decrements the waiter count however the wait ends (also on cancel).
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl ConnectionPool for SeaOrmPool {
    fn name(&self) -> &str {
        NAME
    }

    fn backend(&self) -> DatabaseBackend {
        self.backend
    }

    async fn acquire(&self) -> Result<PooledConnection, PoolError> {
        let permit = match self.leases.clone().try_acquire_owned() {
            Ok(permit) => {
                self.acquire_wait.record_nanos(0);
                permit
            }
            Err(tokio::sync::TryAcquireError::Closed) => return Err(PoolError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                self.waiting.fetch_add(1, Ordering::Relaxed);
                let _waiting = Waiting(&self.waiting);
                let started = std::time::Instant::now();
                match tokio::time::timeout(
                    self.acquire_timeout,
                    self.leases.clone().acquire_owned(),
                )
                .await
                {
                    Ok(Ok(permit)) => {
                        self.acquire_wait.record(started.elapsed());
                        permit
                    }
                    Ok(Err(_)) => return Err(PoolError::Closed),
                    Err(_) => {
                        self.acquire_wait.record(started.elapsed());
                        self.timeouts.fetch_add(1, Ordering::Relaxed);
                        return Err(PoolError::Timeout(self.acquire_timeout));
                    }
                }
            }
        };
        self.acquired.fetch_add(1, Ordering::Relaxed);
        Ok(PooledConnection::new(self.db.clone(), permit))
    }

    fn stats(&self) -> PoolStats {
        let (size, idle) = self.size_and_idle();
        PoolStats {
            size,
            idle,
            in_use: self.max - self.leases.available_permits() as u32,
            min: self.min,
            max: self.max,
            waiting: self.waiting.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            acquired: self.acquired.load(Ordering::Relaxed),
            acquire_p99_ms: nanos_to_ms(self.acquire_wait.counts().quantile_nanos(0.99)),
        }
    }

    /// One `SELECT 1` on a pooled connection. `/health` does not call
    /// this once per probe: oms-core's `DatabaseHealth` runs one ping at a
    /// time and reuses its answer briefly.
    async fn ping(&self) -> Result<(), PoolError> {
        self.db
            .ping()
            .await
            .map_err(|e| PoolError::Unavailable(e.to_string()))
    }

    async fn close(&self) {
        self.leases.close();
        if let Err(err) = self.db.close_by_ref().await {
            tracing::warn!(%err, "closing the database pool");
        }
    }
}

fn build(ctx: PoolContext<'_>) -> BoxFuture<'_, Result<Arc<dyn ConnectionPool>, PluginError>> {
    async move {
        SeaOrmPool::connect(ctx)
            .await
            .map(|pool| Arc::new(pool) as Arc<dyn ConnectionPool>)
            .map_err(|e| PluginError::Build {
                kind: PluginKind::Pool,
                name: NAME.to_owned(),
                message: e.to_string(),
            })
    }
    .boxed()
}

inventory::submit! {
    PoolPlugin {
        name: NAME,
        description: "sea-orm/sqlx pool for SQLite (WAL, busy timeout) and PostgreSQL; leases with acquire timeout",
        settings: oms_core::plugin::no_settings,
        build,
    }
}
