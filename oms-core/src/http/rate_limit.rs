//! Per-caller token buckets (GCRA, `governor`): keyed by token name, or by
//! client IP when auth is off. Answers 429 `rate_limited` with
//! `Retry-After`, and every limited response carries the IETF httpapi
//! `RateLimit-Policy` and `RateLimit` headers.
//!
//! Memory stays bounded under many distinct keys: a background task drops
//! buckets that have refilled completely (they hold no information).

use std::borrow::Cow;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Governor};
use salvo::http::StatusCode;
use salvo::http::header::HeaderValue;
use salvo::prelude::*;

use super::{Actor, ApiError, RequestId};
use crate::config::RateLimitConfig;

type Keyed =
    Governor<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;
type Direct = Governor<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

#[derive(Clone, Copy)]
struct Budget {
    rps: u32,
    burst: u32,
}

impl Budget {
    fn quota(&self) -> Quota {
        let rps = NonZeroU32::new(self.rps).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(rps).allow_burst(burst)
    }

    /// `RateLimit-Policy: "default";q=<burst>;w=<window>` (the bucket's
    /// size and the seconds it takes to refill).
    fn policy(&self, name: &str) -> String {
        let window = self.burst.div_ceil(self.rps.max(1)).max(1);
        format!("\"{name}\";q={};w={window}", self.burst)
    }
}

/// The rate-limit hoop. Clones share the buckets, so one limiter serves
/// every route class: a caller has one budget, whatever it calls.
#[derive(Clone)]
pub(crate) struct RateLimit {
    default: Budget,
    keyed: Arc<Keyed>,
    overrides: Arc<HashMap<String, (Budget, Direct)>>,
}

impl RateLimit {
    /// A limiter for `config`, or `None` when rate limiting is off.
    pub(crate) fn new(config: &RateLimitConfig) -> Option<Self> {
        if !config.enabled {
            return None;
        }
        let default = Budget {
            rps: config.requests_per_second,
            burst: config.burst,
        };
        let keyed = Arc::new(
            Governor::keyed(default.quota()).with_middleware::<StateInformationMiddleware>(),
        );
        let overrides = config
            .overrides
            .iter()
            .map(|(name, o)| {
                let budget = Budget {
                    rps: o.requests_per_second,
                    burst: o.burst,
                };
                let limiter = Governor::direct(budget.quota())
                    .with_middleware::<StateInformationMiddleware>();
                (name.clone(), (budget, limiter))
            })
            .collect();
        let sweeper = Arc::downgrade(&keyed);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                match sweeper.upgrade() {
                    Some(keyed) => sweep(&keyed),
                    None => break,
                }
            }
        });
        Some(Self {
            default,
            keyed,
            overrides: Arc::new(overrides),
        })
    }
}

/// Drops the buckets that have refilled completely.
fn sweep(keyed: &Keyed) {
    keyed.retain_recent();
    keyed.shrink_to_fit();
}

/// The bucket key: the caller's token name (borrowed from the depot, no
/// allocation), else the client IP. A `Cow` of `String`, not `str`: the
/// keyed store looks buckets up by `&String`.
#[allow(clippy::owned_cow)]
fn caller<'a>(req: &Request, depot: &'a Depot) -> (Cow<'a, String>, bool) {
    match depot.get_typed::<Actor>() {
        Ok(actor) => (Cow::Borrowed(&actor.0), true),
        Err(_) => {
            let ip = req
                .remote_addr()
                .ip()
                .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
            (Cow::Owned(ip), false)
        }
    }
}

#[async_trait]
impl Handler for RateLimit {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let (key, named) = caller(req, depot);
        let (budget, outcome) = match self.overrides.get(key.as_str()).filter(|_| named) {
            Some((budget, limiter)) => (budget, limiter.check()),
            None => (&self.default, self.keyed.check_key(&key)),
        };
        let name = if named { key.as_str() } else { "default" };
        let headers = res.headers_mut();
        if let Ok(v) = HeaderValue::try_from(budget.policy(name)) {
            headers.insert("ratelimit-policy", v);
        }
        match outcome {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let reset =
                    (budget.burst - remaining.min(budget.burst)).div_ceil(budget.rps.max(1));
                if let Ok(v) = HeaderValue::try_from(format!("\"{name}\";r={remaining};t={reset}"))
                {
                    headers.insert("ratelimit", v);
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                if let Ok(v) = HeaderValue::try_from(format!("\"{name}\";r=0;t={secs}")) {
                    headers.insert("ratelimit", v);
                }
                let id = depot
                    .get_typed::<RequestId>()
                    .map(|r| r.0.clone())
                    .unwrap_or_default();
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("over the request budget of {name}; retry in {secs} s"),
                )
                .retry_after(secs)
                .render(&id, res);
                ctrl.skip_rest();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_callers_are_forgotten() {
        let config = RateLimitConfig {
            enabled: true,
            requests_per_second: 1000,
            burst: 1,
            ..RateLimitConfig::default()
        };
        let limiter = RateLimit::new(&config).expect("enabled");
        for n in 0..10_000 {
            let _ = limiter
                .keyed
                .check_key(&format!("10.0.{}.{}", n / 256, n % 256));
        }
        assert_eq!(limiter.keyed.len(), 10_000);
        tokio::time::sleep(Duration::from_millis(20)).await;
        sweep(&limiter.keyed);
        assert_eq!(
            limiter.keyed.len(),
            0,
            "refilled buckets hold nothing and are dropped"
        );
    }
}
