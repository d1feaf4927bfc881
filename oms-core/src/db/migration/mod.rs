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
mod m20261128_000003_audit_clustered;
mod m20261129_000004_audit_key_postgres;

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
            Box::new(m20261128_000003_audit_clustered::Migration),
            Box::new(m20261129_000004_audit_key_postgres::Migration),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

    use super::*;

    async fn one_i64(conn: &DatabaseConnection, sql: &str) -> i64 {
        let row = conn
            .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index(0).unwrap()
    }

    async fn clustered(conn: &DatabaseConnection) -> i64 {
        one_i64(
            conn,
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'audit_events' AND sql LIKE '%WITHOUT ROWID%'",
        )
        .await
    }

    /// An existing SQLite database keeps its audit rows through the rebuild
    /// of `audit_events` (000003), up and down.
    #[tokio::test]
    async fn the_audit_table_is_rebuilt_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
        let conn = Database::connect(url).await.unwrap();
        Migrator::up(&conn, Some(2)).await.unwrap();
        conn.execute_unprepared(
            "INSERT INTO audit_events VALUES \
             (x'0192f8a07c1e7d2a9c3b5e6f7a8b9c0d', 1795874400000, 'r1', 'ops', 'GET', '/health', '/health', 200, 10, 0, '127.0.0.1', 'ua', 0, 15), \
             (x'0192f8a07c1e7d2a9c3b5e6f7a8b9c0e', 1795874400001, 'r2', 'ops', 'POST', '/v1/orders', '/v1/orders', 201, 90, 40, '127.0.0.1', 'ua', 120, 400)",
        )
        .await
        .unwrap();
        assert_eq!(clustered(&conn).await, 0);

        Migrator::up(&conn, None).await.unwrap();
        assert_eq!(clustered(&conn).await, 1);
        assert_eq!(one_i64(&conn, "SELECT COUNT(*) FROM audit_events").await, 2);
        assert_eq!(
            one_i64(
                &conn,
                "SELECT response_bytes FROM audit_events WHERE request_id = 'r2'"
            )
            .await,
            400
        );

        // 000004 is PostgreSQL's; 000003 is the one to undo here.
        Migrator::down(&conn, Some(2)).await.unwrap();
        assert_eq!(clustered(&conn).await, 0);
        assert_eq!(one_i64(&conn, "SELECT COUNT(*) FROM audit_events").await, 2);
        assert_eq!(
            one_i64(
                &conn,
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_audit_at'"
            )
            .await,
            1
        );
    }

    /// PostgreSQL's `audit_events` is keyed by `(at, id)` after 000004 and
    /// back by `id` with `idx_audit_at` after its down, rows kept.
    #[tokio::test]
    async fn the_postgres_audit_key_moves_to_at_id_and_back() {
        let Some(db) =
            crate::domain::tests::support::TestDb::postgres_with(&Default::default()).await
        else {
            return;
        };
        let conn = db.conn.clone();
        let key_columns = "SELECT i.indnatts::bigint FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                           WHERE c.relname = 'audit_events' AND i.indisprimary";
        let at_index = "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'idx_audit_at'";
        assert_eq!(one_i64(&conn, key_columns).await, 2);
        assert_eq!(one_i64(&conn, at_index).await, 0);
        conn.execute_unprepared(
            "INSERT INTO audit_events VALUES \
             ('0192f8a0-7c1e-7d2a-9c3b-5e6f7a8b9c0d', 1795874400000, 'r1', 'ops', 'GET', '/health', '/health', 200, 10, 0, '127.0.0.1', 'ua', 0, 15)",
        )
        .await
        .unwrap();

        Migrator::down(&conn, Some(1)).await.unwrap();
        assert_eq!(one_i64(&conn, key_columns).await, 1);
        assert_eq!(one_i64(&conn, at_index).await, 1);
        Migrator::up(&conn, None).await.unwrap();
        assert_eq!(one_i64(&conn, key_columns).await, 2);
        assert_eq!(one_i64(&conn, at_index).await, 0);
        assert_eq!(one_i64(&conn, "SELECT COUNT(*) FROM audit_events").await, 1);
        db.finish().await;
    }
}
