//! Property: whatever the sequence of creates, transitions and stock moves,
//! every product keeps `stock_in == available + reserved + shipped`, no
//! counter goes negative, and `reserved` is what open orders hold.

use proptest::prelude::*;

use crate::domain::sql;
use crate::domain::tests::support::{TestDb, order};
use crate::domain::{Action, DomainError};

const SKUS: [&str; 3] = ["P0", "P1", "P2"];

#[derive(Debug, Clone)]
enum Op {
    Create(Vec<(usize, i64)>),
    Transition(usize, Action),
    Restock(usize, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop::collection::btree_map(0..SKUS.len(), 1i64..6, 1..=3)
            .prop_map(|m| Op::Create(m.into_iter().collect())),
        4 => (0usize..16, prop::sample::select(Action::ALL.to_vec()))
            .prop_map(|(i, a)| Op::Transition(i, a)),
        1 => (0..SKUS.len(), -6i64..10).prop_filter("non-zero", |(_, d)| *d != 0)
            .prop_map(|(s, d)| Op::Restock(s, d)),
    ]
}

async fn check(t: &TestDb) {
    for sku in SKUS {
        let (available, reserved, shipped, stock_in, _) = t.stock(sku).await;
        assert!(available >= 0 && reserved >= 0 && shipped >= 0, "{sku}");
        assert_eq!(stock_in, available + reserved + shipped, "{sku}");
        let row = sql::one(
            &t.conn,
            "SELECT COALESCE(SUM(i.quantity), 0) AS q FROM order_items i JOIN orders o ON o.id = i.order_id \
             WHERE i.sku = ? AND o.status IN ('pending', 'confirmed')",
            vec![sku.into()],
        )
        .await
        .unwrap()
        .unwrap();
        let open: i64 = row.try_get("", "q").unwrap();
        assert_eq!(reserved, open, "{sku}");
        let row = sql::one(
            &t.conn,
            "SELECT COALESCE(SUM(i.quantity), 0) AS q FROM order_items i JOIN orders o ON o.id = i.order_id \
             WHERE i.sku = ? AND o.status IN ('shipped', 'delivered')",
            vec![sku.into()],
        )
        .await
        .unwrap()
        .unwrap();
        let out: i64 = row.try_get("", "q").unwrap();
        assert_eq!(shipped, out, "{sku}");
    }
}

async fn run(initial: Vec<i64>, ops: Vec<Op>) {
    let t = TestDb::sqlite().await;
    for (sku, available) in SKUS.iter().zip(initial) {
        t.product(sku, 100, "EUR", available).await;
    }
    let mut orders = Vec::new();
    for op in ops {
        match op {
            Op::Create(lines) => {
                let items: Vec<(&str, i64)> = lines.iter().map(|(s, q)| (SKUS[*s], *q)).collect();
                match t.svc.create_order("prop", order("c", "EUR", &items)).await {
                    Ok(o) => orders.push(o.id),
                    Err(DomainError::InsufficientStock { .. }) => {}
                    Err(other) => panic!("{other:?}"),
                }
            }
            Op::Transition(i, action) => {
                if let Some(id) = orders.get(i % orders.len().max(1)) {
                    match t.svc.transition(*id, action, "prop", None, None).await {
                        Ok(_) | Err(DomainError::InvalidTransition { .. }) => {}
                        Err(other) => panic!("{other:?}"),
                    }
                }
            }
            Op::Restock(s, delta) => match t.svc.move_stock(SKUS[s], delta, None).await {
                Ok(_) | Err(DomainError::StockNegative { .. }) => {}
                Err(other) => panic!("{other:?}"),
            },
        }
        check(&t).await;
    }
    t.finish().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn stock_invariant_holds(
        initial in prop::collection::vec(0i64..12, SKUS.len()),
        ops in prop::collection::vec(op(), 1..30),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(initial, ops));
    }
}
