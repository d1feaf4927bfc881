//! Serves OMS with `metrics.recorder = "status-classes"` on the address in
//! `OMS_EXAMPLE_BIND` (default `127.0.0.1:0`), its database in the
//! current directory. Prints `listening on http://ADDR`; stops gracefully
//! on Ctrl-C or when stdin closes.

use std::time::Duration;

use anyhow::Context;
use oms_core::config::Config;
use salvo::conn::{Acceptor, TcpListener};
use salvo::{Listener, Server};
use tokio::io::AsyncReadExt;

// Keep the plugin crates (and their registrations) in the binary.
use custom_metrics_recorder as _;
use oms_plugins as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = Config::default();
    config.metrics.recorder = custom_metrics_recorder::NAME.to_owned();
    config.server.bind = std::env::var("OMS_EXAMPLE_BIND")
        .unwrap_or_else(|_| "127.0.0.1:0".to_owned())
        .parse()
        .context("OMS_EXAMPLE_BIND")?;
    config.base_dir = std::env::current_dir()?;
    let oms = oms_core::Oms::builder().config(config).build().await?;
    let acceptor = TcpListener::new(oms.config().server.bind)
        .try_bind()
        .await?;
    let addr = acceptor
        .holdings()
        .first()
        .and_then(|h| h.local_addr.clone().into_std())
        .context("no bound address")?;
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
    server.serve(oms.service()).await;
    oms.shutdown().await;
    Ok(())
}
