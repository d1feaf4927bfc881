//! `oms-cli doctor` against databases populated by a real `oms-cli serve`
//! (SQLite, and PostgreSQL when `OMS_TEST_POSTGRES_URL` is set): consistent
//! after real traffic (exit 0, also while the server runs), and each
//! deliberately corrupted row is found and named (exit 2) until repaired.

mod support;

use std::process::Output;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use support::{Backend, FreshDb};

/// `oms-cli doctor --database-url url` plus `extra` flags.
fn doctor(url: &str, extra: &[&str]) -> Output {
    support::oms_cli()
        .args(["doctor", "--database-url", url])
        .args(extra)
        .output()
        .expect("run oms-cli doctor")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `--json` report.
fn report(url: &str) -> (i32, Value) {
    let out = doctor(url, &["--json"]);
    let code = out.status.code().expect("exit code");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}):\n{}", text(&out)));
    (code, report)
}

/// The violations of `check` in a `--json` report.
fn violations<'a>(report: &'a Value, check: &str) -> &'a [Value] {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no check {check} in {report:#}"))["listed"]
        .as_array()
        .expect("listed")
}

/// Runs one corrupting statement (`$1` is `id`, if any); it must change
/// exactly one row.
async fn exec(conn: &DatabaseConnection, sql: &str, id: Option<&str>) {
    let values: Vec<sea_orm::Value> = id
        .map(|id| uuid::Uuid::parse_str(id).expect("uuid").into())
        .into_iter()
        .collect();
    let statement = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    let affected = conn
        .execute_raw(statement)
        .await
        .expect("corrupt")
        .rows_affected();
    assert_eq!(affected, 1, "{sql}");
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> Value {
    let res = http.post(&url).json(&body).send().await.expect("send");
    let status = res.status();
    let body: Value = res.json().await.expect("json body");
    assert!(status.is_success(), "POST {url}: {status} {body}");
    body
}

/// Orders in every status, through the HTTP API only. Returns the ids of
/// the (pending, shipped, delivered) orders.
async fn populate(base: &str) -> (String, String, String) {
    let http = reqwest::Client::new();
    for (sku, available) in [("DOC-A", 50), ("DOC-B", 30)] {
        post(
            &http,
            format!("{base}/v1/products"),
            json!({"sku": sku, "name": sku, "price_minor": 700, "currency": "EUR", "available": available}),
        )
        .await;
    }
    let mut ids = Vec::new();
    let walks: [&[&str]; 5] = [
        &[],
        &["confirm"],
        &["confirm", "ship"],
        &["confirm", "ship", "deliver"],
        &["cancel"],
    ];
    for (i, walk) in walks.iter().enumerate() {
        let order = post(
            &http,
            format!("{base}/v1/orders"),
            json!({"customer_id": "doctor", "currency": "EUR", "items": [
                {"sku": "DOC-A", "quantity": i + 1}, {"sku": "DOC-B", "quantity": 2}
            ]}),
        )
        .await;
        let id = order["id"].as_str().expect("order id").to_owned();
        for action in *walk {
            post(&http, format!("{base}/v1/orders/{id}/{action}"), json!({})).await;
        }
        ids.push(id);
    }
    post(
        &http,
        format!("{base}/v1/products/DOC-A/stock"),
        json!({"delta": 5}),
    )
    .await;
    (ids[0].clone(), ids[2].clone(), ids[3].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_real_traffic_and_names_each_corrupted_row() {
    for backend in support::backends("oms-cli doctor") {
        corrupted_rows_are_named(backend).await;
    }
}

async fn corrupted_rows_are_named(backend: Backend) {
    let db = FreshDb::new(backend).await;
    let server = support::spawn(&db.url, db.dir.path(), &[]);
    let (pending, shipped, delivered) = populate(&server.base).await;

    // Consistent, read while the server is up.
    let out = doctor(&db.url, &[]);
    assert_eq!(out.status.code(), Some(0), "{backend:?}:\n{}", text(&out));
    assert!(text(&out).contains("consistent"), "{}", text(&out));
    drop(server);
    let (code, clean) = report(&db.url);
    assert_eq!(code, 0, "{clean:#}");
    assert_eq!(clean["checks"].as_array().map(Vec::len), Some(13));
    assert!(
        clean["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| c["violations"] == 0),
        "{clean:#}"
    );

    let conn = db.connect().await;
    // 1. Stock appears from nowhere.
    exec(
        &conn,
        "UPDATE products SET available = available + 3 WHERE sku = 'DOC-A'",
        None,
    )
    .await;
    let out = doctor(&db.url, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let shown = text(&out);
    let summary = shown
        .lines()
        .find(|l| l.starts_with("stock_conservation "))
        .unwrap_or_default();
    assert!(
        summary.contains(" 1 violation ")
            && shown.contains(
                "[stock_conservation] product \"DOC-A\": expected stock_in = available + \
                 reserved + shipped"
            ),
        "{backend:?}:\n{shown}"
    );
    exec(
        &conn,
        "UPDATE products SET available = available - 3 WHERE sku = 'DOC-A'",
        None,
    )
    .await;
    assert_eq!(doctor(&db.url, &[]).status.code(), Some(0), "repaired");

    // 2. An order line's quantity changes behind the domain's back.
    exec(
        &conn,
        "UPDATE order_items SET quantity = quantity + 1 WHERE order_id = $1 AND line_no = 2",
        Some(&pending),
    )
    .await;
    let (code, r) = report(&db.url);
    assert_eq!(code, 2, "{r:#}");
    let line = json!({"kind": "order_line", "order_id": pending, "line_no": 2});
    let found = violations(&r, "line_total");
    assert!(
        found.len() == 1
            && found[0]["entity"] == line
            && found[0]["actual"] == "quantity = 3, line_total_minor = 1400",
        "{r:#}"
    );
    // The product's reservation no longer matches the orders either.
    let found = violations(&r, "reserved_matches_orders");
    assert_eq!(found.len(), 1, "{r:#}");
    assert_eq!(found[0]["entity"]["sku"], "DOC-B", "{r:#}");
    exec(
        &conn,
        "UPDATE order_items SET quantity = quantity - 1 WHERE order_id = $1 AND line_no = 2",
        Some(&pending),
    )
    .await;
    assert_eq!(report(&db.url).0, 0, "repaired");

    // 3. An event disappears from a delivered order's history.
    exec(
        &conn,
        "DELETE FROM order_events WHERE order_id = $1 AND seq = 3",
        Some(&delivered),
    )
    .await;
    let (code, r) = report(&db.url);
    assert_eq!(code, 2, "{r:#}");
    let found = violations(&r, "event_sequence");
    assert!(
        found.len() == 1
            && found[0]["entity"] == json!({"kind": "order", "id": delivered})
            && found[0]["actual"] == "3 events numbered 1..4",
        "{r:#}"
    );
    // confirmed -> delivered skips shipped.
    let found = violations(&r, "event_transitions");
    assert!(
        found.len() == 1
            && found[0]["entity"]
                == json!({"kind": "order_event", "order_id": delivered, "seq": 4}),
        "{r:#}"
    );
    // 4. A shipped order's status moves with no event.
    exec(
        &conn,
        "UPDATE orders SET status = 'delivered' WHERE id = $1",
        Some(&shipped),
    )
    .await;
    let (code, r) = report(&db.url);
    assert_eq!(code, 2, "{r:#}");
    let found = violations(&r, "last_event_matches_status");
    assert!(
        found.len() == 1 && found[0]["entity"]["id"] == shipped.as_str(),
        "{r:#}"
    );
    conn.close().await.ok();
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reads_the_config_file_and_fails_with_1_on_errors() {
    let db = FreshDb::new(Backend::Sqlite).await;
    let server = support::spawn(&db.url, db.dir.path(), &[]);
    populate(&server.base).await;
    drop(server);
    let config = db.dir.path().join("oms.toml");
    std::fs::write(&config, format!("[database]\nurl = {:?}\n", db.url)).expect("write config");
    let out = support::oms_cli()
        .arg("doctor")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run oms-cli doctor");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A missing SQLite file is an error, and the doctor does not create it.
    let missing = db.dir.path().join("missing.db");
    let out = doctor(&format!("sqlite://{}?mode=rwc", missing.display()), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no SQLite database"), "{}", text(&out));
    assert!(!missing.exists());
    // An unmigrated database is an error, not a clean bill of health.
    let empty = db.dir.path().join("empty.db");
    std::fs::File::create(&empty).expect("create empty file");
    let out = doctor(&format!("sqlite://{}", empty.display()), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
