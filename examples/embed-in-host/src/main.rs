//! A host salvo application with its own routes and middleware that
//! mounts OMS under `/oms`:
//!
//! - `GET /hello`: the host's own route;
//! - `/oms/...`: every OMS route (`/oms/health`, `/oms/v1/orders`, ...),
//!   inside OMS's limits and telemetry hoops;
//! - the host's `HostHeader` hoop around everything, OMS included.
//!
//! OMS runs on the host's tokio runtime and logs through the host's
//! tracing subscriber. Binds `OMS_EXAMPLE_BIND` (default `127.0.0.1:0`),
//! keeps its SQLite database in the current directory, prints
//! `listening on http://ADDR`, stops gracefully on Ctrl-C or when stdin
//! closes.

use std::time::Duration;

use anyhow::Context;
use oms_core::config::Config;
use salvo::conn::{Acceptor, TcpListener};
use salvo::prelude::*;
use tokio::io::AsyncReadExt;

// Keep the built-in plugins (and their registrations) in the binary.
use oms_plugins as _;

/// The host's own route.
#[handler]
async fn hello(res: &mut Response) {
    res.render(Text::Plain("hello from the host"));
}

/// The host's own middleware: tags every response, OMS's too.
#[handler]
async fn host_header(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    ctrl.call_next(req, depot, res).await;
    res.headers_mut().insert(
        "x-host-app",
        salvo::http::HeaderValue::from_static("embed-in-host"),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The host's tracing subscriber: OMS's events go here too.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let config = Config {
        base_dir: std::env::current_dir()?,
        ..Config::default()
    };
    let oms = oms_core::Oms::builder().config(config).build().await?;

    let router = Router::new()
        .hoop(host_header)
        .push(Router::with_path("hello").get(hello))
        .push(
            Router::with_path("oms")
                .hoop(oms.limits())
                .hoop(oms.telemetry())
                .push(oms.router()),
        );

    let bind: std::net::SocketAddr = std::env::var("OMS_EXAMPLE_BIND")
        .unwrap_or_else(|_| "127.0.0.1:0".to_owned())
        .parse()
        .context("OMS_EXAMPLE_BIND")?;
    let acceptor = TcpListener::new(bind)
        .try_bind()
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = acceptor
        .holdings()
        .first()
        .and_then(|h| h.local_addr.clone().into_std())
        .context("no bound address")?;
    tracing::info!(%addr, "host listening");
    println!("listening on http://{addr}");
    let server = Server::new(acceptor);
    let handle = server.handle();
    tokio::spawn(async move {
        let stdin_closed = async {
            let mut buf = [0u8; 64];
            let mut stdin = tokio::io::stdin();
            while stdin.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            () = stdin_closed => {},
        }
        handle.stop_graceful(Some(Duration::from_secs(5)));
    });
    server.serve(router).await;
    // The host owns the lifecycle: drain OMS's audit queue, close its pool.
    oms.shutdown().await;
    Ok(())
}
