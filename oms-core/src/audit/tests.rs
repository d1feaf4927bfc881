//! Tests of the audit pipeline (batching, shutdown, retries, spill and
//! replay, drop accounting) and of the `audit_events` queries on SQLite.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::ConnectionTrait;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::query::{self, AuditFilter, AuditQueryError};
use super::*;
use crate::config::{AuditConfig, OnFull};
use crate::db::Database;
use crate::db::test_pool::TestPool;

// ---------------------------------------------------------------- sinks

/// Stores everything it is given; fails while `failing`; waits on `gate`
/// (when set) before each write.
struct TestSink {
    name: String,
    events: Mutex<Vec<AuditEvent>>,
    batches: Mutex<Vec<usize>>,
    failing: AtomicBool,
    attempts: AtomicUsize,
    flushes: AtomicUsize,
    gate: Option<Arc<Semaphore>>,
}

impl TestSink {
    fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            events: Mutex::default(),
            batches: Mutex::default(),
            failing: AtomicBool::new(false),
            attempts: AtomicUsize::new(0),
            flushes: AtomicUsize::new(0),
            gate: None,
        })
    }

    fn failing(name: &str) -> Arc<Self> {
        let sink = Self::new(name);
        sink.failing.store(true, Ordering::SeqCst);
        sink
    }

    fn gated(name: &str, gate: Arc<Semaphore>) -> Arc<Self> {
        Arc::new(Self {
            gate: Some(gate),
            ..Arc::into_inner(Self::new(name)).unwrap()
        })
    }

    fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    fn ids(&self) -> Vec<Uuid> {
        self.events.lock().unwrap().iter().map(|e| e.id).collect()
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }
}

#[async_trait]
impl AuditSink for TestSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(AuditError::Write {
                sink: self.name.clone(),
                message: "down".into(),
            });
        }
        self.events.lock().unwrap().extend_from_slice(events);
        self.batches.lock().unwrap().push(events.len());
        Ok(())
    }

    async fn flush(&self) -> Result<(), AuditError> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

// ---------------------------------------------------------------- helpers

fn config(workers: usize, capacity: usize, batch: usize, interval_ms: u64) -> AuditConfig {
    AuditConfig {
        workers,
        queue_capacity: capacity,
        batch_size: batch,
        flush_interval_ms: interval_ms,
        retry_attempts: 2,
        ..AuditConfig::default()
    }
}

fn fast() -> PipelineOptions {
    PipelineOptions {
        retry_base: Duration::from_millis(1),
        retry_cap: Duration::from_millis(4),
        replay_interval: Duration::from_millis(20),
    }
}

fn events(n: usize) -> Vec<AuditEvent> {
    (0..n).map(|_| AuditEvent::example()).collect()
}

/// Polls `cond` every 5 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

fn sinks(list: &[&Arc<TestSink>]) -> Vec<Arc<dyn AuditSink>> {
    list.iter()
        .map(|s| Arc::clone(s) as Arc<dyn AuditSink>)
        .collect()
}

fn assert_same_ids(got: Vec<Uuid>, sent: &[AuditEvent]) {
    let unique: HashSet<_> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "duplicates delivered");
    let want: HashSet<_> = sent.iter().map(|e| e.id).collect();
    assert_eq!(unique, want);
}

// ---------------------------------------------------------------- pipeline

#[tokio::test]
async fn batches_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::new("rec");
    let p = AuditPipeline::start(
        &config(1, 1000, 10, 60_000),
        sinks(&[&sink]),
        dir.path().into(),
    )
    .await
    .unwrap();
    for e in events(35) {
        p.record(e).await;
    }
    eventually("three full batches", || sink.len() == 30).await;
    // The last 5 wait for the (one minute) interval...
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.batches(), vec![10, 10, 10]);
    // ...or for shutdown, which drains them.
    p.shutdown().await;
    assert_eq!(sink.batches(), vec![10, 10, 10, 5]);
    let stats = p.stats();
    assert_eq!(
        (
            stats.enqueued,
            stats.written,
            stats.batches,
            stats.batch_size_max
        ),
        (35, 35, 4, 10)
    );
    assert_eq!(sink.flushes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn batches_by_interval() {
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::new("rec");
    let p = AuditPipeline::start(
        &config(2, 1000, 1000, 300),
        sinks(&[&sink]),
        dir.path().into(),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    for e in events(5) {
        p.record(e).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    if started.elapsed() < Duration::from_millis(250) {
        assert_eq!(sink.len(), 0, "flushed before the interval");
    }
    eventually("the interval flush", || sink.len() == 5).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sink.batches(), vec![5]);
    // The next event waits one interval at most, too.
    p.record(AuditEvent::example()).await;
    eventually("the second flush", || sink.len() == 6).await;
    assert_eq!(sink.batches(), vec![5, 1]);
    p.shutdown().await;
    assert!(p.stats().flush_p99_ms >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_recorded_reaches_the_sink_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::new("rec");
    // A small queue: producers hit backpressure (block) many times.
    let p = AuditPipeline::start(&config(4, 64, 32, 5), sinks(&[&sink]), dir.path().into())
        .await
        .unwrap();
    let sent = events(20_000);
    let tasks: Vec<_> = sent
        .chunks(2_500)
        .map(|chunk| {
            let p = p.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                for e in chunk {
                    p.record(e).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    p.shutdown().await;
    assert_same_ids(sink.ids(), &sent);
    let stats = p.stats();
    assert_eq!(
        (stats.enqueued, stats.written, stats.dropped),
        (20_000, 20_000, 0)
    );
    assert_eq!(stats.queue_depth, 0);
    assert_eq!(stats.capacity, 64);
    assert!(stats.batch_size_max <= 32);
}

#[tokio::test]
async fn block_mode_waits_for_room() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let sink = TestSink::gated("slow", gate.clone());
    let p = AuditPipeline::start(&config(1, 4, 2, 1), sinks(&[&sink]), dir.path().into())
        .await
        .unwrap();
    let sent = events(20);
    let producer = {
        let p = p.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            for e in sent {
                p.record(e).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!producer.is_finished(), "the producer should be held back");
    assert!(
        p.try_record(AuditEvent::example()).is_err(),
        "queue should be full"
    );
    assert_eq!(p.stats().queue_depth, 4);
    gate.add_permits(1000);
    producer.await.unwrap();
    p.shutdown().await;
    assert_same_ids(sink.ids(), &sent);
    assert_eq!(p.stats().dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_mode_counts_drops_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let sink = TestSink::gated("stalled", gate.clone());
    let mut cfg = config(2, 16, 4, 1);
    cfg.on_full = OnFull::Drop;
    let p = AuditPipeline::start(&cfg, sinks(&[&sink]), dir.path().into())
        .await
        .unwrap();
    let sent = events(1_000);
    for e in sent.iter().cloned() {
        p.record(e).await;
    }
    let stats = p.stats();
    assert_eq!(stats.enqueued + stats.dropped, 1_000);
    // The queue plus at most one batch held by each stalled worker.
    assert!(
        stats.enqueued >= 16 && stats.enqueued <= 16 + 2 * 4,
        "{stats:?}"
    );
    gate.add_permits(10_000);
    p.shutdown().await;
    let stats = p.stats();
    assert_eq!(sink.len() as u64, stats.enqueued);
    assert_eq!(stats.dropped, 1_000 - stats.enqueued);
    assert_eq!(stats.written, stats.enqueued);
    // Recording after shutdown is refused and counted.
    p.record(AuditEvent::example()).await;
    assert_eq!(p.stats().dropped, 1_000 - stats.enqueued + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_gets_everything_after_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = TestSink::failing("flaky");
    let steady = TestSink::new("steady");
    let p = AuditPipeline::start_with(
        &config(2, 10_000, 50, 5),
        sinks(&[&flaky, &steady]),
        dir.path().into(),
        fast(),
    )
    .await
    .unwrap();
    let sent = events(2_000);
    for e in sent[..1_000].iter().cloned() {
        p.record(e).await;
    }
    eventually("spilling", || p.stats().spilled >= 500).await;
    assert!(!p.stats().sinks[0].healthy);
    let spill = dir.path().join("flaky.jsonl");
    assert!(spill.exists() || dir.path().join("flaky.replaying.jsonl").exists());
    flaky.failing.store(false, Ordering::SeqCst);
    for e in sent[1_000..].iter().cloned() {
        p.record(e).await;
    }
    eventually("the replay", || flaky.len() == 2_000).await;
    eventually("recovery", || p.stats().sinks[0].healthy).await;
    p.shutdown().await;

    assert_same_ids(flaky.ids(), &sent);
    assert_same_ids(steady.ids(), &sent);
    let stats = p.stats();
    assert_eq!(stats.written, 4_000);
    assert!(stats.failed >= 2, "{stats:?}");
    assert!(
        stats.replayed > 0 && stats.replayed == stats.spilled,
        "{stats:?}"
    );
    assert_eq!(stats.sinks[1].spilled, 0);
    assert!(!spill.exists());
    assert!(!dir.path().join("flaky.replaying.jsonl").exists());
}

#[tokio::test]
async fn retries_absorb_a_short_failure() {
    struct FailsTwice(Arc<TestSink>);
    #[async_trait]
    impl AuditSink for FailsTwice {
        fn name(&self) -> &str {
            "twice"
        }
        async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
            let n = self.0.attempts.load(Ordering::SeqCst);
            self.0.failing.store(n < 2, Ordering::SeqCst);
            self.0.write_batch(events).await
        }
        async fn flush(&self) -> Result<(), AuditError> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let inner = TestSink::new("twice");
    let sink: Arc<dyn AuditSink> = Arc::new(FailsTwice(inner.clone()));
    let mut cfg = config(1, 100, 10, 1);
    cfg.retry_attempts = 3;
    let p = AuditPipeline::start_with(&cfg, vec![sink], dir.path().into(), fast())
        .await
        .unwrap();
    let sent = events(10);
    for e in sent.iter().cloned() {
        p.record(e).await;
    }
    p.shutdown().await;
    assert_same_ids(inner.ids(), &sent);
    let stats = p.stats();
    assert_eq!((stats.failed, stats.spilled, stats.written), (2, 0, 10));
}

#[tokio::test]
async fn a_spill_file_survives_a_restart_and_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let sent = events(300);

    // First run: the sink is down for good; shutdown leaves a spill file.
    let down = TestSink::failing("audit-db");
    let p = AuditPipeline::start_with(
        &config(2, 1000, 64, 1),
        sinks(&[&down]),
        dir.path().into(),
        fast(),
    )
    .await
    .unwrap();
    for e in sent[..200].iter().cloned() {
        p.record(e).await;
    }
    p.shutdown().await;
    assert_eq!(p.stats().spilled, 200);
    assert_eq!(down.len(), 0);
    // The replayer may have moved part of it aside for replaying.
    let spill = dir.path().join("audit-db.jsonl");
    let replaying = dir.path().join("audit-db.replaying.jsonl");
    let mut lines = 0;
    for file in [&spill, &replaying] {
        if let Ok(text) = tokio::fs::read_to_string(file).await {
            lines += text.lines().count();
        }
    }
    assert_eq!(lines, 200);

    // Events spilled later, then a crash mid-append left a torn line.
    let mut tail = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spill)
        .await
        .unwrap();
    let mut bytes = super::spill::to_json_lines(&sent[200..250]);
    bytes.extend_from_slice(b"{\"id\":\"0190");
    tokio::io::AsyncWriteExt::write_all(&mut tail, &bytes)
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::flush(&mut tail).await.unwrap();
    drop(tail);

    // Second run: the sink works; everything arrives, plus new events.
    let up = TestSink::new("audit-db");
    let p = AuditPipeline::start_with(
        &config(2, 1000, 64, 1),
        sinks(&[&up]),
        dir.path().into(),
        fast(),
    )
    .await
    .unwrap();
    assert!(!p.stats().sinks[0].healthy, "starts by replaying");
    for e in sent[250..].iter().cloned() {
        p.record(e).await;
    }
    eventually("the replay", || up.len() == 300).await;
    p.shutdown().await;
    assert_same_ids(up.ids(), &sent);
    let stats = p.stats();
    // The 250 found at start, plus whatever this run spilled while the
    // replay was still going on.
    assert_eq!(stats.replayed, 250 + stats.spilled, "{stats:?}");
    assert_eq!(stats.sinks[0].corrupt_lines, 1);
    assert!(!spill.exists() && !replaying.exists());
}

#[tokio::test]
async fn shutdown_is_idempotent_and_concurrent() {
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::new("rec");
    let p = AuditPipeline::start(
        &config(3, 100, 10, 10_000),
        sinks(&[&sink]),
        dir.path().into(),
    )
    .await
    .unwrap();
    for e in events(7) {
        assert!(p.try_record(e).is_ok());
    }
    let other = p.clone();
    tokio::join!(p.shutdown(), other.shutdown());
    p.shutdown().await;
    assert_eq!(sink.len(), 7);
    assert_eq!(sink.flushes.load(Ordering::SeqCst), 1);
    assert!(p.try_record(AuditEvent::example()).is_err());
}

#[tokio::test]
async fn start_refuses_duplicate_sinks_and_bad_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let a = TestSink::new("same");
    let b = TestSink::new("same");
    let err = AuditPipeline::start(&AuditConfig::default(), sinks(&[&a, &b]), dir.path().into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuditStartError::DuplicateSink(ref n) if n == "same"),
        "{err}"
    );
    let file = dir.path().join("file");
    tokio::fs::write(&file, b"x").await.unwrap();
    let err = AuditPipeline::start(&AuditConfig::default(), Vec::new(), file.join("sub"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuditStartError::Io { .. }), "{err}");
}

#[test]
fn spill_file_names_are_sanitised() {
    assert_eq!(spill::file_stem("database"), "database");
    assert_eq!(spill::file_stem("../etc/passwd"), "___etc_passwd");
    assert_eq!(spill::file_stem(""), "_");
}

// ---------------------------------------------------------------- queries

async fn sqlite(dir: &tempfile::TempDir) -> Database {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("audit.db").display()
    );
    let conn = sea_orm::Database::connect(url).await.unwrap();
    crate::db::migration::migrate(&conn).await.unwrap();
    Database::new(Arc::new(TestPool(conn)), 3)
}

async fn insert(db: &Database, events: &[AuditEvent]) {
    query::insert(db, events).await.unwrap();
}

async fn count(db: &Database) -> i64 {
    let conn = db.acquire().await.unwrap();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            db.backend(),
            "SELECT COUNT(*) AS n FROM audit_events",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// 60 events, one per second from `t0`, alternating actors, methods and
/// statuses; three share the same `at` to exercise the `id` tie-break.
fn history(t0: i64) -> Vec<AuditEvent> {
    (0..60)
        .map(|i| {
            let mut e = AuditEvent::example();
            e.at_ms = if (10..13).contains(&i) {
                t0 + 10_000
            } else {
                t0 + i * 1_000
            };
            e.actor = if i % 3 == 0 {
                "ops".into()
            } else {
                "shop".into()
            };
            e.method = if i % 2 == 0 {
                "GET".into()
            } else {
                "POST".into()
            };
            e.status = if i % 5 == 0 { 403 } else { 200 };
            e.path = format!("/v1/orders/{i}");
            e
        })
        .collect()
}

fn newest_first(mut events: Vec<AuditEvent>) -> Vec<Uuid> {
    events.sort_by_key(|e| std::cmp::Reverse((e.at_ms, e.id)));
    events.into_iter().map(|e| e.id).collect()
}

async fn all_pages(db: &Database, filter: &AuditFilter, limit: u32) -> (Vec<Uuid>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut after: Option<String> = None;
    loop {
        let page = query::list(db, filter, limit, after.as_deref())
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= limit as usize);
        ids.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => return (ids, pages),
        }
    }
}

#[tokio::test]
async fn query_pages_newest_first_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let t0 = 1_795_874_400_000;
    let sent = history(t0);
    insert(&db, &sent).await;
    // Re-inserting is a no-op (retries and replays are idempotent).
    insert(&db, &sent[..10]).await;
    assert_eq!(count(&db).await, 60);

    let first = query::list(&db, &AuditFilter::default(), 7, None)
        .await
        .unwrap();
    assert_eq!(first.items.len(), 7);
    let json = serde_json::to_value(&first.items[0]).unwrap();
    assert_eq!(json["at"], "2026-11-28T14:00:59.000Z");
    assert_eq!(json["path"], "/v1/orders/59");
    for key in [
        "id",
        "at",
        "request_id",
        "actor",
        "method",
        "route",
        "path",
        "status",
        "duration_us",
        "db_us",
        "client_ip",
        "user_agent",
        "request_bytes",
        "response_bytes",
    ] {
        assert!(json.get(key).is_some(), "{key} missing");
    }
    assert_eq!(json.as_object().unwrap().len(), 14);

    let (ids, pages) = all_pages(&db, &AuditFilter::default(), 7).await;
    assert_eq!(ids, newest_first(sent.clone()));
    assert_eq!(pages, 9);

    type Keep = Box<dyn Fn(&AuditEvent) -> bool>;
    let cases: Vec<(AuditFilter, Keep)> = vec![
        (
            AuditFilter {
                actor: Some("ops".into()),
                ..Default::default()
            },
            Box::new(|e| e.actor == "ops"),
        ),
        (
            AuditFilter {
                method: Some("post".into()),
                ..Default::default()
            },
            Box::new(|e| e.method == "POST"),
        ),
        (
            AuditFilter {
                status: Some(403),
                ..Default::default()
            },
            Box::new(|e| e.status == 403),
        ),
        (
            AuditFilter {
                since_ms: Some(t0 + 30_000),
                ..Default::default()
            },
            Box::new(move |e| e.at_ms >= t0 + 30_000),
        ),
        (
            AuditFilter {
                actor: Some("shop".into()),
                method: Some("GET".into()),
                status: Some(200),
                since_ms: Some(t0 + 5_000),
            },
            Box::new(move |e| {
                e.actor == "shop" && e.method == "GET" && e.status == 200 && e.at_ms >= t0 + 5_000
            }),
        ),
    ];
    for (filter, keep) in cases {
        let want = newest_first(sent.iter().filter(|e| keep(e)).cloned().collect());
        assert!(!want.is_empty());
        let (got, _) = all_pages(&db, &filter, 4).await;
        assert_eq!(got, want, "{filter:?}");
    }

    // Limits are clamped; an exact last page has no cursor.
    assert_eq!(
        query::list(&db, &AuditFilter::default(), 0, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let whole = query::list(&db, &AuditFilter::default(), 60, None)
        .await
        .unwrap();
    assert_eq!((whole.items.len(), whole.next_cursor), (60, None));
}

#[tokio::test]
async fn query_rejects_bad_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    insert(&db, &history(0)).await;
    let page = query::list(&db, &AuditFilter::default(), 5, None)
        .await
        .unwrap();
    let cursor = page.next_cursor.unwrap();
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in ["", "garbage", "%%%", tampered.as_str(), &cursor[1..]] {
        let err = query::list(&db, &AuditFilter::default(), 5, Some(bad))
            .await
            .unwrap_err();
        assert!(matches!(err, AuditQueryError::BadCursor), "{bad}: {err}");
    }
}

#[tokio::test]
async fn large_batches_are_split_into_one_statement_shape() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let sent = events(5_000);
    let statements = query::insert_statements(db.backend(), &sent);
    // 39 x 128 + 8 events: two statement shapes, 14 parameters a row.
    assert_eq!(statements.len(), 40);
    let shapes: std::collections::BTreeSet<_> = statements.iter().map(|s| &s.sql).collect();
    assert_eq!(shapes.len(), 2);
    let rows = |s: &sea_orm::Statement| s.values.as_ref().map_or(0, |v| v.0.len()) / 14;
    assert_eq!(
        statements.iter().map(rows).collect::<Vec<_>>()[38..],
        [128, 8]
    );
    insert(&db, &sent).await;
    assert_eq!(count(&db).await, 5_000);
}

/// A trigger on `audit_events` refusing rows whose path is `/refused`.
const REFUSE: [(&str, &str); 2] = [
    (
        "sqlite",
        "CREATE TRIGGER refuse BEFORE INSERT ON audit_events WHEN NEW.path = '/refused' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    ),
    (
        "postgres",
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.path = '/refused' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse()",
    ),
];

#[tokio::test]
async fn a_batch_is_stored_whole_or_not_at_all_and_only_once() {
    for test_db in crate::domain::tests::support::TestDb::all().await {
        let backend = test_db.name;
        let observed = Arc::new(AtomicUsize::new(0));
        let seen = observed.clone();
        let db = Database::new(Arc::new(TestPool(test_db.conn.clone())), 3).with_observer(
            Arc::new(move |_, _| {
                seen.fetch_add(1, Ordering::Relaxed);
            }),
        );
        let refuse = REFUSE.iter().find(|(name, _)| *name == backend).unwrap().1;
        db.acquire()
            .await
            .unwrap()
            .execute_unprepared(refuse)
            .await
            .unwrap();
        // 300 events: on SQLite 128 + 128 + 32 + 8 + 4 rows, the refused
        // one in the last statement after four have run; on PostgreSQL one
        // insert of column arrays.
        let mut sent = events(300);
        sent[299].path = "/refused".to_owned();
        let err = query::insert(&db, &sent).await.unwrap_err();
        assert!(err.to_string().contains("refused"), "{backend}: {err}");
        assert_eq!(count(&db).await, 0, "{backend}");
        // Statements run on the driver count in the statement metrics.
        assert!(observed.load(Ordering::Relaxed) >= 1, "{backend}");
        // Several statements on either backend (PostgreSQL: 4,096 + 904).
        let mut many = events(5_000);
        many[4_500].path = "/refused".to_owned();
        query::insert(&db, &many).await.unwrap_err();
        assert_eq!(count(&db).await, 0, "{backend}");

        sent[299].path = "/v1/orders".to_owned();
        query::insert(&db, &sent).await.unwrap();
        // A retry or a spill replay of stored events adds nothing, also
        // when only some of a batch are stored.
        query::insert(&db, &sent[..64]).await.unwrap();
        let mut partly = events(10);
        partly.extend_from_slice(&sent[..5]);
        query::insert(&db, &partly).await.unwrap();
        query::insert(&db, &sent).await.unwrap();
        assert_eq!(count(&db).await, 310, "{backend}");
        // Also when the batch takes several statements in one transaction.
        let mut large = events(4_200);
        large.extend_from_slice(&sent[..3]);
        query::insert(&db, &large).await.unwrap();
        assert_eq!(count(&db).await, 4_510, "{backend}");
        query::insert(&db, &[]).await.unwrap();
        assert_eq!(count(&db).await, 4_510, "{backend}");

        // Every column lands where it belongs, text escapes included.
        let e = AuditEvent {
            request_id: "req-1".into(),
            actor: "ops".into(),
            method: "PATCH".into(),
            route: "/v1/products/{sku}".into(),
            path: "/v1/products/P-1\\N".into(),
            status: 409,
            duration_us: 1234,
            db_us: 567,
            client_ip: "10.0.0.7".into(),
            user_agent: "curl/8\ttab\nline\rcr \\ back\\slash ünï".into(),
            request_bytes: 89,
            response_bytes: u64::MAX,
            ..AuditEvent::example()
        };
        query::insert(&db, std::slice::from_ref(&e)).await.unwrap();
        let page = query::list(&db, &AuditFilter::default(), 500, None)
            .await
            .unwrap();
        let got = page.items.iter().find(|r| r.id == e.id).unwrap();
        assert_eq!(got.at.timestamp_millis(), e.at_ms, "{backend}");
        assert_eq!(
            (
                got.request_id.as_str(),
                got.actor.as_str(),
                got.method.as_str()
            ),
            ("req-1", "ops", "PATCH"),
        );
        assert_eq!(
            (got.route.as_str(), got.path.as_str()),
            (e.route.as_str(), e.path.as_str())
        );
        assert_eq!((got.status, got.duration_us, got.db_us), (409, 1234, 567));
        assert_eq!(
            (got.client_ip.as_str(), got.user_agent.as_str()),
            ("10.0.0.7", e.user_agent.as_str())
        );
        assert_eq!(
            (got.request_bytes, got.response_bytes),
            (89, i64::MAX as u64)
        );

        // More than one statement's worth (a spill replay): all stored.
        query::insert(&db, &events(5_000)).await.unwrap();
        assert_eq!(count(&db).await, 4_511 + 5_000, "{backend}");

        // The sea-orm statements (for connections that are not sqlx pools)
        // run on either backend and skip stored events too.
        let mut more = events(200);
        more.extend_from_slice(&sent[..10]);
        db.pool()
            .execute_batch(query::insert_statements(db.backend(), &more))
            .await
            .unwrap();
        assert_eq!(count(&db).await, 4_511 + 5_000 + 200, "{backend}");
        test_db.finish().await;
    }
}
