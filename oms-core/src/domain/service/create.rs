//! `create_order`: reserve every line's stock and record the order, all in
//! one transaction: on PostgreSQL `BEGIN`, one `UPDATE` for every line's
//! stock, one statement for the order's rows, `COMMIT`.

use std::collections::{HashMap, HashSet};

use sea_orm::{DatabaseConnection, DatabaseTransaction, Value};
use uuid::Uuid;

use super::OrderService;
use super::insert::{Response, insert_order};
use crate::domain::DomainError;
use crate::domain::money;
use crate::domain::order::{NewOrder, Order, OrderItem};
use crate::domain::sql::{self, begin_write};
use crate::domain::status::OrderStatus;
use crate::domain::time::{from_ms, now_ms};

/// The rendering callback of an idempotent create.
pub(crate) type Render<'a> =
    &'a (dyn Fn(&Result<Order, DomainError>) -> (u16, String) + Send + Sync);

/// Where an idempotent create stores its rendered outcome, in the order's
/// own transaction.
pub(crate) struct Store<'a> {
    pub(crate) scope: &'a str,
    pub(crate) key: &'a str,
    pub(crate) claim_id: &'a str,
    pub(crate) render: Render<'a>,
}

/// A created order and, for idempotent creates, the stored response.
pub(crate) type Created = (Order, Option<(u16, String)>);

/// How one attempt's statements ended, before commit or rollback.
enum Attempt {
    /// Everything is written; commit.
    Created(Created),
    /// Some line could not be reserved; these SKUs were.
    Short(HashSet<String>),
}

impl OrderService {
    /// Creates an order: copies each product's price, reserves its stock
    /// (`available -= q`, `reserved += q`, `version += 1`) and records the
    /// `created` event, all in one transaction. If any line cannot be
    /// reserved nothing changes.
    ///
    /// # Errors
    /// [`DomainError::Validation`] / [`DomainError::DuplicateSku`] (input),
    /// [`DomainError::UnknownSku`], [`DomainError::CurrencyMismatch`],
    /// [`DomainError::InsufficientStock`] (first offending line, in that
    /// order of precedence), or a database error.
    pub async fn create_order(&self, actor: &str, input: NewOrder) -> Result<Order, DomainError> {
        input.validate()?;
        let (order, _) = self
            .db
            .retry(|| self.create_order_once(actor, &input, None))
            .await?;
        Ok(order)
    }

    /// One attempt of [`create_order`](Self::create_order), safe to repeat.
    pub(crate) async fn create_order_once(
        &self,
        actor: &str,
        input: &NewOrder,
        store: Option<&Store<'_>>,
    ) -> Result<Created, DomainError> {
        let conn = self.db.acquire_writer().await?;
        let txn = begin_write(&conn).await?;
        match self.create_in(&txn, actor, input, store).await {
            Ok(Attempt::Created(created)) => {
                txn.commit().await?;
                Ok(created)
            }
            Ok(Attempt::Short(reserved)) => {
                // Some line could not be reserved: undo, then say precisely why.
                txn.rollback().await?;
                Err(diagnose(&conn, input, &reserved).await)
            }
            Err(err) => {
                // The rollback error, if any, matters less than the cause.
                let _ = txn.rollback().await;
                Err(err)
            }
        }
    }

    /// The statements of one create; [`Attempt::Short`] when some line could
    /// not be reserved (the caller rolls back).
    async fn create_in(
        &self,
        txn: &DatabaseTransaction,
        actor: &str,
        input: &NewOrder,
        store: Option<&Store<'_>>,
    ) -> Result<Attempt, DomainError> {
        let now = now_ms();
        let id = Uuid::now_v7();
        let n = input.items.len();

        // 1. Reserve every line at once: a line matches only if the product
        //    exists, is in the order's currency and has enough available.
        let mut values: Vec<Value> = Vec::with_capacity(2 * n + 2);
        values.push(now.into());
        for item in &input.items {
            values.push(item.sku.clone().into());
            values.push(item.quantity.into());
        }
        values.push(input.currency.clone().into());
        let groups = vec!["(?, CAST(? AS BIGINT))"; n].join(", ");
        let reserved = sql::all(
            txn,
            &format!(
                "UPDATE products SET available = available - v.v_q, \
                 reserved = reserved + v.v_q, version = version + 1, updated_at = ? \
                 FROM (SELECT column1 AS v_sku, column2 AS v_q FROM (VALUES {groups}) AS t) AS v \
                 WHERE products.sku = v.v_sku AND products.available >= v.v_q \
                 AND products.currency = ? \
                 RETURNING sku, price_minor"
            ),
            values,
        )
        .await?;
        let mut prices = HashMap::with_capacity(n);
        for row in &reserved {
            let sku: String = row.try_get("", "sku")?;
            let price: i64 = row.try_get("", "price_minor")?;
            prices.insert(sku, price);
        }
        if prices.len() != n {
            return Ok(Attempt::Short(prices.into_keys().collect()));
        }

        // 2. Price the lines (checked: overflow is a 422, rolled back).
        let mut items = Vec::with_capacity(n);
        for (i, item) in input.items.iter().enumerate() {
            let Some(&unit) = prices.get(&item.sku) else {
                return Ok(Attempt::Short(prices.into_keys().collect()));
            };
            items.push(OrderItem {
                sku: item.sku.clone(),
                quantity: item.quantity,
                unit_price_minor: unit,
                line_total_minor: money::line_total(unit, item.quantity, i)?,
            });
        }
        let total = money::order_total(items.iter().map(|i| i.line_total_minor))?;
        let order = Order {
            id,
            customer_id: input.customer_id.clone(),
            status: OrderStatus::Pending,
            currency: input.currency.clone(),
            items,
            total_minor: total,
            note: input.note.clone(),
            version: 1,
            created_at: from_ms(now),
            updated_at: from_ms(now),
        };

        // 3. The order, its lines, its first event and, for an idempotent
        //    create, its response (committed with the order or not at all).
        let Some(store) = store else {
            insert_order(txn, &order, actor, now, None).await?;
            return Ok(Attempt::Created((order, None)));
        };
        let ok: Result<Order, DomainError> = Ok(order);
        let (status, body) = (store.render)(&ok);
        let order = ok?;
        let response = Response {
            scope: store.scope,
            key: store.key,
            claim_id: store.claim_id,
            status,
            body: &body,
        };
        if !insert_order(txn, &order, actor, now, Some(response)).await? {
            // Our claim was taken over (we ran past the lease): the other
            // request owns the key now; roll this one back.
            return Err(DomainError::IdempotencyInProgress);
        }
        Ok(Attempt::Created((order, Some((status, body)))))
    }
}

/// Why an order could not be reserved, read after the rollback: the first
/// unknown SKU, else the first currency mismatch, else the first short line.
async fn diagnose(
    conn: &DatabaseConnection,
    input: &NewOrder,
    reserved: &HashSet<String>,
) -> DomainError {
    let skus: Vec<Value> = input.items.iter().map(|i| i.sku.clone().into()).collect();
    let rows = match sql::all(
        conn,
        &format!(
            "SELECT sku, currency, available FROM products WHERE sku IN ({})",
            vec!["?"; skus.len()].join(", ")
        ),
        skus,
    )
    .await
    {
        Ok(rows) => rows,
        Err(err) => return err,
    };
    let mut found: HashMap<String, (String, i64)> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let decoded = (|| -> Result<(String, String, i64), sea_orm::DbErr> {
            Ok((
                row.try_get("", "sku")?,
                row.try_get("", "currency")?,
                row.try_get("", "available")?,
            ))
        })();
        match decoded {
            Ok((sku, currency, available)) => {
                found.insert(sku, (currency, available));
            }
            Err(err) => return err.into(),
        }
    }
    if let Some(item) = input.items.iter().find(|i| !found.contains_key(&i.sku)) {
        return DomainError::UnknownSku {
            sku: item.sku.clone(),
        };
    }
    for item in &input.items {
        if let Some((currency, _)) = found.get(&item.sku).filter(|(c, _)| *c != input.currency) {
            return DomainError::CurrencyMismatch {
                sku: item.sku.clone(),
                product_currency: currency.clone(),
                order_currency: input.currency.clone(),
            };
        }
    }
    let short = input
        .items
        .iter()
        .find(|i| found.get(&i.sku).is_some_and(|(_, a)| *a < i.quantity));
    // If stock arrived since the rollback, name the first line that could
    // not be reserved when the order was tried.
    let item = short.or_else(|| input.items.iter().find(|i| !reserved.contains(&i.sku)));
    match item {
        Some(item) => DomainError::InsufficientStock {
            sku: item.sku.clone(),
            requested: item.quantity,
            available: found.get(&item.sku).map_or(0, |(_, a)| *a),
        },
        None => DomainError::field("items", "must have 1-100 items"),
    }
}
