//! Operational endpoints: `/health`, `/debug/performance`, `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use salvo::http::header::{CONTENT_TYPE, HeaderValue};
use salvo::prelude::*;
use serde_json::json;

use super::openapi::{Guarded, Health, Performance, Problem};
use super::{ApiError, render_json};

/// `GET /health`: 200 when the database answers within 1 s, else 503
/// `degraded` with the reason. The answer may be up to
/// [`HEALTH_FRESH_FOR`](crate::db::HEALTH_FRESH_FOR) old
/// ([`DatabaseHealth`](crate::db::DatabaseHealth)).
#[endpoint(
    operation_id = "health",
    tags("operations"),
    summary = "Liveness and database reachability (no auth)",
    responses(
        (status_code = 200, description = "Up, database reachable", body = Health),
        (status_code = 503, description = "Database unreachable (`degraded`, with the reason), or a problem (`overloaded`, `timeout`)", content(("application/json" = Health), ("application/problem+json" = Problem))),
    ),
)]
pub(super) async fn health(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = super::state(depot)?;
    let ping = tokio::time::timeout(Duration::from_millis(900), state.health.check()).await;
    let (status, database) = match ping {
        Ok(Ok(())) => (StatusCode::OK, "ok".to_owned()),
        Ok(Err(err)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unavailable: {err}"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable: no answer within 900ms".to_owned(),
        ),
    };
    render_json(
        res,
        status,
        &json!({
            "status": if status == StatusCode::OK { "ok" } else { "degraded" },
            "database": database,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": state.started.elapsed().as_secs(),
        }),
    );
    Ok(())
}

/// `GET /debug/performance`: this process's figures, sections as API.md.
#[endpoint(
    operation_id = "performance",
    tags("operations"),
    summary = "This process's performance figures (admin)",
    security(["bearer" = []]),
    responses(
        (status_code = 200, description = "Requests, database, audit, cache, system and slow requests", body = Performance),
        Guarded,
    ),
)]
pub(super) async fn performance(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = super::state(depot)?;
    let snapshot = state.recorder.snapshot();
    let pool = state.db.pool_stats();
    let audit = state.audit_stats();
    let routes: serde_json::Map<String, serde_json::Value> = snapshot
        .routes
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    render_json(
        res,
        StatusCode::OK,
        &json!({
            "requests": {
                "total": state.requests.load(Ordering::Relaxed),
                "in_flight": state.in_flight.load(Ordering::Relaxed),
                "routes": routes,
            },
            "database": {
                "statements": snapshot.statements,
                "p50_ms": snapshot.statement_p50_ms,
                "p95_ms": snapshot.statement_p95_ms,
                "p99_ms": snapshot.statement_p99_ms,
                "pool": {
                    "size": pool.size,
                    "idle": pool.idle,
                    "max": pool.max,
                    "waiting": pool.waiting,
                    "acquire_p99_ms": pool.acquire_p99_ms,
                    "timeouts": pool.timeouts,
                },
            },
            "audit": audit,
            "cache": state.cache_stats(),
            "system": state.system.snapshot(),
            "slow_requests": state.slow.latest(),
        }),
    );
    Ok(())
}

/// `GET /metrics`: Prometheus text format.
#[endpoint(
    operation_id = "metrics",
    tags("operations"),
    summary = "Prometheus metrics (admin)",
    security(["bearer" = []]),
    responses(
        (status_code = 200, description = "Prometheus text format (OpenTelemetry HTTP names)", body = String, content_type = "text/plain; version=0.0.4"),
        Guarded,
    ),
)]
pub(super) async fn metrics(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = super::state(depot)?;
    let mut text = state.recorder.render_prometheus();
    let pool = state.db.pool_stats();
    let audit = state.audit_stats();
    let cache = state.cache_stats();
    let system = state.system.snapshot();
    let gauges: [(&str, &str, &str, f64); 18] = [
        (
            "http_server_active_requests",
            "gauge",
            "Requests being handled now.",
            state.in_flight.load(Ordering::Relaxed) as f64,
        ),
        (
            "oms_pool_connections",
            "gauge",
            "Open database connections.",
            f64::from(pool.size),
        ),
        (
            "oms_pool_idle_connections",
            "gauge",
            "Idle database connections.",
            f64::from(pool.idle),
        ),
        (
            "oms_pool_max_connections",
            "gauge",
            "Configured maximum connections.",
            f64::from(pool.max),
        ),
        (
            "oms_pool_waiting",
            "gauge",
            "Callers waiting for a connection.",
            f64::from(pool.waiting),
        ),
        (
            "oms_pool_acquire_timeouts_total",
            "counter",
            "Acquires that timed out.",
            pool.timeouts as f64,
        ),
        (
            "oms_audit_enqueued_total",
            "counter",
            "Audit events accepted.",
            audit.enqueued as f64,
        ),
        (
            "oms_audit_written_total",
            "counter",
            "Audit events written to every sink.",
            audit.written as f64,
        ),
        (
            "oms_audit_dropped_total",
            "counter",
            "Audit events dropped (on_full = drop).",
            audit.dropped as f64,
        ),
        (
            "oms_audit_failed_total",
            "counter",
            "Audit batch writes that failed.",
            audit.failed as f64,
        ),
        (
            "oms_audit_spilled_total",
            "counter",
            "Audit events spilled to disk.",
            audit.spilled as f64,
        ),
        (
            "oms_audit_queue_depth",
            "gauge",
            "Audit events waiting.",
            audit.queue_depth as f64,
        ),
        (
            "oms_cache_hits_total",
            "counter",
            "Read-cache hits.",
            cache.hits as f64,
        ),
        (
            "oms_cache_misses_total",
            "counter",
            "Read-cache misses.",
            cache.misses as f64,
        ),
        (
            "oms_cache_coalesced_total",
            "counter",
            "Read-cache misses answered by a read of the same entry already running.",
            cache.coalesced as f64,
        ),
        (
            "oms_cache_entries",
            "gauge",
            "Read-cache entries.",
            cache.entries as f64,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            system.process_rss_bytes as f64,
        ),
        (
            "process_cpu_percent",
            "gauge",
            "Process CPU use, percent of one core.",
            system.process_cpu_percent,
        ),
    ];
    for (name, kind, help, value) in gauges {
        let _ = writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res.body(text);
    Ok(())
}
