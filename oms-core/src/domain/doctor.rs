//! The database doctor: read-only checks of the invariants every domain
//! operation keeps, run with [`check_invariants`] (`oms-cli doctor`).
//!
//! Each [`Check`] is one set-based `SELECT` that returns only the offending
//! rows (no per-row queries), written once for SQLite and PostgreSQL.
//! Each check compares rows within that one statement, so it sees them as
//! of one moment and a live server's commits cannot make it report a
//! false violation. All checks also run in one read-only transaction, so
//! the report describes one state of the database (each listing agrees
//! with its count, and the checks with each other):
//! - PostgreSQL (and compatible engines): `REPEATABLE READ READ ONLY`, a
//!   snapshot taken at the first statement. CockroachDB runs it as
//!   `SERIALIZABLE`; a 40001 restart is retried as a whole by
//!   [`Database::retry`].
//! - SQLite: a deferred transaction; in WAL mode (the default pool's) a
//!   read transaction sees the database as of its first read and does not
//!   block writers. In rollback-journal mode it holds a shared lock, so
//!   writers wait for the doctor instead.
//!
//! Which statuses hold a reservation, which have consumed it, and which
//! history leads to which status are derived from the status machine
//! ([`OrderStatus`], [`Action`]) by exhaustive matches, so a new status
//! cannot be forgotten here.

use std::fmt;

use sea_orm::{
    AccessMode, DatabaseBackend, DatabaseTransaction, DbErr, IsolationLevel, QueryResult,
    TransactionTrait, Value,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::DomainError;
use super::sql;
use super::status::{Action, EventType, OrderStatus};
use crate::db::Database;

/// One invariant the doctor verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Per product: `stock_in = available + reserved + shipped`.
    StockConservation,
    /// Per product: `available`, `reserved` and `shipped` are `>= 0`.
    StockNonNegative,
    /// Per product: `reserved` = the quantities of its lines on orders
    /// that hold a reservation (pending, confirmed).
    ReservedMatchesOrders,
    /// Per product: `shipped` = the quantities of its lines on orders whose
    /// stock has left (shipped, delivered).
    ShippedMatchesOrders,
    /// Per order: at least one line.
    OrderHasLines,
    /// Per order: `total_minor` = the sum of its lines' `line_total_minor`.
    OrderTotal,
    /// Per line: `quantity >= 1` and
    /// `line_total_minor = quantity * unit_price_minor`.
    LineTotal,
    /// Per line: the product exists and is priced in the order's currency.
    LineProduct,
    /// Per order: its events are numbered 1, 2, ... n without gaps.
    EventSequence,
    /// Per order: event 1 exists and is `created`.
    FirstEventCreated,
    /// Per event: the status machine allows it after the order's previous
    /// event (the one with the next lower `seq`, gaps or not).
    EventTransitions,
    /// Per order: the last event leads to the order's status.
    LastEventMatchesStatus,
    /// Lines or events whose order does not exist.
    OrphanRows,
}

impl Check {
    /// Every check, in the order they run and are reported.
    pub const ALL: [Check; 13] = [
        Check::StockConservation,
        Check::StockNonNegative,
        Check::ReservedMatchesOrders,
        Check::ShippedMatchesOrders,
        Check::OrderHasLines,
        Check::OrderTotal,
        Check::LineTotal,
        Check::LineProduct,
        Check::EventSequence,
        Check::FirstEventCreated,
        Check::EventTransitions,
        Check::LastEventMatchesStatus,
        Check::OrphanRows,
    ];

    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::StockConservation => "stock_conservation",
            Check::StockNonNegative => "stock_non_negative",
            Check::ReservedMatchesOrders => "reserved_matches_orders",
            Check::ShippedMatchesOrders => "shipped_matches_orders",
            Check::OrderHasLines => "order_has_lines",
            Check::OrderTotal => "order_total",
            Check::LineTotal => "line_total",
            Check::LineProduct => "line_product",
            Check::EventSequence => "event_sequence",
            Check::FirstEventCreated => "first_event_created",
            Check::EventTransitions => "event_transitions",
            Check::LastEventMatchesStatus => "last_event_matches_status",
            Check::OrphanRows => "orphan_rows",
        }
    }

    /// What the check verifies, in one line.
    pub fn description(self) -> &'static str {
        match self {
            Check::StockConservation => "products: stock_in = available + reserved + shipped",
            Check::StockNonNegative => "products: available, reserved, shipped >= 0",
            Check::ReservedMatchesOrders => {
                "products: reserved = quantities on pending and confirmed orders"
            }
            Check::ShippedMatchesOrders => {
                "products: shipped = quantities on shipped and delivered orders"
            }
            Check::OrderHasLines => "orders: at least one line",
            Check::OrderTotal => "orders: total_minor = sum of line_total_minor",
            Check::LineTotal => "order lines: quantity >= 1, line_total = quantity * unit_price",
            Check::LineProduct => "order lines: product exists, in the order's currency",
            Check::EventSequence => "order events: seq contiguous from 1",
            Check::FirstEventCreated => "order events: the first event is created",
            Check::EventTransitions => "order events: each follows the status machine",
            Check::LastEventMatchesStatus => "order events: the last one agrees with the status",
            Check::OrphanRows => "order lines and events: their order exists",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The row a violation is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entity {
    /// A product.
    Product {
        /// Its SKU.
        sku: String,
    },
    /// An order.
    Order {
        /// Its id.
        id: Uuid,
    },
    /// One line of an order.
    OrderLine {
        /// The order.
        order_id: Uuid,
        /// The line number (1-based).
        line_no: i64,
    },
    /// One event of an order's history.
    OrderEvent {
        /// The order.
        order_id: Uuid,
        /// The event's sequence number.
        seq: i64,
    },
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Product { sku } => write!(f, "product {sku:?}"),
            Entity::Order { id } => write!(f, "order {id}"),
            Entity::OrderLine { order_id, line_no } => {
                write!(f, "order {order_id} line {line_no}")
            }
            Entity::OrderEvent { order_id, seq } => write!(f, "order {order_id} event {seq}"),
        }
    }
}

/// One broken invariant: which row, what it should be, what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The offending row.
    pub entity: Entity,
    /// What the invariant requires, with the values it is computed from.
    pub expected: String,
    /// What the database holds.
    pub actual: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.entity, self.expected, self.actual
        )
    }
}

/// The result of one [`Check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The check.
    pub check: Check,
    /// What it verifies ([`Check::description`]).
    pub description: String,
    /// How many rows violate it.
    pub violations: u64,
    /// The first violations (at most the `max_listed` asked for), in a
    /// stable order.
    pub listed: Vec<Violation>,
}

/// What [`check_invariants`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// One outcome per [`Check`], in [`Check::ALL`] order.
    pub checks: Vec<CheckOutcome>,
}

impl DoctorReport {
    /// Violations over all checks.
    pub fn violations(&self) -> u64 {
        self.checks.iter().map(|c| c.violations).sum()
    }

    /// True when no check found a violation.
    pub fn is_consistent(&self) -> bool {
        self.violations() == 0
    }

    /// The outcome of `check`.
    pub fn outcome(&self, check: Check) -> Option<&CheckOutcome> {
        self.checks.iter().find(|c| c.check == check)
    }
}

/// Runs every [`Check`] on one read-only snapshot of `db` and lists at
/// most `max_listed` violations per check (the counts are exact).
///
/// # Errors
/// A database error (the schema is missing, the database is unreachable,
/// a value does not fit its type).
pub async fn check_invariants(
    db: &Database,
    max_listed: usize,
) -> Result<DoctorReport, DomainError> {
    db.retry(|| async {
        let conn = db.acquire().await?;
        let backend = conn.get_database_backend();
        let txn = match backend {
            // SQLite ignores (and warns about) isolation and access modes.
            DatabaseBackend::Sqlite => conn.begin().await?,
            _ => {
                conn.begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await?
            }
        };
        let mut checks = Vec::with_capacity(Check::ALL.len());
        let mut failed = None;
        for check in Check::ALL {
            match run_check(&txn, check, max_listed).await {
                Ok(outcome) => checks.push(outcome),
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        // Read-only: nothing to keep; the rollback error matters less than
        // a check's.
        let ended = txn.rollback().await;
        if let Some(err) = failed {
            return Err(err);
        }
        ended?;
        Ok(DoctorReport {
            backend: match backend {
                DatabaseBackend::Sqlite => "sqlite",
                DatabaseBackend::Postgres => "postgres",
                _ => "other",
            }
            .to_owned(),
            checks,
        })
    })
    .await
}

/// Runs one check: its offending rows (at most `max_listed`, plus one to
/// know whether there are more) and, only when there are more, the count.
async fn run_check(
    txn: &DatabaseTransaction,
    check: Check,
    max_listed: usize,
) -> Result<CheckOutcome, DomainError> {
    let query = query(check);
    let rows = sql::all(
        txn,
        &format!("{} LIMIT {}", query.sql, max_listed.saturating_add(1)),
        query.values.clone(),
    )
    .await?;
    let violations = if rows.len() > max_listed {
        let row = sql::one(
            txn,
            &format!("SELECT COUNT(*) AS n FROM ({}) AS v", query.sql),
            query.values,
        )
        .await?;
        let n: i64 = match row {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        u64::try_from(n).unwrap_or(0)
    } else {
        rows.len() as u64
    };
    let listed = rows
        .iter()
        .take(max_listed)
        .map(|row| decode(check, row))
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(CheckOutcome {
        check,
        description: check.description().to_owned(),
        violations,
        listed,
    })
}

/// The statuses whose lines are counted in `products.reserved`.
fn holds_reservation(status: OrderStatus) -> bool {
    match status {
        OrderStatus::Pending | OrderStatus::Confirmed => true,
        OrderStatus::Shipped | OrderStatus::Delivered | OrderStatus::Cancelled => false,
    }
}

/// The statuses whose lines are counted in `products.shipped`: the
/// reservation was consumed by `ship` and nothing gives stock back after.
fn stock_shipped(status: OrderStatus) -> bool {
    match status {
        OrderStatus::Shipped | OrderStatus::Delivered => true,
        OrderStatus::Pending | OrderStatus::Confirmed | OrderStatus::Cancelled => false,
    }
}

/// The event that leads an order into `status`.
fn event_into(status: OrderStatus) -> EventType {
    match status {
        OrderStatus::Pending => EventType::Created,
        OrderStatus::Confirmed => EventType::Confirmed,
        OrderStatus::Shipped => EventType::Shipped,
        OrderStatus::Delivered => EventType::Delivered,
        OrderStatus::Cancelled => EventType::Cancelled,
    }
}

/// Every `(previous event, next event)` pair the status machine allows.
fn allowed_successions() -> Vec<(EventType, EventType)> {
    Action::ALL
        .iter()
        .flat_map(|action| {
            action
                .allowed_from()
                .iter()
                .map(|from| (event_into(*from), action.event()))
        })
        .collect()
}

/// The statuses for which `pick` is true, as `?` placeholders and values.
fn statuses(pick: fn(OrderStatus) -> bool) -> (String, Vec<Value>) {
    let picked: Vec<Value> = OrderStatus::ALL
        .into_iter()
        .filter(|s| pick(*s))
        .map(|s| Value::from(s.as_str()))
        .collect();
    (vec!["?"; picked.len()].join(", "), picked)
}

/// `(a = ? AND b = ?) OR ...` over `pairs`, with the values.
fn pairs_sql(a: &str, b: &str, pairs: &[(&'static str, &'static str)]) -> (String, Vec<Value>) {
    let sql = vec![format!("({a} = ? AND {b} = ?)"); pairs.len()].join(" OR ");
    let values = pairs
        .iter()
        .flat_map(|(x, y)| [Value::from(*x), Value::from(*y)])
        .collect();
    (sql, values)
}

/// A check's SQL (offending rows only, in a stable order) and its values.
struct Query {
    sql: String,
    values: Vec<Value>,
}

fn query(check: Check) -> Query {
    let (sql, values) = match check {
        Check::StockConservation => (
            "SELECT sku, stock_in, available, reserved, shipped FROM products \
             WHERE stock_in <> available + reserved + shipped ORDER BY sku"
                .to_owned(),
            vec![],
        ),
        Check::StockNonNegative => (
            "SELECT sku, available, reserved, shipped FROM products \
             WHERE available < 0 OR reserved < 0 OR shipped < 0 ORDER BY sku"
                .to_owned(),
            vec![],
        ),
        Check::ReservedMatchesOrders | Check::ShippedMatchesOrders => {
            let (column, pick): (&str, fn(OrderStatus) -> bool) =
                if check == Check::ReservedMatchesOrders {
                    ("reserved", holds_reservation)
                } else {
                    ("shipped", stock_shipped)
                };
            let (list, values) = statuses(pick);
            (
                format!(
                    "SELECT p.sku, p.{column} AS counter, CAST(COALESCE(h.q, 0) AS BIGINT) AS held \
                     FROM products p LEFT JOIN (SELECT i.sku, SUM(i.quantity) AS q \
                     FROM order_items i JOIN orders o ON o.id = i.order_id \
                     WHERE o.status IN ({list}) GROUP BY i.sku) h ON h.sku = p.sku \
                     WHERE p.{column} <> COALESCE(h.q, 0) ORDER BY p.sku"
                ),
                values,
            )
        }
        Check::OrderHasLines => (
            "SELECT o.id FROM orders o WHERE NOT EXISTS \
             (SELECT 1 FROM order_items i WHERE i.order_id = o.id) ORDER BY o.id"
                .to_owned(),
            vec![],
        ),
        Check::OrderTotal => (
            "SELECT o.id, o.total_minor, CAST(SUM(i.line_total_minor) AS BIGINT) AS lines_total, \
             COUNT(*) AS lines FROM orders o JOIN order_items i ON i.order_id = o.id \
             GROUP BY o.id, o.total_minor HAVING o.total_minor <> SUM(i.line_total_minor) \
             ORDER BY o.id"
                .to_owned(),
            vec![],
        ),
        // The product is computed as NUMERIC (PostgreSQL) so that a
        // corrupted row cannot overflow BIGINT and abort the whole run.
        Check::LineTotal => (
            "SELECT order_id, line_no, quantity, unit_price_minor, line_total_minor \
             FROM order_items WHERE quantity < 1 \
             OR line_total_minor <> CAST(quantity AS NUMERIC) * unit_price_minor \
             ORDER BY order_id, line_no"
                .to_owned(),
            vec![],
        ),
        Check::LineProduct => (
            "SELECT i.order_id, i.line_no, i.sku, o.currency AS order_currency, \
             p.currency AS product_currency FROM order_items i \
             JOIN orders o ON o.id = i.order_id LEFT JOIN products p ON p.sku = i.sku \
             WHERE p.sku IS NULL OR p.currency <> o.currency ORDER BY i.order_id, i.line_no"
                .to_owned(),
            vec![],
        ),
        Check::EventSequence => (
            "SELECT order_id, COUNT(*) AS n, CAST(MIN(seq) AS BIGINT) AS lo, \
             CAST(MAX(seq) AS BIGINT) AS hi FROM order_events GROUP BY order_id \
             HAVING MIN(seq) <> 1 OR MAX(seq) <> COUNT(*) ORDER BY order_id"
                .to_owned(),
            vec![],
        ),
        Check::FirstEventCreated => (
            "SELECT o.id, e.type FROM orders o \
             LEFT JOIN order_events e ON e.order_id = o.id AND e.seq = 1 \
             WHERE e.type IS NULL OR e.type <> ? ORDER BY o.id"
                .to_owned(),
            vec![EventType::Created.as_str().into()],
        ),
        // Window functions (SQLite >= 3.25) read the events once, in
        // primary-key order; a correlated "previous event" subquery per
        // row was 5 times slower on 480k events.
        Check::EventTransitions => {
            let pairs: Vec<_> = allowed_successions()
                .into_iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let (allowed, values) = pairs_sql("prev", "next", &pairs);
            (
                format!(
                    "SELECT order_id, seq, prev, next FROM (SELECT order_id, \
                     CAST(seq AS BIGINT) AS seq, type AS next, \
                     LAG(type) OVER (PARTITION BY order_id ORDER BY seq) AS prev \
                     FROM order_events) AS w \
                     WHERE prev IS NOT NULL AND NOT ({allowed}) ORDER BY order_id, seq"
                ),
                values,
            )
        }
        Check::LastEventMatchesStatus => {
            let pairs: Vec<_> = OrderStatus::ALL
                .into_iter()
                .map(|s| (s.as_str(), event_into(s).as_str()))
                .collect();
            let (agree, values) = pairs_sql("o.status", "e.type", &pairs);
            (
                format!(
                    "SELECT o.id, o.status, e.type FROM orders o \
                     JOIN (SELECT order_id, type, \
                     ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY seq DESC) AS rn \
                     FROM order_events) AS e ON e.order_id = o.id AND e.rn = 1 \
                     WHERE NOT ({agree}) ORDER BY o.id"
                ),
                values,
            )
        }
        Check::OrphanRows => (
            "SELECT order_id, kind, n FROM (\
             SELECT x.order_id, 'order_items' AS kind, COUNT(*) AS n FROM order_items x \
             LEFT JOIN orders o ON o.id = x.order_id WHERE o.id IS NULL GROUP BY x.order_id \
             UNION ALL \
             SELECT x.order_id, 'order_events' AS kind, COUNT(*) AS n FROM order_events x \
             LEFT JOIN orders o ON o.id = x.order_id WHERE o.id IS NULL GROUP BY x.order_id\
             ) AS orphans ORDER BY order_id, kind"
                .to_owned(),
            vec![],
        ),
    };
    Query { sql, values }
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, col: &str) -> Result<T, DbErr> {
    row.try_get::<T>("", col)
}

/// Reads an integer column that is INTEGER on PostgreSQL (`line_no`).
fn get_int(row: &QueryResult, col: &str) -> Result<i64, DbErr> {
    get::<i32>(row, col).map(i64::from)
}

/// Turns one offending row of `check` into a [`Violation`].
fn decode(check: Check, row: &QueryResult) -> Result<Violation, DbErr> {
    let product = |row: &QueryResult| -> Result<Entity, DbErr> {
        Ok(Entity::Product {
            sku: get(row, "sku")?,
        })
    };
    let order = |col: &str| -> Result<Entity, DbErr> { Ok(Entity::Order { id: get(row, col)? }) };
    let line = || -> Result<Entity, DbErr> {
        Ok(Entity::OrderLine {
            order_id: get(row, "order_id")?,
            line_no: get_int(row, "line_no")?,
        })
    };
    let (entity, expected, actual) = match check {
        Check::StockConservation => {
            let (a, r, s): (i64, i64, i64) = (
                get(row, "available")?,
                get(row, "reserved")?,
                get(row, "shipped")?,
            );
            let sum = i128::from(a) + i128::from(r) + i128::from(s);
            (
                product(row)?,
                format!("stock_in = available + reserved + shipped = {a} + {r} + {s} = {sum}"),
                format!("stock_in = {}", get::<i64>(row, "stock_in")?),
            )
        }
        Check::StockNonNegative => (
            product(row)?,
            "available >= 0, reserved >= 0, shipped >= 0".to_owned(),
            format!(
                "available = {}, reserved = {}, shipped = {}",
                get::<i64>(row, "available")?,
                get::<i64>(row, "reserved")?,
                get::<i64>(row, "shipped")?
            ),
        ),
        Check::ReservedMatchesOrders | Check::ShippedMatchesOrders => {
            let (column, orders) = if check == Check::ReservedMatchesOrders {
                ("reserved", "pending and confirmed")
            } else {
                ("shipped", "shipped and delivered")
            };
            (
                product(row)?,
                format!(
                    "{column} = {} (the quantities on its {orders} orders)",
                    get::<i64>(row, "held")?
                ),
                format!("{column} = {}", get::<i64>(row, "counter")?),
            )
        }
        Check::OrderHasLines => (
            order("id")?,
            "at least one line".to_owned(),
            "no lines".to_owned(),
        ),
        Check::OrderTotal => (
            order("id")?,
            format!(
                "total_minor = {} (the sum of its {} line totals)",
                get::<i64>(row, "lines_total")?,
                get::<i64>(row, "lines")?
            ),
            format!("total_minor = {}", get::<i64>(row, "total_minor")?),
        ),
        Check::LineTotal => {
            let (q, p, total): (i64, i64, i64) = (
                get(row, "quantity")?,
                get(row, "unit_price_minor")?,
                get(row, "line_total_minor")?,
            );
            let product = i128::from(q) * i128::from(p);
            (
                line()?,
                format!(
                    "quantity >= 1 and line_total_minor = quantity * unit_price_minor = \
                     {q} * {p} = {product}"
                ),
                format!("quantity = {q}, line_total_minor = {total}"),
            )
        }
        Check::LineProduct => {
            let sku: String = get(row, "sku")?;
            let order_currency: String = get(row, "order_currency")?;
            let actual = match get::<Option<String>>(row, "product_currency")? {
                Some(currency) => format!("product {sku:?} is priced in {currency}"),
                None => format!("no product {sku:?}"),
            };
            (
                line()?,
                format!("product {sku:?} priced in {order_currency}"),
                actual,
            )
        }
        Check::EventSequence => {
            let n: i64 = get(row, "n")?;
            (
                Entity::Order {
                    id: get(row, "order_id")?,
                },
                format!("events numbered 1..{n}"),
                format!(
                    "{n} events numbered {}..{}",
                    get::<i64>(row, "lo")?,
                    get::<i64>(row, "hi")?
                ),
            )
        }
        Check::FirstEventCreated => (
            order("id")?,
            format!("event 1 is {}", EventType::Created),
            match get::<Option<String>>(row, "type")? {
                Some(kind) => format!("event 1 is {kind}"),
                None => "no event 1".to_owned(),
            },
        ),
        Check::EventTransitions => {
            let prev: String = get(row, "prev")?;
            let may_follow: Vec<&str> = allowed_successions()
                .into_iter()
                .filter(|(a, _)| a.as_str() == prev)
                .map(|(_, b)| b.as_str())
                .collect();
            let expected = if may_follow.is_empty() {
                format!("no event after {prev}")
            } else {
                format!("after {prev}: {}", may_follow.join(" or "))
            };
            (
                Entity::OrderEvent {
                    order_id: get(row, "order_id")?,
                    seq: get(row, "seq")?,
                },
                expected,
                get::<String>(row, "next")?,
            )
        }
        Check::LastEventMatchesStatus => {
            let status: String = get(row, "status")?;
            let expected = match status.parse::<OrderStatus>() {
                Ok(s) => format!("last event {} (status {s})", event_into(s)),
                Err(_) => format!("a known status (status is {status:?})"),
            };
            (
                order("id")?,
                expected,
                format!("last event {}", get::<String>(row, "type")?),
            )
        }
        Check::OrphanRows => (
            order("order_id")?,
            "an orders row".to_owned(),
            format!(
                "no orders row, {} {} rows",
                get::<i64>(row, "n")?,
                get::<String>(row, "kind")?
            ),
        ),
    };
    Ok(Violation {
        entity,
        expected,
        actual,
    })
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use sea_orm::ConnectionTrait;
    use uuid::Uuid;

    use super::{Check, DoctorReport, Entity, check_invariants};
    use crate::domain::tests::support::{TestDb, order};
    use crate::domain::{Action, ProductPatch, sql};

    /// The orders of [`seed`], one per status.
    struct Seeded {
        pending: Uuid,
        confirmed: Uuid,
        shipped: Uuid,
        delivered: Uuid,
        cancelled: Uuid,
    }

    /// Two products and one order in every status, through the service
    /// only; then a restock, a write-off and a price change.
    async fn seed(t: &TestDb) -> Seeded {
        t.product("A", 250, "EUR", 100).await;
        t.product("B", 1000, "EUR", 50).await;
        t.product("U", 300, "USD", 10).await;
        let svc = &t.svc;
        let create = |items: &'static [(&'static str, i64)]| async move {
            svc.create_order("tester", order("c1", "EUR", items))
                .await
                .expect("create order")
                .id
        };
        let walk = |id: Uuid, actions: &'static [Action]| async move {
            for action in actions {
                svc.transition(id, *action, "tester", None, None)
                    .await
                    .expect("transition");
            }
        };
        let pending = create(&[("A", 2), ("B", 1)]).await;
        let confirmed = create(&[("A", 3)]).await;
        walk(confirmed, &[Action::Confirm]).await;
        let shipped = create(&[("B", 2)]).await;
        walk(shipped, &[Action::Confirm, Action::Ship]).await;
        let delivered = create(&[("A", 1), ("B", 1)]).await;
        walk(delivered, &[Action::Confirm, Action::Ship, Action::Deliver]).await;
        let cancelled = create(&[("A", 4)]).await;
        walk(cancelled, &[Action::Confirm, Action::Cancel]).await;
        svc.move_stock("A", 10, None).await.expect("restock");
        svc.move_stock("B", -1, None).await.expect("write-off");
        svc.update_product(
            "A",
            ProductPatch {
                name: None,
                price_minor: Some(275),
            },
            None,
        )
        .await
        .expect("reprice");
        Seeded {
            pending,
            confirmed,
            shipped,
            delivered,
            cancelled,
        }
    }

    async fn report(t: &TestDb) -> DoctorReport {
        check_invariants(t.svc.database(), 20)
            .await
            .expect("doctor runs")
    }

    /// Asserts that `check` found exactly `count` violations and that one
    /// of them names `entity`.
    fn assert_found(t: &TestDb, r: &DoctorReport, check: Check, entity: &Entity, count: u64) {
        let outcome = r.outcome(check).expect("every check reports");
        assert_eq!(outcome.violations, count, "{}: {check}: {r:#?}", t.name);
        assert!(
            outcome.listed.iter().any(|v| v.entity == *entity),
            "{}: {check} does not name {entity}: {r:#?}",
            t.name
        );
    }

    #[tokio::test]
    async fn a_database_kept_by_the_domain_is_consistent() {
        for t in TestDb::all().await {
            let s = seed(&t).await;
            let r = report(&t).await;
            assert_eq!(r.checks.len(), Check::ALL.len());
            assert!(r.is_consistent(), "{}: {r:#?}", t.name);
            assert_eq!(r.backend, t.name);
            // The clean report must not be vacuous: break one row, see it.
            sql::exec(
                &t.conn,
                "UPDATE orders SET total_minor = total_minor + 1 WHERE id = ?",
                vec![s.delivered.into()],
            )
            .await
            .expect("corrupt");
            let r = report(&t).await;
            assert_eq!(r.violations(), 1, "{}: {r:#?}", t.name);
            assert_found(
                &t,
                &r,
                Check::OrderTotal,
                &Entity::Order { id: s.delivered },
                1,
            );
            let v = &r.outcome(Check::OrderTotal).expect("outcome").listed[0];
            assert_eq!(
                v.expected,
                "total_minor = 1250 (the sum of its 2 line totals)"
            );
            assert_eq!(v.actual, "total_minor = 1251");
            t.finish().await;
        }
    }

    /// One corruption of a seeded database, and what must find it.
    struct Case {
        what: &'static str,
        sql: &'static str,
        order: fn(&Seeded) -> Option<Uuid>,
        check: Check,
        entity: fn(&Seeded) -> Entity,
    }

    fn product(sku: &str) -> Entity {
        Entity::Product { sku: sku.into() }
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                what: "available bumped",
                sql: "UPDATE products SET available = available + 1 WHERE sku = 'A'",
                order: |_| None,
                check: Check::StockConservation,
                entity: |_| product("A"),
            },
            Case {
                what: "shipped below zero (stock_in kept in step)",
                sql: "UPDATE products SET shipped = shipped - 4, stock_in = stock_in - 4 \
                      WHERE sku = 'B'",
                order: |_| None,
                check: Check::StockNonNegative,
                entity: |_| product("B"),
            },
            Case {
                what: "stock moved from available to reserved",
                sql: "UPDATE products SET available = available - 1, reserved = reserved + 1 \
                      WHERE sku = 'A'",
                order: |_| None,
                check: Check::ReservedMatchesOrders,
                entity: |_| product("A"),
            },
            Case {
                what: "shipped bumped with stock_in",
                sql: "UPDATE products SET shipped = shipped + 1, stock_in = stock_in + 1 \
                      WHERE sku = 'B'",
                order: |_| None,
                check: Check::ShippedMatchesOrders,
                entity: |_| product("B"),
            },
            Case {
                what: "a line's quantity changed",
                sql: "UPDATE order_items SET quantity = quantity + 1 \
                      WHERE order_id = ? AND line_no = 1",
                order: |s| Some(s.confirmed),
                check: Check::LineTotal,
                entity: |s| Entity::OrderLine {
                    order_id: s.confirmed,
                    line_no: 1,
                },
            },
            Case {
                what: "every line deleted",
                sql: "DELETE FROM order_items WHERE order_id = ?",
                order: |s| Some(s.cancelled),
                check: Check::OrderHasLines,
                entity: |s| Entity::Order { id: s.cancelled },
            },
            Case {
                what: "the order's currency changed",
                sql: "UPDATE orders SET currency = 'USD' WHERE id = ?",
                order: |s| Some(s.pending),
                check: Check::LineProduct,
                entity: |s| Entity::OrderLine {
                    order_id: s.pending,
                    line_no: 2,
                },
            },
            Case {
                what: "a line names no product",
                sql: "UPDATE order_items SET sku = 'GHOST' WHERE order_id = ?",
                order: |s| Some(s.cancelled),
                check: Check::LineProduct,
                entity: |s| Entity::OrderLine {
                    order_id: s.cancelled,
                    line_no: 1,
                },
            },
            Case {
                what: "a middle event deleted",
                sql: "DELETE FROM order_events WHERE order_id = ? AND seq = 2",
                order: |s| Some(s.delivered),
                check: Check::EventSequence,
                entity: |s| Entity::Order { id: s.delivered },
            },
            Case {
                what: "the creation event deleted",
                sql: "DELETE FROM order_events WHERE order_id = ? AND seq = 1",
                order: |s| Some(s.pending),
                check: Check::FirstEventCreated,
                entity: |s| Entity::Order { id: s.pending },
            },
            Case {
                what: "an event skips a status",
                sql: "UPDATE order_events SET type = 'shipped' WHERE order_id = ? AND seq = 2",
                order: |s| Some(s.confirmed),
                check: Check::EventTransitions,
                entity: |s| Entity::OrderEvent {
                    order_id: s.confirmed,
                    seq: 2,
                },
            },
            Case {
                what: "status moved without an event",
                sql: "UPDATE orders SET status = 'delivered' WHERE id = ?",
                order: |s| Some(s.shipped),
                check: Check::LastEventMatchesStatus,
                entity: |s| Entity::Order { id: s.shipped },
            },
        ]
    }

    #[tokio::test]
    async fn every_kind_of_corruption_is_found_and_named() {
        for case in cases() {
            for t in TestDb::all().await {
                let s = seed(&t).await;
                let values = (case.order)(&s)
                    .map(|id| vec![id.into()])
                    .unwrap_or_default();
                let changed = sql::exec(&t.conn, case.sql, values).await.expect("corrupt");
                assert!(changed > 0, "{}: {} changed nothing", t.name, case.what);
                let r = report(&t).await;
                let outcome = r.outcome(case.check).expect("outcome");
                assert!(outcome.violations >= 1, "{}: {}: {r:#?}", t.name, case.what);
                assert!(
                    outcome.listed.iter().any(|v| v.entity == (case.entity)(&s)),
                    "{}: {}: {} does not name the row: {r:#?}",
                    t.name,
                    case.what,
                    case.check
                );
                t.finish().await;
            }
        }
    }

    #[tokio::test]
    async fn rows_of_a_missing_order_are_found() {
        // SQLite only: the foreign keys must be off to orphan rows, and a
        // PRAGMA applies to the one connection it runs on.
        let t = TestDb::sqlite().await;
        let s = seed(&t).await;
        t.conn
            .execute_unprepared(
                "PRAGMA foreign_keys = OFF; \
                 UPDATE orders SET customer_id = 'victim' WHERE status = 'pending'; \
                 DELETE FROM orders WHERE customer_id = 'victim'; \
                 PRAGMA foreign_keys = ON;",
            )
            .await
            .expect("orphan the pending order's rows");
        let r = report(&t).await;
        let orphans = r.outcome(Check::OrphanRows).expect("outcome");
        assert_eq!(orphans.violations, 2, "{r:#?}");
        assert!(
            orphans
                .listed
                .iter()
                .all(|v| v.entity == Entity::Order { id: s.pending })
        );
        assert!(
            orphans
                .listed
                .iter()
                .any(|v| v.actual == "no orders row, 2 order_items rows")
        );
        assert!(
            orphans
                .listed
                .iter()
                .any(|v| v.actual == "no orders row, 1 order_events rows")
        );
        // Its reservation is no longer backed by an order either.
        assert_found(&t, &r, Check::ReservedMatchesOrders, &product("A"), 2);
        t.finish().await;
    }

    #[tokio::test]
    async fn listing_is_capped_but_counts_are_exact() {
        let t = TestDb::sqlite().await;
        seed(&t).await;
        t.conn
            .execute_unprepared("UPDATE orders SET total_minor = total_minor + 1")
            .await
            .expect("corrupt every order");
        let r = check_invariants(t.svc.database(), 2)
            .await
            .expect("doctor runs");
        let totals = r.outcome(Check::OrderTotal).expect("outcome");
        assert_eq!((totals.violations, totals.listed.len()), (5, 2));
        let r = check_invariants(t.svc.database(), 0)
            .await
            .expect("doctor runs");
        let totals = r.outcome(Check::OrderTotal).expect("outcome");
        assert_eq!((totals.violations, totals.listed.len()), (5, 0));
        t.finish().await;
    }
}
