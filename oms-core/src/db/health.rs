//! The database's health as `GET /health` reports it, cheap under a flood
//! of probes: one ping at a time whatever the pool plugin, its answer
//! reused while it is fresh and renewed before it goes stale.
//!
//! Without the reuse, a probe arriving while the previous ping's connection
//! was still on its way back to the pool made the pool open another one: a
//! flood of `/health` grew a SQLite pool to `database.max_connections`
//! (a thread and a page cache each) and cost every probe a round trip.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::ConnectionPool;

/// How long a ping's answer stands for the probes after it: `/health`
/// reports the database as it was at most this long ago.
pub const HEALTH_FRESH_FOR: Duration = Duration::from_millis(250);

/// One ping's outcome and when it came.
#[derive(Debug, Clone)]
struct Answer {
    at: Instant,
    outcome: Result<(), String>,
}

/// A ping, running or answered, shared by every probe that awaits it.
type Flight = Shared<BoxFuture<'static, Answer>>;

/// The latest answer and the ping running now, if any.
#[derive(Default)]
struct Slot {
    latest: Option<Answer>,
    running: Option<Flight>,
}

impl Slot {
    /// Keeps `answer` unless a later one is there already.
    fn answered(&mut self, answer: &Answer) {
        if self.latest.as_ref().is_none_or(|l| l.at <= answer.at) {
            self.latest = Some(answer.clone());
        }
    }
}

/// Pings the database behind a pool on behalf of health probes: probes
/// within `fresh_for` of an answer get that answer without waiting, probes
/// after that wait for the running ping (or start one). Past half of
/// `fresh_for` the first probe also starts the next ping in the background,
/// so under steady probing the answer is renewed before it goes stale and
/// no probe waits: a thousand probes waiting for one ping at once held a
/// thousand requests in memory.
///
/// ```
/// # async fn probe(pool: std::sync::Arc<dyn oms_core::db::ConnectionPool>) {
/// use oms_core::db::{DatabaseHealth, HEALTH_FRESH_FOR};
///
/// let health = DatabaseHealth::new(pool, HEALTH_FRESH_FOR);
/// match health.check().await {
///     Ok(()) => println!("database ok"),
///     Err(reason) => println!("database unavailable: {reason}"),
/// }
/// # }
/// ```
pub struct DatabaseHealth {
    pool: Arc<dyn ConnectionPool>,
    fresh_for: Duration,
    slot: Arc<Mutex<Slot>>,
}

impl std::fmt::Debug for DatabaseHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseHealth")
            .field("pool", &self.pool.name())
            .field("fresh_for", &self.fresh_for)
            .finish_non_exhaustive()
    }
}

impl DatabaseHealth {
    /// Health of the database behind `pool`, each answer standing for
    /// `fresh_for` (`/health` uses [`HEALTH_FRESH_FOR`]).
    pub fn new(pool: Arc<dyn ConnectionPool>, fresh_for: Duration) -> Self {
        Self {
            pool,
            fresh_for,
            slot: Arc::default(),
        }
    }

    /// Whether the database answers: the fresh answer if there is one
    /// (starting its renewal past half its life), else the running ping's,
    /// else a new ping's. A ping runs as its own task, so a caller that
    /// stops waiting (its own deadline) leaves it to finish and hand its
    /// connection back. Callers bound the wait themselves (a ping waits up
    /// to the pool's acquire timeout).
    ///
    /// # Errors
    /// What kept the database from answering, as text (shared by every
    /// probe that awaited the same ping).
    pub async fn check(&self) -> Result<(), String> {
        let asked = Instant::now();
        loop {
            let flight = {
                let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
                // A ping's task records its answer and clears `running`
                // unless it died: then its flight answered someone.
                if let Some(done) = slot.running.as_ref().and_then(Shared::peek).cloned() {
                    slot.answered(&done);
                    slot.running = None;
                }
                if let Some(latest) = slot.latest.as_ref().filter(|a| self.is_fresh(a)) {
                    let outcome = latest.outcome.clone();
                    if latest.at.elapsed() >= self.fresh_for / 2 && slot.running.is_none() {
                        slot.running = Some(self.ping());
                    }
                    return outcome;
                }
                match &slot.running {
                    Some(running) => running.clone(),
                    None => {
                        let started = self.ping();
                        slot.running = Some(started.clone());
                        started
                    }
                }
            };
            let answer = flight.await;
            // A ping that ended before this probe asked, and long enough
            // ago to be stale, was left unawaited: ask again. A ping that
            // ended after the probe asked always answers it, so this runs
            // at most twice whatever `fresh_for` is.
            if answer.at >= asked || self.is_fresh(&answer) {
                return answer.outcome;
            }
        }
    }

    fn is_fresh(&self, answer: &Answer) -> bool {
        answer.at.elapsed() < self.fresh_for
    }

    /// Starts a ping as its own task, which records its answer whether or
    /// not anyone awaits it. Called with the slot locked.
    fn ping(&self) -> Flight {
        let pool = self.pool.clone();
        let slot = self.slot.clone();
        let task = tokio::spawn(async move {
            let outcome = pool.ping().await.map_err(|e| e.to_string());
            let answer = Answer {
                at: Instant::now(),
                outcome,
            };
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            slot.answered(&answer);
            // The only ping running: one starts only when none is.
            slot.running = None;
            drop(slot);
            answer
        });
        async move {
            task.await.unwrap_or_else(|e| Answer {
                at: Instant::now(),
                outcome: Err(format!("the ping did not finish: {e}")),
            })
        }
        .boxed()
        .shared()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use async_trait::async_trait;
    use sea_orm::DatabaseBackend;

    use super::*;
    use crate::db::{PoolError, PoolStats, PooledConnection};

    /// Counts pings started and finished; each takes `delay` and fails
    /// while `down` is set.
    struct PingCounter {
        pings: AtomicU32,
        finished: AtomicU32,
        down: AtomicBool,
        delay: Duration,
    }

    #[async_trait]
    impl ConnectionPool for PingCounter {
        fn name(&self) -> &str {
            "ping-counter"
        }
        fn backend(&self) -> DatabaseBackend {
            DatabaseBackend::Sqlite
        }
        async fn acquire(&self) -> Result<PooledConnection, PoolError> {
            Err(PoolError::Closed)
        }
        fn stats(&self) -> PoolStats {
            PoolStats::default()
        }
        async fn ping(&self) -> Result<(), PoolError> {
            self.pings.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.finished.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                Err(PoolError::Unavailable("connection refused".into()))
            } else {
                Ok(())
            }
        }
        async fn close(&self) {}
    }

    fn counter(delay: Duration) -> Arc<PingCounter> {
        Arc::new(PingCounter {
            pings: AtomicU32::new(0),
            finished: AtomicU32::new(0),
            down: AtomicBool::new(false),
            delay,
        })
    }

    #[tokio::test]
    async fn probes_during_a_ping_share_it_and_a_fresh_answer_is_reused() {
        let pool = counter(Duration::from_millis(50));
        let health = DatabaseHealth::new(pool.clone(), Duration::from_secs(5));
        let answers = futures::future::join_all((0..100).map(|_| health.check())).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        assert_eq!(pool.pings.load(Ordering::SeqCst), 1, "100 probes at once");
        for _ in 0..10 {
            assert_eq!(health.check().await, Ok(()));
        }
        assert_eq!(pool.pings.load(Ordering::SeqCst), 1, "probes within 5 s");
    }

    #[tokio::test]
    async fn a_ping_whose_caller_gave_up_finishes_and_its_answer_serves_the_next_probe() {
        let pool = counter(Duration::from_millis(100));
        let health = DatabaseHealth::new(pool.clone(), Duration::from_secs(5));
        let gave_up = tokio::time::timeout(Duration::from_millis(10), health.check()).await;
        assert!(gave_up.is_err(), "the probe should have timed out");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            pool.finished.load(Ordering::SeqCst),
            1,
            "the ping stopped when its only caller did (its connection held)"
        );
        assert_eq!(health.check().await, Ok(()));
        assert_eq!(pool.pings.load(Ordering::SeqCst), 1, "the answer is reused");
    }

    #[tokio::test]
    async fn with_no_freshness_every_probe_gets_a_ping_of_its_own() {
        let pool = counter(Duration::ZERO);
        let health = DatabaseHealth::new(pool.clone(), Duration::ZERO);
        for _ in 0..3 {
            assert_eq!(health.check().await, Ok(()));
        }
        assert_eq!(pool.pings.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_outage_and_the_recovery_show_once_the_answer_is_stale() {
        let pool = counter(Duration::ZERO);
        let fresh_for = Duration::from_millis(500);
        let health = DatabaseHealth::new(pool.clone(), fresh_for);
        assert_eq!(health.check().await, Ok(()));

        pool.down.store(true, Ordering::SeqCst);
        tokio::time::sleep(fresh_for).await;
        let down = health.check().await;
        assert_eq!(down, Err("database unavailable: connection refused".into()));
        assert_eq!(health.check().await, down, "the failure stands while fresh");
        assert_eq!(pool.pings.load(Ordering::SeqCst), 2);

        pool.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(fresh_for).await;
        assert_eq!(health.check().await, Ok(()));
        assert_eq!(pool.pings.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn past_half_its_life_the_answer_is_renewed_without_making_a_probe_wait() {
        let pool = counter(Duration::from_millis(200));
        let fresh_for = Duration::from_millis(600);
        let health = DatabaseHealth::new(pool.clone(), fresh_for);
        assert_eq!(health.check().await, Ok(()));
        tokio::time::sleep(fresh_for / 2).await;

        // The renewal takes 200 ms; the probe that starts it does not wait.
        pool.down.store(true, Ordering::SeqCst);
        let answered = tokio::time::timeout(Duration::from_millis(100), health.check()).await;
        assert_eq!(answered, Ok(Ok(())), "the fresh answer, at once");
        tokio::task::yield_now().await;
        assert_eq!(pool.pings.load(Ordering::SeqCst), 2, "the renewal started");
        assert_eq!(health.check().await, Ok(()), "one renewal at a time");
        assert_eq!(pool.pings.load(Ordering::SeqCst), 2);

        // Once it has answered, probes see the outage, though no probe
        // awaited the ping.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            health.check().await,
            Err("database unavailable: connection refused".into())
        );
        assert_eq!(pool.pings.load(Ordering::SeqCst), 2);
    }
}
