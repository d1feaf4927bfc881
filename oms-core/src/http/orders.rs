//! `/v1/orders`: thin handlers over [`OrderService`](crate::domain::OrderService).

use salvo::http::header::HeaderValue;
use salvo::prelude::*;
use uuid::Uuid;

use super::request::{if_match, json_body, optional_json_body, page_params, query_str};
use super::{ApiError, RequestId, actor, render_json, render_versioned, state};
use crate::cache::Cached;
use crate::domain::{
    Action, DomainError, IdempotentOutcome, NewOrder, Order, OrderFilter, OrderStatus,
    TransitionBody, request_hash,
};

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
#[handler]
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
#[handler]
pub(super) async fn get(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let id = order_id(req)?;
    let cached = match state.cache.order(&id) {
        Some(hit) => hit,
        None => {
            let epoch = state.cache.epoch();
            let order = state.orders.get_order(id).await?;
            let body = serde_json::to_vec(&order).map_err(ApiError::internal)?;
            let cached = std::sync::Arc::new(Cached::new(order.version, body));
            state.cache.fill_order(id, epoch, Cached::clone(&cached));
            cached
        }
    };
    super::render_cached(req, res, &cached);
    Ok(())
}

/// `GET /v1/orders?customer_id&status&limit&after`: newest first.
#[handler]
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
        .is_some_and(|c| c.is_empty() || c.chars().count() > 64)
    {
        return Err(ApiError::bad_request("customer_id must be 1-64 characters"));
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

/// `POST /v1/orders/{id}/confirm`.
#[handler]
pub(super) async fn confirm(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    transition(Action::Confirm, req, depot, res).await
}

/// `POST /v1/orders/{id}/ship`.
#[handler]
pub(super) async fn ship(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    transition(Action::Ship, req, depot, res).await
}

/// `POST /v1/orders/{id}/deliver`.
#[handler]
pub(super) async fn deliver(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    transition(Action::Deliver, req, depot, res).await
}

/// `POST /v1/orders/{id}/cancel`.
#[handler]
pub(super) async fn cancel(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    transition(Action::Cancel, req, depot, res).await
}

/// `GET /v1/orders/{id}/events`: oldest first.
#[handler]
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
