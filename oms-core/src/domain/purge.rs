//! [`IdempotencyPurge`]: the background task that deletes expired
//! `Idempotency-Key`s, so the table holds about one TTL's worth of keys
//! instead of growing for ever.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::OrderService;

/// Runs [`OrderService::purge_expired_idempotency_keys`] every `interval`
/// until dropped.
///
/// Every instance that shares a database may run one: the purge is a single
/// `DELETE ... WHERE expires_at < now` on an indexed column, so concurrent
/// purges only find less to delete. A failed purge (database down) is logged
/// and tried again at the next tick.
///
/// ```no_run
/// # async fn run(orders: oms_core::domain::OrderService) {
/// use std::time::Duration;
/// let purge = oms_core::domain::IdempotencyPurge::start(orders, Duration::from_secs(300));
/// // ... serve ...
/// drop(purge); // stops the task
/// # }
/// ```
#[derive(Debug)]
pub struct IdempotencyPurge {
    task: JoinHandle<()>,
}

impl IdempotencyPurge {
    /// Starts the task on the current tokio runtime; the first purge runs
    /// one `interval` after the start.
    pub fn start(orders: OrderService, interval: Duration) -> Self {
        let task = tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match orders.purge_expired_idempotency_keys().await {
                    Ok(0) => {}
                    Ok(purged) => tracing::debug!(purged, "expired idempotency keys deleted"),
                    Err(err) => {
                        tracing::warn!(error = %err, "could not purge expired idempotency keys; trying again later")
                    }
                }
            }
        });
        Self { task }
    }

    /// Stops the task (also done on drop); a purge in progress is
    /// abandoned, which leaves the table as it was.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for IdempotencyPurge {
    fn drop(&mut self) {
        self.task.abort();
    }
}
