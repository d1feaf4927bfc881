//! Order reads: one order, filtered pages of orders, an order's history.

use std::collections::HashMap;

use sea_orm::Value;
use uuid::Uuid;

use super::OrderService;
use super::transition::order_not_found;
use crate::domain::DomainError;
use crate::domain::cursor::Cursor;
use crate::domain::order::{Order, OrderEvent, OrderFilter, OrderItem};
use crate::domain::page::{Page, clamp_limit, paginate};
use crate::domain::sql::{self, ITEM_COLS, ORDER_COLS};

impl OrderService {
    /// One order with its items, in one statement (the order's columns
    /// repeat on each item row: one round trip instead of two).
    ///
    /// # Errors
    /// [`DomainError::NotFound`] or a database error.
    pub async fn get_order(&self, id: Uuid) -> Result<Order, DomainError> {
        let conn = self.db.acquire().await?;
        let rows = sql::all(
            &*conn,
            &format!(
                "SELECT {ORDER_COLS}, sku, quantity, unit_price_minor, line_total_minor \
                 FROM orders LEFT JOIN order_items ON order_items.order_id = orders.id \
                 WHERE orders.id = ? ORDER BY line_no"
            ),
            vec![id.into()],
        )
        .await?;
        let first = rows.first().ok_or_else(|| order_not_found(id))?;
        let mut order = sql::order(first)?;
        order.items.reserve_exact(rows.len());
        for row in &rows {
            // An order without items (none is ever written) has one row of NULLs.
            let Some(sku) = row.try_get::<Option<String>>("", "sku")? else {
                continue;
            };
            order.items.push(OrderItem {
                sku,
                quantity: row.try_get("", "quantity")?,
                unit_price_minor: row.try_get("", "unit_price_minor")?,
                line_total_minor: row.try_get("", "line_total_minor")?,
            });
        }
        Ok(order)
    }

    /// A page of orders, newest first (`ORDER BY id DESC`: ids are UUID
    /// v7), optionally filtered; the items of the whole page come in one
    /// more statement.
    ///
    /// # Errors
    /// [`DomainError::BadCursor`] or a database error.
    pub async fn list_orders(
        &self,
        filter: OrderFilter,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Order>, DomainError> {
        let after = Cursor::order(after)?;
        let limit = clamp_limit(limit);
        let mut conditions: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(customer_id) = filter.customer_id {
            conditions.push("customer_id = ?");
            values.push(customer_id.into());
        }
        if let Some(status) = filter.status {
            conditions.push("status = ?");
            values.push(status.as_str().into());
        }
        if let Some(id) = after {
            conditions.push("id < ?");
            values.push(id.into());
        }
        values.push(i64::from(limit + 1).into());
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {} ", conditions.join(" AND "))
        };
        let conn = self.db.acquire().await?;
        let rows = sql::all(
            &*conn,
            &format!("SELECT {ORDER_COLS} FROM orders {where_clause}ORDER BY id DESC LIMIT ?"),
            values,
        )
        .await?;
        let orders = rows.iter().map(sql::order).collect::<Result<Vec<_>, _>>()?;
        let mut page = paginate(orders, limit, |o| Cursor::Order(o.id).encode());
        if page.items.is_empty() {
            return Ok(page);
        }
        let ids: Vec<Value> = page.items.iter().map(|o| o.id.into()).collect();
        let rows = sql::all(
            &*conn,
            &format!(
                "SELECT {ITEM_COLS} FROM order_items WHERE order_id IN ({}) \
                 ORDER BY order_id, line_no",
                vec!["?"; ids.len()].join(", ")
            ),
            ids,
        )
        .await?;
        let mut items: HashMap<Uuid, Vec<OrderItem>> = HashMap::with_capacity(page.items.len());
        for row in &rows {
            let (order_id, item) = sql::item(row)?;
            items.entry(order_id).or_default().push(item);
        }
        for order in &mut page.items {
            order.items = items.remove(&order.id).unwrap_or_default();
        }
        Ok(page)
    }

    /// An order's history, oldest first.
    ///
    /// # Errors
    /// [`DomainError::NotFound`], [`DomainError::BadCursor`] or a database error.
    pub async fn order_events(
        &self,
        id: Uuid,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<OrderEvent>, DomainError> {
        let after = Cursor::event(after)?;
        let limit = clamp_limit(limit);
        let conn = self.db.acquire().await?;
        let rows = sql::all(
            &*conn,
            "SELECT seq, type, actor, reason, at FROM order_events \
             WHERE order_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            vec![
                id.into(),
                after.unwrap_or(0).into(),
                i64::from(limit + 1).into(),
            ],
        )
        .await?;
        let events = rows.iter().map(sql::event).collect::<Result<Vec<_>, _>>()?;
        if events.is_empty() {
            // Every order has its `created` event: nothing at all means no order.
            let exists = after.is_some()
                && sql::one(
                    &*conn,
                    "SELECT 1 AS one FROM orders WHERE id = ?",
                    vec![id.into()],
                )
                .await?
                .is_some();
            if !exists {
                return Err(order_not_found(id));
            }
        }
        let page = paginate(events, limit, |(seq, _)| Cursor::Event(*seq).encode());
        Ok(Page {
            items: page.items.into_iter().map(|(_, e)| e).collect(),
            next_cursor: page.next_cursor,
        })
    }
}
