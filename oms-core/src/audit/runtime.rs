//! The audit pipeline's own thread: a current-thread tokio runtime that
//! runs the workers and the replayer, and ends when they have.
//!
//! A batch write is a chain of wake-ups (the write turn, each statement's
//! answer from the database driver, the next worker's turn). On the
//! request runtime every one of them waits behind the runnable request
//! tasks: at 1,000 busy connections that is about a thousand tasks, and a
//! 512-event batch took 10 ms of which under 1 ms was work, so the sink
//! fell behind the requests and the queue filled (BENCHMARKS.md). On a
//! thread of their own the workers wait only for the operating system's
//! scheduler.
//!
//! Connections a sink opens from here (a pool growing during a batch) are
//! driven by this runtime's I/O driver while it runs; it runs until the
//! pipeline has shut down, after the last request.

use std::future::Future;
use std::io;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Spawns the pipeline's tasks on the audit thread; the thread ends once
/// this is dropped and every task spawned through it has ended.
pub(super) struct AuditRuntime {
    handle: Handle,
    /// Cloned into each task; the thread runs until every clone is gone.
    alive: mpsc::Sender<()>,
}

impl AuditRuntime {
    /// Starts the `oms-audit` thread and its runtime.
    ///
    /// # Errors
    /// The thread or the runtime could not be created.
    pub(super) async fn start() -> io::Result<Self> {
        let (alive, mut all_ended) = mpsc::channel::<()>(1);
        let (ready, handle) = oneshot::channel();
        std::thread::Builder::new()
            .name("oms-audit".to_owned())
            .spawn(move || {
                // Built here so that it is also dropped here, outside any
                // async context.
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready.send(Err(err));
                        return;
                    }
                };
                let _ = ready.send(Ok(runtime.handle().clone()));
                // Nothing is ever sent: `recv` ends when every sender is.
                runtime.block_on(all_ended.recv());
            })?;
        let handle = handle
            .await
            .map_err(|_| io::Error::other("the audit thread exited at start"))??;
        Ok(Self { handle, alive })
    }

    /// Runs `task` on the audit thread.
    pub(super) fn spawn<F>(&self, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let alive = self.alive.clone();
        self.handle.spawn(async move {
            task.await;
            drop(alive);
        })
    }
}
