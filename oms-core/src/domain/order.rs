//! Order types: [`Order`], its items and events, and the inputs that create
//! and move one.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::DomainError;
use super::status::{EventType, OrderStatus};
use super::validate::{CUSTOMER_ID_MAX, Checker, ITEMS_MAX, QUANTITY_MAX, TEXT_MAX};

/// An order with its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// UUID v7 (time-ordered).
    pub id: Uuid,
    /// The customer, 1-64 characters.
    pub customer_id: String,
    /// Where the order is in its life.
    pub status: OrderStatus,
    /// ISO 4217 currency of every line.
    pub currency: String,
    /// The lines, in request order.
    pub items: Vec<OrderItem>,
    /// Sum of the line totals, minor units.
    pub total_minor: i64,
    /// Free text from the caller.
    pub note: Option<String>,
    /// 1 on creation, +1 on every transition.
    pub version: i64,
    /// When the order was created.
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
    /// When the order last changed.
    #[serde(serialize_with = "super::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// One order line; prices are copied from the catalog at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The product.
    pub sku: String,
    /// Units ordered.
    pub quantity: i64,
    /// The product's price when the order was created.
    pub unit_price_minor: i64,
    /// `unit_price_minor * quantity`.
    pub line_total_minor: i64,
}

/// One entry of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// When it happened.
    #[serde(serialize_with = "super::time::serialize")]
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Who did it (the caller's token name).
    pub actor: String,
    /// The caller's reason, if given.
    pub reason: Option<String>,
}

/// Filters of `GET /v1/orders`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only this customer's orders.
    pub customer_id: Option<String>,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
}

/// Body of `POST /v1/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// 1-64 characters.
    pub customer_id: String,
    /// Three upper-case letters; every product must be priced in it.
    pub currency: String,
    /// 1-100 lines with distinct SKUs.
    pub items: Vec<NewOrderItem>,
    /// At most 1000 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// One line of a [`NewOrder`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrderItem {
    /// An existing product's SKU.
    pub sku: String,
    /// 1-10000.
    pub quantity: i64,
}

impl NewOrder {
    /// Checks every field rule, then that no SKU repeats.
    ///
    /// # Errors
    /// [`DomainError::Validation`] with all field errors, else
    /// [`DomainError::DuplicateSku`] naming the first repeated SKU.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut c = Checker::default();
        c.text_len("customer_id", &self.customer_id, 1, CUSTOMER_ID_MAX);
        c.currency("currency", &self.currency);
        if self.items.is_empty() || self.items.len() > ITEMS_MAX {
            c.push("items", format!("must have 1-{ITEMS_MAX} items"));
        }
        for (i, item) in self.items.iter().enumerate() {
            c.sku(format!("items[{i}].sku"), &item.sku);
            if !(1..=QUANTITY_MAX).contains(&item.quantity) {
                c.push(
                    format!("items[{i}].quantity"),
                    format!("must be 1-{QUANTITY_MAX}"),
                );
            }
        }
        if let Some(note) = &self.note {
            c.text_len("note", note, 0, TEXT_MAX);
        }
        c.finish()?;
        let mut seen = HashSet::with_capacity(self.items.len());
        for item in &self.items {
            if !seen.insert(item.sku.as_str()) {
                return Err(DomainError::DuplicateSku {
                    sku: item.sku.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Optional body of `POST /v1/orders/{id}/{action}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// Why, at most 1000 characters; recorded in the event.
    #[serde(default)]
    pub reason: Option<String>,
}

impl TransitionBody {
    /// Checks every field rule.
    ///
    /// # Errors
    /// [`DomainError::Validation`] when `reason` is too long.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut c = Checker::default();
        if let Some(reason) = &self.reason {
            c.text_len("reason", reason, 0, TEXT_MAX);
        }
        c.finish()
    }
}
