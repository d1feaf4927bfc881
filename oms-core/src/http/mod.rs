//! The HTTP edge: the salvo router a host application mounts, its
//! middleware and the mapping of errors to problem+json.
//!
//! Handlers are thin: they parse, call the domain, and return
//! [`ApiError`] on failure, which is turned into RFC 9457 problem+json in
//! one place ([`problem`]).

mod handlers;
mod orders;
mod products;
mod request;
pub mod problem;
mod telemetry;

pub use problem::ApiError;
pub use telemetry::{RequestId, Telemetry};

use std::sync::Arc;

use salvo::catcher::Catcher;
use salvo::prelude::*;

use crate::app::AppState;

/// Puts the shared [`AppState`] into every request's depot.
struct InjectState(Arc<AppState>);

#[async_trait]
impl Handler for InjectState {
    async fn handle(&self, _req: &mut Request, depot: &mut Depot, _res: &mut Response, _ctrl: &mut FlowCtrl) {
        depot.insert_typed(self.0.clone());
    }
}

/// The OMS routes with their state, without the service-wide telemetry
/// hoop (see [`service`]). Mount it anywhere in a host router.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .hoop(InjectState(state))
        .push(Router::with_path("health").get(handlers::health))
        .push(
            Router::with_path("v1/products")
                .get(products::list)
                .post(products::create)
                .push(
                    Router::with_path("{sku}")
                        .get(products::get)
                        .patch(products::patch)
                        .push(Router::with_path("stock").post(products::stock)),
                ),
        )
        .push(
            Router::with_path("v1/orders")
                .get(orders::list)
                .post(orders::create)
                .push(
                    Router::with_path("{id}")
                        .get(orders::get)
                        .push(Router::with_path("events").get(orders::events))
                        .push(Router::with_path("confirm").post(orders::confirm))
                        .push(Router::with_path("ship").post(orders::ship))
                        .push(Router::with_path("deliver").post(orders::deliver))
                        .push(Router::with_path("cancel").post(orders::cancel)),
                ),
        )
}

/// A complete service: the router at the root, wrapped by the telemetry
/// hoop (headers, metrics, problem bodies for 404/405).
pub(crate) fn service(state: Arc<AppState>) -> Service {
    let telemetry = Telemetry::new(state.clone());
    Service::new(router(state))
        .hoop(telemetry)
        .catcher(Catcher::new(problem::CatchAll))
}

/// The caller's token name, set by the auth hoop; `anonymous` otherwise.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

/// The current caller's name.
pub(crate) fn actor(depot: &Depot) -> String {
    depot
        .get_typed::<Actor>()
        .map_or_else(|_| "anonymous".to_owned(), |a| a.0.clone())
}

/// Writes `value` as JSON with `status`.
pub(crate) fn render_json<T: serde::Serialize>(res: &mut Response, status: StatusCode, value: &T) {
    res.status_code(status);
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            res.headers_mut().insert(
                salvo::http::header::CONTENT_TYPE,
                salvo::http::header::HeaderValue::from_static("application/json; charset=utf-8"),
            );
            res.body(bytes);
        }
        Err(err) => ApiError::internal(err).render("", res),
    }
}

/// Writes `value` as JSON with its `ETag`.
pub(crate) fn render_versioned<T: serde::Serialize>(res: &mut Response, status: StatusCode, value: &T, version: i64) {
    set_etag(res, version);
    render_json(res, status, value);
}

fn set_etag(res: &mut Response, version: i64) {
    if let Ok(v) = salvo::http::header::HeaderValue::try_from(request::etag(version)) {
        res.headers_mut().insert(salvo::http::header::ETAG, v);
    }
}

/// 304 when `If-None-Match` matches `version`, else 200 with the body.
pub(crate) fn render_conditional<T: serde::Serialize>(req: &Request, res: &mut Response, value: &T, version: i64) {
    if request::if_none_match(req, version) {
        set_etag(res, version);
        res.status_code(StatusCode::NOT_MODIFIED);
    } else {
        render_versioned(res, StatusCode::OK, value, version);
    }
}

/// Writes a stored (idempotent) response: its status and exact body.
pub(crate) fn render_stored(res: &mut Response, status: u16, body: String) {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() { "application/json; charset=utf-8" } else { "application/problem+json" };
    if status.is_success()
        && let Some(version) = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("version").and_then(serde_json::Value::as_i64))
    {
        set_etag(res, version);
    }
    res.status_code(status);
    res.headers_mut().insert(
        salvo::http::header::CONTENT_TYPE,
        salvo::http::header::HeaderValue::from_static(content_type),
    );
    res.body(body);
}

/// The state injected by the router, for handlers.
pub(crate) fn state(depot: &Depot) -> Result<&Arc<AppState>, ApiError> {
    depot
        .get_typed::<Arc<AppState>>()
        .map_err(|_| ApiError::internal("application state missing from depot"))
}
