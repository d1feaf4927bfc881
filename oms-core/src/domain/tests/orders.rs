//! Orders: creation, refusals, reads and lists, the status machine.

use crate::domain::tests::support::{TestDb, order};
use crate::domain::{Action, DomainError, EventType, OrderFilter, OrderStatus, Product};

async fn snapshot(t: &TestDb) -> Vec<Product> {
    t.svc.list_products(500, None).await.unwrap().items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_order_happy_path() {
    for t in TestDb::all().await {
        t.product("TSHIRT-M", 1999, "EUR", 10).await;
        t.product("MUG", 850, "EUR", 3).await;
        let mut input = order("cust-1", "EUR", &[("TSHIRT-M", 2), ("MUG", 3)]);
        input.note = Some("gift".into());
        let o = t.svc.create_order("alice", input).await.unwrap();
        assert_eq!(o.status, OrderStatus::Pending);
        assert_eq!(o.version, 1);
        assert_eq!(o.items.len(), 2);
        assert_eq!(
            (
                o.items[0].sku.as_str(),
                o.items[0].unit_price_minor,
                o.items[0].line_total_minor
            ),
            ("TSHIRT-M", 1999, 3998)
        );
        assert_eq!(
            (
                o.items[1].sku.as_str(),
                o.items[1].unit_price_minor,
                o.items[1].line_total_minor
            ),
            ("MUG", 850, 2550)
        );
        assert_eq!(o.total_minor, 3998 + 2550);
        assert_eq!(o.id.get_version_num(), 7);
        assert_eq!(t.stock("TSHIRT-M").await, (8, 2, 0, 10, 2));
        assert_eq!(t.stock("MUG").await, (0, 3, 0, 3, 2));

        let fetched = t.svc.get_order(o.id).await.unwrap();
        assert_eq!(fetched, o);
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["status"], "pending");
        assert_eq!(json["note"], "gift");
        assert_eq!(json["items"][0]["line_total_minor"], 3998);

        let events = t.svc.order_events(o.id, 50, None).await.unwrap();
        assert_eq!(events.items.len(), 1);
        assert_eq!(events.items[0].kind, EventType::Created);
        assert_eq!(events.items[0].actor, "alice");
        assert_eq!(
            serde_json::to_value(&events.items[0]).unwrap()["type"],
            "created"
        );

        // A later price change does not touch the order.
        t.svc
            .update_product(
                "MUG",
                crate::domain::ProductPatch {
                    name: None,
                    price_minor: Some(1),
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            t.svc.get_order(o.id).await.unwrap().items[1].unit_price_minor,
            850
        );
        assert!(matches!(
            t.svc.get_order(uuid::Uuid::now_v7()).await,
            Err(DomainError::NotFound { .. })
        ));
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_change_nothing() {
    for t in TestDb::all().await {
        t.product("A", 100, "EUR", 5).await;
        t.product("B", 200, "EUR", 1).await;
        t.product("U", 300, "USD", 9).await;
        t.product("BIG", i64::MAX / 2, "EUR", 100).await;
        let before = snapshot(&t).await;

        type Case<'a> = (Vec<(&'a str, i64)>, &'a str, &'a str);
        let cases: Vec<Case<'_>> = vec![
            (vec![("A", 1), ("B", 2)], "insufficient_stock", "B"),
            (vec![("A", 6)], "insufficient_stock", "A"),
            (vec![("A", 1), ("U", 1)], "currency_mismatch", "U"),
            (vec![("A", 1), ("ZZ", 1)], "unknown_sku", "ZZ"),
            // Precedence: unknown beats currency beats stock.
            (vec![("B", 5), ("U", 1), ("ZZ", 1)], "unknown_sku", "ZZ"),
            (vec![("B", 5), ("U", 1)], "currency_mismatch", "U"),
            (vec![("B", 5), ("A", 9)], "insufficient_stock", "B"),
            (vec![("A", 1), ("BIG", 3)], "validation_failed", ""),
        ];
        for (items, code, sku) in cases {
            let err = t
                .svc
                .create_order("bob", order("c", "EUR", &items))
                .await
                .unwrap_err();
            assert_eq!(err.code(), code, "{items:?}: {err:?}");
            match &err {
                DomainError::InsufficientStock {
                    sku: s,
                    requested,
                    available,
                } => {
                    assert_eq!(s, sku);
                    let q = items.iter().find(|i| i.0 == *s).unwrap().1;
                    assert_eq!(*requested, q);
                    assert!(*available < q);
                }
                DomainError::UnknownSku { sku: s } => assert_eq!(s, sku),
                DomainError::CurrencyMismatch {
                    sku: s,
                    product_currency,
                    order_currency,
                } => {
                    assert_eq!(
                        (
                            s.as_str(),
                            product_currency.as_str(),
                            order_currency.as_str()
                        ),
                        (sku, "USD", "EUR")
                    );
                }
                DomainError::Validation(errors) => assert_eq!(errors[0].field, "items[1].quantity"),
                other => panic!("{other:?}"),
            }
            assert_eq!(snapshot(&t).await, before, "{items:?} changed the catalog");
        }
        assert_eq!(t.count("orders").await, 0);
        assert_eq!(t.count("order_items").await, 0);
        assert_eq!(t.count("order_events").await, 0);
        let detail = DomainError::InsufficientStock {
            sku: "B".into(),
            requested: 2,
            available: 1,
        }
        .detail();
        assert_eq!(detail, "SKU B: requested 2, available 1");
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_and_stock_effects() {
    for t in TestDb::all().await {
        t.product("A", 100, "EUR", 10).await;
        t.product("B", 50, "EUR", 10).await;
        let o = t
            .svc
            .create_order("u", order("c", "EUR", &[("A", 2), ("B", 3)]))
            .await
            .unwrap();

        // Invalid from pending.
        for action in [Action::Ship, Action::Deliver] {
            let r = t.svc.transition(o.id, action, "u", None, None).await;
            assert!(
                matches!(
                    r,
                    Err(DomainError::InvalidTransition {
                        from: OrderStatus::Pending,
                        ..
                    })
                ),
                "{r:?}"
            );
        }
        // If-Match mismatch wins over the machine and changes nothing.
        let r = t
            .svc
            .transition(o.id, Action::Confirm, "u", None, Some(5))
            .await;
        assert!(
            matches!(
                r,
                Err(DomainError::VersionMismatch {
                    expected: 5,
                    actual: 1
                })
            ),
            "{r:?}"
        );
        let c = t
            .svc
            .transition(o.id, Action::Confirm, "u", Some("ok"), Some(1))
            .await
            .unwrap();
        assert_eq!(
            (c.status, c.version, c.items.len()),
            (OrderStatus::Confirmed, 2, 2)
        );
        assert_eq!(t.stock("A").await, (8, 2, 0, 10, 2));

        let s = t
            .svc
            .transition(o.id, Action::Ship, "carrier", None, None)
            .await
            .unwrap();
        assert_eq!((s.status, s.version), (OrderStatus::Shipped, 3));
        assert_eq!(t.stock("A").await, (8, 0, 2, 10, 3));
        assert_eq!(t.stock("B").await, (7, 0, 3, 10, 3));
        let r = t
            .svc
            .transition(o.id, Action::Cancel, "u", None, None)
            .await;
        assert!(
            matches!(
                r,
                Err(DomainError::InvalidTransition {
                    from: OrderStatus::Shipped,
                    action: Action::Cancel
                })
            ),
            "{r:?}"
        );
        let d = t
            .svc
            .transition(o.id, Action::Deliver, "u", None, Some(3))
            .await
            .unwrap();
        assert_eq!((d.status, d.version), (OrderStatus::Delivered, 4));
        assert_eq!(t.stock("A").await, (8, 0, 2, 10, 3));
        for action in Action::ALL {
            assert!(
                t.svc
                    .transition(o.id, action, "u", None, None)
                    .await
                    .is_err()
            );
        }

        // Cancel releases the reservation.
        let o2 = t
            .svc
            .create_order("u", order("c", "EUR", &[("A", 5)]))
            .await
            .unwrap();
        assert_eq!(t.stock("A").await, (3, 5, 2, 10, 4));
        let x = t
            .svc
            .transition(o2.id, Action::Cancel, "u", Some("changed mind"), None)
            .await
            .unwrap();
        assert_eq!((x.status, x.version), (OrderStatus::Cancelled, 2));
        assert_eq!(t.stock("A").await, (8, 0, 2, 10, 5));
        let r = t
            .svc
            .transition(o2.id, Action::Confirm, "u", None, None)
            .await;
        assert!(matches!(
            r,
            Err(DomainError::InvalidTransition {
                from: OrderStatus::Cancelled,
                ..
            })
        ));
        let r = t
            .svc
            .transition(uuid::Uuid::now_v7(), Action::Confirm, "u", None, None)
            .await;
        assert!(matches!(r, Err(DomainError::NotFound { .. })), "{r:?}");
        let r = t
            .svc
            .transition(o2.id, Action::Confirm, "u", Some(&"r".repeat(1001)), None)
            .await;
        assert!(matches!(r, Err(DomainError::Validation(_))));

        // History, oldest first, paginated.
        let kinds: Vec<_> = t
            .svc
            .order_events(o.id, 50, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                EventType::Created,
                EventType::Confirmed,
                EventType::Shipped,
                EventType::Delivered
            ]
        );
        let p1 = t.svc.order_events(o.id, 3, None).await.unwrap();
        assert_eq!(p1.items.len(), 3);
        assert_eq!(p1.items[1].reason.as_deref(), Some("ok"));
        assert_eq!(p1.items[2].actor, "carrier");
        let p2 = t
            .svc
            .order_events(o.id, 3, p1.next_cursor.as_deref())
            .await
            .unwrap();
        assert_eq!(p2.items.len(), 1);
        assert!(p2.next_cursor.is_none());
        assert!(matches!(
            t.svc.order_events(uuid::Uuid::now_v7(), 5, None).await,
            Err(DomainError::NotFound { .. })
        ));
        assert!(matches!(
            t.svc.order_events(o.id, 5, Some("bogus")).await,
            Err(DomainError::BadCursor)
        ));
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transitions_of_one_order() {
    for t in TestDb::all().await {
        t.product("A", 100, "EUR", 100).await;
        for _ in 0..5 {
            let o = t
                .svc
                .create_order("u", order("c", "EUR", &[("A", 1)]))
                .await
                .unwrap();
            t.svc
                .transition(o.id, Action::Confirm, "u", None, None)
                .await
                .unwrap();
            let mut tasks = Vec::new();
            for action in [Action::Ship, Action::Cancel, Action::Cancel, Action::Ship] {
                let svc = t.svc.clone();
                tasks.push(tokio::spawn(async move {
                    svc.transition(o.id, action, "u", None, None).await
                }));
            }
            let mut ok = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Ok(_) => ok += 1,
                    Err(DomainError::InvalidTransition { .. }) => {}
                    Err(other) => panic!("{other:?}"),
                }
            }
            assert_eq!(ok, 1, "{}", t.name);
            let o = t.svc.get_order(o.id).await.unwrap();
            assert_eq!(o.version, 3);
            assert_eq!(
                t.svc
                    .order_events(o.id, 50, None)
                    .await
                    .unwrap()
                    .items
                    .len(),
                3
            );
        }
        let (available, reserved, shipped, stock_in, _) = t.stock("A").await;
        assert_eq!(reserved, 0);
        assert_eq!(stock_in, available + reserved + shipped);
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_orders_filters_and_pages() {
    for t in TestDb::all().await {
        t.product("A", 10, "EUR", 1000).await;
        t.product("B", 20, "EUR", 1000).await;
        let mut ids = Vec::new();
        for i in 0..7 {
            let customer = if i % 2 == 0 { "even" } else { "odd" };
            let o = t
                .svc
                .create_order("u", order(customer, "EUR", &[("A", 1), ("B", i + 1)]))
                .await
                .unwrap();
            ids.push(o.id);
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        t.svc
            .transition(ids[0], Action::Cancel, "u", None, None)
            .await
            .unwrap();
        t.svc
            .transition(ids[3], Action::Cancel, "u", None, None)
            .await
            .unwrap();

        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = t
                .svc
                .list_orders(OrderFilter::default(), 3, after.as_deref())
                .await
                .unwrap();
            for o in &page.items {
                assert_eq!(o.items.len(), 2, "items loaded for every order");
                assert_eq!(o.items[1].quantity, o.items[1].line_total_minor / 20);
            }
            seen.extend(page.items.iter().map(|o| o.id));
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first, "{}", t.name);

        let even = t
            .svc
            .list_orders(
                OrderFilter {
                    customer_id: Some("even".into()),
                    status: None,
                },
                50,
                None,
            )
            .await
            .unwrap();
        assert_eq!(even.items.len(), 4);
        assert!(even.items.iter().all(|o| o.customer_id == "even"));
        let cancelled = t
            .svc
            .list_orders(
                OrderFilter {
                    customer_id: None,
                    status: Some(OrderStatus::Cancelled),
                },
                50,
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            cancelled.items.iter().map(|o| o.id).collect::<Vec<_>>(),
            [ids[3], ids[0]]
        );
        let both = t
            .svc
            .list_orders(
                OrderFilter {
                    customer_id: Some("odd".into()),
                    status: Some(OrderStatus::Cancelled),
                },
                50,
                None,
            )
            .await
            .unwrap();
        assert_eq!(both.items.len(), 1);
        let product_cursor = t
            .svc
            .list_products(1, None)
            .await
            .unwrap()
            .next_cursor
            .unwrap();
        assert!(matches!(
            t.svc
                .list_orders(OrderFilter::default(), 3, Some(&product_cursor))
                .await,
            Err(DomainError::BadCursor)
        ));
        t.finish().await;
    }
}
