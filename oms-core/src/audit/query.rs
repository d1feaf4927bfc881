//! The `audit_events` table: the inserts the `database` sink
//! runs, and the read side of `GET /v1/audit`.
//!
//! Pages are newest first by `(at, id)` and keyset-paginated: the cursor
//! holds the `(at, id)` of the last item, and the next page is the rows
//! strictly before it, served by the table's order on SQLite (clustered by
//! `(at, id)`, migration `m20261128_000003`) and by the primary key
//! `(at, id)` on PostgreSQL (migration `m20261129_000004`); filtered pages
//! walk the same order (the `actor` and `status` indexes were dropped by
//! migration `m20261128_000002`: every audited request paid for them on
//! insert). One statement per page.
//!
//! ```no_run
//! # async fn run(db: oms_core::db::Database) -> Result<(), oms_core::audit::query::AuditQueryError> {
//! use oms_core::audit::query::{self, AuditFilter};
//!
//! let filter = AuditFilter { actor: Some("ops".into()), ..Default::default() };
//! let first = query::list(&db, &filter, 50, None).await?;
//! if let Some(cursor) = &first.next_cursor {
//!     let second = query::list(&db, &filter, 50, Some(cursor)).await?;
//!     # let _ = second;
//! }
//! # Ok(()) }
//! ```

use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sqlx::{self, PgPool, SqliteConnection, SqlitePool};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnectionType, DbErr, QueryResult, Statement,
    TransactionTrait, Value,
};
use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::AuditEvent;
use crate::db::{Database, PoolError, numbered, placeholders};

/// Most items one page may hold.
pub const MAX_LIMIT: u32 = 500;
/// Items per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 50;

/// The columns of `audit_events`, in insert and select order.
const COLUMNS: [&str; 14] = [
    "id",
    "at",
    "request_id",
    "actor",
    "method",
    "route",
    "path",
    "status",
    "duration_us",
    "db_us",
    "client_ip",
    "user_agent",
    "request_bytes",
    "response_bytes",
];

/// Most events one PostgreSQL insert statement carries. A batch is one
/// statement up to this size; larger ones (spill replays) are split and the
/// statements run in one transaction. It bounds the arrays bound to the
/// statement, not its shape, which never changes.
pub const ROWS_PER_INSERT: usize = 4096;

/// Most rows one multi-row `VALUES` insert binds (14 parameters a row;
/// SQLite allows 32,766). Smaller remainders are split into powers of two,
/// so a connection prepares at most eight statement shapes and reuses them.
pub const SQLITE_ROWS_PER_INSERT: usize = 128;

/// The PostgreSQL type of each of [`COLUMNS`], for the arrays of
/// [`postgres_unnest_sql`].
const POSTGRES_ARRAY_TYPES: [&str; COLUMNS.len()] = [
    "uuid", "int8", "text", "text", "text", "text", "text", "int4", "int8", "int8", "text", "text",
    "int8", "int8",
];

/// The insert of `rows` rows (a power of two up to
/// [`SQLITE_ROWS_PER_INSERT`]) with `?` placeholders: multi-row `VALUES`
/// with one bound parameter per column. Binding is cheaper on SQLite than
/// expanding one JSON parameter, whose `jsonb_each` and `->>` field reads
/// cost 1.5x as much per row (`benches/batch.rs`). Each shape's text is
/// built once per process.
fn sqlite_insert_sql(rows: usize) -> &'static str {
    const SHAPES: usize = SQLITE_ROWS_PER_INSERT.trailing_zeros() as usize + 1;
    static SQL: [OnceLock<String>; SHAPES] = [const { OnceLock::new() }; SHAPES];
    let shape = (rows.trailing_zeros() as usize).min(SHAPES - 1);
    SQL[shape].get_or_init(|| {
        format!(
            "INSERT INTO audit_events ({}) VALUES {} ON CONFLICT DO NOTHING",
            COLUMNS.join(", "),
            placeholders(1 << shape, COLUMNS.len())
        )
    })
}

/// `events` cut into SQLite insert pieces: [`SQLITE_ROWS_PER_INSERT`]
/// rows, then the remainder in power-of-two pieces, each with its size.
fn sqlite_chunks(events: &[AuditEvent]) -> impl Iterator<Item = (usize, &[AuditEvent])> {
    let mut rest = events;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let take = if rest.len() >= SQLITE_ROWS_PER_INSERT {
            SQLITE_ROWS_PER_INSERT
        } else {
            1 << (usize::BITS - 1 - rest.len().leading_zeros())
        };
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        Some((take, chunk))
    })
}

/// One bound value of an `audit_events` row, borrowed from its event.
enum Column<'a> {
    Id(Uuid),
    BigInt(i64),
    Int(i32),
    Text(&'a str),
}

/// `e`'s row, in [`COLUMNS`] order, counters saturated to `BIGINT`.
fn row(e: &AuditEvent) -> [Column<'_>; COLUMNS.len()] {
    [
        Column::Id(e.id),
        Column::BigInt(e.at_ms),
        Column::Text(&e.request_id),
        Column::Text(&e.actor),
        Column::Text(&e.method),
        Column::Text(&e.route),
        Column::Text(&e.path),
        Column::Int(i32::from(e.status)),
        Column::BigInt(saturating_i64(e.duration_us)),
        Column::BigInt(saturating_i64(e.db_us)),
        Column::Text(&e.client_ip),
        Column::Text(&e.user_agent),
        Column::BigInt(saturating_i64(e.request_bytes)),
        Column::BigInt(saturating_i64(e.response_bytes)),
    ]
}

impl From<Column<'_>> for Value {
    fn from(column: Column<'_>) -> Self {
        match column {
            Column::Id(id) => Value::from(id),
            Column::BigInt(n) => Value::from(n),
            Column::Int(n) => Value::from(n),
            Column::Text(s) => Value::from(s),
        }
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The `INSERT ... ON CONFLICT DO NOTHING` statements storing `events`,
/// as sea-orm statements: what [`insert`] runs on a connection that is not
/// an sqlx pool (on sqlx pools it binds the same rows more cheaply).
///
/// Multi-row `VALUES` with a bound parameter per column, at most
/// [`SQLITE_ROWS_PER_INSERT`] rows a statement, remainders in power-of-two
/// pieces (300 events: 128 + 128 + 32 + 8 + 4); placeholders numbered
/// `$1, $2, ...` on PostgreSQL. Re-inserting an event already stored is a
/// no-op, which makes retries and spill replays idempotent. Empty for no
/// events. Several statements belong in one transaction ([`insert`] runs
/// them so).
///
/// ```
/// use oms_core::audit::{AuditEvent, query::insert_statements};
/// use sea_orm::DatabaseBackend;
/// let events: Vec<_> = (0..300).map(|_| AuditEvent::example()).collect();
/// assert_eq!(insert_statements(DatabaseBackend::Sqlite, &events).len(), 5);
/// assert_eq!(insert_statements(DatabaseBackend::Postgres, &events).len(), 5);
/// assert!(insert_statements(DatabaseBackend::Postgres, &[]).is_empty());
/// ```
pub fn insert_statements(backend: DatabaseBackend, events: &[AuditEvent]) -> Vec<Statement> {
    sqlite_chunks(events)
        .map(|(take, chunk)| {
            let values: Vec<Value> = chunk.iter().flat_map(row).map(Value::from).collect();
            Statement::from_sql_and_values(
                backend,
                numbered(backend, sqlite_insert_sql(take)),
                values,
            )
        })
        .collect()
}

/// Stores `events` in `audit_events` through `db`: all or none, and
/// idempotent (events stored already are skipped). Takes the process's
/// write turn first on SQLite ([`Database::write_turn`]), then leases a
/// connection.
///
/// - PostgreSQL: one prepared insert per [`ROWS_PER_INSERT`] events, the
///   columns bound as arrays in the binary protocol and expanded by
///   `unnest`, cheaper for PostgreSQL than parsing a JSON document of the
///   rows (BENCHMARKS.md); several share a transaction. Inserted plainly
///   first; only a batch that finds an event stored already (a retry, a
///   replay) is inserted again with `ON CONFLICT DO NOTHING`.
/// - SQLite: the statements of [`insert_statements`] with each row bound
///   straight to the driver (sqlx) instead of through sea-query `Value`s,
///   which sea-orm clones and converts once more on the way (3,500
///   instructions an event less, BENCHMARKS.md); several statements share
///   a transaction.
///
/// Statements run on the driver are reported to the database's statement
/// observer ([`Database::with_observer`]) like every other. A connection
/// that is not an sqlx pool (a pool plugin's proxy or mock connection)
/// runs the statements of [`insert_statements`] through sea-orm instead.
///
/// # Errors
/// The write turn or lease timed out, or the database's error; nothing is
/// stored then.
///
/// ```no_run
/// # async fn run(db: oms_core::db::Database) -> Result<(), oms_core::db::PoolError> {
/// use oms_core::audit::{AuditEvent, query};
///
/// query::insert(&db, &[AuditEvent::example()]).await?;
/// # Ok(()) }
/// ```
pub async fn insert(db: &Database, events: &[AuditEvent]) -> Result<(), PoolError> {
    if events.is_empty() {
        return Ok(());
    }
    // On SQLite, queue with the domain's writers rather than sleep in the
    // busy handler holding a connection.
    let _turn = db.write_turn().await?;
    let conn = db.acquire().await?;
    let driver_err = |e| {
        PoolError::Db(DbErr::Exec(sea_orm::RuntimeErr::SqlxError(
            std::sync::Arc::new(e),
        )))
    };
    match &conn.inner {
        DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
            return insert_sqlite(db, conn.get_sqlite_connection_pool(), events)
                .await
                .map_err(driver_err);
        }
        DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
            return insert_postgres(db, conn.get_postgres_connection_pool(), events)
                .await
                .map_err(driver_err);
        }
        // Not an sqlx pool: the statements, through sea-orm.
        _ => {}
    }
    let mut statements = insert_statements(db.backend(), events);
    if statements.len() == 1 {
        if let Some(statement) = statements.pop() {
            conn.execute_raw(statement).await?;
        }
        return Ok(());
    }
    let txn = conn.begin().await?;
    for statement in statements {
        txn.execute_raw(statement).await?;
    }
    Ok(txn.commit().await?)
}

/// Runs `statement`, reporting it to `db`'s statement observer.
async fn observed<T>(
    db: &Database,
    statement: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    let started = std::time::Instant::now();
    let result = statement.await;
    db.observe(started.elapsed(), result.is_err());
    result
}

/// The PostgreSQL inserts of [`insert_postgres`]: one array parameter per
/// column, `unnest` turning them into rows; with `skip_stored`, `ON
/// CONFLICT DO NOTHING`. Each built once per process.
fn postgres_unnest_sql(skip_stored: bool) -> &'static str {
    static SQL: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
    SQL[usize::from(skip_stored)].get_or_init(|| {
        let arrays: Vec<String> = POSTGRES_ARRAY_TYPES
            .iter()
            .enumerate()
            .map(|(i, ty)| format!("${}::{ty}[]", i + 1))
            .collect();
        format!(
            "INSERT INTO audit_events ({}) SELECT * FROM unnest({}){}",
            COLUMNS.join(", "),
            arrays.join(", "),
            if skip_stored {
                " ON CONFLICT DO NOTHING"
            } else {
                ""
            }
        )
    })
}

/// Stores `events` on PostgreSQL with one prepared insert per
/// [`ROWS_PER_INSERT`] events whose parameters are the columns as arrays,
/// sent in the binary protocol: PostgreSQL parses no JSON, and the
/// statement is the same for every batch. Several statements share a
/// transaction.
///
/// A batch is first inserted plainly: `ON CONFLICT DO NOTHING` makes
/// PostgreSQL insert each row speculatively (a conflict check, then a
/// confirmation record), about 40 % more of its time per row
/// (BENCHMARKS.md), paid for what only a retried or replayed batch needs.
/// When the plain insert finds an event stored already (unique
/// violation), nothing of it was kept and the batch is inserted again
/// skipping stored events.
async fn insert_postgres(
    db: &Database,
    pool: &PgPool,
    events: &[AuditEvent],
) -> Result<(), sqlx::Error> {
    match insert_postgres_once(db, pool, events, false).await {
        Err(err)
            if err
                .as_database_error()
                .is_some_and(|e| e.is_unique_violation()) =>
        {
            insert_postgres_once(db, pool, events, true).await
        }
        done => done,
    }
}

async fn insert_postgres_once(
    db: &Database,
    pool: &PgPool,
    events: &[AuditEvent],
    skip_stored: bool,
) -> Result<(), sqlx::Error> {
    if events.len() > ROWS_PER_INSERT {
        let mut txn = pool.begin().await?;
        for chunk in events.chunks(ROWS_PER_INSERT) {
            observed(db, unnest_insert(chunk, skip_stored).execute(&mut *txn)).await?;
        }
        return txn.commit().await;
    }
    observed(db, unnest_insert(events, skip_stored).execute(pool))
        .await
        .map(drop)
}

/// The insert of `events` as column arrays.
fn unnest_insert(
    events: &[AuditEvent],
    skip_stored: bool,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let text = |f: fn(&AuditEvent) -> &str| events.iter().map(f).collect::<Vec<_>>();
    let int = |f: fn(&AuditEvent) -> u64| {
        events
            .iter()
            .map(|e| saturating_i64(f(e)))
            .collect::<Vec<_>>()
    };
    sqlx::query(postgres_unnest_sql(skip_stored))
        .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.at_ms).collect::<Vec<_>>())
        .bind(text(|e| &e.request_id))
        .bind(text(|e| &e.actor))
        .bind(text(|e| &e.method))
        .bind(text(|e| &e.route))
        .bind(text(|e| &e.path))
        .bind(
            events
                .iter()
                .map(|e| i32::from(e.status))
                .collect::<Vec<_>>(),
        )
        .bind(int(|e| e.duration_us))
        .bind(int(|e| e.db_us))
        .bind(text(|e| &e.client_ip))
        .bind(text(|e| &e.user_agent))
        .bind(int(|e| e.request_bytes))
        .bind(int(|e| e.response_bytes))
}

/// The statements of [`insert_statements`], bound with sqlx directly, in
/// one transaction when there is more than one.
async fn insert_sqlite(
    db: &Database,
    pool: &SqlitePool,
    events: &[AuditEvent],
) -> Result<(), sqlx::Error> {
    if sqlite_chunks(events).nth(1).is_some() {
        // Rolled back if dropped before the commit.
        let mut txn = pool.begin().await?;
        run_sqlite_inserts(db, &mut txn, events).await?;
        return txn.commit().await;
    }
    let mut conn = pool.acquire().await?;
    run_sqlite_inserts(db, &mut conn, events).await
}

async fn run_sqlite_inserts(
    db: &Database,
    conn: &mut SqliteConnection,
    events: &[AuditEvent],
) -> Result<(), sqlx::Error> {
    for (take, chunk) in sqlite_chunks(events) {
        let mut insert = sqlx::query(sqlite_insert_sql(take));
        for column in chunk.iter().flat_map(row) {
            insert = match column {
                Column::Id(id) => insert.bind(id),
                Column::BigInt(n) => insert.bind(n),
                Column::Int(n) => insert.bind(n),
                Column::Text(s) => insert.bind(s),
            };
        }
        observed(db, insert.execute(&mut *conn)).await?;
    }
    Ok(())
}

fn push_placeholder(sql: &mut String, backend: DatabaseBackend, n: usize) {
    match backend {
        DatabaseBackend::Postgres => {
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        _ => sql.push('?'),
    }
}

/// The filters of `GET /v1/audit`; `None` means any.
///
/// ```
/// let filter = oms_core::audit::query::AuditFilter { status: Some(403), ..Default::default() };
/// assert!(filter.actor.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exactly this actor (token name or `anonymous`).
    pub actor: Option<String>,
    /// Exactly this HTTP method (compared upper-cased).
    pub method: Option<String>,
    /// Exactly this status code.
    pub status: Option<u16>,
    /// Requests that arrived at or after this instant, epoch milliseconds.
    pub since_ms: Option<i64>,
}

/// One audit entry as `GET /v1/audit` serves it: the [`AuditEvent`] with
/// `at` as an RFC 3339 UTC timestamp with milliseconds.
///
/// ```
/// use oms_core::audit::{AuditEvent, query::AuditRecord};
/// let mut event = AuditEvent::example();
/// event.at_ms = 1_795_874_400_123;
/// let json = serde_json::to_value(AuditRecord::from(event)).unwrap();
/// assert_eq!(json["at"], "2026-11-28T14:00:00.123Z");
/// assert_eq!(json["status"], 200);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Unique, time-ordered (UUID v7).
    pub id: Uuid,
    /// When the request arrived.
    #[serde(serialize_with = "serialize_at")]
    pub at: DateTime<Utc>,
    /// The request's `X-Request-Id`.
    pub request_id: String,
    /// The caller's token name, or `anonymous`.
    pub actor: String,
    /// HTTP method.
    pub method: String,
    /// Route template.
    pub route: String,
    /// Request path without the query string.
    pub path: String,
    /// Response status code.
    pub status: u16,
    /// Time spent handling the request, microseconds.
    pub duration_us: u64,
    /// Time spent in the database, microseconds.
    pub db_us: u64,
    /// The peer address's IP.
    pub client_ip: String,
    /// `User-Agent`, truncated.
    pub user_agent: String,
    /// Request body size in bytes.
    pub request_bytes: u64,
    /// Response body size in bytes.
    pub response_bytes: u64,
}

fn serialize_at<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl From<AuditEvent> for AuditRecord {
    fn from(e: AuditEvent) -> Self {
        AuditRecord {
            id: e.id,
            at: from_ms(e.at_ms),
            request_id: e.request_id,
            actor: e.actor,
            method: e.method,
            route: e.route,
            path: e.path,
            status: e.status,
            duration_us: e.duration_us,
            db_us: e.db_us,
            client_ip: e.client_ip,
            user_agent: e.user_agent,
            request_bytes: e.request_bytes,
            response_bytes: e.response_bytes,
        }
    }
}

/// `{"items": [...], "next_cursor": "..."|null}`.
///
/// ```
/// let page = oms_core::audit::query::AuditPage { items: vec![], next_cursor: None };
/// assert_eq!(serde_json::to_string(&page).unwrap(), r#"{"items":[],"next_cursor":null}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditPage {
    /// This page's entries, newest first.
    pub items: Vec<AuditRecord>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why [`list`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditQueryError {
    /// `after` is not a cursor this module issued (400 `bad_cursor`).
    #[error("invalid cursor")]
    BadCursor,
    /// The database failed or could not be reached.
    #[error(transparent)]
    Db(#[from] PoolError),
}

impl From<DbErr> for AuditQueryError {
    fn from(err: DbErr) -> Self {
        AuditQueryError::Db(PoolError::Db(err))
    }
}

const CURSOR_KIND: u8 = b'a';

/// The opaque cursor for the position `(at_ms, id)`, in the envelope all
/// cursors share (`crate::cursor`).
fn encode_cursor(at_ms: i64, id: Uuid) -> String {
    let mut payload = [0u8; 24];
    payload[..8].copy_from_slice(&at_ms.to_be_bytes());
    payload[8..].copy_from_slice(id.as_bytes());
    crate::cursor::seal(CURSOR_KIND, &payload)
}

fn decode_cursor(text: &str) -> Result<(i64, Uuid), AuditQueryError> {
    let (kind, payload) = crate::cursor::open(text).ok_or(AuditQueryError::BadCursor)?;
    if kind != CURSOR_KIND || payload.len() != 24 {
        return Err(AuditQueryError::BadCursor);
    }
    let at = <[u8; 8]>::try_from(&payload[..8]).map_err(|_| AuditQueryError::BadCursor)?;
    let id = Uuid::from_slice(&payload[8..]).map_err(|_| AuditQueryError::BadCursor)?;
    Ok((i64::from_be_bytes(at), id))
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, col: &str) -> Result<T, DbErr> {
    row.try_get::<T>("", col)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn record(row: &QueryResult) -> Result<AuditRecord, DbErr> {
    Ok(AuditRecord {
        id: get(row, "id")?,
        at: from_ms(get(row, "at")?),
        request_id: get(row, "request_id")?,
        actor: get(row, "actor")?,
        method: get(row, "method")?,
        route: get(row, "route")?,
        path: get(row, "path")?,
        status: u16::try_from(get::<i32>(row, "status")?).unwrap_or(0),
        duration_us: unsigned(get(row, "duration_us")?),
        db_us: unsigned(get(row, "db_us")?),
        client_ip: get(row, "client_ip")?,
        user_agent: get(row, "user_agent")?,
        request_bytes: unsigned(get(row, "request_bytes")?),
        response_bytes: unsigned(get(row, "response_bytes")?),
    })
}

/// SQL text with `?` placeholders numbered as the backend wants, and its
/// bound values.
struct SqlBuilder {
    backend: DatabaseBackend,
    sql: String,
    values: Vec<Value>,
    placeholders: usize,
}

impl SqlBuilder {
    /// Appends `text`, binding `values` to its `?`s in order.
    fn push(&mut self, text: &str, values: impl IntoIterator<Item = Value>) {
        for ch in text.chars() {
            if ch == '?' {
                self.placeholders += 1;
                push_placeholder(&mut self.sql, self.backend, self.placeholders);
            } else {
                self.sql.push(ch);
            }
        }
        self.values.extend(values);
    }
}

/// The `SELECT` for one page: filters, then the keyset condition, newest
/// first, `limit + 1` rows (the extra one only says there is a next page).
fn page_statement(
    backend: DatabaseBackend,
    filter: &AuditFilter,
    limit: u32,
    after: Option<(i64, Uuid)>,
) -> Statement {
    let mut q = SqlBuilder {
        backend,
        sql: format!("SELECT {} FROM audit_events", COLUMNS.join(", ")),
        values: Vec::new(),
        placeholders: 0,
    };
    let mut glue = " WHERE ";
    let mut and = |q: &mut SqlBuilder, text: &str, values: Vec<Value>| {
        q.sql.push_str(glue);
        glue = " AND ";
        q.push(text, values);
    };
    if let Some(actor) = &filter.actor {
        and(&mut q, "actor = ?", vec![Value::from(actor.as_str())]);
    }
    if let Some(method) = &filter.method {
        and(
            &mut q,
            "method = ?",
            vec![Value::from(method.to_ascii_uppercase())],
        );
    }
    if let Some(status) = filter.status {
        and(&mut q, "status = ?", vec![Value::from(i32::from(status))]);
    }
    if let Some(since) = filter.since_ms {
        and(&mut q, "at >= ?", vec![Value::from(since)]);
    }
    if let Some((at, id)) = after {
        // A row-value comparison: both databases seek the `(at, id)` order
        // to it, where the equivalent `OR` form scans from the newest row.
        and(
            &mut q,
            "(at, id) < (?, ?)",
            vec![Value::from(at), Value::from(id)],
        );
    }
    q.push(
        " ORDER BY at DESC, id DESC LIMIT ?",
        [Value::from(i64::from(limit) + 1)],
    );
    Statement::from_sql_and_values(backend, q.sql, q.values)
}

/// One page of the audit log, newest first by `(at, id)`, after the
/// position `after` (a `next_cursor` of a previous page) if given. `limit`
/// is clamped to `1..=`[`MAX_LIMIT`]. Runs exactly one statement.
///
/// # Errors
/// [`AuditQueryError::BadCursor`] for a cursor this module did not issue
/// (before touching the database); [`AuditQueryError::Db`] when the
/// database fails.
///
/// ```no_run
/// # async fn run(db: oms_core::db::Database) -> Result<(), oms_core::audit::query::AuditQueryError> {
/// use oms_core::audit::query::{list, AuditFilter, AuditQueryError};
/// let page = list(&db, &AuditFilter::default(), 20, None).await?;
/// println!("{}", serde_json::to_string(&page).unwrap());
/// assert!(matches!(list(&db, &AuditFilter::default(), 20, Some("nope")).await,
///     Err(AuditQueryError::BadCursor)));
/// # Ok(()) }
/// ```
pub async fn list(
    db: &Database,
    filter: &AuditFilter,
    limit: u32,
    after: Option<&str>,
) -> Result<AuditPage, AuditQueryError> {
    let after = after.map(decode_cursor).transpose()?;
    let limit = limit.clamp(1, MAX_LIMIT);
    let statement = page_statement(db.backend(), filter, limit, after);
    let conn = db.acquire().await?;
    let rows = conn.query_all_raw(statement).await?;
    drop(conn);
    let mut items = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|last| encode_cursor(last.at.timestamp_millis(), last.id))
    } else {
        None
    };
    Ok(AuditPage { items, next_cursor })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let id = Uuid::now_v7();
        let text = encode_cursor(1_795_874_400_123, id);
        assert_eq!(decode_cursor(&text).unwrap(), (1_795_874_400_123, id));
        for i in 0..text.len() {
            let mut chars: Vec<char> = text.chars().collect();
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            let tampered: String = chars.into_iter().collect();
            assert!(
                matches!(decode_cursor(&tampered), Err(AuditQueryError::BadCursor)),
                "{tampered}"
            );
        }
        for junk in [
            "",
            "x",
            "!!!",
            "AAAAAAAAAAAA",
            &"A".repeat(1000),
            "🦀",
            &text[..text.len() - 1],
        ] {
            assert!(
                matches!(decode_cursor(junk), Err(AuditQueryError::BadCursor)),
                "{junk}"
            );
        }
    }

    #[test]
    fn statements_number_placeholders_per_backend() {
        let filter = AuditFilter {
            actor: Some("ops".into()),
            status: Some(200),
            ..Default::default()
        };
        let pg = page_statement(
            DatabaseBackend::Postgres,
            &filter,
            10,
            Some((5, Uuid::nil())),
        );
        assert!(
            pg.sql
                .contains("actor = $1 AND status = $2 AND (at, id) < ($3, $4)"),
            "{}",
            pg.sql
        );
        assert!(pg.sql.ends_with("LIMIT $5"), "{}", pg.sql);
        assert_eq!(pg.values.as_ref().map(|v| v.0.len()), Some(5));
        let lite = page_statement(DatabaseBackend::Sqlite, &AuditFilter::default(), 10, None);
        assert!(
            lite.sql.ends_with("ORDER BY at DESC, id DESC LIMIT ?"),
            "{}",
            lite.sql
        );
    }

    #[test]
    fn postgres_inserts_bind_every_column_with_numbered_placeholders() {
        let mut e = AuditEvent::example();
        e.request_bytes = u64::MAX;
        e.path = "/v1/\"quoted\"/\u{e9}".into();
        // 128 + 2 + 1 rows.
        let events = vec![e.clone(); SQLITE_ROWS_PER_INSERT + 3];
        let inserts = insert_statements(DatabaseBackend::Postgres, &events);
        assert_eq!(inserts.len(), 3);
        let last = &inserts[2];
        assert!(!last.sql.contains('?'), "{}", last.sql);
        assert!(last.sql.contains("($1, $2, $3"), "{}", last.sql);
        assert!(last.sql.contains("$14)"), "{}", last.sql);
        assert!(!last.sql.contains("$15"), "one row: {}", last.sql);
        assert!(last.sql.ends_with(" ON CONFLICT DO NOTHING"));
        let values = &last.values.as_ref().unwrap().0;
        assert_eq!(values[0], Value::from(e.id));
        assert_eq!(values[1], Value::from(e.at_ms));
        assert_eq!(values[6], Value::from(e.path.as_str()));
        assert_eq!(values[12], Value::from(i64::MAX), "saturated to BIGINT");
        assert!(insert_statements(DatabaseBackend::Postgres, &[]).is_empty());
    }

    #[test]
    fn the_unnest_insert_lists_every_column_with_its_array_type() {
        assert!(!postgres_unnest_sql(false).contains("CONFLICT"));
        let sql = postgres_unnest_sql(true);
        assert!(
            sql.starts_with(&format!(
                "INSERT INTO audit_events ({}) SELECT",
                COLUMNS.join(", ")
            )),
            "{sql}"
        );
        assert!(
            sql.contains("unnest($1::uuid[], $2::int8[], $3::text[]"),
            "{sql}"
        );
        assert!(sql.contains("$8::int4[]"), "{sql}");
        assert!(sql.contains("$14::int8[])"), "{sql}");
        assert!(sql.ends_with(" ON CONFLICT DO NOTHING"), "{sql}");
    }

    #[test]
    fn sqlite_inserts_bind_every_column_in_power_of_two_shapes() {
        let mut e = AuditEvent::example();
        e.request_bytes = u64::MAX;
        // 2 x 128 + 64 + 8 + 2 + 1 rows.
        let events = vec![e.clone(); 2 * SQLITE_ROWS_PER_INSERT + 75];
        let inserts = insert_statements(DatabaseBackend::Sqlite, &events);
        let rows: Vec<usize> = inserts
            .iter()
            .map(|s| s.values.as_ref().unwrap().0.len() / COLUMNS.len())
            .collect();
        assert_eq!(rows, [128, 128, 64, 8, 2, 1]);
        for (statement, n) in inserts.iter().zip(&rows) {
            assert_eq!(statement.sql.matches('?').count(), n * COLUMNS.len());
            assert!(statement.sql.ends_with(" ON CONFLICT DO NOTHING"));
        }
        assert_eq!(inserts[0].sql, inserts[1].sql, "one text per shape");
        let values = &inserts[5].values.as_ref().unwrap().0;
        assert_eq!(values[0], Value::from(e.id));
        assert_eq!(values[12], Value::from(i64::MAX), "saturated to BIGINT");
        assert!(insert_statements(DatabaseBackend::Sqlite, &[]).is_empty());
    }
}
