//! Writing 500 audit events three ways:
//! - `multi_row_insert`: what the `database` sink does
//!   (`oms::core::audit::query::insert`; this bench runs on SQLite):
//!   multi-row `VALUES` with one parameter per column bound straight to
//!   sqlx, 128-row statements (remainders in power-of-two pieces);
//! - `sea_orm_multi_row_insert`: the same statements built as sea-query
//!   `Value`s (`insert_statements`) and run through sea-orm, which clones
//!   and converts every value once more;
//! - `row_by_row_insert`: one single-row `INSERT` per event.
//!
//! Each builds its statements inside the timing and runs them in one
//! transaction (the last two through the pool's `execute_batch`). (The
//! JSON-expanded single statement, the sink's PostgreSQL form before the
//! array insert, was measured here too while it ran on SQLite: 1.5x
//! slower than the bound form; see BENCHMARKS.md.)
//!
//! SQLite (WAL) in a temporary directory. Each iteration inserts 500 fresh
//! events (built outside the timing) and the table is emptied after it,
//! also outside the timing, so every iteration starts from the same table.
//!
//! Run with `cargo bench --bench batch` (`-- --quick` for a fast pass).

#![allow(missing_docs)]

mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::core::audit::AuditEvent;
use oms::core::audit::query::{insert, insert_statements};
use oms::core::db::{Database, Statement};
use sea_orm::{ConnectionTrait, DatabaseBackend};

const EVENTS: usize = 500;

fn events() -> Vec<AuditEvent> {
    (0..EVENTS)
        .map(|i| AuditEvent {
            route: "/v1/orders/{id}".to_owned(),
            path: format!("/v1/orders/{}", uuid::Uuid::now_v7()),
            status: if i % 10 == 0 { 404 } else { 200 },
            ..AuditEvent::example()
        })
        .collect()
}

/// The sink's statements for `events`.
fn multi_row(backend: DatabaseBackend, events: &[AuditEvent]) -> Vec<Statement> {
    insert_statements(backend, events)
}

/// One single-row insert per event.
fn row_by_row(backend: DatabaseBackend, events: &[AuditEvent]) -> Vec<Statement> {
    events
        .iter()
        .flat_map(|e| multi_row(backend, std::slice::from_ref(e)))
        .collect()
}

/// How a batch is written.
#[derive(Clone, Copy)]
enum Way {
    /// `query::insert`, as the sink does.
    Library,
    /// These statements through `execute_batch`.
    Statements(fn(DatabaseBackend, &[AuditEvent]) -> Vec<Statement>),
}

/// Inserts `EVENTS` fresh events `way`, `iters` times; returns the time
/// spent writing (building and executing the statements) only.
async fn run(db: &Database, iters: u64, way: Way) -> Duration {
    let backend = db.backend();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let events = events();
        let start = Instant::now();
        match way {
            Way::Library => insert(db, &events)
                .await
                .expect("insert the events in one transaction"),
            Way::Statements(statements) => {
                db.pool()
                    .execute_batch(statements(backend, &events))
                    .await
                    .expect("insert the events in one transaction");
            }
        }
        total += start.elapsed();
        let conn = db.acquire().await.expect("lease a connection");
        let deleted = conn
            .execute_raw(Statement::from_string(backend, "DELETE FROM audit_events"))
            .await
            .expect("empty audit_events");
        assert_eq!(deleted.rows_affected(), EVENTS as u64, "every event stored");
    }
    total
}

fn batch(c: &mut Criterion) {
    oms::link();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let oms = rt
        .block_on(
            oms::Oms::builder()
                .config(support::sqlite_config(dir.path()))
                .build(),
        )
        .expect("build the OMS on SQLite");
    let db = oms.database().clone();
    let backend = db.backend();
    eprintln!(
        "audit_insert_{EVENTS}_events: multi_row_insert runs {} statements, row_by_row_insert {}",
        multi_row(backend, &events()).len(),
        row_by_row(backend, &events()).len()
    );

    let mut group = c.benchmark_group("audit_insert_500_events");
    group.throughput(Throughput::Elements(EVENTS as u64));
    for (name, way) in [
        ("multi_row_insert", Way::Library),
        ("sea_orm_multi_row_insert", Way::Statements(multi_row)),
        ("row_by_row_insert", Way::Statements(row_by_row)),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let db = db.clone();
                async move { run(&db, iters, way).await }
            });
        });
    }
    group.finish();
    rt.block_on(oms.shutdown());
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = batch
}
criterion_main!(benches);
