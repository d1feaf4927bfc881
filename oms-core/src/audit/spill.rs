//! Per-sink spill files: where a batch goes when its sink keeps failing,
//! and how it gets back into the sink.
//!
//! Each sink has two files in the spill directory, JSON lines of
//! [`AuditEvent`]s:
//! - `<sink>.jsonl`, appended to (one write and one `fsync` per batch)
//!   while the sink is unhealthy;
//! - `<sink>.replaying.jsonl`, the previous `<sink>.jsonl` renamed by the
//!   replayer, streamed into the sink in batches and removed only once the
//!   sink has accepted all of it.
//!
//! Invariant: a sink is marked healthy only while holding the append lock
//! and after seeing both files absent or empty; every append happens under
//! that lock and marks the sink unhealthy. So while a sink is healthy its
//! spill files are empty, and workers write to it directly; while it is
//! unhealthy workers append to the spill file without trying the sink (the
//! replayer probes it), which keeps the queue draining during an outage.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use super::stats::SinkStats;
use super::{AuditEvent, AuditSink};

/// One sink with its spill files and counters.
pub(crate) struct SinkSlot {
    pub(crate) sink: Arc<dyn AuditSink>,
    name: String,
    dir: PathBuf,
    main: PathBuf,
    replaying: PathBuf,
    healthy: AtomicBool,
    /// Held while appending to `main` and while switching files.
    append: Mutex<AppendState>,
    /// Held while replaying; the byte offset in `replaying` up to which the
    /// sink has accepted everything.
    replay: Mutex<u64>,
    pub(crate) written: AtomicU64,
    pub(crate) failed: AtomicU64,
    spilled: AtomicU64,
    replayed: AtomicU64,
    corrupt: AtomicU64,
}

#[derive(Debug, Default)]
struct AppendState {
    /// The file may end in a torn line (a failed append, a crash): start
    /// the next append on a fresh line.
    needs_newline: bool,
}

/// A file name stem safe on every platform: the sink name with anything
/// but ASCII letters, digits, `-` and `_` replaced by `_`.
pub(crate) fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() {
        "_".to_owned()
    } else {
        stem
    }
}

/// Fsyncs a directory so that a file created, renamed or removed in it
/// survives a crash. Best effort: some platforms cannot open directories.
async fn sync_dir(dir: &Path) {
    if let Ok(file) = tokio::fs::File::open(dir).await
        && let Err(err) = file.sync_all().await
    {
        tracing::debug!(dir = %dir.display(), %err, "fsync of the audit spill directory failed");
    }
}

/// The file's length, 0 when it does not exist.
async fn file_len(path: &Path) -> std::io::Result<u64> {
    match tokio::fs::metadata(path).await {
        Ok(meta) => Ok(meta.len()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(err),
    }
}

/// Whether a non-empty file's last byte is not a newline.
async fn ends_torn(path: &Path) -> std::io::Result<bool> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    if file.metadata().await?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1)).await?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last).await?;
    Ok(last[0] != b'\n')
}

/// Serialises events as JSON lines.
pub(crate) fn to_json_lines(events: &[AuditEvent]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(events.len() * 320);
    for event in events {
        // Serialising a plain struct of strings and numbers cannot fail.
        if serde_json::to_writer(&mut buf, event).is_ok() {
            buf.push(b'\n');
        }
    }
    buf
}

impl SinkSlot {
    /// Sets up the slot, looking for spill files left by a previous run
    /// (the sink starts unhealthy, so they are replayed first).
    pub(crate) async fn open(sink: Arc<dyn AuditSink>, dir: &Path) -> std::io::Result<Self> {
        let name = sink.name().to_owned();
        let stem = file_stem(&name);
        let main = dir.join(format!("{stem}.jsonl"));
        let replaying = dir.join(format!("{stem}.replaying.jsonl"));
        let pending = file_len(&main).await? > 0 || file_len(&replaying).await? > 0;
        let needs_newline = ends_torn(&main).await?;
        if pending {
            tracing::info!(sink = %name, dir = %dir.display(), "audit spill files found; they will be replayed");
        }
        Ok(Self {
            sink,
            name,
            dir: dir.to_owned(),
            main,
            replaying,
            healthy: AtomicBool::new(!pending),
            append: Mutex::new(AppendState { needs_newline }),
            replay: Mutex::new(0),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            spilled: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
        })
    }

    /// The sink's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether batches go straight to the sink.
    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// The path of the file batches are appended to.
    pub(crate) fn spill_path(&self) -> &Path {
        &self.main
    }

    /// This sink's counters.
    pub(crate) fn stats(&self) -> SinkStats {
        SinkStats {
            name: self.name.clone(),
            healthy: self.is_healthy(),
            written: self.written.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            spilled: self.spilled.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            corrupt_lines: self.corrupt.load(Ordering::Relaxed),
        }
    }

    /// Appends `events` to the spill file and fsyncs it; marks the sink
    /// unhealthy.
    ///
    /// # Errors
    /// The I/O error; the file may then hold a torn line, which the next
    /// append steps over and the replay skips.
    pub(crate) async fn append(&self, events: &[AuditEvent]) -> std::io::Result<()> {
        let lines = to_json_lines(events);
        let mut state = self.append.lock().await;
        if self.healthy.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                sink = %self.name,
                file = %self.main.display(),
                "audit sink failing: batches go to its spill file until it recovers"
            );
        }
        let created = file_len(&self.main).await? == 0;
        let result = async {
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.main)
                .await?;
            if state.needs_newline {
                file.write_all(b"\n").await?;
            }
            file.write_all(&lines).await?;
            file.flush().await?;
            file.sync_data().await
        }
        .await;
        match result {
            Ok(()) => {
                state.needs_newline = false;
                if created {
                    sync_dir(&self.dir).await;
                }
                self.spilled
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => {
                state.needs_newline = true;
                Err(err)
            }
        }
    }

    /// Replays the spill files into the sink, one attempt per batch of
    /// `batch_size`; stops at the first failure (the next call resumes
    /// where it stopped). Returns true once everything has been replayed
    /// and the sink is healthy again.
    pub(crate) async fn replay(&self, batch_size: usize) -> bool {
        let mut offset = self.replay.lock().await;
        loop {
            match file_len(&self.replaying).await {
                Ok(0) => {}
                Ok(_) => {
                    if !self.replay_file(&mut offset, batch_size).await {
                        return false;
                    }
                }
                Err(err) => {
                    tracing::warn!(sink = %self.name, %err, "cannot read the audit spill file");
                    return false;
                }
            }
            if let Err(err) = tokio::fs::remove_file(&self.replaying).await
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(sink = %self.name, %err, "cannot remove the replayed audit spill file");
                return false;
            }
            *offset = 0;

            let mut state = self.append.lock().await;
            match file_len(&self.main).await {
                Ok(0) => {
                    self.healthy.store(true, Ordering::Release);
                    sync_dir(&self.dir).await;
                    tracing::info!(sink = %self.name, "audit sink recovered; spill file replayed");
                    return true;
                }
                Ok(_) => {
                    if let Err(err) = tokio::fs::rename(&self.main, &self.replaying).await {
                        tracing::warn!(sink = %self.name, %err, "cannot rotate the audit spill file");
                        return false;
                    }
                    state.needs_newline = false;
                    sync_dir(&self.dir).await;
                }
                Err(err) => {
                    tracing::warn!(sink = %self.name, %err, "cannot read the audit spill file");
                    return false;
                }
            }
        }
    }

    /// Streams `replaying` from `offset` into the sink.
    async fn replay_file(&self, offset: &mut u64, batch_size: usize) -> bool {
        let result: std::io::Result<bool> = async {
            let mut file = tokio::fs::File::open(&self.replaying).await?;
            file.seek(SeekFrom::Start(*offset)).await?;
            let mut reader = BufReader::with_capacity(256 * 1024, file);
            let mut pos = *offset;
            let mut batch = Vec::with_capacity(batch_size);
            let mut line = Vec::with_capacity(512);
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).await?;
                if n == 0 {
                    break;
                }
                pos += n as u64;
                let text = line.trim_ascii();
                if !text.is_empty() {
                    match serde_json::from_slice::<AuditEvent>(text) {
                        Ok(event) => batch.push(event),
                        Err(err) => {
                            self.corrupt.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(sink = %self.name, %err, offset = pos - n as u64, "skipping an unreadable audit spill line");
                        }
                    }
                }
                if batch.len() >= batch_size {
                    if !self.replay_batch(&batch).await {
                        return Ok(false);
                    }
                    batch.clear();
                    *offset = pos;
                }
            }
            if !batch.is_empty() && !self.replay_batch(&batch).await {
                return Ok(false);
            }
            *offset = pos;
            Ok(true)
        }
        .await;
        result.unwrap_or_else(|err| {
            tracing::warn!(sink = %self.name, %err, "cannot read the audit spill file");
            false
        })
    }

    async fn replay_batch(&self, batch: &[AuditEvent]) -> bool {
        match self.sink.write_batch(batch).await {
            Ok(()) => {
                let n = batch.len() as u64;
                self.written.fetch_add(n, Ordering::Relaxed);
                self.replayed.fetch_add(n, Ordering::Relaxed);
                true
            }
            Err(err) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(sink = %self.name, %err, "audit sink still failing; replay postponed");
                false
            }
        }
    }
}
