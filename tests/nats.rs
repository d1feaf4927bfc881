//! The `nats` audit sink against the local NATS server (127.0.0.1:4222,
//! JetStream on), and plugin settings tables that fail start-up.
//! Skipped, with a message, when no server answers there.

mod common;

use std::time::Duration;

use common::{Backend, TestServer, client};
use oms::core::Oms;
use oms::core::config::Config;
use oms::plugins as _;

const NATS_URL: &str = "nats://127.0.0.1:4222";

async fn nats_available(test: &str) -> bool {
    let up = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect("127.0.0.1:4222"),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !up {
        eprintln!("SKIPPED: {test}: no NATS server answers on 127.0.0.1:4222");
    }
    up
}

#[tokio::test]
async fn n_requests_leave_n_messages_in_the_stream() {
    if !nats_available("n_requests_leave_n_messages_in_the_stream").await {
        return;
    }
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let stream = format!("OMS_TEST_{tag}");
    let subject = format!("oms.test.{tag}");
    let (stream_c, subject_c) = (stream.clone(), subject.clone());
    let server = TestServer::start_with(Backend::Sqlite, move |c| {
        c.audit.sinks = vec!["nats".into()];
        c.audit.flush_interval_ms = 50;
        c.audit.batch_size = 16;
        c.audit.plugins.insert(
            "nats".into(),
            serde_json::json!({
                "url": NATS_URL,
                "stream": stream_c,
                "subject": subject_c,
                "create_stream": true,
                "ack_timeout_ms": 5000,
            }),
        );
    })
    .await;
    let http = client();
    let n = 41;
    for i in 0..n {
        let path = if i % 2 == 0 {
            "/health"
        } else {
            "/v1/products"
        };
        let res = http.get(server.url(path)).send().await.expect("request");
        assert!(res.status().is_success(), "{path}: {}", res.status());
    }
    let stats = server.oms.state().audit_stats();
    server.stop().await;
    let nats = async_nats::connect(NATS_URL).await.expect("connect");
    let js = async_nats::jetstream::new(nats);
    let mut s = js.get_stream(&stream).await.expect("stream exists");
    let info = s.info().await.expect("stream info").clone();
    let first = s
        .get_raw_message(info.state.first_sequence)
        .await
        .expect("first message");
    js.delete_stream(&stream).await.expect("delete stream");
    assert_eq!(
        info.state.messages, n,
        "one message per request (pipeline {stats:?})"
    );
    assert_eq!(first.subject.as_str(), subject);
    let event: serde_json::Value = serde_json::from_slice(&first.payload).expect("json event");
    assert_eq!(event["method"], "GET");
    assert!(event["id"].is_string(), "{event}");
}

fn config_with(sink: &str, table: serde_json::Value) -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.database.url = Some(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("oms.db").display()
    ));
    config.audit.spill_dir = Some(dir.path().join("spill"));
    config.audit.sinks = vec![sink.into()];
    config.audit.plugins.insert(sink.into(), table);
    (config, dir)
}

#[tokio::test]
async fn a_bad_plugin_table_fails_start_up_naming_table_and_key() {
    let cases = [
        (
            "nats",
            serde_json::json!({ "ack_timeout_ms": 0 }),
            "audit.nats.ack_timeout_ms",
        ),
        (
            "nats",
            serde_json::json!({ "subject": "oms.>" }),
            "audit.nats.subject",
        ),
        (
            "nats",
            serde_json::json!({ "urll": NATS_URL }),
            "audit.nats",
        ),
        (
            "nats",
            serde_json::json!({ "create_stream": "yes" }),
            "audit.nats.create_stream",
        ),
        (
            "jsonl",
            serde_json::json!({ "fsync": "sometimes" }),
            "audit.jsonl.fsync",
        ),
    ];
    for (sink, table, key) in cases {
        let (config, _dir) = config_with(sink, table.clone());
        let err = Oms::builder()
            .config(config)
            .build()
            .await
            .expect_err("start-up must fail");
        let message = err.to_string();
        assert!(
            message.contains(key) && message.contains("invalid settings"),
            "{sink} {table}: {message}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_server_fails_start_up_naming_the_url() {
    // Port 9 (discard) on loopback: nothing listens there.
    let (config, _dir) = config_with(
        "nats",
        serde_json::json!({ "url": "nats://127.0.0.1:9", "ack_timeout_ms": 1000 }),
    );
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        Oms::builder().config(config).build(),
    )
    .await
    .expect("bounded")
    .expect_err("must fail");
    assert!(err.to_string().contains("audit.nats.url"), "{err}");
}
