//! API.md "Orders": creation (prices, totals, reservations, refusals),
//! reads, lists, the status machine with its stock effects, events,
//! Idempotency-Key, and the statement budgets of the order endpoints.

mod common;

use common::api::{Api, Resp, assert_problem, is_timestamp_ms, order_body, text};
use common::{TestServer, backends};
use reqwest::Method;
use serde_json::{Value, json};

/// The products most tests use: A (EUR 250, 10 available), B (EUR 1000, 1
/// available), U (USD 300, 10 available).
async fn seed(api: &Api) {
    api.create_product("A", 250, "EUR", 10).await;
    api.create_product("B", 1000, "EUR", 1).await;
    api.create_product("U", 300, "USD", 10).await;
}

/// Every product as the list returns it, for "nothing changed" checks.
async fn catalog(api: &Api) -> Vec<Value> {
    api.list_all("/v1/products", 500).await
}

/// `POST /v1/orders/{id}/{action}` with a JSON body and headers.
async fn transition_with(
    api: &Api,
    id: &str,
    action: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = api.builder(Method::POST, &format!("/v1/orders/{id}/{action}"));
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    api.send(req).await
}

async fn orders_of(api: &Api, customer: &str) -> Vec<Value> {
    api.list_all(&format!("/v1/orders?customer_id={customer}"), 500)
        .await
}

// ---- creation -------------------------------------------------------------

#[tokio::test]
async fn create_copies_catalog_prices_and_computes_line_totals_and_total() {
    for backend in backends("create_copies_catalog_prices_and_computes_line_totals_and_total") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let mut body = order_body("cust-1", "EUR", &[("A", 3), ("B", 1)]);
        body["note"] = json!("leave at the door");
        let res = api.post("/v1/orders", &body).await;
        res.expect(201, &format!("[{backend:?}] POST /v1/orders"));
        assert_eq!(
            res.header("etag"),
            Some("\"1\""),
            "[{backend:?}] ETag of a new order is \"1\""
        );
        let o = res.json();
        let id = text(&o["id"]);
        let uuid = uuid::Uuid::parse_str(id)
            .unwrap_or_else(|_| panic!("[{backend:?}] id must be a UUID, got {id}"));
        assert_eq!(
            uuid.get_version_num(),
            7,
            "[{backend:?}] order ids are UUID v7"
        );
        assert_eq!(o["customer_id"], "cust-1");
        assert_eq!(
            o["status"], "pending",
            "[{backend:?}] a new order is pending"
        );
        assert_eq!(o["currency"], "EUR");
        assert_eq!(o["note"], "leave at the door");
        assert_eq!(o["version"], 1, "[{backend:?}] version 1 on creation");
        assert_eq!(
            o["items"],
            json!([
                {"sku": "A", "quantity": 3, "unit_price_minor": 250, "line_total_minor": 750},
                {"sku": "B", "quantity": 1, "unit_price_minor": 1000, "line_total_minor": 1000}
            ]),
            "[{backend:?}] lines in request order with catalog prices and line totals"
        );
        assert_eq!(
            o["total_minor"], 1750,
            "[{backend:?}] total is the sum of the line totals"
        );
        for field in ["created_at", "updated_at"] {
            assert!(
                is_timestamp_ms(text(&o[field])),
                "[{backend:?}] {field} RFC 3339 ms UTC, got {}",
                o[field]
            );
        }
        assert_eq!(
            api.order(id).await,
            o,
            "[{backend:?}] GET returns the created order"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn create_reserves_stock_and_bumps_each_product_version() {
    for backend in backends("create_reserves_stock_and_bumps_each_product_version") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let o = api
            .create_order("cust-1", "EUR", &[("A", 4), ("B", 1)])
            .await;
        assert!(
            o.get("note").is_some_and(Value::is_null),
            "[{backend:?}] an order without a note has \"note\": null: {o}"
        );
        assert_eq!(
            api.stock("A").await,
            (6, 4, 2),
            "[{backend:?}] A: available -= 4, reserved += 4, version +1"
        );
        assert_eq!(
            api.stock("B").await,
            (0, 1, 2),
            "[{backend:?}] B: exactly the available quantity can be ordered"
        );
        assert_eq!(
            api.stock("U").await,
            (10, 0, 1),
            "[{backend:?}] U is not in the order and untouched"
        );
        api.create_order("cust-2", "EUR", &[("A", 6)]).await;
        assert_eq!(
            api.stock("A").await,
            (0, 10, 3),
            "[{backend:?}] second order reserves the rest of A"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_later_price_change_does_not_touch_existing_orders() {
    for backend in backends("a_later_price_change_does_not_touch_existing_orders") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let first = api.create_order("cust-1", "EUR", &[("A", 2)]).await;
        api.patch("/v1/products/A", &json!({"price_minor": 999}))
            .await
            .expect(200, "reprice A");
        let second = api.create_order("cust-1", "EUR", &[("A", 2)]).await;
        assert_eq!(
            second["items"][0]["unit_price_minor"], 999,
            "[{backend:?}] new orders copy the new price"
        );
        assert_eq!(second["total_minor"], 1998);
        let again = api.order(text(&first["id"])).await;
        assert_eq!(
            again["items"][0]["unit_price_minor"], 250,
            "[{backend:?}] the first order keeps the price it was created with"
        );
        assert_eq!(again["total_minor"], 500);
        server.stop().await;
    }
}

#[tokio::test]
async fn insufficient_stock_refuses_the_whole_order_and_changes_nothing() {
    for backend in backends("insufficient_stock_refuses_the_whole_order_and_changes_nothing") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let before = catalog(&api).await;
        let res = api
            .post(
                "/v1/orders",
                &order_body("cust-1", "EUR", &[("A", 2), ("B", 5)]),
            )
            .await;
        let problem = assert_problem(&res, 409, "insufficient_stock");
        assert!(
            text(&problem["detail"]).contains('B'),
            "[{backend:?}] detail names the short sku: {problem}"
        );
        assert_eq!(
            catalog(&api).await,
            before,
            "[{backend:?}] a refused order changes no product (A must not stay reserved)"
        );
        assert!(
            orders_of(&api, "cust-1").await.is_empty(),
            "[{backend:?}] no order is created"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn unknown_sku_is_422_and_changes_nothing() {
    for backend in backends("unknown_sku_is_422_and_changes_nothing") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let before = catalog(&api).await;
        let res = api
            .post(
                "/v1/orders",
                &order_body("cust-1", "EUR", &[("A", 2), ("NOPE", 1)]),
            )
            .await;
        let problem = assert_problem(&res, 422, "unknown_sku");
        assert!(
            text(&problem["detail"]).contains("NOPE"),
            "[{backend:?}] detail names the unknown sku: {problem}"
        );
        assert_eq!(catalog(&api).await, before, "[{backend:?}] nothing changes");
        assert!(
            orders_of(&api, "cust-1").await.is_empty(),
            "[{backend:?}] no order is created"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn currency_mismatch_is_422_and_changes_nothing() {
    for backend in backends("currency_mismatch_is_422_and_changes_nothing") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let before = catalog(&api).await;
        let res = api
            .post(
                "/v1/orders",
                &order_body("cust-1", "EUR", &[("A", 2), ("U", 1)]),
            )
            .await;
        let problem = assert_problem(&res, 422, "currency_mismatch");
        assert!(
            text(&problem["detail"]).contains('U'),
            "[{backend:?}] detail names the sku: {problem}"
        );
        // An order in USD of a EUR product is the same refusal.
        let res = api
            .post("/v1/orders", &order_body("cust-1", "USD", &[("A", 1)]))
            .await;
        assert_problem(&res, 422, "currency_mismatch");
        assert_eq!(catalog(&api).await, before, "[{backend:?}] nothing changes");
        assert!(
            orders_of(&api, "cust-1").await.is_empty(),
            "[{backend:?}] no order is created"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn duplicate_sku_is_422_and_changes_nothing() {
    for backend in backends("duplicate_sku_is_422_and_changes_nothing") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let before = catalog(&api).await;
        let res = api
            .post(
                "/v1/orders",
                &order_body("cust-1", "EUR", &[("A", 1), ("B", 1), ("A", 2)]),
            )
            .await;
        let problem = assert_problem(&res, 422, "duplicate_sku");
        assert!(
            text(&problem["detail"]).contains('A'),
            "[{backend:?}] detail names the sku: {problem}"
        );
        assert_eq!(catalog(&api).await, before, "[{backend:?}] nothing changes");
        assert!(
            orders_of(&api, "cust-1").await.is_empty(),
            "[{backend:?}] no order is created"
        );
        server.stop().await;
    }
}

// ---- reads ----------------------------------------------------------------

#[tokio::test]
async fn get_returns_the_order_with_its_etag_and_304_on_a_match() {
    for backend in backends("get_returns_the_order_with_its_etag_and_304_on_a_match") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let o = api.create_order("cust-1", "EUR", &[("A", 1)]).await;
        let path = format!("/v1/orders/{}", text(&o["id"]));
        let res = api.get(&path).await;
        res.expect(200, &format!("[{backend:?}] GET order"));
        assert_eq!(
            res.header("etag"),
            Some("\"1\""),
            "[{backend:?}] ETag \"<version>\""
        );
        assert_eq!(
            res.json()["items"].as_array().map(Vec::len),
            Some(1),
            "[{backend:?}] with its items"
        );
        for tag in ["\"1\"", "*", "\"5\", \"1\""] {
            let res = api.get_h(&path, &[("if-none-match", tag)]).await;
            assert_eq!(
                res.status,
                304,
                "[{backend:?}] If-None-Match {tag}: 304, got {}",
                res.describe()
            );
            assert!(res.text.is_empty(), "[{backend:?}] 304 without a body");
        }
        api.must_transition(text(&o["id"]), "confirm").await;
        let res = api.get_h(&path, &[("if-none-match", "\"1\"")]).await;
        assert_eq!(
            res.status,
            200,
            "[{backend:?}] a changed order no longer matches the old tag: {}",
            res.describe()
        );
        assert_eq!(res.header("etag"), Some("\"2\""));
        server.stop().await;
    }
}

#[tokio::test]
async fn a_304_carries_the_same_etag_as_the_200() {
    for backend in backends("a_304_carries_the_same_etag_as_the_200") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let o = api.create_order("cust-1", "EUR", &[("A", 1)]).await;
        let path = format!("/v1/orders/{}", text(&o["id"]));
        assert_eq!(
            api.get(&path).await.header("etag"),
            Some("\"1\""),
            "[{backend:?}] the 200's ETag"
        );
        let res = api.get_h(&path, &[("if-none-match", "\"1\"")]).await;
        res.expect(304, &format!("[{backend:?}] If-None-Match: \"1\""));
        assert_eq!(
            res.header("etag"),
            Some("\"1\""),
            "[{backend:?}] ETag is \"<version>\": the 304 must carry ETag \"1\" like the 200 did"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn get_of_an_unknown_order_is_404() {
    for backend in backends("get_of_an_unknown_order_is_404") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let id = uuid::Uuid::now_v7();
        assert_problem(
            &api.get(&format!("/v1/orders/{id}")).await,
            404,
            "not_found",
        );
        assert_problem(
            &api.get(&format!("/v1/orders/{id}/events")).await,
            404,
            "not_found",
        );
        assert_problem(
            &api.transition(&id.to_string(), "confirm").await,
            404,
            "not_found",
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn list_is_newest_first_and_paginates() {
    for backend in backends("list_is_newest_first_and_paginates") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 1, "EUR", 100).await;
        let mut created = Vec::new();
        for i in 0..7 {
            let o = api
                .create_order(&format!("c{}", i % 2), "EUR", &[("A", 1)])
                .await;
            created.push(text(&o["id"]).to_owned());
        }
        created.reverse();
        let first = api.get("/v1/orders?limit=3").await;
        first.expect(200, "first page");
        let first = first.json();
        assert_eq!(
            first["items"].as_array().map(Vec::len),
            Some(3),
            "[{backend:?}] limit=3"
        );
        assert!(
            first["next_cursor"].is_string(),
            "[{backend:?}] more pages remain"
        );
        let all = api.list_all("/v1/orders", 3).await;
        let ids: Vec<&str> = all.iter().map(|o| text(&o["id"])).collect();
        assert_eq!(ids, created, "[{backend:?}] every order once, newest first");
        let created_at: Vec<&str> = all.iter().map(|o| text(&o["created_at"])).collect();
        assert!(
            created_at.windows(2).all(|w| w[0] >= w[1]),
            "[{backend:?}] created_at non-increasing: {created_at:?}"
        );
        assert!(
            all.iter()
                .all(|o| o["items"].as_array().is_some_and(|i| i.len() == 1)),
            "[{backend:?}] list items carry their lines"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn list_filters_by_customer_id_and_status() {
    for backend in backends("list_filters_by_customer_id_and_status") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 1, "EUR", 100).await;
        let mut alice = Vec::new();
        for _ in 0..3 {
            alice.push(text(&api.create_order("alice", "EUR", &[("A", 1)]).await["id"]).to_owned());
        }
        for _ in 0..2 {
            api.create_order("bob", "EUR", &[("A", 1)]).await;
        }
        api.must_transition(&alice[1], "confirm").await;
        let cancelled = text(&api.create_order("bob", "EUR", &[("A", 1)]).await["id"]).to_owned();
        api.must_transition(&cancelled, "cancel").await;

        let of_alice = api.list_all("/v1/orders?customer_id=alice", 2).await;
        let ids: Vec<&str> = of_alice.iter().map(|o| text(&o["id"])).collect();
        let expected: Vec<&str> = alice.iter().rev().map(String::as_str).collect();
        assert_eq!(
            ids, expected,
            "[{backend:?}] alice's orders only, newest first, across pages"
        );

        let confirmed = api.list_all("/v1/orders?status=confirmed", 50).await;
        assert_eq!(confirmed.len(), 1, "[{backend:?}] one confirmed order");
        assert_eq!(text(&confirmed[0]["id"]), alice[1]);

        let bob_pending = api
            .list_all("/v1/orders?customer_id=bob&status=pending", 50)
            .await;
        assert_eq!(
            bob_pending.len(),
            2,
            "[{backend:?}] bob has two pending orders"
        );
        assert!(
            bob_pending
                .iter()
                .all(|o| o["customer_id"] == "bob" && o["status"] == "pending")
        );

        let bob_cancelled = api
            .list_all("/v1/orders?customer_id=bob&status=cancelled", 50)
            .await;
        assert_eq!(bob_cancelled.len(), 1);
        assert_eq!(text(&bob_cancelled[0]["id"]), cancelled);

        let nobody = api.get("/v1/orders?customer_id=nobody").await;
        nobody.expect(200, "unknown customer");
        assert_eq!(
            nobody.json(),
            json!({"items": [], "next_cursor": null}),
            "[{backend:?}] an empty page"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn list_with_bad_query_parameters_is_400() {
    for backend in backends("list_with_bad_query_parameters_is_400") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 1, "EUR", 100).await;
        for _ in 0..3 {
            api.create_order("c", "EUR", &[("A", 1)]).await;
        }
        for query in [
            "limit=0",
            "limit=501",
            "limit=abc",
            "status=bogus",
            "status=PENDING",
        ] {
            let res = api.get(&format!("/v1/orders?{query}")).await;
            assert_eq!(
                res.status,
                400,
                "[{backend:?}] ?{query} must be 400, got {}",
                res.describe()
            );
            assert_problem(&res, 400, "bad_request");
        }
        let page = api.get("/v1/orders?limit=1").await.json();
        let cursor = text(&page["next_cursor"]).to_owned();
        api.get(&format!("/v1/orders?limit=1&after={cursor}"))
            .await
            .expect(200, "genuine cursor");
        let mut chars: Vec<char> = cursor.chars().collect();
        let mid = chars.len() / 2;
        chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        // A genuine cursor of another list is not an orders cursor.
        api.create_product("B", 1, "EUR", 1).await;
        let product_cursor = api.get("/v1/products?limit=1").await.json()["next_cursor"].clone();
        let product_cursor = text(&product_cursor).to_owned();
        for bad in [tampered.as_str(), "garbage", product_cursor.as_str()] {
            let res = api.get(&format!("/v1/orders?limit=1&after={bad}")).await;
            assert_eq!(
                res.status,
                400,
                "[{backend:?}] orders after={bad:?} must be 400 bad_cursor, got {}",
                res.describe()
            );
            assert_problem(&res, 400, "bad_cursor");
        }
        server.stop().await;
    }
}

// ---- the status machine ---------------------------------------------------

#[tokio::test]
async fn confirm_ship_deliver_move_status_and_ship_consumes_the_reservation() {
    for backend in backends("confirm_ship_deliver_move_status_and_ship_consumes_the_reservation") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let o = api
            .create_order("cust-1", "EUR", &[("A", 3), ("B", 1)])
            .await;
        let id = text(&o["id"]).to_owned();
        assert_eq!(api.stock("A").await, (7, 3, 2));

        let res = api.transition(&id, "confirm").await;
        res.expect(200, &format!("[{backend:?}] confirm"));
        assert_eq!(
            res.header("etag"),
            Some("\"2\""),
            "[{backend:?}] ETag of the confirmed order"
        );
        let c = res.json();
        assert_eq!(
            (c["status"].clone(), c["version"].clone()),
            (json!("confirmed"), json!(2)),
            "[{backend:?}] confirmed, version +1"
        );
        assert_eq!(
            c["items"], o["items"],
            "[{backend:?}] the response is the whole order"
        );
        assert_eq!(
            api.stock("A").await,
            (7, 3, 2),
            "[{backend:?}] confirm keeps the reservation"
        );

        let s = api.must_transition(&id, "ship").await;
        assert_eq!(
            (s["status"].clone(), s["version"].clone()),
            (json!("shipped"), json!(3)),
            "[{backend:?}] shipped, version +1"
        );
        assert_eq!(
            api.stock("A").await,
            (7, 0, 3),
            "[{backend:?}] ship: reserved -= 3, available unchanged, product version +1"
        );
        assert_eq!(
            api.stock("B").await,
            (0, 0, 3),
            "[{backend:?}] ship: B's reservation consumed too"
        );

        let d = api.must_transition(&id, "deliver").await;
        assert_eq!(
            (d["status"].clone(), d["version"].clone()),
            (json!("delivered"), json!(4)),
            "[{backend:?}] delivered, version +1"
        );
        assert_eq!(
            api.stock("A").await,
            (7, 0, 3),
            "[{backend:?}] deliver does not touch stock"
        );
        assert_eq!(
            api.order(&id).await,
            d,
            "[{backend:?}] GET returns the delivered order"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn cancel_releases_the_reservation_from_pending_and_from_confirmed() {
    for backend in backends("cancel_releases_the_reservation_from_pending_and_from_confirmed") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let pending = api.create_order("cust-1", "EUR", &[("A", 3)]).await;
        let confirmed = api
            .create_order("cust-1", "EUR", &[("A", 2), ("B", 1)])
            .await;
        api.must_transition(text(&confirmed["id"]), "confirm").await;
        assert_eq!(api.stock("A").await, (5, 5, 3));

        let c = api.must_transition(text(&pending["id"]), "cancel").await;
        assert_eq!(
            (c["status"].clone(), c["version"].clone()),
            (json!("cancelled"), json!(2)),
            "[{backend:?}] pending -> cancelled"
        );
        assert_eq!(
            api.stock("A").await,
            (8, 2, 4),
            "[{backend:?}] cancel: reserved -= 3, available += 3, version +1"
        );

        let c = api.must_transition(text(&confirmed["id"]), "cancel").await;
        assert_eq!(
            (c["status"].clone(), c["version"].clone()),
            (json!("cancelled"), json!(3)),
            "[{backend:?}] confirmed -> cancelled"
        );
        assert_eq!(
            api.stock("A").await,
            (10, 0, 5),
            "[{backend:?}] all of A is available again"
        );
        assert_eq!(
            api.stock("B").await,
            (1, 0, 3),
            "[{backend:?}] all of B is available again"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn every_transition_outside_the_machine_is_409_invalid_transition() {
    for backend in backends("every_transition_outside_the_machine_is_409_invalid_transition") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 100).await;
        // (how to reach the state, the actions it must refuse)
        let cases: [(&[&str], &[&str]); 5] = [
            (&[], &["ship", "deliver"]),
            (&["confirm"], &["confirm", "deliver"]),
            (&["confirm", "ship"], &["confirm", "ship", "cancel"]),
            (
                &["confirm", "ship", "deliver"],
                &["confirm", "ship", "deliver", "cancel"],
            ),
            (&["cancel"], &["confirm", "ship", "deliver", "cancel"]),
        ];
        for (path, refused) in cases {
            let o = api.create_order("cust", "EUR", &[("A", 1)]).await;
            let id = text(&o["id"]).to_owned();
            for step in path {
                api.must_transition(&id, step).await;
            }
            let order_before = api.order(&id).await;
            let stock_before = api.stock("A").await;
            for action in refused {
                let res = api.transition(&id, action).await;
                let status = order_before["status"].clone();
                assert_eq!(
                    res.status,
                    409,
                    "[{backend:?}] {action} from {status} must be 409, got {}",
                    res.describe()
                );
                let problem = assert_problem(&res, 409, "invalid_transition");
                assert!(
                    text(&problem["detail"]).contains(action),
                    "[{backend:?}] detail names the action: {problem}"
                );
            }
            assert_eq!(
                api.order(&id).await,
                order_before,
                "[{backend:?}] refused transitions change nothing"
            );
            assert_eq!(
                api.stock("A").await,
                stock_before,
                "[{backend:?}] refused transitions move no stock"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn transitions_honour_if_match() {
    for backend in backends("transitions_honour_if_match") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let o = api.create_order("cust", "EUR", &[("A", 2)]).await;
        let id = text(&o["id"]).to_owned();
        let res = transition_with(&api, &id, "confirm", None, &[("if-match", "\"2\"")]).await;
        assert_problem(&res, 412, "version_mismatch");
        assert_eq!(
            api.order(&id).await,
            o,
            "[{backend:?}] a 412 leaves the order pending at version 1"
        );
        let res = transition_with(&api, &id, "confirm", None, &[("if-match", "\"1\"")]).await;
        res.expect(
            200,
            &format!("[{backend:?}] confirm with the current If-Match"),
        );
        assert_eq!(res.json()["version"], 2);
        let stock = api.stock("A").await;
        let res = transition_with(&api, &id, "cancel", None, &[("if-match", "\"1\"")]).await;
        assert_problem(&res, 412, "version_mismatch");
        assert_eq!(
            api.order(&id).await["status"],
            "confirmed",
            "[{backend:?}] a stale cancel does not cancel"
        );
        assert_eq!(
            api.stock("A").await,
            stock,
            "[{backend:?}] a stale cancel releases nothing"
        );
        let res = transition_with(
            &api,
            &id,
            "ship",
            Some(&json!({"reason": "on time"})),
            &[("if-match", "\"2\"")],
        )
        .await;
        res.expect(
            200,
            &format!("[{backend:?}] ship with the current If-Match and a body"),
        );
        assert_eq!(res.header("etag"), Some("\"3\""));
        server.stop().await;
    }
}

#[tokio::test]
async fn events_are_the_history_oldest_first_with_actor_and_reason() {
    for backend in backends("events_are_the_history_oldest_first_with_actor_and_reason") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let o = api.create_order("cust", "EUR", &[("A", 1)]).await;
        let id = text(&o["id"]).to_owned();
        transition_with(
            &api,
            &id,
            "confirm",
            Some(&json!({"reason": "paid by card"})),
            &[],
        )
        .await
        .expect(200, "confirm");
        transition_with(&api, &id, "ship", Some(&json!({})), &[])
            .await
            .expect(200, "ship with {}");
        api.must_transition(&id, "deliver").await;

        let res = api.get(&format!("/v1/orders/{id}/events")).await;
        res.expect(200, &format!("[{backend:?}] GET events"));
        let page = res.json();
        assert!(
            page["next_cursor"].is_null(),
            "[{backend:?}] all events on one page: {page}"
        );
        let events = page["items"].as_array().expect("items");
        let types: Vec<&str> = events.iter().map(|e| text(&e["type"])).collect();
        assert_eq!(
            types,
            ["created", "confirmed", "shipped", "delivered"],
            "[{backend:?}] oldest first"
        );
        for e in events {
            assert_eq!(
                e["actor"], "anonymous",
                "[{backend:?}] actor with auth off: {e}"
            );
            assert!(
                is_timestamp_ms(text(&e["at"])),
                "[{backend:?}] at RFC 3339 ms UTC: {e}"
            );
        }
        let reasons: Vec<Value> = events.iter().map(|e| e["reason"].clone()).collect();
        assert_eq!(
            reasons,
            [Value::Null, json!("paid by card"), Value::Null, Value::Null],
            "[{backend:?}] reasons as given"
        );
        let ats: Vec<&str> = events.iter().map(|e| text(&e["at"])).collect();
        assert!(
            ats.windows(2).all(|w| w[0] <= w[1]),
            "[{backend:?}] at non-decreasing: {ats:?}"
        );

        // Paginated one by one, the same history.
        let paged = api.list_all(&format!("/v1/orders/{id}/events"), 1).await;
        assert_eq!(
            &paged, events,
            "[{backend:?}] limit=1 pages give the same events in order"
        );

        // A cancellation is recorded with its reason.
        let o = api.create_order("cust", "EUR", &[("A", 1)]).await;
        let id = text(&o["id"]).to_owned();
        transition_with(
            &api,
            &id,
            "cancel",
            Some(&json!({"reason": "changed my mind"})),
            &[],
        )
        .await
        .expect(200, "cancel");
        let events = api.list_all(&format!("/v1/orders/{id}/events"), 50).await;
        let got: Vec<(Value, Value)> = events
            .iter()
            .map(|e| (e["type"].clone(), e["reason"].clone()))
            .collect();
        assert_eq!(
            got,
            [
                (json!("created"), Value::Null),
                (json!("cancelled"), json!("changed my mind"))
            ],
            "[{backend:?}] cancel event"
        );
        // A refused transition writes no event.
        api.transition(&id, "confirm")
            .await
            .expect(409, "confirm a cancelled order");
        assert_eq!(
            api.list_all(&format!("/v1/orders/{id}/events"), 50)
                .await
                .len(),
            2,
            "[{backend:?}] no event for a refusal"
        );
        // The events list takes the list parameters.
        let res = api.get(&format!("/v1/orders/{id}/events?limit=0")).await;
        assert_problem(&res, 400, "bad_request");
        let res = api
            .get(&format!("/v1/orders/{id}/events?after=garbage"))
            .await;
        assert_problem(&res, 400, "bad_cursor");
        server.stop().await;
    }
}

// ---- Idempotency-Key ------------------------------------------------------

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_replays_the_first_response_and_creates_nothing() {
    for backend in backends(
        "a_retry_with_the_same_key_and_body_replays_the_first_response_and_creates_nothing",
    ) {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let body = order_body("idem", "EUR", &[("A", 2)]);
        let key = [("idempotency-key", "order-0001")];
        let first = api.post_h("/v1/orders", &body, &key).await;
        first.expect(201, &format!("[{backend:?}] first request with a key"));
        assert_ne!(
            first.header("idempotent-replayed"),
            Some("true"),
            "[{backend:?}] the first response is not a replay"
        );
        assert_eq!(first.json()["status"], "pending");
        for _ in 0..2 {
            let again = api.post_h("/v1/orders", &body, &key).await;
            again.expect(201, &format!("[{backend:?}] retry: same status"));
            assert_eq!(
                again.header("idempotent-replayed"),
                Some("true"),
                "[{backend:?}] the retry says it is a replay"
            );
            assert_eq!(
                again.text, first.text,
                "[{backend:?}] the retry has the same body"
            );
        }
        assert_eq!(
            orders_of(&api, "idem").await.len(),
            1,
            "[{backend:?}] only one order is created"
        );
        assert_eq!(
            api.stock("A").await,
            (8, 2, 2),
            "[{backend:?}] stock is reserved once"
        );
        // Another key is another order.
        api.post_h("/v1/orders", &body, &[("idempotency-key", "order-0002")])
            .await
            .expect(201, "another key");
        assert_eq!(
            orders_of(&api, "idem").await.len(),
            2,
            "[{backend:?}] a new key creates a new order"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_same_body_with_keys_reordered_and_other_spacing_is_a_replay() {
    for backend in backends("the_same_body_with_keys_reordered_and_other_spacing_is_a_replay") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let key = [("idempotency-key", "reorder-1")];
        let compact = r#"{"customer_id":"idem","currency":"EUR","items":[{"sku":"A","quantity":2},{"sku":"B","quantity":1}],"note":"n"}"#;
        let spaced = "{\n  \"note\" : \"n\",\n  \"items\" : [ { \"quantity\" : 2 , \"sku\" : \"A\" },\n {\"quantity\":1,\"sku\":\"B\"} ],\n\t\"currency\": \"EUR\",  \"customer_id\":\"idem\"\n}\n";
        let first = api.post_text("/v1/orders", compact, &key).await;
        first.expect(201, &format!("[{backend:?}] first"));
        let again = api.post_text("/v1/orders", spaced, &key).await;
        again.expect(
            201,
            &format!("[{backend:?}] same JSON value, other key order and spacing"),
        );
        assert_eq!(
            again.header("idempotent-replayed"),
            Some("true"),
            "[{backend:?}] it is a replay"
        );
        assert_eq!(again.text, first.text, "[{backend:?}] with the first body");
        assert_eq!(
            orders_of(&api, "idem").await.len(),
            1,
            "[{backend:?}] one order"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_422_idempotency_key_reused() {
    for backend in backends("the_same_key_with_a_different_body_is_422_idempotency_key_reused") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let key = [("idempotency-key", "reused-1")];
        api.post_h("/v1/orders", &order_body("idem", "EUR", &[("A", 2)]), &key)
            .await
            .expect(201, "first");
        let stock = api.stock("A").await;
        for other in [
            order_body("idem", "EUR", &[("A", 3)]),
            order_body("other", "EUR", &[("A", 2)]),
            {
                let mut b = order_body("idem", "EUR", &[("A", 2)]);
                b["note"] = json!("extra");
                b
            },
        ] {
            let res = api.post_h("/v1/orders", &other, &key).await;
            assert_problem(&res, 422, "idempotency_key_reused");
        }
        assert_eq!(
            orders_of(&api, "idem").await.len(),
            1,
            "[{backend:?}] still one order"
        );
        assert!(
            orders_of(&api, "other").await.is_empty(),
            "[{backend:?}] nothing for the other body"
        );
        assert_eq!(api.stock("A").await, stock, "[{backend:?}] no stock moved");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_stored_refusal_is_replayed_even_after_stock_arrives() {
    for backend in backends("a_stored_refusal_is_replayed_even_after_stock_arrives") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let body = order_body("idem", "EUR", &[("B", 5)]);
        let key = [("idempotency-key", "short-1")];
        let first = api.post_h("/v1/orders", &body, &key).await;
        let first_problem = assert_problem(&first, 409, "insufficient_stock");
        api.post("/v1/products/B/stock", &json!({"delta": 10}))
            .await
            .expect(200, "restock B");
        let again = api.post_h("/v1/orders", &body, &key).await;
        assert_eq!(
            again.status,
            409,
            "[{backend:?}] the stored 409 is replayed, not re-run: {}",
            again.describe()
        );
        assert_eq!(
            again.header("idempotent-replayed"),
            Some("true"),
            "[{backend:?}] marked as a replay"
        );
        let ct = again.header("content-type").unwrap_or("");
        assert!(
            ct.starts_with("application/problem+json"),
            "[{backend:?}] replayed problem content type, got {ct:?}"
        );
        let mut replayed = again.json();
        let mut original = first_problem.clone();
        let replay_id = replayed["request_id"].clone();
        assert!(
            replay_id == original["request_id"]
                || replay_id.as_str() == again.header("x-request-id"),
            "[{backend:?}] request_id is the original one or this request's: {replayed}"
        );
        replayed.as_object_mut().map(|o| o.remove("request_id"));
        original.as_object_mut().map(|o| o.remove("request_id"));
        assert_eq!(
            replayed, original,
            "[{backend:?}] the same problem body is replayed"
        );
        assert!(
            orders_of(&api, "idem").await.is_empty(),
            "[{backend:?}] no order was created"
        );
        assert_eq!(
            api.stock("B").await,
            (11, 0, 2),
            "[{backend:?}] the replay reserved nothing"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn an_idempotency_key_over_255_chars_is_400_and_255_is_accepted() {
    for backend in backends("an_idempotency_key_over_255_chars_is_400_and_255_is_accepted") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let body = order_body("idem", "EUR", &[("A", 1)]);
        for bad in ["k".repeat(256), "k".repeat(1000), String::new()] {
            let res = api
                .post_h("/v1/orders", &body, &[("idempotency-key", &bad)])
                .await;
            assert_eq!(
                res.status,
                400,
                "[{backend:?}] a key of {} chars must be 400, got {}",
                bad.len(),
                res.describe()
            );
            assert_problem(&res, 400, "bad_request");
        }
        assert!(
            orders_of(&api, "idem").await.is_empty(),
            "[{backend:?}] a refused key creates nothing"
        );
        let longest = "k".repeat(255);
        api.post_h("/v1/orders", &body, &[("idempotency-key", &longest)])
            .await
            .expect(201, "a 255-char key");
        let again = api
            .post_h("/v1/orders", &body, &[("idempotency-key", &longest)])
            .await;
        again.expect(201, "replay with a 255-char key");
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(orders_of(&api, "idem").await.len(), 1);
        server.stop().await;
    }
}

#[tokio::test]
async fn requests_refused_before_validation_passes_are_not_stored() {
    for backend in backends("requests_refused_before_validation_passes_are_not_stored") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        seed(&api).await;
        let key = [("idempotency-key", "fix-me")];
        let good = order_body("idem", "EUR", &[("A", 1)]);
        // 422: quantity 0.
        let res = api
            .post_h("/v1/orders", &order_body("idem", "EUR", &[("A", 0)]), &key)
            .await;
        assert_problem(&res, 422, "validation_failed");
        // 400: malformed JSON.
        let res = api
            .post_text("/v1/orders", "{\"customer_id\": ", &key)
            .await;
        assert_problem(&res, 400, "malformed_json");
        // 415: not JSON.
        let res = api
            .raw(
                Method::POST,
                "/v1/orders",
                Some("text/plain"),
                good.to_string(),
                &key,
            )
            .await;
        assert_problem(&res, 415, "unsupported_media_type");
        // 413: over server.max_body_bytes (default 262144).
        let mut big = good.to_string();
        big.push_str(&" ".repeat(300_000));
        let res = api.post_text("/v1/orders", &big, &key).await;
        assert_problem(&res, 413, "payload_too_large");
        // The corrected request with the same key runs for real.
        let res = api.post_h("/v1/orders", &good, &key).await;
        res.expect(
            201,
            &format!("[{backend:?}] the corrected retry with the same key must succeed"),
        );
        assert_ne!(
            res.header("idempotent-replayed"),
            Some("true"),
            "[{backend:?}] and it is not a replay"
        );
        assert_eq!(orders_of(&api, "idem").await.len(), 1);
        server.stop().await;
    }
}

// ---- statement budgets ----------------------------------------------------

#[tokio::test]
async fn get_order_runs_at_most_two_statements() {
    for backend in backends("get_order_runs_at_most_two_statements") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        for sku in ["S1", "S2", "S3", "S4", "S5"] {
            api.create_product(sku, 100, "EUR", 10).await;
        }
        let o = api
            .create_order(
                "c",
                "EUR",
                &[("S1", 1), ("S2", 1), ("S3", 1), ("S4", 1), ("S5", 1)],
            )
            .await;
        let path = format!("/v1/orders/{}", text(&o["id"]));
        for round in 0..2 {
            let res = api.get(&path).await;
            res.expect(200, "GET order");
            assert!(
                res.db_queries() <= 2,
                "[{backend:?}] GET /v1/orders/{{id}} (round {round}) must run at most 2 statements, ran {}",
                res.db_queries()
            );
        }
        let res = api.get_h(&path, &[("if-none-match", "\"1\"")]).await;
        assert!(
            res.db_queries() <= 2,
            "[{backend:?}] the 304 path too: ran {}",
            res.db_queries()
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn listing_orders_runs_the_same_statements_for_2_or_20_orders() {
    for backend in backends("listing_orders_runs_the_same_statements_for_2_or_20_orders") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        for sku in ["S1", "S2", "S3"] {
            api.create_product(sku, 100, "EUR", 1000).await;
        }
        for _ in 0..20 {
            api.create_order("c", "EUR", &[("S1", 1), ("S2", 1), ("S3", 1)])
                .await;
        }
        let mut counts = Vec::new();
        for (limit, expected) in [(2, 2), (20, 20), (50, 20)] {
            let res = api.get(&format!("/v1/orders?limit={limit}")).await;
            res.expect(200, "list orders");
            assert_eq!(res.json()["items"].as_array().map(Vec::len), Some(expected));
            counts.push((limit, res.db_queries()));
        }
        let filtered = api.get("/v1/orders?customer_id=c&limit=50").await;
        counts.push((51, filtered.db_queries()));
        assert!(
            counts[0].1 >= 1,
            "[{backend:?}] listing must report its statements: {counts:?}"
        );
        assert!(
            counts.iter().all(|(_, n)| *n == counts[0].1),
            "[{backend:?}] no N+1: every page runs the same number of statements, got (limit, statements) {counts:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn creating_an_order_runs_the_same_statements_for_1_or_10_items() {
    for backend in backends("creating_an_order_runs_the_same_statements_for_1_or_10_items") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let skus: Vec<String> = (0..10).map(|i| format!("S{i}")).collect();
        for sku in &skus {
            api.create_product(sku, 100, "EUR", 1000).await;
        }
        let ten: Vec<(&str, i64)> = skus.iter().map(|s| (s.as_str(), 1)).collect();
        // Warm-up, then measure.
        api.create_order("c", "EUR", &ten).await;
        let one = api
            .post("/v1/orders", &order_body("c", "EUR", &ten[..1]))
            .await;
        one.expect(201, "1-item order");
        let many = api.post("/v1/orders", &order_body("c", "EUR", &ten)).await;
        many.expect(201, "10-item order");
        let (a, b) = (one.db_queries(), many.db_queries());
        assert!(
            a >= 1,
            "[{backend:?}] an order creation runs statements and must report them, got {a}"
        );
        assert_eq!(
            a, b,
            "[{backend:?}] order creation must run a constant number of statements: 1 item ran {a}, 10 items ran {b}"
        );
        server.stop().await;
    }
}
