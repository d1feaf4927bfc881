//! # OMS
//!
//! One crate for host applications: the [`core`] library (re-exported at the
//! root too) with the built-in [`plugins`] linked in, so every built-in pool,
//! audit sink and metrics recorder is registered.
//!
//! ```no_run
//! # async fn run() -> Result<(), oms::OmsError> {
//! let oms = oms::Oms::builder().config(oms::config::Config::default()).build().await?;
//! let router = salvo::Router::new().push(salvo::Router::with_path("oms").push(oms.router()));
//! # let _ = router; Ok(()) }
//! ```

pub use oms_core as core;
pub use oms_core::*;
pub use oms_plugins as plugins;

/// Keeps the built-in plugins' registrations linked; called by
/// [`Oms`]-building code paths of this crate's users implicitly through
/// this crate's re-exports. Call it if you only use `oms_core` types.
pub fn link() {
    oms_plugins::link();
}
