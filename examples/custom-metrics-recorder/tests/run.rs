//! Runs the example binary: a request, then `/metrics` shows the
//! recorder's own series next to the built-in ones.

#[path = "../../support/run.rs"]
mod run;

use std::process::Command;
use std::time::Duration;

use run::stop;

fn start(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_custom-metrics-recorder"));
    command
        .current_dir(dir)
        .env("OMS_EXAMPLE_BIND", "127.0.0.1:0");
    run::start(command).unwrap_or_else(|stderr| panic!("the example did not start: {stderr}"))
}

#[tokio::test]
async fn metrics_show_the_status_class_counter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, base) = start(dir.path());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let health = http
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let missing = http.get(format!("{base}/nope")).send().await.expect("404");
    assert_eq!(missing.status(), 404);
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    stop(child);
    assert!(
        text.contains("oms_example_responses_total{class=\"2xx\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("oms_example_responses_total{class=\"4xx\"} 1"),
        "{text}"
    );
    assert!(text.contains("http_server_requests_total"), "{text}");
}
