//! Runs the example binary as a user would: a config selecting the
//! `counting` sink, a few requests, a graceful stop, the count on disk.

#[path = "../../support/run.rs"]
mod run;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use run::stop;

const CONFIG: &str = include_str!("../oms.toml");

/// Starts the binary on `config`, returns it and its base URL.
fn start(dir: &Path, config: &str) -> Result<(Child, String), String> {
    let path = dir.join("oms.toml");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_custom-audit-sink"));
    command.arg("--config").arg(&path);
    run::start(command)
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
