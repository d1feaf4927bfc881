//! Shared fixtures for the HTTP integration tests: a real server on a
//! loopback port, on SQLite (always) and PostgreSQL (when
//! `OMS_TEST_POSTGRES_URL` is set).
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod api;

use std::net::SocketAddr;
use std::time::Duration;

use oms::core::Oms;
use oms::core::config::Config;
use salvo::Listener;
use salvo::conn::{Acceptor, TcpListener};
use salvo::server::ServerHandle;
use sea_orm::ConnectionTrait;

mod backend;

// Not every test binary uses both.
#[allow(unused_imports)]
pub use backend::{Backend, backends};

/// A database made for one test and removed afterwards.
pub struct TestDb {
    pub url: String,
    /// Scratch space for this test (SQLite file, audit spill files).
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("oms.db").display());
                TestDb { url, dir, pg: None }
            }
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
                let (path, query) = admin
                    .split_once('?')
                    .map_or((admin.as_str(), ""), |(p, q)| (p, q));
                let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{query}")
                };
                TestDb {
                    url: format!("{base}/{name}{query}"),
                    dir: tempfile::tempdir().expect("tempdir"),
                    pg: Some((admin, name)),
                }
            }
        }
    }

    /// Drops a PostgreSQL test database (SQLite's tempdir goes by itself).
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
}

/// A config for tests: the given database, a small pool, quiet audit.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::default();
    config.database.url = Some(db.url.clone());
    config.audit.spill_dir = Some(db.dir.path().join("audit-spill"));
    config.database.min_connections = 1;
    config.database.max_connections = 8;
    // Generous: a loaded CI machine must not turn pool waits into 503s.
    config.database.acquire_timeout_ms = 30_000;
    config.server.workers = 2;
    config
}

/// A server running in this process on an ephemeral loopback port.
pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub oms: Oms,
    pub db: TestDb,
    handle: ServerHandle,
    join: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_full(backend, tweak, None).await
    }

    /// Like [`start_with`](Self::start_with), with `extra` routes (e.g. a
    /// deliberately slow one) served under the same service-wide hoops.
    pub async fn start_full(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        extra: Option<salvo::Router>,
    ) -> TestServer {
        let db = TestDb::new(backend).await;
        let mut config = test_config(&db);
        tweak(&mut config);
        let oms = Oms::builder()
            .config(config)
            .build()
            .await
            .expect("build oms");
        let acceptor = TcpListener::new("127.0.0.1:0").bind().await;
        let addr = acceptor
            .holdings()
            .first()
            .and_then(|h| h.local_addr.clone().into_std())
            .expect("bound address");
        let server = oms::core::http::server(acceptor, &oms.config().server);
        let handle = server.handle();
        let service = match extra {
            Some(extra) => oms.service_with(extra),
            None => oms.service(),
        };
        let join = tokio::spawn(async move { server.serve(service).await });
        TestServer {
            base: format!("http://{addr}"),
            addr,
            oms,
            db,
            handle,
            join,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Graceful stop: drain, flush plugins, drop the test database.
    pub async fn stop(self) {
        self.stop_keep_db().await.drop_db().await;
    }

    /// Graceful stop that keeps the database for inspection; call
    /// `drop_db` on the result when done.
    pub async fn stop_keep_db(self) -> TestDb {
        self.handle.stop_graceful(Some(Duration::from_secs(5)));
        let _ = self.join.await;
        self.oms.shutdown().await;
        self.db
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}
