//! A mixed order load (create, confirm, ship, deliver, cancel, restock,
//! reads) from concurrent clients that remembers every request's outcome
//! and every order the clients saw acknowledged, to check after a fault.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use serde_json::{Value, json};

/// Longest a client waits for any answer: far above every timeout the
/// server is configured with, so hitting it means a hang.
pub const HANG: Duration = Duration::from_secs(60);

/// One request and what came back.
#[derive(Debug, Clone)]
pub struct Record {
    /// `X-Request-Id` sent.
    pub request_id: String,
    /// `POST /v1/orders`, `POST confirm`, ...
    pub what: &'static str,
    /// When it was sent, since the load started.
    pub sent: Duration,
    /// How long until the answer (or the transport error).
    pub latency: Duration,
    /// The HTTP status, `None` on a transport error.
    pub status: Option<u16>,
    /// The problem `code` of an error response.
    pub code: Option<String>,
    /// The transport error, if any.
    pub error: Option<String>,
}

/// An order as the clients last saw it acknowledged.
#[derive(Debug, Clone)]
pub struct Acked {
    pub status: String,
    pub items: usize,
}

/// An order creation, sent with `Idempotency-Key` = its request id.
#[derive(Debug, Clone)]
pub struct Create {
    pub key: String,
    pub body: Value,
    /// The order id, when the creation was acknowledged.
    pub id: Option<String>,
    /// The HTTP status, `None` when no answer came (the fault hit).
    pub status: Option<u16>,
}

/// What the load saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub records: Vec<Record>,
    /// Acknowledged orders by id.
    pub acked: HashMap<String, Acked>,
    /// Every order creation sent.
    pub creates: Vec<Create>,
}

impl Outcome {
    /// Requests answered with an HTTP response.
    pub fn answered(&self) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(|r| r.status.is_some())
    }

    /// Count of answers by status (`0` = transport error).
    pub fn by_status(&self) -> BTreeMap<u16, usize> {
        let mut map = BTreeMap::new();
        for r in &self.records {
            *map.entry(r.status.unwrap_or(0)).or_insert(0) += 1;
        }
        map
    }

    /// Longest time any request waited for its answer.
    pub fn max_latency(&self) -> Duration {
        self.records
            .iter()
            .map(|r| r.latency)
            .max()
            .unwrap_or_default()
    }

    /// A short summary for messages.
    pub fn summary(&self) -> String {
        format!(
            "{} requests, statuses {:?}, {} orders acknowledged, max latency {:?}",
            self.records.len(),
            self.by_status(),
            self.acked.len(),
            self.max_latency()
        )
    }
}

/// Creates `skus` with `stock` units each through the API.
pub async fn seed(base: &str, skus: &[String], stock: i64) {
    let http = client();
    for sku in skus {
        let res = http
            .post(format!("{base}/v1/products"))
            .json(&json!({"sku": sku, "name": sku, "price_minor": 250, "currency": "EUR", "available": stock}))
            .send()
            .await
            .expect("seed product");
        assert_eq!(res.status(), 201, "seed {sku}");
    }
}

/// The client the load and the checks use.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HANG)
        .build()
        .expect("http client")
}

/// A running load; [`stop`](Self::stop) ends it and returns the outcome.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Outcome>>,
    /// When the load started.
    pub t0: Instant,
}

impl Load {
    /// Starts `workers` clients against `base` on `skus`; request ids are
    /// `<prefix>-<worker>-<n>`.
    pub fn start(base: &str, skus: &[String], workers: usize, prefix: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let t0 = Instant::now();
        let http = client();
        let tasks = (0..workers)
            .map(|w| {
                let client = Client {
                    http: http.clone(),
                    base: base.to_owned(),
                    prefix: format!("{prefix}-{w}"),
                    n: 0,
                    t0,
                    out: Outcome::default(),
                };
                tokio::spawn(client.run(skus.to_vec(), stop.clone()))
            })
            .collect();
        Load { stop, tasks, t0 }
    }

    /// Time since the load started.
    pub fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Stops the clients (each finishes its current request) and merges
    /// what they saw.
    pub async fn stop(self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Outcome::default();
        for task in self.tasks {
            let out = task.await.expect("load client");
            all.records.extend(out.records);
            all.acked.extend(out.acked);
            all.creates.extend(out.creates);
        }
        all.records.sort_by_key(|r| r.sent);
        all
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    prefix: String,
    n: u64,
    t0: Instant,
    out: Outcome,
}

impl Client {
    async fn run(mut self, skus: Vec<String>, stop: Arc<AtomicBool>) -> Outcome {
        while !stop.load(Ordering::Relaxed) {
            let (lines, restock, roll) = {
                let mut rng = rand::rng();
                let first = rng.random_range(0..skus.len());
                let mut lines = vec![(skus[first].clone(), rng.random_range(1..=3))];
                if rng.random_bool(0.3) && skus.len() > 1 {
                    let second = (first + 1 + rng.random_range(0..skus.len() - 1)) % skus.len();
                    lines.push((skus[second].clone(), rng.random_range(1..=3)));
                }
                let restock = rng.random_bool(0.1).then(|| skus[first].clone());
                (lines, restock, rng.random_range(0..10))
            };
            let items: Vec<Value> = lines
                .iter()
                .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
                .collect();
            let body = json!({"customer_id": self.prefix, "currency": "EUR", "items": items});
            let (status, answer) = self
                .call("POST /v1/orders", "/v1/orders", Some(body.clone()))
                .await;
            let created = answer.get("id").and_then(Value::as_str).map(str::to_owned);
            self.out.creates.push(Create {
                key: format!("{}-{}", self.prefix, self.n),
                body,
                id: created.clone().filter(|_| status == Some(201)),
                status,
            });
            if status == Some(201)
                && let Some(id) = created
            {
                self.out.acked.insert(
                    id.clone(),
                    Acked {
                        status: "pending".to_owned(),
                        items: lines.len(),
                    },
                );
                let steps: &[&str] = match roll {
                    0 | 1 => &["confirm", "ship", "deliver"],
                    2 => &["confirm", "ship"],
                    3 => &["confirm"],
                    4 | 5 => &["cancel"],
                    6 => &["confirm", "cancel"],
                    _ => &[],
                };
                for step in steps {
                    let (status, answer) = self
                        .call(step_name(step), &format!("/v1/orders/{id}/{step}"), None)
                        .await;
                    if status != Some(200) {
                        break;
                    }
                    let seen = answer
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(acked) = self.out.acked.get_mut(&id) {
                        acked.status = seen;
                    }
                }
            } else if status.is_none() {
                // The server is gone: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if let Some(sku) = restock {
                self.call(
                    "POST stock",
                    &format!("/v1/products/{sku}/stock"),
                    Some(json!({"delta": 5})),
                )
                .await;
                self.call("GET product", &format!("/v1/products/{sku}"), None)
                    .await;
            }
        }
        self.out
    }

    /// Sends one request; records it; returns the status and JSON body.
    async fn call(
        &mut self,
        what: &'static str,
        path: &str,
        body: Option<Value>,
    ) -> (Option<u16>, Value) {
        self.n += 1;
        let request_id = format!("{}-{}", self.prefix, self.n);
        let url = format!("{}{path}", self.base);
        let req = if what.starts_with("GET") {
            self.http.get(url)
        } else {
            let req = self.http.post(url);
            match body {
                Some(body) => req.json(&body),
                None => req,
            }
        };
        let sent = self.t0.elapsed();
        let started = Instant::now();
        // Order creations carry their request id as Idempotency-Key, so a
        // client can retry one whose answer it never got.
        let req = if what == "POST /v1/orders" {
            req.header("idempotency-key", &request_id)
        } else {
            req
        };
        let result = async {
            let res = req.header("x-request-id", &request_id).send().await?;
            let status = res.status().as_u16();
            let text = res.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        }
        .await;
        let latency = started.elapsed();
        let (status, answer, error) = match result {
            Ok((status, text)) => (
                Some(status),
                serde_json::from_str(&text).unwrap_or(Value::Null),
                None,
            ),
            Err(err) => (None, Value::Null, Some(format!("{err:?}"))),
        };
        let code = answer
            .get("code")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.out.records.push(Record {
            request_id,
            what,
            sent,
            latency,
            status,
            code,
            error,
        });
        (status, answer)
    }
}

fn step_name(step: &str) -> &'static str {
    match step {
        "confirm" => "POST confirm",
        "ship" => "POST ship",
        "deliver" => "POST deliver",
        _ => "POST cancel",
    }
}

/// The statuses an order acknowledged as `acked` may have now: that one,
/// or the next one if a transition was in flight when the fault hit.
fn allowed(acked: &str) -> &'static [&'static str] {
    match acked {
        "pending" => &["pending", "confirmed", "cancelled"],
        "confirmed" => &["confirmed", "shipped", "cancelled"],
        "shipped" => &["shipped", "delivered"],
        "delivered" => &["delivered"],
        "cancelled" => &["cancelled"],
        _ => &[],
    }
}

/// Reads every acknowledged order back from `base`; returns one line per
/// order that is missing, has lost items or went back in its life cycle.
pub async fn check_acked(base: &str, acked: &HashMap<String, Acked>) -> Vec<String> {
    let http = client();
    futures::stream::iter(acked.iter())
        .map(|(id, want)| {
            let http = http.clone();
            async move {
                let res = match http.get(format!("{base}/v1/orders/{id}")).send().await {
                    Ok(res) => res,
                    Err(err) => return Some(format!("{id}: {err}")),
                };
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                if status != 200 {
                    return Some(format!(
                        "{id}: acknowledged as {}, now {status} {body}",
                        want.status
                    ));
                }
                let now = body.get("status").and_then(Value::as_str).unwrap_or("?");
                let items = body
                    .get("items")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                if !allowed(&want.status).contains(&now) || items != want.items {
                    return Some(format!(
                        "{id}: acknowledged {} with {} items, found {now} with {items}",
                        want.status, want.items
                    ));
                }
                None
            }
        })
        .buffer_unordered(16)
        .filter_map(|x| async move { x })
        .collect()
        .await
}
