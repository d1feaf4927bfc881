//! Drops the `actor` and `status` indexes of `audit_events`.
//!
//! Every audited request inserts one row, so each secondary index of
//! `audit_events` is a B-tree insert on the request path's budget (the
//! `database` sink shares the CPU with the server). The read side keeps
//! what keyset pagination needs: the primary key `id` (idempotent inserts)
//! and `idx_audit_at (at, id)` (newest-first pages). A filter on `actor`,
//! `method` or `status` walks `idx_audit_at` newest first and stops after
//! `limit + 1` matches: cheap for the common case of recent, frequent
//! matches, a longer scan for rare ones (an admin query, not a hot path).

use sea_orm_migration::prelude::*;

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000002_audit_filter_indexes"
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Actor,
    Status,
    At,
}

const DROPPED: [&str; 2] = ["idx_audit_actor", "idx_audit_status"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in DROPPED {
            m.drop_index(
                Index::drop()
                    .if_exists()
                    .name(name)
                    .table(AuditEvents::Table)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, first) in [
            (DROPPED[0], AuditEvents::Actor),
            (DROPPED[1], AuditEvents::Status),
        ] {
            m.create_index(
                Index::create()
                    .if_not_exists()
                    .name(name)
                    .table(AuditEvents::Table)
                    .col(first)
                    .col(AuditEvents::At)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
