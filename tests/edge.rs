//! The edge: auth matrix, rate limits, read cache, compression, limits.

mod common;

use std::time::Duration;

use common::{Backend, TestServer, backends, client};
use oms::core::config::{ApiKeyConfig, Role};
use reqwest::{Method, StatusCode};
use salvo::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const READ: &str = "oms_test_read_token";
const WRITE: &str = "oms_test_write_token";
const ADMIN: &str = "oms_test_admin_token";

fn key(name: &str, token: &str, roles: &[Role]) -> ApiKeyConfig {
    ApiKeyConfig {
        name: name.to_owned(),
        sha256: hex::encode(Sha256::digest(token.as_bytes())),
        roles: roles.to_vec(),
    }
}

async fn with_auth(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.auth.enabled = true;
        c.auth.keys = vec![
            key("reader", READ, &[Role::Read]),
            key("writer", WRITE, &[Role::Write]),
            key("ops", ADMIN, &[Role::Admin]),
        ];
    })
    .await
}

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = client().request(method, server.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

#[tokio::test]
async fn auth_matrix_every_route_class_and_token() {
    for backend in backends("auth_matrix_every_route_class_and_token") {
        let server = with_auth(backend).await;
        let seed = send(&server, Method::POST, "/v1/products", Some(ADMIN), Some(json!({"sku": "AUTH-1", "name": "A", "price_minor": 100, "currency": "EUR", "available": 100}))).await;
        assert_eq!(seed.status(), 201);

        // (method, path, body, allowed for: none, read, write, admin)
        let product = json!({"sku": "AUTH-{n}", "name": "A", "price_minor": 1, "currency": "EUR"});
        let order = json!({"customer_id": "c1", "currency": "EUR", "items": [{"sku": "AUTH-1", "quantity": 1}]});
        let cases: Vec<(Method, &str, Option<Value>, [bool; 4])> = vec![
            (Method::GET, "/health", None, [true, true, true, true]),
            (Method::GET, "/v1/products", None, [false, true, true, true]),
            (
                Method::GET,
                "/v1/products/AUTH-1",
                None,
                [false, true, true, true],
            ),
            (
                Method::POST,
                "/v1/products",
                Some(product),
                [false, false, true, true],
            ),
            (Method::GET, "/v1/orders", None, [false, true, true, true]),
            (
                Method::POST,
                "/v1/orders",
                Some(order),
                [false, false, true, true],
            ),
            (Method::GET, "/v1/audit", None, [false, false, false, true]),
            (
                Method::GET,
                "/debug/performance",
                None,
                [false, false, false, true],
            ),
            (Method::GET, "/metrics", None, [false, false, false, true]),
        ];
        let mut n = 0;
        for (method, path, body, allowed) in cases {
            for (i, token) in [None, Some(READ), Some(WRITE), Some(ADMIN)]
                .into_iter()
                .enumerate()
            {
                n += 1;
                let body = body.as_ref().map(|b| {
                    serde_json::from_str::<Value>(&b.to_string().replace("{n}", &n.to_string()))
                        .expect("json")
                });
                let res = send(&server, method.clone(), path, token, body).await;
                let status = res.status();
                let who = token.unwrap_or("no token");
                if allowed[i] {
                    assert!(
                        status.is_success(),
                        "{method} {path} with {who}: expected success, got {status}"
                    );
                } else if token.is_none() {
                    assert_eq!(
                        status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {path} with {who}"
                    );
                    assert_eq!(res.headers()["www-authenticate"], "Bearer");
                    let problem: Value = res.json().await.expect("problem");
                    assert_eq!(problem["code"], "unauthenticated");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with {who}");
                    let problem: Value = res.json().await.expect("problem");
                    assert_eq!(problem["code"], "forbidden");
                }
            }
        }
        // An unknown token is 401, and the actor of a known one is its name.
        let res = send(
            &server,
            Method::GET,
            "/v1/products",
            Some("oms_not_a_token"),
            None,
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let orders: Value = send(&server, Method::GET, "/v1/orders", Some(READ), None)
            .await
            .json()
            .await
            .expect("json");
        let mut actors = Vec::new();
        for order in orders["items"].as_array().expect("items") {
            let id = order["id"].as_str().expect("id");
            let events: Value = send(
                &server,
                Method::GET,
                &format!("/v1/orders/{id}/events"),
                Some(READ),
                None,
            )
            .await
            .json()
            .await
            .expect("json");
            actors.push(
                events["items"][0]["actor"]
                    .as_str()
                    .expect("actor")
                    .to_owned(),
            );
        }
        actors.sort();
        assert_eq!(
            actors,
            vec!["ops", "writer"],
            "each event's actor is the creating token's name"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn rate_limit_refuses_after_the_burst_with_headers_then_recovers() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.rate_limit.enabled = true;
        c.rate_limit.requests_per_second = 2;
        c.rate_limit.burst = 3;
    })
    .await;
    let http = client();
    for i in 0..3 {
        let res = http
            .get(server.url("/v1/products"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200, "request {i} is within the burst");
        assert!(res.headers().contains_key("ratelimit-policy"));
        assert!(
            res.headers()["ratelimit"]
                .to_str()
                .expect("ascii")
                .contains(";r=")
        );
    }
    let res = http
        .get(server.url("/v1/products"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    assert_eq!(res.headers()["ratelimit-policy"], "\"default\";q=3;w=2");
    assert!(
        res.headers()["ratelimit"]
            .to_str()
            .expect("ascii")
            .contains("r=0")
    );
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(problem["code"], "rate_limited");
    // One budget per caller across route classes: the admin routes are spent too.
    let other_class = http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(other_class.status(), StatusCode::TOO_MANY_REQUESTS);
    // /health is never limited.
    assert_eq!(
        http.get(server.url("/health"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );

    tokio::time::sleep(Duration::from_millis(600)).await;
    let res = http
        .get(server.url("/v1/products"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200, "a token refills after 1/rate seconds");
    server.stop().await;
}

#[tokio::test]
async fn rate_limits_are_per_caller_with_overrides() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.auth.enabled = true;
        c.auth.keys = vec![
            key("reader", READ, &[Role::Read]),
            key("ops", ADMIN, &[Role::Admin]),
        ];
        c.rate_limit.enabled = true;
        c.rate_limit.requests_per_second = 1;
        c.rate_limit.burst = 1;
        c.rate_limit.overrides.insert(
            "ops".into(),
            oms::core::config::RateLimitOverride {
                requests_per_second: 100,
                burst: 50,
            },
        );
    })
    .await;
    assert_eq!(
        send(&server, Method::GET, "/v1/products", Some(READ), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        send(&server, Method::GET, "/v1/products", Some(READ), None)
            .await
            .status(),
        429
    );
    for _ in 0..20 {
        let res = send(&server, Method::GET, "/v1/products", Some(ADMIN), None).await;
        assert_eq!(res.status(), 200, "ops has its own, larger budget");
        assert!(
            res.headers()["ratelimit-policy"]
                .to_str()
                .expect("ascii")
                .starts_with("\"ops\";q=50")
        );
    }
    server.stop().await;
}

async fn cache_stats(server: &TestServer) -> Value {
    let perf: Value = client()
        .get(server.url("/debug/performance"))
        .send()
        .await
        .expect("perf")
        .json()
        .await
        .expect("json");
    perf["cache"].clone()
}

#[tokio::test]
async fn cached_reads_hit_invalidate_on_write_and_answer_304_without_the_database() {
    for backend in
        backends("cached_reads_hit_invalidate_on_write_and_answer_304_without_the_database")
    {
        let server = TestServer::start(backend).await;
        let http = client();
        let created = http
            .post(server.url("/v1/products"))
            .json(&json!({"sku": "CACHE-1", "name": "Mug", "price_minor": 900, "currency": "EUR", "available": 10}))
            .send()
            .await
            .expect("create");
        assert_eq!(created.status(), 201);

        let first = http
            .get(server.url("/v1/products/CACHE-1"))
            .send()
            .await
            .expect("first");
        assert_ne!(
            first.headers()["x-db-queries"],
            "0",
            "a miss reads the database"
        );
        let second = http
            .get(server.url("/v1/products/CACHE-1"))
            .send()
            .await
            .expect("second");
        assert_eq!(
            second.headers()["x-db-queries"],
            "0",
            "a hit does not touch the database"
        );
        assert_eq!(second.headers()["etag"], "\"1\"");
        let stats = cache_stats(&server).await;
        assert!(
            stats["hits"].as_u64() >= Some(1) && stats["misses"].as_u64() >= Some(1),
            "{stats}"
        );

        let not_modified = http
            .get(server.url("/v1/products/CACHE-1"))
            .header("if-none-match", "\"1\"")
            .send()
            .await
            .expect("304");
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(not_modified.headers()["x-db-queries"], "0");

        // A write through this process is seen by the next read at once.
        let patched = http
            .patch(server.url("/v1/products/CACHE-1"))
            .json(&json!({"name": "Big mug"}))
            .send()
            .await
            .expect("patch");
        assert_eq!(patched.status(), 200);
        let after: Value = http
            .get(server.url("/v1/products/CACHE-1"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(after["name"], "Big mug");
        assert_eq!(after["version"], 2);

        // An order's reservation invalidates the product too.
        let order = http
            .post(server.url("/v1/orders"))
            .json(&json!({"customer_id": "c", "currency": "EUR", "items": [{"sku": "CACHE-1", "quantity": 3}]}))
            .send()
            .await
            .expect("order");
        assert_eq!(order.status(), 201);
        let after: Value = http
            .get(server.url("/v1/products/CACHE-1"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(
            (after["available"].as_i64(), after["reserved"].as_i64()),
            (Some(7), Some(3))
        );

        // Orders are cached and invalidated by transitions.
        let order: Value = order.json().await.expect("json");
        let id = order["id"].as_str().expect("id");
        let _ = http
            .get(server.url(&format!("/v1/orders/{id}")))
            .send()
            .await
            .expect("miss");
        let hit = http
            .get(server.url(&format!("/v1/orders/{id}")))
            .send()
            .await
            .expect("hit");
        assert_eq!(hit.headers()["x-db-queries"], "0");
        let cancelled = http
            .post(server.url(&format!("/v1/orders/{id}/cancel")))
            .send()
            .await
            .expect("cancel");
        assert_eq!(cancelled.status(), 200);
        let after: Value = http
            .get(server.url(&format!("/v1/orders/{id}")))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(after["status"], "cancelled");
        server.stop().await;
    }
}

#[tokio::test]
async fn with_the_cache_off_every_read_goes_to_the_database() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.cache.enabled = false).await;
    let http = client();
    http.post(server.url("/v1/products"))
        .json(&json!({"sku": "NC-1", "name": "Mug", "price_minor": 900, "currency": "EUR"}))
        .send()
        .await
        .expect("create");
    for _ in 0..2 {
        let res = http
            .get(server.url("/v1/products/NC-1"))
            .send()
            .await
            .expect("get");
        assert_ne!(res.headers()["x-db-queries"], "0");
    }
    server.stop().await;
}

#[tokio::test]
async fn compression_round_trips_each_algorithm_and_skips_small_bodies() {
    let server = TestServer::start(Backend::Sqlite).await;
    let http = client();
    for n in 0..60 {
        let res = http
            .post(server.url("/v1/products"))
            .json(&json!({"sku": format!("Z-{n:03}"), "name": "A product with a reasonably long name", "price_minor": 1000 + n, "currency": "EUR", "available": 5}))
            .send()
            .await
            .expect("create");
        assert_eq!(res.status(), 201);
    }
    let raw = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_zstd()
        .build()
        .expect("raw client");
    let plain = raw
        .get(server.url("/v1/products?limit=60"))
        .send()
        .await
        .expect("plain");
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_body = plain.bytes().await.expect("body");
    let expected: Value = serde_json::from_slice(&plain_body).expect("json");

    for (accept, encoding) in [("gzip", "gzip"), ("br", "br"), ("zstd", "zstd")] {
        let res = raw
            .get(server.url("/v1/products?limit=60"))
            .header("accept-encoding", accept)
            .send()
            .await
            .expect("compressed");
        assert_eq!(res.headers()["content-encoding"], encoding);
        let compressed = res.bytes().await.expect("body");
        assert!(
            compressed.len() < plain_body.len() / 2,
            "{encoding}: {} vs {}",
            compressed.len(),
            plain_body.len()
        );

        let auto = reqwest::Client::builder().build().expect("client");
        let decoded: Value = auto
            .get(server.url("/v1/products?limit=60"))
            .header("accept-encoding", accept)
            .send()
            .await
            .expect("decoded")
            .json()
            .await
            .expect("json");
        assert_eq!(decoded, expected, "{encoding} round-trips");
    }
    let small = raw
        .get(server.url("/health"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("health");
    assert!(
        small.headers().get("content-encoding").is_none(),
        "bodies under min_bytes stay plain"
    );
    server.stop().await;
}

#[handler]
async fn slow(res: &mut Response) {
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    res.render(Text::Plain("finally"));
}

#[tokio::test]
async fn a_request_over_its_deadline_gets_503_timeout() {
    let server = TestServer::start_full(
        Backend::Sqlite,
        |c| c.server.request_timeout_ms = 200,
        Some(Router::with_path("test/slow").get(slow)),
    )
    .await;
    let started = std::time::Instant::now();
    let res = client()
        .get(server.url("/test/slow"))
        .send()
        .await
        .expect("slow");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_millis(1_400),
        "answered at the deadline"
    );
    assert!(res.headers().contains_key("retry-after"));
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(problem["code"], "timeout");
    server.stop().await;
}

#[tokio::test]
async fn over_the_concurrency_cap_requests_get_503_overloaded() {
    let server = TestServer::start_full(
        Backend::Sqlite,
        |c| c.server.max_concurrent_requests = 1,
        Some(Router::with_path("test/slow").get(slow)),
    )
    .await;
    let url = server.url("/test/slow");
    let busy = tokio::spawn(async move { client().get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = client()
        .get(server.url("/v1/products"))
        .send()
        .await
        .expect("second");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(problem["code"], "overloaded");
    assert_eq!(
        busy.await.expect("join").expect("first"),
        200,
        "the first request was served"
    );
    let res = client()
        .get(server.url("/v1/products"))
        .send()
        .await
        .expect("after");
    assert_eq!(res.status(), 200, "served again once capacity frees");
    server.stop().await;
}
