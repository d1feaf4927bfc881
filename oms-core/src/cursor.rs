//! The envelope of every opaque pagination cursor: base64url (no padding)
//! of `[format][kind][payload][checksum]`, the checksum being the first 4
//! bytes of SHA-256 over the rest. It is an integrity check, not a secret:
//! any tampered, truncated or foreign string fails to open, so a bad cursor
//! is a 400, never a wrong page or a panic. Each list owns its `kind` byte
//! and payload layout.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const FORMAT: u8 = 1;
const CHECK_LEN: usize = 4;
/// Longest cursor string accepted (well above any issued).
const MAX_LEN: usize = 256;

fn checksum(body: &[u8]) -> [u8; CHECK_LEN] {
    let digest = Sha256::new_with_prefix(b"oms-cursor")
        .chain_update(body)
        .finalize();
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&digest[..CHECK_LEN]);
    out
}

/// Seals `payload` of list `kind` into an opaque cursor.
pub(crate) fn seal(kind: u8, payload: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(2 + payload.len() + CHECK_LEN);
    bytes.extend_from_slice(&[FORMAT, kind]);
    bytes.extend_from_slice(payload);
    let check = checksum(&bytes);
    bytes.extend_from_slice(&check);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Opens a cursor sealed by [`seal`]: its kind and payload, or `None` for
/// anything this module did not issue.
pub(crate) fn open(text: &str) -> Option<(u8, Vec<u8>)> {
    if text.is_empty() || text.len() > MAX_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    if bytes.len() < 2 + CHECK_LEN {
        return None;
    }
    let (body, check) = bytes.split_at(bytes.len() - CHECK_LEN);
    if checksum(body) != check || body[0] != FORMAT {
        return None;
    }
    Some((body[1], body[2..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_cursors_open_and_tampered_ones_do_not() {
        let text = seal(b'x', b"payload");
        assert_eq!(open(&text), Some((b'x', b"payload".to_vec())));
        let mut tampered = text.into_bytes();
        tampered[3] ^= 1;
        assert_eq!(open(&String::from_utf8_lossy(&tampered)), None);
        assert_eq!(open(""), None);
        assert_eq!(open("!!not base64!!"), None);
    }
}
