//! Money: `i64` minor units with checked arithmetic. Overflow is a 422
//! `validation_failed`, never a panic or a wrapped value.

use super::DomainError;

/// `unit_price_minor * quantity` for order line `index`.
///
/// # Errors
/// [`DomainError::Validation`] on `items[index].quantity` if it overflows.
pub fn line_total(unit_price_minor: i64, quantity: i64, index: usize) -> Result<i64, DomainError> {
    unit_price_minor.checked_mul(quantity).ok_or_else(|| {
        DomainError::field(
            format!("items[{index}].quantity"),
            "line total (unit price x quantity) exceeds the largest representable amount",
        )
    })
}

/// The sum of `line_totals`.
///
/// # Errors
/// [`DomainError::Validation`] on `items` if the sum overflows.
pub fn order_total(line_totals: impl IntoIterator<Item = i64>) -> Result<i64, DomainError> {
    line_totals
        .into_iter()
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| {
            DomainError::field(
                "items",
                "order total exceeds the largest representable amount",
            )
        })
}
