//! Reading an order with 10 items: the real `OrderService::get_order` (two
//! statements: the order row, then all its items in one `SELECT ... ORDER
//! BY line_no`) against N+1 as a lazy-loading ORM would run it: the order
//! row, the item keys, then one `SELECT` per item row (12 statements).
//!
//! SQLite (WAL) in a temporary directory; 100 orders of 10 items each,
//! read in turn. Both read through one lease from the OMS pool and decode
//! into the same `Order`; the setup checks that they return equal orders.
//!
//! Run with `cargo bench --bench queries` (`-- --quick` for a fast pass).

#![allow(missing_docs)]

mod support;

use std::hint::black_box;

use anyhow::Context as _;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::core::db::Database;
use oms::core::domain::{NewOrder, NewOrderItem, NewProduct, Order, OrderItem, OrderStatus};
use sea_orm::prelude::ChronoDateTimeUtc;
use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};
use uuid::Uuid;

const ORDERS: usize = 100;
const ITEMS: usize = 10;

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Sqlite, sql, values)
}

fn timestamp(ms: i64) -> ChronoDateTimeUtc {
    ChronoDateTimeUtc::from_timestamp_millis(ms).unwrap_or_default()
}

/// The naive read: order row, item keys, then one statement per item.
async fn get_order_n_plus_one(db: &Database, id: Uuid) -> anyhow::Result<Order> {
    let conn = db.acquire().await?;
    let row: QueryResult = conn
        .query_one_raw(stmt(
            "SELECT id, customer_id, status, currency, total_minor, note, version, \
             created_at, updated_at FROM orders WHERE id = ?",
            [id.into()],
        ))
        .await?
        .with_context(|| format!("order {id} not found"))?;
    let status: String = row.try_get("", "status")?;
    let mut order = Order {
        id: row.try_get("", "id")?,
        customer_id: row.try_get("", "customer_id")?,
        status: status
            .parse::<OrderStatus>()
            .map_err(|_| anyhow::anyhow!("unknown status {status}"))?,
        currency: row.try_get("", "currency")?,
        items: Vec::new(),
        total_minor: row.try_get("", "total_minor")?,
        note: row.try_get("", "note")?,
        version: row.try_get("", "version")?,
        created_at: timestamp(row.try_get("", "created_at")?),
        updated_at: timestamp(row.try_get("", "updated_at")?),
    };
    let keys = conn
        .query_all_raw(stmt(
            "SELECT line_no FROM order_items WHERE order_id = ? ORDER BY line_no",
            [id.into()],
        ))
        .await?;
    for key in &keys {
        let line_no: i32 = key.try_get("", "line_no")?;
        let item = conn
            .query_one_raw(stmt(
                "SELECT sku, quantity, unit_price_minor, line_total_minor \
                 FROM order_items WHERE order_id = ? AND line_no = ?",
                [id.into(), line_no.into()],
            ))
            .await?
            .with_context(|| format!("item {line_no} of order {id} vanished"))?;
        order.items.push(OrderItem {
            sku: item.try_get("", "sku")?,
            quantity: item.try_get("", "quantity")?,
            unit_price_minor: item.try_get("", "unit_price_minor")?,
            line_total_minor: item.try_get("", "line_total_minor")?,
        });
    }
    Ok(order)
}

fn queries(c: &mut Criterion) {
    oms::link();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let oms = rt
        .block_on(
            oms::Oms::builder()
                .config(support::sqlite_config(dir.path()))
                .build(),
        )
        .expect("build the OMS on SQLite");
    let orders = oms.state().orders.clone();
    let db = oms.database().clone();

    let ids: Vec<Uuid> = rt.block_on(async {
        let skus: Vec<String> = (0..ITEMS).map(|i| format!("SKU-{i:03}")).collect();
        for (i, sku) in skus.iter().enumerate() {
            orders
                .create_product(NewProduct {
                    sku: sku.clone(),
                    name: format!("Product {i}"),
                    price_minor: 500 + 100 * i as i64,
                    currency: "EUR".to_owned(),
                    available: Some(1_000_000),
                })
                .await
                .expect("create product");
        }
        let mut ids = Vec::with_capacity(ORDERS);
        for n in 0..ORDERS {
            let order = orders
                .create_order(
                    "bench",
                    NewOrder {
                        customer_id: format!("customer-{}", n % 7),
                        currency: "EUR".to_owned(),
                        items: skus
                            .iter()
                            .enumerate()
                            .map(|(i, sku)| NewOrderItem {
                                sku: sku.clone(),
                                quantity: 1 + i as i64,
                            })
                            .collect(),
                        note: Some("leave at the door".to_owned()),
                    },
                )
                .await
                .expect("create order");
            ids.push(order.id);
        }
        for &id in &ids {
            let real = orders.get_order(id).await.expect("get_order");
            let naive = get_order_n_plus_one(&db, id).await.expect("N+1 read");
            assert_eq!(real.items.len(), ITEMS);
            assert_eq!(real, naive, "both reads return the same order");
        }
        ids
    });

    let mut group = c.benchmark_group("order_read_10_items");
    group.throughput(Throughput::Elements(1));
    group.bench_function("get_order_2_statements", |b| {
        let mut i = 0usize;
        b.to_async(&rt).iter(|| {
            i = (i + 1) % ORDERS;
            let id = ids[i];
            let orders = &orders;
            async move { black_box(orders.get_order(id).await.expect("get_order")) }
        });
    });
    group.bench_function("n_plus_1_12_statements", |b| {
        let mut i = 0usize;
        b.to_async(&rt).iter(|| {
            i = (i + 1) % ORDERS;
            let id = ids[i];
            let db = &db;
            async move { black_box(get_order_n_plus_one(db, id).await.expect("N+1 read")) }
        });
    });
    group.finish();
    rt.block_on(oms.shutdown());
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = queries
}
criterion_main!(benches);
