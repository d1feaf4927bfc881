//! Value and cross-field rules, checked after the layers are merged.

use std::collections::HashSet;
use std::fmt::Display;

use super::{Config, ConfigError, ConfigIssue};

/// Collects every rule violation instead of stopping at the first.
#[derive(Default)]
struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn check(&mut self, ok: bool, key: &str, value: impl Display, allowed: impl Into<String>) {
        if !ok {
            self.0.push(ConfigIssue {
                key: key.to_owned(),
                value: value.to_string(),
                allowed: allowed.into(),
            });
        }
    }

    fn at_least(&mut self, key: &str, value: u64, min: u64) {
        self.check(value >= min, key, value, format!("must be >= {min}"));
    }
}

impl Config {
    /// Checks every value and cross-field rule.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with one [`ConfigIssue`] per broken rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut v = Issues::default();
        let s = &self.server;
        v.check(
            (1..=1024).contains(&s.workers),
            "server.workers",
            s.workers,
            "must be between 1 and 1024",
        );
        v.at_least("server.max_body_bytes", s.max_body_bytes, 1);
        v.at_least("server.request_timeout_ms", s.request_timeout_ms, 1);
        v.at_least(
            "server.max_concurrent_requests",
            s.max_concurrent_requests as u64,
            1,
        );
        v.at_least("server.shutdown_grace_ms", s.shutdown_grace_ms, 1);
        v.at_least("server.header_read_timeout_ms", s.header_read_timeout_ms, 1);
        v.at_least("server.body_read_timeout_ms", s.body_read_timeout_ms, 1);
        v.check(
            s.idle_timeout_ms >= s.request_timeout_ms,
            "server.idle_timeout_ms",
            s.idle_timeout_ms,
            format!(
                "must be >= server.request_timeout_ms ({}): a slow request would lose its connection",
                s.request_timeout_ms
            ),
        );
        v.at_least("server.max_connections", s.max_connections as u64, 1);
        v.at_least("server.max_header_bytes", s.max_header_bytes as u64, 8192);

        let d = &self.database;
        v.at_least("database.max_connections", u64::from(d.max_connections), 1);
        v.check(
            d.max_connections >= d.min_connections,
            "database.max_connections",
            d.max_connections,
            format!(
                "must be >= database.min_connections ({})",
                d.min_connections
            ),
        );
        v.at_least("database.acquire_timeout_ms", d.acquire_timeout_ms, 1);
        if let Some(url) = &d.url {
            v.check(
                url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://"),
                "database.url",
                redact_url(url),
                "must start with sqlite:, postgres:// or postgresql://",
            );
        }
        v.check(
            !d.pool.is_empty(),
            "database.pool",
            "\"\"",
            "must name a pool plugin",
        );

        let o = &self.orders;
        v.at_least("orders.idempotency_ttl_s", o.idempotency_ttl_s, 1);
        v.check(
            (1..=100).contains(&o.max_attempts),
            "orders.max_attempts",
            o.max_attempts,
            "must be between 1 and 100",
        );

        let a = &self.audit;
        v.at_least("audit.workers", a.workers as u64, 1);
        v.at_least("audit.queue_capacity", a.queue_capacity as u64, 1);
        v.at_least("audit.batch_size", a.batch_size as u64, 1);
        v.check(
            a.batch_size <= a.queue_capacity,
            "audit.batch_size",
            a.batch_size,
            format!("must be <= audit.queue_capacity ({})", a.queue_capacity),
        );
        v.at_least("audit.flush_interval_ms", a.flush_interval_ms, 1);
        let mut seen = HashSet::new();
        for name in a.sink_names() {
            v.check(
                seen.insert(name.clone()),
                "audit.sinks",
                format!("{name:?}"),
                "each sink may be listed once",
            );
        }

        for (key, value) in &a.plugins {
            v.check(
                value.is_object(),
                &format!("audit.{key}"),
                value,
                "unknown key; [audit] takes sink, sinks, workers, queue_capacity, batch_size, flush_interval_ms, on_full, retry_attempts, spill_dir, and [audit.<sink name>] tables",
            );
        }

        let m = &self.metrics;
        v.check(
            !m.recorder.is_empty(),
            "metrics.recorder",
            "\"\"",
            "must name a recorder plugin",
        );
        v.at_least("metrics.slow_request_ms", m.slow_request_ms, 1);

        let c = &self.cache;
        if c.enabled {
            v.at_least("cache.capacity", c.capacity, 1);
            v.at_least("cache.ttl_ms", c.ttl_ms, 1);
        }

        let z = &self.compression;
        if z.enabled {
            v.check(
                !z.algorithms.is_empty(),
                "compression.algorithms",
                "[]",
                "must list at least one of \"gzip\", \"br\", \"zstd\" (or set compression.enabled = false)",
            );
        }

        let r = &self.rate_limit;
        if r.enabled {
            v.at_least(
                "rate_limit.requests_per_second",
                u64::from(r.requests_per_second),
                1,
            );
            v.at_least("rate_limit.burst", u64::from(r.burst), 1);
            for (name, o) in &r.overrides {
                v.at_least(
                    &format!("rate_limit.overrides.{name}.requests_per_second"),
                    u64::from(o.requests_per_second),
                    1,
                );
                v.at_least(
                    &format!("rate_limit.overrides.{name}.burst"),
                    u64::from(o.burst),
                    1,
                );
            }
        }

        let auth = &self.auth;
        v.check(
            auth.enabled || s.bind.ip().is_loopback(),
            "auth.enabled",
            "false",
            format!(
                "auth may be disabled only on a loopback bind (server.bind = {}); set auth.enabled = true with [[auth.keys]], or bind 127.0.0.1",
                s.bind
            ),
        );
        v.check(
            !auth.enabled || !auth.keys.is_empty(),
            "auth.keys",
            "[]",
            "auth.enabled = true needs at least one [[auth.keys]] entry (see `oms-cli keys generate`)",
        );
        let mut names = HashSet::new();
        for (i, key) in auth.keys.iter().enumerate() {
            v.check(
                !key.name.is_empty() && key.name.len() <= 64,
                &format!("auth.keys[{i}].name"),
                format!("{:?}", key.name),
                "must be 1-64 characters",
            );
            v.check(
                names.insert(key.name.as_str()),
                &format!("auth.keys[{i}].name"),
                format!("{:?}", key.name),
                "must be unique",
            );
            v.check(
                key.sha256.len() == 64
                    && key
                        .sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                &format!("auth.keys[{i}].sha256"),
                format!("{:?}", key.sha256),
                "must be 64 lower-case hex digits (the SHA-256 of the token)",
            );
            v.check(
                !key.roles.is_empty(),
                &format!("auth.keys[{i}].roles"),
                "[]",
                "must list at least one of \"read\", \"write\", \"admin\"",
            );
        }

        if v.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(v.0))
        }
    }

    /// A copy safe to print: passwords in URLs and key digests masked.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        c.database.url = c.database.url.as_deref().map(redact_url);
        for key in &mut c.auth.keys {
            key.sha256 = "***".to_owned();
        }
        c
    }
}

/// Masks the password of a `scheme://user:password@host` URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_password_only() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://oms.db"), "sqlite://oms.db");
    }
}
