//! Shared by the `oms-cli` process tests: spawning `oms-cli serve`, fresh
//! SQLite and PostgreSQL databases, a mixed order load that remembers what
//! the clients saw acknowledged, and the consistency checks run after every
//! fault (`oms-cli doctor`, the stock invariant, acknowledged orders).
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod load;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// The `oms-cli` binary under test, without inherited settings.
pub fn oms_cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oms-cli"));
    cmd.env_remove("RUST_LOG").env_remove("OMS_CONFIG");
    cmd
}

/// A running `oms-cli serve` process, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Sends SIGKILL and reaps the process.
    pub fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Waits up to `limit` for the process to exit; `None` if it is still
    /// running then.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

/// Starts `oms-cli serve` on a free loopback port, on `url`, in `dir`,
/// with extra `OMS_*` settings in `env`. Unless `env` sets
/// `OMS_AUDIT__SPILL_DIR`, each process gets its own spill directory in
/// `dir`. Returns once the server listens.
pub fn spawn(url: &str, dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut cmd = oms_cli();
    cmd.args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--database-url",
        url,
    ]);
    if !env.iter().any(|(k, _)| *k == "OMS_AUDIT__SPILL_DIR") {
        cmd.env(
            "OMS_AUDIT__SPILL_DIR",
            dir.join(format!("spill-{}", uuid::Uuid::now_v7().simple())),
        );
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = cmd
        .current_dir(dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn oms-cli serve");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("listening on ") {
                let addr = rest.rsplit("://").next().unwrap_or(rest).trim().to_owned();
                let _ = tx.send(addr);
            }
            if let Ok(mut log) = sink.lock() {
                log.push(line);
            }
        }
    });
    let mut server = Server {
        child,
        base: String::new(),
        log,
    };
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => server.base = format!("http://{addr}"),
        Err(_) => panic!("server did not start:\n{}", server.log()),
    }
    server
}

#[path = "../../../tests/common/backend.rs"]
mod backend;

// Not every test binary uses both.
#[allow(unused_imports)]
pub use backend::{Backend, backends};

/// A database made for one test, with a scratch directory; a PostgreSQL
/// database is dropped by [`drop_db`](Self::drop_db).
pub struct FreshDb {
    pub url: String,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl FreshDb {
    /// A new empty database on `backend` (PostgreSQL needs
    /// `OMS_TEST_POSTGRES_URL`).
    pub async fn new(backend: Backend) -> FreshDb {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => FreshDb {
                url: format!("sqlite://{}?mode=rwc", dir.path().join("oms.db").display()),
                backend,
                dir,
                pg: None,
            },
            Backend::Postgres => {
                let admin = std::env::var("OMS_TEST_POSTGRES_URL").expect("OMS_TEST_POSTGRES_URL");
                let name = format!("oms_t_{}", uuid::Uuid::now_v7().simple());
                let conn = sea_orm::Database::connect(&admin)
                    .await
                    .expect("connect admin");
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create database");
                conn.close().await.ok();
                // Keep the admin URL's query (e.g. sslmode) for the test database.
                let (path, query) = admin.split_once('?').unwrap_or((admin.as_str(), ""));
                let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{query}")
                };
                FreshDb {
                    url: format!("{base}/{name}{query}"),
                    backend,
                    dir,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    /// A new PostgreSQL database, or `None` (with a SKIPPED line) when
    /// `OMS_TEST_POSTGRES_URL` is unset.
    pub async fn postgres(test: &str) -> Option<FreshDb> {
        if std::env::var("OMS_TEST_POSTGRES_URL").is_err() {
            eprintln!("SKIPPED (PostgreSQL): {test}: OMS_TEST_POSTGRES_URL is not set");
            return None;
        }
        Some(Self::new(Backend::Postgres).await)
    }

    /// A sea-orm connection of its own (not the server's pool).
    pub async fn connect(&self) -> DatabaseConnection {
        sea_orm::Database::connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    /// Drops the PostgreSQL database (a SQLite file goes with `dir`).
    pub async fn drop_db(&self) {
        if let Some((admin, name)) = &self.pg
            && let Ok(conn) = sea_orm::Database::connect(admin).await
        {
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
            conn.close().await.ok();
        }
    }

    /// Runs `oms-cli doctor` on this database and asserts it finds the
    /// database consistent (exit 0), with its output in the failure.
    pub fn assert_doctor_clean(&self, after: &str) {
        assert_doctor_clean(&self.url, after);
    }
}

/// Runs `oms-cli doctor --database-url url`; panics with its output unless
/// it exits 0 (consistent). `after` names the scenario.
pub fn assert_doctor_clean(url: &str, after: &str) {
    let out = oms_cli()
        .args(["doctor", "--database-url", url])
        .output()
        .expect("run oms-cli doctor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "oms-cli doctor after {after}: {} (2 = violations found, 1 = error):\n{text}",
        out.status
    );
    eprintln!("doctor after {after}: consistent");
}

/// Products whose stock breaks `stock_in = available + reserved + shipped`
/// or has a negative counter, as `sku: in=.. available=.. ...` lines.
pub async fn stock_violations(conn: &DatabaseConnection) -> Vec<String> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT sku, stock_in, available, reserved, shipped FROM products \
             WHERE stock_in <> available + reserved + shipped \
             OR available < 0 OR reserved < 0 OR shipped < 0",
        ))
        .await
        .expect("stock query");
    rows.iter()
        .map(|row| {
            let get = |c: &str| row.try_get::<i64>("", c).expect("stock column");
            format!(
                "{}: in={} available={} reserved={} shipped={}",
                row.try_get::<String>("", "sku").expect("sku"),
                get("stock_in"),
                get("available"),
                get("reserved"),
                get("shipped")
            )
        })
        .collect()
}

/// A single number from `sql`, as `i64`.
pub async fn count(conn: &DatabaseConnection, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("count query")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("a number")
}

/// Audit rows whose request id starts with `prefix`.
pub async fn audit_rows(conn: &DatabaseConnection, prefix: &str) -> i64 {
    count(
        conn,
        &format!(
            "SELECT COUNT(DISTINCT request_id) FROM audit_events WHERE request_id LIKE '{prefix}%'"
        ),
    )
    .await
}

/// Polls until `audit_rows(prefix)` reaches `expected` or `limit` passes;
/// returns the last count seen.
pub async fn wait_audit(
    conn: &DatabaseConnection,
    prefix: &str,
    expected: i64,
    limit: Duration,
) -> i64 {
    let deadline = Instant::now() + limit;
    loop {
        let seen = audit_rows(conn, prefix).await;
        if seen >= expected || Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A path inside the test's scratch directory, as text.
pub fn path_str(path: PathBuf) -> String {
    path.display().to_string()
}

/// Orders missing their items or their `created` event (half-written).
pub async fn half_written(conn: &DatabaseConnection) -> i64 {
    count(
        conn,
        "SELECT COUNT(*) FROM orders o WHERE \
         NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id) \
         OR NOT EXISTS (SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.type = 'created')",
    )
    .await
}

/// Products whose `reserved` / `shipped` differ from the quantities of
/// their open / shipped orders.
pub async fn reservation_mismatches(conn: &DatabaseConnection) -> Vec<String> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT p.sku, p.reserved, p.shipped, \
             CAST(COALESCE((SELECT SUM(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id \
               WHERE i.sku = p.sku AND o.status IN ('pending', 'confirmed')), 0) AS BIGINT) AS held, \
             CAST(COALESCE((SELECT SUM(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id \
               WHERE i.sku = p.sku AND o.status IN ('shipped', 'delivered')), 0) AS BIGINT) AS sent \
             FROM products p",
        ))
        .await
        .expect("reservation query");
    rows.iter()
        .filter_map(|row| {
            let get = |c: &str| row.try_get::<i64>("", c).expect("number");
            let (reserved, shipped, held, sent) =
                (get("reserved"), get("shipped"), get("held"), get("sent"));
            (reserved != held || shipped != sent).then(|| {
                format!(
                    "{}: reserved={reserved} but open orders hold {held}; shipped={shipped} but orders shipped {sent}",
                    row.try_get::<String>("", "sku").expect("sku")
                )
            })
        })
        .collect()
}

/// Asserts the database behind `db` is consistent after `after`: the stock
/// invariant for every product, reservations matching orders, no
/// half-written order, and `oms-cli doctor` exits 0.
pub async fn assert_consistent(db: &FreshDb, after: &str) {
    let conn = db.connect().await;
    let stock = stock_violations(&conn).await;
    assert!(
        stock.is_empty(),
        "stock invariant broken after {after}:\n{}",
        stock.join("\n")
    );
    let reservations = reservation_mismatches(&conn).await;
    assert!(
        reservations.is_empty(),
        "reservations differ from orders after {after}:\n{}",
        reservations.join("\n")
    );
    assert_eq!(
        half_written(&conn).await,
        0,
        "half-written orders after {after}"
    );
    conn.close().await.ok();
    db.assert_doctor_clean(after);
}

/// Request ids starting with `prefix` present in `audit_events`.
pub async fn audit_ids(
    conn: &DatabaseConnection,
    prefix: &str,
) -> std::collections::HashSet<String> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT request_id FROM audit_events WHERE request_id LIKE '{prefix}%'"),
        ))
        .await
        .expect("audit query");
    rows.iter()
        .map(|row| row.try_get::<String>("", "request_id").expect("request_id"))
        .collect()
}

/// A lock held from a connection of its own, so that the server's
/// statements on `products` block while holding their pooled connections:
/// PostgreSQL `LOCK TABLE products IN ACCESS EXCLUSIVE MODE`, SQLite
/// `BEGIN EXCLUSIVE` on the same file (writers wait for it).
pub struct TableLock {
    conn: DatabaseConnection,
}

impl TableLock {
    pub async fn hold(db: &FreshDb) -> TableLock {
        let mut opts = sea_orm::ConnectOptions::new(db.url.clone());
        opts.max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        let conn = sea_orm::Database::connect(opts)
            .await
            .expect("lock connection");
        let sql = match db.backend {
            Backend::Postgres => "BEGIN; LOCK TABLE products IN ACCESS EXCLUSIVE MODE",
            Backend::Sqlite => "BEGIN EXCLUSIVE",
        };
        conn.execute_unprepared(sql).await.expect("take the lock");
        TableLock { conn }
    }

    pub async fn release(self) {
        self.conn
            .execute_unprepared("ROLLBACK")
            .await
            .expect("release the lock");
        self.conn.close().await.ok();
    }
}
