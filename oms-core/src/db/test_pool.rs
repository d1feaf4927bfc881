//! The smallest pool for unit tests: one sea-orm connection handle, no
//! lease accounting.

use async_trait::async_trait;
use sea_orm::{DatabaseBackend, DatabaseConnection};

use super::{ConnectionPool, PoolError, PoolStats, PooledConnection};

/// Every lease shares the one handle (sea-orm's own pool behind it).
pub(crate) struct TestPool(pub(crate) DatabaseConnection);

#[async_trait]
impl ConnectionPool for TestPool {
    fn name(&self) -> &str {
        "test"
    }
    fn backend(&self) -> DatabaseBackend {
        self.0.get_database_backend()
    }
    async fn acquire(&self) -> Result<PooledConnection, PoolError> {
        Ok(PooledConnection::new(self.0.clone(), ()))
    }
    fn stats(&self) -> PoolStats {
        PoolStats::default()
    }
    async fn ping(&self) -> Result<(), PoolError> {
        Ok(())
    }
    async fn close(&self) {}
}
