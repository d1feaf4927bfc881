//! The audit pipeline end to end: every request becomes exactly one event,
//! shutdown flushes, a failing database sink loses nothing.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, backends, client};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;

async fn count_events(url: &str) -> i64 {
    let conn = sea_orm::Database::connect(url).await.expect("connect");
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM audit_events",
        ))
        .await
        .expect("count")
        .expect("row");
    let n: i64 = row.try_get("", "n").expect("n");
    conn.close().await.ok();
    n
}

#[tokio::test]
async fn n_requests_then_graceful_shutdown_leaves_exactly_n_events() {
    for backend in backends("n_requests_then_graceful_shutdown_leaves_exactly_n_events") {
        let dir = tempfile::tempdir().expect("tempdir");
        let jsonl = dir.path().join("audit.jsonl");
        let jsonl_path = jsonl.clone();
        let server = TestServer::start_with(backend, move |c| {
            c.audit.sinks = vec!["database".into(), "jsonl".into()];
            c.audit.flush_interval_ms = 5_000; // only shutdown can flush in time
            c.audit.batch_size = 1_000;
            c.audit
                .plugins
                .insert("jsonl".into(), serde_json::json!({"path": jsonl_path}));
        })
        .await;
        let http = client();
        let n = 57;
        for i in 0..n {
            let path = match i % 3 {
                0 => "/health",
                1 => "/v1/products",
                _ => "/v1/products/NOPE",
            };
            http.get(server.url(path))
                .header("user-agent", "audit-test")
                .send()
                .await
                .expect("request");
        }
        let url = server.db.url.clone();
        let db = server.stop_keep_db().await;
        assert_eq!(
            count_events(&url).await,
            n,
            "every request recorded once in the database sink"
        );
        let lines = std::fs::read_to_string(&jsonl).expect("jsonl");
        let events: Vec<Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(events.len() as i64, n, "and once in the jsonl sink");
        let e = events
            .iter()
            .find(|e| e["status"] == 404)
            .expect("a 404 was recorded");
        assert_eq!(e["method"], "GET");
        assert_eq!(e["path"], "/v1/products/NOPE");
        assert_eq!(e["route"], "/v1/products/{sku}");
        assert_eq!(e["actor"], "anonymous");
        assert_eq!(e["user_agent"], "audit-test");
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_failing_database_sink_spills_and_replays_so_nothing_is_lost() {
    for backend in backends("a_failing_database_sink_spills_and_replays_so_nothing_is_lost") {
        let spill = tempfile::tempdir().expect("spill dir");
        let spill_dir = spill.path().to_path_buf();
        let server = TestServer::start_with(backend, move |c| {
            c.audit.sinks = vec!["database".into()];
            c.audit.flush_interval_ms = 20;
            c.audit.retry_attempts = 2;
            c.audit.spill_dir = Some(spill_dir);
        })
        .await;
        let http = client();
        let admin = sea_orm::Database::connect(&server.db.url)
            .await
            .expect("connect");
        let backend_kind = admin.get_database_backend();
        let exec = |sql: &'static str| Statement::from_string(backend_kind, sql);

        for _ in 0..10 {
            http.get(server.url("/health"))
                .send()
                .await
                .expect("before");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The sink's table disappears during traffic...
        admin
            .execute_raw(exec("ALTER TABLE audit_events RENAME TO audit_events_away"))
            .await
            .expect("rename away");
        for _ in 0..25 {
            assert_eq!(
                http.get(server.url("/health"))
                    .send()
                    .await
                    .expect("during")
                    .status(),
                200,
                "requests are unaffected"
            );
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        let perf: Value = http
            .get(server.url("/debug/performance"))
            .send()
            .await
            .expect("perf")
            .json()
            .await
            .expect("json");
        assert!(
            perf["audit"]["failed"].as_u64() > Some(0),
            "the failure is counted: {}",
            perf["audit"]
        );
        // ...and comes back.
        admin
            .execute_raw(exec("ALTER TABLE audit_events_away RENAME TO audit_events"))
            .await
            .expect("rename back");
        for _ in 0..5 {
            http.get(server.url("/health")).send().await.expect("after");
        }
        // 10 + 25 + 5 health checks + 1 debug request = 41 events.
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = server.db.url.clone();
        loop {
            let n = count_events(&url).await;
            if n == 41 {
                break;
            }
            assert!(n < 41, "no event written twice: {n}");
            assert!(
                Instant::now() < deadline,
                "spilled events were not replayed: {n} of 41"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        admin.close().await.ok();
        server.stop().await;
    }
}
