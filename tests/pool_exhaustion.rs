//! Pool exhaustion: slow statements hold every pooled connection (a lock
//! taken from a connection of the test's own), more callers arrive than the
//! pool has connections; they get 503 `database_unavailable` within
//! `database.acquire_timeout_ms`, and once the lock goes the server serves
//! normally and the database is consistent.
//!
//! On SQLite the writers of one process take turns before they lease a
//! connection (`Database::acquire_writer`): one writer holds a connection
//! waiting for the lock, and every other caller is refused after the same
//! timeout, waiting for its turn.

mod common;

use std::time::{Duration, Instant};

use common::api::{Api, Resp, assert_problem, order_body};
use common::{Backend, TestServer, backends};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection};

const POOL: u32 = 4;
const ACQUIRE_TIMEOUT_MS: u64 = 500;
const CALLERS: usize = 16;
/// Slack over the acquire timeout before a wait counts as a hang (a loaded
/// 2-core CI machine, a debug build): about hangs, not speed.
const HANG_MARGIN: Duration = Duration::from_secs(5);

/// A lock held from a connection of its own: PostgreSQL
/// `LOCK TABLE products IN ACCESS EXCLUSIVE MODE`, SQLite `BEGIN EXCLUSIVE`
/// on the same file (writers wait for it, holding their connections).
struct TableLock(DatabaseConnection);

impl TableLock {
    async fn hold(url: &str, backend: Backend) -> TableLock {
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        let conn = sea_orm::Database::connect(opts)
            .await
            .expect("lock connection");
        let sql = match backend {
            Backend::Postgres => "BEGIN; LOCK TABLE products IN ACCESS EXCLUSIVE MODE",
            Backend::Sqlite => "BEGIN EXCLUSIVE",
        };
        conn.execute_unprepared(sql).await.expect("take the lock");
        TableLock(conn)
    }

    async fn release(self) {
        self.0
            .execute_unprepared("ROLLBACK")
            .await
            .expect("release the lock");
        self.0.close().await.ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_beyond_a_held_pool_get_503_within_the_acquire_timeout_and_service_resumes() {
    for backend in backends("pool exhaustion") {
        pool_exhaustion(backend).await;
    }
}

async fn pool_exhaustion(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.database.min_connections = 1;
        c.database.max_connections = POOL;
        c.database.acquire_timeout_ms = ACQUIRE_TIMEOUT_MS;
    })
    .await;
    let api = Api::new(&server, backend);
    api.create_product("HOLD-1", 100, "EUR", 1_000).await;
    api.create_order("warm", "EUR", &[("HOLD-1", 1)]).await;

    let lock = TableLock::hold(&server.db.url, backend).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Resp, Duration)>();
    let callers: Vec<_> = (0..CALLERS)
        .map(|i| {
            let api = Api::at(&server.base, &format!("{backend:?} caller {i}"));
            let tx = tx.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let res = api
                    .post("/v1/orders", &order_body("held", "EUR", &[("HOLD-1", 1)]))
                    .await;
                let _ = tx.send((res, started.elapsed()));
            })
        })
        .collect();
    drop(tx);

    // While the lock holds, the callers beyond the pool are refused, each
    // within the acquire timeout (plus a margin against hangs, not speed).
    let limit = Duration::from_millis(ACQUIRE_TIMEOUT_MS) + HANG_MARGIN;
    let admitted = match backend {
        Backend::Postgres => POOL as usize,
        Backend::Sqlite => 1,
    };
    let expected_503 = CALLERS - admitted;
    let mut refused = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while refused.len() < expected_503 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((res, took))) => {
                assert_problem(&res, 503, "database_unavailable");
                assert!(
                    res.header("retry-after").is_some(),
                    "503 without Retry-After: {}",
                    res.describe()
                );
                refused.push(took);
            }
            Ok(None) => break,
            Err(_) => break,
        }
    }
    let fastest = refused.iter().min().copied().unwrap_or_default();
    let slowest = refused.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{backend:?}: {CALLERS} callers on a held pool of {POOL}, {admitted} admitted (acquire timeout {ACQUIRE_TIMEOUT_MS} ms): \
         {} got 503 database_unavailable, first after {fastest:?}, last after {slowest:?}",
        refused.len()
    );
    assert_eq!(
        refused.len(),
        expected_503,
        "{backend:?}: callers beyond the pool must get 503 within {limit:?}"
    );
    let perf = api.get("/debug/performance").await.json();
    let pool = &perf["database"]["pool"];
    assert!(
        pool["timeouts"]
            .as_u64()
            .is_some_and(|t| t >= expected_503 as u64),
        "{backend:?}: pool timeouts not counted: {pool}"
    );

    // The lock goes: the callers that held connections finish, and the
    // server serves normally.
    let released = Instant::now();
    lock.release().await;
    for caller in callers {
        caller.await.expect("caller");
    }
    let mut finished = Vec::new();
    while let Some((res, _)) = rx.recv().await {
        finished.push(res.status);
        assert!(
            res.status == 201 || res.status == 503,
            "{backend:?}: a held caller got {}",
            res.describe()
        );
    }
    eprintln!(
        "{backend:?}: held callers finished {:?} after the release ({finished:?})",
        released.elapsed()
    );
    let order = api.create_order("after", "EUR", &[("HOLD-1", 2)]).await;
    assert_eq!(order["status"], "pending");
    let health = api.get("/health").await;
    assert_eq!(health.status, 200, "{}", health.describe());
    let perf = api.get("/debug/performance").await.json();
    assert_eq!(
        perf["database"]["pool"]["waiting"], 0,
        "{backend:?}: {perf}"
    );

    // Doctor: every invariant holds after the fault.
    let report = oms::core::domain::check_invariants(server.oms.database(), 10)
        .await
        .expect("doctor runs");
    assert!(
        report.is_consistent(),
        "{backend:?}: doctor after pool exhaustion: {report:?}"
    );
    server.stop().await;
}
