//! `GET /v1/audit` (admin): the `database` sink's table, newest first.

use salvo::http::StatusCode;
use salvo::prelude::*;

use super::openapi::{Guarded, Problem};
use super::request::{page_params, query_str};
use super::{ApiError, render_json, state};
use crate::audit::query::AuditPage;
use crate::audit::query::{self, AuditFilter, AuditQueryError};

impl From<AuditQueryError> for ApiError {
    fn from(err: AuditQueryError) -> Self {
        match err {
            AuditQueryError::BadCursor => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                "the cursor is not one this server issued",
            ),
            AuditQueryError::Db(db) => ApiError::from(db),
        }
    }
}

fn filter(req: &Request) -> Result<AuditFilter, ApiError> {
    let actor = query_str(req, "actor")?;
    if actor
        .as_ref()
        .is_some_and(|a| a.is_empty() || a.len() > 64 || a.contains('\0'))
    {
        return Err(ApiError::bad_request("actor must be 1-64 characters"));
    }
    let method = query_str(req, "method")?.map(|m| m.to_ascii_uppercase());
    if method
        .as_ref()
        .is_some_and(|m| m.is_empty() || m.len() > 16 || !m.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(ApiError::bad_request(
            "method must be an HTTP method such as GET",
        ));
    }
    let status = match query_str(req, "status")? {
        None => None,
        Some(raw) => match raw.parse::<u16>() {
            Ok(s) if (100..=599).contains(&s) => Some(s),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "status must be 100-599, got {raw:?}"
                )));
            }
        },
    };
    let since_ms = match query_str(req, "since")? {
        None => None,
        Some(raw) => Some(
            chrono::DateTime::parse_from_rfc3339(&raw)
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "since must be an RFC 3339 timestamp, got {raw:?}"
                    ))
                })?
                .timestamp_millis(),
        ),
    };
    Ok(AuditFilter {
        actor,
        method,
        status,
        since_ms,
    })
}

/// `GET /v1/audit?actor&method&status&since&limit&after`.
#[endpoint(
    operation_id = "listAudit",
    tags("audit"),
    summary = "The audit log, newest first (admin)",
    security(["bearer" = []]),
    parameters(
        ("actor" = Option<String>, Query, min_length = 1, max_length = 64, description = "Only this token name (or anonymous)"),
        ("method" = Option<String>, Query, description = "Only this HTTP method (any case)"),
        ("status" = Option<u16>, Query, minimum = 100, maximum = 599, description = "Only this response status"),
        ("since" = Option<String>, Query, format = DateTime, description = "Only requests that arrived at or after this RFC 3339 timestamp"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Page size, 1-500 (default 50); anything else is 400 bad_request"),
        ("after" = Option<String>, Query, description = "The previous page's next_cursor; an invalid one is 400 bad_cursor"),
    ),
    responses(
        (status_code = 200, description = "One page of audit entries", body = AuditPage),
        Guarded,
        (status_code = 400, description = "`bad_request` (malformed or out-of-range query parameter) or `bad_cursor`", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(super) async fn list(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = state(depot)?;
    let filter = filter(req)?;
    let (limit, after) = page_params(req)?;
    let page = query::list(&state.db, &filter, limit, after.as_deref()).await?;
    render_json(res, StatusCode::OK, &page);
    Ok(())
}
