//! The `oms-cli` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn oms_cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oms-cli"));
    cmd.env_remove("RUST_LOG");
    cmd
}

fn repo_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../oms.toml")
}

#[test]
fn plugins_lists_every_builtin() {
    let out = oms_cli().arg("plugins").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for (kind, name) in [
        ("pool", "sea-orm"),
        ("audit sink", "null"),
        ("audit sink", "stdout"),
        ("metrics recorder", "builtin"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(kind) && l.contains(name)),
            "{kind} {name} missing:\n{text}"
        );
    }
}

#[test]
fn version_is_printed() {
    let out = oms_cli().arg("--version").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn config_check_accepts_the_shipped_config_and_masks_secrets() {
    let out = oms_cli()
        .args(["config", "check", "--config"])
        .arg(repo_config())
        .args(["--database-url", "postgres://oms:hunter2@db.internal/oms"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("postgres://oms:***@db.internal/oms"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"));
}

#[test]
fn config_check_rejects_bad_config_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("oms.toml");
    std::fs::write(
        &path,
        "[database]\nmin_connections = 9\nmax_connections = 3\n",
    )
    .expect("write");
    let out = oms_cli()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("database.max_connections = 3: must be >= database.min_connections (9)"),
        "{stderr}"
    );

    std::fs::write(&path, "[metrics]\nrecorder = \"fancy\"\n").expect("write");
    let out = oms_cli()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("metrics.recorder = \"fancy\"") && stderr.contains("builtin"),
        "{stderr}"
    );
}

/// Starts `oms-cli serve` with the shipped config on a free port; returns
/// the child and its address once it listens.
fn serve(dir: &tempfile::TempDir) -> (Child, String) {
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("oms.db").display());
    let mut child = oms_cli()
        .args(["serve", "--config"])
        .arg(repo_config())
        .args([
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--database-url",
            &db,
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        assert!(Instant::now() < deadline, "server did not start");
        let line = lines.next().expect("server exited early").expect("read");
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.rsplit("://").next().unwrap_or(rest).trim().to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[tokio::test]
async fn serve_answers_health_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = serve(&dir);
    let res = reqwest::get(format!("http://{addr}/health"))
        .await
        .expect("health");
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");
    assert!(
        dir.path().join("oms.db").exists(),
        "SQLite file created where configured"
    );
}

#[test]
fn keys_generate_prints_a_token_and_its_digest_entry() {
    let out = oms_cli()
        .args(["keys", "generate", "--name", "ops", "--roles", "read,admin"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().next().expect("token line").trim().to_owned();
    assert!(token.starts_with("oms_") && token.len() > 40, "{token}");
    assert!(stdout.contains("name = \"ops\""), "{stdout}");
    assert!(stdout.contains("roles = [\"read\", \"admin\"]"), "{stdout}");
    assert!(!stdout.contains(&format!("sha256 = \"{token}\"")));
    // The snippet parses as config and the digest is the token's SHA-256.
    let snippet = &stdout[stdout.find("[[auth.keys]]").expect("snippet")..];
    let toml = format!("[auth]\nenabled = true\n{snippet}");
    let config =
        oms_core::config::Config::from_toml_str(&toml, &Default::default()).expect("valid snippet");
    assert_eq!(config.auth.keys[0].sha256.len(), 64);

    let bad = oms_cli()
        .args(["keys", "generate", "--name", "ops", "--roles", "root"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role"));
}
