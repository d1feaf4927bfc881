//! Several `oms-cli serve` processes on one PostgreSQL database, clients
//! going round-robin over them: no oversell, idempotency across
//! processes, `oms-cli load` driving all of them, and `oms-cli doctor`
//! finding the database consistent after.

mod support;

use futures::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::{Value, json};
use support::FreshDb;

/// `GET /debug/performance` `requests.total` of one process (auth is off
/// on loopback, so the admin route answers).
async fn requests_served(http: &reqwest::Client, base: &str) -> u64 {
    let perf: Value = http
        .get(format!("{base}/debug/performance"))
        .send()
        .await
        .expect("performance")
        .json()
        .await
        .expect("performance json");
    perf["requests"]["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("no requests.total in {perf}"))
}

async fn scalar(conn: &sea_orm::DatabaseConnection, sql: &str) -> (i64, i64) {
    let row = conn
        .query_one_raw(Statement::from_string(DatabaseBackend::Postgres, sql))
        .await
        .expect("query")
        .expect("row");
    (
        row.try_get_by_index(0).expect("first column"),
        row.try_get_by_index(1).expect("second column"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_never_oversell_share_idempotency_and_share_the_load() {
    let Some(db) = FreshDb::postgres("scale-out").await else {
        return;
    };
    let servers: Vec<support::Server> = (0..3)
        .map(|_| support::spawn(&db.url, db.dir.path(), &[]))
        .collect();
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let http = reqwest::Client::new();

    let res = http
        .post(format!("{}/v1/products", bases[0]))
        .json(&json!({"sku": "SCALE-1", "name": "Limited", "price_minor": 500, "currency": "EUR", "available": 40}))
        .send()
        .await
        .expect("seed");
    assert_eq!(res.status(), 201);

    // 150 orders of quantity 1 from 64 concurrent clients, round-robin
    // over the three processes: exactly the 40 in stock are sold.
    let body = json!({"customer_id": "scale", "currency": "EUR", "items": [{"sku": "SCALE-1", "quantity": 1}]});
    let results: Vec<_> = futures::stream::iter((0..150).map(|i| {
        let http = http.clone();
        let url = format!("{}/v1/orders", bases[i % bases.len()]);
        let body = body.clone();
        async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    }))
    .buffer_unordered(64)
    .collect()
    .await;
    let created = results.iter().filter(|r| matches!(r, Ok(201))).count();
    let refused = results.iter().filter(|r| matches!(r, Ok(409))).count();
    assert_eq!((created, refused), (40, 110), "{results:?}");
    let conn = db.connect().await;
    let stock = "SELECT available, reserved FROM products WHERE sku = 'SCALE-1'";
    assert_eq!(scalar(&conn, stock).await, (0, 40));

    // One Idempotency-Key sent to every process at once creates one order.
    http.post(format!("{}/v1/products/SCALE-1/stock", bases[1]))
        .json(&json!({"delta": 10}))
        .send()
        .await
        .expect("restock");
    let body = json!({"customer_id": "idem", "currency": "EUR", "items": [{"sku": "SCALE-1", "quantity": 1}]});
    let results = futures::future::join_all((0..18).map(|i| {
        let http = http.clone();
        let url = format!("{}/v1/orders", bases[i % bases.len()]);
        let body = body.clone();
        async move {
            let res = http
                .post(url)
                .header("idempotency-key", "cross-process-1")
                .json(&body)
                .send()
                .await
                .expect("send");
            res.status().as_u16()
        }
    }))
    .await;
    assert!(
        results.iter().all(|s| *s == 201 || *s == 409),
        "{results:?}"
    );
    let idem = "SELECT COUNT(*), COUNT(*) FROM orders WHERE customer_id = 'idem'";
    assert_eq!(
        scalar(&conn, idem).await.0,
        1,
        "one order for one key across processes"
    );
    // A later retry on any process replays the stored response; the same
    // key with another body is refused by every process.
    for base in &bases {
        let res = http
            .post(format!("{base}/v1/orders"))
            .header("idempotency-key", "cross-process-1")
            .json(&body)
            .send()
            .await
            .expect("replay");
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
        let res = http
            .post(format!("{base}/v1/orders"))
            .header("idempotency-key", "cross-process-1")
            .json(&json!({"customer_id": "idem", "currency": "EUR", "items": [{"sku": "SCALE-1", "quantity": 2}]}))
            .send()
            .await
            .expect("reuse");
        assert_eq!(res.status(), 422, "key reused with another body");
    }
    assert_eq!(scalar(&conn, stock).await, (9, 41));

    // `oms-cli load` drives all three: create, confirm, ship on a few
    // shared products, users spread round-robin over the targets.
    let before = futures::future::join_all(bases.iter().map(|b| requests_served(&http, b))).await;
    let out_file = db.dir.path().join("load.json");
    let mut load = support::oms_cli();
    load.args(["load", "--quiet", "--timeout", "10s"]);
    for base in &bases {
        load.args(["--target", base]);
    }
    let mut running = load
        .args([
            "--scenario",
            "order-lifecycle",
            "--users",
            "6",
            "--requests",
            "600",
            "--products",
            "3",
            "--out",
        ])
        .arg(&out_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run oms-cli load");
    // Orders moving between statuses on three processes while the doctor
    // reads never show as violations.
    let mut checked = 0;
    while checked < 3 && running.try_wait().expect("poll oms-cli load").is_none() {
        db.assert_doctor_clean("a snapshot taken under oms-cli load");
        checked += 1;
    }
    let out = running.wait_with_output().expect("oms-cli load output");
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "oms-cli load: {}\n{shown}",
        out.status
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).expect("load results"))
            .expect("load results json");
    assert_eq!(
        results["config"]["target"],
        bases.join(" "),
        "the run records every target"
    );
    assert_eq!(results["totals"]["requests"], 600, "{}", results["totals"]);
    assert_eq!(
        results["totals"]["errors"], 0,
        "{} {} {}",
        results["totals"], results["statuses"], results["error_codes"]
    );
    let after = futures::future::join_all(bases.iter().map(|b| requests_served(&http, b))).await;
    let served: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    eprintln!("requests served per process during the load: {served:?}");
    // Each process served its two users: a real share of the 600, not
    // just the preflight (the fixtures went to the first).
    assert!(served.iter().all(|n| *n >= 30), "{served:?}");

    drop(servers);
    db.assert_doctor_clean("three processes under oms-cli load");
    conn.close().await.ok();
    db.drop_db().await;
}
