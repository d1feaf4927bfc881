//! API.md "Operations": `GET /openapi.json` describes the whole contract
//! (every route, method and documented status), real responses have exactly
//! the shape their schemas declare, and `GET /docs` is a page to browse it.
//! Both are served without auth.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Backend, TestServer, client};
use oms::core::config::{ApiKeyConfig, Role};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Statuses every route behind the bearer check documents.
const GUARDED: &[u16] = &[401, 403, 429];
/// Statuses every route documents (a bug; database, overload, timeout).
const EVERYWHERE: &[u16] = &[500, 503];
/// Statuses of every route reading a JSON body, in the order of checks.
const BODY: &[u16] = &[415, 413, 400, 422];

/// API.md, route by route: `(method, path, guarded, reads a body, statuses)`.
fn contract() -> Vec<(&'static str, &'static str, bool, bool, Vec<u16>)> {
    let transition = vec![200, 400, 404, 409, 412];
    vec![
        ("post", "/v1/products", true, true, vec![201, 400, 409]),
        ("get", "/v1/products", true, false, vec![200, 400]),
        (
            "get",
            "/v1/products/{sku}",
            true,
            false,
            vec![200, 304, 404],
        ),
        (
            "patch",
            "/v1/products/{sku}",
            true,
            true,
            vec![200, 400, 404, 412],
        ),
        (
            "post",
            "/v1/products/{sku}/stock",
            true,
            true,
            vec![200, 400, 404, 409, 412],
        ),
        ("post", "/v1/orders", true, true, vec![201, 400, 409, 422]),
        ("get", "/v1/orders", true, false, vec![200, 400]),
        ("get", "/v1/orders/{id}", true, false, vec![200, 304, 404]),
        (
            "get",
            "/v1/orders/{id}/events",
            true,
            false,
            vec![200, 400, 404],
        ),
        (
            "post",
            "/v1/orders/{id}/confirm",
            true,
            true,
            transition.clone(),
        ),
        (
            "post",
            "/v1/orders/{id}/ship",
            true,
            true,
            transition.clone(),
        ),
        (
            "post",
            "/v1/orders/{id}/deliver",
            true,
            true,
            transition.clone(),
        ),
        ("post", "/v1/orders/{id}/cancel", true, true, transition),
        ("get", "/v1/audit", true, false, vec![200, 400]),
        ("get", "/health", false, false, vec![200, 503]),
        ("get", "/debug/performance", true, false, vec![200]),
        ("get", "/metrics", true, false, vec![200]),
    ]
}

async fn get(server: &TestServer, path: &str) -> (u16, String, String) {
    let res = client()
        .get(server.url(path))
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, res.text().await.expect("body"))
}

async fn document(server: &TestServer) -> Value {
    let (status, content_type, text) = get(server, "/openapi.json").await;
    assert_eq!(status, 200, "GET /openapi.json: {text}");
    assert!(
        content_type.starts_with("application/json"),
        "GET /openapi.json content type {content_type:?}"
    );
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("/openapi.json is not JSON ({err}): {text}"))
}

// ---- a small JSON Schema checker (the subset the document uses) ----------

struct Schemas<'a>(&'a Value);

impl<'a> Schemas<'a> {
    /// Follows `#/components/schemas/X` references.
    fn resolve(&self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
                let target = &self.0["components"]["schemas"][name];
                assert!(!target.is_null(), "dangling $ref {reference}");
                self.resolve(target)
            }
            None => schema,
        }
    }

    /// The named component schema.
    fn named(&self, name: &str) -> &'a Value {
        let schema = &self.0["components"]["schemas"][name];
        assert!(schema.is_object(), "no component schema {name}");
        schema
    }

    /// Errors of `value` against `schema`. Objects are checked strictly:
    /// every required property present, and no property the schema does
    /// not declare unless `additionalProperties` says otherwise.
    fn check(&self, schema: &'a Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
            let matching = alternatives
                .iter()
                .filter(|alt| {
                    let mut errs = Vec::new();
                    self.check(alt, value, at, &mut errs);
                    errs.is_empty()
                })
                .count();
            if matching != 1 {
                errors.push(format!(
                    "{at}: {value} matches {matching} of oneOf {alternatives:?}"
                ));
            }
        }
        if let Some(kind) = schema.get("type") {
            let kinds: Vec<&str> = match kind {
                Value::String(k) => vec![k.as_str()],
                Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let actual = match value {
                Value::Null => "null",
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            let fits =
                kinds.contains(&actual) || (actual == "integer" && kinds.contains(&"number"));
            if !fits {
                errors.push(format!("{at}: {value} is {actual}, schema says {kinds:?}"));
                return;
            }
            if actual == "null" {
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!("{at}: {value} not in {allowed:?}"));
        }
        match value {
            Value::String(s) => {
                let len = s.chars().count() as u64;
                if schema
                    .get("minLength")
                    .and_then(Value::as_u64)
                    .is_some_and(|min| len < min)
                {
                    errors.push(format!("{at}: {s:?} shorter than minLength"));
                }
                if schema
                    .get("maxLength")
                    .and_then(Value::as_u64)
                    .is_some_and(|max| len > max)
                {
                    errors.push(format!("{at}: {s:?} longer than maxLength"));
                }
                if schema.get("format").and_then(Value::as_str) == Some("date-time")
                    && !is_timestamp_ms(s)
                {
                    errors.push(format!("{at}: {s:?} is not RFC 3339 UTC with milliseconds"));
                }
            }
            Value::Number(n) => {
                let n = n.as_f64().unwrap_or(f64::NAN);
                if schema
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .is_some_and(|min| n < min)
                {
                    errors.push(format!("{at}: {n} below minimum"));
                }
                if schema
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .is_some_and(|max| n > max)
                {
                    errors.push(format!("{at}: {n} above maximum"));
                }
            }
            Value::Array(items) => {
                if let Some(item) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.check(item, v, &format!("{at}[{i}]"), errors);
                    }
                }
                let len = items.len() as u64;
                if schema
                    .get("minItems")
                    .and_then(Value::as_u64)
                    .is_some_and(|min| len < min)
                {
                    errors.push(format!("{at}: fewer items than minItems"));
                }
                if schema
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .is_some_and(|max| len > max)
                {
                    errors.push(format!("{at}: more items than maxItems"));
                }
            }
            Value::Object(map) => {
                for name in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = name.as_str().unwrap_or_default();
                    if !map.contains_key(name) {
                        errors.push(format!("{at}: required property {name} missing"));
                    }
                }
                let properties = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties");
                for (key, v) in map {
                    let path = format!("{at}.{key}");
                    match (properties.and_then(|p| p.get(key)), additional) {
                        (Some(property), _) => self.check(property, v, &path, errors),
                        (None, Some(Value::Bool(true))) => {}
                        (None, Some(extra)) if extra.is_object() => {
                            self.check(extra, v, &path, errors)
                        }
                        (None, _) => {
                            errors.push(format!("{at}: property {key} is not in the schema"))
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Asserts that `value` is an instance of component `name`.
    fn assert_instance(&self, name: &str, value: &Value, what: &str) {
        let mut errors = Vec::new();
        self.check(self.named(name), value, "$", &mut errors);
        assert!(
            errors.is_empty(),
            "{what} does not match schema {name}:\n{}\nvalue: {value}",
            errors.join("\n")
        );
    }
}

/// `2026-11-28T14:00:00.123Z`.
fn is_timestamp_ms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

// ---- the tests -------------------------------------------------------------

#[tokio::test]
async fn document_covers_every_route_method_and_status_of_api_md() {
    let server = TestServer::start(Backend::Sqlite).await;
    let doc = document(&server).await;
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("3."),
        "openapi must be 3.x, got {version:?}"
    );
    assert_eq!(doc["info"]["title"], "OMS");
    assert!(
        doc["info"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "info.version"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let schemas = Schemas(&doc);

    let mut expected_ops = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    for (method, path, guarded, body, statuses) in contract() {
        expected_ops.insert(format!("{} {path}", method.to_uppercase()));
        let op = &doc["paths"][path][method];
        assert!(
            op.is_object(),
            "{} {path} is not in the document",
            method.to_uppercase()
        );
        let what = format!("{} {path}", method.to_uppercase());
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: operationId"));
        assert!(
            operation_ids.insert(id.to_owned()),
            "{what}: operationId {id} is not unique"
        );
        assert!(
            op["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{what}: tags"
        );

        let mut want: BTreeSet<u16> = statuses.iter().copied().collect();
        want.extend(EVERYWHERE);
        if guarded {
            want.extend(GUARDED);
        }
        if body {
            want.extend(BODY);
        }
        let responses = op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{what}: responses"));
        let got: BTreeSet<u16> = responses
            .keys()
            .map(|k| k.parse().expect("numeric status"))
            .collect();
        assert_eq!(got, want, "{what}: documented statuses");

        for (status, response) in responses {
            let content = response["content"].as_object();
            let code: u16 = status.parse().expect("status");
            if code >= 400 {
                let problem = content
                    .and_then(|c| c.get("application/problem+json"))
                    .unwrap_or_else(|| panic!("{what} {status}: must be application/problem+json"));
                assert_eq!(
                    problem["schema"]["$ref"], "#/components/schemas/Problem",
                    "{what} {status}"
                );
            } else if code == 304 {
                assert!(content.is_none(), "{what} 304 has no body");
            } else {
                assert!(
                    content.is_some_and(|c| !c.is_empty()),
                    "{what} {status}: a body"
                );
            }
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{what} {status}: description"
            );
        }

        // Auth: everything but /health needs the bearer token.
        let security = op["security"].as_array();
        if guarded {
            assert!(
                security.is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some())),
                "{what}: bearer security"
            );
        } else {
            assert!(security.is_none_or(|s| s.is_empty()), "{what}: no security");
        }

        // Parameters: path parameters, conditional and idempotency headers.
        let params: BTreeMap<String, &Value> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    format!(
                        "{}:{}",
                        p["in"].as_str().unwrap_or(""),
                        p["name"].as_str().unwrap_or("")
                    ),
                    p,
                )
            })
            .collect();
        for name in ["sku", "id"] {
            if path.contains(&format!("{{{name}}}")) {
                let p = params
                    .get(&format!("path:{name}"))
                    .unwrap_or_else(|| panic!("{what}: path parameter {name}"));
                assert_eq!(p["required"], true, "{what}: {name} is required");
            }
        }
        for (key, p) in &params {
            if !key.starts_with("path:") {
                assert_ne!(p["required"], true, "{what}: {key} is optional");
            }
        }
        let header = |name: &str| params.contains_key(&format!("header:{name}"));
        let query = |name: &str| params.contains_key(&format!("query:{name}"));
        if method == "get" && statuses.contains(&304) {
            assert!(header("If-None-Match"), "{what}: If-None-Match");
            let ok = &responses["200"];
            assert!(
                ok["headers"]["ETag"].is_object(),
                "{what}: 200 documents ETag"
            );
        }
        if statuses.contains(&412) {
            assert!(header("If-Match"), "{what}: If-Match");
        }
        if path == "/v1/orders" && method == "post" {
            let key = &params["header:Idempotency-Key"];
            assert_eq!(
                key["schema"]["maxLength"], 255,
                "Idempotency-Key is 1-255 chars"
            );
        }
        if statuses.contains(&200)
            && path.starts_with("/v1/")
            && method == "get"
            && !path.ends_with('}')
        {
            for name in ["limit", "after"] {
                assert!(query(name), "{what}: ?{name}");
            }
            assert_eq!(
                params["query:limit"]["schema"]["maximum"], 500,
                "{what}: limit <= 500"
            );
            assert_eq!(
                params["query:limit"]["schema"]["minimum"], 1,
                "{what}: limit >= 1"
            );
        }
        if path == "/v1/orders" && method == "get" {
            assert!(query("customer_id") && query("status"), "{what}: filters");
        }
        if path == "/v1/audit" {
            for name in ["actor", "method", "status", "since"] {
                assert!(query(name), "{what}: ?{name}");
            }
        }

        // Bodies: JSON, required except for transitions, unknown fields refused.
        if body {
            let rb = &op["requestBody"];
            let schema = &rb["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{what}: request body schema");
            let transition = path.starts_with("/v1/orders/{id}/");
            assert_eq!(
                rb["required"].as_bool().unwrap_or(false),
                !transition,
                "{what}: body required?"
            );
            let resolved = schemas.resolve(schema);
            assert_eq!(
                resolved["additionalProperties"], false,
                "{what}: unknown fields are rejected"
            );
        } else {
            assert!(op.get("requestBody").is_none(), "{what}: no request body");
        }
    }

    // Nothing undocumented, nothing extra (the document's own routes aside).
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if item.get(method).is_some() {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert_eq!(documented, expected_ops, "operations in /openapi.json");

    // The metrics body is Prometheus text; the inputs carry API.md's rules.
    let metrics = &doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    assert!(
        metrics
            .as_object()
            .is_some_and(|c| c.keys().any(|k| k.starts_with("text/plain"))),
        "metrics: text/plain"
    );
    let new_product = schemas.named("NewProduct");
    assert_eq!(new_product["properties"]["name"]["maxLength"], 200);
    assert_eq!(new_product["properties"]["price_minor"]["minimum"], 0);
    assert_eq!(
        new_product["properties"]["currency"]["pattern"],
        "^[A-Z]{3}$"
    );
    assert_eq!(
        new_product["required"],
        json!(["sku", "name", "price_minor", "currency"])
    );
    let new_order = schemas.named("NewOrder");
    assert_eq!(new_order["properties"]["items"]["maxItems"], 100);
    assert_eq!(new_order["properties"]["note"]["maxLength"], 1000);
    let item = schemas.resolve(&new_order["properties"]["items"]["items"]);
    assert_eq!(item["properties"]["quantity"]["maximum"], 10000);
    assert_eq!(
        schemas.named("OrderStatus")["enum"],
        json!(["pending", "confirmed", "shipped", "delivered", "cancelled"])
    );
    server.stop().await;
}

#[tokio::test]
async fn real_responses_have_exactly_the_properties_their_schemas_declare() {
    let server = TestServer::start(Backend::Sqlite).await;
    let doc = document(&server).await;
    let schemas = Schemas(&doc);
    let http = client();
    let send = |method: Method, path: &str, body: Option<Value>| {
        let mut req = http.request(method, server.url(path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move {
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            let text = res.text().await.expect("body");
            let value = serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|_| panic!("JSON body: {status} {text}"));
            (status, value)
        }
    };

    let product = json!({"sku": "OAS-1", "name": "Mug", "price_minor": 1250, "currency": "EUR", "available": 5});
    let (status, created) = send(Method::POST, "/v1/products", Some(product.clone())).await;
    assert_eq!(status, 201, "{created}");
    schemas.assert_instance("Product", &created, "201 POST /v1/products");
    // The request body itself is a valid NewProduct; a typo is not.
    schemas.assert_instance("NewProduct", &product, "the product sent");
    let mut errors = Vec::new();
    schemas.check(
        schemas.named("NewProduct"),
        &json!({"sku": "X", "name": "n", "price_minor": 1, "currency": "EUR", "colour": "red"}),
        "$",
        &mut errors,
    );
    assert!(
        !errors.is_empty(),
        "an unknown field must not fit NewProduct"
    );

    let (_, fetched) = send(Method::GET, "/v1/products/OAS-1", None).await;
    schemas.assert_instance("Product", &fetched, "200 GET /v1/products/{sku}");
    let (_, page) = send(Method::GET, "/v1/products?limit=1", None).await;
    schemas.assert_instance("ProductPage", &page, "200 GET /v1/products");
    let (_, moved) = send(
        Method::POST,
        "/v1/products/OAS-1/stock",
        Some(json!({"delta": 3})),
    )
    .await;
    schemas.assert_instance("Product", &moved, "200 POST /v1/products/{sku}/stock");

    let order = json!({"customer_id": "c-1", "currency": "EUR", "items": [{"sku": "OAS-1", "quantity": 2}]});
    schemas.assert_instance("NewOrder", &order, "the order sent");
    let (status, created) = send(Method::POST, "/v1/orders", Some(order)).await;
    assert_eq!(status, 201, "{created}");
    schemas.assert_instance("Order", &created, "201 POST /v1/orders");
    assert!(created["note"].is_null(), "note is present and null");
    let id = created["id"].as_str().expect("id").to_owned();
    let (_, confirmed) = send(
        Method::POST,
        &format!("/v1/orders/{id}/confirm"),
        Some(json!({"reason": "paid"})),
    )
    .await;
    schemas.assert_instance("Order", &confirmed, "200 POST /v1/orders/{id}/confirm");
    let (_, orders) = send(Method::GET, "/v1/orders?customer_id=c-1", None).await;
    schemas.assert_instance("OrderPage", &orders, "200 GET /v1/orders");
    let (_, events) = send(Method::GET, &format!("/v1/orders/{id}/events"), None).await;
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(2),
        "{events}"
    );
    schemas.assert_instance("OrderEventPage", &events, "200 GET /v1/orders/{id}/events");

    // Problems: a plain one and a 422 with field errors.
    let (status, conflict) = send(Method::POST, "/v1/products", Some(product)).await;
    assert_eq!(status, 409);
    schemas.assert_instance("Problem", &conflict, "409 sku_exists");
    let (status, invalid) = send(
        Method::POST,
        "/v1/orders",
        Some(json!({"customer_id": "", "currency": "eur", "items": []})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(invalid["errors"].is_array(), "{invalid}");
    schemas.assert_instance("Problem", &invalid, "422 validation_failed");
    let (status, missing) = send(Method::GET, "/v1/products/NOPE", None).await;
    assert_eq!(status, 404);
    schemas.assert_instance("Problem", &missing, "404 not_found");

    // Operations and audit.
    let (status, health) = send(Method::GET, "/health", None).await;
    assert_eq!(status, 200);
    schemas.assert_instance("Health", &health, "200 GET /health");
    let (_, performance) = send(Method::GET, "/debug/performance", None).await;
    schemas.assert_instance("Performance", &performance, "200 GET /debug/performance");
    let mut audit = json!(null);
    for _ in 0..50 {
        let (status, page) = send(Method::GET, "/v1/audit?limit=5", None).await;
        assert_eq!(status, 200, "{page}");
        audit = page;
        if audit["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        audit["items"].as_array().is_some_and(|i| !i.is_empty()),
        "the audit log fills: {audit}"
    );
    schemas.assert_instance("AuditPage", &audit, "200 GET /v1/audit");
    server.stop().await;
}

fn key(name: &str, token: &str, roles: &[Role]) -> ApiKeyConfig {
    ApiKeyConfig {
        name: name.to_owned(),
        sha256: hex::encode(Sha256::digest(token.as_bytes())),
        roles: roles.to_vec(),
    }
}

#[tokio::test]
async fn document_and_docs_page_need_no_token() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.auth.enabled = true;
        c.auth.keys = vec![key("ops", "oms_openapi_admin_token", &[Role::Admin])];
    })
    .await;
    let (status, _, _) = get(&server, "/v1/products").await;
    assert_eq!(status, 401, "auth is on");
    let doc = document(&server).await;
    assert!(doc["paths"]["/v1/products"].is_object());

    let (status, content_type, html) = get(&server, "/docs").await;
    assert_eq!(status, 200, "GET /docs: {html}");
    assert!(
        content_type.starts_with("text/html"),
        "GET /docs content type {content_type:?}"
    );
    let lower = html.to_ascii_lowercase();
    assert!(
        lower.contains("<html") && lower.contains("<script"),
        "an HTML page with its script: {html}"
    );
    assert!(
        html.contains("openapi.json"),
        "the page loads /openapi.json: {html}"
    );
    server.stop().await;
}
