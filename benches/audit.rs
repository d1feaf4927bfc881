//! What auditing costs a request: one synchronous `INSERT` per request
//! through the `database` sink (SQLite, WAL, in a temporary directory)
//! against one enqueue on the [`AuditPipeline`].
//!
//! - `inline_database_insert`: `write_batch` of one event, awaited: what a
//!   request would pay auditing itself.
//! - `pipeline_try_record`: `try_record` into a pipeline whose workers
//!   drain into the `null` sink: the request path's cost when the sink
//!   keeps up.
//! - `pipeline_record_database_sink`: `record` (on_full = block) into a
//!   pipeline writing to the same SQLite table in batches of 512: once the
//!   queue is full, the sustained per-event cost of batched inserts
//!   (backpressure), which is the ceiling of audited requests per second.
//!
//! The event is built outside the timed part (`iter_batched`). Run with
//! `cargo bench --bench audit` (`-- --quick` for a fast pass); the
//! pipelines' counters are printed at the end.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use oms::core::audit::{AuditEvent, AuditPipeline, AuditSink};
use oms::core::config::{AuditConfig, Config, OnFull};
use oms::core::db::{Database, StatementObserver, migration};
use oms::core::plugin::{self, PoolContext, PoolPlugin};
use oms::plugins::audit::DatabaseAuditSink;
use oms::plugins::audit::null::NullAuditSink;

async fn sqlite(dir: &std::path::Path) -> Database {
    let config = Config {
        base_dir: dir.into(),
        ..Config::default()
    };
    let observer: StatementObserver = Arc::new(|_: Duration, _: bool| {});
    let pool = (plugin::find::<PoolPlugin>("sea-orm").unwrap().build)(PoolContext {
        config: &config,
        url: config.database.effective_url(dir),
        observer,
    })
    .await
    .unwrap();
    let db = Database::new(pool, 3);
    migration::migrate(&db.acquire().await.unwrap())
        .await
        .unwrap();
    db
}

fn audit(c: &mut Criterion) {
    oms::link();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = rt.block_on(sqlite(dir.path()));
    let sink = Arc::new(DatabaseAuditSink::new(db.clone()));

    let config = AuditConfig {
        workers: 2,
        on_full: OnFull::Block,
        ..AuditConfig::default()
    };
    let to_null = rt
        .block_on(AuditPipeline::start(
            &config,
            vec![Arc::new(NullAuditSink) as Arc<dyn AuditSink>],
            dir.path().join("spill-null"),
        ))
        .unwrap();
    let to_db = rt
        .block_on(AuditPipeline::start(
            &config,
            vec![sink.clone() as Arc<dyn AuditSink>],
            dir.path().join("spill-db"),
        ))
        .unwrap();

    let mut group = c.benchmark_group("audit_per_request");
    group.throughput(Throughput::Elements(1));
    group.bench_function("inline_database_insert", |b| {
        b.to_async(&rt).iter_batched(
            AuditEvent::example,
            |event| {
                let sink = sink.clone();
                async move {
                    sink.write_batch(std::slice::from_ref(&event))
                        .await
                        .unwrap()
                }
            },
            BatchSize::SmallInput,
        );
    });
    let refused = AtomicU64::new(0);
    group.bench_function("pipeline_try_record", |b| {
        b.iter_batched(
            AuditEvent::example,
            |event| {
                if to_null.try_record(event).is_err() {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("pipeline_record_database_sink", |b| {
        b.to_async(&rt).iter_batched(
            AuditEvent::example,
            |event| {
                let to_db = to_db.clone();
                async move { to_db.record(event).await }
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();

    rt.block_on(async {
        to_null.shutdown().await;
        to_db.shutdown().await;
    });
    eprintln!(
        "pipeline_try_record: {} refused (queue full)\nnull sink: {:?}\ndatabase sink: {:?}",
        refused.load(Ordering::Relaxed),
        to_null.stats(),
        to_db.stats()
    );
    rt.block_on(db.pool().close());
}

criterion_group!(benches, audit);
criterion_main!(benches);
