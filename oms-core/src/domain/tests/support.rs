//! Test fixtures: a tiny [`ConnectionPool`] over `sea_orm::Database::connect`
//! (a semaphore permit is the lease), one database per test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseBackend, DatabaseConnection};
use tokio::sync::Semaphore;

use crate::config::OrdersConfig;
use crate::db::{ConnectionPool, Database, PoolError, PoolStats, PooledConnection};
use crate::domain::sql;
use crate::domain::{NewOrder, NewOrderItem, NewProduct, OrderService, Product};

pub(crate) struct TestPool {
    conn: DatabaseConnection,
    permits: Arc<Semaphore>,
}

#[async_trait]
impl ConnectionPool for TestPool {
    fn name(&self) -> &str {
        "test"
    }

    fn backend(&self) -> DatabaseBackend {
        self.conn.get_database_backend()
    }

    async fn acquire(&self) -> Result<PooledConnection, PoolError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Closed)?;
        Ok(PooledConnection::new(self.conn.clone(), permit))
    }

    fn stats(&self) -> PoolStats {
        PoolStats::default()
    }

    async fn ping(&self) -> Result<(), PoolError> {
        Ok(self.conn.ping().await?)
    }

    async fn close(&self) {}
}

/// One test database with a service on it.
pub(crate) struct TestDb {
    pub(crate) name: &'static str,
    pub(crate) svc: OrderService,
    pub(crate) conn: DatabaseConnection,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

async fn connect(url: &str, max: u32) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max)
        .min_connections(1)
        .sqlx_logging(false);
    sea_orm::Database::connect(options).await.expect("connect")
}

fn service(conn: &DatabaseConnection, permits: usize, config: &OrdersConfig) -> OrderService {
    let pool = TestPool {
        conn: conn.clone(),
        permits: Arc::new(Semaphore::new(permits)),
    };
    OrderService::new(Database::new(Arc::new(pool), 20), config)
}

impl TestDb {
    pub(crate) async fn sqlite() -> TestDb {
        Self::sqlite_with(&OrdersConfig::default()).await
    }

    pub(crate) async fn sqlite_with(config: &OrdersConfig) -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("oms.db");
        let conn = connect(&format!("sqlite://{}?mode=rwc", path.display()), 8).await;
        conn.execute_unprepared("PRAGMA journal_mode=WAL")
            .await
            .expect("wal");
        crate::db::migration::migrate(&conn).await.expect("migrate");
        TestDb {
            name: "sqlite",
            svc: service(&conn, 8, config),
            conn,
            _dir: Some(dir),
            pg: None,
        }
    }

    pub(crate) async fn postgres_with(config: &OrdersConfig) -> Option<TestDb> {
        let Ok(admin_url) = std::env::var("OMS_TEST_POSTGRES_URL") else {
            eprintln!("OMS_TEST_POSTGRES_URL not set: skipping the PostgreSQL run");
            return None;
        };
        let name = format!(
            "oms_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let admin = connect(&admin_url, 1).await;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        admin.close().await.expect("close admin");
        let base = admin_url.split('?').next().unwrap_or(&admin_url);
        let cut = base.rfind('/').expect("url with a database path");
        let url = format!("{}/{name}", &base[..cut]);
        eprintln!("running on PostgreSQL database {name}");
        let conn = connect(&url, 10).await;
        crate::db::migration::migrate(&conn).await.expect("migrate");
        Some(TestDb {
            name: "postgres",
            svc: service(&conn, 10, config),
            conn,
            _dir: None,
            pg: Some((admin_url, name)),
        })
    }

    /// SQLite, plus PostgreSQL when configured.
    pub(crate) async fn all() -> Vec<TestDb> {
        Self::all_with(&OrdersConfig::default()).await
    }

    pub(crate) async fn all_with(config: &OrdersConfig) -> Vec<TestDb> {
        let mut dbs = vec![Self::sqlite_with(config).await];
        dbs.extend(Self::postgres_with(config).await);
        dbs
    }

    /// Drops the PostgreSQL database (SQLite's goes with its tempdir).
    pub(crate) async fn finish(self) {
        let _ = self.conn.close().await;
        if let Some((admin_url, name)) = self.pg {
            let admin = connect(&admin_url, 1).await;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .expect("drop database");
            let _ = admin.close().await;
        }
    }

    pub(crate) async fn product(
        &self,
        sku: &str,
        price: i64,
        currency: &str,
        available: i64,
    ) -> Product {
        self.svc
            .create_product(NewProduct {
                sku: sku.into(),
                name: format!("Product {sku}"),
                price_minor: price,
                currency: currency.into(),
                available: Some(available),
            })
            .await
            .expect("create product")
    }

    /// `(available, reserved, shipped, stock_in, version)` of `sku`.
    pub(crate) async fn stock(&self, sku: &str) -> (i64, i64, i64, i64, i64) {
        let row = sql::one(
            &self.conn,
            "SELECT available, reserved, shipped, stock_in, version FROM products WHERE sku = ?",
            vec![sku.into()],
        )
        .await
        .expect("query")
        .expect("product");
        (
            row.try_get("", "available").unwrap(),
            row.try_get("", "reserved").unwrap(),
            row.try_get("", "shipped").unwrap(),
            row.try_get("", "stock_in").unwrap(),
            row.try_get("", "version").unwrap(),
        )
    }

    pub(crate) async fn count(&self, table: &str) -> i64 {
        let row = sql::one(
            &self.conn,
            &format!("SELECT COUNT(*) AS n FROM {table}"),
            vec![],
        )
        .await
        .expect("count")
        .expect("row");
        row.try_get("", "n").unwrap()
    }
}

pub(crate) fn order(customer: &str, currency: &str, items: &[(&str, i64)]) -> NewOrder {
    NewOrder {
        customer_id: customer.into(),
        currency: currency.into(),
        items: items
            .iter()
            .map(|(sku, quantity)| NewOrderItem {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
        note: None,
    }
}
