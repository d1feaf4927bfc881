//! Runs the host application: its own route, OMS under `/oms`, the host's
//! middleware around both.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_embed-in-host"))
        .current_dir(dir)
        .env("OMS_EXAMPLE_BIND", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(BufReader::new(stdout).lines().next());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(Ok(line))) if line.starts_with("listening on ") => {
            (child, line["listening on ".len()..].to_owned())
        }
        other => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the example did not start: {other:?}");
        }
    }
}

fn stop(mut child: Child) {
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "exit status {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the example did not stop within 30 s");
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
