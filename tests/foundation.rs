//! The foundation: health, plugin registry, pool behaviour, embedding.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestDb, TestServer, backends, client, test_config};
use oms::core::Oms;
use oms::core::db::PoolError;
use oms::core::plugin::{self, PluginKind};
use salvo::conn::Acceptor;
use salvo::prelude::*;
use serde_json::Value;

#[tokio::test]
async fn health_is_ok_on_every_backend() {
    for backend in backends("health_is_ok_on_every_backend") {
        let server = TestServer::start(backend).await;
        let res = client()
            .get(server.url("/health"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200, "{backend:?}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["database"], "ok");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert!(body["uptime_s"].is_u64());
        server.stop().await;
    }
}

#[test]
fn every_builtin_plugin_is_registered() {
    oms::link();
    assert_eq!(plugin::available(PluginKind::Pool), vec!["sea-orm"]);
    let sinks = plugin::available(PluginKind::AuditSink);
    for name in ["null", "stdout"] {
        assert!(sinks.contains(&name), "sink {name} missing from {sinks:?}");
    }
    assert!(plugin::available(PluginKind::MetricsRecorder).contains(&"builtin"));
}

#[tokio::test]
async fn unknown_plugin_name_lists_the_available_ones() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = test_config(&db);
    config.metrics.recorder = "nope".into();
    let err = Oms::builder()
        .config(config)
        .build()
        .await
        .expect_err("must fail");
    let text = err.to_string();
    assert!(text.contains("metrics.recorder = \"nope\""), "{text}");
    assert!(text.contains("available: builtin"), "{text}");
}

#[tokio::test]
async fn pool_connection_returns_on_drop() {
    for backend in backends("pool_connection_returns_on_drop") {
        let db = TestDb::new(backend).await;
        let mut config = test_config(&db);
        config.database.min_connections = 1;
        config.database.max_connections = 1;
        config.database.acquire_timeout_ms = 300;
        let oms = Oms::builder().config(config).build().await.expect("build");
        let database = oms.database();
        {
            let first = database.acquire().await.expect("first acquire");
            assert_eq!(database.pool().stats().in_use, 1);
            drop(first);
        }
        // With one connection, a second acquire only succeeds if the first came back.
        let second = database.acquire().await.expect("second acquire after drop");
        drop(second);
        let stats = database.pool().stats();
        assert_eq!(
            (stats.in_use, stats.timeouts, stats.acquired >= 2),
            (0, 0, true)
        );
        oms.shutdown().await;
        db.drop_db().await;
    }
}

#[tokio::test]
async fn pool_exhaustion_times_out_with_a_clear_error() {
    for backend in backends("pool_exhaustion_times_out_with_a_clear_error") {
        let db = TestDb::new(backend).await;
        let mut config = test_config(&db);
        config.database.min_connections = 2;
        config.database.max_connections = 2;
        config.database.acquire_timeout_ms = 1_000;
        let oms = Oms::builder().config(config).build().await.expect("build");
        let database = oms.database();
        let a = database.acquire().await.expect("a");
        let b = database.acquire().await.expect("b");
        let started = Instant::now();
        let err = database.acquire().await.expect_err("third must time out");
        let waited = started.elapsed();
        assert!(matches!(err, PoolError::Timeout(_)), "{err:?}");
        assert!(err.is_unavailable());
        assert!(err.to_string().contains("pool exhausted"), "{err}");
        assert!(
            waited >= Duration::from_millis(990),
            "gave up too early: {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(3),
            "waited far past the timeout: {waited:?}"
        );
        let stats = database.pool().stats();
        assert_eq!((stats.max, stats.in_use, stats.timeouts), (2, 2, 1));
        drop((a, b));
        database
            .acquire()
            .await
            .expect("free again after the leases drop");
        // The pool opened its minimum and never more than its maximum.
        let stats = database.pool().stats();
        assert!(stats.size >= 1 && stats.size <= 2, "{stats:?}");
        oms.shutdown().await;
        db.drop_db().await;
    }
}

#[tokio::test]
async fn waiting_callers_are_counted_and_served_in_turn() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = test_config(&db);
    config.database.max_connections = 1;
    config.database.acquire_timeout_ms = 2_000;
    let oms = Oms::builder().config(config).build().await.expect("build");
    let database = oms.database().clone();
    let held = database.acquire().await.expect("held");
    let waiter = {
        let database = database.clone();
        tokio::spawn(async move { database.acquire().await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(database.pool().stats().waiting, 1);
    drop(held);
    waiter
        .await
        .expect("join")
        .expect("waiter served once the lease dropped");
    assert_eq!(database.pool().stats().waiting, 0);
    oms.shutdown().await;
}

#[handler]
async fn host_hello(res: &mut Response) {
    res.render(Text::Plain("hello from the host"));
}

/// A host salvo application mounts the OMS under `/oms` next to its own
/// routes, builds it from a config value in code, and serves both.
#[tokio::test]
async fn a_host_app_mounts_oms_under_a_prefix() {
    let db = TestDb::new(Backend::Sqlite).await;
    let oms = Oms::builder()
        .config(test_config(&db))
        .build()
        .await
        .expect("build");
    let router = Router::new()
        .push(Router::with_path("hello").get(host_hello))
        .push(
            Router::with_path("oms")
                .hoop(oms.telemetry())
                .push(oms.router()),
        );
    let acceptor = salvo::conn::TcpListener::new("127.0.0.1:0").bind().await;
    let addr = acceptor.holdings()[0]
        .local_addr
        .clone()
        .into_std()
        .expect("addr");
    let server = Server::new(acceptor);
    let handle = server.handle();
    let join = tokio::spawn(async move { server.serve(router).await });

    let http = client();
    let hello = http
        .get(format!("http://{addr}/hello"))
        .send()
        .await
        .expect("hello");
    assert_eq!(hello.text().await.expect("text"), "hello from the host");
    let health = http
        .get(format!("http://{addr}/oms/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-response-time"));
    let body: Value = health.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    let missing = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), 404, "the OMS lives under /oms only");

    handle.stop_graceful(None);
    let _ = join.await;
    oms.shutdown().await;
}
