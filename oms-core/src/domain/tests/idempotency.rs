//! Idempotent creation: replay, reuse, in progress, stale claims, stored
//! refusals, expiry, release on database errors.

use crate::config::OrdersConfig;
use crate::domain::idempotency::CLAIM_LEASE_MS;
use crate::domain::sql;
use crate::domain::tests::support::{TestDb, order};
use crate::domain::time::now_ms;
use crate::domain::{DomainError, IdempotentOutcome, Order, request_hash};

fn render(result: &Result<Order, DomainError>) -> (u16, String) {
    match result {
        Ok(order) => (201, serde_json::to_string(order).unwrap()),
        Err(err) => (err.http_status(), format!(r#"{{"code":"{}"}}"#, err.code())),
    }
}

fn hash_of(text: &str) -> String {
    request_hash(&serde_json::from_str(text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reuse_and_in_progress() {
    for t in TestDb::all().await {
        t.product("A", 100, "EUR", 10).await;
        let body = r#"{"customer_id":"c","currency":"EUR","items":[{"sku":"A","quantity":2}]}"#;
        let same = r#"{ "items": [ {"quantity": 2, "sku": "A"} ], "currency": "EUR", "customer_id": "c" }"#;
        assert_eq!(hash_of(body), hash_of(same));
        let input = order("c", "EUR", &[("A", 2)]);

        let first = t
            .svc
            .create_order_idempotent("alice", "k1", &hash_of(body), input.clone(), render)
            .await
            .unwrap();
        let IdempotentOutcome::Fresh {
            status: 201,
            body: stored,
        } = &first
        else {
            panic!("{first:?}")
        };
        let again = t
            .svc
            .create_order_idempotent("alice", "k1", &hash_of(same), input.clone(), render)
            .await
            .unwrap();
        assert_eq!(
            again,
            IdempotentOutcome::Replayed {
                status: 201,
                body: stored.clone()
            }
        );
        assert!(again.is_replayed());
        assert_eq!(t.count("orders").await, 1);
        assert_eq!(t.stock("A").await.0, 8);

        // Another body under the same key.
        let other = order("c", "EUR", &[("A", 3)]);
        let r = t
            .svc
            .create_order_idempotent("alice", "k1", &hash_of(r#"{"x":1}"#), other.clone(), render)
            .await;
        assert!(matches!(r, Err(DomainError::IdempotencyKeyReused)), "{r:?}");
        // The same key of another caller is another key.
        let bob = t
            .svc
            .create_order_idempotent("bob", "k1", &hash_of(body), input.clone(), render)
            .await
            .unwrap();
        assert!(!bob.is_replayed());
        assert_eq!(t.count("orders").await, 2);

        // In progress: a claim without an outcome, fresh.
        let now = now_ms();
        sql::exec(
            &t.conn,
            "INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, response, created_at, expires_at, claim_id) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?)",
            vec!["alice".into(), "busy".into(), hash_of(body).into(), now.into(), (now + 86_400_000).into(), "other".into()],
        )
        .await
        .unwrap();
        let r = t
            .svc
            .create_order_idempotent("alice", "busy", &hash_of(body), input.clone(), render)
            .await;
        assert!(
            matches!(r, Err(DomainError::IdempotencyInProgress)),
            "{r:?}"
        );
        // ... unless its lease ran out: then it is taken over.
        sql::exec(
            &t.conn,
            "UPDATE idempotency_keys SET created_at = ? WHERE idem_key = ?",
            vec![(now - CLAIM_LEASE_MS - 1).into(), "busy".into()],
        )
        .await
        .unwrap();
        let r = t
            .svc
            .create_order_idempotent("alice", "busy", &hash_of(body), input.clone(), render)
            .await
            .unwrap();
        assert!(
            matches!(r, IdempotentOutcome::Fresh { status: 201, .. }),
            "{r:?}"
        );
        // The old claimant can no longer store its outcome.
        assert!(
            !crate::domain::idempotency::store(&t.conn, "alice", "busy", "other", 201, "{}")
                .await
                .unwrap()
        );
        assert_eq!(t.count("orders").await, 3);

        // Validation failures are not stored.
        let bad = order("c", "EUR", &[("A", 0)]);
        let r = t
            .svc
            .create_order_idempotent("alice", "v", &hash_of(r#"{"bad":1}"#), bad, render)
            .await;
        assert!(matches!(r, Err(DomainError::Validation(_))));
        let dup = order("c", "EUR", &[("A", 1), ("A", 1)]);
        let r = t
            .svc
            .create_order_idempotent("alice", "v", &hash_of(r#"{"bad":1}"#), dup, render)
            .await;
        assert!(matches!(r, Err(DomainError::DuplicateSku { .. })));
        assert_eq!(t.count("idempotency_keys").await, 3);
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_stored_and_replayed() {
    for t in TestDb::all().await {
        t.product("A", 100, "EUR", 1).await;
        let input = order("c", "EUR", &[("A", 5)]);
        let h = hash_of(r#"{"n":5}"#);
        let first = t
            .svc
            .create_order_idempotent("u", "k", &h, input.clone(), render)
            .await
            .unwrap();
        assert_eq!(
            first,
            IdempotentOutcome::Fresh {
                status: 409,
                body: r#"{"code":"insufficient_stock"}"#.into()
            }
        );
        // Stock arrives, but the key answers as the first time.
        t.svc.move_stock("A", 100, None).await.unwrap();
        let again = t
            .svc
            .create_order_idempotent("u", "k", &h, input.clone(), render)
            .await
            .unwrap();
        assert_eq!(
            again,
            IdempotentOutcome::Replayed {
                status: 409,
                body: r#"{"code":"insufficient_stock"}"#.into()
            }
        );
        assert_eq!(t.count("orders").await, 0);
        let unknown = order("c", "EUR", &[("NOPE", 1)]);
        let r = t
            .svc
            .create_order_idempotent("u", "k2", &hash_of(r#"{"n":6}"#), unknown, render)
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert!(r.body().contains("unknown_sku"));
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_are_replaced_and_purged() {
    let config = OrdersConfig {
        idempotency_ttl_s: 0,
        ..OrdersConfig::default()
    };
    for t in TestDb::all_with(&config).await {
        t.product("A", 100, "EUR", 10).await;
        let input = order("c", "EUR", &[("A", 1)]);
        let h = hash_of(r#"{"a":1}"#);
        let r1 = t
            .svc
            .create_order_idempotent("u", "k", &h, input.clone(), render)
            .await
            .unwrap();
        assert!(!r1.is_replayed());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        // Expired (TTL 0): a new request with the key runs again, even with another body.
        let r2 = t
            .svc
            .create_order_idempotent("u", "k", &hash_of(r#"{"a":2}"#), input.clone(), render)
            .await
            .unwrap();
        assert!(!r2.is_replayed());
        assert_ne!(r1.body(), r2.body());
        assert_eq!(t.count("orders").await, 2);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(t.svc.purge_expired_idempotency_keys().await.unwrap(), 1);
        assert_eq!(t.count("idempotency_keys").await, 0);
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_task_deletes_expired_keys_and_keeps_live_ones() {
    let expiring = OrdersConfig {
        idempotency_ttl_s: 0,
        ..OrdersConfig::default()
    };
    for t in TestDb::all_with(&expiring).await {
        t.product("A", 100, "EUR", 10).await;
        let input = order("c", "EUR", &[("A", 1)]);
        for key in ["k1", "k2"] {
            t.svc
                .create_order_idempotent("u", key, &hash_of(r#"{"a":1}"#), input.clone(), render)
                .await
                .unwrap();
        }
        // A key with the default TTL, stored through a second service on the
        // same database: the purge must leave it alone.
        let keeping =
            crate::domain::OrderService::new(t.svc.database().clone(), &OrdersConfig::default());
        keeping
            .create_order_idempotent("u", "live", &hash_of(r#"{"a":1}"#), input.clone(), render)
            .await
            .unwrap();
        assert_eq!(t.count("idempotency_keys").await, 3);

        let purge = crate::domain::IdempotencyPurge::start(
            t.svc.clone(),
            std::time::Duration::from_millis(20),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while t.count("idempotency_keys").await > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the purge task never ran"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        drop(purge);
        let replay = keeping
            .create_order_idempotent("u", "live", &hash_of(r#"{"a":1}"#), input.clone(), render)
            .await
            .unwrap();
        assert!(replay.is_replayed(), "the live key was purged");
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_same_key_creates_one_order() {
    for t in TestDb::all().await {
        t.product("A", 100, "EUR", 100).await;
        let h = hash_of(r#"{"same":true}"#);
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let svc = t.svc.clone();
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                svc.create_order_idempotent("u", "race", &h, order("c", "EUR", &[("A", 1)]), render)
                    .await
            }));
        }
        let (mut fresh, mut replayed, mut busy) = (0, 0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(IdempotentOutcome::Fresh { .. }) => fresh += 1,
                Ok(IdempotentOutcome::Replayed { .. }) => replayed += 1,
                Err(DomainError::IdempotencyInProgress) => busy += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(fresh, 1, "{}: replayed {replayed}, busy {busy}", t.name);
        assert_eq!(t.count("orders").await, 1);
        assert_eq!(t.stock("A").await.0, 99);
        t.finish().await;
    }
}
