//! Order transitions: one transaction each, guarded on the current status
//! (and version), with the stock effect and the history event.

use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use uuid::Uuid;

use super::OrderService;
use crate::domain::DomainError;
use crate::domain::order::{Order, TransitionBody};
use crate::domain::sql::{self, ITEM_COLS, ORDER_COLS, begin_write};
use crate::domain::status::{Action, OrderStatus};
use crate::domain::time::now_ms;

pub(crate) fn order_not_found(id: Uuid) -> DomainError {
    DomainError::NotFound {
        what: format!("order {id}"),
    }
}

impl OrderService {
    /// Applies `action` to order `id` and returns the changed order.
    ///
    /// The order row is updated only if it is in a status `action` may start
    /// from (and at version `if_match`, if given), so of two concurrent
    /// transitions at most one succeeds. `ship` consumes the reservation
    /// (`reserved -= q`, `shipped += q`), `cancel` releases it
    /// (`reserved -= q`, `available += q`); the products' versions move too.
    /// The event row is written in the same transaction.
    ///
    /// # Errors
    /// [`DomainError::Validation`] (reason too long), [`DomainError::NotFound`],
    /// [`DomainError::VersionMismatch`], [`DomainError::InvalidTransition`],
    /// or a database error.
    pub async fn transition(
        &self,
        id: Uuid,
        action: Action,
        actor: &str,
        reason: Option<&str>,
        if_match: Option<i64>,
    ) -> Result<Order, DomainError> {
        TransitionBody {
            reason: reason.map(str::to_owned),
        }
        .validate()?;
        self.db
            .retry(|| async {
                let conn = self.db.acquire_writer().await?;
                let txn = begin_write(&conn).await?;
                match transition_in(&txn, id, action, actor, reason, if_match).await {
                    Ok(order) => {
                        txn.commit().await?;
                        Ok(order)
                    }
                    Err(err) => {
                        let _ = txn.rollback().await;
                        Err(err)
                    }
                }
            })
            .await
    }
}

async fn transition_in(
    txn: &DatabaseTransaction,
    id: Uuid,
    action: Action,
    actor: &str,
    reason: Option<&str>,
    if_match: Option<i64>,
) -> Result<Order, DomainError> {
    let now = now_ms();
    let from = action.allowed_from();
    let mut values: Vec<Value> = vec![action.target().as_str().into(), now.into(), id.into()];
    values.extend(from.iter().map(|s| Value::from(s.as_str())));
    let mut guard = "";
    if let Some(v) = if_match {
        guard = " AND version = ?";
        values.push(v.into());
    }
    let row = sql::one(
        txn,
        &format!(
            "UPDATE orders SET status = ?, version = version + 1, updated_at = ? \
             WHERE id = ? AND status IN ({}){guard} RETURNING {ORDER_COLS}",
            vec!["?"; from.len()].join(", ")
        ),
        values,
    )
    .await?;
    let Some(row) = row else {
        return Err(explain(txn, id, action, if_match).await);
    };
    let mut order = sql::order(&row)?;

    let stock_effect = match action {
        Action::Ship => Some("reserved = reserved - i.quantity, shipped = shipped + i.quantity"),
        Action::Cancel => {
            Some("reserved = reserved - i.quantity, available = available + i.quantity")
        }
        Action::Confirm | Action::Deliver => None,
    };
    if let Some(set) = stock_effect {
        sql::exec(
            txn,
            &format!(
                "UPDATE products SET {set}, version = version + 1, updated_at = ? \
                 FROM order_items AS i WHERE i.order_id = ? AND i.sku = products.sku"
            ),
            vec![now.into(), id.into()],
        )
        .await?;
    }

    sql::exec(
        txn,
        "INSERT INTO order_events (order_id, seq, type, actor, reason, at) \
         SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? FROM order_events WHERE order_id = ?",
        vec![
            id.into(),
            action.event().as_str().into(),
            sql::actor(actor).into(),
            reason.map(str::to_owned).into(),
            now.into(),
            id.into(),
        ],
    )
    .await?;

    let rows = sql::all(
        txn,
        &format!("SELECT {ITEM_COLS} FROM order_items WHERE order_id = ? ORDER BY line_no"),
        vec![id.into()],
    )
    .await?;
    for row in &rows {
        order.items.push(sql::item(row)?.1);
    }
    Ok(order)
}

/// After the guarded UPDATE matched nothing: not found, version mismatch
/// (checked first: it is a precondition) or invalid transition.
async fn explain<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    action: Action,
    if_match: Option<i64>,
) -> DomainError {
    let row = match sql::one(
        conn,
        "SELECT status, version FROM orders WHERE id = ?",
        vec![id.into()],
    )
    .await
    {
        Ok(Some(row)) => row,
        Ok(None) => return order_not_found(id),
        Err(err) => return err,
    };
    let decoded = (|| -> Result<(String, i64), sea_orm::DbErr> {
        Ok((row.try_get("", "status")?, row.try_get("", "version")?))
    })();
    let (status, version) = match decoded {
        Ok(v) => v,
        Err(err) => return err.into(),
    };
    if let Some(expected) = if_match.filter(|v| *v != version) {
        return DomainError::VersionMismatch {
            expected,
            actual: version,
        };
    }
    match status.parse::<OrderStatus>() {
        Ok(from) => match from.apply(action) {
            Err(err) => err,
            // Unreachable with a forward-only machine; report the status seen.
            Ok(_) => DomainError::InvalidTransition { from, action },
        },
        Err(_) => DomainError::Db(crate::db::PoolError::Db(sea_orm::DbErr::Type(format!(
            "unknown order status {status:?} in the database"
        )))),
    }
}
