//! API.md "Orders" under concurrency: stock never oversells, an
//! Idempotency-Key creates one order however many retries race, and both
//! hold across two server processes sharing one PostgreSQL database.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::api::{Api, Peer, Resp, assert_problem, order_body, text};
use common::{Backend, TestServer, backends};
use serde_json::{Value, json};

const ORDERS: usize = 150;
const CLIENTS: usize = 64;
const STOCK: i64 = 40;

/// `total` order requests for one unit of `sku` by `clients` concurrent
/// clients, request `i` going to `targets[i % targets.len()]`.
async fn race_orders(
    targets: &[Api],
    sku: &str,
    customer: &str,
    total: usize,
    clients: usize,
) -> Vec<Resp> {
    let next = Arc::new(AtomicUsize::new(0));
    let body = order_body(customer, "EUR", &[(sku, 1)]);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let next = next.clone();
        let targets = targets.to_vec();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return out;
                }
                out.push(targets[i % targets.len()].post("/v1/orders", &body).await);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all
}

/// Exactly `STOCK` 201s and the rest 409 `insufficient_stock`.
fn assert_exactly_stock_sold(label: &str, results: &[Resp]) {
    assert_eq!(results.len(), ORDERS, "[{label}] every request answered");
    let created = results.iter().filter(|r| r.status == 201).count();
    let mut refused = 0;
    let mut unexpected = Vec::new();
    for r in results.iter().filter(|r| r.status != 201) {
        if r.status == 409 && r.json()["code"] == "insufficient_stock" {
            assert_problem(r, 409, "insufficient_stock");
            refused += 1;
        } else {
            unexpected.push(r.describe());
        }
    }
    assert!(
        unexpected.is_empty(),
        "[{label}] every response must be 201 or 409 insufficient_stock; unexpected: {unexpected:#?}"
    );
    assert_eq!(
        created, STOCK as usize,
        "[{label}] exactly {STOCK} orders must succeed against {STOCK} units, got {created}"
    );
    assert_eq!(
        refused,
        ORDERS - STOCK as usize,
        "[{label}] the other {} must be 409 insufficient_stock",
        ORDERS - STOCK as usize
    );
}

/// `n` requests with one Idempotency-Key and body, all released at once,
/// request `i` going to `targets[i % targets.len()]`.
async fn race_key(targets: &[Api], body: &Value, key: &str, n: usize) -> Vec<Resp> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let api = targets[i % targets.len()].clone();
        let body = body.clone();
        let key = key.to_owned();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            api.post_h("/v1/orders", &body, &[("idempotency-key", &key)])
                .await
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("client task"));
    }
    all
}

/// Every response is the one 201 (fresh or replayed, same body) or 409
/// `idempotency_in_progress`; returns the 201 body.
fn assert_one_outcome(label: &str, results: &[Resp]) -> String {
    let created: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    assert!(
        !created.is_empty(),
        "[{label}] the request that ran must answer 201: {:#?}",
        results.iter().map(Resp::describe).collect::<Vec<_>>()
    );
    let fresh = created
        .iter()
        .filter(|r| r.header("idempotent-replayed") != Some("true"))
        .count();
    assert_eq!(
        fresh, 1,
        "[{label}] exactly one 201 is fresh, the others say Idempotent-Replayed: true"
    );
    let body = created[0].text.clone();
    for r in &created {
        assert_eq!(
            r.text, body,
            "[{label}] every 201 (fresh or replayed) has the same body"
        );
    }
    for r in results.iter().filter(|r| r.status != 201) {
        assert_eq!(
            r.status,
            409,
            "[{label}] a concurrent retry is 201 or 409 idempotency_in_progress, got {}",
            r.describe()
        );
        assert_problem(r, 409, "idempotency_in_progress");
    }
    body
}

async fn count_orders(api: &Api, customer: &str) -> usize {
    api.list_all(&format!("/v1/orders?customer_id={customer}"), 500)
        .await
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_sell_exactly_the_40_units_in_stock() {
    for backend in backends("sixty_four_clients_sell_exactly_the_40_units_in_stock") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("HOT", 500, "EUR", STOCK).await;
        let results = race_orders(std::slice::from_ref(&api), "HOT", "race", ORDERS, CLIENTS).await;
        let label = format!("{backend:?}");
        assert_exactly_stock_sold(&label, &results);
        assert_eq!(
            api.stock("HOT").await,
            (0, STOCK, 1 + STOCK),
            "[{label}] final available 0, reserved {STOCK}, version +1 per reservation"
        );
        assert_eq!(
            count_orders(&api, "race").await,
            STOCK as usize,
            "[{label}] exactly {STOCK} orders exist"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_retries_with_one_key_create_one_order() {
    for backend in backends("sixteen_concurrent_retries_with_one_key_create_one_order") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 250, "EUR", 100).await;
        let body = order_body("idem-race", "EUR", &[("A", 3)]);
        let results = race_key(std::slice::from_ref(&api), &body, "race-key-1", 16).await;
        let label = format!("{backend:?}");
        let created = assert_one_outcome(&label, &results);
        assert_eq!(
            count_orders(&api, "idem-race").await,
            1,
            "[{label}] exactly one order exists"
        );
        assert_eq!(
            api.stock("A").await,
            (97, 3, 2),
            "[{label}] stock reserved once"
        );
        // Once it has finished, a retry replays it.
        let again = api
            .post_h("/v1/orders", &body, &[("idempotency-key", "race-key-1")])
            .await;
        again.expect(201, &format!("[{label}] a later retry"));
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(
            again.text, created,
            "[{label}] the later retry replays the same body"
        );
        server.stop().await;
    }
}

fn postgres_configured(test: &str) -> bool {
    let on = backends(test).contains(&Backend::Postgres);
    if !on {
        eprintln!("SKIPPED: {test}: needs OMS_TEST_POSTGRES_URL (two servers on one PostgreSQL)");
    }
    on
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_sell_exactly_the_40_units_in_stock() {
    if !postgres_configured("two_servers_on_one_postgres_sell_exactly_the_40_units_in_stock") {
        return;
    }
    let server = TestServer::start(Backend::Postgres).await;
    let peer = Peer::start(&server.db.url, |_| {}).await;
    let a = Api::new(&server, Backend::Postgres);
    let b = Api::at(&peer.base, "Postgres peer");
    a.create_product("HOT", 500, "EUR", STOCK).await;
    let results = race_orders(&[a.clone(), b.clone()], "HOT", "race", ORDERS, CLIENTS).await;
    assert_exactly_stock_sold("Postgres, two servers", &results);
    // Read the outcome through a third, fresh instance (no cached reads).
    let reader = Peer::start(&server.db.url, |_| {}).await;
    let fresh = Api::at(&reader.base, "Postgres reader");
    assert_eq!(
        fresh.stock("HOT").await,
        (0, STOCK, 1 + STOCK),
        "[two servers] final available 0, reserved {STOCK}"
    );
    assert_eq!(
        count_orders(&fresh, "race").await,
        STOCK as usize,
        "[two servers] exactly {STOCK} orders exist"
    );
    assert_eq!(
        count_orders(&a, "race").await,
        STOCK as usize,
        "[two servers] server A lists them all"
    );
    assert_eq!(
        count_orders(&b, "race").await,
        STOCK as usize,
        "[two servers] server B lists them all"
    );
    reader.stop().await;
    peer.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_honour_one_idempotency_key() {
    if !postgres_configured("two_servers_on_one_postgres_honour_one_idempotency_key") {
        return;
    }
    let server = TestServer::start(Backend::Postgres).await;
    let peer = Peer::start(&server.db.url, |_| {}).await;
    let a = Api::new(&server, Backend::Postgres);
    let b = Api::at(&peer.base, "Postgres peer");
    a.create_product("A", 250, "EUR", 100).await;
    let body = order_body("idem-race", "EUR", &[("A", 3)]);
    let results = race_key(&[a.clone(), b.clone()], &body, "race-key-2", 16).await;
    let created = assert_one_outcome("Postgres, two servers", &results);
    assert_eq!(
        count_orders(&a, "idem-race").await,
        1,
        "[two servers] exactly one order exists"
    );
    // Each server replays the one outcome afterwards.
    for api in [&a, &b] {
        let again = api
            .post_h("/v1/orders", &body, &[("idempotency-key", "race-key-2")])
            .await;
        again.expect(201, &format!("[{}] a later retry", api.label));
        assert_eq!(
            again.header("idempotent-replayed"),
            Some("true"),
            "[{}] replayed",
            api.label
        );
        assert_eq!(again.text, created, "[{}] with the same body", api.label);
        let other = api.post_h("/v1/orders", &json!({"customer_id": "idem-race", "currency": "EUR", "items": [{"sku": "A", "quantity": 4}]}), &[("idempotency-key", "race-key-2")]).await;
        assert_problem(&other, 422, "idempotency_key_reused");
    }
    assert_eq!(
        count_orders(&b, "idem-race").await,
        1,
        "[two servers] still one order"
    );
    let id = text(&serde_json::from_str::<Value>(&created).expect("json")["id"]).to_owned();
    assert_eq!(
        b.order(&id).await["status"],
        "pending",
        "[two servers] the other server reads the order"
    );
    peer.stop().await;
    server.stop().await;
}

/// `n` requests built by `make(i)`, all released at once.
async fn race<F>(n: usize, make: F) -> Vec<Resp>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let req = make(i);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            let text = res.text().await.expect("body");
            Resp {
                status,
                headers,
                text,
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("client task"));
    }
    all
}

fn statuses(results: &[Resp]) -> Vec<u16> {
    let mut s: Vec<u16> = results.iter().map(|r| r.status).collect();
    s.sort_unstable();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_cancels_and_ships_apply_exactly_one_transition() {
    for backend in backends("racing_cancels_and_ships_apply_exactly_one_transition") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let o = api.create_order("c", "EUR", &[("A", 5)]).await;
        let id = text(&o["id"]).to_owned();
        api.must_transition(&id, "confirm").await;
        let results = race(16, |i| {
            let action = if i % 2 == 0 { "cancel" } else { "ship" };
            api.builder(reqwest::Method::POST, &format!("/v1/orders/{id}/{action}"))
        })
        .await;
        let ok: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
        assert_eq!(
            ok.len(),
            1,
            "[{backend:?}] exactly one transition wins: statuses {:?}",
            statuses(&results)
        );
        for r in results.iter().filter(|r| r.status != 200) {
            assert_problem(r, 409, "invalid_transition");
        }
        let order = api.order(&id).await;
        assert_eq!(
            order["version"], 3,
            "[{backend:?}] one transition after confirm: version 3"
        );
        let stock = api.stock("A").await;
        match order["status"].as_str() {
            Some("cancelled") => {
                assert_eq!(stock, (10, 0, 3), "[{backend:?}] released exactly once")
            }
            Some("shipped") => assert_eq!(stock, (5, 0, 3), "[{backend:?}] consumed exactly once"),
            other => panic!("[{backend:?}] unexpected final status {other:?}"),
        }
        let events = api.list_all(&format!("/v1/orders/{id}/events"), 50).await;
        assert_eq!(
            events.len(),
            3,
            "[{backend:?}] created, confirmed and one more event: {events:?}"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_write_offs_never_take_available_below_zero() {
    for backend in backends("racing_write_offs_never_take_available_below_zero") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let results = race(24, |_| {
            api.builder(reqwest::Method::POST, "/v1/products/A/stock")
                .header("content-type", "application/json")
                .body(json!({"delta": -1}).to_string())
        })
        .await;
        let ok = results.iter().filter(|r| r.status == 200).count();
        assert_eq!(
            ok,
            10,
            "[{backend:?}] exactly 10 write-offs of 1 fit in 10 units: statuses {:?}",
            statuses(&results)
        );
        for r in results.iter().filter(|r| r.status != 200) {
            assert_problem(r, 409, "stock_negative");
        }
        assert_eq!(
            api.stock("A").await,
            (0, 0, 11),
            "[{backend:?}] available 0, one version per write-off"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_patches_with_the_same_if_match_let_exactly_one_win() {
    for backend in backends("racing_patches_with_the_same_if_match_let_exactly_one_win") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let results = race(12, |i| {
            api.builder(reqwest::Method::PATCH, "/v1/products/A")
                .header("content-type", "application/json")
                .header("if-match", "\"1\"")
                .body(json!({"name": format!("writer {i}")}).to_string())
        })
        .await;
        let ok: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
        assert_eq!(
            ok.len(),
            1,
            "[{backend:?}] one PATCH with If-Match \"1\" wins, the rest are 412: statuses {:?}",
            statuses(&results)
        );
        for r in results.iter().filter(|r| r.status != 200) {
            assert_problem(r, 412, "version_mismatch");
        }
        let p = api.product("A").await;
        assert_eq!(p["version"], 2, "[{backend:?}] exactly one change");
        assert_eq!(
            p["name"],
            ok[0].json()["name"],
            "[{backend:?}] the winner's name is kept"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_guard_writes_with_the_current_version() {
    if !postgres_configured("two_servers_on_one_postgres_guard_writes_with_the_current_version") {
        return;
    }
    let server = TestServer::start(Backend::Postgres).await;
    let peer = Peer::start(&server.db.url, |_| {}).await;
    let a = Api::new(&server, Backend::Postgres);
    let b = Api::at(&peer.base, "Postgres peer");
    a.create_product("A", 100, "EUR", 5).await;
    // B reads version 1 (and may cache it), then A changes the product.
    assert_eq!(b.stock("A").await, (5, 0, 1));
    a.patch("/v1/products/A", &json!({"name": "changed on A"}))
        .await
        .expect(200, "PATCH on A");
    // A write on B with the stale version must see A's change.
    let res = b
        .patch_h(
            "/v1/products/A",
            &json!({"name": "lost update on B"}),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_problem(&res, 412, "version_mismatch");
    // Stock moves on B are decided on the database's figures, not a cached copy.
    a.post("/v1/products/A/stock", &json!({"delta": -5}))
        .await
        .expect(200, "write-off on A");
    let res = b.post("/v1/products/A/stock", &json!({"delta": -1})).await;
    assert_problem(&res, 409, "stock_negative");
    let res = b
        .post("/v1/orders", &order_body("c", "EUR", &[("A", 1)]))
        .await;
    assert_problem(&res, 409, "insufficient_stock");
    let res = b
        .patch_h(
            "/v1/products/A",
            &json!({"name": "on B"}),
            &[("if-match", "\"3\"")],
        )
        .await;
    res.expect(200, "[two servers] PATCH on B with the current version");
    assert_eq!(res.json()["version"], 4);
    assert_eq!(res.json()["available"], 0);
    peer.stop().await;
    server.stop().await;
}
