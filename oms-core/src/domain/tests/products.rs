//! Catalog: create, read, list with pagination, patch, stock moves.

use crate::domain::tests::support::TestDb;
use crate::domain::{DomainError, NewProduct, ProductPatch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_list_and_paginate() {
    for t in TestDb::all().await {
        let p = t.product("B-2", 1999, "EUR", 7).await;
        assert_eq!((p.version, p.available, p.reserved), (1, 7, 0));
        assert_eq!(t.svc.get_product("B-2").await.unwrap(), p);
        let json = serde_json::to_value(&p).unwrap();
        let at = json["created_at"].as_str().unwrap();
        assert!(at.ends_with('Z') && at.len() == 24, "{at}");
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 9, "{keys:?}");

        let dup = t
            .svc
            .create_product(NewProduct {
                sku: "B-2".into(),
                name: "again".into(),
                price_minor: 1,
                currency: "EUR".into(),
                available: None,
            })
            .await;
        assert!(
            matches!(dup, Err(DomainError::SkuExists { ref sku }) if sku == "B-2"),
            "{dup:?}"
        );
        assert!(matches!(
            t.svc.get_product("nope").await,
            Err(DomainError::NotFound { .. })
        ));

        for sku in ["A-1", "C-3", "D-4", "E-5"] {
            t.product(sku, 100, "EUR", 0).await;
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = t.svc.list_products(2, after.as_deref()).await.unwrap();
            assert!(page.items.len() <= 2);
            seen.extend(page.items.iter().map(|p| p.sku.clone()));
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ["A-1", "B-2", "C-3", "D-4", "E-5"], "{}", t.name);
        let all = t.svc.list_products(500, None).await.unwrap();
        assert_eq!(all.items.len(), 5);
        assert!(all.next_cursor.is_none());

        let first = t.svc.list_products(2, None).await.unwrap();
        let cursor = first.next_cursor.unwrap();
        let mut tampered = cursor.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [tampered.as_str(), "garbage", "", "%%%"] {
            let r = t.svc.list_products(2, Some(bad)).await;
            assert!(matches!(r, Err(DomainError::BadCursor)), "{bad}: {r:?}");
        }
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_with_if_match() {
    for t in TestDb::all().await {
        t.product("P", 500, "EUR", 1).await;
        let patch = ProductPatch {
            name: Some("New".into()),
            price_minor: None,
        };
        let r = t.svc.update_product("P", patch.clone(), Some(7)).await;
        assert!(
            matches!(
                r,
                Err(DomainError::VersionMismatch {
                    expected: 7,
                    actual: 1
                })
            ),
            "{r:?}"
        );
        let p = t
            .svc
            .update_product("P", patch.clone(), Some(1))
            .await
            .unwrap();
        assert_eq!((p.name.as_str(), p.price_minor, p.version), ("New", 500, 2));
        let p = t
            .svc
            .update_product(
                "P",
                ProductPatch {
                    name: None,
                    price_minor: Some(0),
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!((p.name.as_str(), p.price_minor, p.version), ("New", 0, 3));
        // Empty patch: no change, If-Match still checked.
        let p = t
            .svc
            .update_product("P", ProductPatch::default(), Some(3))
            .await
            .unwrap();
        assert_eq!(p.version, 3);
        assert!(
            t.svc
                .update_product("P", ProductPatch::default(), Some(2))
                .await
                .is_err()
        );
        let r = t
            .svc
            .update_product("missing", patch.clone(), Some(1))
            .await;
        assert!(matches!(r, Err(DomainError::NotFound { .. })), "{r:?}");
        let r = t
            .svc
            .update_product(
                "P",
                ProductPatch {
                    name: Some(String::new()),
                    price_minor: None,
                },
                None,
            )
            .await;
        assert!(matches!(r, Err(DomainError::Validation(_))));
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_moves() {
    for t in TestDb::all().await {
        t.product("S", 100, "EUR", 5).await;
        let p = t.svc.move_stock("S", 10, None).await.unwrap();
        assert_eq!((p.available, p.version), (15, 2));
        let p = t.svc.move_stock("S", -15, Some(2)).await.unwrap();
        assert_eq!((p.available, p.version), (0, 3));
        let r = t.svc.move_stock("S", -1, None).await;
        assert!(
            matches!(
                r,
                Err(DomainError::StockNegative {
                    delta: -1,
                    available: 0,
                    ..
                })
            ),
            "{r:?}"
        );
        assert_eq!(r.unwrap_err().code(), "stock_negative");
        let r = t.svc.move_stock("S", 1, Some(1)).await;
        assert!(
            matches!(
                r,
                Err(DomainError::VersionMismatch {
                    expected: 1,
                    actual: 3
                })
            ),
            "{r:?}"
        );
        assert!(matches!(
            t.svc.move_stock("S", 0, None).await,
            Err(DomainError::Validation(_))
        ));
        assert!(matches!(
            t.svc.move_stock("none", 1, None).await,
            Err(DomainError::NotFound { .. })
        ));
        assert!(matches!(
            t.svc.move_stock("S", i64::MIN, None).await,
            Err(DomainError::Validation(_))
        ));
        // Overflow of the counters is refused, not wrapped.
        t.svc.move_stock("S", i64::MAX - 20, None).await.unwrap();
        let r = t.svc.move_stock("S", 100, None).await;
        assert!(matches!(r, Err(DomainError::Validation(_))), "{r:?}");
        let (available, reserved, shipped, stock_in, version) = t.stock("S").await;
        assert_eq!(stock_in, available + reserved + shipped);
        assert_eq!(version, 4);
        t.finish().await;
    }
}
