//! The HTTP edge: the salvo router a host application mounts, its
//! middleware and the mapping of errors to problem+json.
//!
//! Handlers are thin: they parse, call the domain, and return
//! [`ApiError`] on failure, which is turned into RFC 9457 problem+json in
//! one place ([`problem`]).

mod audit;
mod auth;
mod limits;
mod openapi;
mod ops;
mod orders;
pub mod problem;
mod products;
mod rate_limit;
mod request;
mod telemetry;

pub use limits::{Limits, server};
pub use problem::ApiError;
pub use telemetry::{RequestId, Telemetry};

use std::sync::Arc;

use salvo::compression::{Compression, CompressionLevel};

use self::auth::{Access, Auth};
use self::rate_limit::RateLimit;
use salvo::prelude::*;

use crate::app::AppState;

/// Puts the shared [`AppState`] into every request's depot.
struct InjectState(Arc<AppState>);

#[async_trait]
impl Handler for InjectState {
    async fn handle(
        &self,
        _req: &mut Request,
        depot: &mut Depot,
        _res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        depot.insert_typed(self.0.clone());
    }
}

/// The OMS routes with their state, auth and rate limits, without the
/// service-wide hoops (see [`service`]). Mount it anywhere in a host router.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let config = state.config.clone();
    let limiter = RateLimit::new(&config.rate_limit);
    let guarded = |access: Access| {
        let router = Router::new().hoop(Auth::new(&config.auth, access));
        match &limiter {
            Some(limiter) => router.hoop(limiter.clone()),
            None => router,
        }
    };
    let resources = guarded(Access::Resource)
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
        );
    let admin = guarded(Access::Admin)
        .push(Router::with_path("debug/performance").get(ops::performance))
        .push(Router::with_path("metrics").get(ops::metrics))
        .push(Router::with_path("v1/audit").get(audit::list));
    let api = Router::new()
        .hoop(InjectState(state))
        .push(Router::with_path("health").get(ops::health))
        .push(resources)
        .push(admin);
    let document = openapi::document(&api);
    Router::new()
        .push(api)
        .push(document.into_router("openapi.json"))
        .push(openapi::docs_page().into_router("docs"))
}

/// A complete service: the router (plus `extra` routes, e.g. a host's or a
/// test's) at the root, wrapped by the service-wide hoops: telemetry
/// (headers, metrics, audit, problem bodies for 404/405), compression and
/// resource limits.
pub(crate) fn service(state: Arc<AppState>, extra: Option<Router>) -> Service {
    let telemetry = Telemetry::new(state.clone());
    let limits = Limits::new(&state.config.server);
    let compression = compression(&state.config.compression);
    let mut root = Router::new().push(router(state));
    if let Some(extra) = extra {
        root = root.push(extra);
    }
    let mut service = Service::new(root).hoop(telemetry);
    if let Some(compression) = compression {
        service = service.hoop(compression);
    }
    // Telemetry renders problem+json for any bare error status, so the
    // service needs no catcher.
    service.hoop(limits)
}

fn compression(config: &crate::config::CompressionConfig) -> Option<Compression> {
    use crate::config::CompressionAlgorithm as A;
    if !config.enabled {
        return None;
    }
    let mut compression = Compression::new()
        .disable_all()
        .min_length(config.min_bytes);
    for algorithm in &config.algorithms {
        compression = match algorithm {
            A::Zstd => compression.enable_zstd(CompressionLevel::Default),
            A::Br => compression.enable_brotli(CompressionLevel::Precise(4)),
            A::Gzip => compression.enable_gzip(CompressionLevel::Default),
        };
    }
    let json: salvo::http::mime::Mime = "application/problem+json"
        .parse()
        .unwrap_or(salvo::http::mime::APPLICATION_JSON);
    Some(compression.content_types(&[
        salvo::http::mime::APPLICATION_JSON,
        json,
        salvo::http::mime::TEXT_PLAIN,
    ]))
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
pub(crate) fn render_versioned<T: serde::Serialize>(
    res: &mut Response,
    status: StatusCode,
    value: &T,
    version: i64,
) {
    set_etag(res, version);
    render_json(res, status, value);
}

fn set_etag(res: &mut Response, version: i64) {
    if let Ok(v) = salvo::http::header::HeaderValue::try_from(request::etag(version)) {
        res.headers_mut().insert(salvo::http::header::ETAG, v);
    }
}

/// The representation of what `load` reads, serialised once to be
/// cached and served.
pub(crate) async fn representation<T: serde::Serialize>(
    load: impl Future<Output = Result<T, crate::domain::DomainError>>,
    version: impl FnOnce(&T) -> i64,
) -> Result<crate::cache::Cached, ApiError> {
    let value = load.await?;
    let body = serde_json::to_vec(&value).map_err(ApiError::internal)?;
    Ok(crate::cache::Cached::new(version(&value), body))
}

/// Answers from a serialised representation: 304 when `If-None-Match`
/// matches, else 200 with the body and `ETag`.
pub(crate) fn render_cached(req: &Request, res: &mut Response, cached: &crate::cache::Cached) {
    set_etag(res, cached.version);
    if request::if_none_match(req, cached.version) {
        res.status_code(StatusCode::NOT_MODIFIED);
        // A 304 has no body to compress: keep its validator strong.
        res.headers_mut().insert(
            salvo::http::header::CACHE_CONTROL,
            salvo::http::header::HeaderValue::from_static("no-transform"),
        );
        return;
    }
    res.status_code(StatusCode::OK);
    res.headers_mut().insert(
        salvo::http::header::CONTENT_TYPE,
        salvo::http::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res.body(cached.body.clone());
}

/// Writes a stored (idempotent) response: its status and exact body.
pub(crate) fn render_stored(res: &mut Response, status: u16, body: String) {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() {
        "application/json; charset=utf-8"
    } else {
        "application/problem+json"
    };
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
