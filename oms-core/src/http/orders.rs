//! `/v1/orders`: thin handlers over [`OrderService`](crate::domain::OrderService).

use salvo::http::header::HeaderValue;
use salvo::prelude::*;
use uuid::Uuid;

use super::openapi::{Guarded, JsonBody, Problem};
use super::request::{if_match, json_body, optional_json_body, page_params, query_str};
use super::{ApiError, RequestId, actor, render_json, render_versioned, state};
use crate::domain::{
    Action, DomainError, IdempotentOutcome, NewOrder, Order, OrderFilter, OrderStatus,
    TransitionBody, request_hash,
};
use crate::domain::{OrderEvent, Page};

/// Order ids that are not UUIDs cannot exist: 404.
fn order_id(req: &Request) -> Result<Uuid, ApiError> {
    let raw = req.param::<String>("id").unwrap_or_default();
    Uuid::parse_str(&raw).map_err(|_| {
        ApiError::from(DomainError::NotFound {
            what: format!("order {raw}"),
        })
    })
}

/// The `Idempotency-Key` header, 1-255 visible ASCII characters.
fn idempotency_key(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| {
            (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        })
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1-255 visible ASCII characters")
        })?;
    Ok(Some(key.to_owned()))
}

/// The response stored for an idempotent create: `(status, body)`.
fn render_outcome(request_id: &str, result: &Result<Order, DomainError>) -> (u16, String) {
    match result {
        Ok(order) => (201, serde_json::to_string(order).unwrap_or_default()),
        Err(err) => {
            let problem = ApiError::from(err);
            (problem.status.as_u16(), problem.body_json(request_id))
        }
    }
}

/// `POST /v1/orders`, with optional `Idempotency-Key`.
#[endpoint(
    operation_id = "createOrder",
    tags("orders"),
    summary = "Place an order",
    description = "Copies prices from the catalog and reserves stock for every line atomically (all or nothing). With an Idempotency-Key, a retry with the same body replays the first response (status and body) with Idempotent-Replayed: true; outcomes of requests that passed validation are stored, refusals included.",
    security(["bearer" = []]),
    parameters(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, description = "1-255 visible ASCII characters, scoped to the caller's token, kept at least 24 h; else 400 bad_request"),
    ),
    request_body(content = NewOrder, content_type = "application/json"),
    status_codes(201, 400, 401, 403, 409, 413, 415, 422, 429, 500, 503),
    responses(
        (status_code = 201, description = "The order, pending, version 1 (or the stored first response of an idempotent retry)", body = Order, headers(("ETag" = String, description = "\"<version>\""), ("Location" = String, description = "/v1/orders/{id}"), ("Idempotent-Replayed" = String, description = "true when this is a replay"))),
        Guarded,
        JsonBody,
        (status_code = 400, description = "`malformed_json`, or `bad_request` (bad Idempotency-Key)", body = Problem, content_type = "application/problem+json"),
        (status_code = 409, description = "`insufficient_stock` (nothing changed) or `idempotency_in_progress`", body = Problem, content_type = "application/problem+json"),
        (status_code = 422, description = "`validation_failed` (with `errors`), `unknown_sku`, `currency_mismatch`, `duplicate_sku` or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(super) async fn create(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let key = idempotency_key(req)?;
    let (input, bytes) = json_body::<NewOrder>(req, state.config.server.max_body_bytes).await?;
    let actor = actor(depot);
    let Some(key) = key else {
        let order = state.orders.create_order(&actor, input).await?;
        state
            .cache
            .invalidate_products(order.items.iter().map(|i| &i.sku));
        res.add_header("location", format!("/v1/orders/{}", order.id), true)
            .map_err(ApiError::internal)?;
        render_versioned(res, StatusCode::CREATED, &order, order.version);
        return Ok(());
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    let hash = request_hash(&value);
    let skus: Vec<String> = input.items.iter().map(|i| i.sku.clone()).collect();
    let request_id = depot
        .get_typed::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let outcome = state
        .orders
        .create_order_idempotent(&actor, &key, &hash, input, move |result| {
            render_outcome(&request_id, result)
        })
        .await?;
    let (status, body, replayed) = match outcome {
        IdempotentOutcome::Fresh { status, body } => {
            state.cache.invalidate_products(&skus);
            (status, body, false)
        }
        IdempotentOutcome::Replayed { status, body } => (status, body, true),
    };
    super::render_stored(res, status, body);
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(())
}

/// `GET /v1/orders/{id}`: 304 on a matching `If-None-Match`.
#[endpoint(
    operation_id = "getOrder",
    tags("orders"),
    summary = "Get an order with its lines",
    security(["bearer" = []]),
    parameters(
        ("id" = String, Path, format = Uuid, description = "The order id; anything but an existing order's UUID is 404"),
        ("If-None-Match" = Option<String>, Header, description = "Entity tags or *; 304 without a body when one is the current version"),
    ),
    responses(
        (status_code = 200, description = "The order", body = Order, headers(("ETag" = String, description = "\"<version>\""))),
        (status_code = 304, description = "If-None-Match matched: no body", headers(("ETag" = String, description = "\"<version>\""))),
        Guarded,
        (status_code = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(super) async fn get(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let id = order_id(req)?;
    let cached = state
        .cache
        .order_or_load(
            id,
            super::representation(state.orders.get_order(id), |o| o.version),
        )
        .await?;
    super::render_cached(req, res, &cached);
    Ok(())
}

/// `GET /v1/orders?customer_id&status&limit&after`: newest first.
#[endpoint(
    operation_id = "listOrders",
    tags("orders"),
    summary = "List orders, newest first",
    security(["bearer" = []]),
    parameters(
        ("customer_id" = Option<String>, Query, min_length = 1, max_length = 64, description = "Only this customer's orders"),
        ("status" = Option<OrderStatus>, Query, description = "Only orders in this status"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Page size, 1-500 (default 50); anything else is 400 bad_request"),
        ("after" = Option<String>, Query, description = "The previous page's next_cursor; an invalid one is 400 bad_cursor"),
    ),
    responses(
        (status_code = 200, description = "One page of orders", body = Page<Order>),
        Guarded,
        (status_code = 400, description = "`bad_request` (malformed or out-of-range query parameter) or `bad_cursor`", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(super) async fn list(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let (limit, after) = page_params(req)?;
    let status = match query_str(req, "status")? {
        None => None,
        Some(raw) => Some(raw.parse::<OrderStatus>().map_err(|_| {
            ApiError::bad_request(format!(
                "status must be one of pending, confirmed, shipped, delivered, cancelled; got {raw:?}"
            ))
        })?),
    };
    let customer_id = query_str(req, "customer_id")?;
    if customer_id
        .as_ref()
        .is_some_and(|c| c.is_empty() || c.chars().count() > 64 || c.contains('\0'))
    {
        return Err(ApiError::bad_request(
            "customer_id must be 1-64 characters, without NUL",
        ));
    }
    let filter = OrderFilter {
        customer_id,
        status,
    };
    let page = state
        .orders
        .list_orders(filter, limit, after.as_deref())
        .await?;
    render_json(res, StatusCode::OK, &page);
    Ok(())
}

/// `POST /v1/orders/{id}/{action}`: one status transition.
async fn transition(
    action: Action,
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let id = order_id(req)?;
    let condition = if_match(req)?;
    let body =
        optional_json_body::<TransitionBody>(req, state.config.server.max_body_bytes).await?;
    body.validate()?;
    let expected = condition
        .expected(|| async { Ok::<_, ApiError>(state.orders.get_order(id).await?.version) })
        .await?;
    let order = state
        .orders
        .transition(id, action, &actor(depot), body.reason.as_deref(), expected)
        .await?;
    state.cache.invalidate_order(&id);
    state
        .cache
        .invalidate_products(order.items.iter().map(|i| &i.sku));
    render_versioned(res, StatusCode::OK, &order, order.version);
    Ok(())
}

/// Declares `POST /v1/orders/{id}/<action>`: one documented endpoint per
/// action, all sharing [`transition`].
macro_rules! transition_endpoint {
    ($(#[doc = $doc:tt])* $name:ident, $action:expr, $op:tt, $summary:tt, $description:tt) => {
        $(#[doc = $doc])*
        #[endpoint(
    operation_id = $op,
    tags("orders"),
    summary = $summary,
    description = $description,
    security(["bearer" = []]),
    parameters(
        ("id" = String, Path, format = Uuid, description = "The order id; anything but an existing order's UUID is 404"),
        ("If-Match" = Option<String>, Header, description = "Entity tags (\"3\", a list, W/\"3\") or *; the write happens only if one is the current version, else 412 version_mismatch"),
    ),
    request_body(content = ref(TransitionBody), description = "Optional; absent means no reason"),
    responses(
        (status_code = 200, description = "The order after the transition", body = Order, headers(("ETag" = String, description = "\"<version>\""))),
        Guarded,
        JsonBody,
        (status_code = 400, description = "`malformed_json`, or `bad_request` (If-Match is not a list of entity tags)", body = Problem, content_type = "application/problem+json"),
        (status_code = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status_code = 409, description = "`invalid_transition`: not allowed from the order's status", body = Problem, content_type = "application/problem+json"),
        (status_code = 412, description = "`version_mismatch`: If-Match does not name the current version", body = Problem, content_type = "application/problem+json"),
    ),
        )]
        pub(super) async fn $name(
            req: &mut Request,
            depot: &mut Depot,
            res: &mut Response,
        ) -> Result<(), ApiError> {
            transition($action, req, depot, res).await
        }
    };
}

transition_endpoint!(
    /// `POST /v1/orders/{id}/confirm`.
    confirm, Action::Confirm, "confirmOrder", "Confirm an order", "pending -> confirmed."
);
transition_endpoint!(
    /// `POST /v1/orders/{id}/ship`.
    ship, Action::Ship, "shipOrder", "Ship an order", "confirmed -> shipped; consumes the reservation."
);
transition_endpoint!(
    /// `POST /v1/orders/{id}/deliver`.
    deliver, Action::Deliver, "deliverOrder", "Mark an order delivered", "shipped -> delivered."
);
transition_endpoint!(
    /// `POST /v1/orders/{id}/cancel`.
    cancel, Action::Cancel, "cancelOrder", "Cancel an order",
    "pending or confirmed -> cancelled; releases the reservation."
);

/// `GET /v1/orders/{id}/events`: oldest first.
#[endpoint(
    operation_id = "listOrderEvents",
    tags("orders"),
    summary = "An order's history, oldest first",
    security(["bearer" = []]),
    parameters(
        ("id" = String, Path, format = Uuid, description = "The order id; anything but an existing order's UUID is 404"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Page size, 1-500 (default 50); anything else is 400 bad_request"),
        ("after" = Option<String>, Query, description = "The previous page's next_cursor; an invalid one is 400 bad_cursor"),
    ),
    responses(
        (status_code = 200, description = "One page of events", body = Page<OrderEvent>),
        Guarded,
        (status_code = 400, description = "`bad_request` (malformed or out-of-range query parameter) or `bad_cursor`", body = Problem, content_type = "application/problem+json"),
        (status_code = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(super) async fn events(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let id = order_id(req)?;
    let (limit, after) = page_params(req)?;
    let page = state
        .orders
        .order_events(id, limit, after.as_deref())
        .await?;
    render_json(res, StatusCode::OK, &page);
    Ok(())
}
