//! Assembling an OMS from a [`Config`]: plugins, database, router.
//!
//! ```no_run
//! # async fn run() -> Result<(), oms_core::OmsError> {
//! use oms_core::{Oms, config::Config};
//!
//! let oms = Oms::builder().config(Config::default()).build().await?;
//! // Mount the OMS under /oms next to the host's own routes:
//! let app = salvo::Router::new().push(salvo::Router::with_path("oms").push(oms.router()));
//! # let _ = app;
//! oms.shutdown().await;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::{Duration, Instant};

use crate::audit::{AuditPipeline, AuditSink, AuditStats};
use crate::cache::{CacheStats, ReadCache};
use crate::config::{Config, ConfigError};
use crate::db::{
    Database, DatabaseHealth, HEALTH_FRESH_FOR, PoolError, StatementObserver, migration, scope,
};
use crate::domain::{IdempotencyPurge, OrderService};
use crate::metrics::{MetricsRecorder, SlowLog, SystemMonitor};
use crate::plugin::{
    self, PluginError, PoolContext, PoolPlugin, RecorderPlugin, SinkContext, SinkPlugin,
};

/// Why an OMS could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OmsError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A selected plugin is unknown or failed to start.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Plugin(Vec<PluginError>),
    /// The database could not be reached.
    #[error("database: {0}")]
    Database(#[from] PoolError),
    /// The audit pipeline could not start (spill directory unusable).
    #[error("audit pipeline: {0}")]
    Audit(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(sea_orm::DbErr),
}

impl From<PluginError> for OmsError {
    fn from(err: PluginError) -> Self {
        OmsError::Plugin(vec![err])
    }
}

/// Everything a request needs, shared by all requests.
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The database handle.
    pub db: Database,
    /// The database's health for `/health` (one ping at a time, answers
    /// reused for [`HEALTH_FRESH_FOR`]).
    pub health: DatabaseHealth,
    /// The order domain service.
    pub orders: OrderService,
    /// The read cache.
    pub cache: ReadCache,
    /// The metrics recorder.
    pub recorder: Arc<dyn MetricsRecorder>,
    /// The audit pipeline feeding the configured sinks.
    pub audit: AuditPipeline,
    /// When this process started serving.
    pub started: Instant,
    /// Requests handled so far.
    pub requests: AtomicU64,
    /// Requests being handled now.
    pub in_flight: AtomicI64,
    /// The latest slow requests.
    pub slow: SlowLog,
    /// Host and process resources.
    pub system: Arc<SystemMonitor>,
    /// Deletes expired idempotency keys in the background
    /// (`orders.idempotency_purge_interval_s`; `None` when that is 0).
    pub idempotency_purge: Option<IdempotencyPurge>,
}

impl AppState {
    /// The read cache's counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The audit pipeline's counters.
    pub fn audit_stats(&self) -> AuditStats {
        self.audit.stats()
    }
}

/// Builds an [`Oms`]; see the module example.
#[derive(Debug, Default)]
pub struct OmsBuilder {
    config: Option<Config>,
}

impl OmsBuilder {
    /// Uses `config` (default: [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Validates the config, starts the selected plugins, connects and
    /// migrates the database.
    ///
    /// # Errors
    /// See [`OmsError`].
    pub async fn build(self) -> Result<Oms, OmsError> {
        let config = self.config.unwrap_or_default();
        config.validate()?;
        plugin::check_selected(&config).map_err(OmsError::Plugin)?;

        let recorder = (plugin::find::<RecorderPlugin>(&config.metrics.recorder)?.build)(&config)?;
        let observer: StatementObserver = {
            let recorder = recorder.clone();
            Arc::new(move |elapsed: Duration, failed: bool| {
                scope::record(elapsed);
                recorder.record_statement(elapsed, failed);
            })
        };
        let pool = (plugin::find::<PoolPlugin>(&config.database.pool)?.build)(PoolContext {
            config: &config,
            url: config.database.effective_url(&config.base_dir),
            observer: observer.clone(),
        })
        .await?;
        let db = Database::new(pool, config.orders.max_attempts)
            .with_acquire_timeout(Duration::from_millis(config.database.acquire_timeout_ms))
            .with_observer(observer);
        if config.database.migrate_on_start {
            let conn = db.acquire().await?;
            migration::migrate(&conn)
                .await
                .map_err(OmsError::Migration)?;
        }

        let mut sinks: Vec<Arc<dyn AuditSink>> = Vec::new();
        let ctx = SinkContext {
            config: &config,
            database: db.clone(),
        };
        for name in config.audit.sink_names() {
            sinks.push((plugin::find::<SinkPlugin>(&name)?.build)(&ctx).await?);
        }

        let spill_dir = config.audit.effective_spill_dir(&config.base_dir);
        let audit = AuditPipeline::start(&config.audit, sinks, spill_dir)
            .await
            .map_err(|e| OmsError::Audit(e.to_string()))?;

        let orders = OrderService::new(db.clone(), &config.orders);
        let idempotency_purge = match config.orders.idempotency_purge_interval_s {
            0 => None,
            secs => Some(IdempotencyPurge::start(
                orders.clone(),
                Duration::from_secs(secs),
            )),
        };

        Ok(Oms {
            state: Arc::new(AppState {
                orders,
                idempotency_purge,
                cache: ReadCache::new(&config.cache),
                slow: SlowLog::new(config.metrics.slow_request_log_size),
                config: Arc::new(config),
                health: DatabaseHealth::new(db.pool().clone(), HEALTH_FRESH_FOR),
                db,
                recorder,
                audit,
                started: Instant::now(),
                requests: AtomicU64::new(0),
                in_flight: AtomicI64::new(0),
                system: SystemMonitor::start(Duration::from_secs(1)),
            }),
        })
    }
}

/// A running OMS: its state and the router to serve it.
#[derive(Clone)]
pub struct Oms {
    state: Arc<AppState>,
}

impl std::fmt::Debug for Oms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oms")
            .field("db", &self.state.db)
            .finish_non_exhaustive()
    }
}

impl Oms {
    /// Starts building an OMS.
    pub fn builder() -> OmsBuilder {
        OmsBuilder::default()
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// The database handle.
    pub fn database(&self) -> &Database {
        &self.state.db
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The OMS routes, to mount in a host router under any prefix. Wrap
    /// them with [`Oms::telemetry`] to get the per-request headers.
    pub fn router(&self) -> salvo::Router {
        crate::http::router(self.state.clone())
    }

    /// The telemetry hoop (request id, timing headers, metrics, problem
    /// bodies for bare error statuses).
    pub fn telemetry(&self) -> crate::http::Telemetry {
        crate::http::Telemetry::new(self.state.clone())
    }

    /// A complete salvo service serving the OMS at the root.
    pub fn service(&self) -> salvo::Service {
        crate::http::service(self.state.clone(), None)
    }

    /// A complete service with `extra` routes next to the OMS's, under
    /// the same service-wide hoops (telemetry, compression, limits).
    pub fn service_with(&self, extra: salvo::Router) -> salvo::Service {
        crate::http::service(self.state.clone(), Some(extra))
    }

    /// The resource-limits hoop (concurrency cap, request deadline), for a
    /// host that mounts [`Oms::router`] itself.
    pub fn limits(&self) -> crate::http::Limits {
        crate::http::Limits::new(&self.state.config.server)
    }

    /// Drains the audit queue into every sink, flushes them, and closes
    /// the pool. Call after the server has stopped accepting and drained
    /// its requests.
    pub async fn shutdown(&self) {
        self.stop_background_tasks();
        self.state.audit.shutdown().await;
        self.state.db.pool().close().await;
    }

    /// [`shutdown`](Self::shutdown) finished within `limit` (a SIGTERM's
    /// grace period): audit batches the sinks have not taken by then go to
    /// the spill files (see [`AuditPipeline::shutdown_within`]), and the
    /// pool stops waiting for connections stuck in statements.
    pub async fn shutdown_within(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        self.stop_background_tasks();
        self.state.audit.shutdown_within(limit).await;
        if tokio::time::timeout_at(deadline, self.state.db.pool().close())
            .await
            .is_err()
        {
            tracing::warn!("shutdown deadline passed while closing the pool; exiting anyway");
        }
    }

    /// Stops the background work that uses the database (the idempotency
    /// purge), before the pool closes.
    fn stop_background_tasks(&self) {
        if let Some(purge) = &self.state.idempotency_purge {
            purge.stop();
        }
    }
}
