//! Several `oms-cli serve` processes on one PostgreSQL database: no
//! oversell and idempotency across processes.

mod support;

use futures::StreamExt;
use sea_orm::ConnectionTrait;
use serde_json::json;

/// An `oms-cli serve` process on `url` (see `support::spawn`).
fn serve(url: &str, dir: &std::path::Path) -> support::Server {
    support::spawn(url, dir, &[])
}

async fn fresh_database() -> Option<(String, String, String)> {
    let Ok(admin) = std::env::var("OMS_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED (PostgreSQL): scale-out tests: OMS_TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!("oms_t_{}", uuid::Uuid::now_v7().simple());
    let conn = sea_orm::Database::connect(&admin).await.expect("connect");
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create");
    conn.close().await.ok();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_owned();
    Some((format!("{base}/{name}"), admin, name))
}

async fn drop_database(admin: &str, name: &str) {
    if let Ok(conn) = sea_orm::Database::connect(admin).await {
        let _ = conn
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        conn.close().await.ok();
    }
}

#[tokio::test]
async fn two_processes_never_oversell_and_share_idempotency() {
    let Some((url, admin, name)) = fresh_database().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let a = serve(&url, dir.path());
    let b = serve(&url, dir.path());
    let http = reqwest::Client::new();

    let res = http
        .post(format!("{}/v1/products", a.base))
        .json(&json!({"sku": "SCALE-1", "name": "Limited", "price_minor": 500, "currency": "EUR", "available": 40}))
        .send()
        .await
        .expect("seed");
    assert_eq!(res.status(), 201);

    // 150 orders of quantity 1 from 64 concurrent clients, alternating servers.
    let servers = [a.base.clone(), b.base.clone()];
    let body = json!({"customer_id": "scale", "currency": "EUR", "items": [{"sku": "SCALE-1", "quantity": 1}]});
    let results: Vec<_> = futures::stream::iter((0..150).map(|i| {
        let http = http.clone();
        let url = format!("{}/v1/orders", servers[i % 2]);
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
    let conn = sea_orm::Database::connect(&url).await.expect("connect");
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT available, reserved FROM products WHERE sku = 'SCALE-1'",
        ))
        .await
        .expect("query")
        .expect("row");
    let (available, reserved): (i64, i64) = (
        row.try_get("", "available").expect("a"),
        row.try_get("", "reserved").expect("r"),
    );
    assert_eq!((available, reserved), (0, 40));

    // One Idempotency-Key sent to both processes at once creates one order.
    http.post(format!("{}/v1/products/SCALE-1/stock", a.base))
        .json(&json!({"delta": 10}))
        .send()
        .await
        .expect("restock");
    let body = json!({"customer_id": "idem", "currency": "EUR", "items": [{"sku": "SCALE-1", "quantity": 1}]});
    let results = futures::future::join_all((0..16).map(|i| {
        let http = http.clone();
        let url = format!("{}/v1/orders", servers[i % 2]);
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
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(*) AS n FROM orders WHERE customer_id = 'idem'",
        ))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(
        row.try_get::<i64>("", "n").expect("n"),
        1,
        "one order for one key across processes"
    );
    // A later retry on either process replays the stored response.
    for server in &servers {
        let res = http
            .post(format!("{server}/v1/orders"))
            .header("idempotency-key", "cross-process-1")
            .json(&body)
            .send()
            .await
            .expect("replay");
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
    }
    conn.close().await.ok();
    drop((a, b));
    drop_database(&admin, &name).await;
}
