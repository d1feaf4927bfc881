//! Metrics: the [`MetricsRecorder`] plugin trait and the figures it takes
//! and gives.

mod recorder;

pub use recorder::{MetricsRecorder, MetricsSnapshot, RequestRecord, RouteSnapshot};
