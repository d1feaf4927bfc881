//! What the read cache saves on `GET /v1/products/{sku}`: a hit in
//! [`ReadCache`](oms::core::cache::ReadCache) and the cached JSON bytes
//! handed over, against the miss path's database read
//! (`OrderService::get_product`: lease, one `SELECT`, decode) and its
//! `serde_json` serialisation.
//!
//! SQLite (WAL) in a temporary directory, 100 products, SKUs cycled. The
//! cache TTL is raised to an hour so no entry expires during the run; the
//! misses of the cached path are counted and must stay zero. Both sides
//! run on the same tokio runtime through criterion's async bencher.
//!
//! Run with `cargo bench --bench cache` (`-- --quick` for a fast pass).

#![allow(missing_docs)]

mod support;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::core::cache::Cached;
use oms::core::config::Config;
use oms::core::domain::NewProduct;

const PRODUCTS: usize = 100;

fn config(dir: &Path) -> Config {
    let mut cfg = support::sqlite_config(dir);
    cfg.cache.ttl_ms = 3_600_000;
    cfg
}

fn cache(c: &mut Criterion) {
    oms::link();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let oms = rt
        .block_on(oms::Oms::builder().config(config(dir.path())).build())
        .expect("build the OMS on SQLite");
    let state = Arc::clone(oms.state());
    let skus: Vec<String> = (0..PRODUCTS).map(|i| format!("SKU-{i:05}")).collect();

    rt.block_on(async {
        for (i, sku) in skus.iter().enumerate() {
            state
                .orders
                .create_product(NewProduct {
                    sku: sku.clone(),
                    name: format!("Stainless steel water bottle, 750 ml, model {i}"),
                    price_minor: 1_999 + i as i64,
                    currency: "EUR".to_owned(),
                    available: Some(100),
                })
                .await
                .expect("create product");
        }
        // Fill the cache exactly as the handler's miss path does.
        for sku in &skus {
            let epoch = state.cache.epoch();
            let product = state.orders.get_product(sku).await.expect("get product");
            let body = serde_json::to_vec(&product).expect("serialise product");
            state
                .cache
                .fill_product(sku, epoch, Cached::new(product.version, body));
        }
    });
    for sku in &skus {
        assert!(state.cache.product(sku).is_some(), "{sku} cached");
    }

    let mut group = c.benchmark_group("product_read");
    group.throughput(Throughput::Elements(1));
    let misses = AtomicU64::new(0);
    group.bench_function("cache_hit", |b| {
        let mut i = 0usize;
        b.to_async(&rt).iter(|| {
            i = (i + 1) % PRODUCTS;
            let sku = &skus[i];
            let state = &state;
            let misses = &misses;
            async move {
                match state.cache.product(sku) {
                    Some(hit) => {
                        black_box(hit.body.clone());
                    }
                    None => {
                        misses.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    });
    group.bench_function("database_get_product_and_serialise", |b| {
        let mut i = 0usize;
        b.to_async(&rt).iter(|| {
            i = (i + 1) % PRODUCTS;
            let sku = &skus[i];
            let state = &state;
            async move {
                let product = state.orders.get_product(sku).await.expect("product read");
                let body = serde_json::to_vec(&product).expect("serialise product");
                // The body as the handler keeps it (`Cached::body` is `Bytes`).
                black_box(Cached::new(product.version, body));
            }
        });
    });
    group.finish();

    assert_eq!(
        misses.load(Ordering::Relaxed),
        0,
        "the cached path must never miss"
    );
    rt.block_on(oms.shutdown());
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = cache
}
criterion_main!(benches);
