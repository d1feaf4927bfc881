//! The `database` audit sink stores every field of every event exactly, on
//! SQLite and PostgreSQL, whatever the text holds; re-inserting is a no-op;
//! `GET /v1/audit`'s filters and pages still find the rows.

mod common;

use common::{TestServer, backends};
use oms::core::audit::query::{self, AuditFilter, AuditRecord};
use oms::core::audit::{AuditEvent, AuditSink};
use oms::plugins::audit::DatabaseAuditSink;

/// Events with awkward text and extreme numbers, 10 ms apart.
fn awkward(t0: i64) -> Vec<AuditEvent> {
    let texts = [
        "plain",
        "quote \" backslash \\ slash / tab \t newline \n",
        "unicode é ß 漢字 🦀",
        "json-looking {\"a\":[1,2]} and 'single' quotes",
        "",
        "control \u{1} \u{1f}",
    ];
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut e = AuditEvent::example();
            e.at_ms = t0 + 10 * i as i64;
            e.request_id = format!("req-{i}-{text}");
            e.actor = if i % 2 == 0 { "ops" } else { "anonymous" }.to_owned();
            e.method = if i % 3 == 0 { "POST" } else { "GET" }.to_owned();
            e.route = "/v1/orders/{id}".to_owned();
            e.path = format!("/v1/orders/{text}");
            e.status = [200, 404, 599, 100, 201, 503][i];
            e.duration_us = [0, 1, u64::from(u32::MAX) + 7, 42, 9, 3][i];
            e.db_us = i as u64 * 1_000_000_007;
            e.client_ip = if i == 1 { "::1" } else { "203.0.113.9" }.to_owned();
            e.user_agent = text.to_string();
            e.request_bytes = if i == 2 { u64::MAX } else { i as u64 };
            e.response_bytes = [i64::MAX as u64, 0, 1, 2, 3, 4][i];
            e
        })
        .collect()
}

/// What the table must give back for `e`: counters saturate at BIGINT.
fn expected(e: &AuditEvent) -> AuditRecord {
    let mut r = AuditRecord::from(e.clone());
    r.request_bytes = r.request_bytes.min(i64::MAX as u64);
    r
}

#[tokio::test]
async fn the_database_sink_stores_every_field_exactly() {
    for backend in backends("the_database_sink_stores_every_field_exactly") {
        let server = TestServer::start(backend).await;
        let db = server.oms.database().clone();
        let sink = DatabaseAuditSink::new(db.clone());
        let t0 = 4_102_444_800_000; // 2100: after any event the server records itself
        let sent = awkward(t0);
        sink.write_batch(&sent).await.expect("write the batch");
        // A retry or replay of the same events stores nothing twice.
        sink.write_batch(&sent[1..4]).await.expect("write again");

        let mut only_mine = AuditFilter {
            since_ms: Some(t0),
            ..Default::default()
        };
        let page = query::list(&db, &only_mine, 100, None).await.expect("list");
        let mut want: Vec<AuditRecord> = sent.iter().map(expected).collect();
        want.reverse(); // newest first
        assert_eq!(page.items, want, "{backend:?}");
        assert!(page.next_cursor.is_none());

        // Filters and keyset pages over what the sink wrote.
        only_mine.actor = Some("ops".into());
        let ops = query::list(&db, &only_mine, 100, None)
            .await
            .expect("actor filter");
        assert_eq!(
            ops.items
                .iter()
                .map(|r| r.actor.as_str())
                .collect::<Vec<_>>(),
            ["ops"; 3],
            "{backend:?}"
        );
        only_mine.actor = None;
        only_mine.status = Some(599);
        let status = query::list(&db, &only_mine, 100, None)
            .await
            .expect("status filter");
        assert_eq!(status.items, [expected(&sent[2])], "{backend:?}");
        only_mine.status = None;
        only_mine.method = Some("post".into());
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let page = query::list(&db, &only_mine, 1, after.as_deref())
                .await
                .expect("method filter page");
            ids.extend(page.items.iter().map(|r| r.id));
            match page.next_cursor {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(ids, [sent[3].id, sent[0].id], "{backend:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_large_batch_is_stored_whole() {
    for backend in backends("a_large_batch_is_stored_whole") {
        let server = TestServer::start(backend).await;
        let db = server.oms.database().clone();
        let sink = DatabaseAuditSink::new(db.clone());
        let t0 = 4_102_444_900_000;
        // More than one statement's worth: split, in one transaction.
        let n = query::ROWS_PER_INSERT + 5;
        let sent: Vec<AuditEvent> = (0..n)
            .map(|i| AuditEvent {
                at_ms: t0 + i as i64,
                ..AuditEvent::example()
            })
            .collect();
        sink.write_batch(&sent).await.expect("write the batch");
        let filter = AuditFilter {
            since_ms: Some(t0),
            ..Default::default()
        };
        let mut stored = 0;
        let mut after = None;
        loop {
            let page = query::list(&db, &filter, query::MAX_LIMIT, after.as_deref())
                .await
                .expect("page");
            stored += page.items.len();
            match page.next_cursor {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(stored, n, "{backend:?}");
        server.stop().await;
    }
}
