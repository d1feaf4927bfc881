//! RFC 9457 problem details: the one place errors become HTTP responses.

use std::borrow::Cow;

use salvo::http::StatusCode;
use salvo::http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use salvo::prelude::*;
use serde::Serialize;

use super::RequestId;
use crate::db::PoolError;
use crate::domain::{DomainError, FieldError};

/// An error answered as `application/problem+json`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`insufficient_stock`).
    pub code: &'static str,
    /// Human-readable specifics.
    pub detail: Cow<'static, str>,
    /// Field errors (422 only).
    pub errors: Vec<FieldError>,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    code: &'a str,
    detail: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl ApiError {
    /// A problem with `status`, `code` and `detail`.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 500 `internal`: logs `context`, never shows it to the caller.
    pub fn internal(context: impl std::fmt::Display) -> Self {
        tracing::error!(error = %context, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; the request id identifies it in the server log",
        )
    }

    /// 400 `bad_request`.
    pub fn bad_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 422 `validation_failed` with field errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                detail,
            )
        }
    }

    /// Adds `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The problem `title` for a code.
    pub fn title(&self) -> &'static str {
        title_of(self.code, self.status)
    }

    /// The problem document as JSON text.
    pub fn body_json(&self, request_id: &str) -> String {
        let body = Body {
            kind: format!("/errors/{}", self.code),
            title: self.title(),
            status: self.status.as_u16(),
            code: self.code,
            detail: &self.detail,
            request_id,
            errors: &self.errors,
        };
        serde_json::to_string(&body).unwrap_or_else(|err| {
            tracing::error!(%err, "problem body did not serialise");
            String::new()
        })
    }

    /// Writes the problem into `res`.
    pub fn render(&self, request_id: &str, res: &mut Response) {
        res.status_code(self.status);
        let headers = res.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res.body(self.body_json(request_id));
    }
}

fn title_of(code: &str, status: StatusCode) -> &'static str {
    match code {
        "malformed_json" => "Malformed JSON",
        "bad_cursor" => "Bad cursor",
        "bad_request" => "Bad request",
        "unauthenticated" => "Unauthenticated",
        "forbidden" => "Forbidden",
        "not_found" => "Not found",
        "method_not_allowed" => "Method not allowed",
        "sku_exists" => "SKU exists",
        "insufficient_stock" => "Insufficient stock",
        "invalid_transition" => "Invalid transition",
        "idempotency_in_progress" => "Idempotent request in progress",
        "stock_negative" => "Stock would go negative",
        "version_mismatch" => "Version mismatch",
        "payload_too_large" => "Payload too large",
        "unsupported_media_type" => "Unsupported media type",
        "validation_failed" => "Validation failed",
        "unknown_sku" => "Unknown SKU",
        "currency_mismatch" => "Currency mismatch",
        "duplicate_sku" => "Duplicate SKU",
        "idempotency_key_reused" => "Idempotency key reused",
        "rate_limited" => "Rate limited",
        "database_unavailable" => "Database unavailable",
        "overloaded" => "Overloaded",
        "timeout" => "Timeout",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

/// The problem for a bare status code (404, 405, 413... raised by salvo or
/// its middleware without a body).
pub fn for_status(status: StatusCode) -> ApiError {
    let (code, detail) = match status.as_u16() {
        400 => ("bad_request", "the request is malformed"),
        404 => ("not_found", "no such resource or route"),
        405 => (
            "method_not_allowed",
            "the route exists but not with this method; see Allow",
        ),
        413 => (
            "payload_too_large",
            "the body exceeds server.max_body_bytes",
        ),
        415 => (
            "unsupported_media_type",
            "send Content-Type: application/json",
        ),
        429 => ("rate_limited", "over the request budget; see Retry-After"),
        503 => ("overloaded", "the server is at capacity; retry later"),
        _ if status.is_server_error() => ("internal", "an internal error occurred"),
        _ => ("bad_request", "the request cannot be served"),
    };
    ApiError::new(status, code, detail)
}

impl From<PoolError> for ApiError {
    fn from(err: PoolError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(%err, "database unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unavailable or every connection is busy; retry later",
            )
            .retry_after(1)
        } else if err.is_transient() {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database stayed busy through every retry; retry later",
            )
            .retry_after(1)
        } else {
            ApiError::internal(err)
        }
    }
}

impl From<&DomainError> for ApiError {
    fn from(err: &DomainError) -> Self {
        if let DomainError::Db(db) = err {
            if err.http_status() >= 500 && !db.is_unavailable() && !db.is_transient() {
                tracing::error!(error = %db, "database error");
            } else {
                tracing::warn!(error = %db, "database unavailable");
            }
        }
        let status =
            StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut api = ApiError::new(status, err.code(), err.detail());
        api.errors = err.field_errors().to_vec();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            api.retry_after = Some(1);
        }
        api
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        ApiError::from(&err)
    }
}

#[async_trait]
impl Writer for ApiError {
    async fn write(self, _req: &mut Request, depot: &mut Depot, res: &mut Response) {
        let id = depot
            .get_typed::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        self.render(&id, res);
    }
}
