//! [`AuditPipeline`]: the bounded queue between the request path and the
//! audit sinks, its batching workers, retries, spill files and replay.
//!
//! # Design
//! - The request path does one `try_send` on a bounded tokio mpsc channel
//!   of `audit.queue_capacity` events plus one relaxed atomic add: no lock,
//!   no allocation, no I/O. Workers never wait inside `recv` (a waiting
//!   receiver is woken by every send, a task wake-up per request);
//!   producers instead notify once per `batch_size` events (and when the
//!   queue is full), and otherwise the workers wake on the flush timer.
//! - `audit.workers` tasks share the receiver behind an async mutex: the
//!   worker holding it takes a batch as soon as `batch_size` events are
//!   queued, or whatever is queued once `flush_interval_ms` has passed
//!   (an event arriving at an idle queue waits at most that long), releases
//!   it and delivers the batch while the next worker collects the next
//!   one. The mutex is only contended by workers, never by requests.
//! - The workers and the replayer run on a thread of their own, the
//!   `oms-audit` thread with a current-thread tokio runtime (see
//!   `runtime.rs`), not among the request tasks: a batch write is a chain
//!   of wake-ups, and on a busy request runtime each one waited behind
//!   every runnable request.
//! - Each batch goes to every sink concurrently. A failing sink is retried
//!   `retry_attempts` times in all with exponential backoff (50 ms
//!   doubling, capped at 1 s), then the batch is appended to the sink's
//!   spill file `<spill_dir>/<sink>.jsonl` (fsync'd) and the sink is marked
//!   unhealthy: later batches for it go straight to the spill file until a
//!   background replayer, probing every second, has streamed the spill
//!   files back into it.
//!
//! # Delivery semantics
//! **At-least-once**, per sink:
//! - While the process runs, every accepted event reaches every sink,
//!   directly or through its spill file, once, unless a sink reports a
//!   failure for a write that in fact took effect (then the retry or
//!   replay stores it again).
//! - Spilled events survive a crash or restart and are replayed at the
//!   next start. A crash during a replay replays that file again from its
//!   start: events already stored are stored again. The `database` sink
//!   inserts with `ON CONFLICT (id) DO NOTHING`, so for it the result is
//!   exactly-once.
//! - Events still in the in-memory queue at a crash (not a graceful
//!   [`shutdown`](AuditPipeline::shutdown)) are lost: at most
//!   `queue_capacity` plus the batches in flight.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::{Arc, Mutex};
//! use oms_core::audit::{AuditError, AuditEvent, AuditPipeline, AuditSink};
//! use oms_core::config::AuditConfig;
//!
//! #[derive(Default)]
//! struct Memory(Mutex<Vec<AuditEvent>>);
//!
//! #[async_trait::async_trait]
//! impl AuditSink for Memory {
//!     fn name(&self) -> &str { "memory" }
//!     async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
//!         self.0.lock().unwrap().extend_from_slice(events);
//!         Ok(())
//!     }
//!     async fn flush(&self) -> Result<(), AuditError> { Ok(()) }
//! }
//!
//! let sink = Arc::new(Memory::default());
//! let spill = std::env::temp_dir().join(format!("oms-doc-{}", uuid::Uuid::now_v7()));
//! let pipeline = AuditPipeline::start(&AuditConfig::default(), vec![sink.clone()], spill.clone()).await?;
//! for _ in 0..10 {
//!     pipeline.record(AuditEvent::example()).await;
//! }
//! pipeline.shutdown().await;
//! assert_eq!(sink.0.lock().unwrap().len(), 10);
//! assert_eq!(pipeline.stats().written, 10);
//! # tokio::fs::remove_dir_all(&spill).await.ok();
//! # Ok::<(), oms_core::audit::AuditStartError>(())
//! # }).unwrap();
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Mutex, Notify, mpsc, watch};
use tokio::task::JoinHandle;

use super::runtime::AuditRuntime;
use super::spill::SinkSlot;
use super::stats::{AuditStats, LatencyRing};
use super::{AuditEvent, AuditSink};
use crate::config::{AuditConfig, OnFull};

/// Why an [`AuditPipeline`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditStartError {
    /// The spill directory could not be created or read.
    #[error("audit spill directory {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Two sinks have the same name, so they would share a spill file.
    #[error("audit sink {0:?} is configured twice")]
    DuplicateSink(String),
    /// The audit thread or its runtime could not be started.
    #[error("audit thread: {0}")]
    Runtime(std::io::Error),
}

/// Timings of the pipeline that `oms.toml` does not expose; the defaults
/// suit production, tests shorten them.
///
/// ```
/// use std::time::Duration;
/// let options = oms_core::audit::PipelineOptions {
///     replay_interval: Duration::from_millis(100),
///     ..Default::default()
/// };
/// assert_eq!(options.retry_base, Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Backoff before the first retry of a failed batch; doubles for each
    /// further attempt. Default 50 ms.
    pub retry_base: Duration,
    /// Longest backoff between two attempts. Default 1 s.
    pub retry_cap: Duration,
    /// How often an unhealthy sink is probed by replaying its spill file.
    /// Default 1 s.
    pub replay_interval: Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_millis(50),
            retry_cap: Duration::from_secs(1),
            replay_interval: Duration::from_secs(1),
        }
    }
}

/// The asynchronous audit pipeline: a bounded queue, batching workers,
/// retries, spill files and replay (the design is described in
/// `oms-core/src/audit/pipeline.rs`).
///
/// Cheap to clone: every clone is a handle on the same queue and workers.
/// When the last handle is dropped without [`shutdown`](Self::shutdown),
/// the workers still drain the queue in the background, but nobody waits
/// for them.
#[derive(Clone)]
pub struct AuditPipeline {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for AuditPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = &self.handle.shared;
        f.debug_struct("AuditPipeline")
            .field(
                "sinks",
                &shared.slots.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("capacity", &shared.tx.max_capacity())
            .field("on_full", &shared.on_full)
            .finish_non_exhaustive()
    }
}

/// Owned by the handles only: dropping the last one signals shutdown.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// Shared by the handles and the background tasks.
struct Shared {
    tx: mpsc::Sender<AuditEvent>,
    on_full: OnFull,
    batch_size: usize,
    flush_interval: Duration,
    attempts: u32,
    options: PipelineOptions,
    slots: Vec<Arc<SinkSlot>>,
    /// Written by every producer: kept on its own cache line.
    enqueued: Padded,
    /// A full batch is waiting: notified every `threshold` enqueues.
    ready: Notify,
    /// Events that make a full batch: `batch_size`, or the capacity if
    /// smaller.
    threshold: usize,
    dropped: AtomicU64,
    lost: AtomicU64,
    batches: AtomicU64,
    dequeued: AtomicU64,
    batch_max: AtomicU64,
    flush_latency: LatencyRing,
    /// Becomes true when shutdown begins.
    shutdown: watch::Sender<bool>,
    /// Becomes true when shutdown has finished.
    finished: watch::Sender<bool>,
    /// Set by [`AuditPipeline::shutdown_within`]: past it, sink writes are
    /// abandoned and batches go straight to the spill files.
    deadline: watch::Sender<Option<tokio::time::Instant>>,
    /// The background tasks, taken by the first `shutdown` call.
    tasks: StdMutex<Option<Tasks>>,
}

/// An atomic alone on its cache line(s), so that producers bumping it do
/// not slow down workers touching the neighbouring counters.
#[repr(align(128))]
struct Padded(AtomicU64);

/// The receiving side, held by one worker at a time.
struct Queue {
    rx: mpsc::Receiver<AuditEvent>,
    /// When the events waiting now must be flushed, full batch or not.
    deadline: tokio::time::Instant,
}

impl Shared {
    /// Resolves once a shutdown deadline is set and has passed; never
    /// otherwise.
    async fn out_of_time(&self) {
        let mut rx = self.deadline.subscribe();
        let deadline = match rx.wait_for(Option::is_some).await {
            Ok(deadline) => *deadline,
            Err(_) => None,
        };
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    }

    /// Whether a shutdown deadline has passed.
    fn past_deadline(&self) -> bool {
        self.deadline
            .borrow()
            .is_some_and(|d| d <= tokio::time::Instant::now())
    }

    /// Counts an accepted event; wakes a worker once per `threshold`
    /// events, and when the queue is full (producers may be blocked).
    /// Between two wake-ups the workers rely on `flush_interval`.
    #[inline]
    fn accepted(&self) {
        let n = self.enqueued.0.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(self.threshold as u64) || self.tx.capacity() == 0 {
            self.ready.notify_one();
        }
    }
}

struct Tasks {
    workers: Vec<JoinHandle<()>>,
    replayer: JoinHandle<()>,
}

impl AuditPipeline {
    /// Starts the pipeline with the default [`PipelineOptions`]; see
    /// [`start_with`](Self::start_with).
    ///
    /// # Errors
    /// See [`start_with`](Self::start_with).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use oms_core::audit::AuditPipeline;
    /// let dir = std::env::temp_dir().join(format!("oms-doc-{}", uuid::Uuid::now_v7()));
    /// let pipeline = AuditPipeline::start(&Default::default(), Vec::new(), dir.clone()).await?;
    /// assert_eq!(pipeline.stats().capacity, 8_192);
    /// pipeline.shutdown().await;
    /// # tokio::fs::remove_dir_all(&dir).await.ok();
    /// # Ok::<(), oms_core::audit::AuditStartError>(())
    /// # }).unwrap();
    /// ```
    pub async fn start(
        config: &AuditConfig,
        sinks: Vec<Arc<dyn AuditSink>>,
        spill_dir: PathBuf,
    ) -> Result<AuditPipeline, AuditStartError> {
        Self::start_with(config, sinks, spill_dir, PipelineOptions::default()).await
    }

    /// Creates `spill_dir` if needed, notes spill files left by a previous
    /// run (replayed first), and starts `config.workers` workers and the
    /// replayer on the pipeline's own `oms-audit` thread, which ends once
    /// they have (after [`shutdown`](Self::shutdown), or when the last
    /// handle is dropped and the queue is drained). Zero `workers`,
    /// `queue_capacity`, `batch_size` or `retry_attempts` count as 1.
    ///
    /// # Errors
    /// [`AuditStartError::Io`] when the spill directory cannot be created
    /// or read; [`AuditStartError::DuplicateSink`] when two sinks share a
    /// name; [`AuditStartError::Runtime`] when the audit thread cannot be
    /// started.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use oms_core::audit::{AuditPipeline, PipelineOptions};
    /// let dir = std::env::temp_dir().join(format!("oms-doc-{}", uuid::Uuid::now_v7()));
    /// let options = PipelineOptions { replay_interval: Duration::from_millis(100), ..Default::default() };
    /// let pipeline = AuditPipeline::start_with(&Default::default(), Vec::new(), dir.clone(), options).await?;
    /// pipeline.shutdown().await;
    /// # tokio::fs::remove_dir_all(&dir).await.ok();
    /// # Ok::<(), oms_core::audit::AuditStartError>(())
    /// # }).unwrap();
    /// ```
    pub async fn start_with(
        config: &AuditConfig,
        sinks: Vec<Arc<dyn AuditSink>>,
        spill_dir: PathBuf,
        options: PipelineOptions,
    ) -> Result<AuditPipeline, AuditStartError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| AuditStartError::Io { path, source }
        };
        tokio::fs::create_dir_all(&spill_dir)
            .await
            .map_err(io(&spill_dir))?;
        let mut names = HashSet::new();
        let mut slots = Vec::with_capacity(sinks.len());
        for sink in sinks {
            let stem = super::spill::file_stem(sink.name());
            if !names.insert(stem) {
                return Err(AuditStartError::DuplicateSink(sink.name().to_owned()));
            }
            slots.push(Arc::new(
                SinkSlot::open(sink, &spill_dir)
                    .await
                    .map_err(io(&spill_dir))?,
            ));
        }

        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (shutdown, _) = watch::channel(false);
        let (finished, _) = watch::channel(false);
        let (deadline, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            tx,
            on_full: config.on_full,
            batch_size: config.batch_size.max(1),
            flush_interval: Duration::from_millis(config.flush_interval_ms),
            attempts: config.retry_attempts.max(1),
            options,
            slots,
            enqueued: Padded(AtomicU64::new(0)),
            ready: Notify::new(),
            threshold: config.batch_size.max(1).min(config.queue_capacity.max(1)),
            dropped: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            dequeued: AtomicU64::new(0),
            batch_max: AtomicU64::new(0),
            flush_latency: LatencyRing::default(),
            shutdown,
            finished,
            deadline,
            tasks: StdMutex::new(None),
        });
        let queue = Arc::new(Mutex::new(Queue {
            rx,
            deadline: tokio::time::Instant::now() + shared.flush_interval,
        }));
        let runtime = AuditRuntime::start()
            .await
            .map_err(AuditStartError::Runtime)?;
        let workers = (0..config.workers.max(1))
            .map(|_| runtime.spawn(worker(shared.clone(), queue.clone())))
            .collect();
        let replayer = runtime.spawn(replayer(shared.clone()));
        *shared.tasks.lock().unwrap_or_else(|p| p.into_inner()) = Some(Tasks { workers, replayer });
        Ok(AuditPipeline {
            handle: Arc::new(Handle { shared }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Enqueues `event` if there is room right now; never waits and never
    /// counts a drop. The request path's fast path.
    ///
    /// # Errors
    /// Gives `event` back when the queue is full or shutdown has begun.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use oms_core::audit::{AuditEvent, AuditPipeline};
    /// let dir = std::env::temp_dir().join(format!("oms-doc-{}", uuid::Uuid::now_v7()));
    /// let pipeline = AuditPipeline::start(&Default::default(), Vec::new(), dir.clone()).await.unwrap();
    /// assert!(pipeline.try_record(AuditEvent::example()).is_ok());
    /// pipeline.shutdown().await;
    /// assert!(pipeline.try_record(AuditEvent::example()).is_err());
    /// # tokio::fs::remove_dir_all(&dir).await.ok();
    /// # });
    /// ```
    // The event comes back by value on purpose (the caller may retry or
    // count it); on success nothing is copied.
    #[allow(clippy::result_large_err)]
    #[inline]
    pub fn try_record(&self, event: AuditEvent) -> Result<(), AuditEvent> {
        let shared = self.shared();
        match shared.tx.try_send(event) {
            Ok(()) => {
                shared.accepted();
                Ok(())
            }
            Err(TrySendError::Full(event) | TrySendError::Closed(event)) => Err(event),
        }
    }

    /// Enqueues `event` following `audit.on_full`: with `block`, waits for
    /// room (backpressure; nothing is lost); with `drop`, drops it and
    /// counts it in [`AuditStats::dropped`] when the queue is full. After
    /// shutdown has begun the event is dropped and counted.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use oms_core::audit::{AuditEvent, AuditPipeline};
    /// let dir = std::env::temp_dir().join(format!("oms-doc-{}", uuid::Uuid::now_v7()));
    /// let pipeline = AuditPipeline::start(&Default::default(), Vec::new(), dir.clone()).await.unwrap();
    /// pipeline.record(AuditEvent::example()).await;
    /// assert_eq!(pipeline.stats().enqueued, 1);
    /// pipeline.shutdown().await;
    /// # tokio::fs::remove_dir_all(&dir).await.ok();
    /// # });
    /// ```
    pub async fn record(&self, event: AuditEvent) {
        let shared = self.shared();
        match shared.tx.try_send(event) {
            Ok(()) => {
                shared.accepted();
            }
            Err(TrySendError::Full(event)) if shared.on_full == OnFull::Block => {
                match shared.tx.send(event).await {
                    Ok(()) => {
                        shared.accepted();
                    }
                    Err(_) => {
                        shared.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(_) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The pipeline's counters right now.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use oms_core::audit::AuditPipeline;
    /// let dir = std::env::temp_dir().join(format!("oms-doc-{}", uuid::Uuid::now_v7()));
    /// let pipeline = AuditPipeline::start(&Default::default(), Vec::new(), dir.clone()).await.unwrap();
    /// let stats = pipeline.stats();
    /// assert_eq!((stats.queue_depth, stats.dropped), (0, 0));
    /// pipeline.shutdown().await;
    /// # tokio::fs::remove_dir_all(&dir).await.ok();
    /// # });
    /// ```
    pub fn stats(&self) -> AuditStats {
        let shared = self.shared();
        let sinks: Vec<_> = shared.slots.iter().map(|s| s.stats()).collect();
        let [p50, p99] = shared.flush_latency.quantiles_ms([0.5, 0.99]);
        let batches = shared.batches.load(Ordering::Relaxed);
        let dequeued = shared.dequeued.load(Ordering::Relaxed);
        let capacity = shared.tx.max_capacity();
        AuditStats {
            enqueued: shared.enqueued.0.load(Ordering::Relaxed),
            written: sinks.iter().map(|s| s.written).sum(),
            dropped: shared.dropped.load(Ordering::Relaxed),
            failed: sinks.iter().map(|s| s.failed).sum(),
            spilled: sinks.iter().map(|s| s.spilled).sum(),
            replayed: sinks.iter().map(|s| s.replayed).sum(),
            lost: shared.lost.load(Ordering::Relaxed),
            queue_depth: capacity.saturating_sub(shared.tx.capacity()),
            capacity,
            batches,
            batch_size_avg: if batches == 0 {
                0.0
            } else {
                dequeued as f64 / batches as f64
            },
            batch_size_max: shared.batch_max.load(Ordering::Relaxed),
            flush_p50_ms: p50,
            flush_p99_ms: p99,
            sinks,
        }
    }

    /// The spill file of each sink, by sink name (for operators and tests).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use oms_core::audit::AuditPipeline;
    /// let dir = std::env::temp_dir().join(format!("oms-doc-{}", uuid::Uuid::now_v7()));
    /// let pipeline = AuditPipeline::start(&Default::default(), Vec::new(), dir.clone()).await.unwrap();
    /// assert!(pipeline.spill_files().is_empty());
    /// pipeline.shutdown().await;
    /// # tokio::fs::remove_dir_all(&dir).await.ok();
    /// # });
    /// ```
    pub fn spill_files(&self) -> Vec<(String, PathBuf)> {
        self.shared()
            .slots
            .iter()
            .map(|s| (s.name().to_owned(), s.spill_path().to_owned()))
            .collect()
    }

    /// [`shutdown`](Self::shutdown), finished within `limit`: once it has
    /// passed, sink writes still running are abandoned (a write abandoned
    /// midway may be stored again by the replay: at-least-once) and every
    /// batch left goes straight to its sink's spill file, to be replayed at
    /// the next start. Nothing accepted is lost unless the spill file
    /// cannot be written either. A process that must exit within a grace
    /// period (SIGTERM) calls this.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use oms_core::audit::AuditPipeline;
    /// let dir = std::env::temp_dir().join(format!("oms-doc-{}", uuid::Uuid::now_v7()));
    /// let pipeline = AuditPipeline::start(&Default::default(), Vec::new(), dir.clone()).await.unwrap();
    /// pipeline.shutdown_within(Duration::from_secs(1)).await;
    /// # tokio::fs::remove_dir_all(&dir).await.ok();
    /// # });
    /// ```
    pub async fn shutdown_within(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        self.handle.shared.deadline.send_if_modified(|d| {
            let earlier = d.is_none_or(|d| deadline < d);
            if earlier {
                *d = Some(deadline);
            }
            earlier
        });
        self.shutdown().await;
    }

    /// Stops accepting events, drains the queue completely into the sinks
    /// (spilling what a failing sink will not take), makes one last replay
    /// attempt for unhealthy sinks, calls `flush` on every sink and waits
    /// for the background tasks. Idempotent; concurrent callers all return
    /// once it is done.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use oms_core::audit::AuditPipeline;
    /// let dir = std::env::temp_dir().join(format!("oms-doc-{}", uuid::Uuid::now_v7()));
    /// let pipeline = AuditPipeline::start(&Default::default(), Vec::new(), dir.clone()).await.unwrap();
    /// pipeline.shutdown().await;
    /// pipeline.shutdown().await; // no-op
    /// # tokio::fs::remove_dir_all(&dir).await.ok();
    /// # });
    /// ```
    pub async fn shutdown(&self) {
        let shared = &self.handle.shared;
        shared.shutdown.send_replace(true);
        let tasks = shared
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(tasks) = tasks else {
            let mut finished = shared.finished.subscribe();
            let _ = finished.wait_for(|done| *done).await;
            return;
        };
        for worker in tasks.workers {
            if let Err(err) = worker.await {
                tracing::error!(%err, "audit worker failed");
            }
        }
        if let Err(err) = tasks.replayer.await {
            tracing::error!(%err, "audit replayer failed");
        }
        for slot in &shared.slots {
            // Past the deadline the spill file stays for the next start.
            let replayed = tokio::select! {
                biased;
                replayed = async { slot.is_healthy() || slot.replay(shared.batch_size).await } => replayed,
                () = shared.out_of_time() => false,
            };
            if !replayed {
                tracing::warn!(
                    sink = slot.name(),
                    file = %slot.spill_path().display(),
                    "audit sink still failing at shutdown; its spill file will be replayed at the next start"
                );
            }
            let flushed = tokio::select! {
                biased;
                flushed = slot.sink.flush() => flushed.map_err(|e| e.to_string()),
                () = shared.out_of_time() => Err("shutdown deadline passed".to_owned()),
            };
            if let Err(err) = flushed {
                tracing::error!(sink = slot.name(), %err, "audit flush failed at shutdown");
            }
        }
        shared.finished.send_replace(true);
    }
}

/// Resolves once shutdown has begun (without holding the watch's lock
/// afterwards).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Takes batches from the queue and delivers them until the queue is
/// closed and empty.
async fn worker(shared: Arc<Shared>, queue: Arc<Mutex<Queue>>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut batch = Vec::with_capacity(shared.batch_size);
    loop {
        {
            let mut queue = queue.lock().await;
            let Queue { rx, deadline } = &mut *queue;
            loop {
                let now = tokio::time::Instant::now();
                if *shutdown.borrow() {
                    rx.close();
                    // Zero only once closed and empty.
                    if rx.recv_many(&mut batch, shared.batch_size).await == 0 {
                        // The other workers will see it too.
                        return;
                    }
                    break;
                }
                let len = rx.len();
                if len >= shared.threshold || (len > 0 && now >= *deadline) {
                    // Messages are there: this does not wait.
                    rx.recv_many(&mut batch, shared.batch_size).await;
                    if len < shared.threshold {
                        *deadline = now + shared.flush_interval;
                    }
                    break;
                }
                if len == 0 && now >= *deadline {
                    // Idle: an event arriving now waits one interval at most.
                    *deadline = now + shared.flush_interval;
                }
                // Never wait in `recv`: a receiver waiting there is woken by
                // every send, which would cost the request path a task
                // wake-up per event. Producers notify once per full batch.
                tokio::select! {
                    biased;
                    () = stopping(&mut shutdown) => {}
                    () = shared.ready.notified() => {}
                    () = tokio::time::sleep_until(*deadline) => {}
                }
            }
        }
        shared.batches.fetch_add(1, Ordering::Relaxed);
        shared
            .dequeued
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        shared
            .batch_max
            .fetch_max(batch.len() as u64, Ordering::Relaxed);
        let started = Instant::now();
        futures::future::join_all(
            shared
                .slots
                .iter()
                .map(|slot| deliver(&shared, slot, &batch)),
        )
        .await;
        shared.flush_latency.record(started.elapsed());
        batch.clear();
    }
}

/// Delivers one batch to one sink: directly with retries while it is
/// healthy, else (or then) to its spill file.
async fn deliver(shared: &Shared, slot: &SinkSlot, batch: &[AuditEvent]) {
    let mut backoff = shared.options.retry_base;
    if slot.is_healthy() && !shared.past_deadline() {
        for attempt in 1..=shared.attempts {
            let written = tokio::select! {
                biased;
                written = slot.sink.write_batch(batch) => written,
                () = shared.out_of_time() => {
                    tracing::warn!(sink = slot.name(), events = batch.len(), "audit batch write abandoned: shutdown deadline");
                    break;
                }
            };
            match written {
                Ok(()) => {
                    slot.written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    return;
                }
                Err(err) => {
                    slot.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(sink = slot.name(), %err, attempt, events = batch.len(), "audit batch write failed");
                }
            }
            // Another worker gave up on this sink meanwhile, or time is
            // up: spill at once.
            if attempt == shared.attempts || !slot.is_healthy() || shared.past_deadline() {
                break;
            }
            tokio::select! {
                biased;
                () = tokio::time::sleep(backoff) => {}
                () = shared.out_of_time() => break,
            }
            backoff = (backoff * 2).min(shared.options.retry_cap);
        }
    }
    spill(shared, slot, batch).await;
}

/// Appends the batch to the sink's spill file. If that fails too (disk
/// full...), alternates between the sink and the spill file with a capped
/// backoff until one of them takes the batch; during shutdown it gives up
/// after `retry_attempts` rounds and counts the events as lost.
async fn spill(shared: &Shared, slot: &SinkSlot, batch: &[AuditEvent]) {
    let mut backoff = shared.options.retry_base;
    let mut rounds = 0u32;
    loop {
        match slot.append(batch).await {
            Ok(()) => return,
            Err(err) => {
                tracing::error!(
                    sink = slot.name(),
                    file = %slot.spill_path().display(),
                    %err,
                    events = batch.len(),
                    "cannot spill an audit batch"
                );
            }
        }
        rounds += 1;
        let stopping = *shared.shutdown.borrow();
        if stopping && (rounds >= shared.attempts || shared.past_deadline()) {
            shared.lost.fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::error!(
                sink = slot.name(),
                events = batch.len(),
                "audit events lost at shutdown"
            );
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(shared.options.retry_cap.max(Duration::from_secs(5)));
        match slot.sink.write_batch(batch).await {
            Ok(()) => {
                slot.written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
            Err(_) => {
                slot.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Probes unhealthy sinks by replaying their spill files, every
/// `replay_interval`, until shutdown begins.
async fn replayer(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut tick = tokio::time::interval(shared.options.replay_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stopping(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        for slot in &shared.slots {
            if !slot.is_healthy() {
                slot.replay(shared.batch_size).await;
            }
        }
    }
}

#[cfg(test)]
mod deadline_tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::AuditPipeline;
    use crate::audit::{AuditError, AuditEvent, AuditSink};
    use crate::config::AuditConfig;

    /// A sink whose writes never finish (a database stuck behind a lock).
    struct Stuck;

    #[async_trait::async_trait]
    impl AuditSink for Stuck {
        fn name(&self) -> &str {
            "stuck"
        }
        async fn write_batch(&self, _: &[AuditEvent]) -> Result<(), AuditError> {
            std::future::pending().await
        }
        async fn flush(&self) -> Result<(), AuditError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn shutdown_within_a_limit_spills_what_a_stuck_sink_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = AuditConfig {
            flush_interval_ms: 10,
            ..AuditConfig::default()
        };
        let pipeline = AuditPipeline::start(&config, vec![Arc::new(Stuck)], dir.path().into())
            .await
            .expect("start");
        for _ in 0..5 {
            pipeline.record(AuditEvent::example()).await;
        }
        tokio::time::timeout(
            Duration::from_secs(30),
            pipeline.shutdown_within(Duration::from_millis(200)),
        )
        .await
        .expect("shutdown_within returns although the sink never answers");
        let stats = pipeline.stats();
        assert_eq!((stats.spilled, stats.written, stats.lost), (5, 0, 0));
        // A last replay cut short by the deadline may have renamed the spill
        // file to `stuck.replaying.jsonl`; the next start replays both.
        let spilled: usize = ["stuck.jsonl", "stuck.replaying.jsonl"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(dir.path().join(name)).ok())
            .map(|text| text.lines().count())
            .sum();
        assert_eq!(
            spilled, 5,
            "events in the spill files the next start replays"
        );
    }
}
