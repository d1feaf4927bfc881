//! PostgreSQL restarted in the middle of mixed order traffic: requests fail
//! fast with 503 `database_unavailable`, `/health` degrades, the server
//! recovers by itself, no acknowledged order is lost or half-written, and
//! the audit pipeline spills and replays so that no event is lost, also
//! across a SIGTERM while the database is down.
//!
//! It stops the machine's PostgreSQL cluster (`pg_ctlcluster`), so it is
//! the only test of this binary; a guard starts the cluster again however
//! the test ends.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::FreshDb;
use support::load::{self, Load};

/// The server's `database.acquire_timeout_ms` in this test.
const ACQUIRE_TIMEOUT_MS: u64 = 1_000;
/// Slack over a timeout before a wait counts as a hang (a loaded 2-core CI
/// machine, a debug build): about hangs, not speed.
const HANG_MARGIN: Duration = Duration::from_secs(5);
/// The server's `server.shutdown_grace_ms` (the default).
const SHUTDOWN_GRACE_MS: u64 = 10_000;

/// The local cluster, driven with `pg_ctlcluster`.
struct Cluster {
    version: String,
}

impl Cluster {
    /// The single cluster `main` under /etc/postgresql, if `pg_ctlcluster`
    /// can report it running.
    fn find() -> Result<Cluster, String> {
        let versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
            .map_err(|e| format!("/etc/postgresql: {e}"))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("main").is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let [version] = versions.as_slice() else {
            return Err(format!(
                "expected one cluster in /etc/postgresql, found {versions:?}"
            ));
        };
        let cluster = Cluster {
            version: version.clone(),
        };
        match cluster.ctl("status") {
            Ok(out) if out.status.success() => Ok(cluster),
            Ok(out) => Err(format!(
                "pg_ctlcluster {version} main status: {} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(err) => Err(format!("pg_ctlcluster: {err}")),
        }
    }

    fn ctl(&self, action: &str) -> std::io::Result<std::process::Output> {
        std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, "main", action])
            .output()
    }

    async fn run(&self, action: &'static str) {
        let version = self.version.clone();
        let out = tokio::task::spawn_blocking(move || Cluster { version }.ctl(action))
            .await
            .expect("pg_ctlcluster task")
            .expect("run pg_ctlcluster");
        assert!(
            out.status.success(),
            "pg_ctlcluster {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Starts the cluster again when dropped, unless it is running.
struct StartOnDrop<'a>(&'a Cluster);

impl Drop for StartOnDrop<'_> {
    fn drop(&mut self) {
        if self.0.ctl("status").is_ok_and(|o| o.status.success()) {
            return;
        }
        match self.0.ctl("start") {
            Ok(out) if out.status.success() => eprintln!("PostgreSQL started again by the guard"),
            other => eprintln!("could not start PostgreSQL again: {other:?}"),
        }
    }
}

/// `GET /health`: status, body, time to answer.
async fn health(http: &reqwest::Client, base: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let res = http
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health answers");
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_fails_fast_recovers_and_loses_nothing() {
    let cluster = match Cluster::find() {
        Ok(cluster) => cluster,
        Err(why) => {
            eprintln!("SKIPPED (PostgreSQL restart): cannot drive the cluster: {why}");
            return;
        }
    };
    let Some(db) = FreshDb::postgres("PostgreSQL restart under load").await else {
        return;
    };
    let spill = support::path_str(db.dir.path().join("spill"));
    let acquire = ACQUIRE_TIMEOUT_MS.to_string();
    let grace = SHUTDOWN_GRACE_MS.to_string();
    let env = [
        ("OMS_AUDIT__SPILL_DIR", spill.as_str()),
        ("OMS_DATABASE__ACQUIRE_TIMEOUT_MS", acquire.as_str()),
        ("OMS_SERVER__SHUTDOWN_GRACE_MS", grace.as_str()),
    ];
    let mut server = support::spawn(&db.url, db.dir.path(), &env);
    let skus: Vec<String> = (0..4).map(|i| format!("PGR-{i}")).collect();
    load::seed(&server.base, &skus, 1_000_000).await;
    let http = load::client();

    let load = Load::start(&server.base, &skus, 6, "pgr");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let guard = StartOnDrop(&cluster);
    let down_at = load.elapsed();
    cluster.run("stop").await;
    let stopped_at = load.elapsed();
    // While it is down: /health says degraded, within its 1 s bound.
    let mut degraded = Vec::new();
    for _ in 0..4 {
        degraded.push(health(&http, &server.base).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let start_at = load.elapsed();
    cluster.run("start").await;
    let up_at = load.elapsed();
    // Recovers by itself: /health is ok again and orders are taken.
    let recovery = Instant::now();
    let healthy_after = loop {
        let (status, _, _) = health(&http, &server.base).await;
        if status == 200 {
            break recovery.elapsed();
        }
        assert!(
            recovery.elapsed() < Duration::from_secs(30),
            "/health did not recover within 30 s of PostgreSQL's start:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outcome = load.stop().await;
    drop(guard);
    eprintln!(
        "stop {:.2}s..{:.2}s, start {:.2}s..{:.2}s; {}",
        down_at.as_secs_f64(),
        stopped_at.as_secs_f64(),
        start_at.as_secs_f64(),
        up_at.as_secs_f64(),
        outcome.summary()
    );

    for (status, body, took) in &degraded {
        eprintln!("health while down: {status} {body} in {took:?}");
        assert_eq!(*status, 503, "health while PostgreSQL is down: {body}");
        assert_eq!(body["status"], "degraded", "{body}");
        assert!(
            *took < Duration::from_secs(1) + HANG_MARGIN,
            "/health took {took:?} while PostgreSQL was down"
        );
    }

    // Failing requests fail fast, as 503 database_unavailable, never 500.
    let failed: Vec<_> = outcome
        .records
        .iter()
        .filter(|r| r.status.is_none_or(|s| s >= 500))
        .collect();
    for r in &failed {
        assert!(
            r.status == Some(503) && r.code.as_deref() == Some("database_unavailable"),
            "a request failed otherwise than 503 database_unavailable: {r:?}"
        );
    }
    assert!(
        !failed.is_empty(),
        "no request failed while PostgreSQL was down: {}",
        outcome.summary()
    );
    let slowest = failed.iter().map(|r| r.latency).max().unwrap_or_default();
    let limit = Duration::from_millis(ACQUIRE_TIMEOUT_MS) + HANG_MARGIN;
    assert!(
        outcome.max_latency() < limit,
        "a request waited {:?}, past the acquire timeout ({ACQUIRE_TIMEOUT_MS} ms) plus {HANG_MARGIN:?}",
        outcome.max_latency()
    );
    let first_503 = failed
        .iter()
        .map(|r| r.sent + r.latency)
        .min()
        .unwrap_or_default();
    let first_order_after = outcome
        .records
        .iter()
        .filter(|r| r.sent > up_at && r.status == Some(201))
        .map(|r| r.sent + r.latency)
        .min();
    eprintln!(
        "503 database_unavailable: {} (first {:.2}s after the stop began, slowest {:?}); \
         health ok {:?} after the start; first order {:?} after the start",
        failed.len(),
        first_503.saturating_sub(down_at).as_secs_f64(),
        slowest,
        healthy_after,
        first_order_after.map(|t| t.saturating_sub(up_at))
    );
    assert!(
        first_order_after.is_some(),
        "no order was taken after PostgreSQL came back: {}",
        outcome.summary()
    );

    // No acknowledged order lost, none half-written, stock consistent.
    let problems = load::check_acked(&server.base, &outcome.acked).await;
    assert!(
        problems.is_empty(),
        "acknowledged orders after the PostgreSQL restart:\n{}",
        problems.join("\n")
    );

    // The audit pipeline spilled what it could not write and replays it.
    let perf: Value = http
        .get(server.url("/debug/performance"))
        .send()
        .await
        .expect("performance")
        .json()
        .await
        .expect("performance json");
    let answered = outcome.answered().count() as i64;
    let conn = db.connect().await;
    let stored = support::wait_audit(&conn, "pgr-", answered, Duration::from_secs(30)).await;
    let ids = support::audit_ids(&conn, "pgr-").await;
    let missing: Vec<_> = outcome
        .answered()
        .filter(|r| !ids.contains(&r.request_id))
        .map(|r| r.request_id.as_str())
        .collect();
    conn.close().await.ok();
    eprintln!(
        "audit: {answered} answered requests, {stored} rows stored, {} missing; pipeline {}",
        missing.len(),
        perf["audit"]
    );
    assert!(missing.is_empty(), "audit events lost: {missing:?}");

    // SIGTERM while PostgreSQL is down: the server still exits 0 within
    // its grace period, spilling the audit events it cannot write; the next
    // process replays them once the database is back.
    let guard = StartOnDrop(&cluster);
    cluster.run("stop").await;
    let mut spilled_ids = Vec::new();
    for i in 0..10 {
        let request_id = format!("pgr2-{i}");
        let res = http
            .post(server.url("/v1/orders"))
            .header("x-request-id", &request_id)
            .json(
                &serde_json::json!({"customer_id": "down", "currency": "EUR",
                "items": [{"sku": "PGR-0", "quantity": 1}]}),
            )
            .send()
            .await
            .expect("answered while PostgreSQL is down");
        assert_eq!(res.status(), 503, "order while PostgreSQL is down");
        spilled_ids.push(request_id);
    }
    server.sigterm();
    let signalled = Instant::now();
    let status = server.wait_exit(Duration::from_secs(30));
    let exited_after = signalled.elapsed();
    eprintln!("SIGTERM with PostgreSQL down: {status:?} after {exited_after:?}");
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM with PostgreSQL down: {status:?}\n{}",
        server.log()
    );
    assert!(
        exited_after < Duration::from_millis(SHUTDOWN_GRACE_MS),
        "shutdown with PostgreSQL down took {exited_after:?}, over shutdown_grace_ms:\n{}",
        server.log()
    );
    cluster.run("start").await;
    drop(guard);
    let server = support::spawn(&db.url, db.dir.path(), &env);
    let conn = db.connect().await;
    let replayed = support::wait_audit(&conn, "pgr2-", 10, Duration::from_secs(30)).await;
    let ids = support::audit_ids(&conn, "pgr2-").await;
    conn.close().await.ok();
    eprintln!(
        "audit events spilled at shutdown and replayed by the next process: {replayed} of 10"
    );
    let missing: Vec<_> = spilled_ids.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "audit events lost over a shutdown with PostgreSQL down: {missing:?}\n{}",
        server.log()
    );
    drop(server);
    support::assert_consistent(&db, "PostgreSQL restart under load").await;
    db.drop_db().await;
}
