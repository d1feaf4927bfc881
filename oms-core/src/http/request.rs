//! Reading requests: JSON bodies in the contract's check order, query
//! parameters, conditional headers.
//!
//! Order of checks for a body (API.md "Conventions"): content type (415),
//! size (413, decided from `Content-Length` before reading, or as soon as
//! the read passes the limit), JSON syntax (400 `malformed_json`), then
//! shape (422 `validation_failed` naming the field: unknown fields, wrong
//! types, out-of-range numbers).

use salvo::http::StatusCode;
use salvo::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use salvo::prelude::*;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::domain::{DEFAULT_LIMIT, FieldError, MAX_LIMIT};

fn payload_too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body exceeds server.max_body_bytes ({max} bytes)"),
    )
}

/// Whether the request declares a JSON body (`application/json`, any
/// parameters, or a `+json` suffix).
fn is_json(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        })
}

/// The raw body, at most `max` bytes, checking the content type first.
/// `optional` bodies may be absent (no content type, empty).
async fn body_bytes(
    req: &mut Request,
    max: u64,
    optional: bool,
) -> Result<Option<Vec<u8>>, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let has_type = req.headers().contains_key(CONTENT_TYPE);
    if optional && !has_type && declared.unwrap_or(0) == 0 {
        return Ok(None);
    }
    if !is_json(req) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    if declared.is_some_and(|len| len > max) {
        return Err(payload_too_large(max));
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let bytes = req
        .payload_with_max_size(limit)
        .await
        .map_err(|err| match err {
            salvo::http::ParseError::PayloadTooLarge => payload_too_large(max),
            other => ApiError::bad_request(format!("the body could not be read: {other}")),
        })?;
    if optional && bytes.is_empty() {
        return Ok(None);
    }
    Ok(Some(bytes.to_vec()))
}

/// Parses `bytes` as `T`: syntax errors (anywhere in the body, trailing
/// data included) are 400 `malformed_json`; shape errors are 422
/// `validation_failed` with the field's JSON path. The common, valid case
/// parses once; only a failed parse checks the syntax separately.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |err: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {err}"),
        )
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut *de);
    match result {
        Ok(value) => {
            de.end().map_err(malformed)?;
            // serde's derived structs also accept a JSON array (fields by
            // position); every body of the API is an object.
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(ApiError::validation(vec![FieldError {
                    field: "body".to_owned(),
                    message: "expected a JSON object".to_owned(),
                }]));
            }
            Ok(value)
        }
        Err(err) => {
            // A shape error reported before the parser reached a syntax
            // error further on: syntax comes first (API.md's check order).
            if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                return Err(malformed(syntax));
            }
            let path = err.path().to_string();
            let inner = err.into_inner();
            if !inner.is_data() {
                return Err(malformed(inner));
            }
            let field = if path == "." { "body".to_owned() } else { path };
            Err(ApiError::validation(vec![FieldError {
                field,
                message: strip_position(&inner.to_string()),
            }]))
        }
    }
}

/// serde_json appends ` at line 1 column 17`; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Reads a required JSON body as `T`; also returns the parsed JSON value
/// (for idempotency hashing).
pub(crate) async fn json_body<T: DeserializeOwned>(
    req: &mut Request,
    max: u64,
) -> Result<(T, Vec<u8>), ApiError> {
    let bytes = body_bytes(req, max, false).await?.unwrap_or_default();
    Ok((parse_json(&bytes)?, bytes))
}

/// Reads an optional JSON body as `T` (`T::default()` when absent).
pub(crate) async fn optional_json_body<T: DeserializeOwned + Default>(
    req: &mut Request,
    max: u64,
) -> Result<T, ApiError> {
    match body_bytes(req, max, true).await? {
        Some(bytes) => parse_json(&bytes),
        None => Ok(T::default()),
    }
}

/// `?limit=&after=`: limit 1..=500 (default 50); malformed is 400.
pub(crate) fn page_params(req: &Request) -> Result<(u32, Option<String>), ApiError> {
    let limit = match query_str(req, "limit")? {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be an integer from 1 to {MAX_LIMIT}, got {raw:?}"
                )));
            }
        },
    };
    Ok((limit, query_str(req, "after")?))
}

/// One query parameter as a string; given twice is a 400.
pub(crate) fn query_str(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    let mut values = req.queries().get_vec(name).into_iter().flatten();
    let first = values.next().cloned();
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "query parameter {name} given more than once"
        )));
    }
    Ok(first)
}

/// Parses an entity tag `"<version>"` (or `W/"<version>"`).
fn parse_etag(tag: &str) -> Option<i64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

/// A parsed `If-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IfMatch {
    /// Absent or `*`: no condition.
    Any,
    /// One or more entity tags; the write proceeds if one is current.
    Versions(Vec<i64>),
}

impl IfMatch {
    /// The version to hand the domain, which checks it atomically: the
    /// listed tag equal to `current` if there is one, else the first tag
    /// (which then fails as a mismatch). Only a list needs `current`.
    pub(crate) async fn expected<F, Fut, E>(&self, current: F) -> Result<Option<i64>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, E>>,
    {
        match self {
            IfMatch::Any => Ok(None),
            IfMatch::Versions(tags) if tags.len() == 1 => Ok(tags.first().copied()),
            IfMatch::Versions(tags) => {
                let current = current().await?;
                Ok(tags
                    .iter()
                    .copied()
                    .find(|&t| t == current)
                    .or(tags.first().copied()))
            }
        }
    }
}

/// Parses `If-Match` (`"3"`, `"1", "3"`, `W/"3"` or `*`); malformed is 400.
pub(crate) fn if_match(req: &Request) -> Result<IfMatch, ApiError> {
    let Some(value) = req.headers().get("if-match") else {
        return Ok(IfMatch::Any);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("If-Match is not visible ASCII"))?
        .trim();
    if text == "*" {
        return Ok(IfMatch::Any);
    }
    text.split(',')
        .map(|tag| {
            parse_etag(tag).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "If-Match must list entity tags like \"3\", got {text:?}"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(IfMatch::Versions)
}

/// Whether `If-None-Match` matches `version` (a list, `*`, weak tags).
pub(crate) fn if_none_match(req: &Request, version: i64) -> bool {
    req.headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|text| {
            text.split(',')
                .any(|t| t.trim() == "*" || parse_etag(t) == Some(version))
        })
}

/// The `ETag` for a version.
pub(crate) fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_parse_strong_and_weak() {
        assert_eq!(parse_etag("\"3\""), Some(3));
        assert_eq!(parse_etag("W/\"12\""), Some(12));
        assert_eq!(parse_etag("3"), None);
        assert_eq!(parse_etag("\"x\""), None);
    }

    #[test]
    fn json_errors_are_classified() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            items: Vec<I>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct I {
            quantity: u16,
        }
        let e = parse_json::<T>(b"{\"items\": [").expect_err("syntax");
        assert_eq!((e.status.as_u16(), e.code), (400, "malformed_json"));
        let e = parse_json::<T>(br#"{"items": [{"quantity": "x"}]}"#).expect_err("type");
        assert_eq!((e.status.as_u16(), e.code), (422, "validation_failed"));
        assert_eq!(e.errors[0].field, "items[0].quantity");
        let e = parse_json::<T>(br#"{"items": [{"quantity": "x"}], "#)
            .expect_err("syntax after a type error");
        assert_eq!(e.code, "malformed_json");
        let e = parse_json::<T>(br#"{"items": []} trailing"#).expect_err("trailing data");
        assert_eq!(e.code, "malformed_json");
        let e = parse_json::<T>(br#"{"items": [], "itemz": 1}"#).expect_err("unknown");
        assert_eq!(e.code, "validation_failed");
        assert!(e.errors[0].message.contains("itemz"), "{:?}", e.errors);
        let e = parse_json::<T>(br#" [[]]"#).expect_err("an array, not an object");
        assert_eq!((e.status.as_u16(), e.code), (422, "validation_failed"));
        assert_eq!(e.errors[0].field, "body");
    }
}
