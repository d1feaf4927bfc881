//! `/v1/products`: thin handlers over [`OrderService`](crate::domain::OrderService).

use salvo::prelude::*;

use super::request::{if_match, json_body, page_params};
use super::{ApiError, render_json, render_versioned, state};
use crate::cache::Cached;
use crate::domain::{NewProduct, ProductPatch, StockMove};

fn sku(req: &Request) -> String {
    req.param::<String>("sku").unwrap_or_default()
}

/// `POST /v1/products`.
#[handler]
pub(super) async fn create(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let (input, _) = json_body::<NewProduct>(req, state.config.server.max_body_bytes).await?;
    let product = state.orders.create_product(input).await?;
    state.cache.invalidate_products([&product.sku]);
    res.add_header("location", format!("/v1/products/{}", product.sku), true)
        .map_err(ApiError::internal)?;
    render_versioned(res, StatusCode::CREATED, &product, product.version);
    Ok(())
}

/// `GET /v1/products/{sku}`: 304 on a matching `If-None-Match`.
#[handler]
pub(super) async fn get(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let sku = sku(req);
    let cached = match state.cache.product(&sku) {
        Some(hit) => hit,
        None => {
            let epoch = state.cache.epoch();
            let product = state.orders.get_product(&sku).await?;
            let body = serde_json::to_vec(&product).map_err(ApiError::internal)?;
            let cached = std::sync::Arc::new(Cached::new(product.version, body));
            state
                .cache
                .fill_product(&sku, epoch, Cached::clone(&cached));
            cached
        }
    };
    super::render_cached(req, res, &cached);
    Ok(())
}

/// `GET /v1/products?limit&after`: ordered by SKU.
#[handler]
pub(super) async fn list(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let (limit, after) = page_params(req)?;
    let page = state.orders.list_products(limit, after.as_deref()).await?;
    render_json(res, StatusCode::OK, &page);
    Ok(())
}

/// `PATCH /v1/products/{sku}`: honours `If-Match`.
#[handler]
pub(super) async fn patch(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let sku = sku(req);
    let condition = if_match(req)?;
    let (input, _) = json_body::<ProductPatch>(req, state.config.server.max_body_bytes).await?;
    let expected = condition
        .expected(|| async { Ok::<_, ApiError>(state.orders.get_product(&sku).await?.version) })
        .await?;
    let product = state.orders.update_product(&sku, input, expected).await?;
    state.cache.invalidate_products([&product.sku]);
    render_versioned(res, StatusCode::OK, &product, product.version);
    Ok(())
}

/// `POST /v1/products/{sku}/stock`: restock or write off.
#[handler]
pub(super) async fn stock(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let sku = sku(req);
    let condition = if_match(req)?;
    let (input, _) = json_body::<StockMove>(req, state.config.server.max_body_bytes).await?;
    let expected = condition
        .expected(|| async { Ok::<_, ApiError>(state.orders.get_product(&sku).await?.version) })
        .await?;
    let product = state.orders.move_stock(&sku, input.delta, expected).await?;
    state.cache.invalidate_products([&product.sku]);
    render_versioned(res, StatusCode::OK, &product, product.version);
    Ok(())
}
