//! API.md "Products and stock": create, get (ETag, 304), list (order,
//! pagination, bad parameters), PATCH (If-Match) and stock moves.

mod common;

use common::api::{Api, assert_field_error, assert_problem, is_timestamp_ms, num, text};
use common::{TestServer, backends};
use serde_json::{Value, json};

fn product_body(sku: &str, available: Option<i64>) -> Value {
    let mut body = json!({"sku": sku, "name": "T-shirt M", "price_minor": 1999, "currency": "EUR"});
    if let Some(a) = available {
        body["available"] = json!(a);
    }
    body
}

#[tokio::test]
async fn create_returns_201_with_every_field_and_etag_1() {
    for backend in backends("create_returns_201_with_every_field_and_etag_1") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let res = api
            .post("/v1/products", &product_body("TSHIRT-M", Some(7)))
            .await;
        res.expect(201, &format!("[{backend:?}] POST /v1/products"));
        assert_eq!(
            res.header("etag"),
            Some("\"1\""),
            "[{backend:?}] ETag of a new product must be \"1\""
        );
        let ct = res.header("content-type").unwrap_or("");
        assert!(
            ct.starts_with("application/json"),
            "[{backend:?}] JSON content type, got {ct:?}"
        );
        let p = res.json();
        assert_eq!(p["sku"], "TSHIRT-M", "[{backend:?}] sku");
        assert_eq!(p["name"], "T-shirt M", "[{backend:?}] name");
        assert_eq!(
            p["price_minor"], 1999,
            "[{backend:?}] price_minor is an integer of minor units"
        );
        assert_eq!(p["currency"], "EUR", "[{backend:?}] currency");
        assert_eq!(p["available"], 7, "[{backend:?}] available as given");
        assert_eq!(p["reserved"], 0, "[{backend:?}] nothing reserved yet");
        assert_eq!(p["version"], 1, "[{backend:?}] version 1 on creation");
        for field in ["created_at", "updated_at"] {
            let ts = text(&p[field]);
            assert!(
                is_timestamp_ms(ts),
                "[{backend:?}] {field} must be RFC 3339 UTC with ms, got {ts:?}"
            );
        }
        // What was created is what is read back.
        let read = api.product("TSHIRT-M").await;
        assert_eq!(read, p, "[{backend:?}] GET must return the created product");
        server.stop().await;
    }
}

#[tokio::test]
async fn create_without_available_defaults_to_zero() {
    for backend in backends("create_without_available_defaults_to_zero") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let res = api
            .post("/v1/products", &product_body("NO-STOCK", None))
            .await;
        res.expect(201, &format!("[{backend:?}] create without available"));
        let p = res.json();
        assert_eq!(
            (p["available"].clone(), p["reserved"].clone()),
            (json!(0), json!(0)),
            "[{backend:?}] default available 0"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn create_with_a_taken_sku_is_409_sku_exists_and_keeps_the_original() {
    for backend in backends("create_with_a_taken_sku_is_409_sku_exists_and_keeps_the_original") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let first = api.create_product("DUP-1", 500, "EUR", 3).await;
        let mut second = product_body("DUP-1", Some(99));
        second["name"] = json!("Another name");
        let res = api.post("/v1/products", &second).await;
        let problem = assert_problem(&res, 409, "sku_exists");
        assert!(
            text(&problem["detail"]).contains("DUP-1"),
            "[{backend:?}] detail names the sku: {problem}"
        );
        assert_eq!(
            api.product("DUP-1").await,
            first,
            "[{backend:?}] the original product is untouched"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn get_returns_the_product_with_its_etag() {
    for backend in backends("get_returns_the_product_with_its_etag") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("GET-1", 100, "USD", 1).await;
        let res = api.get("/v1/products/GET-1").await;
        res.expect(200, &format!("[{backend:?}] GET product"));
        assert_eq!(
            res.header("etag"),
            Some("\"1\""),
            "[{backend:?}] ETag \"<version>\""
        );
        assert_eq!(res.json()["sku"], "GET-1");
        // After a change the ETag follows the version.
        api.patch("/v1/products/GET-1", &json!({"name": "renamed"}))
            .await
            .expect(200, "patch");
        let res = api.get("/v1/products/GET-1").await;
        assert_eq!(
            res.header("etag"),
            Some("\"2\""),
            "[{backend:?}] ETag follows the version after a PATCH"
        );
        assert_eq!(res.json()["version"], 2);
        server.stop().await;
    }
}

#[tokio::test]
async fn get_of_an_unknown_sku_is_404_not_found() {
    for backend in backends("get_of_an_unknown_sku_is_404_not_found") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        assert_problem(&api.get("/v1/products/NOPE").await, 404, "not_found");
        server.stop().await;
    }
}

#[tokio::test]
async fn get_with_a_matching_if_none_match_is_304() {
    for backend in backends("get_with_a_matching_if_none_match_is_304") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("COND-1", 100, "EUR", 1).await;
        for tag in ["\"1\"", "*", "\"7\", \"1\"", "\"9\",\"1\",\"3\"", "W/\"1\""] {
            let res = api
                .get_h("/v1/products/COND-1", &[("if-none-match", tag)])
                .await;
            assert_eq!(
                res.status,
                304,
                "[{backend:?}] If-None-Match: {tag} must give 304, got {}",
                res.describe()
            );
            assert!(
                res.text.is_empty(),
                "[{backend:?}] a 304 has no body, got {:?}",
                res.text
            );
        }
        for tag in ["\"2\"", "\"2\", \"3\""] {
            let res = api
                .get_h("/v1/products/COND-1", &[("if-none-match", tag)])
                .await;
            assert_eq!(
                res.status,
                200,
                "[{backend:?}] If-None-Match: {tag} does not match version 1: {}",
                res.describe()
            );
            assert_eq!(res.json()["sku"], "COND-1");
        }
        // Once the product changes, the old tag no longer matches.
        api.post("/v1/products/COND-1/stock", &json!({"delta": 1}))
            .await
            .expect(200, "restock");
        let res = api
            .get_h("/v1/products/COND-1", &[("if-none-match", "\"1\"")])
            .await;
        assert_eq!(
            res.status,
            200,
            "[{backend:?}] stale If-None-Match must give the new product: {}",
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
        api.create_product("COND-2", 100, "EUR", 1).await;
        let full = api.get("/v1/products/COND-2").await;
        assert_eq!(
            full.header("etag"),
            Some("\"1\""),
            "[{backend:?}] the 200's ETag"
        );
        let mut wrong = Vec::new();
        for tag in ["\"1\"", "*", "\"7\", \"1\""] {
            let res = api
                .get_h("/v1/products/COND-2", &[("if-none-match", tag)])
                .await;
            res.expect(304, &format!("[{backend:?}] If-None-Match: {tag}"));
            if res.header("etag") != Some("\"1\"") {
                wrong.push(format!(
                    "If-None-Match: {tag} -> 304 with ETag {:?}",
                    res.header("etag")
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "[{backend:?}] ETag is \"<version>\": a 304 must carry ETag \"1\" like the 200 did:\n{}",
            wrong.join("\n")
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn list_is_ordered_by_sku() {
    for backend in backends("list_is_ordered_by_sku") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        // Mixed case, digits and punctuation: the order is the SKUs' byte
        // order, the same on every backend.
        for sku in [
            "M-2", "a-1", "A-9", "Z-1", "_x", "B-0", "A-1", "0zero", "Z.9", "b",
        ] {
            api.create_product(sku, 100, "EUR", 0).await;
        }
        let res = api.get("/v1/products").await;
        res.expect(200, "list products");
        let page = res.json();
        let skus: Vec<&str> = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| text(&p["sku"]))
            .collect();
        assert_eq!(
            skus,
            [
                "0zero", "A-1", "A-9", "B-0", "M-2", "Z-1", "Z.9", "_x", "a-1", "b"
            ],
            "[{backend:?}] products ordered by sku"
        );
        let paged = api.list_all("/v1/products", 3).await;
        let paged: Vec<&str> = paged.iter().map(|p| text(&p["sku"])).collect();
        assert_eq!(paged, skus, "[{backend:?}] pages of 3 give the same order");
        assert!(
            page["next_cursor"].is_null(),
            "[{backend:?}] one page only: next_cursor null, got {page}"
        );
        assert_eq!(
            page["items"][0]["version"], 1,
            "[{backend:?}] list items are full products"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn list_paginates_with_limit_and_after_until_next_cursor_is_null() {
    for backend in backends("list_paginates_with_limit_and_after_until_next_cursor_is_null") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let mut expected: Vec<String> = (0..7).map(|i| format!("P-{i:02}")).collect();
        for sku in expected.iter().rev() {
            api.create_product(sku, 100, "EUR", 0).await;
        }
        expected.sort();
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let url = match &after {
                None => "/v1/products?limit=3".to_owned(),
                Some(c) => format!("/v1/products?limit=3&after={c}"),
            };
            let res = api.get(&url).await;
            res.expect(200, &format!("[{backend:?}] GET {url}"));
            let page = res.json();
            let items = page["items"].as_array().expect("items");
            sizes.push(items.len());
            seen.extend(items.iter().map(|p| text(&p["sku"]).to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => {
                    assert!(!c.is_empty(), "cursor must not be empty");
                    after = Some(c.to_owned());
                }
                None => {
                    assert!(
                        page["next_cursor"].is_null(),
                        "[{backend:?}] next_cursor must be null at the end: {page}"
                    );
                    break;
                }
            }
            assert!(sizes.len() < 10, "[{backend:?}] pagination must end");
        }
        assert_eq!(
            sizes,
            [3, 3, 1],
            "[{backend:?}] page sizes with limit=3 over 7 products"
        );
        assert_eq!(
            seen, expected,
            "[{backend:?}] every product exactly once, in sku order"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn list_defaults_to_50_and_accepts_500() {
    for backend in backends("list_defaults_to_50_and_accepts_500") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        for i in 0..52 {
            api.create_product(&format!("D-{i:03}"), 1, "EUR", 0).await;
        }
        let page = api.get("/v1/products").await;
        page.expect(200, "default page");
        let page = page.json();
        assert_eq!(
            page["items"].as_array().map(Vec::len),
            Some(50),
            "[{backend:?}] default limit is 50"
        );
        assert!(
            page["next_cursor"].is_string(),
            "[{backend:?}] more remain: next_cursor is a string"
        );
        let page = api.get("/v1/products?limit=500").await;
        page.expect(
            200,
            &format!("[{backend:?}] limit=500 is the allowed maximum"),
        );
        assert_eq!(page.json()["items"].as_array().map(Vec::len), Some(52));
        assert!(page.json()["next_cursor"].is_null());
        server.stop().await;
    }
}

#[tokio::test]
async fn list_with_a_bad_limit_is_400_bad_request() {
    for backend in backends("list_with_a_bad_limit_is_400_bad_request") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        for limit in ["0", "501", "abc", "-1", "1.5", "", "99999999999999999999"] {
            let res = api.get(&format!("/v1/products?limit={limit}")).await;
            assert_eq!(
                res.status,
                400,
                "[{backend:?}] limit={limit:?} must be 400, got {}",
                res.describe()
            );
            assert_problem(&res, 400, "bad_request");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn list_with_a_tampered_cursor_is_400_bad_cursor() {
    for backend in backends("list_with_a_tampered_cursor_is_400_bad_cursor") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        for sku in ["C-1", "C-2", "C-3"] {
            api.create_product(sku, 1, "EUR", 0).await;
        }
        let page = api.get("/v1/products?limit=1").await.json();
        let cursor = text(&page["next_cursor"]).to_owned();
        // The genuine cursor works.
        api.get(&format!("/v1/products?limit=1&after={cursor}"))
            .await
            .expect(200, "genuine cursor");
        let mut tampered = Vec::new();
        for i in [0, cursor.len() / 2, cursor.len() - 1] {
            let mut chars: Vec<char> = cursor.chars().collect();
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            tampered.push(chars.into_iter().collect::<String>());
        }
        tampered.push(cursor[..cursor.len() - 2].to_owned());
        tampered.push(format!("{cursor}AA"));
        tampered.push("not-a-cursor".to_owned());
        tampered.push("C-2".to_owned());
        tampered.push("%00%FF".to_owned());
        tampered.push("A".repeat(2000));
        for bad in tampered {
            let res = api.get(&format!("/v1/products?limit=1&after={bad}")).await;
            assert_eq!(
                res.status,
                400,
                "[{backend:?}] after={bad:?} must be 400 bad_cursor, got {}",
                res.describe()
            );
            assert_problem(&res, 400, "bad_cursor");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn patch_changes_name_and_price_and_bumps_the_version() {
    for backend in backends("patch_changes_name_and_price_and_bumps_the_version") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let created = api.create_product("PATCH-1", 1000, "EUR", 5).await;
        let res = api
            .patch("/v1/products/PATCH-1", &json!({"name": "New name"}))
            .await;
        res.expect(200, &format!("[{backend:?}] PATCH name"));
        assert_eq!(
            res.header("etag"),
            Some("\"2\""),
            "[{backend:?}] ETag of the patched product"
        );
        let p = res.json();
        assert_eq!(
            (
                p["name"].clone(),
                p["price_minor"].clone(),
                p["version"].clone()
            ),
            (json!("New name"), json!(1000), json!(2)),
            "[{backend:?}] name changed, price kept, version +1"
        );
        let res = api
            .patch("/v1/products/PATCH-1", &json!({"price_minor": 2500}))
            .await;
        res.expect(200, "PATCH price");
        let p = res.json();
        assert_eq!(
            (
                p["name"].clone(),
                p["price_minor"].clone(),
                p["version"].clone()
            ),
            (json!("New name"), json!(2500), json!(3)),
            "[{backend:?}] price changed, name kept, version +1"
        );
        let res = api
            .patch(
                "/v1/products/PATCH-1",
                &json!({"name": "Both", "price_minor": 0}),
            )
            .await;
        res.expect(200, "PATCH both");
        let p = res.json();
        assert_eq!(
            (
                p["name"].clone(),
                p["price_minor"].clone(),
                p["version"].clone()
            ),
            (json!("Both"), json!(0), json!(4)),
            "[{backend:?}] both changed, version +1"
        );
        assert_eq!(
            (p["available"].clone(), p["reserved"].clone()),
            (json!(5), json!(0)),
            "[{backend:?}] PATCH leaves stock alone"
        );
        assert_eq!(
            p["created_at"], created["created_at"],
            "[{backend:?}] created_at never changes"
        );
        assert!(
            text(&p["updated_at"]) >= text(&created["updated_at"]),
            "[{backend:?}] updated_at moves forward"
        );
        assert_eq!(
            api.product("PATCH-1").await,
            p,
            "[{backend:?}] GET reflects the PATCH"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn patch_honours_if_match() {
    for backend in backends("patch_honours_if_match") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("IFM-1", 1000, "EUR", 5).await;
        let res = api
            .patch_h(
                "/v1/products/IFM-1",
                &json!({"name": "v2"}),
                &[("if-match", "\"1\"")],
            )
            .await;
        res.expect(
            200,
            &format!("[{backend:?}] PATCH with If-Match of the current version"),
        );
        assert_eq!(res.json()["version"], 2);
        let before = api.product("IFM-1").await;
        for stale in ["\"1\"", "\"3\"", "\"1\", \"3\""] {
            let res = api
                .patch_h(
                    "/v1/products/IFM-1",
                    &json!({"name": "lost update"}),
                    &[("if-match", stale)],
                )
                .await;
            let problem = assert_problem(&res, 412, "version_mismatch");
            assert!(problem.get("errors").is_none());
        }
        assert_eq!(
            api.product("IFM-1").await,
            before,
            "[{backend:?}] a 412 changes nothing"
        );
        // `*` matches any current version; a list matches if one tag does.
        for (tag, version) in [("*", 3), ("\"9\", \"3\"", 4)] {
            let res = api
                .patch_h(
                    "/v1/products/IFM-1",
                    &json!({"name": tag}),
                    &[("if-match", tag)],
                )
                .await;
            res.expect(200, &format!("[{backend:?}] PATCH with If-Match: {tag}"));
            assert_eq!(
                res.json()["version"],
                version,
                "[{backend:?}] If-Match: {tag}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn patch_of_an_unknown_sku_is_404() {
    for backend in backends("patch_of_an_unknown_sku_is_404") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        assert_problem(
            &api.patch("/v1/products/NOPE", &json!({"name": "x"})).await,
            404,
            "not_found",
        );
        assert_problem(
            &api.post("/v1/products/NOPE/stock", &json!({"delta": 1}))
                .await,
            404,
            "not_found",
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn stock_restock_and_write_off_move_available_and_bump_the_version() {
    for backend in backends("stock_restock_and_write_off_move_available_and_bump_the_version") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("STK-1", 100, "EUR", 10).await;
        let res = api
            .post("/v1/products/STK-1/stock", &json!({"delta": 5}))
            .await;
        res.expect(200, &format!("[{backend:?}] restock"));
        assert_eq!(
            res.header("etag"),
            Some("\"2\""),
            "[{backend:?}] ETag after restock"
        );
        let p = res.json();
        assert_eq!(
            (
                num(&p["available"]),
                num(&p["reserved"]),
                num(&p["version"])
            ),
            (15, 0, 2),
            "[{backend:?}] restock +5"
        );
        let res = api
            .post("/v1/products/STK-1/stock", &json!({"delta": -15}))
            .await;
        res.expect(200, &format!("[{backend:?}] write-off down to exactly 0"));
        let p = res.json();
        assert_eq!(
            (num(&p["available"]), num(&p["version"])),
            (0, 3),
            "[{backend:?}] write-off -15"
        );
        assert_eq!(
            api.stock("STK-1").await,
            (0, 0, 3),
            "[{backend:?}] GET reflects the moves"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn stock_delta_zero_is_422() {
    for backend in backends("stock_delta_zero_is_422") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("STK-0", 100, "EUR", 10).await;
        let res = api
            .post("/v1/products/STK-0/stock", &json!({"delta": 0}))
            .await;
        assert_field_error(&res, "delta");
        assert_eq!(
            api.stock("STK-0").await,
            (10, 0, 1),
            "[{backend:?}] delta 0 changes nothing"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn stock_below_zero_is_409_stock_negative_and_changes_nothing() {
    for backend in backends("stock_below_zero_is_409_stock_negative_and_changes_nothing") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("STK-N", 100, "EUR", 3).await;
        // Reserve 2 of them: available 1, reserved 2 (reserved stock cannot be written off).
        api.create_order("cust-stk", "EUR", &[("STK-N", 2)]).await;
        assert_eq!(api.stock("STK-N").await, (1, 2, 2));
        let res = api
            .post("/v1/products/STK-N/stock", &json!({"delta": -2}))
            .await;
        let problem = assert_problem(&res, 409, "stock_negative");
        assert!(
            text(&problem["detail"]).contains("STK-N"),
            "[{backend:?}] detail names the sku: {problem}"
        );
        assert_eq!(
            api.stock("STK-N").await,
            (1, 2, 2),
            "[{backend:?}] a refused write-off changes nothing"
        );
        api.post("/v1/products/STK-N/stock", &json!({"delta": -1}))
            .await
            .expect(200, "write-off to 0");
        assert_eq!(
            api.stock("STK-N").await,
            (0, 2, 3),
            "[{backend:?}] write-off of exactly available"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn stock_honours_if_match() {
    for backend in backends("stock_honours_if_match") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("STK-IF", 100, "EUR", 3).await;
        let res = api
            .post_h(
                "/v1/products/STK-IF/stock",
                &json!({"delta": 2}),
                &[("if-match", "\"1\"")],
            )
            .await;
        res.expect(
            200,
            &format!("[{backend:?}] stock move with the current If-Match"),
        );
        let res = api
            .post_h(
                "/v1/products/STK-IF/stock",
                &json!({"delta": 2}),
                &[("if-match", "\"1\"")],
            )
            .await;
        assert_problem(&res, 412, "version_mismatch");
        assert_eq!(
            api.stock("STK-IF").await,
            (5, 0, 2),
            "[{backend:?}] a 412 moves no stock"
        );
        server.stop().await;
    }
}
