//! The telemetry hoop: request id, timing headers, database accounting and
//! metrics for every request, errors and 404s included.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use salvo::http::header::HeaderValue;
use salvo::prelude::*;

use crate::app::AppState;
use crate::db::{DbCounters, scope};
use crate::metrics::RequestRecord;

/// The request's id, in the depot for handlers and error bodies.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Service-wide hoop: see the module doc.
pub struct Telemetry {
    state: Arc<AppState>,
}

impl Telemetry {
    /// A hoop reporting to `state`'s recorder and counters.
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

/// A caller's `X-Request-Id` is kept if it is 1-128 visible ASCII chars.
fn caller_request_id(req: &Request) -> Option<String> {
    let value = req.headers().get("x-request-id")?.to_str().ok()?;
    let ok = (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| value.to_owned())
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
    async fn handle(&self, req: &mut Request, depot: &mut Depot, res: &mut Response, ctrl: &mut FlowCtrl) {
        let start = Instant::now();
        let request_id = caller_request_id(req).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
        depot.insert_typed(RequestId(request_id.clone()));
        let counters = Arc::new(DbCounters::default());
        scope::with_counters(counters.clone(), ctrl.call_next(req, depot, res)).await;

        let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
        if (status.is_client_error() || status.is_server_error()) && res.body.is_none() {
            super::problem::for_status(status).render(&request_id, res);
        }
        let elapsed = start.elapsed();
        let db_time = counters.elapsed();
        let db_statements = counters.statements();
        let count = self.state.requests.fetch_add(1, Ordering::Relaxed) + 1;

        let matched = req.matched_path();
        let route = if matched.is_empty() && status == StatusCode::NOT_FOUND {
            "<unmatched>".to_owned()
        } else {
            format!("/{}", matched.trim_start_matches('/'))
        };
        self.state.recorder.record_request(&RequestRecord {
            method: req.method().as_str(),
            route: &route,
            status: status.as_u16(),
            duration: elapsed,
            db_time,
            db_statements,
        });

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
