//! Field rules shared by the inputs (API.md), and an accumulator that
//! collects every field error before failing.

use super::{DomainError, FieldError};

/// Longest SKU.
pub const SKU_MAX: usize = 64;
/// Longest product name, in characters.
pub const NAME_MAX: usize = 200;
/// Longest customer id, in characters.
pub const CUSTOMER_ID_MAX: usize = 64;
/// Most lines in one order.
pub const ITEMS_MAX: usize = 100;
/// Largest quantity on one line.
pub const QUANTITY_MAX: i64 = 10_000;
/// Longest order note or transition reason, in characters.
pub const TEXT_MAX: usize = 1000;

/// Whether `sku` matches `^[A-Za-z0-9._-]{1,64}$` (ASCII only).
pub fn is_valid_sku(sku: &str) -> bool {
    (1..=SKU_MAX).contains(&sku.len())
        && sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `currency` is three upper-case ASCII letters.
pub fn is_valid_currency(currency: &str) -> bool {
    currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())
}

/// Collects field errors; [`finish`](Self::finish) fails if there are any.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    pub(crate) fn sku(&mut self, field: impl Into<String>, sku: &str) {
        if !is_valid_sku(sku) {
            self.push(
                field,
                "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
            );
        }
    }

    pub(crate) fn currency(&mut self, field: &str, currency: &str) {
        if !is_valid_currency(currency) {
            self.push(
                field,
                "must be three upper-case letters (ISO 4217), e.g. EUR",
            );
        }
    }

    pub(crate) fn text_len(&mut self, field: &str, value: &str, min: usize, max: usize) {
        if value.contains('\0') {
            // PostgreSQL text cannot hold NUL; refuse it on every backend alike.
            self.push(field, "must not contain NUL (U+0000) characters");
            return;
        }
        let len = value.chars().count();
        if len < min || len > max {
            if min == 0 {
                self.push(field, format!("must be at most {max} characters"));
            } else {
                self.push(field, format!("must be {min}-{max} characters"));
            }
        }
    }

    pub(crate) fn non_negative(&mut self, field: &str, value: i64) {
        if value < 0 {
            self.push(field, "must be >= 0");
        }
    }

    pub(crate) fn finish(self) -> Result<(), DomainError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(self.errors))
        }
    }
}
