//! Operational handlers: `/health`.

use std::time::Duration;

use salvo::prelude::*;
use serde_json::json;

use super::ApiError;

/// `GET /health`: 200 when the database answers within 1 s, else 503
/// `degraded` with the reason.
#[handler]
pub(super) async fn health(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = super::state(depot)?;
    let ping = tokio::time::timeout(Duration::from_millis(900), state.db.pool().ping()).await;
    let (status, database) = match ping {
        Ok(Ok(())) => (StatusCode::OK, "ok".to_owned()),
        Ok(Err(err)) => (StatusCode::SERVICE_UNAVAILABLE, format!("unavailable: {err}")),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable: no answer within 900ms".to_owned()),
    };
    res.status_code(status);
    res.render(Json(json!({
        "status": if status == StatusCode::OK { "ok" } else { "degraded" },
        "database": database,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
    })));
    Ok(())
}
