//! On PostgreSQL, keys `audit_events` by `(at, id)`: the primary key
//! becomes the newest-first page order and `idx_audit_at` goes.
//!
//! Every audited request inserts one row. With the primary key `id` and
//! the index `idx_audit_at (at, id)` each row was two B-tree inserts; a
//! fifth of what a row costs PostgreSQL was the second one (BENCHMARKS.md,
//! "Audit rows on PostgreSQL"). `(at, id)` is as unique as `id` (the id is
//! a UUID v7 drawn with the arrival time, and an event never changes), so
//! re-inserting a stored event is still a no-op (`ON CONFLICT DO
//! NOTHING`); nothing reads an audit row by `id` alone. SQLite got the same
//! key in migration 000003 (a clustered table).
//!
//! Rebuilding the key locks the table while it indexes the existing rows.
//! Both steps are idempotent, so processes migrating at once converge.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000004_audit_key_postgres"
    }
}

/// On PostgreSQL, makes `columns` (`arity` of them) the primary key of
/// `audit_events` unless it already is, then runs `index_sql` (dropping or
/// restoring `idx_audit_at`); elsewhere nothing.
async fn rekey(
    m: &SchemaManager<'_>,
    columns: &str,
    arity: u8,
    index_sql: &str,
) -> Result<(), DbErr> {
    if m.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    let conn = m.get_connection();
    conn.execute_unprepared(&format!(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             WHERE c.relname = 'audit_events' AND i.indisprimary AND i.indnatts = {arity}) THEN \
             ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS audit_events_pkey; \
             ALTER TABLE audit_events ADD CONSTRAINT audit_events_pkey PRIMARY KEY ({columns}); \
           END IF; \
         END $$"
    ))
    .await?;
    conn.execute_unprepared(index_sql).await.map(drop)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        rekey(m, "at, id", 2, "DROP INDEX IF EXISTS idx_audit_at").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        rekey(
            m,
            "id",
            1,
            "CREATE INDEX IF NOT EXISTS idx_audit_at ON audit_events (at, id)",
        )
        .await
    }
}
