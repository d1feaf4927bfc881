//! Opaque pagination cursors.
//!
//! A cursor is base64url (no padding) of `[format version][kind][payload]
//! [checksum: first 4 bytes of SHA-256 over the rest]`. The checksum is an
//! integrity check, not a secret: it makes any tampered, truncated or
//! foreign string a [`DomainError::BadCursor`] instead of a wrong page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::DomainError;
use super::validate::is_valid_sku;

const FORMAT: u8 = 1;
const CHECK_LEN: usize = 4;
/// Longest cursor string accepted (well above any we issue).
const MAX_LEN: usize = 256;

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
        let mut bytes = vec![FORMAT, self.kind()];
        match self {
            Cursor::Product(sku) => bytes.extend_from_slice(sku.as_bytes()),
            Cursor::Order(id) => bytes.extend_from_slice(id.as_bytes()),
            Cursor::Event(seq) => bytes.extend_from_slice(&seq.to_be_bytes()),
        }
        let check = checksum(&bytes);
        bytes.extend_from_slice(&check);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses a cursor; any string we did not issue is `BadCursor`.
    pub(crate) fn decode(text: &str) -> Result<Cursor, DomainError> {
        if text.is_empty() || text.len() > MAX_LEN {
            return Err(DomainError::BadCursor);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| DomainError::BadCursor)?;
        if bytes.len() < 2 + CHECK_LEN {
            return Err(DomainError::BadCursor);
        }
        let (body, check) = bytes.split_at(bytes.len() - CHECK_LEN);
        if checksum(body) != check || body[0] != FORMAT {
            return Err(DomainError::BadCursor);
        }
        let payload = &body[2..];
        match body[1] {
            b'p' => {
                let sku = std::str::from_utf8(payload).map_err(|_| DomainError::BadCursor)?;
                if !is_valid_sku(sku) {
                    return Err(DomainError::BadCursor);
                }
                Ok(Cursor::Product(sku.to_owned()))
            }
            b'o' => Uuid::from_slice(payload)
                .map(Cursor::Order)
                .map_err(|_| DomainError::BadCursor),
            b'e' => <[u8; 8]>::try_from(payload)
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

fn checksum(body: &[u8]) -> [u8; CHECK_LEN] {
    let digest = Sha256::new_with_prefix(b"oms-cursor")
        .chain_update(body)
        .finalize();
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&digest[..CHECK_LEN]);
    out
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
