//! Host and process resources, sampled by a background task with
//! `sysinfo` and read lock-free by `/debug/performance` and `/metrics`.
//! Nothing here runs on the request path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, RefreshKind, System};

/// The latest sample (what `/debug/performance` shows under `system`).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct SystemSnapshot {
    /// Host CPU use, percent of all cores.
    pub cpu_percent: f64,
    /// Host memory, bytes.
    pub memory_total_bytes: u64,
    /// Host memory in use, bytes.
    pub memory_used_bytes: u64,
    /// This process's resident set size, bytes.
    pub process_rss_bytes: u64,
    /// This process's CPU use, percent of one core.
    pub process_cpu_percent: f64,
}

/// Lock-free storage of the latest [`SystemSnapshot`].
#[derive(Debug, Default)]
pub struct SystemMonitor {
    cpu_bits: AtomicU64,
    total: AtomicU64,
    used: AtomicU64,
    rss: AtomicU64,
    proc_cpu_bits: AtomicU64,
}

impl SystemMonitor {
    /// The latest sample (zeros before the first one).
    pub fn snapshot(&self) -> SystemSnapshot {
        SystemSnapshot {
            cpu_percent: f64::from_bits(self.cpu_bits.load(Ordering::Relaxed)),
            memory_total_bytes: self.total.load(Ordering::Relaxed),
            memory_used_bytes: self.used.load(Ordering::Relaxed),
            process_rss_bytes: self.rss.load(Ordering::Relaxed),
            process_cpu_percent: f64::from_bits(self.proc_cpu_bits.load(Ordering::Relaxed)),
        }
    }

    fn store(&self, s: &SystemSnapshot) {
        self.cpu_bits
            .store(s.cpu_percent.to_bits(), Ordering::Relaxed);
        self.total.store(s.memory_total_bytes, Ordering::Relaxed);
        self.used.store(s.memory_used_bytes, Ordering::Relaxed);
        self.rss.store(s.process_rss_bytes, Ordering::Relaxed);
        self.proc_cpu_bits
            .store(s.process_cpu_percent.to_bits(), Ordering::Relaxed);
    }

    /// Starts sampling every `interval` on the blocking pool (sysinfo reads
    /// `/proc` synchronously). The task ends when the monitor is dropped.
    pub fn start(interval: Duration) -> Arc<SystemMonitor> {
        let monitor = Arc::new(SystemMonitor::default());
        let weak = Arc::downgrade(&monitor);
        tokio::spawn(async move {
            let pid = sysinfo::get_current_pid().ok();
            let mut system = match System::new_with_specifics(RefreshKind::nothing()) {
                Ok(system) => system,
                Err(err) => {
                    tracing::warn!(%err, "system resources unavailable; /debug/performance shows zeros");
                    return;
                }
            };
            while let Some(monitor) = weak.upgrade() {
                let sampled = tokio::task::spawn_blocking(move || {
                    let snapshot = sample(&mut system, pid);
                    (system, snapshot)
                })
                .await;
                match sampled {
                    Ok((s, snapshot)) => {
                        system = s;
                        monitor.store(&snapshot);
                    }
                    Err(err) => {
                        tracing::warn!(%err, "system sampler stopped");
                        break;
                    }
                }
                drop(monitor);
                tokio::time::sleep(interval).await;
            }
        });
        monitor
    }
}

fn sample(system: &mut System, pid: Option<Pid>) -> SystemSnapshot {
    system.refresh_cpu_usage();
    system.refresh_memory();
    let mut snapshot = SystemSnapshot {
        cpu_percent: f64::from(system.global_cpu_usage()),
        memory_total_bytes: system.total_memory(),
        memory_used_bytes: system.used_memory(),
        ..SystemSnapshot::default()
    };
    if let Some(pid) = pid {
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory().with_cpu(),
        );
        if let Some(process) = system.process(pid) {
            snapshot.process_rss_bytes = process.memory();
            snapshot.process_cpu_percent = f64::from(process.cpu_usage());
        }
    }
    snapshot
}
