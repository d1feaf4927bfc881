//! The read cache: serialised product and order representations, served
//! without touching the database, invalidated by every write that goes
//! through this process.
//!
//! Read-your-writes within one process: a write bumps the cache's epoch
//! and removes the entries it changed; a reader fills the cache only if
//! the epoch did not move while it read the database, so a read that raced
//! a write can never put the older value back. Other processes' writes are
//! seen once the entry expires (`cache.ttl_ms`); stock reservations are
//! always checked against the database, never against the cache.
//!
//! Under load: concurrent misses of one entry share one database read
//! (`flight.rs`), and an entry past half its time to live is read again by
//! the next request that finds it while the others are still served from
//! it ([`ReadCache::product_or_load`]), so a hot entry is renewed before it
//! expires instead of all its readers missing at once.
//!
//! ```
//! use oms_core::cache::{Cached, ReadCache};
//! use oms_core::config::CacheConfig;
//!
//! let cache = ReadCache::new(&CacheConfig::default());
//! let epoch = cache.epoch();
//! cache.fill_product("SKU-1", epoch, Cached::new(1, b"{}".to_vec()));
//! assert_eq!(cache.product("SKU-1").map(|c| c.version), Some(1));
//! cache.invalidate_products(["SKU-1"]);
//! assert!(cache.product("SKU-1").is_none());
//! ```

mod flight;

use std::borrow::Borrow;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::sync::Cache;
use serde::Serialize;
use uuid::Uuid;

use crate::config::CacheConfig;
use flight::Flights;

/// A cached representation: its version (for `ETag`) and JSON body.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The resource's version.
    pub version: i64,
    /// The serialised JSON.
    pub body: Bytes,
    /// When it was read from the database.
    read_at: Instant,
}

impl Cached {
    /// Wraps a version and body read from the database just now.
    pub fn new(version: i64, body: impl Into<Bytes>) -> Self {
        Self {
            version,
            body: body.into(),
            read_at: Instant::now(),
        }
    }
}

/// Hit, miss and entry counts (the `cache` section of `/debug/performance`).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads served from the cache.
    pub hits: u64,
    /// Reads that went to the database.
    pub misses: u64,
    /// Entries held now.
    pub entries: u64,
    /// Misses answered by another request's database read of the same
    /// entry, running when they missed (counted in `misses` too). In
    /// `/metrics` only: `/debug/performance` keeps API.md's three fields.
    #[serde(skip)]
    pub coalesced: u64,
}

/// Products by SKU and orders by id; see the module doc.
#[derive(Debug)]
pub struct ReadCache {
    products: Option<Cache<String, Arc<Cached>>>,
    orders: Option<Cache<Uuid, Arc<Cached>>>,
    product_reads: Flights<String>,
    order_reads: Flights<Uuid>,
    /// Past this age an entry is read again by the next request that
    /// finds it (half of `cache.ttl_ms`), before it expires.
    renew_after: Duration,
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ReadCache {
    /// A cache sized and timed by `config` (disabled: every read misses).
    pub fn new(config: &CacheConfig) -> Self {
        fn build<K, V>(config: &CacheConfig, share: u64) -> Option<Cache<K, V>>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            config.enabled.then(|| {
                Cache::builder()
                    .max_capacity(share.max(1))
                    .time_to_live(Duration::from_millis(config.ttl_ms))
                    .build()
            })
        }
        Self {
            products: build(config, config.capacity / 2),
            orders: build(config, config.capacity - config.capacity / 2),
            product_reads: Flights::default(),
            order_reads: Flights::default(),
            renew_after: Duration::from_millis(config.ttl_ms / 2),
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn count<T>(&self, found: Option<T>) -> Option<T> {
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// `key` in `cache`, counted as a hit or a miss.
    fn lookup<K, Q>(&self, cache: Option<&Cache<K, Arc<Cached>>>, key: &Q) -> Option<Arc<Cached>>
    where
        K: Borrow<Q> + Hash + Eq + Send + Sync + 'static,
        Q: Hash + Eq + ?Sized,
    {
        self.count(cache.and_then(|c| c.get(key)))
    }

    /// Caches `value`, read at `epoch`, under `key` unless a write happened
    /// since.
    fn fill<K>(&self, cache: Option<&Cache<K, Arc<Cached>>>, key: K, epoch: u64, value: Arc<Cached>)
    where
        K: Hash + Eq + Send + Sync + 'static,
    {
        if let Some(cache) = cache
            && self.epoch() == epoch
        {
            cache.insert(key, value);
        }
    }

    /// The cached product, if any.
    pub fn product(&self, sku: &str) -> Option<Arc<Cached>> {
        self.lookup(self.products.as_ref(), sku)
    }

    /// The cached order, if any.
    pub fn order(&self, id: &Uuid) -> Option<Arc<Cached>> {
        self.lookup(self.orders.as_ref(), id)
    }

    /// The product `sku` from the cache, else read by `load` and cached
    /// (unless a write went through this process meanwhile).
    ///
    /// - Misses of the same product while a read of it runs wait for that
    ///   read instead of reading too, unless a write came between (see
    ///   `cache/flight.rs`).
    /// - An entry past half of `cache.ttl_ms` is read again by the first
    ///   request that finds it while the others are still served from it,
    ///   so a product read all the time never expires and its readers never
    ///   all miss at once. If that read fails, the request is served the
    ///   entry, which is still within its time to live.
    /// - With the cache disabled every call runs its own `load`.
    ///
    /// # Errors
    /// `load`'s.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use oms_core::cache::{Cached, ReadCache};
    ///
    /// let cache = ReadCache::new(&Default::default());
    /// let read = |version| async move { Ok::<_, String>(Cached::new(version, b"{}".to_vec())) };
    /// assert_eq!(cache.product_or_load("SKU-1", read(1)).await?.version, 1);
    /// // Cached: the second read does not run.
    /// assert_eq!(cache.product_or_load("SKU-1", read(2)).await?.version, 1);
    /// # Ok::<(), String>(())
    /// # }).unwrap();
    /// ```
    pub async fn product_or_load<E>(
        &self,
        sku: &str,
        load: impl Future<Output = Result<Cached, E>>,
    ) -> Result<Arc<Cached>, E> {
        self.get_or_load(self.products.as_ref(), &self.product_reads, sku, load)
            .await
    }

    /// The order `id` from the cache, else read by `load`; as
    /// [`product_or_load`](Self::product_or_load).
    ///
    /// # Errors
    /// `load`'s.
    pub async fn order_or_load<E>(
        &self,
        id: Uuid,
        load: impl Future<Output = Result<Cached, E>>,
    ) -> Result<Arc<Cached>, E> {
        self.get_or_load(self.orders.as_ref(), &self.order_reads, &id, load)
            .await
    }

    /// `key` from `cache` if it is there and not due for renewal, else
    /// `load`'s value or that of the read of it already running, cached if
    /// no write came between; a failed renewal serves the entry it renews.
    async fn get_or_load<K, Q, E>(
        &self,
        cache: Option<&Cache<K, Arc<Cached>>>,
        reads: &Flights<K>,
        key: &Q,
        load: impl Future<Output = Result<Cached, E>>,
    ) -> Result<Arc<Cached>, E>
    where
        K: Borrow<Q> + Hash + Eq + Clone + Send + Sync + 'static,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        let hit = match self.lookup(cache, key) {
            Some(hit) if hit.read_at.elapsed() < self.renew_after || reads.is_running(key) => {
                return Ok(hit);
            }
            hit => hit,
        };
        if cache.is_none() {
            return load.await.map(Arc::new);
        }
        let epoch = self.epoch();
        let key = key.to_owned();
        let read = async {
            let value = Arc::new(load.await?);
            self.fill(cache, key.clone(), epoch, value.clone());
            Ok(value)
        };
        match (reads.coalesce(&key, epoch, read).await, hit) {
            (Err(_), Some(hit)) => Ok(hit),
            (read, _) => read,
        }
    }

    /// The current epoch; take it before reading the database for a fill.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches a product read at `epoch`, unless a write happened since.
    pub fn fill_product(&self, sku: &str, epoch: u64, value: Cached) {
        self.fill(
            self.products.as_ref(),
            sku.to_owned(),
            epoch,
            Arc::new(value),
        );
    }

    /// Caches an order read at `epoch`, unless a write happened since.
    pub fn fill_order(&self, id: Uuid, epoch: u64, value: Cached) {
        self.fill(self.orders.as_ref(), id, epoch, Arc::new(value));
    }

    /// Forgets products changed by a write (call after it commits).
    pub fn invalidate_products<S: AsRef<str>>(&self, skus: impl IntoIterator<Item = S>) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(cache) = &self.products {
            for sku in skus {
                cache.invalidate(sku.as_ref());
            }
        }
    }

    /// Forgets an order changed by a write (call after it commits).
    pub fn invalidate_order(&self, id: &Uuid) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(cache) = &self.orders {
            cache.invalidate(id);
        }
    }

    /// Hits, misses and entries so far.
    pub fn stats(&self) -> CacheStats {
        let entries = self.products.as_ref().map_or(0, Cache::entry_count)
            + self.orders.as_ref().map_or(0, Cache::entry_count);
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            coalesced: self.product_reads.joined() + self.order_reads.joined(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    #[test]
    fn a_fill_that_raced_a_write_is_discarded() {
        let cache = ReadCache::new(&CacheConfig::default());
        let epoch = cache.epoch();
        cache.invalidate_products(["A"]);
        cache.fill_product("A", epoch, Cached::new(1, Vec::new()));
        assert!(cache.product("A").is_none(), "stale fill must not land");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (0, 1));
    }

    #[test]
    fn disabled_cache_always_misses() {
        let cache = ReadCache::new(&CacheConfig {
            enabled: false,
            ..CacheConfig::default()
        });
        cache.fill_order(Uuid::nil(), cache.epoch(), Cached::new(1, Vec::new()));
        assert!(cache.order(&Uuid::nil()).is_none());
    }

    /// A read of version `version` that takes `ms` and counts itself.
    async fn read(reads: &AtomicU32, version: i64, ms: u64) -> Result<Cached, String> {
        reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(Cached::new(version, Vec::new()))
    }

    #[tokio::test]
    async fn past_half_its_life_an_entry_is_read_again_by_one_request_while_others_are_served() {
        let cache = ReadCache::new(&CacheConfig {
            ttl_ms: 2_000,
            ..CacheConfig::default()
        });
        let reads = AtomicU32::new(0);
        let get = |version, ms| cache.product_or_load("A", read(&reads, version, ms));
        assert_eq!(get(1, 0).await.map(|c| c.version), Ok(1), "a miss reads");
        assert_eq!(
            get(2, 0).await.map(|c| c.version),
            Ok(1),
            "a fresh hit does not"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);

        tokio::time::sleep(Duration::from_millis(1_100)).await;
        // Half-life passed: the first request renews (slowly), the one
        // after it is served the entry meanwhile without reading.
        let (renewed, served) = tokio::join!(get(3, 300), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            get(4, 0).await
        });
        assert_eq!(renewed.map(|c| c.version), Ok(3));
        assert_eq!(served.map(|c| c.version), Ok(1));
        assert_eq!(reads.load(Ordering::SeqCst), 2);

        // Renewed before it expired: past the first read's 2 s, still a hit.
        tokio::time::sleep(Duration::from_millis(750)).await;
        assert_eq!(get(5, 0).await.map(|c| c.version), Ok(3));
        assert_eq!(reads.load(Ordering::SeqCst), 2);

        // A renewal that fails serves the entry, still within its life.
        tokio::time::sleep(Duration::from_millis(550)).await;
        let failed = cache
            .product_or_load("A", async { Err::<Cached, _>("database unavailable") })
            .await;
        assert_eq!(failed.map(|c| c.version), Ok(3));
    }
}
