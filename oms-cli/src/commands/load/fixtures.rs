//! The run's own fixtures, made through the API before measuring: products
//! `LOAD-<run id>-<n>` with 1e9 units each, and orders for `get-order`.
//! Nothing else is created, and nothing is modified or deleted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::client::{Reply, call};
use super::config::Plan;
use super::workload::{RequestBase, order_body};

/// Requests in flight while seeding.
const SEED_CONCURRENCY: usize = 8;
/// Units of stock per product: enough that no run runs out.
const STOCK: u64 = 1_000_000_000;

/// What was created.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fixtures {
    pub(crate) skus: Vec<String>,
    pub(crate) order_ids: Vec<String>,
    pub(crate) seconds: f64,
}

#[derive(Deserialize)]
struct Problem {
    code: Option<String>,
    detail: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

fn describe(reply: &Reply) -> String {
    let problem = reply
        .body
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Problem>(b).ok());
    match problem {
        Some(Problem {
            code: Some(code),
            detail,
        }) => format!(
            "HTTP {} {code}{}",
            reply.status,
            detail.map(|d| format!(": {d}")).unwrap_or_default()
        ),
        _ => format!("HTTP {}", reply.status),
    }
}

fn refusal(what: &str, reply: &Reply) -> anyhow::Error {
    let hint = match reply.status {
        401 => " (the server wants a token: pass --token, with the write role)",
        403 => " (the token lacks the write role needed to create fixtures)",
        429 => " (rate limited: raise the token's budget or disable rate_limit for the test)",
        _ => "",
    };
    anyhow!("{what} failed: {}{hint}", describe(reply))
}

/// Checks that the target answers `GET /health`; warns unless it is 200.
pub(crate) async fn preflight(
    base: &RequestBase,
    addr: SocketAddr,
    target: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let uri = base.uri("/health")?;
    let mut conn = None;
    match call(&mut conn, addr, base.get(&uri), true, timeout).await {
        Ok(reply) if reply.status == 200 => Ok(()),
        Ok(reply) => {
            eprintln!(
                "warning: {target}/health answered {}; measuring anyway",
                describe(&reply)
            );
            Ok(())
        }
        Err(failure) => bail!(
            "cannot reach {target} ({addr}): {} error on GET /health",
            failure.name()
        ),
    }
}

/// Creates the products and orders the scenario needs.
pub(crate) async fn seed(
    plan: &Plan,
    base: &RequestBase,
    addr: SocketAddr,
) -> anyhow::Result<Fixtures> {
    let started = Instant::now();
    let timeout = plan.timeout.max(Duration::from_secs(5));
    let skus: Vec<String> = (0..plan.products)
        .map(|n| format!("LOAD-{}-{n}", plan.run_id))
        .collect();
    let products_uri = base.uri("/v1/products")?;
    futures::stream::iter(skus.iter().enumerate())
        .map(|(n, sku)| {
            let body = Bytes::from(
                serde_json::json!({
                    "sku": sku,
                    "name": format!("Load test product {n} (run {})", plan.run_id),
                    "price_minor": 1000 + n as u64,
                    "currency": "USD",
                    "available": STOCK,
                })
                .to_string(),
            );
            let req = base.post(&products_uri, Some(&body));
            async move {
                let mut conn = None;
                let reply = call(&mut conn, addr, req, true, timeout)
                    .await
                    .map_err(|f| anyhow!("creating product {sku}: {} error", f.name()))?;
                if reply.status != 201 {
                    return Err(refusal(&format!("creating product {sku}"), &reply));
                }
                Ok(())
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;

    let orders_uri = base.uri("/v1/orders")?;
    let order_ids = futures::stream::iter(0..plan.orders)
        .map(|n| {
            let req = (!skus.is_empty()).then(|| {
                let body = order_body(&plan.run_id, &skus, n % skus.len(), plan.order_items);
                base.post(&orders_uri, Some(&body))
            });
            async move {
                let req = req.context("orders need products: --products must be at least 1")?;
                let mut conn = None;
                let reply = call(&mut conn, addr, req, true, timeout)
                    .await
                    .map_err(|f| anyhow!("creating an order: {} error", f.name()))?;
                if reply.status != 201 {
                    return Err(refusal("creating an order", &reply));
                }
                let created: Created = reply
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .context("creating an order: the response has no order id")?;
                Ok(created.id)
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<String>>()
        .await?;
    Ok(Fixtures {
        skus,
        order_ids,
        seconds: started.elapsed().as_secs_f64(),
    })
}
