//! Requests: built once (URIs, headers, bodies) and cloned cheaply per
//! request; and each worker's session, which picks the next request.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use serde::Deserialize;

use super::client::Body;
use super::config::Plan;
use super::fixtures::Fixtures;
use super::scenario::{Mix, Op, Scenario};

/// Headers and the path prefix shared by every request.
pub(crate) struct RequestBase {
    headers: HeaderMap,
    json_headers: HeaderMap,
    prefix: String,
}

impl RequestBase {
    /// `Host`, `User-Agent`, `Authorization` (with `--token`) and `-H` headers.
    pub(crate) fn new(plan: &Plan) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_str(&plan.target.authority).context("bad host in --target")?,
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("oms-cli-load/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(token) = &plan.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .context("--token holds characters that cannot go in a header")?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in &plan.headers {
            headers.insert(name.clone(), value.clone());
        }
        let mut json_headers = headers.clone();
        json_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(Self {
            headers,
            json_headers,
            prefix: plan.target.prefix.clone(),
        })
    }

    /// The origin-form URI of an API path under the target's prefix.
    pub(crate) fn uri(&self, path: &str) -> anyhow::Result<Uri> {
        format!("{}{path}", self.prefix)
            .parse()
            .with_context(|| format!("bad request path {path:?}"))
    }

    /// A `GET`.
    pub(crate) fn get(&self, uri: &Uri) -> Request<Body> {
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }

    /// A `POST`, with a JSON body or none.
    pub(crate) fn post(&self, uri: &Uri, body: Option<&Bytes>) -> Request<Body> {
        let mut req = Request::new(Full::new(body.cloned().unwrap_or_default()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = if body.is_some() {
            self.json_headers.clone()
        } else {
            self.headers.clone()
        };
        req
    }
}

/// The JSON body of `POST /v1/orders`: one unit each of `lines` SKUs of
/// `skus`, starting at index `first` and wrapping around.
pub(crate) fn order_body(run_id: &str, skus: &[String], first: usize, lines: usize) -> Bytes {
    let n = skus.len().max(1);
    let items: Vec<serde_json::Value> = (0..lines.clamp(1, n))
        .filter_map(|i| skus.get((first + i) % n))
        .map(|sku| serde_json::json!({"sku": sku, "quantity": 1}))
        .collect();
    Bytes::from(
        serde_json::json!({
            "customer_id": format!("load-{run_id}"),
            "currency": "USD",
            "items": items,
        })
        .to_string(),
    )
}

/// Everything the workers send, built once.
pub(crate) struct Workload {
    scenario: Scenario,
    mix: Option<Mix>,
    mix_total: u64,
    pub(crate) base: RequestBase,
    health: Uri,
    list_products: Uri,
    orders: Uri,
    products: Vec<Uri>,
    order_bodies: Vec<Bytes>,
    order_uris: Vec<Uri>,
}

impl Workload {
    /// Builds every URI and body the scenario can send.
    pub(crate) fn new(plan: &Plan, base: RequestBase, fixtures: &Fixtures) -> anyhow::Result<Self> {
        let products = fixtures
            .skus
            .iter()
            .map(|sku| base.uri(&format!("/v1/products/{sku}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let order_bodies = (0..fixtures.skus.len())
            .map(|i| order_body(&plan.run_id, &fixtures.skus, i, plan.order_items))
            .collect();
        let order_uris = fixtures
            .order_ids
            .iter()
            .map(|id| base.uri(&format!("/v1/orders/{id}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            scenario: plan.scenario,
            mix_total: plan.mix.as_ref().map_or(0, Mix::total),
            mix: plan.mix.clone(),
            health: base.uri("/health")?,
            list_products: base.uri("/v1/products")?,
            orders: base.uri("/v1/orders")?,
            products,
            order_bodies,
            order_uris,
            base,
        })
    }
}

/// The next request of a session.
pub(crate) struct Planned {
    pub(crate) op: Op,
    pub(crate) request: Request<Body>,
    /// The session needs the response body.
    pub(crate) keep_body: bool,
}

/// Where an order lifecycle stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lifecycle {
    Idle,
    Creating,
    ConfirmDue(String),
    Confirming(String),
    ShipDue(String),
    Shipping,
}

/// One worker's sequence of requests.
pub(crate) struct Session {
    rng: Rng,
    lifecycle: Lifecycle,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

impl Session {
    /// A session with its own random stream.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            lifecycle: Lifecycle::Idle,
        }
    }

    /// The next request.
    pub(crate) fn next(&mut self, w: &Workload) -> Planned {
        match std::mem::replace(&mut self.lifecycle, Lifecycle::Idle) {
            Lifecycle::ConfirmDue(id) => {
                if let Ok(uri) = w.base.uri(&format!("/v1/orders/{id}/confirm")) {
                    self.lifecycle = Lifecycle::Confirming(id);
                    return Planned {
                        op: Op::ConfirmOrder,
                        request: w.base.post(&uri, None),
                        keep_body: false,
                    };
                }
            }
            Lifecycle::ShipDue(id) => {
                if let Ok(uri) = w.base.uri(&format!("/v1/orders/{id}/ship")) {
                    self.lifecycle = Lifecycle::Shipping;
                    return Planned {
                        op: Op::ShipOrder,
                        request: w.base.post(&uri, None),
                        keep_body: false,
                    };
                }
            }
            _ => {}
        }
        let scenario = match (&w.mix, w.scenario) {
            (Some(mix), Scenario::Mixed) => mix.pick(self.rng.below(w.mix_total)),
            (_, s) => s,
        };
        match scenario {
            Scenario::Health | Scenario::Mixed => Planned {
                op: Op::Health,
                request: w.base.get(&w.health),
                keep_body: false,
            },
            Scenario::GetProduct => Planned {
                op: Op::GetProduct,
                request: w.base.get(self.pick(&w.products).unwrap_or(&w.health)),
                keep_body: false,
            },
            Scenario::ListProducts => Planned {
                op: Op::ListProducts,
                request: w.base.get(&w.list_products),
                keep_body: false,
            },
            Scenario::CreateOrder | Scenario::OrderLifecycle => {
                let lifecycle = scenario == Scenario::OrderLifecycle;
                if lifecycle {
                    self.lifecycle = Lifecycle::Creating;
                }
                Planned {
                    op: Op::CreateOrder,
                    request: w.base.post(&w.orders, self.pick(&w.order_bodies)),
                    keep_body: lifecycle,
                }
            }
            Scenario::GetOrder => Planned {
                op: Op::GetOrder,
                request: w.base.get(self.pick(&w.order_uris).unwrap_or(&w.health)),
                keep_body: false,
            },
        }
    }

    /// Takes in the answer to the last request (`None`: no answer).
    pub(crate) fn observe(&mut self, status: Option<u16>, body: Option<&[u8]>) {
        self.lifecycle = match (
            std::mem::replace(&mut self.lifecycle, Lifecycle::Idle),
            status,
        ) {
            (Lifecycle::Creating, Some(201)) => body
                .and_then(|b| serde_json::from_slice::<Created>(b).ok())
                .map_or(Lifecycle::Idle, |c| Lifecycle::ConfirmDue(c.id)),
            (Lifecycle::Confirming(id), Some(200)) => Lifecycle::ShipDue(id),
            _ => Lifecycle::Idle,
        };
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.rng.below(items.len() as u64) as usize)
    }
}

/// wyrand: a small, fast generator; statistical quality is ample for
/// picking fixtures and mix entries.
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed ^ 0x2d35_8dcc_aa6c_78a5)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_uniform_enough() {
        let mut rng = Rng::new(7);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[rng.below(10) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(Rng::new(1).below(0), 0);
    }

    #[test]
    fn lifecycle_goes_create_confirm_ship() {
        let mut s = Session::new(1);
        s.lifecycle = Lifecycle::Creating;
        s.observe(Some(201), Some(br#"{"id":"0190-abc","status":"pending"}"#));
        assert_eq!(s.lifecycle, Lifecycle::ConfirmDue("0190-abc".to_owned()));
        s.lifecycle = Lifecycle::Confirming("0190-abc".to_owned());
        s.observe(Some(200), None);
        assert_eq!(s.lifecycle, Lifecycle::ShipDue("0190-abc".to_owned()));
        s.lifecycle = Lifecycle::Shipping;
        s.observe(Some(200), None);
        assert_eq!(s.lifecycle, Lifecycle::Idle);
        // A refused step abandons the order.
        s.lifecycle = Lifecycle::Creating;
        s.observe(Some(409), Some(br#"{"code":"insufficient_stock"}"#));
        assert_eq!(s.lifecycle, Lifecycle::Idle);
        s.lifecycle = Lifecycle::Confirming("x".to_owned());
        s.observe(None, None);
        assert_eq!(s.lifecycle, Lifecycle::Idle);
    }
}
