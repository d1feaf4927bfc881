//! Tracing set-up: `server.log_level`, overridden by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (stderr, compact).
pub(crate) fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},sqlx=warn,sea_orm=warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .compact()
        .try_init();
}
