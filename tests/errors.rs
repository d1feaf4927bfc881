//! API.md "Errors" and "Headers on every response": problem+json for every
//! failure, the check order, input limits, body size, routing errors, and
//! the telemetry headers (request id, timings, statement counts).

mod common;

use std::time::Duration;

use common::api::{
    Api, Resp, assert_field_error, assert_problem, assert_telemetry, is_ms, order_body,
    raw_exchange, text,
};
use common::{TestServer, backends};
use reqwest::Method;
use serde_json::{Value, json};

/// Whether the problem's field errors mention `word` (in a field or a message).
fn errors_mention(body: &Value, word: &str) -> bool {
    body["errors"].as_array().is_some_and(|errors| {
        errors.iter().any(|e| {
            e["field"].as_str().is_some_and(|f| f.contains(word))
                || e["message"].as_str().is_some_and(|m| m.contains(word))
        })
    })
}

fn ms_value(res: &Resp, header: &str) -> f64 {
    let raw = res
        .header(header)
        .unwrap_or_else(|| panic!("{header} missing"));
    raw.trim_end_matches("ms")
        .parse()
        .unwrap_or_else(|_| panic!("{header}: {raw:?}"))
}

/// A valid order body padded with trailing spaces to exactly `len` bytes.
fn padded_order(len: usize) -> String {
    let mut body = order_body("pad", "EUR", &[("A", 1)]).to_string();
    assert!(body.len() <= len);
    body.push_str(&" ".repeat(len - body.len()));
    body
}

/// `(method, path, content type, body, expected status, expected code)`.
type ErrorCase<'a> = (Method, &'a str, Option<&'a str>, String, u16, &'a str);

// ---- problem+json ---------------------------------------------------------

#[tokio::test]
async fn every_error_is_problem_json_with_the_request_id_of_the_response() {
    for backend in backends("every_error_is_problem_json_with_the_request_id_of_the_response") {
        let server = TestServer::start_with(backend, |c| c.server.max_body_bytes = 4096).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 1).await;
        let json = Some("application/json");
        let big = "x".repeat(5000);
        let cases: Vec<ErrorCase> = vec![
            (
                Method::POST,
                "/v1/products",
                json,
                "{".into(),
                400,
                "malformed_json",
            ),
            (
                Method::GET,
                "/v1/products?limit=0",
                None,
                String::new(),
                400,
                "bad_request",
            ),
            (
                Method::GET,
                "/v1/products?after=zzz",
                None,
                String::new(),
                400,
                "bad_cursor",
            ),
            (
                Method::GET,
                "/v1/products/NOPE",
                None,
                String::new(),
                404,
                "not_found",
            ),
            (
                Method::GET,
                "/no/such/route",
                None,
                String::new(),
                404,
                "not_found",
            ),
            (
                Method::DELETE,
                "/v1/products/A",
                None,
                String::new(),
                405,
                "method_not_allowed",
            ),
            (
                Method::POST,
                "/v1/products",
                json,
                json!({"sku": "A", "name": "n", "price_minor": 1, "currency": "EUR"}).to_string(),
                409,
                "sku_exists",
            ),
            (
                Method::POST,
                "/v1/orders",
                json,
                order_body("c", "EUR", &[("A", 2)]).to_string(),
                409,
                "insufficient_stock",
            ),
            (
                Method::POST,
                "/v1/products/A/stock",
                json,
                json!({"delta": -2}).to_string(),
                409,
                "stock_negative",
            ),
            (
                Method::POST,
                "/v1/products",
                json,
                big,
                413,
                "payload_too_large",
            ),
            (
                Method::POST,
                "/v1/products",
                Some("text/plain"),
                "{}".into(),
                415,
                "unsupported_media_type",
            ),
            (
                Method::POST,
                "/v1/products",
                json,
                "{}".into(),
                422,
                "validation_failed",
            ),
            (
                Method::POST,
                "/v1/orders",
                json,
                order_body("c", "EUR", &[("NOPE", 1)]).to_string(),
                422,
                "unknown_sku",
            ),
        ];
        for (method, path, ct, body, status, code) in cases {
            let res = api.raw(method.clone(), path, ct, body.clone(), &[]).await;
            assert_eq!(
                res.status,
                status,
                "[{backend:?}] {method} {path}: expected {status} {code}, got {}",
                res.describe()
            );
            assert_problem(&res, status, code);
            // With a caller's request id, the problem carries that id (every
            // case is a refusal, so sending it again changes nothing).
            let trace = format!("trace-{code}");
            let res = api
                .raw(method.clone(), path, ct, body, &[("x-request-id", &trace)])
                .await;
            let problem = assert_problem(&res, status, code);
            assert_eq!(
                problem["request_id"],
                trace.as_str(),
                "[{backend:?}] {method} {path}: request_id is the caller's X-Request-Id"
            );
        }
        // 412 needs If-Match.
        let res = api
            .patch_h(
                "/v1/products/A",
                &json!({"name": "x"}),
                &[("if-match", "\"9\""), ("x-request-id", "my-trace-412")],
            )
            .await;
        let problem = assert_problem(&res, 412, "version_mismatch");
        assert_eq!(
            problem["request_id"], "my-trace-412",
            "[{backend:?}] the caller's request id is the problem's request_id"
        );
        let res = api
            .get_h("/nope", &[("x-request-id", "my-trace-404")])
            .await;
        let problem = assert_problem(&res, 404, "not_found");
        assert_eq!(
            problem["request_id"], "my-trace-404",
            "[{backend:?}] also on an unknown route"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn malformed_json_is_400_malformed_json() {
    for backend in backends("malformed_json_is_400_malformed_json") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let order = api.create_order("c", "EUR", &[("A", 1)]).await;
        let confirm = format!("/v1/orders/{}/confirm", text(&order["id"]));
        // Not JSON, even where a prefix would already fail validation.
        let bodies = [
            "{",
            "{\"sku\": \"X\",}",
            "not json",
            "{\"a\": 1} trailing",
            "{} {}",
            "",
            "{'sku': 'X'}",
            "[1, 2",
            "{\"unknown_field\": ",
            "{\"delta\": \"x\", oops}",
        ];
        let mut wrong = Vec::new();
        for (method, path) in [
            (Method::POST, "/v1/products"),
            (Method::POST, "/v1/orders"),
            (Method::PATCH, "/v1/products/A"),
            (Method::POST, "/v1/products/A/stock"),
            (Method::POST, confirm.as_str()),
        ] {
            for body in bodies {
                if body.is_empty() && path == confirm {
                    continue; // the transition body is optional: empty is no body
                }
                let res = api
                    .raw(method.clone(), path, Some("application/json"), body, &[])
                    .await;
                if res.status == 400 {
                    assert_problem(&res, 400, "malformed_json");
                } else {
                    wrong.push(format!("{method} {path} {body:?} -> {}", res.describe()));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "[{backend:?}] bodies that are not JSON must be 400 malformed_json (syntax is checked before validation):\n{}",
            wrong.join("\n")
        );
        assert_eq!(
            api.order(text(&order["id"])).await["status"],
            "pending",
            "[{backend:?}] nothing was confirmed"
        );
        assert_eq!(
            api.stock("A").await,
            (9, 1, 2),
            "[{backend:?}] nothing moved"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn trailing_data_after_a_json_value_is_400_and_changes_nothing() {
    for backend in backends("trailing_data_after_a_json_value_is_400_and_changes_nothing") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let order = api.create_order("c", "EUR", &[("A", 1)]).await;
        let id = text(&order["id"]).to_owned();
        let cases = [
            (
                Method::POST,
                "/v1/products/A/stock".to_owned(),
                "{\"delta\": 5} garbage",
            ),
            (
                Method::PATCH,
                "/v1/products/A".to_owned(),
                "{\"name\": \"hijack\"} {\"name\": \"x\"}",
            ),
            (
                Method::POST,
                format!("/v1/orders/{id}/cancel"),
                "{} trailing",
            ),
            (
                Method::POST,
                "/v1/orders".to_owned(),
                "{\"customer_id\": \"c\", \"currency\": \"EUR\", \"items\": [{\"sku\": \"A\", \"quantity\": 1}]}]",
            ),
        ];
        let mut wrong = Vec::new();
        let keyed = [("idempotency-key", "trailing-1")];
        for (i, (method, path, body)) in cases.iter().enumerate() {
            let res = api
                .raw(method.clone(), path, Some("application/json"), *body, &[])
                .await;
            if res.status == 400 {
                assert_problem(&res, 400, "malformed_json");
            } else {
                wrong.push(format!("{method} {path} {body:?} -> {}", res.describe()));
            }
            if i + 1 < cases.len() {
                continue;
            }
            // The same order body with an Idempotency-Key.
            let res = api
                .raw(
                    method.clone(),
                    path,
                    Some("application/json"),
                    *body,
                    &keyed,
                )
                .await;
            if res.status == 400 {
                assert_problem(&res, 400, "malformed_json");
            } else {
                wrong.push(format!(
                    "{method} {path} {body:?} with Idempotency-Key -> {}",
                    res.describe()
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "[{backend:?}] a body with data after the JSON value is not JSON: 400 malformed_json, and nothing happens:\n{}",
            wrong.join("\n")
        );
        assert_eq!(
            api.stock("A").await,
            (9, 1, 2),
            "[{backend:?}] no stock moved"
        );
        assert_eq!(
            api.product("A").await["name"],
            "Product A",
            "[{backend:?}] no rename"
        );
        assert_eq!(
            api.order(&id).await["status"],
            "pending",
            "[{backend:?}] not cancelled"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn unknown_fields_are_422_naming_the_field() {
    for backend in backends("unknown_fields_are_422_naming_the_field") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let order = api.create_order("c", "EUR", &[("A", 1)]).await;
        let confirm = format!("/v1/orders/{}/confirm", text(&order["id"]));
        let cases: Vec<(Method, &str, Value, &str)> = vec![
            (
                Method::POST,
                "/v1/products",
                json!({"sku": "B", "name": "n", "price_minor": 1, "currency": "EUR", "colour": "red"}),
                "colour",
            ),
            (
                Method::POST,
                "/v1/orders",
                json!({"customer_id": "c", "currency": "EUR", "items": [{"sku": "A", "quantity": 1}], "coupon": "X"}),
                "coupon",
            ),
            (
                Method::POST,
                "/v1/orders",
                json!({"customer_id": "c", "currency": "EUR", "items": [{"sku": "A", "quantity": 1, "discount": 5}]}),
                "discount",
            ),
            (
                Method::POST,
                "/v1/orders",
                json!({"customer_id": "c", "currency": "EUR", "itemz": [{"sku": "A", "quantity": 1}]}),
                "itemz",
            ),
            (
                Method::PATCH,
                "/v1/products/A",
                json!({"nme": "typo"}),
                "nme",
            ),
            (
                Method::PATCH,
                "/v1/products/A",
                json!({"name": "ok", "available": 100}),
                "available",
            ),
            (
                Method::POST,
                "/v1/products/A/stock",
                json!({"delta": 1, "why": "x"}),
                "why",
            ),
            (
                Method::POST,
                confirm.as_str(),
                json!({"reason": "x", "by": "me"}),
                "by",
            ),
        ];
        for (method, path, body, field) in cases {
            let res = api.json_h(method.clone(), path, &body, &[]).await;
            assert_eq!(
                res.status,
                422,
                "[{backend:?}] {method} {path} with unknown field {field:?} must be 422, got {}",
                res.describe()
            );
            let problem = assert_problem(&res, 422, "validation_failed");
            assert!(
                errors_mention(&problem, field),
                "[{backend:?}] the errors must name the unknown field {field:?}: {problem}"
            );
        }
        assert_eq!(
            api.stock("A").await,
            (9, 1, 2),
            "[{backend:?}] nothing changed"
        );
        assert_eq!(api.order(text(&order["id"])).await["status"], "pending");
        assert_eq!(api.product("A").await["name"], "Product A");
        server.stop().await;
    }
}

#[tokio::test]
async fn wrong_types_are_422_with_the_json_path_of_the_field() {
    for backend in backends("wrong_types_are_422_with_the_json_path_of_the_field") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let product = |price: Value| json!({"sku": "B", "name": "n", "price_minor": price, "currency": "EUR"});
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "/v1/orders",
                json!({"customer_id": "c", "currency": "EUR", "items": [{"sku": "A", "quantity": "1"}]}),
                "items[0].quantity",
            ),
            (
                "/v1/orders",
                json!({"customer_id": "c", "currency": "EUR", "items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": true}]}),
                "items[1].quantity",
            ),
            (
                "/v1/orders",
                json!({"customer_id": "c", "currency": "EUR", "items": [{"sku": 7, "quantity": 1}]}),
                "items[0].sku",
            ),
            (
                "/v1/orders",
                json!({"customer_id": 42, "currency": "EUR", "items": [{"sku": "A", "quantity": 1}]}),
                "customer_id",
            ),
            (
                "/v1/orders",
                json!({"customer_id": "c", "currency": "EUR", "items": {"sku": "A"}}),
                "items",
            ),
            (
                "/v1/orders",
                json!({"customer_id": "c", "currency": "EUR", "items": [{"sku": "A", "quantity": 1}], "note": 5}),
                "note",
            ),
            ("/v1/products", product(json!("1999")), "price_minor"),
            ("/v1/products", product(json!(19.99)), "price_minor"),
            ("/v1/products", product(json!(null)), "price_minor"),
            ("/v1/products/A/stock", json!({"delta": "5"}), "delta"),
            ("/v1/products/A/stock", json!({"delta": 1.5}), "delta"),
        ];
        for (path, body, field) in cases {
            let res = api.post(path, &body).await;
            assert_eq!(
                res.status,
                422,
                "[{backend:?}] POST {path} {body} must be 422, got {}",
                res.describe()
            );
            assert_field_error(&res, field);
        }
        // Valid JSON of the wrong shape, and a missing field.
        for body in ["[]", "42", "null", "\"text\""] {
            let res = api.post_text("/v1/orders", body, &[]).await;
            assert_eq!(
                res.status,
                422,
                "[{backend:?}] POST /v1/orders with {body} must be 422, got {}",
                res.describe()
            );
            assert_problem(&res, 422, "validation_failed");
        }
        let res = api
            .post(
                "/v1/products",
                &json!({"sku": "B", "name": "n", "currency": "EUR"}),
            )
            .await;
        let problem = assert_problem(&res, 422, "validation_failed");
        assert!(
            errors_mention(&problem, "price_minor"),
            "[{backend:?}] a missing field is named: {problem}"
        );
        let res = api
            .patch("/v1/products/A", &json!({"price_minor": 1.25}))
            .await;
        assert_field_error(&res, "price_minor");
        assert_eq!(
            api.stock("A").await,
            (10, 0, 1),
            "[{backend:?}] nothing changed"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn out_of_range_numbers_are_422() {
    for backend in backends("out_of_range_numbers_are_422") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 20_000).await;
        let huge = "99999999999999999999";
        let tiny = "-99999999999999999999";
        let order_with = |q: &str| {
            format!(
                r#"{{"customer_id": "c", "currency": "EUR", "items": [{{"sku": "A", "quantity": {q}}}]}}"#
            )
        };
        let product_with = |field: &str, v: &str| {
            let mut fields = vec![
                ("sku", "\"B\"".to_owned()),
                ("name", "\"n\"".to_owned()),
                ("price_minor", "1".to_owned()),
                ("currency", "\"EUR\"".to_owned()),
                ("available", "1".to_owned()),
            ];
            for f in &mut fields {
                if f.0 == field {
                    f.1 = v.to_owned();
                }
            }
            let inner: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            format!("{{{}}}", inner.join(", "))
        };
        let mut cases: Vec<(&str, String, &str)> = Vec::new();
        for q in ["0", "10001", "-1", huge, tiny, "1e3", "9223372036854775808"] {
            cases.push(("/v1/orders", order_with(q), "items[0].quantity"));
        }
        for v in ["-1", huge, tiny, "-9223372036854775809"] {
            cases.push((
                "/v1/products",
                product_with("price_minor", v),
                "price_minor",
            ));
            cases.push(("/v1/products", product_with("available", v), "available"));
        }
        for v in [huge, tiny] {
            cases.push((
                "/v1/products/A/stock",
                format!("{{\"delta\": {v}}}"),
                "delta",
            ));
        }
        for (path, body, field) in cases {
            let res = api.post_text(path, &body, &[]).await;
            assert_eq!(
                res.status,
                422,
                "[{backend:?}] POST {path} {body} must be 422, got {}",
                res.describe()
            );
            assert_field_error(&res, field);
        }
        assert_eq!(
            api.stock("A").await,
            (20_000, 0, 1),
            "[{backend:?}] nothing moved"
        );
        for v in ["-1", huge] {
            let res = api
                .raw(
                    Method::PATCH,
                    "/v1/products/A",
                    Some("application/json"),
                    format!("{{\"price_minor\": {v}}}"),
                    &[],
                )
                .await;
            assert_field_error(&res, "price_minor");
        }
        // The bounds themselves are accepted.
        api.create_order("c", "EUR", &[("A", 10_000)]).await;
        api.create_order("c", "EUR", &[("A", 1)]).await;
        let res = api.post("/v1/products", &json!({"sku": "FREE", "name": "n", "price_minor": 0, "currency": "EUR", "available": 0})).await;
        res.expect(
            201,
            &format!("[{backend:?}] price 0 and available 0 are allowed"),
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn money_that_would_overflow_is_refused_without_a_500() {
    for backend in backends("money_that_would_overflow_is_refused_without_a_500") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let res = api.post("/v1/products", &json!({"sku": "MAX", "name": "n", "price_minor": i64::MAX, "currency": "EUR", "available": 10})).await;
        assert!(
            res.status == 201 || res.status == 422,
            "[{backend:?}] price i64::MAX is created or refused with 422, got {}",
            res.describe()
        );
        if res.status == 201 {
            let res = api
                .post("/v1/orders", &order_body("c", "EUR", &[("MAX", 2)]))
                .await;
            assert!(
                res.status == 409 || res.status == 422,
                "[{backend:?}] an order whose total overflows i64 must be refused with 409/422, never a 500 or a wrapped total; got {}",
                res.describe()
            );
            assert_problem(&res, res.status, res.json()["code"].as_str().unwrap_or("?"));
            assert_eq!(
                api.stock("MAX").await,
                (10, 0, 1),
                "[{backend:?}] nothing reserved"
            );
        }
        let res = api
            .post("/v1/products/MAX/stock", &json!({"delta": i64::MAX}))
            .await;
        assert!(
            res.status < 500,
            "[{backend:?}] a restock overflowing available must not be a 500: {}",
            res.describe()
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn strings_over_their_limits_are_422_and_the_limits_are_in_characters() {
    for backend in backends("strings_over_their_limits_are_422_and_the_limits_are_in_characters") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 100).await;
        let order = api.create_order("c", "EUR", &[("A", 1)]).await;
        let id = text(&order["id"]).to_owned();
        let product =
            |name: &str| json!({"sku": "B", "name": name, "price_minor": 1, "currency": "EUR"});
        let with = |field: &str, v: &str| {
            let mut b = order_body("c", "EUR", &[("A", 1)]);
            b[field] = json!(v);
            b
        };
        let cases: Vec<(String, Value, &str)> = vec![
            ("/v1/products".into(), product(&"n".repeat(201)), "name"),
            ("/v1/products".into(), product(&"é".repeat(201)), "name"),
            ("/v1/products".into(), product(""), "name"),
            ("/v1/orders".into(), with("note", &"n".repeat(1001)), "note"),
            (
                "/v1/orders".into(),
                with("customer_id", &"c".repeat(65)),
                "customer_id",
            ),
            (
                "/v1/orders".into(),
                with("customer_id", &"ü".repeat(65)),
                "customer_id",
            ),
            ("/v1/orders".into(), with("customer_id", ""), "customer_id"),
            (
                format!("/v1/orders/{id}/cancel"),
                json!({"reason": "r".repeat(1001)}),
                "reason",
            ),
        ];
        for (path, body, field) in &cases {
            let res = api.post(path, body).await;
            assert_eq!(
                res.status,
                422,
                "[{backend:?}] POST {path} with {field} over its limit must be 422, got {}",
                res.describe()
            );
            assert_field_error(&res, field);
        }
        let res = api
            .patch("/v1/products/A", &json!({"name": "n".repeat(201)}))
            .await;
        assert_field_error(&res, "name");
        assert_eq!(
            api.order(&id).await["status"],
            "pending",
            "[{backend:?}] the long reason cancelled nothing"
        );

        // The limits themselves, counted in characters, are accepted.
        let res = api.post("/v1/products", &product(&"é".repeat(200))).await;
        res.expect(
            201,
            &format!("[{backend:?}] a 200-character name (400 bytes)"),
        );
        let mut b = with("note", &"ñ".repeat(1000));
        b["customer_id"] = json!("ü".repeat(64));
        let res = api.post("/v1/orders", &b).await;
        res.expect(
            201,
            &format!("[{backend:?}] a 1000-character note and a 64-character customer_id"),
        );
        let res = api
            .post(
                &format!("/v1/orders/{id}/cancel"),
                &json!({"reason": "r".repeat(1000)}),
            )
            .await;
        res.expect(200, &format!("[{backend:?}] a 1000-character reason"));
        server.stop().await;
    }
}

#[tokio::test]
async fn skus_and_currencies_outside_their_format_are_422() {
    for backend in backends("skus_and_currencies_outside_their_format_are_422") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 100).await;
        let long = "S".repeat(65);
        for sku in [
            "ÄPFEL",
            "café",
            "🦀",
            "with space",
            "a/b",
            "",
            long.as_str(),
        ] {
            let res = api
                .post(
                    "/v1/products",
                    &json!({"sku": sku, "name": "n", "price_minor": 1, "currency": "EUR"}),
                )
                .await;
            assert_eq!(
                res.status,
                422,
                "[{backend:?}] product sku {sku:?} must be 422, got {}",
                res.describe()
            );
            assert_field_error(&res, "sku");
            let res = api
                .post("/v1/orders", &order_body("c", "EUR", &[("A", 1), (sku, 1)]))
                .await;
            assert_eq!(
                res.status,
                422,
                "[{backend:?}] order sku {sku:?} must be 422, got {}",
                res.describe()
            );
            assert_field_error(&res, "items[1].sku");
        }
        for currency in ["eur", "EURO", "E1R", "", "€"] {
            let res = api
                .post(
                    "/v1/products",
                    &json!({"sku": "C", "name": "n", "price_minor": 1, "currency": currency}),
                )
                .await;
            assert_field_error(&res, "currency");
            let res = api
                .post("/v1/orders", &order_body("c", currency, &[("A", 1)]))
                .await;
            assert_field_error(&res, "currency");
        }
        assert_eq!(
            api.stock("A").await,
            (100, 0, 1),
            "[{backend:?}] nothing reserved"
        );
        let edge = "a.b_c-D9".to_owned() + &"x".repeat(56);
        let res = api
            .post(
                "/v1/products",
                &json!({"sku": edge, "name": "n", "price_minor": 1, "currency": "EUR"}),
            )
            .await;
        res.expect(
            201,
            &format!("[{backend:?}] a 64-character SKU of every allowed character class"),
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn orders_need_1_to_100_items() {
    for backend in backends("orders_need_1_to_100_items") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let skus: Vec<String> = (0..101).map(|i| format!("I{i:03}")).collect();
        for sku in &skus {
            api.create_product(sku, 1, "EUR", 5).await;
        }
        let res = api.post("/v1/orders", &order_body("c", "EUR", &[])).await;
        assert_field_error(&res, "items");
        let all: Vec<(&str, i64)> = skus.iter().map(|s| (s.as_str(), 1)).collect();
        let res = api.post("/v1/orders", &order_body("c", "EUR", &all)).await;
        assert_eq!(
            res.status,
            422,
            "[{backend:?}] 101 items must be 422, got {}",
            res.describe()
        );
        assert_field_error(&res, "items");
        assert_eq!(
            api.stock("I000").await,
            (5, 0, 1),
            "[{backend:?}] nothing reserved"
        );
        let o = api.create_order("c", "EUR", &all[..100]).await;
        assert_eq!(
            o["items"].as_array().map(Vec::len),
            Some(100),
            "[{backend:?}] 100 items are accepted"
        );
        assert_eq!(o["total_minor"], 100);
        server.stop().await;
    }
}

// ---- content type and size ------------------------------------------------

#[tokio::test]
async fn a_body_without_a_json_content_type_is_415() {
    for backend in backends("a_body_without_a_json_content_type_is_415") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let order = api.create_order("c", "EUR", &[("A", 1)]).await;
        let confirm = format!("/v1/orders/{}/confirm", text(&order["id"]));
        let product =
            json!({"sku": "B", "name": "n", "price_minor": 1, "currency": "EUR"}).to_string();
        let targets = [
            (Method::POST, "/v1/products", product.clone()),
            (
                Method::POST,
                "/v1/orders",
                order_body("c", "EUR", &[("A", 1)]).to_string(),
            ),
            (
                Method::PATCH,
                "/v1/products/A",
                json!({"name": "x"}).to_string(),
            ),
            (
                Method::POST,
                "/v1/products/A/stock",
                json!({"delta": 1}).to_string(),
            ),
            (
                Method::POST,
                confirm.as_str(),
                json!({"reason": "x"}).to_string(),
            ),
        ];
        for (method, path, body) in &targets {
            for ct in [
                Some("text/plain"),
                Some("application/x-www-form-urlencoded"),
                Some("application/xml"),
                None,
            ] {
                let res = api.raw(method.clone(), path, ct, body.clone(), &[]).await;
                assert_eq!(
                    res.status,
                    415,
                    "[{backend:?}] {method} {path} with Content-Type {ct:?} must be 415, got {}",
                    res.describe()
                );
                assert_problem(&res, 415, "unsupported_media_type");
            }
        }
        assert_eq!(
            api.stock("A").await,
            (9, 1, 2),
            "[{backend:?}] nothing changed"
        );
        assert_eq!(api.order(text(&order["id"])).await["status"], "pending");
        // JSON with parameters is JSON.
        let res = api
            .raw(
                Method::POST,
                "/v1/products",
                Some("application/json; charset=utf-8"),
                product,
                &[],
            )
            .await;
        res.expect(
            201,
            &format!("[{backend:?}] application/json; charset=utf-8 is JSON"),
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_413_and_the_limit_itself_passes() {
    for backend in backends("a_body_over_max_body_bytes_is_413_and_the_limit_itself_passes") {
        let server = TestServer::start_with(backend, |c| c.server.max_body_bytes = 1024).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        for len in [1025, 4096, 100_000] {
            let res = api.post_text("/v1/orders", &padded_order(len), &[]).await;
            assert_eq!(
                res.status,
                413,
                "[{backend:?}] a {len}-byte body over a 1024-byte limit must be 413, got {}",
                res.describe()
            );
            assert_problem(&res, 413, "payload_too_large");
            let res = api
                .raw(
                    Method::PATCH,
                    "/v1/products/A",
                    Some("application/json"),
                    format!("{{\"name\": \"x\"}}{}", " ".repeat(len)),
                    &[],
                )
                .await;
            assert_problem(&res, 413, "payload_too_large");
        }
        assert_eq!(
            api.stock("A").await,
            (10, 0, 1),
            "[{backend:?}] nothing reserved"
        );
        let res = api.post_text("/v1/orders", &padded_order(1024), &[]).await;
        res.expect(
            201,
            &format!("[{backend:?}] a body of exactly max_body_bytes is accepted"),
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    for backend in backends("a_chunked_body_over_the_limit_is_413") {
        let server = TestServer::start_with(backend, |c| c.server.max_body_bytes = 1024).await;
        let body = padded_order(8192);
        let mut request = String::from(
            "POST /v1/orders HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        );
        for chunk in body.as_bytes().chunks(500) {
            request.push_str(&format!(
                "{:x}\r\n{}\r\n",
                chunk.len(),
                String::from_utf8_lossy(chunk)
            ));
        }
        request.push_str("0\r\n\r\n");
        let res = raw_exchange(server.addr, request.as_bytes(), Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| {
                panic!("[{backend:?}] chunked oversized body: expected a 413 response, got {e}")
            });
        assert_eq!(
            res.status, 413,
            "[{backend:?}] chunked body over the limit: {res:?}"
        );
        let problem: Value = serde_json::from_str(&res.body).expect("problem json");
        assert_eq!(problem["code"], "payload_too_large");
        assert_eq!(
            res.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_413_arrives_from_content_length_before_the_body_is_sent() {
    for backend in backends("the_413_arrives_from_content_length_before_the_body_is_sent") {
        let server = TestServer::start_with(backend, |c| c.server.max_body_bytes = 1024).await;
        // Declare 50 MB, send 1 KB of it, and wait: the server must answer
        // from Content-Length alone, without waiting for (or reading) the rest.
        let mut request = String::from(
            "POST /v1/orders HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\nConnection: close\r\n\r\n",
        );
        request.push_str(&" ".repeat(1024));
        let res = raw_exchange(server.addr, request.as_bytes(), Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| {
                panic!("[{backend:?}] declared 50 MB: expected a prompt 413, got {e}")
            });
        assert_eq!(res.status, 413, "[{backend:?}] {res:?}");
        let problem: Value = serde_json::from_str(&res.body).expect("problem json");
        assert_eq!(
            problem["code"], "payload_too_large",
            "[{backend:?}] {problem}"
        );
        assert!(
            res.header("x-request-id").is_some(),
            "[{backend:?}] telemetry headers on the 413 too"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_client_sending_a_large_body_receives_the_413() {
    for backend in backends("a_client_sending_a_large_body_receives_the_413") {
        // Default limit (262144 bytes).
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        for len in [262_145, 1 << 20, 8 << 20] {
            let res = api.post_text("/v1/orders", &padded_order(len), &[]).await;
            assert_eq!(
                res.status,
                413,
                "[{backend:?}] {len}-byte body over the default 262144 must be 413, got {}",
                res.describe()
            );
            assert_problem(&res, 413, "payload_too_large");
        }
        let res = api
            .post_text("/v1/orders", &padded_order(262_144), &[])
            .await;
        res.expect(
            201,
            &format!("[{backend:?}] exactly 262144 bytes is accepted by default"),
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn checks_run_in_the_documented_order() {
    for backend in backends("checks_run_in_the_documented_order") {
        let server = TestServer::start_with(backend, |c| c.server.max_body_bytes = 1024).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let big_text = "x".repeat(4096);
        let big_bad_json = format!("{{{}", " ".repeat(4096));
        // Route and method before everything.
        assert_problem(
            &api.raw(
                Method::POST,
                "/v1/nothing",
                Some("text/plain"),
                big_text.clone(),
                &[],
            )
            .await,
            404,
            "not_found",
        );
        assert_problem(
            &api.raw(
                Method::PUT,
                "/v1/products/A",
                Some("text/plain"),
                big_text.clone(),
                &[],
            )
            .await,
            405,
            "method_not_allowed",
        );
        // Content type before size.
        assert_problem(
            &api.raw(
                Method::POST,
                "/v1/orders",
                Some("text/plain"),
                big_text.clone(),
                &[],
            )
            .await,
            415,
            "unsupported_media_type",
        );
        // Size before syntax.
        assert_problem(
            &api.post_text("/v1/orders", &big_bad_json, &[]).await,
            413,
            "payload_too_large",
        );
        // Validation before the operation: an invalid body for a missing
        // product or order is a 422, not a 404; an invalid line is not unknown_sku.
        assert_field_error(
            &api.patch("/v1/products/NOPE", &json!({"name": ""})).await,
            "name",
        );
        assert_field_error(
            &api.post("/v1/products/NOPE/stock", &json!({"delta": 0}))
                .await,
            "delta",
        );
        assert_field_error(
            &api.post("/v1/orders", &order_body("c", "EUR", &[("NOPE", 0)]))
                .await,
            "items[0].quantity",
        );
        let missing = uuid::Uuid::now_v7();
        assert_field_error(
            &api.post(
                &format!("/v1/orders/{missing}/cancel"),
                &json!({"reason": "r".repeat(1001)}),
            )
            .await,
            "reason",
        );
        // Syntax before validation: a body that is not JSON is a 400 even when
        // its first fields would already fail validation.
        assert_problem(
            &api.post_text("/v1/orders", "{\"items\": 0,", &[]).await,
            400,
            "malformed_json",
        );
        server.stop().await;
    }
}

// ---- routing ----------------------------------------------------------------

#[tokio::test]
async fn an_unknown_route_is_404_not_found() {
    for backend in backends("an_unknown_route_is_404_not_found") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let id = uuid::Uuid::now_v7();
        for path in [
            "/",
            "/nope",
            "/v1",
            "/v1/productz",
            "/v2/products",
            "/v1/products/A/stock/extra",
            &format!("/v1/orders/{id}/refund"),
        ] {
            let res = api.get(path).await;
            assert_eq!(
                res.status,
                404,
                "[{backend:?}] GET {path} must be 404, got {}",
                res.describe()
            );
            assert_problem(&res, 404, "not_found");
        }
        let res = api
            .post(&format!("/v1/orders/{id}/refund"), &json!({}))
            .await;
        assert_problem(&res, 404, "not_found");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_an_allow_header() {
    for backend in backends("a_wrong_method_is_405_with_an_allow_header") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let o = api.create_order("c", "EUR", &[("A", 1)]).await;
        let id = text(&o["id"]).to_owned();
        let cases: Vec<(Method, String, Vec<&str>)> = vec![
            (
                Method::DELETE,
                "/v1/products/A".into(),
                vec!["GET", "PATCH"],
            ),
            (Method::PUT, "/v1/products".into(), vec!["GET", "POST"]),
            (Method::GET, "/v1/products/A/stock".into(), vec!["POST"]),
            (Method::PATCH, "/v1/orders".into(), vec!["GET", "POST"]),
            (Method::DELETE, format!("/v1/orders/{id}"), vec!["GET"]),
            (
                Method::GET,
                format!("/v1/orders/{id}/confirm"),
                vec!["POST"],
            ),
            (Method::POST, format!("/v1/orders/{id}/events"), vec!["GET"]),
            (Method::POST, "/health".into(), vec!["GET"]),
        ];
        for (method, path, allowed) in cases {
            let res = api.send(api.builder(method.clone(), &path)).await;
            assert_eq!(
                res.status,
                405,
                "[{backend:?}] {method} {path} must be 405, got {}",
                res.describe()
            );
            assert_problem(&res, 405, "method_not_allowed");
            let allow = res.header("allow").unwrap_or_else(|| {
                panic!("[{backend:?}] {method} {path}: 405 needs an Allow header")
            });
            let listed: Vec<String> = allow
                .split(',')
                .map(|m| m.trim().to_ascii_uppercase())
                .collect();
            for m in &allowed {
                assert!(
                    listed.iter().any(|l| l == m),
                    "[{backend:?}] {method} {path}: Allow must list {m}, got {allow:?}"
                );
            }
            assert!(
                !listed.iter().any(|l| *l == method.as_str()),
                "[{backend:?}] Allow must not list the refused {method}: {allow:?}"
            );
        }
        assert_eq!(
            api.product("A").await["version"],
            2,
            "[{backend:?}] the DELETE removed nothing"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_non_uuid_order_id_is_404() {
    for backend in backends("a_non_uuid_order_id_is_404") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        for id in [
            "123",
            "not-a-uuid",
            "01J0000000000000000000000",
            "00000000-0000-0000-0000-00000000000g",
        ] {
            for path in [
                format!("/v1/orders/{id}"),
                format!("/v1/orders/{id}/events"),
            ] {
                let res = api.get(&path).await;
                assert_eq!(
                    res.status,
                    404,
                    "[{backend:?}] GET {path} must be 404, got {}",
                    res.describe()
                );
                assert_problem(&res, 404, "not_found");
            }
            for action in ["confirm", "ship", "deliver", "cancel"] {
                let res = api.transition(id, action).await;
                assert_eq!(
                    res.status,
                    404,
                    "[{backend:?}] POST {id}/{action} must be 404, got {}",
                    res.describe()
                );
                assert_problem(&res, 404, "not_found");
            }
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn hostile_inputs_never_cause_a_500() {
    for backend in backends("hostile_inputs_never_cause_a_500") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        api.create_product("A", 100, "EUR", 10).await;
        let order = api.create_order("c", "EUR", &[("A", 1)]).await;
        let id = text(&order["id"]).to_owned();
        let long = "A".repeat(5000);
        let mut bad = Vec::new();
        let gets = [
            "/v1/products/%F0%9F%A6%80".to_owned(),
            "/v1/products/a%2Fb".to_owned(),
            "/v1/products/%00".to_owned(),
            "/v1/products/A%00B".to_owned(),
            "/v1/products/%FF".to_owned(),
            format!("/v1/products/{long}"),
            "/v1/products?limit=1&limit=2".to_owned(),
            "/v1/products?after=".to_owned(),
            "/v1/products?after=%FF%FE".to_owned(),
            "/v1/orders?customer_id=".to_owned(),
            "/v1/orders?customer_id=%00".to_owned(),
            "/v1/orders?status=".to_owned(),
            format!("/v1/orders?customer_id={long}"),
            "/v1/orders/00000000-0000-0000-0000-000000000000".to_owned(),
        ];
        for path in &gets {
            let res = api.get(path).await;
            if res.status >= 500 {
                bad.push(format!("GET {path} -> {}", res.describe()));
            } else if res.status >= 400 {
                assert_problem(&res, res.status, res.json()["code"].as_str().unwrap_or("?"));
            }
        }
        // NUL characters inside JSON strings.
        let confirm = format!("/v1/orders/{id}/confirm");
        let posts = [
            (
                "/v1/products",
                json!({"sku": "N", "name": "a\u{0}b", "price_minor": 1, "currency": "EUR"}),
            ),
            (
                "/v1/orders",
                json!({"customer_id": "c\u{0}", "currency": "EUR", "items": [{"sku": "A", "quantity": 1}]}),
            ),
            (
                "/v1/orders",
                json!({"customer_id": "c", "currency": "EUR", "items": [{"sku": "A", "quantity": 1}], "note": "\u{0}"}),
            ),
            (
                "/v1/orders",
                json!({"customer_id": "c", "currency": "EUR", "items": [{"sku": "A\u{0}", "quantity": 1}]}),
            ),
            (confirm.as_str(), json!({"reason": "r\u{0}"})),
        ];
        for (path, body) in &posts {
            let res = api.post(path, body).await;
            if res.status >= 500 {
                bad.push(format!("POST {path} {body} -> {}", res.describe()));
            }
        }
        let res = api
            .patch("/v1/products/A", &json!({"name": "x\u{0}y"}))
            .await;
        if res.status >= 500 {
            bad.push(format!(
                "PATCH /v1/products/A with a NUL in name -> {}",
                res.describe()
            ));
        }
        for value in ["abc", "\"\"", "\"99999999999999999999\""] {
            let res = api
                .patch_h(
                    "/v1/products/A",
                    &json!({"name": "x"}),
                    &[("if-match", value)],
                )
                .await;
            if res.status != 400 && res.status != 412 {
                bad.push(format!(
                    "PATCH with If-Match: {value} (malformed: 400, or never matching: 412) -> {}",
                    res.describe()
                ));
            }
        }
        let res = api
            .get_h("/v1/products/A", &[("if-none-match", "garbage, \"x\"")])
            .await;
        if res.status != 200 {
            bad.push(format!(
                "GET with a garbage If-None-Match (a plain 200) -> {}",
                res.describe()
            ));
        }
        let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let res = api.post_text("/v1/orders", &nested, &[]).await;
        if res.status != 400 && res.status != 422 {
            bad.push(format!(
                "POST /v1/orders with 10000-deep nesting (400/422) -> {}",
                res.describe()
            ));
        }
        assert!(
            bad.is_empty(),
            "[{backend:?}] hostile inputs must be refused with a 4xx problem, never a 5xx:\n{}",
            bad.join("\n")
        );
        server.stop().await;
    }
}

// ---- headers on every response ------------------------------------------------

#[tokio::test]
async fn every_response_carries_the_telemetry_headers() {
    for backend in backends("every_response_carries_the_telemetry_headers") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let created = api.post("/v1/products", &json!({"sku": "A", "name": "n", "price_minor": 1, "currency": "EUR", "available": 5})).await;
        created.expect(201, "create");
        let responses = vec![
            ("201 create", created),
            ("200 get", api.get("/v1/products/A").await),
            ("200 list", api.get("/v1/products").await),
            (
                "304",
                api.get_h("/v1/products/A", &[("if-none-match", "\"1\"")])
                    .await,
            ),
            ("200 health", api.get("/health").await),
            ("422", api.post("/v1/products", &json!({})).await),
            (
                "409",
                api.post("/v1/products/A/stock", &json!({"delta": -6}))
                    .await,
            ),
            ("400", api.get("/v1/products?limit=abc").await),
            ("404 product", api.get("/v1/products/NOPE").await),
            ("404 route", api.get("/no/such/thing").await),
            (
                "405",
                api.send(api.builder(Method::DELETE, "/v1/products")).await,
            ),
            (
                "415",
                api.raw(Method::POST, "/v1/products", Some("text/plain"), "x", &[])
                    .await,
            ),
        ];
        for (what, res) in &responses {
            assert_telemetry(res, &format!("[{backend:?}] {what}"));
            let app = ms_value(res, "x-response-time");
            let db = ms_value(res, "x-db-time");
            assert!(
                db <= app,
                "[{backend:?}] {what}: X-DB-Time {db} is part of X-Response-Time {app}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn a_valid_caller_request_id_is_echoed_and_an_invalid_one_replaced() {
    for backend in backends("a_valid_caller_request_id_is_echoed_and_an_invalid_one_replaced") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let max = "r".repeat(128);
        for id in ["abc-123", "x", "01J9ZQ~!@#$%^&*()_+{}|:<>?", max.as_str()] {
            for path in ["/v1/products", "/v1/products/NOPE", "/nowhere"] {
                let res = api.get_h(path, &[("x-request-id", id)]).await;
                assert_eq!(
                    res.header("x-request-id"),
                    Some(id),
                    "[{backend:?}] GET {path}: a valid X-Request-Id ({} chars) is echoed",
                    id.len()
                );
            }
        }
        let too_long = "r".repeat(129);
        let way_too_long = "r".repeat(200);
        for bad in [too_long.as_str(), way_too_long.as_str(), "has space", ""] {
            for path in ["/v1/products", "/v1/products/NOPE"] {
                let res = api.get_h(path, &[("x-request-id", bad)]).await;
                let (got, _, _) =
                    assert_telemetry(&res, &format!("[{backend:?}] invalid id {bad:?}"));
                assert_ne!(
                    got,
                    bad,
                    "[{backend:?}] GET {path}: an invalid X-Request-Id ({} chars) must be replaced",
                    bad.len()
                );
                if res.status >= 400 {
                    assert_eq!(
                        res.json()["request_id"],
                        got.as_str(),
                        "[{backend:?}] the problem carries the replacement id"
                    );
                }
            }
        }
        let a = api.get("/v1/products").await;
        let b = api.get("/v1/products").await;
        assert_ne!(
            a.header("x-request-id"),
            b.header("x-request-id"),
            "[{backend:?}] generated ids differ per request"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn x_request_count_increases_by_one_per_request() {
    for backend in backends("x_request_count_increases_by_one_per_request") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let mut counts = Vec::new();
        for path in [
            "/health",
            "/v1/products",
            "/nope",
            "/v1/products/NOPE",
            "/v1/products?limit=0",
            "/health",
        ] {
            counts.push(api.get(path).await.request_count());
        }
        assert!(
            counts[0] >= 1,
            "[{backend:?}] the count includes this request: {counts:?}"
        );
        assert!(
            counts.windows(2).all(|w| w[1] == w[0] + 1),
            "[{backend:?}] sequential requests count up by one, errors included: {counts:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn requests_without_database_work_report_zero_statements() {
    for backend in backends("requests_without_database_work_report_zero_statements") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let cases = vec![
            ("404 route", api.get("/no/such/route").await),
            (
                "405",
                api.send(api.builder(Method::DELETE, "/v1/products")).await,
            ),
            ("400 bad limit", api.get("/v1/products?limit=0").await),
            (
                "415",
                api.raw(Method::POST, "/v1/orders", Some("text/plain"), "{}", &[])
                    .await,
            ),
            ("400 malformed", api.post_text("/v1/orders", "{", &[]).await),
            (
                "422 validation",
                api.post("/v1/orders", &order_body("c", "EUR", &[])).await,
            ),
            ("404 non-uuid order", api.get("/v1/orders/nope").await),
        ];
        for (what, res) in cases {
            assert_telemetry(&res, what);
            assert_eq!(
                res.header("x-db-queries"),
                Some("0"),
                "[{backend:?}] {what}: X-DB-Queries 0, got {}",
                res.describe()
            );
            assert_eq!(
                res.header("x-db-time"),
                Some("0.000ms"),
                "[{backend:?}] {what}: X-DB-Time 0.000ms"
            );
        }
        // /health pings the database: that ping may count as one statement.
        let res = api.get("/health").await;
        res.expect(200, "health");
        let (_, queries, _) = assert_telemetry(&res, "health");
        assert!(
            queries <= 1,
            "[{backend:?}] /health runs at most its ping, got {queries} statements"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn requests_with_database_work_report_their_statements_and_time() {
    for backend in backends("requests_with_database_work_report_their_statements_and_time") {
        let server = TestServer::start(backend).await;
        let api = Api::new(&server, backend);
        let res = api.post("/v1/products", &json!({"sku": "A", "name": "n", "price_minor": 1, "currency": "EUR", "available": 5})).await;
        res.expect(201, "create");
        let (_, queries, _) = assert_telemetry(&res, "create product");
        assert!(
            queries >= 1,
            "[{backend:?}] creating a product runs statements: X-DB-Queries {queries}"
        );
        let db = res.header("x-db-time").unwrap_or_default();
        assert!(
            is_ms(db) && db != "0.000ms",
            "[{backend:?}] time was spent in the database: X-DB-Time {db:?}"
        );
        let res = api
            .post("/v1/orders", &order_body("c", "EUR", &[("A", 1)]))
            .await;
        res.expect(201, "order");
        assert!(
            res.db_queries() >= 1,
            "[{backend:?}] creating an order runs statements"
        );
        server.stop().await;
    }
}
