//! The [`MetricsRecorder`] plugin trait.

use std::time::Duration;

use serde::Serialize;

/// One finished request, as the timing middleware reports it.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Route template (bounded cardinality), never the raw path.
    pub route: &'a str,
    /// Response status code.
    pub status: u16,
    /// Time spent handling the request.
    pub duration: Duration,
    /// Time spent in the database.
    pub db_time: Duration,
    /// Statements run.
    pub db_statements: u64,
}

/// Per-route figures in a [`MetricsSnapshot`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RouteSnapshot {
    /// Requests finished.
    pub count: u64,
    /// Of which answered 5xx or 4xx.
    pub errors: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// What `/debug/performance` shows of requests and statements.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MetricsSnapshot {
    /// Requests finished since start.
    pub requests_total: u64,
    /// Per route template, keyed `"METHOD /route"`.
    pub routes: std::collections::BTreeMap<String, RouteSnapshot>,
    /// Statements run since start.
    pub statements: u64,
    /// Statement latency median, ms.
    pub statement_p50_ms: f64,
    /// Statement latency 95th percentile, ms.
    pub statement_p95_ms: f64,
    /// Statement latency 99th percentile, ms.
    pub statement_p99_ms: f64,
}

/// Collects request and database figures.
///
/// # Contract
/// - `Send + Sync`; called on the request path by every request, so every
///   `record_*` method must be cheap and must not block or lock for long
///   (atomics, sharded or thread-local storage).
/// - Labels have bounded cardinality: the route template, never the path.
/// - [`snapshot`](Self::snapshot) and [`render_prometheus`](Self::render_prometheus)
///   are called by the debug and metrics endpoints; they may take longer.
/// - Nothing to flush at shutdown; a recorder cannot fail.
///
/// A plugin also registers a factory (`oms_core::plugin::RecorderPlugin`);
/// see `docs/plugins.md`.
///
/// # Examples
///
/// A recorder counting requests and statements with atomics only:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
/// use std::time::Duration;
/// use oms_core::metrics::{MetricsRecorder, MetricsSnapshot, RequestRecord};
///
/// #[derive(Default)]
/// struct Counting {
///     requests: AtomicU64,
///     statements: AtomicU64,
/// }
///
/// impl MetricsRecorder for Counting {
///     fn name(&self) -> &str {
///         "counting"
///     }
///     fn record_request(&self, _: &RequestRecord<'_>) {
///         self.requests.fetch_add(1, Relaxed); // on the request path: cheap
///     }
///     fn record_statement(&self, _: Duration, _: bool) {
///         self.statements.fetch_add(1, Relaxed);
///     }
///     fn snapshot(&self) -> MetricsSnapshot {
///         MetricsSnapshot {
///             requests_total: self.requests.load(Relaxed),
///             statements: self.statements.load(Relaxed),
///             ..MetricsSnapshot::default()
///         }
///     }
///     fn render_prometheus(&self) -> String {
///         format!("requests_total {}\n", self.requests.load(Relaxed))
///     }
/// }
///
/// let recorder = Counting::default();
/// recorder.record_request(&RequestRecord {
///     method: "GET",
///     route: "/v1/orders/{id}",
///     status: 200,
///     duration: Duration::from_millis(3),
///     db_time: Duration::from_millis(1),
///     db_statements: 1,
/// });
/// assert_eq!(recorder.snapshot().requests_total, 1);
/// assert_eq!(recorder.render_prometheus(), "requests_total 1\n");
/// ```
pub trait MetricsRecorder: Send + Sync + 'static {
    /// The recorder's plugin name.
    fn name(&self) -> &str;

    /// Records a finished request.
    fn record_request(&self, request: &RequestRecord<'_>);

    /// Records one database statement.
    fn record_statement(&self, elapsed: Duration, failed: bool);

    /// Figures for `/debug/performance`.
    fn snapshot(&self) -> MetricsSnapshot;

    /// The Prometheus text exposition of everything recorded.
    fn render_prometheus(&self) -> String;
}
