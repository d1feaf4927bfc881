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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use moka::sync::Cache;
use serde::Serialize;
use uuid::Uuid;

use crate::config::CacheConfig;

/// A cached representation: its version (for `ETag`) and JSON body.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The resource's version.
    pub version: i64,
    /// The serialised JSON.
    pub body: Bytes,
}

impl Cached {
    /// Wraps a version and body.
    pub fn new(version: i64, body: impl Into<Bytes>) -> Self {
        Self {
            version,
            body: body.into(),
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
}

/// Products by SKU and orders by id; see the module doc.
#[derive(Debug)]
pub struct ReadCache {
    products: Option<Cache<String, Arc<Cached>>>,
    orders: Option<Cache<Uuid, Arc<Cached>>>,
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

    /// The cached product, if any.
    pub fn product(&self, sku: &str) -> Option<Arc<Cached>> {
        self.count(self.products.as_ref().and_then(|c| c.get(sku)))
    }

    /// The cached order, if any.
    pub fn order(&self, id: &Uuid) -> Option<Arc<Cached>> {
        self.count(self.orders.as_ref().and_then(|c| c.get(id)))
    }

    /// The current epoch; take it before reading the database for a fill.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches a product read at `epoch`, unless a write happened since.
    pub fn fill_product(&self, sku: &str, epoch: u64, value: Cached) {
        if let Some(cache) = &self.products
            && self.epoch() == epoch
        {
            cache.insert(sku.to_owned(), Arc::new(value));
        }
    }

    /// Caches an order read at `epoch`, unless a write happened since.
    pub fn fill_order(&self, id: Uuid, epoch: u64, value: Cached) {
        if let Some(cache) = &self.orders
            && self.epoch() == epoch
        {
            cache.insert(id, Arc::new(value));
        }
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
        }
    }
}

#[cfg(test)]
mod tests {
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
}
