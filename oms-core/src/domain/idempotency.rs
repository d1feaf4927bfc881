//! Idempotency keys: the request fingerprint, the outcome type, and the
//! claim protocol on the `idempotency_keys` table.
//!
//! A key is claimed by inserting its row (`ON CONFLICT DO NOTHING`) with a
//! random `claim_id` and no outcome. The claimant stores the outcome in the
//! same transaction as the order (or, for refusals, right after the
//! rollback), guarded by its `claim_id`. A claim without an outcome older
//! than [`CLAIM_LEASE_MS`] is taken to be from a process that died and can
//! be taken over atomically (`UPDATE ... WHERE claim_id = <old>`); the old
//! claimant then fails to store and rolls back its order. Expired keys are
//! replaced the same way. All of it is plain SQL on one table, so it holds
//! across every process sharing the database.

use sea_orm::{ConnectionTrait, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::DomainError;
use super::sql;
use super::time::now_ms;

/// How long a claim without an outcome blocks its key (409
/// `idempotency_in_progress`) before another request may take it over.
pub const CLAIM_LEASE_MS: i64 = 60_000;

/// Longest `Idempotency-Key` (API.md).
pub const KEY_MAX: usize = 255;

/// The result of an idempotent create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotentOutcome {
    /// This request ran; its response (as rendered) is now stored.
    Fresh {
        /// HTTP status of the response.
        status: u16,
        /// Response body.
        body: String,
    },
    /// An earlier request with this key ran; here is its stored response
    /// (answer it with `Idempotent-Replayed: true`).
    Replayed {
        /// HTTP status of the stored response.
        status: u16,
        /// Stored response body.
        body: String,
    },
}

impl IdempotentOutcome {
    /// HTTP status of the response.
    pub fn status(&self) -> u16 {
        match self {
            IdempotentOutcome::Fresh { status, .. }
            | IdempotentOutcome::Replayed { status, .. } => *status,
        }
    }

    /// Response body.
    pub fn body(&self) -> &str {
        match self {
            IdempotentOutcome::Fresh { body, .. } | IdempotentOutcome::Replayed { body, .. } => {
                body
            }
        }
    }

    /// Whether this is a replay of an earlier response.
    pub fn is_replayed(&self) -> bool {
        matches!(self, IdempotentOutcome::Replayed { .. })
    }
}

/// SHA-256 hex of the canonical form of `body`: object keys sorted, no
/// whitespace. Two bodies that are the same JSON value hash alike whatever
/// their key order or spacing.
pub fn request_hash(body: &Json) -> String {
    let mut canonical = String::new();
    write_canonical(body, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Json, out: &mut String) {
    match value {
        Json::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// What claiming a key found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// The key is ours; `claim_id` guards storing the outcome.
    Claimed { claim_id: String },
    /// The key already has an outcome for the same request.
    Replay { status: u16, body: String },
}

/// Claims `(scope, key)` for a request hashing to `hash` (see the module
/// docs). Each statement is atomic on its own; no transaction is needed.
pub(crate) async fn claim<C: ConnectionTrait>(
    conn: &C,
    scope: &str,
    key: &str,
    hash: &str,
    ttl_ms: i64,
) -> Result<Claim, DomainError> {
    for _ in 0..4 {
        let now = now_ms();
        let claim_id = Uuid::new_v4().to_string();
        let inserted = sql::exec(
            conn,
            "INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, response, \
             created_at, expires_at, claim_id) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?) \
             ON CONFLICT (scope, idem_key) DO NOTHING",
            vec![
                scope.into(),
                key.into(),
                hash.into(),
                now.into(),
                now.saturating_add(ttl_ms).into(),
                claim_id.clone().into(),
            ],
        )
        .await?;
        if inserted == 1 {
            return Ok(Claim::Claimed { claim_id });
        }
        let Some(row) = sql::one(
            conn,
            "SELECT request_hash, status, response, created_at, expires_at, claim_id \
             FROM idempotency_keys WHERE scope = ? AND idem_key = ?",
            vec![scope.into(), key.into()],
        )
        .await?
        else {
            continue; // released in between: claim again
        };
        let stored_hash: String = row.try_get("", "request_hash")?;
        let status: Option<i32> = row.try_get("", "status")?;
        let response: Option<String> = row.try_get("", "response")?;
        let created_at: i64 = row.try_get("", "created_at")?;
        let expires_at: i64 = row.try_get("", "expires_at")?;
        let old_claim: String = row.try_get("", "claim_id")?;

        if expires_at <= now {
            // Expired: replace it, whatever it held.
            if take_over(
                conn,
                scope,
                key,
                hash,
                &old_claim,
                &claim_id,
                now,
                now + ttl_ms.max(0),
            )
            .await?
            {
                return Ok(Claim::Claimed { claim_id });
            }
            continue;
        }
        if stored_hash != hash {
            return Err(DomainError::IdempotencyKeyReused);
        }
        if let Some(status) = status {
            return Ok(Claim::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body: response.unwrap_or_default(),
            });
        }
        if now.saturating_sub(created_at) < CLAIM_LEASE_MS {
            return Err(DomainError::IdempotencyInProgress);
        }
        // A claim without an outcome past its lease: its process died.
        if take_over(
            conn, scope, key, hash, &old_claim, &claim_id, now, expires_at,
        )
        .await?
        {
            return Ok(Claim::Claimed { claim_id });
        }
    }
    Err(DomainError::IdempotencyInProgress)
}

/// Replaces the claim `old_claim` by `new_claim`, atomically: only if the row
/// still holds `old_claim` (an expired outcome or a stale claim).
#[allow(clippy::too_many_arguments)]
async fn take_over<C: ConnectionTrait>(
    conn: &C,
    scope: &str,
    key: &str,
    hash: &str,
    old_claim: &str,
    new_claim: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, DomainError> {
    let updated = sql::exec(
        conn,
        "UPDATE idempotency_keys SET request_hash = ?, status = NULL, response = NULL, \
         created_at = ?, expires_at = ?, claim_id = ? \
         WHERE scope = ? AND idem_key = ? AND claim_id = ?",
        vec![
            hash.into(),
            now.into(),
            expires_at.into(),
            new_claim.into(),
            scope.into(),
            key.into(),
            old_claim.into(),
        ],
    )
    .await?;
    Ok(updated == 1)
}

/// Stores a response for our claim (refusals, after their rollback).
/// Returns whether the claim was still ours.
pub(crate) async fn store<C: ConnectionTrait>(
    conn: &C,
    scope: &str,
    key: &str,
    claim_id: &str,
    status: u16,
    body: &str,
) -> Result<bool, DomainError> {
    let updated = sql::exec(
        conn,
        "UPDATE idempotency_keys SET status = ?, response = ? \
         WHERE scope = ? AND idem_key = ? AND claim_id = ? AND status IS NULL",
        vec![
            i32::from(status).into(),
            body.into(),
            scope.into(),
            key.into(),
            claim_id.into(),
        ],
    )
    .await?;
    Ok(updated == 1)
}

/// Deletes our claim (it has no outcome) so that the client can retry.
pub(crate) async fn release<C: ConnectionTrait>(
    conn: &C,
    scope: &str,
    key: &str,
    claim_id: &str,
) -> Result<(), DomainError> {
    sql::exec(
        conn,
        "DELETE FROM idempotency_keys \
         WHERE scope = ? AND idem_key = ? AND claim_id = ? AND status IS NULL",
        vec![scope.into(), key.into(), claim_id.into()],
    )
    .await?;
    Ok(())
}

/// Deletes every key that expired before `now`; returns how many.
pub(crate) async fn purge_expired<C: ConnectionTrait>(
    conn: &C,
    now: i64,
) -> Result<u64, DomainError> {
    let values: Vec<Value> = vec![now.into()];
    sql::exec(
        conn,
        "DELETE FROM idempotency_keys WHERE expires_at <= ?",
        values,
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_key_order_and_spacing() {
        let a: Json = serde_json::from_str(r#"{"b": 1, "a": [1, {"y": 2, "x": "é"}]}"#).unwrap();
        let b: Json = serde_json::from_str(r#"{"a":[1,{"x":"é","y":2}],"b":1}"#).unwrap();
        let c: Json = serde_json::from_str(r#"{"a":[{"x":"é","y":2},1],"b":1}"#).unwrap();
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_ne!(request_hash(&a), request_hash(&c));
        assert_eq!(request_hash(&a).len(), 64);
    }
}
