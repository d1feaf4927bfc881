//! Per-request CPU cost of the middleware stack on a cached
//! `GET /v1/products/{sku}`, driven in-process through
//! `salvo::Service::handle` (no sockets, no hyper: our code only).
//!
//! The stack is built up one layer at a time, each step a separate OMS
//! with its own configuration, all in the same run:
//!
//! | step | what serves the request |
//! |---|---|
//! | `1 bare` | `Oms::router()` alone: routing, state injection, the (disabled) auth hoop, the handler's cache hit |
//! | `2 +telemetry` | + `Oms::telemetry()` with `metrics.enabled = false`: request id, problem bodies, audit capture and enqueue |
//! | `3 +headers+metrics` | `metrics.enabled = true`: timing headers and the recorder (one switch) |
//! | `4 +auth` | `auth.enabled = true`, bearer token (SHA-256 and constant-time compare) |
//! | `5 full` | `Oms::service()`: + compression and limits hoops, + rate limit on |
//! | `defaults` | `Oms::service()` with the shipped defaults (auth and rate limit off) |
//!
//! Every step writes audit events to the `null` sink, so the figures are
//! the capture and enqueue cost, not a sink's. The runtime is
//! current-thread: the audit workers draining the queue run on the
//! measuring thread and are counted. The cache TTL is an hour, so every
//! request is a hit; the first response of each step is checked (status
//! and, from step 3, the timing headers).
//!
//! Run with `cargo bench --bench middleware` (`-- --quick` for a fast
//! pass). For instructions per request of the release server see
//! `benches/callgrind/run.sh`.

#![allow(missing_docs)]

mod support;

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::core::config::{ApiKeyConfig, Config, Role};
use oms::core::domain::NewProduct;
use salvo::Service;
use salvo::test::TestClient;
use sha2::{Digest, Sha256};

const SKU: &str = "MW-1";
const TOKEN: &str = "middleware-bench-token";
const URL: &str = "http://127.0.0.1/v1/products/MW-1";

#[derive(Clone, Copy)]
enum Step {
    Bare,
    Telemetry,
    Metrics,
    Auth,
    Full,
    Defaults,
}

impl Step {
    const ALL: [Step; 6] = [
        Step::Bare,
        Step::Telemetry,
        Step::Metrics,
        Step::Auth,
        Step::Full,
        Step::Defaults,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Bare => "1 bare",
            Step::Telemetry => "2 +telemetry",
            Step::Metrics => "3 +headers+metrics",
            Step::Auth => "4 +auth",
            Step::Full => "5 full",
            Step::Defaults => "defaults",
        }
    }

    fn auth(self) -> bool {
        matches!(self, Step::Auth | Step::Full)
    }

    fn config(self, dir: &Path) -> Config {
        let mut cfg = support::sqlite_config(dir);
        cfg.cache.ttl_ms = 3_600_000;
        cfg.audit.sink = "null".to_owned();
        cfg.metrics.enabled = !matches!(self, Step::Bare | Step::Telemetry);
        cfg.rate_limit.enabled = matches!(self, Step::Full);
        cfg.rate_limit.requests_per_second = 1_000_000_000;
        cfg.rate_limit.burst = 1_000_000_000;
        if self.auth() {
            cfg.auth.enabled = true;
            cfg.auth.keys = vec![ApiKeyConfig {
                name: "bench".to_owned(),
                sha256: hex::encode(Sha256::digest(TOKEN.as_bytes())),
                roles: vec![Role::Admin],
            }];
        }
        cfg
    }

    fn service(self, oms: &oms::Oms) -> Service {
        match self {
            Step::Bare => Service::new(oms.router()),
            Step::Telemetry | Step::Metrics | Step::Auth => {
                Service::new(oms.router()).hoop(oms.telemetry())
            }
            Step::Full | Step::Defaults => oms.service(),
        }
    }

    async fn request(self, service: &Service) -> salvo::Response {
        let request = TestClient::get(URL);
        let request = if self.auth() {
            request.bearer_auth(TOKEN)
        } else {
            request
        };
        request.send(service).await
    }
}

/// An OMS for `step` with product `SKU` in its database and cache.
async fn setup(step: Step, dir: &Path) -> (oms::Oms, Service) {
    let oms = oms::Oms::builder()
        .config(step.config(dir))
        .build()
        .await
        .expect("build the OMS on SQLite");
    oms.state()
        .orders
        .create_product(NewProduct {
            sku: SKU.to_owned(),
            name: "Stainless steel water bottle, 750 ml".to_owned(),
            price_minor: 1_999,
            currency: "EUR".to_owned(),
            available: Some(100),
        })
        .await
        .expect("create product");
    let service = step.service(&oms);
    // The first request fills the cache; check the second, a hit.
    for _ in 0..2 {
        let response = step.request(&service).await;
        assert_eq!(
            response.status_code.map(|s| s.as_u16()),
            Some(200),
            "{}: cached product read answers 200",
            step.name()
        );
        if !matches!(step, Step::Bare | Step::Telemetry) {
            for header in ["x-request-id", "x-response-time", "server-timing"] {
                assert!(
                    response.headers().contains_key(header),
                    "{}: {header} present",
                    step.name()
                );
            }
        }
    }
    let stats = oms.state().cache_stats();
    assert!(
        stats.hits >= 1,
        "{}: the second read hit the cache",
        step.name()
    );
    (oms, service)
}

fn middleware(c: &mut Criterion) {
    oms::link();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("middleware");
    group.throughput(Throughput::Elements(1));
    for step in Step::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        let (oms, service) = rt.block_on(setup(step, dir.path()));
        group.bench_function(step.name(), |b| {
            b.to_async(&rt).iter(|| step.request(&service));
        });
        rt.block_on(oms.shutdown());
    }
    group.finish();
}

criterion_group!(benches, middleware);
criterion_main!(benches);
