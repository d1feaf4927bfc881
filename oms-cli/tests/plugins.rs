//! `oms-cli plugins` shows settings; `oms-cli config check` validates the
//! selected plugins' own tables.

use std::process::Command;

fn oms_cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oms-cli"));
    cmd.env_remove("RUST_LOG");
    cmd
}

#[test]
fn plugins_lists_settings_tables_with_defaults() {
    let out = oms_cli().arg("plugins").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("audit sink") && l.contains("nats")),
        "{text}"
    );
    for line in [
        "[audit.nats]",
        "url = \"nats://127.0.0.1:4222\"",
        "stream = \"OMS_AUDIT\"",
        "subject = \"oms.audit\"",
        "create_stream = true",
        "ack_timeout_ms = 5000",
        "[audit.jsonl]",
        "fsync = \"batch\"",
    ] {
        assert!(text.lines().any(|l| l.trim() == line), "{line}:\n{text}");
    }
}

#[test]
fn config_check_rejects_a_bad_plugin_table_naming_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("oms.toml");
    std::fs::write(
        &path,
        "[audit]\nsinks = [\"nats\", \"jsonl\"]\n\n[audit.nats]\nsubject = \"oms.*\"\nack_timeout_ms = 0\n\n[audit.jsonl]\nfsync = \"sometimes\"\n",
    )
    .expect("write");
    let out = oms_cli()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for key in [
        "audit.nats.subject",
        "audit.nats.ack_timeout_ms",
        "audit.jsonl.fsync",
    ] {
        assert!(stderr.contains(key), "{key}:\n{stderr}");
    }

    std::fs::write(
        &path,
        "[audit]\nsinks = [\"nats\"]\n\n[audit.nats]\nstream = \"AUDIT\"\n",
    )
    .expect("write");
    let out = oms_cli()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
