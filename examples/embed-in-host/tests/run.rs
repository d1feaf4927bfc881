//! Runs the host application: its own route, OMS under `/oms`, the host's
//! middleware around both.

#[path = "../../support/run.rs"]
mod run;

use std::process::Command;
use std::time::Duration;

use run::stop;

fn start(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_embed-in-host"));
    command
        .current_dir(dir)
        .env("OMS_EXAMPLE_BIND", "127.0.0.1:0");
    run::start(command).unwrap_or_else(|stderr| panic!("the example did not start: {stderr}"))
}

#[tokio::test]
async fn the_host_serves_its_routes_and_oms_under_a_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, base) = start(dir.path());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    let hello = http
        .get(format!("{base}/hello"))
        .send()
        .await
        .expect("hello");
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.headers()["x-host-app"], "embed-in-host");
    assert_eq!(hello.text().await.expect("text"), "hello from the host");

    let health = http
        .get(format!("{base}/oms/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["x-host-app"],
        "embed-in-host",
        "host hoop outside OMS"
    );
    assert!(
        health.headers().contains_key("x-response-time"),
        "OMS telemetry inside"
    );
    let body: serde_json::Value = health.json().await.expect("json");
    assert_eq!(body["status"], "ok");

    let products = http
        .get(format!("{base}/oms/v1/products"))
        .send()
        .await
        .expect("products");
    assert_eq!(products.status(), 200);

    let bare = http
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("404");
    assert_eq!(bare.status(), 404, "OMS lives under /oms only");
    stop(child);
}
