//! `oms-cli serve`: run the HTTP server until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use salvo::Listener;
use salvo::conn::{Accepted, Acceptor, Holding, TcpListener};
use salvo::fuse::ArcFusePolicy;
use tokio::sync::{oneshot, watch};

use crate::args::ConfigArgs;

/// Serves until a signal, then stops accepting, drains in-flight requests
/// and flushes every plugin, all within `server.shutdown_grace_ms`.
pub(crate) fn run(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.load()?;
    crate::logging::init(config.server.log_level.as_str());
    super::runtime(config.server.workers)?.block_on(serve(config))
}

async fn serve(config: oms_core::config::Config) -> anyhow::Result<ExitCode> {
    let bind = config.server.bind;
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let workers = config.server.workers;
    let oms = oms_core::Oms::builder().config(config).build().await?;
    let acceptor = TcpListener::new(bind)
        .try_bind()
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    for holding in acceptor.holdings() {
        tracing::info!(address = %holding, workers, "listening");
        eprintln!("listening on {holding}");
    }
    let (closing, closing_rx) = watch::channel(false);
    let (closed_tx, closed) = oneshot::channel();
    let (signalled_tx, mut signalled) = oneshot::channel();
    let server = oms_core::http::server(
        ClosingAcceptor::new(acceptor, closing_rx, closed_tx),
        &oms.config().server,
    );
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = signalled_tx.send(Instant::now());
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "shutting down: draining requests"
        );
        // Close the listening socket first (new connections are refused at
        // once), then let salvo drain the connections it has.
        closing.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(1), closed).await;
        handle.stop_graceful(Some(grace.saturating_sub(flush_reserve(grace))));
    });
    server.serve(oms.service()).await;
    // The whole shutdown fits in the grace: what the drain left of it goes
    // to flushing the audit (spilling what the sinks cannot take in time)
    // and closing the pool.
    let remaining = match signalled.try_recv() {
        Ok(at) => (at + grace).saturating_duration_since(Instant::now()),
        Err(_) => grace,
    };
    oms.shutdown_within(remaining.saturating_sub(flush_reserve(grace) / 2))
        .await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The part of the grace kept from the request drain for the audit flush
/// and the pool: a fifth of it, at most 2 s.
fn flush_reserve(grace: Duration) -> Duration {
    (grace / 5).min(Duration::from_secs(2))
}

/// Closes the listening socket as soon as shutdown begins. salvo keeps its
/// acceptor until the drain has ended, so without this a client connecting
/// during the drain lands in the kernel's backlog and waits, unanswered,
/// for up to `shutdown_grace_ms` before being reset; with it the client is
/// refused at once and can go to another instance.
struct ClosingAcceptor<A> {
    inner: Option<A>,
    holdings: Vec<Holding>,
    closing: watch::Receiver<bool>,
    closed: Option<oneshot::Sender<()>>,
}

impl<A: Acceptor> ClosingAcceptor<A> {
    fn new(inner: A, closing: watch::Receiver<bool>, closed: oneshot::Sender<()>) -> Self {
        Self {
            holdings: inner.holdings().to_vec(),
            inner: Some(inner),
            closing,
            closed: Some(closed),
        }
    }
}

impl<A: Acceptor> Acceptor for ClosingAcceptor<A> {
    type Coupler = A::Coupler;
    type Stream = A::Stream;

    fn holdings(&self) -> &[Holding] {
        &self.holdings
    }

    async fn accept(
        &mut self,
        fuse_policy: Option<ArcFusePolicy>,
    ) -> std::io::Result<Accepted<Self::Coupler, Self::Stream>> {
        if let Some(inner) = self.inner.as_mut() {
            let closing = async {
                // A dropped sender means no shutdown signal will come.
                if self.closing.wait_for(|closing| *closing).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                biased;
                () = closing => {}
                accepted = inner.accept(fuse_policy) => return accepted,
            }
            self.inner = None;
            tracing::info!("listener closed: new connections are refused");
            if let Some(closed) = self.closed.take() {
                let _ = closed.send(());
            }
        }
        std::future::pending().await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
