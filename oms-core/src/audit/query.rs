//! The `audit_events` table: the multi-row inserts the `database` sink
//! runs, and the read side of `GET /v1/audit`.
//!
//! Pages are newest first by `(at, id)` and keyset-paginated: the cursor
//! holds the `(at, id)` of the last item, and the next page is the rows
//! strictly before it, served by the index `idx_audit_at (at, id)` (or the
//! `actor`/`status` indexes when filtered). One statement per page.
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

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, QueryResult, Statement, Value};
use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::AuditEvent;
use crate::db::{Database, PoolError};

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

/// Bound parameters one statement may carry: SQLite's
/// `SQLITE_MAX_VARIABLE_NUMBER` (32766 since 3.32), PostgreSQL's 65535.
fn max_params(backend: DatabaseBackend) -> usize {
    match backend {
        DatabaseBackend::Sqlite => 32_766,
        _ => 65_535,
    }
}

/// Most rows one insert statement holds on `backend`.
///
/// ```
/// use oms_core::audit::query::rows_per_insert;
/// use sea_orm::DatabaseBackend;
/// assert_eq!(rows_per_insert(DatabaseBackend::Sqlite), 2340);
/// assert_eq!(rows_per_insert(DatabaseBackend::Postgres), 4681);
/// ```
pub fn rows_per_insert(backend: DatabaseBackend) -> usize {
    max_params(backend) / COLUMNS.len()
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Most rows in one audit insert statement.
const MAX_ROWS: usize = 128;

/// Multi-row `INSERT ... ON CONFLICT (id) DO NOTHING` statements for
/// `events`. Chunks hold 128 rows, the remainder is split into
/// powers of two, so at most eight statement shapes ever exist: the
/// drivers' per-connection prepared-statement caches stay small and warm
/// instead of filling with one huge statement per batch size. Re-inserting
/// an event already stored is a no-op, which makes retries and spill
/// replays idempotent. Empty for no events.
///
/// ```
/// use oms_core::audit::{AuditEvent, query::insert_statements};
/// use sea_orm::DatabaseBackend;
/// let events: Vec<_> = (0..300).map(|_| AuditEvent::example()).collect();
/// // 128 + 128 + 32 + 8 + 4
/// assert_eq!(insert_statements(DatabaseBackend::Sqlite, &events).len(), 5);
/// assert_eq!(insert_statements(DatabaseBackend::Postgres, &events[..256]).len(), 2);
/// ```
pub fn insert_statements(backend: DatabaseBackend, events: &[AuditEvent]) -> Vec<Statement> {
    let max = MAX_ROWS.min(rows_per_insert(backend));
    let mut statements = Vec::new();
    let mut rest = events;
    while !rest.is_empty() {
        let take = if rest.len() >= max {
            max
        } else {
            // The largest power of two not above what is left.
            1 << (usize::BITS - 1 - rest.len().leading_zeros())
        };
        let (chunk, tail) = rest.split_at(take);
        statements.push(insert_chunk(backend, chunk));
        rest = tail;
    }
    statements
}

fn insert_chunk(backend: DatabaseBackend, events: &[AuditEvent]) -> Statement {
    let cols = COLUMNS.len();
    let mut sql = String::with_capacity(96 + events.len() * cols * 6);
    sql.push_str("INSERT INTO audit_events (");
    sql.push_str(&COLUMNS.join(", "));
    sql.push_str(") VALUES ");
    let mut n = 0usize;
    for (row, _) in events.iter().enumerate() {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..cols {
            if col > 0 {
                sql.push_str(", ");
            }
            n += 1;
            push_placeholder(&mut sql, backend, n);
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    let mut values = Vec::with_capacity(events.len() * cols);
    for e in events {
        values.extend([
            Value::from(e.id),
            Value::from(e.at_ms),
            Value::from(e.request_id.as_str()),
            Value::from(e.actor.as_str()),
            Value::from(e.method.as_str()),
            Value::from(e.route.as_str()),
            Value::from(e.path.as_str()),
            Value::from(i32::from(e.status)),
            Value::from(saturating_i64(e.duration_us)),
            Value::from(saturating_i64(e.db_us)),
            Value::from(e.client_ip.as_str()),
            Value::from(e.user_agent.as_str()),
            Value::from(saturating_i64(e.request_bytes)),
            Value::from(saturating_i64(e.response_bytes)),
        ]);
    }
    Statement::from_sql_and_values(backend, sql, values)
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
        and(
            &mut q,
            "(at < ? OR (at = ? AND id < ?))",
            vec![Value::from(at), Value::from(at), Value::from(id)],
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
                .contains("actor = $1 AND status = $2 AND (at < $3 OR (at = $4 AND id < $5))"),
            "{}",
            pg.sql
        );
        assert!(pg.sql.ends_with("LIMIT $6"), "{}", pg.sql);
        assert_eq!(pg.values.as_ref().map(|v| v.0.len()), Some(6));
        let lite = page_statement(DatabaseBackend::Sqlite, &AuditFilter::default(), 10, None);
        assert!(
            lite.sql.ends_with("ORDER BY at DESC, id DESC LIMIT ?"),
            "{}",
            lite.sql
        );

        let events: Vec<_> = (0..3).map(|_| AuditEvent::example()).collect();
        let inserts = insert_statements(DatabaseBackend::Postgres, &events);
        assert_eq!(inserts.len(), 2, "2 + 1 rows");
        assert!(inserts[0].sql.contains("$28)"), "{}", inserts[0].sql);
        assert!(inserts[1].sql.contains("$14)"), "{}", inserts[1].sql);
        assert!(insert_statements(DatabaseBackend::Sqlite, &[]).is_empty());
    }
}
