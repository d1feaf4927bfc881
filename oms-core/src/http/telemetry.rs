//! The telemetry hoop: request id, timing headers, database accounting and
//! metrics for every request, errors and 404s included.
//!
//! It runs on every request, so it avoids work it can: header names are
//! constants, the six header values are formatted with integer arithmetic
//! into one buffer they share (zero-copy slices of one `Bytes`: two
//! allocations instead of six), the
//! response's header map is sized once for them, one UUID v7 serves as the
//! audit event's id, the generated request id and the arrival time, and
//! the route label is built once and moved into the audit event.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use salvo::http::header::{HeaderName, HeaderValue};
use salvo::prelude::*;

use crate::app::AppState;
use crate::audit::AuditEvent;
use crate::db::{DbCounters, scope};
use crate::metrics::{RequestRecord, SlowRequest};

/// The request's id, in the depot for handlers and error bodies.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_RESPONSE_TIME: HeaderName = HeaderName::from_static("x-response-time");
const X_DB_TIME: HeaderName = HeaderName::from_static("x-db-time");
const X_DB_QUERIES: HeaderName = HeaderName::from_static("x-db-queries");
const X_REQUEST_COUNT: HeaderName = HeaderName::from_static("x-request-count");
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Service-wide hoop: see the module doc.
pub struct Telemetry {
    state: Arc<AppState>,
    slow_after: Duration,
    metrics: bool,
}

/// What the hoop knows of a finished request.
struct Finished<'a> {
    route: String,
    status: StatusCode,
    elapsed: Duration,
    db: Duration,
    request_id: &'a str,
}

impl Telemetry {
    /// A hoop reporting to `state`'s recorder and counters.
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        let slow_after = Duration::from_millis(state.config.metrics.slow_request_ms);
        let metrics = state.config.metrics.enabled;
        Self {
            state,
            slow_after,
            metrics,
        }
    }

    /// Hands the request's audit event to the pipeline (sub-microsecond
    /// unless the queue is full and `audit.on_full = "block"`).
    async fn audit(
        &self,
        req: &Request,
        depot: &Depot,
        res: &Response,
        id: uuid::Uuid,
        done: Finished<'_>,
    ) {
        let headers = req.headers();
        let user_agent = headers
            .get(salvo::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| truncate(ua, 256))
            .unwrap_or_default();
        let request_bytes = headers
            .get(salvo::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let client_ip = req
            .remote_addr()
            .ip()
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let event = AuditEvent {
            id,
            at_ms: arrival_ms(id),
            request_id: done.request_id.to_owned(),
            actor: super::actor(depot),
            method: req.method().as_str().to_owned(),
            route: done.route,
            path: truncate(req.uri().path(), 2048).to_owned(),
            status: done.status.as_u16(),
            duration_us: u64::try_from(done.elapsed.as_micros()).unwrap_or(u64::MAX),
            db_us: u64::try_from(done.db.as_micros()).unwrap_or(u64::MAX),
            client_ip,
            user_agent: user_agent.to_owned(),
            request_bytes,
            response_bytes: res.body.size().unwrap_or(0),
        };
        if let Err(event) = self.state.audit.try_record(event) {
            self.state.audit.record(event).await;
        }
    }

    #[cold]
    fn log_slow(&self, req: &Request, done: &Finished<'_>) {
        let duration_ms = done.elapsed.as_secs_f64() * 1000.0;
        let db_ms = done.db.as_secs_f64() * 1000.0;
        tracing::warn!(
            request_id = done.request_id,
            method = %req.method(),
            route = done.route,
            status = done.status.as_u16(),
            duration_ms,
            db_ms,
            "slow request"
        );
        let at = chrono::Utc::now() - chrono::Duration::from_std(done.elapsed).unwrap_or_default();
        self.state.slow.push(SlowRequest {
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            method: req.method().as_str().to_owned(),
            route: done.route.clone(),
            status: done.status.as_u16(),
            duration_ms,
            db_ms,
            request_id: done.request_id.to_owned(),
        });
    }
}

/// A caller's `X-Request-Id` is kept if it is 1-128 visible ASCII chars.
fn caller_request_id(req: &Request) -> Option<String> {
    let value = req.headers().get(&X_REQUEST_ID)?.as_bytes();
    let ok = (1..=128).contains(&value.len()) && value.iter().all(|b| b.is_ascii_graphic());
    // Visible ASCII is valid UTF-8.
    ok.then(|| String::from_utf8_lossy(value).into_owned())
}

/// When the request arrived: the millisecond timestamp of its UUID v7
/// (taken from the system clock on arrival).
fn arrival_ms(id: uuid::Uuid) -> i64 {
    id.get_timestamp().map_or_else(
        || chrono::Utc::now().timestamp_millis(),
        |ts| {
            let (secs, nanos) = ts.to_unix();
            i64::try_from(secs.saturating_mul(1000) + u64::from(nanos / 1_000_000))
                .unwrap_or(i64::MAX)
        },
    )
}

/// The route template (`/v1/orders/{id}`), or `<unmatched>` for 404s.
fn route_of(req: &Request, status: StatusCode) -> String {
    let matched = req.matched_path();
    if matched.is_empty() && status == StatusCode::NOT_FOUND {
        return "<unmatched>".to_owned();
    }
    let matched = matched.trim_start_matches('/');
    let mut route = String::with_capacity(matched.len() + 1);
    route.push('/');
    route.push_str(matched);
    route
}

/// The longest prefix of `s` of at most `max` bytes on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Counts a request in `in_flight` until dropped, also when its future is
/// dropped before it finished.
struct InFlight<'a>(&'a AtomicI64);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicI64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The timing header values of one response, written into one buffer
/// that every header value slices without copying.
struct HeaderText {
    bytes: Vec<u8>,
}

impl HeaderText {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// Appends `s`, returning where it starts.
    fn push(&mut self, s: &[u8]) -> usize {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(s);
        at
    }

    /// Appends `n` in decimal with at least `min_digits` digits.
    fn push_decimal(&mut self, n: u64, min_digits: usize) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n;
        while rest > 0 || digits.len() - at < min_digits {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        self.bytes.extend_from_slice(&digits[at..]);
    }

    /// Appends `d` in milliseconds with exactly three decimals (`0.412`),
    /// rounded to the nearest microsecond.
    fn push_ms(&mut self, d: Duration) {
        // u64 arithmetic (u128 division is a library call), saturating
        // after 584,000 years.
        let micros = d
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from((d.subsec_nanos() + 500) / 1000));
        self.push_decimal(micros / 1000, 1);
        self.bytes.push(b'.');
        self.push_decimal(micros % 1000, 3);
    }
}

/// `0.412ms`: milliseconds with exactly three decimals.
#[cfg(test)]
fn format_ms(d: Duration) -> String {
    let mut text = HeaderText::with_capacity(16);
    text.push_ms(d);
    text.push(b"ms");
    String::from_utf8_lossy(&text.bytes).into_owned()
}

/// Headers a response carries besides the telemetry ones (content type,
/// ETag, caching, encoding, rate limit): reserved up front with the six
/// telemetry headers, so the map is allocated once and never rehashed.
const RESPONSE_HEADERS: usize = 12;

/// Sets the timing headers of API.md on `res`.
fn timing_headers(
    res: &mut Response,
    request_id: &str,
    done: &Finished<'_>,
    statements: u64,
    count: u64,
) {
    let mut text = HeaderText::with_capacity(request_id.len() + 128);
    let id = text.push(request_id.as_bytes());
    let app = text.bytes.len();
    text.push_ms(done.elapsed);
    let app_ms = text.bytes.len();
    text.push(b"ms");
    let db = text.bytes.len();
    text.push_ms(done.db);
    let db_ms = text.bytes.len();
    text.push(b"ms");
    let queries = text.bytes.len();
    text.push_decimal(statements, 1);
    let requests = text.bytes.len();
    text.push_decimal(count, 1);
    let timing = text.push(b"app;dur=");
    text.bytes.extend_from_within(app..app_ms);
    text.push(b", db;dur=");
    text.bytes.extend_from_within(db..db_ms);
    let end = text.bytes.len();
    let all = bytes::Bytes::from(text.bytes);
    let value = |range: std::ops::Range<usize>| {
        HeaderValue::from_maybe_shared(all.slice(range))
            .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    };
    let headers = res.headers_mut();
    headers.insert(X_REQUEST_ID, value(id..app));
    headers.insert(X_RESPONSE_TIME, value(app..db));
    headers.insert(X_DB_TIME, value(db..queries));
    headers.insert(X_DB_QUERIES, value(queries..requests));
    headers.insert(X_REQUEST_COUNT, value(requests..timing));
    headers.insert(SERVER_TIMING, value(timing..end));
}

#[async_trait]
impl Handler for Telemetry {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let start = Instant::now();
        let id = uuid::Uuid::now_v7();
        let request_id = caller_request_id(req).unwrap_or_else(|| {
            let mut hex = [0u8; uuid::fmt::Simple::LENGTH];
            id.simple().encode_lower(&mut hex).to_owned()
        });
        depot.insert_typed(RequestId(request_id));
        let counters = Arc::new(DbCounters::default());
        if self.metrics && res.headers().is_empty() {
            res.headers_mut().reserve(RESPONSE_HEADERS);
        }
        // Until the audit event is queued too: a request waiting for room
        // in a full queue (`on_full = "block"`) is still being handled.
        let _in_flight = InFlight::enter(&self.state.in_flight);
        scope::with_counters(counters.clone(), ctrl.call_next(req, depot, res)).await;

        let request_id = match depot.get_typed::<RequestId>() {
            Ok(RequestId(id)) => id.as_str(),
            Err(_) => "",
        };
        let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
        if (status.is_client_error() || status.is_server_error()) && res.body.is_none() {
            super::problem::for_status(status).render(request_id, res);
        }
        let done = Finished {
            route: route_of(req, status),
            status,
            elapsed: start.elapsed(),
            db: counters.elapsed(),
            request_id,
        };
        if !self.metrics {
            self.audit(req, depot, res, id, done).await;
            return;
        }
        let statements = counters.statements();
        let count = self.state.requests.fetch_add(1, Ordering::Relaxed) + 1;
        self.state.recorder.record_request(&RequestRecord {
            method: req.method().as_str(),
            route: &done.route,
            status: status.as_u16(),
            duration: done.elapsed,
            db_time: done.db,
            db_statements: statements,
        });
        if done.elapsed >= self.slow_after {
            self.log_slow(req, &done);
        }
        timing_headers(res, request_id, &done, statements, count);
        self.audit(req, depot, res, id, done).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_have_three_decimals_rounded_to_the_microsecond() {
        for (d, want) in [
            (Duration::ZERO, "0.000ms"),
            (Duration::from_nanos(499), "0.000ms"),
            (Duration::from_nanos(500), "0.001ms"),
            (Duration::from_micros(412), "0.412ms"),
            (Duration::from_micros(12_345), "12.345ms"),
            (Duration::from_nanos(999_999_600), "1000.000ms"),
            (Duration::from_secs(86_400), "86400000.000ms"),
        ] {
            assert_eq!(format_ms(d), want, "{d:?}");
        }
    }
}
