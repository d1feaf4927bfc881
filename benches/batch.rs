//! Writing 500 audit events three ways:
//! - `json_insert`: what the `database` sink does
//!   (`oms::core::audit::query::insert_statements`): one statement, the
//!   rows bound as a single JSON array parameter the database expands;
//! - `multi_row_insert`: the previous form, multi-row `VALUES` with one
//!   bound parameter per column (14 per row) in 128-row chunks;
//! - `row_by_row_insert`: one single-row `INSERT` per event.
//!
//! All build their statements inside the timing and run them in one
//! transaction through the pool's `execute_batch`, so only the statement
//! shape differs.
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
use oms::core::audit::query::insert_statements;
use oms::core::db::{Database, Statement};
use sea_orm::{ConnectionTrait, DatabaseBackend, Value};

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

const COLUMNS: &str = "id, at, request_id, actor, method, route, path, status, duration_us, \
db_us, client_ip, user_agent, request_bytes, response_bytes";

fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Multi-row `VALUES` inserts with one bound parameter per column, at most
/// `max_rows` rows a statement, remainders split into powers of two (the
/// sink's previous statements).
fn bound_inserts(
    backend: DatabaseBackend,
    events: &[AuditEvent],
    max_rows: usize,
) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut rest = events;
    while !rest.is_empty() {
        let take = if rest.len() >= max_rows {
            max_rows
        } else {
            1 << (usize::BITS - 1 - rest.len().leading_zeros())
        };
        let (chunk, tail) = rest.split_at(take);
        let mut sql = format!("INSERT INTO audit_events ({COLUMNS}) VALUES ");
        let mut values = Vec::with_capacity(chunk.len() * 14);
        for (row, e) in chunk.iter().enumerate() {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for col in 0..14 {
                if col > 0 {
                    sql.push_str(", ");
                }
                match backend {
                    DatabaseBackend::Postgres => sql.push_str(&format!("${}", row * 14 + col + 1)),
                    _ => sql.push('?'),
                }
            }
            sql.push(')');
            values.extend([
                Value::from(e.id),
                Value::from(e.at_ms),
                Value::from(e.request_id.as_str()),
                Value::from(e.actor.as_str()),
                Value::from(e.method.as_str()),
                Value::from(e.route.as_str()),
                Value::from(e.path.as_str()),
                Value::from(i32::from(e.status)),
                Value::from(big(e.duration_us)),
                Value::from(big(e.db_us)),
                Value::from(e.client_ip.as_str()),
                Value::from(e.user_agent.as_str()),
                Value::from(big(e.request_bytes)),
                Value::from(big(e.response_bytes)),
            ]);
        }
        sql.push_str(" ON CONFLICT (id) DO NOTHING");
        statements.push(Statement::from_sql_and_values(backend, sql, values));
        rest = tail;
    }
    statements
}

fn json_inserts(backend: DatabaseBackend, events: &[AuditEvent]) -> Vec<Statement> {
    insert_statements(backend, events).expect("serialise the events")
}

/// Inserts `EVENTS` fresh events with `statements`, `iters` times; returns
/// the time spent in `statements` (building and executing) only.
async fn run(
    db: &Database,
    iters: u64,
    statements: impl Fn(&[AuditEvent]) -> Vec<Statement>,
) -> Duration {
    let backend = db.backend();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let events = events();
        let start = Instant::now();
        let affected = db
            .pool()
            .execute_batch(statements(&events))
            .await
            .expect("insert the events in one transaction");
        total += start.elapsed();
        assert_eq!(affected.iter().sum::<u64>(), EVENTS as u64);
        let conn = db.acquire().await.expect("lease a connection");
        conn.execute_raw(Statement::from_string(backend, "DELETE FROM audit_events"))
            .await
            .expect("empty audit_events");
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
        "audit_insert_{EVENTS}_events: json_insert runs {} statement(s), multi_row_insert {}, row_by_row_insert {EVENTS}",
        json_inserts(backend, &events()).len(),
        bound_inserts(backend, &events(), 128).len()
    );

    let mut group = c.benchmark_group("audit_insert_500_events");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("json_insert", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let db = db.clone();
            async move { run(&db, iters, |events| json_inserts(backend, events)).await }
        });
    });
    group.bench_function("multi_row_insert", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let db = db.clone();
            async move { run(&db, iters, |events| bound_inserts(backend, events, 128)).await }
        });
    });
    group.bench_function("row_by_row_insert", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let db = db.clone();
            async move { run(&db, iters, |events| bound_inserts(backend, events, 1)).await }
        });
    });
    group.finish();
    rt.block_on(oms.shutdown());
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = batch
}
criterion_main!(benches);
