//! Resource limits: a cap on concurrent requests (503 `overloaded` with
//! `Retry-After` instead of an unbounded queue) and a per-request deadline
//! (503 `timeout`). Body size is enforced where bodies are read
//! ([`super::request`]); the pool's acquire timeout gives 503
//! `database_unavailable`.
//!
//! Connection-level limits (slowloris, slow bodies, floods, huge heads)
//! are set on the salvo [`Server`] by [`server`]: a deadline for the
//! request head, a longest pause inside a body, an idle timeout, a cap on
//! open connections and on the head's size.
//!
//! A request refused before its body was read (401, 404, 415, ...) has
//! the body drained when it is small enough to have been accepted, so the
//! connection stays usable; a larger one gets `Connection: close`.

use std::sync::Arc;
use std::time::Duration;

use salvo::conn::Acceptor;
use salvo::fuse::FuseConfig;
use salvo::http::StatusCode;
use salvo::http::body::Body as _;
use salvo::http::header::{CONNECTION, CONTENT_LENGTH, HeaderValue};
use salvo::prelude::*;
use tokio::sync::Semaphore;

use super::{ApiError, RequestId};
use crate::config::ServerConfig;

/// A salvo [`Server`] on `acceptor` with the connection limits of
/// `[server]`: `header_read_timeout_ms`, `body_read_timeout_ms`,
/// `idle_timeout_ms`, `max_connections` and `max_header_bytes`.
pub fn server<A: Acceptor + Send>(acceptor: A, config: &ServerConfig) -> Server<A> {
    let fuse = FuseConfig::default()
        .with_http1_header_timeout(Duration::from_millis(config.header_read_timeout_ms))
        .with_request_body_timeout(Duration::from_millis(config.body_read_timeout_ms))
        .with_connection_idle_timeout(Duration::from_millis(config.idle_timeout_ms));
    let mut server = Server::new(acceptor)
        .fuse_config(fuse)
        .max_connections(config.max_connections);
    // hyper refuses heads that do not fit its read buffer with 431.
    server
        .http1_mut()
        .max_buf_size(config.max_header_bytes.max(8192));
    server
}

/// The limits hoop.
pub struct Limits {
    permits: Arc<Semaphore>,
    timeout: Duration,
    max_body: u64,
}

impl Limits {
    /// Limits from `[server]`.
    pub(crate) fn new(config: &ServerConfig) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            timeout: Duration::from_millis(config.request_timeout_ms),
            max_body: config.max_body_bytes,
        }
    }
}

/// Longest wait for the rest of a body nobody read.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Reads and drops a body the handler did not read (refused early) when
/// its declared size is within `max`, so the client can reuse the
/// connection instead of having it reset under its answer; otherwise
/// (too large, chunked, too slow) asks for the connection to be closed.
async fn settle_body(req: &mut Request, res: &mut Response, max: u64) {
    if req.body().is_end_stream() {
        return;
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len <= max) {
        let limit = usize::try_from(max).unwrap_or(usize::MAX);
        if let Ok(Ok(_)) =
            tokio::time::timeout(DRAIN_TIMEOUT, req.payload_with_max_size(limit)).await
        {
            return;
        }
    }
    res.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
}

fn refuse(depot: &Depot, res: &mut Response, err: ApiError) {
    let id = depot
        .get_typed::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    // Discard whatever a timed-out handler had written.
    res.headers_mut().remove(salvo::http::header::ETAG);
    err.render(&id, res);
}

#[async_trait]
impl Handler for Limits {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let Ok(_permit) = self.permits.try_acquire() else {
            let err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the server is handling server.max_concurrent_requests requests; retry shortly",
            )
            .retry_after(1);
            refuse(depot, res, err);
            ctrl.skip_rest();
            settle_body(req, res, self.max_body).await;
            return;
        };
        if tokio::time::timeout(self.timeout, ctrl.call_next(req, depot, res))
            .await
            .is_err()
        {
            let err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request did not finish within server.request_timeout_ms ({} ms); any transaction it had open was rolled back",
                    self.timeout.as_millis()
                ),
            )
            .retry_after(1);
            refuse(depot, res, err);
            ctrl.skip_rest();
        }
        settle_body(req, res, self.max_body).await;
    }
}
