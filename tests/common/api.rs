//! Helpers for the HTTP contract tests (API.md): one response type, a
//! client bound to a server, problem+json and header checks, domain
//! shortcuts, raw TCP exchanges and a second server process on the same
//! database.

use std::net::SocketAddr;
use std::time::Duration;

use oms::core::Oms;
use oms::core::config::Config;
use reqwest::Method;
use reqwest::header::HeaderMap;
use salvo::conn::{Acceptor, TcpListener};
use salvo::server::ServerHandle;
use salvo::{Listener, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Backend, TestServer, client};

/// One HTTP response, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    /// A header as text (`None` if absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON; panics with the status and text when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|err| {
            panic!(
                "expected a JSON body ({err}); status {}, body {:?}",
                self.status, self.text
            )
        })
    }

    /// `status body` for assertion messages.
    pub fn describe(&self) -> String {
        let text: String = self.text.chars().take(600).collect();
        format!("status {} body {text}", self.status)
    }

    /// `X-DB-Queries` as a number; panics when absent or not an integer.
    pub fn db_queries(&self) -> u64 {
        let raw = self.header("x-db-queries").unwrap_or_else(|| {
            panic!("X-DB-Queries missing: {}", self.describe());
        });
        raw.parse()
            .unwrap_or_else(|_| panic!("X-DB-Queries must be an integer, got {raw:?}"))
    }

    /// `X-Request-Count` as a number.
    pub fn request_count(&self) -> u64 {
        let raw = self.header("x-request-count").unwrap_or_else(|| {
            panic!("X-Request-Count missing: {}", self.describe());
        });
        raw.parse()
            .unwrap_or_else(|_| panic!("X-Request-Count must be an integer, got {raw:?}"))
    }

    /// Asserts the status, with the body in the message.
    pub fn expect(&self, status: u16, what: &str) -> &Self {
        assert_eq!(
            self.status,
            status,
            "{what}: expected {status}, got {}",
            self.describe()
        );
        self
    }
}

/// A client bound to one server's base URL, labelled by backend for
/// assertion messages.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub label: String,
    http: reqwest::Client,
}

impl Api {
    /// A client for `server`.
    pub fn new(server: &TestServer, backend: Backend) -> Api {
        Api::at(&server.base, &format!("{backend:?}"))
    }

    /// A client for the server at `base` (`http://127.0.0.1:port`).
    pub fn at(base: &str, label: &str) -> Api {
        Api {
            base: base.to_owned(),
            label: label.to_owned(),
            http: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request builder for `method path`, to customise and [`send`](Self::send).
    pub fn builder(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// Sends and reads the whole response; panics on a transport error.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req
            .send()
            .await
            .unwrap_or_else(|err| panic!("[{}] request failed: {err:?}", self.label));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res
            .text()
            .await
            .unwrap_or_else(|err| panic!("[{}] reading the body failed: {err:?}", self.label));
        Resp {
            status,
            headers,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.builder(Method::GET, path)).await
    }

    /// GET with extra headers.
    pub async fn get_h(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.builder(Method::GET, path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// `method path` with a JSON body and extra headers.
    pub async fn json_h(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .builder(method, path)
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.json_h(Method::POST, path, body, &[]).await
    }

    pub async fn post_h(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        self.json_h(Method::POST, path, body, headers).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.json_h(Method::PATCH, path, body, &[]).await
    }

    pub async fn patch_h(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        self.json_h(Method::PATCH, path, body, headers).await
    }

    /// `method path` with raw bytes and an optional content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.builder(method, path).body(body.into());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// POST with raw JSON text (for malformed or hand-spaced bodies).
    pub async fn post_text(&self, path: &str, text: &str, headers: &[(&str, &str)]) -> Resp {
        self.raw(
            Method::POST,
            path,
            Some("application/json"),
            text.as_bytes().to_vec(),
            headers,
        )
        .await
    }

    // ---- domain shortcuts -------------------------------------------------

    /// Creates a product; asserts 201.
    pub async fn create_product(
        &self,
        sku: &str,
        price_minor: i64,
        currency: &str,
        available: i64,
    ) -> Value {
        let res = self
            .post(
                "/v1/products",
                &json!({"sku": sku, "name": format!("Product {sku}"),
                        "price_minor": price_minor, "currency": currency, "available": available}),
            )
            .await;
        assert_eq!(
            res.status,
            201,
            "[{}] creating product {sku} must be 201: {}",
            self.label,
            res.describe()
        );
        res.json()
    }

    /// The product; asserts 200.
    pub async fn product(&self, sku: &str) -> Value {
        let res = self.get(&format!("/v1/products/{sku}")).await;
        assert_eq!(
            res.status,
            200,
            "[{}] GET product {sku} must be 200: {}",
            self.label,
            res.describe()
        );
        res.json()
    }

    /// `(available, reserved, version)` of a product.
    pub async fn stock(&self, sku: &str) -> (i64, i64, i64) {
        let p = self.product(sku).await;
        (
            num(&p["available"]),
            num(&p["reserved"]),
            num(&p["version"]),
        )
    }

    /// Creates an order; asserts 201.
    pub async fn create_order(
        &self,
        customer: &str,
        currency: &str,
        items: &[(&str, i64)],
    ) -> Value {
        let res = self
            .post("/v1/orders", &order_body(customer, currency, items))
            .await;
        assert_eq!(
            res.status,
            201,
            "[{}] creating an order for {customer} with {items:?} must be 201: {}",
            self.label,
            res.describe()
        );
        res.json()
    }

    /// The order; asserts 200.
    pub async fn order(&self, id: &str) -> Value {
        let res = self.get(&format!("/v1/orders/{id}")).await;
        assert_eq!(
            res.status,
            200,
            "[{}] GET order {id} must be 200: {}",
            self.label,
            res.describe()
        );
        res.json()
    }

    /// `POST /v1/orders/{id}/{action}` without a body.
    pub async fn transition(&self, id: &str, action: &str) -> Resp {
        self.send(self.builder(Method::POST, &format!("/v1/orders/{id}/{action}")))
            .await
    }

    /// Performs a transition; asserts 200 and returns the order.
    pub async fn must_transition(&self, id: &str, action: &str) -> Value {
        let res = self.transition(id, action).await;
        assert_eq!(
            res.status,
            200,
            "[{}] {action} of order {id} must be 200: {}",
            self.label,
            res.describe()
        );
        res.json()
    }

    /// Every item of a paginated list, following `next_cursor` (`path`
    /// already carries its query, if any; `limit` is appended).
    pub async fn list_all(&self, path: &str, limit: u32) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..10_000 {
            let url = match &after {
                None => format!("{path}{sep}limit={limit}"),
                Some(c) => format!("{path}{sep}limit={limit}&after={c}"),
            };
            let res = self.get(&url).await;
            assert_eq!(
                res.status,
                200,
                "[{}] GET {url}: {}",
                self.label,
                res.describe()
            );
            let page = res.json();
            items.extend(
                page["items"]
                    .as_array()
                    .expect("items array")
                    .iter()
                    .cloned(),
            );
            match page["next_cursor"].as_str() {
                Some(c) => after = Some(c.to_owned()),
                None => {
                    assert!(
                        page["next_cursor"].is_null(),
                        "next_cursor must be a string or null: {page}"
                    );
                    return items;
                }
            }
        }
        panic!("[{}] {path}: pagination never ended", self.label);
    }
}

/// `{"customer_id", "currency", "items": [{"sku", "quantity"}]}`.
pub fn order_body(customer: &str, currency: &str, items: &[(&str, i64)]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
        .collect();
    json!({"customer_id": customer, "currency": currency, "items": items})
}

/// An integer field; panics when it is not one.
pub fn num(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

/// A string field; panics when it is not one.
pub fn text(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

// ---- contract checks ------------------------------------------------------

/// Asserts `res` is an RFC 9457 problem with `status` and `code`, as API.md
/// describes it, and returns the body.
pub fn assert_problem(res: &Resp, status: u16, code: &str) -> Value {
    let what = format!("expected {status} {code}, got {}", res.describe());
    assert_eq!(res.status, status, "{what}");
    let content_type = res.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{what}: Content-Type must be application/problem+json, got {content_type:?}"
    );
    let body = res.json();
    assert_eq!(body["type"], format!("/errors/{code}"), "{what}: type");
    assert_eq!(body["code"], code, "{what}: code");
    assert_eq!(body["status"], status, "{what}: status field");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{what}: title must be a non-empty string"
    );
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{what}: detail must be a non-empty string"
    );
    let header_id = res.header("x-request-id");
    assert!(header_id.is_some(), "{what}: X-Request-Id header missing");
    assert_eq!(
        body["request_id"].as_str(),
        header_id,
        "{what}: request_id must equal the X-Request-Id header"
    );
    if status == 422 {
        if code == "validation_failed" {
            let errors = body["errors"]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: validation_failed needs an errors array"));
            assert!(!errors.is_empty(), "{what}: errors must not be empty");
            for e in errors {
                assert!(
                    e["field"].is_string() && e["message"].is_string(),
                    "{what}: each error needs field and message strings: {e}"
                );
            }
        }
    } else {
        assert!(
            body.get("errors").is_none(),
            "{what}: errors appears on 422 only"
        );
    }
    assert!(
        !body.to_string().contains("SELECT") && !body.to_string().contains("sqlx"),
        "{what}: the problem must not leak internals"
    );
    body
}

/// Asserts a 422 `validation_failed` whose `errors` name `field`.
pub fn assert_field_error(res: &Resp, field: &str) -> Value {
    let body = assert_problem(res, 422, "validation_failed");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        fields.contains(&field),
        "expected a field error for {field:?}, got fields {fields:?} in {body}"
    );
    body
}

/// `0.412ms`: digits, a dot, exactly three digits, `ms`.
pub fn is_ms(value: &str) -> bool {
    let Some(number) = value.strip_suffix("ms") else {
        return false;
    };
    is_decimal3(number)
}

/// `12.345`: digits, a dot, exactly three digits.
pub fn is_decimal3(number: &str) -> bool {
    let Some((int, frac)) = number.split_once('.') else {
        return false;
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() == 3
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// `2026-11-28T14:00:00.123Z`: RFC 3339 UTC with milliseconds.
pub fn is_timestamp_ms(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z'
}

/// Asserts the headers API.md puts on every response, and returns
/// `(X-Request-Id, X-DB-Queries, X-Request-Count)`.
pub fn assert_telemetry(res: &Resp, what: &str) -> (String, u64, u64) {
    let what = format!("{what} ({})", res.describe());
    let id = res
        .header("x-request-id")
        .unwrap_or_else(|| panic!("{what}: X-Request-Id missing"));
    assert!(
        (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()),
        "{what}: X-Request-Id must be 1-128 visible ASCII chars, got {id:?}"
    );
    let app = res
        .header("x-response-time")
        .unwrap_or_else(|| panic!("{what}: X-Response-Time missing"));
    assert!(
        is_ms(app),
        "{what}: X-Response-Time must match ^\\d+\\.\\d{{3}}ms$, got {app:?}"
    );
    let db = res
        .header("x-db-time")
        .unwrap_or_else(|| panic!("{what}: X-DB-Time missing"));
    assert!(
        is_ms(db),
        "{what}: X-DB-Time must match ^\\d+\\.\\d{{3}}ms$, got {db:?}"
    );
    let queries = res.db_queries();
    let count = res.request_count();
    let timing = res
        .header("server-timing")
        .unwrap_or_else(|| panic!("{what}: Server-Timing missing"));
    let expected = format!(
        "app;dur={}, db;dur={}",
        app.trim_end_matches("ms"),
        db.trim_end_matches("ms")
    );
    assert_eq!(
        timing, expected,
        "{what}: Server-Timing must carry the same figures as X-Response-Time and X-DB-Time"
    );
    if queries == 0 {
        assert_eq!(
            db, "0.000ms",
            "{what}: no statements means X-DB-Time 0.000ms"
        );
    }
    (id.to_owned(), queries, count)
}

// ---- raw HTTP over TCP ----------------------------------------------------

/// A response read off a raw TCP exchange.
#[derive(Debug, Clone)]
pub struct RawResp {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Writes `request` to `addr` and reads one response (head and a
/// `Content-Length` body), giving up after `deadline`. Errors say what
/// happened (reset, timeout, garbage).
pub async fn raw_exchange(
    addr: SocketAddr,
    request: &[u8],
    deadline: Duration,
) -> Result<RawResp, String> {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // The server may answer (and close) before taking the whole request:
        // a failed write is not the end, the response may be there.
        let write_error = stream.write_all(request).await.err();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(resp) = parse_raw(&buf) {
                return Ok(resp);
            }
            match stream.read(&mut chunk).await {
                Ok(0) => {
                    return parse_raw(&buf).ok_or_else(|| {
                        format!(
                            "connection closed after {} bytes without a full response (write error: {write_error:?}): {:?}",
                            buf.len(),
                            String::from_utf8_lossy(&buf)
                        )
                    });
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    return parse_raw(&buf).ok_or_else(|| {
                        format!(
                            "read failed ({e}) after {} bytes (write error: {write_error:?})",
                            buf.len()
                        )
                    });
                }
            }
        }
    };
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| format!("no response within {deadline:?}"))?
}

fn parse_raw(buf: &[u8]) -> Option<RawResp> {
    let text = String::from_utf8_lossy(buf);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let resp = RawResp {
        status,
        head: head.to_owned(),
        body: String::new(),
    };
    let len: usize = resp.header("content-length")?.parse().ok()?;
    if rest.len() < len {
        return None;
    }
    Some(RawResp {
        body: rest[..len].to_owned(),
        ..resp
    })
}

// ---- a second process on the same database --------------------------------

/// Another OMS instance, in this process but with its own state, serving
/// on its own port over an existing database (which it does not drop).
pub struct Peer {
    pub base: String,
    pub oms: Oms,
    _scratch: tempfile::TempDir,
    handle: ServerHandle,
    join: tokio::task::JoinHandle<()>,
}

impl Peer {
    /// Starts an instance on `db_url` (already created and migrated by the
    /// first server), configured like [`super::test_config`].
    pub async fn start(db_url: &str, tweak: impl FnOnce(&mut Config)) -> Peer {
        let mut config = Config::default();
        config.database.url = Some(db_url.to_owned());
        config.database.min_connections = 1;
        config.database.max_connections = 8;
        config.server.workers = 2;
        let scratch = tempfile::tempdir().expect("tempdir");
        config.audit.spill_dir = Some(scratch.path().join("audit-spill"));
        tweak(&mut config);
        let oms = Oms::builder()
            .config(config)
            .build()
            .await
            .expect("build second oms");
        let acceptor = TcpListener::new("127.0.0.1:0").bind().await;
        let addr = acceptor
            .holdings()
            .first()
            .and_then(|h| h.local_addr.clone().into_std())
            .expect("bound address");
        let server = Server::new(acceptor);
        let handle = server.handle();
        let service = oms.service();
        let join = tokio::spawn(async move { server.serve(service).await });
        Peer {
            base: format!("http://{addr}"),
            oms,
            _scratch: scratch,
            handle,
            join,
        }
    }

    /// Graceful stop; leaves the database to its owner.
    pub async fn stop(self) {
        self.handle.stop_graceful(Some(Duration::from_secs(5)));
        let _ = self.join.await;
        self.oms.shutdown().await;
    }
}
