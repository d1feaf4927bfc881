//! `/v1/products`: thin handlers over [`OrderService`](crate::domain::OrderService).

use salvo::prelude::*;

use super::openapi::{Guarded, JsonBody, Problem};
use super::request::{if_match, json_body, page_params};
use super::{ApiError, render_json, render_versioned, state};
use crate::domain::{NewProduct, ProductPatch, StockMove};
use crate::domain::{Page, Product};

fn sku(req: &Request) -> String {
    req.param::<String>("sku").unwrap_or_default()
}

/// `POST /v1/products`.
#[endpoint(
    operation_id = "createProduct",
    tags("products"),
    summary = "Create a product",
    security(["bearer" = []]),
    request_body(content = NewProduct, content_type = "application/json"),
    status_codes(201, 400, 401, 403, 409, 413, 415, 422, 429, 500, 503),
    responses(
        (status_code = 201, description = "The product, version 1", body = Product, headers(("ETag" = String, description = "\"<version>\""), ("Location" = String, description = "/v1/products/{sku}"))),
        Guarded,
        JsonBody,
        (status_code = 409, description = "`sku_exists`", body = Problem, content_type = "application/problem+json"),
    ),
)]
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
#[endpoint(
    operation_id = "getProduct",
    tags("products"),
    summary = "Get a product",
    security(["bearer" = []]),
    parameters(
        ("sku" = String, Path, description = "The product's SKU", pattern = "^[A-Za-z0-9._-]{1,64}$"),
        ("If-None-Match" = Option<String>, Header, description = "Entity tags or *; 304 without a body when one is the current version"),
    ),
    responses(
        (status_code = 200, description = "The product", body = Product, headers(("ETag" = String, description = "\"<version>\""))),
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
    let sku = sku(req);
    let cached = state
        .cache
        .product_or_load(
            &sku,
            super::representation(state.orders.get_product(&sku), |p| p.version),
        )
        .await?;
    super::render_cached(req, res, &cached);
    Ok(())
}

/// `GET /v1/products?limit&after`: ordered by SKU.
#[endpoint(
    operation_id = "listProducts",
    tags("products"),
    summary = "List products, ordered by SKU",
    security(["bearer" = []]),
    parameters(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Page size, 1-500 (default 50); anything else is 400 bad_request"),
        ("after" = Option<String>, Query, description = "The previous page's next_cursor; an invalid one is 400 bad_cursor"),
    ),
    responses(
        (status_code = 200, description = "One page of products", body = Page<Product>),
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
    let page = state.orders.list_products(limit, after.as_deref()).await?;
    render_json(res, StatusCode::OK, &page);
    Ok(())
}

/// `PATCH /v1/products/{sku}`: honours `If-Match`.
#[endpoint(
    operation_id = "updateProduct",
    tags("products"),
    summary = "Change a product's name or price",
    security(["bearer" = []]),
    parameters(
        ("sku" = String, Path, description = "The product's SKU", pattern = "^[A-Za-z0-9._-]{1,64}$"),
        ("If-Match" = Option<String>, Header, description = "Entity tags (\"3\", a list, W/\"3\") or *; the write happens only if one is the current version, else 412 version_mismatch"),
    ),
    request_body(content = ProductPatch, content_type = "application/json"),
    responses(
        (status_code = 200, description = "The product after the change", body = Product, headers(("ETag" = String, description = "\"<version>\""))),
        Guarded,
        JsonBody,
        (status_code = 400, description = "`malformed_json`, or `bad_request` (If-Match is not a list of entity tags)", body = Problem, content_type = "application/problem+json"),
        (status_code = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status_code = 412, description = "`version_mismatch`: If-Match does not name the current version", body = Problem, content_type = "application/problem+json"),
    ),
)]
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
#[endpoint(
    operation_id = "moveStock",
    tags("products"),
    summary = "Restock or write off",
    description = "Adds `delta` to `available`; a write-off that would take it below 0 is refused.",
    security(["bearer" = []]),
    parameters(
        ("sku" = String, Path, description = "The product's SKU", pattern = "^[A-Za-z0-9._-]{1,64}$"),
        ("If-Match" = Option<String>, Header, description = "Entity tags (\"3\", a list, W/\"3\") or *; the write happens only if one is the current version, else 412 version_mismatch"),
    ),
    request_body(content = StockMove, content_type = "application/json"),
    responses(
        (status_code = 200, description = "The product after the move", body = Product, headers(("ETag" = String, description = "\"<version>\""))),
        Guarded,
        JsonBody,
        (status_code = 400, description = "`malformed_json`, or `bad_request` (If-Match is not a list of entity tags)", body = Problem, content_type = "application/problem+json"),
        (status_code = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status_code = 409, description = "`stock_negative`: available would go below 0", body = Problem, content_type = "application/problem+json"),
        (status_code = 412, description = "`version_mismatch`: If-Match does not name the current version", body = Problem, content_type = "application/problem+json"),
    ),
)]
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
