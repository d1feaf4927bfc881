//! What the connection pool saves: a lease from the OMS pool plus
//! `SELECT 1`, against opening a connection for the request
//! (`sea_orm::Database::connect` with the pool plugin's settings, the
//! query, `close`).
//!
//! - `pool_sqlite`: SQLite (WAL) in a temporary directory. The new
//!   connection applies the same pragmas the pool plugin sets (WAL,
//!   `synchronous = NORMAL`, busy timeout, foreign keys).
//! - `pool_postgres`: only when `OMS_TEST_POSTGRES_URL` is set
//!   (e.g. `postgres://postgres@127.0.0.1:5432/test`): a database named
//!   `oms_bench_<uuid>` is created for the run and dropped at the end
//!   (the URL's query string, e.g. `?sslmode=disable`, is kept). With no
//!   `sslmode` sqlx prefers TLS, and against a server with `ssl = on` the
//!   handshake dominates a fresh connection (about 90 ms here against
//!   about 4 ms with `sslmode=disable`); a pool pays it once per
//!   connection.
//!
//! Before each group, where a fresh connection's time goes (connect,
//! query, close; best of 5) is printed.
//!
//! Run with `cargo bench --bench pool` (`-- --quick` for a fast pass).

#![allow(missing_docs)]

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::core::config::Config;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseBackend, Statement};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn select_1(backend: DatabaseBackend) -> Statement {
    Statement::from_string(backend, "SELECT 1 AS one")
}

/// Options for one fresh connection, as the `sea-orm` pool plugin would
/// set them up.
fn one_connection(url: &str) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(1)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    }
    opts
}

/// Runs both variants against `url` in the group `name`.
fn compare(c: &mut Criterion, rt: &Runtime, name: &str, url: &str, base_dir: &std::path::Path) {
    let mut cfg = Config {
        base_dir: base_dir.to_path_buf(),
        ..Config::default()
    };
    cfg.database.url = Some(url.to_owned());
    let oms = rt
        .block_on(oms::Oms::builder().config(cfg).build())
        .expect("build the OMS");
    let db = oms.database().clone();
    let backend = db.backend();
    let opts = one_connection(url);

    // Where a fresh connection's time goes (best of 5), printed once.
    let (connect, query, close) = rt.block_on(async {
        let mut best = [Duration::MAX; 3];
        for _ in 0..5 {
            let start = Instant::now();
            let conn = sea_orm::Database::connect(opts.clone())
                .await
                .expect("open a connection");
            let connected = start.elapsed();
            conn.query_one_raw(select_1(backend))
                .await
                .expect("SELECT 1");
            let queried = start.elapsed();
            conn.close().await.expect("close the connection");
            let closed = start.elapsed();
            for (b, t) in best
                .iter_mut()
                .zip([connected, queried - connected, closed - queried])
            {
                *b = (*b).min(t);
            }
        }
        (best[0], best[1], best[2])
    });
    eprintln!(
        "{name}: a fresh connection: connect {connect:?}, SELECT 1 {query:?}, close {close:?}"
    );

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group.bench_function("pooled_acquire_select_1", |b| {
        b.to_async(rt).iter(|| {
            let db = &db;
            async move {
                let conn = db.acquire().await.expect("lease a connection");
                let row = conn
                    .query_one_raw(select_1(backend))
                    .await
                    .expect("SELECT 1");
                black_box(row);
            }
        });
    });
    group.bench_function("connect_per_request_select_1", |b| {
        b.to_async(rt).iter(|| {
            let opts = opts.clone();
            async move {
                let conn = sea_orm::Database::connect(opts)
                    .await
                    .expect("open a connection");
                let row = conn
                    .query_one_raw(select_1(backend))
                    .await
                    .expect("SELECT 1");
                black_box(row);
                conn.close().await.expect("close the connection");
            }
        });
    });
    group.finish();
    rt.block_on(oms.shutdown());
}

fn pool_sqlite(c: &mut Criterion) {
    oms::link();
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("oms.db").display());
    compare(c, &rt, "pool_sqlite", &url, dir.path());
}

fn pool_postgres(c: &mut Criterion) {
    oms::link();
    let Ok(admin) = std::env::var("OMS_TEST_POSTGRES_URL") else {
        eprintln!("pool_postgres: skipped, OMS_TEST_POSTGRES_URL is not set");
        return;
    };
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("oms_bench_{}", uuid::Uuid::now_v7().simple());
    let admin_exec = |sql: String| {
        rt.block_on(async {
            let conn = sea_orm::Database::connect(admin.as_str())
                .await
                .expect("connect to OMS_TEST_POSTGRES_URL");
            conn.execute_unprepared(&sql).await.expect(&sql);
            conn.close().await.ok();
        });
    };
    admin_exec(format!("CREATE DATABASE {name}"));
    // Same server and options (e.g. `?sslmode=disable`), the new database.
    let (path, query) = admin
        .split_once('?')
        .map_or((admin.as_str(), None), |(p, q)| (p, Some(q)));
    let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
    let url = match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    };
    compare(c, &rt, "pool_postgres", &url, dir.path());
    admin_exec(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = pool_sqlite, pool_postgres
}
criterion_main!(benches);
