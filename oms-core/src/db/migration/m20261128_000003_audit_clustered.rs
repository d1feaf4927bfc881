//! On SQLite, stores `audit_events` clustered by `(at, id)`: a
//! `WITHOUT ROWID` table whose primary key is the newest-first page order.
//!
//! Every audited request inserts one row. As a rowid table with a primary
//! key on `id` and the index `idx_audit_at (at, id)`, each row was three
//! B-tree inserts (the table, the key, the index); clustered it is one,
//! and pages walk the table itself. `(at, id)` is as unique as `id` (the
//! id is a UUID v7 drawn with the arrival time), so re-inserting a stored
//! event is still a no-op (`ON CONFLICT DO NOTHING`).
//!
//! The rebuild (create, copy, drop, rename) runs in one transaction with
//! the migration's record, so a crash leaves either the old table or the
//! new one. PostgreSQL keeps its heap table; migration 000004 gives it the
//! same `(at, id)` key.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000003_audit_clustered"
    }
}

/// The audit columns, in table order.
const COLUMNS: &str = "id, at, request_id, actor, method, route, path, status, duration_us, \
db_us, client_ip, user_agent, request_bytes, response_bytes";

/// The column definitions of migration 000001, then the table's key.
fn create(table: &str, key: &str, options: &str) -> String {
    format!(
        "CREATE TABLE {table} (id uuid_text NOT NULL, at integer NOT NULL, \
request_id varchar(128) NOT NULL, actor varchar(64) NOT NULL, method varchar(16) NOT NULL, \
route varchar(256) NOT NULL, path varchar(2048) NOT NULL, status integer NOT NULL, \
duration_us integer NOT NULL, db_us integer NOT NULL, client_ip varchar(64) NOT NULL, \
user_agent varchar(256) NOT NULL, request_bytes integer NOT NULL, response_bytes integer NOT NULL, \
{key}){options}"
    )
}

/// Replaces `audit_events` by `new_table` (created by `create_sql`), rows
/// and all; `after` runs last (indexes).
async fn rebuild(m: &SchemaManager<'_>, create_sql: String, after: &str) -> Result<(), DbErr> {
    m.get_connection()
        .execute_unprepared(&format!(
            "{create_sql}; \
             INSERT INTO audit_events_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM audit_events; \
             DROP TABLE audit_events; \
             ALTER TABLE audit_events_rebuilt RENAME TO audit_events; {after}"
        ))
        .await
        .map(drop)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
            return Ok(());
        }
        let sql = create(
            "audit_events_rebuilt",
            "PRIMARY KEY (at, id)",
            " WITHOUT ROWID",
        );
        rebuild(m, sql, "").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
            return Ok(());
        }
        let sql = create("audit_events_rebuilt", "PRIMARY KEY (id)", "");
        rebuild(
            m,
            sql,
            "CREATE INDEX IF NOT EXISTS idx_audit_at ON audit_events (at, id);",
        )
        .await
    }
}
