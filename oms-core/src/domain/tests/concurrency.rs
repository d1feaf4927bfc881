//! Oversell check: 64 tasks, 150 orders of 1 against 40 in stock.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::domain::DomainError;
use crate::domain::tests::support::{TestDb, order};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_oversell_under_concurrency() {
    for t in TestDb::all().await {
        t.product("HOT", 500, "EUR", 40).await;
        t.product("SIDE", 100, "EUR", 1000).await;
        let gate = Arc::new(Semaphore::new(64));
        let mut tasks = Vec::new();
        for i in 0..150 {
            let svc = t.svc.clone();
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                // Mix line orders so that PostgreSQL also sees lock-order conflicts.
                let items: &[(&str, i64)] = if i % 2 == 0 {
                    &[("HOT", 1), ("SIDE", 1)]
                } else {
                    &[("SIDE", 1), ("HOT", 1)]
                };
                svc.create_order("load", order(&format!("c{i}"), "EUR", items))
                    .await
            }));
        }
        let (mut ok, mut short) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(DomainError::InsufficientStock { sku, .. }) => {
                    assert_eq!(sku, "HOT");
                    short += 1;
                }
                Err(other) => panic!("{}: {other:?}", t.name),
            }
        }
        assert_eq!((ok, short), (40, 110), "{}", t.name);
        assert_eq!(t.stock("HOT").await, (0, 40, 0, 40, 41));
        assert_eq!(t.stock("SIDE").await, (960, 40, 0, 1000, 41));
        assert_eq!(t.count("orders").await, 40);
        assert_eq!(t.count("order_items").await, 80);
        t.finish().await;
    }
}
