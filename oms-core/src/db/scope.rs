//! Per-request database accounting, carried in a tokio task-local.
//!
//! The HTTP layer runs each request inside [`with_counters`]; the pool's
//! [`StatementObserver`](super::StatementObserver) calls [`record`] after
//! every statement, which adds to the counters of the request running on
//! the current task (if any).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use oms_core::db::scope::{self, DbCounters};
//!
//! let counters = Arc::new(DbCounters::default());
//! scope::with_counters(counters.clone(), async {
//!     scope::record(Duration::from_micros(250));
//! }).await;
//! assert_eq!(counters.statements(), 1);
//! assert_eq!(counters.elapsed(), Duration::from_micros(250));
//! # });
//! ```

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Statements run and time spent in the database by one request.
#[derive(Debug, Default)]
pub struct DbCounters {
    statements: AtomicU64,
    nanos: AtomicU64,
}

impl DbCounters {
    /// Statements run so far.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Time spent in the database so far.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    /// Adds one statement that took `elapsed`.
    pub fn add(&self, elapsed: Duration) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

tokio::task_local! {
    static CURRENT: Arc<DbCounters>;
}

/// Runs `fut` with `counters` as the current request's counters.
pub async fn with_counters<F: Future>(counters: Arc<DbCounters>, fut: F) -> F::Output {
    CURRENT.scope(counters, fut).await
}

/// Adds a statement to the current request's counters; a no-op outside
/// [`with_counters`] (background work such as audit writes).
pub fn record(elapsed: Duration) {
    let _ = CURRENT.try_with(|c| c.add(elapsed));
}

/// The current request's counters, if running inside [`with_counters`].
pub fn current() -> Option<Arc<DbCounters>> {
    CURRENT.try_with(Arc::clone).ok()
}
