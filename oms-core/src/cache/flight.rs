//! [`Flights`]: concurrent misses of one key share one database read.
//!
//! When a hot entry expires (every `cache.ttl_ms`) or the server starts
//! cold, every request in flight for it misses at once: at 1,000 busy
//! connections that was up to a thousand identical reads, which grew the
//! pool to its maximum and held a thousand requests in memory while they
//! waited for connections. The first miss now reads; the others wait for
//! its answer.
//!
//! Read-your-writes still holds: a miss joins a read only if no write went
//! through this process since that read started (the cache's epoch is the
//! one the read was started at); otherwise it reads for itself.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::Shared;
use tokio::sync::oneshot;

use super::Cached;

/// A read in flight: the epoch it started at and where its value lands.
struct Flight {
    epoch: u64,
    landing: Shared<oneshot::Receiver<Arc<Cached>>>,
}

/// The reads in flight, by key.
pub(super) struct Flights<K> {
    running: Mutex<HashMap<K, Flight>>,
    /// Waiters answered by another's read.
    joined: AtomicU64,
}

impl<K> Default for Flights<K> {
    fn default() -> Self {
        Self {
            running: Mutex::new(HashMap::new()),
            joined: AtomicU64::new(0),
        }
    }
}

impl<K> std::fmt::Debug for Flights<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flights")
            .field("joined", &self.joined())
            .finish_non_exhaustive()
    }
}

impl<K> Flights<K> {
    /// How many waiters another read has answered so far.
    pub(super) fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }
}

impl<K: Hash + Eq + Clone> Flights<K> {
    /// `load`'s value, or that of a read of `key` started at the same
    /// `epoch` and still running. A read that fails or is cancelled hands
    /// its waiters nothing: each then runs its own `load` (and gets its
    /// own error).
    pub(super) async fn coalesce<E>(
        &self,
        key: &K,
        epoch: u64,
        load: impl Future<Output = Result<Arc<Cached>, E>>,
    ) -> Result<Arc<Cached>, E> {
        let joined = self
            .lock()
            .get(key)
            .filter(|flight| flight.epoch == epoch)
            .map(|flight| flight.landing.clone());
        if let Some(landing) = joined {
            return match landing.await {
                Ok(value) => {
                    self.joined.fetch_add(1, Ordering::Relaxed);
                    Ok(value)
                }
                Err(_) => load.await,
            };
        }
        let (land, landing) = oneshot::channel();
        self.lock().insert(
            key.clone(),
            Flight {
                epoch,
                landing: landing.shared(),
            },
        );
        let _leaving = Leaving {
            flights: self,
            key,
            epoch,
        };
        let value = load.await?;
        let _ = land.send(value.clone());
        Ok(value)
    }

    /// Whether a read of `key` is running.
    pub(super) fn is_running<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().contains_key(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Flight>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes a read's entry when it ends however it ends (done, failed,
/// cancelled), unless a read started at a later epoch has replaced it.
struct Leaving<'a, K: Hash + Eq + Clone> {
    flights: &'a Flights<K>,
    key: &'a K,
    epoch: u64,
}

impl<K: Hash + Eq + Clone> Drop for Leaving<'_, K> {
    fn drop(&mut self) {
        let mut running = self.flights.lock();
        if running.get(self.key).is_some_and(|f| f.epoch == self.epoch) {
            running.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    /// A read that takes a while and counts itself.
    async fn read(reads: &AtomicU32, version: i64) -> Result<Arc<Cached>, String> {
        reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Arc::new(Cached::new(version, Vec::new())))
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_read() {
        let flights = Flights::default();
        let reads = AtomicU32::new(0);
        let values =
            futures::future::join_all((0..100).map(|_| flights.coalesce(&"A", 7, read(&reads, 1))))
                .await;
        assert!(
            values
                .iter()
                .all(|v| v.as_ref().is_ok_and(|c| c.version == 1))
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert_eq!(flights.joined(), 99);
        // Done: the next miss reads again.
        flights
            .coalesce(&"A", 7, read(&reads, 2))
            .await
            .expect("read");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_miss_after_a_write_does_not_join_a_read_started_before_it() {
        let flights = Flights::default();
        let reads = AtomicU32::new(0);
        let (before, after) = tokio::join!(flights.coalesce(&"A", 7, read(&reads, 1)), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            // A write moved the epoch to 8 meanwhile.
            flights.coalesce(&"A", 8, read(&reads, 2)).await
        });
        assert_eq!(before.expect("read").version, 1);
        assert_eq!(after.expect("read").version, 2, "its own read");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn when_the_read_fails_each_waiter_reads_for_itself() {
        let flights = Flights::default();
        let reads = AtomicU32::new(0);
        let failing = async {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err("database unavailable".to_owned())
        };
        let (first, second) = tokio::join!(flights.coalesce(&"A", 7, failing), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            flights.coalesce(&"A", 7, read(&reads, 1)).await
        });
        assert_eq!(first.err().as_deref(), Some("database unavailable"));
        assert_eq!(second.expect("its own read").version, 1);
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        assert!(flights.lock().is_empty(), "no read left registered");
    }
}
