//! The order domain: catalog, stock reservations, orders and their status
//! machine, idempotent creation, keyset pagination.
//!
//! Free of HTTP types: the handlers deserialise request bodies straight
//! into the inputs ([`NewProduct`], [`ProductPatch`], [`StockMove`],
//! [`NewOrder`], [`TransitionBody`], all `deny_unknown_fields`), call
//! [`OrderService`], and turn a [`DomainError`] into a problem document
//! with [`DomainError::code`], [`DomainError::http_status`] and
//! [`DomainError::detail`].
//!
//! Storage is reached only through [`crate::db::Database`]; the SQL is
//! written once for SQLite (>= 3.35: `UPDATE ... FROM`, `RETURNING`) and
//! PostgreSQL. Invariants kept by every operation, per product:
//! `available >= 0`, `reserved >= 0`, and
//! `stock_in == available + reserved + shipped`.

mod cursor;
pub mod doctor;
mod error;
pub mod idempotency;
pub mod money;
mod order;
mod page;
mod product;
mod purge;
mod service;
mod sql;
mod status;
pub mod time;
pub mod validate;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests;

pub use doctor::{Check, DoctorReport, check_invariants};
pub use error::{DomainError, FieldError};
pub use idempotency::{IdempotentOutcome, request_hash};
pub use order::{
    NewOrder, NewOrderItem, Order, OrderEvent, OrderFilter, OrderItem, TransitionBody,
};
pub use page::{DEFAULT_LIMIT, MAX_LIMIT, Page};
pub use product::{NewProduct, Product, ProductPatch, StockMove};
pub use purge::IdempotencyPurge;
pub use service::OrderService;
pub use status::{Action, EventType, OrderStatus, UnknownName};
