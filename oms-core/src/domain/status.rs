//! The order status machine: [`OrderStatus`], [`Action`] and the history
//! [`EventType`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Created, stock reserved.
    Pending,
    /// Accepted by the merchant.
    Confirmed,
    /// Handed to the carrier; the reservation is consumed.
    Shipped,
    /// Received by the customer (final).
    Delivered,
    /// Cancelled; the reservation is released (final).
    Cancelled,
}

/// What a caller can do to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// pending -> confirmed
    Confirm,
    /// confirmed -> shipped
    Ship,
    /// shipped -> delivered
    Deliver,
    /// pending|confirmed -> cancelled
    Cancel,
}

/// The kind of an order history event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The order was created.
    Created,
    /// The order was confirmed.
    Confirmed,
    /// The order was shipped.
    Shipped,
    /// The order was delivered.
    Delivered,
    /// The order was cancelled.
    Cancelled,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// The lower-case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// The status `action` leads to from this one.
    ///
    /// # Errors
    /// [`DomainError::InvalidTransition`] when the machine forbids it.
    pub fn apply(self, action: Action) -> Result<OrderStatus, DomainError> {
        use Action as A;
        use OrderStatus as S;
        match (self, action) {
            (S::Pending, A::Confirm) => Ok(S::Confirmed),
            (S::Confirmed, A::Ship) => Ok(S::Shipped),
            (S::Shipped, A::Deliver) => Ok(S::Delivered),
            (S::Pending | S::Confirmed, A::Cancel) => Ok(S::Cancelled),
            (from, action) => Err(DomainError::InvalidTransition { from, action }),
        }
    }
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 4] = [
        Action::Confirm,
        Action::Ship,
        Action::Deliver,
        Action::Cancel,
    ];

    /// The lower-case name used in URLs (`/v1/orders/{id}/confirm`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Confirm => "confirm",
            Action::Ship => "ship",
            Action::Deliver => "deliver",
            Action::Cancel => "cancel",
        }
    }

    /// The statuses this action may start from.
    pub fn allowed_from(self) -> &'static [OrderStatus] {
        match self {
            Action::Confirm => &[OrderStatus::Pending],
            Action::Ship => &[OrderStatus::Confirmed],
            Action::Deliver => &[OrderStatus::Shipped],
            Action::Cancel => &[OrderStatus::Pending, OrderStatus::Confirmed],
        }
    }

    /// The status this action leads to.
    pub fn target(self) -> OrderStatus {
        match self {
            Action::Confirm => OrderStatus::Confirmed,
            Action::Ship => OrderStatus::Shipped,
            Action::Deliver => OrderStatus::Delivered,
            Action::Cancel => OrderStatus::Cancelled,
        }
    }

    /// The history event this action records.
    pub fn event(self) -> EventType {
        match self {
            Action::Confirm => EventType::Confirmed,
            Action::Ship => EventType::Shipped,
            Action::Deliver => EventType::Delivered,
            Action::Cancel => EventType::Cancelled,
        }
    }
}

impl EventType {
    /// The lower-case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "created",
            EventType::Confirmed => "confirmed",
            EventType::Shipped => "shipped",
            EventType::Delivered => "delivered",
            EventType::Cancelled => "cancelled",
        }
    }
}

/// A string that names no status, action or event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownName(pub String);

macro_rules! name_impls {
    ($ty:ty, [$($variant:expr),* $(,)?]) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                [$($variant),*]
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName(s.to_owned()))
            }
        }
    };
}

name_impls!(
    OrderStatus,
    [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ]
);
name_impls!(
    Action,
    [
        Action::Confirm,
        Action::Ship,
        Action::Deliver,
        Action::Cancel
    ]
);
name_impls!(
    EventType,
    [
        EventType::Created,
        EventType::Confirmed,
        EventType::Shipped,
        EventType::Delivered,
        EventType::Cancelled,
    ]
);
