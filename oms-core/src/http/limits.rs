//! Resource limits: a cap on concurrent requests (503 `overloaded` with
//! `Retry-After` instead of an unbounded queue) and a per-request deadline
//! (503 `timeout`). Body size is enforced where bodies are read
//! ([`super::request`]); the pool's acquire timeout gives 503
//! `database_unavailable`.

use std::sync::Arc;
use std::time::Duration;

use salvo::http::StatusCode;
use salvo::prelude::*;
use tokio::sync::Semaphore;

use super::{ApiError, RequestId};
use crate::config::ServerConfig;

/// The limits hoop.
pub struct Limits {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl Limits {
    /// Limits from `[server]`.
    pub(crate) fn new(config: &ServerConfig) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            timeout: Duration::from_millis(config.request_timeout_ms),
        }
    }
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
    }
}
