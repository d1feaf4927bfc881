//! `oms-cli serve`: run the HTTP server until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use salvo::conn::{Acceptor, TcpListener};
use salvo::{Listener, Server};

use crate::args::ConfigArgs;

/// Serves until a signal, then stops accepting, drains in-flight requests
/// for up to `server.shutdown_grace_ms`, and flushes every plugin.
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
    let server = Server::new(acceptor);
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "shutting down: draining requests"
        );
        handle.stop_graceful(Some(grace));
    });
    server.serve(oms.service()).await;
    oms.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
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
