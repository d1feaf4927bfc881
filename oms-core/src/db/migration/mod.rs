//! Schema migrations (sea-orm-migration), one file each, applied in order.
//!
//! Run at start-up when `database.migrate_on_start` is true, and by
//! `oms-cli migrate`. Each migration uses `IF NOT EXISTS`, so several
//! processes starting at once on one PostgreSQL converge on the same schema.
//!
//! Timestamps are stored as `BIGINT` milliseconds since the Unix epoch (UTC)
//! on both databases: exact, portable and cheap to compare and index.

mod m20261128_000001_initial;
mod m20261128_000002_audit_filter_indexes;

use sea_orm_migration::prelude::*;

/// The ordered list of OMS migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_initial::Migration),
            Box::new(m20261128_000002_audit_filter_indexes::Migration),
        ]
    }
}

/// Applies every pending migration.
///
/// # Errors
/// The database error of the first migration that fails.
pub async fn migrate(conn: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    Migrator::up(conn, None).await
}
