//! The `database` and `jsonl` audit sinks: built through the plugin
//! registry, on SQLite always and on PostgreSQL when
//! `OMS_TEST_POSTGRES_URL` is set (a uniquely named database is created
//! and dropped; the test says plainly when it is skipped).
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use oms_core::audit::query::{self, AuditFilter, AuditRecord};
use oms_core::audit::{AuditEvent, AuditPipeline, AuditSink};
use oms_core::config::{AuditConfig, Config};
use oms_core::db::{Database, StatementObserver, migration};
use oms_core::plugin::{
    self, PluginError, PluginKind, PoolContext, PoolPlugin, SinkContext, SinkPlugin,
};
use oms_plugins::audit::{DatabaseAuditSink, JsonlAuditSink, JsonlSinkConfig};
use sea_orm::ConnectionTrait;
use sea_orm::prelude::Uuid;

fn events(n: usize) -> Vec<AuditEvent> {
    (0..n).map(|_| AuditEvent::example()).collect()
}

async fn connect(config: &Config, url: String) -> Database {
    let observer: StatementObserver = Arc::new(|_: Duration, _: bool| {});
    let pool = (plugin::find::<PoolPlugin>(&config.database.pool)
        .unwrap()
        .build)(PoolContext {
        config,
        url,
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

async fn build_sink(
    config: &Config,
    db: &Database,
    name: &str,
) -> Result<Arc<dyn AuditSink>, PluginError> {
    let ctx = SinkContext {
        config,
        database: db.clone(),
    };
    (plugin::find::<SinkPlugin>(name).unwrap().build)(&ctx).await
}

async fn count(db: &Database) -> i64 {
    let conn = db.acquire().await.unwrap();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            db.backend(),
            "SELECT COUNT(*) AS n FROM audit_events",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// What the database sink must do, whatever the backend.
async fn exercise_database_sink(config: &Config, db: &Database) {
    let sink = build_sink(config, db, "database").await.unwrap();
    assert_eq!(sink.name(), "database");

    // More rows than one statement may bind on either backend: several
    // statements, one transaction.
    let big = events(5_000);
    sink.write_batch(&big).await.unwrap();
    assert_eq!(count(db).await, 5_000);
    // Retries and replays re-send batches: idempotent.
    sink.write_batch(&big[..100]).await.unwrap();
    assert_eq!(count(db).await, 5_000);

    // Every field survives the round trip.
    let mut odd = AuditEvent::example();
    odd.at_ms += 60_000;
    odd.actor = "ops".into();
    odd.method = "DELETE".into();
    odd.route = "/v1/orders/{id}".into();
    odd.path = "/v1/orders/0190f0e4-0000-7000-8000-000000000000".into();
    odd.status = 404;
    odd.duration_us = u64::from(u32::MAX) + 7;
    odd.db_us = 0;
    odd.client_ip = "2001:db8::1".into();
    odd.user_agent = "ünïcödé/1.0 \"quoted\"".into();
    odd.request_bytes = 262_144;
    odd.response_bytes = 1;
    sink.write_batch(std::slice::from_ref(&odd)).await.unwrap();
    sink.flush().await.unwrap();
    let page = query::list(db, &AuditFilter::default(), 1, None)
        .await
        .unwrap();
    assert_eq!(page.items, vec![AuditRecord::from(odd.clone())]);
    let page = query::list(
        db,
        &AuditFilter {
            actor: Some("ops".into()),
            status: Some(404),
            ..Default::default()
        },
        10,
        None,
    )
    .await
    .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.next_cursor.is_none());

    // Pages chain over everything, newest first.
    let mut seen = 0;
    let mut after: Option<String> = None;
    let mut last: Option<(i64, Uuid)> = None;
    loop {
        let page = query::list(db, &AuditFilter::default(), 500, after.as_deref())
            .await
            .unwrap();
        for item in &page.items {
            let key = (item.at.timestamp_millis(), item.id);
            assert!(last.is_none_or(|l| key < l), "not newest first");
            last = Some(key);
        }
        seen += page.items.len();
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, 5_001);

    // Behind the pipeline.
    let spill = tempfile::tempdir().unwrap();
    let audit = AuditConfig {
        batch_size: 256,
        flush_interval_ms: 5,
        ..AuditConfig::default()
    };
    let pipeline = AuditPipeline::start(&audit, vec![sink], spill.path().into())
        .await
        .unwrap();
    for event in events(1_000) {
        pipeline.record(event).await;
    }
    pipeline.shutdown().await;
    let stats = pipeline.stats();
    assert_eq!((stats.written, stats.spilled, stats.failed), (1_000, 0, 0));
    assert_eq!(count(db).await, 6_001);
}

#[tokio::test]
async fn database_sink_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        base_dir: dir.path().into(),
        ..Config::default()
    };
    let db = connect(&config, config.database.effective_url(dir.path())).await;
    exercise_database_sink(&config, &db).await;
    db.pool().close().await;
}

#[tokio::test]
async fn database_sink_on_postgres() {
    let Ok(admin_url) = std::env::var("OMS_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED (PostgreSQL): database_sink_on_postgres: OMS_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let name = format!("oms_audit_{}", Uuid::now_v7().simple());
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let (base, query_string) = match admin_url.split_once('?') {
        Some((base, q)) => (base, format!("?{q}")),
        None => (admin_url.as_str(), String::new()),
    };
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    let url = format!("{server}/{name}{query_string}");

    // Run the body so that the database is dropped even if it panics.
    let body = async {
        let config = Config::default();
        let db = connect(&config, url).await;
        exercise_database_sink(&config, &db).await;
        db.pool().close().await;
    };
    let outcome = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    admin.close().await.ok();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn jsonl_config(dir: &std::path::Path, table: serde_json::Value) -> Config {
    let mut config = Config {
        base_dir: dir.into(),
        ..Config::default()
    };
    config.audit.plugins.insert("jsonl".into(), table);
    config
}

async fn read_events(path: &std::path::Path) -> Vec<AuditEvent> {
    tokio::fs::read_to_string(path)
        .await
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn unused_db(dir: &std::path::Path) -> Database {
    let config = Config::default();
    connect(&config, config.database.effective_url(dir)).await
}

#[tokio::test]
async fn jsonl_sink_appends_parseable_lines() {
    let dir = tempfile::tempdir().unwrap();
    let db = unused_db(dir.path()).await;
    for (fsync, file) in [
        ("batch", "logs/batch.jsonl"),
        ("interval", "logs/interval.jsonl"),
    ] {
        let config = jsonl_config(
            dir.path(),
            serde_json::json!({ "path": file, "fsync": fsync, "fsync_interval_ms": 10 }),
        );
        let sink = build_sink(&config, &db, "jsonl").await.unwrap();
        assert_eq!(sink.name(), "jsonl");
        let first = events(3);
        let second = events(500);
        sink.write_batch(&first).await.unwrap();
        sink.write_batch(&second).await.unwrap();
        sink.write_batch(&[]).await.unwrap();
        if fsync == "interval" {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        sink.flush().await.unwrap();
        // Relative to the config's base_dir, directories created.
        let got = read_events(&dir.path().join(file)).await;
        assert_eq!(got, [first, second].concat(), "{fsync}");
    }
    db.pool().close().await;
}

#[tokio::test]
async fn jsonl_sink_behind_the_pipeline_and_after_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // A previous run crashed mid-line.
    tokio::fs::write(&path, b"{\"id\":\"01").await.unwrap();
    let sink = JsonlAuditSink::open(JsonlSinkConfig {
        path: path.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(sink.path(), path);
    let spill = tempfile::tempdir().unwrap();
    let pipeline = AuditPipeline::start(
        &AuditConfig::default(),
        vec![Arc::new(sink)],
        spill.path().into(),
    )
    .await
    .unwrap();
    let sent = events(2_000);
    for event in sent.iter().cloned() {
        pipeline.record(event).await;
    }
    pipeline.shutdown().await;
    let text = tokio::fs::read_to_string(&path).await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("{\"id\":\"01"));
    let mut got: Vec<AuditEvent> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    got.sort_by_key(|e| e.id);
    let mut want = sent;
    want.sort_by_key(|e| e.id);
    assert_eq!(got, want);
}

#[tokio::test]
async fn jsonl_sink_rejects_bad_settings_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = unused_db(dir.path()).await;
    let cases = [
        (
            serde_json::json!({ "path": "a.jsonl", "fsync_every": 5 }),
            "audit.jsonl.fsync_every",
        ),
        (
            serde_json::json!({ "fsync": "sometimes" }),
            "audit.jsonl.fsync",
        ),
        (
            serde_json::json!({ "fsync_interval_ms": "soon" }),
            "audit.jsonl.fsync_interval_ms",
        ),
        (
            serde_json::json!({ "fsync": "interval", "fsync_interval_ms": 0 }),
            "audit.jsonl.fsync_interval_ms",
        ),
        (serde_json::json!({ "path": "" }), "audit.jsonl.path"),
    ];
    for (table, key) in cases {
        let config = jsonl_config(dir.path(), table.clone());
        let err = build_sink(&config, &db, "jsonl").await.err().unwrap();
        assert!(
            matches!(&err, PluginError::Build { kind: PluginKind::AuditSink, name, message }
                if name == "jsonl" && message.contains(key)),
            "{table}: {err}"
        );
    }
    // A path that cannot be created names `audit.jsonl.path` too.
    tokio::fs::write(dir.path().join("file"), b"x")
        .await
        .unwrap();
    let config = jsonl_config(
        dir.path(),
        serde_json::json!({ "path": "file/sub/audit.jsonl" }),
    );
    let err = build_sink(&config, &db, "jsonl").await.err().unwrap();
    assert!(err.to_string().contains("audit.jsonl.path"), "{err}");
    db.pool().close().await;
}

#[test]
fn both_sinks_are_registered() {
    let sinks = plugin::available(PluginKind::AuditSink);
    for name in ["database", "jsonl", "null", "stdout"] {
        assert!(sinks.contains(&name), "{name} missing from {sinks:?}");
    }
    let _ = DatabaseAuditSink::new;
}
