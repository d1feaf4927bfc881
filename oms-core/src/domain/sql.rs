//! Small SQL helpers: one SQL text for both backends, write transactions,
//! and row decoding.

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, QueryResult,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};
use uuid::Uuid;

use super::DomainError;
use super::order::{Order, OrderEvent, OrderItem};
use super::product::Product;
use super::time::from_ms;

/// Builds a statement from SQL written with `?` placeholders, renumbered
/// to `$1, $2, ...` for PostgreSQL ([`crate::db::numbered`]).
pub(crate) fn stmt(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(backend, crate::db::numbered(backend, sql), values)
}

pub(crate) use crate::db::placeholders;

/// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which
/// takes the write lock up front (waiting in the busy handler), so that two
/// transactions never deadlock upgrading read locks to write locks.
pub(crate) async fn begin_write(conn: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match conn.get_database_backend() {
        DatabaseBackend::Sqlite => {
            conn.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
        }
        _ => conn.begin().await,
    }
}

/// Runs a query and returns all rows.
pub(crate) async fn all<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DomainError> {
    let backend = conn.get_database_backend();
    Ok(conn.query_all_raw(stmt(backend, sql, values)).await?)
}

/// Runs a query and returns the first row, if any.
pub(crate) async fn one<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<QueryResult>, DomainError> {
    let backend = conn.get_database_backend();
    Ok(conn.query_one_raw(stmt(backend, sql, values)).await?)
}

/// Runs a statement and returns the rows it affected.
pub(crate) async fn exec<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, DomainError> {
    let backend = conn.get_database_backend();
    Ok(conn
        .execute_raw(stmt(backend, sql, values))
        .await?
        .rows_affected())
}

/// The product columns, in the order [`product`] reads them.
pub(crate) const PRODUCT_COLS: &str =
    "sku, name, price_minor, currency, available, reserved, version, created_at, updated_at";

/// The order columns, in the order [`order`] reads them.
pub(crate) const ORDER_COLS: &str =
    "id, customer_id, status, currency, total_minor, note, version, created_at, updated_at";

/// The item columns, in the order [`item`] reads them.
pub(crate) const ITEM_COLS: &str = "order_id, sku, quantity, unit_price_minor, line_total_minor";

fn get<T: sea_orm::TryGetable>(row: &QueryResult, col: &str) -> Result<T, DbErr> {
    row.try_get::<T>("", col)
}

/// Decodes a product row.
pub(crate) fn product(row: &QueryResult) -> Result<Product, DbErr> {
    Ok(Product {
        sku: get(row, "sku")?,
        name: get(row, "name")?,
        price_minor: get(row, "price_minor")?,
        currency: get(row, "currency")?,
        available: get(row, "available")?,
        reserved: get(row, "reserved")?,
        version: get(row, "version")?,
        created_at: from_ms(get(row, "created_at")?),
        updated_at: from_ms(get(row, "updated_at")?),
    })
}

/// Decodes an order row (without items).
pub(crate) fn order(row: &QueryResult) -> Result<Order, DbErr> {
    let status: String = get(row, "status")?;
    let status = status
        .parse()
        .map_err(|_| DbErr::Type(format!("unknown order status {status:?} in the database")))?;
    Ok(Order {
        id: get(row, "id")?,
        customer_id: get(row, "customer_id")?,
        status,
        currency: get(row, "currency")?,
        items: Vec::new(),
        total_minor: get(row, "total_minor")?,
        note: get(row, "note")?,
        version: get(row, "version")?,
        created_at: from_ms(get(row, "created_at")?),
        updated_at: from_ms(get(row, "updated_at")?),
    })
}

/// Decodes an item row with its order id.
pub(crate) fn item(row: &QueryResult) -> Result<(Uuid, OrderItem), DbErr> {
    Ok((
        get(row, "order_id")?,
        OrderItem {
            sku: get(row, "sku")?,
            quantity: get(row, "quantity")?,
            unit_price_minor: get(row, "unit_price_minor")?,
            line_total_minor: get(row, "line_total_minor")?,
        },
    ))
}

/// Decodes an event row with its sequence number.
pub(crate) fn event(row: &QueryResult) -> Result<(i64, OrderEvent), DbErr> {
    let kind: String = get(row, "type")?;
    let kind = kind
        .parse()
        .map_err(|_| DbErr::Type(format!("unknown event type {kind:?} in the database")))?;
    let seq: i32 = get(row, "seq")?;
    Ok((
        i64::from(seq),
        OrderEvent {
            at: from_ms(get(row, "at")?),
            kind,
            actor: get(row, "actor")?,
            reason: get(row, "reason")?,
        },
    ))
}

/// `actor` cut to the 64 characters the schema holds.
pub(crate) fn actor(actor: &str) -> String {
    actor.chars().take(64).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renumbers_for_postgres() {
        let s = stmt(DatabaseBackend::Postgres, "a = ? AND b IN (?, ?)", vec![]);
        assert_eq!(s.sql, "a = $1 AND b IN ($2, $3)");
        let s = stmt(DatabaseBackend::Sqlite, "a = ?", vec![]);
        assert_eq!(s.sql, "a = ?");
        assert_eq!(placeholders(2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
