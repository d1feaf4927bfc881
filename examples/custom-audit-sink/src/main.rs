//! Serves OMS from an `oms.toml` that may select the `counting` sink:
//! `custom-audit-sink --config examples/custom-audit-sink/oms.toml`.
//!
//! Prints `listening on http://ADDR` once it accepts connections; stops
//! gracefully (drain, flush every sink) on Ctrl-C or when stdin closes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use oms_core::config::{Config, Overrides};
use salvo::conn::{Acceptor, TcpListener};
use salvo::{Listener, Server};
use tokio::io::AsyncReadExt;

// The linker drops crates nothing references, inventory registrations
// included: name both plugin crates.
use custom_audit_sink as _;
use oms_plugins as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = match (args.next().as_deref(), args.next()) {
        (Some("--config"), Some(path)) => PathBuf::from(path),
        _ => anyhow::bail!("usage: custom-audit-sink --config PATH"),
    };
    let config = Config::load(Some(&path), &Overrides::default())?;
    let bind = config.server.bind;
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let oms = oms_core::Oms::builder().config(config).build().await?;
    let acceptor = TcpListener::new(bind)
        .try_bind()
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
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
        handle.stop_graceful(Some(grace));
    });
    server.serve(oms.service()).await;
    oms.shutdown().await;
    Ok(())
}
