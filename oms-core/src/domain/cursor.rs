//! Opaque pagination cursors of the domain's lists, in the shared envelope
//! of `crate::cursor`: any string we did not issue is a
//! [`DomainError::BadCursor`] instead of a wrong page.

use uuid::Uuid;

use super::DomainError;
use super::validate::is_valid_sku;

/// A keyset position in one of the lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// Products after this SKU.
    Product(String),
    /// Orders older than this id.
    Order(Uuid),
    /// Events after this sequence number.
    Event(i64),
}

impl Cursor {
    fn kind(&self) -> u8 {
        match self {
            Cursor::Product(_) => b'p',
            Cursor::Order(_) => b'o',
            Cursor::Event(_) => b'e',
        }
    }

    /// The opaque string form.
    pub(crate) fn encode(&self) -> String {
        match self {
            Cursor::Product(sku) => crate::cursor::seal(self.kind(), sku.as_bytes()),
            Cursor::Order(id) => crate::cursor::seal(self.kind(), id.as_bytes()),
            Cursor::Event(seq) => crate::cursor::seal(self.kind(), &seq.to_be_bytes()),
        }
    }

    /// Parses a cursor; any string we did not issue is `BadCursor`.
    pub(crate) fn decode(text: &str) -> Result<Cursor, DomainError> {
        let (kind, payload) = crate::cursor::open(text).ok_or(DomainError::BadCursor)?;
        match kind {
            b'p' => {
                let sku = std::str::from_utf8(&payload).map_err(|_| DomainError::BadCursor)?;
                if !is_valid_sku(sku) {
                    return Err(DomainError::BadCursor);
                }
                Ok(Cursor::Product(sku.to_owned()))
            }
            b'o' => Uuid::from_slice(&payload)
                .map(Cursor::Order)
                .map_err(|_| DomainError::BadCursor),
            b'e' => <[u8; 8]>::try_from(payload.as_slice())
                .map(|b| Cursor::Event(i64::from_be_bytes(b)))
                .map_err(|_| DomainError::BadCursor),
            _ => Err(DomainError::BadCursor),
        }
    }

    /// Decodes `after`, requiring a product cursor.
    pub(crate) fn product(after: Option<&str>) -> Result<Option<String>, DomainError> {
        match after.map(Cursor::decode).transpose()? {
            None => Ok(None),
            Some(Cursor::Product(sku)) => Ok(Some(sku)),
            Some(_) => Err(DomainError::BadCursor),
        }
    }

    /// Decodes `after`, requiring an order cursor.
    pub(crate) fn order(after: Option<&str>) -> Result<Option<Uuid>, DomainError> {
        match after.map(Cursor::decode).transpose()? {
            None => Ok(None),
            Some(Cursor::Order(id)) => Ok(Some(id)),
            Some(_) => Err(DomainError::BadCursor),
        }
    }

    /// Decodes `after`, requiring an event cursor.
    pub(crate) fn event(after: Option<&str>) -> Result<Option<i64>, DomainError> {
        match after.map(Cursor::decode).transpose()? {
            None => Ok(None),
            Some(Cursor::Event(seq)) => Ok(Some(seq)),
            Some(_) => Err(DomainError::BadCursor),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_tampering() {
        let cursors = [
            Cursor::Product("TSHIRT-M".into()),
            Cursor::Order(Uuid::now_v7()),
            Cursor::Event(42),
        ];
        for c in cursors {
            let text = c.encode();
            assert_eq!(Cursor::decode(&text).unwrap(), c);
            // Flip each character in turn: always rejected, never a panic.
            for i in 0..text.len() {
                let mut chars: Vec<char> = text.chars().collect();
                chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
                let tampered: String = chars.into_iter().collect();
                if tampered != text {
                    assert!(Cursor::decode(&tampered).is_err(), "{tampered}");
                }
            }
        }
        for junk in ["", "x", "!!!", "AAAAAAAAAAAA", &"A".repeat(1000), "🦀"] {
            assert!(matches!(Cursor::decode(junk), Err(DomainError::BadCursor)));
        }
        let product = Cursor::Product("A".into()).encode();
        assert!(Cursor::order(Some(&product)).is_err());
        assert_eq!(Cursor::product(Some(&product)).unwrap(), Some("A".into()));
    }
}
