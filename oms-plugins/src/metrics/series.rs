//! Request series: the key the registry looks them up by, the storage that
//! creates them, and the per-series state.
//!
//! The key is built on the stack for every request: the method becomes a
//! one-byte enum, the route is copied into an inline buffer (no heap
//! allocation unless the route is longer than [`INLINE_ROUTE`] bytes), and
//! its hash is computed once. The registry's sharded map is then read with
//! that precomputed hash.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use metrics::HistogramFn;
use metrics::atomics::AtomicU64;
use metrics_util::registry::Storage;
use metrics_util::{DefaultHashable, Hashable, KeyHasher};

use super::histogram::LatencyHistogram;

/// Routes up to this many bytes are kept inline in a [`SeriesKey`].
pub(crate) const INLINE_ROUTE: usize = 96;

/// The HTTP method, as OpenTelemetry's `http.request.method` wants it:
/// the standard methods by name, anything else as `_OTHER` (which also
/// bounds the cardinality that arbitrary client methods could cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Method {
    Connect,
    Delete,
    Get,
    Head,
    Options,
    Patch,
    Post,
    Put,
    Trace,
    Other,
}

impl Method {
    /// Classifies a method name (case-sensitive, as HTTP methods are).
    #[inline]
    pub(crate) fn parse(method: &str) -> Self {
        match method {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PATCH" => Self::Patch,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "HEAD" => Self::Head,
            "OPTIONS" => Self::Options,
            "CONNECT" => Self::Connect,
            "TRACE" => Self::Trace,
            _ => Self::Other,
        }
    }

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Delete => "DELETE",
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Options => "OPTIONS",
            Self::Patch => "PATCH",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Trace => "TRACE",
            Self::Other => "_OTHER",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RouteText {
    /// `bytes[..len]` is the route; the rest is zero, so the derived
    /// equality compares routes.
    Inline { len: u8, bytes: [u8; INLINE_ROUTE] },
    /// Routes longer than [`INLINE_ROUTE`].
    Heap(Box<str>),
}

/// What identifies a request series: method, route template, status.
///
/// `Hash` writes only the precomputed hash, as the registry's no-op
/// [`KeyHasher`] requires (it rehashes stored keys when it grows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeriesKey {
    hash: u64,
    status: u16,
    method: Method,
    route: RouteText,
}

impl SeriesKey {
    /// The key for a request. Allocates only for routes over
    /// [`INLINE_ROUTE`] bytes.
    #[inline]
    pub(crate) fn new(method: Method, route: &str, status: u16) -> Self {
        let hash = DefaultHashable((method, route, status)).hashable();
        let route = match u8::try_from(route.len()) {
            Ok(len) if route.len() <= INLINE_ROUTE => {
                let mut bytes = [0u8; INLINE_ROUTE];
                bytes[..route.len()].copy_from_slice(route.as_bytes());
                RouteText::Inline { len, bytes }
            }
            _ => RouteText::Heap(route.into()),
        };
        Self {
            hash,
            status,
            method,
            route,
        }
    }

    /// The route template.
    pub(crate) fn route(&self) -> std::borrow::Cow<'_, str> {
        match &self.route {
            RouteText::Inline { len, bytes } => {
                let len = usize::from(*len).min(INLINE_ROUTE);
                // Always valid: copied whole from a `&str`.
                String::from_utf8_lossy(&bytes[..len])
            }
            RouteText::Heap(route) => std::borrow::Cow::Borrowed(route),
        }
    }
}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Hashable for SeriesKey {
    type Hasher = KeyHasher;

    #[inline]
    fn hashable(&self) -> u64 {
        self.hash
    }
}

/// One request series: its labels and its latency histogram.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) method: Method,
    pub(crate) route: Box<str>,
    pub(crate) status: u16,
    /// The Prometheus label pairs, escaped, without braces:
    /// `http_request_method="GET",http_route="/x",http_response_status_code="200"`.
    pub(crate) labels: Box<str>,
    pub(crate) histogram: LatencyHistogram,
}

impl Series {
    fn new(key: &SeriesKey) -> Self {
        let route = key.route();
        let mut labels = String::with_capacity(80 + route.len());
        labels.push_str("http_request_method=\"");
        labels.push_str(key.method.as_str());
        labels.push_str("\",http_route=\"");
        push_escaped_label_value(&mut labels, &route);
        labels.push_str("\",http_response_status_code=\"");
        // Writing to a String cannot fail.
        let _ = write!(labels, "{}", key.status);
        labels.push('"');
        Self {
            method: key.method,
            route: route.into(),
            status: key.status,
            labels: labels.into_boxed_str(),
            histogram: LatencyHistogram::new(),
        }
    }
}

/// For completeness with the `metrics` ecosystem: records a value in
/// seconds (negative and NaN count as 0).
impl HistogramFn for Series {
    fn record(&self, seconds: f64) {
        let nanos = if seconds > 0.0 {
            // Saturating float-to-int conversion.
            (seconds * 1e9) as u64
        } else {
            0
        };
        self.histogram.record_nanos(nanos);
    }
}

/// Escapes a Prometheus label value: backslash, double quote and newline.
pub(crate) fn push_escaped_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Registry storage: request series as histograms (counters and gauges are
/// plain atomics, unused by the recorder). Counts the series it creates,
/// which happens only under the registry's shard write lock.
#[derive(Debug, Default)]
pub(crate) struct SeriesStorage {
    created: AtomicUsize,
}

impl SeriesStorage {
    /// Series created so far.
    #[inline]
    pub(crate) fn created(&self) -> usize {
        self.created.load(Relaxed)
    }
}

impl Storage<SeriesKey> for SeriesStorage {
    type Counter = Arc<AtomicU64>;
    type Gauge = Arc<AtomicU64>;
    type Histogram = Arc<Series>;

    fn counter(&self, _: &SeriesKey) -> Self::Counter {
        Arc::new(AtomicU64::new(0))
    }

    fn gauge(&self, _: &SeriesKey) -> Self::Gauge {
        Arc::new(AtomicU64::new(0))
    }

    fn histogram(&self, key: &SeriesKey) -> Self::Histogram {
        self.created.fetch_add(1, Relaxed);
        Arc::new(Series::new(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_by_method_route_and_status() {
        let a = SeriesKey::new(Method::Get, "/v1/products/{sku}", 200);
        assert_eq!(a, SeriesKey::new(Method::Get, "/v1/products/{sku}", 200));
        assert_ne!(a, SeriesKey::new(Method::Post, "/v1/products/{sku}", 200));
        assert_ne!(a, SeriesKey::new(Method::Get, "/v1/products", 200));
        assert_ne!(a, SeriesKey::new(Method::Get, "/v1/products/{sku}", 404));
        assert_eq!(
            a.hashable(),
            SeriesKey::new(Method::Get, "/v1/products/{sku}", 200).hashable()
        );
    }

    #[test]
    fn long_routes_go_to_the_heap_and_round_trip() {
        let long = format!("/{}", "x".repeat(INLINE_ROUTE));
        let key = SeriesKey::new(Method::Get, &long, 200);
        assert!(matches!(key.route, RouteText::Heap(_)));
        assert_eq!(key.route(), long.as_str());
        let edge = format!("/{}", "é".repeat((INLINE_ROUTE - 1) / 2));
        let key = SeriesKey::new(Method::Get, &edge, 200);
        assert!(matches!(key.route, RouteText::Inline { .. }));
        assert_eq!(key.route(), edge.as_str());
        assert_ne!(key, SeriesKey::new(Method::Get, &long, 200));
    }

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(Method::parse("GET"), Method::Get);
        assert_eq!(Method::parse("get"), Method::Other);
        assert_eq!(Method::parse("PROPFIND").as_str(), "_OTHER");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        push_escaped_label_value(&mut out, "a\"b\\c\nd");
        assert_eq!(out, r#"a\"b\\c\nd"#);
    }
}
