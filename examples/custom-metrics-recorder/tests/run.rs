//! Runs the example binary: a request, then `/metrics` shows the
//! recorder's own series next to the built-in ones.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_custom-metrics-recorder"))
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
