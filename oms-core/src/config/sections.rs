//! The configuration sections, one struct each, with their defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The whole OMS configuration, as merged from every layer and validated.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP server: bind address, threads, limits, shutdown.
    pub server: ServerConfig,
    /// Database and connection pool.
    pub database: DatabaseConfig,
    /// Order domain settings.
    pub orders: OrdersConfig,
    /// Audit pipeline.
    pub audit: AuditConfig,
    /// Metrics recorder and slow-request log.
    pub metrics: MetricsConfig,
    /// Read cache.
    pub cache: CacheConfig,
    /// Response compression.
    pub compression: CompressionConfig,
    /// Rate limiting.
    pub rate_limit: RateLimitConfig,
    /// API-key authentication.
    pub auth: AuthConfig,
    /// Directory relative paths (the default SQLite file) resolve against:
    /// the config file's directory, or the working directory.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[server]`: the HTTP listener and its limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8000`.
    pub bind: SocketAddr,
    /// Tokio worker threads. Default: the number of cores.
    pub workers: usize,
    /// Log level (`RUST_LOG` overrides it). Default `info`.
    pub log_level: LogLevel,
    /// Largest request body accepted, in bytes. Default 262144.
    pub max_body_bytes: u64,
    /// Longest a request may run before it is answered 503 `timeout`.
    pub request_timeout_ms: u64,
    /// Requests handled at once before new ones get 503 `overloaded`.
    pub max_concurrent_requests: usize,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_grace_ms: u64,
    /// Longest a client may take to send a request head (slowloris
    /// guard); the connection is closed after it. Default 10000.
    pub header_read_timeout_ms: u64,
    /// Longest gap between two pieces of a request body before the body
    /// read fails (slow-body guard). Default 10000.
    pub body_read_timeout_ms: u64,
    /// A connection that reads and writes nothing for this long is closed
    /// (idle keep-alive and flood guard); at least `request_timeout_ms`.
    /// Default 60000.
    pub idle_timeout_ms: u64,
    /// Connections served at once; further ones wait in the listen backlog
    /// until one closes. Default 16384.
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes; larger
    /// ones are refused with 431. At least 8192. Default 65536.
    pub max_header_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            log_level: LogLevel::Info,
            max_body_bytes: 262_144,
            request_timeout_ms: 30_000,
            max_concurrent_requests: 4_096,
            shutdown_grace_ms: 10_000,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 16_384,
            max_header_bytes: 65_536,
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// The level as `tracing`'s filter syntax spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// `[database]`: where data lives and how connections are pooled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path?mode=rwc` or `postgres://...`. Default: the SQLite
    /// file `oms.db` next to the config file.
    pub url: Option<String>,
    /// Connection-pool plugin name. Default `sea-orm`.
    pub pool: String,
    /// Connections kept open when idle. Default 5.
    pub min_connections: u32,
    /// Most connections open at once. Default 20.
    pub max_connections: u32,
    /// How long a request waits for a free connection before 503
    /// `database_unavailable`. Default 10000: leases are handed out in
    /// arrival order, and 1,000 clients creating orders on a 2-core host
    /// (~300 orders/s) wait ~3.5 s for one.
    pub acquire_timeout_ms: u64,
    /// Run pending migrations at start-up. Default true.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            pool: "sea-orm".to_owned(),
            min_connections: 5,
            max_connections: 20,
            acquire_timeout_ms: 10_000,
            migrate_on_start: true,
        }
    }
}

impl DatabaseConfig {
    /// The URL to connect to: the configured one, or the default SQLite file
    /// `oms.db` in `base_dir`.
    pub fn effective_url(&self, base_dir: &std::path::Path) -> String {
        match &self.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", base_dir.join("oms.db").display()),
        }
    }
}

/// `[orders]`: order-domain settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersConfig {
    /// How long an `Idempotency-Key` is remembered, in seconds. Default 86400.
    pub idempotency_ttl_s: u64,
    /// How often each instance deletes expired idempotency keys, in
    /// seconds; 0 turns the purge off (for hosts that run
    /// [`OrderService::purge_expired_idempotency_keys`](crate::domain::OrderService::purge_expired_idempotency_keys)
    /// on their own schedule). Default 300.
    pub idempotency_purge_interval_s: u64,
    /// Attempts for a transaction that hits a transient conflict (SQLite
    /// busy, PostgreSQL 40001/40P01). Default 8.
    pub max_attempts: u32,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            idempotency_ttl_s: 86_400,
            idempotency_purge_interval_s: 300,
            max_attempts: 8,
        }
    }
}

/// `[audit]`: the asynchronous audit pipeline.
///
/// Sub-tables (`[audit.jsonl]`, `[audit.nats]`, ...) belong to the sink
/// plugin of that name, which reads and validates its own table; any other
/// unknown key is an error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AuditConfig {
    /// Audit sink plugin name, used when `sinks` is empty. Default
    /// `database` (the table `GET /v1/audit` reads).
    pub sink: String,
    /// Several sinks at once (each batch goes to all). Overrides `sink`.
    pub sinks: Vec<String>,
    /// Background workers draining the queue. Default 4.
    pub workers: usize,
    /// Events held in memory at most (bounds memory: ~0.5 kB each).
    /// Default 8192.
    pub queue_capacity: usize,
    /// Most events handed to a sink at once. Default 512.
    pub batch_size: usize,
    /// Longest an event waits for its batch to fill. Default 200.
    pub flush_interval_ms: u64,
    /// What to do when the queue is full. Default `block`.
    pub on_full: OnFull,
    /// Attempts to write a batch to a failing sink before it is spilled.
    /// Default 3.
    pub retry_attempts: u32,
    /// Directory of the spill files (JSON lines of batches a sink could not
    /// take, replayed when it recovers). Default `audit-spill` next to the
    /// config file.
    pub spill_dir: Option<PathBuf>,
    /// The plugin-owned tables, by sink name.
    #[serde(flatten)]
    pub plugins: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            sink: "database".to_owned(),
            sinks: Vec::new(),
            workers: 4,
            queue_capacity: 8_192,
            batch_size: 512,
            flush_interval_ms: 200,
            on_full: OnFull::Block,
            retry_attempts: 3,
            spill_dir: None,
            plugins: std::collections::BTreeMap::new(),
        }
    }
}

impl AuditConfig {
    /// The spill directory: `spill_dir`, or `audit-spill` in `base_dir`.
    pub fn effective_spill_dir(&self, base_dir: &std::path::Path) -> PathBuf {
        self.spill_dir
            .clone()
            .unwrap_or_else(|| base_dir.join("audit-spill"))
    }

    /// The table `[audit.<name>]` deserialised as the plugin's settings
    /// (`T::default()` when absent).
    ///
    /// # Errors
    /// A [`ConfigIssue`](super::ConfigIssue) naming `audit.<name>` and the
    /// serde error (unknown key, wrong type).
    pub fn plugin_settings<T: serde::de::DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, super::ConfigIssue> {
        match self.plugins.get(name) {
            None => Ok(T::default()),
            Some(value) => serde_path_to_error::deserialize(value.clone()).map_err(|err| {
                let path = err.path().to_string();
                let key = if path == "." {
                    format!("audit.{name}")
                } else {
                    format!("audit.{name}.{path}")
                };
                super::ConfigIssue {
                    key,
                    value: value.to_string(),
                    allowed: err.into_inner().to_string(),
                }
            }),
        }
    }

    /// The sink names in effect: `sinks` if given, else `[sink]`.
    pub fn sink_names(&self) -> Vec<String> {
        if self.sinks.is_empty() {
            vec![self.sink.clone()]
        } else {
            self.sinks.clone()
        }
    }
}

/// Behaviour of the audit queue when it is full.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFull {
    /// Wait for room: backpressure, never lose an event.
    Block,
    /// Drop the event and count it.
    Drop,
}

/// `[metrics]`: the metrics recorder and slow-request log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Per-request monitoring (timing headers, recorder, slow log).
    /// Default true; audit is not affected.
    pub enabled: bool,
    /// Metrics recorder plugin name. Default `builtin`.
    pub recorder: String,
    /// Requests slower than this are logged and kept. Default 500.
    pub slow_request_ms: u64,
    /// How many slow requests are kept. Default 100.
    pub slow_request_log_size: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            recorder: "builtin".to_owned(),
            slow_request_ms: 500,
            slow_request_log_size: 100,
        }
    }
}

/// `[cache]`: the in-process read cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Serve reads from the cache. Default true.
    pub enabled: bool,
    /// Entries kept at most. Default 10000.
    pub capacity: u64,
    /// Longest an entry lives. Default 5000.
    pub ttl_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            capacity: 10_000,
            ttl_ms: 5_000,
        }
    }
}

/// `[compression]`: response compression.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CompressionConfig {
    /// Compress responses. Default true.
    pub enabled: bool,
    /// Smallest body compressed, in bytes. Default 1024.
    pub min_bytes: usize,
    /// Algorithms offered, in order of preference.
    pub algorithms: Vec<CompressionAlgorithm>,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_bytes: 1_024,
            algorithms: vec![
                CompressionAlgorithm::Zstd,
                CompressionAlgorithm::Br,
                CompressionAlgorithm::Gzip,
            ],
        }
    }
}

/// A response compression algorithm.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum CompressionAlgorithm {
    Gzip,
    Br,
    Zstd,
}

/// `[rate_limit]`: per-caller token buckets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Enforce the limit. Default false.
    pub enabled: bool,
    /// Sustained requests per second per caller. Default 100.
    pub requests_per_second: u32,
    /// Requests a caller may make at once above the rate. Default 200.
    pub burst: u32,
    /// Per-caller budgets by token name: `[rate_limit.overrides.ops]`.
    pub overrides: std::collections::BTreeMap<String, RateLimitOverride>,
}

/// A caller's own budget.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitOverride {
    /// Sustained requests per second.
    pub requests_per_second: u32,
    /// Burst above the rate.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            requests_per_second: 100,
            burst: 200,
            overrides: std::collections::BTreeMap::new(),
        }
    }
}

/// `[auth]`: bearer-token authentication.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a token. Default false (allowed only on a loopback bind).
    pub enabled: bool,
    /// The accepted tokens, by digest.
    pub keys: Vec<ApiKeyConfig>,
}

/// One `[[auth.keys]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The caller's name: the audit actor and rate-limit key.
    pub name: String,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
    /// What the token may do.
    pub roles: Vec<Role>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// GET on products and orders.
    Read,
    /// Also POST/PATCH on products and orders.
    Write,
    /// Everything, including audit, debug and metrics.
    Admin,
}
