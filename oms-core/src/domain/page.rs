//! [`Page`]: one keyset-paginated slice of a list.

use serde::{Deserialize, Serialize};

/// Most items one page may hold.
pub const MAX_LIMIT: u32 = 500;
/// Items per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 50;

/// `{"items": [...], "next_cursor": "..."|null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// `limit` clamped to `1..=MAX_LIMIT` (the HTTP layer rejects others first).
pub(crate) fn clamp_limit(limit: u32) -> u32 {
    limit.clamp(1, MAX_LIMIT)
}

/// Builds a page from `rows` fetched with `LIMIT limit + 1`: the extra row,
/// if present, only says that there is a next page.
pub(crate) fn paginate<T>(
    mut rows: Vec<T>,
    limit: u32,
    cursor_of: impl Fn(&T) -> String,
) -> Page<T> {
    let limit = limit as usize;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor_of)
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}
