//! Faults on a running `oms-cli serve` under order traffic, on SQLite and
//! PostgreSQL: SIGTERM (graceful drain, audit flushed, exit 0 within the
//! grace period) and SIGKILL then restart (nothing acknowledged is lost,
//! nothing is half-written, the stock invariant holds). `oms-cli doctor`
//! checks the database after each.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::load::{self, Load};
use support::{Backend, FreshDb};

const GRACE_MS: u64 = 10_000;

fn skus(prefix: &str) -> Vec<String> {
    (0..4).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_in_flight_requests_flushes_audit_and_exits_0() {
    for backend in support::backends("sigterm under load") {
        sigterm_under_load(backend).await;
    }
}

async fn sigterm_under_load(backend: Backend) {
    let db = FreshDb::new(backend).await;
    let spill = support::path_str(db.dir.path().join("spill"));
    let grace = GRACE_MS.to_string();
    let env = [
        ("OMS_AUDIT__SPILL_DIR", spill.as_str()),
        ("OMS_SERVER__SHUTDOWN_GRACE_MS", grace.as_str()),
    ];
    let mut server = support::spawn(&db.url, db.dir.path(), &env);
    let skus = skus("TERM");
    load::seed(&server.base, &skus, 1_000_000).await;

    let load = Load::start(&server.base, &skus, 6, "term");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // Writes to products now wait behind the lock, inside the server: each
    // client has a request in flight when SIGTERM arrives.
    let lock = support::TableLock::hold(&db).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let term_at = load.elapsed();
    server.sigterm();
    let signalled = Instant::now();
    // Stops accepting: a client connecting during the drain is refused, not
    // parked in the backlog until the process exits.
    let url = server.url("/health");
    let newcomer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fresh = reqwest::Client::builder()
            .timeout(load::HANG)
            .build()
            .expect("client");
        let started = Instant::now();
        (fresh.get(url).send().await, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    lock.release().await;

    let status = server.wait_exit(Duration::from_millis(GRACE_MS) + load::HANG);
    let exited_after = signalled.elapsed();
    let outcome = load.stop().await;
    let log = server.log();
    eprintln!(
        "{backend:?}: SIGTERM -> exit {status:?} after {exited_after:?}; {}",
        outcome.summary()
    );
    let status = status.unwrap_or_else(|| panic!("{backend:?}: no exit after SIGTERM:\n{log}"));
    assert!(
        status.success(),
        "{backend:?}: exit {status} after SIGTERM:\n{log}"
    );
    assert!(
        exited_after < Duration::from_millis(GRACE_MS),
        "{backend:?}: exit took {exited_after:?}, over shutdown_grace_ms = {GRACE_MS}:\n{log}"
    );
    let (refused, waited) = newcomer.await.expect("newcomer");
    eprintln!("{backend:?}: new connection during the drain: {refused:?} after {waited:?}");
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_connect),
        "{backend:?}: a new connection during the drain was not refused: {refused:?} after {waited:?}"
    );

    // Every request in flight at SIGTERM was answered, and successfully.
    let in_flight: Vec<_> = outcome
        .records
        .iter()
        .filter(|r| r.sent < term_at && r.sent + r.latency > term_at)
        .collect();
    assert!(
        !in_flight.is_empty(),
        "{backend:?}: no request was in flight at SIGTERM; the scenario did not exercise the drain"
    );
    for r in &in_flight {
        assert!(
            matches!(r.status, Some(200..=299)),
            "{backend:?}: in-flight request cut by SIGTERM: {r:?}"
        );
    }
    eprintln!(
        "{backend:?}: {} requests in flight at SIGTERM, all answered 2xx (slowest {:?})",
        in_flight.len(),
        in_flight
            .iter()
            .map(|r| r.latency)
            .max()
            .unwrap_or_default()
    );

    // The audit pipeline was flushed: every answered request has its row.
    let conn = db.connect().await;
    let stored = support::audit_ids(&conn, "term-").await;
    let missing: Vec<_> = outcome
        .answered()
        .filter(|r| !stored.contains(&r.request_id))
        .map(|r| r.request_id.as_str())
        .collect();
    eprintln!(
        "{backend:?}: audit: {} answered requests, {} rows stored, {} missing",
        outcome.answered().count(),
        stored.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "{backend:?}: audit events lost at SIGTERM: {missing:?}"
    );
    conn.close().await.ok();

    // After a restart every acknowledged order is there.
    let server = support::spawn(&db.url, db.dir.path(), &env);
    let problems = load::check_acked(&server.base, &outcome.acked).await;
    assert!(
        problems.is_empty(),
        "{backend:?}: acknowledged orders after SIGTERM:\n{}",
        problems.join("\n")
    );
    drop(server);
    support::assert_consistent(&db, &format!("SIGTERM under load ({backend:?})")).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_traffic_then_restart_keeps_every_acknowledged_order_and_the_stock_invariant() {
    for backend in support::backends("sigkill mid traffic") {
        sigkill_mid_traffic(backend).await;
    }
}

async fn sigkill_mid_traffic(backend: Backend) {
    let db = FreshDb::new(backend).await;
    let spill = support::path_str(db.dir.path().join("spill"));
    let env = [("OMS_AUDIT__SPILL_DIR", spill.as_str())];
    let mut server = support::spawn(&db.url, db.dir.path(), &env);
    let skus = skus("KILL");
    load::seed(&server.base, &skus, 1_000_000).await;

    let load = Load::start(&server.base, &skus, 8, "kill");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    server.sigkill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcome = load.stop().await;
    eprintln!("{backend:?}: SIGKILL mid traffic: {}", outcome.summary());
    assert!(
        !outcome.acked.is_empty(),
        "{backend:?}: no order was acknowledged before the kill: {}",
        outcome.summary()
    );

    let server = support::spawn(&db.url, db.dir.path(), &env);
    let problems = load::check_acked(&server.base, &outcome.acked).await;
    eprintln!(
        "{backend:?}: after restart: {} acknowledged orders checked, {} problems",
        outcome.acked.len(),
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{backend:?}: acknowledged orders after SIGKILL:\n{}",
        problems.join("\n")
    );
    // Retrying a creation with its Idempotency-Key never makes a second
    // order: an acknowledged one replays its order; one whose answer the
    // kill swallowed replays the order it made, or, if it made none, is
    // still claimed by the dead process (409 idempotency_in_progress until
    // the claim's lease ends). Every order in the database is one a client
    // can learn about.
    let http = load::client();
    let mut known: HashSet<String> = outcome.acked.keys().cloned().collect();
    let (mut replayed, mut lost_answer_replayed, mut lost_answer_fresh, mut in_progress) =
        (0, 0, 0, 0);
    for create in &outcome.creates {
        let res = http
            .post(server.url("/v1/orders"))
            .header("idempotency-key", &create.key)
            .json(&create.body)
            .send()
            .await
            .expect("retry a creation");
        let status = res.status().as_u16();
        let replay = res
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let what = format!("{backend:?}: retry of {create:?} -> {status} {body}");
        match (&create.id, create.status) {
            (Some(id), _) => {
                assert!(
                    status == 201 && replay && body["id"] == id.as_str(),
                    "{what}"
                );
                replayed += 1;
            }
            (None, None) => {
                // Fresh (the request never reached the server, or died
                // before its claim) or replayed; a duplicate would show in
                // the count below.
                if status == 201 {
                    if replay {
                        lost_answer_replayed += 1;
                    } else {
                        lost_answer_fresh += 1;
                    }
                    known.insert(body["id"].as_str().expect("order id").to_owned());
                } else {
                    assert!(
                        status == 409 && body["code"] == "idempotency_in_progress",
                        "{what}"
                    );
                    in_progress += 1;
                }
            }
            (None, Some(_)) => {
                if status == 201 {
                    known.insert(body["id"].as_str().expect("order id").to_owned());
                }
            }
        }
    }
    let conn = db.connect().await;
    let orders = support::count(
        &conn,
        "SELECT COUNT(*) FROM orders WHERE customer_id LIKE 'kill-%'",
    )
    .await;
    conn.close().await.ok();
    eprintln!(
        "{backend:?}: idempotent retries: {replayed} acknowledged replayed, {lost_answer_replayed} \
         unanswered replayed, {lost_answer_fresh} unanswered made now, {in_progress} still claimed by the dead process; \
         {orders} orders in the database, {} known to clients",
        known.len()
    );
    assert_eq!(
        orders,
        known.len() as i64,
        "{backend:?}: orders in the database that no client can learn about"
    );

    // The restarted server takes orders again.
    let again = Load::start(&server.base, &skus, 2, "kill-after");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = again.stop().await;
    assert!(
        !after.acked.is_empty(),
        "{backend:?}: no order after restart: {}",
        after.summary()
    );
    drop(server);
    support::assert_consistent(&db, &format!("SIGKILL mid traffic ({backend:?})")).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_requests_stuck_past_the_grace_exits_0_within_it_and_keeps_the_audit() {
    for backend in support::backends("sigterm with stuck requests") {
        sigterm_stuck(backend).await;
    }
}

/// Requests (and, on SQLite, audit writes) stuck behind a lock that
/// outlasts the grace: the process still exits 0 within
/// `shutdown_grace_ms`, spilling the audit events it could not write; the
/// next process replays them.
async fn sigterm_stuck(backend: Backend) {
    const STUCK_GRACE_MS: u64 = 3_000;
    let db = FreshDb::new(backend).await;
    let spill = support::path_str(db.dir.path().join("spill"));
    let grace = STUCK_GRACE_MS.to_string();
    let env = [
        ("OMS_AUDIT__SPILL_DIR", spill.as_str()),
        ("OMS_SERVER__SHUTDOWN_GRACE_MS", grace.as_str()),
    ];
    let mut server = support::spawn(&db.url, db.dir.path(), &env);
    let skus = skus("STUCK");
    load::seed(&server.base, &skus, 1_000_000).await;
    let load = Load::start(&server.base, &skus, 4, "stuck");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lock = support::TableLock::hold(&db).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.sigterm();
    let signalled = Instant::now();
    let status = server.wait_exit(Duration::from_millis(STUCK_GRACE_MS) + load::HANG);
    let exited_after = signalled.elapsed();
    lock.release().await;
    let outcome = load.stop().await;
    let log = server.log();
    eprintln!(
        "{backend:?}: SIGTERM with requests stuck past a {STUCK_GRACE_MS} ms grace: exit {status:?} after {exited_after:?}; {}",
        outcome.summary()
    );
    let status = status.unwrap_or_else(|| panic!("{backend:?}: no exit after SIGTERM:\n{log}"));
    assert!(status.success(), "{backend:?}: exit {status}:\n{log}");
    assert!(
        exited_after < Duration::from_millis(STUCK_GRACE_MS),
        "{backend:?}: exit took {exited_after:?}, over shutdown_grace_ms = {STUCK_GRACE_MS}:\n{log}"
    );

    // The next process replays what was spilled: no answered request
    // lacks its audit event, and every acknowledged order is there.
    let server = support::spawn(&db.url, db.dir.path(), &env);
    let answered = outcome.answered().count() as i64;
    let conn = db.connect().await;
    let stored = support::wait_audit(&conn, "stuck-", answered, Duration::from_secs(30)).await;
    let ids = support::audit_ids(&conn, "stuck-").await;
    conn.close().await.ok();
    let missing: Vec<_> = outcome
        .answered()
        .filter(|r| !ids.contains(&r.request_id))
        .map(|r| r.request_id.as_str())
        .collect();
    eprintln!(
        "{backend:?}: audit: {answered} answered requests, {stored} rows after the restart, {} missing",
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "{backend:?}: audit events lost: {missing:?}\n{log}"
    );
    let problems = load::check_acked(&server.base, &outcome.acked).await;
    assert!(
        problems.is_empty(),
        "{backend:?}: acknowledged orders:\n{}",
        problems.join("\n")
    );
    drop(server);
    support::assert_consistent(&db, &format!("SIGTERM with stuck requests ({backend:?})")).await;
    db.drop_db().await;
}
