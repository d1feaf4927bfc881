//! The telemetry hoop: request id, timing headers, database accounting and
//! metrics for every request, errors and 404s included.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use salvo::http::header::HeaderValue;
use salvo::prelude::*;

use crate::app::AppState;
use crate::audit::AuditEvent;
use crate::db::{DbCounters, scope};
use crate::metrics::{RequestRecord, SlowRequest};

/// The request's id, in the depot for handlers and error bodies.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Service-wide hoop: see the module doc.
pub struct Telemetry {
    state: Arc<AppState>,
    slow_after: Duration,
    metrics: bool,
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
    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        req: &Request,
        depot: &Depot,
        res: &Response,
        route: &str,
        status: StatusCode,
        elapsed: Duration,
        db: Duration,
        request_id: &str,
        at_ms: i64,
    ) {
        let user_agent = req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(|ua| truncate(ua, 256))
            .unwrap_or_default();
        let request_bytes = req
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let client_ip = req
            .remote_addr()
            .clone()
            .into_std()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let event = AuditEvent {
            id: uuid::Uuid::now_v7(),
            at_ms,
            request_id: request_id.to_owned(),
            actor: super::actor(depot),
            method: req.method().as_str().to_owned(),
            route: route.to_owned(),
            path: truncate(req.uri().path(), 2048).to_owned(),
            status: status.as_u16(),
            duration_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            db_us: u64::try_from(db.as_micros()).unwrap_or(u64::MAX),
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
    fn log_slow(
        &self,
        req: &Request,
        route: &str,
        status: StatusCode,
        elapsed: Duration,
        db: Duration,
        request_id: &str,
    ) {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let db_ms = db.as_secs_f64() * 1000.0;
        tracing::warn!(
            request_id,
            method = %req.method(),
            route,
            status = status.as_u16(),
            duration_ms,
            db_ms,
            "slow request"
        );
        let at = chrono::Utc::now() - chrono::Duration::from_std(elapsed).unwrap_or_default();
        self.state.slow.push(SlowRequest {
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            method: req.method().as_str().to_owned(),
            route: route.to_owned(),
            status: status.as_u16(),
            duration_ms,
            db_ms,
            request_id: request_id.to_owned(),
        });
    }
}

/// A caller's `X-Request-Id` is kept if it is 1-128 visible ASCII chars.
fn caller_request_id(req: &Request) -> Option<String> {
    let value = req.headers().get("x-request-id")?.to_str().ok()?;
    let ok = (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| value.to_owned())
}

/// The route template (`/v1/orders/{id}`), or `<unmatched>` for 404s.
fn route_of(req: &Request, status: StatusCode) -> String {
    let matched = req.matched_path();
    if matched.is_empty() && status == StatusCode::NOT_FOUND {
        "<unmatched>".to_owned()
    } else {
        format!("/{}", matched.trim_start_matches('/'))
    }
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

/// `0.412ms`: milliseconds with exactly three decimals.
pub(crate) fn format_ms(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1000.0)
}

fn header(value: String) -> HeaderValue {
    HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
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
        let at_ms = chrono::Utc::now().timestamp_millis();
        let request_id =
            caller_request_id(req).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
        depot.insert_typed(RequestId(request_id.clone()));
        let counters = Arc::new(DbCounters::default());
        self.state.in_flight.fetch_add(1, Ordering::Relaxed);
        scope::with_counters(counters.clone(), ctrl.call_next(req, depot, res)).await;
        self.state.in_flight.fetch_sub(1, Ordering::Relaxed);

        let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
        if (status.is_client_error() || status.is_server_error()) && res.body.is_none() {
            super::problem::for_status(status).render(&request_id, res);
        }
        let elapsed = start.elapsed();
        let db_time = counters.elapsed();
        if !self.metrics {
            let route = route_of(req, status);
            self.audit(
                req,
                depot,
                res,
                &route,
                status,
                elapsed,
                db_time,
                &request_id,
                at_ms,
            )
            .await;
            return;
        }
        let db_statements = counters.statements();
        let count = self.state.requests.fetch_add(1, Ordering::Relaxed) + 1;

        let route = route_of(req, status);
        self.state.recorder.record_request(&RequestRecord {
            method: req.method().as_str(),
            route: &route,
            status: status.as_u16(),
            duration: elapsed,
            db_time,
            db_statements,
        });

        if elapsed >= self.slow_after {
            self.log_slow(req, &route, status, elapsed, db_time, &request_id);
        }

        self.audit(
            req,
            depot,
            res,
            &route,
            status,
            elapsed,
            db_time,
            &request_id,
            at_ms,
        )
        .await;

        let app = format_ms(elapsed);
        let db = format_ms(db_time);
        let server_timing = format!(
            "app;dur={}, db;dur={}",
            app.trim_end_matches("ms"),
            db.trim_end_matches("ms")
        );
        let headers = res.headers_mut();
        headers.insert("x-request-id", header(request_id));
        headers.insert("x-response-time", header(app));
        headers.insert("x-db-time", header(db));
        headers.insert("x-db-queries", HeaderValue::from(db_statements));
        headers.insert("x-request-count", HeaderValue::from(count));
        headers.insert("server-timing", header(server_timing));
    }
}
