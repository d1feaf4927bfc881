//! The rows of a new order: the order, its lines, its `created` event and,
//! for an idempotent create, the stored response. On PostgreSQL they are
//! one statement (data-modifying CTEs: one round trip instead of four);
//! on SQLite, which has no data-modifying CTEs and no round trips to save,
//! one statement each. Either way they run in the caller's transaction.

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, Value};

use crate::domain::DomainError;
use crate::domain::order::Order;
use crate::domain::sql::{self, placeholders};
use crate::domain::status::{EventType, OrderStatus};

const ORDER: &str = "INSERT INTO orders (id, customer_id, status, currency, total_minor, note, \
                     version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)";
const EVENT: &str = "INSERT INTO order_events (order_id, seq, type, actor, reason, at) \
                     VALUES (?, 1, ?, ?, NULL, ?)";
const RESPONSE: &str = "UPDATE idempotency_keys SET status = ?, response = ? \
                        WHERE scope = ? AND idem_key = ? AND claim_id = ? AND status IS NULL";

/// The idempotent response to store with the order, under its claim.
pub(super) struct Response<'a> {
    pub(super) scope: &'a str,
    pub(super) key: &'a str,
    pub(super) claim_id: &'a str,
    pub(super) status: u16,
    pub(super) body: &'a str,
}

/// Writes `order`'s rows (and `response`) in `txn`. Returns false when a
/// response was given but the claim is no longer ours (taken over after
/// the lease): the caller must roll back.
pub(super) async fn insert_order(
    txn: &DatabaseTransaction,
    order: &Order,
    actor: &str,
    now: i64,
    response: Option<Response<'_>>,
) -> Result<bool, DomainError> {
    let id = order.id;
    let n = order.items.len();
    let order_values: Vec<Value> = vec![
        id.into(),
        order.customer_id.clone().into(),
        OrderStatus::Pending.as_str().into(),
        order.currency.clone().into(),
        order.total_minor.into(),
        order.note.clone().into(),
        now.into(),
        now.into(),
    ];
    let mut item_values: Vec<Value> = Vec::with_capacity(6 * n);
    for (line_no, item) in (1i32..).zip(&order.items) {
        item_values.extend([
            id.into(),
            line_no.into(),
            item.sku.clone().into(),
            item.quantity.into(),
            item.unit_price_minor.into(),
            item.line_total_minor.into(),
        ]);
    }
    let items = format!(
        "INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price_minor, \
         line_total_minor) VALUES {}",
        placeholders(n, 6)
    );
    let event_values: Vec<Value> = vec![
        id.into(),
        EventType::Created.as_str().into(),
        sql::actor(actor).into(),
        now.into(),
    ];
    let response_values: Option<Vec<Value>> = response.map(|r| {
        vec![
            i32::from(r.status).into(),
            r.body.into(),
            r.scope.into(),
            r.key.into(),
            r.claim_id.into(),
        ]
    });

    if txn.get_database_backend() == DatabaseBackend::Postgres {
        // Every sub-statement of a WITH runs to completion; foreign keys are
        // checked at the statement's end. The main statement is the last
        // write, so its row count says whether the response was stored.
        let mut values = order_values;
        values.extend(item_values);
        values.extend(event_values);
        let statement = match response_values {
            Some(response_values) => {
                values.extend(response_values);
                format!("WITH o AS ({ORDER}), i AS ({items}), e AS ({EVENT}) {RESPONSE}")
            }
            None => format!("WITH o AS ({ORDER}), i AS ({items}) {EVENT}"),
        };
        return Ok(sql::exec(txn, &statement, values).await? == 1);
    }

    sql::exec(txn, ORDER, order_values).await?;
    sql::exec(txn, &items, item_values).await?;
    sql::exec(txn, EVENT, event_values).await?;
    match response_values {
        Some(values) => Ok(sql::exec(txn, RESPONSE, values).await? == 1),
        None => Ok(true),
    }
}
