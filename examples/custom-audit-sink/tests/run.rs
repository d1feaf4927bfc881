//! Runs the example binary as a user would: a config selecting the
//! `counting` sink, a few requests, a graceful stop, the count on disk.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = include_str!("../oms.toml");

/// Starts the binary on `config`, returns it and its base URL.
fn start(dir: &Path, config: &str) -> Result<(Child, String), String> {
    let path = dir.join("oms.toml");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_custom-audit-sink"))
        .arg("--config")
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let line = BufReader::new(stdout).lines().next();
        let _ = tx.send(line);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(Ok(line))) if line.starts_with("listening on ") => {
            Ok((child, line["listening on ".len()..].to_owned()))
        }
        _ => {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            let _ = child.wait();
            Err(err)
        }
    }
}

/// Closes stdin (graceful stop) and waits, at most 30 s.
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
async fn the_counting_sink_counts_every_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, base) = start(dir.path(), CONFIG).expect("the example starts");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let n = 7;
    for _ in 0..n {
        let res = http
            .get(format!("{base}/health"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
    }
    stop(child);
    let count = std::fs::read_to_string(dir.path().join("audit-count.txt")).expect("count file");
    assert_eq!(count, n.to_string(), "one event per request");
}

#[test]
fn a_bad_counting_table_stops_start_up_naming_table_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CONFIG.replace(
        "file = \"audit-count.txt\"",
        "file = \"audit-count.txt\"\nfiel = 3",
    );
    let err = start(dir.path(), &config).expect_err("start-up fails");
    assert!(
        err.contains("audit.counting") && err.contains("fiel"),
        "stderr: {err}"
    );
    let config = CONFIG.replace("file = \"audit-count.txt\"", "file = 42");
    let err = start(dir.path(), &config).expect_err("start-up fails");
    assert!(err.contains("audit.counting.file"), "stderr: {err}");
}
