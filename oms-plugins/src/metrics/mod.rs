//! Built-in [`MetricsRecorder`](oms_core::metrics::MetricsRecorder)s.
//!
//! - [`builtin`]: [`BuiltinRecorder`], registered as the `builtin` recorder
//!   (the default of `metrics.recorder`). Lock-free fixed-bucket latency
//!   histograms per `(method, route, status)`, looked up in a sharded
//!   `metrics-util` registry; see its module documentation for the design
//!   and its cost.

pub mod builtin;
pub(crate) mod histogram;
mod prometheus;
mod series;

pub use builtin::BuiltinRecorder;
