//! Hostile input through real HTTP (issue #9): property-generated JSON
//! bodies for every write endpoint, tampered cursors and query parameters
//! on every list, hostile headers and paths, against a real server with
//! auth on. Whatever comes in: never a 5xx, never a dropped connection,
//! every 4xx a problem+json with a code API.md documents for its status;
//! afterwards the server is healthy and the doctor finds every invariant
//! holding.
//!
//! Cases per property: `PROPTEST_CASES` (default 64). Each property prints
//! how many cases it ran and the statuses it saw.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::api::{Api, raw_exchange};
use common::{Backend, TestServer, backends};
use oms::core::config::{ApiKeyConfig, Role};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ADMIN: &str = "hostile-admin-token";
const READER: &str = "hostile-read-token";

/// Cases per property: `PROPTEST_CASES`, default 64.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn key(name: &str, token: &str, roles: &[Role]) -> ApiKeyConfig {
    ApiKeyConfig {
        name: name.to_owned(),
        sha256: hex::encode(Sha256::digest(token.as_bytes())),
        roles: roles.to_vec(),
    }
}

/// Codes API.md documents for each 4xx status.
fn documented(status: u16) -> &'static [&'static str] {
    match status {
        400 => &["malformed_json", "bad_cursor", "bad_request"],
        401 => &["unauthenticated"],
        403 => &["forbidden"],
        404 => &["not_found"],
        405 => &["method_not_allowed"],
        409 => &[
            "sku_exists",
            "insufficient_stock",
            "invalid_transition",
            "idempotency_in_progress",
            "stock_negative",
        ],
        412 => &["version_mismatch"],
        413 => &["payload_too_large"],
        415 => &["unsupported_media_type"],
        422 => &[
            "validation_failed",
            "unknown_sku",
            "currency_mismatch",
            "duplicate_sku",
            "idempotency_key_reused",
        ],
        429 => &["rate_limited"],
        _ => &[],
    }
}

/// The contract every answer to hostile input keeps: below 500, and a 4xx
/// is problem+json whose code is documented for its status.
fn check_answer(
    what: &str,
    status: u16,
    content_type: Option<&str>,
    body: &str,
) -> Result<(), TestCaseError> {
    let shown: String = body.chars().take(400).collect();
    if status >= 500 {
        return Err(TestCaseError::fail(format!(
            "{what}: server error {status}: {shown}"
        )));
    }
    if !(400..500).contains(&status) {
        return Ok(());
    }
    let content_type = content_type.unwrap_or("");
    if !content_type.starts_with("application/problem+json") {
        return Err(TestCaseError::fail(format!(
            "{what}: {status} with Content-Type {content_type:?}, not problem+json: {shown}"
        )));
    }
    let problem: Value = serde_json::from_str(body)
        .map_err(|e| TestCaseError::fail(format!("{what}: {status} body is not JSON ({e})")))?;
    let code = problem["code"].as_str().unwrap_or("");
    if !documented(status).contains(&code) {
        return Err(TestCaseError::fail(format!(
            "{what}: {status} with undocumented code {code:?}: {shown}"
        )));
    }
    if problem["status"] != status || problem["type"] != format!("/errors/{code}") {
        return Err(TestCaseError::fail(format!(
            "{what}: problem fields disagree with the status: {shown}"
        )));
    }
    Ok(())
}

/// What one property saw: cases and statuses.
#[derive(Default)]
struct Tally {
    cases: u64,
    statuses: BTreeMap<u16, u64>,
}

/// A server with auth on, seeded with products, orders and cursors.
struct Fixture {
    server: TestServer,
    api: Api,
    http: reqwest::Client,
    order_id: String,
    /// Cursors the server issued: products, orders, audit, events.
    cursors: Vec<String>,
    tally: Mutex<Tally>,
}

impl Fixture {
    async fn start(backend: Backend) -> Fixture {
        let server = TestServer::start_with(backend, |c| {
            c.auth.enabled = true;
            c.auth.keys = vec![
                key("admin", ADMIN, &[Role::Admin]),
                key("reader", READER, &[Role::Read]),
            ];
            // Small enough that property bodies cross it now and then.
            c.server.max_body_bytes = 16_384;
        })
        .await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let api = Api::new(&server, backend);
        let fixture = Fixture {
            server,
            api,
            http,
            order_id: String::new(),
            cursors: Vec::new(),
            tally: Mutex::new(Tally::default()),
        };
        fixture.seed().await
    }

    async fn seed(mut self) -> Fixture {
        for (sku, currency) in [("SEED-A", "EUR"), ("SEED-B", "EUR"), ("SEED-U", "USD")] {
            let body = json!({"sku": sku, "name": sku, "price_minor": 250,
                              "currency": currency, "available": 10_000});
            let (status, _, text) = self
                .send(Method::POST, "/v1/products", Some(body.to_string()), &[])
                .await
                .expect("seed product");
            assert_eq!(status, 201, "seeding {sku}: {text}");
        }
        let mut ids = Vec::new();
        for customer in ["c-1", "c-2"] {
            let body = json!({"customer_id": customer, "currency": "EUR",
                              "items": [{"sku": "SEED-A", "quantity": 2}]});
            let (status, _, text) = self
                .send(Method::POST, "/v1/orders", Some(body.to_string()), &[])
                .await
                .expect("seed order");
            assert_eq!(status, 201, "seeding an order: {text}");
            let order: Value = serde_json::from_str(&text).expect("order json");
            ids.push(order["id"].as_str().expect("order id").to_owned());
        }
        let confirm = format!("/v1/orders/{}/confirm", ids[0]);
        let (status, _, text) = self
            .send(Method::POST, &confirm, None, &[])
            .await
            .expect("confirm");
        assert_eq!(status, 200, "confirming: {text}");
        self.order_id = ids[0].clone();
        let events = format!("/v1/orders/{}/events?limit=1", ids[0]);
        for path in [
            "/v1/products?limit=1",
            "/v1/orders?limit=1",
            "/v1/audit?limit=1",
            events.as_str(),
        ] {
            // The audit pipeline writes off the request path: wait for a page.
            for _ in 0..100 {
                let (_, _, text) = self.send(Method::GET, path, None, &[]).await.expect(path);
                let page: Value = serde_json::from_str(&text).expect("page json");
                if let Some(cursor) = page["next_cursor"].as_str() {
                    self.cursors.push(cursor.to_owned());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert_eq!(self.cursors.len(), 4, "every list issued a cursor");
        self
    }

    /// Sends as admin (unless `headers` brings its own Authorization);
    /// a transport error is the connection dropped on us.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<(u16, HeaderMap, String), String> {
        let mut req = self.http.request(method, self.api.url(path));
        let mut map = HeaderMap::new();
        map.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {ADMIN}")).expect("header"),
        );
        if body.is_some() {
            map.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        for (name, value) in headers {
            map.insert(name.clone(), value.clone());
        }
        req = req.headers(map);
        if let Some(body) = body {
            req = req.body(body);
        }
        let res = req.send().await.map_err(|e| format!("{e:?}"))?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.map_err(|e| format!("body: {e:?}"))?;
        Ok((status, headers, text))
    }

    /// Sends and checks the answer against the contract.
    async fn probe(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<(u16, Value), TestCaseError> {
        let what = format!("{method} {path}");
        let (status, res_headers, text) = self
            .send(method, path, body, headers)
            .await
            .map_err(|e| TestCaseError::fail(format!("{what}: no answer: {e}")))?;
        let content_type = res_headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        check_answer(&what, status, content_type, &text)?;
        self.count(status);
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    fn count(&self, status: u16) {
        let mut tally = self.tally.lock().expect("tally");
        tally.cases += 1;
        *tally.statuses.entry(status).or_default() += 1;
    }

    /// Health and stock conservation after the run; prints the tally.
    async fn finish(self, property: &str, backend: Backend) {
        {
            let tally = self.tally.lock().expect("tally");
            eprintln!(
                "hostile: {property} [{backend:?}]: {} requests, statuses {:?}",
                tally.cases, tally.statuses
            );
        }
        let health = self.api.get("/health").await;
        assert_eq!(
            health.status,
            200,
            "{property}: healthy after the run: {}",
            health.describe()
        );
        // The doctor: stock conservation, reservations matching open
        // orders, event histories, ... all hold after the run.
        let report = oms::core::domain::check_invariants(self.server.oms.database(), 10)
            .await
            .expect("doctor runs");
        assert!(
            report.is_consistent(),
            "{property} [{backend:?}]: doctor after the run: {report:?}"
        );
        self.server.stop().await;
    }
}

/// Runs `property` over `strategy` on every backend, `cases()` cases each.
fn run_property<S, F>(name: &str, strategy: S, check: F)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(&Fixture, S::Value) -> futures::future::BoxFuture<'_, Result<(), TestCaseError>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for backend in backends(name) {
        let fixture = rt.block_on(Fixture::start(backend));
        let mut runner = TestRunner::new(PtConfig {
            cases: cases(),
            max_shrink_iters: 256,
            failure_persistence: None,
            ..PtConfig::default()
        });
        let run = std::cell::Cell::new(0u32);
        let result = runner.run(&strategy, |input| {
            run.set(run.get() + 1);
            rt.block_on(check(&fixture, input))
        });
        eprintln!(
            "hostile: {name} [{backend:?}]: {} cases (shrinking included)",
            run.get()
        );
        if let Err(err) = result {
            panic!("{name} [{backend:?}]: {err}");
        }
        rt.block_on(fixture.finish(name, backend));
    }
}

// ---- strategies -----------------------------------------------------------

const FIELDS: &[&str] = &[
    "sku",
    "name",
    "price_minor",
    "currency",
    "available",
    "delta",
    "customer_id",
    "items",
    "quantity",
    "note",
    "reason",
];

/// Strings that have broken servers: empty, NUL, control and bidi
/// characters, long runs, emoji, SQL and path fragments.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        "[A-Za-z0-9._-]{1,70}",
        "[A-Z]{2,4}",
        Just(String::new()),
        Just("\0".to_owned()),
        Just("a\0b".to_owned()),
        Just("\u{202e}\u{200b}\u{feff}".to_owned()),
        Just("'; DROP TABLE products; --".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("%00%2e%2e".to_owned()),
        (1usize..1200).prop_map(|n| "x".repeat(n)),
        (1usize..300).prop_map(|n| "🦀".repeat(n)),
        Just("\u{1F600}\u{0301}\u{10FFFF}".to_owned()),
    ]
}

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(i64::MIN)),
        Just(json!(i64::MAX)),
        Just(json!(u64::MAX)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(10_001)),
        Just(json!(9_007_199_254_740_993_u64)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        Just(json!(1.5)),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        hostile_number(),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        let name = prop_oneof![
            proptest::sample::select(FIELDS).prop_map(str::to_owned),
            "[a-z_]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(name, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The write endpoints, with a target that exists or not.
#[derive(Debug, Clone, Copy)]
enum Write {
    CreateProduct,
    PatchProduct {
        existing: bool,
    },
    Stock {
        existing: bool,
    },
    CreateOrder,
    Transition {
        action: &'static str,
        existing: bool,
    },
}

impl Write {
    fn method(self) -> Method {
        match self {
            Write::PatchProduct { .. } => Method::PATCH,
            _ => Method::POST,
        }
    }

    fn path(self, order_id: &str) -> String {
        let sku = |existing| if existing { "SEED-B" } else { "NO-SUCH-SKU" };
        let id = |existing| {
            if existing {
                order_id.to_owned()
            } else {
                uuid::Uuid::now_v7().to_string()
            }
        };
        match self {
            Write::CreateProduct => "/v1/products".to_owned(),
            Write::PatchProduct { existing } => format!("/v1/products/{}", sku(existing)),
            Write::Stock { existing } => format!("/v1/products/{}/stock", sku(existing)),
            Write::CreateOrder => "/v1/orders".to_owned(),
            Write::Transition { action, existing } => {
                format!("/v1/orders/{}/{action}", id(existing))
            }
        }
    }

    /// A body this endpoint accepts (before mutation).
    fn valid_body(self, n: u32) -> Value {
        match self {
            Write::CreateProduct => json!({"sku": format!("P-{n}"), "name": "Mug",
                "price_minor": 1999, "currency": "EUR", "available": 3}),
            Write::PatchProduct { .. } => json!({"name": "Renamed", "price_minor": 300}),
            Write::Stock { .. } => json!({"delta": 1}),
            Write::CreateOrder => json!({"customer_id": "c-9", "currency": "EUR",
                "items": [{"sku": "SEED-A", "quantity": 1}, {"sku": "SEED-B", "quantity": 1}],
                "note": "gift"}),
            Write::Transition { .. } => json!({"reason": "because"}),
        }
    }
}

fn arb_write() -> impl Strategy<Value = Write> {
    prop_oneof![
        Just(Write::CreateProduct),
        any::<bool>().prop_map(|existing| Write::PatchProduct { existing }),
        any::<bool>().prop_map(|existing| Write::Stock { existing }),
        Just(Write::CreateOrder),
        (
            proptest::sample::select(&["confirm", "ship", "deliver", "cancel"][..]),
            any::<bool>()
        )
            .prop_map(|(action, existing)| Write::Transition { action, existing }),
    ]
}

/// One change to a valid body.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Replace(usize, Value),
    Number(usize, Value),
    Add(String, Value),
    /// Applied to every `items[*]` object of an order.
    Item(String, Value),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), arb_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        (any::<usize>(), hostile_number()).prop_map(|(i, v)| Mutation::Number(i, v)),
        (
            prop_oneof![
                proptest::sample::select(FIELDS).prop_map(str::to_owned),
                "\\PC{1,12}"
            ],
            arb_json()
        )
            .prop_map(|(k, v)| Mutation::Add(k, v)),
        (
            proptest::sample::select(&["sku", "quantity", "extra"][..]).prop_map(str::to_owned),
            prop_oneof![hostile_number(), hostile_string().prop_map(Value::String)]
        )
            .prop_map(|(k, v)| Mutation::Item(k, v)),
    ]
}

fn mutate(mut body: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        let Some(object) = body.as_object_mut() else {
            break;
        };
        let keys: Vec<String> = object.keys().cloned().collect();
        let pick = |i: &usize| keys.get(i % keys.len().max(1)).cloned();
        match m {
            Mutation::Remove(i) => {
                if let Some(k) = pick(i) {
                    object.remove(&k);
                }
            }
            Mutation::Replace(i, v) | Mutation::Number(i, v) => {
                if let Some(k) = pick(i) {
                    object.insert(k, v.clone());
                }
            }
            Mutation::Add(k, v) => {
                object.insert(k.clone(), v.clone());
            }
            Mutation::Item(k, v) => {
                if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        item.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    body
}

/// A request body: arbitrary JSON, a mutated valid body, raw bytes, or a
/// valid body cut short or nested past any sane depth.
#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Mutated(Vec<Mutation>),
    Bytes(Vec<u8>),
    Truncated(usize),
    Deep(usize),
    Valid,
}

fn arb_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        3 => arb_json().prop_map(Body::Json),
        5 => prop::collection::vec(arb_mutation(), 1..4).prop_map(Body::Mutated),
        2 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
        1 => any::<usize>().prop_map(Body::Truncated),
        1 => (200usize..20_000).prop_map(Body::Deep),
        1 => Just(Body::Valid),
    ]
}

fn body_bytes(body: &Body, valid: Value) -> Vec<u8> {
    match body {
        Body::Json(v) => v.to_string().into_bytes(),
        Body::Mutated(m) => mutate(valid, m).to_string().into_bytes(),
        Body::Bytes(b) => b.clone(),
        Body::Truncated(at) => {
            let text = valid.to_string().into_bytes();
            text[..at % text.len().max(1)].to_vec()
        }
        Body::Deep(depth) => {
            let mut text = "[".repeat(*depth);
            text.push_str(&"]".repeat(*depth));
            text.into_bytes()
        }
        Body::Valid => valid.to_string().into_bytes(),
    }
}

// ---- properties -----------------------------------------------------------

#[test]
fn write_endpoints_survive_hostile_bodies() {
    let content_types = [
        "application/json",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "APPLICATION/JSON",
    ];
    let strategy = (
        arb_write(),
        arb_body(),
        // Mostly JSON, so most cases reach the parser and validation.
        prop_oneof![
            3 => Just("application/json"),
            1 => proptest::sample::select(content_types.to_vec()),
        ],
        any::<u32>(),
    );
    run_property(
        "write_endpoints_survive_hostile_bodies",
        strategy,
        |fixture, (write, body, content_type, n)| {
            Box::pin(async move {
                let path = write.path(&fixture.order_id);
                let bytes = body_bytes(&body, write.valid_body(n));
                let headers = [(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type),
                )];
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let raw_bytes = matches!(body, Body::Bytes(_));
                let req = fixture.http.request(write.method(), fixture.api.url(&path));
                let (status, problem) = if raw_bytes {
                    // Non-UTF-8 bytes go as they are.
                    let res = req
                        .bearer_auth(ADMIN)
                        .header(reqwest::header::CONTENT_TYPE, content_type)
                        .body(bytes)
                        .send()
                        .await
                        .map_err(|e| TestCaseError::fail(format!("{path}: no answer: {e:?}")))?;
                    let status = res.status().as_u16();
                    let ct = res
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let text = res.text().await.unwrap_or_default();
                    check_answer(&path, status, ct.as_deref(), &text)?;
                    fixture.count(status);
                    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
                } else {
                    fixture
                        .probe(write.method(), &path, Some(text), &headers)
                        .await?
                };
                let json_type = content_type.to_ascii_lowercase().contains("json");
                if !json_type && !matches!(write, Write::Transition { .. }) {
                    prop_assert_eq!(status, 415, "{} with {}: {}", path, content_type, problem);
                }
                if matches!(body, Body::Deep(_)) && json_type && status != 404 {
                    // Valid JSON at any depth: refused by shape (422), by
                    // the parser's depth limit (400) or by size (413).
                    prop_assert!(
                        [400, 413, 422].contains(&status),
                        "deep nesting is refused, got {status}: {problem}"
                    );
                }
                Ok(())
            })
        },
    );
}

/// A query value: arbitrary text, a number, or a cursor the server issued,
/// as issued or tampered with.
#[derive(Debug, Clone)]
enum QueryValue {
    Text(String),
    Number(i128),
    Cursor(usize),
    Tampered(usize, usize, u8),
    Truncated(usize, usize),
}

fn arb_query_value() -> impl Strategy<Value = QueryValue> {
    prop_oneof![
        hostile_string().prop_map(QueryValue::Text),
        any::<i128>().prop_map(QueryValue::Number),
        (-5i128..600).prop_map(QueryValue::Number),
        any::<usize>().prop_map(QueryValue::Cursor),
        (any::<usize>(), any::<usize>(), any::<u8>())
            .prop_map(|(c, i, b)| QueryValue::Tampered(c, i, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(c, i)| QueryValue::Truncated(c, i)),
        Just(QueryValue::Text("2026-11-28T14:00:00.123Z".to_owned())),
        Just(QueryValue::Text("pending".to_owned())),
    ]
}

impl QueryValue {
    fn render(&self, cursors: &[String]) -> String {
        let cursor = |c: &usize| cursors[c % cursors.len()].clone();
        match self {
            QueryValue::Text(t) => t.clone(),
            QueryValue::Number(n) => n.to_string(),
            QueryValue::Cursor(c) => cursor(c),
            QueryValue::Tampered(c, i, b) => {
                let mut bytes = cursor(c).into_bytes();
                let at = i % bytes.len();
                bytes[at] ^= b | 1;
                String::from_utf8_lossy(&bytes).into_owned()
            }
            QueryValue::Truncated(c, i) => {
                let text = cursor(c);
                text[..i % text.len()].to_owned()
            }
        }
    }
}

#[test]
fn lists_survive_hostile_queries() {
    let names = [
        "limit",
        "after",
        "customer_id",
        "status",
        "actor",
        "method",
        "since",
        "sku",
        "",
    ];
    let strategy = (
        0usize..4,
        prop::collection::vec(
            (proptest::sample::select(names.to_vec()), arb_query_value()),
            0..5,
        ),
    );
    run_property(
        "lists_survive_hostile_queries",
        strategy,
        |fixture, (list, params)| {
            Box::pin(async move {
                let path = match list {
                    0 => "/v1/products".to_owned(),
                    1 => "/v1/orders".to_owned(),
                    2 => "/v1/audit".to_owned(),
                    _ => format!("/v1/orders/{}/events", fixture.order_id),
                };
                let query: Vec<(String, String)> = params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.render(&fixture.cursors)))
                    .collect();
                let url = reqwest::Url::parse_with_params(&fixture.api.url(&path), &query)
                    .map_err(|e| TestCaseError::fail(format!("url: {e}")))?;
                let full = format!("{}?{}", path, url.query().unwrap_or(""));
                let (status, body) = fixture.probe(Method::GET, &full, None, &[]).await?;
                prop_assert!(
                    status == 200 || status == 400,
                    "{full}: a list answers 200 or 400, got {status}: {body}"
                );
                if status == 200 {
                    prop_assert!(body["items"].is_array(), "{full}: items: {body}");
                    prop_assert!(
                        body["next_cursor"].is_null() || body["next_cursor"].is_string(),
                        "{full}: next_cursor: {body}"
                    );
                } else {
                    let code = body["code"].as_str().unwrap_or("");
                    prop_assert!(
                        code == "bad_request" || code == "bad_cursor",
                        "{full}: {body}"
                    );
                }
                Ok(())
            })
        },
    );
}

/// A header value: visible text, long, or with obs-text bytes.
fn arb_header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,40}".prop_map(String::into_bytes),
        Just(b"\"1\"".to_vec()),
        Just(b"W/\"2\", \"999\"".to_vec()),
        Just(b"*".to_vec()),
        Just(format!("Bearer {ADMIN}").into_bytes()),
        Just(format!("Bearer {READER}").into_bytes()),
        Just(b"Bearer ".to_vec()),
        Just(b"Basic YWRtaW46YWRtaW4=".to_vec()),
        Just(b"gzip;q=2, br;q=-1, *;q=nan".to_vec()),
        Just(b"application/json; charset=latin1".to_vec()),
        (256usize..6000).prop_map(|n| "k".repeat(n).into_bytes()),
        prop::collection::vec(0x20u8..=0xff, 1..40)
            .prop_map(|v| v.into_iter().filter(|b| *b != 0x7f).collect()),
    ]
}

#[test]
fn endpoints_survive_hostile_headers() {
    let names = [
        "if-match",
        "if-none-match",
        "idempotency-key",
        "authorization",
        "content-type",
        "accept-encoding",
        "x-request-id",
        "accept",
        "range",
    ];
    let strategy = (
        0usize..8,
        prop::collection::vec(
            (proptest::sample::select(names.to_vec()), arb_header_value()),
            1..4,
        ),
    );
    run_property(
        "endpoints_survive_hostile_headers",
        strategy,
        |fixture, (endpoint, headers)| {
            Box::pin(async move {
                let order = &fixture.order_id;
                let (method, path, body) = match endpoint {
                    0 => (Method::GET, "/v1/products/SEED-A".to_owned(), None),
                    1 => (
                        Method::PATCH,
                        "/v1/products/SEED-A".to_owned(),
                        Some(json!({"name": "Renamed"})),
                    ),
                    2 => (
                        Method::POST,
                        "/v1/products/SEED-A/stock".to_owned(),
                        Some(json!({"delta": 1})),
                    ),
                    3 => (
                        Method::POST,
                        "/v1/orders".to_owned(),
                        Some(json!({"customer_id": "h", "currency": "EUR",
                                    "items": [{"sku": "SEED-B", "quantity": 1}]})),
                    ),
                    4 => (Method::GET, format!("/v1/orders/{order}"), None),
                    5 => (Method::POST, format!("/v1/orders/{order}/ship"), None),
                    6 => (Method::GET, "/v1/audit?limit=2".to_owned(), None),
                    _ => (Method::GET, "/v1/products?limit=2".to_owned(), None),
                };
                let headers: Vec<(HeaderName, HeaderValue)> = headers
                    .iter()
                    .filter_map(|(name, value)| {
                        Some((
                            HeaderName::from_static(name),
                            HeaderValue::from_bytes(value).ok()?,
                        ))
                    })
                    .collect();
                let (status, body) = fixture
                    .probe(method, &path, body.map(|b| b.to_string()), &headers)
                    .await?;
                if status == 401 {
                    prop_assert_eq!(body["code"].as_str(), Some("unauthenticated"));
                }
                Ok(())
            })
        },
    );
}

/// A path segment: percent-encoded text, dot segments, long or unicode.
fn arb_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._~-]{1,20}",
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("%2F".to_owned()),
        Just("%00".to_owned()),
        Just("%".to_owned()),
        Just("%zz".to_owned()),
        Just(String::new()),
        (1usize..4000).prop_map(|n| "s".repeat(n)),
        "\\PC{1,12}".prop_map(|s| percent_encode(s.as_bytes())),
        prop::collection::vec(any::<u8>(), 1..12).prop_map(|b| percent_encode(&b)),
        Just("SEED-A".to_owned()),
        Just("stock".to_owned()),
        Just("events".to_owned()),
        Just(uuid::Uuid::nil().to_string()),
    ]
}

fn percent_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

#[test]
fn paths_survive_hostile_segments() {
    let prefixes = [
        "/",
        "/v1/",
        "/v1/products/",
        "/v1/orders/",
        "/v1/audit/",
        "/health/",
    ];
    let methods = ["GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "HEAD"];
    let strategy = (
        proptest::sample::select(methods.to_vec()),
        proptest::sample::select(prefixes.to_vec()),
        prop::collection::vec(arb_segment(), 1..4),
        prop::option::of("[A-Za-z0-9=&%._-]{0,30}"),
    );
    run_property(
        "paths_survive_hostile_segments",
        strategy,
        |fixture, (method, prefix, segments, query)| {
            Box::pin(async move {
                let mut target = format!("{prefix}{}", segments.join("/"));
                if let Some(q) = query {
                    target.push('?');
                    target.push_str(&q);
                }
                // Raw TCP: the target reaches the server exactly as written
                // (a client library would resolve `..` first).
                let body = if method == "GET" || method == "HEAD" {
                    String::new()
                } else {
                    "{}".to_owned()
                };
                let request = format!(
                    "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let what = format!("{method} {}", target.chars().take(120).collect::<String>());
                if method == "HEAD" {
                    // No body follows a HEAD response: read the head only.
                    let res = head_exchange(fixture.server.addr, request.as_bytes())
                        .await
                        .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                    prop_assert!(res < 500, "{what}: HEAD answered {res}");
                    fixture.count(res);
                    return Ok(());
                }
                let res = raw_exchange(
                    fixture.server.addr,
                    request.as_bytes(),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                check_answer(
                    &what,
                    res.status,
                    res.header("content-type").as_deref(),
                    &res.body,
                )?;
                fixture.count(res.status);
                Ok(())
            })
        },
    );
}

/// Sends `request` and returns the status of the response head.
async fn head_exchange(addr: std::net::SocketAddr, request: &[u8]) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&buf);
        text.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status line in {text:?}"))
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .map_err(|_| "no response within 30s".to_owned())?
}

/// Framing the client library would never send: Content-Length that
/// disagrees with the body, several of them, non-UTF-8 header bytes. The
/// server answers the request it can make out (or refuses it) and stays
/// up; it never answers 5xx.
#[tokio::test]
async fn malformed_framing_is_refused_and_the_server_stays_up() {
    for backend in backends("malformed_framing_is_refused_and_the_server_stays_up") {
        let fixture = Fixture::start(backend).await;
        let addr = fixture.server.addr;
        let head = |extra: &str| {
            format!(
                "POST /v1/products/SEED-A/stock HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
                 Content-Type: application/json\r\n{extra}"
            )
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "Content-Length shorter than the body",
                format!("{}Content-Length: 5\r\n\r\n{{\"delta\": 1}}", head("")).into_bytes(),
            ),
            (
                "Content-Length not a number",
                format!("{}Content-Length: abc\r\n\r\n{{}}", head("")).into_bytes(),
            ),
            (
                "two different Content-Lengths",
                format!(
                    "{}Content-Length: 2\r\nContent-Length: 12\r\n\r\n{{\"delta\": 1}}",
                    head("")
                )
                .into_bytes(),
            ),
            (
                "Content-Length and chunked",
                format!(
                    "{}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                    head("")
                )
                .into_bytes(),
            ),
            (
                "negative Content-Length",
                format!("{}Content-Length: -1\r\n\r\n", head("")).into_bytes(),
            ),
            ("non-UTF-8 header value", {
                let mut r = head("").into_bytes();
                r.extend_from_slice(b"Idempotency-Key: \xff\xfe\r\nContent-Length: 2\r\n\r\n{}");
                r
            }),
            ("non-UTF-8 request target", {
                let mut r = b"GET /v1/products/\xff\xfe HTTP/1.1\r\nHost: x\r\n".to_vec();
                r.extend_from_slice(format!("Authorization: Bearer {ADMIN}\r\n\r\n").as_bytes());
                r
            }),
            (
                "bare LF line endings",
                b"GET /health HTTP/1.1\nHost: x\n\n".to_vec(),
            ),
        ];
        for (what, request) in &cases {
            // An answer, or a close: never a 5xx, never a hang.
            match raw_exchange(addr, request, Duration::from_secs(10)).await {
                Ok(res) => {
                    assert!(
                        res.status < 500,
                        "[{backend:?}] {what}: got {} {}",
                        res.status,
                        res.body
                    );
                    if res.header("content-type").is_some() {
                        check_answer(
                            what,
                            res.status,
                            res.header("content-type").as_deref(),
                            &res.body,
                        )
                        .unwrap_or_else(|e| panic!("[{backend:?}] {e}"));
                    }
                    fixture.count(res.status);
                }
                Err(err) => {
                    assert!(
                        err.contains("closed") || err.contains("read failed"),
                        "[{backend:?}] {what}: neither an answer nor a close: {err}"
                    );
                }
            }
            let health = fixture.api.get("/health").await;
            assert_eq!(health.status, 200, "[{backend:?}] healthy after {what}");
        }
        fixture
            .finish(
                "malformed_framing_is_refused_and_the_server_stays_up",
                backend,
            )
            .await;
    }
}

/// A request refused before its body was read (415, 401) leaves the
/// keep-alive connection usable: the next request on it is answered.
#[tokio::test]
async fn refused_bodies_leave_the_connection_usable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fixture = Fixture::start(Backend::Sqlite).await;
    let body = "x".repeat(4000);
    let refused = [
        (
            415,
            format!(
                "POST /v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
                 Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        ),
        (
            401,
            format!(
                "POST /v1/products HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        ),
    ];
    for (status, request) in refused {
        let mut stream = tokio::net::TcpStream::connect(fixture.server.addr)
            .await
            .expect("connect");
        // The head first, the body a moment later, as clients that write
        // them separately do: the refusal must not race the body.
        let (head, rest) = request.split_at(request.find("\r\n\r\n").expect("head end") + 4);
        stream.write_all(head.as_bytes()).await.expect("write head");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stream.write_all(rest.as_bytes()).await;
        let mut seen = Vec::new();
        let mut buf = [0u8; 8192];
        // The refusal, then a second request on the same connection.
        let mut sent_second = false;
        let answers = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let n = stream.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                if !sent_second && text.contains("\r\n\r\n") && text.contains("\"code\"") {
                    sent_second = true;
                    // A closed connection shows in the assertion below.
                    let _ = stream
                        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                        .await;
                }
                if text.matches("HTTP/1.1 ").count() >= 2 && text.ends_with('}') {
                    break;
                }
            }
            String::from_utf8_lossy(&seen).into_owned()
        })
        .await
        .expect("answers within 30s");
        assert!(
            answers.starts_with(&format!("HTTP/1.1 {status}")),
            "the refusal comes first: {answers}"
        );
        assert!(
            answers.contains("HTTP/1.1 200"),
            "after a {status} refusal the connection still serves the next request: {answers}"
        );
    }
    fixture
        .finish(
            "refused_bodies_leave_the_connection_usable",
            Backend::Sqlite,
        )
        .await;
}
