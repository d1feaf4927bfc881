//! Catalog types: [`Product`] and the inputs that create and change one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::validate::{Checker, NAME_MAX};

/// A catalog product with its stock figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Stock keeping unit, the product's key.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Unit price in minor units of `currency`.
    pub price_minor: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Units that can be sold now.
    pub available: i64,
    /// Units held by open orders.
    pub reserved: i64,
    /// 1 on creation, +1 on every change (reservations included).
    pub version: i64,
    /// When the product was created.
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
    /// When the product last changed.
    #[serde(serialize_with = "super::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /v1/products`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// `^[A-Za-z0-9._-]{1,64}$`.
    pub sku: String,
    /// 1-200 characters.
    pub name: String,
    /// >= 0.
    pub price_minor: i64,
    /// Three upper-case letters.
    pub currency: String,
    /// Initial stock, >= 0 (default 0).
    #[serde(default)]
    pub available: Option<i64>,
}

impl NewProduct {
    /// Checks every field rule.
    ///
    /// # Errors
    /// [`DomainError::Validation`] with all field errors.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut c = Checker::default();
        c.sku("sku", &self.sku);
        c.text_len("name", &self.name, 1, NAME_MAX);
        c.non_negative("price_minor", self.price_minor);
        c.currency("currency", &self.currency);
        if let Some(available) = self.available {
            c.non_negative("available", available);
        }
        c.finish()
    }
}

/// Body of `PATCH /v1/products/{sku}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    /// New name, 1-200 characters.
    #[serde(default)]
    pub name: Option<String>,
    /// New price, >= 0.
    #[serde(default)]
    pub price_minor: Option<i64>,
}

impl ProductPatch {
    /// Checks every field rule.
    ///
    /// # Errors
    /// [`DomainError::Validation`] with all field errors.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut c = Checker::default();
        if let Some(name) = &self.name {
            c.text_len("name", name, 1, NAME_MAX);
        }
        if let Some(price) = self.price_minor {
            c.non_negative("price_minor", price);
        }
        c.finish()
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.price_minor.is_none()
    }
}

/// Body of `POST /v1/products/{sku}/stock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockMove {
    /// Restock (> 0) or write-off (< 0); never 0.
    pub delta: i64,
}

impl StockMove {
    /// Checks every field rule.
    ///
    /// # Errors
    /// [`DomainError::Validation`] when `delta` is 0.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut c = Checker::default();
        if self.delta == 0 {
            c.push("delta", "must not be 0 (restock > 0, write-off < 0)");
        }
        c.finish()
    }
}
