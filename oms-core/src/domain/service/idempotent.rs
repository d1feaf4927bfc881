//! `create_order_idempotent`: `POST /v1/orders` with an `Idempotency-Key`.

use super::OrderService;
use super::create::Store;
use crate::domain::DomainError;
use crate::domain::idempotency::{self, Claim, IdempotentOutcome, KEY_MAX};
use crate::domain::order::{NewOrder, Order};
use crate::domain::sql;
use crate::domain::time::now_ms;

impl OrderService {
    /// Creates an order at most once per `(actor, key)`.
    ///
    /// 1. Validation failures are returned before anything is stored.
    /// 2. The key is claimed (scope = `actor`): a key used with another
    ///    `request_hash` is [`DomainError::IdempotencyKeyReused`]; one whose
    ///    first request is still running is
    ///    [`DomainError::IdempotencyInProgress`]; one with a stored outcome
    ///    is [`IdempotentOutcome::Replayed`].
    /// 3. The order is created and `render(&Ok(order))` is stored in the
    ///    same transaction. A refusal (unknown SKU, currency mismatch,
    ///    insufficient stock...) is rendered and stored after the rollback.
    ///    Either way the result is [`IdempotentOutcome::Fresh`].
    /// 4. A database error releases the claim (so the client can retry)
    ///    and is returned.
    ///
    /// If the returned future is dropped midway, the claim stays until
    /// [`idempotency::CLAIM_LEASE_MS`] has passed, then may be taken over.
    ///
    /// # Errors
    /// As listed above, plus [`DomainError::Validation`] for a key that is
    /// empty or longer than 255 characters (the HTTP layer checks first).
    pub async fn create_order_idempotent<R>(
        &self,
        actor: &str,
        key: &str,
        request_hash: &str,
        input: NewOrder,
        render: R,
    ) -> Result<IdempotentOutcome, DomainError>
    where
        R: Fn(&Result<Order, DomainError>) -> (u16, String) + Send + Sync,
    {
        input.validate()?;
        if key.is_empty() || key.chars().count() > KEY_MAX {
            return Err(DomainError::field(
                "Idempotency-Key",
                format!("must be 1-{KEY_MAX} characters"),
            ));
        }
        let scope = sql::actor(actor);
        let hash = request_hash.chars().take(64).collect::<String>();
        let claimed = self
            .db
            .retry(|| async {
                let conn = self.db.acquire_writer().await?;
                idempotency::claim(&*conn, &scope, key, &hash, self.idempotency_ttl_ms).await
            })
            .await?;
        let claim_id = match claimed {
            Claim::Replay { status, body } => {
                return Ok(IdempotentOutcome::Replayed { status, body });
            }
            Claim::Claimed { claim_id } => claim_id,
        };
        let store = Store {
            scope: &scope,
            key,
            claim_id: &claim_id,
            render: &render,
        };
        let result = self
            .db
            .retry(|| self.create_order_once(actor, &input, Some(&store)))
            .await;
        match result {
            Ok((_, Some((status, body)))) => Ok(IdempotentOutcome::Fresh { status, body }),
            Ok((order, None)) => {
                // Not reached: a create with a store always renders.
                let (status, body) = render(&Ok(order));
                Ok(IdempotentOutcome::Fresh { status, body })
            }
            // We lost the claim to a takeover: the other request answers.
            Err(DomainError::IdempotencyInProgress) => Err(DomainError::IdempotencyInProgress),
            Err(DomainError::Db(err)) => {
                self.release_claim(&scope, key, &claim_id).await;
                Err(DomainError::Db(err))
            }
            Err(refusal) => {
                let refused = Err(refusal);
                let (status, body) = render(&refused);
                let stored = self
                    .db
                    .retry(|| async {
                        let conn = self.db.acquire_writer().await?;
                        idempotency::store(&*conn, &scope, key, &claim_id, status, &body).await
                    })
                    .await;
                if let Err(err) = stored {
                    tracing::warn!(error = %err, "could not store an idempotent refusal; releasing the key");
                    self.release_claim(&scope, key, &claim_id).await;
                }
                Ok(IdempotentOutcome::Fresh { status, body })
            }
        }
    }

    /// Deletes idempotency keys whose TTL has passed; returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn purge_expired_idempotency_keys(&self) -> Result<u64, DomainError> {
        self.db
            .retry(|| async {
                let conn = self.db.acquire_writer().await?;
                idempotency::purge_expired(&*conn, now_ms()).await
            })
            .await
    }

    async fn release_claim(&self, scope: &str, key: &str, claim_id: &str) {
        let released = self
            .db
            .retry(|| async {
                let conn = self.db.acquire_writer().await?;
                idempotency::release(&*conn, scope, key, claim_id).await
            })
            .await;
        if let Err(err) = released {
            // The lease frees the key later.
            tracing::warn!(error = %err, "could not release an idempotency claim");
        }
    }
}
