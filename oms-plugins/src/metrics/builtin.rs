//! The `builtin` metrics recorder.
//!
//! # Design
//!
//! - **Requests.** One series per `(method, route template, status code)`,
//!   looked up in a [`metrics_util::registry::Registry`] with a custom
//!   storage. The lookup key is built on the stack (the method as a one-byte
//!   enum, the route copied inline, the hash computed once); the registry
//!   takes a read lock on one of its shards, finds the series and records
//!   into it. Only the first request of a new series takes a shard write
//!   lock. Each series holds a fixed-bucket latency histogram of relaxed
//!   atomics (see below): recording is a binary search and two `fetch_add`s.
//!   A separate counter counts all requests.
//! - **Statements.** One histogram of the same kind plus a counter of
//!   failed statements; the statement count is the histogram's count.
//! - **Buckets.** Renard R40 bounds from 50 µs to 63 s (245 bounds, adjacent
//!   ratio at most 1.0714) plus `+Inf`: percentiles interpolated from them
//!   are within 7.1 % whatever the distribution, typically within 1 %. The
//!   Prometheus exposition lists every fourth bound (the R10 series, 62
//!   bounds plus `+Inf`) to keep scrapes small (under 10 MB and about
//!   1.5 ms for 1,000 series); cumulative counts at those bounds are exact.
//! - **Cardinality guard.** The route is a template, so the series count is
//!   bounded by design. Should a caller pass raw paths anyway, at most
//!   [`DEFAULT_MAX_SERIES`] (or [`BuiltinRecorder::with_max_series`])
//!   series are created; later new series are folded into the route
//!   [`OVERFLOW_ROUTE`] (method and status kept) and a warning is logged
//!   once.
//! - **Readers.** [`snapshot`](MetricsRecorder::snapshot) and
//!   [`render_prometheus`](MetricsRecorder::render_prometheus) clone the
//!   series handles under each shard's read lock in turn, then read the
//!   atomics without any lock. The exposition is built in one `String`
//!   from pre-rendered pieces.
//!
//! # Exposition
//!
//! ```text
//! http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/v1/products/{sku}",http_response_status_code="200",le="0.00005"} 0
//! ...
//! http_server_request_duration_seconds_bucket{...,le="+Inf"} 12
//! http_server_request_duration_seconds_sum{...} 0.0123
//! http_server_request_duration_seconds_count{...} 12
//! http_server_requests_total 12
//! oms_db_statement_duration_seconds_bucket{le="0.00005"} 3
//! ...
//! oms_db_statements_total 20
//! oms_db_statement_errors_total 0
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use metrics_util::registry::Registry;
use oms_core::config::Config;
use oms_core::metrics::{MetricsRecorder, MetricsSnapshot, RequestRecord, RouteSnapshot};
use oms_core::plugin::{PluginError, RecorderPlugin};

use super::histogram::{HistogramCounts, LatencyHistogram, duration_nanos, nanos_to_ms};
use super::prometheus::{exported_bucket_lines, push_header, push_histogram, push_sample};
use super::series::{Method, Series, SeriesKey, SeriesStorage};

/// The plugin name `metrics.recorder` selects this recorder by.
pub const NAME: &str = "builtin";

/// Default cap on the number of request series (see
/// [`BuiltinRecorder::with_max_series`]).
pub const DEFAULT_MAX_SERIES: usize = 4096;

/// The route label new series get once the series cap is reached.
pub const OVERFLOW_ROUTE: &str = "_OTHER";

const REQUEST_DURATION: &str = "http_server_request_duration_seconds";
const REQUESTS_TOTAL: &str = "http_server_requests_total";
const STATEMENT_DURATION: &str = "oms_db_statement_duration_seconds";
const STATEMENTS_TOTAL: &str = "oms_db_statements_total";
const STATEMENT_ERRORS_TOTAL: &str = "oms_db_statement_errors_total";

/// Keeps a hot counter on its own cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// The `builtin` recorder: lock-free per-series latency histograms. See
/// the [module documentation](self) for the design.
///
/// ```
/// use std::time::Duration;
/// use oms_core::metrics::{MetricsRecorder, RequestRecord};
/// use oms_plugins::metrics::BuiltinRecorder;
///
/// let recorder = BuiltinRecorder::new();
/// recorder.record_request(&RequestRecord {
///     method: "GET",
///     route: "/v1/products/{sku}",
///     status: 200,
///     duration: Duration::from_micros(420),
///     db_time: Duration::from_micros(200),
///     db_statements: 1,
/// });
/// let snapshot = recorder.snapshot();
/// assert_eq!(snapshot.routes["GET /v1/products/{sku}"].count, 1);
/// assert!(recorder.render_prometheus().contains("http_server_requests_total 1\n"));
/// ```
pub struct BuiltinRecorder {
    registry: Registry<SeriesKey, SeriesStorage>,
    max_series: usize,
    requests: Padded<AtomicU64>,
    statements: Box<LatencyHistogram>,
    statement_errors: Padded<AtomicU64>,
    overflow_warned: AtomicBool,
}

impl fmt::Debug for BuiltinRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltinRecorder")
            .field("series", &self.registry.storage().created())
            .field("max_series", &self.max_series)
            .field("requests", &self.requests.0.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for BuiltinRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl BuiltinRecorder {
    /// An empty recorder with the [`DEFAULT_MAX_SERIES`] cap.
    pub fn new() -> Self {
        Self::with_max_series(DEFAULT_MAX_SERIES)
    }

    /// An empty recorder that creates at most `max_series` request series
    /// (a safety net: the route is meant to be a template). Requests of
    /// further new `(method, route, status)` combinations are recorded under
    /// the route [`OVERFLOW_ROUTE`].
    pub fn with_max_series(max_series: usize) -> Self {
        Self {
            registry: Registry::new(SeriesStorage::default()),
            max_series,
            requests: Padded(AtomicU64::new(0)),
            statements: Box::new(LatencyHistogram::new()),
            statement_errors: Padded(AtomicU64::new(0)),
            overflow_warned: AtomicBool::new(false),
        }
    }

    /// Number of request series created so far.
    pub fn series_count(&self) -> usize {
        self.registry.storage().created()
    }

    fn record_overflow(&self, method: Method, route: &str, status: u16, nanos: u64) {
        if !self.overflow_warned.swap(true, Relaxed) {
            tracing::warn!(
                max_series = self.max_series,
                route,
                "metrics: too many request series; new ones are recorded under http_route=\"{OVERFLOW_ROUTE}\" \
                 (is a raw path being passed as the route template?)"
            );
        }
        let key = SeriesKey::new(method, OVERFLOW_ROUTE, status);
        self.registry
            .get_or_create_histogram(&key, |series| series.histogram.record_nanos(nanos));
    }

    /// Handles to every series, sorted by route, method and status.
    fn series(&self) -> Vec<Arc<Series>> {
        let mut all = Vec::with_capacity(self.series_count());
        self.registry
            .visit_histograms(|_, series| all.push(Arc::clone(series)));
        all.sort_unstable_by(|a, b| {
            (&a.route, a.method, a.status).cmp(&(&b.route, b.method, b.status))
        });
        all
    }
}

impl MetricsRecorder for BuiltinRecorder {
    fn name(&self) -> &str {
        NAME
    }

    #[inline]
    fn record_request(&self, request: &RequestRecord<'_>) {
        self.requests.0.fetch_add(1, Relaxed);
        let nanos = duration_nanos(request.duration);
        let method = Method::parse(request.method);
        let key = SeriesKey::new(method, request.route, request.status);
        if self.registry.storage().created() < self.max_series {
            self.registry
                .get_or_create_histogram(&key, |series| series.histogram.record_nanos(nanos));
        } else if let Some(series) = self.registry.get_histogram(&key) {
            series.histogram.record_nanos(nanos);
        } else {
            self.record_overflow(method, request.route, request.status, nanos);
        }
    }

    #[inline]
    fn record_statement(&self, elapsed: Duration, failed: bool) {
        self.statements.record(elapsed);
        if failed {
            self.statement_errors.0.fetch_add(1, Relaxed);
        }
    }

    fn snapshot(&self) -> MetricsSnapshot {
        let mut merged: BTreeMap<String, (HistogramCounts, u64)> = BTreeMap::new();
        for series in self.series() {
            let counts = series.histogram.counts();
            let key = format!("{} {}", series.method.as_str(), series.route);
            let (total, errors) = merged.entry(key).or_default();
            if series.status >= 400 {
                *errors = errors.saturating_add(counts.count());
            }
            total.merge(&counts);
        }
        let routes = merged
            .into_iter()
            .map(|(key, (counts, errors))| {
                let route = RouteSnapshot {
                    count: counts.count(),
                    errors,
                    p50_ms: nanos_to_ms(counts.quantile_nanos(0.50)),
                    p95_ms: nanos_to_ms(counts.quantile_nanos(0.95)),
                    p99_ms: nanos_to_ms(counts.quantile_nanos(0.99)),
                    max_ms: nanos_to_ms(counts.max_nanos as f64),
                };
                (key, route)
            })
            .collect();
        let statements = self.statements.counts();
        MetricsSnapshot {
            requests_total: self.requests.0.load(Relaxed),
            routes,
            statements: statements.count(),
            statement_p50_ms: nanos_to_ms(statements.quantile_nanos(0.50)),
            statement_p95_ms: nanos_to_ms(statements.quantile_nanos(0.95)),
            statement_p99_ms: nanos_to_ms(statements.quantile_nanos(0.99)),
        }
    }

    fn render_prometheus(&self) -> String {
        let series = self.series();
        // Upper bound of a line without its labels: the name, `_bucket{`,
        // `,le="0.000056"} ` and a 20-digit count; no reallocation.
        let line_bytes = REQUEST_DURATION.len() + 48;
        let lines_per_histogram = exported_bucket_lines() + 2;
        let label_bytes: usize = series.iter().map(|s| s.labels.len()).sum();
        let estimate = lines_per_histogram * (series.len() * line_bytes + label_bytes) + 8 * 1024;
        let mut out = String::with_capacity(estimate);

        if !series.is_empty() {
            push_header(
                &mut out,
                REQUEST_DURATION,
                "histogram",
                "Duration of HTTP server requests handled by this process.",
            );
            for s in &series {
                push_histogram(&mut out, REQUEST_DURATION, &s.labels, &s.histogram.counts());
            }
        }

        push_header(
            &mut out,
            REQUESTS_TOTAL,
            "counter",
            "HTTP requests finished by this process.",
        );
        push_sample(&mut out, REQUESTS_TOTAL, self.requests.0.load(Relaxed));

        let statements = self.statements.counts();
        push_header(
            &mut out,
            STATEMENT_DURATION,
            "histogram",
            "Duration of database statements run by this process.",
        );
        push_histogram(&mut out, STATEMENT_DURATION, "", &statements);
        push_header(
            &mut out,
            STATEMENTS_TOTAL,
            "counter",
            "Database statements run by this process.",
        );
        push_sample(&mut out, STATEMENTS_TOTAL, statements.count());
        push_header(
            &mut out,
            STATEMENT_ERRORS_TOTAL,
            "counter",
            "Database statements that failed.",
        );
        push_sample(
            &mut out,
            STATEMENT_ERRORS_TOTAL,
            self.statement_errors.0.load(Relaxed),
        );
        out
    }
}

fn build(_config: &Config) -> Result<Arc<dyn MetricsRecorder>, PluginError> {
    Ok(Arc::new(BuiltinRecorder::new()))
}

inventory::submit! {
    RecorderPlugin {
        name: NAME,
        description: "in-process lock-free latency histograms per method, route and status; \
                      /debug/performance percentiles and Prometheus /metrics",
        settings: oms_core::plugin::no_settings,
        build,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn request(
        method: &'static str,
        route: &'static str,
        status: u16,
        duration: Duration,
    ) -> RequestRecord<'static> {
        RequestRecord {
            method,
            route,
            status,
            duration,
            db_time: Duration::ZERO,
            db_statements: 0,
        }
    }

    fn assert_close(what: &str, got: f64, want: f64, tolerance: f64) {
        let err = (got - want).abs() / want;
        assert!(
            err <= tolerance,
            "{what}: got {got}, want {want} (error {:.2} %)",
            err * 100.0
        );
    }

    #[test]
    fn registered_as_builtin() {
        let plugin = oms_core::plugin::find::<RecorderPlugin>("builtin").expect("registered");
        let recorder = (plugin.build)(&Config::default()).expect("builds");
        assert_eq!(recorder.name(), "builtin");
        assert!(!plugin.description.is_empty());
    }

    #[test]
    fn percentiles_of_uniform_distribution() {
        let r = BuiltinRecorder::new();
        // 10 µs .. 100 ms in 10 µs steps: p50 = 50 ms, p95 = 95 ms, p99 = 99 ms.
        for i in 1..=10_000u64 {
            r.record_request(&request("GET", "/u", 200, Duration::from_micros(i * 10)));
            r.record_statement(Duration::from_micros(i * 10), false);
        }
        let s = r.snapshot();
        let route = &s.routes["GET /u"];
        assert_eq!(route.count, 10_000);
        assert_close("p50", route.p50_ms, 50.0, 0.02);
        assert_close("p95", route.p95_ms, 95.0, 0.02);
        assert_close("p99", route.p99_ms, 99.0, 0.02);
        assert_eq!(route.max_ms, 100.0);
        assert_eq!(s.statements, 10_000);
        assert_close("statement p50", s.statement_p50_ms, 50.0, 0.02);
        assert_close("statement p95", s.statement_p95_ms, 95.0, 0.02);
        assert_close("statement p99", s.statement_p99_ms, 99.0, 0.02);
    }

    #[test]
    fn percentiles_of_exponential_and_lognormal_distributions() {
        let n = 20_000;
        // Exponential, mean 5 ms, by its inverse CDF at evenly spaced
        // probabilities: p = -5 ms * ln(1 - q).
        let exp = BuiltinRecorder::new();
        // Log-normal, median 2 ms, sigma 1: spans 50 µs .. 200 ms.
        let lognormal = BuiltinRecorder::new();
        for i in 0..n {
            let q = (f64::from(i) + 0.5) / f64::from(n);
            let ms = -5.0 * (1.0 - q).ln();
            exp.record_statement(Duration::from_secs_f64(ms / 1e3), false);
            let ms = 2.0 * (inverse_normal_cdf(q)).exp();
            lognormal.record_request(&request(
                "GET",
                "/l",
                200,
                Duration::from_secs_f64(ms / 1e3),
            ));
        }
        let s = exp.snapshot();
        assert_close("exp p50", s.statement_p50_ms, 5.0 * 2f64.ln(), 0.03);
        assert_close("exp p95", s.statement_p95_ms, 5.0 * 20f64.ln(), 0.03);
        assert_close("exp p99", s.statement_p99_ms, 5.0 * 100f64.ln(), 0.03);
        let s = lognormal.snapshot();
        let route = &s.routes["GET /l"];
        assert_close("lognormal p50", route.p50_ms, 2.0, 0.03);
        assert_close(
            "lognormal p95",
            route.p95_ms,
            2.0 * 1.644_853_6f64.exp(),
            0.03,
        );
        assert_close(
            "lognormal p99",
            route.p99_ms,
            2.0 * 2.326_347_9f64.exp(),
            0.03,
        );
    }

    /// Acklam's rational approximation (relative error < 1.2e-9).
    fn inverse_normal_cdf(p: f64) -> f64 {
        const A: [f64; 6] = [
            -3.969_683_028_665_376e1,
            2.209_460_984_245_205e2,
            -2.759_285_104_469_687e2,
            1.383_577_518_672_69e2,
            -3.066_479_806_614_716e1,
            2.506_628_277_459_239,
        ];
        const B: [f64; 5] = [
            -5.447_609_879_822_406e1,
            1.615_858_368_580_409e2,
            -1.556_989_798_598_866e2,
            6.680_131_188_771_972e1,
            -1.328_068_155_288_572e1,
        ];
        const C: [f64; 6] = [
            -7.784_894_002_430_293e-3,
            -3.223_964_580_411_365e-1,
            -2.400_758_277_161_838,
            -2.549_732_539_343_734,
            4.374_664_141_464_968,
            2.938_163_982_698_783,
        ];
        const D: [f64; 4] = [
            7.784_695_709_041_462e-3,
            3.224_671_290_700_398e-1,
            2.445_134_137_142_996,
            3.754_408_661_907_416,
        ];
        let tail = |q: f64| {
            (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
                / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
        };
        if p < 0.02425 {
            tail((-2.0 * p.ln()).sqrt())
        } else if p > 1.0 - 0.02425 {
            -tail((-2.0 * (1.0 - p).ln()).sqrt())
        } else {
            let q = p - 0.5;
            let r = q * q;
            (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
                / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
        }
    }

    #[test]
    fn routes_are_aggregated_by_method_and_route() {
        let r = BuiltinRecorder::new();
        let ms = Duration::from_millis;
        r.record_request(&request("GET", "/v1/products/{sku}", 200, ms(1)));
        r.record_request(&request("GET", "/v1/products/{sku}", 304, ms(2)));
        r.record_request(&request("GET", "/v1/products/{sku}", 404, ms(3)));
        r.record_request(&request("PATCH", "/v1/products/{sku}", 200, ms(4)));
        r.record_request(&request("GET", "/health", 200, ms(5)));
        r.record_request(&request("BREW", "/health", 418, ms(6)));
        let s = r.snapshot();
        let keys: Vec<_> = s.routes.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "GET /health",
                "GET /v1/products/{sku}",
                "PATCH /v1/products/{sku}",
                "_OTHER /health"
            ]
        );
        let sku = &s.routes["GET /v1/products/{sku}"];
        assert_eq!((sku.count, sku.errors, sku.max_ms), (3, 1, 3.0));
        assert_eq!(s.routes["PATCH /v1/products/{sku}"].count, 1);
        assert_eq!(s.routes["_OTHER /health"].errors, 1);
        assert_eq!(s.requests_total, 6);
        assert_eq!(r.series_count(), 6);
    }

    #[test]
    fn errors_are_statuses_from_400() {
        let r = BuiltinRecorder::new();
        for status in [200, 201, 304, 399, 400, 401, 422, 429, 500, 503] {
            r.record_request(&request(
                "POST",
                "/v1/orders",
                status,
                Duration::from_millis(1),
            ));
        }
        r.record_statement(Duration::from_millis(1), true);
        r.record_statement(Duration::from_millis(1), false);
        let s = r.snapshot();
        assert_eq!(s.routes["POST /v1/orders"].count, 10);
        assert_eq!(s.routes["POST /v1/orders"].errors, 6);
        assert_eq!(s.statements, 2);
        let text = r.render_prometheus();
        assert!(text.contains("\noms_db_statements_total 2\n"), "{text}");
        assert!(
            text.contains("\noms_db_statement_errors_total 1\n"),
            "{text}"
        );
    }

    #[test]
    fn empty_recorder_snapshot_and_exposition() {
        let r = BuiltinRecorder::new();
        assert_eq!(r.snapshot(), MetricsSnapshot::default());
        let text = r.render_prometheus();
        assert!(!text.contains(REQUEST_DURATION), "{text}");
        assert!(text.contains("http_server_requests_total 0\n"));
        assert!(text.contains("oms_db_statement_duration_seconds_count 0\n"));
    }

    /// `(le, cumulative)` of every bucket line of the series whose bucket
    /// lines start with `prefix`.
    fn buckets(text: &str, prefix: &str) -> Vec<(f64, u64)> {
        text.lines()
            .filter_map(|line| line.strip_prefix(prefix))
            .map(|rest| {
                let (le, value) = rest.split_once("\"} ").expect("bucket line shape");
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le")
                };
                (le, value.parse().expect("count"))
            })
            .collect()
    }

    fn sample(text: &str, name_and_labels: &str) -> String {
        let prefix = format!("{name_and_labels} ");
        let values: Vec<_> = text
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect();
        assert_eq!(values.len(), 1, "{name_and_labels} in\n{text}");
        values[0].to_owned()
    }

    #[test]
    fn prometheus_exposition() {
        let r = BuiltinRecorder::new();
        for i in 1..=1000u64 {
            r.record_request(&request(
                "GET",
                "/v1/orders/{id}",
                200,
                Duration::from_micros(i * 37),
            ));
        }
        r.record_request(&request(
            "GET",
            "/v1/orders/{id}",
            404,
            Duration::from_secs(100),
        ));
        r.record_request(&request(
            "DELETE",
            "/we\"ird\\route\n",
            500,
            Duration::from_micros(10),
        ));
        r.record_statement(Duration::from_micros(300), false);
        r.record_statement(Duration::from_micros(700), true);
        let text = r.render_prometheus();

        for line in [
            "# HELP http_server_request_duration_seconds ",
            "# TYPE http_server_request_duration_seconds histogram",
            "# HELP http_server_requests_total ",
            "# TYPE http_server_requests_total counter",
            "# TYPE oms_db_statement_duration_seconds histogram",
            "# TYPE oms_db_statements_total counter",
            "# TYPE oms_db_statement_errors_total counter",
            "http_server_requests_total 1002",
            "oms_db_statements_total 2",
            "oms_db_statement_errors_total 1",
            r#"http_server_request_duration_seconds_bucket{http_request_method="DELETE",http_route="/we\"ird\\route\n",http_response_status_code="500",le="0.00005"} 1"#,
            r#"oms_db_statement_duration_seconds_bucket{le="+Inf"} 2"#,
            "oms_db_statement_duration_seconds_sum 0.001",
            "oms_db_statement_duration_seconds_count 2",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(line)),
                "missing {line:?} in\n{text}"
            );
        }
        // Every TYPE once, every line either a comment or a sample.
        assert_eq!(text.matches("# TYPE ").count(), 5);
        assert!(text.ends_with('\n'));
        assert!(!text.lines().any(str::is_empty));

        let labels = r#"http_request_method="GET",http_route="/v1/orders/{id}",http_response_status_code="200""#;
        let prefix = format!("{REQUEST_DURATION}_bucket{{{labels},le=\"");
        let series = buckets(&text, &prefix);
        assert_eq!(series.len(), exported_bucket_lines());
        assert!(series.windows(2).all(|w| w[0].0 < w[1].0), "le ascending");
        assert!(series.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative");
        assert_eq!(series.last(), Some(&(f64::INFINITY, 1000)));
        assert_eq!(
            sample(&text, &format!("{REQUEST_DURATION}_count{{{labels}}}")),
            "1000"
        );
        // Sum of 37 µs * (1 + ... + 1000) = 18.5185 s.
        assert_eq!(
            sample(&text, &format!("{REQUEST_DURATION}_sum{{{labels}}}")),
            "18.5185"
        );
        // 37 µs * 1000 = 37 ms: everything at or below le="0.04".
        assert!(series.iter().any(|&(le, c)| le == 0.04 && c == 1000));
        assert!(series.iter().any(|&(le, c)| le == 0.025 && c < 1000));

        let slow = r#"http_request_method="GET",http_route="/v1/orders/{id}",http_response_status_code="404""#;
        let slow = buckets(&text, &format!("{REQUEST_DURATION}_bucket{{{slow},le=\""));
        assert_eq!(slow[slow.len() - 2], (63.0, 0));
        assert_eq!(slow[slow.len() - 1], (f64::INFINITY, 1));
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        let r = BuiltinRecorder::new();
        let threads = 4u64;
        let per_thread = 20_000u64;
        let routes = ["/a", "/b", "/c"];
        std::thread::scope(|scope| {
            for t in 0..threads {
                let r = &r;
                scope.spawn(move || {
                    for i in 0..per_thread {
                        let route = routes[(i % 3) as usize];
                        let status = if i % 10 == 0 { 500 } else { 200 };
                        r.record_request(&request(
                            "GET",
                            route,
                            status,
                            Duration::from_micros(t * 100 + i % 1000),
                        ));
                        r.record_statement(Duration::from_micros(i % 500), i % 7 == 0);
                    }
                });
            }
        });
        let total = threads * per_thread;
        let s = r.snapshot();
        assert_eq!(s.requests_total, total);
        assert_eq!(s.routes.values().map(|r| r.count).sum::<u64>(), total);
        assert_eq!(
            s.routes.values().map(|r| r.errors).sum::<u64>(),
            threads * per_thread.div_ceil(10)
        );
        assert_eq!(s.statements, total);
        let text = r.render_prometheus();
        let errors = threads * per_thread.div_ceil(7);
        assert!(text.contains(&format!("\noms_db_statement_errors_total {errors}\n")));
        let counted: u64 = text
            .lines()
            .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(counted, total);
        assert_eq!(r.series_count(), 6);
    }

    #[test]
    fn series_cap_folds_new_series_into_overflow() {
        let r = BuiltinRecorder::with_max_series(2);
        let routes: Vec<String> = (0..10).map(|i| format!("/raw/path/{i}")).collect();
        for route in &routes {
            r.record_request(&RequestRecord {
                method: "GET",
                route,
                status: 200,
                duration: Duration::from_millis(1),
                db_time: Duration::ZERO,
                db_statements: 0,
            });
        }
        // Existing series keep recording after the cap.
        r.record_request(&request(
            "GET",
            "/raw/path/0",
            200,
            Duration::from_millis(1),
        ));
        let s = r.snapshot();
        assert_eq!(s.requests_total, 11);
        assert_eq!(s.routes["GET /raw/path/0"].count, 2);
        assert_eq!(s.routes["GET _OTHER"].count, 8);
        assert_eq!(r.series_count(), 3);
    }

    #[test]
    fn long_and_odd_routes() {
        let r = BuiltinRecorder::new();
        let long = format!("/{}", "segment/".repeat(40));
        for _ in 0..3 {
            r.record_request(&RequestRecord {
                method: "GET",
                route: &long,
                status: 200,
                duration: Duration::MAX,
                db_time: Duration::ZERO,
                db_statements: 0,
            });
        }
        r.record_request(&request("GET", "", 0, Duration::ZERO));
        let s = r.snapshot();
        assert_eq!(s.routes[&format!("GET {long}")].count, 3);
        assert_eq!(s.routes["GET "].count, 1);
        assert_eq!(r.series_count(), 2);
        assert!(r.render_prometheus().contains("le=\"+Inf\"} 3\n"));
    }

    /// Not a benchmark (debug build, shared machine): prints what the hot
    /// path and the exposition cost here. Run with `--nocapture`.
    #[test]
    fn timing() {
        let r = BuiltinRecorder::new();
        let routes: Vec<String> = (0..100)
            .map(|i| format!("/v1/resource{i}/{{id}}"))
            .collect();
        let statuses = [200, 201, 204, 304, 400, 404, 409, 422, 500, 503];
        for route in &routes {
            for &status in &statuses {
                r.record_request(&RequestRecord {
                    method: "GET",
                    route,
                    status,
                    duration: Duration::from_micros(500),
                    db_time: Duration::ZERO,
                    db_statements: 0,
                });
            }
        }
        assert_eq!(r.series_count(), 1000);

        let n = 200_000u32;
        let start = Instant::now();
        for i in 0..n {
            let route = &routes[(i % 100) as usize];
            r.record_request(&RequestRecord {
                method: "GET",
                route,
                status: statuses[(i % 10) as usize],
                duration: Duration::from_micros(u64::from(i % 5000)),
                db_time: Duration::ZERO,
                db_statements: 0,
            });
        }
        let per_request = start.elapsed() / n;
        let start = Instant::now();
        for i in 0..n {
            r.record_statement(Duration::from_micros(u64::from(i % 5000)), false);
        }
        let per_statement = start.elapsed() / n;

        let mut best_render = Duration::MAX;
        let mut bytes = 0;
        for _ in 0..5 {
            let start = Instant::now();
            let text = r.render_prometheus();
            best_render = best_render.min(start.elapsed());
            bytes = text.len();
        }
        let start = Instant::now();
        let snapshot = r.snapshot();
        let snapshot_time = start.elapsed();
        assert_eq!(snapshot.routes.len(), 100);
        println!(
            "builtin recorder ({} build): record_request {per_request:?}/op, record_statement {per_statement:?}/op; \
             1000 series: render_prometheus {best_render:?} ({bytes} bytes), snapshot {snapshot_time:?}",
            if cfg!(debug_assertions) {
                "debug assertions on"
            } else {
                "release"
            }
        );
    }
}
