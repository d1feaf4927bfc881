//! The initial schema: catalog, orders, events, idempotency keys, audit.
//!
//! Indexes, and the query each one serves:
//! - `products` primary key `sku`: product reads, keyset list by sku, stock
//!   decrements.
//! - `orders` primary key `id` (UUID v7, time-ordered): order reads and the
//!   unfiltered newest-first list (`ORDER BY id DESC`).
//! - `idx_orders_customer (customer_id, id)`: `GET /v1/orders?customer_id=`.
//! - `idx_orders_status (status, id)`: `GET /v1/orders?status=`.
//! - `order_items` primary key `(order_id, line_no)`: items of one or many
//!   orders in one statement (`WHERE order_id IN (...)`).
//! - `order_events` primary key `(order_id, seq)`: an order's history, oldest
//!   first, keyset by `seq`.
//! - `idempotency_keys` primary key `(scope, idem_key)`: the unique claim of
//!   a key per caller (its `claim_id` names the request holding it, so that
//!   only that request stores the outcome); `idx_idempotency_expires
//!   (expires_at)`: purging.
//! - `audit_events` primary key `id` (UUID v7); `idx_audit_at (at, id)`:
//!   newest-first keyset pages; `idx_audit_actor (actor, at)` and
//!   `idx_audit_status (status, at)`: the `actor` and `status` filters.

use sea_orm_migration::prelude::*;

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000001_initial"
    }
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Sku,
    Name,
    PriceMinor,
    Currency,
    Available,
    Reserved,
    Shipped,
    StockIn,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    CustomerId,
    Status,
    Currency,
    TotalMinor,
    Note,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrderItems {
    Table,
    OrderId,
    LineNo,
    Sku,
    Quantity,
    UnitPriceMinor,
    LineTotalMinor,
}

#[derive(DeriveIden)]
enum OrderEvents {
    Table,
    OrderId,
    Seq,
    Type,
    Actor,
    Reason,
    At,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    IdemKey,
    RequestHash,
    Status,
    Response,
    CreatedAt,
    ExpiresAt,
    ClaimId,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    RequestId,
    Actor,
    Method,
    Route,
    Path,
    Status,
    DurationUs,
    DbUs,
    ClientIp,
    UserAgent,
    RequestBytes,
    ResponseBytes,
}

fn col(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Products::Table)
                .if_not_exists()
                .col(col(Products::Sku).string_len(64).primary_key())
                .col(col(Products::Name).string_len(200))
                .col(col(Products::PriceMinor).big_integer())
                .col(col(Products::Currency).string_len(3))
                .col(col(Products::Available).big_integer())
                .col(col(Products::Reserved).big_integer())
                .col(col(Products::Shipped).big_integer())
                .col(col(Products::StockIn).big_integer())
                .col(col(Products::Version).big_integer())
                .col(col(Products::CreatedAt).big_integer())
                .col(col(Products::UpdatedAt).big_integer())
                .check(Expr::col(Products::Available).gte(0))
                .check(Expr::col(Products::Reserved).gte(0))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Orders::Table)
                .if_not_exists()
                .col(col(Orders::Id).uuid().primary_key())
                .col(col(Orders::CustomerId).string_len(64))
                .col(col(Orders::Status).string_len(16))
                .col(col(Orders::Currency).string_len(3))
                .col(col(Orders::TotalMinor).big_integer())
                .col(ColumnDef::new(Orders::Note).text().null())
                .col(col(Orders::Version).big_integer())
                .col(col(Orders::CreatedAt).big_integer())
                .col(col(Orders::UpdatedAt).big_integer())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("idx_orders_customer")
                .table(Orders::Table)
                .col(Orders::CustomerId)
                .col(Orders::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("idx_orders_status")
                .table(Orders::Table)
                .col(Orders::Status)
                .col(Orders::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OrderItems::Table)
                .if_not_exists()
                .col(col(OrderItems::OrderId).uuid())
                .col(col(OrderItems::LineNo).integer())
                .col(col(OrderItems::Sku).string_len(64))
                .col(col(OrderItems::Quantity).big_integer())
                .col(col(OrderItems::UnitPriceMinor).big_integer())
                .col(col(OrderItems::LineTotalMinor).big_integer())
                .primary_key(
                    Index::create()
                        .col(OrderItems::OrderId)
                        .col(OrderItems::LineNo),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(OrderItems::Table, OrderItems::OrderId)
                        .to(Orders::Table, Orders::Id),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OrderEvents::Table)
                .if_not_exists()
                .col(col(OrderEvents::OrderId).uuid())
                .col(col(OrderEvents::Seq).integer())
                .col(col(OrderEvents::Type).string_len(16))
                .col(col(OrderEvents::Actor).string_len(64))
                .col(ColumnDef::new(OrderEvents::Reason).text().null())
                .col(col(OrderEvents::At).big_integer())
                .primary_key(
                    Index::create()
                        .col(OrderEvents::OrderId)
                        .col(OrderEvents::Seq),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(OrderEvents::Table, OrderEvents::OrderId)
                        .to(Orders::Table, Orders::Id),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .if_not_exists()
                .col(col(IdempotencyKeys::Scope).string_len(64))
                .col(col(IdempotencyKeys::IdemKey).string_len(255))
                .col(col(IdempotencyKeys::RequestHash).string_len(64))
                .col(ColumnDef::new(IdempotencyKeys::Status).integer().null())
                .col(ColumnDef::new(IdempotencyKeys::Response).text().null())
                .col(col(IdempotencyKeys::CreatedAt).big_integer())
                .col(col(IdempotencyKeys::ExpiresAt).big_integer())
                .col(col(IdempotencyKeys::ClaimId).string_len(36))
                .primary_key(
                    Index::create()
                        .col(IdempotencyKeys::Scope)
                        .col(IdempotencyKeys::IdemKey),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("idx_idempotency_expires")
                .table(IdempotencyKeys::Table)
                .col(IdempotencyKeys::ExpiresAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .if_not_exists()
                .col(col(AuditEvents::Id).uuid().primary_key())
                .col(col(AuditEvents::At).big_integer())
                .col(col(AuditEvents::RequestId).string_len(128))
                .col(col(AuditEvents::Actor).string_len(64))
                .col(col(AuditEvents::Method).string_len(16))
                .col(col(AuditEvents::Route).string_len(256))
                .col(col(AuditEvents::Path).string_len(2048))
                .col(col(AuditEvents::Status).integer())
                .col(col(AuditEvents::DurationUs).big_integer())
                .col(col(AuditEvents::DbUs).big_integer())
                .col(col(AuditEvents::ClientIp).string_len(64))
                .col(col(AuditEvents::UserAgent).string_len(256))
                .col(col(AuditEvents::RequestBytes).big_integer())
                .col(col(AuditEvents::ResponseBytes).big_integer())
                .to_owned(),
        )
        .await?;
        for (name, first) in [
            ("idx_audit_at", AuditEvents::At),
            ("idx_audit_actor", AuditEvents::Actor),
            ("idx_audit_status", AuditEvents::Status),
        ] {
            let mut index = Index::create();
            index
                .if_not_exists()
                .name(name)
                .table(AuditEvents::Table)
                .col(first);
            if name == "idx_audit_at" {
                index.col(AuditEvents::Id);
            } else {
                index.col(AuditEvents::At);
            }
            m.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvents::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            OrderEvents::Table.into_iden(),
            OrderItems::Table.into_iden(),
            Orders::Table.into_iden(),
            Products::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
