//! [`DomainError`]: every way a domain operation can fail, with the API
//! error code and a helpful detail for each.

use serde::{Deserialize, Serialize};

use super::status::{Action, OrderStatus};
use crate::db::{IsTransient, PoolError};

/// One field-level problem of a 422 `validation_failed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `items[0].quantity`.
    pub field: String,
    /// What is wrong, e.g. `must be >= 1`.
    pub message: String,
}

impl FieldError {
    /// A field error for `field` saying `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// 404 `not_found`: no such product or order (`what` names it).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `product TSHIRT-M`.
        what: String,
    },
    /// 409 `sku_exists`: a product with this SKU already exists.
    #[error("SKU {sku} already exists")]
    SkuExists {
        /// The SKU that is taken.
        sku: String,
    },
    /// 409 `insufficient_stock`: an order item asks for more than is available.
    #[error("SKU {sku}: requested {requested}, available {available}")]
    InsufficientStock {
        /// The first short SKU.
        sku: String,
        /// Quantity requested.
        requested: i64,
        /// Quantity available when checked.
        available: i64,
    },
    /// 409 `invalid_transition`: the status machine forbids `action` from `from`.
    #[error("cannot {action} an order that is {from}")]
    InvalidTransition {
        /// The order's current status.
        from: OrderStatus,
        /// The refused action.
        action: Action,
    },
    /// 409 `stock_negative`: a stock move would take `available` below 0.
    #[error("SKU {sku}: delta {delta} would take available {available} below 0")]
    StockNegative {
        /// The product.
        sku: String,
        /// The refused delta.
        delta: i64,
        /// Available when checked.
        available: i64,
    },
    /// 412 `version_mismatch`: `If-Match` named another version.
    #[error("version mismatch: expected {expected}, current is {actual}")]
    VersionMismatch {
        /// The version the caller sent.
        expected: i64,
        /// The resource's current version.
        actual: i64,
    },
    /// 422 `validation_failed`: every field error of the input.
    #[error("validation failed: {}", describe_fields(.0))]
    Validation(Vec<FieldError>),
    /// 422 `unknown_sku`: an order item names no product.
    #[error("unknown SKU {sku}")]
    UnknownSku {
        /// The first unknown SKU.
        sku: String,
    },
    /// 422 `currency_mismatch`: a product is priced in another currency.
    #[error("SKU {sku} is priced in {product_currency}, the order is in {order_currency}")]
    CurrencyMismatch {
        /// The first product in another currency.
        sku: String,
        /// That product's currency.
        product_currency: String,
        /// The order's currency.
        order_currency: String,
    },
    /// 422 `duplicate_sku`: an order names one SKU on several lines.
    #[error("SKU {sku} appears on more than one order line")]
    DuplicateSku {
        /// The first repeated SKU.
        sku: String,
    },
    /// 409 `idempotency_in_progress`: a request with this key is still running.
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyInProgress,
    /// 422 `idempotency_key_reused`: the key was used with another body.
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    /// 400 `bad_cursor`: the pagination cursor is not one we issued.
    #[error("invalid pagination cursor")]
    BadCursor,
    /// 503 `database_unavailable` or 500 `internal`: the database failed.
    #[error(transparent)]
    Db(#[from] PoolError),
}

fn describe_fields(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<sea_orm::DbErr> for DomainError {
    fn from(err: sea_orm::DbErr) -> Self {
        DomainError::Db(PoolError::Db(err))
    }
}

impl DomainError {
    /// A 422 with a single field error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Validation(vec![FieldError::new(field, message)])
    }

    /// The API error code (API.md, "Errors").
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::NotFound { .. } => "not_found",
            DomainError::SkuExists { .. } => "sku_exists",
            DomainError::InsufficientStock { .. } => "insufficient_stock",
            DomainError::InvalidTransition { .. } => "invalid_transition",
            DomainError::StockNegative { .. } => "stock_negative",
            DomainError::VersionMismatch { .. } => "version_mismatch",
            DomainError::Validation(_) => "validation_failed",
            DomainError::UnknownSku { .. } => "unknown_sku",
            DomainError::CurrencyMismatch { .. } => "currency_mismatch",
            DomainError::DuplicateSku { .. } => "duplicate_sku",
            DomainError::IdempotencyInProgress => "idempotency_in_progress",
            DomainError::IdempotencyKeyReused => "idempotency_key_reused",
            DomainError::BadCursor => "bad_cursor",
            DomainError::Db(err) if err.is_unavailable() || err.is_transient() => {
                "database_unavailable"
            }
            DomainError::Db(_) => "internal",
        }
    }

    /// The HTTP status that goes with [`code`](Self::code).
    pub fn http_status(&self) -> u16 {
        match self {
            DomainError::NotFound { .. } => 404,
            DomainError::SkuExists { .. }
            | DomainError::InsufficientStock { .. }
            | DomainError::InvalidTransition { .. }
            | DomainError::StockNegative { .. }
            | DomainError::IdempotencyInProgress => 409,
            DomainError::VersionMismatch { .. } => 412,
            DomainError::Validation(_)
            | DomainError::UnknownSku { .. }
            | DomainError::CurrencyMismatch { .. }
            | DomainError::DuplicateSku { .. }
            | DomainError::IdempotencyKeyReused => 422,
            DomainError::BadCursor => 400,
            DomainError::Db(err) if err.is_unavailable() || err.is_transient() => 503,
            DomainError::Db(_) => 500,
        }
    }

    /// A human-readable detail for the problem document, e.g.
    /// `SKU TSHIRT-M: requested 5, available 2`. Database errors say only
    /// that the database failed: their text is for the log, not the caller.
    pub fn detail(&self) -> String {
        match self {
            DomainError::Db(err) if err.is_unavailable() || err.is_transient() => {
                "the database is unavailable or busy; retry later".to_owned()
            }
            DomainError::Db(_) => "an internal error occurred".to_owned(),
            other => other.to_string(),
        }
    }

    /// The field errors of a 422 `validation_failed` (empty otherwise).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            DomainError::Validation(errors) => errors,
            _ => &[],
        }
    }
}

impl IsTransient for DomainError {
    fn is_transient(&self) -> bool {
        matches!(self, DomainError::Db(err) if err.is_transient())
    }
}
